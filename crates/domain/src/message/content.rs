//! A message's text.

use crate::DomainError;

/// 1–4000 characters, not only whitespace, no control characters except `\n` and
/// `\t`. Stored exactly as sent: it is plain text and never interpreted as HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.trim().is_empty() {
            return Err(DomainError::validation("content", "must not be empty or only whitespace"));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "content",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(DomainError::validation(
                "content",
                "must not contain control characters other than newline and tab",
            ));
        }
        Ok(Self(raw.to_owned()))
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
    fn accepts_plain_text_as_is() {
        let html = "<img src=x onerror=alert(1)>";
        assert_eq!(MessageContent::parse(html).unwrap().as_str(), html);
        assert_eq!(MessageContent::parse(" hi\n\tthere ").unwrap().as_str(), " hi\n\tthere ");
        assert!(MessageContent::parse("Привіт, світ").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_control() {
        assert!(MessageContent::parse("").is_err());
        assert!(MessageContent::parse(" \n\t ").is_err());
        assert!(MessageContent::parse(&"ї".repeat(4000)).is_ok());
        assert!(MessageContent::parse(&"ї".repeat(4001)).is_err());
        assert!(MessageContent::parse("a\u{0}b").is_err());
        assert!(MessageContent::parse("a\rb").is_err());
        let err = MessageContent::parse("").unwrap_err();
        assert!(matches!(err, DomainError::Validation { field: "content", .. }));
    }
}
