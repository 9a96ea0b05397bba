//! Who is calling. With authentication required, a JWT from
//! `Authorization: Bearer` or `?token=` (browsers cannot set socket headers)
//! names the caller, and a `user_id` in a body or frame must match it. With it
//! disabled (development) the caller is who it says it is: the body's `user_id`,
//! else `?user_id=`, else `X-User-Id`, else `anonymous`; `X-User-Roles` declares roles.
//! [`require_identity`] holds every operation that takes an identity to a valid one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{FromRequestParts, MatchedPath, Query, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chat_domain::{Actor, CorrelationId, Role, UserId};
use serde::Deserialize;

use super::error::ApiError;
use crate::edge::claimed_actor;
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
        self.claiming("user_id", body_user_id)
    }

    /// The actor for a request that claims to be `claimed` in the field `field`
    /// ([`claimed_actor`]: the rule every transport shares).
    pub fn claiming(&self, field: &'static str, claimed: Option<&str>) -> Result<Actor, ApiError> {
        let actor = claimed_actor(&self.actor, self.is_authenticated(), field, claimed)?;
        if claimed.is_some() {
            tracing::Span::current().record("user", actor.user_id.as_str());
        }
        Ok(actor)
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
        // A malformed X-User-Id is refused even where `?user_id=` wins over
        // it, and one that is not visible ASCII rather than taken for nobody
        // (browsers cannot send other text in headers).
        let from_header = match parts.headers.get("x-user-id") {
            Some(value) => Some(UserId::parse(value.to_str().map_err(|_| {
                ApiError::Validation(
                    "user_id: X-User-Id must be ASCII (`user_id` in the body or query takes any name)"
                        .to_owned(),
                )
            })?)?),
            None => None,
        };
        let from_query =
            query.and_then(|q| q.user_id).map(|raw| UserId::parse(&raw)).transpose()?;
        let user_id = from_query.or(from_header).unwrap_or_else(UserId::anonymous);
        let roles = parts
            .headers
            .get("x-user-roles")
            .and_then(|v| v.to_str().ok())
            .map(|raw| raw.split(',').filter_map(Role::parse).collect())
            .unwrap_or_default();
        Ok(Self { actor: Actor::new(user_id, roles), expires_at: None })
    }
}

/// The operations (method, path template) that take the caller's identity:
/// those the handlers' descriptions do not declare public (`security(())`).
#[derive(Clone, Default)]
pub struct Secured(Arc<HashSet<(String, String)>>);

impl Secured {
    /// From the description as collected, before the conventions of a mode.
    pub fn from_description(api: &utoipa::openapi::OpenApi) -> Self {
        let mut secured = HashSet::new();
        for (path, item) in &api.paths.paths {
            let operations = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ];
            for (method, operation) in operations {
                if operation.as_ref().is_some_and(|o| o.security.is_none()) {
                    secured.insert((method.to_owned(), path.clone()));
                }
            }
        }
        Self(Arc::new(secured))
    }

    fn contains(&self, method: &str, path: &str) -> bool {
        self.0.contains(&(method.to_owned(), path.to_owned()))
    }
}

/// A request to an operation that the description says takes an identity gets
/// it checked — a valid token with authentication required, a valid declared
/// identity without — even where the handler never asks who calls: what the
/// description says is what is enforced.
pub async fn require_identity(
    State((state, secured)): State<(AppState, Secured)>,
    request: Request,
    next: Next,
) -> Response {
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let needs = matched.is_some_and(|path| secured.contains(request.method().as_str(), &path));
    if !needs {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if let Err(refused) = Caller::from_request_parts(&mut parts, &state).await {
        return refused.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}
