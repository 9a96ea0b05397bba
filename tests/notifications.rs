//! Notifications for people who are away, read off RabbitMQ as the
//! notifications service would: one `notification_requested` per user and room
//! for a burst of messages, none for what the user read, none while a socket
//! of theirs is in the room on another instance, again once they left.
//!
//! Each proof that an event did NOT come uses a sentinel: a second member whose
//! notification is due from the same messages. The job records a run's users in
//! one transaction, in user-name order, and the relay publishes in that order,
//! so a notification of `…-bob` would come before the one of `…-carol`.

use chat_tests::rabbit::{EVENT_WAIT, EventTap, Tapped};
use chat_tests::{TestApp, fresh_postgres_database, reachable_rabbitmq, reachable_redis};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// Seconds an unread message waits here (the default is a minute).
const NOTIFY_AFTER_SECS: u64 = 2;

/// A prefix no other test uses (the broker is shared); every user of one test
/// starts with it, so the tap sees that test's events only.
fn prefix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The service on SQLite, relaying its events to RabbitMQ, notifying soon.
async fn sqlite_app(rabbitmq_url: &str) -> TestApp {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    let mut settings = chat_tests::test_settings(&format!("sqlite://{}?mode=rwc", file.display()));
    settings.rabbitmq_url = Some(rabbitmq_url.to_owned());
    settings.notify_after_secs = NOTIFY_AFTER_SECS;
    TestApp::start_with(settings).await
}

/// The service on Postgres + Redis + RabbitMQ, notifying soon.
async fn full_app(rabbitmq_url: &str) -> Option<TestApp> {
    let redis_url = reachable_redis().await?;
    let database_url = fresh_postgres_database().await?;
    let mut settings = chat_tests::full_settings(&database_url, &redis_url, rabbitmq_url);
    settings.notify_after_secs = NOTIFY_AFTER_SECS;
    Some(TestApp::start_with(settings).await)
}

/// Runs `scenario` on SQLite and on the full adapter set, each with its tap.
macro_rules! on_sqlite_and_full {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = chat_tests::reachable_rabbitmq().await else { return };
                    let tap = chat_tests::rabbit::EventTap::open(&url).await;
                    super::$name(super::sqlite_app(&url).await, tap).await;
                }
            )*
        }
        mod full {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = chat_tests::reachable_rabbitmq().await else { return };
                    let tap = chat_tests::rabbit::EventTap::open(&url).await;
                    let Some(app) = super::full_app(&url).await else { return };
                    let settings = app.settings.clone();
                    super::$name(app, tap).await;
                    chat_tests::clean_up(&settings).await;
                }
            )*
        }
    };
}

on_sqlite_and_full!(
    a_burst_is_one_notification_until_the_room_is_read,
    nobody_is_notified_of_what_they_read,
);

async fn send(app: &TestApp, user: &str, method: Method, path: &str, body: Value) -> Response {
    app.client
        .request(method, app.url(path))
        .header("x-user-id", user)
        .json(&body)
        .send()
        .await
        .expect("request is sent")
}

async fn json_of(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    response.json().await.expect("JSON body")
}

/// A room of `alice` with the given members.
async fn room_with(app: &TestApp, alice: &str, members: &[&str]) -> i64 {
    let body = json!({"name": "Away", "members": members});
    let room = json_of(send(app, alice, Method::POST, "/rooms", body).await, 201).await;
    room["id"].as_i64().expect("room id")
}

async fn post(app: &TestApp, room: i64, user: &str, content: &str) -> Value {
    let path = format!("/rooms/{room}/messages");
    json_of(send(app, user, Method::POST, &path, json!({"content": content})).await, 201).await
}

async fn read_up_to(app: &TestApp, room: i64, user: &str, seq: i64) {
    let path = format!("/rooms/{room}/read");
    json_of(send(app, user, Method::POST, &path, json!({"seq": seq})).await, 200).await;
}

/// Reads the test's events until the notification of `user`; panics on a
/// notification of anyone in `not_for` on the way.
async fn notification_of(tap: &mut EventTap, prefix: &str, user: &str, not_for: &[&str]) -> Tapped {
    loop {
        let Some(event) = tap.try_next_for(prefix, EVENT_WAIT).await else {
            panic!("no notification_requested for {user} within {EVENT_WAIT:?}");
        };
        if event.body["event_type"] != "notification_requested" {
            continue;
        }
        let to = event.body["user_id"].as_str().expect("user_id");
        assert!(!not_for.contains(&to), "a notification that must not be sent: {}", event.body);
        if to == user {
            return event;
        }
    }
}

/// Checks the whole event as API.md gives it.
fn assert_notification(event: &Tapped, user: &str, room: i64, unread: u64, last: &Value) {
    let body = &event.body;
    assert_eq!(event.routing_key, "notification.requested", "{body}");
    assert_eq!(event.message_id.as_deref(), body["event_id"].as_str(), "AMQP id is the event id");
    assert!(uuid::Uuid::parse_str(body["event_id"].as_str().expect("event_id")).is_ok());
    assert_eq!(body["event_type"], "notification_requested");
    assert_eq!(body["user_id"], user);
    assert_eq!(body["room_id"], room);
    assert_eq!(body["unread"], unread, "{body}");
    let quoted: String = last["content"].as_str().expect("content").chars().take(200).collect();
    assert_eq!(
        body["last_message"],
        json!({"id": last["id"], "user_id": last["user_id"], "content": quoted}),
        "the newest unread message, its text cut to 200 characters"
    );
    let at = body["timestamp"].as_str().expect("timestamp");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "timestamp {at}");
}

async fn a_burst_is_one_notification_until_the_room_is_read(app: TestApp, mut tap: EventTap) {
    let p = prefix();
    let (alice, bob, carol) = (format!("{p}-alice"), format!("{p}-bob"), format!("{p}-carol"));
    let room = room_with(&app, &alice, &[&bob, &carol]).await;
    let mut burst = Vec::new();
    for n in 1..=4 {
        burst.push(post(&app, room, &alice, &format!("offer {n}")).await);
    }
    // The newest is quoted: a long one, in letters of two bytes.
    burst.push(post(&app, room, &alice, &"ж".repeat(300)).await);
    let last = burst.last().expect("a burst");

    let mut bob_heard = None;
    let mut carol_heard = None;
    while bob_heard.is_none() || carol_heard.is_none() {
        let event = tap.try_next_for(&p, EVENT_WAIT).await.expect("both are notified");
        if event.body["event_type"] != "notification_requested" {
            continue;
        }
        let slot = if event.body["user_id"] == bob.as_str() {
            &mut bob_heard
        } else if event.body["user_id"] == carol.as_str() {
            &mut carol_heard
        } else {
            panic!("a notification of someone who read or wrote everything: {}", event.body);
        };
        assert!(slot.is_none(), "a second notification for one burst: {}", event.body);
        *slot = Some(event);
    }
    assert_notification(&bob_heard.expect("bob"), &bob, room, 5, last);
    assert_notification(&carol_heard.expect("carol"), &carol, room, 5, last);

    // Carol reads; bob does not. New messages notify carol again, not bob.
    read_up_to(&app, room, &carol, last["seq"].as_i64().expect("seq")).await;
    let mut more = Vec::new();
    for n in 6..=8 {
        more.push(post(&app, room, &alice, &format!("offer {n}")).await);
    }
    let again = notification_of(&mut tap, &p, &carol, &[&bob]).await;
    assert_notification(&again, &carol, room, 3, more.last().expect("more"));
}

async fn nobody_is_notified_of_what_they_read(app: TestApp, mut tap: EventTap) {
    let p = prefix();
    let (alice, bob, carol) = (format!("{p}-alice"), format!("{p}-bob"), format!("{p}-carol"));
    let room = room_with(&app, &alice, &[&bob, &carol]).await;
    let first = post(&app, room, &alice, "fresh wheat, 210 UAH/kg").await;
    read_up_to(&app, room, &bob, first["seq"].as_i64().expect("seq")).await;
    let carols = notification_of(&mut tap, &p, &carol, &[&bob]).await;
    assert_notification(&carols, &carol, room, 1, &first);

    // What bob has not read yet notifies him.
    let second = post(&app, room, &alice, "still there?").await;
    let bobs = notification_of(&mut tap, &p, &bob, &[]).await;
    assert_notification(&bobs, &bob, room, 1, &second);
}

/// Bob is in the room through instance B (a room socket), dave through an
/// inbox socket subscribed to it there; alice posts through instance A, where
/// neither has a socket. Neither is notified while there; both once they left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_is_notified_while_in_the_room_on_another_instance() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(a) = full_app(&url).await else { return };
    let b = a.another(|_| {}).await;
    let p = prefix();
    let (alice, bob, carol, dave) =
        (format!("{p}-alice"), format!("{p}-bob"), format!("{p}-carol"), format!("{p}-dave"));
    let room = room_with(&a, &alice, &[&bob, &carol, &dave]).await;
    let (bob_socket, _) = b.joined_socket(room, &bob).await;
    let mut dave_socket = b.inbox_socket(&dave).await;
    dave_socket.subscribe(room, None).await;

    let first = post(&a, room, &alice, "offer for the two of you").await;
    let carols = notification_of(&mut tap, &p, &carol, &[&bob, &dave]).await;
    assert_notification(&carols, &carol, room, 1, &first);

    bob_socket.close().await;
    dave_socket.send_json(json!({"type": "unsubscribe", "room_id": room})).await;
    assert_eq!(dave_socket.next_of_type("unsubscribed").await["room_id"], room);
    let mut left = [bob.clone(), dave.clone()];
    let mut heard = Vec::new();
    while heard.len() < left.len() {
        let event = tap.try_next_for(&p, EVENT_WAIT).await.expect("both are notified once away");
        if event.body["event_type"] != "notification_requested" {
            continue;
        }
        let to = event.body["user_id"].as_str().expect("user_id").to_owned();
        assert!(left.contains(&to) && !heard.contains(&to), "unexpected: {}", event.body);
        assert_notification(&event, &to, room, 1, &first);
        heard.push(to);
    }
    left.sort();
    heard.sort();
    assert_eq!(heard, left);
    let settings = a.settings.clone();
    b.shutdown().await;
    a.shutdown().await;
    chat_tests::clean_up(&settings).await;
}
