//! Unread counters in this process's memory (one instance, no Redis).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chat_domain::conversation::ItemId;
use chat_domain::ports::UnreadCounters;
use chat_domain::{DomainError, UserId};

#[derive(Default)]
pub struct InProcessUnread {
    counts: Mutex<HashMap<(String, String), u64>>,
}

impl InProcessUnread {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u64>> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn key(item: &ItemId, user: &UserId) -> (String, String) {
    (item.as_str().to_owned(), user.to_string())
}

#[async_trait]
impl UnreadCounters for InProcessUnread {
    async fn increment(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError> {
        *self.counts().entry(key(item, user)).or_insert(0) += 1;
        Ok(())
    }

    async fn increment_all(&self, counts: &[(ItemId, UserId, u64)]) -> Result<(), DomainError> {
        let mut all = self.counts();
        for (item, user, count) in counts {
            *all.entry(key(item, user)).or_insert(0) += count;
        }
        Ok(())
    }

    async fn get(&self, item: &ItemId, user: &UserId) -> Result<u64, DomainError> {
        Ok(self.counts().get(&key(item, user)).copied().unwrap_or(0))
    }

    async fn reset(&self, item: &ItemId, user: &UserId) -> Result<(), DomainError> {
        self.counts().remove(&key(item, user));
        Ok(())
    }
}
