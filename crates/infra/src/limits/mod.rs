//! Rate limits: token buckets per key (a user, a client address), kept in this
//! process (governor) or shared by every instance in Redis.

mod keyed;
mod quota;
mod redis;

pub use keyed::KeyedLimiter;
pub use quota::RateQuota;
pub use redis::RedisRateLimiter;
