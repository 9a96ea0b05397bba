//! Every metric's name, labels and help text, in one place.

use ::metrics::{KeyName, Recorder, SharedString, Unit};

pub const HTTP_REQUESTS: &str = "chat_http_requests_total";
pub const HTTP_DURATION: &str = "chat_http_request_duration_seconds";
pub const ERRORS: &str = "chat_errors_total";
pub const SOCKETS_OPEN: &str = "chat_sockets_open";
pub const RECEIVED: &str = "chat_messages_received_total";
pub const PERSISTED: &str = "chat_messages_persisted_total";
pub const DELIVERED: &str = "chat_messages_delivered_total";
pub const DELIVERY_LATENCY: &str = "chat_message_delivery_seconds";
pub const CACHE_HITS: &str = "chat_cache_hits_total";
pub const CACHE_MISSES: &str = "chat_cache_misses_total";
pub const OUTBOX_BACKLOG: &str = "chat_outbox_backlog";
pub const OUTBOX_OLDEST_AGE: &str = "chat_outbox_oldest_age_seconds";
pub const OUTBOX_PUBLISHED: &str = "chat_outbox_published_total";
pub const OUTBOX_FAILURES: &str = "chat_outbox_publish_failures_total";
pub const BUS_RECEIVED: &str = "chat_bus_received_total";
pub const BUS_PUBLISHED: &str = "chat_bus_published_total";
pub const BUS_CHANNELS: &str = "chat_bus_channels";
pub const POOL_CONNECTIONS: &str = "chat_db_pool_connections";
pub const POOL_MAX: &str = "chat_db_pool_max_connections";
pub const ARCHIVED: &str = "chat_messages_archived_total";
pub const ARCHIVE_FAILURES: &str = "chat_archive_failures_total";
pub const WRITE_BATCHES: &str = "chat_write_batches_total";
pub const WRITE_BATCHED: &str = "chat_write_batched_messages_total";
pub const WRITE_REFUSED: &str = "chat_write_queue_refused_total";
pub const WRITE_LARGEST: &str = "chat_write_largest_batch";
pub const WRITE_WAITING: &str = "chat_write_queue_waiting";
pub const CIRCUIT_OPEN: &str = "chat_circuit_open";
pub const CIRCUIT_OPENED: &str = "chat_circuit_opened_total";
pub const CIRCUIT_PROBES: &str = "chat_circuit_probes_total";
pub const CIRCUIT_CALLS: &str = "chat_circuit_calls_total";
pub const CIRCUIT_SKIPPED: &str = "chat_circuit_skipped_total";
pub const CIRCUIT_FAILURES: &str = "chat_circuit_failures_total";

/// Where a message came from (`source` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageSource {
    Http,
    Socket,
    /// The GrainTrade-compatible socket.
    Legacy,
}

impl MessageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Socket => "socket",
            Self::Legacy => "legacy",
        }
    }
}

/// Which socket endpoint (`kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Room,
    Inbox,
    Legacy,
}

impl SocketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Inbox => "inbox",
            Self::Legacy => "legacy",
        }
    }
}

const HELP: &[(&str, Option<Unit>, &str)] = &[
    (HTTP_REQUESTS, None, "HTTP requests by method, route template and status"),
    (
        HTTP_DURATION,
        Some(Unit::Seconds),
        "HTTP request latency by method, route template and status",
    ),
    (ERRORS, None, "Errors answered to clients by surface (http, socket) and error code"),
    (SOCKETS_OPEN, None, "Open WebSockets by kind (room, legacy)"),
    (RECEIVED, None, "Messages submitted by clients, by source (before validation)"),
    (PERSISTED, None, "New messages committed to the database (any source)"),
    (DELIVERED, None, "Message frames written to room sockets"),
    (
        DELIVERY_LATENCY,
        Some(Unit::Seconds),
        "From a message's timestamp (its transaction) to the write on a socket",
    ),
    (CACHE_HITS, None, "Room and newest-page reads served by the cache"),
    (CACHE_MISSES, None, "Room and newest-page reads that went to the database"),
    (OUTBOX_BACKLOG, None, "Events waiting in the outbox (measured every 10 s)"),
    (OUTBOX_OLDEST_AGE, Some(Unit::Seconds), "Age of the oldest event waiting in the outbox"),
    (OUTBOX_PUBLISHED, None, "Events confirmed by RabbitMQ"),
    (OUTBOX_FAILURES, None, "Failed connections to RabbitMQ and failed event batches"),
    (POOL_CONNECTIONS, None, "Database pool connections by state (in_use, idle)"),
    (POOL_MAX, None, "The database pool's size limit"),
    (ARCHIVED, None, "Messages moved to the archive by this instance"),
    (ARCHIVE_FAILURES, None, "Archiving runs that stopped on an error"),
    (WRITE_BATCHES, None, "Transactions of the message writer (group commit)"),
    (WRITE_BATCHED, None, "Messages those transactions carried; ÷ batches = mean batch size"),
    (WRITE_REFUSED, None, "Posts refused `unavailable` because the write queue was full"),
    (WRITE_LARGEST, None, "The largest batch the message writer stored so far"),
    (WRITE_WAITING, None, "Messages queued for the message writer, not yet in a transaction"),
    (
        BUS_RECEIVED,
        None,
        "Deliveries of other instances received from Redis (the bus between instances)",
    ),
    (BUS_PUBLISHED, None, "Redis messages published to the bus (one per channel per round)"),
    (BUS_CHANNELS, None, "Bus channels (rooms, users, items) this instance is subscribed to"),
    (CIRCUIT_OPEN, None, "1 while the dependency's circuit is open (calls skip it), else 0"),
    (CIRCUIT_OPENED, None, "How often the dependency's circuit opened"),
    (CIRCUIT_PROBES, None, "Probes of a dependency whose circuit was open"),
    (CIRCUIT_CALLS, None, "Calls that reached the dependency, by adapter"),
    (
        CIRCUIT_SKIPPED,
        None,
        "Calls that skipped the dependency because its circuit was open, by adapter",
    ),
    (CIRCUIT_FAILURES, None, "Calls that found the dependency down or unanswering, by adapter"),
];

/// Registers the help texts (`# HELP` lines).
pub fn describe(recorder: &impl Recorder) {
    for (name, unit, help) in HELP {
        let (key, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
        if name.ends_with("_total") {
            recorder.describe_counter(key, *unit, help);
        } else if name.ends_with("_seconds") && *name != OUTBOX_OLDEST_AGE {
            recorder.describe_histogram(key, *unit, help);
        } else {
            recorder.describe_gauge(key, *unit, help);
        }
    }
}
