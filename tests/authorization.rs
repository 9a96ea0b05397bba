//! With authentication required, every cell of PROTOCOL.md's authorization matrix,
//! identity and roles taken from real tokens: HS256 for the matrix, and RS256
//! and ES256 (the GrainTrade backend's key pairs) for token verification.

use std::time::{SystemTime, UNIX_EPOCH};

use chat_api::settings::AuthMode;
use chat_tests::{TestApp, test_settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "matrix-secret-long-enough-for-hs256";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn sqlite_settings() -> chat_api::Settings {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    let mut settings = test_settings(&format!("sqlite://{}?mode=rwc", file.display()));
    settings.auth_mode = Some(AuthMode::Required);
    settings
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("fixture key")
}

/// A signed-in caller.
struct Caller<'a> {
    app: &'a TestApp,
    token: String,
}

impl Caller<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request =
            self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn status(&self, method: Method, path: &str, body: Option<Value>) -> u16 {
        self.call(method, path, body).await.status().as_u16()
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let response = self.call(Method::POST, path, Some(body)).await;
        assert_eq!(response.status(), 201, "created at {path}");
        response.json().await.unwrap()
    }
}

fn hs256(sub: &str, roles: &[&str]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "exp": now() + 600, "roles": roles}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn matrix_app() -> TestApp {
    let mut settings = sqlite_settings();
    settings.jwt_secret = Some(SECRET.to_owned());
    TestApp::start_with(settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_authorization_matrix() {
    let app = matrix_app().await;
    let who = |sub: &str, roles: &[&str]| Caller { app: &app, token: hs256(sub, roles) };
    let creator = who("carol", &[]);
    let author = who("alice", &[]);
    let other = who("bob", &[]);
    let moderator = who("mo", &["moderator"]);
    let admin = who("ada", &["admin"]);

    let room = creator.create("/rooms", json!({"name": "Matrix"})).await["id"].as_i64().unwrap();
    let post = |by: &Caller<'_>| {
        let path = format!("/rooms/{room}/messages");
        let token = by.token.clone();
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url(&path))
                .bearer_auth(token)
                .json(&json!({"content": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
        }
    };

    // Edit: the author only.
    let edited = post(&author).await;
    for (name, caller) in
        [("creator", &creator), ("moderator", &moderator), ("admin", &admin), ("other", &other)]
    {
        let status = caller
            .status(Method::PATCH, &format!("/messages/{edited}"), Some(json!({"content": "y"})))
            .await;
        assert_eq!(status, 403, "edit by {name}");
    }
    assert_eq!(
        author
            .status(Method::PATCH, &format!("/messages/{edited}"), Some(json!({"content": "y"})))
            .await,
        200,
        "edit by the author"
    );

    // Delete a message: author, room creator, moderator, admin — not anyone else.
    let kept = post(&author).await;
    assert_eq!(other.status(Method::DELETE, &format!("/messages/{kept}"), None).await, 403);
    assert_eq!(
        author.status(Method::GET, &format!("/messages/{kept}"), None).await,
        200,
        "still there"
    );
    for (name, caller) in
        [("author", &author), ("creator", &creator), ("moderator", &moderator), ("admin", &admin)]
    {
        let id = post(&author).await;
        assert_eq!(
            caller.status(Method::DELETE, &format!("/messages/{id}"), None).await,
            204,
            "delete by {name}"
        );
    }

    // System messages: admins only (services come through the broker).
    let system = json!({"content": "Price changed", "message_type": "system"});
    let path = format!("/rooms/{room}/messages");
    for (name, caller) in [("creator", &creator), ("moderator", &moderator), ("other", &other)] {
        assert_eq!(
            caller.status(Method::POST, &path, Some(system.clone())).await,
            403,
            "system by {name}"
        );
    }
    assert_eq!(admin.status(Method::POST, &path, Some(system.clone())).await, 201);
    let service = who("offers", &["service"]);
    assert_eq!(
        service.status(Method::POST, &path, Some(system)).await,
        403,
        "a token's service role is not trusted"
    );

    // Update and delete a room: creator or admin.
    let room_path = format!("/rooms/{room}");
    for (name, caller) in [("author", &author), ("moderator", &moderator), ("other", &other)] {
        assert_eq!(
            caller.status(Method::PATCH, &room_path, Some(json!({"description": "mine"}))).await,
            403,
            "room update by {name}"
        );
        assert_eq!(
            caller.status(Method::DELETE, &room_path, None).await,
            403,
            "room delete by {name}"
        );
    }
    assert_eq!(
        creator.status(Method::PATCH, &room_path, Some(json!({"description": "c"}))).await,
        200
    );
    assert_eq!(
        admin.status(Method::PATCH, &room_path, Some(json!({"description": "a"}))).await,
        200
    );
    for caller in [&creator, &admin] {
        let id = creator.create("/rooms", json!({"name": "Doomed"})).await["id"].as_i64().unwrap();
        assert_eq!(caller.status(Method::DELETE, &format!("/rooms/{id}"), None).await, 204);
    }

    // Members of a private room: creator or admin manage them.
    let private = creator
        .create("/rooms", json!({"name": "Deal", "is_private": true, "members": ["alice"]}))
        .await["id"]
        .as_i64()
        .unwrap();
    let members = format!("/rooms/{private}/members");
    assert_eq!(other.status(Method::POST, &members, Some(json!({"user_id": "bob"}))).await, 403);
    assert_eq!(moderator.status(Method::POST, &members, Some(json!({"user_id": "mo"}))).await, 403);
    assert_eq!(creator.status(Method::POST, &members, Some(json!({"user_id": "dave"}))).await, 201);
    assert_eq!(admin.status(Method::POST, &members, Some(json!({"user_id": "erin"}))).await, 201);
    assert_eq!(other.status(Method::DELETE, &format!("{members}/dave"), None).await, 403);
    assert_eq!(creator.status(Method::DELETE, &format!("{members}/dave"), None).await, 204);
    assert_eq!(admin.status(Method::DELETE, &format!("{members}/erin"), None).await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_closed_to_non_members_on_every_path() {
    let app = matrix_app().await;
    let member = Caller { app: &app, token: hs256("alice", &[]) };
    let stranger = Caller { app: &app, token: hs256("bob", &[]) };
    let room =
        member.create("/rooms", json!({"name": "Secret deal", "is_private": true})).await["id"]
            .as_i64()
            .unwrap();
    let message =
        member.create(&format!("/rooms/{room}/messages"), json!({"content": "wheat at 210"})).await;
    let id = message["id"].as_i64().unwrap();

    let reads = [
        format!("/rooms/{room}"),
        format!("/rooms/{room}/messages"),
        format!("/rooms/{room}/users"),
        format!("/rooms/{room}/messages/search?q=wheat"),
        format!("/messages/{id}"),
    ];
    for path in &reads {
        assert_eq!(member.status(Method::GET, path, None).await, 200, "member reads {path}");
        let status = stranger.status(Method::GET, path, None).await;
        assert!(status == 403 || status == 404, "stranger reads {path}: {status}");
    }
    let writes = [
        (Method::POST, format!("/rooms/{room}/messages"), Some(json!({"content": "me too"}))),
        (Method::PATCH, format!("/messages/{id}"), Some(json!({"content": "mine now"}))),
        (Method::DELETE, format!("/messages/{id}"), None),
        (Method::PATCH, format!("/rooms/{room}"), Some(json!({"name": "Taken"}))),
        (Method::DELETE, format!("/rooms/{room}"), None),
    ];
    for (method, path, body) in writes {
        let status = stranger.status(method.clone(), &path, body).await;
        assert!(status == 403 || status == 404, "stranger {method} {path}: {status}");
    }
    let everywhere: Value =
        stranger.call(Method::GET, "/messages/search?q=wheat", None).await.json().await.unwrap();
    assert_eq!(everywhere["items"], json!([]), "search across rooms hides it");
    let listed: Value = stranger.call(Method::GET, "/rooms", None).await.json().await.unwrap();
    assert!(listed["items"].as_array().unwrap().iter().all(|r| r["id"] != room), "not listed");

    match tokio_tungstenite::connect_async(
        app.ws_url(&format!("/ws/{room}?token={}", stranger.token)),
    )
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403 on the socket, got {other:?}"),
    }
    let mut socket = app.socket(room, &format!("token={}", member.token)).await;
    assert_eq!(socket.next_json().await["type"], "joined");

    // Nothing the stranger tried changed anything.
    let after = member
        .call(Method::GET, &format!("/messages/{id}"), None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(after, message);
}

async fn public_key_app(public_key: String) -> TestApp {
    let mut settings = sqlite_settings();
    settings.jwt_public_key = Some(public_key);
    TestApp::start_with(settings).await
}

async fn check_key_pair(app: &TestApp, algorithm: Algorithm, private: EncodingKey) {
    let sign = |claims: Value, key: &EncodingKey, alg: Algorithm| {
        jsonwebtoken::encode(&Header::new(alg), &claims, key).unwrap()
    };
    let good = sign(json!({"sub": "alice", "exp": now() + 600}), &private, algorithm);
    let room = Caller { app, token: good.clone() }.create("/rooms", json!({"name": "Keys"})).await;
    assert_eq!(room["created_by"], "alice");
    let room = room["id"].as_i64().unwrap();
    let mut socket = app.socket(room, &format!("token={good}")).await;
    assert_eq!(socket.next_json().await["user_id"], "alice");

    let expired = sign(json!({"sub": "alice", "exp": now() - 120}), &private, algorithm);
    // Algorithm confusion: an HMAC token "signed" with the public key's text.
    let public = if algorithm == Algorithm::RS256 {
        fixture("rsa-public.pem")
    } else {
        fixture("ec-public.pem")
    };
    let confused = sign(
        json!({"sub": "alice", "exp": now() + 600}),
        &EncodingKey::from_secret(public.as_bytes()),
        Algorithm::HS256,
    );
    let other_key = if algorithm == Algorithm::RS256 {
        // An EC key cannot sign RS256; a token from the wrong kind of key fails too.
        sign(
            json!({"sub": "alice", "exp": now() + 600}),
            &EncodingKey::from_ec_pem(fixture("ec-private.pem").as_bytes()).unwrap(),
            Algorithm::ES256,
        )
    } else {
        sign(
            json!({"sub": "alice", "exp": now() + 600}),
            &EncodingKey::from_rsa_pem(fixture("rsa-private.pem").as_bytes()).unwrap(),
            Algorithm::RS256,
        )
    };
    for (case, token) in [
        ("expired", expired),
        ("HS256 with the public key", confused),
        ("other key type", other_key),
    ] {
        let caller = Caller { app, token: token.clone() };
        assert_eq!(
            caller.status(Method::GET, &format!("/rooms/{room}"), None).await,
            401,
            "{case}"
        );
        match tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{room}?token={token}")))
            .await
        {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "socket, {case}")
            }
            other => panic!("socket, {case}: expected 401, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_from_the_main_backend_are_verified_with_its_public_key() {
    let app = public_key_app(fixture("rsa-public.pem")).await;
    let private = EncodingKey::from_rsa_pem(fixture("rsa-private.pem").as_bytes()).unwrap();
    check_key_pair(&app, Algorithm::RS256, private).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_tokens_are_verified_with_a_public_key_given_as_a_path() {
    let path = format!("{}/fixtures/ec-public.pem", env!("CARGO_MANIFEST_DIR"));
    let app = public_key_app(path).await;
    let private = EncodingKey::from_ec_pem(fixture("ec-private.pem").as_bytes()).unwrap();
    check_key_pair(&app, Algorithm::ES256, private).await;
}

/// Development: a declared identity the service cannot read is refused, never
/// taken for `anonymous` — a non-ASCII or malformed `X-User-Id` (also when
/// `?user_id=` names the caller) — and a body must be a JSON object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_declared_identity_or_body_is_refused() {
    let app = TestApp::sqlite().await;
    let room = app.create_room("Identity").await;
    let get = |header: &'static [u8], query: &'static str| {
        let value = reqwest::header::HeaderValue::from_bytes(header).unwrap();
        app.client.get(app.url(&format!("/rooms/{room}{query}"))).header("x-user-id", value).send()
    };
    assert_eq!(get(b"alice", "").await.unwrap().status(), 200);
    for (header, query) in [
        ("олег".as_bytes(), ""),
        (b"\xd7\xf8".as_slice(), ""),
        (b"\xd7\xf8".as_slice(), "?user_id=alice"),
        (b"  ".as_slice(), "?user_id=alice"),
    ] {
        let response = get(header, query).await.unwrap();
        let body = chat_tests::assert_error(response, 422, "validation_failed").await;
        assert!(body["error"]["message"].as_str().unwrap().starts_with("user_id:"), "{body}");
    }
    // Non-ASCII names are for `user_id`, in the body or the query.
    let named: Value =
        app.get(&format!("/rooms/{room}/messages?user_id=олег")).await.json().await.unwrap();
    assert_eq!(named["items"], json!([]));

    for body in [json!(["x"]), json!([null, null]), json!("x"), json!(7)] {
        let posted = app.post(&format!("/rooms/{room}/messages"), body.clone()).await;
        chat_tests::assert_error(posted, 422, "validation_failed").await;
        let patched = app.patch(&format!("/rooms/{room}"), body).await;
        chat_tests::assert_error(patched, 422, "validation_failed").await;
    }
}

/// With authentication required, an operation whose handler never asks who
/// calls (the GrainTrade participants list) refuses a request without a token
/// all the same, as the description says of every operation but the public ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_but_the_public_ones_needs_a_token() {
    let mut settings = sqlite_settings();
    settings.auth_mode = Some(AuthMode::Required);
    settings.jwt_secret = Some(SECRET.to_owned());
    let app = TestApp::start_with(settings).await;
    chat_tests::assert_error(app.get("/chat/77/participants").await, 401, "unauthorized").await;
    let token = hs256("alice", &[]);
    let allowed = app.client.get(app.url("/chat/77/participants")).bearer_auth(&token).send();
    assert_eq!(allowed.await.unwrap().status(), 200);
    for public in ["/health", "/openapi.json", "/metrics", "/docs", "/"] {
        assert_eq!(app.get(public).await.status(), 200, "{public} is public");
    }
}
