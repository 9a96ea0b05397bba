//! `chat-room migrate up|down|status|fresh`: the schema migrations, run on the
//! connection the service itself opens (the same settings, URL forms, time-outs
//! and one-line errors).

use std::time::Duration;

use chat_infra::sql::{ConnectError, normalize_url};
use chat_infra::{DatabaseSettings, SqlStore};
use migration::{MigrationStatus, Migrator, MigratorTrait};
use thiserror::Error;

use crate::cli::Migrate;
use crate::settings::Settings;

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(
        "no database file {path} (DATABASE_URL {url}): `chat-room migrate up`, or starting the service, creates it"
    )]
    NoFile { path: String, url: String },
    #[error("migrate {command} failed: {reason}")]
    Failed { command: &'static str, reason: String },
}

/// Runs `action` against `DATABASE_URL`.
pub async fn run(settings: &Settings, action: Migrate) -> Result<(), MigrateError> {
    let url = normalize_url(&settings.database_url)?;
    // Looking at or rolling back a database that is not there must not create it.
    if matches!(action, Migrate::Status | Migrate::Down { .. })
        && let Some(path) = sqlite_file(&url)
        && !std::path::Path::new(path).exists()
    {
        return Err(MigrateError::NoFile {
            path: path.to_owned(),
            url: chat_infra::sql::redact(&settings.database_url),
        });
    }
    let store = SqlStore::open(&DatabaseSettings {
        url: settings.database_url.clone(),
        max_connections: 1,
        connect_timeout: Duration::from_secs(settings.database_connect_timeout_secs),
        run_migrations: false,
        outbox: false,
    })
    .await?;
    let db = store.connection();
    let failed = |command: &'static str| {
        move |e: migration::DbErr| MigrateError::Failed { command, reason: e.to_string() }
    };
    match action {
        Migrate::Up { steps } => {
            let pending = Migrator::get_pending_migrations(db).await.map_err(failed("up"))?.len();
            Migrator::up(db, steps).await.map_err(failed("up"))?;
            let applied = steps.map_or(pending, |n| pending.min(n as usize));
            tracing::info!(applied, backend = store.backend_name(), "migrations applied");
        }
        Migrate::Down { steps } => {
            Migrator::down(db, Some(steps)).await.map_err(failed("down"))?;
            tracing::info!(steps, "migrations rolled back");
        }
        Migrate::Status => {
            let all = Migrator::get_migration_with_status_read_only(db)
                .await
                .map_err(failed("status"))?;
            for migration in &all {
                let status = match migration.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                tracing::info!(status, "{}", migration.name());
            }
            let pending = all.iter().filter(|m| m.status() == MigrationStatus::Pending).count();
            tracing::info!(total = all.len(), pending, backend = store.backend_name(), "status");
        }
        Migrate::Fresh => {
            Migrator::fresh(db).await.map_err(failed("fresh"))?;
            tracing::info!("every table dropped and every migration applied");
        }
    }
    Ok(())
}

/// The file of a SQLite URL (as normalised), `None` for Postgres and in-memory databases.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_files() {
        assert_eq!(sqlite_file("sqlite://chat.db?mode=rwc"), Some("chat.db"));
        assert_eq!(sqlite_file("sqlite:///tmp/x.db?mode=rwc"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite://./chat.db"), Some("./chat.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
