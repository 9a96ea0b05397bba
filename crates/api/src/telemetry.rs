//! Logging set-up: `tracing` with JSON output in production and readable output in
//! development, the level taken from `LOG_LEVEL` (a level or full directives).
//! Request and socket spans carry the request id, connection, user and room, so
//! every line written inside them says which request or socket it belongs to.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::settings::LogFormat;

/// Installs the global subscriber writing to stdout; later calls are ignored,
/// so tests may call it.
pub fn init(level: &str, format: LogFormat) {
    let _ = tracing_subscriber::registry()
        .with(filter(level))
        .with(layer(format, std::io::stdout))
        .try_init();
}

/// The level filter for `LOG_LEVEL`: a level (the seed's `warning` included)
/// or tracing directives (`chat_api=debug,info`); anything else means `info`.
pub fn filter(level: &str) -> EnvFilter {
    let level = level.replace("warning", "warn");
    EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The formatting layer for `format`, writing to `writer`: one JSON object per
/// line with the current span and the list of enclosing spans, or compact text.
pub fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => fmt::layer().compact().with_writer(writer).boxed(),
    }
}
