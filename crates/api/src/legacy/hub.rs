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
use tokio::sync::mpsc;

use super::LegacyMessage;
use crate::ws::closer::{Closer, codes};

struct Socket {
    item: String,
    other: String,
    user: Option<String>,
    tx: mpsc::Sender<Utf8Bytes>,
    closer: Closer,
}

#[derive(Clone, Default)]
pub struct LegacyHub {
    sockets: Arc<Mutex<HashMap<String, Socket>>>,
}

/// A socket's place in the hub; dropping it removes the socket.
pub struct Registration {
    hub: LegacyHub,
    connection: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.sockets().remove(&self.connection);
    }
}

impl Registration {
    /// Records who is on this socket (from the frames it sends).
    pub fn knows_user(&self, user: &str) {
        if let Some(socket) = self.hub.sockets().get_mut(&self.connection) {
            socket.user = Some(user.to_owned());
        }
    }
}

impl LegacyHub {
    fn sockets(&self) -> MutexGuard<'_, HashMap<String, Socket>> {
        self.sockets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        self.sockets().insert(connection.clone(), Socket { item, other, user, tx, closer });
        Registration { hub: self.clone(), connection }
    }

    fn deliver(&self, item: &str, sender: &str, receiver: &str, frame: Utf8Bytes) {
        self.sockets().retain(|_, socket| {
            let on_senders_path = socket.item == item && socket.other == receiver;
            let receivers_own = socket.item == item
                && socket.user.as_deref() == Some(receiver)
                && socket.other == sender;
            if !(on_senders_path || receivers_own) {
                return true;
            }
            match socket.tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    socket.closer.close(codes::TOO_SLOW);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
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
