//! The outbox relay: claims unsent events in id order, publishes them
//! persistent (AMQP `message_id` = `event_id`) to their exchange, waits for the
//! broker's confirms, then marks them sent. A broker that is down, restarting
//! or refusing leaves the events in the outbox; the relay reconnects with
//! backoff and drains them. Sent events are pruned after the retention period.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::{BasicProperties, FieldName, FieldTable, FieldValue};
use tokio::sync::mpsc;

use super::confirms::{Confirm, ConfirmCallback};
use crate::sql::SqlStore;
use crate::sql::outbox::{CHAT_EVENTS_EXCHANGE, OutboxEvent};

/// The AMQP header that carries the id of the request that caused an event.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub url: String,
    pub batch_size: u64,
    /// How often an idle relay looks for events written by other instances.
    pub idle_poll: Duration,
    /// How long a publish may wait for the broker's confirm.
    pub confirm_timeout: Duration,
    /// Sent events older than this are deleted.
    pub retention: Duration,
}

/// What the relay reports for health and metrics.
#[derive(Debug, Default)]
pub struct RelayStatus {
    connected: AtomicBool,
    published: AtomicU64,
    failures: AtomicU64,
    backlog: AtomicU64,
    oldest_age_secs: AtomicU64,
}

impl RelayStatus {
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Events confirmed by the broker since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Failed connection attempts and failed batches since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// Unsent events and the age of the oldest, as last measured (every 10 s).
    pub fn backlog(&self) -> (u64, Duration) {
        (
            self.backlog.load(Ordering::Acquire),
            Duration::from_secs(self.oldest_age_secs.load(Ordering::Acquire)),
        )
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] amqprs::error::Error),
    #[error("the broker refused event {0}")]
    Nacked(u64),
    #[error("no confirm from the broker in time")]
    ConfirmTimeout,
    #[error("storage: {0}")]
    Storage(#[from] chat_domain::DomainError),
    #[error("the connection to the broker is closed")]
    Closed,
}

pub struct OutboxRelay {
    store: SqlStore,
    settings: RelaySettings,
    status: Arc<RelayStatus>,
}

/// An open connection with a confirm-mode channel.
struct Link {
    connection: Connection,
    channel: Channel,
    confirms: mpsc::Receiver<Confirm>,
    next_tag: u64,
}

impl OutboxRelay {
    /// Starts relaying in the background; returns its status handle.
    pub fn spawn(store: SqlStore, settings: RelaySettings) -> Arc<RelayStatus> {
        let status = Arc::new(RelayStatus::default());
        tokio::spawn(measure_backlog(store.clone(), status.clone()));
        let relay = Self { store, settings, status: status.clone() };
        tokio::spawn(relay.run());
        status
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.connect().await {
                Ok(mut link) => {
                    tracing::info!("event relay connected to RabbitMQ");
                    self.status.connected.store(true, Ordering::Release);
                    backoff = Duration::from_millis(100);
                    let error = self.drain(&mut link).await;
                    self.status.connected.store(false, Ordering::Release);
                    self.status.failures.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(%error, "event relay lost RabbitMQ; events stay in the outbox");
                    let _ = link.connection.close().await;
                }
                Err(error) => {
                    self.status.failures.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(%error, retry_in = ?backoff, "event relay cannot reach RabbitMQ");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn connect(&self) -> Result<Link, RelayError> {
        let arguments = super::url::connection_arguments(&self.settings.url)?;
        let connection = tokio::time::timeout(Duration::from_secs(5), Connection::open(&arguments))
            .await
            .map_err(|_| RelayError::Closed)??;
        let channel = connection.open_channel(None).await?;
        let (tx, confirms) = mpsc::channel(self.settings.batch_size as usize * 2 + 16);
        channel.register_callback(ConfirmCallback { tx }).await?;
        channel
            .exchange_declare(
                ExchangeDeclareArguments::new(CHAT_EVENTS_EXCHANGE, "topic").durable(true).finish(),
            )
            .await?;
        // The notifications service's queue (GrainTrade compatibility).
        channel
            .queue_declare(QueueDeclareArguments::new("message.events").durable(true).finish())
            .await?;
        channel.confirm_select(ConfirmSelectArguments::default()).await?;
        Ok(Link { connection, channel, confirms, next_tag: 1 })
    }

    /// Publishes batches until the link fails; returns why it stopped.
    async fn drain(&self, link: &mut Link) -> RelayError {
        let mut last_prune = Instant::now();
        loop {
            if !link.connection.is_open() || !link.channel.is_open() {
                return RelayError::Closed;
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = Instant::now();
                self.prune().await;
            }
            let batch = match self.store.claim_outbox(self.settings.batch_size).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "event relay cannot read the outbox");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(batch) = batch.filter(|b| !b.events.is_empty()) else {
                tokio::select! {
                    () = self.store.outbox_written() => {}
                    () = tokio::time::sleep(self.settings.idle_poll) => {}
                }
                continue;
            };
            let count = batch.events.len() as u64;
            if let Err(error) = self.publish(link, &batch.events).await {
                return error;
            }
            if let Err(error) = batch.mark_sent().await {
                // Published but not marked: they go out again (at least once).
                tracing::warn!(%error, "cannot mark events sent; they will be published again");
                continue;
            }
            self.status.published.fetch_add(count, Ordering::AcqRel);
        }
    }

    async fn publish(&self, link: &mut Link, events: &[OutboxEvent]) -> Result<(), RelayError> {
        let mut pending = BTreeSet::new();
        for event in events {
            let mut properties = BasicProperties::default();
            properties
                .with_persistence(true)
                .with_message_id(&event.event_id)
                .with_content_type("application/json");
            if let Some(headers) = request_id_header(event.request_id.as_deref()) {
                properties.with_headers(headers);
            }
            let arguments = BasicPublishArguments::new(&event.exchange, &event.routing_key);
            link.channel
                .basic_publish(properties.finish(), event.payload.clone().into_bytes(), arguments)
                .await?;
            pending.insert(link.next_tag);
            link.next_tag += 1;
        }
        let deadline = tokio::time::Instant::now() + self.settings.confirm_timeout;
        while !pending.is_empty() {
            let confirm = tokio::time::timeout_at(deadline, link.confirms.recv())
                .await
                .map_err(|_| RelayError::ConfirmTimeout)?
                .ok_or(RelayError::Closed)?;
            if !confirm.ack {
                return Err(RelayError::Nacked(confirm.tag));
            }
            if confirm.multiple {
                pending = pending.split_off(&(confirm.tag + 1));
            } else {
                pending.remove(&confirm.tag);
            }
        }
        Ok(())
    }

    async fn prune(&self) {
        let Ok(retention) = chrono::Duration::from_std(self.settings.retention) else {
            return;
        };
        match self.store.prune_outbox(chat_domain::timestamp::now() - retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned sent events from the outbox"),
            Err(error) => tracing::warn!(%error, "cannot prune the outbox"),
        }
    }
}

/// The `x-request-id` header of an event caused by a request.
fn request_id_header(request_id: Option<&str>) -> Option<FieldTable> {
    let name = FieldName::try_from(REQUEST_ID_HEADER).ok()?;
    let mut headers = FieldTable::new();
    headers.insert(name, FieldValue::from(request_id?.to_owned()));
    Some(headers)
}

/// Keeps the backlog figures current, and says so in the log when it grows old.
async fn measure_backlog(store: SqlStore, status: Arc<RelayStatus>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    loop {
        ticks.tick().await;
        let Ok(stats) = store.outbox_stats().await else { continue };
        let age = stats
            .oldest
            .map(|oldest| (chat_domain::timestamp::now() - oldest).num_seconds().max(0) as u64)
            .unwrap_or(0);
        status.backlog.store(stats.backlog, Ordering::Release);
        status.oldest_age_secs.store(age, Ordering::Release);
        if age > 60 {
            tracing::warn!(
                backlog = stats.backlog,
                oldest_age_secs = age,
                "events are waiting in the outbox"
            );
        }
    }
}
