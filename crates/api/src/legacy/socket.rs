//! `WS /ws/chat/{item_id}/{other_user_id}`: the old frontend's socket. Frames in:
//! `{"sender_id","receiver_id","item_id","content"}`; frames out: the message
//! (`LegacyMessage`) or `{"error": …}`; the socket stays open on errors.

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use chat_domain::{Actor, DomainError, UserId};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::error::ApiError;
use crate::http::identity::Caller;
use crate::state::AppState;
use crate::ws::closer::Closer;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    Path((item, other)): Path<(String, String)>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    crate::http::origin::check(&state, &headers)?;
    let known = caller.actor().user_id.clone();
    let known = (known != UserId::anonymous()).then(|| known.to_string());
    let token_user = caller.is_authenticated().then(|| caller.actor().user_id.to_string());
    let settings = state.sockets;
    let tracker = state.tasks.clone();
    let upgrade = upgrade
        .read_buffer_size(crate::ws::READ_BUFFER_BYTES)
        .max_message_size(settings.max_frame_bytes);
    Ok(upgrade.on_upgrade(move |socket| {
        tracker.track_future(serve(socket, state, item, other, known, token_user))
    }))
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    item: String,
    other: String,
    known: Option<String>,
    token_user: Option<String>,
) {
    let connection = uuid::Uuid::new_v4().to_string();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(state.sockets.queue_capacity);
    let closer = Closer::default();
    let registration =
        state.legacy.register(connection, item, other, known, tx.clone(), closer.clone());
    let (mut sink, mut stream) = socket.split();
    let mut pings =
        tokio::time::interval(state.sockets.ping_interval.max(Duration::from_millis(100)));
    pings.tick().await;
    loop {
        tokio::select! {
            reason = closer.closed() => {
                let frame = axum::extract::ws::CloseFrame { code: reason.code, reason: reason.reason.into() };
                let _ = tokio::time::timeout(state.sockets.close_grace, sink.send(WsMessage::Close(Some(frame)))).await;
                break;
            }
            out = rx.recv() => match out {
                Some(text) => if sink.send(WsMessage::Text(text)).await.is_err() { break },
                None => break,
            },
            _ = pings.tick() => if sink.send(WsMessage::Ping(Default::default())).await.is_err() { break },
            frame = stream.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    if let Some(reply) = handle(&state, &registration, token_user.as_deref(), text.as_str()).await
                        && tx.try_send(reply.to_string().into()).is_err()
                    {
                        break;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn field(frame: &Value, name: &str) -> Option<String> {
    match frame.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Stores a frame's message; returns the error frame to send back, if any.
async fn handle(
    state: &AppState,
    registration: &super::hub::Registration,
    token_user: Option<&str>,
    text: &str,
) -> Option<Value> {
    let invalid = || Some(json!({"error": "Invalid message format"}));
    let Ok(frame) = serde_json::from_str::<Value>(text) else { return invalid() };
    let (Some(sender), Some(receiver), Some(item), Some(content)) = (
        field(&frame, "sender_id"),
        field(&frame, "receiver_id"),
        field(&frame, "item_id"),
        field(&frame, "content"),
    ) else {
        return invalid();
    };
    if token_user.is_some_and(|user| user != sender) {
        return Some(json!({"error": "sender_id does not match the token"}));
    }
    if sender == receiver {
        return Some(json!({"error": "Cannot send message to yourself."}));
    }
    let Ok(sender_id) = UserId::parse(&sender) else { return invalid() };
    registration.knows_user(sender_id.as_str());
    match state.chat.send_to(&Actor::user(sender_id), &receiver, &item, &content).await {
        Ok(_) => None,
        Err(DomainError::Validation { reason, .. }) if reason.starts_with("Cannot send") => {
            Some(json!({"error": "Cannot send message to yourself."}))
        }
        Err(e) => Some(json!({"error": e.to_string()})),
    }
}
