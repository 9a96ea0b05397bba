//! Offers: make one in a room, answer it (accept, decline, withdraw, counter),
//! read one, list a room's. Rules live in the domain; this shapes the JSON.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chat_domain::offer::{Offer, OfferAnswer, OfferId, TermsInput};
use chat_domain::service::{CounterInput, OfferInput};
use chat_domain::{Limit, Message};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, room_id};
use crate::http::identity::Caller;
use crate::http::openapi::errors::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unavailable, UnsupportedMediaType,
    ValidationFailed,
};
use crate::http::openapi::response_sets::OfferAnswerErrors;
use crate::http::openapi::schemas;
use crate::state::AppState;

/// A body with the terms of an offer, each a string (decimals too: never a
/// JSON number), and `$extra` fields. One flat struct per body, so its schema
/// lists every field (a flattened one would be an `allOf`).
macro_rules! with_terms {
    ($(#[$meta:meta])* $name:ident { $($extra:tt)* }) => {
        #[derive(Deserialize, ToSchema, Default)]
        $(#[$meta])*
        pub struct $name {
    /// `buy` or `sell`: which way the author trades.
    #[schema(value_type = Option<schemas::Side>)]
    side: Option<Value>,
    /// What is traded, 1–100 characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    commodity: Option<Value>,
    /// A decimal string, > 0, at most 4 decimals (`"250.5"`).
    #[schema(value_type = Option<String>, pattern = r"^[0-9]+(\.[0-9]{1,4})?$")]
    quantity: Option<Value>,
    /// `t`, `kg` or `bu`.
    #[schema(value_type = Option<schemas::Unit>)]
    unit: Option<Value>,
    /// Price per unit: a decimal string, > 0, at most 4 decimals (`"210"`).
    #[schema(value_type = Option<String>, pattern = r"^[0-9]+(\.[0-9]{1,4})?$")]
    price: Option<Value>,
    /// ISO 4217, three capitals (`UAH`, `USD`, `EUR`).
    #[schema(value_type = Option<String>, pattern = "^[A-Z]{3}$")]
    currency: Option<Value>,
    /// An Incoterms 2020 rule (`FOB`, `CIF`, …).
    #[schema(value_type = Option<String>)]
    incoterm: Option<Value>,
    /// Where the goods are handed over, 1–200 characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200)]
    delivery_place: Option<Value>,
    /// First delivery day, `YYYY-MM-DD`.
    #[schema(value_type = Option<String>, format = Date)]
    delivery_from: Option<Value>,
    /// Last delivery day, `YYYY-MM-DD`, not before `delivery_from`.
    #[schema(value_type = Option<String>, format = Date)]
    delivery_to: Option<Value>,
    /// Free words, 1–1000 characters.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1000)]
    note: Option<Value>,
            $($extra)*
        }

        impl $name {
            /// Each term as text; a term sent as another JSON type (a number for
            /// a price, say) is refused naming it: decimals travel as strings only.
            fn terms(&mut self) -> Result<TermsInput, ApiError> {
                Ok(TermsInput {
                    side: text("side", self.side.take())?,
                    commodity: text("commodity", self.commodity.take())?,
                    quantity: text("quantity", self.quantity.take())?,
                    unit: text("unit", self.unit.take())?,
                    price: text("price", self.price.take())?,
                    currency: text("currency", self.currency.take())?,
                    incoterm: text("incoterm", self.incoterm.take())?,
                    delivery_place: text("delivery_place", self.delivery_place.take())?,
                    delivery_from: text("delivery_from", self.delivery_from.take())?,
                    delivery_to: text("delivery_to", self.delivery_to.take())?,
                    note: text("note", self.note.take())?,
                })
            }
        }
    };
}

/// A JSON string (or null/absent) as text; anything else names `field`.
fn text(field: &str, value: Option<Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(_)) => Err(ApiError::Validation(format!(
            "{field}: must be a string (decimals are sent as strings, e.g. \"250.5\", never as numbers)"
        ))),
        Some(_) => Err(ApiError::Validation(format!("{field}: must be a string"))),
    }
}

with_terms!(
    /// A new offer: its terms and who may answer it.
    #[schema(example = json!({"side": "sell", "commodity": "wheat", "quantity": "250.5", "unit": "t",
    "price": "210", "currency": "UAH", "incoterm": "FOB", "delivery_place": "Odesa port",
    "expires_at": "2099-01-02T12:00:00Z", "to_user_id": "bob", "client_msg_id": "alice-offer-1"}))]
PostOffer {
    /// When it expires by itself (RFC 3339, in the future); none: it stays open.
    #[schema(value_type = Option<String>)]
    expires_at: Option<Value>,
    /// Address it to one user: only they may accept, decline or counter.
    #[schema(value_type = Option<String>)]
    to_user_id: Option<Value>,
    /// The GrainTrade item it is about.
    #[schema(value_type = Option<String>)]
    item_id: Option<Value>,
    /// Idempotency key of the offer's message (as for messages).
    #[schema(value_type = Option<String>)]
    client_msg_id: Option<Value>,
    /// The author, with authentication disabled; with a token it must be the token's `sub`.
    user_id: Option<String>,
});

with_terms!(
    /// A counter-offer: the terms that change (at least one); the others are copied.
    #[schema(example = json!({"price": "205", "user_id": "bob"}))]
    CounterOffer {
    /// A new expiry (RFC 3339, in the future); else the parent's.
    #[schema(value_type = Option<String>)]
    expires_at: Option<Value>,
    /// Who counters, with authentication disabled.
    user_id: Option<String>,
});

/// The optional body of accept, decline and withdraw.
#[derive(Deserialize, ToSchema, Default)]
#[schema(example = json!({"user_id": "bob"}))]
pub struct Answer {
    /// Who answers, with authentication disabled; with a token it must be the token's `sub`.
    user_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only offers of this status (as seen now: past `expires_at` is `expired`).
    #[param(value_type = Option<schemas::OfferStatus>)]
    status: Option<String>,
    /// Page size, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of a room's offers, newest first.
#[derive(Serialize, ToSchema)]
pub struct OfferList {
    #[schema(value_type = Vec<schemas::Offer>)]
    items: Vec<Offer>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// An offer id from the path; anything that is not a positive integer names none.
fn offer_id(raw: &str) -> Result<OfferId, ApiError> {
    raw.parse::<i64>()
        .ok()
        .and_then(|id| OfferId::new(id).ok())
        .ok_or_else(|| ApiError::NotFound(format!("offer {raw} not found")))
}

/// An optional JSON object body: none at all is the default; one that is sent
/// is read as strictly as any other.
fn optional_body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "expected a request body with `Content-Type: application/json`".to_owned(),
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if value.is_null() {
        // `null` is no body, as an empty one is.
        return Ok(T::default());
    }
    if !value.is_object() {
        return Err(ApiError::Validation("body: must be a JSON object".to_owned()));
    }
    serde_json::from_value(value).map_err(|e| ApiError::Validation(e.to_string()))
}

/// Make an offer
///
/// A new message of type `offer` in the room, carrying the offer (`offer`);
/// broadcast like any message, with an `offer_updated` frame and `offer_created`.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/offers",
    operation_id = "postOffer",
    tag = "offers",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1)),
    request_body = PostOffer,
    responses(
        (status = 201, description = "The offer's message, with `offer`.", body = schemas::Message,
            headers(("location" = String, description = "`/offers/{id}`"))),
        (status = 200, description = "An idempotent repeat (same user, room and `client_msg_id`): the original.",
            body = schemas::Message, headers(("location" = String, description = "`/offers/{id}`"))),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiJson(mut body): ApiJson<PostOffer>,
) -> Result<Response, ApiError> {
    let room = room_id(&raw_room)?;
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    let input = OfferInput {
        terms: body.terms()?,
        expires_at: text("expires_at", body.expires_at)?,
        to_user_id: text("to_user_id", body.to_user_id)?,
        item_id: text("item_id", body.item_id)?,
        client_msg_id: text("client_msg_id", body.client_msg_id)?,
    };
    let posted = state.chat.post_offer(&actor, room, input).await?;
    let status = if posted.is_new() { StatusCode::CREATED } else { StatusCode::OK };
    let message = posted.into_message();
    let location = message.offer.as_ref().map(|o| format!("/offers/{}", o.id)).unwrap_or_default();
    Ok((status, [(header::LOCATION, location)], Json(message)).into_response())
}

async fn answer(
    state: AppState,
    caller: Caller,
    raw_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    answer: OfferAnswer,
) -> Result<Json<Offer>, ApiError> {
    let id = offer_id(raw_id)?;
    let body: Answer = optional_body(headers, body)?;
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    Ok(Json(state.chat.answer_offer(&actor, id, answer).await?))
}

/// Accept an offer
///
/// Anyone in the room but its author (only `to_user_id` when set). Of
/// concurrent answers exactly one succeeds; the others get 409 naming the status.
#[utoipa::path(
    post,
    path = "/offers/{offer_id}/accept",
    operation_id = "acceptOffer",
    tag = "offers",
    params(("offer_id" = i64, Path, description = "The offer's id.", minimum = 1)),
    request_body(content = Option<Answer>, description = "Optional: who answers (authentication disabled)."),
    responses(
        (status = 200, description = "The offer, `accepted`.", body = schemas::Offer),
        OfferAnswerErrors,
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Offer>, ApiError> {
    answer(state, caller, &raw_id, &headers, &body, OfferAnswer::Accept).await
}

/// Decline an offer
///
/// As accept: anyone in the room but its author (only `to_user_id` when set).
#[utoipa::path(
    post,
    path = "/offers/{offer_id}/decline",
    operation_id = "declineOffer",
    tag = "offers",
    params(("offer_id" = i64, Path, description = "The offer's id.", minimum = 1)),
    request_body(content = Option<Answer>, description = "Optional: who answers (authentication disabled)."),
    responses(
        (status = 200, description = "The offer, `declined`.", body = schemas::Offer),
        OfferAnswerErrors,
    )
)]
pub async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Offer>, ApiError> {
    answer(state, caller, &raw_id, &headers, &body, OfferAnswer::Decline).await
}

/// Withdraw an offer
///
/// Its author only.
#[utoipa::path(
    post,
    path = "/offers/{offer_id}/withdraw",
    operation_id = "withdrawOffer",
    tag = "offers",
    params(("offer_id" = i64, Path, description = "The offer's id.", minimum = 1)),
    request_body(content = Option<Answer>, description = "Optional: who withdraws (authentication disabled)."),
    responses(
        (status = 200, description = "The offer, `withdrawn`.", body = schemas::Offer),
        OfferAnswerErrors,
    )
)]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Offer>, ApiError> {
    answer(state, caller, &raw_id, &headers, &body, OfferAnswer::Withdraw).await
}

/// Counter an offer
///
/// As accept; the offer becomes `countered` and a new open offer (a new
/// message, `parent_offer_id` set, the other terms copied, addressed to the
/// parent's author) is made.
#[utoipa::path(
    post,
    path = "/offers/{offer_id}/counter",
    operation_id = "counterOffer",
    tag = "offers",
    params(("offer_id" = i64, Path, description = "The offer's id.", minimum = 1)),
    request_body = CounterOffer,
    responses(
        (status = 201, description = "The new offer's message, with `offer`.", body = schemas::Message,
            headers(("location" = String, description = "`/offers/{id}` of the new offer"))),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn counter(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
    ApiJson(mut body): ApiJson<CounterOffer>,
) -> Result<Response, ApiError> {
    let id = offer_id(&raw_id)?;
    let actor = caller.with_body_user(body.user_id.as_deref())?;
    let input =
        CounterInput { terms: body.terms()?, expires_at: text("expires_at", body.expires_at)? };
    let message: Message = state.chat.counter_offer(&actor, id, input).await?;
    let location = message.offer.as_ref().map(|o| format!("/offers/{}", o.id)).unwrap_or_default();
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(message)).into_response())
}

/// Get an offer
#[utoipa::path(
    get,
    path = "/offers/{offer_id}",
    operation_id = "getOffer",
    tag = "offers",
    params(("offer_id" = i64, Path, description = "The offer's id.", minimum = 1)),
    responses(
        (status = 200, description = "The offer as it stands now.", body = schemas::Offer),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_id): Path<String>,
) -> Result<Json<Offer>, ApiError> {
    Ok(Json(state.chat.get_offer(caller.actor(), offer_id(&raw_id)?).await?))
}

/// List a room's offers
///
/// Newest first; `status` filters as a reader sees it now.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/offers",
    operation_id = "listOffers",
    tag = "offers",
    params(("room_id" = i64, Path, description = "The room's id.", minimum = 1), ListParams),
    responses(
        (status = 200, description = "A page of offers.", body = OfferList),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw_room): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<OfferList>, ApiError> {
    let room = room_id(&raw_room)?;
    let limit = params.limit.map(Limit::parse).transpose()?.unwrap_or_default();
    let page = state
        .chat
        .list_offers(
            caller.actor(),
            room,
            params.status.as_deref(),
            params.cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(Json(OfferList { items: page.items, next_cursor: page.next.map(|id| id.get().to_string()) }))
}
