//! Read state: how far each user has read each room (a forward-only seq marker),
//! the unread counts that follow from it, and the inbox (a user's rooms, most
//! recent activity first). The rules live here; storage is the [`ReadState`] port.
//!
//! [`ReadState`]: crate::ports::ReadState

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{DomainError, Message, Room, RoomId};

/// A user's read position in a room: every message with a seq up to `seq` is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    pub room_id: RoomId,
    pub user_id: String,
    pub seq: i64,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub read_at: DateTime<Utc>,
}

/// What a call that moves a marker came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedRead {
    /// The marker after the call.
    pub marker: ReadMarker,
    /// False when the marker already was at or past the seq asked for.
    pub moved: bool,
}

/// A seq a client asks to mark read: zero or positive (clamped to the room's last
/// seq by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSeq(i64);

impl ReadSeq {
    pub fn parse(raw: i64) -> Result<Self, DomainError> {
        if raw >= 0 {
            Ok(Self(raw))
        } else {
            Err(DomainError::validation("seq", "must be zero or a positive seq"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A user's unread count in one room, with the positions it was computed from
/// (all read in one snapshot, so `unread` is exact as of `last_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadState {
    pub room_id: RoomId,
    pub last_read_seq: i64,
    /// Live messages with seq > `last_read_seq` not written by the user.
    pub unread: u64,
    pub last_seq: i64,
}

/// One room of a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxEntry {
    pub room: Room,
    /// The newest live message of the room, if any.
    pub last_message: Option<Message>,
    pub last_read_seq: i64,
    pub unread: u64,
}

/// An opaque position in a user's inbox (most recent activity first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCursor {
    pub activity_at: DateTime<Utc>,
    pub room_id: RoomId,
}

impl InboxCursor {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::validation("cursor", "is not a cursor this service issued");
        let (micros, id) = raw.split_once('_').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let id: i64 = id.parse().map_err(|_| bad())?;
        let activity_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        Ok(Self { activity_at, room_id: RoomId::new(id).map_err(|_| bad())? })
    }

    pub fn encode(&self) -> String {
        format!("{}_{}", self.activity_at.timestamp_micros(), self.room_id.get())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    pub items: Vec<InboxEntry>,
    pub next_cursor: Option<InboxCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_seq_is_never_negative() {
        assert!(ReadSeq::parse(-1).is_err());
        assert_eq!(ReadSeq::parse(0).unwrap().get(), 0);
        assert_eq!(ReadSeq::parse(7).unwrap().get(), 7);
    }

    #[test]
    fn inbox_cursor_round_trip() {
        let at = DateTime::from_timestamp_micros(1_767_268_800_123_456).unwrap();
        let cursor = InboxCursor { activity_at: at, room_id: RoomId::new(9).unwrap() };
        assert_eq!(InboxCursor::parse(&cursor.encode()).unwrap(), cursor);
        assert!(InboxCursor::parse("nope").is_err());
        assert!(InboxCursor::parse("12_-3").is_err());
    }
}
