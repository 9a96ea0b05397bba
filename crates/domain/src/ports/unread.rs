//! Unread message counters per (item, user), as the old GrainTrade chat kept them.

use async_trait::async_trait;

use crate::conversation::ItemId;
use crate::{DomainError, UserId};

#[async_trait]
pub trait UnreadCounters: Send + Sync + 'static {
    async fn increment(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError>;
    async fn get(&self, item: &ItemId, user: &UserId) -> Result<u64, DomainError>;
    async fn reset(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError>;
}
