//! Read markers, unread counts and the inbox against the real service on every
//! adapter set: markers only move forward and are clamped, the inbox orders a
//! user's rooms by activity and pages, unread counts what is live and not one's
//! own (also after archiving), raced markers end at the highest seq, and the
//! GrainTrade counters are the inbox's numbers.

use chat_tests::rabbit::EventTap;
use chat_tests::{TestApp, assert_error, on_every_adapter_set, reachable_rabbitmq};
use reqwest::{Method, Response};
use serde_json::{Value, json};

on_every_adapter_set!(
    markers_move_forward_and_are_clamped,
    marking_read_is_refused_as_reading_history_is,
    the_room_is_told_who_read_what,
    the_inbox_lists_the_users_rooms_by_activity,
    unread_counts_live_messages_of_others_after_the_marker,
    unread_after_random_posts_deletes_and_reads_equals_a_recount,
    graintrade_unread_is_the_inbox_unread,
);

/// A name no other test uses (the broker and Redis are shared).
fn unique(role: &str) -> String {
    format!("{}-{role}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn send(
    app: &TestApp,
    user: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path)).header("x-user-id", user);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request is sent")
}

async fn json_of(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    response.json().await.expect("JSON body")
}

async fn create_room(app: &TestApp, user: &str, body: Value) -> i64 {
    let room = json_of(send(app, user, Method::POST, "/rooms", Some(body)).await, 201).await;
    room["id"].as_i64().expect("room id")
}

async fn post(app: &TestApp, room: i64, user: &str, content: &str) -> Value {
    let path = format!("/rooms/{room}/messages");
    json_of(send(app, user, Method::POST, &path, Some(json!({"content": content}))).await, 201)
        .await
}

async fn mark(app: &TestApp, room: i64, user: &str, seq: i64) -> Value {
    let path = format!("/rooms/{room}/read");
    json_of(send(app, user, Method::POST, &path, Some(json!({"seq": seq}))).await, 200).await
}

async fn delete_message(app: &TestApp, user: &str, id: i64) {
    let response = send(app, user, Method::DELETE, &format!("/messages/{id}"), None).await;
    assert_eq!(response.status(), 204);
}

/// Every page of the user's inbox, `limit` at a time.
async fn inbox(app: &TestApp, user: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/me/rooms?limit={limit}&cursor={cursor}"),
            None => format!("/me/rooms?limit={limit}"),
        };
        let page = json_of(send(app, user, Method::GET, &path, None).await, 200).await;
        let got = page["items"].as_array().expect("items");
        assert!(got.len() <= limit as usize);
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn room_ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|item| item["room"]["id"].as_i64().expect("room id")).collect()
}

fn entry(items: &[Value], room: i64) -> &Value {
    items.iter().find(|item| item["room"]["id"] == room).expect("the room is in the inbox")
}

async fn markers_move_forward_and_are_clamped(app: TestApp) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let room = create_room(&app, &alice, json!({"name": "Markers"})).await;
    // An empty room can be read: seq 0 with a time.
    let empty = mark(&app, room, &alice, 0).await;
    assert_eq!(empty["seq"], 0);
    assert_eq!(empty["user_id"], alice.as_str());
    assert_eq!(empty["room_id"], room);
    assert!(empty["read_at"].as_str().is_some_and(|at| at.ends_with('Z')), "{empty}");
    for n in 1..=3 {
        post(&app, room, &bob, &format!("lot {n}")).await;
    }

    let two = mark(&app, room, &alice, 2).await;
    assert_eq!(two["seq"], 2);
    let keys: Vec<&str> = two.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 4, "room_id, user_id, seq, read_at: {two}");
    // A lower seq changes nothing: the current marker comes back as it was.
    let lower = mark(&app, room, &alice, 1).await;
    assert_eq!(lower, two);
    let same = mark(&app, room, &alice, 2).await;
    assert_eq!(same, two);
    // Past the end: clamped to the room's last seq.
    let clamped = mark(&app, room, &alice, 1_000_000).await;
    assert_eq!(clamped["seq"], 3);
    // Without and with a trailing slash; the body's user_id names the reader.
    let path = format!("/rooms/{room}/read/");
    let body = json!({"seq": 1, "user_id": bob});
    let bobs = json_of(app.post(&path, body).await, 200).await;
    assert_eq!((bobs["user_id"].as_str(), bobs["seq"].as_i64()), (Some(bob.as_str()), Some(1)));

    let reads =
        json_of(send(&app, &bob, Method::GET, &format!("/rooms/{room}/reads/"), None).await, 200)
            .await;
    let mut expected = vec![
        json!({"user_id": alice, "seq": 3, "read_at": clamped["read_at"]}),
        json!({"user_id": bob, "seq": 1, "read_at": bobs["read_at"]}),
    ];
    expected.sort_by_key(|m| m["user_id"].as_str().unwrap().to_owned());
    assert_eq!(reads, json!({"items": expected}));
}

async fn marking_read_is_refused_as_reading_history_is(app: TestApp) {
    let (alice, bob, stranger) = (unique("alice"), unique("bob"), unique("stranger"));
    let room = create_room(&app, &alice, json!({"name": "Errors"})).await;
    let private = create_room(
        &app,
        &alice,
        json!({"name": "Deal", "is_private": true, "members": [bob.clone()]}),
    )
    .await;
    let read = |room: i64| format!("/rooms/{room}/read");

    let unknown =
        send(&app, &alice, Method::POST, &read(999_999_999), Some(json!({"seq": 1}))).await;
    assert_error(unknown, 404, "not_found").await;
    let unknown = send(&app, &alice, Method::GET, "/rooms/999999999/reads", None).await;
    assert_error(unknown, 404, "not_found").await;
    let hidden = send(&app, &stranger, Method::POST, &read(private), Some(json!({"seq": 0}))).await;
    assert_error(hidden, 403, "forbidden").await;
    let hidden = send(&app, &stranger, Method::GET, &format!("/rooms/{private}/reads"), None).await;
    assert_error(hidden, 403, "forbidden").await;
    assert_eq!(mark(&app, private, &bob, 0).await["seq"], 0, "a member may");

    for bad in [json!({"seq": -1}), json!({"seq": "3"}), json!({"seq": 1.5}), json!({})] {
        let refused = send(&app, &alice, Method::POST, &read(room), Some(bad.clone())).await;
        let body = assert_error(refused, 422, "validation_failed").await;
        assert!(body["error"]["message"].as_str().unwrap().contains("seq"), "{bad}: {body}");
    }
    let malformed = app
        .client
        .post(app.url(&read(room)))
        .header("x-user-id", &alice)
        .header("content-type", "application/json")
        .body("{\"seq\": ")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "bad_request").await;
    let bad_cursor = send(&app, &alice, Method::GET, "/me/rooms?cursor=nope", None).await;
    assert_error(bad_cursor, 400, "bad_request").await;
    let bad_limit = send(&app, &alice, Method::GET, "/me/rooms?limit=101", None).await;
    assert_error(bad_limit, 422, "validation_failed").await;

    // A deleted room is gone for markers too.
    assert_eq!(
        send(&app, &alice, Method::DELETE, &format!("/rooms/{room}"), None).await.status(),
        204
    );
    let gone = send(&app, &alice, Method::POST, &read(room), Some(json!({"seq": 0}))).await;
    assert_error(gone, 404, "not_found").await;
}

async fn the_room_is_told_who_read_what(app: TestApp) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let room = create_room(&app, &alice, json!({"name": "Seen"})).await;
    post(&app, room, &alice, "Wheat, 500 t").await;
    let (mut watcher, _) = app.joined_socket(room, &alice).await;
    let marker = mark(&app, room, &bob, 1).await;
    let frame = watcher.next_of_type("read").await;
    assert_eq!(
        frame,
        json!({"type": "read", "room_id": room, "user_id": bob, "seq": 1, "read_at": marker["read_at"]})
    );
}

async fn the_inbox_lists_the_users_rooms_by_activity(app: TestApp) {
    let (alice, bob, carol, dave) =
        (unique("alice"), unique("bob"), unique("carol"), unique("dave"));
    let first = create_room(&app, &alice, json!({"name": "First"})).await;
    let second = create_room(&app, &alice, json!({"name": "Second"})).await;
    let private = create_room(
        &app,
        &alice,
        json!({"name": "Private", "is_private": true, "members": [bob.clone()]}),
    )
    .await;
    let daves = create_room(&app, &dave, json!({"name": "Dave's"})).await;
    // Created, newest first; the rooms of others are not the user's.
    assert_eq!(room_ids(&inbox(&app, &alice, 50).await), vec![private, second, first]);
    assert_eq!(room_ids(&inbox(&app, &bob, 50).await), vec![private], "a member");
    assert!(inbox(&app, &carol, 50).await.is_empty());

    // Posting in a room makes it the poster's, and activity reorders.
    post(&app, daves, &carol, "Corn?").await;
    assert_eq!(room_ids(&inbox(&app, &carol, 50).await), vec![daves], "posted in");
    post(&app, first, &bob, "Bid 200").await;
    let ordered = inbox(&app, &alice, 50).await;
    assert_eq!(room_ids(&ordered), vec![first, private, second]);
    let top = entry(&ordered, first);
    assert_eq!(top["room"]["name"], "First");
    assert_eq!(top["last_message"]["content"], "Bid 200");
    assert_eq!((top["unread"].as_i64(), top["last_read_seq"].as_i64()), (Some(1), Some(0)));
    assert_eq!(entry(&ordered, second)["last_message"], Value::Null);
    // Bob posted in a public room: it is his now.
    assert_eq!(room_ids(&inbox(&app, &bob, 50).await), vec![first, private]);

    // Pages of one follow the same order, whatever the page size.
    post(&app, second, &alice, "Ask 210").await;
    let all = inbox(&app, &alice, 50).await;
    assert_eq!(room_ids(&all), vec![second, first, private]);
    assert_eq!(room_ids(&inbox(&app, &alice, 1).await), room_ids(&all));
    assert_eq!(room_ids(&inbox(&app, &alice, 2).await), room_ids(&all));
    let page =
        json_of(send(&app, &alice, Method::GET, "/me/rooms/?limit=3", None).await, 200).await;
    assert_eq!(page["next_cursor"], Value::Null, "exactly one page");

    // A private room is the user's only while the user may read it.
    post(&app, private, &bob, "Counter 205").await;
    assert_eq!(room_ids(&inbox(&app, &bob, 50).await), vec![private, first]);
    let removed =
        send(&app, &alice, Method::DELETE, &format!("/rooms/{private}/members/{bob}"), None).await;
    assert_eq!(removed.status(), 204);
    assert_eq!(room_ids(&inbox(&app, &bob, 50).await), vec![first]);
    // A deleted room leaves every inbox.
    assert_eq!(
        send(&app, &alice, Method::DELETE, &format!("/rooms/{first}"), None).await.status(),
        204
    );
    assert!(inbox(&app, &bob, 50).await.is_empty());
    assert_eq!(room_ids(&inbox(&app, &alice, 50).await), vec![private, second]);
}

async fn unread_counts_live_messages_of_others_after_the_marker(app: TestApp) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let room = create_room(&app, &alice, json!({"name": "Counts"})).await;
    let mut ids = Vec::new();
    for n in 1..=6 {
        let author = if n % 3 == 0 { &alice } else { &bob };
        ids.push(post(&app, room, author, &format!("m{n}")).await["id"].as_i64().unwrap());
    }
    // Bob wrote m1 m2 m4 m5; alice m3 m6.
    let unread = |items: Vec<Value>| entry(&items, room)["unread"].as_i64().unwrap();
    assert_eq!(unread(inbox(&app, &alice, 50).await), 4, "her own are not unread");
    mark(&app, room, &alice, 2).await;
    assert_eq!(unread(inbox(&app, &alice, 50).await), 2);
    delete_message(&app, &bob, ids[3]).await;
    assert_eq!(unread(inbox(&app, &alice, 50).await), 1, "deleted messages are not unread");
    // The newest live message is shown: deleting the newest shows the one before.
    delete_message(&app, &alice, ids[5]).await;
    let items = inbox(&app, &alice, 50).await;
    assert_eq!(entry(&items, room)["last_message"]["content"], "m5");
    assert_eq!(entry(&items, room)["last_read_seq"], 2);

    // Archived messages count the same (the count reads both tables).
    let store = app.uncached_store().await;
    let cut_off = chrono::Utc::now() + chrono::Duration::days(1);
    while store.archive_batch(cut_off, 100).await.unwrap().commit().await.unwrap() > 0 {}
    let items = inbox(&app, &alice, 50).await;
    assert_eq!(entry(&items, room)["unread"], 1);
    assert_eq!(entry(&items, room)["last_message"]["content"], "m5", "found in the archive");
    mark(&app, room, &alice, 100).await;
    assert_eq!(unread(inbox(&app, &alice, 50).await), 0);
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

async fn unread_after_random_posts_deletes_and_reads_equals_a_recount(app: TestApp) {
    let users = [unique("alice"), unique("bob"), unique("carol")];
    let room = create_room(&app, &users[0], json!({"name": "Random"})).await;
    let seed = uuid::Uuid::new_v4().as_u128() as u64;
    let mut random = Lcg(seed);
    // (id, seq, author, deleted), as the test did them.
    let mut messages: Vec<(i64, i64, usize, bool)> = Vec::new();
    let mut markers = [0i64; 3];
    // Everyone has read the empty room, so it is in everyone's inbox.
    for user in &users {
        mark(&app, room, user, 0).await;
    }
    for step in 0..60 {
        let user = random.next(3) as usize;
        match random.next(10) {
            0..=4 => {
                let message = post(&app, room, &users[user], &format!("step {step}")).await;
                let (id, seq) = (message["id"].as_i64().unwrap(), message["seq"].as_i64().unwrap());
                messages.push((id, seq, user, false));
            }
            5..=6 => {
                let own: Vec<usize> = (0..messages.len())
                    .filter(|&n| messages[n].2 == user && !messages[n].3)
                    .collect();
                if let Some(&n) = own.get(random.next(own.len().max(1) as u64) as usize) {
                    delete_message(&app, &users[user], messages[n].0).await;
                    messages[n].3 = true;
                }
            }
            _ => {
                let last = messages.last().map_or(0, |m| m.1);
                let seq = random.next(last as u64 + 3) as i64;
                let marker = mark(&app, room, &users[user], seq).await;
                markers[user] = markers[user].max(seq.min(last));
                assert_eq!(marker["seq"], markers[user], "seed {seed}, step {step}");
            }
        }
        if step % 10 == 9 {
            for (n, user) in users.iter().enumerate() {
                let recount = messages
                    .iter()
                    .filter(|(_, seq, author, deleted)| {
                        *seq > markers[n] && *author != n && !deleted
                    })
                    .count();
                let items = inbox(&app, user, 50).await;
                let unread = entry(&items, room)["unread"].as_u64().unwrap();
                assert_eq!(unread, recount as u64, "seed {seed}, step {step}, user {n}");
            }
        }
    }
}

async fn legacy_unread(app: &TestApp, item: &str, user: &str) -> u64 {
    let path = format!("/chat/{item}/unread?current_user={user}");
    json_of(app.get(&path).await, 200).await["unread"].as_u64().unwrap()
}

async fn inbox_unread(app: &TestApp, user: &str) -> u64 {
    inbox(app, user, 50).await.iter().map(|i| i["unread"].as_u64().unwrap()).sum()
}

async fn graintrade_unread_is_the_inbox_unread(app: TestApp) {
    let item = unique("item");
    let (seller, buyer, other) = (unique("seller"), unique("buyer"), unique("other"));
    let frame = |from: &str, to: &str, content: &str| json!({"sender_id": from, "receiver_id": to, "item_id": item, "content": content});
    for (from, to, content) in [
        (&buyer, &seller, "Price?"),
        (&buyer, &seller, "Still there?"),
        (&seller, &buyer, "210"),
        (&other, &seller, "And for me?"),
    ] {
        let mut socket = app.socket_at(&format!("/ws/chat/{item}/{to}")).await;
        socket.send_json(frame(from, to, content)).await;
        assert_eq!(socket.next_json().await["content"], content);
    }

    assert_eq!(
        legacy_unread(&app, &item, &seller).await,
        3,
        "two from the buyer, one from the other"
    );
    assert_eq!(inbox_unread(&app, &seller).await, 3);
    assert_eq!(legacy_unread(&app, &item, &buyer).await, 1);
    assert_eq!(inbox_unread(&app, &buyer).await, 1);

    // Reading one conversation in the inbox lowers the item's counter.
    let rooms = inbox(&app, &seller, 50).await;
    let with_buyer = rooms
        .iter()
        .find(|r| r["last_message"]["content"] == "210")
        .expect("the conversation with the buyer");
    let room = with_buyer["room"]["id"].as_i64().unwrap();
    assert_eq!(with_buyer["unread"], 2);
    mark(&app, room, &seller, 3).await;
    assert_eq!(legacy_unread(&app, &item, &seller).await, 1);

    // The old mark-read moves the markers of every conversation of the item.
    let reset = app.delete(&format!("/chat/{item}/unread?current_user={seller}")).await;
    assert_eq!(json_of(reset, 200).await, json!({"status": "success"}));
    assert_eq!(legacy_unread(&app, &item, &seller).await, 0);
    assert_eq!(inbox_unread(&app, &seller).await, 0);
    for entry in inbox(&app, &seller, 50).await {
        assert_eq!(entry["last_read_seq"], entry["last_message"]["seq"], "read to the end");
    }
    assert_eq!(legacy_unread(&app, &item, &buyer).await, 1, "the buyer's own counter is untouched");
}

/// Ten readers racing on one marker, spread over two instances on Postgres
/// (one on SQLite): the marker ends at the highest seq any of them asked for.
async fn raced_markers_end_at_the_highest_seq(a: TestApp, b: Option<TestApp>) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let room = create_room(&a, &alice, json!({"name": "Race"})).await;
    for n in 1..=10 {
        post(&a, room, &bob, &format!("m{n}")).await;
    }
    for round in 0..3 {
        let mut tasks = Vec::new();
        for n in 1..=10i64 {
            let app = if n % 2 == 0 { b.as_ref().unwrap_or(&a) } else { &a };
            let (client, url) = (app.client.clone(), app.url(&format!("/rooms/{room}/read")));
            let alice = alice.clone();
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("x-user-id", alice)
                    .json(&json!({"seq": n}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let marker: Value = response.json().await.unwrap();
                // Every answer is the marker after that call: never below its own seq.
                assert!(marker["seq"].as_i64().unwrap() >= n, "{marker}");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let reads = json_of(
            send(&a, &alice, Method::GET, &format!("/rooms/{room}/reads"), None).await,
            200,
        )
        .await;
        assert_eq!(reads["items"][0]["seq"], 10, "round {round}: {reads}");
    }
    if let Some(b) = b {
        b.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raced_markers_on_sqlite() {
    raced_markers_end_at_the_highest_seq(TestApp::sqlite().await, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raced_markers_on_two_postgres_instances() {
    let Some(a) = TestApp::postgres().await else { return };
    let b = a.another(|_| {}).await;
    raced_markers_end_at_the_highest_seq(a, Some(b)).await;
}

/// `messages_read` reaches RabbitMQ when a marker moves, with its documented
/// fields only, and not when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_marker_is_published_as_messages_read() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let (alice, reader) = (unique("alice"), unique("reader"));
    let room = create_room(&app, &alice, json!({"name": "Published"})).await;
    for n in 1..=3 {
        post(&app, room, &alice, &format!("m{n}")).await;
    }
    let marker = mark(&app, room, &reader, 2).await;
    let event = tap.next_for(&reader).await;
    assert_eq!(event.routing_key, "messages.read");
    let mut body = event.body.clone();
    assert!(body["event_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(event.message_id.as_deref(), body["event_id"].as_str());
    body.as_object_mut().unwrap().remove("event_id");
    assert_eq!(
        body,
        json!({"event_type": "messages_read", "room_id": room, "user_id": reader, "seq": 2,
               "timestamp": marker["read_at"]})
    );
    // A lower seq moves nothing and publishes nothing: the next event of the
    // reader is the next move (the relay keeps the outbox's order).
    mark(&app, room, &reader, 1).await;
    mark(&app, room, &reader, 3).await;
    let next = tap.next_for(&reader).await;
    assert_eq!(
        (next.body["event_type"].as_str(), next.body["seq"].as_i64()),
        (Some("messages_read"), Some(3))
    );
}

/// The migration that adds read markers finds the rooms people already posted
/// in (live or archived) and dates each room by its newest message.
async fn the_migration_backfills_participants_and_activity(url: &str) {
    use chrono::{DateTime, TimeZone, Utc};
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ConnectionTrait, Database, Statement};

    let db = Database::connect(chat_infra::sql::normalize_url(url).unwrap()).await.unwrap();
    Migrator::up(&db, Some(7)).await.unwrap();
    let backend = db.get_database_backend();
    let at = |minute: u32| Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap();
    let run = |sql: &'static str, values: Vec<sea_orm::Value>| {
        let db = &db;
        async move {
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap()
        }
    };
    for (name, created) in [("Busy", at(0)), ("Quiet", at(1))] {
        run(
            "INSERT INTO rooms (name, is_active, is_private, created_by, last_seq, created_at, \
             updated_at) VALUES ($1, true, false, 'alice', 0, $2, $2)",
            vec![name.into(), created.into()],
        )
        .await;
    }
    // Room 1: bob and carol posted (carol's message is archived); room 2: nothing.
    for (seq, user, minute) in [(2, "bob", 5), (3, "bob", 9)] {
        run(
            "INSERT INTO messages (room_id, seq, user_id, content, message_type, edited, \
             created_at, updated_at) VALUES (1, $1, $2, 'x', 'text', false, $3, $3)",
            vec![i64::from(seq).into(), user.into(), at(minute).into()],
        )
        .await;
    }
    run(
        "INSERT INTO messages_archive (id, room_id, seq, user_id, content, message_type, edited, \
         created_at, updated_at, archived_at) VALUES (100, 1, 1, 'carol', 'x', 'text', false, \
         $1, $1, $1)",
        vec![at(2).into()],
    )
    .await;

    Migrator::up(&db, None).await.unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT room_id, user_id, seq, read_at FROM room_reads ORDER BY room_id, user_id",
        ))
        .await
        .unwrap();
    let participants: Vec<(i64, String, i64, Option<DateTime<Utc>>)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get("", "room_id").unwrap(),
                row.try_get("", "user_id").unwrap(),
                row.try_get("", "seq").unwrap(),
                row.try_get("", "read_at").unwrap(),
            )
        })
        .collect();
    assert_eq!(participants, vec![(1, "bob".into(), 0, None), (1, "carol".into(), 0, None)]);
    let activity = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT last_activity_at FROM rooms ORDER BY id",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<DateTime<Utc>>("", "last_activity_at").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(activity, vec![at(9), at(1)], "the newest message, else the room's creation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_backfills_on_sqlite() {
    let dir = std::env::temp_dir().join("chat-room-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.db", uuid::Uuid::new_v4()));
    the_migration_backfills_participants_and_activity(&format!(
        "sqlite://{}?mode=rwc",
        file.display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_backfills_on_postgres() {
    let Some(url) = chat_tests::fresh_postgres_database().await else { return };
    the_migration_backfills_participants_and_activity(&url).await;
}
