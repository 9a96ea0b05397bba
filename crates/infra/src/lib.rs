//! Adapters that plug the chat domain's ports into real infrastructure: SQL
//! storage on PostgreSQL or SQLite through sea-orm (one code path for both).
//! Every driver error is translated to a `DomainError` here, at the seam.

pub mod archiver;
pub mod away_notifier;
pub mod cache;
pub mod circuit;
pub mod group_commit;
pub mod limits;
pub mod memory;
pub mod offer_expirer;
pub mod rabbit;
pub mod redis;
pub mod sql;

pub use sql::{DatabaseSettings, SqlStore};
