//! Two instances (Postgres + Redis) behind the project's own nginx
//! (`deploy/nginx.conf`, ports adjusted by `scripts/nginx_local.sh`): REST calls
//! and socket upgrades pass through, sockets are spread over both instances and
//! hear each other, the caller's request id comes back, and the service's own
//! page keeps its origin through the proxy while foreign origins are refused.

use chat_tests::metrics::Scrape;
use chat_tests::nginx::Nginx;
use chat_tests::{TestApp, fresh_postgres_database, reachable_redis, test_settings};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket through nginx as a browser on `origin` would.
async fn socket_with_origin(nginx: &Nginx, path: &str, origin: &str) -> Result<Stream, u16> {
    let url = format!("ws://127.0.0.1:{}{path}", nginx.port);
    let mut request = url.into_client_request().expect("a socket request");
    request.headers_mut().insert("origin", origin.parse().expect("an origin"));
    match tokio_tungstenite::connect_async(request).await {
        Ok((stream, _)) => Ok(stream),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// The next JSON frame of `kind`.
async fn next_of_type(stream: &mut Stream, kind: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(chat_tests::socket::FRAME_WAIT, stream.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] == kind {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_sockets_pass_through_the_projects_nginx() {
    let Some(redis) = reachable_redis().await else { return };
    let Some(database) = fresh_postgres_database().await else { return };
    let mut settings = test_settings(&database);
    settings.redis_url = Some(redis);
    settings.redis_key_prefix = format!("chat-test-{}:", uuid::Uuid::new_v4().simple());
    // As docker-compose.yaml sets them behind nginx.
    settings.trust_forwarded_for = true;
    settings.cors_origins = Some("https://graintrade.example".to_owned());
    let a = TestApp::start_with(settings).await;
    let b = a.another(|_| {}).await;
    let Some(nginx) = Nginx::start(&[&a, &b]).await else { return };
    let client = reqwest::Client::new();

    let created = client
        .post(format!("{}/rooms", nginx.url()))
        .header("x-user-id", "alice")
        .header("x-request-id", "through-nginx-1")
        .json(&json!({"name": "Behind nginx"}))
        .send()
        .await
        .expect("nginx answers");
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["x-request-id"], "through-nginx-1", "the caller's id comes back");
    let room = created.json::<Value>().await.expect("a room")["id"].as_i64().expect("room id");

    // The page served through nginx has nginx's address as its origin.
    let own = nginx.url();
    let mut sockets = Vec::new();
    for n in 0..4 {
        let path = format!("/ws/{room}?user_id=u{n}");
        let mut socket = socket_with_origin(&nginx, &path, &own).await.expect("upgraded");
        next_of_type(&mut socket, "joined").await;
        sockets.push(socket);
    }
    for app in [&a, &b] {
        let open = Scrape::of(app).await.value("chat_sockets_open", &[("kind", "room")]);
        assert!(open >= 1.0, "nginx spreads sockets over both instances ({open} on one)");
    }
    // Each answer names the instance that gave it, through nginx too.
    let mut answered_by = std::collections::HashSet::new();
    for app in [&a, &b] {
        let direct = app.get("/health").await;
        let id = direct.headers()["x-instance-id"].to_str().expect("text").to_owned();
        assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        answered_by.insert(id);
    }
    assert_eq!(answered_by.len(), 2, "two instances, two ids");
    let through =
        client.get(format!("{}/health", nginx.url())).send().await.expect("nginx answers");
    let id = through.headers()["x-instance-id"].to_str().expect("text").to_owned();
    assert!(answered_by.contains(&id), "nginx passes the instance's id on: {id}");
    let path = format!("/ws/{room}?user_id=mallory");
    let foreign = socket_with_origin(&nginx, &path, "https://evil.example").await;
    assert_eq!(foreign.err(), Some(403), "a foreign page is refused");

    let posted = client
        .post(format!("{}/rooms/{room}/messages", nginx.url()))
        .header("x-user-id", "alice")
        .json(&json!({"content": "heard on every instance"}))
        .send()
        .await
        .expect("nginx answers");
    assert_eq!(posted.status(), 201);
    let id = posted.json::<Value>().await.expect("a message")["id"].clone();
    for socket in &mut sockets {
        assert_eq!(next_of_type(socket, "message").await["id"], id);
    }
    drop(nginx);
    b.shutdown().await;
    a.shutdown().await;
}
