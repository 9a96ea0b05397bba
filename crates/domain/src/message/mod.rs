//! Chat messages: the entity and the values that parse a message's user input.

mod client_msg_id;
mod content;
mod message_type;
mod model;
mod reaction;
pub mod version;

pub use client_msg_id::ClientMsgId;
pub use content::MessageContent;
pub use message_type::MessageType;
pub use model::{ConversationTarget, Message, MessageId, NewMessage, Posted};
pub use reaction::{Reaction, ReactionChange, ReactionCounts, ReactionKey};
pub use version::MessageVersion;
