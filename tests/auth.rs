//! Authentication required: the token table on REST and on the socket upgrade,
//! identity spoofing refused on every path, and a socket closed when its token
//! expires.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use chat_api::settings::AuthMode;
use chat_tests::socket::Ended;
use chat_tests::{TestApp, test_settings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-that-is-long-enough";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn token_with(alg: Algorithm, secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap()
}

fn token(sub: &str) -> String {
    token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": sub, "exp": now() + 600, "iss": "graintrade", "aud": "chat"}),
    )
}

async fn secured() -> TestApp {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    let mut settings = test_settings(&format!("sqlite://{}?mode=rwc", file.display()));
    settings.auth_mode = Some(AuthMode::Required);
    settings.jwt_secret = Some(SECRET.to_owned());
    settings.jwt_issuer = Some("graintrade".to_owned());
    settings.jwt_audience = Some("chat".to_owned());
    TestApp::start_with(settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_cases_on_rest_and_on_the_socket_upgrade() {
    let app = secured().await;
    let alice = token("alice");
    let created = app
        .client
        .post(app.url("/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "Secure"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let room: Value = created.json().await.unwrap();
    assert_eq!(room["created_by"], "alice", "identity comes from the token");
    let room = room["id"].as_i64().unwrap();

    let none_alg = {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = engine.encode(
            json!({"sub": "alice", "exp": now() + 600, "iss": "graintrade", "aud": "chat"})
                .to_string(),
        );
        format!("{header}.{claims}.")
    };
    let base = json!({"sub": "alice", "iss": "graintrade", "aud": "chat"});
    let with = |extra: Value| {
        let mut claims = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("expired", Some(token_with(Algorithm::HS256, SECRET, with(json!({"exp": now() - 120}))))),
        (
            "not yet valid",
            Some(token_with(
                Algorithm::HS256,
                SECRET,
                with(json!({"exp": now() + 600, "nbf": now() + 300})),
            )),
        ),
        (
            "wrong signature",
            Some(token_with(Algorithm::HS256, "another-secret", with(json!({"exp": now() + 600})))),
        ),
        (
            "wrong algorithm",
            Some(token_with(Algorithm::HS384, SECRET, with(json!({"exp": now() + 600})))),
        ),
        ("alg none", Some(none_alg)),
        ("no exp", Some(token_with(Algorithm::HS256, SECRET, base.clone()))),
        (
            "wrong issuer",
            Some(token_with(
                Algorithm::HS256,
                SECRET,
                with(json!({"exp": now() + 600, "iss": "evil"})),
            )),
        ),
        (
            "wrong audience",
            Some(token_with(
                Algorithm::HS256,
                SECRET,
                with(json!({"exp": now() + 600, "aud": "other"})),
            )),
        ),
        (
            "no issuer",
            Some(token_with(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "alice", "exp": now() + 600, "aud": "chat"}),
            )),
        ),
        (
            "no audience",
            Some(token_with(
                Algorithm::HS256,
                SECRET,
                json!({"sub": "alice", "exp": now() + 600, "iss": "graintrade"}),
            )),
        ),
        ("malformed", Some("not.a.token".to_owned())),
    ];
    for (case, token) in cases {
        let mut request = app.client.get(app.url(&format!("/rooms/{room}")));
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "REST, {case}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{case}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{case}");

        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        // Every socket upgrade: the room's and the GrainTrade conversation's.
        for path in [format!("/ws/{room}{query}"), format!("/ws/chat/9/bob{query}")] {
            match tokio_tungstenite::connect_async(app.ws_url(&path)).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 401, "socket {path}, {case}")
                }
                other => panic!("socket {path}, {case}: expected 401, got {other:?}"),
            }
        }
    }
    // The valid token works in the header and in `?token=`, on REST and the socket.
    assert_eq!(
        app.client
            .get(app.url(&format!("/rooms/{room}")))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.get(&format!("/rooms/{room}?token={alice}")).await.status(), 200);
    let mut socket = app.socket(room, &format!("token={alice}")).await;
    let joined = socket.next_json().await;
    assert_eq!(joined["user_id"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_other_than_the_tokens_is_refused_everywhere() {
    let app = secured().await;
    let alice = token("alice");
    let room: Value = app
        .client
        .post(app.url("/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = room["id"].as_i64().unwrap();
    let spoofed = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .bearer_auth(&alice)
        .json(&json!({"content": "hi", "user_id": "mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 403);
    let own = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .bearer_auth(&alice)
        .json(&json!({"content": "hi", "user_id": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);

    let mut socket = app.socket(room, &format!("token={alice}")).await;
    assert_eq!(socket.next_json().await["type"], "joined");
    socket.send_json(json!({"type": "message", "content": "x", "user_id": "mallory"})).await;
    let error = socket.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "forbidden");

    let mut legacy = app.socket_at(&format!("/ws/chat/9/bob?token={alice}")).await;
    legacy
        .send_json(
            json!({"sender_id": "mallory", "receiver_id": "bob", "item_id": "9", "content": "x"}),
        )
        .await;
    assert_eq!(legacy.next_json().await, json!({"error": "sender_id does not match the token"}));
    let history = app
        .client
        .get(app.url("/chat/9/bob/history?current_user=mallory"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 403);
    let history = app
        .client
        .get(app.url("/chat/9/bob/history?current_user=alice"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_token_expires() {
    let app = secured().await;
    let alice = token("alice");
    let room: Value = app
        .client
        .post(app.url("/rooms"))
        .bearer_auth(&alice)
        .json(&json!({"name": "Short"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short = token_with(
        Algorithm::HS256,
        SECRET,
        json!({"sub": "alice", "exp": now() + 2, "iss": "graintrade", "aud": "chat"}),
    );
    let mut socket = app.socket(room["id"].as_i64().unwrap(), &format!("token={short}")).await;
    assert_eq!(socket.next_json().await["type"], "joined");
    assert_eq!(socket.until_closed().await, Ended::Closed(Some(4401)));
}
