//! Group commit: what storing the messages that queue up during a commit in one
//! transaction must not change.
//!
//! * `append_batch` on SQLite and Postgres, with hand-made batches: a repeated
//!   `client_msg_id` inside one batch is a duplicate of the message the batch
//!   stores (another author's same key is a message of its own); a repeat of a
//!   message stored before, live or archived, is a duplicate and burns no seq;
//!   a deleted room's messages are `NotFound` and the other rooms' seqs stay
//!   dense; several rooms in one batch get dense seqs in batch order; the
//!   outbox gets one `message_created` row per stored message, none for a repeat.
//! * Through the real service, on every adapter set: 50 rooms with pipelining
//!   sockets and REST posters — every acknowledgement is one stored row, no row
//!   was not acknowledged, seqs are dense, each socket gets its room's messages
//!   once in seq order; a socket's 64 pipelined messages take seqs in the order
//!   sent and are acknowledged in that order (repeats too); a tiny queue refuses
//!   some of a burst `unavailable`, nothing refused is stored, and the refused
//!   ones retried with their keys are stored once each.
//! * Postgres behind a fault proxy, one writer: a commit cut off in the middle
//!   of a multi-message batch answers every message of it `unavailable`,
//!   stores none and is not retried message by message (retried by the
//!   clients, each is stored once, seqs dense); a room deleted while its
//!   messages wait in a batch refuses those (`not_found`) and stores the other
//!   room's densely; a message refused at once (queue full) is answered after
//!   the messages the socket sent before it.
//!
//! Every wait is a poll or a read with a deadline; nothing sleeps in place of
//! synchronisation.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_domain::{
    ClientMsgId, DomainError, Message, MessageContent, MessageType, NewMessage, Posted, RoomId,
    UserId,
};
use chat_infra::{DatabaseSettings, SqlStore};
use chat_tests::proxy::Proxy;
use chat_tests::socket::Socket;
use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

on_every_adapter_set!(
    fifty_rooms_of_pipelining_sockets_and_rest_posters_lose_and_duplicate_nothing,
    a_sockets_pipelined_messages_take_seqs_and_answers_in_the_order_sent,
    a_full_queue_refuses_some_of_a_burst_and_stores_none_of_them;
    not_on_full:
    repeats_inside_one_batch_are_duplicates_of_the_one_it_stores,
    repeats_of_stored_and_archived_messages_burn_no_seq,
    a_deleted_rooms_messages_are_not_found_and_the_others_stay_dense,
    several_rooms_in_one_batch_get_dense_seqs_in_batch_order,
    the_outbox_gets_one_message_created_per_stored_message,
);

// ---------------------------------------------------------------------------
// append_batch with hand-made batches

async fn store(app: &TestApp, outbox: bool) -> SqlStore {
    SqlStore::open(&DatabaseSettings {
        url: app.database_url.clone(),
        max_connections: 4,
        connect_timeout: Duration::from_secs(5),
        run_migrations: false,
        outbox,
    })
    .await
    .expect("database opens")
}

fn new_message(room: i64, user: &str, key: Option<&str>, content: &str) -> NewMessage {
    NewMessage {
        room_id: RoomId::new(room).unwrap(),
        user_id: UserId::parse(user).unwrap(),
        content: MessageContent::parse(content).unwrap(),
        message_type: MessageType::default(),
        client_msg_id: key.map(|k| ClientMsgId::parse(k).unwrap()),
        reply_to: None,
        created_at: chat_domain::timestamp::now(),
        conversation: None,
        correlation_id: None,
    }
}

async fn append(store: &SqlStore, batch: &[NewMessage]) -> Vec<Result<Posted, DomainError>> {
    use chat_domain::ports::MessageRepository;
    let outcomes = store.append_batch(batch).await.expect("the batch is stored");
    assert_eq!(outcomes.len(), batch.len(), "one outcome per message");
    outcomes
}

#[track_caller]
fn created(outcome: &Result<Posted, DomainError>) -> &Message {
    match outcome {
        Ok(Posted::Created(message)) => message,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

#[track_caller]
fn duplicate(outcome: &Result<Posted, DomainError>) -> &Message {
    match outcome {
        Ok(Posted::Duplicate(message)) => message,
        other => panic!("expected a duplicate, got {other:?}"),
    }
}

#[track_caller]
fn not_found(outcome: &Result<Posted, DomainError>) {
    assert!(matches!(outcome, Err(DomainError::NotFound(_))), "expected NotFound, got {outcome:?}");
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
        .expect("a row");
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn last_seq(db: &DatabaseConnection, room: i64) -> i64 {
    scalar(db, &format!("SELECT last_seq FROM rooms WHERE id = {room}")).await
}

/// Every live message of a room through the API, ascending seq.
async fn history(app: &TestApp, room: i64) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let response = app.get(&format!("/rooms/{room}/messages?limit=100&after={after}")).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        messages.extend(items.iter().cloned());
        match items.last() {
            Some(last) if page["has_more"] == true => after = last["seq"].as_i64().unwrap(),
            _ => return messages,
        }
    }
}

fn seqs_of(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

fn contents_of(messages: &[Value]) -> Vec<&str> {
    messages.iter().map(|m| m["content"].as_str().unwrap()).collect()
}

async fn repeats_inside_one_batch_are_duplicates_of_the_one_it_stores(app: TestApp) {
    let room = app.create_room("Repeats").await;
    let store = store(&app, false).await;
    let db = app.database().await;
    let batch = [
        new_message(room, "alice", Some("k1"), "first"),
        new_message(room, "alice", Some("k1"), "again"),
        new_message(room, "bob", Some("k1"), "bob's own k1"),
        new_message(room, "alice", None, "no key"),
        new_message(room, "alice", Some("k1"), "third time"),
        new_message(room, "bob", Some("k1"), "bob again"),
    ];
    let outcomes = append(&store, &batch).await;
    let first = created(&outcomes[0]);
    assert_eq!((first.seq, first.content.as_str()), (1, "first"));
    assert_eq!(duplicate(&outcomes[1]), first, "a repeat is the message the batch stored");
    let bobs = created(&outcomes[2]);
    assert_eq!((bobs.seq, bobs.user_id.as_str()), (2, "bob"), "another author's key is his own");
    assert_eq!(created(&outcomes[3]).seq, 3);
    assert_eq!(duplicate(&outcomes[4]), first);
    assert_eq!(duplicate(&outcomes[5]), bobs);
    assert_eq!(last_seq(&db, room).await, 3, "the repeats' seqs were given back");

    let next = append(&store, &[new_message(room, "carol", None, "next")]).await;
    assert_eq!(created(&next[0]).seq, 4, "the next message follows with no gap");
    let stored = history(&app, room).await;
    assert_eq!(seqs_of(&stored), [1, 2, 3, 4]);
    assert_eq!(contents_of(&stored), ["first", "bob's own k1", "no key", "next"]);
}

async fn repeats_of_stored_and_archived_messages_burn_no_seq(app: TestApp) {
    let room = app.create_room("Old and new").await;
    let store = store(&app, false).await;
    let db = app.database().await;
    let mut old = new_message(room, "alice", Some("old"), "an old one");
    old.created_at = chrono::Utc::now() - chrono::Duration::days(40);
    let first =
        append(&store, &[old, new_message(room, "alice", Some("k1"), "a recent one")]).await;
    let (old, recent) = (created(&first[0]).clone(), created(&first[1]).clone());
    assert_eq!((old.seq, recent.seq), (1, 2));
    let cutoff = chrono::Utc::now() - chrono::Duration::days(30);
    assert_eq!(store.archive_batch(cutoff, 100).await.unwrap().commit().await.unwrap(), 1);
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM messages_archive WHERE id = {}", old.id)).await,
        1
    );

    let batch = [
        new_message(room, "alice", Some("old"), "the old one again"),
        new_message(room, "bob", None, "new"),
        new_message(room, "alice", Some("k1"), "the recent one again"),
        new_message(room, "bob", Some("old"), "bob's own old"),
    ];
    let outcomes = append(&store, &batch).await;
    let archived = duplicate(&outcomes[0]);
    assert_eq!((archived.id, archived.seq, archived.content.as_str()), (old.id, 1, "an old one"));
    assert_eq!(created(&outcomes[1]).seq, 3);
    assert_eq!(duplicate(&outcomes[2]), &recent);
    assert_eq!(created(&outcomes[3]).seq, 4);
    assert_eq!(last_seq(&db, room).await, 4, "the repeats burnt no seq");

    let next = append(&store, &[new_message(room, "carol", None, "next")]).await;
    assert_eq!(created(&next[0]).seq, 5);
    assert_eq!(last_seq(&db, room).await, 5);
    let stored = history(&app, room).await;
    assert_eq!(seqs_of(&stored), [1, 2, 3, 4, 5], "dense, the archived one included");
    assert_eq!(
        contents_of(&stored),
        ["an old one", "a recent one", "new", "bob's own old", "next"]
    );
}

async fn a_deleted_rooms_messages_are_not_found_and_the_others_stay_dense(app: TestApp) {
    let live = app.create_room("Live").await;
    let doomed = app.create_room("Doomed").await;
    assert_eq!(app.delete(&format!("/rooms/{doomed}")).await.status(), 204);
    let store = store(&app, false).await;
    let db = app.database().await;
    let batch = [
        new_message(doomed, "alice", Some("k"), "lost 1"),
        new_message(live, "alice", None, "live 1"),
        new_message(doomed, "bob", None, "lost 2"),
        new_message(live, "bob", Some("k"), "live 2"),
        new_message(987_654, "bob", None, "nowhere"),
        // The same author and key as the deleted room's first: another room.
        new_message(live, "alice", Some("k"), "live 3"),
    ];
    let outcomes = append(&store, &batch).await;
    not_found(&outcomes[0]);
    assert_eq!(created(&outcomes[1]).seq, 1);
    not_found(&outcomes[2]);
    assert_eq!(created(&outcomes[3]).seq, 2);
    not_found(&outcomes[4]);
    assert_eq!(created(&outcomes[5]).seq, 3);
    assert_eq!(last_seq(&db, live).await, 3);
    assert_eq!(last_seq(&db, doomed).await, 0, "the deleted room took no seq");
    let in_doomed = format!("SELECT COUNT(*) FROM messages WHERE room_id = {doomed}");
    assert_eq!(scalar(&db, &in_doomed).await, 0);
    let stored = history(&app, live).await;
    assert_eq!(seqs_of(&stored), [1, 2, 3]);
    assert_eq!(contents_of(&stored), ["live 1", "live 2", "live 3"]);
}

async fn several_rooms_in_one_batch_get_dense_seqs_in_batch_order(app: TestApp) {
    let rooms =
        [app.create_room("R1").await, app.create_room("R2").await, app.create_room("R3").await];
    let store = store(&app, false).await;
    let db = app.database().await;
    let earlier = [
        new_message(rooms[0], "u", None, "r1 earlier 1"),
        new_message(rooms[0], "u", None, "r1 earlier 2"),
    ];
    append(&store, &earlier).await;
    // (room index, content), interleaved.
    let plan =
        [(1, "r2 a"), (0, "r1 a"), (2, "r3 a"), (0, "r1 b"), (1, "r2 b"), (1, "r2 c"), (2, "r3 b")];
    let batch: Vec<NewMessage> =
        plan.iter().map(|(room, content)| new_message(rooms[*room], "u", None, content)).collect();
    let outcomes = append(&store, &batch).await;
    let seqs: Vec<i64> = outcomes.iter().map(|o| created(o).seq).collect();
    assert_eq!(seqs, [1, 3, 1, 4, 2, 3, 2], "each room's next seqs, in batch order");
    for (outcome, (room, content)) in outcomes.iter().zip(plan) {
        assert_eq!(created(outcome).room_id.get(), rooms[room]);
        assert_eq!(created(outcome).content, content);
    }
    assert_eq!(last_seq(&db, rooms[0]).await, 4);
    assert_eq!(last_seq(&db, rooms[1]).await, 3);
    assert_eq!(last_seq(&db, rooms[2]).await, 2);
    assert_eq!(
        contents_of(&history(&app, rooms[0]).await),
        ["r1 earlier 1", "r1 earlier 2", "r1 a", "r1 b"]
    );
    assert_eq!(contents_of(&history(&app, rooms[1]).await), ["r2 a", "r2 b", "r2 c"]);
    assert_eq!(contents_of(&history(&app, rooms[2]).await), ["r3 a", "r3 b"]);
    for room in rooms {
        let stored = history(&app, room).await;
        assert_eq!(seqs_of(&stored), (1..=stored.len() as i64).collect::<Vec<_>>());
    }
}

/// The message ids of the `message_created` rows in the outbox, for `room`.
async fn message_created_rows(db: &DatabaseConnection, room: i64) -> Vec<i64> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT payload FROM outbox WHERE room_id = {room} ORDER BY id"),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            serde_json::from_str::<Value>(&row.try_get::<String>("", "payload").unwrap()).unwrap()
        })
        .filter(|payload| payload["event_type"] == "message_created")
        .map(|payload| payload["message_id"].as_i64().expect("message_id"))
        .collect()
}

async fn the_outbox_gets_one_message_created_per_stored_message(app: TestApp) {
    let live = app.create_room("Evented").await;
    let doomed = app.create_room("Evented, deleted").await;
    assert_eq!(app.delete(&format!("/rooms/{doomed}")).await.status(), 204);
    let store = store(&app, true).await;
    let db = app.database().await;
    let before = append(&store, &[new_message(live, "alice", Some("k1"), "before")]).await;
    let before = created(&before[0]).id.get();
    let batch = [
        new_message(live, "alice", Some("k1"), "a repeat of before"),
        new_message(live, "bob", None, "bob"),
        new_message(doomed, "bob", None, "lost"),
        new_message(live, "carol", Some("k2"), "carol"),
        new_message(live, "carol", Some("k2"), "carol again"),
    ];
    let outcomes = append(&store, &batch).await;
    duplicate(&outcomes[0]);
    let bob = created(&outcomes[1]).id.get();
    not_found(&outcomes[2]);
    let carol = created(&outcomes[3]).id.get();
    duplicate(&outcomes[4]);
    assert_eq!(
        message_created_rows(&db, live).await,
        [before, bob, carol],
        "one message_created per stored message, in seq order; none for a repeat"
    );
    assert_eq!(message_created_rows(&db, doomed).await, Vec::<i64>::new());
    let stored: Vec<i64> =
        history(&app, live).await.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(stored, [before, bob, carol]);
}

// ---------------------------------------------------------------------------
// Through the service

/// What a sender was told about one of its messages: the stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    id: i64,
    seq: i64,
    content: String,
}

impl Ack {
    fn of(message: &Value) -> Self {
        Self {
            id: message["id"].as_i64().expect("id"),
            seq: message["seq"].as_i64().expect("seq"),
            content: message["content"].as_str().expect("content").to_owned(),
        }
    }
}

/// Every stored message of `room` by key (each must have one, once).
async fn stored_by_key(app: &TestApp, room: i64) -> HashMap<String, Ack> {
    let stored = history(app, room).await;
    assert_eq!(
        seqs_of(&stored),
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "room {room}: seqs dense from 1"
    );
    let mut by_key = HashMap::new();
    for message in &stored {
        let key = message["client_msg_id"].as_str().expect("every message here has a key");
        assert!(by_key.insert(key.to_owned(), Ack::of(message)).is_none(), "{key} is stored once");
    }
    by_key
}

async fn fifty_rooms_of_pipelining_sockets_and_rest_posters_lose_and_duplicate_nothing(
    app: TestApp,
) {
    const ROOMS: usize = 50;
    const SOCKETS: usize = 2;
    const PER_SOCKET: usize = 8;
    const PER_POSTER: usize = 4;
    const PER_ROOM: usize = SOCKETS * PER_SOCKET + PER_POSTER;
    assert!(PER_SOCKET <= app.settings.ws_max_in_flight, "every frame is in flight at once");
    let mut rooms = Vec::with_capacity(ROOMS);
    for n in 0..ROOMS {
        rooms.push(app.create_room(&format!("Fifty {n}")).await);
    }
    let mut sockets = Vec::with_capacity(ROOMS * SOCKETS);
    for &room in &rooms {
        for s in 0..SOCKETS {
            sockets.push((room, s, app.joined_socket(room, &format!("r{room}s{s}")).await.0));
        }
    }

    let socket_tasks: Vec<_> = sockets
        .into_iter()
        .map(|(room, s, mut socket)| {
            tokio::spawn(async move {
                let keys: Vec<String> = (0..PER_SOCKET).map(|n| format!("r{room}s{s}-{n}")).collect();
                // All sent before reading anything: the socket keeps them in flight.
                for key in &keys {
                    socket
                        .send_json(json!({"type": "message", "content": format!("via socket {key}"), "client_msg_id": key}))
                        .await;
                }
                let mut received = Vec::with_capacity(PER_ROOM);
                while received.len() < PER_ROOM {
                    let frame = socket.next_json().await;
                    match frame["type"].as_str() {
                        Some("message") => received.push(frame),
                        Some("error") => panic!("room {room} socket {s}: {frame}"),
                        _ => {}
                    }
                }
                let own: HashSet<String> = keys.iter().cloned().collect();
                let acks: HashMap<String, Ack> = received
                    .iter()
                    .filter(|m| m["client_msg_id"].as_str().is_some_and(|k| own.contains(k)))
                    .map(|m| (m["client_msg_id"].as_str().unwrap().to_owned(), Ack::of(m)))
                    .collect();
                assert_eq!(acks.len(), PER_SOCKET, "room {room} socket {s}: each own message came back");
                (room, received, acks)
            })
        })
        .collect();
    let poster_tasks: Vec<_> = rooms
        .iter()
        .map(|&room| {
            let (client, url) = (app.client.clone(), app.url(&format!("/rooms/{room}/messages")));
            tokio::spawn(async move {
                let mut acks = HashMap::new();
                for n in 0..PER_POSTER {
                    let key = format!("r{room}rest-{n}");
                    let response = client
                        .post(&url)
                        .json(&json!({"content": format!("via REST {key}"), "user_id": format!("r{room}rest"), "client_msg_id": key}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201, "{key}");
                    acks.insert(key, Ack::of(&response.json::<Value>().await.unwrap()));
                }
                (room, acks)
            })
        })
        .collect();

    let mut acked: HashMap<i64, HashMap<String, Ack>> = HashMap::new();
    let mut received_by_room: HashMap<i64, Vec<Vec<Value>>> = HashMap::new();
    for task in socket_tasks {
        let (room, received, acks) = task.await.expect("a socket sender");
        acked.entry(room).or_default().extend(acks);
        received_by_room.entry(room).or_default().push(received);
    }
    for task in poster_tasks {
        let (room, acks) = task.await.expect("a REST poster");
        acked.entry(room).or_default().extend(acks);
    }
    for &room in &rooms {
        let stored = stored_by_key(&app, room).await;
        assert_eq!(stored.len(), PER_ROOM, "room {room}: every message stored");
        assert_eq!(
            stored, acked[&room],
            "room {room}: each ack is one stored row, each row was acked"
        );
        let mut in_order: Vec<&Ack> = stored.values().collect();
        in_order.sort_by_key(|ack| ack.seq);
        for received in &received_by_room[&room] {
            let got: Vec<Ack> = received.iter().map(Ack::of).collect();
            let expected: Vec<Ack> = in_order.iter().map(|ack| (*ack).clone()).collect();
            assert_eq!(got, expected, "room {room}: a socket got every message once, in seq order");
        }
    }
}

async fn a_sockets_pipelined_messages_take_seqs_and_answers_in_the_order_sent(app: TestApp) {
    const FRAMES: usize = 64;
    const OTHERS: usize = 16;
    let room = app.create_room("Pipeline").await;
    let (mut socket, _) = app.joined_socket(room, "piper").await;
    let keys: Vec<String> = (0..FRAMES).map(|n| format!("pipe-{n}")).collect();
    // Someone else posts at the same time, so the socket's seqs interleave.
    let other = {
        let (client, url) = (app.client.clone(), app.url(&format!("/rooms/{room}/messages")));
        tokio::spawn(async move {
            for n in 0..OTHERS {
                let body = json!({"content": format!("other {n}"), "user_id": "other"});
                assert_eq!(client.post(&url).json(&body).send().await.unwrap().status(), 201);
            }
        })
    };
    for key in &keys {
        socket.send_json(json!({"type": "message", "content": key, "client_msg_id": key})).await;
    }
    let mut received = Vec::new();
    while received.len() < FRAMES + OTHERS {
        let frame = socket.next_json().await;
        match frame["type"].as_str() {
            Some("message") => received.push(frame),
            Some("error") => panic!("{frame}"),
            _ => {}
        }
    }
    other.await.unwrap();
    assert_eq!(seqs_of(&received), (1..=(FRAMES + OTHERS) as i64).collect::<Vec<_>>());
    let own: Vec<&Value> = received.iter().filter(|m| m["user_id"] == "piper").collect();
    let own_keys: Vec<&str> = own.iter().map(|m| m["client_msg_id"].as_str().unwrap()).collect();
    assert_eq!(own_keys, keys, "acknowledged in the order sent");
    let own_seqs: Vec<i64> = own.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert!(own_seqs.windows(2).all(|w| w[0] < w[1]), "seqs follow the order sent: {own_seqs:?}");

    // The same frames again: each answered with its original, still in order.
    for key in &keys {
        socket.send_json(json!({"type": "message", "content": key, "client_msg_id": key})).await;
    }
    let mut originals = Vec::new();
    while originals.len() < FRAMES {
        let frame = socket.next_json().await;
        match frame["type"].as_str() {
            Some("message") => originals.push(frame),
            Some("error") => panic!("{frame}"),
            _ => {}
        }
    }
    let originals: Vec<Ack> = originals.iter().map(Ack::of).collect();
    let first_time: Vec<Ack> = own.iter().map(|m| Ack::of(m)).collect();
    assert_eq!(originals, first_time, "repeats are answered with the originals, in order");
    let stored = history(&app, room).await;
    assert_eq!(
        seqs_of(&stored),
        (1..=(FRAMES + OTHERS) as i64).collect::<Vec<_>>(),
        "no repeat stored"
    );
}

/// One sample of the service's `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

async fn a_full_queue_refuses_some_of_a_burst_and_stores_none_of_them(app: TestApp) {
    const SOCKETS: usize = 4;
    const PER_SOCKET: usize = 40;
    const PER_POSTER: usize = 20;
    const ROUNDS: usize = 10;
    let app = app
        .another(|s| {
            s.message_queue_capacity = 2;
            s.message_writers = 1;
            s.ws_max_in_flight = PER_SOCKET;
        })
        .await;
    let room = app.create_room("Crowded").await;
    let mut sockets = Vec::new();
    for s in 0..SOCKETS {
        sockets.push(app.joined_socket(room, &format!("burst{s}")).await.0);
    }
    // key → the ack, or `None` when refused; and who sent it (a socket, or REST).
    let mut answers: HashMap<String, Option<Ack>> = HashMap::new();
    let mut refused_on_socket: HashMap<String, usize> = HashMap::new();
    let mut refused_on_rest: Vec<String> = Vec::new();
    // Bursts until one was refused at least (the first almost always is).
    for round in 0..ROUNDS {
        let socket_bursts = sockets.iter_mut().enumerate().map(|(s, socket)| async move {
            let keys: Vec<String> = (0..PER_SOCKET).map(|n| format!("s{s}-{round}-{n}")).collect();
            for key in &keys {
                socket
                    .send_json(json!({"type": "message", "content": key, "client_msg_id": key}))
                    .await;
            }
            let mut answered: HashMap<String, Option<Ack>> = HashMap::new();
            while answered.len() < keys.len() {
                let frame = socket.next_json().await;
                let Some(key) = frame["client_msg_id"].as_str() else { continue };
                if !keys.iter().any(|k| k == key) {
                    continue; // another socket's message
                }
                let answer = match frame["type"].as_str() {
                    Some("message") => Some(Ack::of(&frame)),
                    Some("error") => {
                        assert_eq!(frame["code"], "unavailable", "{frame}");
                        None
                    }
                    _ => continue,
                };
                assert!(answered.insert(key.to_owned(), answer).is_none(), "{key} answered once");
            }
            (s, answered)
        });
        let rest_burst = (0..PER_POSTER).map(|n| {
            let key = format!("rest-{round}-{n}");
            let body = json!({"content": key, "user_id": "rest", "client_msg_id": key});
            let request = app.client.post(app.url(&format!("/rooms/{room}/messages"))).json(&body);
            async move {
                let response = request.send().await.unwrap();
                if response.status() == 503 {
                    assert_error(response, 503, "unavailable").await;
                    (key, None)
                } else {
                    assert_eq!(response.status(), 201, "{key}");
                    (key, Some(Ack::of(&response.json::<Value>().await.unwrap())))
                }
            }
        });
        let (socket_answers, rest_answers) = tokio::join!(
            futures::future::join_all(socket_bursts),
            futures::future::join_all(rest_burst)
        );
        for (s, answered) in socket_answers {
            for (key, answer) in answered {
                if answer.is_none() {
                    refused_on_socket.insert(key.clone(), s);
                }
                answers.insert(key, answer);
            }
        }
        for (key, answer) in rest_answers {
            if answer.is_none() {
                refused_on_rest.push(key.clone());
            }
            answers.insert(key, answer);
        }
        if !refused_on_socket.is_empty() || !refused_on_rest.is_empty() {
            break;
        }
    }
    let refused = refused_on_socket.len() + refused_on_rest.len();
    assert!(refused > 0, "a queue of 2 refused nothing of {ROUNDS} bursts");
    eprintln!(
        "a queue of 2 refused {} socket and {} REST messages of {}",
        refused_on_socket.len(),
        refused_on_rest.len(),
        answers.len()
    );
    assert_eq!(
        metric(&app, "chat_write_queue_refused_total").await,
        refused as f64,
        "every refusal was the full queue's"
    );
    let acked: HashMap<String, Ack> =
        answers.iter().filter_map(|(k, a)| Some((k.clone(), a.clone()?))).collect();
    assert_eq!(stored_by_key(&app, room).await, acked, "stored: exactly what was acknowledged");

    // Retried one at a time with their keys: each stored once.
    let mut retried: HashMap<String, Ack> = HashMap::new();
    for (key, s) in &refused_on_socket {
        let socket = &mut sockets[*s];
        socket.send_json(json!({"type": "message", "content": key, "client_msg_id": key})).await;
        loop {
            let frame = socket.next_json().await;
            if frame["client_msg_id"] == key.as_str() {
                assert_eq!(frame["type"], "message", "the retry of {key} is stored: {frame}");
                retried.insert(key.clone(), Ack::of(&frame));
                break;
            }
        }
    }
    for key in &refused_on_rest {
        let body = json!({"content": key, "user_id": "rest", "client_msg_id": key});
        let response = app.post(&format!("/rooms/{room}/messages"), body).await;
        assert_eq!(response.status(), 201, "the retry of {key} is stored");
        retried.insert(key.clone(), Ack::of(&response.json::<Value>().await.unwrap()));
    }
    let mut expected = acked;
    expected.extend(retried);
    assert_eq!(expected.len(), answers.len(), "every message is acknowledged now");
    assert_eq!(stored_by_key(&app, room).await, expected, "each stored once, seqs dense");
    for socket in sockets {
        socket.close().await;
    }
    app.shutdown().await;
}

// ---------------------------------------------------------------------------
// Postgres behind a fault proxy

/// How long the service may take to answer what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// The service on a new Postgres database reached through a [`Proxy`], with
/// one writer (every room's messages in one queue) and no broker (so nothing
/// but the test's messages commits while it watches), and a direct
/// connection to the database, for the test's own reads and writes. `change`
/// adjusts the settings.
async fn behind_a_proxy(
    change: impl FnOnce(&mut chat_api::Settings),
) -> Option<(TestApp, Proxy, DatabaseConnection)> {
    let database_url = chat_tests::fresh_postgres_database().await?;
    let address = chat_tests::postgres_address(&database_url);
    let proxy = Proxy::start(&address).await;
    // Without TLS, so the proxy sees what the statements carry (it cuts there).
    let through = database_url.replacen(&address, &format!("127.0.0.1:{}", proxy.port), 1)
        + "?sslmode=disable";
    let mut settings = chat_tests::test_settings(&through);
    settings.message_writers = 1;
    change(&mut settings);
    let app = TestApp::start_with(settings).await;
    let direct = sea_orm::Database::connect(database_url).await.expect("database connects");
    Some((app, proxy, direct))
}

/// Polls `/metrics` until `name` satisfies `accept`; returns its value.
async fn wait_for_metric(app: &TestApp, name: &str, accept: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = metric(app, name).await;
        if accept(value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {value}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send(socket: &mut Socket, key: &str) {
    socket
        .send_json(
            json!({"type": "message", "content": format!("probe {key}"), "client_msg_id": key}),
        )
        .await;
}

/// Reads until each of `keys` is answered: its message, or an error frame.
async fn answers(socket: &mut Socket, keys: &[String]) -> HashMap<String, Value> {
    let mut answered = HashMap::new();
    while answered.len() < keys.len() {
        let frame = socket.next_json().await;
        let Some(key) = frame["client_msg_id"].as_str() else { continue };
        if keys.iter().any(|k| k == key)
            && matches!(frame["type"].as_str(), Some("message" | "error"))
        {
            assert!(
                answered.insert(key.to_owned(), frame.clone()).is_none(),
                "{key} answered twice"
            );
        }
    }
    answered
}

/// `(client_msg_id, seq)` of every message stored in `room`, read directly.
async fn stored_directly(db: &DatabaseConnection, room: i64) -> Vec<(String, i64, i64)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT client_msg_id, seq, id FROM messages WHERE room_id = {room} ORDER BY seq"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "client_msg_id").unwrap(),
                row.try_get("", "seq").unwrap(),
                row.try_get("", "id").unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_in_the_middle_of_a_batch_stores_none_of_it() {
    const PER_SOCKET: usize = 15;
    let Some((app, proxy, db)) = behind_a_proxy(|_| {}).await else { return };
    let room = app.create_room("Cut at commit").await;
    let (mut a, _) = app.joined_socket(room, "cut-a").await;
    let (mut b, _) = app.joined_socket(room, "cut-b").await;
    let keys_of = |who: &str| (0..PER_SOCKET).map(|n| format!("{who}-{n}")).collect::<Vec<_>>();
    let (a_keys, b_keys) = (keys_of("a"), keys_of("b"));
    let taken = metric(&app, "chat_write_batched_messages_total").await;
    let transactions = metric(&app, "chat_write_batches_total").await;

    // The first message's transaction hangs on the stalled connection...
    proxy.stall();
    send(&mut a, &a_keys[0]).await;
    wait_for_metric(&app, "chat_write_batched_messages_total", |n| n >= taken + 1.0).await;
    // ...while the rest queue up behind it, to be stored as one batch.
    for n in 0..PER_SOCKET {
        if n > 0 {
            send(&mut a, &a_keys[n]).await;
        }
        send(&mut b, &b_keys[n]).await;
    }
    let queued = (2 * PER_SOCKET - 1) as f64;
    wait_for_metric(&app, "chat_write_queue_waiting", |n| n == queued).await;
    // Without a broker a Postgres batch is one statement that commits by
    // itself: cut off as it is sent, with the contents bound to it.
    proxy.cut_when_sent(b"probe ");
    proxy.restore();

    for (socket, keys) in [(&mut a, &a_keys), (&mut b, &b_keys)] {
        for (key, answer) in answers(socket, keys).await {
            assert_eq!(answer["type"], "error", "{key} was cut off at its commit: {answer}");
            assert_eq!(answer["code"], "unavailable", "{answer}");
        }
    }
    let largest = metric(&app, "chat_write_largest_batch").await;
    assert_eq!(largest, queued, "the messages queued behind the first were one batch");
    assert_eq!(metric(&app, "chat_write_batches_total").await - transactions, 2.0);
    assert_eq!(
        proxy.connections_cut(),
        2,
        "two commits, each failing its batch whole: a lost commit is not retried message by message"
    );
    let stored = stored_directly(&db, room).await;
    assert!(stored.is_empty(), "nothing of a cut-off batch is stored: {stored:?}");
    assert_eq!(last_seq(&db, room).await, 0);

    // Retried with their keys, as clients do: each stored once.
    proxy.stop_cutting();
    let mut pending: Vec<(usize, String)> = a_keys
        .iter()
        .map(|k| (0, k.clone()))
        .chain(b_keys.iter().map(|k| (1, k.clone())))
        .collect();
    let mut sockets = [a, b];
    let deadline = Instant::now() + PATIENCE;
    let mut rounds = 0;
    while !pending.is_empty() {
        assert!(Instant::now() < deadline, "still refused: {pending:?}");
        rounds += 1;
        for (s, key) in &pending {
            send(&mut sockets[*s], key).await;
        }
        let mut refused = Vec::new();
        for (s, socket) in sockets.iter_mut().enumerate() {
            let keys: Vec<String> =
                pending.iter().filter(|(t, _)| *t == s).map(|(_, k)| k.clone()).collect();
            for (key, answer) in answers(socket, &keys).await {
                match answer["type"].as_str() {
                    Some("message") => {}
                    _ => {
                        assert_eq!(answer["code"], "unavailable", "{answer}");
                        refused.push((s, key));
                    }
                }
            }
        }
        pending = refused;
    }
    eprintln!("the cut-off messages were all stored after {rounds} round(s) of retries");
    let stored = stored_directly(&db, room).await;
    let seqs: Vec<i64> = stored.iter().map(|(_, seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=2 * PER_SOCKET as i64).collect::<Vec<_>>(), "dense seqs");
    let keys: HashSet<&str> = stored.iter().map(|(key, _, _)| key.as_str()).collect();
    let sent: HashSet<&str> = a_keys.iter().chain(&b_keys).map(String::as_str).collect();
    assert_eq!(keys, sent, "each message stored once");
    assert_eq!(last_seq(&db, room).await, 2 * PER_SOCKET as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_deleted_while_its_messages_wait_in_a_batch_refuses_them() {
    const PER_ROOM: usize = 5;
    let Some((app, proxy, db)) = behind_a_proxy(|_| {}).await else { return };
    let doomed = app.create_room("Deleted while waiting").await;
    let live = app.create_room("Still here").await;
    let (mut a, _) = app.joined_socket(doomed, "wait-a").await;
    let (mut b, _) = app.joined_socket(live, "wait-b").await;
    let a_keys: Vec<String> = (0..PER_ROOM).map(|n| format!("a-{n}")).collect();
    let b_keys: Vec<String> = (0..PER_ROOM).map(|n| format!("b-{n}")).collect();
    let taken = metric(&app, "chat_write_batched_messages_total").await;

    proxy.stall();
    send(&mut b, &b_keys[0]).await;
    wait_for_metric(&app, "chat_write_batched_messages_total", |n| n >= taken + 1.0).await;
    for n in 0..PER_ROOM {
        send(&mut a, &a_keys[n]).await;
        if n > 0 {
            send(&mut b, &b_keys[n]).await;
        }
    }
    let queued = (2 * PER_ROOM - 1) as f64;
    wait_for_metric(&app, "chat_write_queue_waiting", |n| n == queued).await;
    db.execute_unprepared(&format!(
        "UPDATE rooms SET is_active = false, deleted_at = now() WHERE id = {doomed}"
    ))
    .await
    .unwrap();
    proxy.restore();

    for (key, answer) in answers(&mut a, &a_keys).await {
        assert_eq!(answer["type"], "error", "{key}: {answer}");
        assert_eq!(answer["code"], "not_found", "{key}: {answer}");
    }
    let answered = answers(&mut b, &b_keys).await;
    let seqs: Vec<i64> =
        b_keys.iter().map(|k| answered[k]["seq"].as_i64().expect("stored")).collect();
    assert_eq!(seqs, (1..=PER_ROOM as i64).collect::<Vec<_>>());
    assert_eq!(metric(&app, "chat_write_largest_batch").await, queued, "both rooms in one batch");
    let lost = stored_directly(&db, doomed).await;
    assert!(lost.is_empty(), "nothing is stored in the deleted room: {lost:?}");
    assert_eq!(last_seq(&db, doomed).await, 0);
    let stored = stored_directly(&db, live).await;
    let stored: Vec<(&str, i64)> = stored.iter().map(|(k, s, _)| (k.as_str(), *s)).collect();
    let expected: Vec<(&str, i64)> = b_keys.iter().map(String::as_str).zip(1..).collect();
    assert_eq!(stored, expected, "the live room's messages, dense, in the order sent");
    assert_eq!(last_seq(&db, live).await, PER_ROOM as i64);
}

/// A socket's answers keep the order of its messages even when a later one is
/// refused at once: with the database stalled and the queue full, a new
/// message is refused while the repeats sent before it still wait for their
/// transaction, yet its error frame comes after their originals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_answers_in_order_when_a_later_message_is_refused_at_once() {
    const QUEUE: usize = 4;
    let Some((app, proxy, _db)) = behind_a_proxy(|s| s.message_queue_capacity = QUEUE).await else {
        return;
    };
    let room = app.create_room("In order").await;
    let (mut socket, _) = app.joined_socket(room, "orderly").await;
    let keys: Vec<String> = (0..=QUEUE).map(|n| format!("o-{n}")).collect();
    let mut originals = Vec::new();
    for key in &keys {
        send(&mut socket, key).await;
        let answer = answers(&mut socket, std::slice::from_ref(key)).await.remove(key).unwrap();
        assert_eq!(answer["type"], "message", "{answer}");
        originals.push(answer);
    }
    let taken = metric(&app, "chat_write_batched_messages_total").await;

    proxy.stall();
    // Repeats: answered by the socket itself (the original), once their
    // transaction ran. The first is taken into a transaction that hangs...
    send(&mut socket, &keys[0]).await;
    wait_for_metric(&app, "chat_write_batched_messages_total", |n| n >= taken + 1.0).await;
    // ...the others fill the queue...
    for key in &keys[1..=QUEUE] {
        send(&mut socket, key).await;
    }
    wait_for_metric(&app, "chat_write_queue_waiting", |n| n == QUEUE as f64).await;
    // ...and a new message is refused at once.
    send(&mut socket, "o-new").await;
    wait_for_metric(&app, "chat_write_queue_refused_total", |n| n == 1.0).await;
    proxy.restore();

    let mut frames = Vec::new();
    while frames.len() <= QUEUE + 1 {
        let frame = socket.next_json().await;
        if matches!(frame["type"].as_str(), Some("message" | "error")) {
            frames.push(frame);
        }
    }
    let order: Vec<&str> = frames.iter().map(|f| f["client_msg_id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.push("o-new");
    assert_eq!(order, expected, "answered in the order sent");
    assert_eq!(&frames[..=QUEUE], &originals[..], "each repeat answered with its original");
    assert_eq!(frames[QUEUE + 1]["type"], "error", "{}", frames[QUEUE + 1]);
    assert_eq!(frames[QUEUE + 1]["code"], "unavailable", "{}", frames[QUEUE + 1]);
}

/// Another instance stores a message under one of the batch's keys after the
/// batch's statement took its snapshot: it holds the room's lock while the
/// batch waits for it, and commits. The unique index refuses the batch's row;
/// the batch, sent again, answers that message as the original and stores the
/// rest densely after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_loses_a_race_for_its_key_answers_with_the_winner() {
    use sea_orm::TransactionTrait;
    let Some(database_url) = chat_tests::fresh_postgres_database().await else { return };
    let app = TestApp::start_with(chat_tests::test_settings(&database_url)).await;
    let room = app.create_room("Raced key").await;
    let store = store(&app, false).await;
    let db = app.database().await;

    let other = db.begin().await.unwrap();
    other
        .execute_unprepared(&format!(
            "SELECT id FROM rooms WHERE id = {room} FOR UPDATE; \
             UPDATE rooms SET last_seq = last_seq + 1 WHERE id = {room}; \
             INSERT INTO messages (room_id, seq, user_id, content, message_type, client_msg_id, \
                 edited, created_at, updated_at) \
             VALUES ({room}, 1, 'alice', 'the winner', 'text', 'raced', false, now(), now())"
        ))
        .await
        .unwrap();
    let batch = [
        new_message(room, "alice", Some("raced"), "the loser"),
        new_message(room, "bob", None, "bystander"),
    ];
    let appending = tokio::spawn({
        let store = store.clone();
        async move { append(&store, &batch).await }
    });
    // The batch's statement has its snapshot once it waits for the room's lock.
    let deadline = Instant::now() + PATIENCE;
    let waiting = "SELECT count(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND wait_event_type = 'Lock'";
    while scalar(&db, waiting).await == 0 {
        assert!(Instant::now() < deadline, "the batch never waited for the room's lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    other.commit().await.unwrap();

    let outcomes = appending.await.unwrap();
    let original = duplicate(&outcomes[0]);
    assert_eq!((original.seq, original.content.as_str()), (1, "the winner"));
    let bystander = created(&outcomes[1]);
    assert_eq!((bystander.seq, bystander.content.as_str()), (2, "bystander"));
    assert_eq!(last_seq(&db, room).await, 2, "the lost race took no seq");
    let stored = history(&app, room).await;
    assert_eq!(contents_of(&stored), ["the winner", "bystander"]);
}
