//! Extractors that turn axum's rejections into [`ApiError`]s, so malformed input
//! gets PROTOCOL.md's status and body, and path ids that parse into domain ids.

use axum::extract::{FromRequest, FromRequestParts};
use chat_domain::{MessageId, RoomId};
use serde::{Deserialize, Deserializer};

use super::error::ApiError;

/// `axum::Json` with PROTOCOL.md's errors: 400 syntax, 422 wrong values, 415, 413.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with a 400 `bad_request` on malformed parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A room id from the path; anything that is not a positive integer names no room.
/// Recorded in the request's span, so its log lines name the room.
pub fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    let room = raw
        .parse::<i64>()
        .ok()
        .and_then(|id| RoomId::new(id).ok())
        .ok_or_else(|| ApiError::NotFound(format!("room {raw} not found")))?;
    tracing::Span::current().record("room", room.get());
    Ok(room)
}

/// A message id from the path; anything that is not a positive integer names none.
pub fn message_id(raw: &str) -> Result<MessageId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(|id| MessageId::new(id).ok())
        .ok_or_else(|| ApiError::NotFound(format!("message {raw} not found")))
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}
