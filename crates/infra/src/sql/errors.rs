//! The one place where database errors become domain errors: lost connections
//! and pool time-outs are `Unavailable` (503), anything else is `Internal` (500)
//! with the detail logged rather than shown.

use chat_domain::DomainError;
use sea_orm::{DbErr, RuntimeErr};

pub(crate) fn map_db_err(err: DbErr) -> DomainError {
    if is_unavailable(&err) {
        tracing::warn!(error = %err, "database unavailable");
        DomainError::Unavailable("database".to_owned())
    } else {
        tracing::error!(error = %err, "database error");
        DomainError::Internal("database error".to_owned())
    }
}

fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            use sea_orm::sqlx::Error as Sqlx;
            matches!(
                e.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
                    | Sqlx::Tls(_)
            )
        }
        _ => false,
    }
}
