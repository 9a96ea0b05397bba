//! `WS /ws`, the inbox socket: one socket for many rooms (subscribe, resume per
//! room, frames tagged with `room_id`, unsubscribe, limits), and the user's own
//! events (`room_added`, `room_removed`), on every adapter set; and across two
//! instances over Postgres and Redis.

use std::collections::HashMap;

use chat_tests::TestApp;
use chat_tests::on_every_adapter_set;
use chat_tests::socket::Socket;
use reqwest::Method;
use serde_json::{Value, json};

on_every_adapter_set!(
    subscribed_rooms_arrive_tagged_with_their_room,
    unsubscribing_stops_a_rooms_frames,
    refused_subscriptions_and_frames_keep_the_socket_open,
    the_subscription_limit_holds,
    subscribing_with_since_replays_then_goes_live,
    one_socket_in_200_rooms_gets_every_message_once_in_order,
    resuming_50_rooms_at_once_while_others_send_misses_nothing,
    a_deleted_room_ends_its_subscription_not_the_socket,
    members_hear_that_a_room_was_added_or_removed,
    a_room_socket_refuses_inbox_frames,
    an_inbox_socket_counts_once_in_its_users_presence,
    unread_counts_follow_messages_reads_and_deletions,
    a_read_frame_on_the_inbox_socket_is_seen_by_the_room,
    a_graintrade_conversation_reaches_both_inboxes,
);

/// Posts over REST as `user` and returns the stored message.
async fn post_as(app: &TestApp, room: i64, user: &str, content: &str) -> Value {
    let response = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .header("x-user-id", user)
        .json(&json!({"content": content}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn create_room_as(app: &TestApp, user: &str, body: Value) -> Value {
    let response = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", user)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// The next frame of one of `kinds`, skipping presence and unread frames.
async fn next_room_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = socket.next_json().await;
        match frame["type"].as_str() {
            Some("user_joined" | "user_left" | "presence" | "unread" | "room_added") => continue,
            _ => return frame,
        }
    }
}

async fn subscribed_rooms_arrive_tagged_with_their_room(app: TestApp) {
    let grain = app.create_room("Wheat").await;
    let oil = app.create_room("Sunflower oil").await;
    let mut alice = app.inbox_socket("alice").await;
    let first = alice.subscribe(grain, None).await;
    assert_eq!(first["room_id"], grain);
    assert_eq!(first["user_id"], "alice");
    assert_eq!(first["last_seq"], 0);
    assert!(first["users"].as_array().unwrap().iter().any(|u| u["user_id"] == "alice"));
    post_as(&app, oil, "bob", "before alice subscribed").await;
    let second = alice.subscribe(oil, None).await;
    assert_eq!(second["last_seq"], 1);

    post_as(&app, grain, "bob", "210 UAH/kg?").await;
    let frame = next_room_frame(&mut alice).await;
    assert_eq!((frame["type"].clone(), frame["room_id"].clone()), (json!("message"), json!(grain)));
    assert_eq!(frame["content"], "210 UAH/kg?");

    alice
        .send_json(json!({"type": "message", "room_id": oil, "content": "Offer 1200", "client_msg_id": "a-1"}))
        .await;
    let own = next_room_frame(&mut alice).await;
    assert_eq!(own["room_id"], oil);
    assert_eq!(own["seq"], 2);
    assert_eq!(own["user_id"], "alice");
    assert_eq!(own["client_msg_id"], "a-1");

    // Another user's typing in a subscribed room, tagged; ping answered.
    let (mut bob, _) = app.joined_socket(oil, "bob").await;
    bob.send_json(json!({"type": "typing"})).await;
    let typing = next_room_frame(&mut alice).await;
    assert_eq!(typing, json!({"type": "typing", "room_id": oil, "user_id": "bob"}));
    alice.send_json(json!({"type": "typing", "room_id": oil})).await;
    assert_eq!(bob.next_of_type("typing").await["user_id"], "alice");
    alice.send_json(json!({"type": "ping"})).await;
    assert_eq!(next_room_frame(&mut alice).await, json!({"type": "pong"}));
    bob.close().await;
    alice.close().await;
}

async fn unsubscribing_stops_a_rooms_frames(app: TestApp) {
    let left = app.create_room("Barley").await;
    let kept = app.create_room("Corn").await;
    let mut alice = app.inbox_socket("alice").await;
    alice.subscribe(left, None).await;
    alice.subscribe(kept, None).await;
    alice.send_json(json!({"type": "unsubscribe", "room_id": left})).await;
    assert_eq!(next_room_frame(&mut alice).await, json!({"type": "unsubscribed", "room_id": left}));
    // Once `unsubscribed` is out the socket is no longer among the room's
    // subscribers: the next frame can only be the kept room's message.
    post_as(&app, left, "bob", "not for alice any more").await;
    post_as(&app, kept, "bob", "still for alice").await;
    let frame = next_room_frame(&mut alice).await;
    assert_eq!(frame["room_id"], kept, "{frame}");
    assert_eq!(frame["content"], "still for alice");
    // A frame for the room left is refused, and the room can be joined again.
    alice
        .send_json(
            json!({"type": "message", "room_id": left, "content": "x", "client_msg_id": "k"}),
        )
        .await;
    let refused = next_room_frame(&mut alice).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "forbidden");
    assert_eq!(refused["client_msg_id"], "k");
    assert_eq!(refused["room_id"], left);
    let again = alice.subscribe(left, Some(0)).await;
    assert_eq!(again["last_seq"], 1);
    let replayed = next_room_frame(&mut alice).await;
    assert_eq!(replayed["content"], "not for alice any more");
    alice.close().await;
}

async fn refused_subscriptions_and_frames_keep_the_socket_open(app: TestApp) {
    let public = app.create_room("Open market").await;
    let private = create_room_as(&app, "seller", json!({"name": "Deal", "is_private": true})).await;
    let mut eve = app.inbox_socket("eve").await;
    let expect_error = |code: &'static str, room: Option<i64>| {
        move |frame: Value| {
            assert_eq!(frame["type"], "error", "{frame}");
            assert_eq!(frame["code"], code, "{frame}");
            if let Some(room) = room {
                assert_eq!(frame["room_id"], room, "{frame}");
            }
        }
    };
    eve.send_json(json!({"type": "subscribe", "room_id": 999_999})).await;
    expect_error("not_found", Some(999_999))(eve.next_json().await);
    eve.send_json(json!({"type": "subscribe", "room_id": private["id"]})).await;
    expect_error("forbidden", private["id"].as_i64())(eve.next_json().await);
    eve.send_json(json!({"type": "subscribe"})).await;
    expect_error("validation_failed", None)(eve.next_json().await);
    eve.send_json(json!({"type": "subscribe", "room_id": "one"})).await;
    expect_error("validation_failed", None)(eve.next_json().await);
    eve.send_json(json!({"type": "subscribe", "room_id": public, "since": -3})).await;
    expect_error("validation_failed", Some(public))(eve.next_json().await);
    eve.subscribe(public, None).await;
    eve.send_json(json!({"type": "subscribe", "room_id": public})).await;
    expect_error("validation_failed", Some(public))(eve.next_json().await);
    // Room frames need a subscribed room.
    eve.send_json(json!({"type": "message", "content": "where to?"})).await;
    expect_error("validation_failed", None)(eve.next_json().await);
    eve.send_json(json!({"type": "typing", "room_id": private["id"]})).await;
    expect_error("forbidden", private["id"].as_i64())(eve.next_json().await);
    eve.send_text("{not json").await;
    expect_error("invalid_json", None)(eve.next_json().await);
    // Still open and working.
    eve.send_json(json!({"type": "message", "room_id": public, "content": "hello"})).await;
    let own = next_room_frame(&mut eve).await;
    assert_eq!((own["type"].clone(), own["content"].clone()), (json!("message"), json!("hello")));
    eve.close().await;
}

async fn the_subscription_limit_holds(app: TestApp) {
    let app = app.another(|s| s.ws_max_subscriptions = 2).await;
    let rooms =
        [app.create_room("L1").await, app.create_room("L2").await, app.create_room("L3").await];
    let mut alice = app.inbox_socket("alice").await;
    alice.subscribe(rooms[0], None).await;
    alice.subscribe(rooms[1], None).await;
    alice.send_json(json!({"type": "subscribe", "room_id": rooms[2]})).await;
    let refused = next_room_frame(&mut alice).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "validation_failed");
    assert!(refused["message"].as_str().unwrap().contains('2'), "{refused}");
    // Leaving one makes room for another.
    alice.send_json(json!({"type": "unsubscribe", "room_id": rooms[0]})).await;
    assert_eq!(next_room_frame(&mut alice).await["type"], "unsubscribed");
    alice.subscribe(rooms[2], None).await;
    alice.close().await;
    app.shutdown().await;
}

async fn subscribing_with_since_replays_then_goes_live(app: TestApp) {
    let room = app.create_room("History").await;
    for n in 1..=5 {
        post_as(&app, room, "bob", &format!("m{n}")).await;
    }
    let mut alice = app.inbox_socket("alice").await;
    let subscribed = alice.subscribe(room, Some(2)).await;
    assert_eq!(subscribed["last_seq"], 5);
    for seq in 3..=5 {
        let frame = next_room_frame(&mut alice).await;
        assert_eq!((frame["seq"].clone(), frame["room_id"].clone()), (json!(seq), json!(room)));
    }
    post_as(&app, room, "bob", "m6").await;
    assert_eq!(next_room_frame(&mut alice).await["seq"], 6);
    alice.close().await;
}

/// Reads frames until every room has delivered seqs 1..=`per_room`; fails on a
/// gap, a repeat or a frame out of order.
async fn read_every_room(socket: &mut Socket, rooms: &[i64], per_room: i64, after: i64) {
    let mut next: HashMap<i64, i64> = rooms.iter().map(|room| (*room, after + 1)).collect();
    let mut done = 0;
    while done < rooms.len() {
        let frame = next_room_frame(socket).await;
        if frame["type"] != "message" {
            continue;
        }
        let room = frame["room_id"].as_i64().unwrap();
        let expected = next.get_mut(&room).expect("a frame of a subscribed room");
        assert_eq!(frame["seq"], *expected, "room {room}: seq order, no gap, no repeat");
        *expected += 1;
        if *expected == after + per_room + 1 {
            done += 1;
        }
    }
}

async fn one_socket_in_200_rooms_gets_every_message_once_in_order(app: TestApp) {
    let mut rooms = Vec::new();
    for n in 0..200 {
        rooms.push(app.create_room(&format!("Lot {n}")).await);
    }
    let mut alice = app.inbox_socket("alice").await;
    for room in &rooms {
        alice.subscribe(*room, None).await;
    }
    let senders: Vec<_> = rooms
        .chunks(50)
        .map(|chunk| {
            let app_url = app.address.clone();
            let client = app.client.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for n in 1..=3 {
                    for room in &chunk {
                        let response = client
                            .post(format!("{app_url}/rooms/{room}/messages"))
                            .header("x-user-id", "bob")
                            .json(&json!({"content": format!("bid {n}")}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 201);
                    }
                }
            })
        })
        .collect();
    read_every_room(&mut alice, &rooms, 3, 0).await;
    for sender in senders {
        sender.await.unwrap();
    }
    alice.send_json(json!({"type": "ping"})).await;
    assert_eq!(next_room_frame(&mut alice).await, json!({"type": "pong"}), "nothing more came");
    alice.close().await;
}

async fn resuming_50_rooms_at_once_while_others_send_misses_nothing(app: TestApp) {
    let mut rooms = Vec::new();
    for n in 0..50 {
        rooms.push(app.create_room(&format!("Resume {n}")).await);
    }
    let mut alice = app.inbox_socket("alice").await;
    for room in &rooms {
        alice.subscribe(*room, None).await;
    }
    for room in &rooms {
        post_as(&app, *room, "bob", "seen before the drop").await;
    }
    read_every_room(&mut alice, &rooms, 1, 0).await;
    // The connection drops; messages keep coming while the client reconnects.
    alice.close().await;
    let senders: Vec<_> = rooms
        .chunks(10)
        .map(|chunk| {
            let app_url = app.address.clone();
            let client = app.client.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for n in 1..=4 {
                    for room in &chunk {
                        let response = client
                            .post(format!("{app_url}/rooms/{room}/messages"))
                            .header("x-user-id", "bob")
                            .json(&json!({"content": format!("while away {n}")}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 201);
                    }
                }
            })
        })
        .collect();
    let mut again = app.inbox_socket("alice").await;
    for room in &rooms {
        again.send_json(json!({"type": "subscribe", "room_id": room, "since": 1})).await;
    }
    read_every_room(&mut again, &rooms, 4, 1).await;
    for sender in senders {
        sender.await.unwrap();
    }
    again.close().await;
}

async fn a_deleted_room_ends_its_subscription_not_the_socket(app: TestApp) {
    let doomed = app.create_room("Doomed").await;
    let kept = app.create_room("Kept").await;
    let mut alice = app.inbox_socket("alice").await;
    alice.subscribe(doomed, None).await;
    alice.subscribe(kept, None).await;
    assert_eq!(app.delete(&format!("/rooms/{doomed}")).await.status(), 204);
    assert_eq!(
        next_room_frame(&mut alice).await,
        json!({"type": "room_deleted", "room_id": doomed})
    );
    let removed = alice.next_of_type("room_removed").await;
    assert_eq!(removed, json!({"type": "room_removed", "room_id": doomed}));
    post_as(&app, kept, "bob", "life goes on").await;
    assert_eq!(next_room_frame(&mut alice).await["content"], "life goes on");
    alice.send_json(json!({"type": "subscribe", "room_id": doomed})).await;
    let refused = next_room_frame(&mut alice).await;
    assert_eq!(
        (refused["type"].clone(), refused["code"].clone()),
        (json!("error"), json!("not_found"))
    );
    alice.close().await;
}

async fn members_hear_that_a_room_was_added_or_removed(app: TestApp) {
    let mut buyer = app.inbox_socket("buyer").await;
    let mut seller = app.inbox_socket("seller").await;
    let room = create_room_as(
        &app,
        "seller",
        json!({"name": "Deal 1", "is_private": true, "members": ["buyer"]}),
    )
    .await;
    let id = room["id"].as_i64().unwrap();
    for socket in [&mut buyer, &mut seller] {
        let added = socket.next_of_type("room_added").await;
        assert_eq!(added["room"], room, "the whole room");
    }
    let other = create_room_as(&app, "seller", json!({"name": "Deal 2", "is_private": true})).await;
    assert_eq!(seller.next_of_type("room_added").await["room"]["id"], other["id"]);
    let added = app
        .client
        .request(Method::POST, app.url(&format!("/rooms/{}/members", other["id"])))
        .header("x-user-id", "seller")
        .json(&json!({"user_id": "buyer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    assert_eq!(buyer.next_of_type("room_added").await["room"]["id"], other["id"]);

    buyer.subscribe(id, None).await;
    let removed = app
        .client
        .request(Method::DELETE, app.url(&format!("/rooms/{id}/members/buyer")))
        .header("x-user-id", "seller")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(
        buyer.next_of_type("room_removed").await,
        json!({"type": "room_removed", "room_id": id})
    );
    // The subscription ended with it: the room's messages no longer come.
    post_as(&app, id, "seller", "for members only").await;
    buyer.send_json(json!({"type": "ping"})).await;
    assert_eq!(next_room_frame(&mut buyer).await, json!({"type": "pong"}));
    buyer.send_json(json!({"type": "subscribe", "room_id": id})).await;
    assert_eq!(next_room_frame(&mut buyer).await["code"], "forbidden");
    buyer.close().await;
    seller.close().await;
}

async fn a_room_socket_refuses_inbox_frames(app: TestApp) {
    let room = app.create_room("Plain").await;
    let other = app.create_room("Other").await;
    let (mut alice, _) = app.joined_socket(room, "alice").await;
    alice.send_json(json!({"type": "subscribe", "room_id": other})).await;
    assert_eq!(alice.next_json().await["code"], "unknown_type");
    alice.send_json(json!({"type": "message", "room_id": other, "content": "wrong room"})).await;
    let refused = alice.next_json().await;
    assert_eq!(
        (refused["code"].clone(), refused["room_id"].clone()),
        (json!("forbidden"), json!(other))
    );
    // Its own room named, or not named: both fine.
    alice.send_json(json!({"type": "message", "room_id": room, "content": "named"})).await;
    assert_eq!(alice.next_of_type("message").await["content"], "named");
    alice.send_json(json!({"type": "message", "content": "unnamed"})).await;
    assert_eq!(alice.next_of_type("message").await["content"], "unnamed");
    alice.close().await;
}

/// The next `unread` frame of `room`.
async fn next_unread(socket: &mut Socket, room: i64) -> Value {
    loop {
        let frame = socket.next_of_type("unread").await;
        if frame["room_id"] == room {
            return frame;
        }
    }
}

async fn unread_counts_follow_messages_reads_and_deletions(app: TestApp) {
    let deal = create_room_as(&app, "seller", json!({"name": "Deal", "members": ["buyer"]})).await;
    let room = deal["id"].as_i64().unwrap();
    let other = app.create_room("Elsewhere").await;
    let mut buyer = app.inbox_socket("buyer").await;
    // Not subscribed: the room is the buyer's (a member), so its counts come anyway.
    let first = post_as(&app, room, "seller", "Offer: 210 UAH/kg").await;
    assert_eq!(
        next_unread(&mut buyer, room).await,
        json!({"type": "unread", "room_id": room, "unread": 1, "last_seq": 1})
    );
    post_as(&app, room, "seller", "Valid until Friday").await;
    assert_eq!(next_unread(&mut buyer, room).await["unread"], 2);
    // The buyer's own message changes nothing; the next one of the seller counts.
    post_as(&app, room, "buyer", "Let me think").await;
    post_as(&app, room, "seller", "Ok").await;
    assert_eq!(
        next_unread(&mut buyer, room).await,
        json!({"type": "unread", "room_id": room, "unread": 3, "last_seq": 4})
    );
    // A message in a room that is not the buyer's sends nothing for it.
    post_as(&app, other, "seller", "unrelated").await;
    // Deleting one of the unread messages: counted again.
    let deleted = app
        .client
        .delete(app.url(&format!("/messages/{}", first["id"])))
        .header("x-user-id", "seller")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The post in the other room was told to this socket's hub before the
    // deletion: had it made an `unread`, that would be the next one.
    let recounted = buyer.next_of_type("unread").await;
    assert_eq!(recounted, json!({"type": "unread", "room_id": room, "unread": 2, "last_seq": 4}));
    // Reading on another device (REST) clears it here.
    let read = app
        .client
        .post(app.url(&format!("/rooms/{room}/read")))
        .header("x-user-id", "buyer")
        .json(&json!({"seq": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(
        next_unread(&mut buyer, room).await,
        json!({"type": "unread", "room_id": room, "unread": 0, "last_seq": 4})
    );
    let inbox: Value = app
        .client
        .get(app.url("/me/rooms"))
        .header("x-user-id", "buyer")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"][0]["unread"], 0, "{inbox}");
    buyer.close().await;
}

async fn a_read_frame_on_the_inbox_socket_is_seen_by_the_room(app: TestApp) {
    let room = app.create_room("Seen").await;
    post_as(&app, room, "seller", "Offer").await;
    let (mut seller, _) = app.joined_socket(room, "seller").await;
    let mut buyer = app.inbox_socket("buyer").await;
    buyer.subscribe(room, None).await;
    buyer.send_json(json!({"type": "read", "room_id": room, "seq": 1})).await;
    let seen = seller.next_of_type("read").await;
    assert_eq!(
        (seen["room_id"].clone(), seen["user_id"].clone(), seen["seq"].clone()),
        (json!(room), json!("buyer"), json!(1))
    );
    assert!(seen["read_at"].is_string(), "{seen}");
    let own = buyer.next_of_type("read").await;
    assert_eq!(own["user_id"], "buyer");
    // A read of a room not subscribed is refused.
    let elsewhere = app.create_room("Not subscribed").await;
    buyer.send_json(json!({"type": "read", "room_id": elsewhere, "seq": 1})).await;
    assert_eq!(buyer.next_of_type("error").await["code"], "forbidden");
    seller.close().await;
    buyer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_socket_on_one_instance_hears_another() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Across").await;
    let mut alice = a.inbox_socket("alice").await;
    alice.subscribe(room, None).await;
    post_as(&b, room, "bob", "from instance B").await;
    let frame = next_room_frame(&mut alice).await;
    assert_eq!(
        (frame["room_id"].clone(), frame["content"].clone()),
        (json!(room), json!("from instance B"))
    );
    let made = create_room_as(&b, "bob", json!({"name": "Made on B", "members": ["alice"]})).await;
    assert_eq!(alice.next_of_type("room_added").await["room"]["id"], made["id"]);
    // Unread counts of a message stored on B reach the socket on A.
    let made = made["id"].as_i64().unwrap();
    post_as(&b, made, "bob", "counted on A").await;
    // The new room's first count (0, read when it was added) may come first.
    let mut unread = next_unread(&mut alice, made).await;
    if unread["unread"] == 0 {
        unread = next_unread(&mut alice, made).await;
    }
    assert_eq!((unread["unread"].clone(), unread["last_seq"].clone()), (json!(1), json!(1)));
    alice.close().await;
    b.shutdown().await;
    a.shutdown().await;
}

async fn an_inbox_socket_counts_once_in_its_users_presence(app: TestApp) {
    let rooms = [app.create_room("P1").await, app.create_room("P2").await];
    let mut alice = app.inbox_socket("alice").await;
    for room in rooms {
        alice.subscribe(room, None).await;
    }
    let presence: Value = app.get("/users/alice/presence").await.json().await.unwrap();
    assert_eq!(presence["online"], true, "{presence}");
    assert_eq!(presence["connections"], 1, "one socket, however many rooms: {presence}");
    alice.close().await;
}

async fn a_graintrade_conversation_reaches_both_inboxes(app: TestApp) {
    let mut seller = app.inbox_socket("seller7").await;
    let mut buyer = app.inbox_socket("buyer1").await;
    let mut legacy = app.socket_at("/ws/chat/77/seller7?user_id=buyer1").await;
    legacy
        .send_json(json!({"sender_id": "buyer1", "receiver_id": "seller7", "item_id": "77", "content": "Final price?"}))
        .await;
    // The conversation's room is new: both parties are its members.
    let added = seller.next_of_type("room_added").await;
    assert_eq!(added["room"]["item_id"], "77", "{added}");
    assert_eq!(added["room"]["is_private"], true);
    let room = added["room"]["id"].as_i64().unwrap();
    assert_eq!(buyer.next_of_type("room_added").await["room"]["id"], room);
    // The receiver's count: the message (whether the room's first count or the
    // message's own notice comes first, it ends at 1).
    let mut unread = next_unread(&mut seller, room).await;
    if unread["unread"] == 0 {
        unread = next_unread(&mut seller, room).await;
    }
    assert_eq!((unread["unread"].clone(), unread["last_seq"].clone()), (json!(1), json!(1)));
    // A second message to an existing conversation announces no room again.
    legacy
        .send_json(json!({"sender_id": "buyer1", "receiver_id": "seller7", "item_id": "77", "content": "Or 205?"}))
        .await;
    let next = next_unread(&mut seller, room).await;
    assert_eq!((next["unread"].clone(), next["last_seq"].clone()), (json!(2), json!(2)));
    seller.send_json(json!({"type": "ping"})).await;
    loop {
        let frame = seller.next_json().await;
        assert_ne!(frame["type"], "room_added", "announced once: {frame}");
        if frame["type"] == "pong" {
            break;
        }
    }
    legacy.close().await;
    seller.close().await;
    buyer.close().await;
}
