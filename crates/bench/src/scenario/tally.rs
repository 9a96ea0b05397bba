//! Counters every client task of a run adds to: messages sent, acknowledged
//! (the sender got its own message back), delivered, and errors by kind.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    /// Our own messages the server refused (an error frame naming them).
    pub refused: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts an error of this kind (kept short: the kind, not every detail).
    pub fn error(&self, kind: &str) {
        let kind: String = kind.chars().take(80).collect();
        let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *errors.entry(kind).or_default() += 1;
    }

    /// Counts `count` errors of this kind at once.
    pub fn error_n(&self, kind: &str, count: u64) {
        let mut errors = self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *errors.entry(kind.to_owned()).or_default() += count;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn error_total(&self) -> u64 {
        self.errors().values().sum()
    }

    /// One line for the progress bar.
    pub fn line(&self) -> String {
        format!(
            "sent {} acked {} delivered {} errors {}",
            Self::get(&self.sent),
            Self::get(&self.acked),
            Self::get(&self.delivered),
            self.error_total()
        )
    }
}
