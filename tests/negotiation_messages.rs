//! Replies, reactions and versions of edited messages (PROTOCOL.md "Replies,
//! reactions and versions"): over REST and sockets, on both databases, the
//! reaction events on the full adapter set, and the reply check racing a delete.

use std::collections::HashSet;

use chat_tests::rabbit::EventTap;
use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use reqwest::Method;
use serde_json::{Value, json};

on_every_adapter_set!(
    reactions_are_counted_once_per_user_and_key;
    not_on_full:
    replies_answer_a_live_message_of_the_same_room,
    a_reply_over_the_socket,
    reaction_keys_are_checked,
    a_message_has_at_most_twenty_keys,
    versions_keep_every_text_oldest_first,
    reactions_follow_the_rules_of_the_room,
    archived_messages_can_be_answered_reacted_to_and_edited,
    the_inbox_socket_gets_reactions_of_its_rooms,
    a_batch_refuses_only_its_bad_replies,
);

/// 👍, percent-encoded for a path.
const THUMBS_UP: &str = "%F0%9F%91%8D";

async fn send(app: &TestApp, method: Method, path: &str, user: &str) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .header("x-user-id", user)
        .send()
        .await
        .expect("request is sent")
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    response.json().await.expect("json body")
}

async fn post(app: &TestApp, room: i64, body: Value) -> reqwest::Response {
    app.post(&format!("/rooms/{room}/messages"), body).await
}

async fn replies_answer_a_live_message_of_the_same_room(app: TestApp) {
    let room = app.create_room("Replies").await;
    let other = app.create_room("Elsewhere").await;
    let asked = app.post_message(room, "alice", "210 UAH/kg?").await;
    assert_eq!(asked["reply_to"], Value::Null, "always present");
    assert_eq!(asked["reactions"], json!({}), "always present");

    let answer = json_of(
        post(&app, room, json!({"content": "215", "user_id": "bob", "reply_to": asked["id"]}))
            .await,
        201,
    )
    .await;
    assert_eq!(answer["reply_to"], asked["id"]);
    let read = json_of(app.get(&format!("/messages/{}", answer["id"])).await, 200).await;
    assert_eq!(read["reply_to"], asked["id"]);
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    let replies: Vec<&Value> =
        history["items"].as_array().unwrap().iter().map(|m| &m["reply_to"]).collect();
    assert_eq!(replies, [&Value::Null, &asked["id"]]);

    let elsewhere = app.post_message(other, "carol", "another room").await;
    let refused = post(&app, room, json!({"content": "x", "reply_to": elsewhere["id"]})).await;
    let body = assert_error(refused, 422, "validation_failed").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("reply_to"), "{body}");
    for bad in [json!(0), json!(-3), json!(9_000_000_000_i64)] {
        let refused = post(&app, room, json!({"content": "x", "reply_to": bad})).await;
        let body = assert_error(refused, 422, "validation_failed").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("reply_to"), "{body}");
    }
    let refused = post(&app, room, json!({"content": "x", "reply_to": "five"})).await;
    assert_error(refused, 422, "validation_failed").await;

    assert_eq!(
        send(&app, Method::DELETE, &format!("/messages/{}", asked["id"]), "alice").await.status(),
        204
    );
    let refused = post(&app, room, json!({"content": "late", "reply_to": asked["id"]})).await;
    assert_error(refused, 422, "validation_failed").await;
    // Nothing refused took a seq: the next message follows the last stored one.
    let next = app.post_message(room, "bob", "next").await;
    assert_eq!(next["seq"], answer["seq"].as_i64().unwrap() + 1);
    // An idempotent repeat answers the original, whatever became of what it answered.
    let keyed = json!({"content": "keyed", "user_id": "bob", "client_msg_id": "k1", "reply_to": next["id"]});
    let first = json_of(post(&app, room, keyed.clone()).await, 201).await;
    assert_eq!(
        send(&app, Method::DELETE, &format!("/messages/{}", next["id"]), "bob").await.status(),
        204
    );
    let again = json_of(post(&app, room, keyed).await, 200).await;
    assert_eq!(again["id"], first["id"]);
}

async fn a_reply_over_the_socket(app: TestApp) {
    let room = app.create_room("Socket replies").await;
    let asked = app.post_message(room, "alice", "Odesa FOB?").await;
    let (mut socket, _) = app.joined_socket(room, "bob").await;
    socket
        .send_json(json!({"type": "message", "content": "yes", "reply_to": asked["id"], "client_msg_id": "r1"}))
        .await;
    let frame = socket.next_of_type("message").await;
    assert_eq!(frame["reply_to"], asked["id"]);
    assert_eq!(frame["content"], "yes");
    assert_eq!(frame["reactions"], json!({}));

    assert_eq!(
        send(&app, Method::DELETE, &format!("/messages/{}", asked["id"]), "alice").await.status(),
        204
    );
    socket
        .send_json(json!({"type": "message", "content": "too late", "reply_to": asked["id"], "client_msg_id": "r2"}))
        .await;
    let error = socket.next_of_type("error").await;
    assert_eq!(error["code"], "validation_failed", "{error}");
    assert_eq!(error["client_msg_id"], "r2");
    assert!(error["message"].as_str().unwrap().contains("reply_to"), "{error}");
    socket
        .send_json(
            json!({"type": "message", "content": "x", "reply_to": "one", "client_msg_id": "r3"}),
        )
        .await;
    let error = socket.next_of_type("error").await;
    assert_eq!(error["code"], "validation_failed", "{error}");
    assert_eq!(error["client_msg_id"], "r3");
    socket.send_json(json!({"type": "ping"})).await;
    assert_eq!(socket.next_of_type("pong").await["type"], "pong", "the socket stays open");
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1, "only the valid reply is stored");
}

async fn reactions_are_counted_once_per_user_and_key(app: TestApp) {
    let room = app.create_room("Reactions").await;
    let message = app.post_message(room, "alice", "Wheat 210").await;
    let id = message["id"].as_i64().unwrap();
    // The newest page is cached now: a reaction must not leave it stale.
    let before = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(before["items"][0]["reactions"], json!({}));
    let (mut watcher, _) = app.joined_socket(room, "carol").await;
    let path = format!("/messages/{id}/reactions/{THUMBS_UP}");

    let reacted = json_of(send(&app, Method::PUT, &path, "bob").await, 200).await;
    assert_eq!(reacted["id"], id);
    assert_eq!(reacted["reactions"], json!({"👍": 1}));
    let frame = watcher.next_of_type("reaction").await;
    assert_eq!(
        frame,
        json!({"type": "reaction", "room_id": room, "message_id": id, "seq": message["seq"],
               "key": "👍", "user_id": "bob", "added": true, "count": 1})
    );

    let repeat = json_of(send(&app, Method::PUT, &path, "bob").await, 200).await;
    assert_eq!(repeat["reactions"], json!({"👍": 1}), "once per user and key");
    let by_alice = json_of(send(&app, Method::PUT, &path, "alice").await, 200).await;
    assert_eq!(by_alice["reactions"], json!({"👍": 2}));
    // The repeat sent no frame: the next one is alice's.
    let frame = watcher.next_of_type("reaction").await;
    assert_eq!((frame["user_id"].clone(), frame["count"].clone()), (json!("alice"), json!(2)));
    let fire = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/fire"), "bob").await,
        200,
    )
    .await;
    assert_eq!(fire["reactions"], json!({"👍": 2, "fire": 1}));
    assert_eq!(watcher.next_of_type("reaction").await["key"], "fire");

    let read = json_of(app.get(&format!("/messages/{id}")).await, 200).await;
    assert_eq!(read["reactions"], json!({"👍": 2, "fire": 1}));
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(
        history["items"][0]["reactions"],
        json!({"👍": 2, "fire": 1}),
        "no stale cached page"
    );
    let listed = json_of(app.get(&format!("/messages/{id}/reactions")).await, 200).await;
    let items = listed["items"].as_array().unwrap();
    let pairs: HashSet<(String, String)> = items
        .iter()
        .map(|r| (r["key"].as_str().unwrap().to_owned(), r["user_id"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [("👍", "bob"), ("👍", "alice"), ("fire", "bob")];
    assert_eq!(pairs, expected.iter().map(|(k, u)| (k.to_string(), u.to_string())).collect());
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|r| r["created_at"].as_str().is_some_and(|t| t.ends_with('Z'))));
    assert_eq!(items[0]["user_id"], "bob", "oldest first");

    let removed = json_of(send(&app, Method::DELETE, &path, "bob").await, 200).await;
    assert_eq!(removed["reactions"], json!({"👍": 1, "fire": 1}));
    let frame = watcher.next_of_type("reaction").await;
    assert_eq!(
        (frame["added"].clone(), frame["count"].clone(), frame["user_id"].clone()),
        (json!(false), json!(1), json!("bob"))
    );
    let again = json_of(send(&app, Method::DELETE, &path, "bob").await, 200).await;
    assert_eq!(again["reactions"], json!({"👍": 1, "fire": 1}), "nothing to take back");
    let last = json_of(
        send(&app, Method::DELETE, &format!("/messages/{id}/reactions/fire"), "bob").await,
        200,
    )
    .await;
    assert_eq!(last["reactions"], json!({"👍": 1}), "a key nobody uses is gone");
    let frame = watcher.next_of_type("reaction").await;
    assert_eq!(
        (frame["key"].clone(), frame["count"].clone()),
        (json!("fire"), json!(0)),
        "no frame for the repeat"
    );
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(history["items"][0]["reactions"], json!({"👍": 1}));
    // A trailing slash and a plain key work too.
    let plain = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/+1/"), "dave").await,
        200,
    )
    .await;
    assert_eq!(plain["reactions"], json!({"👍": 1, "+1": 1}));
}

async fn reaction_keys_are_checked(app: TestApp) {
    let room = app.create_room("Keys").await;
    let id = app.post_message(room, "alice", "keys").await["id"].as_i64().unwrap();
    let long = "k".repeat(33);
    for key in ["a%20b", "%20", "%09", "a%0Ab", long.as_str(), "%E2%80%83"] {
        let response =
            send(&app, Method::PUT, &format!("/messages/{id}/reactions/{key}"), "bob").await;
        let body = assert_error(response, 422, "validation_failed").await;
        assert!(body["error"]["message"].as_str().unwrap().starts_with("key"), "{key}: {body}");
    }
    let ok = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/{}", "k".repeat(32)), "bob")
            .await,
        200,
    )
    .await;
    assert_eq!(ok["reactions"][&"k".repeat(32)], 1);
    let slash = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/a%2Fb"), "bob").await,
        200,
    )
    .await;
    assert_eq!(slash["reactions"]["a/b"], 1, "an encoded slash is part of the key");
    assert_error(
        send(&app, Method::PUT, &format!("/messages/{}/reactions/ok", id + 1000), "bob").await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        send(&app, Method::PUT, "/messages/abc/reactions/ok", "bob").await,
        404,
        "not_found",
    )
    .await;
    let listed = json_of(app.get(&format!("/messages/{id}/reactions")).await, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "refused keys stored nothing");
}

async fn a_message_has_at_most_twenty_keys(app: TestApp) {
    let room = app.create_room("Twenty").await;
    let id = app.post_message(room, "alice", "many").await["id"].as_i64().unwrap();
    for i in 0..20 {
        let response =
            send(&app, Method::PUT, &format!("/messages/{id}/reactions/k{i}"), "bob").await;
        assert_eq!(response.status(), 200, "key {i}");
    }
    let refused = send(&app, Method::PUT, &format!("/messages/{id}/reactions/k20"), "bob").await;
    let body = assert_error(refused, 422, "validation_failed").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("20"), "{body}");
    // A key it has is still fine, for another user too.
    let again = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/k7"), "carol").await,
        200,
    )
    .await;
    assert_eq!(again["reactions"].as_object().unwrap().len(), 20);
    assert_eq!(again["reactions"]["k7"], 2);
    assert!(again["reactions"].get("k20").is_none());
    // Once a key is free again, a new one fits.
    let freed = json_of(
        send(&app, Method::DELETE, &format!("/messages/{id}/reactions/k0"), "bob").await,
        200,
    )
    .await;
    assert_eq!(freed["reactions"].as_object().unwrap().len(), 19);
    assert_eq!(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/k20"), "bob").await.status(),
        200
    );
}

async fn versions_keep_every_text_oldest_first(app: TestApp) {
    let room = app.create_room("Versions").await;
    let message = app.post_message(room, "alice", "210 UAH/kg").await;
    let id = message["id"].as_i64().unwrap();
    let once = json_of(app.get(&format!("/messages/{id}/versions")).await, 200).await;
    assert_eq!(
        once,
        json!({"items": [{"version": 1, "content": "210 UAH/kg", "created_at": message["created_at"]}]})
    );
    let path = format!("/messages/{id}");
    let first =
        json_of(app.patch(&path, json!({"content": "215 UAH/kg", "user_id": "alice"})).await, 200)
            .await;
    let second =
        json_of(app.patch(&path, json!({"content": "220 UAH/kg", "user_id": "alice"})).await, 200)
            .await;
    let versions = json_of(app.get(&format!("/messages/{id}/versions")).await, 200).await;
    let items = versions["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let texts: Vec<(i64, &str)> = items
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["content"].as_str().unwrap()))
        .collect();
    assert_eq!(texts, [(1, "210 UAH/kg"), (2, "215 UAH/kg"), (3, "220 UAH/kg")]);
    assert_eq!(items[0]["created_at"], message["created_at"]);
    assert_eq!(items[1]["created_at"], first["updated_at"]);
    assert_eq!(items[2]["created_at"], second["updated_at"]);
    // A refused edit keeps no version.
    let refused = app.patch(&path, json!({"content": "230", "user_id": "mallory"})).await;
    assert_error(refused, 403, "forbidden").await;
    let versions = json_of(app.get(&format!("/messages/{id}/versions/")).await, 200).await;
    assert_eq!(versions["items"].as_array().unwrap().len(), 3);
    assert_eq!(send(&app, Method::DELETE, &path, "alice").await.status(), 204);
    assert_error(app.get(&format!("/messages/{id}/versions")).await, 404, "not_found").await;
}

async fn reactions_follow_the_rules_of_the_room(app: TestApp) {
    let response = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "alice")
        .json(&json!({"name": "Private deal", "is_private": true, "members": ["bob"]}))
        .send()
        .await
        .unwrap();
    let room = json_of(response, 201).await["id"].as_i64().unwrap();
    let message = json_of(
        app.client
            .post(app.url(&format!("/rooms/{room}/messages")))
            .header("x-user-id", "alice")
            .json(&json!({"content": "private offer"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let id = message["id"].as_i64().unwrap();
    let path = format!("/messages/{id}/reactions/ok");
    assert_error(send(&app, Method::PUT, &path, "mallory").await, 403, "forbidden").await;
    assert_error(send(&app, Method::DELETE, &path, "mallory").await, 403, "forbidden").await;
    assert_error(
        send(&app, Method::GET, &format!("/messages/{id}/reactions"), "mallory").await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        send(&app, Method::GET, &format!("/messages/{id}/versions"), "mallory").await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(send(&app, Method::PUT, &path, "bob").await.status(), 200, "a member may react");
    // The body's user_id names who reacts, as elsewhere with authentication disabled.
    let as_body =
        app.client.put(app.url(&path)).json(&json!({"user_id": "alice"})).send().await.unwrap();
    assert_eq!(json_of(as_body, 200).await["reactions"], json!({"ok": 2}));
    assert_eq!(send(&app, Method::DELETE, &format!("/messages/{id}"), "alice").await.status(), 204);
    assert_error(send(&app, Method::PUT, &path, "bob").await, 404, "not_found").await;
    assert_error(
        send(&app, Method::GET, &format!("/messages/{id}/reactions"), "bob").await,
        404,
        "not_found",
    )
    .await;
}

async fn archived_messages_can_be_answered_reacted_to_and_edited(app: TestApp) {
    let room = app.create_room("Archive").await;
    let old = app.post_message(room, "alice", "old offer").await;
    let id = old["id"].as_i64().unwrap();
    let reacted = send(&app, Method::PUT, &format!("/messages/{id}/reactions/ok"), "bob").await;
    assert_eq!(reacted.status(), 200);
    let store = app.uncached_store().await;
    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.archive_batch(cutoff, 100).await.unwrap().commit().await.unwrap(), 1);
    assert_eq!(store.archived_count().await.unwrap(), 1);

    let read = json_of(app.get(&format!("/messages/{id}")).await, 200).await;
    assert_eq!(read["reactions"], json!({"ok": 1}), "the counts moved with the row");
    let answer = json_of(
        post(&app, room, json!({"content": "still open?", "user_id": "bob", "reply_to": id})).await,
        201,
    )
    .await;
    assert_eq!(answer["reply_to"], id);
    let more = json_of(
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/ok"), "carol").await,
        200,
    )
    .await;
    assert_eq!(more["reactions"], json!({"ok": 2}));
    let listed = json_of(app.get(&format!("/messages/{id}/reactions")).await, 200).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    let path = format!("/messages/{id}");
    assert_eq!(
        app.patch(&path, json!({"content": "old offer, 205", "user_id": "alice"})).await.status(),
        200
    );
    let versions = json_of(app.get(&format!("{path}/versions")).await, 200).await;
    let texts: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["old offer", "old offer, 205"]);
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(history["items"][0]["reactions"], json!({"ok": 2}));
    assert_eq!(history["items"][0]["content"], "old offer, 205");

    assert_eq!(send(&app, Method::DELETE, &path, "alice").await.status(), 204);
    let refused = post(&app, room, json!({"content": "gone?", "reply_to": id})).await;
    assert_error(refused, 422, "validation_failed").await;
}

async fn the_inbox_socket_gets_reactions_of_its_rooms(app: TestApp) {
    let room = app.create_room("Inbox reactions").await;
    let id = app.post_message(room, "alice", "hello").await["id"].as_i64().unwrap();
    let mut inbox = app.inbox_socket("carol").await;
    inbox.subscribe(room, None).await;
    let reacted =
        send(&app, Method::PUT, &format!("/messages/{id}/reactions/{THUMBS_UP}"), "bob").await;
    assert_eq!(reacted.status(), 200);
    let frame = inbox.next_of_type("reaction").await;
    assert_eq!((frame["room_id"].clone(), frame["message_id"].clone()), (json!(room), json!(id)));
    assert_eq!((frame["key"].clone(), frame["count"].clone()), (json!("👍"), json!(1)));
}

/// One batch of the group-commit path (the repository called directly) with
/// good and bad replies, in two rooms, and a repeat: each message gets its own
/// outcome, the refused ones take no seq, and the seqs stay dense.
async fn a_batch_refuses_only_its_bad_replies(app: TestApp) {
    use chat_domain::ports::MessageRepository;
    use chat_domain::{ClientMsgId, MessageContent, MessageId, NewMessage, Posted, RoomId, UserId};
    let (room, other) = (app.create_room("Batch").await, app.create_room("Other").await);
    let asked = app.post_message(room, "alice", "asked").await;
    let gone = app.post_message(room, "alice", "gone").await;
    let elsewhere = app.post_message(other, "carol", "elsewhere").await;
    assert_eq!(
        send(&app, Method::DELETE, &format!("/messages/{}", gone["id"]), "alice").await.status(),
        204
    );
    let id = |m: &Value| MessageId::new(m["id"].as_i64().unwrap()).unwrap();
    let new =
        |room: i64, content: &str, reply_to: Option<MessageId>, key: Option<&str>| NewMessage {
            room_id: RoomId::new(room).unwrap(),
            user_id: UserId::parse("bob").unwrap(),
            content: MessageContent::parse(content).unwrap(),
            message_type: Default::default(),
            client_msg_id: key.map(|k| ClientMsgId::parse(k).unwrap()),
            reply_to,
            created_at: chat_domain::timestamp::now(),
            conversation: None,
            correlation_id: None,
        };
    let batch = [
        new(room, "to a deleted one", Some(id(&gone)), None),
        new(room, "good", Some(id(&asked)), Some("b1")),
        new(room, "to another room", Some(id(&elsewhere)), None),
        new(other, "good there", Some(id(&elsewhere)), None),
        new(room, "plain", None, None),
        new(room, "good", Some(id(&asked)), Some("b1")),
        new(room, "to nothing", Some(MessageId::new(9_999_999).unwrap()), Some("b2")),
    ];
    let store = app.uncached_store().await;
    let outcomes = store.append_batch(&batch).await.expect("the batch is stored");
    let refused = |n: usize| {
        matches!(&outcomes[n], Err(chat_domain::DomainError::Validation { field: "reply_to", .. }))
    };
    assert!(refused(0) && refused(2) && refused(6), "{outcomes:?}");
    let stored = |n: usize| match &outcomes[n] {
        Ok(Posted::Created(m)) => m.clone(),
        other => panic!("message {n}: {other:?}"),
    };
    let (good, there, plain) = (stored(1), stored(3), stored(4));
    assert_eq!((good.content.as_str(), good.reply_to), ("good", Some(id(&asked))));
    assert_eq!((there.room_id.get(), there.reply_to), (other, Some(id(&elsewhere))));
    assert_eq!((plain.content.as_str(), plain.reply_to), ("plain", None));
    assert!(
        matches!(&outcomes[5], Ok(Posted::Duplicate(m)) if m.id == good.id),
        "{:?}",
        outcomes[5]
    );
    // seqs 1 and 2 were taken before: the batch's two rows in this room are 3 and 4.
    assert_eq!((good.seq, plain.seq, there.seq), (3, 4, 2));
    let next = app.post_message(room, "alice", "after").await;
    assert_eq!(next["seq"], 5, "no seq lost to the refused ones");
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    let contents: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["asked", "good", "plain", "after"]);
}

/// Two instances sharing Postgres and Redis: a reaction made on one reaches the
/// room's sockets on the other (the frame crosses the Redis bus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_reaches_the_sockets_of_another_instance() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Across").await;
    let message = a.post_message(room, "alice", "across").await;
    let (mut watcher, _) = b.joined_socket(room, "carol").await;
    let path = format!("/messages/{}/reactions/{THUMBS_UP}", message["id"]);
    let reacted = json_of(send(&a, Method::PUT, &path, "bob").await, 200).await;
    assert_eq!(reacted["reactions"], json!({"👍": 1}));
    let frame = watcher.next_of_type("reaction").await;
    assert_eq!(
        frame,
        json!({"type": "reaction", "room_id": room, "message_id": message["id"],
               "seq": message["seq"], "key": "👍", "user_id": "bob", "added": true, "count": 1})
    );
    let read = json_of(b.get(&format!("/messages/{}", message["id"])).await, 200).await;
    assert_eq!(read["reactions"], json!({"👍": 1}));
    let history = json_of(b.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert_eq!(history["items"][0]["reactions"], json!({"👍": 1}), "the shared cache too");
}

/// With a token required the reactor is the token's `sub`; a body naming
/// someone else is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_reactor_is_its_subject() {
    use jsonwebtoken::{EncodingKey, Header};
    const SECRET: &str = "test-secret-that-is-long-enough";
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    let mut settings = chat_tests::test_settings(&format!("sqlite://{}?mode=rwc", file.display()));
    settings.auth_mode = Some(chat_api::settings::AuthMode::Required);
    settings.jwt_secret = Some(SECRET.to_owned());
    let app = TestApp::start_with(settings).await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = |sub: &str| {
        jsonwebtoken::encode(
            &Header::default(),
            &json!({"sub": sub, "exp": exp}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let bearer = |request: reqwest::RequestBuilder, sub: &str| request.bearer_auth(token(sub));
    let room = json_of(
        bearer(app.client.post(app.url("/rooms")), "alice")
            .json(&json!({"name": "Tokens"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let message = json_of(
        bearer(app.client.post(app.url(&format!("/rooms/{room}/messages"))), "alice")
            .json(&json!({"content": "signed"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let path = app.url(&format!("/messages/{}/reactions/ok", message["id"]));
    let anonymous = app.client.put(&path).send().await.unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let spoofed = bearer(app.client.put(&path), "bob")
        .json(&json!({"user_id": "alice"}))
        .send()
        .await
        .unwrap();
    assert_error(spoofed, 403, "forbidden").await;
    let reacted = json_of(bearer(app.client.put(&path), "bob").send().await.unwrap(), 200).await;
    assert_eq!(reacted["reactions"], json!({"ok": 1}));
    let listed = json_of(
        bearer(app.client.get(app.url(&format!("/messages/{}/reactions", message["id"]))), "carol")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["items"][0]["user_id"], "bob");
}

/// `reaction_added`/`reaction_removed`, each once per change and none for a
/// repeat: the events of one user come in commit order, so the repeats'
/// events would come before the next change's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_events_come_once_per_change() {
    let Some(url) = chat_tests::reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    chat_tests::run_full(|app| async move {
        let user = format!("{}-bob", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let room = app.create_room("Reaction events").await;
        let message = app.post_message(room, "alice", "events").await;
        let id = message["id"].as_i64().unwrap();
        let path = format!("/messages/{id}/reactions/{THUMBS_UP}");
        for method in [Method::PUT, Method::PUT, Method::DELETE, Method::DELETE] {
            assert_eq!(send(&app, method, &path, &user).await.status(), 200);
        }
        assert_eq!(
            send(&app, Method::PUT, &format!("/messages/{id}/reactions/end"), &user).await.status(),
            200
        );

        let added = tap.next_for(&user).await;
        assert_eq!(added.routing_key, "reaction.added");
        assert_eq!(added.message_id.as_deref(), added.body["event_id"].as_str());
        let mut body = added.body.clone();
        let object = body.as_object_mut().unwrap();
        assert!(object.remove("event_id").is_some_and(|v| v.is_string()));
        assert!(object.remove("timestamp").is_some_and(|v| v.as_str().unwrap().ends_with('Z')));
        assert_eq!(
            body,
            json!({"event_type": "reaction_added", "room_id": room, "user_id": user,
                   "message_id": id, "seq": message["seq"], "key": "👍", "count": 1})
        );
        let removed = tap.next_for(&user).await;
        assert_eq!(removed.routing_key, "reaction.removed");
        assert_eq!(removed.body["event_type"], "reaction_removed");
        assert_eq!(
            (removed.body["key"].clone(), removed.body["count"].clone()),
            (json!("👍"), json!(0))
        );
        let end = tap.next_for(&user).await;
        assert_eq!(
            (end.body["event_type"].clone(), end.body["key"].clone()),
            (json!("reaction_added"), json!("end")),
            "the repeats had no events"
        );
    })
    .await;
}

/// Postgres: a delete of the answered message that is in flight when the reply's
/// batch runs is waited for (the batch takes a share lock on it), and the reply
/// is then refused instead of answering a deleted message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_waits_for_a_delete_in_flight_and_is_refused() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, TransactionTrait};
    let Some(app) = TestApp::postgres().await else { return };
    let room = app.create_room("Race").await;
    let asked = app.post_message(room, "alice", "going away").await;
    let db = app.database().await;
    let txn = db.begin().await.unwrap();
    txn.execute_raw(Statement::from_string(
        DatabaseBackend::Postgres,
        format!("UPDATE messages SET deleted_at = now() WHERE id = {}", asked["id"]),
    ))
    .await
    .unwrap();
    let reply = {
        let (client, url) = (app.client.clone(), app.url(&format!("/rooms/{room}/messages")));
        let body = json!({"content": "reply", "reply_to": asked["id"]});
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
    };
    // Wait until the batch's statement waits on the row lock the delete holds.
    let watcher = app.database().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let row = watcher
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT count(*) AS waiting FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<i64>("", "waiting").unwrap() > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the reply never waited for the delete");
        tokio::task::yield_now().await;
    }
    txn.commit().await.unwrap();
    let response = reply.await.unwrap();
    assert_error(response, 422, "validation_failed").await;
    let history = json_of(app.get(&format!("/rooms/{room}/messages")).await, 200).await;
    assert!(history["items"].as_array().unwrap().is_empty(), "no dangling reply was stored");
}
