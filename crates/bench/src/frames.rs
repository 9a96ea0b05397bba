//! What the load generator sends and reads. Each message's content starts with
//! its send time (`b:<µs since the bench started>:`), so any receiving socket
//! computes send→delivery latency without shared state; incoming frames are
//! parsed into borrowed fields only.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const PREFIX: &str = "b:";

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since this process's bench clock started.
pub fn now_micros() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Content carrying its send time, padded to `size` bytes.
pub fn stamped_content(size: usize) -> String {
    let mut content = format!("{PREFIX}{}:", now_micros());
    while content.len() < size {
        content.push('x');
    }
    content
}

/// How long ago the content was stamped, if it was.
pub fn age_of(content: &str) -> Option<Duration> {
    let rest = content.strip_prefix(PREFIX)?;
    let sent: u64 = rest.split(':').next()?.parse().ok()?;
    Some(Duration::from_micros(now_micros().saturating_sub(sent)))
}

/// A `message` frame of the room protocol.
#[derive(Serialize)]
pub struct MessageFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub content: &'a str,
    pub client_msg_id: &'a str,
}

impl<'a> MessageFrame<'a> {
    pub fn new(content: &'a str, client_msg_id: &'a str) -> Self {
        Self { kind: "message", content, client_msg_id }
    }
}

/// A `message` frame of the inbox socket: the room it is for, then the rest.
#[derive(Serialize)]
pub struct RoomMessageFrame<'a> {
    pub room_id: i64,
    #[serde(flatten)]
    pub message: MessageFrame<'a>,
}

/// The inbox socket's `subscribe` frame.
pub fn subscribe_frame(room_id: i64) -> String {
    format!(r#"{{"type":"subscribe","room_id":{room_id}}}"#)
}

/// A server frame of the room protocol, only the fields the bench reads.
#[derive(Debug, Deserialize)]
pub struct ServerFrame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub client_msg_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default)]
    pub room_id: Option<i64>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub last_seq: Option<i64>,
}

/// A GrainTrade (legacy) message frame, in either direction.
#[derive(Debug, Serialize, Deserialize)]
pub struct LegacyFrame<'a> {
    #[serde(borrow)]
    pub sender_id: Cow<'a, str>,
    #[serde(borrow)]
    pub receiver_id: Cow<'a, str>,
    #[serde(borrow)]
    pub item_id: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Cow<'a, str>,
}

/// What a legacy socket can receive: a message or `{"error": …}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum LegacyIncoming<'a> {
    Message(#[serde(borrow)] LegacyFrame<'a>),
    Error {
        #[serde(borrow)]
        error: Cow<'a, str>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_padded_and_carries_its_age() {
        let content = stamped_content(64);
        assert_eq!(content.len(), 64);
        assert!(content.starts_with("b:"));
        let age = age_of(&content).expect("stamped");
        assert!(age < Duration::from_secs(5));
        // Longer than asked when the stamp itself is longer.
        assert!(stamped_content(1).len() > 3);
        assert_eq!(age_of("hello"), None);
        assert_eq!(age_of("b:notanumber:"), None);
    }

    #[test]
    fn reads_a_service_message_frame() {
        let text = r#"{"type":"message","id":5,"room_id":1,"seq":3,"user_id":"u1","content":"b:12:x","message_type":"text","client_msg_id":"0-1","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z","edited":false}"#;
        let frame: ServerFrame = serde_json::from_str(text).unwrap();
        assert_eq!(frame.kind, "message");
        assert_eq!(frame.seq, Some(3));
        assert_eq!(frame.user_id.as_deref(), Some("u1"));
        assert_eq!(frame.client_msg_id.as_deref(), Some("0-1"));
        let error: ServerFrame = serde_json::from_str(
            r#"{"type":"error","code":"rate_limited","message":"slow down","client_msg_id":"k"}"#,
        )
        .unwrap();
        assert_eq!(error.code.as_deref(), Some("rate_limited"));
    }

    #[test]
    fn tells_legacy_messages_from_errors() {
        let message: LegacyIncoming = serde_json::from_str(
            r#"{"id":1,"item_id":"7","sender_id":"a","receiver_id":"b","content":"hi","timestamp":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(matches!(message, LegacyIncoming::Message(m) if m.sender_id == "a"));
        let error: LegacyIncoming =
            serde_json::from_str(r#"{"error":"Invalid message format"}"#).unwrap();
        assert!(matches!(error, LegacyIncoming::Error { .. }));
    }
}
