//! The seed's Python client example, verbatim but for the port, against a dev
//! server. Needs python3 with `websockets`; without it the test is skipped and
//! says so, unless CHAT_TEST_REQUIRE_SERVERS=1 (CI installs it).

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use chat_tests::TestApp;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SEED_CLIENT: &str = include_str!("../examples/seed_python_client.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_python_client_works_verbatim() {
    let has_websockets = Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !has_websockets {
        let required = std::env::var("CHAT_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "python3 with the websockets package is required (pip install websockets)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: seed Python client (python3 -m pip install websockets)"
        );
        return;
    }
    let app = TestApp::sqlite().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let script = SEED_CLIENT.replace("localhost:8001", &format!("127.0.0.1:{port}"));
    let mut child = Command::new("python3")
        .args(["-u", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut received = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Hello from Python!");
            received.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    let _ = child.kill().await;
    assert_eq!(found, Ok(true), "the client printed its own message; it printed {received:?}");
    assert!(received[0].starts_with("Received: {'type': 'joined'"), "{received:?}");

    let rooms: Value = app.get("/rooms").await.json().await.unwrap();
    let room = rooms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "room_123")
        .expect("room_123 exists");
    let history: Value =
        app.get(&format!("/rooms/{}/messages", room["id"])).await.json().await.unwrap();
    assert_eq!(history["items"][0]["content"], "Hello from Python!");
    assert_eq!(history["items"][0]["user_id"], "user_456");
}
