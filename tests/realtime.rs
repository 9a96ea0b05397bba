//! `WS /ws/{room_id}` with real tokio-tungstenite clients against the running
//! service, on SQLite and on Postgres: frames, presence (coalesced in big rooms),
//! ordering under concurrency, resume, limits, heartbeat and shutdown.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chat_tests::contract::Contract;
use chat_tests::socket::{Ended, Socket};
use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_every_adapter_set!(
    joined_then_own_message_comes_back,
    changes_made_over_rest_reach_sockets,
    deleting_the_room_closes_its_sockets_with_4404,
    presence_counts_users_not_sockets,
    typing_and_ping,
    bad_frames_get_error_frames_and_the_socket_stays_open,
    oversized_frame_closes_with_1009,
    unknown_rooms_are_404_before_the_upgrade,
    twenty_clients_five_senders_same_order,
    resume_while_others_send_loses_and_duplicates_nothing,
    idempotent_repeat_over_the_socket,
    slow_reader_is_closed_with_1013_and_others_keep_receiving,
    silent_peer_is_closed_after_the_pong_timeout,
    shutdown_closes_sockets_with_1001,
    development_mode_addresses_rooms_by_name,
    only_allowed_origins_open_sockets,
    big_rooms_get_presence_frames_instead_of_user_joined_and_left,
    a_join_storm_closes_no_socket,
    joined_in_a_big_room_lists_a_few_users_the_joiner_among_them,
    joined_in_a_big_room_counts_every_socket_of_each_listed_user,
    joined_in_a_big_room_lists_nobody_who_left,
);

async fn only_allowed_origins_open_sockets(app: TestApp) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = app.another(|s| s.cors_origins = Some("https://graintrade.example".to_owned())).await;
    let room = app.create_room("Origins").await;
    let open_from = |origin: &str| {
        let mut request = app.ws_url(&format!("/ws/{room}")).into_client_request().unwrap();
        request.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    assert!(open_from("https://graintrade.example").await.is_ok());
    // The built-in page at the service's own address: its origin names the host
    // the upgrade goes to, whatever CORS_ORIGINS lists.
    assert!(open_from(&app.address).await.is_ok(), "the service's own origin {}", app.address);
    let port: u16 = app.address.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    for origin in ["https://evil.example", other_port.as_str()] {
        match open_from(origin).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}")
            }
            other => panic!("expected 403 for {origin}, got {other:?}"),
        }
    }
}

/// The seed's examples connect to `/ws/room_123`: in development that names a room.
async fn development_mode_addresses_rooms_by_name(app: TestApp) {
    let mut first = app.socket_at("/ws/room_123").await;
    let joined = first.next_json().await;
    assert_eq!(joined["type"], "joined");
    let room = joined["room_id"].as_i64().unwrap();
    let fetched: Value = app.get(&format!("/rooms/{room}")).await.json().await.unwrap();
    assert_eq!(fetched["name"], "room_123");
    let mut second = app.socket_at("/ws/room_123?user_id=user_456").await;
    assert_eq!(second.next_json().await["room_id"], room, "the same name is the same room");
    second
        .send_json(
            json!({"type": "message", "content": "Hello from Python!", "user_id": "user_456"}),
        )
        .await;
    let frame = first.next_of_type("message").await;
    assert_eq!(frame["room_id"], room);
    assert_eq!(frame["content"], "Hello from Python!");
}

async fn joined_then_own_message_comes_back(app: TestApp) {
    let room = app.create_room("Live").await;
    app.post_message(room, "earlier", "before anyone joined").await;
    let (mut alice, joined) = app.joined_socket(room, "alice").await;
    assert_eq!(joined["room_id"], room);
    assert_eq!(joined["user_id"], "alice");
    assert_eq!(joined["last_seq"], 1);
    let users = joined["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["user_id"], "alice");
    assert_eq!(users[0]["connections"], 1);

    // The seed's frame, verbatim: the frame's user_id is the author.
    alice
        .send_json(json!({"type": "message", "content": "Hello, everyone!", "user_id": "user_123"}))
        .await;
    let frame = alice.next_of_type("message").await;
    assert_eq!(frame["seq"], 2);
    assert_eq!(frame["room_id"], room);
    assert_eq!(frame["user_id"], "user_123");
    assert_eq!(frame["content"], "Hello, everyone!");
    assert_eq!(frame["message_type"], "text");
    assert_eq!(frame["edited"], false);
    for field in ["id", "client_msg_id", "created_at", "updated_at"] {
        assert!(frame.get(field).is_some(), "message frame has {field}: {frame}");
    }
    let stored: Value = app.get(&format!("/messages/{}", frame["id"])).await.json().await.unwrap();
    let mut expected = stored.clone();
    expected["type"] = json!("message");
    assert_eq!(frame, expected, "the frame is the stored message");
}

async fn changes_made_over_rest_reach_sockets(app: TestApp) {
    let room = app.create_room("Mixed").await;
    let (mut bob, _) = app.joined_socket(room, "bob").await;
    let posted = app.post_message(room, "carol", "posted over REST").await;
    let frame = bob.next_of_type("message").await;
    assert_eq!(frame["id"], posted["id"]);
    assert_eq!(frame["content"], "posted over REST");

    let path = format!("/messages/{}", posted["id"]);
    let edited = app
        .client
        .patch(app.url(&path))
        .header("x-user-id", "carol")
        .json(&json!({"content": "edited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let update = bob.next_of_type("message_updated").await;
    assert_eq!(update["id"], posted["id"]);
    assert_eq!(update["content"], "edited");
    assert_eq!(update["edited"], true);
    assert_eq!(update["seq"], posted["seq"]);

    let deleted =
        app.client.delete(app.url(&path)).header("x-user-id", "carol").send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = bob.next_of_type("message_deleted").await;
    assert_eq!(
        gone,
        json!({"type": "message_deleted", "id": posted["id"], "room_id": room, "seq": posted["seq"]})
    );
}

async fn deleting_the_room_closes_its_sockets_with_4404(app: TestApp) {
    let room = app.create_room("Doomed").await;
    let (mut a, _) = app.joined_socket(room, "a").await;
    let (mut b, _) = app.joined_socket(room, "b").await;
    assert_eq!(app.delete(&format!("/rooms/{room}")).await.status(), 204);
    for socket in [&mut a, &mut b] {
        let frame = socket.next_of_type("room_deleted").await;
        assert_eq!(frame, json!({"type": "room_deleted", "room_id": room}));
        assert_eq!(socket.until_closed().await, Ended::Closed(Some(4404)));
    }
}

async fn presence_counts_users_not_sockets(app: TestApp) {
    let room = app.create_room("Presence").await;
    let (mut alice, _) = app.joined_socket(room, "alice").await;
    let (mut bob1, joined) = app.joined_socket(room, "bob").await;
    let names: HashSet<&str> = joined["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, HashSet::from(["alice", "bob"]));
    let arrival = alice.next_json().await;
    assert_eq!(arrival["type"], "user_joined");
    assert_eq!(arrival["user_id"], "bob");
    assert_eq!(arrival["room_id"], room);
    assert!(arrival["timestamp"].as_str().unwrap().ends_with('Z'));

    let (bob2, _) = app.joined_socket(room, "bob").await;
    let users: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
    let bob =
        users["items"].as_array().unwrap().iter().find(|u| u["user_id"] == "bob").unwrap().clone();
    assert_eq!(bob["connections"], 2);
    assert!(bob["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(users["items"].as_array().unwrap().len(), 2);

    // bob's second socket and the close of his first announce nothing…
    bob1.send_json(json!({"type": "ping"})).await;
    assert_eq!(bob1.next_json().await["type"], "pong");
    bob1.close().await;
    alice.send_json(json!({"type": "ping"})).await;
    assert_eq!(
        alice.next_json().await,
        json!({"type": "pong"}),
        "no presence frame for a second socket"
    );
    // …the close of his last one does.
    bob2.close().await;
    let left = alice.next_json().await;
    assert_eq!(left["type"], "user_left");
    assert_eq!(left["user_id"], "bob");
    let users: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    assert_eq!(users["items"][0]["user_id"], "alice");
}

async fn typing_and_ping(app: TestApp) {
    let room = app.create_room("Typing").await;
    let (mut alice, _) = app.joined_socket(room, "alice").await;
    let (mut bob, _) = app.joined_socket(room, "bob").await;
    assert_eq!(alice.next_json().await["type"], "user_joined");
    alice.send_json(json!({"type": "typing"})).await;
    // Alice's own `user_joined` may still reach bob: it can be on its way
    // through the room's pump when bob joins.
    assert_eq!(
        bob.next_of_type("typing").await,
        json!({"type": "typing", "room_id": room, "user_id": "alice"})
    );
    alice.send_json(json!({"type": "ping"})).await;
    assert_eq!(
        alice.next_json().await,
        json!({"type": "pong"}),
        "the typist does not see its own typing"
    );
    let history: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(history["items"], json!([]), "typing is not persisted");
}

async fn bad_frames_get_error_frames_and_the_socket_stays_open(app: TestApp) {
    let room = app.create_room("Errors").await;
    let (mut socket, _) = app.joined_socket(room, "alice").await;
    for (frame, code) in [
        ("{not json", "invalid_json"),
        ("\"just a string\"", "unknown_type"),
        (r#"{"type": "dance"}"#, "unknown_type"),
        (r#"{"content": "no type"}"#, "unknown_type"),
        (r#"{"type": "message", "content": ""}"#, "validation_failed"),
        (r#"{"type": "message", "content": "   "}"#, "validation_failed"),
        (r#"{"type": "message"}"#, "validation_failed"),
        (r#"{"type": "message", "content": "x", "message_type": "shout"}"#, "validation_failed"),
        (r#"{"type": "message", "content": "x", "message_type": "system"}"#, "forbidden"),
    ] {
        socket.send_text(frame).await;
        let error = socket.next_json().await;
        assert_eq!(error["type"], "error", "{frame} → {error}");
        assert_eq!(error["code"], code, "{frame} → {error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    socket.send_json(json!({"type": "message", "content": "", "client_msg_id": "k-9"})).await;
    let error = socket.next_json().await;
    assert_eq!(error["client_msg_id"], "k-9", "the rejected frame is identified");

    socket
        .stream
        .send(tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(socket.next_json().await["type"], "error");

    socket.send_json(json!({"type": "message", "content": "still here"})).await;
    let message = socket.next_json().await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["seq"], 1, "nothing invalid was stored");
}

async fn oversized_frame_closes_with_1009(app: TestApp) {
    let room = app.create_room("Big").await;
    let (mut socket, _) = app.joined_socket(room, "alice").await;
    let huge =
        json!({"type": "message", "content": "x".repeat(app.settings.ws_max_frame_bytes + 10)});
    let _ = socket
        .stream
        .send(tokio_tungstenite::tungstenite::Message::Text(huge.to_string().into()))
        .await;
    assert_eq!(socket.until_closed().await, Ended::Closed(Some(1009)));
    let history: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(history["items"], json!([]));
}

async fn unknown_rooms_are_404_before_the_upgrade(app: TestApp) {
    let room = app.create_room("Short-lived").await;
    assert_eq!(app.delete(&format!("/rooms/{room}")).await.status(), 204);
    for path in ["/ws/999999", "/ws/0", "/ws/-4", &format!("/ws/{room}")] {
        let error =
            tokio_tungstenite::connect_async(app.ws_url(path)).await.expect_err("upgrade refused");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), 404, "{path}")
            }
            other => panic!("expected an HTTP 404 for {path}, got {other:?}"),
        }
    }
    // A plain GET (no upgrade) of a real room's socket path is a client error, in the API's shape.
    let live = app.create_room("Live").await;
    let plain = app.get(&format!("/ws/{live}")).await;
    assert!(plain.status().is_client_error());
    let body: Value = plain.json().await.unwrap();
    assert!(body["error"]["code"].is_string());
    assert_error(app.get("/ws/31337").await, 404, "not_found").await;
    assert_error(app.get(&format!("/ws/{live}?since=-1")).await, 400, "bad_request").await;
}

async fn twenty_clients_five_senders_same_order(app: TestApp) {
    const CLIENTS: usize = 20;
    const SENDERS: usize = 5;
    const PER_SENDER: usize = 20;
    const TOTAL: usize = SENDERS * PER_SENDER;
    let room = app.create_room("Crowd").await;
    let mut sockets = Vec::new();
    for i in 0..CLIENTS {
        sockets.push(app.joined_socket(room, &format!("user{i}")).await.0);
    }
    let mut tasks = Vec::new();
    for (i, mut socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            if i < SENDERS {
                for n in 0..PER_SENDER {
                    socket
                        .send_json(json!({"type": "message", "content": format!("{i}:{n}")}))
                        .await;
                }
            }
            let mut received = Vec::new();
            while received.len() < TOTAL {
                let frame = socket.next_json().await;
                if frame["type"] == "message" {
                    received.push((
                        frame["seq"].as_i64().unwrap(),
                        frame["content"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            received
        }));
    }
    let mut streams = Vec::new();
    for task in tasks {
        streams.push(task.await.unwrap());
    }
    let first = &streams[0];
    let seqs: Vec<i64> = first.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=TOTAL as i64).collect::<Vec<_>>(), "every message once, in seq order");
    let contents: HashSet<&str> = first.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(contents.len(), TOTAL);
    for (i, stream) in streams.iter().enumerate() {
        assert_eq!(stream, first, "client {i} saw the same stream");
    }
}

async fn resume_while_others_send_loses_and_duplicates_nothing(app: TestApp) {
    const TOTAL: i64 = 120;
    let room = app.create_room("Resume").await;
    let (mut reader, _) = app.joined_socket(room, "reader").await;
    let sender_app_url = app.url(&format!("/rooms/{room}/messages"));
    let client = app.client.clone();
    let sender = tokio::spawn(async move {
        for n in 1..=TOTAL {
            let response = client
                .post(&sender_app_url)
                .json(&json!({"content": format!("m{n}"), "user_id": "writer"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 30 {
        let frame = reader.next_of_type("message").await;
        seen.push(frame["seq"].as_i64().unwrap());
    }
    let last = *seen.last().unwrap();
    reader.close().await;
    // Reconnect while the writer is still sending.
    let mut resumed = app.socket(room, &format!("user_id=reader&since={last}")).await;
    assert_eq!(resumed.next_json().await["type"], "joined");
    while *seen.last().unwrap() < TOTAL {
        let frame = resumed.next_of_type("message").await;
        seen.push(frame["seq"].as_i64().unwrap());
    }
    sender.await.unwrap();
    assert_eq!(seen, (1..=TOTAL).collect::<Vec<_>>(), "no gap and no duplicate at the seam");
}

async fn idempotent_repeat_over_the_socket(app: TestApp) {
    let room = app.create_room("Once").await;
    let (mut alice, _) = app.joined_socket(room, "alice").await;
    let (mut bob, _) = app.joined_socket(room, "bob").await;
    let frame = json!({"type": "message", "content": "bid 200", "client_msg_id": "retry-1"});
    alice.send_json(frame.clone()).await;
    let first = alice.next_of_type("message").await;
    alice.send_json(frame).await;
    let repeat = alice.next_of_type("message").await;
    assert_eq!(repeat, first, "the repeat returns the original to its sender");
    assert_eq!(bob.next_of_type("message").await, first);
    bob.send_json(json!({"type": "ping"})).await;
    assert_eq!(bob.next_json().await["type"], "pong", "the repeat was not broadcast");
}

async fn slow_reader_is_closed_with_1013_and_others_keep_receiving(app: TestApp) {
    const MESSAGES: usize = 900;
    let app = app
        .another(|s| {
            // Slack for the fast reader on a busy machine; the slow one still
            // falls behind by far more (its unread frames outgrow every buffer).
            s.ws_queue_capacity = 64;
            s.ws_close_grace_ms = 120_000;
        })
        .await;
    let room = app.create_room("Firehose").await;
    // The slow client has a small receive buffer and stops reading after `joined`.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let url = app.ws_url(&format!("/ws/{room}?user_id=slow"));
    let (stream, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    let mut slow = Socket { stream };
    assert_eq!(slow.next_json().await["type"], "joined");

    let (mut fast, _) = app.joined_socket(room, "fast").await;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < MESSAGES {
            let frame = fast.next_json().await;
            if frame["type"] == "message" {
                seqs.push(frame["seq"].as_i64().unwrap());
            }
        }
        seqs
    });
    let big = "ж".repeat(4000);
    let path = format!("/rooms/{room}/messages");
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, big) = (app.client.clone(), app.url(&path), big.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..MESSAGES / 4 {
                let r = client
                    .post(&url)
                    .json(&json!({"content": big, "user_id": format!("w{w}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let seqs = reader.await.unwrap();
    assert_eq!(
        seqs,
        (1..=MESSAGES as i64).collect::<Vec<_>>(),
        "the fast client got everything, in order"
    );
    assert_eq!(slow.until_closed().await, Ended::Closed(Some(1013)));
}

async fn silent_peer_is_closed_after_the_pong_timeout(app: TestApp) {
    let app = app
        .another(|s| {
            s.ws_ping_interval_ms = 200;
            s.ws_pong_timeout_ms = 300;
            s.ws_close_grace_ms = 500;
        })
        .await;
    let room = app.create_room("Heartbeat").await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    // A raw client: it completes the handshake, then never answers anything.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    let request = format!(
        "GET /ws/{room}?user_id=silent HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let close_code = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            if n == 0 {
                return None;
            }
            bytes.extend_from_slice(&buf[..n]);
            if let Some(code) = close_code_in(&bytes) {
                return Some(code);
            }
        }
    })
    .await
    .expect("the server closes the silent peer");
    let elapsed = started.elapsed();
    assert_eq!(close_code, Some(4408));
    assert!(
        elapsed >= Duration::from_millis(500),
        "not before ping interval + timeout: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "soon after the timeout: {elapsed:?}");
    // The departure is recorded (the close frame can arrive before the clean-up ends).
    assert!(wait_until_absent(&app, room, "silent").await, "the silent peer left the room");
}

async fn shutdown_closes_sockets_with_1001(app: TestApp) {
    let room = app.create_room("Closing time").await;
    let (mut socket, _) = app.joined_socket(room, "alice").await;
    let closed = tokio::spawn(async move { socket.until_closed().await });
    app.shutdown().await;
    assert_eq!(closed.await.unwrap(), Ended::Closed(Some(1001)));
}

/// Finds a close frame in raw server→client bytes after the HTTP response.
fn close_code_in(bytes: &[u8]) -> Option<u16> {
    let header_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut frames = &bytes[header_end..];
    while frames.len() >= 2 {
        let opcode = frames[0] & 0x0f;
        let (len, offset) = match frames[1] & 0x7f {
            126 if frames.len() >= 4 => (u16::from_be_bytes([frames[2], frames[3]]) as usize, 4),
            127 => return None,
            126 => return None,
            n => (n as usize, 2),
        };
        if frames.len() < offset + len {
            return None;
        }
        let payload = &frames[offset..offset + len];
        if opcode == 0x8 && payload.len() >= 2 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
        frames = &frames[offset + len..];
    }
    None
}

async fn wait_until_absent(app: &TestApp, room: i64, user: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let users: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
        if users["items"].as_array().unwrap().iter().all(|u| u["user_id"] != user) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn big_rooms_get_presence_frames_instead_of_user_joined_and_left(app: TestApp) {
    const ABOVE: usize = 3;
    const USERS: usize = 10;
    const LEAVING: usize = 3;
    let app = app
        .another(|s| {
            s.ws_presence_coalesce_above = ABOVE;
            s.ws_presence_interval_ms = 50;
        })
        .await;
    let contract = Contract::new(
        serde_json::to_value(chat_api::http::openapi(chat_api::settings::AuthMode::Disabled))
            .unwrap(),
    );
    let room = app.create_room("Auditorium").await;
    let user = |i: usize| format!("user{i}");
    let mut sockets: Vec<Socket> = Vec::new();
    // Up to the threshold each join is announced on its own, as in small rooms
    // (each announcement is awaited, so the room's size at the time is known).
    for i in 0..ABOVE {
        let (socket, _) = app.joined_socket(room, &user(i)).await;
        for earlier in &mut sockets {
            let frame = earlier.next_json().await;
            assert_eq!(frame["type"], "user_joined", "{frame}");
            assert_eq!(frame["user_id"], user(i));
        }
        sockets.push(socket);
    }
    // Beyond it, every join reaches each socket already there through `presence`.
    for i in ABOVE..USERS {
        sockets.push(app.joined_socket(room, &user(i)).await.0);
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        let later: HashSet<String> = (ABOVE.max(i + 1)..USERS).map(user).collect();
        read_presence_until(socket, "joined", &later, &contract).await;
    }
    // Departures of a big room are coalesced too.
    let leaving: HashSet<String> = (USERS - LEAVING..USERS).map(user).collect();
    for socket in sockets.drain(USERS - LEAVING..) {
        socket.close().await;
    }
    for socket in &mut sockets {
        read_presence_until(socket, "left", &leaving, &contract).await;
    }
}

/// In a room above `WS_PRESENCE_COALESCE_ABOVE` sockets, `joined` lists at most
/// that many users (a join costs the same as in a small room), and always the
/// joiner itself.
async fn joined_in_a_big_room_lists_a_few_users_the_joiner_among_them(app: TestApp) {
    const ABOVE: usize = 3;
    let app = app.another(|s| s.ws_presence_coalesce_above = ABOVE).await;
    let room = app.create_room("Crowd").await;
    let mut sockets = Vec::new();
    for i in 0..6 {
        sockets.push(app.joined_socket(room, &format!("early{i}")).await.0);
    }
    let (_late, joined) = app.joined_socket(room, "late").await;
    let users = joined["users"].as_array().expect("users");
    assert!(!users.is_empty() && users.len() <= ABOVE, "at most {ABOVE} users: {joined}");
    let late: Vec<&Value> = users.iter().filter(|u| u["user_id"] == "late").collect();
    assert_eq!(late.len(), 1, "the joiner is listed once: {joined}");
    assert_eq!(late[0]["connections"], 1, "{joined}");
    let listed: HashSet<&str> = users.iter().map(|u| u["user_id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), users.len(), "each user listed once: {joined}");
    let everyone: HashSet<String> =
        (0..6).map(|i| format!("early{i}")).chain(["late".to_owned()]).collect();
    assert!(listed.iter().all(|u| everyone.contains(*u)), "only users of the room: {joined}");
    // The full list is still there for who asks.
    let all: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 7);
}

/// The users `joined` lists in a big room are fewer, but each as it is: all its
/// sockets counted, `since` its first — as `GET /rooms/{id}/users` says.
async fn joined_in_a_big_room_counts_every_socket_of_each_listed_user(app: TestApp) {
    const ABOVE: usize = 3;
    const SOCKETS_EACH: usize = 4;
    let app = app.another(|s| s.ws_presence_coalesce_above = ABOVE).await;
    let room = app.create_room("Many tabs").await;
    let mut sockets = Vec::new();
    for user in ["tabs0", "tabs1"] {
        for _ in 0..SOCKETS_EACH {
            sockets.push(app.joined_socket(room, user).await.0);
        }
    }
    let (_late, joined) = app.joined_socket(room, "late").await;
    let all: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
    let everyone = all["items"].as_array().unwrap();
    assert_eq!(everyone.len(), 3, "{all}");
    let users = joined["users"].as_array().expect("users");
    assert!(users.len() <= ABOVE, "{joined}");
    assert!(users.iter().any(|u| u["user_id"] == "late"), "{joined}");
    for listed in users {
        let truth = everyone.iter().find(|u| u["user_id"] == listed["user_id"]).expect("present");
        assert_eq!(listed, truth, "a listed user is listed whole: joined {joined}, users {all}");
    }
}

/// The few users `joined` lists in a big room are picked among those still
/// there: a user whose sockets closed is never among them.
async fn joined_in_a_big_room_lists_nobody_who_left(app: TestApp) {
    const ABOVE: usize = 2;
    let app = app.another(|s| s.ws_presence_coalesce_above = ABOVE).await;
    let contract = Contract::new(
        serde_json::to_value(chat_api::http::openapi(chat_api::settings::AuthMode::Disabled))
            .unwrap(),
    );
    let room = app.create_room("Coming and going").await;
    let mut sockets = Vec::new();
    for i in 0..6 {
        sockets.push(app.joined_socket(room, &format!("early{i}")).await.0);
    }
    // Joins after the room is big: every frame it gets is a coalesced one.
    let (mut watcher, _) = app.joined_socket(room, "watcher").await;
    let leaving: HashSet<String> = (3..6).map(|i| format!("early{i}")).collect();
    for socket in sockets.drain(3..) {
        socket.close().await;
    }
    read_presence_until(&mut watcher, "left", &leaving, &contract).await;
    for attempt in 0..20 {
        let (_late, joined) = app.joined_socket(room, &format!("late{attempt}")).await;
        let users = joined["users"].as_array().expect("users");
        assert!(users.len() <= ABOVE, "{joined}");
        for listed in users {
            let user = listed["user_id"].as_str().unwrap();
            assert!(!leaving.contains(user), "{user} left but is listed: {joined}");
            assert_eq!(listed["connections"], 1, "{joined}");
        }
    }
}

/// Reads frames until the `list` (`joined` or `left`) of the `presence` frames
/// read names every one of `users`. Every frame must be a `presence` frame that
/// validates against the OpenAPI `ServerFrame` schema and names each user once.
async fn read_presence_until(
    socket: &mut Socket,
    list: &str,
    users: &HashSet<String>,
    contract: &Contract,
) {
    let schema = Contract::component("ServerFrame");
    let mut named = HashSet::new();
    while !users.is_subset(&named) {
        let frame = socket.next_json().await;
        assert_eq!(frame["type"], "presence", "only presence frames: {frame}");
        contract.validate(&schema, &frame, "presence frame");
        let joined = frame["joined"].as_array().unwrap();
        let left = frame["left"].as_array().unwrap();
        assert!(!joined.is_empty() || !left.is_empty(), "an empty frame is not sent: {frame}");
        let mut once = HashSet::new();
        for name in joined.iter().chain(left) {
            assert!(once.insert(name.as_str().unwrap()), "a user is named once: {frame}");
        }
        named
            .extend(frame[list].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()));
    }
}

/// 300 users join one room with the default settings (presence coalesced above
/// 100 sockets, socket queues of 256 frames): no socket is closed, every socket
/// learns of everyone who joined after it and can still talk at the end.
async fn a_join_storm_closes_no_socket(app: TestApp) {
    const USERS: usize = 300;
    let above = app.settings.ws_presence_coalesce_above;
    assert!(USERS > above, "the storm is big enough to be coalesced");
    let room = app.create_room("Storm").await;
    let user = |i: usize| format!("storm{i}");
    // One after the other, reading nothing meanwhile: whatever is sent to a
    // socket waits in its queue (and the network buffers) until the end.
    let mut sockets = Vec::with_capacity(USERS);
    for i in 0..USERS {
        sockets.push(app.joined_socket(room, &user(i)).await.0);
    }
    for (i, socket) in sockets.iter_mut().enumerate() {
        let later: HashSet<String> = (i + 1..USERS).map(user).collect();
        let mut seen = HashSet::new();
        while !later.is_subset(&seen) {
            let frame = socket.next_json().await;
            match frame["type"].as_str() {
                Some("user_joined") => {
                    let name = frame["user_id"].as_str().unwrap();
                    let index: usize = name.trim_start_matches("storm").parse().unwrap();
                    // Its join reached the pump when the room had index + 1 sockets at least.
                    assert!(index < above, "{name} joined a room of over {above} sockets");
                    seen.insert(name.to_owned());
                }
                Some("presence") => seen.extend(
                    frame["joined"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|u| u.as_str().unwrap().to_owned()),
                ),
                _ => panic!("socket {i}: only presence frames so far, got {frame}"),
            }
        }
    }
    let last = sockets.last_mut().unwrap();
    last.send_json(json!({"type": "message", "content": "after the storm"})).await;
    for socket in &mut sockets {
        let message = socket.next_of_type("message").await;
        assert_eq!(message["content"], "after the storm");
        socket.send_json(json!({"type": "ping"})).await;
        socket.next_of_type("pong").await;
    }
}
