//! Redis adapters (fred): the fan-out bus between instances and presence shared by
//! them. Redis is never the only copy of anything: a lost bus message is
//! recovered from the database by seq, and presence rebuilds as sockets reconnect.
//! Every command has a short timeout and goes through one [`Circuit`]: once Redis
//! failed, callers skip it at once until a probe finds it back; fred reconnects.

mod fan_out;
mod interest;
mod keys;
mod presence;
pub(crate) mod script;
mod unread;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::error::ErrorKind;
use fred::prelude::*;
use thiserror::Error;

use crate::circuit::{Circuit, CircuitSettings, Gate, Probe, Refusal};
pub(crate) use keys::Keys;

pub use fan_out::{FanOutStats, RedisFanOut};
pub use interest::{Held, Interests, Topic};
pub use presence::RedisPresence;
pub use unread::RedisUnread;

#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` for one server; `redis-cluster://h1:p1?node=h2:p2…`
    /// (or `rediss-cluster://`) for a Redis Cluster: fan-out then uses sharded
    /// pub/sub and keys used together carry a hash tag (see `keys.rs`).
    pub url: String,
    pub key_prefix: String,
    /// The longest any Redis command may take before it counts as failed.
    pub command_timeout: Duration,
    /// How long start-up waits for a first connection before going on degraded.
    pub connect_wait: Duration,
}

#[derive(Debug, Error)]
pub enum RedisError {
    #[error("REDIS_URL {0:?} is not a valid Redis URL: {1}")]
    BadUrl(String, String),
}

/// A command client and a subscriber client, both reconnecting forever, and
/// the circuit every command goes through.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) prefix: String,
    pub(crate) keys: Keys,
    circuit: Circuit,
    health: RedisGate,
}

/// Why a Redis command brought no answer; adapters treat each as a miss, a
/// skipped update or a degraded feature, never as a failed request.
#[derive(Debug, Error)]
pub enum RedisUnavailable {
    #[error("Redis skipped: its circuit is open")]
    Open,
    #[error("Redis did not answer in time")]
    TimedOut,
    #[error("Redis: {0}")]
    Failed(String),
}

impl RedisUnavailable {
    /// The circuit was open: said once when it opened, not again per call.
    pub(crate) fn is_skip(&self) -> bool {
        matches!(self, Self::Open)
    }
}

/// Errors that mean Redis is not there (as opposed to an answer, e.g. a script error).
fn is_outage(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Routing
            | ErrorKind::Protocol
    )
}

/// One adapter's way to Redis: its commands go through the circuit and are
/// counted as its own.
#[derive(Clone)]
pub(crate) struct RedisGate {
    pub(crate) client: Client,
    pub(crate) keys: Keys,
    gate: Gate,
}

impl RedisGate {
    /// Runs a command (a fred future, which sends nothing until polled) unless
    /// the circuit is open.
    pub(crate) async fn run<T>(
        &self,
        command: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, RedisUnavailable> {
        self.gate.call(command, is_outage).await.map_err(|refusal| match refusal {
            Refusal::Open => RedisUnavailable::Open,
            Refusal::TimedOut => RedisUnavailable::TimedOut,
            Refusal::Failed(e) => RedisUnavailable::Failed(e.to_string()),
        })
    }

    /// A key used on its own: `{prefix}{suffix}`.
    pub(crate) fn key(&self, suffix: &str) -> String {
        self.keys.plain(suffix)
    }
}

impl RedisConnection {
    /// Builds the clients and starts connecting. A Redis that is down at start-up
    /// is not fatal: the service runs degraded and the clients keep retrying.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, RedisError> {
        const SCHEMES: [&str; 4] =
            ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"];
        if !SCHEMES.iter().any(|scheme| settings.url.starts_with(scheme)) {
            return Err(RedisError::BadUrl(
                settings.url.clone(),
                "expected redis://, rediss://, redis-cluster:// or rediss-cluster://".to_owned(),
            ));
        }
        let mut config = Config::from_url(&settings.url)
            .map_err(|e| RedisError::BadUrl(settings.url.clone(), e.to_string()))?;
        let keys = Keys::new(&settings.key_prefix, config.server.is_clustered());
        // Keep retrying a first connection that fails, instead of giving up.
        config.fail_fast = false;
        let mut builder = Builder::from_config(config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = settings.command_timeout.max(Duration::from_secs(1));
                c.internal_command_timeout = settings.command_timeout;
                c.max_command_attempts = 1;
                // Commands are small and latency-bound: no Nagle delay behind an unacknowledged one.
                c.tcp.nodelay = Some(true);
                // A connection that hangs without closing is replaced.
                c.unresponsive.max_timeout = Some(Duration::from_secs(2));
            })
            .with_performance_config(|c| {
                c.default_command_timeout = settings.command_timeout;
                c.broadcast_channel_capacity = 4096;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        let client =
            builder.build().map_err(|e| RedisError::BadUrl(settings.url.clone(), e.to_string()))?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| RedisError::BadUrl(settings.url.clone(), e.to_string()))?;
        // These return handles of tasks that run on their own for the client's life.
        drop(client.connect());
        drop(subscriber.connect());
        drop(subscriber.manage_subscriptions());
        let prober = client.clone();
        let probe: Probe = Arc::new(move || {
            let client = prober.clone();
            Box::pin(
                async move { client.is_connected() && client.ping::<String>(None).await.is_ok() },
            )
        });
        let circuit = Circuit::new(
            "redis",
            CircuitSettings {
                // fred's own timeout answers first; this bounds anything it does not.
                deadline: settings.command_timeout + Duration::from_millis(100),
                probe_first: Duration::from_millis(100),
                probe_max: Duration::from_secs(1),
            },
            probe,
        );
        for c in [&client as &dyn Waitable, &subscriber] {
            if tokio::time::timeout(settings.connect_wait, c.wait()).await.is_err() {
                tracing::warn!("Redis is not reachable yet; running degraded until it is");
                circuit.trip("start-up", &"not reachable at start-up");
                break;
            }
        }
        let health =
            RedisGate { client: client.clone(), keys: keys.clone(), gate: circuit.gate("health") };
        Ok(Self { client, subscriber, prefix: settings.key_prefix.clone(), keys, circuit, health })
    }

    /// A round trip to Redis, for health checks; `false` at once while the circuit is open.
    pub async fn ping(&self) -> bool {
        self.health.run(self.health.client.ping::<String>(None)).await.is_ok()
    }

    /// The circuit every Redis command goes through, for health and metrics.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// The way to Redis for `adapter` (counted under that name).
    pub(crate) fn gate(&self, adapter: &'static str) -> RedisGate {
        RedisGate {
            client: self.client.clone(),
            keys: self.keys.clone(),
            gate: self.circuit.gate(adapter),
        }
    }
}

/// Waiting for a first connection, for both client kinds.
trait Waitable {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

impl Waitable for Client {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = self.wait_for_connect().await;
        })
    }
}

impl Waitable for SubscriberClient {
    fn wait(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let _ = self.wait_for_connect().await;
        })
    }
}
