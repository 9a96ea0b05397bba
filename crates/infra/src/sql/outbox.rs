//! The transactional outbox on SQL: events enqueued inside the change's own
//! transaction, and batches claimed by the relay that publishes them.
//!
//! The rooms are split into partitions (room id modulo [`PARTITIONS`]); a batch
//! holds a few of them (Postgres advisory locks held by the batch's
//! transaction), so the relays of several instances share the work, never
//! publish the same event twice in normal operation, and each room's events
//! leave in commit order — and a slow instance holds back only the rooms of the
//! partitions it holds. A batch is marked sent only after the broker confirmed
//! it; a failed batch rolls back and is published again (at least once).

use async_trait::async_trait;
use chat_domain::ports::EventLog;
use chat_domain::{ChatEvent, CorrelationId, DomainError, timestamp};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend,
    DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use super::SqlStore;
use super::entity::outbox;
use super::errors::map_db_err;

/// The exchange every chat event goes to.
pub const CHAT_EVENTS_EXCHANGE: &str = "chat.events";
/// Arbitrary but fixed: the first of the advisory locks of the partitions.
const RELAY_LOCK: i64 = 0x6368_6174_5f6f_7574; // "chat_out"
/// Partitions of the rooms' events (room id modulo this).
const PARTITIONS: i64 = 16;
/// Partitions one batch holds at most: four instances relay at once.
const PARTITIONS_PER_BATCH: usize = 4;
/// Unsent events looked at to find the partitions with work.
const PROBE: i64 = 1000;

/// The partitions (of `$2`) with unsent events among the oldest `$1`.
const BUSY_PARTITIONS: &str = "\
SELECT DISTINCT p FROM (
    SELECT COALESCE(room_id, 0) % $2 AS p FROM outbox
    WHERE sent_at IS NULL ORDER BY id LIMIT $1
) AS oldest";

/// Up to `$2` unsent events of the partitions `$1` (of `$3`), in id order.
const UNSENT_OF: &str = "\
SELECT id, event_id, exchange, routing_key, payload, request_id FROM outbox
WHERE sent_at IS NULL AND COALESCE(room_id, 0) % $3 = ANY($1)
ORDER BY id LIMIT $2";

/// Adds `event` to the outbox within `conn` (the change's transaction).
pub(crate) async fn enqueue<C: ConnectionTrait>(conn: &C, event: &ChatEvent) -> Result<(), DbErr> {
    event_row(event)?.insert(conn).await.map(|_| ())
}

/// Adds rows made by [`event_row`] and [`notice_row`] within `conn`, in one statement.
pub(crate) async fn enqueue_rows<C: ConnectionTrait>(
    conn: &C,
    rows: Vec<outbox::ActiveModel>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    outbox::Entity::insert_many(rows).exec_without_returning(conn).await.map(|_| ())
}

/// The outbox row of `event`, with a new event id.
pub(crate) fn event_row(event: &ChatEvent) -> Result<outbox::ActiveModel, DbErr> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let mut payload = serde_json::to_value(event).map_err(|e| DbErr::Custom(e.to_string()))?;
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("event_id".to_owned(), event_id.clone().into());
    }
    let routing_key = event.event_type.routing_key();
    let row = Row { exchange: CHAT_EVENTS_EXCHANGE, routing_key, room: event.room_id };
    Ok(new_row(event_id, row, payload.to_string(), event.correlation_id.as_ref()))
}

/// Where an outbox row goes.
struct Row<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    room: chat_domain::RoomId,
}

fn new_row(
    event_id: String,
    row: Row<'_>,
    payload: String,
    request_id: Option<&CorrelationId>,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        event_id: Set(event_id),
        exchange: Set(row.exchange.to_owned()),
        routing_key: Set(row.routing_key.to_owned()),
        room_id: Set(Some(row.room.get())),
        payload: Set(payload),
        request_id: Set(request_id.map(|id| id.as_str().to_owned())),
        created_at: Set(timestamp::now()),
        sent_at: Set(None),
        ..Default::default()
    }
}

/// The GrainTrade notifications service's queue (default exchange).
pub const NOTIFICATIONS_QUEUE: &str = "message.events";

/// The outbox row of a conversation notice for the notifications service.
pub(crate) fn notice_row(
    notice: &chat_domain::conversation::NewMessageNotice,
    room: chat_domain::RoomId,
    request_id: Option<&CorrelationId>,
) -> Result<outbox::ActiveModel, DbErr> {
    let payload = serde_json::to_string(notice).map_err(|e| DbErr::Custom(e.to_string()))?;
    let event_id = uuid::Uuid::new_v4().to_string();
    // The default exchange routes by queue name.
    let row = Row { exchange: "", routing_key: NOTIFICATIONS_QUEUE, room };
    Ok(new_row(event_id, row, payload, request_id))
}

/// An event waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: i64,
    pub event_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub payload: String,
    /// The request that caused the event: the `x-request-id` header.
    pub request_id: Option<String>,
}

impl From<outbox::Model> for OutboxEvent {
    fn from(row: outbox::Model) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            exchange: row.exchange,
            routing_key: row.routing_key,
            payload: row.payload,
            request_id: row.request_id,
        }
    }
}

/// Events claimed for publishing. On Postgres the claim is the transaction
/// holding the relay lock (dropping the batch unpublished releases it); SQLite
/// has one relay and no claim, so nothing holds its single write lock meanwhile.
pub struct OutboxBatch {
    claim: Option<DatabaseTransaction>,
    store: SqlStore,
    pub events: Vec<OutboxEvent>,
}

impl OutboxBatch {
    /// Marks the batch sent (after the broker confirmed it) and releases it.
    pub async fn mark_sent(self) -> Result<(), DomainError> {
        let ids: Vec<i64> = self.events.iter().map(|e| e.id).collect();
        let txn = match self.claim {
            Some(txn) => txn,
            None => self.store.begin_write().await?,
        };
        outbox::Entity::update_many()
            .col_expr(outbox::Column::SentAt, Expr::value(Some(timestamp::now())))
            .filter(outbox::Column::Id.is_in(ids))
            .exec(&txn)
            .await
            .map_err(map_db_err)?;
        txn.commit().await.map_err(map_db_err)
    }
}

/// Backlog figures for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    pub backlog: u64,
    pub oldest: Option<DateTime<Utc>>,
}

impl SqlStore {
    /// Claims up to `limit` unsent events in id order; `None` when another
    /// instance's relay holds every partition with work.
    pub async fn claim_outbox(&self, limit: u64) -> Result<Option<OutboxBatch>, DomainError> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            // One instance on SQLite: no claim, so nothing holds its single
            // write lock while the batch is published.
            let rows = outbox::Entity::find()
                .filter(outbox::Column::SentAt.is_null())
                .order_by_asc(outbox::Column::Id)
                .limit(limit)
                .all(&self.db)
                .await
                .map_err(map_db_err)?;
            let events = rows.into_iter().map(OutboxEvent::from).collect();
            return Ok(Some(OutboxBatch { claim: None, store: self.clone(), events }));
        }
        let txn = self.begin_write().await?;
        let postgres = |sql: &str, values: Vec<sea_orm::Value>| {
            Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
        };
        let busy = txn
            .query_all_raw(postgres(BUSY_PARTITIONS, vec![PROBE.into(), PARTITIONS.into()]))
            .await
            .map_err(map_db_err)?
            .iter()
            .map(|row| row.try_get::<i64>("", "p"))
            .collect::<Result<Vec<i64>, _>>()
            .map_err(map_db_err)?;
        if busy.is_empty() {
            return Ok(Some(OutboxBatch { claim: Some(txn), store: self.clone(), events: vec![] }));
        }
        // Each claim starts at another partition, so no partition waits for
        // the others to be empty.
        let start = timestamp::now().timestamp_subsec_nanos() as usize % busy.len();
        let mut held: Vec<i64> = Vec::with_capacity(PARTITIONS_PER_BATCH);
        for partition in busy.iter().cycle().skip(start).take(busy.len()) {
            let lock = postgres(
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                vec![RELAY_LOCK.wrapping_add(*partition).into()],
            );
            let locked = txn
                .query_one_raw(lock)
                .await
                .map_err(map_db_err)?
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()
                .map_err(map_db_err)?
                .unwrap_or(false);
            if locked {
                held.push(*partition);
                if held.len() == PARTITIONS_PER_BATCH {
                    break;
                }
            }
        }
        if held.is_empty() {
            return Ok(None);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = txn
            .query_all_raw(postgres(UNSENT_OF, vec![held.into(), limit.into(), PARTITIONS.into()]))
            .await
            .map_err(map_db_err)?;
        let events = rows
            .iter()
            .map(|row| {
                let text = |column: &str| row.try_get::<String>("", column);
                Ok(OutboxEvent {
                    id: row.try_get::<i64>("", "id")?,
                    event_id: text("event_id")?,
                    exchange: text("exchange")?,
                    routing_key: text("routing_key")?,
                    payload: text("payload")?,
                    request_id: row.try_get::<Option<String>>("", "request_id")?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()
            .map_err(map_db_err)?;
        Ok(Some(OutboxBatch { claim: Some(txn), store: self.clone(), events }))
    }

    /// Deletes events sent before `before`; returns how many.
    pub async fn prune_outbox(&self, before: DateTime<Utc>) -> Result<u64, DomainError> {
        let result = outbox::Entity::delete_many()
            .filter(outbox::Column::SentAt.lt(before))
            .exec(&self.db)
            .await
            .map_err(map_db_err)?;
        Ok(result.rows_affected)
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, DomainError> {
        let pending = outbox::Entity::find().filter(outbox::Column::SentAt.is_null());
        let backlog = pending.clone().count(&self.db).await.map_err(map_db_err)?;
        let oldest = pending
            .order_by_asc(outbox::Column::Id)
            .one(&self.db)
            .await
            .map_err(map_db_err)?
            .map(|row| row.created_at);
        Ok(OutboxStats { backlog, oldest })
    }
}

#[async_trait]
impl EventLog for SqlStore {
    async fn record(&self, event: ChatEvent) -> Result<(), DomainError> {
        if !self.outbox {
            return Ok(());
        }
        enqueue(&self.db, &event).await.map_err(map_db_err)?;
        self.outbox_wrote();
        Ok(())
    }
}
