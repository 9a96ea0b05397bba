//! Read markers and the inbox: mark a room read up to a seq, list a room's
//! readers, and the caller's rooms with their unread counts (`/me/rooms`).

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::Limit;
use chat_domain::read_state::{InboxCursor, InboxEntry, ReadMarker};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unavailable, UnsupportedMediaType,
    ValidationFailed,
};
use crate::http::openapi::schemas;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"seq": 42, "user_id": "bob"}))]
pub struct MarkRead {
    /// Read up to this seq (0 or more; above the room's last seq it is taken as the last).
    #[schema(minimum = 0, format = Int64)]
    #[serde(deserialize_with = "crate::http::extract::whole_number")]
    seq: i64,
    /// The reader, with authentication disabled; with a token it must be the token's `sub`.
    user_id: Option<String>,
}

/// A room's readers.
#[derive(Serialize, ToSchema)]
pub struct ReaderList {
    #[schema(value_type = Vec<schemas::Reader>)]
    items: Vec<Reader>,
}

#[derive(Serialize)]
struct Reader {
    user_id: String,
    seq: i64,
    #[serde(with = "chat_domain::timestamp::rfc3339_millis")]
    read_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of the caller's rooms, most recent activity first.
#[derive(Serialize, ToSchema)]
pub struct Inbox {
    #[schema(value_type = Vec<schemas::InboxEntry>)]
    items: Vec<InboxEntry>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Mark a room read
///
/// Moves the caller's read marker forward to `seq`: a lower seq than the
/// marker changes nothing (the current marker comes back), a seq above the
/// room's last is taken as the last. When it moved, the room's sockets get a
/// `read` frame and the `messages_read` event is published.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/read",
    operation_id = "markRoomRead",
    tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    request_body = MarkRead,
    responses(
        (status = 200, description = "The caller's marker after the call.", body = schemas::ReadMarker),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiJson(body): ApiJson<MarkRead>,
) -> Result<Json<ReadMarker>, ApiError> {
    let room = room_id(&raw_room)?;
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    Ok(Json(state.chat.mark_read(&actor, room, body.seq).await?))
}

/// Who has read a room
///
/// The read markers of the users who have read the room, by user id.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/reads",
    operation_id = "listRoomReads",
    tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    responses(
        (status = 200, description = "The room's readers.", body = ReaderList),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn reads(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
) -> Result<Json<ReaderList>, ApiError> {
    let markers = state.chat.room_reads(caller.actor(), room_id(&raw_room)?).await?;
    let items = markers
        .into_iter()
        .map(|m| Reader { user_id: m.user_id, seq: m.seq, read_at: m.read_at })
        .collect();
    Ok(Json(ReaderList { items }))
}

/// The caller's rooms
///
/// The rooms the caller created, is a member of or has posted in (private
/// ones only while it may read them), most recent activity first, each with
/// its newest message, the caller's read marker and unread count.
#[utoipa::path(
    get,
    path = "/me/rooms",
    operation_id = "listMyRooms",
    tag = "rooms",
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of the caller's rooms.", body = Inbox),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn inbox(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<InboxQuery>,
) -> Result<Json<Inbox>, ApiError> {
    let limit = query.limit.map(Limit::parse).transpose()?.unwrap_or_default();
    let cursor = query
        .cursor
        .as_deref()
        .map(InboxCursor::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page = state.chat.my_rooms(caller.actor(), limit, cursor).await?;
    Ok(Json(Inbox { items: page.items, next_cursor: page.next_cursor.map(|c| c.encode()) }))
}
