//! SQL storage: connection set-up, the sea-orm entities and the repository
//! adapters, working unchanged on PostgreSQL and SQLite.

mod append;
pub mod archive;
mod away;
mod connect;
mod deadline;
mod entity;
mod errors;
mod message_table;
mod messages;
mod nodelay;
mod offers;
pub mod outbox;
mod reactions;
mod read_state;
mod rooms;
mod search;
mod stats;
mod versions;

use sea_orm::DatabaseConnection;

pub use connect::{DatabaseSettings, normalize_url, redact};
pub use deadline::Deadline;
#[doc(hidden)]
pub use message_table::history_statements;
pub use stats::{PoolStats, StoreStats};

/// The SQL adapter for both repository ports. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: DatabaseConnection,
    /// Whether changes also write their integration events to the outbox
    /// (only when a broker is configured, so the outbox does not grow otherwise).
    outbox: bool,
    /// Poked after a change wrote to the outbox, so the relay need not poll.
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
    stats: std::sync::Arc<StoreStats>,
    /// (room, poster) pairs known to have their `room_reads` row.
    participants: std::sync::Arc<append::Participants>,
}

impl SqlStore {
    /// Connects, and applies pending migrations when asked to.
    pub async fn open(settings: &DatabaseSettings) -> Result<Self, connect::ConnectError> {
        let db = connect::connect(settings).await?;
        if settings.run_migrations {
            connect::migrate(&db).await?;
        }
        Ok(Self {
            db,
            outbox: settings.outbox,
            outbox_signal: Default::default(),
            stats: Default::default(),
            participants: Default::default(),
        })
    }

    /// A transaction that writes. On SQLite it takes the write lock at `BEGIN`
    /// (IMMEDIATE): a deferred one that reads first can fail with "database is
    /// locked" when another writer commits in between, without waiting.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sea_orm::DatabaseTransaction, chat_domain::DomainError> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        self.db.begin_with_options(options).await.map_err(errors::map_db_err)
    }

    /// Resolves when a change of this process wrote to the outbox.
    pub async fn outbox_written(&self) {
        self.outbox_signal.notified().await;
    }

    fn outbox_wrote(&self) {
        if self.outbox {
            self.outbox_signal.notify_one();
        }
    }

    /// A round trip to the database, for health checks.
    pub async fn ping(&self) -> Result<(), chat_domain::DomainError> {
        self.db.ping().await.map_err(errors::map_db_err)
    }

    /// The pool, so `chat-room migrate` runs the migrations on the very
    /// connection the service opens (same URL forms, options and errors).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The backend's name: `postgres` or `sqlite`.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "postgres",
            sea_orm::DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }
}

pub use connect::ConnectError;
