//! The Room entity and the inputs that create or change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{RoomDescription, RoomName};
use crate::{DomainError, UserId};

/// A room id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(i64);

impl RoomId {
    pub fn new(raw: i64) -> Result<Self, DomainError> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(DomainError::validation("room_id", "must be a positive integer"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    pub is_private: bool,
    pub created_by: Option<String>,
    /// The GrainTrade item of a conversation room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub updated_at: DateTime<Utc>,
    /// The seq of the newest message ever committed in the room (0 when none).
    #[serde(skip)]
    pub last_seq: i64,
}

/// A validated request to create a room.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: RoomName,
    pub description: Option<RoomDescription>,
    pub is_private: bool,
    pub created_by: UserId,
    /// Members besides the creator (who is always one).
    pub members: Vec<UserId>,
    pub created_at: DateTime<Utc>,
    /// The call that created it, for the events it produces.
    pub correlation_id: Option<crate::CorrelationId>,
}

/// A validated partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RoomChanges {
    pub name: Option<RoomName>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<RoomDescription>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl RoomChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none()
    }
}
