//! `/users/{user_id}/presence`: whether a user has sockets open anywhere (any
//! room, the GrainTrade socket, the inbox), and when one last closed.

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::ports::UserPresence;

use crate::http::error::ApiError;
use crate::http::identity::Caller;
use crate::http::openapi::errors::ValidationFailed;
use crate::http::openapi::schemas;
use crate::state::AppState;

/// A user's presence
///
/// Open sockets of the user on every instance — each socket once, whatever it
/// is subscribed to — and when the last one closed. Any caller may ask about
/// any user; one never seen is offline with `last_seen` null.
#[utoipa::path(
    get,
    path = "/users/{user_id}/presence",
    operation_id = "getUserPresence",
    tag = "users",
    params(("user_id" = String, Path, description = "The user (1–64 characters).", example = "alice")),
    responses(
        (status = 200, description = "The user's presence.", body = schemas::UserPresence),
        (status = 422, response = ValidationFailed),
    )
)]
pub async fn presence(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<UserPresence>, ApiError> {
    Ok(Json(state.chat.user_presence(caller.actor(), &user_id).await?))
}
