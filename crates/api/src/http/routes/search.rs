//! Message search: `GET /rooms/{room_id}/messages/search` and `GET /messages/search`.

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::search::{SearchHit, SearchPage};
use chat_domain::{MessageId, RoomId, SearchInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{
    BadRequest, Forbidden, NotFound, Unavailable, ValidationFailed,
};
use crate::http::openapi::schemas;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find (runs of letters and digits in any language,
    /// case-insensitive; the last word also as a prefix): 1–200 characters, not
    /// only whitespace; a query without letters or digits finds nothing.
    #[serde(default)]
    #[param(required = true, example = "wheat odes")]
    q: String,
    /// Only messages by this user.
    user_id: Option<String>,
    /// Only messages created at or after this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-01-01T00:00:00Z")]
    since: Option<String>,
    /// Only messages created before this RFC 3339 time.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `GET /messages/search` only: search this room alone.
    #[param(minimum = 1)]
    room_id: Option<i64>,
}

/// Hits, newest first.
#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    #[schema(value_type = Vec<schemas::SearchHit>)]
    items: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

impl From<SearchPage> for SearchResults {
    fn from(page: SearchPage) -> Self {
        Self { items: page.items, next_cursor: page.next_cursor.map(|id| id.get().to_string()) }
    }
}

fn timestamp(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            ApiError::BadRequest(format!("{name}: expected an RFC 3339 timestamp, got {raw:?}"))
        })
    })
    .transpose()
}

fn input(params: SearchParams) -> Result<SearchInput, ApiError> {
    let before = params
        .cursor
        .as_deref()
        .map(|raw| {
            raw.parse::<i64>().ok().and_then(|id| MessageId::new(id).ok()).ok_or_else(|| {
                ApiError::BadRequest("cursor: is not a cursor this service issued".to_owned())
            })
        })
        .transpose()?;
    Ok(SearchInput {
        since: timestamp("since", params.since.as_deref())?,
        until: timestamp("until", params.until.as_deref())?,
        q: params.q,
        user_id: params.user_id,
        limit: params.limit,
        before,
    })
}

/// Search a room's messages
///
/// Full-text search of one room's history with filters, newest first
/// (`room_id` in the query is ignored here).
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/messages/search",
    operation_id = "searchRoomMessages",
    tag = "search",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1), SearchParams),
    responses(
        (status = 200, description = "Hits, newest first.", body = SearchResults),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn in_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let room = room_id(&raw_room)?;
    if let Some(id) = params.room_id
        && id < 1
    {
        // Not used here, but not let through as nonsense either.
        return Err(ApiError::BadRequest("room_id: must be a positive integer".to_owned()));
    }
    let page = state.chat.search_room(caller.actor(), room, input(params)?).await?;
    Ok(Json(page.into()))
}

/// Search every room
///
/// Full-text search across the rooms the caller may read (or one, with
/// `room_id`), newest first.
#[utoipa::path(
    get,
    path = "/messages/search",
    operation_id = "searchMessages",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Hits, newest first.", body = SearchResults),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn everywhere(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let room = params
        .room_id
        .map(|id| RoomId::new(id).map_err(|_| ApiError::NotFound(format!("room {id} not found"))))
        .transpose()?;
    let page = state.chat.search_all(caller.actor(), room, input(params)?).await?;
    Ok(Json(page.into()))
}
