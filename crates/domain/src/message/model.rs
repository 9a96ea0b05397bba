//! The Message entity and the input that creates one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ClientMsgId, MessageContent, MessageType, ReactionCounts};
use crate::conversation::{ItemId, NewMessageNotice};
use crate::{Delivery, DomainError, RoomEvent, RoomId, UserId};

/// A message id: a positive 64-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(i64);

impl MessageId {
    pub fn new(raw: i64) -> Result<Self, DomainError> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(DomainError::validation("message_id", "must be a positive integer"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    /// Position in the room: from 1, strictly increasing in commit order.
    pub seq: i64,
    pub user_id: String,
    pub content: String,
    pub message_type: MessageType,
    pub client_msg_id: Option<String>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::timestamp::rfc3339_millis")]
    pub updated_at: DateTime<Utc>,
    pub edited: bool,
    /// The message this one answers (a live message of the same room when posted).
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    /// Reaction counts per key; empty when nobody reacted.
    #[serde(default)]
    pub reactions: ReactionCounts,
    /// The offer a message of type `offer` carries, as it stands now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<Box<crate::offer::Offer>>,
}

/// A validated message about to be stored; the repository assigns `id` and `seq`.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub user_id: UserId,
    pub content: MessageContent,
    pub message_type: MessageType,
    pub client_msg_id: Option<ClientMsgId>,
    /// The message this one answers; checked when the batch is stored (it must
    /// then be a live message of the same room).
    pub reply_to: Option<MessageId>,
    pub created_at: DateTime<Utc>,
    /// Set for a message of an item conversation: who receives it, about which
    /// item (they are notified and it counts as unread for them).
    pub conversation: Option<ConversationTarget>,
    /// The call that posted it, for the events it produces.
    pub correlation_id: Option<crate::CorrelationId>,
}

/// The receiver and item of a conversation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationTarget {
    pub item: ItemId,
    pub receiver: UserId,
}

impl NewMessage {
    /// What the sockets are told once this message is stored as `stored`: the
    /// message to its room and, for an item conversation, the GrainTrade copy.
    pub fn broadcasts(&self, stored: &Message) -> impl Iterator<Item = Delivery> + use<> {
        let conversation = self.conversation.as_ref().map(|to| {
            Delivery::to_all(RoomEvent::ConversationMessage {
                message: stored.clone(),
                item_id: to.item.as_str().to_owned(),
                receiver_id: to.receiver.to_string(),
            })
        });
        std::iter::once(Delivery::to_all(RoomEvent::Message(stored.clone()))).chain(conversation)
    }

    /// The notice the GrainTrade notifications service gets for this message, if any.
    pub fn notice(&self) -> Option<NewMessageNotice> {
        let to = self.conversation.as_ref()?;
        Some(NewMessageNotice::new(&to.receiver, self.content.as_str(), &to.item))
    }
}

/// The result of posting: a new message, or the original one when the same
/// `client_msg_id` was sent before (nothing new stored or broadcast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Created(Message),
    Duplicate(Message),
}

impl Posted {
    pub fn into_message(self) -> Message {
        match self {
            Self::Created(m) | Self::Duplicate(m) => m,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}
