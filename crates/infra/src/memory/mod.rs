//! In-process adapters: what a single instance uses when no Redis is configured.

mod presence;
mod unread;

pub use presence::InProcessPresence;
pub(crate) use presence::group_sockets;
pub use unread::InProcessUnread;
