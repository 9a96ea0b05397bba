//! What holds for every operation, added once after the routes are collected:
//! the security schemes, the `x-request-id` header, and the errors any route can
//! answer with (401 where identity is checked, 408 from the time-out, 500).

use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Components, Header, OpenApi, Ref, RefOr, Required, Response};

const REQUEST_ID: &str = "x-request-id";
pub const BEARER: &str = "bearer";
pub const USER_HEADER: &str = "userHeader";

/// Adds the conventions to a collected description. Operations that declare
/// `security(())` need no identity; every other one accepts either scheme.
pub fn apply(api: &mut OpenApi) {
    let components = api.components.get_or_insert_with(Components::new);
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "`AUTH_MODE=required`: a JWT whose `sub` is the user id; `exp` required, optional \
                     `roles` (`admin`, `moderator`). HS256 with `JWT_SECRET`, or RS256/ES256 with \
                     `JWT_PUBLIC_KEY`.",
                ))
                .build(),
        ),
    );
    components.security_schemes.insert(
        USER_HEADER.to_owned(),
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-User-Id",
            "Authentication disabled (development): who the caller is; without it (and without a \
             `user_id` in the body or query) the caller is `anonymous`.",
        ))),
    );
    for response in components.responses.values_mut() {
        if let RefOr::T(response) = response {
            add_request_id_header(response);
        }
    }
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            apply_to_operation(operation);
        }
    }
}

/// `/health`'s operation id: the one operation no rate limit counts.
const HEALTH_OPERATION: &str = "health";

fn apply_to_operation(operation: &mut Operation) {
    let needs_identity = match &operation.security {
        None => {
            operation.security = Some(vec![
                SecurityRequirement::new::<_, _, &str>(BEARER, []),
                SecurityRequirement::new::<_, _, &str>(USER_HEADER, []),
            ]);
            true
        }
        Some(requirements) => !requirements.iter().all(|r| *r == SecurityRequirement::default()),
    };
    operation.parameters.get_or_insert_with(Vec::new).push(
        ParameterBuilder::new()
            .name(REQUEST_ID)
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some("Correlates logs and events; echoed back (a new one when absent)."))
            .schema(Some(string()))
            .build(),
    );
    let responses = &mut operation.responses.responses;
    if needs_identity {
        responses.entry("401".to_owned()).or_insert_with(|| reference("Unauthorized"));
        // A declared identity (X-User-Id, `user_id`) that is not a valid user id.
        responses.entry("422".to_owned()).or_insert_with(|| reference("ValidationFailed"));
    }
    responses.entry("408".to_owned()).or_insert_with(|| reference("Timeout"));
    // Every path but /health counts toward a rate limit (see `crate::limits`).
    if operation.operation_id.as_deref() != Some(HEALTH_OPERATION) {
        responses.entry("429".to_owned()).or_insert_with(|| reference("RateLimited"));
    }
    responses.entry("500".to_owned()).or_insert_with(|| reference("Internal"));
    for response in responses.values_mut() {
        if let RefOr::T(response) = response {
            add_request_id_header(response);
        }
    }
}

fn string() -> Object {
    ObjectBuilder::new().schema_type(Type::String).build()
}

fn reference(name: &str) -> RefOr<Response> {
    RefOr::Ref(Ref::from_response_name(name))
}

fn add_request_id_header(response: &mut Response) {
    let mut header = Header::new(string());
    header.description = Some("The request's id: the caller's, or a new one.".to_owned());
    response.headers.entry(REQUEST_ID.to_owned()).or_insert(header);
}
