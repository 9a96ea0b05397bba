//! A connection's close signal: the first reason given wins, and every part of
//! the connection (reader, writer, hub) can wait for it.

use std::sync::Arc;

use tokio::sync::watch;

/// Why a socket is being closed: the WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

pub mod codes {
    use super::CloseReason;

    pub const NORMAL: CloseReason = CloseReason { code: 1000, reason: "bye" };
    pub const GOING_AWAY: CloseReason = CloseReason { code: 1001, reason: "server shutting down" };
    pub const POLICY: CloseReason = CloseReason { code: 1008, reason: "policy violation" };
    pub const FLOODING: CloseReason =
        CloseReason { code: 1008, reason: "rate limit exceeded again and again" };
    pub const TOO_BIG: CloseReason = CloseReason { code: 1009, reason: "frame too large" };
    pub const INTERNAL: CloseReason = CloseReason { code: 1011, reason: "internal error" };
    pub const TOO_SLOW: CloseReason =
        CloseReason { code: 1013, reason: "client too slow to drain its queue" };
    pub const TOKEN_EXPIRED: CloseReason = CloseReason { code: 4401, reason: "token expired" };
    pub const ROOM_DELETED: CloseReason = CloseReason { code: 4404, reason: "room deleted" };
    pub const HEARTBEAT_TIMEOUT: CloseReason =
        CloseReason { code: 4408, reason: "no answer to ping" };
}

#[derive(Clone, Debug)]
pub struct Closer(Arc<watch::Sender<Option<CloseReason>>>);

impl Default for Closer {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl Closer {
    /// Asks for the socket to close; ignored when a reason was already given.
    pub fn close(&self, reason: CloseReason) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub fn reason(&self) -> Option<CloseReason> {
        *self.0.borrow()
    }

    /// Resolves once a close was asked for.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.0.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.unwrap_or(codes::NORMAL),
            // The sender lives in `self`, so it cannot be gone; treat it as a close.
            Err(_) => codes::NORMAL,
        }
    }
}
