//! The progress bar on stderr (hidden with `--quiet` or when stderr is not a
//! terminal), fed by a ticker that samples the run's counters.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

const TICK: Duration = Duration::from_millis(250);

pub struct Progress {
    bar: ProgressBar,
    /// Whether the bar's position is the time elapsed.
    timed: bool,
}

impl Progress {
    /// A bar over `len` steps (sockets opened, messages seeded…).
    pub fn steps(len: u64, label: &str, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), target(quiet));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {per_sec} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Self { bar, timed: false }
    }

    /// A bar over a span of time, in milliseconds.
    pub fn timed(span: Duration, label: &str, quiet: bool) -> Self {
        let len = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(len), target(quiet));
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {elapsed:>4} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Self { bar, timed: true }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Samples `message` every tick until the returned ticker is dropped; a
    /// timed bar also advances with the clock.
    pub fn tick_with(&self, message: impl Fn() -> String + Send + 'static) -> Ticker {
        let bar = self.bar.clone();
        let timed = self.timed;
        let start = Instant::now();
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                bar.set_message(message());
                if timed {
                    let elapsed = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    bar.set_position(elapsed.min(bar.length().unwrap_or(elapsed)));
                }
            }
        });
        Ticker { handle }
    }

    /// Samples the position and message of a step bar every tick until the
    /// returned ticker is dropped.
    pub fn tick_steps(&self, sample: impl Fn() -> (u64, String) + Send + 'static) -> Ticker {
        let bar = self.bar.clone();
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                let (position, message) = sample();
                bar.set_position(position);
                bar.set_message(message);
            }
        });
        Ticker { handle }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn target(quiet: bool) -> ProgressDrawTarget {
    if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() }
}

/// Stops the ticker when dropped.
pub struct Ticker {
    handle: JoinHandle<()>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
