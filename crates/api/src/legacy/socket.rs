//! `WS /ws/chat/{item_id}/{other_user_id}`: the old frontend's socket. Frames in:
//! `{"sender_id","receiver_id","item_id","content"}`; frames out: the message
//! (`LegacyMessage`) or `{"error": …}`; the socket stays open on errors.

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use chat_domain::{Actor, CorrelationId, DomainError, UserId};
use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::edge::claimed_actor;
use crate::http::error::ApiError;
use crate::http::identity::Caller;
use crate::http::openapi::errors::{BadRequest, Forbidden};
use crate::http::openapi::websocket::CONVERSATION_SOCKET;
use crate::metrics::{MessageSource, SocketKind};
use crate::state::AppState;
use crate::ws::MAX_BURST;
use crate::ws::closer::Closer;

/// Open a GrainTrade conversation socket
#[utoipa::path(
    get,
    path = "/ws/chat/{item_id}/{other_user_id}",
    operation_id = "openConversationSocket",
    tag = "graintrade",
    description = CONVERSATION_SOCKET,
    params(
        ("item_id" = String, Path, description = "The GrainTrade item the conversation is about.", example = "77"),
        ("other_user_id" = String, Path, description = "The other party.", example = "seller7"),
        ("token" = Option<String>, Query, description = "The JWT (authentication required only)."),
        ("user_id" = Option<String>, Query, description = "Who connects, with authentication disabled."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: frames are `LegacyClientFrame` and `LegacyServerFrame`."),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    caller: Caller,
    Path((item, other)): Path<(String, String)>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    crate::http::origin::check(&state, &headers)?;
    state.limits.check_connect(&headers, &extensions).await?;
    // The other party is checked now, as the REST routes do: a socket to a
    // user id that cannot exist would only answer errors to every frame.
    if let Err(DomainError::Validation { reason, .. }) = UserId::parse(&other) {
        return Err(ApiError::BadRequest(format!("other_user_id: {reason}")));
    }
    let known = caller.actor().user_id.clone();
    let known = (known != UserId::anonymous()).then(|| known.to_string());
    // Only a socket whose user is known counts toward that user's limit.
    let slot = match known.as_deref() {
        Some(user) => Some(state.limits.socket_slot(user).await?),
        None => None,
    };
    let from_token = caller.is_authenticated();
    let actor = known.is_some().then(|| caller.actor().clone());
    let settings = state.sockets;
    let tracker = state.tasks.clone();
    let peer = Peer { known, caller: caller.actor().clone(), from_token, actor };
    let upgrade = upgrade
        .read_buffer_size(crate::ws::READ_BUFFER_BYTES)
        .max_message_size(settings.max_frame_bytes);
    Ok(upgrade.on_upgrade(move |socket| {
        tracker.track_future(async move {
            serve(socket, state, item, other, peer).await;
            drop(slot);
        })
    }))
}

/// Who is on the other end of a legacy socket, as far as the upgrade told.
struct Peer {
    /// The user named by a token or `?user_id=`, if any.
    known: Option<String>,
    /// The caller as the upgrade identified it: every frame's sender is checked
    /// against it, and its roles and request id go on the sender's actor.
    caller: Actor,
    /// Set with authentication: every frame's sender must be the caller.
    from_token: bool,
    /// Whose socket it is for user presence: the known user only (a socket
    /// that names its user in frames alone could name several).
    actor: Option<Actor>,
}

async fn serve(socket: WebSocket, state: AppState, item: String, other: String, peer: Peer) {
    let connection = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "legacy_socket",
        connection = %connection,
        request_id = peer.caller.correlation_id.as_ref().map(CorrelationId::as_str).unwrap_or("-"),
        item = %item,
        user = peer.known.as_deref().unwrap_or("-"),
    );
    run(socket, state, item, other, peer, connection).instrument(span).await;
}

async fn run(
    socket: WebSocket,
    state: AppState,
    item: String,
    other: String,
    peer: Peer,
    connection: String,
) {
    tracing::info!("socket open");
    let _open = state.metrics.socket_opened(SocketKind::Legacy);
    if let Some(actor) = &peer.actor {
        crate::presence::connected(&state.chat, actor, &connection).await;
    }
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(state.sockets.queue_capacity);
    let closer = Closer::default();
    let registration = state.legacy.register(
        connection.clone(),
        item,
        other,
        peer.known.clone(),
        tx.clone(),
        closer.clone(),
    );
    let (mut sink, mut stream) = socket.split();
    let mut pings =
        tokio::time::interval(state.sockets.ping_interval.max(Duration::from_millis(100)));
    pings.tick().await;
    // Messages waiting for their commit, answered in the order they came.
    let mut in_flight = FuturesOrdered::new();
    let max_in_flight = state.sockets.max_in_flight.max(1);
    // One wait for the close, not a new one per frame.
    let closed = closer.closed();
    tokio::pin!(closed);
    loop {
        let reply = tokio::select! {
            reason = &mut closed => {
                let frame = axum::extract::ws::CloseFrame { code: reason.code, reason: reason.reason.into() };
                let _ = tokio::time::timeout(state.sockets.close_grace, sink.send(WsMessage::Close(Some(frame)))).await;
                break;
            }
            out = rx.recv() => match out {
                Some(text) => {
                    // The frames queued meanwhile go out with it, in one write.
                    if write_burst(&mut sink, &mut rx, text).await.is_err() { break }
                    continue;
                }
                None => break,
            },
            _ = pings.tick() => {
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() { break }
                continue;
            }
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => answer,
            frame = stream.next(), if in_flight.len() < max_in_flight => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    match handle(&state, &registration, &peer, text.as_str()).await {
                        Ok(pending) => {
                            in_flight.push_back(pending);
                            continue;
                        }
                        Err(reply) => Some(reply),
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
        };
        if let Some(reply) = reply
            && tx.try_send(reply.to_string().into()).is_err()
        {
            break;
        }
    }
    if let Some(actor) = &peer.actor {
        crate::presence::disconnected(&state.chat, actor, &connection).await;
    }
    tracing::info!("socket closed");
}

/// Writes `first` and the frames queued behind it (up to a burst) with one flush.
async fn write_burst(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    first: Utf8Bytes,
) -> Result<(), axum::Error> {
    sink.feed(WsMessage::Text(first)).await?;
    for _ in 1..MAX_BURST {
        let Ok(text) = rx.try_recv() else { break };
        sink.feed(WsMessage::Text(text)).await?;
    }
    sink.flush().await
}

fn field(frame: &Value, name: &str) -> Option<String> {
    match frame.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Queues a frame's message for storage: the returned future resolves, once it
/// is stored, to the error frame to send back, if any. A frame refused at once
/// is `Err` with its error frame.
async fn handle(
    state: &AppState,
    registration: &super::hub::Registration,
    peer: &Peer,
    text: &str,
) -> Result<impl Future<Output = Option<Value>> + use<>, Value> {
    state.metrics.message_received(MessageSource::Legacy);
    let invalid = || json!({"error": "Invalid message format"});
    let Ok(frame) = serde_json::from_str::<Value>(text) else { return Err(invalid()) };
    let (Some(sender), Some(receiver), Some(item), Some(content)) = (
        field(&frame, "sender_id"),
        field(&frame, "receiver_id"),
        field(&frame, "item_id"),
        field(&frame, "content"),
    ) else {
        return Err(invalid());
    };
    let claimed = claimed_actor(&peer.caller, peer.from_token, "sender_id", Some(&sender));
    // A sender other than the token's is refused first, a malformed one last.
    if let Err(DomainError::Forbidden(refusal)) = &claimed {
        return Err(json!({"error": refusal}));
    }
    if sender == receiver {
        return Err(json!({"error": "Cannot send message to yourself."}));
    }
    let Ok(actor) = claimed else { return Err(invalid()) };
    registration.knows_user(actor.user_id.as_str());
    let sent = match state.chat.submit_to(&actor, &receiver, &item, &content).await {
        Ok(sent) => sent,
        Err(DomainError::Validation { reason, .. }) if reason.starts_with("Cannot send") => {
            return Err(json!({"error": "Cannot send message to yourself."}));
        }
        Err(e) => return Err(json!({"error": e.to_string()})),
    };
    Ok(async move { sent.await.err().map(|e| json!({"error": e.to_string()})) })
}
