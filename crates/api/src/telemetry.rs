//! Logging set-up: `tracing` with JSON output in production and readable output in
//! development, the level taken from `LOG_LEVEL` (a level or full directives).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::settings::LogFormat;

/// Installs the global subscriber; later calls are ignored, so tests may call it.
pub fn init(level: &str, format: LogFormat) {
    // The seed writes `warning`; tracing calls it `warn`.
    let level = level.replace("warning", "warn");
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry.with(fmt::layer().json().with_current_span(true)).try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init(),
    };
}
