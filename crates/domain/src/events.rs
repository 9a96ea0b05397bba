//! What the sockets of a room are told. The serialized form of a [`RoomEvent`] is
//! exactly the server→client WebSocket frame of PROTOCOL.md, so a broadcast is
//! serialized once and the same bytes go to every socket and across instances.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::offer::Offer;
use crate::{Message, MessageId, Room, RoomId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// A new, committed message.
    Message(Message),
    MessageUpdated(Message),
    MessageDeleted {
        id: MessageId,
        room_id: RoomId,
        seq: i64,
    },
    /// A user added (`added`) or removed a reaction; `count` is the key's count after it.
    Reaction {
        room_id: RoomId,
        message_id: MessageId,
        seq: i64,
        key: String,
        user_id: String,
        added: bool,
        count: u64,
    },
    UserJoined {
        room_id: RoomId,
        user_id: String,
        #[serde(with = "crate::timestamp::rfc3339_millis")]
        timestamp: DateTime<Utc>,
    },
    UserLeft {
        room_id: RoomId,
        user_id: String,
        #[serde(with = "crate::timestamp::rfc3339_millis")]
        timestamp: DateTime<Utc>,
    },
    Typing {
        room_id: RoomId,
        user_id: String,
    },
    RoomDeleted {
        room_id: RoomId,
    },
    /// A user's read marker moved ("seen").
    Read {
        room_id: RoomId,
        user_id: String,
        seq: i64,
        #[serde(with = "crate::timestamp::rfc3339_millis")]
        read_at: DateTime<Utc>,
    },
    /// For one user's inbox sockets: the user was made a member of a room, or created one.
    RoomAdded {
        room: Box<Room>,
    },
    /// For one user's inbox sockets: removed from a room, or the room was deleted.
    RoomRemoved {
        room_id: RoomId,
    },
    /// For one user's inbox sockets: that user's unread count of a room changed.
    Unread {
        room_id: RoomId,
        unread: u64,
        last_seq: i64,
    },
    /// A message of an item conversation, for the GrainTrade-compatible sockets
    /// (the room's own sockets get the `Message` event).
    ConversationMessage {
        message: Message,
        item_id: String,
        receiver_id: String,
    },
    /// An offer of the room was made or changed.
    OfferUpdated {
        room_id: RoomId,
        offer: Box<Offer>,
    },
}

impl RoomEvent {
    pub fn room_id(&self) -> RoomId {
        match self {
            Self::Message(m) | Self::MessageUpdated(m) => m.room_id,
            Self::ConversationMessage { message, .. } => message.room_id,
            Self::MessageDeleted { room_id, .. }
            | Self::Reaction { room_id, .. }
            | Self::UserJoined { room_id, .. }
            | Self::UserLeft { room_id, .. }
            | Self::Typing { room_id, .. }
            | Self::RoomDeleted { room_id }
            | Self::Read { room_id, .. }
            | Self::RoomRemoved { room_id }
            | Self::Unread { room_id, .. }
            | Self::OfferUpdated { room_id, .. } => *room_id,
            Self::RoomAdded { room } => room.id,
        }
    }

    /// The seq of a new message: the events that must reach sockets in seq order.
    pub fn new_message_seq(&self) -> Option<i64> {
        match self {
            Self::Message(m) => Some(m.seq),
            _ => None,
        }
    }
}

/// An event on its way to a room's sockets, optionally skipping one connection
/// (the typist does not see its own `typing`, a joiner not its own `user_joined`),
/// or — `to_user` set — to one user's inbox sockets (`/ws`) instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub event: RoomEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_user: Option<String>,
}

impl Delivery {
    pub fn to_all(event: RoomEvent) -> Self {
        Self { event, skip_connection: None, to_user: None }
    }

    /// An event for the inbox sockets of one user only.
    pub fn to_user(user: &str, event: RoomEvent) -> Self {
        Self { event, skip_connection: None, to_user: Some(user.to_owned()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageType, timestamp};

    #[test]
    fn serializes_as_the_websocket_frame() {
        let at = timestamp::now();
        let message = Message {
            id: MessageId::new(5).unwrap(),
            room_id: RoomId::new(1).unwrap(),
            seq: 3,
            user_id: "alice".into(),
            content: "Hello!".into(),
            message_type: MessageType::Text,
            client_msg_id: None,
            created_at: at,
            updated_at: at,
            edited: false,
            reply_to: None,
            reactions: Default::default(),
            offer: None,
        };
        let frame = serde_json::to_value(RoomEvent::Message(message.clone())).unwrap();
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["seq"], 3);
        assert_eq!(frame["content"], "Hello!");
        assert_eq!(frame["reply_to"], serde_json::Value::Null);
        assert_eq!(frame["reactions"], serde_json::json!({}));
        let back: RoomEvent = serde_json::from_value(frame).unwrap();
        assert_eq!(back, RoomEvent::Message(message));

        let deleted = RoomEvent::MessageDeleted {
            id: MessageId::new(5).unwrap(),
            room_id: RoomId::new(1).unwrap(),
            seq: 3,
        };
        assert_eq!(
            serde_json::to_value(&deleted).unwrap(),
            serde_json::json!({"type": "message_deleted", "id": 5, "room_id": 1, "seq": 3})
        );
        let typing = RoomEvent::Typing { room_id: RoomId::new(1).unwrap(), user_id: "bob".into() };
        assert_eq!(
            serde_json::to_value(&typing).unwrap(),
            serde_json::json!({"type": "typing", "room_id": 1, "user_id": "bob"})
        );
    }
}
