//! Property tests of the socket's frame parser (`ws::protocol`) and the value
//! validation behind it: any text, any JSON value and any message frame give
//! either a frame whose values are valid or an `error` frame with one of
//! PROTOCOL.md's codes — never a panic — and the classification is the contract's.
//! A fixed seed keeps CI repeatable; `PROPTEST_CASES` does not apply (the count
//! is set here), change `CASES` to search longer.

use chat_api::ws::protocol::{ClientFrame, ErrorFrame, parse};
use chat_domain::{ClientMsgId, MessageContent, MessageType, RoomId, UserId};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};

const CASES: u32 = 2000;

/// The `error` frame codes of PROTOCOL.md.
const CODES: [&str; 6] = [
    "invalid_json",
    "unknown_type",
    "validation_failed",
    "forbidden",
    "rate_limited",
    "unavailable",
];

fn config() -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(0x6772_6169_6e74_7261),
        failure_persistence: None,
        ..Config::default()
    }
}

/// What the socket answers a text frame with, short of storage: the parsed
/// frame once each value passed the domain's validation (as `post_message`
/// does first), or the error frame.
fn answer(text: &str) -> Result<ClientFrame, ErrorFrame> {
    let frame = parse(text)?;
    if let ClientFrame::Message { input, user_id, .. } = &frame {
        let rejected =
            |e| ErrorFrame::from_domain(e).with_client_msg_id(input.client_msg_id.clone());
        if let Some(user) = user_id {
            UserId::parse(user).map_err(rejected)?;
        }
        MessageContent::parse(&input.content).map_err(rejected)?;
        input.message_type.as_deref().map(MessageType::parse).transpose().map_err(rejected)?;
        input.client_msg_id.as_deref().map(ClientMsgId::parse).transpose().map_err(rejected)?;
    }
    Ok(frame)
}

/// An error frame is one of PROTOCOL.md's and serializes as such.
fn assert_error_frame(error: &ErrorFrame) {
    assert!(CODES.contains(&error.code), "code {:?} is not in PROTOCOL.md", error.code);
    assert!(!error.message.is_empty(), "an error frame says why");
    let json = serde_json::to_value(error).expect("error frames serialize");
    assert_eq!(json["type"], "error");
    assert_eq!(json["code"], error.code);
}

/// The content rule of PROTOCOL.md, restated independently of the domain's code.
fn content_is_valid(content: &str) -> bool {
    let chars = content.chars().count();
    !content.trim().is_empty()
        && chars <= 4000
        && content.chars().all(|c| !c.is_control() || c == '\n' || c == '\t')
}

/// Strings that probe the rules: any Unicode, whitespace and control
/// characters, and lengths around the limits.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t\n\r]{0,8}",
        "[a-z \\x00-\\x1f\\x7f\\u{85}\\u{2028}]{0,20}",
        (3990usize..4010, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        (60usize..70).prop_map(|n| "k".repeat(n)),
        Just(String::new()),
    ]
}

/// Any JSON value, biased towards objects with the frame's field names.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        tricky_string().prop_map(Value::from),
        prop_oneof![Just("message"), Just("typing"), Just("ping"), Just("pong"), Just("MESSAGE")]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        let key = prop_oneof![
            Just("type".to_owned()),
            Just("content".to_owned()),
            Just("message_type".to_owned()),
            Just("client_msg_id".to_owned()),
            Just("user_id".to_owned()),
            Just("room_id".to_owned()),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Objects shaped like a frame — a `type` and the message's fields, each
/// absent or any JSON value (a string most often): wrong types in every place.
fn frame_shaped() -> impl Strategy<Value = Value> {
    let field = || {
        prop::option::of(prop_oneof![
            3 => tricky_string().prop_map(Value::from),
            1 => json_value(),
        ])
    };
    let kind = prop_oneof![
        4 => Just(Value::from("message")),
        1 => Just(Value::from("typing")),
        1 => Just(Value::from("ping")),
        1 => Just(Value::from("read")),
        1 => Just(Value::from("subscribe")),
        1 => json_value(),
    ];
    (kind, field(), field(), field(), field()).prop_map(
        |(kind, content, message_type, client_msg_id, user_id)| {
            let mut frame = Map::new();
            frame.insert("type".to_owned(), kind);
            for (name, value) in [
                ("content", content),
                ("message_type", message_type),
                ("client_msg_id", client_msg_id),
                ("user_id", user_id),
            ] {
                if let Some(value) = value {
                    frame.insert(name.to_owned(), value);
                }
            }
            Value::Object(frame)
        },
    )
}

/// What the contract says `parse` makes of a JSON value: `Ok(frame)` or the
/// error code (and the key an error echoes).
fn expected(value: &Value) -> Result<ClientFrame, (&'static str, Option<String>)> {
    let Value::Object(fields) = value else { return Err(("unknown_type", None)) };
    let key = fields.get("client_msg_id").and_then(Value::as_str).map(str::to_owned);
    // `room_id`: absent (or null), or a positive integer.
    let room = match fields.get("room_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64().map(RoomId::new) {
            Some(Ok(room)) => Ok(Some(room)),
            _ => Err(()),
        },
        Some(_) => Err(()),
    };
    let invalid_frame = ("validation_failed", None);
    match fields.get("type").and_then(Value::as_str) {
        Some("typing") => {
            room.map(|room_id| ClientFrame::Typing { room_id }).map_err(|()| invalid_frame)
        }
        Some("ping") => Ok(ClientFrame::Ping),
        Some("read") => {
            let seq = fields.get("seq").filter(|v| v.is_number()).and_then(Value::as_i64);
            let Some(seq) = seq else { return Err(invalid_frame) };
            room.map(|room_id| ClientFrame::Read { seq, room_id }).map_err(|()| invalid_frame)
        }
        Some(kind @ ("subscribe" | "unsubscribe")) => {
            let Ok(Some(room_id)) = room else { return Err(invalid_frame) };
            if kind == "unsubscribe" {
                return Ok(ClientFrame::Unsubscribe { room_id });
            }
            match fields.get("since") {
                None | Some(Value::Null) => Ok(ClientFrame::Subscribe { room_id, since: None }),
                Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s >= 0) => {
                    Ok(ClientFrame::Subscribe { room_id, since: n.as_i64() })
                }
                Some(_) => Err(invalid_frame),
            }
        }
        Some("message") => {
            let invalid = Err(("validation_failed", key.clone()));
            let Some(Value::String(content)) = fields.get("content") else { return invalid };
            let mut strings = Vec::new();
            for name in ["message_type", "user_id", "client_msg_id"] {
                match fields.get(name) {
                    None | Some(Value::Null) => strings.push(None),
                    Some(Value::String(s)) => strings.push(Some(s.clone())),
                    Some(_) => return invalid,
                }
            }
            let [message_type, user_id, client_msg_id] = strings.try_into().unwrap();
            let Ok(room_id) = room else { return invalid };
            Ok(ClientFrame::Message {
                input: chat_domain::MessageInput {
                    content: content.clone(),
                    message_type,
                    client_msg_id,
                    reply_to: None,
                },
                user_id,
                room_id,
            })
        }
        _ => Err(("unknown_type", None)),
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any text at all: a frame, or an error frame with an PROTOCOL.md code;
    /// text that is not JSON is `invalid_json`.
    #[test]
    fn any_text_is_answered(text in prop_oneof![
        any::<String>(),
        tricky_string(),
        json_value().prop_map(|v| v.to_string()),
        frame_shaped().prop_map(|v| v.to_string()),
        // Cut short: JSON that ends mid-way.
        json_value().prop_map(|v| { let s = v.to_string(); s.chars().take(s.chars().count() / 2).collect() }),
    ]) {
        match answer(&text) {
            Ok(_) => prop_assert!(serde_json::from_str::<Value>(&text).is_ok()),
            Err(error) => {
                assert_error_frame(&error);
                if serde_json::from_str::<Value>(&text).is_err() {
                    prop_assert_eq!(error.code, "invalid_json");
                }
            }
        }
    }

    /// Any JSON value is classified exactly as the contract says, and a
    /// rejected message frame echoes its `client_msg_id`.
    #[test]
    fn any_json_value_is_classified_as_the_contract_says(
        value in prop_oneof![json_value(), frame_shaped()],
    ) {
        let parsed = parse(&value.to_string());
        match (parsed, expected(&value)) {
            (Ok(frame), Ok(want)) => prop_assert_eq!(frame, want),
            (Err(error), Err((code, key))) => {
                assert_error_frame(&error);
                prop_assert_eq!(error.code, code);
                prop_assert_eq!(error.client_msg_id, key);
            }
            (got, want) => prop_assert!(false, "{value}: got {got:?}, want {want:?}"),
        }
    }

    /// A well-shaped message frame with any values: accepted exactly when every
    /// value is valid, else `validation_failed` naming the first bad field and
    /// echoing the key.
    #[test]
    fn message_values_are_validated(
        content in tricky_string(),
        message_type in prop::option::of(prop_oneof![Just("text".to_owned()), Just("system".to_owned()), tricky_string()]),
        client_msg_id in prop::option::of(tricky_string()),
        user_id in prop::option::of(tricky_string()),
    ) {
        let mut frame = json!({"type": "message", "content": content});
        for (name, value) in [("message_type", &message_type), ("client_msg_id", &client_msg_id), ("user_id", &user_id)] {
            if let Some(value) = value {
                frame[name] = json!(value);
            }
        }
        let user_ok = user_id.as_deref().is_none_or(|u| {
            let u = u.trim();
            !u.is_empty() && u.chars().count() <= 64 && !u.chars().any(char::is_control)
        });
        let type_ok = message_type.as_deref().is_none_or(|t| t == "text" || t == "system");
        let key_ok = client_msg_id.as_deref().is_none_or(|k| {
            !k.is_empty() && k.chars().count() <= 64 && !k.chars().any(char::is_control)
        });
        let valid = user_ok && content_is_valid(&content) && type_ok && key_ok;
        match answer(&frame.to_string()) {
            Ok(ClientFrame::Message { input, user_id: user, .. }) => {
                prop_assert!(valid, "accepted an invalid frame {frame}");
                prop_assert_eq!(input.content, content);
                prop_assert_eq!(user, user_id);
            }
            Ok(other) => prop_assert!(false, "{frame} parsed as {other:?}"),
            Err(error) => {
                prop_assert!(!valid, "rejected a valid frame {frame}: {error:?}");
                assert_error_frame(&error);
                prop_assert_eq!(error.code, "validation_failed");
                let first_bad = if !user_ok { "user_id" }
                    else if !content_is_valid(&content) { "content" }
                    else if !type_ok { "message_type" }
                    else { "client_msg_id" };
                prop_assert!(error.message.contains(first_bad), "{} names {}", error.message, first_bad);
                prop_assert_eq!(error.client_msg_id, client_msg_id);
            }
        }
    }
}
