//! What holds for every operation, added once after the routes are collected,
//! for the authentication mode the instance runs in: its security (a token, or
//! the declared `X-User-Id`), the text rules, the socket handshake, `x-request-id`
//! and the errors any route can answer with (401 with a token, 408, 429, 500).

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Components, Header, OpenApi, Ref, RefOr, Required, Response};

use super::rules::{self, Rule};
use crate::settings::AuthMode;

const REQUEST_ID: &str = "x-request-id";
pub const BEARER: &str = "bearer";
/// The token in `?token=`, for clients that cannot set headers (browsers' sockets).
pub const TOKEN_QUERY: &str = "tokenQuery";

/// Body fields and the rule the service checks them by: (component, property, rule).
const BODY_RULES: &[(&str, &str, Rule)] = &[
    ("CreateRoom", "name", rules::ROOM_NAME),
    ("CreateRoom", "description", rules::DESCRIPTION),
    ("CreateRoom", "members", rules::USER_ID),
    ("PatchRoom", "name", rules::ROOM_NAME),
    ("PatchRoom", "description", rules::DESCRIPTION),
    ("NewMember", "user_id", rules::USER_ID),
    ("PostMessage", "content", rules::CONTENT),
    ("PostMessage", "client_msg_id", rules::CLIENT_MSG_ID),
    ("PostMessage", "user_id", rules::USER_ID),
    ("EditMessage", "content", rules::CONTENT),
    ("EditMessage", "user_id", rules::USER_ID),
    ("MarkRead", "user_id", rules::USER_ID),
    ("ReactAs", "user_id", rules::USER_ID),
    ("PostOffer", "user_id", rules::USER_ID),
    ("PostOffer", "to_user_id", rules::USER_ID),
    ("PostOffer", "item_id", rules::ITEM_ID),
    ("PostOffer", "client_msg_id", rules::CLIENT_MSG_ID),
    ("CounterOffer", "user_id", rules::USER_ID),
    ("Answer", "user_id", rules::USER_ID),
];

/// Adds the conventions to a collected description. Operations that declare
/// `security(())` need no identity; every other one is described as the
/// running mode takes it: with a token required, a token (header or query);
/// with authentication disabled, no security and an optional `X-User-Id`.
pub fn apply(api: &mut OpenApi, auth: AuthMode) {
    let components = api.components.get_or_insert_with(Components::new);
    if auth == AuthMode::Required {
        add_token_schemes(components);
    }
    constrain_bodies(components);
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
            apply_to_operation(operation, auth);
        }
    }
}

fn add_token_schemes(components: &mut Components) {
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT whose `sub` is the user id; `exp` required, optional `roles` (`admin`, \
                     `moderator`), and `iss`/`aud` when the service is configured with them. HS256 \
                     with `JWT_SECRET`, or RS256/ES256 with `JWT_PUBLIC_KEY`.",
                ))
                .build(),
        ),
    );
    components.security_schemes.insert(
        TOKEN_QUERY.to_owned(),
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "token",
            "The same JWT in the query, for clients that cannot set `Authorization` (browsers \
             opening a socket).",
        ))),
    );
}

fn constrain_bodies(components: &mut Components) {
    for (component, property, rule) in BODY_RULES {
        let field = match components.schemas.get_mut(*component) {
            Some(RefOr::T(Schema::Object(object))) => object.properties.get_mut(*property),
            _ => None,
        };
        if let Some(field) = field {
            rules::constrain(field, *rule);
        }
    }
}

/// `GET /me/rooms`'s operation id: its cursor is not an id.
const INBOX_OPERATION: &str = "listMyRooms";

/// `/health`'s operation id: the one operation no rate limit counts.
const HEALTH_OPERATION: &str = "health";

fn apply_to_operation(operation: &mut Operation, auth: AuthMode) {
    let needs_identity = match &operation.security {
        None => true,
        Some(requirements) => !requirements.iter().all(|r| *r == SecurityRequirement::default()),
    };
    // A socket operation answers 101 when it switches protocols.
    let socket = operation.responses.responses.contains_key("101");
    let required = auth == AuthMode::Required;
    operation.security = (needs_identity && required).then(|| {
        vec![
            SecurityRequirement::new::<_, _, &str>(BEARER, []),
            SecurityRequirement::new::<_, _, &str>(TOKEN_QUERY, []),
        ]
    });
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    // `?token=` is the security scheme's (or ignored); a socket's `?user_id=`
    // names the caller only without authentication.
    parameters.retain(|p| {
        let query = p.parameter_in == ParameterIn::Query;
        !(query && (p.name == "token" || (socket && required && p.name == "user_id")))
    });
    if needs_identity && !required {
        parameters.push(header(
            "X-User-Id",
            false,
            "Who the caller is (authentication disabled); without it, and without a `user_id` in \
             the body or query, the caller is `anonymous`.",
            rules::string(rules::HEADER_USER_ID),
        ));
        parameters.push(header(
            "X-User-Roles",
            false,
            "Roles the caller declares (authentication disabled): `admin`, `moderator`, \
             comma-separated; others are ignored.",
            ObjectBuilder::new().schema_type(Type::String).build(),
        ));
    }
    if socket {
        add_handshake(parameters);
    }
    let inbox = operation.operation_id.as_deref() == Some(INBOX_OPERATION);
    for parameter in parameters.iter_mut() {
        constrain_parameter(parameter, socket, required, inbox);
    }
    parameters.push(header(
        REQUEST_ID,
        false,
        "Correlates logs and events; echoed back (a new one when absent).",
        string(),
    ));
    let responses = &mut operation.responses.responses;
    if needs_identity && required {
        responses.entry("401".to_owned()).or_insert_with(|| reference("Unauthorized"));
    }
    if needs_identity {
        // A declared identity (X-User-Id, `user_id`) that is not a valid user id.
        responses.entry("422".to_owned()).or_insert_with(|| reference("ValidationFailed"));
    }
    if socket {
        responses.entry("400".to_owned()).or_insert_with(|| reference("BadRequest"));
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

/// The WebSocket handshake (RFC 6455): without it a socket operation answers 400.
fn add_handshake(parameters: &mut Vec<Parameter>) {
    let fixed = |value: &str| {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value])).build()
    };
    parameters.push(header(
        "Connection",
        true,
        "`Upgrade`: the WebSocket handshake.",
        fixed("Upgrade"),
    ));
    parameters.push(header("Upgrade", true, "`websocket`.", fixed("websocket")));
    parameters.push(header(
        "Sec-WebSocket-Version",
        true,
        "`13`, the protocol's version.",
        fixed("13"),
    ));
    // Any value is taken (its hash comes back in `Sec-WebSocket-Accept`).
    parameters.push(header(
        "Sec-WebSocket-Key",
        true,
        "A nonce: 16 random bytes in base64.",
        string(),
    ));
}

/// The text rule of a parameter, where the service checks one.
fn constrain_parameter(parameter: &mut Parameter, socket: bool, required: bool, inbox: bool) {
    let rule = match (&parameter.parameter_in, parameter.name.as_str()) {
        (ParameterIn::Path, "user_id" | "other_user_id") | (ParameterIn::Query, "current_user") => {
            rules::USER_ID
        }
        // The caller on a socket; without authentication `?user_id=` names
        // the caller everywhere (in a search it also filters); with a token a
        // search filter is taken as it is.
        (ParameterIn::Query, "user_id") if socket || !required => rules::USER_ID,
        // The conversation socket takes any item at the upgrade (its frames are checked).
        (ParameterIn::Path, "item_id") if !socket => rules::ITEM_ID,
        (ParameterIn::Query, "item_id") => rules::ITEM_ID,
        (ParameterIn::Query, "q") => rules::SEARCH_QUERY,
        (ParameterIn::Path, "key") => rules::REACTION_KEY,
        // The inbox pages by activity, and its cursor says when as well as which room.
        (ParameterIn::Query, "cursor") if inbox => rules::INBOX_CURSOR,
        (ParameterIn::Query, "cursor") => rules::CURSOR,
        // A socket's room: its id, and in development also a name.
        (ParameterIn::Path, "room_id") if socket && required => rules::ROOM_ID_TEXT,
        (ParameterIn::Path, "room_id") if socket => rules::ROOM_NAME,
        _ => return,
    };
    if let Some(schema) = &mut parameter.schema {
        rules::constrain(schema, rule);
    }
}

fn header(name: &str, required: bool, description: &str, schema: Object) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(schema))
        .build()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule whose component or property was renamed would silently stop applying.
    #[test]
    fn every_body_rule_names_a_field_of_the_description() {
        let api = crate::http::openapi(AuthMode::Disabled);
        let schemas = &api.components.as_ref().unwrap().schemas;
        for (component, property, _) in BODY_RULES {
            let Some(RefOr::T(Schema::Object(object))) = schemas.get(*component) else {
                panic!("{component} is not an object schema of the description");
            };
            assert!(object.properties.contains_key(*property), "{component}.{property}");
        }
    }
}
