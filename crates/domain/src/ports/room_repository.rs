//! Storage of rooms and their members.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::conversation::Conversation;
use crate::room::RoomChanges;
use crate::{
    CorrelationId, DomainError, Limit, NewRoom, Room, RoomCursor, RoomId, RoomName, RoomPage,
    UserId,
};

/// Which rooms a listing may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomVisibility {
    /// Every active room (admins).
    All,
    /// Public rooms and the private rooms this user belongs to.
    PublicOrMemberOf(UserId),
}

#[async_trait]
pub trait RoomRepository: Send + Sync + 'static {
    /// Stores a new room with its creator and members.
    async fn create(&self, room: NewRoom) -> Result<Room, DomainError>;

    /// An active (not deleted) room, if there is one with this id.
    async fn find_active(&self, id: RoomId) -> Result<Option<Room>, DomainError>;

    /// Active rooms visible as `visibility` says (of one item, if given),
    /// ascending id, starting after `after`.
    async fn list_visible(
        &self,
        visibility: &RoomVisibility,
        item: Option<&str>,
        after: Option<RoomCursor>,
        limit: Limit,
    ) -> Result<RoomPage, DomainError>;

    /// Applies `changes` to an active room; `None` when there is no such room.
    async fn update(&self, id: RoomId, changes: RoomChanges) -> Result<Option<Room>, DomainError>;

    /// Marks an active room deleted by `by`, keeping its messages; false when there was none.
    async fn deactivate(
        &self,
        id: RoomId,
        by: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<bool, DomainError>;

    /// The oldest active public room with exactly this name.
    async fn find_public_by_name(&self, name: &RoomName) -> Result<Option<Room>, DomainError>;

    /// The room of an item conversation, if it exists.
    async fn find_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<Option<Room>, DomainError>;

    /// The room of an item conversation, created (private, the two users as
    /// members) if it does not exist yet; concurrent calls get one room. True
    /// when this call created it.
    async fn open_conversation(
        &self,
        conversation: &Conversation,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<(Room, bool), DomainError>;

    /// Adds a member; false when the user already was one.
    async fn add_member(
        &self,
        id: RoomId,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError>;

    /// Removes a member; false when the user was none.
    async fn remove_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError>;

    /// Whether `user` is a member of the room.
    async fn is_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError>;
}
