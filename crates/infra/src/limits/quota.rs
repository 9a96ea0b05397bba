//! A bucket's shape: how fast tokens come back and how many can be saved up.

use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateQuota {
    /// Tokens regained per second; a sustained rate.
    pub per_second: f64,
    /// Tokens a full bucket holds: how many actions may come at once.
    pub burst: u32,
}

impl RateQuota {
    /// `None` when the quota switches the limit off (a rate or burst of zero).
    pub fn enabled(per_second: f64, burst: u32) -> Option<Self> {
        (per_second > 0.0 && per_second.is_finite() && burst > 0)
            .then_some(Self { per_second, burst })
    }

    /// Time between two tokens.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1))
    }

    pub(crate) fn governor(&self) -> governor::Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        governor::Quota::with_period(self.interval())
            .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_switches_off() {
        assert!(RateQuota::enabled(0.0, 10).is_none());
        assert!(RateQuota::enabled(5.0, 0).is_none());
        assert!(RateQuota::enabled(f64::NAN, 10).is_none());
        assert_eq!(
            RateQuota::enabled(4.0, 8).map(|q| q.interval()),
            Some(Duration::from_millis(250))
        );
    }
}
