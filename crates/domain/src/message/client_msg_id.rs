//! The client's idempotency key for a message.

use crate::DomainError;

/// 1–64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::validation("client_msg_id", "must not be empty"));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "client_msg_id",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(DomainError::validation(
                "client_msg_id",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(ClientMsgId::parse("abc-1").is_ok());
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse(&"k".repeat(64)).is_ok());
        assert!(ClientMsgId::parse(&"k".repeat(65)).is_err());
    }
}
