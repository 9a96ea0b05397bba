//! GrainTrade compatibility: the protocol the deployed frontend and
//! notifications service speak (API.md "GrainTrade compatibility"), served on top
//! of item conversations — each a private two-member room of the main API.

pub mod hub;
pub mod routes;
pub mod socket;

use chat_domain::Message;
use chat_domain::conversation::Conversation;
use serde::Serialize;

pub use hub::LegacyHub;

/// A message as the old service showed it, in history and on its sockets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 9, "item_id": "77", "sender_id": "buyer1", "receiver_id": "seller7", "content": "Is the price final?", "timestamp": "2026-01-01T12:00:00.123Z"}))]
pub struct LegacyMessage {
    pub id: i64,
    pub item_id: String,
    pub sender_id: String,
    pub receiver_id: String,
    pub content: String,
    #[serde(with = "chat_domain::timestamp::rfc3339_millis")]
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

impl LegacyMessage {
    pub fn new(message: &Message, item_id: &str, receiver_id: &str) -> Self {
        Self {
            id: message.id.get(),
            item_id: item_id.to_owned(),
            sender_id: message.user_id.clone(),
            receiver_id: receiver_id.to_owned(),
            content: message.content.clone(),
            timestamp: message.created_at,
        }
    }

    pub fn in_conversation(message: &Message, conversation: &Conversation) -> Self {
        let receiver = conversation.other(&message.user_id).to_string();
        Self::new(message, conversation.item.as_str(), &receiver)
    }
}
