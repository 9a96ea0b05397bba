//! Draining an instance (as on SIGTERM) behind a balancer: its sockets are told
//! to go with 1001, what they sent before is stored and answered, and a client
//! that reconnects to another instance with `since=` and sends again what was
//! not confirmed ends with every message stored once and seen once, in order.

use std::collections::{HashMap, HashSet};

use chat_tests::TestApp;
use chat_tests::socket::Ended;
use serde_json::{Value, json};

const SENT: usize = 60;

fn frame(n: usize) -> Value {
    json!({"type": "message", "content": format!("m{n}"), "client_msg_id": format!("m{n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moved_off_a_stopping_instance_misses_nothing() {
    let Some(a) = TestApp::postgres_with_redis().await else { return };
    let b = a.another(|_| {}).await;
    let room = a.create_room("Draining").await;
    let (mut bob, _) = b.joined_socket(room, "bob").await;
    let (mut alice, _) = a.joined_socket(room, "alice").await;
    // A first third is confirmed; the rest is sent just as A begins to stop.
    let mut seen = Vec::new();
    for n in 0..SENT / 3 {
        alice.send_json(frame(n)).await;
    }
    while seen.len() < SENT / 3 {
        seen.push(alice.next_of_type("message").await);
    }
    for n in SENT / 3..SENT {
        alice.send_json(frame(n)).await;
    }
    let stopping = tokio::spawn(a.shutdown());

    // Until A lets go: alice's confirmations (her own messages coming back).
    let (frames, ended) = alice.frames_until_closed().await;
    assert_eq!(ended, Ended::Closed(Some(1001)), "told to go, not dropped");
    drop(alice);
    stopping.await.expect("A stops");
    seen.extend(frames.into_iter().filter(|f| f["type"] == "message"));
    let confirmed: HashSet<String> =
        seen.iter().filter_map(|m| m["client_msg_id"].as_str().map(str::to_owned)).collect();
    let since = seen.last().map_or(0, |m| m["seq"].as_i64().expect("seq"));

    // Through the balancer to B, resuming after the last message seen.
    let mut again = b.socket(room, &format!("user_id=alice&since={since}")).await;
    let joined = again.next_of_type("joined").await;
    for n in (0..SENT).filter(|n| !confirmed.contains(&format!("m{n}"))) {
        again.send_json(frame(n)).await;
    }
    // Every message arrives once (replayed or live); a repeat answers the original.
    let mut by_id: HashMap<String, i64> = seen
        .iter()
        .map(|m| {
            (m["client_msg_id"].as_str().unwrap_or("").to_owned(), m["seq"].as_i64().unwrap_or(0))
        })
        .collect();
    while by_id.len() < SENT {
        let message = again.next_of_type("message").await;
        let id = message["client_msg_id"].as_str().expect("alice's message").to_owned();
        let seq = message["seq"].as_i64().expect("seq");
        if let Some(first) = by_id.insert(id.clone(), seq) {
            assert_eq!(first, seq, "{id} was stored once");
        } else {
            seen.push(message);
        }
    }
    assert!(joined["last_seq"].as_i64().expect("last_seq") >= since);

    // The room holds each message once, seqs 1..=SENT without a gap.
    let history: Value =
        b.get(&format!("/rooms/{room}/messages?limit=100")).await.json().await.expect("JSON");
    let items = history["items"].as_array().expect("items");
    assert_eq!(items.len(), SENT, "each message stored once");
    let mut seqs: Vec<i64> = items.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=SENT as i64).collect::<Vec<_>>());
    // Bob, on B all along, saw each of them once, in order.
    for seq in 1..=SENT as i64 {
        assert_eq!(bob.next_of_type("message").await["seq"], seq);
    }
    b.shutdown().await;
}
