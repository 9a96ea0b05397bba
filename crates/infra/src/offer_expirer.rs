//! The job that expires offers: every second, open offers past their
//! `expires_at` become `expired`, each with its system message and
//! `offer_expired` (see `ChatService::expire_offers`). Every instance runs it;
//! a run skips the offers another instance's run holds (Postgres `SKIP
//! LOCKED`), and the conditional update lets each offer expire once.

use std::time::Duration;

use chat_domain::ChatService;

/// How often the job runs; readers see a due offer as expired meanwhile.
const INTERVAL: Duration = Duration::from_secs(1);
/// Offers expired per transaction; a full batch runs again at once.
const BATCH: u32 = 100;

pub struct OfferExpirer {
    chat: ChatService,
}

impl OfferExpirer {
    pub fn new(chat: ChatService) -> Self {
        Self { chat }
    }

    /// Runs the job in the background.
    pub fn spawn(self) {
        tokio::spawn(self.run());
    }

    async fn run(self) {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            loop {
                match self.chat.expire_offers(BATCH).await {
                    Ok(n) if n >= BATCH as usize => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::debug!(expired = n, "offers expired");
                        }
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "expiring offers failed; the next run carries on");
                        break;
                    }
                }
            }
        }
    }
}
