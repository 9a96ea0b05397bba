//! Chat rooms: the entity and the values that parse a room's user input.

mod description;
mod model;
mod name;

pub use description::RoomDescription;
pub use model::{NewRoom, Room, RoomChanges, RoomId};
pub use name::RoomName;
