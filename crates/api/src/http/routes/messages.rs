//! Messages: post and page through a room's history, read, edit, delete one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::{HistoryQuery, Limit, Message, MessageEdit, MessageInput};
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, message_id, room_id};
use crate::http::identity::Caller;
use crate::metrics::MessageSource;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PostMessage {
    content: String,
    message_type: Option<String>,
    client_msg_id: Option<String>,
    user_id: Option<String>,
}

#[derive(Deserialize)]
pub struct EditMessage {
    content: String,
    user_id: Option<String>,
}

#[derive(Deserialize)]
pub struct HistoryParams {
    limit: Option<i64>,
    before: Option<i64>,
    after: Option<i64>,
}

#[derive(Serialize)]
pub struct History {
    items: Vec<Message>,
    has_more: bool,
}

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
    };
    let posted = state.chat.post_message(&actor, room, input).await?;
    let status = if posted.is_new() { StatusCode::CREATED } else { StatusCode::OK };
    let message = posted.into_message();
    let location = format!("/messages/{}", message.id);
    Ok((status, [(header::LOCATION, location)], Json(message)).into_response())
}

pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    let room = room_id(&raw_room)?;
    let limit = params.limit.map(Limit::parse).transpose()?.unwrap_or_default();
    let query = HistoryQuery::from_bounds(params.before, params.after)?;
    let page = state.chat.list_messages(caller.actor(), room, query, limit).await?;
    Ok(Json(History { items: page.items, has_more: page.has_more }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(state.chat.get_message(caller.actor(), message_id(&raw_id)?).await?))
}

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

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.delete_message(caller.actor(), message_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
