//! The use cases: what a caller can do with rooms and messages, with the access
//! rules applied. They reach storage only through the ports.

mod away;
mod conversations;
mod messages;
mod offers;
mod presence;
mod reactions;
mod reads;
mod rooms;
mod search;

use std::sync::Arc;

use crate::ports::{
    AwayNotifications, EventLog, FanOut, MessageRepository, MessageSearch, MessageWriter,
    OfferRepository, PresenceRegistry, RateLimiter, ReactionRepository, ReadState, RoomRepository,
    UnreadCounters,
};

pub use messages::{MessageEdit, MessageInput};
pub use offers::{CounterInput, OfferInput};
pub use presence::Joined;
pub use rooms::{RoomInput, RoomPatchInput};
pub use search::SearchInput;

/// The adapters a [`ChatService`] runs on.
#[derive(Clone)]
pub struct Ports {
    pub rooms: Arc<dyn RoomRepository>,
    pub messages: Arc<dyn MessageRepository>,
    /// Where new messages go (reads, edits and deletes use `messages`); it hands
    /// stored messages to the fan-out itself, in seq order.
    pub writer: Arc<dyn MessageWriter>,
    pub fan_out: Arc<dyn FanOut>,
    pub presence: Arc<dyn PresenceRegistry>,
    pub events: Arc<dyn EventLog>,
    pub search: Arc<dyn MessageSearch>,
    pub unread: Arc<dyn UnreadCounters>,
    /// Read markers, unread counts and the inbox.
    pub read_state: Arc<dyn ReadState>,
    /// Messages per user, shared by every way of posting (REST, sockets).
    pub message_rate: Arc<dyn RateLimiter>,
    /// Notifications for people who are away.
    pub away: Arc<dyn AwayNotifications>,
    /// Reactions to messages.
    pub reactions: Arc<dyn ReactionRepository>,
    /// Offers, with their messages and events.
    pub offers: Arc<dyn OfferRepository>,
}

/// The chat application service; cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct ChatService {
    rooms: Arc<dyn RoomRepository>,
    messages: Arc<dyn MessageRepository>,
    writer: Arc<dyn MessageWriter>,
    fan_out: Arc<dyn FanOut>,
    presence: Arc<dyn PresenceRegistry>,
    events: Arc<dyn EventLog>,
    search: Arc<dyn MessageSearch>,
    unread: Arc<dyn UnreadCounters>,
    read_state: Arc<dyn ReadState>,
    message_rate: Arc<dyn RateLimiter>,
    away: Arc<dyn AwayNotifications>,
    reactions: Arc<dyn ReactionRepository>,
    offers: Arc<dyn OfferRepository>,
}

impl ChatService {
    pub fn new(ports: Ports) -> Self {
        let Ports {
            rooms,
            messages,
            writer,
            fan_out,
            presence,
            events,
            search,
            unread,
            read_state,
            message_rate,
            away,
            reactions,
            offers,
        } = ports;
        Self {
            rooms,
            messages,
            writer,
            fan_out,
            presence,
            events,
            search,
            unread,
            read_state,
            message_rate,
            away,
            reactions,
            offers,
        }
    }
}
