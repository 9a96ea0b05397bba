//! `cargo run -p migration -- up|down|status|fresh|refresh|reset` against `DATABASE_URL`
//! (or the service's default SQLite file when it is unset).

use sea_orm_migration::sea_orm::{ConnectOptions, Database};

/// The service's embedded default; keep in step with `config/default.toml`.
const DEFAULT_DATABASE_URL: &str = "sqlite://chat.db?mode=rwc";

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli_with_custom_connection(migration::Migrator, async || {
        let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        Database::connect(ConnectOptions::new(url).sqlx_logging(false).to_owned()).await
    })
    .await;
}
