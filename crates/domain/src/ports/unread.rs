//! Unread message counters per (item, user), as the old GrainTrade chat kept them.

use async_trait::async_trait;

use crate::conversation::ItemId;
use crate::{DomainError, UserId};

#[async_trait]
pub trait UnreadCounters: Send + Sync + 'static {
    async fn increment(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError>;

    /// Adds each count to its counter, all in one call (a batch's conversation
    /// messages, counted per receiver and item).
    async fn increment_all(&self, counts: &[(ItemId, UserId, u64)]) -> Result<(), DomainError> {
        for (item, user, count) in counts {
            for _ in 0..*count {
                self.increment(item, user).await?;
            }
        }
        Ok(())
    }

    async fn get(&self, item: &ItemId, user: &UserId) -> Result<u64, DomainError>;
    async fn reset(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError>;
}
