//! What kind of message it is: a person's text or a system announcement.

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    #[default]
    Text,
    /// Posted by admins and GrainTrade services only.
    System,
    /// Carries an offer (`POST /rooms/{id}/offers` makes it, nothing else).
    Offer,
}

impl MessageType {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        match raw {
            "text" => Ok(Self::Text),
            "system" => Ok(Self::System),
            "offer" => Ok(Self::Offer),
            _ => Err(DomainError::validation("message_type", "must be \"text\" or \"system\"")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::System => "system",
            Self::Offer => "offer",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_types_only() {
        assert_eq!(MessageType::parse("text").unwrap(), MessageType::Text);
        assert_eq!(MessageType::parse("system").unwrap(), MessageType::System);
        assert_eq!(MessageType::parse("offer").unwrap(), MessageType::Offer);
        assert!(MessageType::parse("TEXT").is_err());
        assert!(MessageType::parse("").is_err());
    }
}
