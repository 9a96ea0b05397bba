//! A circuit breaker per dependency that is a cache or a bus (Redis, RabbitMQ):
//! the first call that fails for want of the dependency, or outlasts the deadline,
//! opens it; while open every caller skips the dependency at once, and a background
//! probe closes it when the dependency answers again. Counts per adapter for metrics.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;

/// How calls are bounded and how often an open circuit's probe asks again.
#[derive(Debug, Clone, Copy)]
pub struct CircuitSettings {
    /// The longest one call (and one probe) may take before it counts as failed.
    pub deadline: Duration,
    /// The first pause before a probe; doubled after each failed probe…
    pub probe_first: Duration,
    /// …up to this.
    pub probe_max: Duration,
}

/// Asks the dependency, past the circuit, whether it answers (`true`: it does).
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// Why a call did not get an answer from the dependency.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal<E> {
    /// The circuit is open: the dependency was not asked.
    Open,
    /// No answer within the deadline (the circuit is open now).
    TimedOut,
    /// The call failed with the dependency's error.
    Failed(E),
}

/// One dependency's circuit; cheap to clone.
#[derive(Clone)]
pub struct Circuit {
    shared: Arc<Shared>,
}

struct Shared {
    dependency: &'static str,
    settings: CircuitSettings,
    /// The hot path reads this; `state` tells waiters about changes.
    open: AtomicBool,
    state: watch::Sender<bool>,
    opened: AtomicU64,
    probes: AtomicU64,
    adapters: Mutex<Vec<(&'static str, Arc<Counts>)>>,
}

/// What one adapter's calls did.
#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    skipped: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of a circuit, for health and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitStats {
    pub dependency: &'static str,
    pub open: bool,
    /// How often it opened since start.
    pub opened: u64,
    /// Probes sent while it was open.
    pub probes: u64,
    pub adapters: Vec<AdapterStats>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterStats {
    pub adapter: &'static str,
    /// Calls that reached the dependency.
    pub calls: u64,
    /// Calls skipped because the circuit was open.
    pub skipped: u64,
    /// Calls that failed for want of the dependency or timed out.
    pub failures: u64,
}

impl Circuit {
    /// A closed circuit for `dependency`, with its probe task (which ends when
    /// the last handle is dropped). Must be called inside the Tokio runtime.
    pub fn new(dependency: &'static str, settings: CircuitSettings, probe: Probe) -> Self {
        let (state, watching) = watch::channel(false);
        let shared = Arc::new(Shared {
            dependency,
            settings,
            open: AtomicBool::new(false),
            state,
            opened: AtomicU64::new(0),
            probes: AtomicU64::new(0),
            adapters: Mutex::default(),
        });
        tokio::spawn(probe_while_open(Arc::downgrade(&shared), watching, probe));
        Self { shared }
    }

    /// The way through this circuit for `adapter`, whose calls are counted apart.
    pub fn gate(&self, adapter: &'static str) -> Gate {
        let mut adapters = self.adapters();
        let counts = match adapters.iter().find(|(name, _)| *name == adapter) {
            Some((_, counts)) => counts.clone(),
            None => {
                let counts = Arc::new(Counts::default());
                adapters.push((adapter, counts.clone()));
                counts
            }
        };
        Gate { circuit: self.clone(), adapter, counts }
    }

    pub fn dependency(&self) -> &'static str {
        self.shared.dependency
    }

    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Opens the circuit (if closed) because of `reason`, seen by `adapter`.
    pub fn trip(&self, adapter: &str, reason: &dyn std::fmt::Display) {
        if !self.shared.open.swap(true, Ordering::AcqRel) {
            self.shared.opened.fetch_add(1, Ordering::Relaxed);
            self.shared.state.send_replace(true);
            tracing::warn!(
                dependency = self.shared.dependency,
                adapter,
                %reason,
                "circuit open: calls skip the dependency until a probe finds it back"
            );
        }
    }

    fn close(&self) {
        if self.shared.open.swap(false, Ordering::AcqRel) {
            self.shared.state.send_replace(false);
            tracing::info!(
                dependency = self.shared.dependency,
                "circuit closed: the dependency answers again"
            );
        }
    }

    /// Resolves once the circuit is closed (at once if it is).
    pub async fn closed(&self) {
        let mut state = self.shared.state.subscribe();
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = state.wait_for(|open| !*open).await;
    }

    pub fn stats(&self) -> CircuitStats {
        let adapters = self
            .adapters()
            .iter()
            .map(|(adapter, counts)| AdapterStats {
                adapter,
                calls: counts.calls.load(Ordering::Relaxed),
                skipped: counts.skipped.load(Ordering::Relaxed),
                failures: counts.failures.load(Ordering::Relaxed),
            })
            .collect();
        CircuitStats {
            dependency: self.shared.dependency,
            open: self.is_open(),
            opened: self.shared.opened.load(Ordering::Relaxed),
            probes: self.shared.probes.load(Ordering::Relaxed),
            adapters,
        }
    }

    fn adapters(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Arc<Counts>)>> {
        self.shared.adapters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One adapter's calls through a [`Circuit`].
#[derive(Clone)]
pub struct Gate {
    circuit: Circuit,
    adapter: &'static str,
    counts: Arc<Counts>,
}

impl Gate {
    /// Runs `work` unless the circuit is open (then `work` is dropped unpolled:
    /// it never reaches the dependency). A call that outlasts the deadline, or
    /// fails with an error `is_outage` says is the dependency's absence, opens
    /// the circuit; any other answer, an error included, shows it is there.
    pub async fn call<T, E>(
        &self,
        work: impl Future<Output = Result<T, E>>,
        is_outage: impl FnOnce(&E) -> bool,
    ) -> Result<T, Refusal<E>>
    where
        E: std::fmt::Display,
    {
        if self.circuit.is_open() {
            self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Open);
        }
        self.counts.calls.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.circuit.shared.settings.deadline, work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if is_outage(&error) {
                    self.failed(&error);
                }
                Err(Refusal::Failed(error))
            }
            Err(_) => {
                self.failed(&"no answer within the deadline");
                Err(Refusal::TimedOut)
            }
        }
    }

    /// Opens the circuit for a failure the adapter saw outside [`Gate::call`]
    /// (e.g. a connection found closed).
    pub fn failed(&self, reason: &dyn std::fmt::Display) {
        self.counts.failures.fetch_add(1, Ordering::Relaxed);
        self.circuit.trip(self.adapter, reason);
    }

    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }
}

/// Waits for the circuit to open, then probes with backoff until the
/// dependency answers and closes it; again at the next opening.
async fn probe_while_open(shared: Weak<Shared>, mut state: watch::Receiver<bool>, probe: Probe) {
    loop {
        // Fails once every handle (and so the sender) is gone.
        if state.wait_for(|open| *open).await.is_err() {
            return;
        }
        let Some(settings) = shared.upgrade().map(|s| s.settings) else { return };
        let mut pause = settings.probe_first;
        loop {
            tokio::time::sleep(pause).await;
            // Held only while probing: a dropped circuit ends the task.
            let Some(circuit) = shared.upgrade().map(|shared| Circuit { shared }) else { return };
            if !circuit.is_open() {
                break;
            }
            circuit.shared.probes.fetch_add(1, Ordering::Relaxed);
            if matches!(tokio::time::timeout(settings.deadline, probe()).await, Ok(true)) {
                circuit.close();
                break;
            }
            pause = (pause * 2).min(settings.probe_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const SETTINGS: CircuitSettings = CircuitSettings {
        deadline: Duration::from_millis(100),
        probe_first: Duration::from_millis(10),
        probe_max: Duration::from_millis(20),
    };

    /// A dependency the test switches on and off; counts what reached it.
    #[derive(Clone, Default)]
    struct Fake {
        down: Arc<AtomicBool>,
        silent: Arc<AtomicBool>,
        reached: Arc<AtomicUsize>,
    }

    impl Fake {
        async fn ask(&self) -> Result<&'static str, String> {
            self.reached.fetch_add(1, Ordering::SeqCst);
            if self.silent.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.down.load(Ordering::SeqCst) { Err("refused".to_owned()) } else { Ok("pong") }
        }

        fn circuit(&self) -> Circuit {
            let fake = self.clone();
            let probe: Probe = Arc::new(move || {
                let fake = fake.clone();
                Box::pin(async move {
                    !fake.down.load(Ordering::SeqCst) && !fake.silent.load(Ordering::SeqCst)
                })
            });
            Circuit::new("fake", SETTINGS, probe)
        }
    }

    fn is_outage(error: &String) -> bool {
        error == "refused"
    }

    #[tokio::test]
    async fn an_outage_opens_it_calls_skip_the_dependency_and_the_probe_closes_it() {
        let fake = Fake::default();
        let circuit = fake.circuit();
        let gate = circuit.gate("cache");
        assert_eq!(gate.call(fake.ask(), is_outage).await, Ok("pong"));

        fake.down.store(true, Ordering::SeqCst);
        assert_eq!(
            gate.call(fake.ask(), is_outage).await,
            Err(Refusal::Failed("refused".to_owned()))
        );
        assert!(circuit.is_open());
        let reached = fake.reached.load(Ordering::SeqCst);
        for _ in 0..100 {
            assert_eq!(gate.call(fake.ask(), is_outage).await, Err(Refusal::Open));
        }
        assert_eq!(fake.reached.load(Ordering::SeqCst), reached, "no call reached it while open");

        fake.down.store(false, Ordering::SeqCst);
        circuit.closed().await;
        assert_eq!(gate.call(fake.ask(), is_outage).await, Ok("pong"));
        let stats = circuit.stats();
        assert_eq!((stats.open, stats.opened), (false, 1));
        assert!(stats.probes >= 1);
        assert_eq!(
            stats.adapters,
            [AdapterStats { adapter: "cache", calls: 3, skipped: 100, failures: 1 }]
        );
    }

    #[tokio::test]
    async fn a_call_without_an_answer_opens_it_at_the_deadline() {
        let fake = Fake::default();
        let circuit = fake.circuit();
        let (a, b) = (circuit.gate("a"), circuit.gate("b"));
        fake.silent.store(true, Ordering::SeqCst);
        assert_eq!(a.call(fake.ask(), is_outage).await, Err(Refusal::TimedOut));
        assert_eq!(
            b.call(fake.ask(), is_outage).await,
            Err(Refusal::Open),
            "open for every adapter"
        );
        fake.silent.store(false, Ordering::SeqCst);
        circuit.closed().await;
        assert_eq!(b.call(fake.ask(), is_outage).await, Ok("pong"));
        let stats = circuit.stats();
        assert_eq!(
            stats.adapters[0],
            AdapterStats { adapter: "a", calls: 1, skipped: 0, failures: 1 }
        );
        assert_eq!(
            stats.adapters[1],
            AdapterStats { adapter: "b", calls: 1, skipped: 1, failures: 0 }
        );
    }

    #[tokio::test]
    async fn an_error_that_is_an_answer_leaves_it_closed() {
        let fake = Fake::default();
        let circuit = fake.circuit();
        let gate = circuit.gate("cache");
        let answered = gate.call(async { Err::<(), _>("WRONGTYPE".to_owned()) }, is_outage).await;
        assert_eq!(answered, Err(Refusal::Failed("WRONGTYPE".to_owned())));
        assert!(!circuit.is_open());
        assert_eq!(gate.call(fake.ask(), is_outage).await, Ok("pong"));
    }

    #[tokio::test]
    async fn the_probe_task_ends_with_the_circuit() {
        let fake = Fake::default();
        let circuit = fake.circuit();
        let watcher = Arc::downgrade(&circuit.shared);
        circuit.trip("test", &"down");
        fake.down.store(true, Ordering::SeqCst);
        drop(circuit);
        assert!(watcher.upgrade().is_none(), "the probe task holds no handle between probes");
    }
}
