//! Two service instances on different ports sharing Postgres and Redis act as
//! one service: messages, order, presence (also coalesced) and deletions cross
//! between them.

use std::collections::HashSet;

use chat_tests::TestApp;
use chat_tests::socket::Ended;
use fred::prelude::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_act_as_one() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    assert_ne!(a.address, b.address);
    let health: Value = a.get("/health").await.json().await.unwrap();
    assert_eq!(health["checks"]["redis"], "ok");
    assert_eq!(health["status"], "ok");

    let room = a.create_room("Across").await;
    let (mut alice, _) = a.joined_socket(room, "alice").await;
    let (mut bob, joined) = b.joined_socket(room, "bob").await;
    let present: HashSet<&str> = joined["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(present, HashSet::from(["alice", "bob"]), "presence is the union of instances");
    let arrival = alice.next_of_type("user_joined").await;
    assert_eq!(arrival["user_id"], "bob");
    for app in [&a, &b] {
        let users: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
        assert_eq!(users["items"].as_array().unwrap().len(), 2, "{users}");
    }
    // Socket sessions: connection → user, room, instance, in Redis.
    let redis = fred::prelude::Builder::from_config(
        fred::prelude::Config::from_url(a.settings.redis_url.as_deref().unwrap()).unwrap(),
    )
    .build()
    .unwrap();
    redis.init().await.unwrap();
    let prefix = &a.settings.redis_key_prefix;
    let sessions: Vec<String> =
        redis.custom(fred::cmd!("KEYS"), vec![format!("{prefix}session:*")]).await.unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let mut users = HashSet::new();
    for key in &sessions {
        let session: std::collections::HashMap<String, String> = redis.hgetall(key).await.unwrap();
        assert_eq!(session["room"], room.to_string());
        assert!(!session["instance"].is_empty() && session["since"].ends_with('Z'));
        let ttl: i64 = redis.ttl(key).await.unwrap();
        assert!(ttl > 0 && ttl <= 300, "session TTL {ttl}");
        users.insert(session["user"].clone());
    }
    assert_eq!(users, HashSet::from(["alice".to_owned(), "bob".to_owned()]));

    alice.send_json(json!({"type": "message", "content": "from A"})).await;
    let on_b = bob.next_of_type("message").await;
    assert_eq!(on_b["content"], "from A");
    assert_eq!(alice.next_of_type("message").await, on_b);
    bob.send_json(json!({"type": "typing"})).await;
    assert_eq!(
        alice.next_json().await,
        json!({"type": "typing", "room_id": room, "user_id": "bob"})
    );

    // Senders on both instances at once: every socket sees one stream, in seq order.
    const EACH: usize = 15;
    let mut sockets = Vec::new();
    for (i, app) in [&a, &a, &b, &b].into_iter().enumerate() {
        sockets.push(app.joined_socket(room, &format!("sender{i}")).await.0);
    }
    let total = sockets.len() * EACH;
    let mut tasks = Vec::new();
    for (i, mut socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                socket.send_json(json!({"type": "message", "content": format!("{i}:{n}")})).await;
            }
            let mut seqs = Vec::new();
            while seqs.len() < total {
                let frame = socket.next_json().await;
                if frame["type"] == "message" && frame["seq"].as_i64().unwrap() > 1 {
                    seqs.push(frame["seq"].as_i64().unwrap());
                }
            }
            seqs
        }));
    }
    let expected: Vec<i64> = (2..2 + total as i64).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), expected, "same order on every instance");
    }
    for socket in [&mut alice, &mut bob] {
        let mut seqs = Vec::new();
        while seqs.len() < total {
            let frame = socket.next_json().await;
            if frame["type"] == "message" {
                seqs.push(frame["seq"].as_i64().unwrap());
            }
        }
        assert_eq!(seqs, expected);
    }

    // A deletion through B reaches A; a room deletion through A closes B's sockets.
    let deleted = b
        .client
        .delete(b.url(&format!("/messages/{}", on_b["id"])))
        .header("x-user-id", "anonymous")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(alice.next_of_type("message_deleted").await["id"], on_b["id"]);

    bob.close().await;
    let left = alice.next_of_type("user_left").await;
    assert_eq!(left["user_id"], "bob");
    let sessions: Vec<String> =
        redis.custom(fred::cmd!("KEYS"), vec![format!("{prefix}session:*")]).await.unwrap();
    assert_eq!(sessions.len(), 1, "bob's session is gone: {sessions:?}");

    let (mut carol, _) = b.joined_socket(room, "carol").await;
    assert_eq!(a.delete(&format!("/rooms/{room}")).await.status(), 204);
    assert_eq!(carol.next_of_type("room_deleted").await["room_id"], room);
    assert_eq!(carol.until_closed().await, Ended::Closed(Some(4404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_conversations_cross_instances() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    // The old service's counter keys have no prefix: start from zero.
    let _ = b.delete("/chat/501/unread?current_user=buyer").await;
    let mut seller = a.socket_at("/ws/chat/501/buyer?user_id=seller").await;
    let mut buyer = b.socket_at("/ws/chat/501/seller?user_id=buyer").await;
    seller
        .send_json(json!({"sender_id": "seller", "receiver_id": "buyer", "item_id": "501", "content": "from A"}))
        .await;
    assert_eq!(seller.next_json().await["content"], "from A");
    let on_b = buyer.next_json().await;
    assert_eq!(on_b["sender_id"], "seller");
    assert_eq!(on_b["content"], "from A", "the other party on another instance gets it live");
    let unread: Value = b.get("/chat/501/unread?current_user=buyer").await.json().await.unwrap();
    assert_eq!(unread["unread"], 1, "counters are shared through Redis");
    let _ = b.delete("/chat/501/unread?current_user=buyer").await;
}

/// Joins and departures on instance A reach a room that B coalesces (its
/// threshold 0: every room) in B's `presence` frames, never as `user_joined`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_from_another_instance_is_coalesced() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a
        .another(|s| {
            s.ws_presence_coalesce_above = 0;
            s.ws_presence_interval_ms = 50;
        })
        .await;
    let room = a.create_room("Coalesced across").await;
    let (mut watcher, _) = b.joined_socket(room, "watcher").await;
    let (visitor, _) = a.joined_socket(room, "visitor").await;
    presence_names(&mut watcher, "joined", "visitor").await;
    visitor.close().await;
    presence_names(&mut watcher, "left", "visitor").await;
    chat_tests::clean_up(&a.settings).await;
}

/// Reads `presence` frames (each valid against the OpenAPI `ServerFrame`
/// schema; any other frame fails) until one names `user` in its `list`. Frames
/// before it may name others (a coalesced frame reaches the joiner too).
async fn presence_names(socket: &mut chat_tests::socket::Socket, list: &str, user: &str) {
    use chat_tests::contract::Contract;
    let contract = Contract::new(
        serde_json::to_value(chat_api::http::openapi(chat_api::settings::AuthMode::Disabled))
            .unwrap(),
    );
    loop {
        let frame = socket.next_json().await;
        assert_eq!(frame["type"], "presence", "the room is coalesced: {frame}");
        contract.validate(&Contract::component("ServerFrame"), &frame, "presence frame");
        if frame[list].as_array().unwrap().contains(&json!(user)) {
            return;
        }
    }
}
