//! Error responses that several operations share as a whole, so each route's
//! `#[utoipa::path]` names one set instead of restating every status; each
//! entry is a reference to the reusable response of `errors`, as a
//! `(status = …, response = …)` entry would be.

use utoipa::IntoResponses;

use super::errors::{
    BadRequest, Conflict, Forbidden, NotFound, Unavailable, UnsupportedMediaType, ValidationFailed,
};

/// The errors of answering an offer (accept, decline, withdraw): an optional
/// JSON body, a check of who answers, and the offer's status.
#[derive(IntoResponses)]
pub enum OfferAnswerErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    #[response(status = 415)]
    UnsupportedMediaType(#[ref_response] UnsupportedMediaType),
    #[response(status = 422)]
    ValidationFailed(#[ref_response] ValidationFailed),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// The errors of adding or taking back a reaction: an optional JSON body, a
/// check of who reacts, and the message and key.
#[derive(IntoResponses)]
pub enum ReactionErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 422)]
    ValidationFailed(#[ref_response] ValidationFailed),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}
