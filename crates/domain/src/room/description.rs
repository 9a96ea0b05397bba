//! A room's optional free-text description.

use crate::DomainError;

/// At most 1000 characters; control characters other than `\n` and `\t` are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomDescription(String);

impl RoomDescription {
    pub const MAX_CHARS: usize = 1000;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "description",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            return Err(DomainError::validation(
                "description",
                "must not contain control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(RoomDescription::parse("").is_ok());
        assert!(RoomDescription::parse(&"d".repeat(1000)).is_ok());
        assert!(RoomDescription::parse(&"d".repeat(1001)).is_err());
        assert!(RoomDescription::parse("line\nline").is_ok());
        assert!(RoomDescription::parse("bell\u{7}").is_err());
    }
}
