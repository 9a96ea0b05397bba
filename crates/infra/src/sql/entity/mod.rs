//! sea-orm entities: the table shapes, private to the SQL adapter.

pub(crate) mod archived_message;
pub(crate) mod message;
pub(crate) mod message_reaction;
pub(crate) mod message_version;
pub(crate) mod outbox;
pub(crate) mod room;
pub(crate) mod room_member;
pub(crate) mod room_read;
