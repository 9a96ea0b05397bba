//! Reactions: a user marks a message with a short key (an emoji, usually), once
//! per key. A message carries the counts per key; who reacted is listed apart.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Message;
use crate::DomainError;

/// A message's reaction counts: key → how many users reacted with it (never 0).
pub type ReactionCounts = BTreeMap<String, u64>;

/// A reaction's key: 1–32 characters, no whitespace and no control characters.
/// Kept exactly as sent (`👍` and `👍🏽` are different keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReactionKey(String);

impl ReactionKey {
    pub const MAX_CHARS: usize = 32;
    /// Distinct keys one message may carry.
    pub const MAX_PER_MESSAGE: usize = 20;

    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() {
            return Err(DomainError::validation("key", "must not be empty"));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::validation(
                "key",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::validation(
                "key",
                "must not contain whitespace or control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a message with `counts` may take this key: it has it already, or
    /// has fewer than [`Self::MAX_PER_MESSAGE`] distinct keys.
    pub fn fits(&self, counts: &ReactionCounts) -> Result<(), DomainError> {
        if counts.contains_key(&self.0) || counts.len() < Self::MAX_PER_MESSAGE {
            Ok(())
        } else {
            Err(DomainError::validation(
                "key",
                format!("a message has at most {} distinct reaction keys", Self::MAX_PER_MESSAGE),
            ))
        }
    }
}

impl std::fmt::Display for ReactionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One user's reaction to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaction {
    pub key: String,
    pub user_id: String,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

/// The outcome of adding or removing a reaction: the message as it is now, and
/// whether anything changed (a repeat changes nothing: no frame, no event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionChange {
    pub message: Message,
    pub changed: bool,
}

impl ReactionChange {
    /// The count of `key` on the message now (0 when nobody reacts with it).
    pub fn count(&self, key: &ReactionKey) -> u64 {
        self.message.reactions.get(key.as_str()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_keys_without_whitespace() {
        assert_eq!(ReactionKey::parse("👍").unwrap().as_str(), "👍");
        assert_eq!(ReactionKey::parse("👍🏽").unwrap().as_str(), "👍🏽");
        assert!(ReactionKey::parse("+1").is_ok());
        assert!(ReactionKey::parse(&"ї".repeat(32)).is_ok(), "characters, not bytes");
        assert!(ReactionKey::parse(&"k".repeat(33)).is_err());
        assert!(ReactionKey::parse("").is_err());
        for bad in [" ", "a b", "👍 ", "\t", "a\nb", "a\u{0}b", "a\u{00A0}b"] {
            let err = ReactionKey::parse(bad).unwrap_err();
            assert!(matches!(err, DomainError::Validation { field: "key", .. }), "{bad:?}");
        }
    }

    #[test]
    fn a_message_takes_at_most_twenty_distinct_keys() {
        let mut counts = ReactionCounts::new();
        for i in 0..20 {
            let key = ReactionKey::parse(&format!("k{i}")).unwrap();
            assert!(key.fits(&counts).is_ok());
            counts.insert(key.as_str().to_owned(), 1);
        }
        assert!(ReactionKey::parse("k3").unwrap().fits(&counts).is_ok(), "a key it has");
        let err = ReactionKey::parse("k20").unwrap().fits(&counts).unwrap_err();
        assert!(matches!(err, DomainError::Validation { field: "key", .. }));
    }
}
