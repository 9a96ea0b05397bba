//! `GET /ws/{room}` on the baseline: `joined`, then each `message` frame gets
//! the next seq and an id and is serialized once and queued to every socket
//! of the room (the sender included), under the room's lock so every socket
//! sees the same order. `ping` → `pong`; anything else → an `error` frame.

use std::collections::HashMap;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::state::{Outlet, QUEUE, Room, State, now_rfc3339};
use super::writer::write_loop;

pub async fn upgrade(
    Extract(state): Extract<State>,
    Path(room): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some((id, room)) = room.parse::<i64>().ok().and_then(|id| Some((id, state.room(id)?)))
    else {
        return (StatusCode::NOT_FOUND, "no such room").into_response();
    };
    let user = query.get("user_id").cloned().unwrap_or_else(|| "anonymous".to_owned());
    upgrade.on_upgrade(move |socket| serve(socket, state, id, room, user))
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    content: Option<String>,
    client_msg_id: Option<String>,
    user_id: Option<String>,
}

/// The service's `message` frame.
#[derive(Serialize)]
pub struct MessageFrame<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub user_id: &'a str,
    pub content: &'a str,
    pub message_type: &'static str,
    pub client_msg_id: Option<&'a str>,
    pub created_at: &'a str,
    pub updated_at: &'a str,
    pub edited: bool,
}

async fn serve(socket: WebSocket, state: State, room_id: i64, room: Arc<Room>, user: String) {
    let (mut sink, mut stream) = socket.split();
    let (tx, rx) = mpsc::channel(QUEUE);
    let outlet = Outlet { tx, close: CancellationToken::new() };
    let socket_id = state.next_socket_id();
    // Registering and reading the floor together: everything after it is queued.
    let last_seq = {
        let mut room = room.lock();
        room.sockets.insert(socket_id, outlet.clone());
        room.last_seq
    };
    let joined = json!({"type": "joined", "room_id": room_id, "user_id": user, "last_seq": last_seq, "users": []});
    if sink.send(Message::Text(joined.to_string().into())).await.is_ok() {
        let writer = tokio::spawn(write_loop(sink, rx, outlet.close.clone()));
        while let Some(Ok(frame)) = stream.next().await {
            match frame {
                Message::Text(text) => handle(&state, room_id, &room, &user, &outlet, &text),
                Message::Close(_) => break,
                _ => {}
            }
        }
        room.lock().sockets.remove(&socket_id);
        drop(outlet);
        let _ = writer.await;
    } else {
        room.lock().sockets.remove(&socket_id);
    }
}

pub(super) fn handle(
    state: &State,
    room_id: i64,
    room: &Room,
    user: &str,
    outlet: &Outlet,
    text: &str,
) {
    let error = |code: &str, message: &str, client_msg_id: Option<&str>| {
        let frame = json!({"type": "error", "code": code, "message": message, "client_msg_id": client_msg_id});
        outlet.offer(frame.to_string().into());
    };
    let Ok(frame) = serde_json::from_str::<Incoming>(text) else {
        return error("invalid_json", "not a frame", None);
    };
    match frame.kind.as_str() {
        "message" => {
            let Some(content) = frame.content.filter(|c| !c.trim().is_empty()) else {
                return error(
                    "validation_failed",
                    "content: is required",
                    frame.client_msg_id.as_deref(),
                );
            };
            let author = frame.user_id.as_deref().unwrap_or(user);
            let now = now_rfc3339();
            let mut room = room.lock();
            room.last_seq += 1;
            let message = MessageFrame {
                kind: "message",
                id: state.next_message_id(),
                room_id,
                seq: room.last_seq,
                user_id: author,
                content: &content,
                message_type: "text",
                client_msg_id: frame.client_msg_id.as_deref(),
                created_at: &now,
                updated_at: &now,
                edited: false,
            };
            let Ok(text) = serde_json::to_string(&message) else { return };
            let text = Utf8Bytes::from(text);
            for socket in room.sockets.values() {
                socket.offer(text.clone());
            }
        }
        "typing" => {
            let typing = Utf8Bytes::from(
                json!({"type": "typing", "room_id": room_id, "user_id": user}).to_string(),
            );
            for socket in room.lock().sockets.values() {
                if !socket.tx.same_channel(&outlet.tx) {
                    socket.offer(typing.clone());
                }
            }
        }
        "ping" => {
            outlet.offer(Utf8Bytes::from_static(r#"{"type":"pong"}"#));
        }
        other => error("unknown_type", &format!("unknown frame type {other:?}"), None),
    }
}
