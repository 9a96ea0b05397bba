//! Per-room fan-out between instances (Postgres + Redis): an instance reads
//! from Redis only the deliveries of rooms (and users) its sockets are in,
//! drops a room's channel a little after its last socket left, and a socket
//! that joins on one instance while another posts misses nothing.

use std::time::Duration;

use chat_tests::TestApp;
use chat_tests::metrics::Scrape;
use chat_tests::proxy::Proxy;
use serde_json::{Value, json};

const RECEIVED: &str = "chat_bus_received_total";
const CHANNELS: &str = "chat_bus_channels";

/// Scrapes `app` until `done` holds, for at most 30 s.
async fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let scrape = Scrape::of(app).await;
        if done(&scrape) || tokio::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(app: &TestApp, room: i64, user: &str, content: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .header("x-user-id", user)
        .json(&json!({"content": content}))
        .send()
        .await
        .expect("request is sent");
    assert_eq!(response.status(), 201);
    response.json().await.expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_reads_only_the_rooms_its_sockets_are_in() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let only_a = a.create_room("Only on A").await;
    let both = a.create_room("On both").await;
    let (mut alice, _) = a.joined_socket(only_a, "alice").await;
    let (_carol, _) = a.joined_socket(both, "carol").await;
    let (mut dave, _) = b.joined_socket(both, "dave").await;
    let subscribed = scrape_until(&a, |s| s.value(CHANNELS, &[]) == 2.0).await;
    assert_eq!(subscribed.value(CHANNELS, &[]), 2.0, "A listens to its two rooms");
    assert_eq!(Scrape::of(&b).await.value(CHANNELS, &[]), 1.0, "B listens to its one room");

    let before = Scrape::of(&b).await.value(RECEIVED, &[]);
    for n in 0..20 {
        post(&a, only_a, "alice", &format!("only A's sockets see this {n}")).await;
    }
    let last = post(&a, both, "carol", "everyone sees this").await;
    // Redis hands a subscriber its messages in publish order: once dave has
    // the last one, B has been given everything A published for it.
    let seen = dave.next_of_type("message").await;
    assert_eq!(seen["id"], last["id"]);
    let after = Scrape::of(&b).await.value(RECEIVED, &[]);
    assert_eq!(after - before, 1.0, "B received the one delivery of the room it is in");
    for n in 0..20 {
        let message = alice.next_of_type("message").await;
        assert_eq!(message["content"], format!("only A's sockets see this {n}"));
    }
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_is_dropped_a_little_after_its_last_socket_left() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let room = a.create_room("Leaving").await;
    let (socket, _) = a.joined_socket(room, "erin").await;
    let on = scrape_until(&a, |s| s.value(CHANNELS, &[]) == 1.0).await;
    assert_eq!(on.value(CHANNELS, &[]), 1.0);
    socket.close().await;
    let off = scrape_until(&a, |s| s.value(CHANNELS, &[]) == 0.0).await;
    assert_eq!(off.value(CHANNELS, &[]), 0.0, "unsubscribed once nobody is in the room");
    a.shutdown().await;
}

/// Sockets join the room on B, one after another, while A posts 150 messages:
/// each gets every message after the `last_seq` of its `joined`, in order, with
/// no gap, however its subscription raced the posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_joining_while_another_instance_posts_misses_nothing() {
    const MESSAGES: i64 = 150;
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Busy").await;
    let poster = {
        let a_client = a.client.clone();
        let url = a.url(&format!("/rooms/{room}/messages"));
        tokio::spawn(async move {
            for n in 1..=MESSAGES {
                let response = a_client
                    .post(&url)
                    .header("x-user-id", "poster")
                    .json(&json!({"content": format!("m{n}")}))
                    .send()
                    .await
                    .expect("request is sent");
                assert_eq!(response.status(), 201);
            }
        })
    };
    let mut sockets = Vec::new();
    for n in 0..6 {
        let (socket, joined) = b.joined_socket(room, &format!("joiner{n}")).await;
        sockets.push((socket, joined["last_seq"].as_i64().expect("last_seq")));
    }
    poster.await.expect("posting ends");
    for (mut socket, floor) in sockets {
        for seq in floor + 1..=MESSAGES {
            let message = socket.next_of_type("message").await;
            assert_eq!(message["seq"], seq, "joined at {floor}: every later seq, in order");
        }
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// Senders on two instances post into one room at once, so each instance's
/// pump gets the room's seqs out of order (its own at once, the other's a moment
/// later over Redis): every socket on both still sees every message once, in seq
/// order, and an edit never arrives before the message it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_two_instances_interleave_and_every_socket_sees_seq_order() {
    const EACH: usize = 100;
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Interleaved").await;
    let (mut watch_a, _) = a.joined_socket(room, "watcher-a").await;
    let (mut watch_b, _) = b.joined_socket(room, "watcher-b").await;
    let (mut alice, _) = a.joined_socket(room, "alice").await;
    let (mut bob, _) = b.joined_socket(room, "bob").await;
    for n in 0..EACH {
        let frame = |who: &str| json!({"type": "message", "content": format!("{who} {n}"), "client_msg_id": format!("{who}-{n}")});
        alice.send_json(frame("alice")).await;
        bob.send_json(frame("bob")).await;
    }
    let total = (2 * EACH) as i64;
    for watcher in [&mut watch_a, &mut watch_b] {
        for seq in 1..=total {
            let message = watcher.next_of_type("message").await;
            assert_eq!(message["seq"], seq, "every seq once, in order");
        }
    }
    // The last message, edited as soon as it is stored: its edit comes after it.
    let last = a.post_message(room, "alice", "to be edited").await;
    let edited = a
        .patch(
            &format!("/messages/{}", last["id"]),
            json!({"content": "edited", "user_id": "alice"}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    let first = watch_b.next_json().await;
    assert_eq!(
        (first["type"].as_str(), first["seq"].as_i64()),
        (Some("message"), Some(total + 1)),
        "{first}"
    );
    assert_eq!(watch_b.next_of_type("message_updated").await["content"], "edited");
}

/// B's Redis stalls while a socket joins there, so B cannot subscribe to the
/// room's channel in time and a message A posts meanwhile never reaches B by
/// Redis. Once Redis answers again, the subscription takes effect and the room
/// catches up from the database: the socket gets the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_subscribed_late_catches_up_from_storage() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let redis_url = a.settings.redis_url.clone().expect("Redis");
    let address =
        redis_url.trim_start_matches("redis://").split('/').next().unwrap_or("").to_owned();
    let proxy = Proxy::start(&address).await;
    let through = redis_url.replacen(&address, &format!("127.0.0.1:{}", proxy.port), 1);
    let b = a.another(|settings| settings.redis_url = Some(through)).await;
    let room = a.create_room("Late").await;
    proxy.stall();
    let (mut socket, _) = b.joined_socket(room, "late").await;
    let message = post(&a, room, "poster", "while B could not subscribe").await;
    proxy.restore();
    let delivered = socket.next_of_type("message").await;
    assert_eq!(delivered["id"], message["id"]);
    b.shutdown().await;
    a.shutdown().await;
}

/// Alice's inbox socket is on B; she posts for the first time in a room
/// through A, where nothing of B listens. Her inbox still takes the room in:
/// the bus copies a first message of a user in a room to the user's channel.
/// Carol's next message there is then counted as unread on alice's socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_on_another_instance_takes_in_a_room_its_user_posted_in() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Posted in").await;
    let mut inbox = b.inbox_socket("alice").await;
    let listening = scrape_until(&b, |s| s.value(CHANNELS, &[]) == 1.0).await;
    assert_eq!(listening.value(CHANNELS, &[]), 1.0, "B listens to alice's channel only");
    post(&a, room, "alice", "my first words here").await;
    // Her inbox now watches the room: B subscribes to it.
    let watching = scrape_until(&b, |s| s.value(CHANNELS, &[]) == 2.0).await;
    assert_eq!(watching.value(CHANNELS, &[]), 2.0, "B listens to the room too");
    let answer = post(&a, room, "carol", "welcome").await;
    loop {
        let frame = inbox.next_of_type("unread").await;
        if frame["room_id"] == room && frame["unread"] == 1 {
            assert_eq!(frame["last_seq"], answer["seq"]);
            break;
        }
    }
    b.shutdown().await;
    a.shutdown().await;
}
