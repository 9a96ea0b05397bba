//! `GET /users/{user_id}/presence` against the running service: every kind of
//! socket counts once (room sockets in several rooms, the GrainTrade socket),
//! closing them leaves the user offline with `last_seen`, two instances over
//! Redis agree, and a stopped instance's sockets stop counting.

use std::time::{Duration, Instant};

use chat_api::settings::AuthMode;
use chat_tests::{TestApp, assert_error, on_every_adapter_set, test_settings};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

on_every_adapter_set!(
    an_unknown_user_is_offline,
    every_socket_counts_once_and_the_last_close_is_last_seen,
    an_invalid_user_id_is_422,
);

async fn presence(app: &TestApp, user: &str) -> Value {
    let response = app.get(&format!("/users/{user}/presence")).await;
    assert_eq!(response.status(), 200, "presence of {user}");
    response.json().await.expect("presence is JSON")
}

/// Polls until `user` has `connections` sockets (the GrainTrade socket sends
/// nothing when it closes, so there is no frame to wait for).
async fn until_connections(app: &TestApp, user: &str, connections: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = presence(app, user).await;
        if now["connections"] == connections {
            return now;
        }
        assert!(Instant::now() < deadline, "{user} never had {connections} sockets: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("a timestamp: {value}"));
    assert!(text.ends_with('Z') && text.len() == 24, "RFC 3339 UTC with millis: {text}");
    DateTime::parse_from_rfc3339(text).expect("RFC 3339").with_timezone(&Utc)
}

/// The client's clock, as the service's: whole milliseconds.
fn now_ms() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::milliseconds(1)).unwrap()
}

async fn an_unknown_user_is_offline(app: TestApp) {
    let expected =
        json!({"user_id": "nobody", "online": false, "connections": 0, "last_seen": null});
    assert_eq!(presence(&app, "nobody").await, expected);
    let slash: Value = app.get("/users/nobody/presence/").await.json().await.unwrap();
    assert_eq!(slash, expected, "with a trailing slash too");
}

async fn every_socket_counts_once_and_the_last_close_is_last_seen(app: TestApp) {
    let (first, second) = (app.create_room("First").await, app.create_room("Second").await);
    let (mut watch_first, _) = app.joined_socket(first, "watcher").await;
    let (mut watch_second, _) = app.joined_socket(second, "watcher").await;

    // `joined` comes after the socket was counted.
    let (in_first, _) = app.joined_socket(first, "alice").await;
    let now = presence(&app, "alice").await;
    assert_eq!(
        now,
        json!({"user_id": "alice", "online": true, "connections": 1, "last_seen": null})
    );
    let (in_second, _) = app.joined_socket(second, "alice").await;
    assert_eq!(presence(&app, "alice").await["connections"], 2, "one per socket, two rooms");

    // The GrainTrade socket counts too; its echo comes after it was counted.
    let mut legacy = app.socket_at("/ws/chat/77/bob?user_id=alice").await;
    legacy
        .send_json(json!({"sender_id": "alice", "receiver_id": "bob", "item_id": "77", "content": "Final price?"}))
        .await;
    assert_eq!(legacy.next_json().await["content"], "Final price?");
    assert_eq!(presence(&app, "alice").await["connections"], 3);
    assert_eq!(presence(&app, "watcher").await["connections"], 2);

    let before = now_ms();
    legacy.close().await;
    let now = until_connections(&app, "alice", 2).await;
    assert_eq!(now["online"], true);
    let closed_legacy = timestamp(&now["last_seen"]);
    assert!(closed_legacy >= before, "{closed_legacy} ≥ {before}");

    // `user_left` in a room comes after the socket was forgotten.
    in_second.close().await;
    assert_eq!(watch_second.next_of_type("user_left").await["user_id"], "alice");
    let now = presence(&app, "alice").await;
    assert_eq!((&now["online"], &now["connections"]), (&json!(true), &json!(1)));
    assert!(timestamp(&now["last_seen"]) >= closed_legacy, "while online: the close before");

    let before = now_ms();
    in_first.close().await;
    assert_eq!(watch_first.next_of_type("user_left").await["user_id"], "alice");
    let now = presence(&app, "alice").await;
    assert_eq!((&now["online"], &now["connections"]), (&json!(false), &json!(0)), "{now}");
    let last_seen = timestamp(&now["last_seen"]);
    assert!(last_seen >= before && last_seen <= now_ms(), "{last_seen} after {before}");
    assert_eq!(now.as_object().map(|o| o.len()), Some(4), "exactly the four fields: {now}");
}

async fn an_invalid_user_id_is_422(app: TestApp) {
    let long = "u".repeat(65);
    assert_error(app.get(&format!("/users/{long}/presence")).await, 422, "validation_failed").await;
    assert_error(app.get("/users/%20/presence").await, 422, "validation_failed").await;
    assert_eq!(presence(&app, &"u".repeat(64)).await["online"], false, "64 characters are fine");
}

const SECRET: &str = "presence-test-secret";

fn token(sub: &str) -> String {
    let exp = Utc::now().timestamp() + 600;
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// With authentication required a token is needed, and any user's may ask
/// about any other user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authentication_any_caller_with_a_token() {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    let mut settings = test_settings(&format!("sqlite://{}?mode=rwc", file.display()));
    settings.auth_mode = Some(AuthMode::Required);
    settings.jwt_secret = Some(SECRET.to_owned());
    let app = TestApp::start_with(settings).await;
    assert_error(app.get("/users/alice/presence").await, 401, "unauthorized").await;

    let room = {
        let created = app
            .client
            .post(app.url("/rooms"))
            .bearer_auth(token("alice"))
            .json(&json!({"name": "Secure"}))
            .send()
            .await
            .unwrap();
        let room: Value = created.json().await.unwrap();
        room["id"].as_i64().unwrap()
    };
    let mut socket = app.socket(room, &format!("token={}", token("alice"))).await;
    assert_eq!(socket.next_json().await["type"], "joined");
    let asked = app
        .client
        .get(app.url("/users/alice/presence"))
        .bearer_auth(token("bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    let asked: Value = asked.json().await.unwrap();
    assert_eq!((&asked["online"], &asked["connections"]), (&json!(true), &json!(1)));
    socket.close().await;
    app.shutdown().await;
}

/// Two instances over one Redis: a socket on either is seen from both, and the
/// sockets of an instance that stopped refreshing its liveness key are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_see_each_others_sockets() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Across").await;
    let (mut watcher, _) = b.joined_socket(room, "watcher").await;
    let (on_a, _) = a.joined_socket(room, "alice").await;
    assert_eq!(presence(&b, "alice").await["connections"], 1, "A's socket, seen on B");
    let mut legacy = b.socket_at("/ws/chat/77/bob?user_id=alice").await;
    legacy
        .send_json(
            json!({"sender_id": "alice", "receiver_id": "bob", "item_id": "77", "content": "hi"}),
        )
        .await;
    assert_eq!(legacy.next_json().await["content"], "hi");
    assert_eq!(presence(&a, "alice").await["connections"], 2, "B's socket, seen on A");
    legacy.close().await;
    until_connections(&a, "alice", 1).await;

    let before = now_ms();
    on_a.close().await;
    assert_eq!(watcher.next_of_type("user_left").await["user_id"], "alice");
    for app in [&a, &b] {
        let now = presence(app, "alice").await;
        assert_eq!(now["online"], false, "{now}");
        assert!(timestamp(&now["last_seen"]) >= before);
    }

    // A socket left behind by an instance that is gone (no liveness key).
    let redis = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(a.settings.redis_url.as_deref().unwrap()).unwrap(),
    )
    .build()
    .unwrap();
    use fred::prelude::*;
    redis.init().await.unwrap();
    let sockets = format!("{}user:carol:sockets", a.settings.redis_key_prefix);
    let _: i64 = redis.hset(&sockets, ("left-behind", "crashed-instance")).await.unwrap();
    let before = now_ms();
    let now = presence(&b, "carol").await;
    assert_eq!(now["connections"], 0, "a stopped instance's socket does not count: {now}");
    assert!(timestamp(&now["last_seen"]) >= before, "found closed now: {now}");
    let left: i64 = redis.hlen(&sockets).await.unwrap();
    assert_eq!(left, 0, "and is forgotten");
    let _ = redis.quit().await;
    chat_tests::clean_up(&a.settings).await;
}
