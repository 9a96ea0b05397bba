//! Figures of the SQL adapter for monitoring: messages it committed and the
//! state of its connection pool. Read when metrics are scraped.

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::DatabaseBackend;

use super::SqlStore;

/// Counts kept by the store since start.
#[derive(Debug, Default)]
pub struct StoreStats {
    messages_persisted: AtomicU64,
}

impl StoreStats {
    /// New messages committed (idempotent repeats not counted).
    pub fn messages_persisted(&self) -> u64 {
        self.messages_persisted.load(Ordering::Relaxed)
    }

    pub(crate) fn messages_persisted_add(&self, count: u64) {
        self.messages_persisted.fetch_add(count, Ordering::Relaxed);
    }
}

/// The connection pool right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

impl SqlStore {
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    pub fn pool_stats(&self) -> Option<PoolStats> {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                Some(PoolStats {
                    open: pool.size(),
                    idle: pool.num_idle() as u32,
                    max: pool.options().get_max_connections(),
                })
            }
            DatabaseBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                Some(PoolStats {
                    open: pool.size(),
                    idle: pool.num_idle() as u32,
                    max: pool.options().get_max_connections(),
                })
            }
            _ => None,
        }
    }
}
