//! Test support: start the real application on a random port against a fresh
//! database (a SQLite file, or a new Postgres database) and talk to it over HTTP.
//!
//! Postgres: `CHAT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`)
//! names a database the tests may create databases from. When it is unreachable
//! the Postgres variants are skipped, saying so on stderr — unless
//! `CHAT_TEST_REQUIRE_SERVERS=1` (CI), which makes them fail instead.

pub mod contract;
pub mod load;
pub mod metrics;
pub mod nginx;
pub mod proxy;
pub mod rabbit;
pub mod socket;

use proxy::Proxy;

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use chat_api::settings::{AppEnv, AuthMode};
use chat_api::{Application, Settings};
use reqwest::{Client, Method, Response};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use serde_json::Value;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Declares each listed `async fn(TestApp)` scenario as two tests:
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::postgres().await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// Declares each listed `async fn(TestApp)` scenario as three tests, one per
/// adapter set: `sqlite::NAME` and `postgres::NAME` (in-process cache, fan-out
/// and presence, no broker) and `full::NAME` (Postgres + Redis + RabbitMQ, see
/// [`TestApp::full`]). Scenarios after `not_on_full:` are about the in-process
/// set and run on the first two only.
#[macro_export]
macro_rules! on_every_adapter_set {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_adapter_set!($($name),* ; not_on_full:);
    };
    ($($name:ident),* ; not_on_full: $($local:ident),* $(,)?) => {
        $crate::on_both_databases!($($name,)* $($local,)*);
        mod full {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::run_full(super::$name).await;
                }
            )*
        }
    };
}

/// Runs `scenario` on [`TestApp::full`] (or skips), then removes what the run
/// left on the shared servers: its command queues and its Redis keys.
pub async fn run_full<F, Fut>(scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(app) = TestApp::full().await else { return };
    let settings = app.settings.clone();
    scenario(app).await;
    clean_up(&settings).await;
}

/// Removes what a service with `settings` left on the shared servers: its
/// command queues (RabbitMQ) and the keys under its prefix (Redis).
pub async fn clean_up(settings: &Settings) {
    if let Some(url) = &settings.rabbitmq_url {
        rabbit::delete_command_queue(url, &settings.rabbitmq_commands_queue).await;
    }
    if let Some(url) = &settings.redis_url {
        delete_redis_keys(url, &settings.redis_key_prefix).await;
    }
}

/// Deletes every key under `prefix`.
async fn delete_redis_keys(url: &str, prefix: &str) {
    use fred::prelude::*;
    let client = Builder::from_config(Config::from_url(url).expect("redis url"))
        .build()
        .expect("redis client");
    client.init().await.expect("Redis connects");
    let keys: Vec<String> =
        client.custom(fred::cmd!("KEYS"), vec![format!("{prefix}*")]).await.expect("KEYS");
    if !keys.is_empty() {
        let _: i64 = client.del(keys).await.expect("DEL");
    }
    let _ = client.quit().await;
}

/// A running service and an HTTP client pointed at it. Dropping it shuts the
/// service down.
pub struct TestApp {
    pub address: String,
    pub client: Client,
    pub database_url: String,
    pub settings: Settings,
    pub cache_stats: std::sync::Arc<chat_infra::cache::CacheStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for a test instance: random port, loopback, the given database.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        host: "127.0.0.1".to_owned(),
        port: 0,
        app_env: AppEnv::Development,
        debug: false,
        log_level: "warn".to_owned(),
        log_format: None,
        database_url: database_url.to_owned(),
        database_max_connections: 10,
        database_connect_timeout_secs: 5,
        database_query_timeout_secs: 10,
        run_migrations: true,
        redis_url: None,
        redis_key_prefix: "chat:".to_owned(),
        cache_enabled: true,
        rabbitmq_url: None,
        rabbitmq_commands_queue: format!("chat.commands.test-{}", uuid::Uuid::new_v4().simple()),
        auth_mode: Some(AuthMode::Disabled),
        jwt_secret: None,
        jwt_public_key: None,
        jwt_issuer: None,
        jwt_audience: None,
        cors_origins: None,
        max_body_bytes: 65536,
        request_timeout_secs: 30,
        ws_ping_interval_ms: 20_000,
        ws_pong_timeout_ms: 10_000,
        ws_max_frame_bytes: 65536,
        ws_queue_capacity: 256,
        ws_close_grace_ms: 5_000,
        ws_max_in_flight: 16,
        ws_max_subscriptions: 500,
        message_batch_max: 256,
        message_queue_capacity: 4096,
        message_writers: 2,
        ws_presence_coalesce_above: 50,
        ws_presence_interval_ms: 1_000,
        // Off, except in the tests of the limits themselves: the other tests
        // send fast on purpose.
        rate_limit_messages_per_second: 0.0,
        rate_limit_messages_burst: 0,
        rate_limit_http_per_second: 0.0,
        rate_limit_http_burst: 0,
        rate_limit_ws_connects_per_second: 0.0,
        rate_limit_ws_connects_burst: 0,
        ws_max_sockets_per_user: 0,
        ws_flood_strikes: 0,
        trust_forwarded_for: false,
        archive_after_days: None,
        archive_interval_secs: 3600,
        archive_batch_size: 500,
        notify_after_secs: 0,
    }
}

impl TestApp {
    /// The service on a new SQLite file.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join("chat-room-tests");
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
        Self::start(&format!("sqlite://{}?mode=rwc", file.display())).await
    }

    /// The service on a new Postgres database, or `None` (skipped) when there is
    /// no server and CI did not demand one.
    pub async fn postgres() -> Option<Self> {
        let url = fresh_postgres_database().await?;
        Some(Self::start(&url).await)
    }

    /// The service on a new Postgres database with Redis (its own key prefix),
    /// or `None` (skipped) when either server is missing and CI did not demand it.
    pub async fn postgres_with_redis() -> Option<Self> {
        let redis_url = reachable_redis().await?;
        let database_url = fresh_postgres_database().await?;
        let mut settings = test_settings(&database_url);
        settings.redis_url = Some(redis_url);
        settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
        Some(Self::start_with(settings).await)
    }

    /// The service with Redis at `redis_url` (own key prefix) on a new Postgres database.
    pub async fn postgres_with_redis_at(redis_url: &str) -> Option<Self> {
        let database_url = fresh_postgres_database().await?;
        let mut settings = test_settings(&database_url);
        settings.redis_url = Some(redis_url.to_owned());
        settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
        Some(Self::start_with(settings).await)
    }

    /// The service on a new Postgres database with the test Redis Cluster (own
    /// key prefix), or `None` (skipped) when either is missing and CI did not demand it.
    pub async fn postgres_with_redis_cluster(change: impl FnOnce(&mut Settings)) -> Option<Self> {
        let redis_url = reachable_redis_cluster().await?;
        let database_url = fresh_postgres_database().await?;
        let mut settings = test_settings(&database_url);
        settings.redis_url = Some(redis_url);
        settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
        change(&mut settings);
        Some(Self::start_with(settings).await)
    }

    /// The service with every adapter of production: a new Postgres database,
    /// Redis (own key prefix) and RabbitMQ (events, and its own command queue), or
    /// `None` (skipped) when a server is missing and CI did not demand it.
    pub async fn full() -> Option<Self> {
        let redis_url = reachable_redis().await?;
        let rabbitmq_url = reachable_rabbitmq().await?;
        let database_url = fresh_postgres_database().await?;
        Some(Self::start_with(full_settings(&database_url, &redis_url, &rabbitmq_url)).await)
    }

    /// [`TestApp::full`] with each server reached through its own [`Proxy`], so
    /// a test can cut or stall one server at a time.
    pub async fn full_behind_proxies() -> Option<(Self, Proxies)> {
        Self::full_behind_proxies_with(|_| {}).await
    }

    /// [`TestApp::full_behind_proxies`] with `change` applied to its settings.
    pub async fn full_behind_proxies_with(
        change: impl FnOnce(&mut Settings),
    ) -> Option<(Self, Proxies)> {
        let redis_url = reachable_redis().await?;
        let rabbitmq_url = reachable_rabbitmq().await?;
        let database_url = fresh_postgres_database().await?;
        let (postgres_at, redis_at, rabbitmq_at) = (
            postgres_address(&database_url),
            redis_url.trim_start_matches("redis://").split('/').next().unwrap_or("").to_owned(),
            rabbitmq_address(&rabbitmq_url),
        );
        let proxies = Proxies {
            postgres: Proxy::start(&postgres_at).await,
            redis: Proxy::start(&redis_at).await,
            rabbitmq: Proxy::start(&rabbitmq_at).await,
            database_url: database_url.clone(),
            rabbitmq_url: rabbitmq_url.clone(),
        };
        let through = |url: &str, address: &str, proxy: &Proxy| {
            url.replacen(address, &format!("127.0.0.1:{}", proxy.port), 1)
        };
        let mut settings = full_settings(
            &through(&database_url, &postgres_at, &proxies.postgres),
            &through(&redis_url, &redis_at, &proxies.redis),
            &through(&rabbitmq_url, &rabbitmq_at, &proxies.rabbitmq),
        );
        change(&mut settings);
        Some((Self::start_with(settings).await, proxies))
    }

    /// Polls `/health` until `check` reads `expected`, for at most 30 s.
    pub async fn wait_for_health(&self, check: &str, expected: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let health: Value = self.get("/health").await.json().await.expect("health is JSON");
            if health["checks"][check] == expected {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The service's database without any cache: the truth to compare with.
    pub async fn uncached_store(&self) -> chat_infra::SqlStore {
        chat_infra::SqlStore::open(&chat_infra::DatabaseSettings {
            url: self.database_url.clone(),
            max_connections: 4,
            connect_timeout: Duration::from_secs(5),
            run_migrations: false,
            outbox: false,
        })
        .await
        .expect("database opens")
    }

    /// The service on a new Postgres database with events relayed to `rabbitmq_url`,
    /// or `None` (skipped) when Postgres is missing and CI did not demand it.
    pub async fn postgres_with_rabbitmq(rabbitmq_url: &str) -> Option<Self> {
        let database_url = fresh_postgres_database().await?;
        let mut settings = test_settings(&database_url);
        settings.rabbitmq_url = Some(rabbitmq_url.to_owned());
        Some(Self::start_with(settings).await)
    }

    pub async fn start(database_url: &str) -> Self {
        Self::start_with(test_settings(database_url)).await
    }

    pub async fn start_with(settings: Settings) -> Self {
        // Captured per test: shown only when the test fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_test_writer()
            .try_init();
        let app = Application::build(&settings).await.expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let cache_stats = app.cache_stats();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            client: Client::new(),
            database_url: settings.database_url.clone(),
            settings,
            cache_stats,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Another instance of the service on the same database, with changed settings.
    pub async fn another(&self, change: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        change(&mut settings);
        Self::start_with(settings).await
    }

    /// Shuts the service down (as on SIGTERM) and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stops cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request is sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a public room and returns its id.
    pub async fn create_room(&self, name: &str) -> i64 {
        let response = self.post("/rooms", serde_json::json!({"name": name})).await;
        assert_eq!(response.status(), 201, "room {name} is created");
        let room: Value = response.json().await.expect("room json");
        room["id"].as_i64().expect("room id")
    }

    /// Posts a message as `user` and returns the stored message.
    pub async fn post_message(&self, room: i64, user: &str, content: &str) -> Value {
        let response = self
            .post(
                &format!("/rooms/{room}/messages"),
                serde_json::json!({"content": content, "user_id": user}),
            )
            .await;
        assert_eq!(response.status(), 201, "message is created");
        response.json().await.expect("message json")
    }

    /// A direct connection to the service's database, for checks behind the API.
    pub async fn database(&self) -> DatabaseConnection {
        let url = chat_infra::sql::normalize_url(&self.database_url).expect("valid url");
        Database::connect(url).await.expect("database connects")
    }
}

/// The servers of [`TestApp::full_behind_proxies`], and direct URLs for the
/// test's own checks (which must not go through a proxy it cuts).
pub struct Proxies {
    pub postgres: Proxy,
    pub redis: Proxy,
    pub rabbitmq: Proxy,
    pub database_url: String,
    pub rabbitmq_url: String,
}

/// Settings with Postgres, Redis (a key prefix of its own) and RabbitMQ.
pub fn full_settings(database_url: &str, redis_url: &str, rabbitmq_url: &str) -> Settings {
    let mut settings = test_settings(database_url);
    settings.redis_url = Some(redis_url.to_owned());
    settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
    settings.rabbitmq_url = Some(rabbitmq_url.to_owned());
    settings
}

/// `host:port` of a Postgres URL.
pub fn postgres_address(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or_default();
    if host.contains(':') { host.to_owned() } else { format!("{host}:5432") }
}

/// Reads a response that must be an PROTOCOL.md error: the status, the code, and a
/// message and request id that are present.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("x-request-id header");
    let content_type = response.headers().get("content-type").cloned();
    assert_eq!(content_type.as_ref().and_then(|v| v.to_str().ok()), Some("application/json"));
    let body: Value = response.json().await.expect("error body is json");
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "message in {body}");
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "request id in {body}");
    body
}

fn require_servers() -> bool {
    std::env::var("CHAT_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1" || v == "true")
}

/// Tells, once per test binary and past the output capture, that a server-backed
/// variant is being skipped.
fn say_skipped(what: &str, reason: &str) {
    static SAID: OnceLock<()> = OnceLock::new();
    SAID.get_or_init(|| {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {what} tests ({reason}); set CHAT_TEST_REQUIRE_SERVERS=1 to make this a failure"
        );
    });
}

/// The test RabbitMQ URL if a server answers there (else skipped, or a failure in CI).
pub async fn reachable_rabbitmq() -> Option<String> {
    let url = std::env::var("CHAT_TEST_RABBITMQ_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(rabbitmq_address(&url)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if reachable {
        return Some(url);
    }
    assert!(!require_servers(), "RabbitMQ at {url} is required but unreachable");
    say_skipped("RabbitMQ", &format!("{url} unreachable"));
    None
}

/// `host:port` of an AMQP URL.
pub fn rabbitmq_address(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host =
        rest.rsplit('@').next().unwrap_or(rest).split('/').next().unwrap_or("127.0.0.1:5672");
    if host.contains(':') { host.to_owned() } else { format!("{host}:5672") }
}

/// The test Redis URL if a server answers there (else skipped, or a failure in CI).
pub async fn reachable_redis() -> Option<String> {
    let url = std::env::var("CHAT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let address =
        url.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_owned();
    let reachable =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&address))
            .await
            .is_ok_and(|r| r.is_ok());
    if reachable {
        return Some(url);
    }
    assert!(!require_servers(), "Redis at {url} is required but unreachable");
    say_skipped("Redis", &format!("{url} unreachable"));
    None
}

/// The test Redis Cluster's URL (`CHAT_TEST_REDIS_CLUSTER_URL`, default the one
/// `scripts/redis_cluster.sh start` makes on ports 7001–7003) if its first node
/// answers (else skipped, or a failure in CI).
pub async fn reachable_redis_cluster() -> Option<String> {
    let url = std::env::var("CHAT_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
        "redis-cluster://127.0.0.1:7001?node=127.0.0.1:7002&node=127.0.0.1:7003".to_owned()
    });
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(redis_cluster_nodes(&url)[0].as_str()),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    if reachable {
        return Some(url);
    }
    assert!(
        !require_servers(),
        "the Redis Cluster at {url} is required but unreachable (scripts/redis_cluster.sh start)"
    );
    say_skipped("Redis Cluster", &format!("{url} unreachable; scripts/redis_cluster.sh start"));
    None
}

/// `host:port` of each node a `redis-cluster://` URL names, the first first.
pub fn redis_cluster_nodes(url: &str) -> Vec<String> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let (first, query) = rest.split_once('?').unwrap_or((rest, ""));
    let first = first.rsplit('@').next().unwrap_or(first).trim_end_matches('/');
    let mut nodes = vec![first.to_owned()];
    nodes.extend(query.split('&').filter_map(|pair| pair.strip_prefix("node=")).map(str::to_owned));
    nodes
}

/// Creates an empty database on the test Postgres server and returns its URL.
pub async fn fresh_postgres_database() -> Option<String> {
    let admin_url =
        std::env::var("CHAT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    // Once the server is known to be missing, later tests skip at once.
    static UNREACHABLE: OnceLock<String> = OnceLock::new();
    if let Some(reason) = UNREACHABLE.get() {
        say_skipped("Postgres", reason);
        return None;
    }
    let options = ConnectOptions::new(admin_url.as_str())
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(3))
        .sqlx_logging(false)
        .to_owned();
    let admin = match Database::connect(options).await {
        Ok(db) => db,
        Err(e) if require_servers() => {
            panic!("Postgres at {admin_url} is required but unreachable: {e}")
        }
        Err(e) => {
            let reason = UNREACHABLE.get_or_init(|| format!("{admin_url} unreachable: {e}"));
            say_skipped("Postgres", reason);
            return None;
        }
    };
    let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let _ = admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("postgres url has a database");
    Some(format!("{base}/{name}"))
}

/// The `chat-room` binary beside this test's (both in `target/<profile>/`);
/// `cargo test --workspace` builds it, `cargo build -p chat-api` for one test.
pub fn service_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
    let path = dir.join("chat-room");
    assert!(path.exists(), "{} is missing: `cargo build -p chat-api` builds it", path.display());
    path
}
