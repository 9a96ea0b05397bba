//! The client→server frames of PROTOCOL.md and the server's own replies. Parsing is
//! strict about shape and lenient about extra fields; every rejection names an
//! PROTOCOL.md error code so the socket can answer with an `error` frame and stay open.

use chat_domain::{DomainError, MessageInput};
use serde::Serialize;
use serde_json::Value;

/// A frame the client sent, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    Message { input: MessageInput, user_id: Option<String> },
    Typing,
    Ping,
}

/// The first frame on every socket.
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
}

impl ErrorFrame {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: "error",
            code,
            message: message.into(),
            client_msg_id: None,
            retry_after_ms: None,
        }
    }

    pub fn with_client_msg_id(mut self, id: Option<String>) -> Self {
        self.client_msg_id = id;
        self
    }

    /// The frame for a failed use case.
    pub fn from_domain(err: DomainError) -> Self {
        match err {
            DomainError::Validation { .. } => Self::new("validation_failed", err.to_string()),
            DomainError::Forbidden(m) => Self::new("forbidden", m),
            DomainError::NotFound(m) => Self::new("not_found", m),
            DomainError::Conflict(m) => Self::new("validation_failed", m),
            DomainError::RateLimited { retry_after } => {
                let mut frame = Self::new("rate_limited", err.to_string());
                frame.retry_after_ms = Some(retry_after.as_millis().max(1) as u64);
                frame
            }
            DomainError::Unavailable(what) => Self::new(
                "unavailable",
                format!(
                    "{what} is unavailable; not done, or outcome unknown: retrying with the same client_msg_id is safe"
                ),
            ),
            DomainError::Internal(detail) => {
                tracing::error!(%detail, "internal error on socket");
                Self::new(
                    "unavailable",
                    "not done, or outcome unknown: retrying with the same client_msg_id is safe",
                )
            }
        }
    }
}

/// Parses a text frame.
pub fn parse(text: &str) -> Result<ClientFrame, ErrorFrame> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ErrorFrame::new("invalid_json", format!("not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ErrorFrame::new(
            "unknown_type",
            "a frame must be a JSON object with a \"type\"",
        ));
    };
    let client_msg_id = fields.get("client_msg_id").and_then(Value::as_str).map(str::to_owned);
    match fields.get("type").and_then(Value::as_str) {
        Some("message") => {
            let invalid = |reason: String| {
                ErrorFrame::new("validation_failed", reason)
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
            Ok(ClientFrame::Message {
                input: MessageInput { content, message_type, client_msg_id },
                user_id,
            })
        }
        Some("typing") => Ok(ClientFrame::Typing),
        Some("ping") => Ok(ClientFrame::Ping),
        Some(other) => {
            Err(ErrorFrame::new("unknown_type", format!("unknown frame type {other:?}")))
        }
        None => Err(ErrorFrame::new("unknown_type", "a frame must have a string \"type\"")),
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
            }
        );
        assert_eq!(parse(r#"{"type":"typing"}"#).unwrap(), ClientFrame::Typing);
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
    fn error_frame_shape() {
        let frame = ErrorFrame::new("invalid_json", "bad").with_client_msg_id(Some("k".into()));
        assert_eq!(
            serde_json::to_value(frame).unwrap(),
            serde_json::json!({"type": "error", "code": "invalid_json", "message": "bad", "client_msg_id": "k"})
        );
    }
}
