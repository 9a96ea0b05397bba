//! The ports: what the use cases need from the outside world, as traits the
//! adapters in `chat-infra` (and the socket hub in `chat-api`) implement.

mod away;
mod event_log;
mod fan_out;
mod message_repository;
mod message_search;
mod message_writer;
mod offer_repository;
mod presence;
mod rate_limit;
mod reactions;
mod read_state;
mod room_repository;
mod unread;

pub use away::{AwayNotifications, NoAwayNotifications};
pub use event_log::{EventLog, NoEventLog};
pub use fan_out::{FanOut, NoFanOut};
pub use message_repository::MessageRepository;
pub use message_search::MessageSearch;
pub use message_writer::{DirectWriter, MessageWriter, PendingPost};
pub use offer_repository::{Applied, DeletedOffer, OfferChange, OfferPage, OfferRepository};
pub use presence::{PresenceEntry, PresenceRegistry, UserPresence};
pub use rate_limit::{NoRateLimit, RateLimiter};
pub use reactions::ReactionRepository;
pub use read_state::ReadState;
pub use room_repository::{RoomRepository, RoomVisibility};
pub use unread::UnreadCounters;
