//! The batch step by step inside the caller's transaction, in portable SQL
//! (SQLite's path):
//!
//! 1. One `UPDATE rooms … RETURNING` takes each active room's next seqs. Its
//!    rows are picked by a sub-select in id order (SQLite's one writer needs no
//!    lock; the transaction is `IMMEDIATE`).
//! 2. One query finds the originals of every `client_msg_id` of the batch, live
//!    or archived, and one (only when the batch has replies) the rooms of the
//!    live messages they answer. Repeats (also within the batch) and replies to
//!    a message that is not live in the same room store nothing; the seqs they
//!    took are given back before anything is inserted, so no gap is visible.
//! 3. One multi-row `INSERT … RETURNING` stores the messages.
//! 4. Only when the batch has (room, poster) pairs not known to be recorded,
//!    one `INSERT … ON CONFLICT DO NOTHING` records them in `room_reads`.

use std::collections::HashMap;

use chat_domain::{DomainError, Message, NewMessage};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict, Query, UnionType};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
};

use super::super::entity::{archived_message, message, room, room_read};
use super::super::errors::map_db_err;
use super::participants::Pair;
use super::{Appended, Key, Plan};

/// Plans and stores `batch` (not empty) in `txn`, which the caller commits.
pub(super) async fn append(
    txn: &DatabaseTransaction,
    batch: &[NewMessage],
    pairs: &[Pair],
) -> Result<Appended, DomainError> {
    let mut next_seq = take_seqs(txn, batch).await?;
    let originals = originals_of(txn, batch, &next_seq).await?;
    let targets = reply_targets(txn, batch, &next_seq).await?;

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
        }
        if let Some(target) = new.reply_to
            && targets.get(&target.get()) != Some(&room)
        {
            plans.push(Plan::BadReply(target.get()));
            continue;
        }
        if let Some(key) = &new.client_msg_id {
            stored_keys.insert((room, new.user_id.as_str(), key.as_str()), rows.len());
        }
        seq.next += 1;
        plans.push(Plan::Store(rows.len()));
        rows.push((new, seq.next));
    }
    give_back_unused(txn, &next_seq).await?;
    let stored = insert_rows(txn, &rows).await?;
    record_participants(txn, pairs, &stored).await?;
    Ok(Appended { plans, stored })
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
    let mut newest: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for new in batch {
        *wanted.entry(new.room_id.get()).or_default() += 1;
        let at = newest.entry(new.room_id.get()).or_insert(new.created_at);
        *at = Ord::max(*at, new.created_at);
    }
    let mut ids: Vec<i64> = wanted.keys().copied().collect();
    ids.sort_unstable();
    let rooms = take_seqs_generic(txn, &wanted, &newest, ids).await?;
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
/// The same update moves each room's `last_activity_at` to its newest message
/// of the batch (a repeat, which stores nothing, counts too: rare and harmless).
async fn take_seqs_generic(
    txn: &DatabaseTransaction,
    wanted: &HashMap<i64, i64>,
    newest: &HashMap<i64, DateTime<Utc>>,
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
        .col_expr(room::Column::LastActivityAt, newest_by_room(newest))
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

/// `CASE WHEN id = … THEN at … END` over the rooms of `newest` (just `at` for one).
fn newest_by_room(newest: &HashMap<i64, DateTime<Utc>>) -> Expr {
    let mut rooms = newest.iter();
    match (rooms.next(), rooms.next()) {
        (Some((_, &at)), None) => Expr::val(Some(at)),
        _ => {
            let mut case = CaseStatement::new();
            for (&id, &at) in newest {
                case = case.case(room::Column::Id.eq(id), Expr::val(Some(at)));
            }
            case.finally(Expr::col(room::Column::LastActivityAt)).into()
        }
    }
}

/// Records the batch's new (room, poster) pairs of rooms that stored rows.
async fn record_participants(
    txn: &DatabaseTransaction,
    pairs: &[Pair],
    stored: &[Message],
) -> Result<(), DomainError> {
    let mut insert = Query::insert();
    insert
        .into_table(room_read::Entity)
        .columns([room_read::Column::RoomId, room_read::Column::UserId]);
    let mut any = false;
    for (room, user) in pairs {
        if stored.iter().any(|m| m.room_id.get() == *room) {
            insert
                .values([(*room).into(), user.as_str().into()])
                .map_err(|e| DomainError::Internal(format!("participants insert: {e}")))?;
            any = true;
        }
    }
    if !any {
        return Ok(());
    }
    insert.on_conflict(
        OnConflict::columns([room_read::Column::RoomId, room_read::Column::UserId])
            .do_nothing()
            .to_owned(),
    );
    txn.execute(&insert).await.map_err(map_db_err)?;
    Ok(())
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
    let mut live = keyed_select::<message::Entity>(&keys);
    live.union(UnionType::All, keyed_select::<archived_message::Entity>(&keys));
    let statement = txn.get_database_backend().build(&live);
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
        "reply_to",
        "reactions",
    ];
    Query::select()
        .columns(columns.map(Alias::new))
        .from(T::default().table_ref())
        .cond_where(any)
        .to_owned()
}

/// The rooms of the live messages (either table) the batch's replies answer,
/// by id. The transaction holds SQLite's one write lock: no delete comes
/// between this read and the insert.
async fn reply_targets(
    txn: &DatabaseTransaction,
    batch: &[NewMessage],
    active: &HashMap<i64, Seqs>,
) -> Result<HashMap<i64, i64>, DomainError> {
    let ids: Vec<i64> = batch
        .iter()
        .filter(|new| active.contains_key(&new.room_id.get()))
        .filter_map(|new| new.reply_to.map(|id| id.get()))
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let live: Vec<(i64, i64)> = message::Entity::find()
        .select_only()
        .columns([message::Column::Id, message::Column::RoomId])
        .filter(message::Column::Id.is_in(ids.iter().copied()))
        .filter(message::Column::DeletedAt.is_null())
        .into_tuple()
        .all(txn)
        .await
        .map_err(map_db_err)?;
    let archived: Vec<(i64, i64)> = archived_message::Entity::find()
        .select_only()
        .columns([archived_message::Column::Id, archived_message::Column::RoomId])
        .filter(archived_message::Column::Id.is_in(ids))
        .filter(archived_message::Column::DeletedAt.is_null())
        .into_tuple()
        .all(txn)
        .await
        .map_err(map_db_err)?;
    Ok(live.into_iter().chain(archived).collect())
}

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
        reply_to: Set(new.reply_to.map(|id| id.get())),
        reactions: Set("{}".to_owned()),
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
    let inserted = message::Entity::insert_many(rows.iter().map(row_of))
        .exec_with_returning(txn)
        .await
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
