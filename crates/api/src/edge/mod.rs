//! The edge kit: what every transport (REST, the room and inbox sockets, the
//! GrainTrade socket) shares at the boundary with clients — the wire error codes
//! and the rule for a claimed user id. It imports nothing else of `api`, so every
//! feature module can use it without a module circle.

pub mod claim;
pub mod error_code;

pub use claim::claimed_actor;
pub use error_code::ErrorCode;
