//! `GET /rooms/{room}/messages` on the baseline: pages (newest, `before=`,
//! `after=`) made up on the spot from seq numbers — the cost of answering an
//! HTTP request with a page of message JSON, without any storage.

use axum::Json;
use axum::extract::{Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::socket::MessageFrame;
use super::state::State;

const CREATED: &str = "2026-01-01T12:00:00.000Z";
const CONTENT: &str = "baseline message, about as long as a bench message: xxxxxxxxxxxxxx";

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<i64>,
    before: Option<i64>,
    after: Option<i64>,
}

pub async fn page(
    Extract(state): Extract<State>,
    Path(room_id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(room) = state.room(room_id) else {
        return (StatusCode::NOT_FOUND, "no such room").into_response();
    };
    let last_seq = room.lock().last_seq;
    let limit = query.limit.unwrap_or(50).clamp(1, 100);
    let (first, last) = match (query.before, query.after) {
        (Some(before), _) => ((before - limit).max(1), (before - 1).min(last_seq)),
        (None, Some(after)) => (after + 1, (after + limit).min(last_seq)),
        (None, None) => ((last_seq - limit + 1).max(1), last_seq),
    };
    let items: Vec<MessageFrame> = (first..=last)
        .map(|seq| MessageFrame {
            kind: "message",
            id: seq,
            room_id,
            seq,
            user_id: "baseline",
            content: CONTENT,
            message_type: "text",
            client_msg_id: None,
            created_at: CREATED,
            updated_at: CREATED,
            edited: false,
        })
        .collect();
    let has_more = match query.after {
        Some(_) if query.before.is_none() => last < last_seq,
        _ => first > 1,
    };
    Json(json!({"items": items, "has_more": has_more})).into_response()
}
