//! Inbound `chat.commands` from other GrainTrade services, against the real
//! broker: commands post once however often they are delivered, poison commands
//! are dead-lettered with their reason, and the consumer keeps going.

use chat_tests::rabbit::{CommandQueue, EventTap};
use chat_tests::{TestApp, reachable_rabbitmq};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_post_once_and_poison_is_dead_lettered() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let mut commands = CommandQueue::open(&url, &app.settings.rabbitmq_commands_queue).await;
    let room = app.create_room("Offer 77").await;
    let (mut watcher, _) = app.joined_socket(room, "buyer").await;

    let command = json!({
        "command": "post_message", "room_id": room, "content": "Price changed to 210 UAH/kg",
        "message_type": "system", "user_id": "offers-service", "client_msg_id": "offer-77-v3"
    })
    .to_string();
    commands.send(&command).await;
    let frame = watcher.next_of_type("message").await;
    assert_eq!(frame["content"], "Price changed to 210 UAH/kg");
    assert_eq!(frame["message_type"], "system");
    assert_eq!(frame["user_id"], "offers-service");
    assert_eq!(frame["client_msg_id"], "offer-77-v3");

    // Redelivery (the same command again) stores and broadcasts nothing new.
    commands.send(&command).await;
    commands.send("{not json").await;
    let (body, reason) = commands.next_dead_letter().await;
    assert_eq!(body, "{not json");
    assert!(reason.contains("x-reject-reason") && reason.contains("invalid command"), "{reason}");

    let unknown_room = json!({"command": "post_message", "room_id": 987654, "content": "hi", "user_id": "offers-service"});
    commands.send(&unknown_room.to_string()).await;
    let (_, reason) = commands.next_dead_letter().await;
    assert!(reason.contains("not found"), "{reason}");
    let empty = json!({"command": "post_message", "room_id": room, "content": "  ", "user_id": "offers-service"});
    commands.send(&empty.to_string()).await;
    let (_, reason) = commands.next_dead_letter().await;
    assert!(reason.contains("content"), "{reason}");
    let unknown_command =
        json!({"command": "drop_tables", "room_id": room, "content": "x", "user_id": "s"});
    commands.send(&unknown_command.to_string()).await;
    let (_, reason) = commands.next_dead_letter().await;
    assert!(reason.contains("unknown command"), "{reason}");

    // The consumer keeps going after poison.
    commands.send(&json!({"command": "post_message", "room_id": room, "content": "still consuming", "user_id": "offers-service"}).to_string()).await;
    assert_eq!(watcher.next_of_type("message").await["content"], "still consuming");

    let history: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    let contents: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        vec!["Price changed to 210 UAH/kg", "still consuming"],
        "the repeat posted nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_request_id_travels_to_its_events() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let commands = CommandQueue::open(&url, &app.settings.rabbitmq_commands_queue).await;
    let room = app.create_room("Offer 78").await;
    let service = format!("offers-{}", uuid::Uuid::new_v4().simple());
    let request_id = format!("offers-req-{}", uuid::Uuid::new_v4());
    let command = json!({"command": "post_message", "room_id": room, "content": "traced",
                         "user_id": service});
    commands.send_with(&command.to_string(), Some(&request_id)).await;
    let event = tap.next_for(&service).await;
    assert_eq!(event.body["event_type"], "message_created");
    assert_eq!(event.request_id.as_deref(), Some(request_id.as_str()));
}
