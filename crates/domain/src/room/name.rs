//! A room's display name.

use crate::DomainError;

/// 1–100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DomainError::validation("name", "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::validation("name", "must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_bounds() {
        assert_eq!(RoomName::parse("  Wheat  ").unwrap().as_str(), "Wheat");
        assert!(RoomName::parse(" \t ").is_err());
        assert!(RoomName::parse(&"я".repeat(100)).is_ok());
        assert!(RoomName::parse(&"я".repeat(101)).is_err());
        assert!(RoomName::parse("a\nb").is_err());
    }
}
