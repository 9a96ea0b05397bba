//! The baseline's memory: rooms with their last seq and their sockets' queues,
//! and the legacy sockets by item. Nothing is kept of the messages themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames queued per socket before it is closed as too slow (as the service's default).
pub const QUEUE: usize = 256;

/// One socket's queue and its way to be closed.
#[derive(Clone)]
pub struct Outlet {
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub close: CancellationToken,
}

impl Outlet {
    /// Queues a frame; a full queue closes the socket instead of waiting.
    pub fn offer(&self, frame: Utf8Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[derive(Default)]
pub struct Room {
    inner: Mutex<RoomInner>,
}

#[derive(Default)]
pub struct RoomInner {
    pub last_seq: i64,
    pub sockets: HashMap<u64, Outlet>,
}

impl Room {
    pub fn with_last_seq(last_seq: i64) -> Self {
        Self { inner: Mutex::new(RoomInner { last_seq, sockets: HashMap::new() }) }
    }

    pub fn lock(&self) -> MutexGuard<'_, RoomInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A legacy socket: on `/ws/chat/{item}/{other}`, for `user` if known.
pub struct LegacySocket {
    pub item: String,
    pub other: String,
    pub user: Option<String>,
    pub outlet: Outlet,
}

#[derive(Clone, Default)]
pub struct State {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    rooms: Mutex<HashMap<i64, Arc<Room>>>,
    legacy: Mutex<HashMap<u64, LegacySocket>>,
    next_room: AtomicI64,
    next_message: AtomicI64,
    next_socket: AtomicU64,
}

impl State {
    pub fn create_room(&self, last_seq: i64) -> i64 {
        let id = self.inner.next_room.fetch_add(1, Ordering::Relaxed) + 1;
        self.rooms().insert(id, Arc::new(Room::with_last_seq(last_seq)));
        id
    }

    pub fn room(&self, id: i64) -> Option<Arc<Room>> {
        self.rooms().get(&id).cloned()
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<i64, Arc<Room>>> {
        self.inner.rooms.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn legacy(&self) -> MutexGuard<'_, HashMap<u64, LegacySocket>> {
        self.inner.legacy.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn next_message_id(&self) -> i64 {
        self.inner.next_message.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn next_socket_id(&self) -> u64 {
        self.inner.next_socket.fetch_add(1, Ordering::Relaxed)
    }
}

/// `2026-01-01T12:00:00.123Z`, as the service writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
