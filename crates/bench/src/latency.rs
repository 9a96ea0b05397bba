//! Latency recording: microsecond samples into an HDR histogram shared by all
//! client tasks. Each task buffers a few hundred samples locally so the lock is
//! taken rarely on the hot path.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly; slower samples are clamped to it.
const MAX_MICROS: u64 = 120_000_000;
const LOCAL_BATCH: usize = 256;

/// A histogram of latencies in microseconds, shared by the tasks that record into it.
#[derive(Clone)]
pub struct Latencies {
    histogram: Arc<Mutex<Histogram<u64>>>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        // 3 significant figures over 1 µs…120 s: fixed bounds that cannot fail.
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|_| unreachable!("valid histogram bounds"));
        Self { histogram: Arc::new(Mutex::new(histogram)) }
    }

    fn lock(&self) -> MutexGuard<'_, Histogram<u64>> {
        self.histogram.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A recorder for one task; it flushes when full and when dropped.
    pub fn recorder(&self) -> Recorder {
        Recorder { shared: self.clone(), buffer: Vec::with_capacity(LOCAL_BATCH) }
    }

    pub fn record(&self, latency: Duration) {
        self.lock().saturating_record(micros(latency));
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.lock())
    }
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_MICROS)
}

/// Buffers samples of one task.
pub struct Recorder {
    shared: Latencies,
    buffer: Vec<u64>,
}

impl Recorder {
    pub fn record(&mut self, latency: Duration) {
        self.buffer.push(micros(latency));
        if self.buffer.len() >= LOCAL_BATCH {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut histogram = self.shared.lock();
        for sample in self.buffer.drain(..) {
            histogram.saturating_record(sample);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Self {
                count: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let latencies = Latencies::new();
        // 1 ms … 100 ms, one sample each: p50 = 50 ms, p90 = 90 ms, p99 = 99 ms.
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        assert!(close(summary.p50_ms, 50.0), "{summary:?}");
        assert!(close(summary.p90_ms, 90.0), "{summary:?}");
        assert!(close(summary.p99_ms, 99.0), "{summary:?}");
        assert!(close(summary.max_ms, 100.0), "{summary:?}");
        assert!(close(summary.mean_ms, 50.5), "{summary:?}");
    }

    #[test]
    fn recorders_flush_their_buffers_into_the_shared_histogram() {
        let latencies = Latencies::new();
        {
            let mut a = latencies.recorder();
            let mut b = latencies.recorder();
            for _ in 0..(LOCAL_BATCH + 10) {
                a.record(Duration::from_micros(500));
            }
            b.record(Duration::from_secs(2));
            // a has flushed one batch; the rest arrives on drop.
            assert_eq!(latencies.summary().count, LOCAL_BATCH as u64);
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, LOCAL_BATCH as u64 + 11);
        assert!(close(summary.p50_ms, 0.5), "{summary:?}");
        assert!(close(summary.max_ms, 2000.0), "{summary:?}");
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let latencies = Latencies::new();
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(3600));
        let summary = latencies.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.max_ms >= 119_000.0 && summary.max_ms <= 121_000.0, "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zero() {
        assert_eq!(Latencies::new().summary().count, 0);
    }
}
