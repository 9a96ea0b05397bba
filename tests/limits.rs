//! Rate limits: messages per user (one budget for REST and sockets, shared by
//! instances through Redis), requests and new sockets per client address, open
//! sockets per user, and a flooding socket answered `rate_limited`, then closed
//! with 1008 while the room keeps working for everyone else.
//!
//! Buckets refill so slowly here (one token per 1000 s) that no token comes back
//! during a test: every count below is exact, whatever the machine's speed.

use chat_api::Settings;
use chat_tests::{TestApp, assert_error, test_settings};
use serde_json::{Value, json};

const NO_REFILL: f64 = 0.001;

fn sqlite_settings() -> Settings {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    test_settings(&format!("sqlite://{}?mode=rwc", file.display()))
}

async fn with_message_budget(burst: u32) -> TestApp {
    let mut settings = sqlite_settings();
    settings.rate_limit_messages_per_second = NO_REFILL;
    settings.rate_limit_messages_burst = burst;
    TestApp::start_with(settings).await
}

async fn post(app: &TestApp, room: i64, user: &str, content: &str) -> reqwest::Response {
    app.post(&format!("/rooms/{room}/messages"), json!({"content": content, "user_id": user})).await
}

async fn retry_after(response: reqwest::Response) -> u64 {
    let seconds = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After holds whole seconds");
    assert_error(response, 429, "rate_limited").await;
    seconds
}

async fn history_count(app: &TestApp, room: i64) -> usize {
    let page: Value =
        app.get(&format!("/rooms/{room}/messages?limit=100")).await.json().await.unwrap();
    page["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_the_message_budget_gets_429_with_retry_after_and_nothing_is_stored() {
    let app = with_message_budget(3).await;
    let room = app.create_room("Budget").await;
    for i in 0..3 {
        assert_eq!(post(&app, room, "alice", &format!("m{i}")).await.status(), 201);
    }
    let seconds = retry_after(post(&app, room, "alice", "one too many").await).await;
    assert!(seconds >= 1, "Retry-After {seconds}");
    assert_eq!(post(&app, room, "bob", "bob has his own budget").await.status(), 201);
    assert_eq!(history_count(&app, room).await, 4, "the refused message was not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_socket_spend_one_budget_and_the_socket_gets_rate_limited_frames() {
    let app = with_message_budget(3).await;
    let room = app.create_room("Shared budget").await;
    assert_eq!(post(&app, room, "alice", "rest 1").await.status(), 201);
    assert_eq!(post(&app, room, "alice", "rest 2").await.status(), 201);
    let (mut socket, _) = app.joined_socket(room, "alice").await;
    socket
        .send_json(json!({"type": "message", "content": "socket 1", "client_msg_id": "s1"}))
        .await;
    assert_eq!(socket.next_of_type("message").await["client_msg_id"], "s1");
    socket
        .send_json(json!({"type": "message", "content": "socket 2", "client_msg_id": "s2"}))
        .await;
    let error = socket.next_of_type("error").await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    assert_eq!(error["client_msg_id"], "s2");
    assert!(error["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{error}");
    socket.send_json(json!({"type": "ping"})).await;
    assert_eq!(socket.next_json().await["type"], "pong", "the socket stays open");
    retry_after(post(&app, room, "alice", "rest 3").await).await;
    assert_eq!(history_count(&app, room).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_socket_is_closed_with_1008_and_does_not_hold_up_the_room() {
    let mut settings = sqlite_settings();
    settings.rate_limit_messages_per_second = NO_REFILL;
    settings.rate_limit_messages_burst = 5;
    settings.ws_flood_strikes = 20;
    let app = TestApp::start_with(settings).await;
    let room = app.create_room("Flood").await;
    let (mut flooder, _) = app.joined_socket(room, "mallory").await;
    let (mut observer, _) = app.joined_socket(room, "olga").await;
    let (mut bob, _) = app.joined_socket(room, "bob").await;

    // Everything is written before anything is read: the server must cope.
    for i in 0..200 {
        let frame = json!({"type": "message", "content": format!("flood {i}"), "client_msg_id": format!("f{i}")});
        if futures::SinkExt::send(&mut flooder.stream, frame.to_string().into()).await.is_err() {
            break; // closed under us: that is the point
        }
    }
    bob.send_json(
        json!({"type": "message", "content": "business as usual", "client_msg_id": "b1"}),
    )
    .await;

    let mut limited = 0;
    let ended = loop {
        match tokio::time::timeout(
            chat_tests::socket::FRAME_WAIT,
            futures::StreamExt::next(&mut flooder.stream),
        )
        .await
        .expect("the flooder hears back in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "error" {
                    assert_eq!(frame["code"], "rate_limited", "{frame}");
                    assert!(frame["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
                    limited += 1;
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                break frame.map(|f| u16::from(f.code));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    assert_eq!(ended, Some(1008), "the flooder is closed with 1008");
    assert_eq!(limited, 20, "20 rate_limited answers, then the close");

    // Bob's messages reach the room, during the flood and after it.
    let mut from_bob = Vec::new();
    while from_bob.len() < 2 {
        let frame = observer.next_of_type("message").await;
        if frame["user_id"] == "bob" {
            from_bob.push(frame["content"].as_str().unwrap().to_owned());
            if from_bob.len() == 1 {
                bob.send_json(json!({"type": "message", "content": "still here"})).await;
            }
        }
    }
    assert_eq!(from_bob, ["business as usual", "still here"]);
    let page: Value =
        app.get(&format!("/rooms/{room}/messages?limit=100")).await.json().await.unwrap();
    let by = |user: &str| {
        page["items"].as_array().unwrap().iter().filter(|m| m["user_id"] == user).count()
    };
    assert_eq!(by("mallory"), 5, "only the flooder's burst was stored");
    assert_eq!(by("bob"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_requests_per_address_are_limited_but_health_is_not() {
    let mut settings = sqlite_settings();
    settings.rate_limit_http_per_second = NO_REFILL;
    settings.rate_limit_http_burst = 5;
    let app = TestApp::start_with(settings).await;
    for _ in 0..5 {
        assert_eq!(app.get("/rooms").await.status(), 200);
    }
    let response = app
        .client
        .get(app.url("/rooms"))
        .header("origin", "https://app.graintrade.example")
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().contains_key("access-control-allow-origin"),
        "a browser can read the 429"
    );
    assert!(retry_after(response).await >= 1);
    assert_eq!(app.get("/health").await.status(), 200, "health checks are not counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget() {
    let mut settings = sqlite_settings();
    settings.rate_limit_http_per_second = NO_REFILL;
    settings.rate_limit_http_burst = 2;
    settings.trust_forwarded_for = true;
    let app = TestApp::start_with(settings).await;
    let from = |ip: &'static str| {
        let request = app.client.get(app.url("/rooms")).header("x-forwarded-for", ip);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(from("203.0.113.1").await, 200);
    assert_eq!(from("203.0.113.1").await, 200);
    assert_eq!(from("203.0.113.1").await, 429);
    assert_eq!(from("203.0.113.2").await, 200, "another client is not held back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sockets_per_address_and_open_sockets_per_user_are_limited() {
    let mut settings = sqlite_settings();
    settings.rate_limit_ws_connects_per_second = NO_REFILL;
    settings.rate_limit_ws_connects_burst = 3;
    let app = TestApp::start_with(settings).await;
    let room = app.create_room("Connects").await;
    let mut open = Vec::new();
    for user in ["a", "b", "c"] {
        open.push(app.joined_socket(room, user).await.0);
    }
    match tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{room}?user_id=d"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 429, got {other:?}"),
    }

    let mut settings = sqlite_settings();
    settings.ws_max_sockets_per_user = 2;
    let app = TestApp::start_with(settings).await;
    let room = app.create_room("Per user").await;
    let (first, _) = app.joined_socket(room, "alice").await;
    let (_second, _) = app.joined_socket(room, "alice").await;
    match tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{room}?user_id=alice"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("expected 429 for a third socket, got {other:?}"),
    }
    let (_bob, _) = app.joined_socket(room, "bob").await;
    first.close().await;
    // The slot comes back when the server has finished with the socket.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/{room}?user_id=alice")))
            .await
        {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "slot never came back: {e}"),
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_share_each_users_message_budget() {
    let Some(redis) = chat_tests::reachable_redis().await else { return };
    let Some(database) = chat_tests::fresh_postgres_database().await else { return };
    let mut settings = test_settings(&database);
    settings.redis_url = Some(redis);
    settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
    settings.rate_limit_messages_per_second = NO_REFILL;
    settings.rate_limit_messages_burst = 3;
    let a = TestApp::start_with(settings).await;
    let b = a.another(|_| {}).await;
    let room = a.create_room("Everywhere").await;
    assert_eq!(post(&a, room, "alice", "on a").await.status(), 201);
    assert_eq!(post(&b, room, "alice", "on b").await.status(), 201);
    assert_eq!(post(&a, room, "alice", "on a again").await.status(), 201);
    retry_after(post(&b, room, "alice", "over the shared budget").await).await;
    assert_eq!(post(&b, room, "bob", "bob is fine").await.status(), 201);
}

/// Settings of a service on a new Postgres database sharing Redis (its own key
/// prefix) at `redis_url`, or `None` (skipped) without the servers.
async fn shared_settings(redis_url: Option<String>) -> Option<Settings> {
    let redis = match redis_url {
        Some(url) => url,
        None => chat_tests::reachable_redis().await?,
    };
    let database = chat_tests::fresh_postgres_database().await?;
    let mut settings = test_settings(&database);
    settings.redis_url = Some(redis);
    settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
    Some(settings)
}

/// What the upgrade of a socket to `path` answered: 101, or the refusal's status.
async fn upgrade_status(app: &TestApp, path: &str) -> u16 {
    match tokio_tungstenite::connect_async(app.ws_url(path)).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_share_the_limits_per_address() {
    let Some(mut settings) = shared_settings(None).await else { return };
    settings.rate_limit_http_per_second = NO_REFILL;
    settings.rate_limit_http_burst = 3;
    settings.rate_limit_ws_connects_per_second = NO_REFILL;
    settings.rate_limit_ws_connects_burst = 3;
    let a = TestApp::start_with(settings).await;
    let b = a.another(|_| {}).await;
    assert_eq!(a.get("/rooms").await.status(), 200);
    assert_eq!(b.get("/rooms").await.status(), 200);
    assert_eq!(a.get("/rooms").await.status(), 200);
    let refused = b.get("/rooms").await;
    assert_eq!(refused.status(), 429, "the fourth request, on either instance");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(a.get("/rooms").await.status(), 429);

    // Sockets are counted apart from requests (and `/ws` is not a REST request).
    for (app, user) in [(&a, "a"), (&b, "b"), (&a, "c")] {
        assert_eq!(upgrade_status(app, &format!("/ws?user_id={user}")).await, 101);
    }
    assert_eq!(upgrade_status(&b, "/ws?user_id=d").await, 429, "the fourth new socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sharing_redis_share_each_users_socket_cap() {
    let Some(mut settings) = shared_settings(None).await else { return };
    settings.ws_max_sockets_per_user = 2;
    let a = TestApp::start_with(settings).await;
    let b = a.another(|_| {}).await;
    let room = a.create_room("Capped").await;
    let (first, _) = a.joined_socket(room, "alice").await;
    let (_second, _) = b.joined_socket(room, "alice").await;
    let third = format!("/ws/{room}?user_id=alice");
    assert_eq!(upgrade_status(&a, &third).await, 429, "a third socket, here");
    assert_eq!(upgrade_status(&b, &third).await, 429, "a third socket, there");
    assert_eq!(upgrade_status(&b, "/ws?user_id=alice").await, 429, "of any kind");
    let (_bob, _) = b.joined_socket(room, "bob").await;
    first.close().await;
    // The slot comes back once A has finished with the socket.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while upgrade_status(&b, &third).await != 101 {
        assert!(std::time::Instant::now() < deadline, "the slot never came back");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limits_let_everything_through_while_redis_is_away() {
    let Some(redis_url) = chat_tests::reachable_redis().await else { return };
    let address =
        redis_url.trim_start_matches("redis://").split('/').next().unwrap_or("").to_owned();
    let proxy = chat_tests::proxy::Proxy::start(&address).await;
    let through = redis_url.replacen(&address, &format!("127.0.0.1:{}", proxy.port), 1);
    let Some(mut settings) = shared_settings(Some(through)).await else { return };
    settings.rate_limit_http_per_second = NO_REFILL;
    settings.rate_limit_http_burst = 1;
    settings.ws_max_sockets_per_user = 1;
    let app = TestApp::start_with(settings).await;
    assert_eq!(app.get("/rooms").await.status(), 200);
    assert_eq!(app.get("/rooms").await.status(), 429, "the budget holds while Redis is up");
    proxy.cut().await;
    for _ in 0..3 {
        assert_eq!(app.get("/rooms").await.status(), 200, "fails open without Redis");
    }
    // The cap on this instance still holds without Redis.
    let _carol = app.inbox_socket("carol").await;
    assert_eq!(upgrade_status(&app, "/ws?user_id=carol").await, 429);
}
