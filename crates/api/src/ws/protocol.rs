//! The client→server frames of PROTOCOL.md and the server's own replies. Parsing is
//! strict about shape and lenient about extra fields; every rejection names an
//! PROTOCOL.md error code so the socket can answer with an `error` frame and stay open.

use chat_domain::{DomainError, MessageInput, RoomId};
use serde::Serialize;
use serde_json::Value;

use crate::edge::ErrorCode;
use crate::edge::error_code::unavailable_message;

/// A frame the client sent, parsed. `room_id` says which room a room frame is
/// for: required on the inbox socket (`/ws`), optional on a room socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Message { input: MessageInput, user_id: Option<String>, room_id: Option<RoomId> },
    Typing { room_id: Option<RoomId> },
    Read { seq: i64, room_id: Option<RoomId> },
    Subscribe { room_id: RoomId, since: Option<i64> },
    Unsubscribe { room_id: RoomId },
    Ping,
}

impl ClientFrame {
    /// The room a frame names, if it names one.
    pub fn room_id(&self) -> Option<RoomId> {
        match self {
            Self::Message { room_id, .. }
            | Self::Typing { room_id }
            | Self::Read { room_id, .. } => *room_id,
            Self::Subscribe { room_id, .. } | Self::Unsubscribe { room_id } => Some(*room_id),
            Self::Ping => None,
        }
    }
}

/// The first frame on an inbox socket.
#[derive(Debug, Serialize)]
pub struct ReadyFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    pub user_id: &'a str,
}

impl<'a> ReadyFrame<'a> {
    pub fn new(user_id: &'a str) -> Self {
        Self { kind: "ready", user_id }
    }
}

/// The answer to `unsubscribe`.
#[derive(Debug, Serialize)]
pub struct UnsubscribedFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    pub room_id: RoomId,
}

impl UnsubscribedFrame {
    pub fn new(room_id: RoomId) -> Self {
        Self { kind: "unsubscribed", room_id }
    }
}

/// The first frame of a room: `joined` on a room socket, `subscribed` on the
/// inbox socket (the same fields).
#[derive(Debug, Serialize)]
pub struct JoinedFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    pub room_id: chat_domain::RoomId,
    pub user_id: &'a str,
    /// Everything up to this seq is history; everything after arrives live.
    pub last_seq: i64,
    pub users: &'a [chat_domain::ports::PresenceEntry],
}

impl<'a> JoinedFrame<'a> {
    pub fn new(
        room_id: chat_domain::RoomId,
        user_id: &'a str,
        last_seq: i64,
        users: &'a [chat_domain::ports::PresenceEntry],
    ) -> Self {
        Self { kind: "joined", room_id, user_id, last_seq, users }
    }

    /// The same frame, as the inbox socket's `subscribed`.
    pub fn subscribed(mut self) -> Self {
        self.kind = "subscribed";
        self
    }
}

/// The presence changes of a big room over one interval, sent instead of a
/// `user_joined`/`user_left` per change (see the hub). A user is in one list:
/// the one of its last change in the interval.
#[derive(Debug, Serialize)]
pub struct PresenceFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    pub room_id: chat_domain::RoomId,
    pub joined: Vec<String>,
    pub left: Vec<String>,
    /// The time of the newest change in the frame.
    #[serde(with = "chat_domain::timestamp::rfc3339_millis")]
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

impl PresenceFrame {
    pub fn new(
        room_id: chat_domain::RoomId,
        joined: Vec<String>,
        left: Vec<String>,
        timestamp: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self { kind: "presence", room_id, joined, left, timestamp }
    }
}

/// A rejected frame: the `error` frame to send back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorFrame {
    #[serde(rename = "type")]
    kind: &'static str,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The room the rejected frame named, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
}

impl ErrorFrame {
    /// `code` is an [`ErrorCode`] (its wire string is what the frame keeps).
    pub fn new(code: impl Into<&'static str>, message: impl Into<String>) -> Self {
        Self {
            kind: "error",
            code: code.into(),
            message: message.into(),
            client_msg_id: None,
            retry_after_ms: None,
            room_id: None,
        }
    }

    pub fn with_room(mut self, room: Option<RoomId>) -> Self {
        self.room_id = room;
        self
    }

    pub fn with_client_msg_id(mut self, id: Option<String>) -> Self {
        self.client_msg_id = id;
        self
    }

    /// The frame for a failed use case: the code REST would answer, narrowed to
    /// the frame codes ([`ErrorCode::on_socket`]).
    pub fn from_domain(err: DomainError) -> Self {
        let code = ErrorCode::of(&err).on_socket();
        let retry_after_ms = match &err {
            DomainError::RateLimited { retry_after } => Some(retry_after.as_millis().max(1) as u64),
            _ => None,
        };
        let message = match err {
            DomainError::Unavailable(what) => unavailable_message(&what),
            DomainError::Internal(detail) => {
                tracing::error!(%detail, "internal error on socket");
                "not done, or outcome unknown: retrying with the same client_msg_id is safe"
                    .to_owned()
            }
            other => other.to_string(),
        };
        Self { retry_after_ms, ..Self::new(code, message) }
    }
}

/// Parses a text frame.
pub fn parse(text: &str) -> Result<ClientFrame, ErrorFrame> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ErrorFrame::new(ErrorCode::InvalidJson, format!("not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ErrorFrame::new(
            ErrorCode::UnknownType,
            "a frame must be a JSON object with a \"type\"",
        ));
    };
    let client_msg_id = fields.get("client_msg_id").and_then(Value::as_str).map(str::to_owned);
    let room_id = || {
        optional_room(&fields)
            .map_err(|reason| ErrorFrame::new(ErrorCode::ValidationFailed, reason))
    };
    match fields.get("type").and_then(Value::as_str) {
        Some("message") => {
            let invalid = |reason: String| {
                ErrorFrame::new(ErrorCode::ValidationFailed, reason)
                    .with_client_msg_id(client_msg_id.clone())
            };
            let content = match fields.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(invalid("content: must be a string".to_owned())),
                None => return Err(invalid("content: is required".to_owned())),
            };
            let message_type = optional_string(&fields, "message_type").map_err(invalid)?;
            let user_id = optional_string(&fields, "user_id").map_err(invalid)?;
            let client_msg_id = optional_string(&fields, "client_msg_id").map_err(invalid)?;
            let room_id = optional_room(&fields).map_err(invalid)?;
            let reply_to = match fields.get("reply_to") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
                Some(_) => {
                    return Err(invalid("reply_to: must be a positive message id".to_owned()));
                }
            };
            Ok(ClientFrame::Message {
                input: MessageInput { content, message_type, client_msg_id, reply_to },
                user_id,
                room_id,
            })
        }
        Some("typing") => Ok(ClientFrame::Typing { room_id: room_id()? }),
        Some("read") => {
            let seq = match fields.get("seq") {
                Some(Value::Number(n)) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| {
                ErrorFrame::new(ErrorCode::ValidationFailed, "seq: must be an integer")
            })?;
            Ok(ClientFrame::Read { seq, room_id: room_id()? })
        }
        Some(kind @ ("subscribe" | "unsubscribe")) => {
            let room_id = room_id()?.ok_or_else(|| {
                ErrorFrame::new(ErrorCode::ValidationFailed, "room_id: is required")
            })?;
            if kind == "unsubscribe" {
                return Ok(ClientFrame::Unsubscribe { room_id });
            }
            let since = match fields.get("since") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) if n.as_i64().is_some_and(|s| s >= 0) => n.as_i64(),
                Some(_) => {
                    return Err(ErrorFrame::new(
                        ErrorCode::ValidationFailed,
                        "since: must be zero or a positive seq",
                    )
                    .with_room(Some(room_id)));
                }
            };
            Ok(ClientFrame::Subscribe { room_id, since })
        }
        Some("ping") => Ok(ClientFrame::Ping),
        Some(other) => {
            Err(ErrorFrame::new(ErrorCode::UnknownType, format!("unknown frame type {other:?}")))
        }
        None => Err(ErrorFrame::new(ErrorCode::UnknownType, "a frame must have a string \"type\"")),
    }
}

/// The frame's `room_id`: absent, or a positive integer.
fn optional_room(fields: &serde_json::Map<String, Value>) -> Result<Option<RoomId>, String> {
    match fields.get("room_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|id| RoomId::new(id).ok())
            .map(Some)
            .ok_or_else(|| "room_id: must be a positive integer".to_owned()),
        Some(_) => Err("room_id: must be a positive integer".to_owned()),
    }
}

fn optional_string(
    fields: &serde_json::Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{name}: must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_frames() {
        let frame =
            parse(r#"{"type":"message","content":"Hello, everyone!","user_id":"user_123"}"#);
        assert_eq!(
            frame.unwrap(),
            ClientFrame::Message {
                input: MessageInput { content: "Hello, everyone!".into(), ..Default::default() },
                user_id: Some("user_123".into()),
                room_id: None,
            }
        );
        assert_eq!(parse(r#"{"type":"typing"}"#).unwrap(), ClientFrame::Typing { room_id: None });
        assert_eq!(parse(r#"{"type":"ping","extra":1}"#).unwrap(), ClientFrame::Ping);
    }

    #[test]
    fn classifies_rejections() {
        assert_eq!(parse("{nope").unwrap_err().code, "invalid_json");
        assert_eq!(parse("").unwrap_err().code, "invalid_json");
        assert_eq!(parse("[1,2]").unwrap_err().code, "unknown_type");
        assert_eq!(parse(r#"{"content":"x"}"#).unwrap_err().code, "unknown_type");
        assert_eq!(parse(r#"{"type":"dance"}"#).unwrap_err().code, "unknown_type");
        let missing = parse(r#"{"type":"message","client_msg_id":"k1"}"#).unwrap_err();
        assert_eq!(missing.code, "validation_failed");
        assert_eq!(missing.client_msg_id.as_deref(), Some("k1"));
        assert_eq!(
            parse(r#"{"type":"message","content":7}"#).unwrap_err().code,
            "validation_failed"
        );
        assert_eq!(
            parse(r#"{"type":"message","content":"x","user_id":5}"#).unwrap_err().code,
            "validation_failed"
        );
    }

    #[test]
    fn parses_the_inbox_frames() {
        let room = RoomId::new(4).unwrap();
        assert_eq!(
            parse(r#"{"type":"subscribe","room_id":4,"since":10}"#).unwrap(),
            ClientFrame::Subscribe { room_id: room, since: Some(10) }
        );
        assert_eq!(
            parse(r#"{"type":"subscribe","room_id":4}"#).unwrap(),
            ClientFrame::Subscribe { room_id: room, since: None }
        );
        assert_eq!(
            parse(r#"{"type":"unsubscribe","room_id":4}"#).unwrap(),
            ClientFrame::Unsubscribe { room_id: room }
        );
        assert_eq!(
            parse(r#"{"type":"read","room_id":4,"seq":3}"#).unwrap(),
            ClientFrame::Read { seq: 3, room_id: Some(room) }
        );
        assert_eq!(
            parse(r#"{"type":"typing","room_id":4}"#).unwrap(),
            ClientFrame::Typing { room_id: Some(room) }
        );
        for bad in [
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","room_id":0}"#,
            r#"{"type":"subscribe","room_id":"4"}"#,
            r#"{"type":"subscribe","room_id":4,"since":-1}"#,
            r#"{"type":"unsubscribe","room_id":-2}"#,
            r#"{"type":"read","room_id":4}"#,
            r#"{"type":"read","seq":"x"}"#,
            r#"{"type":"message","room_id":1.5,"content":"x"}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().code, "validation_failed", "{bad}");
        }
    }

    #[test]
    fn error_frame_shape() {
        let frame = ErrorFrame::new("invalid_json", "bad").with_client_msg_id(Some("k".into()));
        assert_eq!(
            serde_json::to_value(frame).unwrap(),
            serde_json::json!({"type": "error", "code": "invalid_json", "message": "bad", "client_msg_id": "k"})
        );
    }
}
