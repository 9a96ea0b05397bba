//! The API's own description and the pages that show it: `/openapi.json`,
//! Swagger UI at `/docs` and ReDoc at `/redoc`, with their scripts and styles
//! compiled into the binary so they work without internet access.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::http::error::ApiError;
use crate::http::openapi::errors::NotFound;

/// The serialized description, made once at start-up.
#[derive(Clone)]
pub struct SpecJson(pub Bytes);

/// A vendored file: name, content type, bytes.
type Asset = (&'static str, &'static str, &'static [u8]);

const ASSETS: &[Asset] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "swagger-initializer.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-initializer.js"),
    ),
    // Served from `REDOC_OFFLINE` (below).
    ("redoc.standalone.js", "text/javascript; charset=utf-8", &[]),
];

/// ReDoc's footer ("API docs by Redocly") shows a logo fetched from Redocly's
/// CDN, the bundle's only request to another host. The vendored file stays
/// byte-for-byte the npm one; what is served has that image swapped for an
/// empty one, so the page works, and stays silent, with no internet access.
const REDOC_CDN_LOGO: &str = "https://cdn.redoc.ly/redoc/logo-mini.svg";
const EMPTY_IMAGE: &str = "data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E";

static REDOC_OFFLINE: std::sync::LazyLock<Bytes> = std::sync::LazyLock::new(|| {
    let bundle = include_str!("../../../assets/redoc/redoc.standalone.js");
    Bytes::from(bundle.replace(REDOC_CDN_LOGO, EMPTY_IMAGE))
});

/// The OpenAPI description
///
/// This document: OpenAPI 3.1, generated from the service's code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = "documentation",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(spec): Extension<SpecJson>) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], spec.0).into_response()
}

/// Swagger UI
///
/// The description as an interactive page (try requests from the browser).
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "swaggerUi",
    tag = "documentation",
    security(()),
    responses((status = 200, description = "An HTML page.", content_type = "text/html", body = String))
)]
pub async fn swagger_ui() -> Html<&'static str> {
    Html(include_str!("../../../assets/swagger-ui/index.html"))
}

/// ReDoc
///
/// The description as a reference page.
#[utoipa::path(
    get,
    path = "/redoc",
    operation_id = "redoc",
    tag = "documentation",
    security(()),
    responses((status = 200, description = "An HTML page.", content_type = "text/html", body = String))
)]
pub async fn redoc() -> Html<&'static str> {
    Html(include_str!("../../../assets/redoc/index.html"))
}

/// A script or style of the documentation pages
#[utoipa::path(
    get,
    path = "/docs/assets/{file}",
    operation_id = "getDocsAsset",
    tag = "documentation",
    security(()),
    params(("file" = String, Path, description = "One of the pages' files.", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file.", content((String = "text/javascript"), (String = "text/css"))),
        (status = 404, response = NotFound),
    )
)]
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (name, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no documentation file {file:?}")))?;
    let body = match *name {
        "redoc.standalone.js" => REDOC_OFFLINE.clone(),
        _ => Bytes::from_static(body),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        body,
    )
        .into_response())
}
