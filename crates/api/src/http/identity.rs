//! Who is calling. With authentication required, a JWT from
//! `Authorization: Bearer` or `?token=` (browsers cannot set socket headers)
//! names the caller, and a `user_id` in a body or frame must match it. With it
//! disabled (development) the caller is who it says it is: the body's `user_id`,
//! else `?user_id=`, else `X-User-Id`, else `anonymous`; `X-User-Roles` declares roles.

use std::time::SystemTime;

use axum::extract::{FromRequestParts, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chat_domain::{Actor, CorrelationId, Role, UserId};
use serde::Deserialize;

use super::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    actor: Actor,
    /// Set when the identity comes from a token: it cannot be overridden, and it ends.
    expires_at: Option<SystemTime>,
}

#[derive(Deserialize)]
struct IdentityQuery {
    user_id: Option<String>,
    token: Option<String>,
}

impl Caller {
    /// The actor for a request whose body may name a `user_id`: in development it
    /// wins; with a token it must be the token's own.
    pub fn with_body_user(self, body_user_id: Option<&str>) -> Result<Actor, ApiError> {
        match (body_user_id, self.expires_at) {
            (None, _) => Ok(self.actor),
            (Some(raw), Some(_)) if raw == self.actor.user_id.as_str() => Ok(self.actor),
            (Some(_), Some(_)) => {
                Err(ApiError::Forbidden("user_id does not match the token".to_owned()))
            }
            (Some(raw), None) => {
                let user = UserId::parse(raw)?;
                tracing::Span::current().record("user", user.as_str());
                Ok(Actor::new(user, self.actor.roles).with_correlation(self.actor.correlation_id))
            }
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// When the caller's token expires (`None` without authentication).
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    pub fn is_authenticated(&self) -> bool {
        self.expires_at.is_some()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = Query::<IdentityQuery>::try_from_uri(&parts.uri).ok().map(|q| q.0);
        // The request id (set or propagated by the middleware) follows the
        // actor into the events its changes produce.
        let correlation = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(CorrelationId::new);
        let caller = Self::identify(parts, state, query)?;
        tracing::Span::current().record("user", caller.actor.user_id.as_str());
        Ok(Self { actor: caller.actor.with_correlation(correlation), ..caller })
    }
}

impl Caller {
    fn identify(
        parts: &Parts,
        state: &AppState,
        query: Option<IdentityQuery>,
    ) -> Result<Self, ApiError> {
        if let Some(verifier) = &state.auth {
            let bearer = parts
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(|t| t.trim().to_owned());
            let token = bearer
                .or_else(|| query.and_then(|q| q.token))
                .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".to_owned()))?;
            let verified = verifier.verify(&token).map_err(|reason| {
                tracing::debug!(%reason, "token refused");
                ApiError::Unauthorized("the token is invalid or expired".to_owned())
            })?;
            return Ok(Self { actor: verified.actor, expires_at: Some(verified.expires_at) });
        }
        let from_query = query.and_then(|q| q.user_id);
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
        Ok(Self { actor: Actor::new(user_id, roles), expires_at: None })
    }
}
