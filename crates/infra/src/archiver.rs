//! The archiving job: every interval, moves messages older than the configured
//! age to the archive, batch after batch (each its own short transaction, see
//! `sql/archive.rs`), pausing between batches so writers get the database in
//! between. Several instances may run it at once: their batches never overlap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::DomainError;

use crate::sql::SqlStore;

#[derive(Debug, Clone, Copy)]
pub struct ArchiveSettings {
    /// Messages created longer ago than this are archived.
    pub after: Duration,
    /// How often the job looks for them.
    pub interval: Duration,
    /// Messages moved per transaction.
    pub batch_size: u64,
}

/// Lets writers in between two batches (SQLite has a single write lock).
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// What the job reports for metrics.
#[derive(Debug, Default)]
pub struct ArchiveStatus {
    moved: AtomicU64,
    failures: AtomicU64,
}

impl ArchiveStatus {
    /// Messages archived since start.
    pub fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Runs that stopped on an error since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

pub struct Archiver {
    store: SqlStore,
    settings: ArchiveSettings,
    status: Arc<ArchiveStatus>,
}

impl Archiver {
    pub fn new(store: SqlStore, settings: ArchiveSettings) -> Self {
        Self { store, settings, status: Arc::default() }
    }

    pub fn status(&self) -> Arc<ArchiveStatus> {
        self.status.clone()
    }

    /// Runs the job in the background, the first run right away.
    pub fn spawn(self) -> Arc<ArchiveStatus> {
        let status = self.status();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.settings.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.run_once().await {
                    Ok(0) => {}
                    Ok(moved) => tracing::info!(moved, "messages archived"),
                    Err(error) => {
                        self.status.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "archiving stopped; the next run carries on");
                    }
                }
            }
        });
        status
    }

    /// Archives everything that is old enough now, batch by batch; returns how
    /// many messages were moved.
    pub async fn run_once(&self) -> Result<u64, DomainError> {
        let age = chrono::Duration::from_std(self.settings.after)
            .map_err(|_| DomainError::Internal("archive age out of range".to_owned()))?;
        let before = chat_domain::timestamp::now() - age;
        let mut total = 0;
        loop {
            let moved =
                self.store.archive_batch(before, self.settings.batch_size).await?.commit().await?;
            total += moved;
            self.status.moved.fetch_add(moved, Ordering::Relaxed);
            if moved < self.settings.batch_size {
                return Ok(total);
            }
            tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
        }
    }
}
