//! A WebSocket test client over tokio-tungstenite, with bounded waits: every
//! read gives up after a deadline so a missing frame fails the test instead of
//! hanging it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestApp;

/// How long a test waits for a frame that should come.
pub const FRAME_WAIT: Duration = Duration::from_secs(15);

pub struct Socket {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What ended a socket, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl TestApp {
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.address.replacen("http://", "ws://", 1), path_and_query)
    }

    /// Opens `/ws/{room}?{query}`; panics if the upgrade fails.
    pub async fn socket(&self, room: i64, query: &str) -> Socket {
        let url = self.ws_url(&format!("/ws/{room}?{query}"));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("socket connects");
        Socket { stream }
    }

    /// Opens a socket at any path (e.g. `/ws/room_123?user_id=x`).
    pub async fn socket_at(&self, path_and_query: &str) -> Socket {
        let (stream, _) = tokio_tungstenite::connect_async(self.ws_url(path_and_query))
            .await
            .expect("socket connects");
        Socket { stream }
    }

    /// Opens the inbox socket `/ws` of `user` and reads its `ready` frame.
    pub async fn inbox_socket(&self, user: &str) -> Socket {
        let mut socket = self.socket_at(&format!("/ws?user_id={user}")).await;
        let ready = socket.next_json().await;
        assert_eq!(ready, serde_json::json!({"type": "ready", "user_id": user}), "first frame");
        socket
    }

    /// Opens a socket and reads its `joined` frame.
    pub async fn joined_socket(&self, room: i64, user: &str) -> (Socket, Value) {
        let mut socket = self.socket(room, &format!("user_id={user}")).await;
        let joined = socket.next_json().await;
        assert_eq!(joined["type"], "joined", "first frame is joined: {joined}");
        (socket, joined)
    }
}

impl Socket {
    pub async fn send_json(&mut self, value: Value) {
        self.stream.send(Message::Text(value.to_string().into())).await.expect("frame is sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::Text(text.to_owned().into())).await.expect("frame is sent");
    }

    /// The next JSON text frame (pings and pongs are skipped).
    pub async fn next_json(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("a frame arrives in time")
                .expect("socket still open")
                .expect("frame reads");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("frame is JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a JSON frame, got {other:?}"),
            }
        }
    }

    /// The next frame of `kind`, skipping others (presence, typing …).
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the socket ends; returns the close code, if a close frame came.
    pub async fn until_closed(&mut self) -> Ended {
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("the socket ends in time");
            match frame {
                None => return Ended::Dropped,
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => {
                    return Ended::Dropped;
                }
                Some(Err(_)) => return Ended::Dropped,
                Some(Ok(Message::Close(frame))) => {
                    return Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads until the socket ends: the JSON frames that came, and how it ended.
    pub async fn frames_until_closed(&mut self) -> (Vec<Value>, Ended) {
        let mut frames = Vec::new();
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("the socket ends in time");
            match frame {
                None | Some(Err(_)) => return (frames, Ended::Dropped),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f: CloseFrame| u16::from(f.code));
                    return (frames, Ended::Closed(code));
                }
                Some(Ok(Message::Text(text))) => {
                    frames.push(serde_json::from_str(&text).expect("frame is JSON"));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Subscribes an inbox socket to a room and reads the `subscribed` frame,
    /// which must be the room's first frame on the socket (the user's own
    /// events about the room, `unread` and the like, may come before it).
    pub async fn subscribe(&mut self, room: i64, since: Option<i64>) -> Value {
        let mut frame = serde_json::json!({"type": "subscribe", "room_id": room});
        if let Some(since) = since {
            frame["since"] = since.into();
        }
        self.send_json(frame).await;
        loop {
            let frame = self.next_json().await;
            let own_event = matches!(frame["type"].as_str(), Some("unread" | "room_added"));
            if (frame["room_id"] == room && !own_event) || frame["type"] == "error" {
                assert_eq!(frame["type"], "subscribed", "answer to subscribe: {frame}");
                return frame;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}
