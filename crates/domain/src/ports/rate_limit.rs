//! A budget of actions per key (a token bucket), e.g. messages per user. The
//! adapters decide where the buckets live: in this process or shared in Redis.

use std::time::Duration;

use async_trait::async_trait;

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one token from `key`'s bucket; `Err` says how long until the next
    /// token is free. An adapter whose store is down lets the action through:
    /// a limit must never turn an outage of a cache into an outage of chat.
    async fn acquire(&self, key: &str) -> Result<(), Duration>;
}

/// No limit at all (limits switched off).
pub struct NoRateLimit;

#[async_trait]
impl RateLimiter for NoRateLimit {
    async fn acquire(&self, _key: &str) -> Result<(), Duration> {
        Ok(())
    }
}
