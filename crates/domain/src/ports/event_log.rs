//! The event log: integration events that no database change carries with it
//! (presence), stored for delivery to other services. Events of database changes
//! are written by the repositories in the change's own transaction.

use async_trait::async_trait;

use crate::{ChatEvent, DomainError};

#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    async fn record(&self, event: ChatEvent) -> Result<(), DomainError>;
}

/// Records nothing: for a service without a broker, and for tools.
pub struct NoEventLog;

#[async_trait]
impl EventLog for NoEventLog {
    async fn record(&self, _event: ChatEvent) -> Result<(), DomainError> {
        Ok(())
    }
}
