//! `GET /health`: liveness and readiness in one, as PROTOCOL.md describes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::error::DocumentedBody;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "version": "0.1.0", "checks": {"database": "ok", "redis": "ok", "rabbitmq": "disabled"}, "circuits": {"redis": "closed", "rabbitmq": "disabled"}}))]
pub struct Health {
    status: Status,
    /// The service's version.
    version: &'static str,
    checks: Checks,
    circuits: Circuits,
}

/// `ok`; `degraded` when the cache or the broker is down; `unavailable` (503)
/// when the database is.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    Degraded,
    Unavailable,
}

#[derive(Serialize, ToSchema)]
struct Checks {
    database: Check,
    redis: Check,
    rabbitmq: Check,
}

/// One dependency: `ok`, `down`, or `disabled` (not configured).
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Check {
    Ok,
    Down,
    Disabled,
}

/// The circuit breaker of each dependency that is a cache or a bus: while one is
/// `open`, requests skip that dependency at once (reads from the database, no
/// cache updates, no shared limits, events wait in the outbox) until its
/// background probe gets an answer and closes it.
#[derive(Serialize, ToSchema)]
struct Circuits {
    redis: CircuitState,
    rabbitmq: CircuitState,
}

/// `closed` (calls reach the dependency), `open` (calls skip it), or `disabled`.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum CircuitState {
    Closed,
    Open,
    Disabled,
}

impl CircuitState {
    fn of(circuit: Option<&chat_infra::circuit::Circuit>) -> Self {
        match circuit {
            None => Self::Disabled,
            Some(circuit) if circuit.is_open() => Self::Open,
            Some(_) => Self::Closed,
        }
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness and readiness
///
/// The state of the service and of each dependency it uses. Orchestrators treat
/// 200 as ready and 503 as not ready.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Serving: `ok`, or `degraded` when Redis or RabbitMQ is down (the database is up).", body = Health),
        (status = 503, description = "The database is down: `status` is `unavailable`.", body = Health,
            example = json!({"status": "unavailable", "version": "0.1.0", "checks": {"database": "down", "redis": "ok", "rabbitmq": "ok"}, "circuits": {"redis": "closed", "rabbitmq": "closed"}})),
    )
)]
/// The report is the body whatever the status: a 503 keeps it (not the error body).
pub async fn health(
    State(state): State<AppState>,
) -> (StatusCode, Extension<DocumentedBody>, Json<Health>) {
    let database_ok =
        matches!(tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await, Ok(Ok(())));
    // Through the circuit: no wait on a Redis already known to be down.
    let redis = match &state.redis {
        None => Check::Disabled,
        Some(redis) => match tokio::time::timeout(PROBE_TIMEOUT, redis.ping()).await {
            Ok(true) => Check::Ok,
            _ => Check::Down,
        },
    };
    let rabbitmq = match &state.relay {
        None => Check::Disabled,
        Some(relay) if relay.is_connected() && !relay.circuit().is_open() => Check::Ok,
        Some(_) => Check::Down,
    };
    let circuits = Circuits {
        redis: CircuitState::of(state.redis.as_ref().map(|r| r.circuit())),
        rabbitmq: CircuitState::of(state.relay.as_ref().map(|r| r.circuit())),
    };
    let (status_code, status) = match (database_ok, redis, rabbitmq) {
        (false, _, _) => (StatusCode::SERVICE_UNAVAILABLE, Status::Unavailable),
        (true, Check::Down, _) | (true, _, Check::Down) => (StatusCode::OK, Status::Degraded),
        (true, _, _) => (StatusCode::OK, Status::Ok),
    };
    let database = if database_ok { Check::Ok } else { Check::Down };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks { database, redis, rabbitmq },
        circuits,
    };
    (status_code, Extension(DocumentedBody), Json(body))
}
