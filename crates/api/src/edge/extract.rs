//! Extractors that turn axum's rejections into [`ApiError`]s, so malformed input
//! gets PROTOCOL.md's status and body, and path ids that parse into domain ids.

use std::marker::PhantomData;

use axum::extract::{FromRequest, FromRequestParts, Request};
use chat_domain::{MessageId, RoomId};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::error::ApiError;

/// `axum::Json` of a JSON object, with PROTOCOL.md's errors: 400 syntax, 422 wrong
/// values (another JSON type included), 415, 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(Object(value)) =
            axum::Json::<Object<T>>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// A value read from a JSON object only: serde would also fill a struct from
/// an array (its fields in order), which no client means.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

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

/// A JSON integer, also written as a number with a zero fraction (`42.0`):
/// JSON Schema counts that as an integer, and so do clients that only have floats.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!("invalid value: {number}, expected an integer"))),
    }
}

/// [`whole_number`], or `null` / absent.
pub fn optional_whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "whole_number")] i64);
    Ok(Option::<Whole>::deserialize(d)?.map(|Whole(n)| n))
}
