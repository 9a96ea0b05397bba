//! The middleware that counts and times every HTTP request by route template
//! (`/rooms/{room_id}`, never the raw path, so the label set stays bounded)
//! and status, and counts error responses by their JSON error code.

use std::time::Instant;

use ::metrics::Label;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use super::{Metrics, names};
use crate::edge::error::RenderedCode;

pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    let labels = vec![
        Label::new("method", method),
        Label::new("route", route),
        Label::new("status", response.status().as_u16().to_string()),
    ];
    metrics.counter(names::HTTP_REQUESTS, labels.clone()).increment(1);
    metrics.histogram(names::HTTP_DURATION, labels).record(started.elapsed().as_secs_f64());
    if let Some(RenderedCode(code)) = response.extensions().get::<RenderedCode>() {
        metrics.error("http", code.as_str());
    }
    response
}

/// The method as a label; anything unusual is `other` (bounded label values).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
