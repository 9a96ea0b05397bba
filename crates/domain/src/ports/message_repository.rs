//! Storage of messages, including the per-room `seq` and idempotency rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::message::NewMessage;
use crate::{
    CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message, MessageContent,
    MessageId, Posted, RoomId,
};

#[async_trait]
pub trait MessageRepository: Send + Sync + 'static {
    /// Stores a message in an active room with the next `seq`, atomically.
    ///
    /// Contract: seqs of a room are strictly increasing in commit order with no
    /// gap a reader can observe; if the author already sent `client_msg_id` to this
    /// room, nothing is stored and the original comes back as [`Posted::Duplicate`].
    /// [`DomainError::NotFound`] when the room does not exist or is deleted.
    async fn append(&self, message: NewMessage) -> Result<Posted, DomainError>;

    /// A message that is not deleted, archived ones included.
    async fn find(&self, id: MessageId) -> Result<Option<Message>, DomainError>;

    /// A page of a room's live (not deleted) messages, ascending seq, running
    /// on into archived ones with no gap.
    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError>;

    /// Replaces the content and marks the message edited; `None` if it is gone.
    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError>;

    /// Users who sent a live message in any room of the item.
    async fn item_participants(&self, item: &str) -> Result<Vec<String>, DomainError>;

    /// Marks every live message of the room deleted; returns how many.
    async fn clear_room(&self, room: RoomId, at: DateTime<Utc>) -> Result<u64, DomainError>;

    /// Marks a message deleted and returns it; `None` when it was already gone.
    async fn delete(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError>;
}
