//! The transactional outbox on SQL: events enqueued inside the change's own
//! transaction, and batches claimed by the relay that publishes them.
//!
//! One relay publishes at a time (a Postgres advisory lock held by the batch's
//! transaction), so several instances never publish the same event twice in
//! normal operation and each room's events leave in commit order. A batch is
//! marked sent only after the broker confirmed it; a failed batch rolls back and
//! is published again (at least once).

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
/// Arbitrary but fixed: the advisory lock that elects the one active relay.
const RELAY_LOCK: i64 = 0x6368_6174_5f6f_7574; // "chat_out"

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
    /// instance's relay holds the claim.
    pub async fn claim_outbox(&self, limit: u64) -> Result<Option<OutboxBatch>, DomainError> {
        let claim = if self.db.get_database_backend() == DatabaseBackend::Postgres {
            let txn = self.begin_write().await?;
            let locked = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1) AS locked",
                    [RELAY_LOCK.into()],
                ))
                .await
                .map_err(map_db_err)?
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()
                .map_err(map_db_err)?
                .unwrap_or(false);
            if !locked {
                return Ok(None);
            }
            Some(txn)
        } else {
            None
        };
        let unsent = outbox::Entity::find()
            .filter(outbox::Column::SentAt.is_null())
            .order_by_asc(outbox::Column::Id)
            .limit(limit);
        let rows = match &claim {
            Some(txn) => unsent.all(txn).await,
            None => unsent.all(&self.db).await,
        }
        .map_err(map_db_err)?;
        let events = rows
            .into_iter()
            .map(|r| OutboxEvent {
                id: r.id,
                event_id: r.event_id,
                exchange: r.exchange,
                routing_key: r.routing_key,
                payload: r.payload,
                request_id: r.request_id,
            })
            .collect();
        Ok(Some(OutboxBatch { claim, store: self.clone(), events }))
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
