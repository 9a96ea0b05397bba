//! The use cases: what a caller can do with rooms and messages, with the access
//! rules applied. They reach storage only through the ports.

mod messages;
mod presence;
mod rooms;

use std::sync::Arc;

use crate::ports::{FanOut, MessageRepository, PresenceRegistry, RoomRepository};

pub use messages::{MessageEdit, MessageInput};
pub use presence::Joined;
pub use rooms::{RoomInput, RoomPatchInput};

/// The chat application service; cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct ChatService {
    rooms: Arc<dyn RoomRepository>,
    messages: Arc<dyn MessageRepository>,
    fan_out: Arc<dyn FanOut>,
    presence: Arc<dyn PresenceRegistry>,
}

impl ChatService {
    pub fn new(
        rooms: Arc<dyn RoomRepository>,
        messages: Arc<dyn MessageRepository>,
        fan_out: Arc<dyn FanOut>,
        presence: Arc<dyn PresenceRegistry>,
    ) -> Self {
        Self { rooms, messages, fan_out, presence }
    }
}
