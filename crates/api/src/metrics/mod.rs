//! Prometheus metrics at `/metrics`. Each [`Application`](crate::Application)
//! has its own recorder (no global one), so several instances in one process —
//! the tests — never mix their figures. Live events (requests, sockets,
//! deliveries) are recorded where they happen; the figures the adapters keep
//! (cache, store, pool, outbox) are read when the metrics are scraped.

mod http;
mod names;
pub mod scrape;

use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use chat_infra::SqlStore;
use chat_infra::archiver::ArchiveStatus;
use chat_infra::cache::CacheStats;
use chat_infra::rabbit::RelayStatus;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use http::track;
pub use names::{MessageSource, SocketKind};
pub use scrape::scrape;

/// Where the scrape reads the adapters' own figures.
#[derive(Clone)]
pub struct Sources {
    pub store: SqlStore,
    pub cache: Arc<CacheStats>,
    pub relay: Option<Arc<RelayStatus>>,
    pub archive: Option<Arc<ArchiveStatus>>,
    pub writer: Arc<chat_infra::group_commit::WriterStats>,
    /// The bus between instances (Redis): what it read, and its channels.
    pub bus: Option<(Arc<chat_infra::redis::FanOutStats>, Arc<chat_infra::redis::Interests>)>,
    /// The circuit of each configured cache or bus (Redis, RabbitMQ).
    pub circuits: Vec<chat_infra::circuit::Circuit>,
}

/// The service's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    sources: Sources,
    delivered: Counter,
    delivery_latency: Histogram,
    /// Stops the upkeep task when the last handle is dropped.
    _upkeep: DropGuard,
}

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// Seconds: from 1 ms to 10 s, for request and delivery latencies.
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often recorded histogram samples are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

impl Metrics {
    /// A fresh recorder reading the adapters' figures from `sources`. Must be
    /// called inside the Tokio runtime (it starts the recorder's upkeep).
    pub fn new(sources: Sources) -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        names::describe(&recorder);
        let stop = CancellationToken::new();
        let handle = recorder.handle();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = ticks.tick() => handle.run_upkeep(),
                }
            }
        });
        let delivered = recorder.register_counter(&Key::from_name(names::DELIVERED), &METADATA);
        let delivery_latency =
            recorder.register_histogram(&Key::from_name(names::DELIVERY_LATENCY), &METADATA);
        Self {
            inner: Arc::new(Inner {
                recorder,
                sources,
                delivered,
                delivery_latency,
                _upkeep: stop.drop_guard(),
            }),
        }
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.inner.recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> Gauge {
        self.inner.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.inner.recorder.register_histogram(&Key::from_parts(name, labels), &METADATA)
    }

    /// A message submitted by a client, before any check.
    pub fn message_received(&self, source: MessageSource) {
        self.counter(names::RECEIVED, vec![Label::new("source", source.as_str())]).increment(1);
    }

    /// A message frame written to a socket; `created_at` is the message's own
    /// timestamp (taken as its transaction begins).
    pub fn message_delivered(&self, created_at: chrono::DateTime<chrono::Utc>) {
        self.inner.delivered.increment(1);
        let latency = (chrono::Utc::now() - created_at).to_std().unwrap_or_default();
        self.inner.delivery_latency.record(latency.as_secs_f64());
    }

    /// An error answered to a client: an HTTP error body or a socket error frame.
    pub fn error(&self, surface: &'static str, code: &'static str) {
        self.counter(names::ERRORS, vec![Label::new("surface", surface), Label::new("code", code)])
            .increment(1);
    }

    /// Counts an open socket until the returned guard is dropped.
    pub fn socket_opened(&self, kind: SocketKind) -> OpenSocket {
        let gauge = self.gauge(names::SOCKETS_OPEN, vec![Label::new("kind", kind.as_str())]);
        gauge.increment(1.0);
        OpenSocket(gauge)
    }
}

/// An open socket in the `chat_sockets_open` gauge.
pub struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
