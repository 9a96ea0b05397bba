//! The built-in chat page: plain HTML, CSS and JavaScript compiled into the
//! binary and served at `/` and `/ui/{file}`, a reference client for the API.
//! Every response carries a strict Content-Security-Policy (no inline script).

mod assets;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use assets::{ASSETS, Asset};

use crate::edge::error::ApiError;

/// Scripts, styles and images only from this origin, sockets and fetches only
/// to it, no plugins, no framing, no `<base>` tricks and no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The chat page
///
/// The built-in web client (HTML). `/ui/…` holds its files.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "webPage",
    tag = "web page",
    security(()),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "Not modified (`If-None-Match` matched the ETag)."),
    )
)]
pub async fn index(headers: HeaderMap) -> Response {
    serve(&assets::INDEX, &headers)
}

/// A file of the chat page
#[utoipa::path(
    get,
    path = "/ui/{file}",
    operation_id = "webPageFile",
    tag = "web page",
    security(()),
    params(("file" = String, Path, description = "One of the page's files.", example = "app.js")),
    responses(
        (status = 200, description = "The file.", content((String = "text/javascript"), (String = "text/css"), (String = "image/svg+xml"))),
        (status = 304, description = "Not modified (`If-None-Match` matched the ETag)."),
        (status = 404, response = crate::edge::error_responses::NotFound),
    )
)]
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.file == file) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::NotFound(format!("no asset /ui/{file}")).into_response(),
    }
}

/// The asset, or 304 when the browser already has these bytes. `no-cache` makes
/// browsers revalidate each time, so a new binary's page is never stale, while
/// the ETag keeps repeat loads to an empty 304.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag();
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
