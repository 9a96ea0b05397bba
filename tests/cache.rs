//! The cache of rooms and newest pages: served from the cache after a miss-fill,
//! always what the database holds under interleaved and concurrent writes, on
//! both the in-process cache and Redis, and harmless when Redis goes away.

use std::time::{Duration, Instant};

use chat_domain::ports::{MessageRepository, RoomRepository};
use chat_domain::{HistoryQuery, Limit, RoomId};
use chat_tests::proxy::Proxy;
use chat_tests::{TestApp, on_both_databases, reachable_redis};
use fred::prelude::*;
use serde_json::{Value, json};

on_both_databases!(random_interleaving_matches_the_database);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_interleaving_matches_the_database_with_redis() {
    let Some(app) = TestApp::postgres_with_redis().await else { return };
    random_interleaving_matches_the_database(app).await;
}

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn newest(app: &TestApp, room: i64, limit: u64) -> Value {
    let response = app.get(&format!("/rooms/{room}/messages?limit={limit}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// What the database says the newest page is, in the API's shape.
async fn truth(store: &chat_infra::SqlStore, room: i64, limit: u64) -> Value {
    let page = store
        .history(
            RoomId::new(room).unwrap(),
            HistoryQuery::Latest,
            Limit::parse(limit as i64).unwrap(),
        )
        .await
        .unwrap();
    json!({"items": page.items, "has_more": page.has_more})
}

async fn random_op(
    app: &TestApp,
    rng: &mut Rng,
    rooms: &[i64],
    store: &chat_infra::SqlStore,
    check: bool,
) {
    let room = rooms[rng.below(rooms.len() as u64) as usize];
    match rng.below(10) {
        0..=3 => {
            let response = app
                .post(
                    &format!("/rooms/{room}/messages"),
                    json!({"content": format!("m{}", rng.below(1000))}),
                )
                .await;
            assert_eq!(response.status(), 201);
        }
        4 | 5 => {
            let page = newest(app, room, 50).await;
            let items = page["items"].as_array().unwrap();
            if !items.is_empty() {
                let id = &items[rng.below(items.len() as u64) as usize]["id"];
                let key = ["ok", "%F0%9F%91%8D"][rng.below(2) as usize];
                let reaction = format!("/messages/{id}/reactions/{key}");
                let response = match rng.below(4) {
                    0 => {
                        app.patch(
                            &format!("/messages/{id}"),
                            json!({"content": format!("edit {}", rng.below(1000))}),
                        )
                        .await
                    }
                    1 => app.delete(&format!("/messages/{id}")).await,
                    // Reactions change the counts every cached message carries.
                    2 => app.request(reqwest::Method::PUT, &reaction, None).await,
                    _ => app.delete(&reaction).await,
                };
                // A concurrent writer may have deleted it first.
                assert!(
                    matches!(response.status().as_u16(), 200 | 204 | 404),
                    "{}",
                    response.status()
                );
            }
        }
        _ => {
            let limit = 1 + rng.below(50);
            let served = newest(app, room, limit).await;
            if check {
                assert_eq!(served, truth(store, room, limit).await, "room {room}, limit {limit}");
            }
        }
    }
}

async fn random_interleaving_matches_the_database(app: TestApp) {
    let store = app.uncached_store().await;
    let mut rooms = Vec::new();
    for r in 0..3 {
        rooms.push(app.create_room(&format!("random {r}")).await);
    }
    // Sequential: after every operation the served page is the database's.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..300 {
        random_op(&app, &mut rng, &rooms, &store, true).await;
    }
    // Concurrent writers and readers, then a quiet check of every room.
    let mut tasks = Vec::new();
    let app = std::sync::Arc::new(app);
    for t in 0..4u64 {
        let (app, rooms, store) = (app.clone(), rooms.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
            for _ in 0..100 {
                random_op(&app, &mut rng, &rooms, &store, false).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for &room in &rooms {
        for limit in [1, 7, 50] {
            assert_eq!(
                newest(&app, room, limit).await,
                truth(&store, room, limit).await,
                "room {room}, limit {limit}"
            );
        }
        let served: Value = app.get(&format!("/rooms/{room}")).await.json().await.unwrap();
        let stored = store.find_active(RoomId::new(room).unwrap()).await.unwrap().unwrap();
        assert_eq!(served, serde_json::to_value(&stored).unwrap());
    }
    assert!(app.cache_stats.hits() > 0, "the cache was used");
}

async fn redis_client(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    client.init().await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_miss_the_room_and_newest_page_come_from_redis() {
    let Some(app) = TestApp::postgres_with_redis().await else { return };
    let redis = redis_client(app.settings.redis_url.as_deref().unwrap()).await;
    let prefix = app.settings.redis_key_prefix.clone();
    let room = app.create_room("Cached").await;
    for n in 0..3 {
        app.post_message(room, "u", &format!("m{n}")).await;
    }
    let misses = app.cache_stats.misses();
    let first: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(
        app.cache_stats.misses(),
        misses + 1,
        "the page missed (posting had cached the room)"
    );
    let hits = app.cache_stats.hits();
    let second: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(second, first);
    assert_eq!(app.cache_stats.hits(), hits + 2, "room and page hit");

    let recent_ttl: i64 = redis.ttl(format!("{prefix}room:{room}:recent")).await.unwrap();
    assert!((1700..=1800).contains(&recent_ttl), "recent TTL {recent_ttl}");
    let room_ttl: i64 = redis.ttl(format!("{prefix}room:{room}")).await.unwrap();
    assert!((3500..=3600).contains(&room_ttl), "room TTL {room_ttl}");
    let cached: i64 = redis.zcard(format!("{prefix}room:{room}:recent")).await.unwrap();
    assert_eq!(cached, 3);

    // Proof of origin: change the cached room behind the service's back.
    let key = format!("{prefix}room:{room}");
    let mut json: Value =
        serde_json::from_str(&redis.get::<String, _>(&key).await.unwrap()).unwrap();
    json["name"] = json!("straight from Redis");
    let _: () =
        redis.set(&key, json.to_string(), Some(Expiration::EX(60)), None, false).await.unwrap();
    let served: Value = app.get(&format!("/rooms/{room}")).await.json().await.unwrap();
    assert_eq!(served["name"], "straight from Redis");

    // A write keeps the cached page right: appended in place, not dropped.
    let posted = app.post_message(room, "u", "m3").await;
    let cached: i64 = redis.zcard(format!("{prefix}room:{room}:recent")).await.unwrap();
    assert_eq!(cached, 4);
    let page: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(page["items"][3], posted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_degrades_without_stale_reads_and_recovers() {
    let Some(redis_url) = reachable_redis().await else { return };
    let address = redis_url.trim_start_matches("redis://").split('/').next().unwrap().to_owned();
    let proxy = Proxy::start(&address).await;
    let proxied = redis_url.replace(&address, &format!("127.0.0.1:{}", proxy.port));
    let Some(app) = TestApp::postgres_with_redis_at(&proxied).await else { return };
    let room = app.create_room("Outage").await;
    let message = app.post_message(room, "u", "before").await;
    let _ = app.get(&format!("/rooms/{room}/messages")).await; // fills the cache
    assert_eq!(newest(&app, room, 50).await["items"][0]["content"], "before");

    proxy.cut().await;
    let edited = app
        .patch(
            &format!("/messages/{}", message["id"]),
            json!({"content": "during", "user_id": "u"}),
        )
        .await;
    assert_eq!(edited.status(), 200, "writes succeed without Redis");
    let posted =
        app.post(&format!("/rooms/{room}/messages"), json!({"content": "also during"})).await;
    assert_eq!(posted.status(), 201);
    let page = newest(&app, room, 50).await;
    let contents: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, vec!["during", "also during"], "reads come from the database");
    assert!(app.wait_for_health("redis", "down").await);
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "degraded");

    proxy.restore();
    assert!(app.wait_for_health("redis", "ok").await, "reconnects by itself");
    // The entries filled before the outage are dropped before the cache serves again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hits = app.cache_stats.hits();
        let page = newest(&app, room, 50).await;
        let contents: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents, vec!["during", "also during"], "never the stale page");
        if app.cache_stats.hits() > hits {
            break;
        }
        assert!(Instant::now() < deadline, "the cache is used again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
