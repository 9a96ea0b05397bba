//! Clients that keep sending into a room over REST and WebSocket while a test
//! breaks things, and a ledger of what each saw acknowledged. Every message has
//! a `client_msg_id`; a client retries it (same key) until it is acknowledged —
//! a 201/200 over REST, or its own echo on its socket — so afterwards the
//! database must hold exactly the acknowledged messages, each once.
//!
//! Failures are allowed only inside an outage the test announced
//! ([`Load::outage_begins`] … [`Load::outage_ends`]); one outside it, or of a
//! kind the contract never allows (a 500, a hang), is recorded as unexpected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// The longest one request or one socket answer may take: longer is a hang.
const ANSWER_WAIT: Duration = Duration::from_secs(20);
/// How long a client keeps retrying one message before it gives up (a failure).
const GIVE_UP: Duration = Duration::from_secs(90);
/// Pause before a retry, so an outage is not a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `http://host:port` of the service.
    pub base: String,
    pub room: i64,
    /// Starts every user id and key, so the test can find its rows and events.
    pub prefix: String,
    pub rest_clients: usize,
    pub ws_clients: usize,
    /// Pause between one client's acknowledged message and its next.
    pub pace: Duration,
}

/// A message a client saw acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub key: String,
    pub user: String,
    pub id: i64,
    pub seq: i64,
}

/// What the clients saw, once they stopped.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub acks: Vec<Ack>,
    /// `503 unavailable` answers and `unavailable` error frames (inside outages).
    pub rejections: usize,
    /// Refused connections, dropped requests, closed sockets (inside outages).
    pub disconnects: usize,
    /// Close codes of sockets the server closed.
    pub close_codes: Vec<Option<u16>>,
    /// Anything the contract does not allow, or a failure outside an outage.
    pub unexpected: Vec<String>,
}

struct Shared {
    spec: LoadSpec,
    stop: AtomicBool,
    /// Odd while an outage is on; bumped at its start and end.
    outage: AtomicU64,
    acks: Mutex<Vec<Ack>>,
    acked_by: Mutex<HashMap<String, usize>>,
    refused_by: Mutex<HashMap<String, usize>>,
    rejections: AtomicUsize,
    disconnects: AtomicUsize,
    close_codes: Mutex<Vec<Option<u16>>>,
    unexpected: Mutex<Vec<String>>,
}

impl Shared {
    fn generation(&self) -> u64 {
        self.outage.load(Ordering::Acquire)
    }

    /// Whether a failure of something that began at generation `since` may be
    /// the announced outage's doing.
    fn excused(&self, since: u64) -> bool {
        since % 2 == 1 || self.generation() != since
    }

    fn ack(&self, ack: Ack) {
        *self.acked_by.lock().unwrap().entry(ack.user.clone()).or_default() += 1;
        self.acks.lock().unwrap().push(ack);
    }

    fn rejected(&self, user: &str, since: u64, what: String) {
        if self.excused(since) {
            *self.refused_by.lock().unwrap().entry(user.to_owned()).or_default() += 1;
            self.rejections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unexpected(format!("rejected outside an outage: {what}"));
        }
    }

    fn disconnected(&self, since: u64, what: String) {
        if self.excused(since) {
            self.disconnects.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unexpected(format!("disconnected outside an outage: {what}"));
        }
    }

    fn unexpected(&self, what: String) {
        self.unexpected.lock().unwrap().push(what);
    }
}

/// Running clients; [`Load::finish`] stops them and returns the ledger.
pub struct Load {
    shared: Arc<Shared>,
    clients: Vec<JoinHandle<()>>,
    users: Vec<String>,
}

impl Load {
    pub fn start(spec: LoadSpec) -> Self {
        let shared = Arc::new(Shared {
            spec: spec.clone(),
            stop: AtomicBool::new(false),
            outage: AtomicU64::new(0),
            acks: Mutex::default(),
            acked_by: Mutex::default(),
            refused_by: Mutex::default(),
            rejections: AtomicUsize::new(0),
            disconnects: AtomicUsize::new(0),
            close_codes: Mutex::default(),
            unexpected: Mutex::default(),
        });
        let mut clients = Vec::new();
        let mut users = Vec::new();
        for n in 0..spec.rest_clients {
            let user = format!("{}-rest{n}", spec.prefix);
            users.push(user.clone());
            clients.push(tokio::spawn(rest_client(shared.clone(), user)));
        }
        for n in 0..spec.ws_clients {
            let user = format!("{}-ws{n}", spec.prefix);
            users.push(user.clone());
            clients.push(tokio::spawn(ws_client(shared.clone(), user)));
        }
        Self { shared, clients, users }
    }

    /// From now until [`Load::outage_ends`], failures are expected.
    pub fn outage_begins(&self) {
        let before = self.shared.outage.fetch_add(1, Ordering::AcqRel);
        assert_eq!(before % 2, 0, "an outage is already on");
    }

    pub fn outage_ends(&self) {
        let before = self.shared.outage.fetch_add(1, Ordering::AcqRel);
        assert_eq!(before % 2, 1, "no outage is on");
    }

    pub fn acks(&self) -> usize {
        self.shared.acks.lock().unwrap().len()
    }

    pub fn rejections(&self) -> usize {
        self.shared.rejections.load(Ordering::Relaxed)
    }

    /// Waits (at most `within`) until every client has had a message
    /// acknowledged after this call; panics naming the ones that did not.
    pub async fn wait_until_every_client_acks(&self, within: Duration) {
        self.wait_until_every_client(&self.shared.acked_by, "acknowledged", within).await;
    }

    /// Waits (at most `within`) until every client has had a send refused with
    /// `unavailable` after this call.
    pub async fn wait_until_every_client_is_refused(&self, within: Duration) {
        self.wait_until_every_client(&self.shared.refused_by, "refused", within).await;
    }

    async fn wait_until_every_client(
        &self,
        counts: &Mutex<HashMap<String, usize>>,
        what: &str,
        within: Duration,
    ) {
        let before = counts.lock().unwrap().clone();
        let deadline = Instant::now() + within;
        loop {
            let now = counts.lock().unwrap().clone();
            let stuck: Vec<&String> = self
                .users
                .iter()
                .filter(|u| {
                    now.get(*u).copied().unwrap_or(0) <= before.get(*u).copied().unwrap_or(0)
                })
                .collect();
            if stuck.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clients {stuck:?} got nothing {what} within {within:?}; unexpected so far: {:?}",
                self.shared.unexpected.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the clients (each finishes the message it is on) and returns the ledger.
    pub async fn finish(self) -> LoadReport {
        self.shared.stop.store(true, Ordering::Release);
        for client in self.clients {
            client.await.expect("a load client panicked");
        }
        let shared = &self.shared;
        LoadReport {
            acks: std::mem::take(&mut *shared.acks.lock().unwrap()),
            rejections: shared.rejections.load(Ordering::Relaxed),
            disconnects: shared.disconnects.load(Ordering::Relaxed),
            close_codes: std::mem::take(&mut *shared.close_codes.lock().unwrap()),
            unexpected: std::mem::take(&mut *shared.unexpected.lock().unwrap()),
        }
    }
}

fn content(key: &str) -> String {
    format!("load message {key}")
}

async fn rest_client(shared: Arc<Shared>, user: String) {
    let client = reqwest::Client::builder().timeout(ANSWER_WAIT).build().expect("http client");
    let url = format!("{}/rooms/{}/messages", shared.spec.base, shared.spec.room);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Acquire) {
        let key = format!("{user}-{n}");
        let body = json!({"content": content(&key), "user_id": user, "client_msg_id": key});
        let give_up = Instant::now() + GIVE_UP;
        loop {
            if Instant::now() > give_up {
                shared.unexpected(format!("{key}: never acknowledged over REST"));
                return;
            }
            let since = shared.generation();
            let response = match client.post(&url).json(&body).send().await {
                Ok(response) => response,
                Err(e) if e.is_timeout() => {
                    shared.unexpected(format!("{key}: no answer within {ANSWER_WAIT:?}"));
                    continue;
                }
                Err(e) => {
                    shared.disconnected(since, format!("{key}: {e}"));
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let Ok(answer) = response.json::<Value>().await else {
                shared.disconnected(since, format!("{key}: the answer to a {status} was cut"));
                continue;
            };
            match status {
                200 | 201 if answer["client_msg_id"] == key.as_str() => {
                    shared.ack(Ack {
                        key: key.clone(),
                        user: user.clone(),
                        id: answer["id"].as_i64().unwrap_or_default(),
                        seq: answer["seq"].as_i64().unwrap_or_default(),
                    });
                    break;
                }
                503 if answer["error"]["code"] == "unavailable" => {
                    shared.rejected(&user, since, format!("{key}: {answer}"));
                }
                _ => shared.unexpected(format!("{key}: {status} {answer}")),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        n += 1;
        tokio::time::sleep(shared.spec.pace).await;
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the room's socket (resuming after `since`) and reads `joined`.
async fn connect(
    shared: &Shared,
    user: &str,
    since: Option<i64>,
) -> Result<(WsStream, i64), String> {
    let base = shared.spec.base.replacen("http://", "ws://", 1);
    let mut url = format!("{base}/ws/{}?user_id={user}", shared.spec.room);
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    let (mut stream, _) = tokio::time::timeout(ANSWER_WAIT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| "the upgrade hung".to_owned())?
        .map_err(|e| format!("upgrade failed: {e}"))?;
    loop {
        match tokio::time::timeout(ANSWER_WAIT, stream.next()).await {
            Err(_) => return Err("no joined frame".to_owned()),
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                if frame["type"] == "joined" {
                    return Ok((stream, frame["last_seq"].as_i64().unwrap_or_default()));
                }
                return Err(format!("first frame is not joined: {frame}"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(format!("closed before joined: {frame:?}"));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => return Err(format!("dropped before joined: {other:?}")),
        }
    }
}

/// How one attempt to send a message over the socket ended.
enum Attempt {
    Acked,
    Retry,
    Reconnect,
}

async fn ws_client(shared: Arc<Shared>, user: String) {
    let mut socket: Option<WsStream> = None;
    // The newest seq this client has seen: where a reconnect resumes.
    let mut seen: Option<i64> = None;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Acquire) {
        let key = format!("{user}-{n}");
        let frame =
            json!({"type": "message", "content": content(&key), "client_msg_id": key}).to_string();
        let give_up = Instant::now() + GIVE_UP;
        loop {
            if Instant::now() > give_up {
                shared.unexpected(format!("{key}: never acknowledged over the socket"));
                return;
            }
            let since = shared.generation();
            let Some(stream) = socket.as_mut() else {
                match connect(&shared, &user, seen).await {
                    Ok((stream, last_seq)) => {
                        seen.get_or_insert(last_seq);
                        socket = Some(stream);
                    }
                    Err(e) => {
                        shared.disconnected(since, format!("{user}: {e}"));
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
                continue;
            };
            let attempt = if stream.send(Message::Text(frame.clone().into())).await.is_err() {
                shared.disconnected(since, format!("{key}: the frame could not be sent"));
                Attempt::Reconnect
            } else {
                await_answer(&shared, stream, &user, &key, since, &mut seen).await
            };
            match attempt {
                Attempt::Acked => break,
                Attempt::Retry => tokio::time::sleep(RETRY_PAUSE).await,
                Attempt::Reconnect => socket = None,
            }
        }
        n += 1;
        tokio::time::sleep(shared.spec.pace).await;
    }
    if let Some(mut stream) = socket {
        let _ = stream.close(None).await;
    }
}

/// Reads the socket until this message's echo or its error frame.
async fn await_answer(
    shared: &Shared,
    stream: &mut WsStream,
    user: &str,
    key: &str,
    since: u64,
    seen: &mut Option<i64>,
) -> Attempt {
    loop {
        let frame = match tokio::time::timeout(ANSWER_WAIT, stream.next()).await {
            Err(_) => {
                shared.unexpected(format!("{key}: no answer on the socket within {ANSWER_WAIT:?}"));
                return Attempt::Reconnect;
            }
            Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<Value>(&text) {
                Ok(frame) => frame,
                Err(e) => {
                    shared.unexpected(format!("{key}: a frame is not JSON ({e}): {text}"));
                    continue;
                }
            },
            Ok(Some(Ok(Message::Close(close)))) => {
                let code = close.as_ref().map(|c| u16::from(c.code));
                shared.close_codes.lock().unwrap().push(code);
                shared.disconnected(since, format!("{key}: socket closed {close:?}"));
                return Attempt::Reconnect;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(other) => {
                shared.disconnected(since, format!("{key}: socket dropped {other:?}"));
                return Attempt::Reconnect;
            }
        };
        match frame["type"].as_str() {
            Some("message") => {
                if let Some(seq) = frame["seq"].as_i64() {
                    *seen = Some(seen.map_or(seq, |s| s.max(seq)));
                }
                if frame["client_msg_id"] == key && frame["user_id"] == user {
                    shared.ack(Ack {
                        key: key.to_owned(),
                        user: user.to_owned(),
                        id: frame["id"].as_i64().unwrap_or_default(),
                        seq: frame["seq"].as_i64().unwrap_or_default(),
                    });
                    return Attempt::Acked;
                }
            }
            Some("error") if frame["client_msg_id"] == key => {
                if frame["code"] == "unavailable" {
                    shared.rejected(user, since, format!("{key}: {frame}"));
                } else {
                    shared.unexpected(format!("{key}: {frame}"));
                }
                return Attempt::Retry;
            }
            Some("error") => shared.unexpected(format!("{key}: a stray error frame {frame}")),
            _ => {}
        }
    }
}
