//! Full-text search over stored messages.

use async_trait::async_trait;

use crate::ports::RoomVisibility;
use crate::search::SearchFilter;
use crate::{DomainError, Message};

#[async_trait]
pub trait MessageSearch: Send + Sync + 'static {
    /// Live messages of active rooms visible as `visibility` says that match
    /// every word (the last as a prefix), newest first, at most `limit + 1`.
    async fn search(
        &self,
        filter: &SearchFilter,
        visibility: &RoomVisibility,
    ) -> Result<Vec<Message>, DomainError>;
}
