//! The baseline server answers real clients: rooms, the socket protocol's
//! `joined`/`message`/`pong`, the inbox socket's `subscribe`, legacy
//! conversations and history pages. Every
//! wait has a deadline; readiness is shown by a frame, never by sleeping.

use std::time::Duration;

use chat_bench::baseline::BaselineServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(10);

async fn open(server: &BaselineServer, path: &str) -> Socket {
    let url = format!("{}{path}", server.url().replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url).await.expect("socket opens").0
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("no socket error");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON frame");
        }
    }
}

async fn send(socket: &mut Socket, frame: Value) {
    socket.send(Message::Text(frame.to_string().into())).await.expect("sent");
}

async fn create_room(server: &BaselineServer, body: Value) -> i64 {
    let response = reqwest::Client::new()
        .post(format!("{}/rooms", server.url()))
        .json(&body)
        .send()
        .await
        .expect("POST /rooms");
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("room JSON")["id"].as_i64().expect("room id")
}

#[tokio::test]
async fn a_message_frame_comes_back_to_everyone_with_id_and_seq() {
    let server = BaselineServer::start_in_background().expect("baseline starts");
    let room = create_room(&server, json!({"name": "test"})).await;
    let mut alice = open(&server, &format!("/ws/{room}?user_id=alice")).await;
    let joined = next_json(&mut alice).await;
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["room_id"], room);
    assert_eq!(joined["last_seq"], 0);
    let mut bob = open(&server, &format!("/ws/{room}?user_id=bob")).await;
    assert_eq!(next_json(&mut bob).await["type"], "joined");

    send(&mut alice, json!({"type": "message", "content": "hello", "client_msg_id": "k1"})).await;
    for socket in [&mut alice, &mut bob] {
        let message = next_json(socket).await;
        assert_eq!(message["type"], "message", "{message}");
        assert_eq!(message["seq"], 1);
        assert_eq!(message["room_id"], room);
        assert_eq!(message["user_id"], "alice");
        assert_eq!(message["content"], "hello");
        assert_eq!(message["client_msg_id"], "k1");
        assert!(message["id"].as_i64().is_some_and(|id| id > 0));
    }
    send(&mut bob, json!({"type": "message", "content": "hi"})).await;
    assert_eq!(next_json(&mut alice).await["seq"], 2);

    send(&mut alice, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut alice).await, json!({"type": "pong"}));
    send(&mut alice, json!({"type": "message", "content": "  ", "client_msg_id": "k2"})).await;
    let error = next_json(&mut alice).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("validation_failed"))
    );
    assert_eq!(error["client_msg_id"], "k2");
}

#[tokio::test]
async fn unknown_rooms_are_refused_before_the_upgrade() {
    let server = BaselineServer::start_in_background().expect("baseline starts");
    let url = format!("{}/ws/999", server.url().replacen("http://", "ws://", 1));
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn legacy_messages_reach_both_parties() {
    let server = BaselineServer::start_in_background().expect("baseline starts");
    let mut buyer = open(&server, "/ws/chat/7/seller?user_id=buyer").await;
    let mut seller = open(&server, "/ws/chat/7/buyer?user_id=seller").await;
    // An answered frame shows each socket is registered.
    for socket in [&mut buyer, &mut seller] {
        send(socket, json!({"content": "no keys"})).await;
        assert_eq!(next_json(socket).await, json!({"error": "Invalid message format"}));
    }
    let frame =
        json!({"sender_id": "buyer", "receiver_id": "seller", "item_id": "7", "content": "210?"});
    send(&mut buyer, frame).await;
    for socket in [&mut buyer, &mut seller] {
        let message = next_json(socket).await;
        assert_eq!(message["sender_id"], "buyer");
        assert_eq!(message["receiver_id"], "seller");
        assert_eq!(message["item_id"], "7");
        assert_eq!(message["content"], "210?");
        assert!(message["timestamp"].is_string());
    }
    let to_self =
        json!({"sender_id": "buyer", "receiver_id": "buyer", "item_id": "7", "content": "x"});
    send(&mut buyer, to_self).await;
    assert_eq!(next_json(&mut buyer).await, json!({"error": "Cannot send message to yourself."}));
}

#[tokio::test]
async fn history_pages_follow_the_rooms_size() {
    let server = BaselineServer::start_in_background().expect("baseline starts");
    let room = create_room(&server, json!({"name": "big", "last_seq": 1000})).await;
    let client = reqwest::Client::new();
    let page = |query: &'static str| {
        let client = client.clone();
        let url = format!("{}/rooms/{room}/messages{query}", server.url());
        async move { client.get(url).send().await.expect("GET").json::<Value>().await.expect("JSON") }
    };
    let seqs = |page: &Value| -> Vec<i64> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|m| m["seq"].as_i64().expect("seq"))
            .collect()
    };
    let newest = page("").await;
    assert_eq!(seqs(&newest), (951..=1000).collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);
    let before = page("?before=101&limit=20").await;
    assert_eq!(seqs(&before), (81..=100).collect::<Vec<_>>());
    let first = page("?before=3").await;
    assert_eq!(seqs(&first), vec![1, 2]);
    assert_eq!(first["has_more"], false);
}

#[tokio::test]
async fn an_inbox_socket_gets_the_messages_of_its_subscribed_rooms() {
    let server = BaselineServer::start_in_background().expect("baseline starts");
    let first = create_room(&server, json!({"name": "one"})).await;
    let second = create_room(&server, json!({"name": "two"})).await;
    let mut inbox = open(&server, "/ws?user_id=alice").await;
    assert_eq!(next_json(&mut inbox).await, json!({"type": "ready", "user_id": "alice"}));
    for room in [first, second] {
        send(&mut inbox, json!({"type": "subscribe", "room_id": room})).await;
        let subscribed = next_json(&mut inbox).await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        assert_eq!((&subscribed["room_id"], &subscribed["last_seq"]), (&json!(room), &json!(0)));
    }
    send(&mut inbox, json!({"type": "subscribe", "room_id": first})).await;
    let twice = next_json(&mut inbox).await;
    assert_eq!((&twice["code"], &twice["room_id"]), (&json!("validation_failed"), &json!(first)));
    send(&mut inbox, json!({"type": "subscribe", "room_id": 999})).await;
    assert_eq!(next_json(&mut inbox).await["code"], "not_found");

    // A room socket's message reaches the inbox, tagged with its room.
    let mut bob = open(&server, &format!("/ws/{second}?user_id=bob")).await;
    assert_eq!(next_json(&mut bob).await["type"], "joined");
    send(&mut bob, json!({"type": "message", "content": "hi", "client_msg_id": "b1"})).await;
    for socket in [&mut bob, &mut inbox] {
        let message = next_json(socket).await;
        assert_eq!((&message["room_id"], &message["seq"]), (&json!(second), &json!(1)));
    }
    // The inbox posts with room_id; the room socket and the inbox both get it.
    let frame =
        json!({"type": "message", "room_id": second, "content": "yo", "client_msg_id": "a1"});
    send(&mut inbox, frame).await;
    for socket in [&mut bob, &mut inbox] {
        let message = next_json(socket).await;
        assert_eq!(message["client_msg_id"], "a1", "{message}");
        assert_eq!((&message["room_id"], &message["seq"]), (&json!(second), &json!(2)));
    }
    send(&mut inbox, json!({"type": "message", "content": "where?"})).await;
    assert_eq!(next_json(&mut inbox).await["code"], "validation_failed");
}
