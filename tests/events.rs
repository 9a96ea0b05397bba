//! Chat events on RabbitMQ through the transactional outbox, against the real
//! broker: every event type's shape, and no loss while the broker is cut off.

use std::collections::{HashMap, HashSet};

use chat_tests::proxy::Proxy;
use chat_tests::rabbit::{EventTap, Tapped};
use chat_tests::{TestApp, rabbitmq_address, reachable_rabbitmq};
use serde_json::{Value, json};

fn unique_user(role: &str) -> String {
    format!("{}-{role}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn keys(event: &Tapped) -> HashSet<String> {
    event.body.as_object().unwrap().keys().cloned().collect()
}

fn assert_envelope(event: &Tapped, event_type: &str) {
    assert_eq!(event.body["event_type"], event_type, "{:?}", event.body);
    assert_eq!(event.routing_key, event_type.replace('_', "."));
    assert_eq!(
        event.message_id.as_deref(),
        event.body["event_id"].as_str(),
        "AMQP message_id = event_id"
    );
    assert_eq!(event.delivery_mode, Some(2), "persistent");
    assert_eq!(event.content_type.as_deref(), Some("application/json"));
    assert!(event.body["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_has_the_documented_shape() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let alice = unique_user("alice");
    let as_alice = |request: reqwest::RequestBuilder| request.header("x-user-id", alice.as_str());

    let room: Value = as_alice(app.client.post(app.url("/rooms")))
        .json(&json!({"name": "Events"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room_id = room["id"].as_i64().unwrap();
    let created = tap.next_for(&alice).await;
    assert_envelope(&created, "room_created");
    assert_eq!(
        keys(&created),
        HashSet::from(
            ["event_id", "event_type", "room_id", "user_id", "timestamp"].map(String::from)
        )
    );
    assert_eq!(created.body["room_id"], room_id);
    assert_eq!(created.body["user_id"], alice.as_str());

    let (socket, _) = app.joined_socket(room_id, &alice).await;
    let joined = tap.next_for(&alice).await;
    assert_envelope(&joined, "user_joined");
    assert_eq!(
        keys(&joined),
        HashSet::from(
            ["event_id", "event_type", "room_id", "user_id", "timestamp"].map(String::from)
        )
    );

    let message: Value = as_alice(app.client.post(app.url(&format!("/rooms/{room_id}/messages"))))
        .json(&json!({"content": "Hello!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let posted = tap.next_for(&alice).await;
    assert_envelope(&posted, "message_created");
    assert_eq!(
        keys(&posted),
        HashSet::from(
            [
                "event_id",
                "event_type",
                "room_id",
                "user_id",
                "message_id",
                "seq",
                "content",
                "timestamp"
            ]
            .map(String::from)
        )
    );
    assert_eq!(posted.body["message_id"], message["id"]);
    assert_eq!(posted.body["seq"], 1);
    assert_eq!(posted.body["content"], "Hello!");

    let path = format!("/messages/{}", message["id"]);
    assert_eq!(
        as_alice(app.client.patch(app.url(&path)))
            .json(&json!({"content": "Hello again"}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let updated = tap.next_for(&alice).await;
    assert_envelope(&updated, "message_updated");
    assert_eq!(keys(&updated), keys(&posted));
    assert_eq!(updated.body["content"], "Hello again");

    assert_eq!(as_alice(app.client.delete(app.url(&path))).send().await.unwrap().status(), 204);
    let deleted = tap.next_for(&alice).await;
    assert_envelope(&deleted, "message_deleted");
    assert_eq!(
        keys(&deleted),
        HashSet::from(
            ["event_id", "event_type", "room_id", "user_id", "message_id", "seq", "timestamp"]
                .map(String::from)
        )
    );

    socket.close().await;
    let left = tap.next_for(&alice).await;
    assert_envelope(&left, "user_left");

    assert_eq!(
        as_alice(app.client.delete(app.url(&format!("/rooms/{room_id}"))))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let room_gone = tap.next_for(&alice).await;
    assert_envelope(&room_gone, "room_deleted");
    assert_eq!(keys(&room_gone), keys(&created));

    let ids: HashSet<&str> = [&created, &joined, &posted, &updated, &deleted, &left, &room_gone]
        .iter()
        .map(|e| e.body["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 7, "every event has its own id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_posted_while_the_broker_is_cut_all_arrive_in_room_order() {
    const MESSAGES: usize = 1000;
    const ROOMS: usize = 3;
    let Some(url) = reachable_rabbitmq().await else { return };
    let proxy = Proxy::start(&rabbitmq_address(&url)).await;
    let proxied = url.replace(&rabbitmq_address(&url), &format!("127.0.0.1:{}", proxy.port));
    let mut tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&proxied).await else { return };
    assert!(app.wait_for_health("rabbitmq", "ok").await, "the relay connects");

    let writer = unique_user("writer");
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(app.create_room(&format!("cut {r}")).await);
    }
    proxy.cut().await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (client, base, writer, rooms) =
            (app.client.clone(), app.address.clone(), writer.clone(), rooms.clone());
        tasks.push(tokio::spawn(async move {
            for n in (w..MESSAGES).step_by(4) {
                let room = rooms[n % ROOMS];
                let response = client
                    .post(format!("{base}/rooms/{room}/messages"))
                    .json(&json!({"content": format!("m{n}"), "user_id": writer}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201, "sends succeed while the broker is cut");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(app.wait_for_health("rabbitmq", "down").await, "health reports the broker down");
    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "degraded");

    proxy.restore();
    let mut seen_ids = HashSet::new();
    let mut seqs_by_room: HashMap<i64, Vec<i64>> = HashMap::new();
    while seen_ids.len() < MESSAGES {
        let event = tap.next_for(&writer).await;
        assert_eq!(event.body["event_type"], "message_created");
        // At least once: a batch cut mid-publish may come again; consumers de-duplicate.
        if seen_ids.insert(event.body["event_id"].as_str().unwrap().to_owned()) {
            seqs_by_room
                .entry(event.body["room_id"].as_i64().unwrap())
                .or_default()
                .push(event.body["seq"].as_i64().unwrap());
        }
    }
    let mut total = 0;
    for room in rooms {
        let seqs = &seqs_by_room[&room];
        total += seqs.len();
        assert_eq!(
            *seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "room {room}: in order, none missing"
        );
    }
    assert_eq!(total, MESSAGES);
    assert!(app.wait_for_health("rabbitmq", "ok").await, "the relay reconnected");
}

/// The `x-request-id` of a response (the caller's, or the one the service made).
fn request_id_of(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_request_id_of_the_call_that_caused_them() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let bob = unique_user("bob");

    // The caller's own request id travels with the event.
    let caller_id = format!("trace-{}", uuid::Uuid::new_v4());
    let response = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", bob.as_str())
        .header("x-request-id", caller_id.as_str())
        .json(&json!({"name": "Traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(request_id_of(&response), caller_id);
    let room_id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let created = tap.next_for(&bob).await;
    assert_envelope(&created, "room_created");
    assert_eq!(created.request_id.as_deref(), Some(caller_id.as_str()));

    // Without one, the id the service gave the request (and answered with).
    let response = app
        .client
        .post(app.url(&format!("/rooms/{room_id}/messages")))
        .json(&json!({"content": "traced", "user_id": bob}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let generated = request_id_of(&response);
    let posted = tap.next_for(&bob).await;
    assert_envelope(&posted, "message_created");
    assert_eq!(posted.request_id.as_deref(), Some(generated.as_str()));

    // A socket's events carry the id of its upgrade request.
    let (mut socket, handshake) =
        tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{room_id}?user_id={bob}")))
            .await
            .expect("socket connects");
    let upgrade_id = handshake.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(upgrade_id, generated);
    let joined = tap.next_for(&bob).await;
    assert_envelope(&joined, "user_joined");
    assert_eq!(joined.request_id.as_deref(), Some(upgrade_id.as_str()));
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "message", "content": "over the socket"}).to_string().into(),
        ))
        .await
        .unwrap();
    let from_socket = tap.next_for(&bob).await;
    assert_envelope(&from_socket, "message_created");
    assert_eq!(from_socket.body["content"], "over the socket");
    assert_eq!(from_socket.request_id.as_deref(), Some(upgrade_id.as_str()));
}
