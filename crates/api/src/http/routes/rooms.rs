//! `/rooms`: create, list, read, update, delete, and who is in a room.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::ports::PresenceEntry;
use chat_domain::{Limit, Room, RoomCursor, RoomInput, RoomPatchInput};
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, double_option, room_id};
use crate::http::identity::Caller;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateRoom {
    name: String,
    description: Option<String>,
    #[serde(default)]
    is_private: bool,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize)]
pub struct PatchRoom {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    item_id: Option<String>,
}

#[derive(Serialize)]
pub struct RoomList {
    items: Vec<Room>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct UserList {
    items: Vec<PresenceEntry>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRoom>,
) -> Result<Response, ApiError> {
    let input = RoomInput {
        name: body.name,
        description: body.description,
        is_private: body.is_private,
        members: body.members,
    };
    let room = state.chat.create_room(caller.actor(), input).await?;
    let location = format!("/rooms/{}", room.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(room)).into_response())
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<RoomList>, ApiError> {
    let limit = query.limit.map(Limit::parse).transpose()?.unwrap_or_default();
    let cursor = query
        .cursor
        .as_deref()
        .map(RoomCursor::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let page =
        state.chat.list_rooms(caller.actor(), query.item_id.as_deref(), cursor, limit).await?;
    Ok(Json(RoomList { items: page.items, next_cursor: page.next_cursor.map(RoomCursor::encode) }))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(state.chat.get_room(caller.actor(), room_id(&raw_id)?).await?))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<PatchRoom>,
) -> Result<Json<Room>, ApiError> {
    let input = RoomPatchInput { name: body.name, description: body.description };
    Ok(Json(state.chat.update_room(caller.actor(), room_id(&raw_id)?, input).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.chat.delete_room(caller.actor(), room_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Users with an open socket in the room now, on any instance.
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<UserList>, ApiError> {
    let items = state.chat.room_users(caller.actor(), room_id(&raw_id)?).await?;
    Ok(Json(UserList { items }))
}

#[derive(Deserialize)]
pub struct NewMember {
    user_id: String,
}

/// `POST /rooms/{room_id}/members` `{"user_id"}`: 201 when added, 200 when already a member.
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<NewMember>,
) -> Result<Response, ApiError> {
    let room = room_id(&raw_id)?;
    let added = state.chat.add_member(caller.actor(), room, &body.user_id).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(serde_json::json!({"room_id": room, "user_id": body.user_id.trim()})))
        .into_response())
}

/// `DELETE /rooms/{room_id}/members/{user_id}`: 204.
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.chat.remove_member(caller.actor(), room_id(&raw_id)?, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
