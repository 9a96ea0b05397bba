//! Real-time rooms: `GET /ws/{room_id}` (one room) and `GET /ws` (the inbox: any of
//! the user's rooms, subscribed by frames) upgrade to WebSockets speaking
//! PROTOCOL.md's frames. The hub fans room events out to this instance's sockets
//! in seq order.

pub mod closer;
mod connection;
pub mod hub;
mod inbox;
pub mod protocol;
mod reorder;
mod room_map;
mod room_names;
mod writer;

use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

pub use connection::SocketSettings;

/// Each socket's read buffer. tungstenite zero-fills its whole read buffer
/// (128 KiB by default) on the first read, so an idle socket cost ~140 KiB of
/// RSS; frames here are small, and a larger frame grows the buffer as needed.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The most queued frames a socket writes with one flush (one `write` to the kernel).
pub const MAX_BURST: usize = 32;
pub use hub::Hub;
pub use room_names::RoomNames;

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{BadRequest, Forbidden, NotFound, Unavailable};
use crate::http::openapi::websocket::{INBOX_SOCKET, ROOM_SOCKET};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocketQuery {
    /// Resume: replay every message with seq > `since`, then continue live.
    #[param(minimum = 0)]
    since: Option<i64>,
}

/// Open a room's WebSocket
///
/// Checks the room and the caller before upgrading: 404 for an unknown or deleted
/// room and 403 for a private room the caller is not in, as plain HTTP errors.
#[utoipa::path(
    get,
    path = "/ws/{room_id}",
    operation_id = "openRoomSocket",
    tag = "websocket",
    description = ROOM_SOCKET,
    params(
        ("room_id" = String, Path, description = "The room's id (in development also a room name, created on first use).", example = "1"),
        ("token" = Option<String>, Query, description = "The JWT, for clients that cannot set `Authorization` (browsers); authentication required only."),
        ("user_id" = Option<String>, Query, description = "Who connects, with authentication disabled."),
        SocketQuery,
    ),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open; frames are `ClientFrame` and `ServerFrame`."),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(query): ApiQuery<SocketQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    crate::http::origin::check(&state, &headers)?;
    state.limits.check_connect(&headers, &extensions).await?;
    let actor = caller.actor().clone();
    let by_name = raw_room.parse::<i64>().is_err();
    let room = match &state.room_names {
        Some(names) if by_name => names.resolve(&state.chat, &actor, &raw_room).await?,
        _ => room_id(&raw_room)?,
    };
    if let Some(since) = query.since
        && since < 0
    {
        return Err(ApiError::BadRequest("since: must be zero or a positive seq".to_owned()));
    }
    let authorized = state.chat.authorize_socket(&actor, room).await?;
    let slot = state.limits.socket_slot(actor.user_id.as_str()).await?;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let mode = connection::Mode::Room { authorized: Box::new(authorized), since: query.since };
    Ok(open(&state, &caller, actor, mode, slot, upgrade))
}

/// Open the inbox WebSocket
///
/// One socket for all of the caller's rooms: it is in no room until it
/// subscribes, and it gets the caller's own events (`room_added`,
/// `room_removed`, `unread`).
#[utoipa::path(
    get,
    path = "/ws",
    operation_id = "openInboxSocket",
    tag = "websocket",
    description = INBOX_SOCKET,
    params(
        ("token" = Option<String>, Query, description = "The JWT, for clients that cannot set `Authorization` (browsers); authentication required only."),
        ("user_id" = Option<String>, Query, description = "Who connects, with authentication disabled."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open; frames are `ClientFrame` and `ServerFrame`."),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub async fn upgrade_inbox(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
    caller: Caller,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    crate::http::origin::check(&state, &headers)?;
    state.limits.check_connect(&headers, &extensions).await?;
    let actor = caller.actor().clone();
    let slot = state.limits.socket_slot(actor.user_id.as_str()).await?;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    Ok(open(&state, &caller, actor, connection::Mode::Inbox, slot, upgrade))
}

/// Upgrades to a socket of either kind.
fn open(
    state: &AppState,
    caller: &Caller,
    actor: chat_domain::Actor,
    mode: connection::Mode,
    slot: crate::limits::SocketSlot,
    upgrade: WebSocketUpgrade,
) -> Response {
    let settings = state.sockets;
    let connection = connection::Connection {
        token_expires: caller.expires_at(),
        chat: state.chat.clone(),
        hub: state.hub.clone(),
        actor,
        mode,
        settings,
        _slot: slot,
        metrics: state.metrics.clone(),
    };
    let tracker = state.tasks.clone();
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(settings.max_frame_bytes)
        .max_frame_size(settings.max_frame_bytes)
        .on_upgrade(move |socket| tracker.track_future(connection.run(socket)))
        .into_response()
}
