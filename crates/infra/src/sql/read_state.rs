//! `ReadState` on SQL: read markers in `room_reads`, unread counts computed
//! from the marker with one count over the `(room_id, seq)` indexes of both
//! message tables (O(unread), not O(history)), and the inbox. Same text on
//! Postgres and SQLite (sqlx binds `$n` on both).

use async_trait::async_trait;
use chat_domain::ports::ReadState;
use chat_domain::read_state::{
    InboxCursor, InboxEntry, InboxPage, MarkedRead, ReadMarker, ReadSeq, UnreadState,
};
use chat_domain::{ChatEvent, CorrelationId, DomainError, Limit, Message, Room, RoomId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QueryResult, Statement,
};

use super::entity::{archived_message, message, room, room_read};
use super::errors::map_db_err;
use super::message_table::MessageTable;
use super::{SqlStore, outbox};

/// Moves a marker forward in one statement: the seq is clamped to the room's
/// last seq, a missing or deleted room inserts nothing, and an existing marker
/// changes only when the new seq is higher (or it was a participant's row that
/// never read). Concurrent calls serialise on the row and end at the highest
/// seq. A row comes back only when the marker moved.
const MARK_READ: &str = "\
INSERT INTO room_reads (room_id, user_id, seq, read_at)
SELECT r.id, $2, CASE WHEN $3 < r.last_seq THEN $3 ELSE r.last_seq END, $4
FROM rooms AS r WHERE r.id = $1 AND r.is_active
ON CONFLICT (room_id, user_id) DO UPDATE SET seq = excluded.seq, read_at = excluded.read_at
WHERE room_reads.seq < excluded.seq OR room_reads.read_at IS NULL
RETURNING room_id, user_id, seq, read_at";

/// A user's marker in a room, the room's last seq and the live messages of
/// others after the marker, in both tables: one statement, one snapshot.
const UNREAD: &str = "\
SELECT r.last_seq AS last_seq, COALESCE(rr.seq, 0) AS read_seq,
    (SELECT count(*) FROM messages AS m
     WHERE m.room_id = r.id AND m.seq > COALESCE(rr.seq, 0)
       AND m.deleted_at IS NULL AND m.user_id <> $2)
  + (SELECT count(*) FROM messages_archive AS a
     WHERE a.room_id = r.id AND a.seq > COALESCE(rr.seq, 0)
       AND a.deleted_at IS NULL AND a.user_id <> $2) AS unread
FROM rooms AS r
LEFT JOIN room_reads AS rr ON rr.room_id = r.id AND rr.user_id = $2
WHERE r.id = $1";

/// One page of a user's inbox (`$1` user, `$2`/`$3` the cursor's activity and
/// room id or NULL, `$4` rows). The inner query picks the page: the active
/// rooms the user created, is a member of or posted in (from the user's own
/// rows, each an index look-up), private ones only while creator or member,
/// newest activity first; the outer one adds, for those rows only, the
/// marker, the unread count and the id of the newest live message.
const INBOX: &str = "\
SELECT p.*,
    (SELECT count(*) FROM messages AS m
     WHERE m.room_id = p.id AND m.seq > p.read_seq
       AND m.deleted_at IS NULL AND m.user_id <> $1)
  + (SELECT count(*) FROM messages_archive AS a
     WHERE a.room_id = p.id AND a.seq > p.read_seq
       AND a.deleted_at IS NULL AND a.user_id <> $1) AS unread,
    (SELECT m.id FROM messages AS m WHERE m.room_id = p.id AND m.deleted_at IS NULL
     ORDER BY m.seq DESC LIMIT 1) AS last_live_id
FROM (
    SELECT r.*, COALESCE(rr.seq, 0) AS read_seq
    FROM rooms AS r
    LEFT JOIN room_reads AS rr ON rr.room_id = r.id AND rr.user_id = $1
    WHERE r.is_active
      AND r.id IN (
          SELECT room_id FROM room_members WHERE user_id = $1
          UNION SELECT room_id FROM room_reads WHERE user_id = $1
          UNION SELECT id FROM rooms WHERE created_by = $1)
      AND (NOT r.is_private OR r.created_by = $1
           OR EXISTS (SELECT 1 FROM room_members AS rm
                      WHERE rm.room_id = r.id AND rm.user_id = $1))
      AND ($2 IS NULL OR r.last_activity_at < $2 OR (r.last_activity_at = $2 AND r.id < $3))
    ORDER BY r.last_activity_at DESC, r.id DESC
    LIMIT $4
) AS p
ORDER BY p.last_activity_at DESC, p.id DESC";

/// The newest live message of each listed room in the archive (for rooms whose
/// live table has none); `{rooms}` is the list of room ids.
const ARCHIVED_LAST: &str = "\
SELECT (SELECT a.id FROM messages_archive AS a WHERE a.room_id = r.id AND a.deleted_at IS NULL
        ORDER BY a.seq DESC LIMIT 1) AS id
FROM rooms AS r WHERE r.id IN ({rooms})";

/// A marker from a row of `room_reads`; `None` for a participant who never read.
fn marker_of(row: &QueryResult) -> Result<Option<ReadMarker>, DomainError> {
    let room: i64 = row.try_get("", "room_id").map_err(map_db_err)?;
    let user_id: String = row.try_get("", "user_id").map_err(map_db_err)?;
    let seq: i64 = row.try_get("", "seq").map_err(map_db_err)?;
    let read_at: Option<DateTime<Utc>> = row.try_get("", "read_at").map_err(map_db_err)?;
    let Some(read_at) = read_at else { return Ok(None) };
    Ok(Some(ReadMarker { room_id: RoomId::new(room)?, user_id, seq, read_at }))
}

impl SqlStore {
    pub(super) fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(self.db.get_database_backend(), sql, values)
    }

    /// [`MARK_READ`] on `conn`, then (when it moved and a broker relays events)
    /// the `messages_read` event on the same connection (the caller's transaction).
    async fn mark_read_on<C: ConnectionTrait>(
        &self,
        conn: &C,
        room: RoomId,
        user: &UserId,
        seq: ReadSeq,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<Option<ReadMarker>, DomainError> {
        let values = vec![room.get().into(), user.as_str().into(), seq.get().into(), at.into()];
        let Some(row) =
            conn.query_one_raw(self.statement(MARK_READ, values)).await.map_err(map_db_err)?
        else {
            return Ok(None);
        };
        let marker = marker_of(&row)?
            .ok_or_else(|| DomainError::Internal("a moved marker came back unread".into()))?;
        if self.outbox {
            let event = ChatEvent::messages_read(room, user, marker.seq, marker.read_at)
                .with_correlation(correlation.cloned());
            outbox::enqueue(conn, &event).await.map_err(map_db_err)?;
        }
        Ok(Some(marker))
    }

    /// The user's marker as it stands; `None` when the room has none (or the
    /// user never read it).
    async fn current_marker(
        &self,
        room: RoomId,
        user: &UserId,
    ) -> Result<Option<ReadMarker>, DomainError> {
        let found = room_read::Entity::find_by_id((room.get(), user.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(found.and_then(|row| {
            let read_at = row.read_at?;
            Some(ReadMarker { room_id: room, user_id: row.user_id, seq: row.seq, read_at })
        }))
    }

    /// The newest live message of each room in `rooms` that has none in the live table.
    async fn archived_last(
        &self,
        rooms: &[i64],
    ) -> Result<std::collections::HashMap<i64, Message>, DomainError> {
        if rooms.is_empty() {
            return Ok(Default::default());
        }
        // Ids read from the database, so numbers only: written into the text.
        let list: Vec<String> = rooms.iter().map(i64::to_string).collect();
        let sql = ARCHIVED_LAST.replace("{rooms}", &list.join(", "));
        let rows =
            self.db.query_all_raw(self.statement(&sql, Vec::new())).await.map_err(map_db_err)?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(id) = row.try_get::<Option<i64>>("", "id").map_err(map_db_err)? {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let found = archived_message::Entity::find()
            .filter(archived_message::Column::Id.is_in(ids))
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        found
            .into_iter()
            .map(|m| archived_message::Entity::into_message(m).map(|m| (m.room_id.get(), m)))
            .collect()
    }
}

#[async_trait]
impl ReadState for SqlStore {
    async fn mark_read(
        &self,
        room: RoomId,
        user: &UserId,
        seq: ReadSeq,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Result<MarkedRead, DomainError> {
        let moved = if self.outbox {
            let txn = self.begin_write().await?;
            let moved = self.mark_read_on(&txn, room, user, seq, at, correlation).await?;
            txn.commit().await.map_err(map_db_err)?;
            if moved.is_some() {
                self.outbox_wrote();
            }
            moved
        } else {
            self.mark_read_on(&self.db, room, user, seq, at, correlation).await?
        };
        if let Some(marker) = moved {
            return Ok(MarkedRead { marker, moved: true });
        }
        // Not moved: the marker already is at or past `seq` — or there is no
        // such active room, and so no marker to answer with.
        match self.current_marker(room, user).await? {
            Some(marker) => Ok(MarkedRead { marker, moved: false }),
            None => Err(DomainError::NotFound(format!("room {room} not found"))),
        }
    }

    async fn reads(&self, room: RoomId) -> Result<Vec<ReadMarker>, DomainError> {
        let rows = room_read::Entity::find()
            .filter(room_read::Column::RoomId.eq(room.get()))
            .filter(room_read::Column::ReadAt.is_not_null())
            .order_by_asc(room_read::Column::UserId)
            .all(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let read_at = row.read_at?;
                Some(ReadMarker { room_id: room, user_id: row.user_id, seq: row.seq, read_at })
            })
            .collect())
    }

    async fn unread(&self, room: RoomId, user: &UserId) -> Result<UnreadState, DomainError> {
        let values = vec![room.get().into(), user.as_str().into()];
        let row = self
            .db
            .query_one_raw(self.statement(UNREAD, values))
            .await
            .map_err(map_db_err)?
            .ok_or_else(|| DomainError::NotFound(format!("room {room} not found")))?;
        let last_seq: i64 = row.try_get("", "last_seq").map_err(map_db_err)?;
        let last_read_seq: i64 = row.try_get("", "read_seq").map_err(map_db_err)?;
        let unread: i64 = row.try_get("", "unread").map_err(map_db_err)?;
        Ok(UnreadState {
            room_id: room,
            last_read_seq,
            unread: u64::try_from(unread).unwrap_or_default(),
            last_seq,
        })
    }

    async fn inbox(
        &self,
        user: &UserId,
        after: Option<InboxCursor>,
        limit: Limit,
    ) -> Result<InboxPage, DomainError> {
        let page_size = u64::from(limit.get());
        let (at, id) = match &after {
            Some(cursor) => (Some(cursor.activity_at), Some(cursor.room_id.get())),
            None => (None, None),
        };
        let values = vec![
            user.as_str().into(),
            at.into(),
            id.into(),
            // One more row tells whether there is a next page.
            i64::try_from(page_size + 1).unwrap_or(i64::MAX).into(),
        ];
        let rows =
            self.db.query_all_raw(self.statement(INBOX, values)).await.map_err(map_db_err)?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let model = room::Model::from_query_result(row, "").map_err(map_db_err)?;
            let activity = model.last_activity_at.unwrap_or(model.created_at);
            let read_seq: i64 = row.try_get("", "read_seq").map_err(map_db_err)?;
            let unread: i64 = row.try_get("", "unread").map_err(map_db_err)?;
            let last_live: Option<i64> = row.try_get("", "last_live_id").map_err(map_db_err)?;
            entries.push((Room::try_from(model)?, activity, read_seq, unread, last_live));
        }
        let has_more = entries.len() as u64 > page_size;
        entries.truncate(page_size as usize);

        let live_ids: Vec<i64> = entries.iter().filter_map(|e| e.4).collect();
        let mut last: std::collections::HashMap<i64, Message> = if live_ids.is_empty() {
            Default::default()
        } else {
            message::Entity::find()
                .filter(message::Column::Id.is_in(live_ids))
                .all(&self.db)
                .await
                .map_err(map_db_err)?
                .into_iter()
                .map(|m| Message::try_from(m).map(|m| (m.room_id.get(), m)))
                .collect::<Result<_, _>>()?
        };
        // Rooms with messages but none live in the live table: look in the archive.
        let elsewhere: Vec<i64> = entries
            .iter()
            .filter(|e| e.4.is_none() && e.0.last_seq > 0)
            .map(|e| e.0.id.get())
            .collect();
        last.extend(self.archived_last(&elsewhere).await?);

        let next_cursor = if has_more {
            entries.last().map(|e| InboxCursor { activity_at: e.1, room_id: e.0.id })
        } else {
            None
        };
        let items = entries
            .into_iter()
            .map(|(room, _, read_seq, unread, _)| InboxEntry {
                last_message: last.remove(&room.id.get()),
                room,
                last_read_seq: read_seq,
                unread: u64::try_from(unread).unwrap_or_default(),
            })
            .collect();
        Ok(InboxPage { items, next_cursor })
    }
}
