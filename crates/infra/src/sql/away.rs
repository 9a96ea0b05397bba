//! `AwayNotifications` on SQL: who is due a notification (one statement over
//! the rooms active since the last run, their participants, markers and live
//! messages), and the coalescing rows of `room_notifications` written with
//! their outbox events. Same text on Postgres and SQLite (`$n` on both).

use async_trait::async_trait;
use chat_domain::away::{AwayUser, QuotedMessage};
use chat_domain::ports::AwayNotifications;
use chat_domain::{ChatEvent, DomainError, MessageId, RoomId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult};

use super::errors::map_db_err;
use super::{SqlStore, outbox};

/// `$1` active since, `$2` cutoff, `$3` rows. Participants of the rooms with
/// activity after `$1`: creator, members and posters (of a private room only
/// creator and members), not notified since they last read or joined, whose
/// oldest unread message of others is at least as old as `$2`. Each row has
/// the unread count and the newest unread message; a room's rows together.
const DUE: &str = "\
WITH active AS (
    SELECT id, created_by, is_private FROM rooms
    WHERE is_active AND last_activity_at > $1
),
people AS (
    SELECT a.id AS room_id, a.created_by AS user_id FROM active AS a WHERE a.created_by IS NOT NULL
    UNION SELECT rm.room_id, rm.user_id FROM room_members AS rm JOIN active AS a ON a.id = rm.room_id
    UNION SELECT rr.room_id, rr.user_id FROM room_reads AS rr JOIN active AS a ON a.id = rr.room_id
        WHERE NOT a.is_private
),
waiting AS (
    SELECT p.room_id, p.user_id, COALESCE(rr.seq, 0) AS read_seq
    FROM people AS p
    LEFT JOIN room_reads AS rr ON rr.room_id = p.room_id AND rr.user_id = p.user_id
    WHERE NOT EXISTS (SELECT 1 FROM room_notifications AS n
                      WHERE n.room_id = p.room_id AND n.user_id = p.user_id)
      AND EXISTS (SELECT 1 FROM messages AS m
                  WHERE m.room_id = p.room_id AND m.seq > COALESCE(rr.seq, 0)
                    AND m.deleted_at IS NULL AND m.user_id <> p.user_id AND m.created_at <= $2)
)
SELECT w.room_id, w.user_id,
    (SELECT count(*) FROM messages AS m
     WHERE m.room_id = w.room_id AND m.seq > w.read_seq
       AND m.deleted_at IS NULL AND m.user_id <> w.user_id) AS unread,
    l.id AS last_id, l.user_id AS last_user, l.content AS last_content, l.seq AS last_seq
FROM waiting AS w
JOIN messages AS l ON l.id = (
    SELECT m.id FROM messages AS m
    WHERE m.room_id = w.room_id AND m.seq > w.read_seq
      AND m.deleted_at IS NULL AND m.user_id <> w.user_id
    ORDER BY m.seq DESC LIMIT 1)
ORDER BY w.room_id, w.user_id
LIMIT $3";

/// Records one notification (`$1` room, `$2` user, `$3` seq, `$4` at) unless
/// the user read up to `$3` meanwhile or was notified already; a row comes
/// back only when it was recorded.
const RECORD: &str = "\
INSERT INTO room_notifications (room_id, user_id, seq, notified_at)
SELECT $1, $2, $3, $4
WHERE NOT EXISTS (SELECT 1 FROM room_reads AS rr
                  WHERE rr.room_id = $1 AND rr.user_id = $2 AND rr.seq >= $3)
ON CONFLICT (room_id, user_id) DO NOTHING
RETURNING room_id";

const FORGET: &str = "DELETE FROM room_notifications WHERE room_id = $1 AND user_id = $2";

fn away_user(row: &QueryResult) -> Result<AwayUser, DomainError> {
    let get_i64 = |column: &str| row.try_get::<i64>("", column).map_err(map_db_err);
    let get_text = |column: &str| row.try_get::<String>("", column).map_err(map_db_err);
    let content = get_text("last_content")?;
    Ok(AwayUser {
        room_id: RoomId::new(get_i64("room_id")?)?,
        user_id: get_text("user_id")?,
        unread: u64::try_from(get_i64("unread")?).unwrap_or_default(),
        last_message: QuotedMessage::new(
            MessageId::new(get_i64("last_id")?)?,
            get_text("last_user")?,
            &content,
        ),
        last_seq: get_i64("last_seq")?,
    })
}

#[async_trait]
impl AwayNotifications for SqlStore {
    async fn due(
        &self,
        active_since: DateTime<Utc>,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<AwayUser>, DomainError> {
        let values = vec![active_since.into(), cutoff.into(), i64::from(limit).into()];
        let statement = self.statement(DUE, values);
        let rows = self.db.query_all_raw(statement).await.map_err(map_db_err)?;
        rows.iter().map(away_user).collect()
    }

    async fn notify(&self, users: &[AwayUser], at: DateTime<Utc>) -> Result<usize, DomainError> {
        let txn = self.begin_write().await?;
        let mut sent = 0;
        for user in users {
            let values = vec![
                user.room_id.get().into(),
                user.user_id.as_str().into(),
                user.last_seq.into(),
                at.into(),
            ];
            let statement = self.statement(RECORD, values);
            if txn.query_one_raw(statement).await.map_err(map_db_err)?.is_none() {
                continue;
            }
            if self.outbox {
                let event = ChatEvent::notification_requested(user, at);
                outbox::enqueue(&txn, &event).await.map_err(map_db_err)?;
            }
            sent += 1;
        }
        txn.commit().await.map_err(map_db_err)?;
        if sent > 0 {
            self.outbox_wrote();
        }
        Ok(sent)
    }

    async fn forget(&self, room: RoomId, user: &UserId) -> Result<(), DomainError> {
        let values = vec![room.get().into(), user.as_str().into()];
        let statement = self.statement(FORGET, values);
        self.db.execute_raw(statement).await.map_err(map_db_err)?;
        Ok(())
    }
}
