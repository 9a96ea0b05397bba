//! Building the application from settings (adapters wired into the service) and
//! running it until a shutdown signal. `main` and the tests both start here.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::ServiceExt;
use axum::extract::Request;
use axum::serve::ListenerExt;
use chat_domain::ports::{
    AwayNotifications, FanOut, MessageRepository, NoAwayNotifications, NoRateLimit,
    PresenceRegistry, RateLimiter, ReactionRepository, RoomRepository, UnreadCounters,
};
use chat_domain::{ChatService, Ports};
use chat_infra::archiver::Archiver;
use chat_infra::away_notifier::AwayNotifier;
use chat_infra::cache::{CacheBackend, CacheStats, Cached, MemoryCache, RedisCache};
use chat_infra::group_commit::{GroupCommit, WriterStats};
use chat_infra::limits::{KeyedLimiter, RateQuota, RedisRateLimiter, RedisSocketCap};
use chat_infra::memory::{InProcessPresence, InProcessUnread};
use chat_infra::offer_expirer::OfferExpirer;
use chat_infra::rabbit::{CommandConsumer, OutboxRelay, RelaySettings};
use chat_infra::redis::{
    Interests, RedisConnection, RedisError, RedisFanOut, RedisPresence, RedisSettings, RedisUnread,
};
use chat_infra::sql::ConnectError;
use chat_infra::sql::Deadline;
use chat_infra::{DatabaseSettings, SqlStore};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthSetupError, TokenVerifier};
use crate::http;
use crate::legacy::LegacyHub;
use crate::legacy::hub::Tee;
use crate::limits::{Limits, SocketCounter};
use crate::metrics::{Metrics, Sources};
use crate::settings::{AuthMode, Settings};
use crate::state::AppState;
use crate::ws::Hub;
use crate::ws::closer::codes;

/// Events waiting for a room's pump; beyond this the pump catches up from storage.
const ROOM_EVENT_QUEUE: usize = 4096;
/// How long an instance stays subscribed to a room's channel after its last
/// socket there left: a client that reconnects at once costs no round trips.
const UNSUBSCRIBE_AFTER: Duration = Duration::from_secs(5);
/// Rooms the in-process cache holds at most (each with its newest page).
const IN_PROCESS_CACHED_ROOMS: u64 = 10_000;
/// No request waits longer than this on Redis.
const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How long shutdown waits for sockets to say goodbye.
const SOCKET_DRAIN: Duration = Duration::from_secs(10);
/// How often a shutdown looks whether the message writer has finished.
const DRAIN_POLL: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::browsable;

    #[test]
    fn addresses_to_open() {
        assert_eq!(browsable("0.0.0.0:8001".parse().unwrap()), "http://localhost:8001");
        assert_eq!(browsable("[::]:8001".parse().unwrap()), "http://localhost:8001");
        assert_eq!(browsable("127.0.0.1:9000".parse().unwrap()), "http://127.0.0.1:9000");
        assert_eq!(browsable("[::1]:9000".parse().unwrap()), "http://[::1]:9000");
    }
}

#[derive(Debug, Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("cannot listen on {address} (HOST/PORT): {reason}")]
    Listen { address: String, reason: String },
    #[error("AUTH_MODE: {0}")]
    Auth(#[from] AuthSetupError),
}

/// The response header naming the instance that answered.
pub const INSTANCE_HEADER: &str = "x-instance-id";

/// A built, bound, not yet running service.
pub struct Application {
    listener: TcpListener,
    app: tower_http::set_header::SetResponseHeader<
        tower_http::normalize_path::NormalizePath<axum::Router>,
        axum::http::HeaderValue,
    >,
    hub: Hub,
    legacy: LegacyHub,
    tasks: TaskTracker,
    cache_stats: Arc<CacheStats>,
    /// The message writer's counts: a shutdown waits for its last answers.
    writer: Arc<WriterStats>,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartupError> {
        let auth = match settings.effective_auth_mode() {
            AuthMode::Required => Some(Arc::new(TokenVerifier::from_settings(settings)?)),
            AuthMode::Disabled => {
                tracing::warn!(
                    "authentication is DISABLED: callers are trusted to say who they are (development mode)"
                );
                None
            }
        };
        let store = SqlStore::open(&DatabaseSettings {
            url: settings.database_url.clone(),
            max_connections: settings.database_max_connections,
            connect_timeout: Duration::from_secs(settings.database_connect_timeout_secs),
            run_migrations: settings.run_migrations,
            outbox: settings.rabbitmq_url.is_some(),
        })
        .await?;
        tracing::info!(backend = store.backend_name(), "database ready");
        let repository = Arc::new(Deadline::new(
            store.clone(),
            Duration::from_secs(settings.database_query_timeout_secs),
        ));
        // With Redis, each instance subscribes to the channels of what its sockets are in.
        let channels = Interests::new(UNSUBSCRIBE_AFTER);
        let interests = settings.redis_url.is_some().then(|| channels.clone());
        let hub = Hub::new(
            repository.clone(),
            repository.clone(),
            ROOM_EVENT_QUEUE,
            settings.presence(),
            interests.clone(),
        );
        let legacy = LegacyHub::new(interests.clone());
        let local: Arc<dyn FanOut> =
            Arc::new(Tee(vec![Arc::new(hub.clone()), Arc::new(legacy.clone())]));
        let instance = uuid::Uuid::new_v4().simple().to_string();
        // A simple uuid is hex: always a valid header value.
        let instance_header = axum::http::HeaderValue::from_str(&instance)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("unknown"));
        let mut bus = None;
        let (redis, fan_out, presence): (_, Arc<dyn FanOut>, Arc<dyn PresenceRegistry>) =
            match &settings.redis_url {
                Some(url) => {
                    let redis = RedisConnection::connect(&RedisSettings {
                        url: url.clone(),
                        key_prefix: settings.redis_key_prefix.clone(),
                        command_timeout: REDIS_COMMAND_TIMEOUT,
                        connect_wait: Duration::from_secs(settings.database_connect_timeout_secs),
                    })
                    .await?;
                    let fan_out = RedisFanOut::start(
                        &redis,
                        instance.clone(),
                        local.clone(),
                        channels.clone(),
                    )
                    .await;
                    bus = Some((fan_out.stats(), channels));
                    let presence = RedisPresence::start(&redis, instance.clone());
                    tracing::info!(%instance, "Redis fan-out and presence enabled");
                    (Some(redis), Arc::new(fan_out), Arc::new(presence))
                }
                None => (None, local, Arc::new(InProcessPresence::new())),
            };
        let relay = settings.rabbitmq_url.as_ref().map(|url| {
            tracing::info!("events go to RabbitMQ through the outbox");
            OutboxRelay::spawn(
                store.clone(),
                RelaySettings {
                    url: url.clone(),
                    batch_size: 200,
                    idle_poll: Duration::from_millis(500),
                    // A broker that stopped answering opens the circuit after this.
                    confirm_timeout: Duration::from_secs(5),
                    retention: Duration::from_secs(24 * 3600),
                    storage_timeout: Duration::from_secs(settings.database_query_timeout_secs),
                },
            )
        });
        // Reads of rooms and newest pages go through the cache; the hub keeps
        // reading the database itself (it needs the true last seq).
        let unread: Arc<dyn UnreadCounters> = match &redis {
            Some(redis) => Arc::new(RedisUnread::new(redis)),
            None => Arc::new(InProcessUnread::default()),
        };
        let cache: Arc<dyn CacheBackend> = match &redis {
            Some(redis) => Arc::new(RedisCache::new(redis)),
            None => Arc::new(MemoryCache::new(IN_PROCESS_CACHED_ROOMS)),
        };
        let cached = Arc::new(Cached::new(repository.clone(), cache));
        let cache_stats = cached.stats();
        type Repositories =
            (Arc<dyn RoomRepository>, Arc<dyn MessageRepository>, Arc<dyn ReactionRepository>);
        let (rooms, messages, reactions): Repositories = if settings.cache_enabled {
            (cached.clone(), cached.clone(), cached)
        } else {
            tracing::info!("cache disabled: every read goes to the database");
            (repository.clone(), repository.clone(), repository.clone())
        };
        let limits = Limits {
            requests: rate_limiter(
                redis.as_ref(),
                "http",
                settings.rate_limit_http_per_second,
                settings.rate_limit_http_burst,
            ),
            connects: rate_limiter(
                redis.as_ref(),
                "connects",
                settings.rate_limit_ws_connects_per_second,
                settings.rate_limit_ws_connects_burst,
            ),
            sockets: SocketCounter::new(settings.ws_max_sockets_per_user),
            shared_sockets: match (&redis, settings.ws_max_sockets_per_user) {
                (Some(redis), max) if max > 0 => {
                    Some(Arc::new(RedisSocketCap::new(redis, instance.clone(), max)))
                }
                _ => None,
            },
            trust_forwarded_for: settings.trust_forwarded_for,
        };
        let message_rate: Arc<dyn RateLimiter> = rate_limiter(
            redis.as_ref(),
            "messages",
            settings.rate_limit_messages_per_second,
            settings.rate_limit_messages_burst,
        )
        .unwrap_or_else(|| Arc::new(NoRateLimit));
        // New messages go through group commit, which also broadcasts them.
        let mut group_commit = settings.group_commit();
        if store.backend_name() == "sqlite" {
            // One writer at a time anyway: parallel transactions would only wait on its lock.
            group_commit.writers = 1;
        }
        let writer =
            GroupCommit::start(messages.clone(), fan_out.clone(), unread.clone(), group_commit);
        let writer_stats = writer.stats();
        // Events need the broker: without one, nothing to re-arm on a join or a read.
        let away_settings = settings.away_notifications().filter(|_| relay.is_some());
        let away: Arc<dyn AwayNotifications> = match away_settings {
            Some(_) => repository.clone(),
            None => Arc::new(NoAwayNotifications),
        };
        let chat = ChatService::new(Ports {
            rooms,
            messages,
            writer: Arc::new(writer),
            fan_out,
            presence,
            events: repository.clone(),
            search: repository.clone(),
            unread,
            // Markers and counts read the database directly: no cache to keep right.
            read_state: repository.clone(),
            message_rate,
            away,
            reactions,
            offers: repository,
        });
        // Open offers past their expiry become expired, on every instance.
        OfferExpirer::new(chat.clone()).spawn();
        if let Some(url) = &settings.rabbitmq_url {
            CommandConsumer::spawn(
                url.clone(),
                settings.rabbitmq_commands_queue.clone(),
                chat.clone(),
            );
        }
        if let Some(away) = away_settings {
            tracing::info!(
                after_secs = away.after.as_secs(),
                "notifications for users away are on"
            );
            AwayNotifier::new(chat.clone(), away).spawn();
        }
        let archive = settings.archive().map(|archive| {
            tracing::info!(
                after_days = settings.archive_after_days,
                every_secs = archive.interval.as_secs(),
                "archiving of old messages is on"
            );
            Archiver::new(store.clone(), archive).spawn()
        });
        let tasks = TaskTracker::new();
        let circuits = redis
            .iter()
            .map(|redis| redis.circuit().clone())
            .chain(relay.iter().map(|relay| relay.circuit().clone()))
            .collect();
        let metrics = Metrics::new(Sources {
            store: store.clone(),
            cache: cache_stats.clone(),
            relay: relay.clone(),
            archive,
            writer: writer_stats.clone(),
            bus,
            circuits,
        });
        let state = AppState {
            chat,
            store,
            redis,
            relay,
            hub: hub.clone(),
            sockets: settings.sockets(),
            tasks: tasks.clone(),
            // Rooms by name only for development clients.
            room_names: auth.is_none().then(crate::ws::RoomNames::default),
            auth,
            origins: settings.cors_origin_list().map(Arc::new),
            limits,
            legacy: legacy.clone(),
            metrics,
        };
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address).await.map_err(|e| StartupError::Listen {
            address: address.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            listener,
            // Which instance answered, for operators (and chat-bench) behind a balancer.
            app: tower::Layer::layer(
                &tower_http::set_header::SetResponseHeaderLayer::overriding(
                    axum::http::HeaderName::from_static(INSTANCE_HEADER),
                    instance_header,
                ),
                http::app(state, settings),
            ),
            hub,
            legacy,
            tasks,
            cache_stats,
            writer: writer_stats,
        })
    }

    /// Cache hits and misses since start.
    pub fn cache_stats(&self) -> Arc<CacheStats> {
        self.cache_stats.clone()
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until SIGINT/SIGTERM.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves; then stops accepting, closes every socket
    /// with 1001, and lets in-flight requests and socket writes finish.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(address) = self.listener.local_addr() {
            let base = browsable(address);
            tracing::info!(%address, "listening: the chat page at {base}/, the API docs at {base}/docs");
        }
        let hub = self.hub.clone();
        let legacy = self.legacy.clone();
        let graceful = async move {
            stop.await;
            tracing::info!("shutting down: closing sockets, finishing in-flight requests");
            hub.close_all(codes::GOING_AWAY);
            legacy.close_all(codes::GOING_AWAY);
        };
        // Frames are small and latency-bound: no Nagle delay behind an unacknowledged one.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        // The peer address is what the per-address rate limits count.
        let app =
            ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(self.app);
        let served = axum::serve(listener, app).with_graceful_shutdown(graceful).await;
        self.tasks.close();
        let drained = async {
            self.tasks.wait().await;
            // Messages taken before the sockets closed are stored and followed up.
            while self.writer.unfinished() > 0 {
                tokio::time::sleep(DRAIN_POLL).await;
            }
        };
        if tokio::time::timeout(SOCKET_DRAIN, drained).await.is_err() {
            tracing::warn!(
                unfinished = self.writer.unfinished(),
                "some sockets or message writes did not finish in time"
            );
        }
        served
    }
}

/// A token bucket per key at `per_second` and `burst` (`None`: off), shared by
/// every instance through Redis when there is one, named `name` there.
fn rate_limiter(
    redis: Option<&RedisConnection>,
    name: &str,
    per_second: f64,
    burst: u32,
) -> Option<Arc<dyn RateLimiter>> {
    let quota = RateQuota::enabled(per_second, burst)?;
    Some(match redis {
        Some(redis) => Arc::new(RedisRateLimiter::new(redis, name, quota)),
        None => Arc::new(KeyedLimiter::<String>::new(quota)),
    })
}

/// The address to open in a browser: a wildcard listener is reached at
/// `localhost`, IPv6 addresses go in brackets.
fn browsable(address: SocketAddr) -> String {
    let port = address.port();
    match address.ip() {
        ip if ip.is_unspecified() => format!("http://localhost:{port}"),
        std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
        ip => format!("http://{ip}:{port}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
