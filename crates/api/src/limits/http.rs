//! Middleware: REST requests per client address. Health checks (orchestrators
//! poll them) and socket upgrades (limited on their own) are not counted.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Limits, client_address};
use crate::http::error::ApiError;

pub async fn limit_requests(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &limits.requests else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let exempt = path == "/health" || path.starts_with("/health/") || path.starts_with("/ws/");
    if !exempt
        && let Some(address) =
            client_address(request.headers(), request.extensions(), limits.trust_forwarded_for)
        && let Err(retry_after) = limiter.check(&address)
    {
        tracing::debug!(%address, "request rate limit reached");
        return ApiError::RateLimited(retry_after).into_response();
    }
    next.run(request).await
}
