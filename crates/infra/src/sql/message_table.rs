//! Messages live in two tables with the same columns: `messages` and, once old
//! enough, `messages_archive`. [`MessageTable`] lets one query be written once
//! for both, and [`history_of_both`] reads a page across them: each table's
//! page is read on its `(room_id, seq)` index and the two are merged by seq, so
//! paging runs on into the archive with no gap, whichever rows were moved.
//! Every read is bounded by a window of seqs next to the cursor ([`Walk`]), so
//! its cost does not hang on the planner's statistics. Reads by id likewise try
//! the live table first, then the archive.

use chat_domain::{
    DomainError, HistoryPage, HistoryQuery, Limit, Message, MessageId, MessageType, ReactionCounts,
    RoomId,
};
use sea_orm::sea_query::{
    Asterisk, Condition, Expr, ExprTrait, Func, Order, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    Iterable, QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select, Statement,
};

use super::entity::{archived_message, message, room};
use super::errors::map_db_err;

/// A table of messages.
pub(crate) trait MessageTable: EntityTrait {
    const ID: Self::Column;
    const ROOM_ID: Self::Column;
    const SEQ: Self::Column;
    const CONTENT: Self::Column;
    const EDITED: Self::Column;
    const UPDATED_AT: Self::Column;
    const DELETED_AT: Self::Column;
    const REACTIONS: Self::Column;

    fn into_message(model: Self::Model) -> Result<Message, DomainError>;
}

impl MessageTable for message::Entity {
    const ID: message::Column = message::Column::Id;
    const ROOM_ID: message::Column = message::Column::RoomId;
    const SEQ: message::Column = message::Column::Seq;
    const CONTENT: message::Column = message::Column::Content;
    const EDITED: message::Column = message::Column::Edited;
    const UPDATED_AT: message::Column = message::Column::UpdatedAt;
    const DELETED_AT: message::Column = message::Column::DeletedAt;
    const REACTIONS: message::Column = message::Column::Reactions;

    fn into_message(model: message::Model) -> Result<Message, DomainError> {
        model.try_into()
    }
}

impl MessageTable for archived_message::Entity {
    const ID: archived_message::Column = archived_message::Column::Id;
    const ROOM_ID: archived_message::Column = archived_message::Column::RoomId;
    const SEQ: archived_message::Column = archived_message::Column::Seq;
    const CONTENT: archived_message::Column = archived_message::Column::Content;
    const EDITED: archived_message::Column = archived_message::Column::Edited;
    const UPDATED_AT: archived_message::Column = archived_message::Column::UpdatedAt;
    const DELETED_AT: archived_message::Column = archived_message::Column::DeletedAt;
    const REACTIONS: archived_message::Column = archived_message::Column::Reactions;

    fn into_message(m: archived_message::Model) -> Result<Message, DomainError> {
        message::Model {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            user_id: m.user_id,
            content: m.content,
            message_type: m.message_type,
            client_msg_id: m.client_msg_id,
            edited: m.edited,
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted_at: m.deleted_at,
            reply_to: m.reply_to,
            reactions: m.reactions,
        }
        .try_into()
    }
}

impl TryFrom<message::Model> for Message {
    type Error = DomainError;

    fn try_from(m: message::Model) -> Result<Self, DomainError> {
        let message_type = MessageType::parse(&m.message_type).map_err(|_| {
            DomainError::Internal(format!("message {} has unknown type {:?}", m.id, m.message_type))
        })?;
        Ok(Message {
            id: MessageId::new(m.id)?,
            room_id: RoomId::new(m.room_id)?,
            seq: m.seq,
            user_id: m.user_id,
            content: m.content,
            message_type,
            client_msg_id: m.client_msg_id,
            created_at: m.created_at,
            updated_at: m.updated_at,
            edited: m.edited,
            reply_to: m.reply_to.map(MessageId::new).transpose()?,
            reactions: reaction_counts(m.id, &m.reactions)?,
            // The use cases attach an offer message's current offer.
            offer: None,
        })
    }
}

/// The `reactions` column: a JSON object of counts per key.
pub(crate) fn reaction_counts(id: i64, raw: &str) -> Result<ReactionCounts, DomainError> {
    serde_json::from_str(raw).map_err(|error| {
        DomainError::Internal(format!("message {id} has unreadable reactions: {error}"))
    })
}

/// The `reactions` column of `counts`.
pub(crate) fn reactions_column(counts: &ReactionCounts) -> String {
    // A map of strings to integers always serializes.
    serde_json::to_string(counts).unwrap_or_else(|_| "{}".to_owned())
}

/// A message that is not deleted, from table `T`.
pub(crate) async fn find_in<T: MessageTable, C: ConnectionTrait>(
    conn: &C,
    id: MessageId,
) -> Result<Option<Message>, DomainError> {
    T::find()
        .filter(T::ID.eq(id.get()))
        .filter(T::DELETED_AT.is_null())
        .one(conn)
        .await
        .map_err(map_db_err)?
        .map(T::into_message)
        .transpose()
}

/// The live message `id` of table `T`, its row locked to the end of `txn`
/// (Postgres `FOR UPDATE`; SQLite's write transaction is alone anyway), so
/// what is read from it and written back is not raced by another change.
pub(crate) async fn lock_live<T: MessageTable>(
    txn: &sea_orm::DatabaseTransaction,
    id: MessageId,
) -> Result<Option<Message>, DomainError> {
    T::find()
        .filter(T::ID.eq(id.get()))
        .filter(T::DELETED_AT.is_null())
        .lock_exclusive()
        .one(txn)
        .await
        .map_err(map_db_err)?
        .map(T::into_message)
        .transpose()
}

/// Which way a page runs from its cursor, and so the order rows are read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// `Latest` and `Before`: newest first.
    Older,
    /// `After`: oldest first.
    Newer,
}

impl Direction {
    fn order(self) -> Order {
        match self {
            Direction::Older => Order::Desc,
            Direction::Newer => Order::Asc,
        }
    }
}

/// The lower edge of a [`Window`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Low {
    /// None: the window runs down to the room's first message.
    Open,
    /// `seq >= n`.
    From(i64),
    /// The newest `n` seqs, `seq > rooms.last_seq - n`: the first window of
    /// `Latest`, before the room's last seq is known.
    Newest(i64),
}

/// The seqs one read may return: `low <= seq < high`, `high` open when `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    low: Low,
    high: Option<i64>,
}

/// The windows a page reads, one after the other, away from the cursor.
///
/// Every read is bounded by a window of seqs on both sides (but the side where
/// the room ends), so however stale the planner's statistics are, a read can
/// only look at that many index entries: the unbounded `seq < S` it replaces
/// made Postgres, right after a room grew fast, scan and sort every row of the
/// room below the cursor. Seqs are dense, so the first window, twice the rows
/// wanted, holds the page unless deleted messages thin it out; then the walk
/// reads on in the next window, twice as wide as the one before, until it has
/// the rows it wants or a window reaches the end of the room (seq 1 going back,
/// the room's last seq going forward). Results do not depend on the seqs being
/// dense, only on them being at least 1 and at most `rooms.last_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Walk {
    direction: Direction,
    window: Window,
    /// The current window's width in seqs.
    span: i64,
}

impl Walk {
    /// The first window for reading `rows` rows.
    fn start(query: HistoryQuery, rows: u64) -> Self {
        let span = i64::try_from(rows).unwrap_or(i64::MAX).saturating_mul(2);
        match query {
            HistoryQuery::Latest => Walk {
                direction: Direction::Older,
                window: Window { low: Low::Newest(span), high: None },
                span,
            },
            HistoryQuery::Before(seq) => Walk {
                direction: Direction::Older,
                window: Window { low: low_edge(seq, span), high: Some(seq) },
                span,
            },
            HistoryQuery::After(seq) => {
                let low = seq.saturating_add(1);
                Walk {
                    direction: Direction::Newer,
                    window: Window { low: Low::From(low), high: Some(low.saturating_add(span)) },
                    span,
                }
            }
        }
    }

    /// Pins the window to the room's last seq, as read with the first rows: the
    /// newest seqs become numbers, and a window past the last seq is left open
    /// (nothing newer than the last seq existed when it was read).
    fn pin(&mut self, last_seq: i64) {
        if let Low::Newest(span) = self.window.low {
            self.window.low = low_edge(last_seq.saturating_add(1), span);
        }
        if self.direction == Direction::Newer && self.window.high.is_some_and(|h| h > last_seq) {
            self.window.high = None;
        }
    }

    /// Moves on to the next window after a short read; `false` when the current
    /// one already reached the end of the room.
    fn advance(&mut self, last_seq: i64) -> bool {
        self.span = self.span.saturating_mul(2);
        match self.direction {
            Direction::Older => {
                let Low::From(low) = self.window.low else { return false };
                // A `before` past the end: nothing above the last seq to read.
                let high = std::cmp::min(low, last_seq.saturating_add(1));
                self.window = Window { low: low_edge(high, self.span), high: Some(high) };
            }
            Direction::Newer => {
                let Some(low) = self.window.high else { return false };
                let high = Some(low.saturating_add(self.span)).filter(|h| *h <= last_seq);
                self.window = Window { low: Low::From(low), high };
            }
        }
        true
    }
}

/// The lower edge of a window of `span` seqs below `high`: open once it
/// reaches seq 1, so the last window of a walk back has no lower bound at all.
fn low_edge(high: i64, span: i64) -> Low {
    match high.saturating_sub(span) {
        low if low <= 1 => Low::Open,
        low => Low::From(low),
    }
}

/// `WHERE` of a read of table `T`: the room's live messages in the window.
fn window_condition<T: MessageTable>(room: RoomId, window: Window) -> Condition {
    let seq = Expr::col((T::default(), T::SEQ));
    let mut condition = Condition::all()
        .add(Expr::col((T::default(), T::ROOM_ID)).eq(room.get()))
        .add(Expr::col((T::default(), T::DELETED_AT)).is_null());
    condition = match window.low {
        Low::Open => condition,
        Low::From(low) => condition.add(seq.clone().gte(low)),
        // A scalar subquery: Postgres computes it once before the scan, so it
        // is part of the index condition whichever plan it picks.
        Low::Newest(span) => condition.add(seq.clone().gt(last_seq_of(room).sub(span))),
    };
    match window.high {
        Some(high) => condition.add(seq.lt(high)),
        None => condition,
    }
}

/// `(SELECT last_seq FROM rooms WHERE id = room)`.
fn last_seq_of(room: RoomId) -> Expr {
    let latest = "latest";
    Expr::from(
        Query::select()
            .column((latest, room::Column::LastSeq))
            .from_as(room::Entity, latest)
            .and_where(Expr::col((latest, room::Column::Id)).eq(room.get()))
            .to_owned(),
    )
}

/// A read after the first: `SELECT … FROM T WHERE <window> ORDER BY seq LIMIT rows`.
fn window_select<T: MessageTable>(
    room: RoomId,
    window: Window,
    direction: Direction,
    rows: u64,
) -> Select<T> {
    T::find()
        .filter(window_condition::<T>(room, window))
        .order_by(T::SEQ, direction.order())
        .limit(rows)
}

/// Column alias of the room's last seq in the first read.
const LAST_SEQ: &str = "room_last_seq";

/// The first read of a page: [`window_select`]'s rows `UNION ALL` one row of
/// nulls but for `rooms.last_seq`, so the room's last seq comes back in the
/// same statement (and snapshot) as the rows, also when the window holds none.
/// A union rather than a join, so the page keeps its own plan: with fresh
/// statistics an index scan that stops after `rows` rows, not a sort of the
/// whole window.
fn first_select<T: MessageTable>(
    room: RoomId,
    window: Window,
    direction: Direction,
    rows: u64,
) -> SelectStatement {
    let mut page = window_select::<T>(room, window, direction, rows).into_query();
    // Typed: to Postgres a bare NULL coming out of a subquery is text, which
    // the union could not match with `rooms.last_seq`, a bigint.
    page.expr_as(Func::cast_as(Expr::null(), "BIGINT"), LAST_SEQ);
    let mut room_row = Query::select();
    for _ in T::Column::iter() {
        room_row.expr(Expr::null());
    }
    room_row
        .column((room::Entity, room::Column::LastSeq))
        .from(room::Entity)
        .and_where(Expr::col((room::Entity, room::Column::Id)).eq(room.get()));
    Query::select()
        .column(Asterisk)
        .from_subquery(page, "page")
        .union(UnionType::All, room_row)
        .to_owned()
}

/// A row of [`first_select`]: a message of table `T`, or the room's row (no
/// message, the last seq).
enum FirstRow<T: MessageTable> {
    Message(T::Model),
    Room { last_seq: i64 },
}

impl<T: MessageTable> FromQueryResult for FirstRow<T> {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        let id: Option<i64> = row.try_get(prefix, T::ID.as_str())?;
        Ok(match id {
            Some(_) => FirstRow::Message(T::Model::from_query_result(row, prefix)?),
            None => FirstRow::Room { last_seq: row.try_get(prefix, LAST_SEQ)? },
        })
    }
}

/// The first read of a page from table `T`: the room's last seq and up to
/// `rows` live messages of the window, nearest the cursor first; `None` when
/// there is no such room.
async fn first_read<T: MessageTable, C: ConnectionTrait>(
    conn: &C,
    room: RoomId,
    walk: &Walk,
    rows: u64,
) -> Result<Option<(i64, Vec<Message>)>, DomainError> {
    let statement = first_select::<T>(room, walk.window, walk.direction, rows);
    let found = FirstRow::<T>::find_by_statement(conn.get_database_backend().build(&statement))
        .all(conn)
        .await
        .map_err(map_db_err)?;
    let mut last_seq = None;
    let mut messages = Vec::with_capacity(found.len());
    for row in found {
        match row {
            FirstRow::Message(model) => messages.push(T::into_message(model)?),
            FirstRow::Room { last_seq: seq } => last_seq = Some(seq),
        }
    }
    Ok(last_seq.map(|last_seq| (last_seq, messages)))
}

/// Up to `rows` live messages of table `T` in the walk's window, nearest the
/// cursor first.
async fn read<T: MessageTable, C: ConnectionTrait>(
    conn: &C,
    room: RoomId,
    walk: &Walk,
    rows: u64,
) -> Result<Vec<Message>, DomainError> {
    let models = window_select::<T>(room, walk.window, walk.direction, rows)
        .all(conn)
        .await
        .map_err(map_db_err)?;
    models.into_iter().map(T::into_message).collect()
}

/// One window's rows of both tables, nearest the cursor first, without the
/// duplicates a batch archived between the two reads leaves, cut to `keep`.
fn merge(
    direction: Direction,
    live: Vec<Message>,
    archived: Vec<Message>,
    keep: u64,
) -> Vec<Message> {
    let mut rows = live;
    rows.extend(archived);
    match direction {
        Direction::Older => rows.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq)),
        Direction::Newer => rows.sort_unstable_by_key(|m| m.seq),
    }
    rows.dedup_by_key(|m| m.seq);
    rows.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    rows
}

/// A history page over the live table and the archive, ascending seq.
pub(crate) async fn history_of_both<C: ConnectionTrait>(
    conn: &C,
    room: RoomId,
    query: HistoryQuery,
    limit: Limit,
) -> Result<HistoryPage, DomainError> {
    let page_size = u64::from(limit.get());
    // One extra row tells whether there is more beyond the page.
    let wanted = page_size + 1;
    let mut walk = Walk::start(query, wanted);
    // In every window the live table is read first: a batch archived between
    // the two reads then shows up in both (dropped by `merge`), never in neither.
    let Some((last_seq, live)) =
        first_read::<message::Entity, _>(conn, room, &walk, wanted).await?
    else {
        return Ok(HistoryPage { items: Vec::new(), has_more: false });
    };
    walk.pin(last_seq);
    let archived = read::<archived_message::Entity, _>(conn, room, &walk, wanted).await?;
    let mut rows = merge(walk.direction, live, archived, wanted);
    // Windows are disjoint and run away from the cursor, so each one's rows
    // come after the previous ones'.
    while (rows.len() as u64) < wanted && walk.advance(last_seq) {
        let missing = wanted - rows.len() as u64;
        let live = read::<message::Entity, _>(conn, room, &walk, missing).await?;
        let archived = read::<archived_message::Entity, _>(conn, room, &walk, missing).await?;
        rows.extend(merge(walk.direction, live, archived, missing));
    }
    let has_more = rows.len() as u64 > page_size;
    rows.truncate(page_size as usize);
    if walk.direction == Direction::Older {
        rows.reverse();
    }
    Ok(HistoryPage { items: rows, has_more })
}

/// The statements of a history page's first window as this module builds them,
/// for tests that check how the database plans them: the live table's first
/// read, then, for a room whose last seq is `last_seq`, the archive's read and
/// the shape of any later read, over the live table. Not used by the service.
#[doc(hidden)]
pub fn history_statements(
    backend: DatabaseBackend,
    room: RoomId,
    query: HistoryQuery,
    limit: Limit,
    last_seq: i64,
) -> Vec<Statement> {
    let wanted = u64::from(limit.get()) + 1;
    let mut walk = Walk::start(query, wanted);
    let first = first_select::<message::Entity>(room, walk.window, walk.direction, wanted);
    let first = backend.build(&first);
    walk.pin(last_seq);
    let archived =
        window_select::<archived_message::Entity>(room, walk.window, walk.direction, wanted);
    let later = window_select::<message::Entity>(room, walk.window, walk.direction, wanted);
    vec![first, archived.build(backend), later.build(backend)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(low: Low, high: Option<i64>) -> Window {
        Window { low, high }
    }

    #[test]
    fn before_walks_back_in_doubling_windows_to_an_open_end() {
        let mut walk = Walk::start(HistoryQuery::Before(1000), 51);
        walk.pin(5000);
        assert_eq!(walk.window, window(Low::From(898), Some(1000)));
        assert!(walk.advance(5000));
        assert_eq!(walk.window, window(Low::From(694), Some(898)));
        assert!(walk.advance(5000));
        assert_eq!(walk.window, window(Low::From(286), Some(694)));
        assert!(walk.advance(5000));
        assert_eq!(walk.window, window(Low::Open, Some(286)));
        assert!(!walk.advance(5000), "the window reached seq 1");
    }

    #[test]
    fn before_near_the_start_reads_one_open_window() {
        let mut walk = Walk::start(HistoryQuery::Before(103), 51);
        walk.pin(5000);
        assert_eq!(walk.window, window(Low::Open, Some(103)));
        assert!(!walk.advance(5000));
        let walk = Walk::start(HistoryQuery::Before(104), 51);
        assert_eq!(walk.window, window(Low::From(2), Some(104)));
    }

    #[test]
    fn before_past_the_end_goes_on_below_the_last_seq() {
        let mut walk = Walk::start(HistoryQuery::Before(i64::MAX), 2);
        walk.pin(1000);
        assert_eq!(walk.window, window(Low::From(i64::MAX - 4), Some(i64::MAX)));
        assert!(walk.advance(1000));
        assert_eq!(walk.window, window(Low::From(993), Some(1001)));
    }

    #[test]
    fn latest_is_pinned_to_the_last_seq() {
        let mut walk = Walk::start(HistoryQuery::Latest, 51);
        assert_eq!(walk.window, window(Low::Newest(102), None));
        walk.pin(1000);
        assert_eq!(walk.window, window(Low::From(899), None));
        assert!(walk.advance(1000));
        assert_eq!(walk.window, window(Low::From(695), Some(899)));

        let mut small = Walk::start(HistoryQuery::Latest, 51);
        small.pin(102);
        assert_eq!(small.window, window(Low::Open, None), "the whole room at once");
        assert!(!small.advance(102));
    }

    #[test]
    fn after_walks_on_until_a_window_passes_the_last_seq() {
        let mut walk = Walk::start(HistoryQuery::After(0), 51);
        walk.pin(500);
        assert_eq!(walk.window, window(Low::From(1), Some(103)));
        assert!(walk.advance(500));
        assert_eq!(walk.window, window(Low::From(103), Some(307)));
        assert!(walk.advance(500));
        assert_eq!(walk.window, window(Low::From(307), None), "open past the last seq");
        assert!(!walk.advance(500));

        let mut at_the_end = Walk::start(HistoryQuery::After(450), 51);
        at_the_end.pin(500);
        assert_eq!(at_the_end.window, window(Low::From(451), None));
        assert!(!at_the_end.advance(500));

        let mut past = Walk::start(HistoryQuery::After(i64::MAX), 51);
        past.pin(500);
        assert_eq!(past.window, window(Low::From(i64::MAX), None));
    }

    #[test]
    fn the_first_read_adds_the_rooms_row_to_the_page() {
        let room = RoomId::new(7).unwrap();
        let limit = Limit::parse(50).unwrap();
        let query = HistoryQuery::Before(500);
        let statements = history_statements(DatabaseBackend::Postgres, room, query, limit, 900);
        let sql: Vec<&str> = statements.iter().map(|s| s.sql.as_str()).collect();
        // The first read is the later reads' page plus the room's row.
        let (columns, rest) = sql[2].split_once(" FROM ").unwrap();
        let first = format!(
            "SELECT * FROM ({columns}, CAST(NULL AS BIGINT) AS \"room_last_seq\" FROM {rest}) \
             AS \"page\" UNION ALL (SELECT {}\"rooms\".\"last_seq\" FROM \"rooms\" \
             WHERE \"rooms\".\"id\" = $5)",
            "NULL, ".repeat(13),
        );
        assert_eq!(sql[0], first);
        assert!(rest.starts_with(r#""messages" WHERE"#), "{rest}");
        assert!(sql[1].contains(r#"FROM "messages_archive" WHERE"#), "{}", sql[1]);
        assert!(!sql[1].contains("UNION") && !sql[2].contains("UNION"));
    }
}
