//! Storage of reactions: who reacted to which message with which key, and the
//! counts every read of the message carries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{CorrelationId, DomainError, MessageId, Reaction, ReactionChange, ReactionKey, UserId};

#[async_trait]
pub trait ReactionRepository: Send + Sync + 'static {
    /// Adds `user`'s reaction `key` to the live message `id` (archived ones
    /// included), once: a repeat changes nothing (`changed: false`). A change
    /// and its `reaction_added` event are one transaction. A key the message
    /// does not have yet is refused when it has [`ReactionKey::MAX_PER_MESSAGE`]
    /// distinct keys (checked under the message's lock). `None`: no such live message.
    async fn add(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError>;

    /// Removes `user`'s reaction `key` from the live message `id`; `changed:
    /// false` when there was none. With its `reaction_removed` event, one transaction.
    async fn remove(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError>;

    /// Every reaction to message `id`, oldest first.
    async fn list(&self, id: MessageId) -> Result<Vec<Reaction>, DomainError>;
}
