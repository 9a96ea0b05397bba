//! Unread counters in Redis under the old service's keys,
//! `unread_msg_{item_id}_{user_id}` (no prefix: other services read them).

use async_trait::async_trait;
use chat_domain::conversation::ItemId;
use chat_domain::ports::UnreadCounters;
use chat_domain::{DomainError, UserId};
use fred::prelude::*;

use super::{RedisConnection, RedisGate, RedisUnavailable};

pub struct RedisUnread {
    redis: RedisGate,
}

impl RedisUnread {
    pub fn new(redis: &RedisConnection) -> Self {
        Self { redis: redis.gate("unread") }
    }
}

fn key(item: &ItemId, user: &UserId) -> String {
    format!("unread_msg_{}_{}", item.as_str(), user)
}

fn unavailable(e: RedisUnavailable) -> DomainError {
    if !e.is_skip() {
        tracing::warn!(error = %e, "Redis unread counter unavailable");
    }
    DomainError::Unavailable("redis".to_owned())
}

#[async_trait]
impl UnreadCounters for RedisUnread {
    async fn increment(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError> {
        let client = &self.redis.client;
        self.redis
            .run(client.incr::<i64, _>(key(item, user)))
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// One pipeline of `INCRBY`s: one round trip and one answer to wait for.
    async fn increment_all(&self, counts: &[(ItemId, UserId, u64)]) -> Result<(), DomainError> {
        let pipeline = self.redis.client.pipeline();
        for (item, user, count) in counts {
            // Only queued here; an error would be about the arguments.
            let by = i64::try_from(*count).unwrap_or(i64::MAX);
            let queued: Result<(), _> = pipeline.incr_by(key(item, user), by).await;
            if let Err(e) = queued {
                return Err(unavailable(RedisUnavailable::Failed(e.to_string())));
            }
        }
        self.redis.run(pipeline.all::<Vec<i64>>()).await.map(|_| ()).map_err(unavailable)
    }

    async fn get(&self, item: &ItemId, user: &UserId) -> Result<u64, DomainError> {
        let count: Option<i64> =
            self.redis.run(self.redis.client.get(key(item, user))).await.map_err(unavailable)?;
        Ok(count.unwrap_or(0).max(0) as u64)
    }

    async fn reset(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError> {
        let client = &self.redis.client;
        self.redis.run(client.del::<i64, _>(key(item, user))).await.map(|_| ()).map_err(unavailable)
    }
}
