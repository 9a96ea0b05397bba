//! The edge kit: what every transport (REST, the room and inbox sockets, the
//! GrainTrade socket) shares at the boundary with clients — the wire error codes,
//! the HTTP error type and its renderer, the path and body extractors, the
//! OpenAPI error responses, and the rule for a claimed user id. It imports
//! nothing else of `api`, so every feature module can use it without a module
//! circle (`http` re-exports the parts at their old paths).

pub mod claim;
pub mod error;
pub mod error_code;
pub mod error_responses;
pub mod extract;

pub use claim::claimed_actor;
pub use error_code::ErrorCode;
