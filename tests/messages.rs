//! Messages over REST, on SQLite and on Postgres: PROTOCOL.md's Messages table, the
//! `seq` guarantees under concurrency, idempotency and history paging.

use std::collections::BTreeSet;

use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use reqwest::Method;
use serde_json::{Value, json};

on_every_adapter_set!(
    post_returns_the_full_message,
    client_msg_id_makes_a_repeat_harmless,
    content_and_type_are_validated,
    history_pages_by_seq,
    edit_is_for_the_author_only,
    delete_is_for_author_creator_or_moderator,
    concurrent_writers_get_gapless_unique_seqs,
    paging_walks_ten_thousand_messages_both_ways,
    system_messages_need_an_admin;
    not_on_full: without_a_broker_the_outbox_stays_empty,
);

async fn without_a_broker_the_outbox_stays_empty(app: TestApp) {
    use sea_orm::{ConnectionTrait, Statement};
    let room = app.create_room("Quiet").await;
    let message = app.post_message(room, "anonymous", "no events please").await;
    let path = format!("/messages/{}", message["id"]);
    assert_eq!(app.patch(&path, json!({"content": "edited"})).await.status(), 200);
    assert_eq!(app.delete(&path).await.status(), 204);
    assert_eq!(app.delete(&format!("/rooms/{room}")).await.status(), 204);
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM outbox",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
}

async fn post_returns_the_full_message(app: TestApp) {
    let room = app.create_room("Wheat").await;
    let response = app
        .post(
            &format!("/rooms/{room}/messages"),
            json!({"content": "Hello, everyone!", "user_id": "user_123"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/messages/"));
    let message: Value = response.json().await.unwrap();
    assert!(message["id"].as_i64().unwrap() > 0);
    assert_eq!(message["room_id"], room);
    assert_eq!(message["seq"], 1);
    assert_eq!(message["user_id"], "user_123");
    assert_eq!(message["content"], "Hello, everyone!");
    assert_eq!(message["message_type"], "text");
    assert_eq!(message["client_msg_id"], Value::Null);
    assert_eq!(message["edited"], false);
    assert_eq!(message["reply_to"], Value::Null);
    assert_eq!(message["reactions"], json!({}));
    assert!(message["created_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&str> = message.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 12, "exactly PROTOCOL.md's fields: {keys:?}");

    let fetched: Value =
        app.get(&format!("/messages/{}", message["id"])).await.json().await.unwrap();
    assert_eq!(fetched, message);

    // Identity falls back to X-User-Id, then to "anonymous"; content is kept verbatim.
    let html = "<img src=x onerror=alert(1)>\n\tПривіт";
    let by_header = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages/")))
        .header("x-user-id", "trader")
        .json(&json!({"content": html}))
        .send()
        .await
        .unwrap();
    let by_header: Value = by_header.json().await.unwrap();
    assert_eq!(by_header["user_id"], "trader");
    assert_eq!(by_header["content"], html);
    assert_eq!(by_header["seq"], 2);
    let anonymous = app.post(&format!("/rooms/{room}/messages"), json!({"content": "hi"})).await;
    let anonymous: Value = anonymous.json().await.unwrap();
    assert_eq!(anonymous["user_id"], "anonymous");

    assert_error(app.get("/messages/987654").await, 404, "not_found").await;
    assert_error(app.get("/messages/nope").await, 404, "not_found").await;
    let to_missing = app.post("/rooms/987654/messages", json!({"content": "hi"})).await;
    assert_error(to_missing, 404, "not_found").await;
}

async fn client_msg_id_makes_a_repeat_harmless(app: TestApp) {
    let room = app.create_room("Idempotent").await;
    let path = format!("/rooms/{room}/messages");
    let body = json!({"content": "offer 210", "user_id": "alice", "client_msg_id": "c-1"});
    let first = app.post(&path, body.clone()).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["client_msg_id"], "c-1");

    let again = app.post(&path, body.clone()).await;
    assert_eq!(again.status(), 200, "a repeat returns the original");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);

    // Concurrent repeats still store one message.
    let repeats = (0..10).map(|_| {
        app.post(&path, json!({"content": "burst", "user_id": "alice", "client_msg_id": "c-2"}))
    });
    let statuses: Vec<u16> =
        futures::future::join_all(repeats).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 9, "{statuses:?}");

    // The key belongs to its author: another user's c-1 is a new message.
    let other =
        app.post(&path, json!({"content": "mine", "user_id": "bob", "client_msg_id": "c-1"})).await;
    assert_eq!(other.status(), 201);

    let history: Value = app.get(&path).await.json().await.unwrap();
    let seqs: Vec<i64> =
        history["items"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3], "no duplicate stored, no seq burnt by a repeat");

    let too_long = json!({"content": "x", "client_msg_id": "k".repeat(65)});
    assert_error(app.post(&path, too_long).await, 422, "validation_failed").await;
}

async fn content_and_type_are_validated(app: TestApp) {
    let room = app.create_room("Validation").await;
    let path = format!("/rooms/{room}/messages");
    for (body, field) in [
        (json!({"content": ""}), "content"),
        (json!({"content": "  \n\t "}), "content"),
        (json!({"content": "ж".repeat(4001)}), "content"),
        (json!({"content": "bell\u{7}"}), "content"),
        (json!({"content": "null\u{0}byte"}), "content"),
        (json!({}), "content"),
        (json!({"content": 5}), "content"),
        (json!({"content": "ok", "message_type": "shout"}), "message_type"),
        (json!({"content": "ok", "user_id": ""}), "user_id"),
        (json!({"content": "ok", "user_id": "u".repeat(65)}), "user_id"),
    ] {
        let error =
            assert_error(app.post(&path, body.clone()).await, 422, "validation_failed").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message:?} names {field} for {body}");
    }
    let longest = app.post(&path, json!({"content": "ж".repeat(4000)})).await;
    assert_eq!(longest.status(), 201);
    let history: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "nothing invalid was stored");

    let edit = app
        .patch(&format!("/messages/{}", history["items"][0]["id"]), json!({"content": " "}))
        .await;
    assert_error(edit, 422, "validation_failed").await;
}

async fn history_pages_by_seq(app: TestApp) {
    let room = app.create_room("History").await;
    for i in 1..=7 {
        app.post_message(room, "u", &format!("m{i}")).await;
    }
    let app = &app;
    let page = |query: &str| {
        let path = format!("/rooms/{room}/messages{query}");
        async move {
            let response = app.get(&path).await;
            assert_eq!(response.status(), 200, "{path}");
            let body: Value = response.json().await.unwrap();
            let seqs: Vec<i64> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (seqs, body["has_more"].as_bool().unwrap())
        }
    };
    assert_eq!(page("").await, (vec![1, 2, 3, 4, 5, 6, 7], false));
    assert_eq!(page("?limit=3").await, (vec![5, 6, 7], true));
    assert_eq!(page("?limit=3&before=5").await, (vec![2, 3, 4], true));
    assert_eq!(page("?limit=3&before=2").await, (vec![1], false));
    assert_eq!(page("?limit=3&after=0").await, (vec![1, 2, 3], true));
    assert_eq!(page("?limit=3&after=4").await, (vec![5, 6, 7], false));
    assert_eq!(page("?after=7").await, (vec![], false));
    assert_eq!(page("?limit=7").await, (vec![1, 2, 3, 4, 5, 6, 7], false));
    // Both bounds: the first `limit` strictly between them.
    assert_eq!(page("?after=1&before=5").await, (vec![2, 3, 4], false));
    assert_eq!(page("?limit=2&after=1&before=5").await, (vec![2, 3], true));
    assert_eq!(page("?limit=3&after=1&before=5").await, (vec![2, 3, 4], false));
    assert_eq!(page("?limit=3&after=4&before=50").await, (vec![5, 6, 7], false));
    assert_eq!(page("?after=3&before=4").await, (vec![], false));
    assert_eq!(page("?after=5&before=2").await, (vec![], false));
    assert_eq!(page(&format!("?after={}&before=1", i64::MAX)).await, (vec![], false));
    assert_eq!(page(&format!("?after={}", i64::MAX)).await, (vec![], false));
    assert_eq!(page(&format!("?before={}", i64::MAX)).await.0.len(), 7);

    let base = format!("/rooms/{room}/messages");
    assert_error(app.get(&format!("{base}?limit=0")).await, 422, "validation_failed").await;
    assert_error(app.get(&format!("{base}?limit=101")).await, 422, "validation_failed").await;
    assert_error(app.get(&format!("{base}?limit=many")).await, 400, "bad_request").await;
    assert_error(app.get(&format!("{base}?before=x")).await, 400, "bad_request").await;
    assert_error(app.get(&format!("{base}?before=0&after=1")).await, 422, "validation_failed")
        .await;
    assert_error(app.get("/rooms/55555/messages").await, 404, "not_found").await;
}

async fn edit_is_for_the_author_only(app: TestApp) {
    let room = app.create_room("Edits").await;
    let message = app.post_message(room, "alice", "price 200").await;
    let path = format!("/messages/{}", message["id"]);

    let by_bob = app
        .client
        .patch(app.url(&path))
        .header("x-user-id", "bob")
        .json(&json!({"content": "hacked"}))
        .send()
        .await
        .unwrap();
    assert_error(by_bob, 403, "forbidden").await;

    let by_alice = app
        .client
        .patch(app.url(&path))
        .header("x-user-id", "alice")
        .json(&json!({"content": "price 210"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_alice.status(), 200);
    let edited: Value = by_alice.json().await.unwrap();
    assert_eq!(edited["content"], "price 210");
    assert_eq!(edited["edited"], true);
    assert_eq!(edited["seq"], message["seq"]);
    assert_eq!(edited["created_at"], message["created_at"]);
    assert!(edited["updated_at"].as_str().unwrap() >= message["updated_at"].as_str().unwrap());

    let fetched: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fetched, edited);
    assert_error(app.patch("/messages/999999", json!({"content": "x"})).await, 404, "not_found")
        .await;
}

async fn delete_is_for_author_creator_or_moderator(app: TestApp) {
    let created = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "owner")
        .json(&json!({"name": "Moderated"}))
        .send()
        .await
        .unwrap();
    let room: Value = created.json().await.unwrap();
    let room = room["id"].as_i64().unwrap();
    let m1 = app.post_message(room, "alice", "one").await;
    let m2 = app.post_message(room, "alice", "two").await;
    let m3 = app.post_message(room, "alice", "three").await;
    let m4 = app.post_message(room, "alice", "four").await;

    let delete_as = |id: &Value, user: &str, roles: &str| {
        let request = app
            .client
            .request(Method::DELETE, app.url(&format!("/messages/{id}")))
            .header("x-user-id", user)
            .header("x-user-roles", roles);
        async move { request.send().await.unwrap() }
    };
    assert_error(delete_as(&m1["id"], "mallory", "").await, 403, "forbidden").await;
    assert_eq!(delete_as(&m1["id"], "alice", "").await.status(), 204);
    assert_eq!(delete_as(&m2["id"], "owner", "").await.status(), 204);
    assert_eq!(delete_as(&m3["id"], "mod", "moderator").await.status(), 204);
    assert_error(delete_as(&m3["id"], "alice", "").await, 404, "not_found").await;
    assert_error(app.get(&format!("/messages/{}", m1["id"])).await, 404, "not_found").await;

    let history: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    let ids: Vec<&Value> = history["items"].as_array().unwrap().iter().map(|m| &m["id"]).collect();
    assert_eq!(ids, vec![&m4["id"]], "history omits deleted messages");
    let next = app.post_message(room, "alice", "five").await;
    assert_eq!(next["seq"], 5, "deletion never reuses a seq");
}

async fn concurrent_writers_get_gapless_unique_seqs(app: TestApp) {
    let room = app.create_room("Busy").await;
    let path = format!("/rooms/{room}/messages");
    let writers = (0..50).map(|i| {
        let client = app.client.clone();
        let url = app.url(&path);
        tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&json!({"content": format!("bid {i}"), "user_id": format!("trader{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let message: Value = response.json().await.unwrap();
            message["seq"].as_i64().unwrap()
        })
    });
    let mut seqs = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        seqs.push(writer.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>(), "seqs 1..=50, no duplicate, no gap");

    let history: Value = app.get(&format!("{path}?limit=100")).await.json().await.unwrap();
    let stored: Vec<i64> =
        history["items"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(stored, (1..=50).collect::<Vec<i64>>());
}

async fn paging_walks_ten_thousand_messages_both_ways(app: TestApp) {
    const TOTAL: i64 = 10_000;
    let room = app.create_room("Archive").await;
    seed_messages(&app, room, TOTAL).await;

    let app = &app;
    let fetch = |query: String| {
        let path = format!("/rooms/{room}/messages?limit=100&{query}");
        async move {
            let body: Value = app.get(&path).await.json().await.unwrap();
            let seqs: Vec<i64> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (seqs, body["has_more"].as_bool().unwrap())
        }
    };

    let mut forward: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let (seqs, has_more) = fetch(format!("after={after}")).await;
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ascending page");
        forward.extend(&seqs);
        match (has_more, seqs.last()) {
            (true, Some(last)) => after = *last,
            _ => break,
        }
    }
    assert_eq!(forward, (1..=TOTAL).collect::<Vec<i64>>());

    let (newest, mut has_more) = fetch(String::new()).await;
    let mut backward: Vec<i64> = newest.clone();
    let mut before = newest[0];
    while has_more {
        let (seqs, more) = fetch(format!("before={before}")).await;
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "ascending page");
        before = seqs[0];
        backward.splice(0..0, seqs);
        has_more = more;
    }
    assert_eq!(backward, (1..=TOTAL).collect::<Vec<i64>>());
    assert_eq!(backward.iter().collect::<BTreeSet<_>>().len(), TOTAL as usize);
}

async fn system_messages_need_an_admin(app: TestApp) {
    let room = app.create_room("Announcements").await;
    let path = format!("/rooms/{room}/messages");
    let body = json!({"content": "Price changed to 210 UAH/kg", "message_type": "system"});
    assert_error(app.post(&path, body.clone()).await, 403, "forbidden").await;
    let admin = app
        .client
        .post(app.url(&path))
        .header("x-user-id", "ops")
        .header("x-user-roles", "admin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 201);
    let message: Value = admin.json().await.unwrap();
    assert_eq!(message["message_type"], "system");
}

/// Posts `count` messages through the service's own use case (not HTTP, for speed).
async fn seed_messages(app: &TestApp, room: i64, count: i64) {
    use chat_domain::Ports;
    use chat_domain::ports::{NoEventLog, NoFanOut};
    use chat_domain::{Actor, ChatService, MessageInput, RoomId, UserId};
    use chat_infra::memory::InProcessPresence;
    use chat_infra::{DatabaseSettings, SqlStore};
    use std::sync::Arc;

    let store = SqlStore::open(&DatabaseSettings {
        url: app.database_url.clone(),
        max_connections: 4,
        connect_timeout: std::time::Duration::from_secs(5),
        run_migrations: false,
        outbox: false,
    })
    .await
    .unwrap();
    let store = Arc::new(store);
    let store_for_search = store.clone();
    let reactions = store.clone();
    let store_for_offers = store.clone();
    let unread = Arc::new(chat_infra::memory::InProcessUnread::default());
    let writer =
        chat_domain::ports::DirectWriter::new(store.clone(), Arc::new(NoFanOut), unread.clone());
    let chat = ChatService::new(Ports {
        rooms: store.clone(),
        messages: store,
        writer: Arc::new(writer),
        fan_out: Arc::new(NoFanOut),
        presence: Arc::new(InProcessPresence::new()),
        events: Arc::new(NoEventLog),
        search: store_for_search.clone(),
        unread,
        read_state: store_for_search,
        message_rate: Arc::new(chat_domain::ports::NoRateLimit),
        away: Arc::new(chat_domain::ports::NoAwayNotifications),
        reactions,
        offers: store_for_offers,
    });
    let actor = Actor::user(UserId::parse("anonymous").unwrap());
    let room = RoomId::new(room).unwrap();
    for i in 0..count {
        let input = MessageInput { content: format!("lot {i}"), ..Default::default() };
        chat.post_message(&actor, room, input).await.unwrap();
    }
}
