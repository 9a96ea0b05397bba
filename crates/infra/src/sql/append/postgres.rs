//! The batch as one Postgres statement ([`APPEND`]): data-modifying CTEs lock
//! the batch's active rooms in id order, find the originals of its idempotency
//! keys, take one seq range per room and insert the new rows. Alone it is its
//! own transaction, so a batch costs one round trip and one WAL flush.
//!
//! The statement reads one snapshot. Another instance may commit a message
//! with one of the batch's keys after that snapshot and before this batch got
//! the room's lock; the unique `(room_id, user_id, client_msg_id)` index then
//! refuses the insert, nothing of the batch is stored, and the caller tries
//! again with a fresh snapshot, which finds that message as the original.

use std::collections::{HashMap, VecDeque};

use chat_domain::{DomainError, Message, NewMessage};
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult, SqlErr, Statement};

use super::super::entity::message;
use super::super::errors::map_db_err;
use super::participants::Pair;
use super::{Appended, Key, Plan};

/// How one message of the batch reaches the statement.
enum Sent {
    /// The batch's `n`th distinct message: the statement decides.
    Decided(usize),
    /// A repeat, within the batch, of its `n`th distinct message.
    RepeatOf(usize),
}

/// Plans and stores `batch` (not empty) on `conn`: a connection (the statement
/// commits itself) or a transaction the caller commits. `None`: the batch lost
/// a race on one of its keys and stored nothing; try again.
pub(super) async fn append<C: ConnectionTrait>(
    conn: &C,
    batch: &[NewMessage],
    pairs: &[Pair],
) -> Result<Option<Appended>, DomainError> {
    // Repeats within the batch are settled here: the statement sees each key once.
    let mut sent = Vec::with_capacity(batch.len());
    let mut distinct: Vec<&NewMessage> = Vec::with_capacity(batch.len());
    let mut first: HashMap<Key<'_>, usize> = HashMap::new();
    for new in batch {
        if let Some(key) = &new.client_msg_id {
            let key = (new.room_id.get(), new.user_id.as_str(), key.as_str());
            if let Some(&earlier) = first.get(&key) {
                sent.push(Sent::RepeatOf(earlier));
                continue;
            }
            first.insert(key, distinct.len());
        }
        sent.push(Sent::Decided(distinct.len()));
        distinct.push(new);
    }

    let rows = match conn.query_all_raw(statement(&distinct, pairs)).await {
        Ok(rows) => rows,
        Err(error) if is_key_race(&error) => {
            tracing::debug!(%error, "a batch raced another writer of one of its keys");
            return Ok(None);
        }
        Err(error) => return Err(map_db_err(error)),
    };

    // Originals come back with their message's position (1-based), refused
    // replies with minus it (and the id they answer), new rows with 0: those
    // are matched to the batch room by room, in seq order.
    let mut originals: HashMap<usize, Message> = HashMap::new();
    let mut refused: HashMap<usize, i64> = HashMap::new();
    let mut created: HashMap<i64, Vec<Message>> = HashMap::new();
    for row in rows {
        let ord: i64 = row.try_get("", "ord").map_err(map_db_err)?;
        if let Ok(position) = usize::try_from(-ord)
            && position > 0
        {
            refused.insert(position - 1, row.try_get("", "id").map_err(map_db_err)?);
            continue;
        }
        let message =
            Message::try_from(message::Model::from_query_result(&row, "").map_err(map_db_err)?)?;
        match usize::try_from(ord) {
            Ok(position) if position > 0 => {
                originals.insert(position - 1, message);
            }
            _ => created.entry(message.room_id.get()).or_default().push(message),
        }
    }
    let mut created: HashMap<i64, VecDeque<Message>> = created
        .into_iter()
        .map(|(room, mut rows)| {
            rows.sort_unstable_by_key(|m| m.seq);
            (room, rows.into())
        })
        .collect();

    let mut stored = Vec::with_capacity(distinct.len());
    let mut decided = Vec::with_capacity(distinct.len());
    for (position, new) in distinct.iter().enumerate() {
        let room = new.room_id.get();
        decided.push(if let Some(original) = originals.remove(&position) {
            Plan::Original(original)
        } else if let Some(target) = refused.remove(&position) {
            Plan::BadReply(target)
        } else if let Some(message) = created.get_mut(&room).and_then(VecDeque::pop_front) {
            stored.push(message);
            Plan::Store(stored.len() - 1)
        } else {
            Plan::NoRoom(room)
        });
    }
    if created.values().any(|rest| !rest.is_empty()) {
        return Err(DomainError::Internal("a batch stored rows it did not send".into()));
    }

    let plans = sent
        .into_iter()
        .map(|sent| match sent {
            Sent::Decided(n) => decided[n].clone(),
            Sent::RepeatOf(n) => match &decided[n] {
                Plan::Store(row) => Plan::RepeatOf(*row),
                other => other.clone(),
            },
        })
        .collect();
    Ok(Some(Appended { plans, stored }))
}

/// The unique index on idempotency keys refused the insert (see the module doc).
fn is_key_race(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// [`APPEND`] with the distinct messages as one array per column, and the new
/// (room, poster) pairs as two more (empty in the steady state).
fn statement(distinct: &[&NewMessage], pairs: &[Pair]) -> Statement {
    let rooms: Vec<i64> = distinct.iter().map(|new| new.room_id.get()).collect();
    let text = |of: fn(&NewMessage) -> &str| -> sea_orm::Value {
        distinct.iter().map(|new| of(new).to_owned()).collect::<Vec<String>>().into()
    };
    let at: Vec<_> = distinct.iter().map(|new| new.created_at).collect();
    Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        APPEND,
        [
            rooms.into(),
            text(|new| new.user_id.as_str()),
            text(|new| new.content.as_str()),
            text(|new| new.message_type.as_str()),
            // Arrays of text carry no NULL here: '' (never a valid key) stands for none.
            text(|new| new.client_msg_id.as_ref().map_or("", |key| key.as_str())),
            at.into(),
            pairs.iter().map(|(room, _)| *room).collect::<Vec<i64>>().into(),
            pairs.iter().map(|(_, user)| user.clone()).collect::<Vec<String>>().into(),
            // 0 (never an id) stands for no reply.
            distinct
                .iter()
                .map(|new| new.reply_to.map_or(0, |id| id.get()))
                .collect::<Vec<i64>>()
                .into(),
        ],
    )
}

/// Appends the messages given as arrays (`$1` room, `$2` user, `$3` content,
/// `$4` type, `$5` key or '', `$6` created, `$9` the id it answers or 0), each
/// key at most once, and records the (room, poster) pairs `$7`/`$8` as
/// participants. Returns the new rows (`ord` 0), the originals of repeated keys
/// (`ord`: the message's 1-based position) and the refused replies (`ord`: minus
/// the position, `id`: the message answered, the rest NULL); a message in a
/// missing or deleted room gets no row.
///
/// - `locked` takes the rooms' row locks in id order, so batches sharing rooms
///   wait for each other and never deadlock; the locks are held to commit, so
///   one room's batches commit in seq order. Under `READ COMMITTED` a locked
///   row is read as the newest version, so `last_seq` is never stale.
/// - The originals are probed per key (`LIMIT 1` over the unique indexes of
///   the live and archive tables), whatever the tables' statistics say.
/// - A reply is stored only if the message it answers is live and of the same
///   room. `live_targets`/`archived_targets` take a share lock on those rows,
///   so a delete (or a reaction, an edit) of one waits for this batch's
///   commit, and a delete that got there first is waited for and seen: no
///   reply to a message deleted before it is stored.
/// - `taken` raises each room's `last_seq` by its new rows only, so repeats
///   take no seq and leave no gap; the same update moves `last_activity_at`
///   (the inbox's order) to the newest of them, at no extra cost.
/// - `joined` inserts the participants' `room_reads` rows of rooms that
///   stored rows (`ON CONFLICT DO NOTHING`: a marker already there stays).
///
/// Its text does not depend on the batch's size: prepared once per
/// connection, cheap to bind.
const APPEND: &str = "\
WITH v AS (
    SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[],
        $6::timestamptz[], $9::int8[]) WITH ORDINALITY AS v(r, u, c, t, k, at, p, ord)
), locked AS (
    SELECT id FROM rooms WHERE id = ANY($1::int8[]) AND is_active ORDER BY id FOR UPDATE
), originals AS (
    SELECT v.ord, m.* FROM v JOIN locked ON locked.id = v.r
    CROSS JOIN LATERAL (
        (SELECT id, room_id, seq, user_id, content, message_type, client_msg_id, edited,
            created_at, updated_at, deleted_at, reply_to, reactions FROM messages
         WHERE room_id = v.r AND user_id = v.u AND client_msg_id = v.k)
        UNION ALL
        (SELECT id, room_id, seq, user_id, content, message_type, client_msg_id, edited,
            created_at, updated_at, deleted_at, reply_to, reactions FROM messages_archive
         WHERE room_id = v.r AND user_id = v.u AND client_msg_id = v.k)
        LIMIT 1
    ) AS m
    WHERE v.k <> ''
), live_targets AS (
    SELECT id, room_id FROM messages
    WHERE id = ANY($9::int8[]) AND deleted_at IS NULL FOR SHARE
), archived_targets AS (
    SELECT id, room_id FROM messages_archive
    WHERE id = ANY($9::int8[]) AND deleted_at IS NULL FOR SHARE
), refused AS (
    SELECT v.ord, v.p FROM v JOIN locked ON locked.id = v.r
    WHERE v.p <> 0
      AND NOT EXISTS (SELECT 1 FROM originals AS o WHERE o.ord = v.ord)
      AND NOT EXISTS (SELECT 1 FROM live_targets AS l WHERE l.id = v.p AND l.room_id = v.r)
      AND NOT EXISTS (SELECT 1 FROM archived_targets AS a WHERE a.id = v.p AND a.room_id = v.r)
), fresh AS (
    SELECT v.*, row_number() OVER (PARTITION BY v.r ORDER BY v.ord) AS i
    FROM v JOIN locked ON locked.id = v.r
    WHERE NOT EXISTS (SELECT 1 FROM originals AS o WHERE o.ord = v.ord)
      AND NOT EXISTS (SELECT 1 FROM refused AS x WHERE x.ord = v.ord)
), taken AS (
    UPDATE rooms AS room SET last_seq = room.last_seq + f.n,
        last_activity_at = GREATEST(room.last_activity_at, f.at)
    FROM (SELECT r, count(*) AS n, max(at) AS at FROM fresh GROUP BY r) AS f
    WHERE room.id = f.r
    RETURNING room.id, room.last_seq - f.n AS base
), joined AS (
    INSERT INTO room_reads (room_id, user_id)
    SELECT p.r, p.u FROM unnest($7::int8[], $8::text[]) AS p(r, u)
    JOIN taken AS t ON t.id = p.r
    ON CONFLICT DO NOTHING
), stored AS (
    INSERT INTO messages
        (room_id, seq, user_id, content, message_type, client_msg_id, edited, created_at,
         updated_at, reply_to)
    SELECT f.r, t.base + f.i, f.u, f.c, f.t, NULLIF(f.k, ''), false, f.at, f.at, NULLIF(f.p, 0)
    FROM fresh AS f JOIN taken AS t ON t.id = f.r
    RETURNING id, room_id, seq, user_id, content, message_type, client_msg_id, edited,
        created_at, updated_at, deleted_at, reply_to, reactions
)
SELECT 0::int8 AS ord, * FROM stored
UNION ALL
SELECT * FROM originals
UNION ALL
SELECT -x.ord, x.p, NULL::int8, NULL::int8, NULL::text, NULL::text, NULL::text, NULL::text,
    NULL::bool, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::int8, NULL::text
FROM refused AS x";
