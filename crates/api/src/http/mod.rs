//! The HTTP surface: the router, its middleware stack and the handlers.

pub mod error;
pub mod extract;
pub mod identity;
pub mod origin;
pub mod routes;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::routing::get;
use axum::{Router, middleware};
use tower::{Layer, ServiceBuilder};
use tower_http::LatencyUnit;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::settings::Settings;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application: routes, middleware and the trailing-slash rule
/// (`/rooms` and `/rooms/` are the same route).
pub fn app(state: AppState, settings: &Settings) -> NormalizePath<Router> {
    use routes::{health, messages, rooms, search};
    let metrics = state.metrics.clone();

    let router = Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/rooms", get(rooms::list).post(rooms::create))
        .route("/rooms/{room_id}", get(rooms::get).patch(rooms::update).delete(rooms::delete))
        .route("/rooms/{room_id}/users", get(rooms::users))
        .route("/rooms/{room_id}/members", axum::routing::post(rooms::add_member))
        .route("/rooms/{room_id}/members/{user_id}", axum::routing::delete(rooms::remove_member))
        .route("/ws/{room_id}", get(crate::ws::upgrade))
        .route("/rooms/{room_id}/messages", get(messages::history).post(messages::post))
        .route("/rooms/{room_id}/messages/search", get(search::in_room))
        .route("/messages/search", get(search::everywhere))
        .route("/ws/chat/{item_id}/{other_user_id}", get(crate::legacy::socket::upgrade))
        .route(
            "/chat/{item_id}/{other_user_id}/history",
            get(crate::legacy::routes::history).delete(crate::legacy::routes::clear),
        )
        .route("/chat/{item_id}/participants", get(crate::legacy::routes::participants))
        .route(
            "/chat/{item_id}/unread",
            get(crate::legacy::routes::unread).delete(crate::legacy::routes::mark_read),
        )
        .route(
            "/messages/{message_id}",
            get(messages::get).patch(messages::edit).delete(messages::delete),
        )
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
                )),
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
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(Any)
        .expose_headers([REQUEST_ID, HeaderName::from_static("location")])
}
