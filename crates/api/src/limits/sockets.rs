//! Open sockets per user on this instance (and, with Redis, on all of them). A
//! socket holds a [`SocketSlot`] for its whole life; dropping the slot gives it
//! back, whatever way the socket ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_infra::limits::RedisSocketCap;

#[derive(Clone)]
pub struct SocketCounter {
    max_per_user: u32,
    open: Arc<Mutex<HashMap<String, u32>>>,
}

/// One open socket of a user.
pub struct SocketSlot {
    user: String,
    open: Arc<Mutex<HashMap<String, u32>>>,
    /// Its place in the count of all instances, when shared.
    shared: Option<(Arc<RedisSocketCap>, String)>,
}

impl SocketCounter {
    /// `max_per_user` 0: no limit (slots are still counted).
    pub fn new(max_per_user: u32) -> Self {
        Self { max_per_user, open: Arc::default() }
    }

    /// A slot for one more socket of `user`, or `None` when they hold the maximum.
    pub fn open(&self, user: &str) -> Option<SocketSlot> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(user.to_owned()).or_insert(0);
        if self.max_per_user > 0 && *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(SocketSlot { user: user.to_owned(), open: self.open.clone(), shared: None })
    }

    /// Sockets `user` holds now.
    #[cfg(test)]
    fn count(&self, user: &str) -> u32 {
        let open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl SocketSlot {
    /// This slot, also counted on every instance; `None` (the slot given back)
    /// when the user holds the most allowed there.
    pub async fn shared(mut self, cap: Arc<RedisSocketCap>) -> Option<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        if !cap.reserve(&self.user, &id).await {
            return None;
        }
        self.shared = Some((cap, id));
        Some(self)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        // Drop cannot wait: the shared slot is given back just after, on the
        // runtime (without one, as at exit, it goes when this instance's key expires).
        if let Some((cap, id)) = self.shared.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let user = self.user.clone();
            runtime.spawn(async move { cap.release(&user, &id).await });
        }
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_on_drop() {
        let counter = SocketCounter::new(2);
        let first = counter.open("alice").expect("first");
        let _second = counter.open("alice").expect("second");
        assert!(counter.open("alice").is_none(), "a third is over the limit");
        assert!(counter.open("bob").is_some(), "per user");
        drop(first);
        assert_eq!(counter.count("alice"), 1);
        assert!(counter.open("alice").is_some());
    }
}
