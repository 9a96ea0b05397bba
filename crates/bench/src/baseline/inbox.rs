//! `GET /ws` on the baseline: the inbox socket. `ready`, then `subscribe`
//! puts the socket's queue in the room (answered `subscribed`, as the room
//! socket's `joined`), and a frame with a subscribed `room_id` is handled as
//! on that room's socket (`message` frames carry their `room_id` already).
//! No unread counts, no user events: the floor of the service's inbox.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State as Extract};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::socket::handle;
use super::state::{Outlet, QUEUE, Room, State};
use super::writer::write_loop;

/// As the service's default `WS_MAX_SUBSCRIPTIONS`.
const MAX_SUBSCRIPTIONS: usize = 500;

pub async fn upgrade(
    Extract(state): Extract<State>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let user = query.get("user_id").cloned().unwrap_or_else(|| "anonymous".to_owned());
    upgrade.on_upgrade(move |socket| serve(socket, state, user))
}

#[derive(Deserialize)]
struct Routing {
    #[serde(rename = "type")]
    kind: String,
    room_id: Option<i64>,
}

async fn serve(socket: WebSocket, state: State, user: String) {
    let (mut sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let outlet = Outlet { tx, close: CancellationToken::new() };
    let socket_id = state.next_socket_id();
    let ready = json!({"type": "ready", "user_id": user});
    if sink.send(Message::Text(ready.to_string().into())).await.is_err() {
        return;
    }
    let writer = tokio::spawn(write_loop(sink, rx, outlet.close.clone()));
    let mut rooms: HashMap<i64, Arc<Room>> = HashMap::new();
    while let Some(Ok(frame)) = stream.next().await {
        match frame {
            Message::Text(text) => {
                on_frame(&state, socket_id, &mut rooms, &user, &outlet, &text);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    for room in rooms.values() {
        room.lock().sockets.remove(&socket_id);
    }
    drop(outlet);
    let _ = writer.await;
}

fn on_frame(
    state: &State,
    socket_id: u64,
    rooms: &mut HashMap<i64, Arc<Room>>,
    user: &str,
    outlet: &Outlet,
    text: &str,
) {
    let error = |code: &str, message: &str, room_id: Option<i64>| {
        let frame = json!({"type": "error", "code": code, "message": message, "room_id": room_id});
        outlet.offer(frame.to_string().into());
    };
    let Ok(routing) = serde_json::from_str::<Routing>(text) else {
        return error("invalid_json", "not a frame", None);
    };
    match (routing.kind.as_str(), routing.room_id) {
        ("ping", _) => {
            outlet.offer(axum::extract::ws::Utf8Bytes::from_static(r#"{"type":"pong"}"#));
        }
        ("subscribe", Some(room_id)) => {
            if rooms.contains_key(&room_id) || rooms.len() >= MAX_SUBSCRIPTIONS {
                return error(
                    "validation_failed",
                    "already subscribed, or too many",
                    Some(room_id),
                );
            }
            let Some(room) = state.room(room_id) else {
                return error("not_found", "no such room", Some(room_id));
            };
            // Registering and reading the floor together: everything after it is queued.
            let last_seq = {
                let mut inner = room.lock();
                inner.sockets.insert(socket_id, outlet.clone());
                inner.last_seq
            };
            rooms.insert(room_id, room);
            let subscribed = json!({"type": "subscribed", "room_id": room_id, "user_id": user, "last_seq": last_seq, "users": []});
            outlet.offer(subscribed.to_string().into());
        }
        ("unsubscribe", Some(room_id)) => {
            if let Some(room) = rooms.remove(&room_id) {
                room.lock().sockets.remove(&socket_id);
            }
            let unsubscribed = json!({"type": "unsubscribed", "room_id": room_id});
            outlet.offer(unsubscribed.to_string().into());
        }
        (_, None) => error("validation_failed", "room_id: is required", None),
        (_, Some(room_id)) => match rooms.get(&room_id) {
            Some(room) => handle(state, room_id, room, user, outlet, text),
            None => error("forbidden", "not subscribed to this room", Some(room_id)),
        },
    }
}
