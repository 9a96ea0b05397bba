//! Token buckets shared by every instance: one Redis key per bucket holding its
//! "theoretical arrival time" (GCRA, the algorithm governor uses in process),
//! updated atomically by a Lua script on Redis's own clock. When Redis cannot
//! answer, the action is let through: a limit never turns a cache outage into
//! a chat outage.

use std::time::Duration;

use async_trait::async_trait;
use chat_domain::ports::RateLimiter;
use fred::prelude::*;

use super::RateQuota;
use crate::redis::{RedisConnection, RedisGate};

/// KEYS[1] bucket; ARGV[1] interval (µs), ARGV[2] burst.
/// Returns 0 when a token was taken, else the wait in µs.
const TAKE: &str = r#"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - now - interval * burst
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return 0
"#;

pub struct RedisRateLimiter {
    redis: RedisGate,
    /// `{prefix}rl:{name}:`, the bucket key before the caller's key.
    namespace: String,
    interval_us: i64,
    burst: i64,
}

impl RedisRateLimiter {
    /// Buckets named `{prefix}rl:{name}:{key}`.
    pub fn new(redis: &RedisConnection, name: &str, quota: RateQuota) -> Self {
        let redis = redis.gate("rate_limit");
        Self {
            namespace: redis.key(&format!("rl:{name}:")),
            redis,
            interval_us: (quota.interval().as_micros() as i64).max(1),
            burst: i64::from(quota.burst),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str) -> Result<(), Duration> {
        let bucket = format!("{}{key}", self.namespace);
        let args = vec![self.interval_us, self.burst];
        let take = self.redis.client.eval::<i64, _, _, _>(TAKE, vec![bucket], args);
        match self.redis.run(take).await {
            Ok(wait_us) if wait_us > 0 => Err(Duration::from_micros(wait_us as u64)),
            Ok(_) => Ok(()),
            // An open circuit lets every action through at once, silently (it
            // said so once, when it opened).
            Err(e) if e.is_skip() => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "Redis rate limit unavailable; letting the action through");
                Ok(())
            }
        }
    }
}
