//! The real `chat-room` binary killed with SIGKILL: events pending in its
//! outbox are delivered after a restart, and under a load of REST and socket
//! clients, every message any client saw acknowledged survives, exactly once,
//! with its event on the broker.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::load::{Load, LoadSpec};
use chat_tests::rabbit::EventTap;
use chat_tests::{fresh_postgres_database, reachable_rabbitmq, service_binary};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The running binary; SIGKILLed when dropped, so a failing test leaves no
/// process behind.
struct Service(Child);

impl Service {
    fn sigkill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("the killed service is reaped");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(database_url: &str, rabbitmq_url: &str, port: u16) -> Service {
    let child = Command::new(service_binary())
        .env("DATABASE_URL", database_url)
        .env("RABBITMQ_URL", rabbitmq_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        // The load sends from one address as fast as it is answered.
        .env("RATE_LIMIT_MESSAGES_PER_SECOND", "0")
        .env("RATE_LIMIT_HTTP_PER_SECOND", "0")
        .env("RATE_LIMIT_WS_CONNECTS_PER_SECOND", "0")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    Service(child)
}

async fn wait_until_serving(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the service did not come up at {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pending_at_sigkill_are_delivered_after_restart() {
    const MESSAGES: usize = 50;
    let Some(rabbitmq) = reachable_rabbitmq().await else { return };
    let Some(database) = fresh_postgres_database().await else { return };
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    // First life: the broker is unreachable, so every event stays in the outbox.
    let mut service = start(&database, "amqp://guest:guest@127.0.0.1:1/%2f", port);
    wait_until_serving(&client, &base).await;
    let writer = format!("{}-killed", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let room: Value = client
        .post(format!("{base}/rooms"))
        .header("x-user-id", &writer)
        .json(&json!({"name": "Durable"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for n in 0..MESSAGES {
        let response = client
            .post(format!("{base}/rooms/{}/messages", room["id"]))
            .json(&json!({"content": format!("m{n}"), "user_id": writer}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    service.sigkill();

    // The backlog is observable: every event is waiting.
    let store = chat_infra::SqlStore::open(&chat_infra::DatabaseSettings {
        url: database.clone(),
        max_connections: 2,
        connect_timeout: Duration::from_secs(5),
        run_migrations: false,
        outbox: false,
    })
    .await
    .unwrap();
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!(stats.backlog, MESSAGES as u64 + 1);
    assert!(stats.oldest.is_some());

    // Second life: the broker is there; the outbox drains.
    let mut tap = EventTap::open(&rabbitmq).await;
    let _service = start(&database, &rabbitmq, port);
    let mut seqs = Vec::new();
    let mut ids = HashSet::new();
    let mut room_created = false;
    while seqs.len() < MESSAGES || !room_created {
        let event = tap.next_for(&writer).await;
        if !ids.insert(event.body["event_id"].as_str().unwrap().to_owned()) {
            continue;
        }
        match event.body["event_type"].as_str().unwrap() {
            "room_created" => room_created = true,
            "message_created" => seqs.push(event.body["seq"].as_i64().unwrap()),
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(seqs, (1..=MESSAGES as i64).collect::<Vec<_>>());

    // Marked sent once confirmed (right after publishing: wait for it), then prunable.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.outbox_stats().await.unwrap().backlog > 0 {
        assert!(Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.outbox_stats().await.unwrap().oldest, None);
    let later = chat_domain::timestamp::now() + chrono::Duration::seconds(1);
    assert_eq!(store.prune_outbox(later).await.unwrap(), MESSAGES as u64 + 1);
}

/// Waits until the clients have had `more` messages acknowledged.
async fn wait_for_acks(load: &Load, more: usize) {
    let target = load.acks() + more;
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.acks() < target {
        assert!(Instant::now() < deadline, "the load stalled at {} acks", load.acks());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_under_load() {
    const KILLS: usize = 2;
    let Some(rabbitmq) = reachable_rabbitmq().await else { return };
    let Some(database) = fresh_postgres_database().await else { return };
    let prefix = format!("d{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut tap = EventTap::open(&rabbitmq).await;
    let client = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = start(&database, &rabbitmq, port);
    wait_until_serving(&client, &base).await;
    let room: Value = client
        .post(format!("{base}/rooms"))
        .header("x-user-id", format!("{prefix}-owner"))
        .json(&json!({"name": "Killed under load"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let load = Load::start(LoadSpec {
        base: base.clone(),
        room: room["id"].as_i64().unwrap(),
        prefix: prefix.clone(),
        rest_clients: 3,
        ws_clients: 3,
        pace: Duration::ZERO,
    });
    load.wait_until_every_client_acks(Duration::from_secs(30)).await;
    for _ in 0..KILLS {
        wait_for_acks(&load, 100).await;
        load.outage_begins();
        service.sigkill();
        service = start(&database, &rabbitmq, port);
        wait_until_serving(&client, &base).await;
        load.wait_until_every_client_acks(Duration::from_secs(60)).await;
        load.outage_ends();
    }
    wait_for_acks(&load, 100).await;
    let report = load.finish().await;
    assert!(report.unexpected.is_empty(), "unexpected: {:#?}", report.unexpected);
    assert!(report.disconnects > 0, "the clients noticed the kills");

    // Every acknowledged message is stored once, as acknowledged; and since every
    // client retried until acknowledged, nothing else is stored.
    let db = Database::connect(&database).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT client_msg_id, id, seq FROM messages WHERE user_id LIKE $1",
            [format!("{prefix}-%").into()],
        ))
        .await
        .unwrap();
    let mut stored: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for row in rows {
        stored
            .entry(row.try_get("", "client_msg_id").unwrap())
            .or_default()
            .push((row.try_get("", "id").unwrap(), row.try_get("", "seq").unwrap()));
    }
    let mut acked: HashMap<&str, (i64, i64)> = HashMap::new();
    for ack in &report.acks {
        let previous = acked.insert(&ack.key, (ack.id, ack.seq));
        assert!(
            previous.is_none_or(|p| p == (ack.id, ack.seq)),
            "{} acked twice, differently",
            ack.key
        );
    }
    for (key, (id, seq)) in &acked {
        let rows = stored.get(*key).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(rows, [(*id, *seq)], "acknowledged {key} is stored once, as acknowledged");
    }
    assert_eq!(stored.len(), acked.len(), "nothing is stored that no client saw acknowledged");
    eprintln!(
        "durability: {} messages acknowledged across {KILLS} SIGKILLs ({} sends refused or cut off)",
        acked.len(),
        report.disconnects + report.rejections
    );

    // Every committed message's event reaches the broker: one event id per message.
    let ids: HashSet<i64> = stored.values().flatten().map(|(id, _)| *id).collect();
    tap.expect_message_created(&prefix, &ids).await;
}
