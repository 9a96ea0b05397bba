//! Who is calling. With authentication disabled (development) the caller is who
//! it says it is: the body's `user_id`, else `?user_id=`, else `X-User-Id`, else
//! `anonymous`; `X-User-Roles` (comma-separated) declares roles. The JWT mode
//! plugs in here.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chat_domain::{Actor, Role, UserId};
use serde::Deserialize;

use super::error::ApiError;

/// The caller as the request's query and headers declare it.
#[derive(Debug, Clone)]
pub struct Caller(Actor);

#[derive(Deserialize)]
struct UserQuery {
    user_id: Option<String>,
}

impl Caller {
    /// The actor for a request whose body may name its own `user_id`, which wins.
    pub fn with_body_user(self, body_user_id: Option<&str>) -> Result<Actor, ApiError> {
        match body_user_id {
            Some(raw) => Ok(Actor::new(UserId::parse(raw)?, self.0.roles)),
            None => Ok(self.0),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let from_query =
            Query::<UserQuery>::try_from_uri(&parts.uri).ok().and_then(|q| q.0.user_id);
        let from_header =
            || parts.headers.get("x-user-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let user_id = match from_query.or_else(from_header) {
            Some(raw) => UserId::parse(&raw)?,
            None => UserId::anonymous(),
        };
        let roles = parts
            .headers
            .get("x-user-roles")
            .and_then(|v| v.to_str().ok())
            .map(|raw| raw.split(',').filter_map(Role::parse).collect())
            .unwrap_or_default();
        Ok(Self(Actor::new(user_id, roles)))
    }
}
