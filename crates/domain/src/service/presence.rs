//! Socket-side use cases: joining and leaving a room (presence), a user's
//! sockets of every kind (user presence), typing, and the replay of committed
//! messages that resume and gap-filling rely on.

use crate::ports::{PresenceEntry, UserPresence};
use crate::{
    Actor, ChatEvent, ChatService, Delivery, DomainError, HistoryPage, HistoryQuery, Limit, Room,
    RoomEvent, RoomId, UserId, timestamp,
};

/// What a socket learns when it joins.
#[derive(Debug, Clone)]
pub struct Joined {
    pub room: Room,
    /// Users present, the joiner included.
    pub users: Vec<PresenceEntry>,
    /// Set when the join's bookkeeping failed: the `user_joined` event could
    /// not be stored for delivery, or the user's notifications could not be
    /// re-armed (the join itself stands; the caller should log it).
    pub event_error: Option<DomainError>,
}

impl ChatService {
    /// Checks the actor may read the room (404/403 otherwise), without joining.
    pub async fn authorize_socket(&self, actor: &Actor, room: RoomId) -> Result<Room, DomainError> {
        self.get_room(actor, room).await
    }

    /// Records the socket `connection` in `room` (checked by
    /// [`Self::authorize_socket`]); the user's first socket there announces
    /// `user_joined` to everybody else. The users returned are at most
    /// `list_at_most`, the joiner among them, so joining a big room costs the
    /// same as a small one.
    pub async fn join_room(
        &self,
        actor: &Actor,
        room: Room,
        connection: &str,
        list_at_most: usize,
    ) -> Result<Joined, DomainError> {
        let room_id = room.id;
        let at = timestamp::now();
        let first = self.presence.socket_opened(room_id, &actor.user_id, connection, at).await?;
        let mut event_error = None;
        if first {
            let event = ChatEvent::user_joined(room_id, &actor.user_id, at)
                .with_correlation(actor.correlation_id.clone());
            event_error = self.events.record(event).await.err();
            self.fan_out.publish(Delivery {
                event: RoomEvent::UserJoined {
                    room_id,
                    user_id: actor.user_id.to_string(),
                    timestamp: at,
                },
                skip_connection: Some(connection.to_owned()),
                to_user: None,
            });
        }
        if first && event_error.is_none() {
            // Opening a socket to the room ends the coalescing of notifications.
            event_error = self.away.forget(room_id, &actor.user_id).await.err();
        }
        let mut users = self.presence.some_users(room_id, list_at_most.max(1)).await?;
        if !users.iter().any(|u| u.user_id == actor.user_id.as_str()) {
            // A big room's sample may leave the joiner out: it is always listed.
            users.truncate(list_at_most.max(1) - 1);
            users.push(PresenceEntry {
                user_id: actor.user_id.to_string(),
                connections: 1,
                since: at,
            });
        }
        Ok(Joined { room, users, event_error })
    }

    /// Forgets the socket; the user's last socket announces `user_left`.
    pub async fn leave_room(
        &self,
        actor: &Actor,
        room_id: RoomId,
        connection: &str,
    ) -> Result<(), DomainError> {
        let user = &actor.user_id;
        if self.presence.socket_closed(room_id, user, connection).await? {
            let at = timestamp::now();
            self.fan_out.publish(Delivery::to_all(RoomEvent::UserLeft {
                room_id,
                user_id: user.to_string(),
                timestamp: at,
            }));
            let event = ChatEvent::user_left(room_id, user, at)
                .with_correlation(actor.correlation_id.clone());
            self.events.record(event).await?;
        }
        Ok(())
    }

    /// Records that the actor opened the socket `connection` (a room, GrainTrade
    /// or inbox socket: each counts once). The caller logs a failure; the socket
    /// stays open.
    pub async fn socket_connected(
        &self,
        actor: &Actor,
        connection: &str,
    ) -> Result<(), DomainError> {
        self.presence.user_connected(&actor.user_id, connection, timestamp::now()).await
    }

    /// Records that the socket `connection` of the actor closed, now.
    pub async fn socket_disconnected(
        &self,
        actor: &Actor,
        connection: &str,
    ) -> Result<(), DomainError> {
        self.presence.user_disconnected(&actor.user_id, connection, timestamp::now()).await
    }

    /// Whether `user_id` has sockets open anywhere, and when one last closed.
    /// Presence is public within the marketplace: any caller may ask, about
    /// any user (an unknown one is simply offline).
    pub async fn user_presence(
        &self,
        _actor: &Actor,
        user_id: &str,
    ) -> Result<UserPresence, DomainError> {
        let user = UserId::parse(user_id)?;
        self.presence.user_presence(&user).await
    }

    /// Tells the room's other sockets that the actor is typing.
    pub fn typing(&self, actor: &Actor, room_id: RoomId, connection: &str) {
        self.fan_out.publish(Delivery {
            event: RoomEvent::Typing { room_id, user_id: actor.user_id.to_string() },
            skip_connection: Some(connection.to_owned()),
            to_user: None,
        });
    }

    /// Users with an open socket in a room the actor may read.
    pub async fn room_users(
        &self,
        actor: &Actor,
        room_id: RoomId,
    ) -> Result<Vec<PresenceEntry>, DomainError> {
        self.get_room(actor, room_id).await?;
        self.presence.users(room_id).await
    }

    /// Committed messages after `after_seq`, ascending, for a subscriber whose
    /// access was already checked (resume and gap filling).
    pub async fn replay(
        &self,
        room_id: RoomId,
        after_seq: i64,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        self.messages.history(room_id, HistoryQuery::After(after_seq), limit).await
    }
}
