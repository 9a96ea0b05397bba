//! Redis adapters (fred): the fan-out bus between instances and presence shared by
//! them. Redis is never the only copy of anything: a lost bus message is
//! recovered from the database by seq, and presence rebuilds as sockets reconnect.
//! Every command has a short timeout, and the client reconnects by itself.

mod fan_out;
mod presence;
pub(crate) mod script;
mod unread;

use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use thiserror::Error;

pub use fan_out::RedisFanOut;
pub use presence::RedisPresence;
pub use unread::RedisUnread;

#[derive(Debug, Clone)]
pub struct RedisSettings {
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

/// A command client and a subscriber client, both reconnecting forever.
#[derive(Clone)]
pub struct RedisConnection {
    pub(crate) client: Client,
    pub(crate) subscriber: SubscriberClient,
    pub(crate) prefix: String,
}

impl RedisConnection {
    /// Builds the clients and starts connecting. A Redis that is down at start-up
    /// is not fatal: the service runs degraded and the clients keep retrying.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, RedisError> {
        if !(settings.url.starts_with("redis://") || settings.url.starts_with("rediss://")) {
            return Err(RedisError::BadUrl(
                settings.url.clone(),
                "expected redis:// or rediss://".to_owned(),
            ));
        }
        let mut config = Config::from_url(&settings.url)
            .map_err(|e| RedisError::BadUrl(settings.url.clone(), e.to_string()))?;
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
        for c in [&client as &dyn Waitable, &subscriber] {
            if tokio::time::timeout(settings.connect_wait, c.wait()).await.is_err() {
                tracing::warn!("Redis is not reachable yet; running degraded until it is");
                break;
            }
        }
        Ok(Self { client, subscriber, prefix: settings.key_prefix.clone() })
    }

    /// A round trip to Redis, for health checks.
    pub async fn ping(&self) -> bool {
        self.client.is_connected() && self.client.ping::<String>(None).await.is_ok()
    }

    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
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
