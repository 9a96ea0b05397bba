//! A storm of random and malformed frames at a live socket — random bytes as
//! binary, random Unicode text, JSON with wrong types, invalid values, long
//! frames under the size limit — from a fixed seed and in a bounded count. Every
//! frame gets an `error` frame with the code the contract gives it, the socket
//! stays open, nothing is stored, and the room keeps working for others.
//! (`crates/api/tests/frame_properties.rs` checks the parser itself.)

use chat_tests::{TestApp, on_every_adapter_set};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

on_every_adapter_set!(a_storm_of_bad_frames_is_answered_frame_by_frame);

const FRAMES: usize = 2000;
const SEED: u64 = 0x5eed_f00d_cafe_0001;
/// Under the tests' 64 KiB frame limit (a frame over it closes the socket: 1009).
const MAX_FRAME: usize = 60_000;

/// A small deterministic generator (xorshift), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Any Unicode scalar value, often ASCII, sometimes a control character.
    fn char(&mut self) -> char {
        let code = match self.below(4) {
            0 => self.below(0x80) as u32,
            1 => self.below(0x20) as u32,
            2 => self.below(0x800) as u32,
            _ => self.below(0x11_0000) as u32,
        };
        char::from_u32(code).unwrap_or('\u{fffd}')
    }

    fn text(&mut self, chars: usize) -> String {
        (0..chars).map(|_| self.char()).collect()
    }

    /// A JSON value that is not a string.
    fn not_a_string(&mut self) -> Value {
        match self.below(6) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!(self.next() as f64 / 7.0),
            4 => json!([self.text(3), self.below(10)]),
            _ => json!({"nested": self.text(5)}),
        }
    }
}

/// One bad frame and the error code the contract gives it; a rejected message
/// frame that carries a string `client_msg_id` echoes it.
struct Bad {
    frame: Message,
    code: &'static str,
    echo: Option<String>,
}

fn bad_frame(rng: &mut Rng, n: usize) -> Bad {
    let key = format!("storm-{n}");
    let text = |value: Value| Message::Text(value.to_string().into());
    let invalid = |frame: Value, echo: bool| Bad {
        frame: text(frame),
        code: "validation_failed",
        echo: echo.then(|| key.clone()),
    };
    match rng.below(12) {
        // Random bytes as a binary frame.
        0 => Bad {
            frame: Message::Binary((0..rng.below(512)).map(|_| rng.next() as u8).collect()),
            code: "invalid_json",
            echo: None,
        },
        // Random Unicode text (JSON only by a fluke: classified as it parses).
        1 | 2 => {
            let chars = 1 + rng.below(300);
            let raw = rng.text(chars);
            let code = match serde_json::from_str::<Value>(&raw) {
                Err(_) => "invalid_json",
                Ok(_) => "unknown_type",
            };
            Bad { frame: Message::Text(raw.into()), code, echo: None }
        }
        // Long text under the frame limit that is not JSON.
        3 => {
            let mut raw = String::from("{\"type\":\"message\",\"content\":\"");
            while raw.len() < MAX_FRAME - 8 {
                raw.push(rng.char());
            }
            let code = match serde_json::from_str::<Value>(&raw) {
                Err(_) => "invalid_json",
                Ok(_) => "validation_failed",
            };
            Bad { frame: Message::Text(raw.into()), code, echo: None }
        }
        // JSON that is not an object, or whose type is not a known string.
        4 => Bad { frame: text(rng.not_a_string()), code: "unknown_type", echo: None },
        5 => {
            let kind = if rng.below(2) == 0 {
                rng.not_a_string()
            } else {
                json!(rng.pick(&["Message", "pong", "joined", "", "message ", "typing\u{0}"]))
            };
            Bad {
                frame: text(json!({"type": kind, "content": "x"})),
                code: "unknown_type",
                echo: None,
            }
        }
        // A message frame with a field of the wrong type.
        6 => {
            let mut frame = json!({"type": "message", "content": "x", "client_msg_id": key});
            let field = *rng.pick(&["content", "message_type", "user_id", "client_msg_id"]);
            let mut wrong = rng.not_a_string();
            if field != "content" && wrong.is_null() {
                wrong = json!(1); // null means absent for the optional fields
            }
            frame[field] = wrong;
            invalid(frame, field != "client_msg_id")
        }
        7 => invalid(json!({"type": "message", "client_msg_id": key}), true),
        // Well-typed values the rules refuse.
        8 => {
            let content = match rng.below(4) {
                0 => " \n\t ".repeat(1 + rng.below(50)),
                1 => format!("a{}b", char::from_u32(rng.below(0x20) as u32).unwrap_or('\0'))
                    .replace(['\n', '\t'], "\u{7}"),
                2 => "\u{7f}".to_owned(),
                _ => {
                    let long: String = (0..4001 + rng.below(10_000))
                        .map(|_| char::from_u32(0x20 + rng.below(0x7f0) as u32).unwrap_or('x'))
                        .collect();
                    long
                }
            };
            invalid(json!({"type": "message", "content": content, "client_msg_id": key}), true)
        }
        9 => {
            let chars = 1 + rng.below(12);
            let kind = rng.text(chars);
            if kind == "text" || kind == "system" {
                return bad_frame(rng, n);
            }
            invalid(
                json!({"type": "message", "content": "x", "message_type": kind, "client_msg_id": key}),
                true,
            )
        }
        10 => {
            let (field, value) = match rng.below(4) {
                0 => ("client_msg_id", String::new()),
                1 => ("client_msg_id", "k".repeat(65 + rng.below(100))),
                2 => ("user_id", " ".repeat(rng.below(3))),
                _ => ("user_id", "u".repeat(65 + rng.below(100))),
            };
            let mut frame = json!({"type": "message", "content": "x", "client_msg_id": key});
            frame[field] = json!(value);
            // A refused key is still echoed, so the client can tell which frame failed.
            let echo = if field == "client_msg_id" { value } else { key };
            Bad { frame: text(frame), code: "validation_failed", echo: Some(echo) }
        }
        // Anonymous callers may not post system messages.
        _ => Bad {
            frame: text(
                json!({"type": "message", "content": "x", "message_type": "system", "client_msg_id": key}),
            ),
            code: "forbidden",
            echo: Some(key),
        },
    }
}

async fn a_storm_of_bad_frames_is_answered_frame_by_frame(app: TestApp) {
    let room = app.create_room("Storm").await;
    let (mut storm, _) = app.joined_socket(room, "stormy").await;
    let (mut friend, _) = app.joined_socket(room, "calm").await;
    assert_eq!(storm.next_of_type("user_joined").await["user_id"], "calm");
    let mut rng = Rng(SEED);
    let mut codes = std::collections::BTreeMap::<&str, usize>::new();
    for n in 0..FRAMES {
        let bad = bad_frame(&mut rng, n);
        let shown = format!("{:?}", bad.frame).chars().take(120).collect::<String>();
        assert!(bad.frame.len() < MAX_FRAME, "frame {n} is under the limit");
        storm.stream.send(bad.frame).await.unwrap_or_else(|e| panic!("frame {n}: {e}"));
        let answer = storm.next_json().await;
        assert_eq!(answer["type"], "error", "frame {n} {shown}: {answer}");
        assert_eq!(answer["code"], bad.code, "frame {n} {shown}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
        assert_eq!(answer["client_msg_id"].as_str(), bad.echo.as_deref(), "frame {n}: {answer}");
        *codes.entry(bad.code).or_default() += 1;
    }
    eprintln!("{FRAMES} bad frames answered: {codes:?}");

    // The storming socket still works, the other one saw none of it, and the
    // room keeps working for both.
    storm.send_json(json!({"type": "message", "content": "after the storm"})).await;
    let own = storm.next_of_type("message").await;
    assert_eq!(own["seq"], 1, "nothing of the storm was stored");
    let seen = friend.next_json().await;
    assert_eq!(seen["type"], "message", "the first thing the other socket sees: {seen}");
    assert_eq!(seen["content"], "after the storm");
    friend.send_json(json!({"type": "message", "content": "calm again"})).await;
    assert_eq!(storm.next_of_type("message").await["content"], "calm again");
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
}
