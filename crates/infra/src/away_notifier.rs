//! The job behind notifications for people who are away: every interval, the
//! participants of rooms active since its last run whose unread messages waited
//! longer than the configured time get `notification_requested` (see
//! `ChatService::notify_away`). Every instance runs it; the coalescing row's key
//! makes sure only one of them sends each notification.

use std::time::Duration;

use chat_domain::{ChatService, DomainError, timestamp};

#[derive(Debug, Clone, Copy)]
pub struct AwaySettings {
    /// How long an unread message waits before its reader is notified.
    pub after: Duration,
}

impl AwaySettings {
    /// How often the job runs: often enough that a notification comes at most a
    /// quarter of the wait late, never more than every 250 ms.
    fn interval(&self) -> Duration {
        (self.after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
    }
}

/// Users looked at per run; a run cut short leaves its cursor for the next.
const USERS_PER_RUN: u32 = 5_000;
/// Messages are stamped before they commit (and on other instances' clocks):
/// each run looks again at rooms active this much before the last cutoff.
const CLOCK_SLACK: chrono::Duration = chrono::Duration::seconds(5);
/// After a start-up, rooms active this long before the wait are looked at too
/// (notifications that fell due while no instance ran).
const CATCH_UP: chrono::Duration = chrono::Duration::minutes(10);

pub struct AwayNotifier {
    chat: ChatService,
    settings: AwaySettings,
}

impl AwayNotifier {
    pub fn new(chat: ChatService, settings: AwaySettings) -> Self {
        Self { chat, settings }
    }

    /// Runs the job in the background.
    pub fn spawn(self) {
        tokio::spawn(self.run());
    }

    async fn run(self) {
        let Ok(after) = chrono::Duration::from_std(self.settings.after) else {
            tracing::error!(after = ?self.settings.after, "notification wait out of range");
            return;
        };
        let mut since = timestamp::now() - after - CATCH_UP;
        let mut ticks = tokio::time::interval(self.settings.interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let cutoff = timestamp::now() - after;
            match self.run_once(since, cutoff).await {
                Ok(true) => since = cutoff,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "notifying users away failed; the next run carries on")
                }
            }
        }
    }

    /// One run; true when it looked at everyone due (the cursor may move).
    async fn run_once(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, DomainError> {
        let (sent, cut_short) =
            self.chat.notify_away(since - CLOCK_SLACK, cutoff, USERS_PER_RUN).await?;
        if sent > 0 {
            tracing::debug!(sent, "users away notified");
        }
        Ok(!cut_short)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_quarter_of_the_wait_apart_within_bounds() {
        let every = |secs| AwaySettings { after: Duration::from_secs(secs) }.interval();
        assert_eq!(every(60), Duration::from_secs(5));
        assert_eq!(every(8), Duration::from_secs(2));
        assert_eq!(every(1), Duration::from_millis(250));
    }
}
