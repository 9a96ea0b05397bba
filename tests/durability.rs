//! The real `chat-room` binary, killed with SIGKILL while events are pending in
//! its outbox, delivers them after a restart.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::rabbit::EventTap;
use chat_tests::{fresh_postgres_database, reachable_rabbitmq};
use serde_json::{Value, json};

/// The service binary beside this test's (both in `target/<profile>/`).
fn binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("chat-room");
    assert!(path.exists(), "{} is missing: `cargo test --workspace` builds it", path.display());
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(database_url: &str, rabbitmq_url: &str, port: u16) -> Child {
    Command::new(binary())
        .env("DATABASE_URL", database_url)
        .env("RABBITMQ_URL", rabbitmq_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_LEVEL", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts")
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
    service.kill().expect("SIGKILL");
    service.wait().unwrap();

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
    let mut service = start(&database, &rabbitmq, port);
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
    let _ = service.kill();
    let _ = service.wait();
}
