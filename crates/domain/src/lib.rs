//! The GrainTrade chat domain: rooms, messages, the rules that govern them and the
//! ports (traits) through which the use cases reach storage. It knows nothing of
//! HTTP, SQL or any runtime, so other GrainTrade services can reuse it as it is.

pub mod actor;
pub mod away;
pub mod conversation;
pub mod correlation;
pub mod error;
pub mod events;
pub mod integration_event;
pub mod message;
pub mod offer;
pub mod paging;
pub mod ports;
pub mod read_state;
pub mod room;
pub mod search;
pub mod service;
pub mod timestamp;

pub use actor::{Actor, Role, UserId};
pub use correlation::CorrelationId;
pub use error::DomainError;
pub use events::{Delivery, RoomEvent};
pub use integration_event::{ChatEvent, ChatEventType};
pub use message::{
    ClientMsgId, Message, MessageContent, MessageId, MessageType, MessageVersion, NewMessage,
    Posted, Reaction, ReactionChange, ReactionCounts, ReactionKey,
};
pub use paging::{HistoryPage, HistoryQuery, HistoryRequest, Limit, RoomCursor, RoomPage};
pub use room::{NewRoom, Room, RoomChanges, RoomDescription, RoomId, RoomName};
pub use service::{
    ChatService, Joined, MessageEdit, MessageInput, Ports, RoomInput, RoomPatchInput, SearchInput,
};
