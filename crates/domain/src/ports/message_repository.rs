//! Storage of messages, including the per-room `seq` and idempotency rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::message::NewMessage;
use crate::{
    CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message, MessageContent,
    MessageId, MessageVersion, Posted, RoomId,
};

#[async_trait]
pub trait MessageRepository: Send + Sync + 'static {
    /// Stores a batch of new messages in one transaction (one commit for all).
    ///
    /// Contract, per room: the stored messages take the room's next seqs in the
    /// order of `batch`, strictly increasing in commit order with no gap a reader
    /// can observe. Each message has its own outcome, in the order of `batch`:
    /// [`Posted::Created`]; [`Posted::Duplicate`] with the original when its
    /// author already sent its `client_msg_id` to the room, before or earlier in
    /// this batch (nothing stored); [`DomainError::NotFound`] when its room does
    /// not exist or is deleted. An `Err` for the whole call means nothing of the
    /// batch was stored (or, cut off at `COMMIT`, that the outcome is unknown).
    async fn append_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError>;

    /// What must follow a batch's commit before anyone is told of its messages
    /// (a cache of the newest pages adds them). Whoever calls
    /// [`MessageRepository::append_batch`] calls this with its outcomes, batch
    /// after batch in commit order, and may meanwhile store the next batch. It
    /// cannot fail: a cache that missed an update invalidates what it holds.
    async fn appended(&self, outcomes: &[Result<Posted, DomainError>]) {
        let _ = outcomes;
    }

    /// The room's messages changed in storage other than through this
    /// repository (an offer's message deleted with its offer): whatever is
    /// kept of the room is dropped.
    async fn changed_elsewhere(&self, room: RoomId) {
        let _ = room;
    }

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

    /// Replaces the content and marks the message edited, keeping the replaced
    /// text as a version in the same transaction; `None` if it is gone.
    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError>;

    /// The texts of the live message `id`, oldest first, its current text last
    /// (one version for a message never edited), read in one snapshot; `None`
    /// if it is gone.
    async fn versions(&self, id: MessageId) -> Result<Option<Vec<MessageVersion>>, DomainError>;

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
