//! RabbitMQ adapters (amqprs): the relay that publishes the outbox to the
//! durable topic exchange `chat.events` with publisher confirms.

mod commands;
mod confirms;
mod relay;
mod url;

pub use commands::CommandConsumer;
pub use relay::{OutboxRelay, RelaySettings, RelayStatus};
pub use url::connection_arguments;
