//! Read-state use cases: move a read marker ("seen"), list a room's markers,
//! a user's unread count in a room, and the inbox (a user's rooms, most recent
//! activity first, with their unread counts).

use crate::read_state::{InboxCursor, InboxPage, ReadMarker, ReadSeq, UnreadState};
use crate::{Actor, ChatService, Delivery, DomainError, Limit, RoomEvent, RoomId, timestamp};

impl ChatService {
    /// Moves the actor's read marker in the room forward to `seq` (clamped to
    /// the room's last seq) and answers the marker after the call; a lower seq
    /// changes nothing. Authorized like reading the room's history.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        room: RoomId,
        seq: i64,
    ) -> Result<ReadMarker, DomainError> {
        let seq = ReadSeq::parse(seq)?;
        self.get_room(actor, room).await?;
        self.move_marker(actor, room, seq).await
    }

    /// [`Self::mark_read`] once access is settled. When the marker moved, the
    /// room's sockets are told ("seen") and so are the actor's own inbox
    /// sockets (its other devices), with the room's new unread count.
    pub(crate) async fn move_marker(
        &self,
        actor: &Actor,
        room: RoomId,
        seq: ReadSeq,
    ) -> Result<ReadMarker, DomainError> {
        let user = &actor.user_id;
        let marked = self
            .read_state
            .mark_read(room, user, seq, timestamp::now(), actor.correlation_id.as_ref())
            .await?;
        if marked.moved {
            // The marker is stored; a failure here only means the next unread
            // messages of the room may not notify the user while away.
            let _ = self.away.forget(room, user).await;
            let marker = &marked.marker;
            self.fan_out.publish(Delivery::to_all(RoomEvent::Read {
                room_id: marker.room_id,
                user_id: marker.user_id.clone(),
                seq: marker.seq,
                read_at: marker.read_at,
            }));
            // The marker is stored either way; an inbox socket that misses this
            // count (the read failed) gets the right one when it next opens.
            if let Ok(state) = self.read_state.unread(room, user).await {
                self.fan_out.publish(Delivery::to_user(
                    user.as_str(),
                    RoomEvent::Unread {
                        room_id: room,
                        unread: state.unread,
                        last_seq: state.last_seq,
                    },
                ));
            }
        }
        Ok(marked.marker)
    }

    /// The markers of the room's readers, in user id order. Authorized like
    /// reading the room's history.
    pub async fn room_reads(
        &self,
        actor: &Actor,
        room: RoomId,
    ) -> Result<Vec<ReadMarker>, DomainError> {
        self.get_room(actor, room).await?;
        self.read_state.reads(room).await
    }

    /// The actor's unread count in the room (for the inbox socket).
    pub async fn unread_state(
        &self,
        actor: &Actor,
        room: RoomId,
    ) -> Result<UnreadState, DomainError> {
        self.get_room(actor, room).await?;
        self.read_state.unread(room, &actor.user_id).await
    }

    /// The actor's rooms — created, member of, or posted in — most recent
    /// activity first, with each room's newest message and unread count.
    pub async fn my_rooms(
        &self,
        actor: &Actor,
        limit: Limit,
        cursor: Option<InboxCursor>,
    ) -> Result<InboxPage, DomainError> {
        self.read_state.inbox(&actor.user_id, cursor, limit).await
    }
}
