//! [`Cached`]: the repository ports served through the cache where it pays —
//! `find_active` (a room) and the newest page of a room's history — and kept
//! right on every write. Everything else passes straight through.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_domain::conversation::Conversation;
use chat_domain::ports::{MessageRepository, ReactionRepository, RoomRepository, RoomVisibility};
use chat_domain::{
    CorrelationId, DomainError, HistoryPage, HistoryQuery, Limit, Message, MessageContent,
    MessageId, MessageVersion, NewMessage, NewRoom, Posted, Reaction, ReactionChange, ReactionKey,
    Room, RoomChanges, RoomCursor, RoomId, RoomName, RoomPage, UserId,
};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

use super::backend::{CacheBackend, CacheError, Recent};
use super::{CacheStats, RECENT_LIMIT};

pub struct Cached<R> {
    inner: Arc<R>,
    cache: Arc<dyn CacheBackend>,
    stats: Arc<CacheStats>,
    /// Rooms whose cache entries could not be updated after a write: read from
    /// the database until their entries are dropped.
    dirty: Arc<Mutex<HashSet<RoomId>>>,
    /// Item conversations' rooms by conversation key, in this process: a
    /// conversation keeps its room for good (only an admin may delete it, which
    /// this instance forgets at once and others after [`CONVERSATION_TTL`]).
    conversations: moka::sync::Cache<String, Room>,
    /// Rooms being read into the cache: the sockets that open at once in a room
    /// the cache lacks wait for one read instead of each reading the database
    /// and filling the cache (a thundering herd at every first open or expiry).
    loading: Arc<Mutex<HashMap<RoomId, RoomLoad>>>,
}

/// One read of a room from the database into the cache, awaited by every
/// caller that missed it meanwhile.
type RoomLoad = Shared<BoxFuture<'static, Result<Option<Room>, DomainError>>>;

/// How long this instance trusts a conversation's room without asking the database.
const CONVERSATION_TTL: Duration = Duration::from_secs(600);
/// Conversations remembered at most.
const CONVERSATIONS_CACHED: u64 = 100_000;

impl<R> Cached<R> {
    /// Wraps `inner`; starts the task that clears dirty rooms once the cache is back.
    pub fn new(inner: Arc<R>, cache: Arc<dyn CacheBackend>) -> Self {
        let conversations = moka::sync::Cache::builder()
            .max_capacity(CONVERSATIONS_CACHED)
            .time_to_live(CONVERSATION_TTL)
            .support_invalidation_closures()
            .build();
        let cached = Self {
            inner,
            cache,
            stats: Arc::default(),
            dirty: Arc::default(),
            conversations,
            loading: Arc::default(),
        };
        let (cache, dirty) = (cached.cache.clone(), cached.dirty.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(500));
            loop {
                ticks.tick().await;
                let rooms: Vec<RoomId> = lock(&dirty).iter().copied().collect();
                for room in rooms {
                    if cache.invalidate(room, true).await.is_ok() {
                        lock(&dirty).remove(&room);
                        tracing::info!(%room, "stale cache entries dropped");
                    }
                }
            }
        });
        cached
    }

    pub fn stats(&self) -> Arc<CacheStats> {
        self.stats.clone()
    }

    fn is_dirty(&self, room: RoomId) -> bool {
        lock(&self.dirty).contains(&room)
    }

    /// Records the outcome of a cache update after a committed write.
    fn settle(&self, room: RoomId, outcome: Result<(), CacheError>) {
        // Said once per room, not per write: during an outage every write fails here.
        if let Err(error) = outcome
            && lock(&self.dirty).insert(room)
        {
            tracing::warn!(%room, %error, "cache not updated after a write; room read from the database until fixed");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The newest `limit` messages from a cached page, if the page can tell.
fn serve(recent: &Recent, limit: usize) -> Option<HistoryPage> {
    let count = recent.items.len();
    if count >= limit {
        Some(HistoryPage {
            items: recent.items[count - limit..].to_vec(),
            has_more: count > limit || recent.has_older,
        })
    } else if !recent.has_older {
        Some(HistoryPage { items: recent.items.clone(), has_more: false })
    } else {
        None
    }
}

impl<R: RoomRepository> Cached<R> {
    /// Reads room `id` and fills the cache with it, once for all who ask meanwhile.
    fn load(&self, id: RoomId) -> RoomLoad {
        let mut loading = lock(&self.loading);
        loading
            .entry(id)
            .or_insert_with(|| {
                let (inner, cache) = (self.inner.clone(), self.cache.clone());
                let loads = self.loading.clone();
                // A task of its own: it finishes (and leaves the table) even if
                // every caller waiting for it gives up.
                let read = tokio::spawn(async move {
                    let seen = cache.version(id).await;
                    let room = inner.find_active(id).await;
                    if let (Ok(Some(room)), Ok(seen)) = (&room, seen) {
                        let _ = cache.fill_room(room, seen).await;
                    }
                    lock(&loads).remove(&id);
                    room
                });
                async move {
                    read.await.unwrap_or_else(|_| {
                        Err(DomainError::Internal("a room read was lost".to_owned()))
                    })
                }
                .boxed()
                .shared()
            })
            .clone()
    }

    /// After a change to room `id`: a read begun before it is not joined any more.
    fn forget_load(&self, id: RoomId) {
        lock(&self.loading).remove(&id);
    }
}

#[async_trait]
impl<R: RoomRepository> RoomRepository for Cached<R> {
    async fn create(&self, room: NewRoom) -> Result<Room, DomainError> {
        self.inner.create(room).await
    }

    async fn find_active(&self, id: RoomId) -> Result<Option<Room>, DomainError> {
        if self.is_dirty(id) {
            return self.inner.find_active(id).await;
        }
        match self.cache.room(id).await {
            Ok(Some(room)) => {
                self.stats.hit();
                return Ok(Some(room));
            }
            Ok(None) => self.stats.miss(),
            Err(_) => {
                self.stats.miss();
                return self.inner.find_active(id).await;
            }
        }
        self.load(id).await
    }

    async fn list_visible(
        &self,
        visibility: &RoomVisibility,
        item: Option<&str>,
        after: Option<RoomCursor>,
        limit: Limit,
    ) -> Result<RoomPage, DomainError> {
        self.inner.list_visible(visibility, item, after, limit).await
    }

    async fn find_conversation(
        &self,
        conversation: &Conversation,
    ) -> Result<Option<Room>, DomainError> {
        let key = conversation.key();
        if let Some(room) = self.conversations.get(&key) {
            return Ok(Some(room));
        }
        let room = self.inner.find_conversation(conversation).await?;
        if let Some(room) = &room {
            self.conversations.insert(key, room.clone());
        }
        Ok(room)
    }

    async fn open_conversation(
        &self,
        conversation: &Conversation,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<(Room, bool), DomainError> {
        let key = conversation.key();
        if let Some(room) = self.conversations.get(&key) {
            return Ok((room, false));
        }
        let (room, created) = self.inner.open_conversation(conversation, at, correlation).await?;
        self.conversations.insert(key, room.clone());
        Ok((room, created))
    }

    async fn update(&self, id: RoomId, changes: RoomChanges) -> Result<Option<Room>, DomainError> {
        let updated = self.inner.update(id, changes).await?;
        if updated.is_some() {
            self.forget_load(id);
            self.settle(id, self.cache.invalidate(id, true).await);
        }
        Ok(updated)
    }

    async fn deactivate(
        &self,
        id: RoomId,
        by: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<bool, DomainError> {
        let done = self.inner.deactivate(id, by, at, correlation).await?;
        if done {
            // A closure that only reads the room: it cannot fail.
            let _ = self.conversations.invalidate_entries_if(move |_, room| room.id == id);
            self.forget_load(id);
            self.settle(id, self.cache.invalidate(id, true).await);
        }
        Ok(done)
    }

    async fn find_public_by_name(&self, name: &RoomName) -> Result<Option<Room>, DomainError> {
        self.inner.find_public_by_name(name).await
    }

    async fn add_member(
        &self,
        id: RoomId,
        user: &UserId,
        at: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        self.inner.add_member(id, user, at).await
    }

    async fn remove_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        self.inner.remove_member(id, user).await
    }

    async fn is_member(&self, id: RoomId, user: &UserId) -> Result<bool, DomainError> {
        self.inner.is_member(id, user).await
    }
}

#[async_trait]
impl<R: MessageRepository> MessageRepository for Cached<R> {
    async fn append_batch(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
        self.inner.append_batch(batch).await
    }

    /// The cache takes the new messages after the commit (the writer stores the
    /// next batch meanwhile), before anyone is told of them.
    async fn appended(&self, outcomes: &[Result<Posted, DomainError>]) {
        self.inner.appended(outcomes).await;
        // One update per room, all rooms at once (a Redis pipeline).
        let mut by_room: BTreeMap<RoomId, Vec<Message>> = BTreeMap::new();
        for outcome in outcomes {
            if let Ok(Posted::Created(message)) = outcome {
                by_room.entry(message.room_id).or_default().push(message.clone());
            }
        }
        let updates = by_room.iter().map(|(room, messages)| async move {
            (*room, self.cache.appended(*room, messages).await)
        });
        for (room, outcome) in futures_util::future::join_all(updates).await {
            self.settle(room, outcome);
        }
    }

    async fn item_participants(&self, item: &str) -> Result<Vec<String>, DomainError> {
        self.inner.item_participants(item).await
    }

    async fn clear_room(&self, room: RoomId, at: DateTime<Utc>) -> Result<u64, DomainError> {
        let cleared = self.inner.clear_room(room, at).await?;
        self.settle(room, self.cache.invalidate(room, false).await);
        Ok(cleared)
    }

    async fn changed_elsewhere(&self, room: RoomId) {
        self.inner.changed_elsewhere(room).await;
        self.settle(room, self.cache.invalidate(room, false).await);
    }

    async fn find(&self, id: MessageId) -> Result<Option<Message>, DomainError> {
        self.inner.find(id).await
    }

    async fn history(
        &self,
        room: RoomId,
        query: HistoryQuery,
        limit: Limit,
    ) -> Result<HistoryPage, DomainError> {
        let wanted = limit.get() as usize;
        if query != HistoryQuery::Latest || wanted > RECENT_LIMIT || self.is_dirty(room) {
            return self.inner.history(room, query, limit).await;
        }
        match self.cache.recent(room).await {
            Ok(Some(recent)) => {
                if let Some(page) = serve(&recent, wanted) {
                    self.stats.hit();
                    return Ok(page);
                }
                self.stats.miss();
                return self.inner.history(room, query, limit).await;
            }
            Ok(None) => self.stats.miss(),
            Err(_) => {
                self.stats.miss();
                return self.inner.history(room, query, limit).await;
            }
        }
        let seen = self.cache.version(room).await;
        let full = Limit::parse(RECENT_LIMIT as i64)?;
        let newest = self.inner.history(room, HistoryQuery::Latest, full).await?;
        let recent = Recent { items: newest.items, has_older: newest.has_more };
        if let Ok(seen) = seen {
            let _ = self.cache.fill_recent(room, &recent, seen).await;
        }
        Ok(serve(&recent, wanted)
            .unwrap_or(HistoryPage { items: recent.items, has_more: recent.has_older }))
    }

    async fn edit(
        &self,
        id: MessageId,
        content: MessageContent,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let edited = self.inner.edit(id, content, at, correlation).await?;
        if let Some(message) = &edited {
            // Dropped, not replaced: the edited copy carries the reaction counts
            // read at the edit, and a reaction committed just after it may reach
            // the cache first (see `reacted`); a later read fills the page anew.
            self.settle(message.room_id, self.cache.invalidate(message.room_id, false).await);
        }
        Ok(edited)
    }

    async fn delete(
        &self,
        id: MessageId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<Message>, DomainError> {
        let deleted = self.inner.delete(id, at, correlation).await?;
        if let Some(message) = &deleted {
            self.settle(message.room_id, self.cache.invalidate(message.room_id, false).await);
        }
        Ok(deleted)
    }

    async fn versions(&self, id: MessageId) -> Result<Option<Vec<MessageVersion>>, DomainError> {
        self.inner.versions(id).await
    }
}

/// A reaction that changed a message's counts drops the room's cached page
/// (and bumps its version, so a fill read before the change is refused)
/// rather than replacing the message in it: concurrent reactions to one
/// message commit in one order and may reach the cache in the other, and a
/// replaced copy would then keep the older counts.
impl<R> Cached<R> {
    fn reacted(&self, change: &Option<ReactionChange>) -> Option<RoomId> {
        change.as_ref().filter(|c| c.changed).map(|c| c.message.room_id)
    }
}

#[async_trait]
impl<R: ReactionRepository> ReactionRepository for Cached<R> {
    async fn add(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        let change = self.inner.add(id, key, user, at, correlation).await?;
        if let Some(room) = self.reacted(&change) {
            self.settle(room, self.cache.invalidate(room, false).await);
        }
        Ok(change)
    }

    async fn remove(
        &self,
        id: MessageId,
        key: &ReactionKey,
        user: &UserId,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReactionChange>, DomainError> {
        let change = self.inner.remove(id, key, user, at, correlation).await?;
        if let Some(room) = self.reacted(&change) {
            self.settle(room, self.cache.invalidate(room, false).await);
        }
        Ok(change)
    }

    async fn list(&self, id: MessageId) -> Result<Vec<Reaction>, DomainError> {
        self.inner.list(id).await
    }
}

#[cfg(test)]
mod tests {
    //! `find_active` against a fake room store that counts its reads and holds
    //! each at a gate, with the in-process cache.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use chat_domain::RoomName;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::cache::MemoryCache;

    struct Rooms {
        reads: AtomicUsize,
        gate: Semaphore,
        room: Room,
    }

    #[async_trait]
    impl RoomRepository for Rooms {
        async fn find_active(&self, id: RoomId) -> Result<Option<Room>, DomainError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.expect("the gate stays").forget();
            Ok((id == self.room.id).then(|| self.room.clone()))
        }
        async fn create(&self, _: NewRoom) -> Result<Room, DomainError> {
            unimplemented!()
        }
        async fn list_visible(
            &self,
            _: &RoomVisibility,
            _: Option<&str>,
            _: Option<RoomCursor>,
            _: Limit,
        ) -> Result<RoomPage, DomainError> {
            unimplemented!()
        }
        async fn update(&self, _: RoomId, _: RoomChanges) -> Result<Option<Room>, DomainError> {
            unimplemented!()
        }
        async fn deactivate(
            &self,
            _: RoomId,
            _: &UserId,
            _: DateTime<Utc>,
            _: Option<&CorrelationId>,
        ) -> Result<bool, DomainError> {
            unimplemented!()
        }
        async fn find_public_by_name(&self, _: &RoomName) -> Result<Option<Room>, DomainError> {
            unimplemented!()
        }
        async fn find_conversation(&self, _: &Conversation) -> Result<Option<Room>, DomainError> {
            unimplemented!()
        }
        async fn open_conversation(
            &self,
            _: &Conversation,
            _: DateTime<Utc>,
            _: Option<&CorrelationId>,
        ) -> Result<(Room, bool), DomainError> {
            unimplemented!()
        }
        async fn add_member(
            &self,
            _: RoomId,
            _: &UserId,
            _: DateTime<Utc>,
        ) -> Result<bool, DomainError> {
            unimplemented!()
        }
        async fn remove_member(&self, _: RoomId, _: &UserId) -> Result<bool, DomainError> {
            unimplemented!()
        }
        async fn is_member(&self, _: RoomId, _: &UserId) -> Result<bool, DomainError> {
            unimplemented!()
        }
    }

    fn room(id: i64) -> Room {
        let at = chat_domain::timestamp::now();
        Room {
            id: RoomId::new(id).unwrap(),
            name: "herd".to_owned(),
            description: None,
            is_active: true,
            is_private: false,
            created_by: None,
            item_id: None,
            created_at: at,
            updated_at: at,
            last_seq: 0,
        }
    }

    #[tokio::test]
    async fn callers_that_miss_a_room_at_once_share_one_read() {
        let rooms = Arc::new(Rooms { reads: 0.into(), gate: Semaphore::new(0), room: room(7) });
        let cached = Arc::new(Cached::new(rooms.clone(), Arc::new(MemoryCache::new(100))));
        let id = RoomId::new(7).unwrap();
        let callers: Vec<_> = (0..10)
            .map(|_| {
                let cached = cached.clone();
                tokio::spawn(async move { cached.find_active(id).await })
            })
            .collect();
        // Every caller has missed the cache, and the read is held at the gate.
        while cached.stats.misses() < 10 || rooms.reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        rooms.gate.add_permits(10);
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap().map(|r| r.id), Some(id));
        }
        assert_eq!(rooms.reads.load(Ordering::SeqCst), 1, "one read for ten callers");
        // Filled: the next caller reads the cache, not the store.
        assert_eq!(cached.find_active(id).await.unwrap().map(|r| r.id), Some(id));
        assert_eq!(rooms.reads.load(Ordering::SeqCst), 1);
        assert!(lock(&cached.loading).is_empty(), "no read is left behind");
    }
}
