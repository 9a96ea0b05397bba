//! The socket `Origin` check: browsers send `Origin` on upgrades; with
//! `CORS_ORIGINS` set only those origins may open a socket (403 otherwise).
//! Clients that send no `Origin` (services, tools) are not browsers and pass.

use axum::http::HeaderMap;
use axum::http::header::ORIGIN;

use super::error::ApiError;
use crate::state::AppState;

pub fn check(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let (Some(allowed), Some(origin)) = (&state.origins, headers.get(ORIGIN)) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("origin {origin:?} may not open a socket")))
    }
}
