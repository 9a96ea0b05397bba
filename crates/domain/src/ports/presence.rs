//! Presence: which users have an open socket in a room, and how many sockets
//! each user has open anywhere (room, GrainTrade and inbox sockets alike),
//! across all instances.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

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

/// A user's sockets of every kind, on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPresence {
    pub user_id: String,
    /// Open sockets; one per socket, whatever it is subscribed to.
    pub connections: u32,
    /// When a socket of the user last closed; `None` if none was seen closing.
    /// While the user is online it is the close seen before, not "now".
    pub last_seen: Option<DateTime<Utc>>,
}

impl UserPresence {
    /// A user with no socket and no close on record.
    pub fn offline(user: &UserId) -> Self {
        Self { user_id: user.to_string(), connections: 0, last_seen: None }
    }

    pub fn online(&self) -> bool {
        self.connections > 0
    }
}

/// `{"user_id", "online", "connections", "last_seen"}`: `online` is derived, so
/// it is written here rather than stored.
impl Serialize for UserPresence {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("UserPresence", 4)?;
        out.serialize_field("user_id", &self.user_id)?;
        out.serialize_field("online", &self.online())?;
        out.serialize_field("connections", &self.connections)?;
        let last_seen =
            self.last_seen.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        out.serialize_field("last_seen", &last_seen)?;
        out.end()
    }
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

    /// Records one open socket of `user` (any kind: it counts once, however
    /// many rooms it is subscribed to). Recording it again is harmless.
    async fn user_connected(
        &self,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError>;

    /// Forgets the socket and records `at` as the user's last seen time (unless
    /// a later one is on record). Forgetting an unknown socket is harmless.
    async fn user_disconnected(
        &self,
        user: &UserId,
        connection: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DomainError>;

    /// The user's open sockets on every instance and last seen time.
    async fn user_presence(&self, user: &UserId) -> Result<UserPresence, DomainError>;
}
