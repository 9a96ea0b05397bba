//! The GrainTrade frontend's and notifications service's protocol, as they use
//! it: item conversations over the legacy socket and REST, live for both
//! parties, the latest 50 in history, unread counters and `message.events`.

use std::collections::HashSet;

use chat_tests::socket::Socket;
use chat_tests::{TestApp, on_both_databases, reachable_rabbitmq};
use serde_json::{Value, json};

on_both_databases!(
    frontend_chat_component_works_unchanged,
    history_shows_the_latest_fifty,
    a_socket_to_an_impossible_user_is_refused_before_the_upgrade
);

async fn legacy_socket(app: &TestApp, item: &str, other: &str) -> Socket {
    app.socket_at(&format!("/ws/chat/{item}/{other}")).await
}

fn frame(sender: &str, receiver: &str, item: &str, content: &str) -> Value {
    json!({"sender_id": sender, "receiver_id": receiver, "item_id": item, "content": content})
}

async fn frontend_chat_component_works_unchanged(app: TestApp) {
    let item = "77";
    // Each party opens the item's chat with the other.
    let mut seller = legacy_socket(&app, item, "buyer").await;
    let mut buyer = legacy_socket(&app, item, "seller").await;
    let history: Value =
        app.get("/chat/77/seller/history?current_user=buyer").await.json().await.unwrap();
    assert_eq!(history, json!([]));

    seller.send_json(frame("seller", "buyer", item, "210 UAH/kg, 500 t")).await;
    let own = seller.next_json().await;
    assert_eq!(own["sender_id"], "seller");
    assert_eq!(own["receiver_id"], "buyer");
    assert_eq!(own["item_id"], "77");
    assert_eq!(own["content"], "210 UAH/kg, 500 t");
    assert!(own["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(own["id"].as_i64().unwrap() > 0);

    // The buyer's first frame makes the buyer known; from then on both see each other live.
    buyer.send_json(frame("buyer", "seller", item, "Deal at 205?")).await;
    assert_eq!(buyer.next_json().await["content"], "Deal at 205?");
    let at_seller = seller.next_json().await;
    assert_eq!(at_seller["sender_id"], "buyer");
    assert_eq!(at_seller["content"], "Deal at 205?");
    seller.send_json(frame("seller", "buyer", item, "Agreed")).await;
    assert_eq!(seller.next_json().await["content"], "Agreed");
    assert_eq!(buyer.next_json().await["content"], "Agreed", "the other party gets it live");

    // Error frames; the socket stays open.
    buyer.send_json(json!({"sender_id": "buyer", "content": "no receiver"})).await;
    assert_eq!(buyer.next_json().await, json!({"error": "Invalid message format"}));
    buyer.send_text("not json").await;
    assert_eq!(buyer.next_json().await, json!({"error": "Invalid message format"}));
    buyer.send_json(frame("buyer", "buyer", item, "me")).await;
    assert_eq!(buyer.next_json().await, json!({"error": "Cannot send message to yourself."}));

    // History: either party, oldest first, the old shape.
    for (current, other) in [("buyer", "seller"), ("seller", "buyer")] {
        let history: Value = app
            .get(&format!("/chat/77/{other}/history?current_user={current}"))
            .await
            .json()
            .await
            .unwrap();
        let contents: Vec<&str> =
            history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(contents, vec!["210 UAH/kg, 500 t", "Deal at 205?", "Agreed"]);
        let keys: HashSet<&str> =
            history[0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from(["id", "item_id", "sender_id", "receiver_id", "content", "timestamp"])
        );
    }
    // A conversation with oneself cannot exist: it has no history, nothing to clear.
    let own = app.get("/chat/77/buyer/history?current_user=%20buyer").await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.json::<Value>().await.unwrap(), json!([]));
    let own = app.delete("/chat/77/buyer/history?current_user=buyer").await;
    assert_eq!(own.json::<Value>().await.unwrap(), json!({"status": "success"}));
    let participants: Value = app.get("/chat/77/participants").await.json().await.unwrap();
    assert_eq!(
        participants,
        json!([{"id": "buyer", "username": "buyer"}, {"id": "seller", "username": "seller"}])
    );

    // The conversation is a private two-member room of the main API, found by item.
    let rooms_as = |user: &'static str| {
        let request = app.client.get(app.url("/rooms?item_id=77")).header("x-user-id", user);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let rooms = rooms_as("buyer").await;
    assert_eq!(rooms["items"].as_array().unwrap().len(), 1);
    assert_eq!(rooms["items"][0]["is_private"], true);
    assert_eq!(rooms["items"][0]["item_id"], "77");
    assert_eq!(rooms_as("stranger").await["items"], json!([]));
    let room = rooms["items"][0]["id"].as_i64().unwrap();
    let main: Value = app
        .client
        .get(app.url(&format!("/rooms/{room}/messages")))
        .header("x-user-id", "seller")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(main["items"].as_array().unwrap().len(), 3);

    // Unread counters: the buyer received two.
    let unread: Value = app.get("/chat/77/unread?current_user=buyer").await.json().await.unwrap();
    assert_eq!(unread, json!({"item_id": "77", "user_id": "buyer", "unread": 2}));
    let reset: Value = app.delete("/chat/77/unread?current_user=buyer").await.json().await.unwrap();
    assert_eq!(reset, json!({"status": "success"}));
    let unread: Value = app.get("/chat/77/unread?current_user=buyer").await.json().await.unwrap();
    assert_eq!(unread["unread"], 0);

    let cleared: Value =
        app.delete("/chat/77/seller/history?current_user=buyer").await.json().await.unwrap();
    assert_eq!(cleared, json!({"status": "success"}));
    let history: Value =
        app.get("/chat/77/buyer/history?current_user=seller").await.json().await.unwrap();
    assert_eq!(history, json!([]));
}

async fn history_shows_the_latest_fifty(app: TestApp) {
    let mut socket = legacy_socket(&app, "item-9", "bob").await;
    for n in 1..=60 {
        socket.send_json(frame("alice", "bob", "item-9", &format!("m{n}"))).await;
        assert_eq!(socket.next_json().await["content"], format!("m{n}"));
    }
    let history: Value =
        app.get("/chat/item-9/bob/history?current_user=alice").await.json().await.unwrap();
    let contents: Vec<&str> =
        history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    let expected: Vec<String> = (11..=60).map(|n| format!("m{n}")).collect();
    assert_eq!(contents, expected, "the latest 50, oldest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_service_gets_one_new_message_event_per_message() {
    use amqprs::channel::{BasicConsumeArguments, QueueDeclareArguments};
    use amqprs::connection::Connection;
    let Some(url) = reachable_rabbitmq().await else { return };
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let item = format!("item-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);

    // Consume `message.events` the way the notifications service does.
    let connection =
        Connection::open(&chat_infra::rabbit::connection_arguments(&url).unwrap()).await.unwrap();
    let channel = connection.open_channel(None).await.unwrap();
    channel
        .queue_declare(QueueDeclareArguments::new("message.events").durable(true).finish())
        .await
        .unwrap();
    let (_, mut deliveries) = channel
        .basic_consume_rx(BasicConsumeArguments::new("message.events", "").auto_ack(true).finish())
        .await
        .unwrap();

    let mut socket = legacy_socket(&app, &item, "farmer").await;
    for content in ["first offer", "second offer"] {
        socket.send_json(frame("trader", "farmer", &item, content)).await;
        socket.next_json().await;
    }
    let mut received = Vec::new();
    while received.len() < 2 {
        let message = tokio::time::timeout(chat_tests::rabbit::EVENT_WAIT, deliveries.recv())
            .await
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_slice(message.content.as_deref().unwrap()).unwrap();
        if event["item_id"] != item.as_str() {
            continue;
        }
        assert_eq!(message.basic_properties.unwrap().delivery_mode(), Some(2), "persistent");
        let keys: HashSet<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["type", "to_username", "message_text", "item_id"]));
        assert_eq!(event["type"], "new_message");
        assert_eq!(event["to_username"], "farmer");
        received.push(event["message_text"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, vec!["first offer", "second offer"]);
}

async fn a_socket_to_an_impossible_user_is_refused_before_the_upgrade(app: TestApp) {
    // Not a user id (blank, a control character, 65 characters): a
    // 400 in the API's error shape, as on the REST routes, not an open socket.
    let long = "u".repeat(65);
    for other in ["%20%20", "sel%01ler", long.as_str()] {
        let path = format!("/ws/chat/77/{other}?user_id=buyer");
        let error = tokio_tungstenite::connect_async(app.ws_url(&path))
            .await
            .expect_err("the upgrade is refused");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), 400, "{path}");
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b""))
                    .expect("a JSON error body");
                assert_eq!(body["error"]["code"], "bad_request", "{path}");
                assert!(body["error"]["message"].as_str().unwrap().contains("other_user_id"));
            }
            other => panic!("expected an HTTP 400 for {path}, got {other:?}"),
        }
    }
    // A valid one still opens.
    let mut socket = legacy_socket(&app, "77", "seller").await;
    socket.send_json(frame("buyer", "seller", "77", "still fine")).await;
    assert_eq!(socket.next_json().await["content"], "still fine");
}

/// A batch's unread bumps go in one call with a count per counter; in memory
/// and in Redis (the old service's keys) they add up like single bumps.
#[tokio::test]
async fn unread_counters_take_a_batch_of_counts_in_one_call() {
    use chat_domain::ports::UnreadCounters;
    use chat_domain::{UserId, conversation::ItemId};

    async fn check(unread: &dyn UnreadCounters, adapter: &str) {
        let item =
            ItemId::parse(&format!("{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_007)).unwrap();
        let (buyer, seller) = (UserId::parse("buyer").unwrap(), UserId::parse("seller").unwrap());
        unread
            .increment_all(&[(item.clone(), buyer.clone(), 3), (item.clone(), seller.clone(), 1)])
            .await
            .unwrap();
        unread.increment(&item, &buyer).await.unwrap();
        assert_eq!(unread.get(&item, &buyer).await.unwrap(), 4, "{adapter}: 3 + 1");
        assert_eq!(unread.get(&item, &seller).await.unwrap(), 1, "{adapter}");
        unread.reset(&item, &buyer).await.unwrap();
        unread.reset(&item, &seller).await.unwrap();
        assert_eq!(unread.get(&item, &buyer).await.unwrap(), 0, "{adapter}");
    }

    check(&chat_infra::memory::InProcessUnread::default(), "memory").await;
    let Some(url) = chat_tests::reachable_redis().await else { return };
    let settings = chat_infra::redis::RedisSettings {
        url,
        key_prefix: "unread-test:".to_owned(),
        command_timeout: std::time::Duration::from_secs(2),
        connect_wait: std::time::Duration::from_secs(5),
    };
    let redis = chat_infra::redis::RedisConnection::connect(&settings).await.unwrap();
    check(&chat_infra::redis::RedisUnread::new(&redis), "redis").await;
}
