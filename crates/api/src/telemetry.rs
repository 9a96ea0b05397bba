//! Logging set-up: `tracing` with JSON output in production and readable output in
//! development, the level taken from `LOG_LEVEL` (a level or full directives).
//! Request and socket spans carry the request id, connection, user and room, so
//! every line written inside them says which request or socket it belongs to.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

use crate::settings::LogFormat;

/// Installs the global subscriber writing to stdout; later calls are ignored,
/// so tests may call it. Text is coloured only when stdout is a terminal (and
/// `NO_COLOR` is unset), so log files and collectors get no escape codes.
pub fn init(level: &str, format: LogFormat) {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::registry()
        .with(filter(level))
        .with(layer_with_colour(format, std::io::stdout, colour))
        .try_init();
}

/// The level filter for `LOG_LEVEL`: a level (the seed's `warning` included)
/// or tracing directives (`chat_api=debug,info`); the settings refuse anything
/// else, so the fallback to `info` is only for callers that skip them.
pub fn filter(level: &str) -> EnvFilter {
    try_filter(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// [`filter`], or why `level` is not a filter.
pub fn try_filter(level: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    EnvFilter::try_new(level.replace("warning", "warn"))
}

/// The formatting layer for `format`, writing to `writer` without colour: one
/// JSON object per line with the current span and the list of enclosing spans,
/// or compact text.
pub fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    layer_with_colour(format, writer, false)
}

fn layer_with_colour<S, W>(
    format: LogFormat,
    writer: W,
    colour: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => fmt::layer().compact().with_ansi(colour).with_writer(writer).boxed(),
    }
}
