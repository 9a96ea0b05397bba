//! History pages in a room whose seqs are broken up by long runs of deleted
//! messages and by archiving, on SQLite and on Postgres: every `Latest`,
//! `before=` and `after=` page, and walks end to end both ways, against the page
//! computed from what was stored; and how the database plans the page reads of
//! a big room whose statistics are stale (never analyzed).

use chat_domain::ports::MessageRepository;
use chat_domain::{HistoryQuery, Limit, RoomId};
use chat_tests::{TestApp, on_both_databases};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};
use serde_json::Value as Json;
use yaml_rust2::{Yaml, YamlLoader};

on_both_databases!(
    every_page_is_the_stored_history_around_deleted_runs_and_the_archive,
    walking_pages_end_to_end_shows_every_live_message_once,
    page_reads_of_a_big_room_stay_on_the_seq_index,
);

const TOTAL: i64 = 1_600;
/// Messages up to this seq are old enough to be archived.
const ARCHIVED_UP_TO: i64 = 800;
const ARCHIVE_AFTER_DAYS: i64 = 30;

/// Runs of deleted messages longer than any read's window (the page and one
/// more row, twice: at most 202 seqs): at the start, one of 500 across the
/// archive's edge (601–800 archived, 801–1100 live), and the newest 220; and
/// every 37th message.
fn deleted(seq: i64) -> bool {
    (1..=230).contains(&seq)
        || (601..=1100).contains(&seq)
        || (1381..=TOTAL).contains(&seq)
        || seq % 37 == 0
}

fn live_seqs() -> Vec<i64> {
    (1..=TOTAL).filter(|s| !deleted(*s)).collect()
}

/// Inserts `TOTAL` messages straight into the database, 400 rows a statement
/// (deleted ones with `deleted_at` set), and sets the room's last seq.
async fn seed(db: &DatabaseConnection, room: i64) {
    let backend = db.get_database_backend();
    let now = chrono::Utc::now();
    for chunk in (1..=TOTAL).collect::<Vec<_>>().chunks(400) {
        let mut sql = String::from(
            "INSERT INTO messages (room_id, seq, user_id, content, message_type, edited, \
             created_at, updated_at, deleted_at) VALUES ",
        );
        let mut values: Vec<Value> = Vec::new();
        for (row, &seq) in chunk.iter().enumerate() {
            let age = if seq <= ARCHIVED_UP_TO { 40 } else { 10 };
            let at = now - chrono::Duration::days(age) + chrono::Duration::milliseconds(seq);
            let row_values: [Value; 9] = [
                room.into(),
                seq.into(),
                format!("user{}", seq % 5).into(),
                format!("message {seq}").into(),
                "text".into(),
                false.into(),
                at.into(),
                at.into(),
                deleted(seq).then_some(at).into(),
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

/// A room with the seeded history, its old half moved to the archive.
async fn seeded_room(app: &TestApp) -> i64 {
    let room = app.create_room("Deleted runs").await;
    seed(&app.database().await, room).await;
    let store = app.uncached_store().await;
    let cutoff = chrono::Utc::now() - chrono::Duration::days(ARCHIVE_AFTER_DAYS);
    let moved = store.archive_batch(cutoff, 2 * TOTAL as u64).await.unwrap().commit().await;
    assert_eq!(moved.unwrap(), ARCHIVED_UP_TO as u64);
    room
}

/// The page PROTOCOL.md describes, from the list of live seqs: the `limit` nearest
/// the cursor, ascending, and whether more live messages lie beyond them.
fn expected_page(live: &[i64], query: HistoryQuery, limit: usize) -> (Vec<i64>, bool) {
    match query {
        HistoryQuery::Latest => expected_page(live, HistoryQuery::Before(i64::MAX), limit),
        HistoryQuery::Before(cursor) => {
            let older: Vec<i64> = live.iter().copied().filter(|s| *s < cursor).collect();
            let start = older.len().saturating_sub(limit);
            (older[start..].to_vec(), start > 0)
        }
        HistoryQuery::After(cursor) => {
            let newer: Vec<i64> = live.iter().copied().filter(|s| *s > cursor).collect();
            (newer.iter().copied().take(limit).collect(), newer.len() > limit)
        }
    }
}

/// Cursors where windows start, end or run into deleted and archived stretches,
/// past both ends, and a sample of everything between.
fn cursors() -> Vec<i64> {
    let edges = [1, 230, 600, 800, 1100, 1380, TOTAL];
    let mut cursors: Vec<i64> = edges.iter().flat_map(|e| e - 3..=e + 3).collect();
    cursors.extend((0..TOTAL).step_by(29));
    cursors.extend([TOTAL + 1000, i64::MAX - 1, i64::MAX]);
    cursors.retain(|c| *c >= 0);
    cursors.sort_unstable();
    cursors.dedup();
    cursors
}

async fn every_page_is_the_stored_history_around_deleted_runs_and_the_archive(app: TestApp) {
    let room = seeded_room(&app).await;
    let live = live_seqs();
    // Straight to the store: `Latest` through the API may come from the cache.
    let store = app.uncached_store().await;
    let room_id = RoomId::new(room).unwrap();
    for limit in [1, 2, 50, 100] {
        let mut queries = vec![HistoryQuery::Latest];
        for cursor in cursors() {
            if cursor >= 1 {
                queries.push(HistoryQuery::Before(cursor));
            }
            queries.push(HistoryQuery::After(cursor));
        }
        for query in queries {
            let page = store.history(room_id, query, Limit::parse(limit).unwrap()).await.unwrap();
            let seqs: Vec<i64> = page.items.iter().map(|m| m.seq).collect();
            assert_eq!(
                (seqs, page.has_more),
                expected_page(&live, query, limit as usize),
                "{query:?} limit {limit}"
            );
            for message in &page.items {
                assert_eq!(message.content, format!("message {}", message.seq));
                assert_eq!(message.room_id, room_id);
            }
        }
    }

    // The ends through the API.
    let page = |query: String| {
        let app = &app;
        async move {
            let response = app.get(&format!("/rooms/{room}/messages?{query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            let body: Json = response.json().await.unwrap();
            let seqs: Vec<i64> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["seq"].as_i64().unwrap())
                .collect();
            (seqs, body["has_more"].as_bool().unwrap())
        }
    };
    let first_live = live[0];
    let last_live = *live.last().unwrap();
    assert_eq!(page("before=1&limit=100".into()).await, (vec![], false));
    assert_eq!(page(format!("before={first_live}&limit=100")).await, (vec![], false));
    assert_eq!(page(format!("before={}&limit=1", first_live + 1)).await, (vec![first_live], false));
    assert_eq!(page("after=0&limit=1".into()).await, (vec![first_live], true));
    assert_eq!(page(format!("after={TOTAL}&limit=100")).await, (vec![], false));
    assert_eq!(page(format!("after={last_live}&limit=1")).await, (vec![], false));
    assert_eq!(page(format!("after={}&limit=1", last_live - 1)).await, (vec![last_live], false));
    assert_eq!(page("limit=1".into()).await, (vec![last_live], true));
    let newest = expected_page(&live, HistoryQuery::Latest, 100);
    assert_eq!(page("limit=100".into()).await, newest);
    assert_eq!(page(format!("before={}&limit=100", TOTAL + 1)).await, newest);
    assert_eq!(page(format!("before={}&limit=100", TOTAL + 5000)).await, newest);
    assert_eq!(page(format!("before={}&limit=100", i64::MAX)).await, newest);
}

async fn walking_pages_end_to_end_shows_every_live_message_once(app: TestApp) {
    let room = seeded_room(&app).await;
    let live = live_seqs();
    let app = &app;
    let fetch = |query: String| async move {
        let response = app.get(&format!("/rooms/{room}/messages?{query}")).await;
        assert_eq!(response.status(), 200, "{query}");
        let body: Json = response.json().await.unwrap();
        let items = body["items"].as_array().unwrap();
        for item in items {
            assert_eq!(item["content"], format!("message {}", item["seq"]), "{query}");
        }
        let seqs: Vec<i64> = items.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
        (seqs, body["has_more"].as_bool().unwrap())
    };
    for limit in [1, 7, 100] {
        // Back from the newest page.
        let mut query = HistoryQuery::Latest;
        let mut backward: Vec<i64> = Vec::new();
        loop {
            let path = match query {
                HistoryQuery::Before(seq) => format!("limit={limit}&before={seq}"),
                _ => format!("limit={limit}"),
            };
            let (seqs, has_more) = fetch(path).await;
            assert_eq!((seqs.clone(), has_more), expected_page(&live, query, limit), "{query:?}");
            backward.splice(0..0, seqs.iter().copied());
            match seqs.first() {
                Some(first) if has_more => query = HistoryQuery::Before(*first),
                _ => break,
            }
        }
        assert_eq!(backward, live, "back to the first message, limit {limit}");

        // On from the start.
        let mut after = 0;
        let mut forward: Vec<i64> = Vec::new();
        loop {
            let (seqs, has_more) = fetch(format!("limit={limit}&after={after}")).await;
            let query = HistoryQuery::After(after);
            assert_eq!((seqs.clone(), has_more), expected_page(&live, query, limit), "{query:?}");
            forward.extend(&seqs);
            match seqs.last() {
                Some(last) if has_more => after = *last,
                _ => break,
            }
        }
        assert_eq!(forward, live, "on to the last message, limit {limit}");
    }
}

/// Rows of the big room in each table.
const BIG_HALF: i64 = 25_000;

/// One room of `2 × BIG_HALF` messages, the older half in the archive, each
/// table filled by one statement and never analyzed: the state a room is in
/// right after it grew fast.
async fn big_room(app: &TestApp) -> i64 {
    let room = app.create_room("Grew fast").await;
    let db = app.database().await;
    // The same text on both databases: a recursive count, not generate_series.
    let fill = |table: &str, first: i64, id: (&str, &str), archived_at: (&str, &str)| {
        let last = first + BIG_HALF - 1;
        format!(
            "WITH RECURSIVE g(n) AS (SELECT {first} UNION ALL SELECT n + 1 FROM g WHERE n < {last}) \
             INSERT INTO {table} ({}room_id, seq, user_id, content, message_type, edited, \
             created_at, updated_at{}) \
             SELECT {}{room}, n, 'seed', 'history message ' || n, 'text', false, \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP{} FROM g",
            id.0, archived_at.0, id.1, archived_at.1,
        )
    };
    // Archived rows keep their own ids: ones the live table will not hand out.
    let archive = fill(
        "messages_archive",
        1,
        ("id, ", "1000000 + n, "),
        (", archived_at", ", CURRENT_TIMESTAMP"),
    );
    db.execute_unprepared(&archive).await.unwrap();
    db.execute_unprepared(&fill("messages", BIG_HALF + 1, ("", ""), ("", ""))).await.unwrap();
    let last_seq = 2 * BIG_HALF;
    db.execute_unprepared(&format!("UPDATE rooms SET last_seq = {last_seq} WHERE id = {room}"))
        .await
        .unwrap();
    room
}

/// The queries whose plans are checked: both ends and the middle of each table.
fn big_room_queries() -> Vec<HistoryQuery> {
    vec![
        HistoryQuery::Latest,
        HistoryQuery::Before(2 * BIG_HALF - 5_000),
        HistoryQuery::Before(BIG_HALF / 2),
        HistoryQuery::Before(100),
        HistoryQuery::After(0),
        HistoryQuery::After(BIG_HALF / 2),
        HistoryQuery::After(2 * BIG_HALF - 5_000),
        HistoryQuery::After(2 * BIG_HALF),
    ]
}

/// At most this many rows of a table are looked at by one read: a few windows,
/// nothing like the room's 25,000 rows a table.
const ROWS_A_READ_MAY_TOUCH: i64 = 1_000;

async fn page_reads_of_a_big_room_stay_on_the_seq_index(app: TestApp) {
    let room = big_room(&app).await;
    let db = app.database().await;
    let backend = db.get_database_backend();
    let limit = Limit::parse(50).unwrap();
    for query in big_room_queries() {
        let statements = chat_infra::sql::history_statements(
            backend,
            RoomId::new(room).unwrap(),
            query,
            limit,
            2 * BIG_HALF,
        );
        for statement in statements {
            match backend {
                DatabaseBackend::Postgres => assert_postgres_plan(&db, &statement, query).await,
                _ => assert_sqlite_plan(&db, &statement, query).await,
            }
        }
    }
}

/// Postgres: `EXPLAIN ANALYZE` (as YAML: JSON would come back as a `json`
/// value, YAML as text). Every scan of a message table goes through its
/// `(room_id, seq)` index with a seq bound and reads few rows; no sequential
/// scan, no scan of the whole room.
async fn assert_postgres_plan(db: &DatabaseConnection, statement: &Statement, query: HistoryQuery) {
    let values = statement.values.clone().map(|v| v.0).unwrap_or_default();
    let sql = format!("EXPLAIN (ANALYZE, FORMAT YAML) {}", statement.sql);
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values));
    let text: String =
        rows.await.unwrap().iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect();
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let mut nodes = Vec::new();
    collect_nodes(&docs[0][0]["Plan"], &mut nodes);
    let context = || format!("{query:?}: {}\n{text}", statement.sql);
    let message_tables = ["messages", "messages_archive"];
    let mut index_scans = 0;
    for node in nodes {
        let node_type = node["Node Type"].as_str().unwrap_or_default();
        let relation = node["Relation Name"].as_str().unwrap_or_default();
        let index = node["Index Name"].as_str().unwrap_or_default();
        let reads_messages = message_tables.contains(&relation) || index.starts_with("uq_messages");
        if !reads_messages {
            continue;
        }
        assert_ne!(node_type, "Seq Scan", "{}", context());
        let rows = node["Actual Rows"].as_i64().unwrap();
        assert!(rows <= ROWS_A_READ_MAY_TOUCH, "{node_type} read {rows} rows: {}", context());
        if !index.is_empty() {
            index_scans += 1;
            assert!(index.ends_with("_room_seq"), "{index}: {}", context());
            let condition = node["Index Cond"].as_str().unwrap_or_default();
            assert!(condition.contains("seq"), "{condition}: {}", context());
        }
    }
    assert!(index_scans > 0, "a message table is read on its index: {}", context());
}

fn collect_nodes<'a>(node: &'a Yaml, nodes: &mut Vec<&'a Yaml>) {
    nodes.push(node);
    if let Some(children) = node["Plans"].as_vec() {
        for child in children {
            collect_nodes(child, nodes);
        }
    }
}

/// SQLite: `EXPLAIN QUERY PLAN`. Every step on a message table is a search of
/// its `(room_id, seq)` index with a seq bound, never a scan of the table.
async fn assert_sqlite_plan(db: &DatabaseConnection, statement: &Statement, query: HistoryQuery) {
    let values = statement.values.clone().map(|v| v.0).unwrap_or_default();
    let sql = format!("EXPLAIN QUERY PLAN {}", statement.sql);
    let rows =
        db.query_all_raw(Statement::from_sql_and_values(DatabaseBackend::Sqlite, sql, values));
    let details: Vec<String> =
        rows.await.unwrap().iter().map(|r| r.try_get::<String>("", "detail").unwrap()).collect();
    let context = || format!("{query:?}: {}\n{details:#?}", statement.sql);
    let message_tables = ["messages", "messages_archive"];
    let on_messages: Vec<&String> = details
        .iter()
        .filter(|d| d.split_whitespace().any(|word| message_tables.contains(&word)))
        .collect();
    assert!(!on_messages.is_empty(), "{}", context());
    for step in on_messages {
        let on_index = step.starts_with("SEARCH messages USING INDEX uq_messages_room_seq (room_id=? AND seq")
            || step.starts_with(
                "SEARCH messages_archive USING INDEX uq_messages_archive_room_seq (room_id=? AND seq",
            );
        assert!(on_index, "{step}: {}", context());
    }
}
