//! The outbox relay: claims unsent events in id order, publishes them
//! persistent (AMQP `message_id` = `event_id`) to their exchange, waits for the
//! broker's confirms, then marks them sent. A broker that is down, restarting
//! or refusing leaves the events in the outbox and opens the relay's circuit:
//! nothing but its probe reaches the broker until the probe gets an answer, then
//! the relay reconnects and drains them. Every storage call of the relay is
//! bounded by the storage deadline. Sent events are pruned after the retention period.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amqprs::channel::{
    BasicPublishArguments, Channel, ConfirmSelectArguments, ExchangeDeclareArguments,
    QueueDeclareArguments,
};
use amqprs::connection::Connection;
use amqprs::{BasicProperties, FieldName, FieldTable, FieldValue};
use chat_domain::DomainError;
use tokio::sync::mpsc;

use super::confirms::{Confirm, ConfirmCallback};
use crate::circuit::{Circuit, CircuitSettings, Gate, Probe, Refusal};
use crate::sql::SqlStore;
use crate::sql::outbox::{CHAT_EVENTS_EXCHANGE, OutboxEvent};

/// The AMQP header that carries the id of the request that caused an event.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest a connection (and a probe's) may take to open, or to close.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

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
    /// The longest one storage call of the relay may take (`DATABASE_QUERY_TIMEOUT_SECS`).
    pub storage_timeout: Duration,
}

/// What the relay reports for health and metrics.
pub struct RelayStatus {
    circuit: Circuit,
    connected: AtomicBool,
    published: AtomicU64,
    failures: AtomicU64,
    backlog: AtomicU64,
    oldest_age_secs: AtomicU64,
}

impl RelayStatus {
    fn new(circuit: Circuit) -> Self {
        Self {
            circuit,
            connected: AtomicBool::new(false),
            published: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            backlog: AtomicU64::new(0),
            oldest_age_secs: AtomicU64::new(0),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The circuit around the broker, for health and metrics.
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
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
    #[error("the broker's circuit is open")]
    Open,
}

impl RelayError {
    /// The broker is not there (a refusal such as a nack is an answer).
    fn is_outage(&self) -> bool {
        matches!(self, Self::Broker(_) | Self::ConfirmTimeout | Self::Closed)
    }
}

pub struct OutboxRelay {
    store: SqlStore,
    settings: RelaySettings,
    status: Arc<RelayStatus>,
    /// Connecting and publishing: the relay's calls to the broker.
    broker: Gate,
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
        let circuit = Circuit::new(
            "rabbitmq",
            CircuitSettings {
                // The relay's own waits (connect, confirms) answer first.
                deadline: settings.confirm_timeout.max(CONNECT_WAIT) + Duration::from_secs(1),
                probe_first: Duration::from_millis(100),
                probe_max: Duration::from_secs(1),
            },
            probe(settings.url.clone()),
        );
        let status = Arc::new(RelayStatus::new(circuit.clone()));
        tokio::spawn(measure_backlog(store.clone(), status.clone(), settings.storage_timeout));
        let broker = circuit.gate("relay");
        let relay = Self { store, settings, status: status.clone(), broker };
        tokio::spawn(relay.run());
        status
    }

    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            // While the circuit is open only its probe asks the broker.
            self.status.circuit.closed().await;
            let error = match self.broker.call(self.connect(), RelayError::is_outage).await {
                Ok(mut link) => {
                    tracing::info!("event relay connected to RabbitMQ");
                    self.status.connected.store(true, Ordering::Release);
                    backoff = Duration::from_millis(100);
                    let error = self.drain(&mut link).await;
                    self.status.connected.store(false, Ordering::Release);
                    // A broker that stopped answering may not answer the close either.
                    let _ = tokio::time::timeout(CONNECT_WAIT, link.connection.close()).await;
                    error
                }
                Err(refusal) => refused(refusal),
            };
            self.status.failures.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(%error, "event relay lost RabbitMQ or cannot reach it; events stay in the outbox");
            // An outage opened the circuit and the probe paces the retries;
            // anything else (a refused event) is retried with backoff.
            if !error.is_outage() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }

    /// A storage call of the relay, bounded by the storage deadline.
    async fn stored<T>(
        &self,
        work: impl Future<Output = Result<T, DomainError>>,
    ) -> Result<T, DomainError> {
        within(self.settings.storage_timeout, work).await
    }

    async fn connect(&self) -> Result<Link, RelayError> {
        let arguments = super::url::connection_arguments(&self.settings.url)?;
        let connection = tokio::time::timeout(CONNECT_WAIT, Connection::open(&arguments))
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
                self.broker.failed(&RelayError::Closed);
                return RelayError::Closed;
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = Instant::now();
                self.prune().await;
            }
            let batch = match self.stored(self.store.claim_outbox(self.settings.batch_size)).await {
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
            let published =
                self.broker.call(self.publish(link, &batch.events), RelayError::is_outage);
            if let Err(refusal) = published.await {
                return refused(refusal);
            }
            if let Err(error) = self.stored(batch.mark_sent()).await {
                // Published but not marked: they go out again (at least once) —
                // after a pause, as for a failed read, rather than in a tight
                // loop of republishing while the database refuses writes.
                tracing::warn!(%error, "cannot mark events sent; they will be published again");
                tokio::time::sleep(Duration::from_secs(1)).await;
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
        match self.stored(self.store.prune_outbox(chat_domain::timestamp::now() - retention)).await
        {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned sent events from the outbox"),
            Err(error) => tracing::warn!(%error, "cannot prune the outbox"),
        }
    }
}

/// What a refused call to the broker means for the relay.
fn refused(refusal: Refusal<RelayError>) -> RelayError {
    match refusal {
        Refusal::Open => RelayError::Open,
        Refusal::TimedOut => RelayError::ConfirmTimeout,
        Refusal::Failed(error) => error,
    }
}

/// The circuit's probe: a connection opened and closed again.
fn probe(url: String) -> Probe {
    Arc::new(move || {
        let url = url.clone();
        Box::pin(async move {
            let Ok(arguments) = super::url::connection_arguments(&url) else { return false };
            match tokio::time::timeout(CONNECT_WAIT, Connection::open(&arguments)).await {
                Ok(Ok(connection)) => {
                    let _ = tokio::time::timeout(CONNECT_WAIT, connection.close()).await;
                    true
                }
                _ => false,
            }
        })
    })
}

/// `work`, or `unavailable` once `limit` has passed (a stalled database).
async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, DomainError>>,
) -> Result<T, DomainError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        tracing::warn!(?limit, "the database did not answer the event relay in time");
        Err(DomainError::Unavailable("database".to_owned()))
    })
}

/// The `x-request-id` header of an event caused by a request.
fn request_id_header(request_id: Option<&str>) -> Option<FieldTable> {
    let name = FieldName::try_from(REQUEST_ID_HEADER).ok()?;
    let mut headers = FieldTable::new();
    headers.insert(name, FieldValue::from(request_id?.to_owned()));
    Some(headers)
}

/// Keeps the backlog figures current, and says so in the log when it grows old.
async fn measure_backlog(store: SqlStore, status: Arc<RelayStatus>, storage_timeout: Duration) {
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    loop {
        ticks.tick().await;
        let Ok(stats) = within(storage_timeout, store.outbox_stats()).await else { continue };
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
