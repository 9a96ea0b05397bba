//! Rooms over REST, on SQLite and on Postgres: PROTOCOL.md's Rooms table including
//! every error case, plus the conventions (trailing slash, request ids, errors).

use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use reqwest::Method;
use serde_json::{Value, json};

on_every_adapter_set!(
    create_returns_the_room_with_location,
    create_rejects_invalid_input,
    get_unknown_or_malformed_room_is_404,
    list_pages_with_a_cursor_and_validates_parameters,
    patch_renames_and_clears_description,
    only_creator_or_admin_changes_a_room,
    delete_hides_room_but_keeps_messages,
    private_rooms_are_for_members,
    conventions_hold_on_every_path,
    health_reports_database_ok,
    users_of_a_room_is_an_empty_list_without_sockets,
    members_are_managed_by_the_creator_or_an_admin,
);

async fn members_are_managed_by_the_creator_or_an_admin(app: TestApp) {
    let created = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "seller")
        .json(&json!({"name": "Deal", "is_private": true}))
        .send()
        .await
        .unwrap();
    let room: Value = created.json().await.unwrap();
    let path = format!("/rooms/{}", room["id"]);
    let as_user = |user: &'static str, method: Method, path: String| {
        app.client.request(method, app.url(&path)).header("x-user-id", user)
    };
    assert_error(
        as_user("buyer", Method::GET, path.clone()).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;

    let added = as_user("seller", Method::POST, format!("{path}/members"))
        .json(&json!({"user_id": "buyer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let again = as_user("seller", Method::POST, format!("{path}/members"))
        .json(&json!({"user_id": "buyer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "already a member");
    assert_eq!(as_user("buyer", Method::GET, path.clone()).send().await.unwrap().status(), 200);

    let by_member = as_user("buyer", Method::POST, format!("{path}/members"))
        .json(&json!({"user_id": "friend"}))
        .send()
        .await
        .unwrap();
    assert_error(by_member, 403, "forbidden").await;
    let bad = as_user("seller", Method::POST, format!("{path}/members"))
        .json(&json!({"user_id": ""}))
        .send()
        .await
        .unwrap();
    assert_error(bad, 422, "validation_failed").await;

    let removed =
        as_user("seller", Method::DELETE, format!("{path}/members/buyer")).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    assert_error(
        as_user("buyer", Method::GET, path.clone()).send().await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    let gone =
        as_user("seller", Method::DELETE, format!("{path}/members/buyer")).send().await.unwrap();
    assert_error(gone, 404, "not_found").await;
    let admin = app
        .client
        .post(app.url(&format!("{path}/members")))
        .header("x-user-id", "ops")
        .header("x-user-roles", "admin")
        .json(&json!({"user_id": "auditor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 201);
}

async fn create_returns_the_room_with_location(app: TestApp) {
    let response = app
        .request(
            Method::POST,
            "/rooms",
            Some(json!({"name": "  Wheat 2026  ", "description": "Odesa port"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let room: Value = response.json().await.unwrap();
    assert_eq!(location, format!("/rooms/{}", room["id"]));
    assert!(room["id"].as_i64().unwrap() > 0);
    assert_eq!(room["name"], "Wheat 2026");
    assert_eq!(room["description"], "Odesa port");
    assert_eq!(room["is_active"], true);
    assert_eq!(room["is_private"], false);
    assert_eq!(room["created_by"], "anonymous");
    let created_at = room["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "RFC 3339 millis UTC: {created_at}"
    );
    assert_eq!(room["created_at"], room["updated_at"]);
    let keys: Vec<&str> = room.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 8, "exactly PROTOCOL.md's fields: {keys:?}");

    let fetched: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!(fetched, room);

    let by_header = app
        .client
        .post(app.url("/rooms/"))
        .header("x-user-id", "bob")
        .json(&json!({"name": "Corn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 201);
    let room: Value = by_header.json().await.unwrap();
    assert_eq!(room["created_by"], "bob");
    assert_eq!(room["description"], Value::Null);
}

async fn create_rejects_invalid_input(app: TestApp) {
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": "ok", "description": "d".repeat(1001)}), "description"),
        (json!({"description": "no name"}), "name"),
        (json!({"name": 42}), "name"),
        (json!({"name": "ok", "members": ["", "bob"]}), "members"),
    ] {
        let body =
            assert_error(app.post("/rooms", body.clone()).await, 422, "validation_failed").await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "message {message:?} names {field}");
    }
    assert!(app.post("/rooms", json!({"name": "x".repeat(100)})).await.status() == 201);

    let malformed = app
        .client
        .post(app.url("/rooms"))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "bad_request").await;

    let no_json = app.client.post(app.url("/rooms")).body("name=x").send().await.unwrap();
    assert_error(no_json, 415, "unsupported_media_type").await;

    let huge = json!({"name": "big", "description": "d".repeat(100_000)});
    assert_error(app.post("/rooms", huge).await, 413, "payload_too_large").await;

    let list: Value = app.get("/rooms").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "only the valid room was stored");
}

async fn get_unknown_or_malformed_room_is_404(app: TestApp) {
    let body = assert_error(app.get("/rooms/999999").await, 404, "not_found").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("999999"));
    assert_error(app.get("/rooms/abc").await, 404, "not_found").await;
    assert_error(app.get("/rooms/0").await, 404, "not_found").await;
    assert_error(app.get("/rooms/-3").await, 404, "not_found").await;
    assert_error(app.get("/rooms/99999999999999999999999").await, 404, "not_found").await;
}

async fn list_pages_with_a_cursor_and_validates_parameters(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_room(&format!("room {i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/rooms?limit=2&cursor={c}"),
            None => "/rooms?limit=2".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every room once, in order");

    let default: Value = app.get("/rooms").await.json().await.unwrap();
    assert_eq!(default["items"].as_array().unwrap().len(), 5);
    assert_eq!(default["next_cursor"], Value::Null);

    assert_error(app.get("/rooms?limit=0").await, 422, "validation_failed").await;
    assert_error(app.get("/rooms?limit=101").await, 422, "validation_failed").await;
    assert_error(app.get("/rooms?limit=ten").await, 400, "bad_request").await;
    assert_error(app.get("/rooms?cursor=garbage").await, 400, "bad_request").await;
    assert_eq!(app.get("/rooms?limit=100").await.status(), 200);
}

async fn patch_renames_and_clears_description(app: TestApp) {
    let room: Value = app
        .post("/rooms", json!({"name": "Barley", "description": "feed"}))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/rooms/{}", room["id"]);

    let renamed = app.patch(&path, json!({"name": " Malting barley "})).await;
    assert_eq!(renamed.status(), 200);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Malting barley");
    assert_eq!(renamed["description"], "feed", "absent field is kept");
    assert!(renamed["updated_at"].as_str().unwrap() >= room["updated_at"].as_str().unwrap());

    let cleared: Value = app.patch(&path, json!({"description": null})).await.json().await.unwrap();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["name"], "Malting barley");

    assert_error(app.patch(&path, json!({"name": ""})).await, 422, "validation_failed").await;
    assert_error(app.patch("/rooms/424242", json!({"name": "x"})).await, 404, "not_found").await;
    let fetched: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(fetched["name"], "Malting barley", "a rejected patch changes nothing");
}

async fn only_creator_or_admin_changes_a_room(app: TestApp) {
    let created = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "alice")
        .json(&json!({"name": "Alice's"}))
        .send()
        .await
        .unwrap();
    let room: Value = created.json().await.unwrap();
    let path = format!("/rooms/{}", room["id"]);

    let as_bob =
        |method: Method| app.client.request(method, app.url(&path)).header("x-user-id", "bob");
    let patch = as_bob(Method::PATCH).json(&json!({"name": "Bob's"})).send().await.unwrap();
    assert_error(patch, 403, "forbidden").await;
    assert_error(as_bob(Method::DELETE).send().await.unwrap(), 403, "forbidden").await;

    let admin = app
        .client
        .patch(app.url(&path))
        .header("x-user-id", "root")
        .header("x-user-roles", "admin")
        .json(&json!({"name": "Renamed by admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let by_creator =
        app.client.delete(app.url(&path)).header("x-user-id", "alice").send().await.unwrap();
    assert_eq!(by_creator.status(), 204);
}

async fn delete_hides_room_but_keeps_messages(app: TestApp) {
    let room = app.create_room("Sunflower").await;
    let other = app.create_room("Rapeseed").await;
    app.post_message(room, "anonymous", "kept after deletion").await;
    let message = app.post_message(room, "anonymous", "me too").await;

    let deleted = app.delete(&format!("/rooms/{room}")).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());

    assert_error(app.get(&format!("/rooms/{room}")).await, 404, "not_found").await;
    assert_error(app.delete(&format!("/rooms/{room}")).await, 404, "not_found").await;
    let list: Value = app.get("/rooms").await.json().await.unwrap();
    let ids: Vec<i64> =
        list["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![other]);
    let post = app.post(&format!("/rooms/{room}/messages"), json!({"content": "hello?"})).await;
    assert_error(post, 404, "not_found").await;
    assert_error(app.get(&format!("/rooms/{room}/messages")).await, 404, "not_found").await;
    assert_error(app.get(&format!("/messages/{}", message["id"])).await, 404, "not_found").await;

    use sea_orm::{ConnectionTrait, Statement};
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM messages WHERE room_id = {room}"),
        ))
        .await
        .unwrap()
        .unwrap();
    let kept: i64 = row.try_get("", "n").unwrap();
    assert_eq!(kept, 2, "the room's messages are kept in storage");
}

async fn private_rooms_are_for_members(app: TestApp) {
    let created = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "seller")
        .json(&json!({"name": "Offer 77", "is_private": true, "members": ["buyer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let room: Value = created.json().await.unwrap();
    assert_eq!(room["is_private"], true);
    let path = format!("/rooms/{}", room["id"]);
    let public = app.create_room("Public").await;

    let get_as = |user: &'static str, path: String| {
        let request = app.client.get(app.url(&path)).header("x-user-id", user);
        async move { request.send().await.unwrap() }
    };
    assert_eq!(get_as("seller", path.clone()).await.status(), 200);
    assert_eq!(get_as("buyer", path.clone()).await.status(), 200);
    assert_error(get_as("stranger", path.clone()).await, 403, "forbidden").await;
    assert_error(get_as("stranger", format!("{path}/messages")).await, 403, "forbidden").await;
    let post = app
        .client
        .post(app.url(&format!("{path}/messages")))
        .json(&json!({"content": "let me in", "user_id": "stranger"}))
        .send()
        .await
        .unwrap();
    assert_error(post, 403, "forbidden").await;

    let ids = |list: Value| -> Vec<i64> {
        list["items"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect()
    };
    let for_stranger = ids(get_as("stranger", "/rooms".to_owned()).await.json().await.unwrap());
    assert_eq!(for_stranger, vec![public]);
    let for_buyer = ids(get_as("buyer", "/rooms".to_owned()).await.json().await.unwrap());
    assert_eq!(for_buyer, vec![room["id"].as_i64().unwrap(), public]);
}

async fn conventions_hold_on_every_path(app: TestApp) {
    let room = app.create_room("Slashes").await;
    assert_eq!(app.get("/rooms/").await.status(), 200);
    assert_eq!(app.get(&format!("/rooms/{room}/")).await.status(), 200);
    assert_eq!(app.get(&format!("/rooms/{room}/messages/")).await.status(), 200);

    let echoed = app
        .client
        .get(app.url("/rooms"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42");
    let fresh = app.get("/rooms").await;
    assert!(!fresh.headers()["x-request-id"].is_empty());

    let unknown = app
        .client
        .get(app.url("/no/such/route"))
        .header("x-request-id", "rid-404")
        .send()
        .await
        .unwrap();
    let body = assert_error(unknown, 404, "not_found").await;
    assert_eq!(body["error"]["request_id"], "rid-404");
    assert_error(
        app.request(Method::PUT, &format!("/rooms/{room}"), None).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_error(app.request(Method::POST, "/health", None).await, 405, "method_not_allowed").await;
}

async fn health_reports_database_ok(app: TestApp) {
    let on_or_off = |configured: bool| if configured { "ok" } else { "disabled" };
    let rabbitmq = on_or_off(app.settings.rabbitmq_url.is_some());
    // The relay reports "ok" once it has connected.
    assert!(app.wait_for_health("rabbitmq", rabbitmq).await);
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["database"], "ok");
    assert_eq!(health["checks"]["redis"], on_or_off(app.settings.redis_url.is_some()));
    assert_eq!(health["checks"]["rabbitmq"], rabbitmq);
    let closed_or_off = |configured: bool| if configured { "closed" } else { "disabled" };
    assert_eq!(health["circuits"]["redis"], closed_or_off(app.settings.redis_url.is_some()));
    assert_eq!(health["circuits"]["rabbitmq"], closed_or_off(app.settings.rabbitmq_url.is_some()));
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
}

async fn users_of_a_room_is_an_empty_list_without_sockets(app: TestApp) {
    let room = app.create_room("Quiet").await;
    let users: Value = app.get(&format!("/rooms/{room}/users")).await.json().await.unwrap();
    assert_eq!(users, json!({"items": []}));
    assert_error(app.get("/rooms/31337/users").await, 404, "not_found").await;
}
