//! Token buckets in this process (governor's GCRA), one per key. Keys that have
//! been idle long enough to have a full bucket again are dropped now and then, so
//! memory follows the number of recently active keys.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::ports::RateLimiter;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, RateLimiter as Governor};

use super::RateQuota;

/// How many checks pass between two sweeps of idle keys.
const SWEEP_EVERY: u64 = 4096;

pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(quota: RateQuota) -> Self {
        Self {
            limiter: Governor::keyed(quota.governor()),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until one is free.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[async_trait]
impl RateLimiter for KeyedLimiter<String> {
    async fn acquire(&self, key: &str) -> Result<(), Duration> {
        // governor looks keys up by the owned type; one short allocation per
        // message is nothing next to the database write it guards.
        self.check(&key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_wait_per_key() {
        let limiter = KeyedLimiter::new(RateQuota { per_second: 1.0, burst: 3 });
        for _ in 0..3 {
            assert_eq!(limiter.check(&"alice"), Ok(()));
        }
        let wait = limiter.check(&"alice").expect_err("the fourth in a row waits");
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.check(&"bob"), Ok(()), "buckets are per key");
    }
}
