//! Rate limits: token buckets per key (a user, a client address), kept in this
//! process (governor) or shared by every instance in Redis; and the cap on a
//! user's open sockets shared by every instance.

mod keyed;
mod quota;
mod redis;
mod socket_cap;

pub use keyed::KeyedLimiter;
pub use quota::RateQuota;
pub use redis::RedisRateLimiter;
pub use socket_cap::RedisSocketCap;
