//! `GET /ws/chat/{item}/{other}` on the baseline: a message frame goes to every
//! socket on the sender's path and to the receiver's own sockets for that item
//! (the service's routing), with no storage and no notices.

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as Extract};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::state::{LegacySocket, Outlet, QUEUE, State, now_rfc3339};
use super::writer::write_loop;

pub async fn upgrade(
    Extract(state): Extract<State>,
    Path((item, other)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let user = query.get("user_id").cloned();
    upgrade.on_upgrade(move |socket| serve(socket, state, item, other, user))
}

#[derive(Deserialize)]
struct Incoming {
    sender_id: Option<String>,
    receiver_id: Option<String>,
    item_id: Option<String>,
    content: Option<String>,
}

async fn serve(socket: WebSocket, state: State, item: String, other: String, user: Option<String>) {
    let (sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let outlet = Outlet { tx, close: CancellationToken::new() };
    let id = state.next_socket_id();
    state.legacy().insert(id, LegacySocket { item, other, user, outlet: outlet.clone() });
    let writer = tokio::spawn(write_loop(sink, rx, outlet.close.clone()));
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            Message::Text(text) => handle(&state, id, &outlet, &text),
            Message::Close(_) => break,
            _ => {}
        }
    }
    state.legacy().remove(&id);
    drop(outlet);
    let _ = writer.await;
}

fn handle(state: &State, socket_id: u64, outlet: &Outlet, text: &str) {
    let error = |message: &str| {
        outlet.offer(json!({ "error": message }).to_string().into());
    };
    let Ok(Incoming {
        sender_id: Some(sender),
        receiver_id: Some(receiver),
        item_id: Some(item),
        content: Some(content),
    }) = serde_json::from_str::<Incoming>(text)
    else {
        return error("Invalid message format");
    };
    if sender == receiver {
        return error("Cannot send message to yourself.");
    }
    let frame = json!({
        "id": state.next_message_id(), "item_id": item, "sender_id": sender,
        "receiver_id": receiver, "content": content, "timestamp": now_rfc3339(),
    });
    let frame = Utf8Bytes::from(frame.to_string());
    let mut sockets = state.legacy();
    if let Some(socket) = sockets.get_mut(&socket_id) {
        socket.user = Some(sender.clone());
    }
    for socket in sockets.values() {
        let on_senders_path = socket.item == item && socket.other == receiver;
        let receivers_own = socket.item == item
            && socket.user.as_deref() == Some(receiver.as_str())
            && socket.other == sender;
        if on_senders_path || receivers_own {
            socket.outlet.offer(frame.clone());
        }
    }
}
