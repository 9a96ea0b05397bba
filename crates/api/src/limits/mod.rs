//! The service's own rate limits at the edge: REST requests and new sockets per
//! client address, and open sockets per user. (Messages per user are a domain
//! rule, enforced by the chat service through its `RateLimiter` port.)

mod client_address;
mod http;
mod sockets;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Extensions, HeaderMap};
use chat_infra::limits::{KeyedLimiter, RateQuota};

pub use client_address::client_address;
pub use http::limit_requests;
pub use sockets::{SocketCounter, SocketSlot};

use crate::http::error::ApiError;
use crate::settings::Settings;

#[derive(Clone)]
pub struct Limits {
    /// REST requests per client address; `None`: off.
    pub requests: Option<Arc<KeyedLimiter<IpAddr>>>,
    /// New sockets per client address; `None`: off.
    pub connects: Option<Arc<KeyedLimiter<IpAddr>>>,
    /// Open sockets per user.
    pub sockets: SocketCounter,
    /// Read the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl Limits {
    pub fn from_settings(settings: &Settings) -> Self {
        let keyed = |rate, burst| {
            RateQuota::enabled(rate, burst).map(|quota| Arc::new(KeyedLimiter::new(quota)))
        };
        Self {
            requests: keyed(settings.rate_limit_http_per_second, settings.rate_limit_http_burst),
            connects: keyed(
                settings.rate_limit_ws_connects_per_second,
                settings.rate_limit_ws_connects_burst,
            ),
            sockets: SocketCounter::new(settings.ws_max_sockets_per_user),
            trust_forwarded_for: settings.trust_forwarded_for,
        }
    }
}

impl Limits {
    /// One more new socket from the caller's address, or 429.
    pub fn check_connect(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        self.spend(self.connects.as_deref(), headers, extensions, "socket connect")
    }

    /// One more REST request from the caller's address, or 429.
    pub fn check_request(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(), ApiError> {
        self.spend(self.requests.as_deref(), headers, extensions, "request")
    }

    /// A token from the caller's bucket in `limiter` (none: that limit is off;
    /// no known address: nothing to count).
    fn spend(
        &self,
        limiter: Option<&KeyedLimiter<IpAddr>>,
        headers: &HeaderMap,
        extensions: &Extensions,
        what: &'static str,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else { return Ok(()) };
        let Some(address) = client_address(headers, extensions, self.trust_forwarded_for) else {
            return Ok(());
        };
        limiter.check(&address).map_err(|wait| {
            tracing::debug!(%address, what, "rate limit reached");
            ApiError::RateLimited(wait)
        })
    }

    /// A place for one more socket of `user`, or 429 when they hold the most
    /// allowed (a socket must close before another opens).
    pub fn socket_slot(&self, user: &str) -> Result<SocketSlot, ApiError> {
        self.sockets.open(user).ok_or_else(|| {
            tracing::debug!(user, "open socket limit reached");
            ApiError::RateLimited(SOCKET_RETRY)
        })
    }
}

/// What `Retry-After` says to a user at the socket limit: there is no telling
/// when one of their sockets closes.
const SOCKET_RETRY: std::time::Duration = std::time::Duration::from_secs(5);
