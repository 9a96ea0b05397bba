//! Structured logs: every line written while serving a request or a socket
//! names that request (its id), the user and the room. The real router runs
//! with the production JSON format, writing into a buffer the test reads.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use chat_api::settings::LogFormat;
use chat_tests::TestApp;
use serde_json::{Value, json};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Every line so far, parsed: each must be one JSON object.
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .expect("logs are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

/// The process-wide subscriber of this test binary: the service's JSON layer
/// (as in production) at debug level, into one buffer.
fn captured() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            tracing_subscriber::registry()
                .with(chat_api::telemetry::filter("info,chat_api=debug,tower_http=debug"))
                .with(chat_api::telemetry::layer(LogFormat::Json, captured.clone()))
                .init();
            captured
        })
        .clone()
}

/// The fields of the named span of a line, if the line was written inside it.
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

fn lines_of_request(lines: &[Value], request_id: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| span(l, "request").is_some_and(|s| s["request_id"] == request_id))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_request_carries_its_request_id_user_and_room() {
    let logs = captured();
    let app = TestApp::sqlite().await;
    let room = app.create_room("Logged").await;
    let id = |name: &str| format!("{name}-{}", uuid::Uuid::new_v4());
    let (posting, missing) = (id("post"), id("missing"));

    // Two requests in flight at once, each with its own id.
    let post = app
        .client
        .post(app.url(&format!("/rooms/{room}/messages")))
        .header("x-request-id", posting.as_str())
        .json(&json!({"content": "hello logs", "user_id": "alice"}));
    let get = app
        .client
        .get(app.url("/rooms/987654/messages"))
        .header("x-request-id", missing.as_str())
        .header("x-user-id", "bob");
    let (posted, not_found) = tokio::join!(post.send(), get.send());
    assert_eq!(posted.unwrap().status(), 201);
    assert_eq!(not_found.unwrap().status(), 404);

    let lines = logs.lines();
    let of_post = lines_of_request(&lines, &posting);
    let of_get = lines_of_request(&lines, &missing);
    // At least the request's start and its response (with status and latency).
    assert!(of_post.len() >= 2, "lines of the post: {of_post:#?}");
    assert!(of_get.len() >= 2, "lines of the 404: {of_get:#?}");
    // User and room are known once the handler has read the request: on every
    // line but the one that says the request arrived.
    let identified = |line: &&Value| line["fields"]["message"] != "started processing request";
    for line in &of_post {
        let fields = span(line, "request").unwrap();
        assert_eq!(fields["route"], "/rooms/{room_id}/messages", "{line}");
        assert!(!line.to_string().contains(&missing), "no line mixes the two requests: {line}");
    }
    for line in of_post.iter().filter(identified) {
        let fields = span(line, "request").unwrap();
        assert_eq!(fields["user"], "alice", "{line}");
        assert_eq!(fields["room"], room, "{line}");
    }
    for line in of_get.iter().filter(identified) {
        let fields = span(line, "request").unwrap();
        assert_eq!(fields["user"], "bob", "{line}");
        assert_eq!(fields["room"], 987654, "{line}");
    }
    let response = of_post
        .iter()
        .find(|l| l["fields"]["message"] == "finished processing request")
        .expect("the response is logged");
    assert_eq!(response["level"], "INFO");
    assert_eq!(response["fields"]["status"], 201);

    // Nothing written in a request's span lacks its id.
    for line in &lines {
        if let Some(fields) = span(line, "request") {
            assert!(
                fields["request_id"].as_str().is_some_and(|id| !id.is_empty() && id != "-"),
                "{line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_socket_carries_its_connection_request_id_user_and_room() {
    let logs = captured();
    let app = TestApp::sqlite().await;
    let room = app.create_room("Logged socket").await;
    let upgrade_id = format!("socket-{}", uuid::Uuid::new_v4());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url(&format!("/ws/{room}?user_id=carol")),
        )
        .unwrap();
    request.headers_mut().insert("x-request-id", upgrade_id.parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("socket connects");
    let mut socket = chat_tests::socket::Socket { stream };
    assert_eq!(socket.next_json().await["type"], "joined");
    socket.send_json(json!({"type": "message", "content": "hi"})).await;
    assert_eq!(socket.next_json().await["type"], "message");
    socket.close().await;

    // The close is logged after the client saw it: poll for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let of_socket = loop {
        let of_socket: Vec<Value> = logs
            .lines()
            .into_iter()
            .filter(|l| span(l, "socket").is_some_and(|s| s["request_id"] == upgrade_id.as_str()))
            .collect();
        if of_socket.iter().any(|l| l["fields"]["message"] == "socket closed") {
            break of_socket;
        }
        assert!(std::time::Instant::now() < deadline, "socket close not logged: {of_socket:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(of_socket.iter().any(|l| l["fields"]["message"] == "socket open"));
    let connection = span(&of_socket[0], "socket").unwrap()["connection"].clone();
    assert!(connection.as_str().is_some_and(|c| c.len() >= 32), "{connection}");
    for line in &of_socket {
        let fields = span(line, "socket").unwrap();
        assert_eq!(fields["connection"], connection, "{line}");
        assert_eq!(fields["user"], "carol", "{line}");
        assert_eq!(fields["room"], room, "{line}");
    }
}

/// A browser shows its page nothing of a refused upgrade, so the log says which
/// origin was refused, inside the upgrade request's span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_socket_upgrade_is_logged_with_its_origin() {
    let logs = captured();
    let app = TestApp::sqlite().await;
    let app = app.another(|s| s.cors_origins = Some("https://graintrade.example".to_owned())).await;
    let room = app.create_room("Refusals").await;
    let request_id = format!("refused-{}", uuid::Uuid::new_v4());
    let refused = app
        .client
        .get(app.url(&format!("/ws/{room}?user_id=alice")))
        .header("x-request-id", request_id.as_str())
        .header("origin", "https://elsewhere.example")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let lines = logs.lines();
    let warning = lines_of_request(&lines, &request_id)
        .into_iter()
        .find(|l| l["level"] == "WARN")
        .unwrap_or_else(|| panic!("a warning for the refused upgrade: {lines:#?}"));
    assert_eq!(warning["fields"]["origin"], "https://elsewhere.example", "{warning}");
    assert_eq!(warning["fields"]["allowed"], "https://graintrade.example", "{warning}");
    assert!(warning["fields"]["message"].as_str().unwrap().contains("CORS_ORIGINS"), "{warning}");
}
