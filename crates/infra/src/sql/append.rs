//! Appending a batch of new messages in one transaction (the storage half of
//! group commit): a few statements whatever the batch's size.
//!
//! 1. One `UPDATE rooms … RETURNING` takes each active room's next seqs. Its
//!    rows are locked by a sub-select in id order (`FOR UPDATE` on Postgres;
//!    SQLite's one writer needs none), so concurrent batches touching the same
//!    rooms wait for each other and never deadlock. The lock is held to commit:
//!    one room's writers commit in seq order.
//! 2. One query finds the originals of every `client_msg_id` of the batch, live
//!    or archived, under that lock. Repeats (also within the batch) store
//!    nothing; the seqs they took are given back before anything is inserted,
//!    so no gap is ever visible.
//! 3. One multi-row `INSERT … RETURNING` stores the messages, one more their
//!    outbox rows (with a broker), then `COMMIT`: one WAL flush for the batch.

use std::collections::HashMap;

use chat_domain::{ChatEvent, DomainError, Message, NewMessage, Posted};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, Query, UnionType};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend,
    DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter, Statement,
};

use super::entity::{archived_message, message, room};
use super::errors::map_db_err;
use super::{SqlStore, outbox};

/// Who sent which idempotency key where.
type Key<'a> = (i64, &'a str, &'a str);

/// What becomes of one message of the batch.
enum Plan {
    /// The room does not exist or is deleted.
    NoRoom(i64),
    /// A repeat of a message stored before.
    Original(Message),
    /// A repeat of the `n`th message stored by this batch.
    RepeatOf(usize),
    /// Stored as the `n`th new row.
    Store(usize),
}

impl SqlStore {
    pub(crate) async fn append_messages(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let txn = self.begin_write().await?;
        let mut next_seq = take_seqs(&txn, batch).await?;
        let originals = originals_of(&txn, batch, &next_seq).await?;

        let mut plans = Vec::with_capacity(batch.len());
        let mut rows = Vec::with_capacity(batch.len());
        let mut stored_keys: HashMap<Key<'_>, usize> = HashMap::new();
        for new in batch {
            let room = new.room_id.get();
            let Some(seq) = next_seq.get_mut(&room) else {
                plans.push(Plan::NoRoom(room));
                continue;
            };
            if let Some(key) = &new.client_msg_id {
                let key = (room, new.user_id.as_str(), key.as_str());
                if let Some(original) = originals.get(&key) {
                    plans.push(Plan::Original(original.clone()));
                    continue;
                }
                if let Some(&earlier) = stored_keys.get(&key) {
                    plans.push(Plan::RepeatOf(earlier));
                    continue;
                }
                stored_keys.insert(key, rows.len());
            }
            seq.next += 1;
            plans.push(Plan::Store(rows.len()));
            rows.push((new, seq.next));
        }
        give_back_unused(&txn, &next_seq).await?;

        let stored = insert_rows(&txn, &rows).await?;
        if self.outbox {
            let mut events = Vec::with_capacity(stored.len());
            for (new, plan) in batch.iter().zip(&plans) {
                let Plan::Store(n) = plan else { continue };
                let message = &stored[*n];
                let event = ChatEvent::message_created(message)
                    .with_correlation(new.correlation_id.clone());
                events.push(outbox::event_row(&event).map_err(map_db_err)?);
                if let Some(notice) = new.notice() {
                    let notice =
                        outbox::notice_row(&notice, message.room_id, new.correlation_id.as_ref());
                    events.push(notice.map_err(map_db_err)?);
                }
            }
            outbox::enqueue_rows(&txn, events).await.map_err(map_db_err)?;
        }
        txn.commit().await.map_err(map_db_err)?;
        self.stats.messages_persisted_add(stored.len() as u64);
        if !stored.is_empty() {
            self.outbox_wrote();
        }

        Ok(plans
            .into_iter()
            .map(|plan| match plan {
                Plan::NoRoom(room) => Err(DomainError::NotFound(format!("room {room} not found"))),
                Plan::Original(original) => Ok(Posted::Duplicate(original)),
                Plan::RepeatOf(n) => Ok(Posted::Duplicate(stored[n].clone())),
                Plan::Store(n) => Ok(Posted::Created(stored[n].clone())),
            })
            .collect())
    }
}

/// A room's seqs as the batch takes them.
struct Seqs {
    /// The last seq the batch reserved (from the update).
    reserved: i64,
    /// The last seq given to a stored message so far.
    next: i64,
}

/// Reserves one seq per message in every active room of the batch, locking the
/// rooms in id order; rooms missing from the result do not exist or are deleted.
async fn take_seqs(
    txn: &DatabaseTransaction,
    batch: &[NewMessage],
) -> Result<HashMap<i64, Seqs>, DomainError> {
    let mut wanted: HashMap<i64, i64> = HashMap::new();
    for new in batch {
        *wanted.entry(new.room_id.get()).or_default() += 1;
    }
    let mut ids: Vec<i64> = wanted.keys().copied().collect();
    ids.sort_unstable();
    let rooms: Vec<(i64, i64)> = if is_postgres(txn) {
        let counts: Vec<i64> = ids.iter().map(|id| wanted[id]).collect();
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                PG_TAKE_SEQS,
                [ids.into(), counts.into()],
            ))
            .await
            .map_err(map_db_err)?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "last_seq")?)))
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(map_db_err)?
    } else {
        take_seqs_generic(txn, &wanted, ids).await?
    };
    Ok(rooms
        .into_iter()
        .map(|(id, last_seq)| {
            let taken = wanted.get(&id).copied().unwrap_or_default();
            (id, Seqs { reserved: last_seq, next: last_seq - taken })
        })
        .collect())
}

/// [`take_seqs`] in portable SQL: the increments as a `CASE`, the lock as a
/// sub-select (`FOR UPDATE` is left out on SQLite, whose writer is alone anyway).
async fn take_seqs_generic(
    txn: &DatabaseTransaction,
    wanted: &HashMap<i64, i64>,
    ids: Vec<i64>,
) -> Result<Vec<(i64, i64)>, DomainError> {
    let locked = Query::select()
        .column(room::Column::Id)
        .from(room::Entity)
        .and_where(room::Column::Id.is_in(ids.iter().copied()))
        .and_where(room::Column::IsActive.eq(true))
        .order_by(room::Column::Id, sea_orm::Order::Asc)
        .lock_exclusive()
        .to_owned();
    let increment = by_room(wanted);
    let rooms = room::Entity::update_many()
        .col_expr(room::Column::LastSeq, Expr::col(room::Column::LastSeq).add(increment))
        .filter(room::Column::Id.in_subquery(locked))
        .exec_with_returning(txn)
        .await
        .map_err(map_db_err)?;
    Ok(rooms.into_iter().map(|room| (room.id, room.last_seq)).collect())
}

/// `CASE WHEN id = … THEN n … END` over the rooms of `per_room` (just `n` for one).
fn by_room(per_room: &HashMap<i64, i64>) -> Expr {
    if per_room.len() == 1
        && let Some(&n) = per_room.values().next()
    {
        return Expr::val(n);
    }
    let mut case = CaseStatement::new();
    for (&id, &n) in per_room {
        case = case.case(room::Column::Id.eq(id), Expr::val(n));
    }
    case.finally(Expr::val(0)).into()
}

/// Gives back the seqs that repeats reserved but did not use, so the rooms'
/// `last_seq` is the seq of their newest message again.
async fn give_back_unused(
    txn: &DatabaseTransaction,
    seqs: &HashMap<i64, Seqs>,
) -> Result<(), DomainError> {
    let unused: HashMap<i64, i64> = seqs
        .iter()
        .filter(|(_, s)| s.reserved > s.next)
        .map(|(&id, s)| (id, s.reserved - s.next))
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    let decrement = by_room(&unused);
    room::Entity::update_many()
        .col_expr(room::Column::LastSeq, Expr::col(room::Column::LastSeq).sub(decrement))
        .filter(room::Column::Id.is_in(unused.keys().copied()))
        .exec(txn)
        .await
        .map_err(map_db_err)?;
    Ok(())
}

/// The messages, live or archived, that the batch's idempotency keys name.
async fn originals_of<'a>(
    txn: &DatabaseTransaction,
    batch: &'a [NewMessage],
    active: &HashMap<i64, Seqs>,
) -> Result<HashMap<Key<'a>, Message>, DomainError> {
    let keys: Vec<Key<'a>> = batch
        .iter()
        .filter(|new| active.contains_key(&new.room_id.get()))
        .filter_map(|new| {
            let key = new.client_msg_id.as_ref()?;
            Some((new.room_id.get(), new.user_id.as_str(), key.as_str()))
        })
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = if is_postgres(txn) {
        let rooms: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let users: Vec<String> = keys.iter().map(|k| k.1.to_owned()).collect();
        let ids: Vec<String> = keys.iter().map(|k| k.2.to_owned()).collect();
        Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            PG_ORIGINALS,
            [rooms.into(), users.into(), ids.into()],
        )
    } else {
        let mut live = keyed_select::<message::Entity>(&keys);
        live.union(UnionType::All, keyed_select::<archived_message::Entity>(&keys));
        txn.get_database_backend().build(&live)
    };
    let found = message::Model::find_by_statement(statement).all(txn).await.map_err(map_db_err)?;
    let mut originals = HashMap::with_capacity(found.len());
    for model in found {
        let message = Message::try_from(model)?;
        let wanted = keys.iter().find(|(room, user, key)| {
            *room == message.room_id.get()
                && *user == message.user_id
                && message.client_msg_id.as_deref() == Some(*key)
        });
        if let Some(&key) = wanted {
            originals.insert(key, message);
        }
    }
    Ok(originals)
}

/// `SELECT <the message columns> FROM T WHERE (room, user, key) = any of `keys``:
/// one probe of the unique `(room_id, user_id, client_msg_id)` index per key.
fn keyed_select<T: EntityTrait>(keys: &[Key<'_>]) -> sea_orm::sea_query::SelectStatement {
    use sea_orm::sea_query::{Alias, Condition};
    let mut any = Condition::any();
    for (room, user, key) in keys {
        any = any.add(
            Condition::all()
                .add(Expr::col(Alias::new("room_id")).eq(*room))
                .add(Expr::col(Alias::new("user_id")).eq(*user))
                .add(Expr::col(Alias::new("client_msg_id")).eq(*key)),
        );
    }
    let columns = [
        "id",
        "room_id",
        "seq",
        "user_id",
        "content",
        "message_type",
        "client_msg_id",
        "edited",
        "created_at",
        "updated_at",
        "deleted_at",
    ];
    Query::select()
        .columns(columns.map(Alias::new))
        .from(T::default().table_ref())
        .cond_where(any)
        .to_owned()
}

/// The new rows as [`PG_INSERT`]'s arrays, one per column.
fn pg_insert(rows: &[NewRow<'_>]) -> Statement {
    let rooms: Vec<i64> = rows.iter().map(|(new, _)| new.room_id.get()).collect();
    let seqs: Vec<i64> = rows.iter().map(|(_, seq)| *seq).collect();
    let users: Vec<&str> = rows.iter().map(|(new, _)| new.user_id.as_str()).collect();
    let contents: Vec<&str> = rows.iter().map(|(new, _)| new.content.as_str()).collect();
    let kinds: Vec<&str> = rows.iter().map(|(new, _)| new.message_type.as_str()).collect();
    // Arrays of text carry no NULL here: '' (never a valid key) stands for none.
    let keys: Vec<&str> =
        rows.iter().map(|(new, _)| new.client_msg_id.as_ref().map_or("", |k| k.as_str())).collect();
    let at: Vec<_> = rows.iter().map(|(new, _)| new.created_at).collect();
    let text = |column: Vec<&str>| -> sea_orm::Value {
        column.into_iter().map(str::to_owned).collect::<Vec<String>>().into()
    };
    Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        PG_INSERT,
        [
            rooms.into(),
            seqs.into(),
            text(users),
            text(contents),
            text(kinds),
            text(keys),
            at.into(),
        ],
    )
}

fn is_postgres(txn: &DatabaseTransaction) -> bool {
    txn.get_database_backend() == DatabaseBackend::Postgres
}

// On Postgres each step is one statement whose text does not depend on the
// batch's size (arrays instead of a parameter per value): prepared once per
// connection, planned once, and cheap to bind.

/// Reserves seqs: `$1` room ids (ascending), `$2` messages per room. The
/// sub-select locks the active rooms in id order.
const PG_TAKE_SEQS: &str = "UPDATE rooms AS r SET last_seq = r.last_seq + w.n \
    FROM unnest($1::int8[], $2::int8[]) AS w(id, n) \
    WHERE r.id = w.id AND r.id IN \
      (SELECT id FROM rooms WHERE id = ANY($1::int8[]) AND is_active ORDER BY id FOR UPDATE) \
    RETURNING r.id, r.last_seq";

/// The messages that `($1 room, $2 user, $3 client_msg_id)` name, live or
/// archived. `LIMIT 1` keeps each key a probe of the unique index, whatever
/// the table's statistics say.
const PG_ORIGINALS: &str = "SELECT m.* FROM unnest($1::int8[], $2::text[], $3::text[]) AS k(r, u, c) \
    CROSS JOIN LATERAL (SELECT id, room_id, seq, user_id, content, message_type, client_msg_id, \
        edited, created_at, updated_at, deleted_at FROM messages \
        WHERE room_id = k.r AND user_id = k.u AND client_msg_id = k.c LIMIT 1) AS m \
    UNION ALL \
    SELECT a.* FROM unnest($1::int8[], $2::text[], $3::text[]) AS k(r, u, c) \
    CROSS JOIN LATERAL (SELECT id, room_id, seq, user_id, content, message_type, client_msg_id, \
        edited, created_at, updated_at, deleted_at FROM messages_archive \
        WHERE room_id = k.r AND user_id = k.u AND client_msg_id = k.c LIMIT 1) AS a";

/// Stores the rows given as arrays (room, seq, user, content, type, key or '', created).
const PG_INSERT: &str = "INSERT INTO messages \
    (room_id, seq, user_id, content, message_type, client_msg_id, edited, created_at, updated_at) \
    SELECT r, s, u, c, t, NULLIF(k, ''), false, at, at \
    FROM unnest($1::int8[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
        $7::timestamptz[]) AS v(r, s, u, c, t, k, at) \
    RETURNING id, room_id, seq, user_id, content, message_type, client_msg_id, edited, \
        created_at, updated_at, deleted_at";

/// A message to store and its seq.
type NewRow<'a> = (&'a NewMessage, i64);

fn row_of((new, seq): &NewRow<'_>) -> message::ActiveModel {
    let seq = *seq;
    message::ActiveModel {
        id: NotSet,
        room_id: Set(new.room_id.get()),
        seq: Set(seq),
        user_id: Set(new.user_id.as_str().to_owned()),
        content: Set(new.content.as_str().to_owned()),
        message_type: Set(new.message_type.as_str().to_owned()),
        client_msg_id: Set(new.client_msg_id.as_ref().map(|k| k.as_str().to_owned())),
        edited: Set(false),
        created_at: Set(new.created_at),
        updated_at: Set(new.created_at),
        deleted_at: NotSet,
    }
}

/// Inserts the rows in one statement; returns them as stored, in `rows`' order.
async fn insert_rows(
    txn: &DatabaseTransaction,
    rows: &[NewRow<'_>],
) -> Result<Vec<Message>, DomainError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let inserted = if is_postgres(txn) {
        message::Model::find_by_statement(pg_insert(rows)).all(txn).await
    } else {
        message::Entity::insert_many(rows.iter().map(row_of)).exec_with_returning(txn).await
    }
    .map_err(map_db_err)?;
    // RETURNING's row order is not promised: match the rows up by (room, seq).
    let mut by_position: HashMap<(i64, i64), message::Model> =
        inserted.into_iter().map(|m| ((m.room_id, m.seq), m)).collect();
    rows.iter()
        .map(|(new, seq)| {
            let position = (new.room_id.get(), *seq);
            by_position
                .remove(&position)
                .ok_or_else(|| DomainError::Internal("an inserted message was not returned".into()))
                .and_then(Message::try_from)
        })
        .collect()
}
