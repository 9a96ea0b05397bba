//! TEMPORARY: stand-ins for the read-state use cases (branch `reads`), so the
//! inbox socket compiles before they land. Deleted at the merge.

use super::ChatService;
use crate::read_state::{InboxCursor, InboxPage, ReadMarker, UnreadState};
use crate::{Actor, DomainError, Limit, RoomId};

impl ChatService {
    pub async fn mark_room_read(
        &self,
        _actor: &Actor,
        _room: RoomId,
        _seq: i64,
    ) -> Result<ReadMarker, DomainError> {
        Err(DomainError::Unavailable("read markers".into()))
    }

    pub async fn my_rooms(
        &self,
        _actor: &Actor,
        _limit: Limit,
        _cursor: Option<InboxCursor>,
    ) -> Result<InboxPage, DomainError> {
        Ok(InboxPage { items: Vec::new(), next_cursor: None })
    }

    pub async fn unread_state(
        &self,
        _actor: &Actor,
        room: RoomId,
    ) -> Result<UnreadState, DomainError> {
        Ok(UnreadState { room_id: room, last_read_seq: 0, unread: 0, last_seq: 0 })
    }
}
