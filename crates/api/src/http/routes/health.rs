//! `GET /health`: liveness and readiness in one, as API.md describes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;

use crate::http::error::DocumentedBody;
use crate::state::AppState;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    checks: Checks,
}

#[derive(Serialize)]
struct Checks {
    database: &'static str,
    redis: &'static str,
    rabbitmq: &'static str,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The report is the body whatever the status: a 503 keeps it (not the error body).
pub async fn health(
    State(state): State<AppState>,
) -> (StatusCode, Extension<DocumentedBody>, Json<Health>) {
    let database_ok =
        matches!(tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await, Ok(Ok(())));
    let redis = match &state.redis {
        None => "disabled",
        Some(redis) => match tokio::time::timeout(PROBE_TIMEOUT, redis.ping()).await {
            Ok(true) => "ok",
            _ => "down",
        },
    };
    let rabbitmq = match &state.relay {
        None => "disabled",
        Some(relay) if relay.is_connected() => "ok",
        Some(_) => "down",
    };
    let (status_code, status) = match (database_ok, redis, rabbitmq) {
        (false, _, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, "down", _) | (true, _, "down") => (StatusCode::OK, "degraded"),
        (true, _, _) => (StatusCode::OK, "ok"),
    };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        checks: Checks { database: if database_ok { "ok" } else { "down" }, redis, rabbitmq },
    };
    (status_code, Extension(DocumentedBody), Json(body))
}
