//! Archiving: old messages move to the archive in small batches while history
//! paging, reads by id, edits and deletes go on working across both tables; a
//! run killed mid-batch or between batches loses and duplicates nothing, and
//! the next run finishes the work.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_infra::archiver::{ArchiveSettings, Archiver};
use chat_tests::{TestApp, on_both_databases};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};
use serde_json::{Value as Json, json};

const TOTAL: i64 = 10_000;
const ARCHIVE_AFTER_DAYS: u32 = 30;
/// Messages with these seqs were deleted before archiving.
fn deleted(seq: i64) -> bool {
    seq % 1000 == 7
}

/// Inserts `TOTAL` messages straight into the database, 500 rows a statement:
/// the first half 40 days old, the second half 10 days old.
async fn seed(db: &DatabaseConnection, room: i64) {
    let backend = db.get_database_backend();
    let now = chrono::Utc::now();
    for chunk in (1..=TOTAL).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO messages (room_id, seq, user_id, content, message_type, edited, \
             created_at, updated_at, deleted_at) VALUES ",
        );
        let mut values: Vec<Value> = Vec::new();
        for (row, &seq) in chunk.iter().enumerate() {
            let age = if seq <= TOTAL / 2 { 40 } else { 10 };
            let at = now - chrono::Duration::days(age) + chrono::Duration::milliseconds(seq);
            let deleted_at = deleted(seq).then_some(at);
            let row_values: [Value; 9] = [
                room.into(),
                seq.into(),
                format!("user{}", seq % 7).into(),
                format!("message {seq}").into(),
                "text".into(),
                false.into(),
                at.into(),
                at.into(),
                deleted_at.into(),
            ];
            let base = row * row_values.len();
            let slots: Vec<String> = (1..=row_values.len())
                .map(|n| match backend {
                    DatabaseBackend::Postgres => format!("${}", base + n),
                    _ => "?".to_owned(),
                })
                .collect();
            if row > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("({})", slots.join(",")));
            values.extend(row_values);
        }
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap();
    }
    db.execute_unprepared(&format!("UPDATE rooms SET last_seq = {TOTAL} WHERE id = {room}"))
        .await
        .unwrap();
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Every message is in exactly one of the two tables.
async fn assert_each_message_once(db: &DatabaseConnection, total: i64) {
    let live = count(db, "SELECT COUNT(*) FROM messages").await;
    let archived = count(db, "SELECT COUNT(*) FROM messages_archive").await;
    let both =
        count(db, "SELECT COUNT(*) FROM messages m JOIN messages_archive a ON a.id = m.id").await;
    assert_eq!(both, 0, "no message is in both tables");
    assert_eq!(live + archived, total, "no message lost: {live} live + {archived} archived");
}

fn archive_settings() -> ArchiveSettings {
    ArchiveSettings {
        after: Duration::from_secs(u64::from(ARCHIVE_AFTER_DAYS) * 24 * 3600),
        interval: Duration::from_secs(3600),
        batch_size: 500,
    }
}

/// The whole history of a room through the API, newest page first with
/// `before`, then again from the start with `after`; both must agree.
async fn page_everything(app: &TestApp, room: i64) -> Vec<Json> {
    let mut backward: Vec<Json> = Vec::new();
    let mut path = format!("/rooms/{room}/messages?limit=100");
    loop {
        let page: Json = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap().clone();
        let seqs: Vec<i64> = items.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a page is ascending: {seqs:?}");
        let Some(first) = seqs.first() else { break };
        path = format!("/rooms/{room}/messages?limit=100&before={first}");
        backward.splice(0..0, items);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let mut forward: Vec<Json> = Vec::new();
    let mut after = 0;
    loop {
        let page: Json = app
            .get(&format!("/rooms/{room}/messages?limit=100&after={after}"))
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        forward.extend(items.iter().cloned());
        match items.last() {
            Some(last) if page["has_more"].as_bool().unwrap() => {
                after = last["seq"].as_i64().unwrap()
            }
            _ => break,
        }
    }
    assert_eq!(backward, forward, "paging back and forth shows the same history");
    backward
}

fn seqs(messages: &[Json]) -> Vec<i64> {
    messages.iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

async fn archiving_keeps_history_whole_and_survives_a_kill(app: TestApp) {
    let room = app.create_room("Archive").await;
    let db = app.database().await;
    seed(&db, room).await;
    let expected: Vec<i64> = (1..=TOTAL).filter(|s| !deleted(*s)).collect();
    let before_archiving = page_everything(&app, room).await;
    assert_eq!(seqs(&before_archiving), expected);

    let store = app.uncached_store().await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(ARCHIVE_AFTER_DAYS));
    // One batch goes through; the next is killed before its commit.
    assert_eq!(store.archive_batch(cutoff, 500).await.unwrap().commit().await.unwrap(), 500);
    let killed = store.archive_batch(cutoff, 500).await.unwrap();
    assert_eq!(killed.len(), 500);
    drop(killed);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages_archive").await, 500);
    assert_each_message_once(&db, TOTAL).await;

    // A run killed wherever it happens to be once it has moved some more.
    let archiver = Archiver::new(store.clone(), archive_settings());
    let status = archiver.status();
    let run = tokio::spawn(async move { archiver.run_once().await });
    let deadline = Instant::now() + Duration::from_secs(60);
    while status.moved() < 1000 && !run.is_finished() {
        assert!(Instant::now() < deadline, "the archiver makes progress");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    run.abort();
    let _ = run.await;
    let archived = count(&db, "SELECT COUNT(*) FROM messages_archive").await;
    assert!(archived >= 1500, "{archived}");
    assert_each_message_once(&db, TOTAL).await;
    // Paging in the middle of it all shows every message once, in order.
    assert_eq!(seqs(&page_everything(&app, room).await), expected);

    // The service's own job finishes the work while clients keep writing.
    let archiving = app
        .another(|settings| {
            settings.archive_after_days = Some(ARCHIVE_AFTER_DAYS);
            settings.archive_interval_secs = 1;
            settings.archive_batch_size = 200;
        })
        .await;
    // Read while the job moves batches: still every message once, in order.
    assert_eq!(seqs(&page_everything(&archiving, room).await), expected);
    for n in 1..=5 {
        archiving.post_message(room, "late", &format!("late {n}")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, "SELECT COUNT(*) FROM messages_archive").await < TOTAL / 2 {
        assert!(Instant::now() < deadline, "the job archives the older half");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages_archive").await, TOTAL / 2);
    assert_eq!(
        count(&db, &format!("SELECT MAX(seq) FROM messages_archive WHERE room_id = {room}")).await,
        TOTAL / 2,
        "exactly the older half"
    );
    assert_each_message_once(&db, TOTAL + 5).await;
    let metrics = archiving.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("chat_messages_archived_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // Running again changes nothing.
    let again = Archiver::new(store.clone(), archive_settings()).run_once().await.unwrap();
    assert_eq!(again, 0);

    let mut all = expected.clone();
    all.extend(TOTAL + 1..=TOTAL + 5);
    let history = page_everything(&app, room).await;
    assert_eq!(seqs(&history), all, "every message once, in order, across both tables");
    let unique: BTreeSet<i64> = history.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(unique.len(), all.len());
    assert_eq!(history[0]["content"], "message 1");

    // An archived message is still found, and may be edited and deleted.
    let archived_message = history.iter().find(|m| m["seq"] == 42).unwrap();
    let path = format!("/messages/{}", archived_message["id"]);
    let found: Json = app.get(&path).await.json().await.unwrap();
    assert_eq!(&found, archived_message);
    let author = archived_message["user_id"].as_str().unwrap();
    let response =
        app.patch(&path, json!({"content": "edited in the archive", "user_id": author})).await;
    assert_eq!(response.status(), 200);
    let edited: Json = response.json().await.unwrap();
    assert_eq!(edited["edited"], true);
    let page: Json =
        app.get(&format!("/rooms/{room}/messages?after=41&limit=1")).await.json().await.unwrap();
    assert_eq!(page["items"][0]["content"], "edited in the archive");
    let response = app.request(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    let page: Json =
        app.get(&format!("/rooms/{room}/messages?after=41&limit=1")).await.json().await.unwrap();
    assert_eq!(page["items"][0]["seq"], 43, "the deleted message is gone from history");
    archiving.shutdown().await;
}

on_both_databases!(archiving_keeps_history_whole_and_survives_a_kill);
