//! `/rooms`: create, list, read, update, delete, and who is in a room.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::ports::PresenceEntry;
use chat_domain::{Limit, Room, RoomCursor, RoomInput, RoomPatchInput};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, double_option, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{
    BadRequest, Forbidden, NotFound, PayloadTooLarge, Unavailable, UnsupportedMediaType,
    ValidationFailed,
};
use crate::http::openapi::schemas;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Wheat, Odesa", "description": "FOB offers", "is_private": true, "members": ["bob"]}))]
pub struct CreateRoom {
    /// 1–100 characters after trimming.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// At most 1000 characters.
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// Only members see and use a private room (default false).
    #[serde(default)]
    is_private: bool,
    /// User ids to add as members besides the creator.
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Wheat", "description": null}))]
pub struct PatchRoom {
    /// A new name (1–100 characters after trimming); absent: unchanged.
    name: Option<String>,
    /// A new description; `null` clears it; absent: unchanged.
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only the conversation rooms of this GrainTrade item.
    item_id: Option<String>,
}

/// A page of rooms, by id.
#[derive(Serialize, ToSchema)]
pub struct RoomList {
    #[schema(value_type = Vec<schemas::Room>)]
    items: Vec<Room>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Users with an open socket in the room now.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    #[schema(value_type = Vec<schemas::PresentUser>)]
    items: Vec<PresenceEntry>,
}

/// Create a room
///
/// The caller becomes its creator (and a member).
#[utoipa::path(
    post,
    path = "/rooms",
    operation_id = "createRoom",
    tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Created.", body = schemas::Room,
            headers(("location" = String, description = "`/rooms/{id}`"))),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
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

/// List rooms
///
/// Active rooms the caller may see (public ones and private ones it is a member
/// of), by id, a page at a time.
#[utoipa::path(
    get,
    path = "/rooms",
    operation_id = "listRooms",
    tag = "rooms",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of rooms.", body = RoomList),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
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

/// Get a room
#[utoipa::path(
    get,
    path = "/rooms/{room_id}",
    operation_id = "getRoom",
    tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    responses(
        (status = 200, description = "The room.", body = schemas::Room),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Room>, ApiError> {
    Ok(Json(state.chat.get_room(caller.actor(), room_id(&raw_id)?).await?))
}

/// Change a room
///
/// Its creator or an admin may rename it or change its description.
#[utoipa::path(
    patch,
    path = "/rooms/{room_id}",
    operation_id = "updateRoom",
    tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    request_body = PatchRoom,
    responses(
        (status = 200, description = "The changed room.", body = schemas::Room),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<PatchRoom>,
) -> Result<Json<Room>, ApiError> {
    let input = RoomPatchInput { name: body.name, description: body.description };
    Ok(Json(state.chat.update_room(caller.actor(), room_id(&raw_id)?, input).await?))
}

/// Delete a room
///
/// Its creator or an admin may. The room is gone from reads and the list, its
/// sockets get `room_deleted` and are closed with 4404; its messages are kept.
#[utoipa::path(
    delete,
    path = "/rooms/{room_id}",
    operation_id = "deleteRoom",
    tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
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
    state.chat.delete_room(caller.actor(), room_id(&raw_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is in a room
///
/// Users with an open socket in the room now, on any instance.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/users",
    operation_id = "listRoomUsers",
    tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    responses(
        (status = 200, description = "Present users, in order of arrival.", body = UserList),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn users(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<UserList>, ApiError> {
    let items = state.chat.room_users(caller.actor(), room_id(&raw_id)?).await?;
    Ok(Json(UserList { items }))
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "bob"}))]
pub struct NewMember {
    /// The user to add (1–64 characters).
    user_id: String,
}

/// A room's member.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"room_id": 1, "user_id": "bob"}))]
pub struct Membership {
    room_id: i64,
    user_id: String,
}

/// Add a member
///
/// The room's creator or an admin adds a user to the room (what makes a private
/// room visible to them).
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/members",
    operation_id = "addRoomMember",
    tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    request_body = NewMember,
    responses(
        (status = 201, description = "Added.", body = Membership),
        (status = 200, description = "Already a member.", body = Membership),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(body): ApiJson<NewMember>,
) -> Result<Response, ApiError> {
    let room = room_id(&raw_id)?;
    let added = state.chat.add_member(caller.actor(), room, &body.user_id).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    let membership = Membership { room_id: room.get(), user_id: body.user_id.trim().to_owned() };
    Ok((status, Json(membership)).into_response())
}

/// Remove a member
///
/// The room's creator or an admin removes a user from the room.
#[utoipa::path(
    delete,
    path = "/rooms/{room_id}/members/{user_id}",
    operation_id = "removeRoomMember",
    tag = "rooms",
    params(
        ("room_id" = i64, Path, description = "The room's id.", minimum = 1),
        ("user_id" = String, Path, description = "The member to remove."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.chat.remove_member(caller.actor(), room_id(&raw_id)?, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}
