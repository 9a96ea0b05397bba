//! `GET /metrics`: the Prometheus text format, after reading the figures the
//! adapters keep themselves (cache, store, pool, outbox relay).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::{Metrics, names};
use crate::state::AppState;

/// Prometheus metrics
///
/// Every metric of the service in the Prometheus text format: sockets, messages
/// received/persisted/delivered, delivery latency, HTTP requests and errors,
/// cache, outbox, database pool, archiving. Block it at the load balancer.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The metrics.", content_type = "text/plain", body = String))
)]
pub async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

impl Metrics {
    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.sample();
        self.inner.recorder.handle().render()
    }

    fn sample(&self) {
        let sources = &self.inner.sources;
        self.counter(names::CACHE_HITS, vec![]).absolute(sources.cache.hits());
        self.counter(names::CACHE_MISSES, vec![]).absolute(sources.cache.misses());
        self.counter(names::PERSISTED, vec![]).absolute(sources.store.stats().messages_persisted());
        let writer = &sources.writer;
        self.counter(names::WRITE_BATCHES, vec![]).absolute(writer.batches());
        self.counter(names::WRITE_BATCHED, vec![]).absolute(writer.messages());
        self.counter(names::WRITE_REFUSED, vec![]).absolute(writer.refused());
        self.gauge(names::WRITE_LARGEST, vec![]).set(writer.largest_batch() as f64);
        self.gauge(names::WRITE_WAITING, vec![]).set(writer.waiting() as f64);
        if let Some(pool) = sources.store.pool_stats() {
            let state = |value: &'static str| vec![::metrics::Label::new("state", value)];
            self.gauge(names::POOL_CONNECTIONS, state("in_use")).set(pool.in_use());
            self.gauge(names::POOL_CONNECTIONS, state("idle")).set(pool.idle);
            self.gauge(names::POOL_MAX, vec![]).set(pool.max);
        }
        if let Some(relay) = &sources.relay {
            let (backlog, oldest) = relay.backlog();
            self.gauge(names::OUTBOX_BACKLOG, vec![]).set(backlog as f64);
            self.gauge(names::OUTBOX_OLDEST_AGE, vec![]).set(oldest.as_secs_f64());
            self.counter(names::OUTBOX_PUBLISHED, vec![]).absolute(relay.published());
            self.counter(names::OUTBOX_FAILURES, vec![]).absolute(relay.failures());
        }
        if let Some((bus, channels)) = &sources.bus {
            self.counter(names::BUS_RECEIVED, vec![]).absolute(bus.received());
            self.counter(names::BUS_PUBLISHED, vec![]).absolute(bus.published());
            self.gauge(names::BUS_CHANNELS, vec![]).set(channels.subscribed_count() as f64);
        }
        for circuit in &sources.circuits {
            let stats = circuit.stats();
            let dependency = || vec![::metrics::Label::new("dependency", stats.dependency)];
            self.gauge(names::CIRCUIT_OPEN, dependency()).set(if stats.open { 1.0 } else { 0.0 });
            self.counter(names::CIRCUIT_OPENED, dependency()).absolute(stats.opened);
            self.counter(names::CIRCUIT_PROBES, dependency()).absolute(stats.probes);
            for adapter in &stats.adapters {
                let labels = || {
                    let mut labels = dependency();
                    labels.push(::metrics::Label::new("adapter", adapter.adapter));
                    labels
                };
                self.counter(names::CIRCUIT_CALLS, labels()).absolute(adapter.calls);
                self.counter(names::CIRCUIT_SKIPPED, labels()).absolute(adapter.skipped);
                self.counter(names::CIRCUIT_FAILURES, labels()).absolute(adapter.failures);
            }
        }
        if let Some(archive) = &sources.archive {
            self.counter(names::ARCHIVED, vec![]).absolute(archive.moved());
            self.counter(names::ARCHIVE_FAILURES, vec![]).absolute(archive.failures());
        }
    }
}
