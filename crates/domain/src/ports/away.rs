//! Storage of the notifications for people who are away: who is due one, the
//! coalescing record of who was sent one, and its event (in the outbox).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::away::AwayUser;
use crate::{DomainError, RoomId, UserId};

#[async_trait]
pub trait AwayNotifications: Send + Sync + 'static {
    /// Participants (creator, members, posters; private rooms: creator and
    /// members only) of active rooms with activity after `active_since` who
    /// have a live message of others after their read marker created at or
    /// before `cutoff`, and were not notified about the room since they last
    /// read it or opened a socket to it. At most `limit`, by room then user.
    async fn due(
        &self,
        active_since: DateTime<Utc>,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AwayUser>, DomainError>;

    /// Records each user as notified and stores its `notification_requested`
    /// event in the same transaction, except for users who meanwhile read up to
    /// its `last_seq` or were notified already (by another instance). Returns
    /// how many were sent.
    async fn notify(&self, users: &[AwayUser], at: DateTime<Utc>) -> Result<usize, DomainError>;

    /// The user read the room or opened a socket to it: the next unread
    /// messages may notify again.
    async fn forget(&self, room: RoomId, user: &UserId) -> Result<(), DomainError>;
}

/// No notifications (a service without a broker, and unit tests).
pub struct NoAwayNotifications;

#[async_trait]
impl AwayNotifications for NoAwayNotifications {
    async fn due(
        &self,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
        _: u32,
    ) -> Result<Vec<AwayUser>, DomainError> {
        Ok(Vec::new())
    }

    async fn notify(&self, _: &[AwayUser], _: DateTime<Utc>) -> Result<usize, DomainError> {
        Ok(0)
    }

    async fn forget(&self, _: RoomId, _: &UserId) -> Result<(), DomainError> {
        Ok(())
    }
}
