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
//! the database. That follow-up runs while the writer stores its next batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_domain::conversation::ItemId;
use chat_domain::ports::{FanOut, MessageRepository, MessageWriter, PendingPost, UnreadCounters};
use chat_domain::{DomainError, NewMessage, Posted, UserId};
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
    unfinished: AtomicU64,
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

    /// Messages accepted and not yet answered (queued, being stored, or being
    /// followed up): a shutdown waits for none to be left.
    pub fn unfinished(&self) -> u64 {
        self.unfinished.load(Ordering::Acquire)
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
        self.stats.unfinished.fetch_add(1, Ordering::AcqRel);
        let expires = Instant::now() + self.deadline;
        let queued = self.queues[shard].try_send(Job { message, reply, expires });
        if queued.is_err() {
            self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            self.stats.unfinished.fetch_sub(1, Ordering::AcqRel);
        }
        match queued {
            Ok(()) => PendingPost::new(async move {
                match tokio::time::timeout_at(expires, outcome).await {
                    Ok(answer) => answer.unwrap_or_else(|_| Err(writer_gone())),
                    Err(_) => {
                        tracing::warn!("a message was not stored within the storage deadline");
                        Err(DomainError::Unavailable("database".to_owned()))
                    }
                }
            }),
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

#[derive(Clone)]
struct Writer {
    repository: Arc<dyn MessageRepository>,
    fan_out: Arc<dyn FanOut>,
    unread: Arc<dyn UnreadCounters>,
    stats: Arc<WriterStats>,
}

/// A committed batch on its way to its senders.
struct Committed {
    messages: Vec<NewMessage>,
    replies: Vec<oneshot::Sender<Result<Posted, DomainError>>>,
    outcomes: Vec<Result<Posted, DomainError>>,
}

impl Writer {
    /// Stores batch after batch; each committed one goes to [`Writer::finish`],
    /// which tells the cache, counters, fan-out and senders while the next
    /// batch is being stored. Both stages take batches in order, so a room's
    /// messages still reach the fan-out in seq order; at most one committed
    /// batch waits for the finisher.
    async fn run(self, mut queue: mpsc::Receiver<Job>, max_batch: usize) {
        let (committed, finishing) = mpsc::channel(1);
        tokio::spawn(self.clone().finish(finishing));
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
            self.stats.unfinished.fetch_sub((taken - messages.len()) as u64, Ordering::AcqRel);
            if messages.is_empty() {
                continue;
            }
            self.record(messages.len());
            let started = std::time::Instant::now();
            let outcomes = self.store(&messages).await;
            tracing::debug!(size = messages.len(), took = ?started.elapsed(), "batch stored");
            if committed.send(Committed { messages, replies, outcomes }).await.is_err() {
                break;
            }
        }
    }

    /// After each commit, in order: the repository's follow-up (the cache),
    /// the unread counters, the fan-out in seq order, then the answers.
    async fn finish(self, mut committed: mpsc::Receiver<Committed>) {
        while let Some(Committed { messages, replies, outcomes }) = committed.recv().await {
            self.repository.appended(&outcomes).await;
            self.count_unread(&messages, &outcomes).await;
            for (message, outcome) in messages.iter().zip(&outcomes) {
                if let Ok(Posted::Created(stored)) = outcome {
                    for delivery in message.broadcasts(stored) {
                        self.fan_out.publish(delivery);
                    }
                }
            }
            let answered = replies.len() as u64;
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A sender that gave up (its socket closed) needs no answer.
                let _ = reply.send(outcome);
            }
            self.stats.unfinished.fetch_sub(answered, Ordering::AcqRel);
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
        // One call for the batch, each counter named once.
        let mut per_counter: HashMap<(&ItemId, &UserId), u64> = HashMap::new();
        for to in receivers {
            *per_counter.entry((&to.item, &to.receiver)).or_default() += 1;
        }
        if per_counter.is_empty() {
            return;
        }
        let counts: Vec<(ItemId, UserId, u64)> = per_counter
            .into_iter()
            .map(|((item, user), count)| (item.clone(), user.clone(), count))
            .collect();
        if let Err(error) = self.unread.increment_all(&counts).await {
            tracing::warn!(%error, "unread counters were not updated");
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

#[cfg(test)]
mod tests {
    //! The writer against a fake storage whose `append_batch` is held at a gate
    //! until the test opens it, and which records every batch it was given (and
    //! by which writer task), and a fake fan-out that records what it was handed
    //! and whether the sender had already been answered then.

    use std::collections::{HashMap, HashSet};
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    use async_trait::async_trait;
    use chat_domain::{
        CorrelationId, Delivery, HistoryPage, HistoryQuery, Limit, Message, MessageContent,
        MessageId, MessageType, RoomEvent, RoomId, UserId,
    };
    use chrono::{DateTime, Utc};
    use futures_util::FutureExt;
    use tokio::sync::{Semaphore, watch};

    use super::*;

    /// The longest a test waits for something that must happen.
    const WAIT: Duration = Duration::from_secs(5);

    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(WAIT, future).await.unwrap_or_else(|_| panic!("{what} in time"))
    }

    /// How the fake storage answers a batch.
    #[derive(Clone, Copy)]
    enum Mode {
        /// Stores every message with its room's next seq.
        Store,
        /// Refuses every batch: the database is unreachable.
        Unavailable,
        /// Refuses (`Internal`) any batch holding a message whose content is
        /// `bad`; stores the others.
        RefuseBad,
    }

    /// One `append_batch` call: which writer task made it, and the contents.
    struct Call {
        writer: tokio::task::Id,
        contents: Vec<String>,
    }

    struct FakeStore {
        mode: Mode,
        /// One permit per call: a call waits here until the test lets it through.
        gate: Semaphore,
        calls: Mutex<Vec<Call>>,
        /// Calls begun so far.
        begun: watch::Sender<usize>,
        seqs: Mutex<HashMap<i64, i64>>,
        ids: AtomicU64,
        /// When set, each follow-up (`appended`) waits for a permit of `follow_ups`.
        hold_follow_ups: std::sync::atomic::AtomicBool,
        follow_ups: Semaphore,
        /// Follow-ups begun so far.
        followed_up: watch::Sender<usize>,
    }

    impl FakeStore {
        fn new(mode: Mode) -> Self {
            Self {
                mode,
                gate: Semaphore::new(0),
                calls: Mutex::default(),
                begun: watch::channel(0).0,
                seqs: Mutex::default(),
                ids: AtomicU64::new(0),
                hold_follow_ups: false.into(),
                follow_ups: Semaphore::new(0),
                followed_up: watch::channel(0).0,
            }
        }

        /// Waits until `n` follow-ups have begun (each may still be held).
        async fn followed_up(&self, n: usize) {
            let mut begun = self.followed_up.subscribe();
            within(&format!("{n} follow-ups begin"), begun.wait_for(|begun| *begun >= n))
                .await
                .expect("the store is alive");
        }

        /// Lets every call through from now on.
        fn open(&self) {
            self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }

        /// Waits until `n` calls have begun (each may still be held at the gate).
        async fn begun(&self, n: usize) {
            let mut begun = self.begun.subscribe();
            within(&format!("{n} batches begin"), begun.wait_for(|begun| *begun >= n))
                .await
                .expect("the store is alive");
        }

        fn batches(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().iter().map(|call| call.contents.clone()).collect()
        }

        fn sizes(&self) -> Vec<usize> {
            self.calls.lock().unwrap().iter().map(|call| call.contents.len()).collect()
        }

        fn stored(&self, new: &NewMessage) -> Posted {
            let room = new.room_id.get();
            let mut seqs = self.seqs.lock().unwrap();
            let seq = seqs.entry(room).or_default();
            *seq += 1;
            let id = self.ids.fetch_add(1, Ordering::Relaxed) as i64 + 1;
            Posted::Created(Message {
                id: MessageId::new(id).unwrap(),
                room_id: new.room_id,
                seq: *seq,
                user_id: new.user_id.to_string(),
                content: new.content.as_str().to_owned(),
                message_type: new.message_type,
                client_msg_id: None,
                created_at: new.created_at,
                updated_at: new.created_at,
                edited: false,
                reply_to: None,
                reactions: Default::default(),
                offer: None,
            })
        }
    }

    #[async_trait]
    impl MessageRepository for FakeStore {
        async fn append_batch(
            &self,
            batch: &[NewMessage],
        ) -> Result<Vec<Result<Posted, DomainError>>, DomainError> {
            let contents: Vec<String> =
                batch.iter().map(|new| new.content.as_str().to_owned()).collect();
            let writer = tokio::task::try_id().expect("called from a writer task");
            self.calls.lock().unwrap().push(Call { writer, contents: contents.clone() });
            self.begun.send_modify(|begun| *begun += 1);
            self.gate.acquire().await.expect("the gate stays").forget();
            match self.mode {
                Mode::Store => {}
                Mode::Unavailable => return Err(DomainError::Unavailable("database".into())),
                Mode::RefuseBad if contents.iter().any(|c| c == "bad") => {
                    return Err(DomainError::Internal("refused".into()));
                }
                Mode::RefuseBad => {}
            }
            Ok(batch.iter().map(|new| Ok(self.stored(new))).collect())
        }

        async fn appended(&self, _: &[Result<Posted, DomainError>]) {
            self.followed_up.send_modify(|begun| *begun += 1);
            if self.hold_follow_ups.load(Ordering::Acquire) {
                self.follow_ups.acquire().await.expect("the gate stays").forget();
            }
        }

        async fn find(&self, _: MessageId) -> Result<Option<Message>, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn versions(
            &self,
            _: MessageId,
        ) -> Result<Option<Vec<chat_domain::MessageVersion>>, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn history(
            &self,
            _: RoomId,
            _: HistoryQuery,
            _: Limit,
        ) -> Result<HistoryPage, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn edit(
            &self,
            _: MessageId,
            _: MessageContent,
            _: DateTime<Utc>,
            _: Option<&CorrelationId>,
        ) -> Result<Option<Message>, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn item_participants(&self, _: &str) -> Result<Vec<String>, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn clear_room(&self, _: RoomId, _: DateTime<Utc>) -> Result<u64, DomainError> {
            unreachable!("the writer only appends")
        }

        async fn delete(
            &self,
            _: MessageId,
            _: DateTime<Utc>,
            _: Option<&CorrelationId>,
        ) -> Result<Option<Message>, DomainError> {
            unreachable!("the writer only appends")
        }
    }

    /// One message handed to the fan-out.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Published {
        room: i64,
        seq: i64,
        content: String,
        /// Whether its sender's [`PendingPost`] had resolved already (`None`:
        /// the test did not hand it over to be watched).
        answered: Option<bool>,
    }

    #[derive(Default)]
    struct FakeFanOut {
        published: Mutex<Vec<Published>>,
        /// Senders' outcomes to look at when their message is published, by content.
        watched: Mutex<HashMap<String, PendingPost>>,
        /// Outcomes that had resolved before their message was published.
        early: Mutex<HashMap<String, Result<Posted, DomainError>>>,
        count: watch::Sender<usize>,
    }

    impl FakeFanOut {
        fn watch(&self, content: &str, pending: PendingPost) {
            self.watched.lock().unwrap().insert(content.to_owned(), pending);
        }

        async fn published(&self, n: usize) {
            let mut count = self.count.subscribe();
            within(&format!("{n} messages published"), count.wait_for(|count| *count >= n))
                .await
                .expect("the fan-out is alive");
        }

        /// The watched outcome of `content`, once it is known.
        async fn outcome(&self, content: &str) -> Result<Posted, DomainError> {
            if let Some(early) = self.early.lock().unwrap().remove(content) {
                return early;
            }
            let pending = self.watched.lock().unwrap().remove(content).expect("watched");
            within("the outcome", pending).await
        }

        fn contents(&self) -> Vec<String> {
            self.published.lock().unwrap().iter().map(|p| p.content.clone()).collect()
        }
    }

    impl FanOut for FakeFanOut {
        fn publish(&self, delivery: Delivery) {
            let RoomEvent::Message(message) = delivery.event else {
                panic!("the writer publishes messages only")
            };
            let mut watched = self.watched.lock().unwrap();
            let answered = watched.remove(&message.content).map(|mut pending| {
                let mut cx = Context::from_waker(Waker::noop());
                match std::pin::Pin::new(&mut pending).poll(&mut cx) {
                    Poll::Pending => {
                        watched.insert(message.content.clone(), pending);
                        false
                    }
                    Poll::Ready(outcome) => {
                        self.early.lock().unwrap().insert(message.content.clone(), outcome);
                        true
                    }
                }
            });
            drop(watched);
            self.published.lock().unwrap().push(Published {
                room: message.room_id.get(),
                seq: message.seq,
                content: message.content,
                answered,
            });
            self.count.send_modify(|count| *count += 1);
        }
    }

    fn message(room: i64, content: &str) -> NewMessage {
        NewMessage {
            room_id: RoomId::new(room).unwrap(),
            user_id: UserId::parse("trader").unwrap(),
            content: MessageContent::parse(content).unwrap(),
            message_type: MessageType::default(),
            client_msg_id: None,
            reply_to: None,
            created_at: chat_domain::timestamp::now(),
            conversation: None,
            correlation_id: None,
        }
    }

    fn settings(writers: usize, max_batch: usize, queue: usize) -> GroupCommitSettings {
        GroupCommitSettings { max_batch, queue, writers, deadline: Duration::from_secs(60) }
    }

    fn start(
        mode: Mode,
        settings: GroupCommitSettings,
    ) -> (Arc<FakeStore>, Arc<FakeFanOut>, GroupCommit) {
        let store = Arc::new(FakeStore::new(mode));
        let fan_out = Arc::new(FakeFanOut::default());
        let unread = Arc::new(crate::memory::InProcessUnread::default());
        let writer = GroupCommit::start(store.clone(), fan_out.clone(), unread, settings);
        (store, fan_out, writer)
    }

    fn seq_of(outcome: Result<Posted, DomainError>) -> i64 {
        match outcome {
            Ok(Posted::Created(message)) => message.seq,
            other => panic!("expected a stored message, got {other:?}"),
        }
    }

    fn strings(contents: &[&str]) -> Vec<String> {
        contents.iter().map(|c| (*c).to_owned()).collect()
    }

    #[tokio::test]
    async fn messages_submitted_during_a_commit_form_the_next_batch_in_submit_order() {
        let (store, _, writer) = start(Mode::Store, settings(1, 256, 100));
        let first = writer.submit(message(1, "first"));
        store.begun(1).await;
        let later = ["a", "b", "c", "d", "e"];
        let pending: Vec<PendingPost> =
            later.iter().map(|content| writer.submit(message(1, content))).collect();
        assert_eq!(writer.stats().waiting(), 5, "they wait while the first commit is held");
        store.open();
        assert_eq!(seq_of(within("first", first).await), 1);
        let seqs: Vec<i64> = within("the rest", futures_util::future::join_all(pending))
            .await
            .into_iter()
            .map(seq_of)
            .collect();
        assert_eq!(seqs, [2, 3, 4, 5, 6]);
        assert_eq!(store.batches(), [strings(&["first"]), strings(&later)]);
        let stats = writer.stats();
        assert_eq!((stats.batches(), stats.messages(), stats.largest_batch()), (2, 6, 5));
        assert_eq!(stats.waiting(), 0);
        // No timer: a lone message afterwards is a batch of its own at once.
        assert_eq!(seq_of(within("a lone message", writer.submit(message(1, "lone"))).await), 7);
        assert_eq!(store.sizes(), [1, 5, 1]);
    }

    #[tokio::test]
    async fn the_next_batch_is_stored_while_the_last_one_is_followed_up() {
        let (store, fan_out, writer) = start(Mode::Store, settings(1, 256, 100));
        store.hold_follow_ups.store(true, Ordering::Release);
        store.open();
        let mut first = writer.submit(message(1, "first"));
        store.followed_up(1).await;
        let second = writer.submit(message(1, "second"));
        store.begun(2).await;
        assert_eq!(store.batches(), [strings(&["first"]), strings(&["second"])]);
        assert!(fan_out.contents().is_empty(), "nothing is published before its follow-up");
        assert!((&mut first).now_or_never().is_none(), "nor answered");
        store.follow_ups.add_permits(2);
        assert_eq!(seq_of(within("first", first).await), 1);
        assert_eq!(seq_of(within("second", second).await), 2);
        assert_eq!(fan_out.contents(), strings(&["first", "second"]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rooms_messages_stay_with_one_writer_in_order() {
        const WRITERS: usize = 3;
        let (store, _, writer) = start(Mode::Store, settings(WRITERS, 4, 1000));
        // One message for each writer's share: three transactions in flight at once.
        let firsts: Vec<PendingPost> =
            (1..=3).map(|room| writer.submit(message(room, &format!("r{room}-first")))).collect();
        store.begun(WRITERS).await;
        let writers: HashSet<tokio::task::Id> =
            store.calls.lock().unwrap().iter().map(|call| call.writer).collect();
        assert_eq!(writers.len(), WRITERS, "each share has its own writer");

        let mut submitted: HashMap<i64, Vec<String>> = HashMap::new();
        let mut pending = Vec::new();
        // Five rooms in turn: no multiple of the writers, so a share's rooms do
        // not line up with any other way of spreading the messages.
        for i in 0..60 {
            let room = i % 5 + 1;
            let content = format!("r{room}-{i}");
            submitted.entry(room).or_default().push(content.clone());
            pending.push((room, writer.submit(message(room, &content))));
        }
        store.open();
        for first in firsts {
            assert_eq!(seq_of(within("a first message", first).await), 1);
        }
        let mut seqs: HashMap<i64, Vec<i64>> = HashMap::new();
        for (room, pending) in pending {
            seqs.entry(room).or_default().push(seq_of(within("a message", pending).await));
        }
        for (room, seqs) in &seqs {
            // Rooms 1 to 3 stored a first message before.
            let from = if *room <= 3 { 2 } else { 1 };
            let expected: Vec<i64> = (from..from + seqs.len() as i64).collect();
            assert_eq!(seqs, &expected, "room {room}: seqs in submit order");
        }

        // Which writer stored which room, and in what order.
        let calls = store.calls.lock().unwrap();
        assert!(calls.iter().all(|call| call.contents.len() <= 4), "batches stay within bounds");
        let mut writer_of: HashMap<i64, HashSet<tokio::task::Id>> = HashMap::new();
        let mut stored: HashMap<i64, Vec<String>> = HashMap::new();
        for call in calls.iter() {
            for content in &call.contents {
                let room: i64 = content[1..].split('-').next().unwrap().parse().unwrap();
                writer_of.entry(room).or_default().insert(call.writer);
                if !content.ends_with("-first") {
                    stored.entry(room).or_default().push(content.clone());
                }
            }
        }
        for room in 1..=5 {
            assert_eq!(writer_of[&room].len(), 1, "room {room} is stored by one writer");
            assert_eq!(stored[&room], submitted[&room], "room {room} is stored in submit order");
        }
        assert_eq!(writer_of[&1], writer_of[&4], "rooms 1 and 4 share a writer (1 % 3 = 4 % 3)");
        assert_ne!(writer_of[&1], writer_of[&2]);
    }

    #[tokio::test]
    async fn messages_reach_the_fan_out_before_their_senders_are_answered() {
        let (store, fan_out, writer) = start(Mode::Store, settings(1, 256, 100));
        let contents = ["m0", "m1", "m2", "m3", "m4"];
        fan_out.watch(contents[0], writer.submit(message(7, contents[0])));
        store.begun(1).await;
        for content in &contents[1..] {
            fan_out.watch(content, writer.submit(message(7, content)));
        }
        store.open();
        fan_out.published(contents.len()).await;
        let published = fan_out.published.lock().unwrap().clone();
        let expected: Vec<Published> = contents
            .iter()
            .enumerate()
            .map(|(n, content)| Published {
                room: 7,
                seq: n as i64 + 1,
                content: (*content).to_owned(),
                answered: Some(false),
            })
            .collect();
        assert_eq!(published, expected, "published in seq order, each before its answer");
        for (n, content) in contents.iter().enumerate() {
            assert_eq!(seq_of(fan_out.outcome(content).await), n as i64 + 1);
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let (store, fan_out, writer) = start(Mode::Store, settings(1, 256, 2));
        let first = writer.submit(message(1, "held"));
        store.begun(1).await;
        let mut queued = [writer.submit(message(1, "q1")), writer.submit(message(1, "q2"))];
        for pending in &mut queued {
            assert!(pending.now_or_never().is_none(), "a queued message waits for its commit");
        }
        let refused = writer.submit(message(1, "refused"));
        match refused.now_or_never() {
            Some(Err(DomainError::Unavailable(_))) => {}
            other => panic!("expected an immediate Unavailable, got {other:?}"),
        }
        let stats = writer.stats();
        assert_eq!((stats.refused(), stats.waiting()), (1, 2));
        store.open();
        assert_eq!(seq_of(within("held", first).await), 1);
        let [q1, q2] = queued;
        assert_eq!(seq_of(within("q1", q1).await), 2);
        assert_eq!(seq_of(within("q2", q2).await), 3);
        assert_eq!(store.batches(), [strings(&["held"]), strings(&["q1", "q2"])]);
        assert_eq!(fan_out.contents(), ["held", "q1", "q2"], "the refused one was never stored");
        assert_eq!(writer.stats().refused(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_database_fails_the_whole_batch() {
        let (store, fan_out, writer) = start(Mode::Unavailable, settings(1, 256, 100));
        let first = writer.submit(message(1, "first"));
        store.begun(1).await;
        let rest: Vec<PendingPost> =
            ["a", "b", "c"].iter().map(|content| writer.submit(message(1, content))).collect();
        store.open();
        let mut outcomes = vec![within("first", first).await];
        outcomes.extend(within("the rest", futures_util::future::join_all(rest)).await);
        for outcome in outcomes {
            assert!(matches!(outcome, Err(DomainError::Unavailable(_))), "{outcome:?}");
        }
        assert_eq!(
            store.batches(),
            [strings(&["first"]), strings(&["a", "b", "c"])],
            "an unreachable database is not tried again message by message"
        );
        assert!(fan_out.contents().is_empty(), "nothing is published");
    }

    #[tokio::test]
    async fn a_refused_batch_is_stored_message_by_message_and_one_bad_message_fails_alone() {
        let (store, fan_out, writer) = start(Mode::RefuseBad, settings(1, 256, 100));
        let first = writer.submit(message(1, "first"));
        store.begun(1).await;
        let rest = ["ok1", "bad", "ok2"].map(|content| writer.submit(message(1, content)));
        store.open();
        assert_eq!(seq_of(within("first", first).await), 1);
        let [ok1, bad, ok2] = rest;
        assert_eq!(seq_of(within("ok1", ok1).await), 2);
        assert!(matches!(within("bad", bad).await, Err(DomainError::Internal(_))));
        assert_eq!(seq_of(within("ok2", ok2).await), 3);
        assert_eq!(
            store.batches(),
            [
                strings(&["first"]),
                strings(&["ok1", "bad", "ok2"]),
                strings(&["ok1"]),
                strings(&["bad"]),
                strings(&["ok2"]),
            ],
            "the refused batch again one message at a time; a refused lone message is not retried"
        );
        assert_eq!(fan_out.contents(), ["first", "ok1", "ok2"]);
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_messages() {
        let (store, _, writer) = start(Mode::Store, settings(1, 3, 100));
        let first = writer.submit(message(1, "m0"));
        store.begun(1).await;
        let contents: Vec<String> = (1..=10).map(|n| format!("m{n}")).collect();
        let rest: Vec<PendingPost> =
            contents.iter().map(|content| writer.submit(message(1, content))).collect();
        store.open();
        assert_eq!(seq_of(within("m0", first).await), 1);
        let seqs: Vec<i64> = within("the rest", futures_util::future::join_all(rest))
            .await
            .into_iter()
            .map(seq_of)
            .collect();
        assert_eq!(seqs, (2..=11).collect::<Vec<i64>>());
        assert_eq!(store.sizes(), [1, 3, 3, 3, 1]);
        let batches = store.batches();
        assert_eq!(batches[1..].concat(), contents, "in submit order");
        assert_eq!(writer.stats().largest_batch(), 3);
    }
}
