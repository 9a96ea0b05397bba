//! Opening the database pool from `DATABASE_URL`, SQLite tuning, and migrations.
//!
//! Accepts the seed's SQLAlchemy-style URLs (`sqlite+aiosqlite:///./chat.db`,
//! `postgresql+asyncpg://…`) as well as plain `sqlite://` and `postgres://` ones.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use thiserror::Error;

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub run_migrations: bool,
    /// Write integration events to the outbox (a broker is configured).
    pub outbox: bool,
}

#[derive(Debug, Error)]
pub enum ConnectError {
    #[error("DATABASE_URL {url:?} is not a sqlite:// or postgres:// URL")]
    UnsupportedUrl { url: String },
    #[error("cannot connect to DATABASE_URL {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("database migrations failed: {0}")]
    Migration(String),
}

/// Turns the URL forms the service accepts into the one sqlx understands; the
/// SQLite file is created when missing.
pub fn normalize_url(raw: &str) -> Result<String, ConnectError> {
    let unsupported = || ConnectError::UnsupportedUrl { url: redact(raw) };
    if raw == "sqlite::memory:" {
        return Ok(raw.to_owned());
    }
    let (scheme, rest) = raw.split_once("://").ok_or_else(unsupported)?;
    let (base, driver) = match scheme.split_once('+') {
        Some((base, driver)) => (base, Some(driver)),
        None => (scheme, None),
    };
    match base {
        "postgres" | "postgresql" => Ok(format!("postgres://{rest}")),
        "sqlite" => {
            // SQLAlchemy writes `sqlite:///relative/path` and `sqlite:////abs/path`.
            let path = match driver {
                Some(_) => rest.strip_prefix('/').unwrap_or(rest),
                None => rest,
            };
            if path.is_empty() {
                return Err(unsupported());
            }
            if path.contains(":memory:") || path.contains("mode=") {
                Ok(format!("sqlite://{path}"))
            } else if path.contains('?') {
                Ok(format!("sqlite://{path}&mode=rwc"))
            } else {
                Ok(format!("sqlite://{path}?mode=rwc"))
            }
        }
        _ => Err(unsupported()),
    }
}

/// The URL with any password masked, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

pub(crate) async fn connect(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, ConnectError> {
    let url = normalize_url(&settings.url)?;
    let in_memory = url.contains(":memory:");
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(if in_memory { 1 } else { settings.max_connections })
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout)
        .sqlx_logging(false)
        // No ping before each use: a dead connection fails its statement as
        // `unavailable` just the same, and the ping was a round trip per batch.
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers run beside the single writer; the busy timeout makes
            // concurrent writers queue instead of failing with SQLITE_BUSY.
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    if let Ok(pg) = url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>() {
        let port = pg.get_port();
        options.map_sqlx_postgres_pool_opts(move |pool| {
            pool.after_connect(move |_connection, _meta| {
                super::nodelay::disable_nagle(port);
                Box::pin(async { Ok(()) })
            })
        });
    }
    if in_memory {
        // Every new connection to `:memory:` is a new, empty database: keep one forever.
        options.min_connections(1).idle_timeout(None).max_lifetime(None);
    }
    Database::connect(options)
        .await
        .map_err(|e| ConnectError::Unreachable { url: redact(&url), reason: e.to_string() })
}

pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<(), ConnectError> {
    Migrator::up(db, None).await.map_err(|e| ConnectError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_url_forms() {
        assert_eq!(
            normalize_url("sqlite+aiosqlite:///./chat.db").unwrap(),
            "sqlite://./chat.db?mode=rwc"
        );
        assert_eq!(normalize_url("sqlite:///tmp/x.db").unwrap(), "sqlite:///tmp/x.db?mode=rwc");
        assert_eq!(
            normalize_url("sqlite://chat.db?mode=rwc").unwrap(),
            "sqlite://chat.db?mode=rwc"
        );
        assert_eq!(normalize_url("sqlite::memory:").unwrap(), "sqlite::memory:");
        assert_eq!(normalize_url("sqlite://:memory:").unwrap(), "sqlite://:memory:");
        assert_eq!(
            normalize_url("postgresql+asyncpg://u:p@h:5432/db").unwrap(),
            "postgres://u:p@h:5432/db"
        );
        assert_eq!(normalize_url("postgres://h/db").unwrap(), "postgres://h/db");
    }

    #[test]
    fn rejects_other_urls() {
        assert!(normalize_url("mysql://h/db").is_err());
        assert!(normalize_url("not a url").is_err());
        assert!(normalize_url("sqlite://").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
