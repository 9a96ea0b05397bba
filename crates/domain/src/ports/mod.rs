//! The ports: what the use cases need from the outside world, as traits the
//! adapters in `chat-infra` implement.

mod message_repository;
mod room_repository;

pub use message_repository::MessageRepository;
pub use room_repository::{RoomRepository, RoomVisibility};
