//! Message search: `GET /rooms/{room_id}/messages/search` and `GET /messages/search`.

use axum::Json;
use axum::extract::{Path, State};
use chat_domain::search::{SearchHit, SearchPage};
use chat_domain::{MessageId, RoomId, SearchInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, room_id};
use crate::http::identity::Caller;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    user_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
    room_id: Option<i64>,
}

#[derive(Serialize)]
pub struct SearchResults {
    items: Vec<SearchHit>,
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

pub async fn in_room(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResults>, ApiError> {
    let room = room_id(&raw_room)?;
    let page = state.chat.search_room(caller.actor(), room, input(params)?).await?;
    Ok(Json(page.into()))
}

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
