//! Storage of read markers, unread counts and the inbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::read_state::{InboxCursor, InboxPage, MarkedRead, ReadMarker, ReadSeq, UnreadState};
use crate::{CorrelationId, DomainError, Limit, RoomId, UserId};

#[async_trait]
pub trait ReadState: Send + Sync + 'static {
    /// Moves the user's marker in the room forward to `seq` (clamped to the
    /// room's last seq), atomically: concurrent calls end at the highest seq,
    /// and a lower seq changes nothing. When it moved, the `messages_read`
    /// integration event is stored in the same transaction.
    async fn mark_read(
        &self,
        room: RoomId,
        user: &UserId,
        seq: ReadSeq,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<MarkedRead, DomainError>;

    /// The markers of a room (users who have read something), in user id order.
    async fn reads(&self, room: RoomId) -> Result<Vec<ReadMarker>, DomainError>;

    /// The user's unread count in the room, read in one snapshot.
    async fn unread(&self, room: RoomId, user: &UserId) -> Result<UnreadState, DomainError>;

    /// The user's rooms (created, member of, or posted in; active; private ones
    /// only while the user may read them), most recent activity first.
    async fn inbox(
        &self,
        user: &UserId,
        after: Option<InboxCursor>,
        limit: Limit,
    ) -> Result<InboxPage, DomainError>;
}
