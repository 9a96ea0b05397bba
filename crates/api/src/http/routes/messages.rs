//! Messages: post and page through a room's history, read, edit, delete one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::{HistoryRequest, Limit, Message, MessageEdit, MessageInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, message_id, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unavailable, UnsupportedMediaType,
    ValidationFailed,
};
use crate::http::openapi::schemas;
use crate::metrics::MessageSource;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"content": "210 UAH/kg?", "client_msg_id": "bob-1", "user_id": "bob"}))]
pub struct PostMessage {
    /// 1–4000 characters, not only whitespace, no control characters but `\n` and `\t`.
    #[schema(min_length = 1, max_length = 4000)]
    content: String,
    /// `text` (default) or `system` (admins and the service only).
    #[schema(value_type = Option<schemas::PostMessageType>)]
    message_type: Option<String>,
    /// Idempotency key (≤ 64 characters): the same user sending the same key to
    /// the same room again gets the original message back (200), nothing new is stored.
    client_msg_id: Option<String>,
    /// The id of the message this one answers: a live message of the same room
    /// (else 422 naming `reply_to`).
    #[schema(minimum = 1, format = Int64)]
    #[serde(default, deserialize_with = "crate::http::extract::optional_whole_number")]
    reply_to: Option<i64>,
    /// The author, with authentication disabled; with a token it must be the token's `sub`.
    user_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"content": "215 UAH/kg?"}))]
pub struct EditMessage {
    /// The new content (same rules as when posting).
    #[schema(min_length = 1, max_length = 4000)]
    content: String,
    /// The author, with authentication disabled; with a token it must be the token's `sub`.
    user_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `limit` messages just before this seq (with `after`: the messages between the two).
    #[param(minimum = 1)]
    before: Option<i64>,
    /// The `limit` messages just after this seq (never misses a later commit); with
    /// `before`, the first `limit` of those before it.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// A page of a room's history, always in ascending `seq`.
#[derive(Serialize, ToSchema)]
pub struct History {
    #[schema(value_type = Vec<schemas::Message>)]
    items: Vec<Message>,
    /// More messages lie beyond this page in the direction asked for.
    has_more: bool,
}

/// Post a message
///
/// Stored with the room's next `seq`, then broadcast to the room's sockets and
/// published as an event.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/messages",
    operation_id = "postMessage",
    tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    request_body = PostMessage,
    responses(
        (status = 201, description = "Stored and broadcast.", body = schemas::Message,
            headers(("location" = String, description = "`/messages/{id}`"))),
        (status = 200, description = "An idempotent repeat (same user, room and `client_msg_id`): the original message; nothing new stored or broadcast.",
            body = schemas::Message, headers(("location" = String, description = "`/messages/{id}`"))),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiJson(body): ApiJson<PostMessage>,
) -> Result<Response, ApiError> {
    state.metrics.message_received(MessageSource::Http);
    let room = room_id(&raw_room)?;
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    let input = MessageInput {
        content: body.content,
        message_type: body.message_type,
        client_msg_id: body.client_msg_id,
        reply_to: body.reply_to,
    };
    let posted = state.chat.post_message(&actor, room, input).await?;
    let status = if posted.is_new() { StatusCode::CREATED } else { StatusCode::OK };
    let message = posted.into_message();
    let location = format!("/messages/{}", message.id);
    Ok((status, [(header::LOCATION, location)], Json(message)).into_response())
}

/// Page through a room's history
///
/// Items are always in ascending `seq`. No cursor: the newest `limit`;
/// `before=S`: the `limit` just before seq S; `after=S`: the `limit` just after it;
/// both: the first `limit` of those between them (`has_more`: more lie before `before`).
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/messages",
    operation_id = "listMessages",
    tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1), HistoryParams),
    responses(
        (status = 200, description = "A page of messages.", body = History),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    let room = room_id(&raw_room)?;
    let limit = params.limit.map(Limit::parse).transpose()?.unwrap_or_default();
    let request = HistoryRequest::from_bounds(params.before, params.after)?;
    let page = state.chat.read_history(caller.actor(), room, request, limit).await?;
    Ok(Json(History { items: page.items, has_more: page.has_more }))
}

/// Get a message
#[utoipa::path(
    get,
    path = "/messages/{message_id}",
    operation_id = "getMessage",
    tag = "messages",
    params(("message_id" = i64, Path, description = "The message's id.", minimum = 1)),
    responses(
        (status = 200, description = "The message.", body = schemas::Message),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(state.chat.get_message(caller.actor(), message_id(&raw_id)?).await?))
}

/// Edit a message
///
/// The author only. The message comes back with `edited: true` and is broadcast
/// as `message_updated`.
#[utoipa::path(
    patch,
    path = "/messages/{message_id}",
    operation_id = "editMessage",
    tag = "messages",
    params(("message_id" = i64, Path, description = "The message's id.", minimum = 1)),
    request_body = EditMessage,
    responses(
        (status = 200, description = "The edited message.", body = schemas::Message),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<EditMessage>,
) -> Result<Json<Message>, ApiError> {
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    let edit = MessageEdit { content: body.content };
    Ok(Json(state.chat.edit_message(&actor, message_id(&raw_id)?, edit).await?))
}

/// Delete a message
///
/// The author, the room's creator, a moderator or an admin. Broadcast as
/// `message_deleted`; afterwards GET is 404 and history omits it.
#[utoipa::path(
    delete,
    path = "/messages/{message_id}",
    operation_id = "deleteMessage",
    tag = "messages",
    params(("message_id" = i64, Path, description = "The message's id.", minimum = 1)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.delete_message(caller.actor(), message_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
