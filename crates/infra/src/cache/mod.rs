//! Cache-aside for the hot reads — a room, and the newest page of its messages —
//! as a decorator around any repository, over Redis or an in-process cache.
//!
//! Consistency: every write bumps the room's version *after* its commit and
//! updates the cached entries in the same atomic step (appends and edits are
//! applied, deletions invalidate). A miss-fill reads the version before reading
//! the database and stores its result only if the version is unchanged, so a
//! write racing the fill can never leave an older picture behind. A cache that
//! cannot be updated (Redis unreachable) marks the room dirty: it is read from
//! the database until the cache entries were dropped. Cache failures are misses.

mod backend;
mod cached;
mod memory;
mod redis;

use std::sync::atomic::{AtomicU64, Ordering};

pub use backend::{CacheBackend, CacheError, Recent};
pub use cached::Cached;
pub use memory::MemoryCache;
pub use redis::RedisCache;

/// The most messages a room's cached newest page holds (API.md: "last 50").
pub const RECENT_LIMIT: usize = 50;

/// Hit and miss counts, for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CacheStats {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
}
