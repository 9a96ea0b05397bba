//! Group commit: the [`MessageWriter`] that stores every message that arrived
//! while the previous commit was in flight in one transaction — one WAL flush
//! for all of them. There is no timer: a lone message is a batch of one and
//! goes at once; under load batches grow by themselves, up to a bound.
//!
//! Each room belongs to one of a few writer tasks, which takes its queue in
//! order, so messages keep the order they were submitted in (a socket's
//! messages get increasing seqs), while the writers' transactions run side by
//! side on disjoint rooms. After each commit the stored messages are handed to
//! the fan-out in that order — before any sender is answered — so the sockets'
//! pumps receive each room's messages in seq order and need not fill gaps from
//! the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::ports::{FanOut, MessageRepository, MessageWriter, PendingPost, UnreadCounters};
use chat_domain::{DomainError, NewMessage, Posted};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Bounds of the writer.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// The most messages one transaction stores.
    pub max_batch: usize,
    /// Messages that may wait for a transaction; beyond that a submission is
    /// refused `Unavailable` at once rather than queued.
    pub queue: usize,
    /// Transactions in flight at once, each for its own share of the rooms (a
    /// room always goes to the same one, so its messages keep their order).
    /// SQLite has one writer whatever this says.
    pub writers: usize,
    /// The longest a message may wait, queued and stored, before its sender is
    /// told `Unavailable` (the storage deadline): a stalled database must not
    /// make later messages wait for every batch ahead of them in turn.
    pub deadline: Duration,
}

/// Counts since start, read by the metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    batches: AtomicU64,
    messages: AtomicU64,
    refused: AtomicU64,
    largest: AtomicU64,
    waiting: AtomicU64,
}

impl WriterStats {
    /// Transactions the writer ran.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Messages those transactions carried (stored, repeats and refusals).
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Messages refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The largest batch so far.
    pub fn largest_batch(&self) -> u64 {
        self.largest.load(Ordering::Relaxed)
    }

    /// Messages queued and not yet taken into a transaction.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }
}

struct Job {
    message: NewMessage,
    reply: oneshot::Sender<Result<Posted, DomainError>>,
    /// When the sender is told `Unavailable` if the message is not stored by then.
    expires: Instant,
}

pub struct GroupCommit {
    /// One queue per writer task; a room's messages go to `room % queues`.
    queues: Vec<mpsc::Sender<Job>>,
    stats: Arc<WriterStats>,
    deadline: Duration,
}

impl GroupCommit {
    /// Starts the writer task; it ends when the last handle is dropped and the
    /// queue has been written.
    pub fn start(
        repository: Arc<dyn MessageRepository>,
        fan_out: Arc<dyn FanOut>,
        unread: Arc<dyn UnreadCounters>,
        settings: GroupCommitSettings,
    ) -> Self {
        let stats = Arc::new(WriterStats::default());
        let writers = settings.writers.max(1);
        let queue = settings.queue.div_ceil(writers).max(1);
        let queues = (0..writers)
            .map(|_| {
                let (queue, jobs) = mpsc::channel(queue);
                let writer = Writer {
                    repository: repository.clone(),
                    fan_out: fan_out.clone(),
                    unread: unread.clone(),
                    stats: stats.clone(),
                };
                tokio::spawn(writer.run(jobs, settings.max_batch.max(1)));
                queue
            })
            .collect();
        Self { queues, stats, deadline: settings.deadline }
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }
}

impl MessageWriter for GroupCommit {
    fn submit(&self, message: NewMessage) -> PendingPost {
        let (reply, outcome) = oneshot::channel();
        let shard = message.room_id.get().unsigned_abs() as usize % self.queues.len();
        // Counted before it is queued, so the writer never takes it first.
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let expires = Instant::now() + self.deadline;
        let queued = self.queues[shard].try_send(Job { message, reply, expires });
        if queued.is_err() {
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        match queued {
            Ok(()) => {
                PendingPost::new(async move {
                    match tokio::time::timeout_at(expires, outcome).await {
                        Ok(answer) => answer.unwrap_or_else(|_| Err(writer_gone())),
                        Err(_) => {
                            tracing::warn!("a message was not stored within the storage deadline");
                            Err(DomainError::Unavailable("database".to_owned()))
                        }
                    }
                })
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                PendingPost::ready(Err(DomainError::Unavailable(
                    "storage (too many messages waiting)".to_owned(),
                )))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => PendingPost::ready(Err(writer_gone())),
        }
    }
}

fn writer_gone() -> DomainError {
    DomainError::Unavailable("storage".to_owned())
}

struct Writer {
    repository: Arc<dyn MessageRepository>,
    fan_out: Arc<dyn FanOut>,
    unread: Arc<dyn UnreadCounters>,
    stats: Arc<WriterStats>,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Job>, max_batch: usize) {
        let mut jobs = Vec::with_capacity(max_batch);
        // Waits for the first message, then takes whatever else is queued.
        while queue.recv_many(&mut jobs, max_batch).await > 0 {
            let now = Instant::now();
            let taken = jobs.len();
            // A message whose sender was told `Unavailable` is not stored after all.
            let (messages, replies): (Vec<NewMessage>, Vec<_>) = jobs
                .drain(..)
                .filter(|job| job.expires > now)
                .map(|job| (job.message, job.reply))
                .unzip();
            self.stats.waiting.fetch_sub(taken as u64, Ordering::Relaxed);
            if messages.is_empty() {
                continue;
            }
            self.record(messages.len());
            let started = std::time::Instant::now();
            let outcomes = self.store(&messages).await;
            tracing::debug!(size = messages.len(), took = ?started.elapsed(), "batch stored");
            self.count_unread(&messages, &outcomes).await;
            for (message, outcome) in messages.iter().zip(&outcomes) {
                if let Ok(Posted::Created(stored)) = outcome {
                    for delivery in message.broadcasts(stored) {
                        self.fan_out.publish(delivery);
                    }
                }
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A sender that gave up (its socket closed) needs no answer.
                let _ = reply.send(outcome);
            }
        }
    }

    /// A stored conversation message counts as unread for its receiver, before
    /// anyone can see it (a client that got it and asks for the count finds it
    /// counted). A counter is a convenience: its failure does not undo the message.
    async fn count_unread(
        &self,
        messages: &[NewMessage],
        outcomes: &[Result<Posted, DomainError>],
    ) {
        let receivers = messages.iter().zip(outcomes).filter_map(|(message, outcome)| {
            matches!(outcome, Ok(Posted::Created(_))).then_some(message.conversation.as_ref()?)
        });
        let bumps = receivers.map(|to| self.unread.increment(&to.item, &to.receiver));
        for bumped in futures_util::future::join_all(bumps).await {
            if let Err(error) = bumped {
                tracing::warn!(%error, "an unread counter was not updated");
            }
        }
    }

    fn record(&self, size: usize) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats.messages.fetch_add(size as u64, Ordering::Relaxed);
        self.stats.largest.fetch_max(size as u64, Ordering::Relaxed);
    }

    /// One outcome per message. A batch the database refused for a reason
    /// other than being unreachable is stored again one message at a time, so
    /// one bad message cannot fail the others; an unreachable database (or a
    /// commit cut off) fails the batch as a whole: none of it is visible.
    async fn store(&self, messages: &[NewMessage]) -> Vec<Result<Posted, DomainError>> {
        match self.repository.append_batch(messages).await {
            Ok(outcomes) if outcomes.len() == messages.len() => outcomes,
            Ok(_) => {
                let error = DomainError::Internal("a batch came back incomplete".to_owned());
                vec![Err(error); messages.len()]
            }
            Err(error @ DomainError::Unavailable(_)) => vec![Err(error); messages.len()],
            Err(error) if messages.len() == 1 => vec![Err(error)],
            Err(error) => {
                tracing::warn!(%error, size = messages.len(), "batch refused; storing its messages one by one");
                let mut outcomes = Vec::with_capacity(messages.len());
                for message in messages {
                    let alone = self.repository.append_batch(std::slice::from_ref(message)).await;
                    outcomes.push(match alone {
                        Ok(mut outcome) if outcome.len() == 1 => outcome.remove(0),
                        Ok(_) => Err(DomainError::Internal("no outcome for a message".to_owned())),
                        Err(error) => Err(error),
                    });
                }
                outcomes
            }
        }
    }
}
