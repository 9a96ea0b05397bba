//! Notifications for people who are away: a participant of a room with messages
//! of others unread for longer than the configured wait, and no socket open to
//! that room anywhere, is due one `notification_requested` event per room until
//! they read it or open a socket to it.

use serde::Serialize;

use crate::{MessageId, RoomId};

/// How much of the newest message a notification quotes, in characters.
pub const QUOTED_CHARS: usize = 200;

/// A participant of a room who waits for unread messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwayUser {
    pub room_id: RoomId,
    pub user_id: String,
    /// Live messages of others after the user's read marker.
    pub unread: u64,
    /// The newest of them; the notification is about messages up to its seq.
    pub last_message: QuotedMessage,
    pub last_seq: i64,
}

/// `last_message` of a notification: the newest unread message, its text cut
/// to [`QUOTED_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotedMessage {
    pub id: MessageId,
    pub user_id: String,
    pub content: String,
}

impl QuotedMessage {
    pub fn new(id: MessageId, user_id: String, content: &str) -> Self {
        let content = match content.char_indices().nth(QUOTED_CHARS) {
            Some((end, _)) => content[..end].to_owned(),
            None => content.to_owned(),
        };
        Self { id, user_id, content }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_at_most_200_characters() {
        let id = MessageId::new(1).unwrap();
        let long = "ж".repeat(250);
        let quoted = QuotedMessage::new(id, "bob".into(), &long);
        assert_eq!(quoted.content.chars().count(), 200);
        assert_eq!(QuotedMessage::new(id, "bob".into(), "hi").content, "hi");
    }
}
