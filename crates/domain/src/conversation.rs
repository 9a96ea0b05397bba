//! GrainTrade item conversations: one private two-member room per (item,
//! unordered pair of users), created on the first message; its messages also
//! notify the receiver and count as unread for them.

use serde::Serialize;

use crate::{DomainError, UserId};

/// A GrainTrade item (offer) id: 1–64 characters, no control characters or `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId(String);

impl ItemId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.chars().count() > 64 {
            return Err(DomainError::validation("item_id", "must be 1–64 characters"));
        }
        if raw.chars().any(|c| c.is_control() || c == '/') {
            return Err(DomainError::validation(
                "item_id",
                "must not contain control characters or '/'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The unordered pair of users talking about an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub item: ItemId,
    /// The two users, in sorted order.
    pub users: (UserId, UserId),
}

impl Conversation {
    pub fn new(item: ItemId, a: UserId, b: UserId) -> Result<Self, DomainError> {
        if a == b {
            return Err(DomainError::validation("receiver_id", "Cannot send message to yourself."));
        }
        let users = if a < b { (a, b) } else { (b, a) };
        Ok(Self { item, users })
    }

    /// The stable key that makes the conversation's room unique.
    pub fn key(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{}", self.item.as_str(), self.users.0, self.users.1)
    }

    /// The other party of `user`.
    pub fn other(&self, user: &str) -> &UserId {
        if self.users.0.as_str() == user { &self.users.1 } else { &self.users.0 }
    }
}

/// The notifications service's event for a conversation message (PROTOCOL.md:
/// persistent, on the durable queue `message.events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMessageNotice {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub to_username: String,
    pub message_text: String,
    pub item_id: String,
}

impl NewMessageNotice {
    pub fn new(to: &UserId, text: &str, item: &ItemId) -> Self {
        Self {
            kind: "new_message",
            to_username: to.to_string(),
            message_text: text.to_owned(),
            item_id: item.as_str().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_unordered() {
        let item = ItemId::parse("77").unwrap();
        let a = UserId::parse("alice").unwrap();
        let b = UserId::parse("bob").unwrap();
        let one = Conversation::new(item.clone(), a.clone(), b.clone()).unwrap();
        let two = Conversation::new(item.clone(), b.clone(), a.clone()).unwrap();
        assert_eq!(one.key(), two.key());
        assert_eq!(one.other("alice"), &b);
        assert!(Conversation::new(item, a.clone(), a).is_err());
        assert!(ItemId::parse("a/b").is_err());
    }
}
