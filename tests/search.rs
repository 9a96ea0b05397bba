//! Message search on SQLite (FTS5) and Postgres (tsvector + GIN): Ukrainian and
//! English, case, prefixes, filters, paging, edits and deletions, errors.

use std::collections::HashSet;

use chat_tests::{TestApp, assert_error, on_every_adapter_set};
use serde_json::{Value, json};

on_every_adapter_set!(
    finds_words_in_any_language_case_and_prefix,
    filters_paging_and_visibility,
    edits_and_deletions_are_reflected_at_once,
    bad_queries_are_rejected,
);

async fn contents(app: &TestApp, path: &str) -> Vec<String> {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

async fn finds_words_in_any_language_case_and_prefix(app: TestApp) {
    let room = app.create_room("Market").await;
    for text in [
        "Пшениця 3 класу, ціна 210 UAH/kg",
        "Wheat price FOB Odesa",
        "ПШЕНИЦЯ дешевше за кукурудзу",
        "Corn and wheat, mixed: пшениця та кукурудза",
        "Barley only",
    ] {
        app.post_message(room, "trader", text).await;
    }
    let base = format!("/rooms/{room}/messages/search");
    assert_eq!(
        contents(&app, &format!("{base}?q=пшениця")).await,
        vec![
            "Corn and wheat, mixed: пшениця та кукурудза",
            "ПШЕНИЦЯ дешевше за кукурудзу",
            "Пшениця 3 класу, ціна 210 UAH/kg"
        ],
        "newest first, case-insensitive"
    );
    assert_eq!(contents(&app, &format!("{base}?q=WHEAT")).await.len(), 2);
    assert_eq!(
        contents(&app, &format!("{base}?q=пшен")).await.len(),
        3,
        "the last word is a prefix"
    );
    assert_eq!(contents(&app, &format!("{base}?q=кукурудз")).await.len(), 2);
    assert_eq!(
        contents(&app, &format!("{base}?q=wheat%20пшен")).await,
        vec!["Corn and wheat, mixed: пшениця та кукурудза"],
        "every word must match"
    );
    assert!(contents(&app, &format!("{base}?q=rye")).await.is_empty());

    let body: Value = app.get(&format!("{base}?q=odesa")).await.json().await.unwrap();
    let hit = &body["items"][0];
    assert_eq!(hit["snippet"], "Wheat price FOB <mark>Odesa</mark>");
    for field in
        ["id", "room_id", "seq", "user_id", "content", "message_type", "created_at", "edited"]
    {
        assert!(hit.get(field).is_some(), "hit has {field}");
    }
    assert_eq!(body["next_cursor"], Value::Null);
}

async fn filters_paging_and_visibility(app: TestApp) {
    let room = app.create_room("Offers").await;
    let other = app.create_room("Other").await;
    for n in 0..7 {
        app.post_message(
            room,
            if n % 2 == 0 { "alice" } else { "bob" },
            &format!("offer {n} wheat"),
        )
        .await;
    }
    app.post_message(other, "alice", "wheat elsewhere").await;
    let private = app
        .client
        .post(app.url("/rooms"))
        .header("x-user-id", "seller")
        .json(&json!({"name": "Deal", "is_private": true, "members": ["buyer"]}))
        .send()
        .await
        .unwrap();
    let private: Value = private.json().await.unwrap();
    let private = private["id"].as_i64().unwrap();
    let secret = app
        .client
        .post(app.url(&format!("/rooms/{private}/messages")))
        .json(&json!({"content": "secret wheat price", "user_id": "seller"}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 201);

    let base = format!("/rooms/{room}/messages/search?q=wheat");
    assert_eq!(
        contents(&app, &format!("{base}&user_id=bob")).await,
        vec!["offer 5 wheat", "offer 3 wheat", "offer 1 wheat"]
    );

    // Paging: every hit once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}&limit=3&cursor={c}"),
            None => format!("{base}&limit=3"),
        };
        let body: Value = app.get(&path).await.json().await.unwrap();
        seen.extend(body["items"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![7, 6, 5, 4, 3, 2, 1]);

    // Time window.
    let page: Value =
        app.get(&format!("/rooms/{room}/messages?limit=7")).await.json().await.unwrap();
    let third = page["items"][2]["created_at"].as_str().unwrap().to_owned();
    let since: Vec<String> =
        contents(&app, &format!("{base}&since={}", third.replace('+', "%2B"))).await;
    assert!(since.len() >= 5 && since.contains(&"offer 2 wheat".to_owned()), "{since:?}");
    let until = contents(&app, &format!("{base}&until={}", third.replace('+', "%2B"))).await;
    assert!(!until.contains(&"offer 2 wheat".to_owned()), "until is exclusive: {until:?}");
    assert_eq!(since.len() + until.len(), 7);

    // Across rooms: only what the caller may read.
    let everywhere = |user: &'static str| {
        let request =
            app.client.get(app.url("/messages/search?q=wheat&limit=100")).header("x-user-id", user);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["room_id"].as_i64().unwrap())
                .collect::<HashSet<i64>>()
        }
    };
    assert_eq!(everywhere("stranger").await, HashSet::from([room, other]));
    assert_eq!(everywhere("buyer").await, HashSet::from([room, other, private]));
    assert_eq!(
        contents(&app, &format!("/messages/search?q=wheat&room_id={other}")).await,
        vec!["wheat elsewhere"]
    );
    let forbidden = app
        .client
        .get(app.url(&format!("/rooms/{private}/messages/search?q=wheat")))
        .header("x-user-id", "stranger")
        .send()
        .await
        .unwrap();
    assert_error(forbidden, 403, "forbidden").await;
    assert_error(app.get("/rooms/424242/messages/search?q=wheat").await, 404, "not_found").await;
}

async fn edits_and_deletions_are_reflected_at_once(app: TestApp) {
    let room = app.create_room("Changes").await;
    let first = app.post_message(room, "alice", "sunflower oil 1200 USD").await;
    let second = app.post_message(room, "alice", "sunflower seeds").await;
    let base = format!("/rooms/{room}/messages/search");
    assert_eq!(contents(&app, &format!("{base}?q=sunflower")).await.len(), 2);

    let edited = app
        .patch(
            &format!("/messages/{}", first["id"]),
            json!({"content": "rapeseed oil", "user_id": "alice"}),
        )
        .await;
    assert_eq!(edited.status(), 200);
    assert_eq!(contents(&app, &format!("{base}?q=sunflower")).await, vec!["sunflower seeds"]);
    assert_eq!(contents(&app, &format!("{base}?q=rapeseed")).await, vec!["rapeseed oil"]);

    let deleted = app
        .client
        .delete(app.url(&format!("/messages/{}", second["id"])))
        .header("x-user-id", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(contents(&app, &format!("{base}?q=sunflower")).await.is_empty());
}

async fn bad_queries_are_rejected(app: TestApp) {
    let room = app.create_room("Errors").await;
    let base = format!("/rooms/{room}/messages/search");
    // No word to look for: valid, and nothing matches.
    let nothing: Value = app.get(&format!("{base}?q=!!!%20...")).await.json().await.unwrap();
    assert_eq!(nothing, json!({"items": [], "next_cursor": null}));
    for query in ["", "?q=", "?q=%20%20", &format!("?q={}", "a".repeat(201))] {
        let body =
            assert_error(app.get(&format!("{base}{query}")).await, 422, "validation_failed").await;
        assert!(body["error"]["message"].as_str().unwrap().starts_with("q:"), "{body}");
    }
    assert_error(app.get(&format!("{base}?q=x&limit=0")).await, 422, "validation_failed").await;
    assert_error(app.get(&format!("{base}?q=x&since=yesterday")).await, 400, "bad_request").await;
    assert_error(app.get(&format!("{base}?q=x&cursor=abc")).await, 400, "bad_request").await;
    assert_error(app.get("/messages/search?q=").await, 422, "validation_failed").await;
    // A range that ends before it starts holds nothing (and is no error).
    let empty =
        app.get("/messages/search?q=x&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z");
    let empty = empty.await;
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.json::<Value>().await.unwrap(), json!({"items": [], "next_cursor": null}));
}
