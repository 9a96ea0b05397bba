//! `/metrics`: the Prometheus figures move as the service works — messages
//! received over REST and sockets, persisted and delivered (with their latency),
//! requests by route template and status, errors by code, open sockets, cache
//! hits and misses, the database pool, and the outbox relay.

use std::time::{Duration, Instant};

use chat_tests::metrics::Scrape;
use chat_tests::rabbit::EventTap;
use chat_tests::{TestApp, on_both_databases, reachable_rabbitmq};
use serde_json::json;

/// Scrapes until `done` holds, for at most 15 s; returns the last scrape.
async fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scrape = Scrape::of(app).await;
        if done(&scrape) || Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const POSTS: &[(&str, &str)] =
    &[("method", "POST"), ("route", "/rooms/{room_id}/messages"), ("status", "201")];

async fn counters_move_as_messages_flow(app: TestApp) {
    let room = app.create_room("Metered").await;
    let before = Scrape::of(&app).await;
    let (mut socket, _) = app.joined_socket(room, "alice").await;
    let open = Scrape::of(&app).await;
    assert_eq!(open.value("chat_sockets_open", &[("kind", "room")]), 1.0);

    for n in 0..3 {
        app.post_message(room, "bob", &format!("rest {n}")).await;
    }
    for n in 0..2 {
        socket.send_json(json!({"type": "message", "content": format!("socket {n}")})).await;
    }
    socket.send_text("not json").await;
    let mut messages = 0;
    let mut errors = 0;
    while messages < 5 || errors < 1 {
        match socket.next_json().await["type"].as_str() {
            Some("message") => messages += 1,
            Some("error") => errors += 1,
            _ => {}
        }
    }
    assert_eq!(app.get("/rooms/987654").await.status(), 404);
    for _ in 0..2 {
        assert_eq!(app.get(&format!("/rooms/{room}/messages")).await.status(), 200);
    }

    // A frame is counted once the write finished: the client may read it first.
    let delivered = before.value("chat_messages_delivered_total", &[]) + 5.0;
    let after =
        scrape_until(&app, |s| s.value("chat_messages_delivered_total", &[]) >= delivered).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    assert_eq!(delta("chat_messages_received_total", &[("source", "http")]), 3.0);
    assert_eq!(delta("chat_messages_received_total", &[("source", "socket")]), 2.0);
    assert_eq!(delta("chat_messages_persisted_total", &[]), 5.0);
    assert_eq!(delta("chat_messages_delivered_total", &[]), 5.0);
    assert_eq!(delta("chat_message_delivery_seconds_count", &[]), 5.0);
    assert!(after.value("chat_message_delivery_seconds_bucket", &[("le", "+Inf")]) >= 5.0);
    assert_eq!(delta("chat_http_requests_total", POSTS), 3.0);
    assert_eq!(delta("chat_http_request_duration_seconds_count", POSTS), 3.0);
    assert_eq!(delta("chat_errors_total", &[("surface", "http"), ("code", "not_found")]), 1.0);
    assert_eq!(delta("chat_errors_total", &[("surface", "socket"), ("code", "invalid_json")]), 1.0);
    let lookups = delta("chat_cache_hits_total", &[]) + delta("chat_cache_misses_total", &[]);
    assert!(lookups >= 2.0, "history reads go through the cache: {lookups}");
    assert!(delta("chat_cache_hits_total", &[]) >= 1.0, "the second newest page is a hit");
    assert_eq!(after.value("chat_db_pool_max_connections", &[]), 10.0);
    assert!(after.has("chat_db_pool_connections"));
    // Routes are templates, never raw paths (bounded label values).
    assert!(
        after.routes().iter().all(|r| !r.chars().any(|c| c.is_ascii_digit())),
        "{:?}",
        after.routes()
    );
    assert!(after.value("chat_http_requests_total", &[("route", "unmatched")]) == 0.0);

    socket.close().await;
    let closed =
        scrape_until(&app, |s| s.value("chat_sockets_open", &[("kind", "room")]) == 0.0).await;
    assert_eq!(closed.value("chat_sockets_open", &[("kind", "room")]), 0.0);
}

on_both_databases!(counters_move_as_messages_flow);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_relay_is_measured() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let _tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let before = Scrape::of(&app).await;
    assert!(before.has("chat_outbox_backlog") && before.has("chat_outbox_oldest_age_seconds"));
    let room = app.create_room("Relayed").await;
    app.post_message(room, "carol", "to the broker").await;
    let published = before.value("chat_outbox_published_total", &[]) + 2.0;
    let after =
        scrape_until(&app, |s| s.value("chat_outbox_published_total", &[]) >= published).await;
    assert!(
        after.value("chat_outbox_published_total", &[]) >= published,
        "room_created and message_created confirmed"
    );
    assert_eq!(after.value("chat_outbox_publish_failures_total", &[]), 0.0);
}
