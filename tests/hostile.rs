//! A corpus of hostile input — huge, deeply nested, invalid UTF-8, NUL and
//! control characters, SQL and HTML payloads, wrong types, negative and huge
//! ids, bad cursors, hostile socket frames — each answered with a clear 4xx (or
//! an error frame), the service staying up and the stored data unchanged.
//! Payloads that are valid text (SQL, HTML) are stored and returned verbatim.

use chat_tests::{TestApp, on_every_adapter_set};
use reqwest::Method;
use serde_json::{Value, json};

/// One hostile request: name, method, path, content type, body, then the
/// expected status and error code.
type Case = (&'static str, Method, String, &'static str, Vec<u8>, u16, &'static str);

on_every_adapter_set!(
    hostile_rest_input_is_refused_and_changes_nothing,
    hostile_frames_get_error_frames
);

/// What a client can see of a room: the room and its whole history.
async fn snapshot(app: &TestApp, room: i64) -> (Value, Value, Value) {
    let room_json: Value = app.get(&format!("/rooms/{room}")).await.json().await.unwrap();
    let history: Value =
        app.get(&format!("/rooms/{room}/messages?limit=100")).await.json().await.unwrap();
    let list: Value = app.get("/rooms?limit=100").await.json().await.unwrap();
    (room_json, history, list)
}

/// Sends raw bytes with a content type and returns the status and body.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn hostile_rest_input_is_refused_and_changes_nothing(app: TestApp) {
    let room = app.create_room("Target").await;
    let seeded = app.post_message(room, "alice", "wheat 210 UAH/kg").await;
    let message = seeded["id"].as_i64().unwrap();
    let before = snapshot(&app, room).await;

    let messages = format!("/rooms/{room}/messages");
    let room_path = format!("/rooms/{room}");
    let message_path = format!("/messages/{message}");
    let json_body = |v: Value| v.to_string().into_bytes();
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let json = "application/json";

    // The huge body is over MAX_BODY_BYTES (64 KiB here) but small enough for
    // the client to finish writing it before the 413 comes back: a body still
    // being written when the server answers and closes is reset by TCP.
    let cases: Vec<Case> = vec![
        (
            "huge body",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "x".repeat(100_000)})),
            413,
            "payload_too_large",
        ),
        (
            "deeply nested content",
            Method::POST,
            messages.clone(),
            json,
            format!("{{\"content\": {nested}}}").into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "invalid UTF-8",
            Method::POST,
            messages.clone(),
            json,
            b"{\"content\": \"\xff\xfe\xfd\"}".to_vec(),
            400,
            "bad_request",
        ),
        (
            "truncated JSON",
            Method::POST,
            messages.clone(),
            json,
            b"{\"content\": \"abc".to_vec(),
            400,
            "bad_request",
        ),
        ("empty body", Method::POST, messages.clone(), json, Vec::new(), 400, "bad_request"),
        (
            "not JSON content type",
            Method::POST,
            messages.clone(),
            "text/plain",
            json_body(json!({"content": "hi"})),
            415,
            "unsupported_media_type",
        ),
        (
            "form content type",
            Method::POST,
            "/rooms".to_owned(),
            "application/x-www-form-urlencoded",
            b"name=x".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "NUL in content",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "a\u{0}b"})),
            422,
            "validation_failed",
        ),
        (
            "bell in content",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "ring \u{7}"})),
            422,
            "validation_failed",
        ),
        (
            "only whitespace",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": " \n\t "})),
            422,
            "validation_failed",
        ),
        (
            "content too long",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "é".repeat(4001)})),
            422,
            "validation_failed",
        ),
        (
            "content is a number",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": 42})),
            422,
            "validation_failed",
        ),
        (
            "content is an object",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": {"$gt": ""}})),
            422,
            "validation_failed",
        ),
        (
            "body is an array",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!(["content"])),
            422,
            "validation_failed",
        ),
        (
            "unknown message type",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "x", "message_type": "html"})),
            422,
            "validation_failed",
        ),
        (
            "client_msg_id too long",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "x", "client_msg_id": "k".repeat(65)})),
            422,
            "validation_failed",
        ),
        (
            "user_id too long",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "x", "user_id": "u".repeat(65)})),
            422,
            "validation_failed",
        ),
        (
            "user_id with NUL",
            Method::POST,
            messages.clone(),
            json,
            json_body(json!({"content": "x", "user_id": "a\u{0}b"})),
            422,
            "validation_failed",
        ),
        (
            "room name empty",
            Method::POST,
            "/rooms".to_owned(),
            json,
            json_body(json!({"name": "   "})),
            422,
            "validation_failed",
        ),
        (
            "room name too long",
            Method::POST,
            "/rooms".to_owned(),
            json,
            json_body(json!({"name": "n".repeat(101)})),
            422,
            "validation_failed",
        ),
        (
            "room name with NUL",
            Method::POST,
            "/rooms".to_owned(),
            json,
            json_body(json!({"name": "a\u{0}"})),
            422,
            "validation_failed",
        ),
        (
            "is_private a string",
            Method::POST,
            "/rooms".to_owned(),
            json,
            json_body(json!({"name": "x", "is_private": "yes"})),
            422,
            "validation_failed",
        ),
        (
            "description too long",
            Method::PATCH,
            room_path.clone(),
            json,
            json_body(json!({"description": "d".repeat(1001)})),
            422,
            "validation_failed",
        ),
        (
            "rename to a number",
            Method::PATCH,
            room_path.clone(),
            json,
            json_body(json!({"name": 7})),
            422,
            "validation_failed",
        ),
        (
            "edit with NUL",
            Method::PATCH,
            message_path.clone(),
            json,
            json_body(json!({"content": "\u{0}"})),
            422,
            "validation_failed",
        ),
        (
            "edit to nothing",
            Method::PATCH,
            message_path.clone(),
            json,
            json_body(json!({"content": ""})),
            422,
            "validation_failed",
        ),
    ];
    for (case, method, path, content_type, body, status, code) in cases {
        let (got, body) = raw(&app, method, &path, content_type, body).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{case}: {body}");
    }

    let queries: Vec<(&str, u16)> = vec![
        ("/rooms/-1", 404),
        ("/rooms/0", 404),
        ("/rooms/99999999999999999999999999", 404),
        ("/rooms/1%00", 404),
        ("/rooms/abc", 404),
        ("/messages/-5", 404),
        ("/messages/18446744073709551616", 404),
        ("/rooms?limit=abc", 400),
        ("/rooms?limit=0", 422),
        ("/rooms?limit=101", 422),
        ("/rooms?limit=-1", 422),
        ("/rooms?cursor=garbage", 400),
        ("/rooms?cursor=%27%20OR%201%3D1--", 400),
        ("/rooms?limit=99999999999999999999", 400),
        // An item filter is an item id: no NUL (the database cannot hold one), 1–64 characters.
        ("/rooms?item_id=77%00", 422),
        ("/rooms?item_id=a%2Fb", 422),
        ("/rooms?item_id=", 422),
    ];
    let mut paged: Vec<(String, u16)> =
        queries.into_iter().map(|(p, s)| (p.to_owned(), s)).collect();
    // Malformed is 400; well-formed but out of range is 422 naming the field.
    for (query, status) in [
        ("limit=abc", 400),
        ("limit=0", 422),
        ("limit=1000", 422),
        ("before=abc", 400),
        ("before=-1", 422),
        ("after=-3", 422),
        ("after=1e9", 400),
        ("before=99999999999999999999", 400),
    ] {
        paged.push((format!("{messages}?{query}"), status));
    }
    paged.push((format!("/rooms?item_id={}", "i".repeat(65)), 422));
    paged.push((format!("{messages}/search?q={}", "w".repeat(5000)), 422));
    paged.push((format!("{messages}/search?q=wheat&cursor=not-a-cursor"), 400));
    paged.push((format!("{messages}/search?q=wheat&since=yesterday"), 400));
    for (path, status) in paged {
        let response = app.get(&path).await;
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "GET {path}: {body}");
        assert!(body["error"]["code"].is_string(), "GET {path}: JSON error body, got {body}");
    }
    let header = app
        .client
        .post(app.url(&messages))
        .header("x-user-id", "x".repeat(65))
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 422, "an over-long X-User-Id");

    // Nothing changed, and the service still answers.
    assert_eq!(snapshot(&app, room).await, before);
    assert_eq!(app.get("/health").await.status(), 200);

    // Text that only looks dangerous is text: stored and returned byte for byte.
    let literal = app.create_room("Robert'); DROP TABLE rooms;--").await;
    let payloads = [
        "'; DROP TABLE messages; --",
        "1 OR 1=1; SELECT * FROM rooms WHERE '' = ''",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "{{7*7}} ${7*7} %s %n",
        "тест 測試 🌾\u{200b}\u{202e}",
        "line one\nline two\ttabbed",
    ];
    for payload in payloads {
        let stored = app.post_message(literal, "mallory", payload).await;
        let fetched: Value =
            app.get(&format!("/messages/{}", stored["id"])).await.json().await.unwrap();
        assert_eq!(fetched["content"], payload);
    }
    let page: Value = app.get(&format!("/rooms/{literal}/messages")).await.json().await.unwrap();
    let contents: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, payloads);
    let named: Value = app.get(&format!("/rooms/{literal}")).await.json().await.unwrap();
    assert_eq!(named["name"], "Robert'); DROP TABLE rooms;--");
    assert_eq!(snapshot(&app, room).await.1, before.1, "the target room's history is intact");
}

async fn hostile_frames_get_error_frames(app: TestApp) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let room = app.create_room("Frames").await;
    let (mut hostile, _) = app.joined_socket(room, "mallory").await;
    let (mut friend, _) = app.joined_socket(room, "olga").await;
    let frames: Vec<(Message, &str)> = vec![
        (Message::Binary(vec![0xff, 0x00, 0xfe].into()), "invalid_json"),
        (Message::Text("{".into()), "invalid_json"),
        (Message::Text("null".into()), "unknown_type"),
        (Message::Text("[1,2,3]".into()), "unknown_type"),
        (Message::Text(r#"{"type": 5}"#.into()), "unknown_type"),
        (Message::Text(r#"{"type": "shutdown"}"#.into()), "unknown_type"),
        (Message::Text(r#"{"no_type": true}"#.into()), "unknown_type"),
        (Message::Text(r#"{"type": "message"}"#.into()), "validation_failed"),
        (
            Message::Text(r#"{"type": "message", "content": {"nested": [1]}}"#.into()),
            "validation_failed",
        ),
        (
            Message::Text(json!({"type": "message", "content": "a\u{0}b"}).to_string().into()),
            "validation_failed",
        ),
        (
            Message::Text(
                json!({"type": "message", "content": "x".repeat(4001)}).to_string().into(),
            ),
            "validation_failed",
        ),
        (
            Message::Text(
                json!({"type": "message", "content": "x", "message_type": "system"})
                    .to_string()
                    .into(),
            ),
            "forbidden",
        ),
        (
            Message::Text(
                json!({"type": "message", "content": "x", "client_msg_id": 12}).to_string().into(),
            ),
            "validation_failed",
        ),
        (
            Message::Text(
                format!(
                    "{{\"type\": \"message\", \"content\": {}{}}}",
                    "[".repeat(10_000),
                    "]".repeat(10_000)
                )
                .into(),
            ),
            "invalid_json",
        ),
    ];
    for (frame, code) in frames {
        let shown = format!("{frame:?}").chars().take(80).collect::<String>();
        hostile.stream.send(frame).await.unwrap();
        let answer = hostile.next_of_type("error").await;
        assert_eq!(answer["code"], code, "{shown}: {answer}");
    }
    // The socket and the room still work, for the sender and for others.
    hostile.send_json(json!({"type": "message", "content": "<b>still</b> here"})).await;
    let seen = friend.next_of_type("message").await;
    assert_eq!(seen["content"], "<b>still</b> here");
    let page: Value = app.get(&format!("/rooms/{room}/messages")).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "no rejected frame was stored");

    // A frame over the size limit closes that socket (1009), and only that one.
    hostile.send_text(&"x".repeat(200_000)).await;
    assert_eq!(hostile.until_closed().await, chat_tests::socket::Ended::Closed(Some(1009)));
    friend.send_json(json!({"type": "ping"})).await;
    assert_eq!(friend.next_of_type("pong").await["type"], "pong");
}
