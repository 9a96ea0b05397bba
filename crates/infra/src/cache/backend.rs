//! What a cache store must offer the decorator: versioned fills and atomic
//! updates per room.

use async_trait::async_trait;
use chat_domain::{Message, Room, RoomId};

#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {0}")]
pub struct CacheError(pub String);

/// A room's cached newest messages, ascending seq, and whether older ones exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub items: Vec<Message>,
    pub has_older: bool,
}

#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// The room's version: changes whenever one of its cached entries may change.
    async fn version(&self, room: RoomId) -> Result<Option<i64>, CacheError>;

    async fn room(&self, room: RoomId) -> Result<Option<Room>, CacheError>;

    /// Stores `room` if the version is still `seen`.
    async fn fill_room(&self, room: &Room, seen: Option<i64>) -> Result<(), CacheError>;

    async fn recent(&self, room: RoomId) -> Result<Option<Recent>, CacheError>;

    /// Stores the newest page if the version is still `seen`.
    async fn fill_recent(
        &self,
        room: RoomId,
        recent: &Recent,
        seen: Option<i64>,
    ) -> Result<(), CacheError>;

    /// After new messages of one room committed (ascending seq, one batch):
    /// bump the version once; add them to a cached page (keeping the newest
    /// [`super::RECENT_LIMIT`]).
    async fn appended(&self, room: RoomId, messages: &[Message]) -> Result<(), CacheError>;

    /// After an edit committed: bump the version; replace it in a cached page.
    async fn replaced(&self, message: &Message) -> Result<(), CacheError>;

    /// Bump the version and drop the cached page (and the room, if `room_too`).
    async fn invalidate(&self, room: RoomId, room_too: bool) -> Result<(), CacheError>;
}
