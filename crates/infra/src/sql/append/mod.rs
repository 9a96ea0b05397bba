//! Appending a batch of new messages (the storage half of group commit): the
//! whole batch in one transaction, one WAL flush, a fixed number of statements
//! whatever its size. Postgres does it in one statement (`postgres.rs`), SQLite
//! step by step inside one transaction (`portable.rs`); both give every message
//! its own outcome and leave no seq gap a reader could see.

mod participants;
mod portable;
mod postgres;

pub(crate) use participants::Participants;

use chat_domain::{ChatEvent, DomainError, Message, NewMessage, Posted};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction};

use super::errors::map_db_err;
use super::{SqlStore, outbox};

/// Who sent which idempotency key where.
type Key<'a> = (i64, &'a str, &'a str);

/// How often a Postgres batch is tried again after losing a race with another
/// instance storing the same `client_msg_id` (each try sees the winner's commit).
const RACED_TRIES: usize = 3;

/// What becomes of one message of the batch.
#[derive(Clone)]
enum Plan {
    /// The room does not exist or is deleted.
    NoRoom(i64),
    /// It answers a message (this id) that is not a live message of its room.
    BadReply(i64),
    /// A repeat of a message stored before.
    Original(Message),
    /// A repeat of the `n`th message stored by this batch.
    RepeatOf(usize),
    /// Stored as the `n`th new row.
    Store(usize),
}

/// The plans of a batch and the rows it stored, in the order of the batch.
struct Appended {
    plans: Vec<Plan>,
    stored: Vec<Message>,
}

impl Appended {
    fn outcomes(&self) -> Vec<Result<Posted, DomainError>> {
        self.plans
            .iter()
            .map(|plan| match plan {
                Plan::NoRoom(room) => Err(DomainError::NotFound(format!("room {room} not found"))),
                Plan::BadReply(id) => Err(DomainError::validation(
                    "reply_to",
                    format!("message {id} is not a live message of this room"),
                )),
                Plan::Original(original) => Ok(Posted::Duplicate(original.clone())),
                Plan::RepeatOf(n) => Ok(Posted::Duplicate(self.stored[*n].clone())),
                Plan::Store(n) => Ok(Posted::Created(self.stored[*n].clone())),
            })
            .collect()
    }
}

/// Messages stored inside another change's transaction, not yet committed.
pub(crate) struct Within {
    pairs: Vec<participants::Pair>,
    appended: Appended,
}

impl Within {
    /// Each message's outcome, in the order of the batch.
    pub(crate) fn outcomes(&self) -> Vec<Result<Posted, DomainError>> {
        self.appended.outcomes()
    }
}

impl SqlStore {
    pub(crate) async fn append_messages(
        &self,
        batch: &[NewMessage],
    ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // New (room, poster) pairs are recorded in the batch's own transaction.
        let pairs = self.participants.unknown(batch);
        let appended = if self.db.get_database_backend() == DatabaseBackend::Postgres {
            self.append_on_postgres(batch, &pairs).await?
        } else {
            let txn = self.begin_write().await?;
            let appended = portable::append(&txn, batch, &pairs).await?;
            self.enqueue_events(&txn, batch, &appended).await?;
            txn.commit().await.map_err(map_db_err)?;
            appended
        };
        self.participants.stored(pairs, &appended.stored);
        self.stats.messages_persisted_add(appended.stored.len() as u64);
        if !appended.stored.is_empty() {
            self.outbox_wrote();
        }

        Ok(appended.outcomes())
    }

    /// Stores `batch` inside `txn`, another change's transaction (an offer's),
    /// with its `message_created` events, step by step as on SQLite (the same
    /// room lock and seqs as every batch). The caller commits, then hands the
    /// result to [`SqlStore::committed_within`].
    pub(crate) async fn append_within(
        &self,
        txn: &DatabaseTransaction,
        batch: &[NewMessage],
    ) -> Result<Within, DomainError> {
        let pairs = self.participants.unknown(batch);
        let appended = portable::append(txn, batch, &pairs).await?;
        self.enqueue_events(txn, batch, &appended).await?;
        Ok(Within { pairs, appended })
    }

    /// After the transaction of [`SqlStore::append_within`] committed.
    pub(crate) fn committed_within(&self, within: Within) {
        let Within { pairs, appended } = within;
        self.participants.stored(pairs, &appended.stored);
        self.stats.messages_persisted_add(appended.stored.len() as u64);
        self.outbox_wrote();
    }

    /// Without a broker the batch is one statement in its own (implicit)
    /// transaction: one round trip. With one, its outbox rows join it in an
    /// explicit transaction.
    async fn append_on_postgres(
        &self,
        batch: &[NewMessage],
        pairs: &[participants::Pair],
    ) -> Result<Appended, DomainError> {
        for _ in 0..RACED_TRIES {
            let appended = if self.outbox {
                let txn = self.begin_write().await?;
                let Some(appended) = postgres::append(&txn, batch, pairs).await? else { continue };
                self.enqueue_events(&txn, batch, &appended).await?;
                txn.commit().await.map_err(map_db_err)?;
                Some(appended)
            } else {
                postgres::append(&self.db, batch, pairs).await?
            };
            if let Some(appended) = appended {
                return Ok(appended);
            }
        }
        Err(DomainError::Internal("a batch kept racing another writer of its keys".into()))
    }

    /// One `message_created` event (and a conversation's notice) per stored
    /// message, written in the batch's transaction, when a broker relays them.
    async fn enqueue_events<C: ConnectionTrait>(
        &self,
        conn: &C,
        batch: &[NewMessage],
        appended: &Appended,
    ) -> Result<(), DomainError> {
        if !self.outbox {
            return Ok(());
        }
        let mut events = Vec::with_capacity(appended.stored.len());
        for (new, plan) in batch.iter().zip(&appended.plans) {
            let Plan::Store(n) = plan else { continue };
            let message = &appended.stored[*n];
            let event =
                ChatEvent::message_created(message).with_correlation(new.correlation_id.clone());
            events.push(outbox::event_row(&event).map_err(map_db_err)?);
            if let Some(notice) = new.notice() {
                let notice =
                    outbox::notice_row(&notice, message.room_id, new.correlation_id.as_ref());
                events.push(notice.map_err(map_db_err)?);
            }
        }
        outbox::enqueue_rows(conn, events).await.map_err(map_db_err)
    }
}
