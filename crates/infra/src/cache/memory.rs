//! The in-process cache (moka, bounded in entries and by time): the same
//! behaviour as Redis for a single instance.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::{Message, Room, RoomId};
use moka::sync::Cache;

use super::backend::{CacheBackend, CacheError, Recent};

#[derive(Clone)]
struct Page {
    by_seq: BTreeMap<i64, Message>,
    has_older: bool,
}

pub struct MemoryCache {
    rooms: Cache<RoomId, Room>,
    pages: Cache<RoomId, Page>,
    versions: Cache<RoomId, i64>,
    /// Makes each version check-and-write atomic, as the Lua scripts do in Redis.
    write: Mutex<()>,
}

impl MemoryCache {
    pub fn new(max_rooms: u64) -> Self {
        Self {
            rooms: Cache::builder()
                .max_capacity(max_rooms)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            pages: Cache::builder()
                .max_capacity(max_rooms)
                .time_to_live(Duration::from_secs(1800))
                .build(),
            versions: Cache::builder()
                .max_capacity(max_rooms * 2)
                .time_to_live(Duration::from_secs(7200))
                .build(),
            write: Mutex::new(()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self, room: RoomId) {
        let next = self.versions.get(&room).unwrap_or(0) + 1;
        self.versions.insert(room, next);
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn version(&self, room: RoomId) -> Result<Option<i64>, CacheError> {
        Ok(self.versions.get(&room))
    }

    async fn room(&self, room: RoomId) -> Result<Option<Room>, CacheError> {
        Ok(self.rooms.get(&room))
    }

    async fn fill_room(&self, room: &Room, seen: Option<i64>) -> Result<(), CacheError> {
        let _atomic = self.locked();
        if self.versions.get(&room.id) == seen {
            self.rooms.insert(room.id, room.clone());
        }
        Ok(())
    }

    async fn recent(&self, room: RoomId) -> Result<Option<Recent>, CacheError> {
        Ok(self.pages.get(&room).map(|page| Recent {
            items: page.by_seq.into_values().collect(),
            has_older: page.has_older,
        }))
    }

    async fn fill_recent(
        &self,
        room: RoomId,
        recent: &Recent,
        seen: Option<i64>,
    ) -> Result<(), CacheError> {
        let _atomic = self.locked();
        if self.versions.get(&room) == seen {
            let by_seq = recent.items.iter().map(|m| (m.seq, m.clone())).collect();
            self.pages.insert(room, Page { by_seq, has_older: recent.has_older });
        }
        Ok(())
    }

    async fn appended(&self, room: RoomId, messages: &[Message]) -> Result<(), CacheError> {
        let _atomic = self.locked();
        self.bump(room);
        if let Some(mut page) = self.pages.get(&room) {
            for message in messages {
                page.by_seq.insert(message.seq, message.clone());
            }
            while page.by_seq.len() > super::RECENT_LIMIT {
                page.by_seq.pop_first();
                page.has_older = true;
            }
            self.pages.insert(room, page);
        }
        Ok(())
    }

    async fn replaced(&self, message: &Message) -> Result<(), CacheError> {
        let _atomic = self.locked();
        self.bump(message.room_id);
        if let Some(mut page) = self.pages.get(&message.room_id)
            && page.by_seq.contains_key(&message.seq)
        {
            page.by_seq.insert(message.seq, message.clone());
            self.pages.insert(message.room_id, page);
        }
        Ok(())
    }

    async fn invalidate(&self, room: RoomId, room_too: bool) -> Result<(), CacheError> {
        let _atomic = self.locked();
        self.bump(room);
        self.pages.invalidate(&room);
        if room_too {
            self.rooms.invalidate(&room);
        }
        Ok(())
    }
}
