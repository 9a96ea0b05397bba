//! Integration events: what other GrainTrade services are told about chat
//! activity (PROTOCOL.md "Events on RabbitMQ"). Fields that do not apply are omitted;
//! the `event_id` is given when the event is stored for delivery.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::away::{AwayUser, QuotedMessage};
use crate::offer::{Offer, Outcome};
use crate::{CorrelationId, Message, MessageId, ReactionKey, Room, RoomId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEventType {
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    UserJoined,
    UserLeft,
    RoomCreated,
    RoomDeleted,
    MessagesRead,
    NotificationRequested,
    ReactionAdded,
    ReactionRemoved,
    OfferCreated,
    OfferCountered,
    OfferAccepted,
    OfferDeclined,
    OfferWithdrawn,
    OfferExpired,
}

impl ChatEventType {
    /// The AMQP routing key: the event type with `.` for `_`.
    pub fn routing_key(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::MessageUpdated => "message.updated",
            Self::MessageDeleted => "message.deleted",
            Self::UserJoined => "user.joined",
            Self::UserLeft => "user.left",
            Self::RoomCreated => "room.created",
            Self::RoomDeleted => "room.deleted",
            Self::MessagesRead => "messages.read",
            Self::NotificationRequested => "notification.requested",
            Self::ReactionAdded => "reaction.added",
            Self::ReactionRemoved => "reaction.removed",
            Self::OfferCreated => "offer.created",
            Self::OfferCountered => "offer.countered",
            Self::OfferAccepted => "offer.accepted",
            Self::OfferDeclined => "offer.declined",
            Self::OfferWithdrawn => "offer.withdrawn",
            Self::OfferExpired => "offer.expired",
        }
    }

    /// The event of an offer reaching `outcome`.
    pub fn of_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Accepted => Self::OfferAccepted,
            Outcome::Declined => Self::OfferDeclined,
            Outcome::Countered => Self::OfferCountered,
            Outcome::Withdrawn => Self::OfferWithdrawn,
            Outcome::Expired => Self::OfferExpired,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatEvent {
    pub event_type: ChatEventType,
    pub room_id: RoomId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// `notification_requested`: the user's unread count in the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
    /// `notification_requested`: the newest unread message, quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message: Option<QuotedMessage>,
    /// `reaction_added`/`reaction_removed`: the reaction's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `reaction_added`/`reaction_removed`: the key's count on the message after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `offer_*`: the whole offer after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer: Option<Box<Offer>>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub timestamp: DateTime<Utc>,
    /// The call that caused the event: travels as a message header, not in the body.
    #[serde(skip)]
    pub correlation_id: Option<CorrelationId>,
}

impl ChatEvent {
    /// The same event, caused by the call `correlation_id`.
    pub fn with_correlation(mut self, correlation_id: Option<CorrelationId>) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    fn about_message(
        event_type: ChatEventType,
        m: &Message,
        content: bool,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            event_type,
            room_id: m.room_id,
            user_id: Some(m.user_id.clone()),
            message_id: Some(m.id),
            seq: Some(m.seq),
            content: content.then(|| m.content.clone()),
            unread: None,
            last_message: None,
            key: None,
            count: None,
            offer: None,
            timestamp: at,
            correlation_id: None,
        }
    }

    pub fn message_created(m: &Message) -> Self {
        Self::about_message(ChatEventType::MessageCreated, m, true, m.created_at)
    }

    pub fn message_updated(m: &Message) -> Self {
        Self::about_message(ChatEventType::MessageUpdated, m, true, m.updated_at)
    }

    /// `user_id` is the message's author.
    pub fn message_deleted(m: &Message, at: DateTime<Utc>) -> Self {
        Self::about_message(ChatEventType::MessageDeleted, m, false, at)
    }

    /// `user` added (`added`) or removed the reaction `key` of message `m`,
    /// which now has `count` of it. `user_id` is who reacted, not the author.
    pub fn reaction(
        m: &Message,
        user: &UserId,
        key: &ReactionKey,
        added: bool,
        count: u64,
        at: DateTime<Utc>,
    ) -> Self {
        let event_type =
            if added { ChatEventType::ReactionAdded } else { ChatEventType::ReactionRemoved };
        Self {
            user_id: Some(user.to_string()),
            content: None,
            key: Some(key.as_str().to_owned()),
            count: Some(count),
            ..Self::about_message(event_type, m, false, at)
        }
    }

    pub fn room_created(room: &Room) -> Self {
        Self::about_room(
            ChatEventType::RoomCreated,
            room.id,
            room.created_by.clone(),
            room.created_at,
        )
    }

    /// `user_id` is who deleted the room.
    pub fn room_deleted(room: RoomId, by: &UserId, at: DateTime<Utc>) -> Self {
        Self::about_room(ChatEventType::RoomDeleted, room, Some(by.to_string()), at)
    }

    pub fn user_joined(room: RoomId, user: &UserId, at: DateTime<Utc>) -> Self {
        Self::about_room(ChatEventType::UserJoined, room, Some(user.to_string()), at)
    }

    pub fn user_left(room: RoomId, user: &UserId, at: DateTime<Utc>) -> Self {
        Self::about_room(ChatEventType::UserLeft, room, Some(user.to_string()), at)
    }

    /// A user's read marker moved to `seq` at `at`.
    pub fn messages_read(room: RoomId, user: &UserId, seq: i64, at: DateTime<Utc>) -> Self {
        Self {
            seq: Some(seq),
            ..Self::about_room(ChatEventType::MessagesRead, room, Some(user.to_string()), at)
        }
    }

    /// A user away from the room is told of its unread messages.
    pub fn notification_requested(user: &AwayUser, at: DateTime<Utc>) -> Self {
        Self {
            unread: Some(user.unread),
            last_message: Some(user.last_message.clone()),
            ..Self::about_room(
                ChatEventType::NotificationRequested,
                user.room_id,
                Some(user.user_id.clone()),
                at,
            )
        }
    }

    /// An offer was made or changed; `user_id` is who answered it, or its
    /// author when it was made or expired; `message_id` its message.
    pub fn offer(event_type: ChatEventType, offer: &Offer, at: DateTime<Utc>) -> Self {
        let user = offer.responded_by.clone().unwrap_or_else(|| offer.from_user_id.clone());
        Self {
            message_id: Some(offer.message_id),
            offer: Some(Box::new(offer.clone())),
            ..Self::about_room(event_type, offer.room_id, Some(user), at)
        }
    }

    fn about_room(
        event_type: ChatEventType,
        room_id: RoomId,
        user_id: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            event_type,
            room_id,
            user_id,
            message_id: None,
            seq: None,
            content: None,
            unread: None,
            last_message: None,
            key: None,
            count: None,
            offer: None,
            timestamp: at,
            correlation_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omits_fields_that_do_not_apply() {
        let at = crate::timestamp::now();
        let event =
            ChatEvent::user_joined(RoomId::new(3).unwrap(), &UserId::parse("bob").unwrap(), at);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event_type"], "user_joined");
        assert_eq!(json["room_id"], 3);
        assert_eq!(json["user_id"], "bob");
        assert!(json.get("content").is_none() && json.get("seq").is_none());
        assert_eq!(ChatEventType::MessageCreated.routing_key(), "message.created");
        assert_eq!(ChatEventType::UserLeft.routing_key(), "user.left");
        assert_eq!(ChatEventType::MessagesRead.routing_key(), "messages.read");
        let read = ChatEvent::messages_read(
            RoomId::new(3).unwrap(),
            &UserId::parse("bob").unwrap(),
            7,
            at,
        );
        let json = serde_json::to_value(&read).unwrap();
        assert_eq!(json["event_type"], "messages_read");
        assert_eq!(json["seq"], 7);
        assert!(json.get("message_id").is_none() && json.get("content").is_none());
        assert!(json.get("unread").is_none() && json.get("last_message").is_none());
        assert!(json.get("key").is_none() && json.get("count").is_none());
    }

    #[test]
    fn a_reaction_event_names_the_reactor_the_key_and_the_count() {
        let at = crate::timestamp::now();
        let message = Message {
            id: MessageId::new(9).unwrap(),
            room_id: RoomId::new(3).unwrap(),
            seq: 4,
            user_id: "ann".into(),
            content: "hi".into(),
            message_type: crate::MessageType::Text,
            client_msg_id: None,
            created_at: at,
            updated_at: at,
            edited: false,
            reply_to: None,
            reactions: Default::default(),
            offer: None,
        };
        let bob = UserId::parse("bob").unwrap();
        let key = ReactionKey::parse("👍").unwrap();
        let json =
            serde_json::to_value(ChatEvent::reaction(&message, &bob, &key, true, 2, at)).unwrap();
        assert_eq!(json["event_type"], "reaction_added");
        assert_eq!(json["user_id"], "bob");
        assert_eq!(json["message_id"], 9);
        assert_eq!(json["seq"], 4);
        assert_eq!(json["key"], "👍");
        assert_eq!(json["count"], 2);
        assert!(json.get("content").is_none());
        let removed = ChatEvent::reaction(&message, &bob, &key, false, 1, at);
        assert_eq!(removed.event_type.routing_key(), "reaction.removed");
        assert_eq!(ChatEventType::ReactionAdded.routing_key(), "reaction.added");
    }

    #[test]
    fn a_notification_carries_the_unread_count_and_the_quoted_message() {
        let user = AwayUser {
            room_id: RoomId::new(3).unwrap(),
            user_id: "bob".into(),
            unread: 2,
            last_message: QuotedMessage::new(MessageId::new(9).unwrap(), "ann".into(), "hi"),
            last_seq: 5,
        };
        let json =
            serde_json::to_value(ChatEvent::notification_requested(&user, crate::timestamp::now()))
                .unwrap();
        assert_eq!(json["event_type"], "notification_requested");
        assert_eq!(json["user_id"], "bob");
        assert_eq!(json["room_id"], 3);
        assert_eq!(json["unread"], 2);
        assert_eq!(
            json["last_message"],
            serde_json::json!({"id": 9, "user_id": "ann", "content": "hi"})
        );
        assert!(json.get("seq").is_none() && json.get("content").is_none());
        assert_eq!(ChatEventType::NotificationRequested.routing_key(), "notification.requested");
    }
}
