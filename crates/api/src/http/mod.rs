//! The HTTP surface: the router, its middleware stack and the handlers.

pub use crate::edge::{error, extract};
pub mod identity;
pub mod openapi;
pub mod origin;
pub mod routes;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::{Extension, Router, middleware};
use tower::{Layer, ServiceBuilder};
use tower_http::LatencyUnit;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::settings::{AuthMode, Settings};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, each registered with its OpenAPI operation: a handler without a
/// `#[utoipa::path]` cannot be added here, so the router and `/openapi.json`
/// never disagree. (`routes!` groups handlers of one path.)
pub fn routes() -> OpenApiRouter<AppState> {
    use crate::{legacy, ws};
    use routes::{docs, health, messages, offers, reactions, reads, rooms, search, users};

    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(crate::metrics::scrape::scrape))
        .routes(routes!(rooms::list, rooms::create))
        .routes(routes!(rooms::get, rooms::update, rooms::delete))
        .routes(routes!(rooms::users))
        .routes(routes!(rooms::add_member))
        .routes(routes!(rooms::remove_member))
        .routes(routes!(users::presence))
        .routes(routes!(ws::upgrade))
        .routes(routes!(ws::upgrade_inbox))
        .routes(routes!(messages::history, messages::post))
        .routes(routes!(search::in_room))
        .routes(routes!(search::everywhere))
        .routes(routes!(messages::get, messages::edit, messages::delete))
        .routes(routes!(reactions::add, reactions::remove))
        .routes(routes!(reactions::list))
        .routes(routes!(reactions::versions))
        .routes(routes!(offers::list, offers::post))
        .routes(routes!(offers::get))
        .routes(routes!(offers::accept))
        .routes(routes!(offers::decline))
        .routes(routes!(offers::withdraw))
        .routes(routes!(offers::counter))
        .routes(routes!(reads::mark_read))
        .routes(routes!(reads::reads))
        .routes(routes!(reads::inbox))
        .routes(routes!(legacy::socket::upgrade))
        .routes(routes!(legacy::routes::history, legacy::routes::clear))
        .routes(routes!(legacy::routes::participants))
        .routes(routes!(legacy::routes::unread, legacy::routes::mark_read))
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::swagger_ui))
        .routes(routes!(docs::redoc))
        .routes(routes!(docs::asset))
        .routes(routes!(crate::web::index))
        .routes(routes!(crate::web::asset))
}

/// The OpenAPI description of [`routes`] as an instance in `auth` mode serves
/// it, with the shared conventions.
pub fn openapi(auth: AuthMode) -> utoipa::openapi::OpenApi {
    let mut api = routes().into_openapi();
    openapi::apply_conventions(&mut api, auth);
    api
}

/// The whole HTTP application: routes, middleware and the trailing-slash rule
/// (`/rooms` and `/rooms/` are the same route).
pub fn app(state: AppState, settings: &Settings) -> NormalizePath<Router> {
    let metrics = state.metrics.clone();
    let limits = state.limits.clone();
    let (router, mut api) = routes().split_for_parts();
    let secured = identity::Secured::from_description(&api);
    // The served description says what this instance accepts.
    openapi::apply_conventions(&mut api, settings.effective_auth_mode());
    // Start-up: the description is made of static parts and always serializes.
    let spec = serde_json::to_vec(&api).expect("the OpenAPI description serializes");
    let router = router
        // After routing (it needs the route's template), for matched routes only.
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), secured),
            identity::require_identity,
        ))
        .layer(Extension(routes::docs::SpecJson(spec.into())))
        .fallback(error::route_not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(metrics, crate::metrics::track))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                        .on_response(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(LatencyUnit::Millis),
                        ),
                )
                .layer(middleware::from_fn_with_state((), error::render_errors))
                .layer(cors(settings))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    settings.request_timeout(),
                ))
                // Innermost, so a 429 still gets CORS headers and the error body.
                .layer(middleware::from_fn_with_state(limits, crate::limits::limit_requests)),
        );
    NormalizePathLayer::trim_trailing_slash().layer(router)
}

/// The span every log line of a request is written in. `user` is recorded by
/// the `Caller` extractor and `room` where a path names one.
fn request_span(request: &Request) -> tracing::Span {
    let request_id =
        request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        route = route.unwrap_or("-"),
        request_id = %request_id,
        user = tracing::field::Empty,
        room = tracing::field::Empty,
    )
}

fn cors(settings: &Settings) -> CorsLayer {
    let origins = match settings.cors_origin_list() {
        None => AllowOrigin::from(Any),
        Some(list) => AllowOrigin::list(
            list.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect::<Vec<_>>(),
        ),
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(Any)
        .expose_headers([REQUEST_ID, HeaderName::from_static("location")])
}
