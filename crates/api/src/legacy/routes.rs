//! The old service's REST routes, byte-for-byte in API.md's shapes, plus the
//! unread counters (`GET`/`DELETE /chat/{item_id}/unread?current_user=U`).

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::Actor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::LegacyMessage;
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::http::identity::Caller;
use crate::http::openapi::errors::{BadRequest, Forbidden, Unavailable, ValidationFailed};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CurrentUser {
    /// The caller (authentication disabled; with a token it must be the token's `sub`).
    #[param(example = "buyer1")]
    current_user: Option<String>,
}

impl CurrentUser {
    /// `?current_user=` names the caller (authentication disabled), else the usual identity.
    fn actor(self, caller: Caller) -> Result<Actor, ApiError> {
        caller.claiming("current_user", self.current_user.as_deref())
    }
}

/// Someone who sent a message about the item.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "buyer1", "username": "buyer1"}))]
pub struct Participant {
    /// The user id.
    id: String,
    /// The same user id (the old service's shape).
    username: String,
}

/// `{"status": "success"}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "success"}))]
pub struct Success {
    #[schema(pattern = "^success$")]
    status: &'static str,
}

const SUCCESS: Success = Success { status: "success" };

/// Unread messages of an item's conversations for one user.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"item_id": "77", "user_id": "seller7", "unread": 3}))]
pub struct Unread {
    item_id: String,
    user_id: String,
    #[schema(minimum = 0)]
    unread: u64,
}

/// A conversation's history
///
/// The conversation between `current_user` and `other_user_id` about the item,
/// oldest first (the latest 50 when there are more).
#[utoipa::path(
    get,
    path = "/chat/{item_id}/{other_user_id}/history",
    operation_id = "getConversationHistory",
    tag = "graintrade",
    params(
        ("item_id" = String, Path, description = "The GrainTrade item.", example = "77"),
        ("other_user_id" = String, Path, description = "The other party.", example = "seller7"),
        CurrentUser,
    ),
    responses(
        (status = 200, description = "Messages, oldest first.", body = Vec<LegacyMessage>),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path((item, other)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Vec<LegacyMessage>>, ApiError> {
    let actor = query.actor(caller)?;
    let (conversation, messages) = state.chat.conversation_history(&actor, &item, &other).await?;
    Ok(Json(messages.iter().map(|m| LegacyMessage::in_conversation(m, &conversation)).collect()))
}

/// Delete a conversation
///
/// Deletes (softly) every message between `current_user` and `other_user_id` about the item.
#[utoipa::path(
    delete,
    path = "/chat/{item_id}/{other_user_id}/history",
    operation_id = "deleteConversationHistory",
    tag = "graintrade",
    params(
        ("item_id" = String, Path, description = "The GrainTrade item.", example = "77"),
        ("other_user_id" = String, Path, description = "The other party.", example = "seller7"),
        CurrentUser,
    ),
    responses(
        (status = 200, description = "Deleted.", body = Success),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn clear(
    State(state): State<AppState>,
    caller: Caller,
    Path((item, other)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Success>, ApiError> {
    let actor = query.actor(caller)?;
    state.chat.clear_conversation(&actor, &item, &other).await?;
    Ok(Json(SUCCESS))
}

/// An item's participants
///
/// Everyone who has sent a message about the item.
#[utoipa::path(
    get,
    path = "/chat/{item_id}/participants",
    operation_id = "listItemParticipants",
    tag = "graintrade",
    params(("item_id" = String, Path, description = "The GrainTrade item.", example = "77")),
    responses(
        (status = 200, description = "The participants.", body = Vec<Participant>),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn participants(
    State(state): State<AppState>,
    Path(item): Path<String>,
) -> Result<Json<Vec<Participant>>, ApiError> {
    let users = state.chat.item_participants(&item).await?;
    Ok(Json(users.into_iter().map(|u| Participant { id: u.clone(), username: u }).collect()))
}

/// Unread messages about an item
///
/// How many messages about the item `current_user` has not read: the sum of its
/// inbox unread counts (`GET /me/rooms`) over its conversation rooms of the item.
#[utoipa::path(
    get,
    path = "/chat/{item_id}/unread",
    operation_id = "getUnreadCount",
    tag = "graintrade",
    params(("item_id" = String, Path, description = "The GrainTrade item.", example = "77"), CurrentUser),
    responses(
        (status = 200, description = "The counter.", body = Unread),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn unread(
    State(state): State<AppState>,
    caller: Caller,
    Path(item): Path<String>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Unread>, ApiError> {
    let actor = query.actor(caller)?;
    let unread = state.chat.unread_count(&actor, &item).await?;
    Ok(Json(Unread { item_id: item, user_id: actor.user_id.to_string(), unread }))
}

/// Mark an item's messages read
///
/// Moves `current_user`'s read markers in its conversation rooms of the item to
/// each room's last message (and resets the old per-item counter).
#[utoipa::path(
    delete,
    path = "/chat/{item_id}/unread",
    operation_id = "markItemRead",
    tag = "graintrade",
    params(("item_id" = String, Path, description = "The GrainTrade item.", example = "77"), CurrentUser),
    responses(
        (status = 200, description = "Reset.", body = Success),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(item): Path<String>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Success>, ApiError> {
    let actor = query.actor(caller)?;
    state.chat.mark_item_read(&actor, &item).await?;
    Ok(Json(SUCCESS))
}
