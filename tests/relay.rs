//! The outbox relay on several instances (Postgres + RabbitMQ): the rooms'
//! events are split into partitions that the instances' relays take a few at a
//! time, so four relays share the work and publish each event once in room
//! order, and a relay stuck on its broker holds back only its partitions.

use std::collections::{HashMap, HashSet};

use chat_tests::metrics::Scrape;
use chat_tests::proxy::Proxy;
use chat_tests::rabbit::EventTap;
use chat_tests::{TestApp, rabbitmq_address, reachable_rabbitmq};
use serde_json::json;

fn unique_user(role: &str) -> String {
    format!("{}-{role}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn post(app: &TestApp, room: i64, user: &str, content: &str) {
    let response = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .json(&json!({"content": content, "user_id": user}))
        .send()
        .await
        .expect("request is sent");
    assert_eq!(response.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_relays_publish_each_event_once_in_room_order() {
    const MESSAGES: usize = 400;
    const ROOMS: usize = 16;
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(first) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let mut apps = vec![first];
    for _ in 1..4 {
        let next = apps[0].another(|_| {}).await;
        apps.push(next);
    }
    let writer = unique_user("writer");
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(apps[0].create_room(&format!("relay {r}")).await);
    }
    let apps = std::sync::Arc::new(apps);
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (apps, writer, rooms) = (apps.clone(), writer.clone(), rooms.clone());
        tasks.push(tokio::spawn(async move {
            for n in (w..MESSAGES).step_by(4) {
                post(&apps[n % 4], rooms[n % ROOMS], &writer, &format!("m{n}")).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("posting ends");
    }

    let mut seen_ids = HashSet::new();
    let mut seqs_by_room: HashMap<i64, Vec<i64>> = HashMap::new();
    while seen_ids.len() < MESSAGES {
        let event = tap.next_for(&writer).await;
        assert_eq!(event.body["event_type"], "message_created");
        let id = event.body["event_id"].as_str().expect("event_id").to_owned();
        assert!(seen_ids.insert(id), "published once: {}", event.body);
        seqs_by_room
            .entry(event.body["room_id"].as_i64().expect("room_id"))
            .or_default()
            .push(event.body["seq"].as_i64().expect("seq"));
    }
    for room in &rooms {
        let seqs = &seqs_by_room[room];
        assert_eq!(*seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "room {room} in order");
    }
    // No second copy comes later either: the next event of the writer is a sentinel.
    post(&apps[0], rooms[0], &writer, "sentinel").await;
    let next = tap.next_for(&writer).await;
    assert_eq!(next.body["content"], "sentinel", "nothing was published twice");

    let mut relaying = 0;
    for app in apps.iter() {
        if Scrape::of(app).await.value("chat_outbox_published_total", &[]) > 0.0 {
            relaying += 1;
        }
    }
    assert!(relaying >= 2, "the relays shared the work ({relaying} of 4 published)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stuck_on_its_broker_holds_back_only_its_partitions() {
    const ROOMS: i64 = 16;
    let Some(url) = reachable_rabbitmq().await else { return };
    let proxy = Proxy::start(&rabbitmq_address(&url)).await;
    let proxied = url.replace(&rabbitmq_address(&url), &format!("127.0.0.1:{}", proxy.port));
    let mut tap = EventTap::open(&url).await;
    let Some(stuck) = TestApp::postgres_with_rabbitmq(&proxied).await else { return };
    assert!(stuck.wait_for_health("rabbitmq", "ok").await, "the relay connects");
    let healthy = stuck.another(|settings| settings.rabbitmq_url = Some(url.clone())).await;
    let writer = unique_user("writer");
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(stuck.create_room(&format!("partition {r}")).await);
    }
    // Room ids 1..=16 fall in all 16 partitions; the stuck relay can hold 4.
    proxy.stall();
    // At once, so that they are likely committed together and the stuck relay
    // finds every partition busy when it claims.
    let posts = rooms.iter().map(|room| post(&stuck, *room, &writer, "hello"));
    futures::future::join_all(posts).await;
    let mut rooms_heard = HashSet::new();
    while rooms_heard.len() < 12 {
        let event = tap.next_for(&writer).await;
        rooms_heard.insert(event.body["room_id"].as_i64().expect("room_id"));
    }
    proxy.restore();
    while rooms_heard.len() < ROOMS as usize {
        let event = tap.next_for(&writer).await;
        rooms_heard.insert(event.body["room_id"].as_i64().expect("room_id"));
    }
    healthy.shutdown().await;
    stuck.shutdown().await;
}
