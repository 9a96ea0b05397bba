//! Presence: which users have an open socket in a room, across all instances.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{DomainError, RoomId, UserId};

/// One user present in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceEntry {
    pub user_id: String,
    /// Open sockets of this user in the room.
    pub connections: u32,
    /// When the user's oldest open socket connected.
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub since: DateTime<Utc>,
}

#[async_trait]
pub trait PresenceRegistry: Send + Sync + 'static {
    /// Records an open socket; true when it is the user's first in the room.
    async fn socket_opened(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError>;

    /// Forgets a socket; true when it was the user's last in the room.
    async fn socket_closed(
        &self,
        room: RoomId,
        user: &UserId,
        connection: &str,
    ) -> Result<bool, DomainError>;

    /// Users present in the room, in order of arrival.
    async fn users(&self, room: RoomId) -> Result<Vec<PresenceEntry>, DomainError>;

    /// At most `limit` of the users present (all of them when there are no
    /// more), for a joiner of a big room; which ones is the adapter's choice,
    /// so that the cost does not grow with the room.
    async fn some_users(
        &self,
        room: RoomId,
        limit: usize,
    ) -> Result<Vec<PresenceEntry>, DomainError> {
        let mut users = self.users(room).await?;
        users.truncate(limit);
        Ok(users)
    }
}
