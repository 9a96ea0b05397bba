//! A user's sockets of every kind (room, GrainTrade, inbox), recorded by each
//! socket task when it starts and when it ends. Recording is best effort: a
//! failure is logged and the socket carries on.

use chat_domain::{Actor, ChatService};

/// Call once the socket is open (a room socket: once it has joined).
pub async fn connected(chat: &ChatService, actor: &Actor, connection: &str) {
    if let Err(e) = chat.socket_connected(actor, connection).await {
        tracing::warn!(error = %e, "cannot record the user's socket as open");
    }
}

/// Call on every way out of a socket that [`connected`] was called for.
pub async fn disconnected(chat: &ChatService, actor: &Actor, connection: &str) {
    if let Err(e) = chat.socket_disconnected(actor, connection).await {
        tracing::warn!(error = %e, "cannot record the user's socket as closed");
    }
}
