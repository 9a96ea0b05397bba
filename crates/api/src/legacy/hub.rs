//! Delivery to the GrainTrade-compatible sockets: a conversation message goes to
//! every socket on the sender's path (`/ws/chat/{item}/{receiver}`, as the old
//! service did) and to every socket of the receiver that the server knows, on
//! whichever path — so both parties see each other live. It rides the same
//! fan-out as everything else, so it crosses instances through Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use chat_domain::ports::FanOut;
use chat_domain::{Delivery, RoomEvent};
use chat_infra::redis::{Held, Interests, Topic};
use tokio::sync::mpsc;

use super::LegacyMessage;
use crate::ws::closer::{CloseReason, Closer, codes};

struct Socket {
    user: Option<String>,
    tx: mpsc::Sender<Utf8Bytes>,
    closer: Closer,
}

/// A socket's path: the item and the other party (`/ws/chat/{item}/{other}`).
type PathKey = (String, String);

/// The sockets by path, so a message touches only the sockets of its two paths
/// rather than every legacy socket.
#[derive(Clone, Default)]
pub struct LegacyHub {
    paths: Arc<Mutex<HashMap<PathKey, Path>>>,
    /// The channels of the bus between instances; `None` without one.
    interests: Option<Arc<Interests>>,
}

/// The sockets of one path, and this instance's hold on its item's channel.
struct Path {
    sockets: HashMap<String, Socket>,
    _held: Option<Held>,
}

/// A socket's place in the hub; dropping it removes the socket.
pub struct Registration {
    hub: LegacyHub,
    path: PathKey,
    connection: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut paths = self.hub.paths();
        if let Some(path) = paths.get_mut(&self.path) {
            path.sockets.remove(&self.connection);
            if path.sockets.is_empty() {
                paths.remove(&self.path);
            }
        }
    }
}

impl Registration {
    /// Records who is on this socket (from the frames it sends).
    pub fn knows_user(&self, user: &str) {
        let mut paths = self.hub.paths();
        if let Some(socket) =
            paths.get_mut(&self.path).and_then(|path| path.sockets.get_mut(&self.connection))
            && socket.user.as_deref() != Some(user)
        {
            socket.user = Some(user.to_owned());
        }
    }
}

impl LegacyHub {
    /// A hub whose item channels are held in `interests` (the bus between instances).
    pub fn new(interests: Option<Arc<Interests>>) -> Self {
        Self { paths: Arc::default(), interests }
    }

    fn paths(&self) -> MutexGuard<'_, HashMap<PathKey, Path>> {
        self.paths.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn register(
        &self,
        connection: String,
        item: String,
        other: String,
        user: Option<String>,
        tx: mpsc::Sender<Utf8Bytes>,
        closer: Closer,
    ) -> Registration {
        let held = |item: &str| {
            let interests = self.interests.as_ref()?;
            Some(interests.hold(Topic::Item(Arc::from(item))))
        };
        let path = (item, other);
        self.paths()
            .entry(path.clone())
            .or_insert_with(|| Path { sockets: HashMap::new(), _held: held(&path.0) })
            .sockets
            .insert(connection.clone(), Socket { user, tx, closer });
        Registration { hub: self.clone(), path, connection }
    }

    /// Closes every socket (shutdown: 1001).
    pub fn close_all(&self, reason: CloseReason) {
        for path in self.paths().values() {
            for socket in path.sockets.values() {
                socket.closer.close(reason);
            }
        }
    }

    /// To every socket on the sender's path (`{item}/{receiver}`) and to the
    /// receiver's own sockets on the path back (`{item}/{sender}`).
    fn deliver(&self, item: &str, sender: &str, receiver: &str, frame: Utf8Bytes) {
        let mut paths = self.paths();
        let senders_path = (item.to_owned(), receiver.to_owned());
        if let Some(path) = paths.get_mut(&senders_path) {
            path.sockets.retain(|_, socket| offer(socket, &frame));
        }
        let path_back = (item.to_owned(), sender.to_owned());
        if let Some(path) = paths.get_mut(&path_back) {
            path.sockets.retain(|_, socket| {
                socket.user.as_deref() != Some(receiver) || offer(socket, &frame)
            });
        }
    }
}

/// Queues `frame` to a socket; `false` when the socket is gone or too slow
/// (it is then closed with 1013 and leaves the hub).
fn offer(socket: &Socket, frame: &Utf8Bytes) -> bool {
    match socket.tx.try_send(frame.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            socket.closer.close(codes::TOO_SLOW);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

impl FanOut for LegacyHub {
    fn publish(&self, delivery: Delivery) {
        if let RoomEvent::ConversationMessage { message, item_id, receiver_id } = &delivery.event {
            let frame = LegacyMessage::new(message, item_id, receiver_id);
            if let Ok(text) = serde_json::to_string(&frame) {
                self.deliver(item_id, &message.user_id, receiver_id, text.into());
            }
        }
    }
}

/// Hands every delivery to several fan-outs (the room hub and the legacy hub).
pub struct Tee(pub Vec<Arc<dyn FanOut>>);

impl FanOut for Tee {
    fn publish(&self, delivery: Delivery) {
        for fan_out in &self.0 {
            fan_out.publish(delivery.clone());
        }
    }

    fn catch_up(&self) {
        for fan_out in &self.0 {
            fan_out.catch_up();
        }
    }
}
