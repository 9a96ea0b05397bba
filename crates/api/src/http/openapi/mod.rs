//! The OpenAPI 3.1 description of the service, generated from the code: the
//! handlers' `#[utoipa::path]` attributes (collected by the router itself, see
//! `http::routes`), the schemas here, and the conventions every route shares.

mod conventions;
pub use crate::edge::error_responses as errors;
pub mod response_sets;
mod rules;
pub mod schemas;
pub mod websocket;

use utoipa::OpenApi;

/// What the handlers do not say: the title, the tags, the shared components.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "GrainTrade Chat Room",
        description = "Real-time chat for GrainTrade's buyers and sellers: rooms, messages with a per-room `seq`, \
history paging, search, and WebSocket rooms.\n\n\
Conventions: all bodies are JSON; every path works with and without a trailing slash; every response carries \
`x-request-id` (the caller's, else a new one); every error has the body `ErrorBody` \
(`{\"error\": {\"code\", \"message\", \"request_id\"}}`) with the status of its code.\n\n\
Identity: with `AUTH_MODE=required` (production) a JWT (`Authorization: Bearer`, or `?token=` on sockets) names \
the caller; a `user_id` in a body that is not the token's is refused (403). With authentication disabled \
(development) the caller is the body's `user_id`, else `?user_id=`, else `X-User-Id`, else `anonymous`, and \
`X-User-Roles` (`admin`, `moderator`) declares roles.",
        license(name = "Apache-2.0"),
    ),
    tags(
        (name = "rooms", description = "Create, list, change and delete rooms; members and presence."),
        (name = "users", description = "Users across rooms: whether they are online."),
        (name = "messages", description = "Post, page through, read, edit and delete messages."),
        (name = "offers", description = "Structured trade offers in a room: make, accept, decline, counter, withdraw; they expire by themselves."),
        (name = "search", description = "Full-text search of message history."),
        (name = "websocket", description = "The real-time socket of a room (frames: `ClientFrame`, `ServerFrame`)."),
        (name = "graintrade", description = "The older protocol of GrainTrade's deployed frontend and notifications service, on item conversations."),
        (name = "health", description = "Liveness and readiness."),
        (name = "documentation", description = "This description and the pages that show it."),
    ),
    components(
        schemas(
            errors::ErrorBody,
            websocket::ClientFrame,
            websocket::ServerFrame,
            websocket::LegacyClientFrame,
            websocket::LegacyServerFrame,
        ),
        responses(
            errors::BadRequest,
            errors::Unauthorized,
            errors::Forbidden,
            errors::NotFound,
            errors::Conflict,
            errors::PayloadTooLarge,
            errors::UnsupportedMediaType,
            errors::ValidationFailed,
            errors::Timeout,
            errors::RateLimited,
            errors::Unavailable,
            errors::Internal,
        ),
    ),
)]
pub struct ApiDoc;

pub use conventions::apply as apply_conventions;
