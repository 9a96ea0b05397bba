//! Offers in rooms: the terms (exact decimals, every invalid term named), the
//! state machine by role, races (one answer wins, on one instance and on two),
//! counters, deletion and edits of an offer's message, expiry, live frames and
//! events.

use std::collections::HashSet;
use std::time::Duration;

use chat_tests::rabbit::EventTap;
use chat_tests::{TestApp, assert_error, on_both_databases, reachable_rabbitmq};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

on_both_databases!(
    an_offer_keeps_its_decimals_exactly,
    every_invalid_term_is_refused_naming_its_field,
    every_answer_by_every_role,
    fifty_concurrent_accepts_one_wins,
    accept_racing_withdraw_one_wins,
    an_expired_offer_refuses_answers_and_the_job_records_it_once,
    a_counter_chain,
    deleting_an_offer_message_withdraws_it,
    an_offer_message_cannot_be_edited_or_posted_as_a_message,
    the_room_sees_every_change_live,
    a_room_lists_its_offers_newest_first,
    a_repeated_client_msg_id_makes_one_offer,
    accept_racing_expiry_one_wins,
    a_resumed_socket_replays_offers_as_they_stand,
    an_item_conversation_carries_offers_about_its_item,
    the_newest_page_shows_every_offer_change,
);

fn unique(role: &str) -> String {
    format!("{}-{role}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

fn terms() -> Value {
    json!({"side": "sell", "commodity": "wheat", "quantity": "250.5", "unit": "t",
        "price": "210", "currency": "UAH"})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

async fn send(
    app: &TestApp,
    user: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).header("x-user-id", user);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request is sent")
}

/// A room (private with `members` when given) created by `creator`.
async fn room(app: &TestApp, creator: &str, members: Option<&[&str]>) -> i64 {
    let mut body = json!({"name": unique("deal")});
    if let Some(members) = members {
        body["is_private"] = true.into();
        body["members"] = json!(members);
    }
    let response = send(app, creator, Method::POST, "/rooms", Some(body)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Makes an offer as `user`; returns its message (with `offer`).
async fn offer(app: &TestApp, room: i64, user: &str, body: Value) -> Value {
    let response =
        send(app, user, Method::POST, &format!("/rooms/{room}/offers"), Some(body)).await;
    assert_eq!(response.status(), 201, "offer is made");
    let location = response.headers().get("location").cloned();
    let message: Value = response.json().await.unwrap();
    let id = &message["offer"]["id"];
    assert_eq!(location.unwrap().to_str().unwrap(), format!("/offers/{id}"));
    message
}

async fn answer(app: &TestApp, id: &Value, user: &str, verb: &str) -> reqwest::Response {
    send(app, user, Method::POST, &format!("/offers/{id}/{verb}"), None).await
}

async fn status_of(app: &TestApp, id: &Value) -> String {
    let response = send(app, "anyone", Method::GET, &format!("/offers/{id}"), None).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_owned()
}

async fn history(app: &TestApp, room: i64, user: &str) -> Vec<Value> {
    let path = format!("/rooms/{room}/messages?limit=100");
    let response = send(app, user, Method::GET, &path, None).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
}

/// The contents of the room's `system` messages, in seq order.
async fn notices(app: &TestApp, room: i64, user: &str) -> Vec<String> {
    history(app, room, user)
        .await
        .into_iter()
        .filter(|m| m["message_type"] == "system")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_offer_keeps_its_decimals_exactly(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let body = with(
        terms(),
        json!({"quantity": "0.0001", "price": "99999999.9999", "currency": "USD", "unit": "bu",
            "incoterm": "fob", "delivery_place": "Odesa port", "delivery_from": "2027-02-01",
            "delivery_to": "2027-02-28", "note": "Protein 12.5%", "item_id": "77",
            "expires_at": "2099-01-01T00:00:00Z", "to_user_id": "bob", "user_id": "alice"}),
    );
    let message = offer(&app, room, "alice", body).await;
    assert_eq!(message["message_type"], "offer");
    assert_eq!(message["user_id"], "alice");
    assert_eq!(message["room_id"], room);
    let made = &message["offer"];
    let expected = json!({
        "id": made["id"], "room_id": room, "message_id": message["id"], "status": "open",
        "side": "sell", "commodity": "wheat", "quantity": "0.0001", "unit": "bu",
        "price": "99999999.9999", "currency": "USD", "incoterm": "FOB",
        "delivery_place": "Odesa port", "delivery_from": "2027-02-01", "delivery_to": "2027-02-28",
        "note": "Protein 12.5%", "item_id": "77", "from_user_id": "alice", "to_user_id": "bob",
        "parent_offer_id": null, "expires_at": "2099-01-01T00:00:00.000Z", "responded_by": null,
        "responded_at": null, "created_at": made["created_at"],
    });
    assert_eq!(*made, expected);

    let read = send(&app, "carol", Method::GET, &format!("/offers/{}", made["id"]), None).await;
    assert_eq!(read.json::<Value>().await.unwrap(), expected, "read back exactly");
    let by_message =
        send(&app, "carol", Method::GET, &format!("/messages/{}", message["id"]), None).await;
    assert_eq!(by_message.json::<Value>().await.unwrap()["offer"], expected);
    let text = app.post_message(room, "carol", "nice").await;
    assert!(text.get("offer").is_none(), "only offer messages carry `offer`: {text}");
    let items = history(&app, room, "carol").await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["offer"], expected, "history carries the offer");
    assert!(items[1].get("offer").is_none());

    // Trailing zeros are the same number; the stored value is exact.
    let plain = offer(&app, room, "alice", with(terms(), json!({"quantity": "1000.5000"}))).await;
    assert_eq!(plain["offer"]["quantity"], "1000.5");
    assert_eq!(plain["offer"]["price"], "210");
    assert_eq!(plain["content"], "sell 1000.5 t of wheat at 210 UAH/t");
}

async fn every_invalid_term_is_refused_naming_its_field(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for field in ["side", "commodity", "quantity", "unit", "price", "currency"] {
        let mut body = terms();
        body.as_object_mut().unwrap().remove(field);
        cases.push((field, body));
    }
    let spoiled = [
        ("side", json!("Sell")),
        ("side", json!("lend")),
        ("commodity", json!("   ")),
        ("commodity", json!("w".repeat(101))),
        ("quantity", json!(250.5)),
        ("quantity", json!("0")),
        ("quantity", json!("-1")),
        ("quantity", json!("1.23456")),
        ("quantity", json!("1e3")),
        ("quantity", json!("")),
        ("unit", json!("lb")),
        ("price", json!("abc")),
        ("price", json!(210)),
        ("price", json!("0.00001")),
        ("currency", json!("usd")),
        ("currency", json!("ABC")),
        ("currency", json!("US")),
        ("incoterm", json!("XYZ")),
        ("delivery_place", json!("")),
        ("delivery_from", json!("2027-13-01")),
        ("delivery_to", json!("soon")),
        ("note", json!("")),
        ("expires_at", json!("2001-01-01T00:00:00Z")),
        ("expires_at", json!("tomorrow")),
        ("to_user_id", json!("alice")),
        ("item_id", json!("a/b")),
        ("client_msg_id", json!("")),
    ];
    for (field, value) in spoiled {
        cases.push((field, with(terms(), json!({ field: value }))));
    }
    cases.push((
        "delivery_to",
        with(terms(), json!({"delivery_from": "2027-03-02", "delivery_to": "2027-03-01"})),
    ));
    for (field, body) in cases {
        let response =
            send(&app, "alice", Method::POST, &format!("/rooms/{room}/offers"), Some(body.clone()))
                .await;
        let error = assert_error(response, 422, "validation_failed").await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field} named in {message:?} for {body}");
    }
    let list = send(&app, "alice", Method::GET, &format!("/rooms/{room}/offers"), None).await;
    assert_eq!(list.json::<Value>().await.unwrap()["items"], json!([]), "nothing stored");
    assert!(history(&app, room, "alice").await.is_empty(), "no message either");
}

async fn every_answer_by_every_role(app: TestApp) {
    // alice (author, creator), bob (addressee), carol (member), dave (outsider).
    let room = room(&app, "alice", Some(&["bob", "carol"])).await;
    let to_bob = offer(&app, room, "alice", with(terms(), json!({"to_user_id": "bob"}))).await;
    let id = &to_bob["offer"]["id"];
    for verb in ["accept", "decline", "counter"] {
        let body = (verb == "counter").then(|| json!({"price": "200"}));
        let path = format!("/offers/{id}/{verb}");
        for user in ["alice", "carol", "dave"] {
            let response = send(&app, user, Method::POST, &path, body.clone()).await;
            assert_error(response, 403, "forbidden").await;
        }
    }
    assert_error(answer(&app, id, "bob", "withdraw").await, 403, "forbidden").await;
    assert_error(answer(&app, id, "dave", "withdraw").await, 403, "forbidden").await;
    let read = send(&app, "dave", Method::GET, &format!("/offers/{id}"), None).await;
    assert_error(read, 403, "forbidden").await;
    assert_eq!(status_of_as(&app, id, "carol").await, "open", "refusals change nothing");

    let declined = answer(&app, id, "bob", "decline").await;
    assert_eq!(declined.status(), 200);
    let declined: Value = declined.json().await.unwrap();
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["responded_by"], "bob");
    assert!(declined["responded_at"].is_string());
    for (user, verb) in [("bob", "accept"), ("bob", "decline"), ("alice", "withdraw")] {
        let error = assert_error(answer(&app, id, user, verb).await, 409, "conflict").await;
        assert!(error["error"]["message"].as_str().unwrap().contains("declined"), "{error}");
    }
    let counter = send(
        &app,
        "bob",
        Method::POST,
        &format!("/offers/{id}/counter"),
        Some(json!({"price": "1"})),
    )
    .await;
    assert_error(counter, 409, "conflict").await;

    // Not addressed: any member but the author.
    let open = offer(&app, room, "alice", terms()).await;
    let id = &open["offer"]["id"];
    assert_error(answer(&app, id, "alice", "accept").await, 403, "forbidden").await;
    assert_error(answer(&app, id, "dave", "accept").await, 403, "forbidden").await;
    let accepted = answer(&app, id, "carol", "accept").await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.json::<Value>().await.unwrap()["status"], "accepted");
    let error = assert_error(answer(&app, id, "bob", "accept").await, 409, "conflict").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("accepted"));

    let withdrawn = offer(&app, room, "alice", terms()).await;
    let id = &withdrawn["offer"]["id"];
    let response = answer(&app, id, "alice", "withdraw").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "withdrawn");
    for (user, verb) in [("bob", "accept"), ("carol", "decline"), ("alice", "withdraw")] {
        let error = assert_error(answer(&app, id, user, verb).await, 409, "conflict").await;
        assert!(error["error"]["message"].as_str().unwrap().contains("withdrawn"));
    }
    assert_error(answer(&app, &json!(999_999), "bob", "accept").await, 404, "not_found").await;

    assert_eq!(
        notices(&app, room, "alice").await,
        ["bob declined the offer", "carol accepted the offer", "alice withdrew the offer"]
    );
}

async fn status_of_as(app: &TestApp, id: &Value, user: &str) -> String {
    let response = send(app, user, Method::GET, &format!("/offers/{id}"), None).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_owned()
}

/// Of `attempts` concurrent calls, how many answered each status.
async fn statuses(attempts: Vec<reqwest::RequestBuilder>) -> Vec<u16> {
    let responses = join_all(attempts.into_iter().map(|r| r.send())).await;
    responses.into_iter().map(|r| r.expect("answered").status().as_u16()).collect()
}

async fn fifty_concurrent_accepts_one_wins(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let made = offer(&app, room, "alice", terms()).await;
    let id = &made["offer"]["id"];
    let attempts = (0..50)
        .map(|i| {
            app.client
                .post(app.url(&format!("/offers/{id}/accept")))
                .header("x-user-id", format!("buyer{i}"))
        })
        .collect();
    let codes = statuses(attempts).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 49, "{codes:?}");
    let accepted: Vec<String> = notices(&app, room, "alice").await;
    assert_eq!(accepted.len(), 1, "one system message: {accepted:?}");
    assert!(accepted[0].starts_with("buyer") && accepted[0].ends_with(" accepted the offer"));
    assert_eq!(status_of(&app, id).await, "accepted");
}

async fn accept_racing_withdraw_one_wins(app: TestApp) {
    let room = room(&app, "alice", None).await;
    for _ in 0..10 {
        let made = offer(&app, room, "alice", terms()).await;
        let id = &made["offer"]["id"];
        let accept =
            app.client.post(app.url(&format!("/offers/{id}/accept"))).header("x-user-id", "bob");
        let withdraw = app
            .client
            .post(app.url(&format!("/offers/{id}/withdraw")))
            .header("x-user-id", "alice");
        let codes = statuses(vec![accept, withdraw]).await;
        let status = status_of(&app, id).await;
        match codes.as_slice() {
            [200, 409] => assert_eq!(status, "accepted"),
            [409, 200] => assert_eq!(status, "withdrawn"),
            other => panic!("exactly one wins, got {other:?}"),
        }
    }
    assert_eq!(notices(&app, room, "alice").await.len(), 10, "one notice per offer");
}

async fn an_expired_offer_refuses_answers_and_the_job_records_it_once(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let (mut socket, _) = app.joined_socket(room, "watcher").await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let body = with(terms(), json!({"expires_at": expires.to_rfc3339()}));
    let made = offer(&app, room, "alice", body).await;
    let id = made["offer"]["id"].clone();
    assert_eq!(socket.next_of_type("offer_updated").await["offer"]["status"], "open");
    // The job's change comes as two frames; until then, and after, it reads expired.
    let (expired, notice) = next_change(&mut socket).await;
    assert_eq!(expired["offer"]["status"], "expired", "{expired}");
    assert_eq!(expired["offer"]["id"], id);
    assert!(expired["offer"]["responded_by"].is_null());
    assert_eq!(notice["message_type"], "system");
    assert_eq!(notice["content"], "the offer expired");

    assert_eq!(status_of(&app, &id).await, "expired");
    for (user, verb) in [("bob", "accept"), ("bob", "decline"), ("alice", "withdraw")] {
        let error = assert_error(answer(&app, &id, user, verb).await, 409, "conflict").await;
        assert!(error["error"]["message"].as_str().unwrap().contains("expired"), "{error}");
    }
    // Another change after it, so the job has had every chance to expire it twice.
    let later = offer(&app, room, "alice", terms()).await;
    assert_eq!(socket.next_of_type("offer_updated").await["offer"]["id"], later["offer"]["id"]);
    assert_eq!(notices(&app, room, "alice").await, ["the offer expired"]);
    let list =
        send(&app, "bob", Method::GET, &format!("/rooms/{room}/offers?status=expired"), None).await;
    let items = list.json::<Value>().await.unwrap()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["id"], id);
}

/// The frames of one change, in either order: its `offer_updated` and its
/// `system` message.
async fn next_change(socket: &mut chat_tests::socket::Socket) -> (Value, Value) {
    let (mut updated, mut notice) = (None, None);
    while updated.is_none() || notice.is_none() {
        let frame = socket.next_json().await;
        match frame["type"].as_str() {
            Some("offer_updated") => updated = Some(frame),
            Some("message") if frame["message_type"] == "system" => notice = Some(frame),
            _ => {}
        }
    }
    (updated.unwrap_or_default(), notice.unwrap_or_default())
}

async fn a_counter_chain(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let first = offer(
        &app,
        room,
        "alice",
        with(terms(), json!({"incoterm": "CIF", "delivery_place": "Izmail", "item_id": "77"})),
    )
    .await;
    let first_id = &first["offer"]["id"];
    let path = |id: &Value| format!("/offers/{id}/counter");

    let empty = send(&app, "bob", Method::POST, &path(first_id), Some(json!({}))).await;
    assert_error(empty, 422, "validation_failed").await;
    let bad =
        send(&app, "bob", Method::POST, &path(first_id), Some(json!({"price": "1.000001"}))).await;
    let error = assert_error(bad, 422, "validation_failed").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("price"));
    let own = send(&app, "alice", Method::POST, &path(first_id), Some(json!({"price": "1"}))).await;
    assert_error(own, 403, "forbidden").await;
    assert_eq!(status_of(&app, first_id).await, "open", "refused counters change nothing");

    let countered =
        send(&app, "bob", Method::POST, &path(first_id), Some(json!({"price": "205.25"}))).await;
    assert_eq!(countered.status(), 201);
    let second: Value = countered.json().await.unwrap();
    assert_eq!(second["message_type"], "offer");
    assert_eq!(second["user_id"], "bob");
    let made = &second["offer"];
    assert_eq!(made["parent_offer_id"], *first_id);
    assert_eq!(made["status"], "open");
    assert_eq!(made["from_user_id"], "bob");
    assert_eq!(made["to_user_id"], "alice", "a counter is addressed to the parent's author");
    assert_eq!(made["price"], "205.25");
    for copied in [
        "side",
        "commodity",
        "quantity",
        "unit",
        "currency",
        "incoterm",
        "delivery_place",
        "item_id",
    ] {
        assert_eq!(made[copied], first["offer"][copied], "{copied} copied");
    }
    let parent = send(&app, "bob", Method::GET, &format!("/offers/{first_id}"), None).await;
    let parent: Value = parent.json().await.unwrap();
    assert_eq!(parent["status"], "countered");
    assert_eq!(parent["responded_by"], "bob");

    // Only the addressee (alice) may answer the counter.
    let second_id = &made["id"];
    let carol =
        send(&app, "carol", Method::POST, &path(second_id), Some(json!({"quantity": "5"}))).await;
    assert_error(carol, 403, "forbidden").await;
    let third =
        send(&app, "alice", Method::POST, &path(second_id), Some(json!({"quantity": "300"}))).await;
    assert_eq!(third.status(), 201);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["offer"]["quantity"], "300");
    assert_eq!(third["offer"]["price"], "205.25", "the chain carries changed terms on");
    assert_eq!(third["offer"]["to_user_id"], "bob");
    let accepted = answer(&app, &third["offer"]["id"], "bob", "accept").await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(status_of(&app, second_id).await, "countered");
    let again = send(&app, "bob", Method::POST, &path(first_id), Some(json!({"price": "1"}))).await;
    let error = assert_error(again, 409, "conflict").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("countered"));

    let kinds: Vec<(String, String)> = history(&app, room, "bob")
        .await
        .into_iter()
        .map(|m| {
            (
                m["message_type"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let types: Vec<&str> = kinds.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["offer", "system", "offer", "system", "offer", "system"]);
    assert_eq!(kinds[1].1, "bob countered the offer");
    assert_eq!(kinds[3].1, "alice countered the offer");
    assert_eq!(kinds[5].1, "bob accepted the offer");
}

async fn deleting_an_offer_message_withdraws_it(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let made = offer(&app, room, "alice", terms()).await;
    let id = &made["offer"]["id"];
    let by_other =
        send(&app, "bob", Method::DELETE, &format!("/messages/{}", made["id"]), None).await;
    assert_error(by_other, 403, "forbidden").await;
    let deleted =
        send(&app, "alice", Method::DELETE, &format!("/messages/{}", made["id"]), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(status_of(&app, id).await, "withdrawn");
    let gone = send(&app, "alice", Method::GET, &format!("/messages/{}", made["id"]), None).await;
    assert_error(gone, 404, "not_found").await;
    assert_error(answer(&app, id, "bob", "accept").await, 409, "conflict").await;
    let items = history(&app, room, "alice").await;
    assert_eq!(items.len(), 1, "the offer's message is gone, its notice is there");
    assert_eq!(items[0]["content"], "alice withdrew the offer");

    // Deleting the message of an answered offer leaves the offer as it was.
    let accepted = offer(&app, room, "alice", terms()).await;
    assert_eq!(answer(&app, &accepted["offer"]["id"], "bob", "accept").await.status(), 200);
    let deleted =
        send(&app, "alice", Method::DELETE, &format!("/messages/{}", accepted["id"]), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(status_of(&app, &accepted["offer"]["id"]).await, "accepted");
    assert_eq!(
        notices(&app, room, "alice").await,
        ["alice withdrew the offer", "bob accepted the offer"]
    );
}

async fn an_offer_message_cannot_be_edited_or_posted_as_a_message(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let made = offer(&app, room, "alice", terms()).await;
    let path = format!("/messages/{}", made["id"]);
    let edit = send(&app, "alice", Method::PATCH, &path, Some(json!({"content": "cheaper"}))).await;
    assert_error(edit, 409, "conflict").await;
    let read = send(&app, "alice", Method::GET, &path, None).await;
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["content"], made["content"]);
    assert_eq!(read["edited"], false);
    let posted = send(
        &app,
        "alice",
        Method::POST,
        &format!("/rooms/{room}/messages"),
        Some(json!({"content": "fake", "message_type": "offer"})),
    )
    .await;
    let error = assert_error(posted, 422, "validation_failed").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("message_type"));
}

async fn the_room_sees_every_change_live(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let (mut socket, _) = app.joined_socket(room, "watcher").await;
    let made = offer(&app, room, "alice", terms()).await;
    let message = socket.next_of_type("message").await;
    assert_eq!(message["id"], made["id"]);
    assert_eq!(message["offer"], made["offer"], "the message frame carries the offer");
    let updated = socket.next_of_type("offer_updated").await;
    assert_eq!(updated, json!({"type": "offer_updated", "room_id": room, "offer": made["offer"]}));

    let accepted: Value =
        answer(&app, &made["offer"]["id"], "bob", "accept").await.json().await.unwrap();
    let (updated, notice) = next_change(&mut socket).await;
    assert_eq!(updated, json!({"type": "offer_updated", "room_id": room, "offer": accepted}));
    assert_eq!(notice["content"], "bob accepted the offer");
    assert_eq!(notice["user_id"], "bob");
    assert_eq!(notice["seq"], message["seq"].as_i64().unwrap() + 1, "the room's next seq");

    // An inbox socket subscribed to the room gets the frames too, with room_id.
    let mut inbox = app.inbox_socket("bob").await;
    inbox.subscribe(room, None).await;
    let again = offer(&app, room, "alice", terms()).await;
    let frame = inbox.next_of_type("offer_updated").await;
    assert_eq!(frame["room_id"], room);
    assert_eq!(frame["offer"], again["offer"]);
}

async fn a_room_lists_its_offers_newest_first(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let other = room_in(&app).await;
    offer(&app, other, "alice", terms()).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(offer(&app, room, "alice", terms()).await["offer"]["id"].as_i64().unwrap());
    }
    assert_eq!(answer(&app, &json!(ids[1]), "bob", "accept").await.status(), 200);
    assert_eq!(answer(&app, &json!(ids[3]), "alice", "withdraw").await.status(), 200);

    let list = |query: String| {
        let app = &app;
        async move {
            let response =
                send(app, "bob", Method::GET, &format!("/rooms/{room}/offers{query}"), None).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let ids_of = |page: &Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect()
    };
    let all = list(String::new()).await;
    assert_eq!(ids_of(&all), [ids[4], ids[3], ids[2], ids[1], ids[0]]);
    assert!(all["next_cursor"].is_null());
    let first = list("?limit=2".into()).await;
    assert_eq!(ids_of(&first), [ids[4], ids[3]]);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let second = list(format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids_of(&second), [ids[2], ids[1]]);
    let third = list(format!("?limit=2&cursor={}", second["next_cursor"].as_str().unwrap())).await;
    assert_eq!(ids_of(&third), [ids[0]]);
    assert!(third["next_cursor"].is_null());
    assert_eq!(ids_of(&list("?status=open".into()).await), [ids[4], ids[2], ids[0]]);
    assert_eq!(ids_of(&list("?status=accepted".into()).await), [ids[1]]);
    assert_eq!(ids_of(&list("?status=withdrawn".into()).await), [ids[3]]);
    assert!(ids_of(&list("?status=declined".into()).await).is_empty());

    let path = format!("/rooms/{room}/offers?status=closed");
    assert_error(send(&app, "bob", Method::GET, &path, None).await, 422, "validation_failed").await;
    let path = format!("/rooms/{room}/offers?cursor=x");
    assert_error(send(&app, "bob", Method::GET, &path, None).await, 422, "validation_failed").await;
    let path = format!("/rooms/{room}/offers?limit=0");
    assert_error(send(&app, "bob", Method::GET, &path, None).await, 422, "validation_failed").await;
    assert_error(
        send(&app, "bob", Method::GET, "/rooms/999999/offers", None).await,
        404,
        "not_found",
    )
    .await;
    let private = room_private(&app).await;
    let path = format!("/rooms/{private}/offers");
    assert_error(send(&app, "eve", Method::GET, &path, None).await, 403, "forbidden").await;
    let post = send(&app, "eve", Method::POST, &path, Some(terms())).await;
    assert_error(post, 403, "forbidden").await;
}

async fn room_in(app: &TestApp) -> i64 {
    room(app, "zed", None).await
}

async fn room_private(app: &TestApp) -> i64 {
    room(app, "zed", Some(&["bob"])).await
}

async fn a_repeated_client_msg_id_makes_one_offer(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let body = with(terms(), json!({"client_msg_id": "offer-1"}));
    let first = offer(&app, room, "alice", body.clone()).await;
    let again =
        send(&app, "alice", Method::POST, &format!("/rooms/{room}/offers"), Some(body)).await;
    assert_eq!(again.status(), 200, "an idempotent repeat");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["offer"]["id"], first["offer"]["id"]);
    let list = send(&app, "alice", Method::GET, &format!("/rooms/{room}/offers"), None).await;
    assert_eq!(list.json::<Value>().await.unwrap()["items"].as_array().unwrap().len(), 1);
}

async fn accept_racing_expiry_one_wins(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let (mut socket, _) = app.joined_socket(room, "watcher").await;
    // Offers that all expire at one instant, and accepts aimed at that instant.
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut ids = Vec::new();
    for _ in 0..20 {
        let body = with(terms(), json!({"expires_at": at.to_rfc3339()}));
        ids.push(offer(&app, room, "alice", body).await["offer"]["id"].clone());
    }
    let aim =
        (at - chrono::Utc::now() - chrono::Duration::milliseconds(10)).to_std().unwrap_or_default();
    tokio::time::sleep(aim).await;
    let attempts = ids
        .iter()
        .map(|id| {
            app.client.post(app.url(&format!("/offers/{id}/accept"))).header("x-user-id", "bob")
        })
        .collect();
    let codes = statuses(attempts).await;
    assert!(codes.iter().all(|c| *c == 200 || *c == 409), "{codes:?}");
    // Each offer ends once: accepted (200) or expired (409), as its frame says.
    let mut ended = std::collections::HashMap::new();
    while ended.len() < ids.len() {
        let frame = socket.next_of_type("offer_updated").await;
        let status = frame["offer"]["status"].as_str().unwrap().to_owned();
        if status != "open" {
            let first = ended.insert(frame["offer"]["id"].as_i64().unwrap(), status);
            assert!(first.is_none(), "one change per offer: {frame}");
        }
    }
    for (id, code) in ids.iter().zip(&codes) {
        let want = if *code == 200 { "accepted" } else { "expired" };
        assert_eq!(ended[&id.as_i64().unwrap()], want, "offer {id} answered {code}");
        assert_eq!(status_of(&app, id).await, want);
    }
    let notices = notices(&app, room, "alice").await;
    assert_eq!(notices.len(), ids.len(), "one notice per offer: {notices:?}");
    let accepted = codes.iter().filter(|c| **c == 200).count();
    assert_eq!(notices.iter().filter(|n| *n == "bob accepted the offer").count(), accepted);
    assert_eq!(notices.iter().filter(|n| *n == "the offer expired").count(), ids.len() - accepted);
}

async fn a_resumed_socket_replays_offers_as_they_stand(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let made = offer(&app, room, "alice", terms()).await;
    assert_eq!(answer(&app, &made["offer"]["id"], "bob", "accept").await.status(), 200);
    let mut socket = app.socket(room, "user_id=carol&since=0").await;
    let joined = socket.next_json().await;
    assert_eq!(joined["type"], "joined");
    let replayed = socket.next_of_type("message").await;
    assert_eq!(replayed["id"], made["id"]);
    assert_eq!(replayed["offer"]["status"], "accepted", "{replayed}");
    let notice = socket.next_of_type("message").await;
    assert_eq!(notice["content"], "bob accepted the offer");
    assert!(notice.get("offer").is_none());
}

async fn an_item_conversation_carries_offers_about_its_item(app: TestApp) {
    let item = unique("item");
    // The GrainTrade socket opens the conversation (a private room of the two).
    let mut seller = app.socket_at(&format!("/ws/chat/{item}/buyer?user_id=seller")).await;
    seller
        .send_json(json!({"sender_id": "seller", "receiver_id": "buyer", "item_id": item,
            "content": "Still for sale"}))
        .await;
    assert_eq!(seller.next_json().await["content"], "Still for sale");
    let rooms = send(&app, "buyer", Method::GET, &format!("/rooms?item_id={item}"), None).await;
    let rooms: Value = rooms.json().await.unwrap();
    let room = rooms["items"][0]["id"].as_i64().expect("the conversation's room");

    let made = offer(&app, room, "seller", with(terms(), json!({"to_user_id": "buyer"}))).await;
    assert_eq!(made["offer"]["item_id"], item.as_str(), "the conversation's item");
    let other = with(terms(), json!({"item_id": "another-item"}));
    let refused =
        send(&app, "seller", Method::POST, &format!("/rooms/{room}/offers"), Some(other)).await;
    let error = assert_error(refused, 422, "validation_failed").await;
    assert!(error["error"]["message"].as_str().unwrap().contains("item_id"));
    let outsider =
        send(&app, "carol", Method::POST, &format!("/rooms/{room}/offers"), Some(terms())).await;
    assert_error(outsider, 403, "forbidden").await;
    assert_eq!(answer(&app, &made["offer"]["id"], "buyer", "accept").await.status(), 200);
    assert_eq!(notices(&app, room, "buyer").await, ["buyer accepted the offer"]);
}

/// The newest page (limit ≤ 50: served from the cache) after each change.
async fn the_newest_page_shows_every_offer_change(app: TestApp) {
    let room = room(&app, "alice", None).await;
    let newest = || async {
        let response =
            send(&app, "bob", Method::GET, &format!("/rooms/{room}/messages"), None).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
    };
    app.post_message(room, "bob", "hello").await;
    assert_eq!(newest().await.len(), 1, "the page is read (and cached)");
    let made = offer(&app, room, "alice", terms()).await;
    let page = newest().await;
    assert_eq!(page.len(), 2);
    assert_eq!(page[1]["offer"]["status"], "open");
    assert_eq!(answer(&app, &made["offer"]["id"], "bob", "decline").await.status(), 200);
    let page = newest().await;
    let seqs: Vec<i64> = page.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3], "no seq missing");
    assert_eq!(page[1]["offer"]["status"], "declined", "the offer as it stands now");
    assert_eq!(page[2]["content"], "bob declined the offer");
    let second = offer(&app, room, "alice", terms()).await;
    assert_eq!(newest().await.len(), 4);
    let deleted =
        send(&app, "alice", Method::DELETE, &format!("/messages/{}", second["id"]), None).await;
    assert_eq!(deleted.status(), 204);
    let page = newest().await;
    let seqs: Vec<i64> = page.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 5], "the deleted offer message is gone, its notice is there");
    assert_eq!(page[3]["content"], "alice withdrew the offer");
}

/// Two instances on one Postgres database: concurrent accepts through both,
/// one wins; both run the expiry job, one expiry is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_race_and_expire_once() {
    // Redis carries each instance's frames to the other's sockets.
    let Some(one) = TestApp::postgres_with_redis().await else { return };
    let two = one.another(|_| {}).await;
    let room = room(&one, "alice", None).await;
    let made = offer(&one, room, "alice", terms()).await;
    let id = &made["offer"]["id"];
    let attempts = (0..40)
        .map(|i| {
            let app = if i % 2 == 0 { &one } else { &two };
            app.client
                .post(app.url(&format!("/offers/{id}/accept")))
                .header("x-user-id", format!("buyer{i}"))
        })
        .collect();
    let codes = statuses(attempts).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 39, "{codes:?}");

    let (mut socket, _) = two.joined_socket(room, "watcher").await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1200);
    let mut due = Vec::new();
    for _ in 0..5 {
        let body = with(terms(), json!({"expires_at": expires.to_rfc3339()}));
        due.push(offer(&one, room, "alice", body).await["offer"]["id"].as_i64().unwrap());
    }
    let mut expired = HashSet::new();
    while expired.len() < due.len() {
        let frame = socket.next_of_type("offer_updated").await;
        if frame["offer"]["status"] == "expired" {
            assert!(
                expired.insert(frame["offer"]["id"].as_i64().unwrap()),
                "expired once: {frame}"
            );
        }
    }
    assert_eq!(expired, due.iter().copied().collect());
    // A change after them: any second expiry would have been stored before it.
    let marker = offer(&one, room, "alice", terms()).await;
    loop {
        let frame = socket.next_of_type("offer_updated").await;
        assert_ne!(frame["offer"]["status"], "expired", "no second expiry: {frame}");
        if frame["offer"]["id"] == marker["offer"]["id"] {
            break;
        }
    }
    let notices = notices(&one, room, "alice").await;
    assert_eq!(notices.iter().filter(|n| *n == "the offer expired").count(), 5, "{notices:?}");
    assert_eq!(notices.iter().filter(|n| n.ends_with("accepted the offer")).count(), 1);
    two.shutdown().await;
}

/// Every offer event has the whole offer; 50 racing accepts make one
/// `offer_accepted`; the expiry job makes one `offer_expired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_events_carry_the_whole_offer_once() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let mut tap = EventTap::open(&url).await;
    // The full set: Postgres, Redis (cache, fan-out) and RabbitMQ.
    let Some(app) = TestApp::full().await else { return };
    let settings = app.settings.clone();
    let alice = unique("alice");
    let bob = unique("bob");
    let room = room(&app, &alice, None).await;
    assert_eq!(tap.next_for(&alice).await.body["event_type"], "room_created");

    let made = offer(&app, room, &alice, terms()).await;
    let mut created = None;
    let mut message_created = None;
    while created.is_none() || message_created.is_none() {
        let event = tap.next_for(&alice).await;
        match event.body["event_type"].as_str() {
            Some("offer_created") => created = Some(event),
            Some("message_created") => message_created = Some(event),
            other => panic!("unexpected {other:?}"),
        }
    }
    let created = created.unwrap();
    assert_eq!(created.routing_key, "offer.created");
    assert_eq!(created.message_id.as_deref(), created.body["event_id"].as_str());
    assert_eq!(created.body["offer"], made["offer"], "the whole offer");
    assert_eq!(created.body["room_id"], room);
    assert_eq!(created.body["message_id"], made["id"]);
    assert_eq!(created.body["user_id"], alice.as_str());
    let keys: HashSet<&str> =
        created.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        HashSet::from([
            "event_id",
            "event_type",
            "room_id",
            "user_id",
            "message_id",
            "offer",
            "timestamp"
        ])
    );
    assert_eq!(message_created.unwrap().body["message_id"], made["id"]);

    let id = &made["offer"]["id"];
    let attempts = (0..50)
        .map(|i| {
            app.client
                .post(app.url(&format!("/offers/{id}/accept")))
                .header("x-user-id", format!("{bob}{i}"))
        })
        .collect();
    let codes = statuses(attempts).await;
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1);
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1000);
    let due =
        offer(&app, room, &alice, with(terms(), json!({"expires_at": expires.to_rfc3339()}))).await;
    let (mut accepted, mut notices) = (0, 0);
    while accepted == 0 || notices == 0 {
        let event = tap.next_for(&bob).await;
        match event.body["event_type"].as_str() {
            Some("offer_accepted") => {
                assert_eq!(event.routing_key, "offer.accepted");
                assert_eq!(event.body["offer"]["status"], "accepted");
                assert_eq!(event.body["offer"]["id"], *id);
                assert_eq!(event.body["user_id"], event.body["offer"]["responded_by"]);
                accepted += 1;
            }
            Some("message_created") => {
                assert!(event.body["content"].as_str().unwrap().ends_with("accepted the offer"));
                notices += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The expiry comes after (later outbox rows): no second acceptance before it.
    loop {
        let event = tap.try_next_for("", Duration::from_secs(30)).await.expect("the expiry event");
        let kind = event.body["event_type"].as_str().unwrap_or_default().to_owned();
        let user = event.body["user_id"].as_str().unwrap_or_default();
        if user.starts_with(&bob) {
            match kind.as_str() {
                "offer_accepted" => accepted += 1,
                "message_created" => notices += 1,
                _ => {}
            }
        }
        if kind == "offer_expired" && event.body["offer"]["id"] == due["offer"]["id"] {
            assert_eq!(event.routing_key, "offer.expired");
            assert_eq!(event.body["offer"]["status"], "expired");
            assert_eq!(event.body["user_id"], alice.as_str());
            break;
        }
    }
    assert_eq!(accepted, 1, "exactly one offer_accepted");
    assert_eq!(notices, 1, "exactly one system message");
    app.shutdown().await;
    chat_tests::clean_up(&settings).await;
}

/// `post_offer` on `chat.commands`: the offer is made once however often the
/// command comes, and a command with an invalid term is dead-lettered naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_offer_command_makes_one_offer() {
    let Some(url) = reachable_rabbitmq().await else { return };
    let Some(app) = TestApp::postgres_with_rabbitmq(&url).await else { return };
    let mut commands =
        chat_tests::rabbit::CommandQueue::open(&url, &app.settings.rabbitmq_commands_queue).await;
    let room = room(&app, "seller7", Some(&["buyer1"])).await;
    let (mut watcher, _) = app.joined_socket(room, "buyer1").await;
    let command = with(
        terms(),
        json!({"command": "post_offer", "room_id": room, "user_id": "seller7",
            "to_user_id": "buyer1", "item_id": "77", "client_msg_id": "offer-77-v1"}),
    )
    .to_string();
    commands.send(&command).await;
    let frame = watcher.next_of_type("offer_updated").await;
    assert_eq!(frame["offer"]["from_user_id"], "seller7");
    assert_eq!(frame["offer"]["to_user_id"], "buyer1");
    assert_eq!(frame["offer"]["item_id"], "77");
    assert_eq!(frame["offer"]["quantity"], "250.5");
    commands.send(&command).await;
    let bad = with(
        terms(),
        json!({"command": "post_offer", "room_id": room, "user_id": "seller7",
        "currency": "usd"}),
    );
    commands.send(&bad.to_string()).await;
    let (_, reason) = commands.next_dead_letter().await;
    assert!(reason.contains("currency"), "{reason}");
    let number = with(
        terms(),
        json!({"command": "post_offer", "room_id": room, "user_id": "seller7",
        "price": 210}),
    );
    commands.send(&number.to_string()).await;
    let (_, reason) = commands.next_dead_letter().await;
    assert!(reason.contains("invalid command"), "{reason}");
    // The repeat came before the poison: had it made an offer, the list would say so.
    let list = send(&app, "buyer1", Method::GET, &format!("/rooms/{room}/offers"), None).await;
    let items = list.json::<Value>().await.unwrap()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["id"], frame["offer"]["id"]);
}
