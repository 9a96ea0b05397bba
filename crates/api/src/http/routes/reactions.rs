//! Reactions and versions of a message: react with a key (once per user and
//! key), take it back, list who reacted, and read the texts an edit replaced.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use chat_domain::{Message, MessageVersion, Reaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::extract::message_id;
use crate::http::identity::Caller;
use crate::http::openapi::errors::{Forbidden, NotFound, Unavailable};
use crate::http::openapi::response_sets::ReactionErrors;
use crate::http::openapi::schemas;
use crate::state::AppState;

/// The optional body of `PUT`/`DELETE …/reactions/{key}`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"user_id": "bob"}))]
pub struct ReactAs {
    /// Who reacts, with authentication disabled (else `X-User-Id`); with a
    /// token it must be the token's `sub`.
    user_id: Option<String>,
}

/// A message's reactions, oldest first.
#[derive(Serialize, ToSchema)]
pub struct ReactionList {
    #[schema(value_type = Vec<schemas::Reaction>)]
    items: Vec<Reaction>,
}

/// A message's texts, oldest first, the current one last.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    #[schema(value_type = Vec<schemas::MessageVersion>)]
    items: Vec<MessageVersion>,
}

/// The caller, or the body's `user_id` when there is a body (auth disabled).
fn reactor(caller: Caller, body: &Bytes) -> Result<chat_domain::Actor, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(caller.actor().clone());
    }
    // `null` is no body, as an empty one is.
    let body: Option<ReactAs> = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body must be a JSON object: {e}")))?;
    match body {
        Some(body) => caller.with_body_user(body.user_id.as_deref()),
        None => Ok(caller.actor().clone()),
    }
}

/// Whether a reaction is added or taken back.
#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

/// What `add` and `remove` share: the message, who reacts, then the change.
async fn react(
    state: &AppState,
    caller: Caller,
    raw_id: &str,
    key: &str,
    body: &Bytes,
    change: Change,
) -> Result<Json<Message>, ApiError> {
    let id = message_id(raw_id)?;
    let actor = reactor(caller, body)?;
    let message = match change {
        Change::Add => state.chat.add_reaction(&actor, id, key).await?,
        Change::Remove => state.chat.remove_reaction(&actor, id, key).await?,
    };
    Ok(Json(message))
}

/// React to a message
///
/// Adds the caller's reaction `key` (1–32 characters, no whitespace; percent-encoded
/// in the path, e.g. `%F0%9F%91%8D` for 👍). Idempotent: once per user and key, a
/// repeat changes nothing. A message has at most 20 distinct keys. A change is
/// broadcast as a `reaction` frame and published as `reaction_added`.
#[utoipa::path(
    put,
    path = "/messages/{message_id}/reactions/{key}",
    operation_id = "addReaction",
    tag = "messages",
    params(
        ("message_id" = i64, Path, description = "The message's id.", minimum = 1),
        ("key" = String, Path, description = "The reaction's key, e.g. 👍 (percent-encoded).", min_length = 1, max_length = 32),
    ),
    request_body(content = Option<ReactAs>, description = "Optional: who reacts (authentication disabled)."),
    responses(
        (status = 200, description = "The message with its reaction counts.", body = schemas::Message),
        ReactionErrors,
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Message>, ApiError> {
    react(&state, caller, &raw_id, &key, &body, Change::Add).await
}

/// Take a reaction back
///
/// Removes the caller's reaction `key`; without one nothing changes. A change is
/// broadcast as a `reaction` frame (`added: false`) and published as `reaction_removed`.
#[utoipa::path(
    delete,
    path = "/messages/{message_id}/reactions/{key}",
    operation_id = "removeReaction",
    tag = "messages",
    params(
        ("message_id" = i64, Path, description = "The message's id.", minimum = 1),
        ("key" = String, Path, description = "The reaction's key (percent-encoded).", min_length = 1, max_length = 32),
    ),
    request_body(content = Option<ReactAs>, description = "Optional: who reacts (authentication disabled)."),
    responses(
        (status = 200, description = "The message with its reaction counts.", body = schemas::Message),
        ReactionErrors,
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((raw_id, key)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Message>, ApiError> {
    react(&state, caller, &raw_id, &key, &body, Change::Remove).await
}

/// List a message's reactions
///
/// Who reacted with which key, oldest first.
#[utoipa::path(
    get,
    path = "/messages/{message_id}/reactions",
    operation_id = "listReactions",
    tag = "messages",
    params(("message_id" = i64, Path, description = "The message's id.", minimum = 1)),
    responses(
        (status = 200, description = "The reactions.", body = ReactionList),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<ReactionList>, ApiError> {
    let items = state.chat.list_reactions(caller.actor(), message_id(&raw_id)?).await?;
    Ok(Json(ReactionList { items }))
}

/// The versions of a message
///
/// Every text the message had, oldest first (version 1: as posted), the current
/// text last; a message never edited has one.
#[utoipa::path(
    get,
    path = "/messages/{message_id}/versions",
    operation_id = "listMessageVersions",
    tag = "messages",
    params(("message_id" = i64, Path, description = "The message's id.", minimum = 1)),
    responses(
        (status = 200, description = "The versions.", body = VersionList),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let items = state.chat.message_versions(caller.actor(), message_id(&raw_id)?).await?;
    Ok(Json(VersionList { items }))
}
