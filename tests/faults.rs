//! Fault injection: the service on Postgres, Redis and RabbitMQ, each reached
//! through a proxy the test controls, while REST and WebSocket clients keep
//! sending. Each server is cut and restored in turn:
//!
//! * Postgres cut: sends are refused with `unavailable` (503 / error frame),
//!   `/health` is 503 `unavailable` with the database `down`, and the service
//!   recovers by itself when the database returns.
//! * Redis cut: sends still succeed, broadcasts still reach this instance's
//!   sockets, `/health` says `degraded`; it recovers when Redis returns.
//! * RabbitMQ cut: sends still succeed; the events arrive once it returns
//!   (`events.rs` checks their per-room order under a longer cut).
//!
//! Afterwards every acknowledged message is in the database exactly once, and
//! every stored message's `message_created` event reached the broker.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_tests::load::{Load, LoadReport, LoadSpec};
use chat_tests::metrics::Scrape;
use chat_tests::proxy::Proxy;
use chat_tests::rabbit::EventTap;
use chat_tests::socket::Socket;
use chat_tests::{Proxies, TestApp, assert_error};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

/// How long the service may take to notice an outage or a recovery.
const NOTICE: Duration = Duration::from_secs(30);

fn run_prefix() -> String {
    format!("f{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Polls `/health` until `accept(status, body)` holds.
async fn wait_for_health(app: &TestApp, what: &str, accept: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + NOTICE;
    loop {
        let response = app.get("/health").await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("health is JSON");
        if accept(status, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "health never showed {what}; last: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts over REST as `user` with a key; returns the response.
async fn send(app: &TestApp, room: i64, user: &str, key: &str) -> reqwest::Response {
    app.post(
        &format!("/rooms/{room}/messages"),
        json!({"content": format!("probe {key}"), "user_id": user, "client_msg_id": key}),
    )
    .await
}

/// Sends a message frame and reads until its echo or its error frame.
async fn send_on_socket(socket: &mut Socket, key: &str) -> Value {
    socket
        .send_json(
            json!({"type": "message", "content": format!("probe {key}"), "client_msg_id": key}),
        )
        .await;
    loop {
        let frame = socket.next_json().await;
        if frame["client_msg_id"] == key
            && matches!(frame["type"].as_str(), Some("message" | "error"))
        {
            return frame;
        }
    }
}

/// Reads until the message with `key` arrives (others are skipped).
async fn receive(socket: &mut Socket, key: &str) -> Value {
    loop {
        let frame = socket.next_of_type("message").await;
        if frame["client_msg_id"] == key {
            return frame;
        }
    }
}

/// Sends until one is acknowledged (the service recovering), within `NOTICE`.
async fn first_success(app: &TestApp, room: i64, user: &str, key: &str) -> Value {
    let deadline = Instant::now() + NOTICE;
    loop {
        let response = send(app, room, user, key).await;
        match response.status().as_u16() {
            200 | 201 => return response.json().await.unwrap(),
            503 => {
                assert_error(response, 503, "unavailable").await;
            }
            other => panic!("while recovering: {other} {}", response.text().await.unwrap()),
        }
        assert!(Instant::now() < deadline, "sends never succeeded again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Probe {
    room: i64,
    user: String,
    sent: usize,
    /// Keys the service acknowledged to the probe.
    acked: HashSet<String>,
}

impl Probe {
    fn key(&mut self, what: &str) -> String {
        self.sent += 1;
        format!("{}-{what}-{}", self.user, self.sent)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_cut_in_turn_while_clients_send() {
    let Some((app, proxies)) = TestApp::full_behind_proxies().await else { return };
    let Proxies { postgres, redis, rabbitmq, database_url, rabbitmq_url } = &proxies;
    let prefix = run_prefix();
    let mut tap = EventTap::open(rabbitmq_url).await;
    let healthy = |status: u16, body: &Value| status == 200 && body["status"] == "ok";
    wait_for_health(&app, "every server ok", healthy).await;

    let load_room = app.create_room("Under fire").await;
    let mut probe = Probe {
        room: app.create_room("Probes").await,
        user: format!("{prefix}-probe"),
        sent: 0,
        acked: HashSet::new(),
    };
    let load = Load::start(LoadSpec {
        base: app.address.clone(),
        room: load_room,
        prefix: prefix.clone(),
        rest_clients: 2,
        ws_clients: 2,
        pace: Duration::from_millis(20),
    });
    load.wait_until_every_client_acks(NOTICE).await;
    let (mut prober, _) = app.joined_socket(probe.room, &probe.user).await;

    // Postgres.
    load.outage_begins();
    postgres.cut().await;
    let health = wait_for_health(&app, "the database down", |status, _| status == 503).await;
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["checks"]["database"], "down", "{health}");
    assert_eq!(health["checks"]["redis"], "ok", "{health}");
    let key = probe.key("pg-cut-rest");
    assert_error(send(&app, probe.room, &probe.user, &key).await, 503, "unavailable").await;
    let key = probe.key("pg-cut-ws");
    let answer = send_on_socket(&mut prober, &key).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "unavailable", "{answer}");
    load.wait_until_every_client_is_refused(NOTICE).await;
    // A socket opened during the cut still joins (the room is cached and its
    // live stream already runs) and is told `unavailable` as well.
    let (mut late, _) = app.joined_socket(probe.room, &format!("{prefix}-late")).await;
    let key = probe.key("pg-cut-late");
    assert_eq!(send_on_socket(&mut late, &key).await["code"], "unavailable");
    postgres.restore();
    wait_for_health(&app, "recovery from the database cut", healthy).await;
    let key = probe.key("pg-back-rest");
    let stored = first_success(&app, probe.room, &probe.user, &key).await;
    probe.acked.insert(key.clone());
    assert_eq!(stored["client_msg_id"], key.as_str());
    let key = probe.key("pg-back-ws");
    let echo = send_on_socket(&mut prober, &key).await;
    assert_eq!(echo["type"], "message", "the socket open through the cut works: {echo}");
    probe.acked.insert(key);
    let key = probe.key("pg-back-late");
    let echo = send_on_socket(&mut late, &key).await;
    assert_eq!(echo["type"], "message", "so does the one opened during it: {echo}");
    probe.acked.insert(key);
    load.wait_until_every_client_acks(NOTICE).await;
    load.outage_ends();

    // Redis: nothing may fail from here on.
    let (mut watcher, _) = app.joined_socket(probe.room, &format!("{prefix}-watcher")).await;
    redis.cut().await;
    let health =
        wait_for_health(&app, "Redis down", |_, body| body["checks"]["redis"] == "down").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(app.get("/health").await.status(), 200);
    let key = probe.key("redis-cut-rest");
    assert_eq!(send(&app, probe.room, &probe.user, &key).await.status(), 201);
    probe.acked.insert(key.clone());
    assert_eq!(receive(&mut watcher, &key).await["user_id"], probe.user.as_str());
    let key = probe.key("redis-cut-ws");
    assert_eq!(send_on_socket(&mut prober, &key).await["type"], "message");
    probe.acked.insert(key.clone());
    receive(&mut watcher, &key).await;
    // A socket opened during the cut joins and receives too.
    let (mut newcomer, _) = app.joined_socket(probe.room, &format!("{prefix}-newcomer")).await;
    let key = probe.key("redis-cut-newcomer");
    assert_eq!(send(&app, probe.room, &probe.user, &key).await.status(), 201);
    probe.acked.insert(key.clone());
    receive(&mut newcomer, &key).await;
    receive(&mut watcher, &key).await;
    load.wait_until_every_client_acks(NOTICE).await;
    redis.restore();
    wait_for_health(&app, "Redis back", healthy).await;
    let key = probe.key("redis-back");
    assert_eq!(send(&app, probe.room, &probe.user, &key).await.status(), 201);
    probe.acked.insert(key.clone());
    receive(&mut watcher, &key).await;
    receive(&mut newcomer, &key).await;
    load.wait_until_every_client_acks(NOTICE).await;

    // RabbitMQ.
    rabbitmq.cut().await;
    let health =
        wait_for_health(&app, "RabbitMQ down", |_, body| body["checks"]["rabbitmq"] == "down")
            .await;
    assert_eq!(health["status"], "degraded", "{health}");
    let key = probe.key("rabbit-cut-rest");
    assert_eq!(send(&app, probe.room, &probe.user, &key).await.status(), 201);
    probe.acked.insert(key.clone());
    receive(&mut watcher, &key).await;
    let key = probe.key("rabbit-cut-ws");
    assert_eq!(send_on_socket(&mut prober, &key).await["type"], "message");
    probe.acked.insert(key);
    load.wait_until_every_client_acks(NOTICE).await;
    rabbitmq.restore();
    wait_for_health(&app, "RabbitMQ back", healthy).await;
    load.wait_until_every_client_acks(NOTICE).await;

    let report = load.finish().await;
    assert_eq!(report.disconnects, 0, "nobody was disconnected: {report:?}");
    let stored = assert_ledger(report, database_url, &prefix, &probe).await;

    // Every stored message's event reached the broker (once per change: one event id).
    let ids: HashSet<i64> = stored.values().flatten().map(|(id, _)| *id).collect();
    tap.expect_message_created(&prefix, &ids).await;
    chat_tests::clean_up(&app.settings).await;
}

/// Checks the load's ledger against the database, read directly (not through
/// the proxy): every acknowledged message stored once, as acknowledged; nothing
/// stored that was not acknowledged. Returns what is stored.
async fn assert_ledger(
    report: LoadReport,
    database_url: &str,
    prefix: &str,
    probe: &Probe,
) -> HashMap<String, Vec<(i64, i64)>> {
    assert!(report.unexpected.is_empty(), "unexpected: {:#?}", report.unexpected);
    let stored = stored_messages(database_url, prefix).await;
    let mut acked: HashMap<String, (i64, i64)> = HashMap::new();
    for ack in &report.acks {
        let previous = acked.insert(ack.key.clone(), (ack.id, ack.seq));
        assert!(
            previous.is_none_or(|p| p == (ack.id, ack.seq)),
            "{} acked as two messages",
            ack.key
        );
    }
    let probes_stored: HashSet<String> =
        stored.keys().filter(|k| k.starts_with(&probe.user)).cloned().collect();
    assert_eq!(
        probes_stored, probe.acked,
        "the probes acknowledged are stored, the refused ones not"
    );
    for (key, (id, seq)) in &acked {
        let rows = stored.get(key).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(rows, [(*id, *seq)], "acknowledged {key} is stored once, as acknowledged");
    }
    let load_rows = stored.keys().filter(|k| !k.starts_with(&probe.user)).count();
    assert_eq!(load_rows, acked.len(), "the load stored nothing it was not acknowledged");
    for (key, rows) in &stored {
        assert_eq!(rows.len(), 1, "{key} is stored once");
    }
    eprintln!(
        "faults: {} messages acknowledged to the load, {} refused during the database outage",
        acked.len(),
        report.rejections
    );
    stored
}

/// Every message of users starting with `prefix`: key → [(id, seq)].
async fn stored_messages(database_url: &str, prefix: &str) -> HashMap<String, Vec<(i64, i64)>> {
    let db = Database::connect(database_url).await.expect("database connects");
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT client_msg_id, id, seq FROM messages WHERE user_id LIKE $1",
            [format!("{prefix}-%").into()],
        ))
        .await
        .expect("messages read");
    let mut stored: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for row in rows {
        let key: String = row.try_get("", "client_msg_id").expect("every load message has a key");
        stored
            .entry(key)
            .or_default()
            .push((row.try_get("", "id").unwrap(), row.try_get("", "seq").unwrap()));
    }
    stored
}

/// A stalled database (nothing answers, nothing closes: a network partition)
/// must not hang sends: they are refused with `unavailable` in bounded time —
/// including those caught mid-query — and the service recovers when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_refuses_sends_in_bounded_time() {
    let Some((app, proxies)) = TestApp::full_behind_proxies().await else { return };
    let postgres: &Proxy = &proxies.postgres;
    let prefix = run_prefix();
    let room = app.create_room("Stalled").await;
    let mut probe = Probe {
        room: app.create_room("Stall probes").await,
        user: format!("{prefix}-probe"),
        sent: 0,
        acked: HashSet::new(),
    };
    let load = Load::start(LoadSpec {
        base: app.address.clone(),
        room,
        prefix: prefix.clone(),
        rest_clients: 2,
        ws_clients: 2,
        pace: Duration::from_millis(5),
    });
    load.wait_until_every_client_acks(NOTICE).await;

    load.outage_begins();
    postgres.stall();
    let key = probe.key("stalled");
    let started = Instant::now();
    let response = send(&app, probe.room, &probe.user, &key).await;
    let took = started.elapsed();
    assert_error(response, 503, "unavailable").await;
    eprintln!("a send to a stalled database was refused after {took:?}");
    // The load's clients were mid-request when it stalled: none may hang.
    load.wait_until_every_client_is_refused(NOTICE).await;
    let health = wait_for_health(&app, "the database down", |status, _| status == 503).await;
    assert_eq!(health["checks"]["database"], "down", "{health}");

    postgres.restore();
    wait_for_health(&app, "recovery", |status, _| status == 200).await;
    let key = probe.key("back");
    first_success(&app, probe.room, &probe.user, &key).await;
    probe.acked.insert(key);
    load.wait_until_every_client_acks(NOTICE).await;
    load.outage_ends();
    load.wait_until_every_client_acks(NOTICE).await;
    assert_ledger(load.finish().await, &proxies.database_url, &prefix, &probe).await;
    chat_tests::clean_up(&app.settings).await;
}

/// A room's live stream that gave up during a database outage (a catch-up from
/// storage after a Redis reconnect failed: its sockets are closed with 1011 so
/// their clients resume) must not leave the room dead on this instance: a client
/// that reconnects at once, while another socket of the room is still closing,
/// receives what is posted once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_live_stream_gave_up_recovers_for_sockets_that_come_back() {
    let Some((app, proxies)) = TestApp::full_behind_proxies().await else { return };
    let Proxies { postgres, redis, .. } = &proxies;
    let user = format!("{}-back", run_prefix());
    let room = app.create_room("Gave up").await;
    let (mut socket, _) = app.joined_socket(room, &user).await;
    // Never reads again: the server waits (bounded) for it to answer the close.
    let (_mute, _) = app.joined_socket(room, &format!("{user}-mute")).await;

    postgres.cut().await;
    wait_for_health(&app, "the database down", |status, _| status == 503).await;
    redis.cut().await;
    wait_for_health(&app, "Redis down", |_, body| body["checks"]["redis"] == "down").await;
    redis.restore();
    // Redis back: the room's stream catches up from storage, which is down.
    assert_eq!(
        socket.until_closed().await,
        chat_tests::socket::Ended::Closed(Some(1011)),
        "the stream gave up"
    );
    drop(socket);
    let mut socket = app.socket(room, &format!("user_id={user}&since=0")).await;
    postgres.restore();
    wait_for_health(&app, "recovery", |status, _| status == 200).await;
    let key = format!("{user}-after");
    first_success(&app, room, &user, &key).await;
    // Like any client: on a close, resume where it was.
    let deadline = Instant::now() + NOTICE;
    loop {
        assert!(Instant::now() < deadline, "the message never reached a socket of the room");
        let frame = tokio::time::timeout(chat_tests::socket::FRAME_WAIT, async {
            use futures_util::StreamExt;
            socket.stream.next().await
        })
        .await
        .expect("the socket receives the message or is closed, in time");
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "message" && frame["client_msg_id"] == key.as_str() {
                    break;
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None | Some(Err(_)) => {
                socket = app.socket(room, &format!("user_id={user}&since=0")).await;
            }
            Some(Ok(_)) => {}
        }
    }
    chat_tests::clean_up(&app.settings).await;
}

/// How a server goes away: connections closed and refused, or a black hole
/// that accepts bytes and never answers.
#[derive(Debug, Clone, Copy)]
enum Outage {
    Cut,
    Stall,
}

async fn begin(proxy: &Proxy, outage: Outage) {
    match outage {
        Outage::Cut => proxy.cut().await,
        Outage::Stall => proxy.stall(),
    }
}

/// The circuit metrics of `dependency` in one scrape.
struct CircuitFigures {
    open: f64,
    opened: f64,
    probes: f64,
    /// By adapter: (calls that reached the dependency, calls skipped).
    adapters: HashMap<String, (f64, f64)>,
}

impl CircuitFigures {
    async fn of(app: &TestApp, dependency: &str, adapters: &[&str]) -> Self {
        let scrape = Scrape::of(app).await;
        let of = |name: &str| scrape.value(name, &[("dependency", dependency)]);
        let by_adapter = |name: &str, adapter: &str| {
            scrape.value(name, &[("dependency", dependency), ("adapter", adapter)])
        };
        Self {
            open: of("chat_circuit_open"),
            opened: of("chat_circuit_opened_total"),
            probes: of("chat_circuit_probes_total"),
            adapters: adapters
                .iter()
                .map(|a| {
                    let figures = (
                        by_adapter("chat_circuit_calls_total", a),
                        by_adapter("chat_circuit_skipped_total", a),
                    );
                    (a.to_string(), figures)
                })
                .collect(),
        }
    }

    fn calls(&self, adapter: &str) -> f64 {
        self.adapters[adapter].0
    }

    fn skipped(&self, adapter: &str) -> f64 {
        self.adapters[adapter].1
    }
}

/// Scrapes until the open circuit of `dependency` has been probed `more` more
/// times than in `since`: time passed in which anything not held back by the
/// circuit would have reached the dependency.
async fn probed_again(app: &TestApp, dependency: &str, since: &CircuitFigures, more: f64) {
    let deadline = Instant::now() + NOTICE;
    while CircuitFigures::of(app, dependency, &[]).await.probes < since.probes + more {
        assert!(Instant::now() < deadline, "the {dependency} circuit was not probed again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const REDIS_ADAPTERS: &[&str] = &["cache", "rate_limit", "presence", "fan_out", "unread", "health"];

/// Redis cut (or stalled): once its circuit opened — the first failed call —
/// no request reaches Redis any more (its call counts stand still while every
/// Redis-using adapter skips it), every request succeeds from the database,
/// `/health` and the metrics say the circuit is open, and all of it comes back
/// by itself when Redis does.
async fn redis_outage_is_skipped_once_detected(outage: Outage) {
    let Some((app, proxies)) = TestApp::full_behind_proxies_with(|settings| {
        // The shared message limit on, far above what the test sends: every post asks Redis.
        settings.rate_limit_messages_per_second = 10_000.0;
        settings.rate_limit_messages_burst = 100_000;
    })
    .await
    else {
        return;
    };
    let prefix = run_prefix();
    let user = format!("{prefix}-u");
    let room = app.create_room("Redis outage").await;
    let healthy = |status: u16, body: &Value| status == 200 && body["status"] == "ok";
    wait_for_health(&app, "every server ok", healthy).await;
    let (mut watcher, _) = app.joined_socket(room, &format!("{prefix}-watcher")).await;
    let mut key = 0;
    let mut round = async |app: &TestApp, stage: &str| {
        key += 1;
        let key = format!("{prefix}-{stage}-{key}");
        let posted = send(app, room, &user, &key).await;
        assert_eq!(posted.status(), 201, "{stage}: the post succeeds");
        let page: Value =
            app.get(&format!("/rooms/{room}/messages?limit=5")).await.json().await.unwrap();
        let last = page["items"].as_array().and_then(|items| items.last()).cloned();
        assert_eq!(last.unwrap_or_default()["client_msg_id"], key.as_str(), "{stage}: newest page");
        assert_eq!(app.get(&format!("/rooms/{room}")).await.status(), 200, "{stage}: the room");
        key
    };
    for _ in 0..3 {
        let key = round(&app, "before").await;
        receive(&mut watcher, &key).await;
    }

    begin(&proxies.redis, outage).await;
    // The health check's own ping is the first call to fail.
    let health = wait_for_health(&app, "the Redis circuit open", |_, body| {
        body["circuits"]["redis"] == "open"
    })
    .await;
    assert_eq!(health["checks"]["redis"], "down", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let opened = CircuitFigures::of(&app, "redis", REDIS_ADAPTERS).await;
    assert_eq!(opened.open, 1.0);

    const ROUNDS: usize = 20;
    for _ in 0..ROUNDS {
        let key = round(&app, "during").await;
        receive(&mut watcher, &key).await;
    }
    // A socket opened during the outage joins (presence) and posts (the limit).
    let (mut newcomer, _) = app.joined_socket(room, &format!("{prefix}-newcomer")).await;
    let key = format!("{prefix}-newcomer-1");
    assert_eq!(send_on_socket(&mut newcomer, &key).await["type"], "message");
    receive(&mut watcher, &key).await;
    newcomer.close().await;
    // The GrainTrade conversation: its message is stored and echoed (its old
    // Redis counter is skipped); its unread count comes from the read markers
    // in the database, so it is still answered.
    let mut legacy = app.socket_at(&format!("/ws/chat/77/{prefix}-seller")).await;
    let frame = json!({"sender_id": user, "receiver_id": format!("{prefix}-seller"), "item_id": "77", "content": "during"});
    legacy.send_json(frame).await;
    assert_eq!(legacy.next_json().await["content"], "during");
    let unread = app.get(&format!("/chat/77/unread?current_user={prefix}-seller")).await;
    assert_eq!(unread.status(), 200);
    assert_eq!(unread.json::<Value>().await.unwrap()["unread"], 1);
    probed_again(&app, "redis", &opened, 2.0).await;

    let during = CircuitFigures::of(&app, "redis", REDIS_ADAPTERS).await;
    assert_eq!((during.open, during.opened), (1.0, opened.opened), "open throughout");
    for adapter in REDIS_ADAPTERS {
        assert_eq!(
            during.calls(adapter),
            opened.calls(adapter),
            "{outage:?}: no {adapter} call reached Redis once its circuit was open"
        );
    }
    let skipped = |adapter: &str| during.skipped(adapter) - opened.skipped(adapter);
    let posts = (ROUNDS + 2) as f64; // the rounds, the socket's and the conversation's
    assert!(skipped("cache") >= ROUNDS as f64, "each post skipped its cache update");
    assert!(skipped("rate_limit") >= posts, "each post skipped the shared limit");
    assert!(skipped("presence") >= 2.0, "the socket's arrival and departure");
    assert!(skipped("fan_out") >= 1.0 && skipped("unread") >= 1.0, "the conversation's bump");
    eprintln!(
        "{outage:?} Redis: {} calls skipped, none reached it, after {} probes",
        REDIS_ADAPTERS.iter().map(|a| skipped(a)).sum::<f64>(),
        during.probes - opened.probes
    );

    proxies.redis.restore();
    wait_for_health(&app, "Redis back", |_, body| {
        body["circuits"]["redis"] == "closed" && body["checks"]["redis"] == "ok"
    })
    .await;
    for _ in 0..3 {
        let key = round(&app, "after").await;
        receive(&mut watcher, &key).await;
    }
    let after = CircuitFigures::of(&app, "redis", REDIS_ADAPTERS).await;
    assert!(after.calls("cache") > during.calls("cache"), "the cache is used again");
    assert!(after.calls("rate_limit") > during.calls("rate_limit"), "so is the shared limit");
    assert_eq!(after.open, 0.0);
    chat_tests::clean_up(&app.settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_redis_is_skipped_once_detected() {
    redis_outage_is_skipped_once_detected(Outage::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_is_skipped_once_detected() {
    redis_outage_is_skipped_once_detected(Outage::Stall).await;
}

/// RabbitMQ cut (or stalled): posts succeed (their events wait in the outbox);
/// once the relay found the broker gone its circuit is open and nothing but the
/// probe reaches the broker; when it is back every event is delivered.
async fn rabbitmq_outage_is_skipped_once_detected(outage: Outage) {
    let Some((app, proxies)) = TestApp::full_behind_proxies().await else { return };
    let prefix = run_prefix();
    let user = format!("{prefix}-u");
    let mut tap = EventTap::open(&proxies.rabbitmq_url).await;
    let room = app.create_room("Broker outage").await;
    wait_for_health(&app, "the relay connected", |status, body| {
        status == 200 && body["checks"]["rabbitmq"] == "ok"
    })
    .await;
    let mut ids = HashSet::new();
    let mut post = async |app: &TestApp, key: String| {
        let response = send(app, room, &user, &key).await;
        assert_eq!(response.status(), 201, "{key}");
        let message: Value = response.json().await.unwrap();
        ids.insert(message["id"].as_i64().unwrap());
    };
    post(&app, format!("{prefix}-before")).await;

    begin(&proxies.rabbitmq, outage).await;
    // A stalled broker is found out by the publish that gets no confirm.
    post(&app, format!("{prefix}-detect")).await;
    let health = wait_for_health(&app, "the RabbitMQ circuit open", |_, body| {
        body["circuits"]["rabbitmq"] == "open"
    })
    .await;
    assert_eq!(health["checks"]["rabbitmq"], "down", "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let opened = CircuitFigures::of(&app, "rabbitmq", &["relay"]).await;
    for n in 0..20 {
        post(&app, format!("{prefix}-during-{n}")).await;
    }
    probed_again(&app, "rabbitmq", &opened, 3.0).await;
    let during = CircuitFigures::of(&app, "rabbitmq", &["relay"]).await;
    assert_eq!((during.open, during.opened), (1.0, opened.opened), "open throughout");
    assert_eq!(
        during.calls("relay"),
        opened.calls("relay"),
        "{outage:?}: the relay neither connected nor published while the circuit was open"
    );

    proxies.rabbitmq.restore();
    wait_for_health(&app, "RabbitMQ back", |_, body| {
        body["circuits"]["rabbitmq"] == "closed" && body["checks"]["rabbitmq"] == "ok"
    })
    .await;
    post(&app, format!("{prefix}-after")).await;
    tap.expect_message_created(&prefix, &ids).await;
    let after = CircuitFigures::of(&app, "rabbitmq", &["relay"]).await;
    assert!(after.calls("relay") > during.calls("relay"), "the relay publishes again");
    chat_tests::clean_up(&app.settings).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_rabbitmq_is_skipped_once_detected() {
    rabbitmq_outage_is_skipped_once_detected(Outage::Cut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rabbitmq_is_skipped_once_detected() {
    rabbitmq_outage_is_skipped_once_detected(Outage::Stall).await;
}
