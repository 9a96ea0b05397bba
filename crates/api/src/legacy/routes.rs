//! The old service's REST routes, byte-for-byte in API.md's shapes, plus the
//! unread counters (`GET`/`DELETE /chat/{item_id}/unread?current_user=U`).

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::{Actor, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::LegacyMessage;
use crate::http::error::ApiError;
use crate::http::extract::ApiQuery;
use crate::http::identity::Caller;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CurrentUser {
    current_user: Option<String>,
}

impl CurrentUser {
    /// `?current_user=` names the caller (authentication disabled), else the usual identity.
    fn actor(self, caller: Caller) -> Result<Actor, ApiError> {
        match self.current_user {
            Some(raw) if caller.is_authenticated() => {
                if raw == caller.actor().user_id.as_str() {
                    Ok(caller.actor().clone())
                } else {
                    Err(ApiError::Forbidden("current_user does not match the token".to_owned()))
                }
            }
            Some(raw) => Ok(Actor::user(UserId::parse(&raw)?)),
            None => Ok(caller.actor().clone()),
        }
    }
}

#[derive(Serialize)]
pub struct Participant {
    id: String,
    username: String,
}

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

pub async fn clear(
    State(state): State<AppState>,
    caller: Caller,
    Path((item, other)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let actor = query.actor(caller)?;
    state.chat.clear_conversation(&actor, &item, &other).await?;
    Ok(Json(json!({"status": "success"})))
}

pub async fn participants(
    State(state): State<AppState>,
    Path(item): Path<String>,
) -> Result<Json<Vec<Participant>>, ApiError> {
    let users = state.chat.item_participants(&item).await?;
    Ok(Json(users.into_iter().map(|u| Participant { id: u.clone(), username: u }).collect()))
}

pub async fn unread(
    State(state): State<AppState>,
    caller: Caller,
    Path(item): Path<String>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let actor = query.actor(caller)?;
    let count = state.chat.unread_count(&actor, &item).await?;
    Ok(Json(json!({"item_id": item, "user_id": actor.user_id, "unread": count})))
}

pub async fn mark_read(
    State(state): State<AppState>,
    caller: Caller,
    Path(item): Path<String>,
    ApiQuery(query): ApiQuery<CurrentUser>,
) -> Result<Json<Value>, ApiError> {
    let actor = query.actor(caller)?;
    state.chat.mark_read(&actor, &item).await?;
    Ok(Json(json!({"status": "success"})))
}
