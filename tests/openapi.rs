//! The OpenAPI description against the real service: every route of the router
//! is described (and every described operation is routed), every response of
//! every operation — successes and errors — validates against its documented
//! schema and status, socket frames match the frame schemas, examples match
//! their schemas, and `/docs` and `/redoc` load nothing from elsewhere.

use std::collections::BTreeSet;

use chat_api::settings::AuthMode;
use chat_tests::TestApp;
use chat_tests::contract::Contract;
use chat_tests::socket::Socket;
use reqwest::Method;
use serde_json::{Value, json};

/// The service's description, as it serves it (and as the code builds it).
async fn contract(app: &TestApp) -> Contract {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.expect("openapi.json is JSON");
    let mode = app.settings.effective_auth_mode();
    let built =
        serde_json::to_value(chat_api::http::openapi(mode)).expect("description serializes");
    assert_eq!(served, built, "/openapi.json is the description the code builds");
    assert_eq!(served["openapi"], "3.1.0");
    Contract::new(served)
}

/// Sends a request as `user` (authentication disabled) and checks the response
/// against the description; returns the status and JSON body.
async fn call(
    app: &TestApp,
    contract: &Contract,
    method: Method,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method.clone(), app.url(path)).header("x-user-id", user);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request is sent");
    let status = response.status().as_u16();
    (status, contract.check(method, path, response).await)
}

/// The terms of a small valid offer.
fn page_terms() -> Value {
    json!({"side": "buy", "commodity": "corn", "quantity": "10", "unit": "bu", "price": "5.5",
        "currency": "USD"})
}

/// A sample value for each path parameter, so a described path can be requested.
fn concrete(template: &str) -> String {
    template
        .replace("{room_id}", "1")
        .replace("{message_id}", "1")
        .replace("{offer_id}", "1")
        .replace("{user_id}", "bob")
        .replace("{item_id}", "77")
        .replace("{other_user_id}", "seller7")
        .replace("{file}", "swagger-ui.css")
}

/// The operations API.md names, which the description must contain.
const CONTRACT_OPERATIONS: &[(&str, &str)] = &[
    ("POST", "/rooms"),
    ("GET", "/rooms"),
    ("GET", "/rooms/{room_id}"),
    ("PATCH", "/rooms/{room_id}"),
    ("DELETE", "/rooms/{room_id}"),
    ("GET", "/rooms/{room_id}/users"),
    ("GET", "/users/{user_id}/presence"),
    ("POST", "/rooms/{room_id}/messages"),
    ("GET", "/rooms/{room_id}/messages"),
    ("GET", "/messages/{message_id}"),
    ("PATCH", "/messages/{message_id}"),
    ("DELETE", "/messages/{message_id}"),
    ("GET", "/rooms/{room_id}/messages/search"),
    ("GET", "/messages/search"),
    ("GET", "/ws/{room_id}"),
    ("GET", "/ws"),
    ("GET", "/health"),
    ("GET", "/ws/chat/{item_id}/{other_user_id}"),
    ("GET", "/chat/{item_id}/{other_user_id}/history"),
    ("DELETE", "/chat/{item_id}/{other_user_id}/history"),
    ("GET", "/chat/{item_id}/participants"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/metrics"),
    ("POST", "/rooms/{room_id}/read"),
    ("GET", "/rooms/{room_id}/reads"),
    ("GET", "/me/rooms"),
    ("POST", "/rooms/{room_id}/offers"),
    ("GET", "/rooms/{room_id}/offers"),
    ("GET", "/offers/{offer_id}"),
    ("POST", "/offers/{offer_id}/accept"),
    ("POST", "/offers/{offer_id}/decline"),
    ("POST", "/offers/{offer_id}/withdraw"),
    ("POST", "/offers/{offer_id}/counter"),
];

/// Routes come only from `routes!` (each with its `#[utoipa::path]`): a route
/// registered any other way would be missing from the description, so the
/// router's source may not register one.
#[test]
fn routes_are_registered_only_with_their_description() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/api/src");
    let mut files = vec![std::path::PathBuf::from(root)];
    let mut offenders = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path).expect("read dir").map(|e| e.expect("entry").path()),
            );
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read source");
        for (n, line) in source.lines().enumerate() {
            let raw_route = [".route(", ".route_service(", ".nest(", ".nest_service(", ".merge("]
                .iter()
                .any(|call| line.contains(call))
                || line.contains("axum::routing")
                || line.contains("Router::new(");
            if raw_route {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "register routes with `.routes(routes!(handler))` and a `#[utoipa::path]`:\n{}",
        offenders.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_described_and_every_description_is_routed() {
    let app = TestApp::sqlite().await;
    let contract = contract(&app).await;
    let operations = contract.operations();

    let ids: Vec<&String> = operations.iter().map(|(_, _, id)| id).collect();
    let unique: BTreeSet<&String> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "operationIds are unique: {ids:?}");
    for (method, path) in CONTRACT_OPERATIONS {
        assert!(
            operations.iter().any(|(m, p, _)| m.as_str() == *method && p == path),
            "{method} {path} of API.md is described"
        );
    }

    let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    let paths: BTreeSet<&String> = operations.iter().map(|(_, p, _)| p).collect();
    for template in paths {
        let path = concrete(template);
        for method in &methods {
            let described = operations.iter().any(|(m, p, _)| m == method && p == template);
            let mut request = app.client.request(method.clone(), app.url(&path));
            if matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
                request = request.json(&json!({}));
            }
            let response = request.send().await.expect("request is sent");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or_default();
            if described {
                assert_ne!(status, 405, "{method} {path} is routed");
                assert!(!message.starts_with("no route"), "{method} {path} is routed: {body}");
            } else {
                assert_eq!(status, 405, "{method} {path} is not routed (not described): {body}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_described() {
    let app = TestApp::sqlite().await;
    let contract = contract(&app).await;
    let c = &contract;
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);

    assert_eq!(call(&app, c, get.clone(), "/health", "-", None).await.0, 200);

    // Rooms.
    let (status, room) = call(
        &app,
        c,
        post.clone(),
        "/rooms",
        "alice",
        Some(json!({"name": "Wheat, Odesa", "description": "FOB"})),
    )
    .await;
    assert_eq!(status, 201);
    let room_id = room["id"].as_i64().expect("room id");
    let room_path = format!("/rooms/{room_id}");
    let (status, private) = call(
        &app,
        c,
        post.clone(),
        "/rooms/",
        "alice",
        Some(json!({"name": "Deal", "is_private": true, "members": ["bob"]})),
    )
    .await;
    assert_eq!(status, 201);
    let private_path = format!("/rooms/{}", private["id"]);
    assert_eq!(
        call(&app, c, post.clone(), "/rooms", "alice", Some(json!({"name": "  "}))).await.0,
        422
    );
    let raw = app
        .client
        .post(app.url("/rooms"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    c.check(post.clone(), "/rooms", raw).await;
    let raw = app.client.post(app.url("/rooms")).body(r#"{"name":"x"}"#).send().await.unwrap();
    assert_eq!(raw.status(), 415);
    c.check(post.clone(), "/rooms", raw).await;
    let huge = json!({"name": "x", "description": "d".repeat(70_000)});
    assert_eq!(call(&app, c, post.clone(), "/rooms", "alice", Some(huge)).await.0, 413);

    let (status, list) = call(&app, c, get.clone(), "/rooms?limit=1", "alice", None).await;
    assert_eq!(status, 200);
    assert!(list["next_cursor"].is_string(), "a next page: {list}");
    assert_eq!(call(&app, c, get.clone(), "/rooms?limit=0", "alice", None).await.0, 422);
    assert_eq!(call(&app, c, get.clone(), "/rooms?limit=many", "alice", None).await.0, 400);
    assert_eq!(call(&app, c, get.clone(), &room_path, "alice", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/rooms/999999", "alice", None).await.0, 404);
    assert_eq!(call(&app, c, get.clone(), &private_path, "eve", None).await.0, 403);
    assert_eq!(
        call(&app, c, patch.clone(), &room_path, "alice", Some(json!({"description": null})))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&app, c, patch.clone(), &room_path, "bob", Some(json!({"name": "Mine"}))).await.0,
        403
    );
    assert_eq!(
        call(&app, c, patch.clone(), &room_path, "alice", Some(json!({"name": ""}))).await.0,
        422
    );

    let members = format!("{private_path}/members");
    assert_eq!(
        call(&app, c, post.clone(), &members, "alice", Some(json!({"user_id": "carol"}))).await.0,
        201
    );
    assert_eq!(
        call(&app, c, post.clone(), &members, "alice", Some(json!({"user_id": "carol"}))).await.0,
        200
    );
    assert_eq!(
        call(&app, c, post.clone(), &members, "bob", Some(json!({"user_id": "dave"}))).await.0,
        403
    );
    assert_eq!(
        call(&app, c, post.clone(), &members, "alice", Some(json!({"user_id": ""}))).await.0,
        422
    );
    assert_eq!(
        call(&app, c, delete.clone(), &format!("{members}/carol"), "alice", None).await.0,
        204
    );
    assert_eq!(
        call(&app, c, delete.clone(), &format!("{members}/carol"), "alice", None).await.0,
        404
    );
    assert_eq!(
        call(&app, c, delete.clone(), &format!("{members}/carol"), "bob", None).await.0,
        403
    );

    // Presence, with a socket open so the list has an entry to validate.
    let (socket, _) = app.joined_socket(room_id, "alice").await;
    let (status, users) =
        call(&app, c, get.clone(), &format!("{room_path}/users"), "bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(users["items"][0]["user_id"], "alice");
    assert_eq!(
        call(&app, c, get.clone(), &format!("{private_path}/users"), "eve", None).await.0,
        403
    );
    let (status, online) = call(&app, c, get.clone(), "/users/alice/presence", "bob", None).await;
    assert_eq!((status, &online["online"]), (200, &json!(true)));
    let (status, never) = call(&app, c, get.clone(), "/users/nobody/presence", "bob", None).await;
    assert_eq!((status, &never["last_seen"]), (200, &Value::Null));
    let too_long = format!("/users/{}/presence", "u".repeat(65));
    assert_eq!(call(&app, c, get.clone(), &too_long, "bob", None).await.0, 422);
    socket.close().await;

    // Messages.
    let messages = format!("{room_path}/messages");
    let body = json!({"content": "Wheat at 210 UAH/kg, Odesa", "client_msg_id": "bob-1"});
    let (status, message) = call(&app, c, post.clone(), &messages, "bob", Some(body.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(
        call(&app, c, post.clone(), &messages, "bob", Some(body)).await.0,
        200,
        "idempotent repeat"
    );
    assert_eq!(
        call(&app, c, post.clone(), &messages, "bob", Some(json!({"content": " "}))).await.0,
        422
    );
    assert_eq!(
        call(
            &app,
            c,
            post.clone(),
            &messages,
            "bob",
            Some(json!({"content": "x", "message_type": "system"}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&app, c, post.clone(), "/rooms/999999/messages", "bob", Some(json!({"content": "x"})))
            .await
            .0,
        404
    );
    let (status, history) =
        call(&app, c, get.clone(), &format!("{messages}?limit=10"), "bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(history["items"][0]["id"], message["id"]);
    assert_eq!(
        call(&app, c, get.clone(), &format!("{messages}?before=soon"), "bob", None).await.0,
        400
    );
    assert_eq!(
        call(&app, c, get.clone(), &format!("{messages}?limit=101"), "bob", None).await.0,
        422
    );
    assert_eq!(
        call(&app, c, get.clone(), &format!("{private_path}/messages"), "eve", None).await.0,
        403
    );
    // Read markers and the inbox.
    let read = format!("{room_path}/read");
    let (status, marker) =
        call(&app, c, post.clone(), &read, "alice", Some(json!({"seq": 99}))).await;
    assert_eq!((status, marker["seq"].as_i64()), (200, message["seq"].as_i64()));
    assert_eq!(call(&app, c, post.clone(), &read, "alice", Some(json!({"seq": -1}))).await.0, 422);
    assert_eq!(
        call(
            &app,
            c,
            post.clone(),
            &format!("{private_path}/read"),
            "eve",
            Some(json!({"seq": 0}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&app, c, post.clone(), "/rooms/999999/read", "alice", Some(json!({"seq": 0}))).await.0,
        404
    );
    let raw = app
        .client
        .post(app.url(&read))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    c.check(post.clone(), &read, raw).await;
    let raw = app.client.post(app.url(&read)).body(r#"{"seq":1}"#).send().await.unwrap();
    assert_eq!(raw.status(), 415);
    c.check(post.clone(), &read, raw).await;
    let huge = json!({"seq": 1, "user_id": "u".repeat(70_000)});
    assert_eq!(call(&app, c, post.clone(), &read, "alice", Some(huge)).await.0, 413);
    let (status, reads) =
        call(&app, c, get.clone(), &format!("{room_path}/reads"), "bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(reads["items"][0]["user_id"], "alice");
    assert_eq!(
        call(&app, c, get.clone(), &format!("{private_path}/reads"), "eve", None).await.0,
        403
    );
    assert_eq!(call(&app, c, get.clone(), "/rooms/999999/reads", "bob", None).await.0, 404);
    let (status, mine) = call(&app, c, get.clone(), "/me/rooms?limit=1", "alice", None).await;
    assert_eq!(status, 200);
    assert!(
        mine["items"][0]["last_message"].is_object() || mine["items"][0]["last_message"].is_null()
    );
    let next = mine["next_cursor"].as_str().expect("alice has more than one room").to_owned();
    let (status, rest) =
        call(&app, c, get.clone(), &format!("/me/rooms?cursor={next}"), "alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(rest["next_cursor"], Value::Null);
    // Both shapes of `last_message` were validated: the room with a message is
    // the most recent, the private one has none.
    assert!(mine["items"][0]["last_message"].is_object(), "{mine}");
    assert!(rest["items"][0]["last_message"].is_null(), "{rest}");
    assert_eq!(call(&app, c, get.clone(), "/me/rooms?cursor=later", "alice", None).await.0, 400);
    assert_eq!(call(&app, c, get.clone(), "/me/rooms?limit=0", "alice", None).await.0, 422);

    let message_path = format!("/messages/{}", message["id"]);
    assert_eq!(call(&app, c, get.clone(), &message_path, "bob", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/messages/999999", "bob", None).await.0, 404);
    let (status, edited) = call(
        &app,
        c,
        patch.clone(),
        &message_path,
        "bob",
        Some(json!({"content": "Wheat at 215 UAH/kg, Odesa"})),
    )
    .await;
    assert_eq!((status, &edited["edited"]), (200, &json!(true)));
    assert_eq!(
        call(&app, c, patch.clone(), &message_path, "eve", Some(json!({"content": "mine"})))
            .await
            .0,
        403
    );
    assert_eq!(
        call(&app, c, patch.clone(), &message_path, "bob", Some(json!({"content": ""}))).await.0,
        422
    );

    // Replies, reactions, versions.
    let reply = json!({"content": "Oats 216?", "reply_to": message["id"]});
    let (status, answer) = call(&app, c, post.clone(), &messages, "alice", Some(reply)).await;
    assert_eq!((status, &answer["reply_to"]), (201, &message["id"]));
    let reaction = format!("{message_path}/reactions/%F0%9F%91%8D");
    let (status, reacted) = call(&app, c, Method::PUT, &reaction, "alice", None).await;
    assert_eq!((status, &reacted["reactions"]), (200, &json!({"👍": 1})));
    let spaced = format!("{message_path}/reactions/a%20b");
    assert_eq!(call(&app, c, Method::PUT, &spaced, "alice", None).await.0, 422);
    assert_eq!(
        call(&app, c, Method::PUT, "/messages/999999/reactions/ok", "alice", None).await.0,
        404
    );
    let (status, listed) =
        call(&app, c, get.clone(), &format!("{message_path}/reactions"), "bob", None).await;
    assert_eq!((status, listed["items"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(call(&app, c, get.clone(), "/messages/999999/reactions", "bob", None).await.0, 404);
    let (status, taken_back) = call(&app, c, delete.clone(), &reaction, "alice", None).await;
    assert_eq!((status, &taken_back["reactions"]), (200, &json!({})));
    assert_eq!(call(&app, c, delete.clone(), &spaced, "alice", None).await.0, 422);
    let (status, versions) =
        call(&app, c, get.clone(), &format!("{message_path}/versions"), "bob", None).await;
    assert_eq!((status, versions["items"].as_array().map(Vec::len)), (200, Some(2)));
    assert_eq!(call(&app, c, get.clone(), "/messages/999999/versions", "bob", None).await.0, 404);

    // Search.
    let (status, hits) =
        call(&app, c, get.clone(), &format!("{messages}/search?q=wheat"), "bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(hits["items"].as_array().map(Vec::len), Some(1), "{hits}");
    assert_eq!(
        call(&app, c, get.clone(), &format!("{messages}/search?q="), "bob", None).await.0,
        422
    );
    assert_eq!(
        call(
            &app,
            c,
            get.clone(),
            &format!("{messages}/search?q=wheat&since=yesterday"),
            "bob",
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(&app, c, get.clone(), "/rooms/999999/messages/search?q=wheat", "bob", None).await.0,
        404
    );
    assert_eq!(
        call(&app, c, get.clone(), &format!("{private_path}/messages/search?q=deal"), "eve", None)
            .await
            .0,
        403
    );
    assert_eq!(call(&app, c, get.clone(), "/messages/search?q=odesa", "bob", None).await.0, 200);
    assert_eq!(
        call(&app, c, get.clone(), "/messages/search?q=odesa&room_id=999999", "bob", None).await.0,
        404
    );
    assert_eq!(
        call(&app, c, get.clone(), "/messages/search?q=odesa&cursor=x", "bob", None).await.0,
        400
    );
    assert_eq!(call(&app, c, get.clone(), "/messages/search?q=%20", "bob", None).await.0, 422);
    assert_eq!(
        call(
            &app,
            c,
            get.clone(),
            &format!("/messages/search?q=deal&room_id={}", private["id"]),
            "eve",
            None
        )
        .await
        .0,
        403
    );

    // Sockets: the upgrade's HTTP answers, and the upgrade itself.
    assert_eq!(call(&app, c, get.clone(), &format!("/ws/{room_id}"), "bob", None).await.0, 400);
    assert_eq!(call(&app, c, get.clone(), "/ws/999999", "bob", None).await.0, 404);
    assert_eq!(
        call(&app, c, get.clone(), &format!("/ws/{}", private["id"]), "eve", None).await.0,
        403
    );
    let socket = app.socket(room_id, "user_id=bob").await;
    c.check_status(get.clone(), &format!("/ws/{room_id}"), 101);
    socket.close().await;
    assert_eq!(call(&app, c, get.clone(), "/ws", "bob", None).await.0, 400);
    let mut inbox = app.socket_at("/ws?user_id=bob").await;
    assert_eq!(inbox.next_json().await, json!({"type": "ready", "user_id": "bob"}));
    c.check_status(get.clone(), "/ws", 101);
    inbox.close().await;
    let origin =
        app.another(|s| s.cors_origins = Some("https://graintrade.example".to_owned())).await;
    let refused = origin
        .client
        .get(origin.url("/ws/chat/77/seller7"))
        .header("origin", "https://elsewhere.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    c.check(get.clone(), "/ws/chat/77/seller7", refused).await;
    origin.shutdown().await;
    assert_eq!(call(&app, c, get.clone(), "/ws/chat/77/seller7", "buyer1", None).await.0, 400);

    // GrainTrade compatibility: a conversation through the old socket.
    let mut legacy = app.socket_at("/ws/chat/77/seller7?user_id=buyer1").await;
    c.check_status(get.clone(), "/ws/chat/77/seller7", 101);
    legacy.send_json(json!({"sender_id": "buyer1", "receiver_id": "seller7", "item_id": "77", "content": "Final price?"})).await;
    let stored = legacy.next_json().await;
    assert_eq!(stored["content"], "Final price?");
    legacy.close().await;
    let history = "/chat/77/seller7/history?current_user=buyer1";
    let (status, old) = call(&app, c, get.clone(), history, "-", None).await;
    assert_eq!((status, old.as_array().map(Vec::len)), (200, Some(1)));
    let (status, participants) =
        call(&app, c, get.clone(), "/chat/77/participants", "-", None).await;
    assert_eq!((status, &participants[0]["id"]), (200, &json!("buyer1")));
    assert_eq!(call(&app, c, get.clone(), "/chat/a%2Fb/participants", "-", None).await.0, 422);
    let (status, unread) =
        call(&app, c, get.clone(), "/chat/77/unread?current_user=seller7", "-", None).await;
    assert_eq!((status, &unread["unread"]), (200, &json!(1)));
    assert_eq!(
        call(&app, c, delete.clone(), "/chat/77/unread?current_user=seller7", "-", None).await.0,
        200
    );
    let too_long = format!("/chat/77/unread?current_user={}", "u".repeat(65));
    assert_eq!(call(&app, c, get.clone(), &too_long, "-", None).await.0, 422);
    assert_eq!(call(&app, c, delete.clone(), &too_long, "-", None).await.0, 422);
    assert_eq!(
        call(
            &app,
            c,
            get.clone(),
            &format!("/chat/77/seller7/history?current_user={}", "u".repeat(65)),
            "-",
            None
        )
        .await
        .0,
        422
    );
    assert_eq!(
        call(
            &app,
            c,
            get.clone(),
            "/chat/77/seller7/history?current_user=buyer1&current_user=x",
            "-",
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(call(&app, c, delete.clone(), history, "-", None).await.0, 200);
    assert_eq!(
        call(
            &app,
            c,
            delete.clone(),
            &format!("/chat/77/seller7/history?current_user={}", "u".repeat(65)),
            "-",
            None
        )
        .await
        .0,
        422
    );

    // Deletions.
    assert_eq!(call(&app, c, delete.clone(), &message_path, "eve", None).await.0, 403);
    assert_eq!(call(&app, c, delete.clone(), &message_path, "bob", None).await.0, 204);
    assert_eq!(call(&app, c, delete.clone(), &message_path, "bob", None).await.0, 404);
    assert_eq!(call(&app, c, delete.clone(), &room_path, "bob", None).await.0, 403);
    assert_eq!(call(&app, c, delete.clone(), &room_path, "alice", None).await.0, 204);
    assert_eq!(call(&app, c, delete.clone(), &room_path, "alice", None).await.0, 404);

    // The documentation itself.
    assert_eq!(call(&app, c, get.clone(), "/openapi.json", "-", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/docs", "-", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/redoc/", "-", None).await.0, 200);
    assert_eq!(
        call(&app, c, get.clone(), "/docs/assets/redoc.standalone.js", "-", None).await.0,
        200
    );
    assert_eq!(call(&app, c, get.clone(), "/docs/assets/secret.txt", "-", None).await.0, 404);

    // Offers, in a room of their own.
    let (status, deal) =
        call(&app, c, post.clone(), "/rooms", "alice", Some(json!({"name": "Deal"}))).await;
    assert_eq!(status, 201);
    let offers = format!("/rooms/{}/offers", deal["id"]);
    let terms = json!({"side": "sell", "commodity": "wheat", "quantity": "250.5", "unit": "t",
        "price": "210", "currency": "UAH", "incoterm": "FOB", "delivery_from": "2027-02-01",
        "expires_at": "2099-01-01T00:00:00Z", "client_msg_id": "offer-1"});
    let (status, made) = call(&app, c, post.clone(), &offers, "alice", Some(terms.clone())).await;
    assert_eq!(status, 201);
    assert_eq!(call(&app, c, post.clone(), &offers, "alice", Some(terms)).await.0, 200, "a repeat");
    let bad = json!({"side": "sell", "commodity": "wheat", "quantity": 1.5, "unit": "t",
        "price": "210", "currency": "UAH"});
    assert_eq!(call(&app, c, post.clone(), &offers, "alice", Some(bad)).await.0, 422);
    assert_eq!(
        call(&app, c, post.clone(), "/rooms/999999/offers", "alice", Some(page_terms())).await.0,
        404
    );
    let offer = format!("/offers/{}", made["offer"]["id"]);
    assert_eq!(call(&app, c, get.clone(), &offer, "bob", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/offers/999999", "bob", None).await.0, 404);
    let (status, page) =
        call(&app, c, get.clone(), &format!("{offers}?status=open&limit=1"), "bob", None).await;
    assert_eq!((status, page["items"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(
        call(&app, c, get.clone(), &format!("{offers}?status=gone"), "bob", None).await.0,
        422
    );
    assert_eq!(call(&app, c, post.clone(), &format!("{offer}/accept"), "alice", None).await.0, 403);
    let (status, countered) = call(
        &app,
        c,
        post.clone(),
        &format!("{offer}/counter"),
        "bob",
        Some(json!({"price": "205"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(countered["offer"]["parent_offer_id"], made["offer"]["id"]);
    assert_eq!(
        call(&app, c, post.clone(), &format!("{offer}/counter"), "bob", Some(json!({}))).await.0,
        422
    );
    let counter = format!("/offers/{}", countered["offer"]["id"]);
    assert_eq!(call(&app, c, post.clone(), &format!("{offer}/decline"), "bob", None).await.0, 409);
    let (status, declined) =
        call(&app, c, post.clone(), &format!("{counter}/decline"), "alice", None).await;
    assert_eq!((status, &declined["status"]), (200, &json!("declined")));
    let (_, third) = call(&app, c, post.clone(), &offers, "alice", Some(page_terms())).await;
    let third = format!("/offers/{}", third["offer"]["id"]);
    assert_eq!(call(&app, c, post.clone(), &format!("{third}/withdraw"), "bob", None).await.0, 403);
    let (status, accepted) = call(
        &app,
        c,
        post.clone(),
        &format!("{third}/accept"),
        "bob",
        Some(json!({"user_id": "bob"})),
    )
    .await;
    assert_eq!((status, &accepted["status"]), (200, &json!("accepted")));
    assert_eq!(
        call(&app, c, post.clone(), &format!("{third}/withdraw"), "alice", None).await.0,
        409
    );
    let (_, fourth) = call(&app, c, post.clone(), &offers, "alice", Some(page_terms())).await;
    let (status, withdrawn) = call(
        &app,
        c,
        post.clone(),
        &format!("/offers/{}/withdraw", fourth["offer"]["id"]),
        "alice",
        None,
    )
    .await;
    assert_eq!((status, &withdrawn["status"]), (200, &json!("withdrawn")));
    let offer_message = format!("/messages/{}", made["id"]);
    assert_eq!(
        call(&app, c, patch.clone(), &offer_message, "alice", Some(json!({"content": "x"})))
            .await
            .0,
        409
    );
    let (status, listed) = call(
        &app,
        c,
        get.clone(),
        &format!("{}/messages", &offers[..offers.len() - 7]),
        "bob",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(listed["items"][0]["offer"].is_object(), "an offer message in history: {listed}");

    // Metrics.
    assert_eq!(call(&app, c, get.clone(), "/metrics", "-", None).await.0, 200);

    // The built-in chat page.
    assert_eq!(call(&app, c, get.clone(), "/", "-", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/ui/app.js", "-", None).await.0, 200);
    assert_eq!(call(&app, c, get.clone(), "/ui/nothing.js", "-", None).await.0, 404);

    // 429 from a rate limit, with its Retry-After.
    let limited = app
        .another(|s| {
            s.rate_limit_http_per_second = 0.001;
            s.rate_limit_http_burst = 1;
        })
        .await;
    for expected in [200, 429] {
        let response = limited.client.get(limited.url("/rooms")).send().await.unwrap();
        assert_eq!(response.status(), expected);
        c.check(Method::GET, "/rooms", response).await;
    }
    limited.shutdown().await;

    // 401 with authentication required, on a route of each kind.
    let secured = app
        .another(|s| {
            s.auth_mode = Some(AuthMode::Required);
            s.jwt_secret = Some("openapi-test-secret".to_owned());
        })
        .await;
    // Checked against the description that instance serves (it has the 401s).
    let sc = &self::contract(&secured).await;
    for (method, path) in [
        (Method::GET, "/rooms".to_owned()),
        (Method::POST, messages.clone()),
        (Method::GET, "/ws/1".to_owned()),
        (Method::GET, "/chat/77/unread".to_owned()),
        (Method::GET, "/users/alice/presence".to_owned()),
        (Method::GET, "/me/rooms".to_owned()),
    ] {
        let response =
            secured.client.request(method.clone(), secured.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        sc.check(method, &path, response).await;
    }
    secured.shutdown().await;

    // Every operation was exercised, so none is described without being checked.
    let seen = contract.seen();
    let missing: Vec<String> = contract
        .operations()
        .into_iter()
        .filter(|(_, _, id)| !seen.contains_key(id))
        .map(|(m, p, id)| format!("{m} {p} ({id})"))
        .collect();
    assert!(missing.is_empty(), "operations this test does not exercise: {missing:?}");
}

/// The served description says what the running instance accepts: with
/// authentication disabled no operation declares security and the identity is
/// the optional `X-User-Id`; with it required every secured operation refuses a
/// request without a token (401) — and every other one does not ask for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_says_what_each_mode_accepts() {
    let open = TestApp::sqlite().await;
    let spec = contract(&open).await.spec;
    assert!(spec["components"].get("securitySchemes").is_none(), "no scheme in development");
    let post = &spec["paths"]["/rooms/{room_id}/messages"]["post"];
    let header = post["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "X-User-Id");
    let header = header.expect("X-User-Id is a parameter in development");
    assert_eq!(header["required"], false);
    assert_eq!(header["schema"]["minLength"], 1, "an empty X-User-Id is refused: {header}");

    let secured = open
        .another(|s| {
            s.auth_mode = Some(AuthMode::Required);
            s.jwt_secret = Some("openapi-test-secret".to_owned());
        })
        .await;
    let spec = contract(&secured).await.spec;
    let schemes: BTreeSet<&String> =
        spec["components"]["securitySchemes"].as_object().unwrap().keys().collect();
    assert_eq!(schemes, BTreeSet::from([&"bearer".to_owned(), &"tokenQuery".to_owned()]));
    let mut secured_operations = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let mut request = secured.client.request(method.clone(), secured.url(&concrete(path)));
            if matches!(method, Method::POST | Method::PATCH | Method::PUT) {
                request = request.json(&json!({"content": "x", "name": "x", "user_id": "x"}));
            }
            // A socket operation checks the caller before its handshake.
            if operation["responses"].get("101").is_some() {
                request = request
                    .header("connection", "Upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
            }
            let status = request.send().await.unwrap().status().as_u16();
            let declared = operation.get("security").is_some();
            assert!(
                operation["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["name"] != "X-User-Id"),
                "{method} {path}: no X-User-Id with a token required"
            );
            if declared {
                secured_operations += 1;
                assert_eq!(status, 401, "{method} {path} is secured, so refuses no token");
            } else {
                assert_ne!(status, 401, "{method} {path} is public, so asks for no token");
            }
        }
    }
    assert!(secured_operations > 20, "{secured_operations}");
    secured.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_frames_match_the_frame_schemas() {
    let app = TestApp::sqlite().await;
    let contract = contract(&app).await;
    let server = Contract::component("ServerFrame");
    let client = Contract::component("ClientFrame");
    let room = app.create_room("Frames").await;

    let (mut alice, joined) = app.joined_socket(room, "alice").await;
    contract.validate(&server, &joined, "joined");
    let (mut bob, joined) = app.joined_socket(room, "bob").await;
    contract.validate(&server, &joined, "joined with someone present");
    contract.validate(&server, &alice.next_of_type("user_joined").await, "user_joined");

    let frames = [
        json!({"type": "message", "content": "Wheat?", "client_msg_id": "a-1"}),
        json!({"type": "message", "content": "Corn?", "message_type": "text", "user_id": "alice"}),
        json!({"type": "typing"}),
        json!({"type": "ping"}),
    ];
    for frame in &frames {
        contract.validate(&client, frame, "client frame");
        alice.send_json(frame.clone()).await;
    }
    // Two messages and a pong come back, the pong possibly first.
    let (mut messages, mut pongs) = (Vec::new(), 0);
    while messages.len() < 2 || pongs < 1 {
        let frame = alice.next_json().await;
        contract.validate(&server, &frame, "frame after sending");
        match frame["type"].as_str() {
            Some("message") => messages.push(frame),
            Some("pong") => pongs += 1,
            _ => {}
        }
    }
    let message = messages[0].clone();
    assert_eq!(message["client_msg_id"], "a-1");
    assert_eq!(messages[1]["client_msg_id"], Value::Null);
    contract.validate(&server, &bob.next_of_type("typing").await, "typing");

    for (text, code) in [
        ("{nope", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"type":"message","content":"","client_msg_id":"a-2"}"#, "validation_failed"),
        (r#"{"type":"message","content":"x","message_type":"system"}"#, "forbidden"),
    ] {
        alice.send_text(text).await;
        let error = alice.next_of_type("error").await;
        assert_eq!(error["code"], code, "{error}");
        contract.validate(&server, &error, "error frame");
        if let Ok(sent) = serde_json::from_str::<Value>(text) {
            let expected_valid = code != "unknown_type" && code != "validation_failed";
            assert_eq!(
                contract.errors(&client, &sent).is_empty(),
                expected_valid,
                "ClientFrame accepts {sent} only if the server does"
            );
        }
    }

    let path = format!("/messages/{}", message["id"]);
    let edit = app.client.patch(app.url(&path)).header("x-user-id", "alice");
    assert_eq!(edit.json(&json!({"content": "Barley?"})).send().await.unwrap().status(), 200);
    contract.validate(&server, &bob.next_of_type("message_updated").await, "message_updated");
    let reply = json!({"type": "message", "content": "Oats?", "reply_to": message["id"]});
    contract.validate(&client, &reply, "client reply frame");
    alice.send_json(reply).await;
    let replied = bob.next_of_type("message").await;
    assert_eq!(replied["reply_to"], message["id"]);
    contract.validate(&server, &replied, "a reply");
    let react = app.client.put(app.url(&format!("{path}/reactions/%F0%9F%91%8D")));
    assert_eq!(react.header("x-user-id", "alice").send().await.unwrap().status(), 200);
    contract.validate(&server, &bob.next_of_type("reaction").await, "reaction");
    let removal = app.client.delete(app.url(&path)).header("x-user-id", "alice");
    assert_eq!(removal.send().await.unwrap().status(), 204);
    contract.validate(&server, &bob.next_of_type("message_deleted").await, "message_deleted");
    // An offer: its message (with `offer`), `offer_updated`, and a change's notice.
    let offered = app
        .client
        .post(app.url(&format!("/rooms/{room}/offers")))
        .header("x-user-id", "alice")
        .json(&page_terms())
        .send()
        .await
        .unwrap();
    assert_eq!(offered.status(), 201);
    let offered: Value = offered.json().await.unwrap();
    let frame = bob.next_of_type("message").await;
    assert!(frame["offer"].is_object(), "{frame}");
    contract.validate(&server, &frame, "offer message");
    contract.validate(&server, &bob.next_of_type("offer_updated").await, "offer_updated");
    let accept = format!("/offers/{}/accept", offered["offer"]["id"]);
    let accepted = app.client.post(app.url(&accept)).header("x-user-id", "bob").send().await;
    assert_eq!(accepted.unwrap().status(), 200);
    let frame = bob.next_of_type("offer_updated").await;
    assert_eq!(frame["offer"]["status"], "accepted");
    contract.validate(&server, &frame, "offer_updated accepted");
    let offer_frame = json!({"type": "message", "content": "x", "message_type": "offer"});
    assert!(
        !contract.errors(&client, &offer_frame).is_empty(),
        "a client cannot post an offer type"
    );
    bob.close().await;
    contract.validate(&server, &alice.next_of_type("user_left").await, "user_left");
    assert_eq!(app.delete(&format!("/rooms/{room}")).await.status(), 204);
    contract.validate(&server, &alice.next_of_type("room_deleted").await, "room_deleted");

    // A room that coalesces presence (threshold 0: every room): `presence` frames.
    let coalescing = app
        .another(|s| {
            s.ws_presence_coalesce_above = 0;
            s.ws_presence_interval_ms = 20;
        })
        .await;
    let room = coalescing.create_room("Frames, coalesced").await;
    let (mut carol, _) = coalescing.joined_socket(room, "carol").await;
    let (dave, _) = coalescing.joined_socket(room, "dave").await;
    presence_naming(&contract, &mut carol, "joined", "dave").await;
    dave.close().await;
    presence_naming(&contract, &mut carol, "left", "dave").await;
    coalescing.shutdown().await;

    // The GrainTrade socket.
    let legacy_server = Contract::component("LegacyServerFrame");
    let mut buyer = app.socket_at("/ws/chat/77/seller7?user_id=buyer1").await;
    let sent =
        json!({"sender_id": "buyer1", "receiver_id": "seller7", "item_id": "77", "content": "Hi"});
    contract.validate(&Contract::component("LegacyClientFrame"), &sent, "legacy client frame");
    buyer.send_json(sent).await;
    contract.validate(&legacy_server, &buyer.next_json().await, "legacy message");
    buyer.send_json(json!({"sender_id": "buyer1"})).await;
    contract.validate(&legacy_server, &buyer.next_json().await, "legacy error");
    buyer.close().await;
}

/// Reads `presence` frames, each validated, until one names `user` in its
/// `list`; frames naming others (the reader's own join) may come first.
async fn presence_naming(contract: &Contract, socket: &mut Socket, list: &str, user: &str) {
    loop {
        let frame = socket.next_json().await;
        assert_eq!(frame["type"], "presence", "{frame}");
        contract.validate(&Contract::component("ServerFrame"), &frame, "presence");
        if frame[list].as_array().unwrap().contains(&json!(user)) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_match_their_schemas() {
    let app = TestApp::sqlite().await;
    let contract = contract(&app).await;
    let spec = contract.spec.clone();
    let mut checked = 0;
    for (name, schema) in spec["components"]["schemas"].as_object().expect("schemas") {
        for (place, example) in examples_in(schema, name) {
            contract.validate(&Contract::component(name), &example, &place);
            checked += 1;
        }
    }
    for (name, response) in spec["components"]["responses"].as_object().expect("responses") {
        let media = &response["content"]["application/json"];
        contract.validate(&media["schema"], &media["example"], &format!("response {name}"));
        checked += 1;
    }
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let media = &response["content"]["application/json"];
                if let Some(example) = media.get("example") {
                    contract.validate(
                        &media["schema"],
                        example,
                        &format!("{method} {path} {status}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 30, "examples were found and checked ({checked})");
}

/// A schema's own example and those of its `oneOf` variants.
fn examples_in(schema: &Value, name: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Some(example) = schema.get("example") {
        out.push((format!("schema {name}"), example.clone()));
    }
    for variant in schema["oneOf"].as_array().into_iter().flatten() {
        if let Some(example) = variant.get("example") {
            out.push((format!("schema {name} variant {}", variant["title"]), example.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_pages_load_only_local_assets() {
    let app = TestApp::sqlite().await;
    for page in ["/docs", "/redoc"] {
        let response = app.get(page).await;
        assert_eq!(response.status(), 200, "{page}");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{page}: {content_type}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{page} names no other host"
        );
        let references = attribute_values(&html, &["src", "href", "spec-url"]);
        assert!(!references.is_empty(), "{page} loads its assets");
        for reference in references {
            assert!(
                reference.starts_with('/') && !reference.starts_with("//"),
                "{page} loads {reference} from this service"
            );
            let asset = app.get(&reference).await;
            assert_eq!(asset.status(), 200, "{page}: {reference}");
            let kind = asset.headers()["content-type"].to_str().unwrap().to_owned();
            let expected = match reference.rsplit('.').next() {
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("json") => "application/json",
                other => panic!("{page}: unexpected asset type {other:?} ({reference})"),
            };
            assert!(kind.starts_with(expected), "{reference}: {kind}");
            let body = asset.text().await.unwrap();
            assert!(body.len() > 100, "{reference} has content");
            if reference.ends_with("swagger-initializer.js") {
                assert!(
                    body.contains("url: \"/openapi.json\""),
                    "Swagger UI reads this service's description"
                );
                assert!(
                    body.contains("validatorUrl: null"),
                    "Swagger UI calls no online validator"
                );
            }
        }
    }
}

/// The values of the given attributes in an HTML page (double-quoted).
fn attribute_values(html: &str, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for name in names {
        let needle = format!(" {name}=\"");
        let mut rest = html;
        while let Some(start) = rest.find(&needle) {
            rest = &rest[start + needle.len()..];
            let end = rest.find('"').expect("closing quote");
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}
