//! The group-commit thread: one `Db::flush` (and the syncs sled leaves out, see [`super::sync`])
//! for every request waiting when a round starts, with the waiting webhook events written in one
//! transaction right before it. A failed write or flush closes the database and marks the store
//! failing; the thread then recovers it (probe write, reopen, flush) at each heartbeat.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::intake::{Intake, PreparedEvent};
use super::{health, sync, Inner, Store, StoreError, StoreShared};

/// The longest anyone waits for the committer's answer before calling the store unavailable.
pub const COMMIT_WAIT: Duration = Duration::from_secs(60);

/// How often the idle committer wakes: to stamp its heartbeat and, while the store cannot
/// write, to try to recover it.
pub const HEARTBEAT: Duration = Duration::from_millis(500);

pub(super) fn committer_late() -> String {
    format!(
        "the committer did not answer within {} s",
        COMMIT_WAIT.as_secs()
    )
}

/// Where a flush's outcome goes: an async waiter or a blocking thread.
pub(super) enum FlushReply {
    Async(oneshot::Sender<Result<(), StoreError>>),
    Blocking(std_mpsc::Sender<Result<(), StoreError>>),
}

impl FlushReply {
    fn send(self, r: Result<(), StoreError>) {
        // A waiter that went away (request cancelled) needs no answer.
        let _ = match self {
            FlushReply::Async(tx) => tx.send(r).map_err(drop),
            FlushReply::Blocking(tx) => tx.send(r).map_err(drop),
        };
    }
}
pub(super) type IntakeReply = oneshot::Sender<Result<Intake, StoreError>>;

/// What the committer thread is asked to do.
pub(super) enum Commit {
    /// Make every write so far durable.
    Flush(FlushReply),
    /// Write this event (batched with the others waiting), make it durable, answer.
    Intake(Box<PreparedEvent>, IntakeReply),
}

impl Store {
    pub(super) fn send(&self, c: Commit) -> Result<(), StoreError> {
        let guard = self.shared.commit_tx.lock().expect("commit sender lock");
        let sender = guard.as_ref().ok_or(StoreError::Closed)?;
        sender.send(c).map_err(|_| StoreError::Closed)
    }

    /// Makes every write completed before this call durable. Concurrent callers share one sync.
    /// Waits at most [`COMMIT_WAIT`] for the committer.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Commit::Flush(FlushReply::Async(tx)))?;
        match tokio::time::timeout(COMMIT_WAIT, rx).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => Err(StoreError::Unavailable(committer_late())),
        }
    }

    /// A synchronous flush for callers outside the runtime (CLI, workers' blocking threads).
    /// Waits at most [`COMMIT_WAIT`] for the committer.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        // Through the committer too: a flush on this thread would hold sled's lock against the
        // committer's intake transaction (see the module doc).
        let (tx, rx) = std_mpsc::channel();
        self.send(Commit::Flush(FlushReply::Blocking(tx)))?;
        match rx.recv_timeout(COMMIT_WAIT) {
            Ok(r) => r,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                Err(StoreError::Unavailable(committer_late()))
            }
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::Closed),
        }
    }
}

/// The group-commit loop: waits for a request, takes every request queued behind it, writes the
/// waiting webhook events in one transaction, runs one flush and the syncs sled's flush leaves
/// out ([`sync`]), answers them all. Ends when every [`Store`] clone is gone.
///
/// A failed write or flush closes the database (sled poisons itself after a failed write and
/// fails every later one, even once space returns; a failed fsync may have dropped dirty pages)
/// and marks the store failing. From then on it wakes every [`HEARTBEAT`] to recover: a probe
/// write in the state directory, then a reopen from what is on disk, then a flush. Requests
/// meanwhile are answered at once with the reason. A panic in a round is caught: the thread
/// never dies; the round's waiters see the store closed and the store is recovered the same
/// way.
pub(super) fn committer(
    weak: std::sync::Weak<StoreShared>,
    rx: std_mpsc::Receiver<Commit>,
    syncer: Option<sync::Syncer>,
    health: Arc<health::CommitterHealth>,
) {
    let _alive = health.alive_guard();
    let mut state = CommitterState {
        syncer,
        retired: None,
    };
    loop {
        health.beat();
        let first = match rx.recv_timeout(HEARTBEAT) {
            Ok(c) => Some(c),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if first.is_none() && health.failing_reason().is_none() {
            continue;
        }
        let mut flushes = Vec::new();
        let mut intakes = Vec::new();
        for c in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            match c {
                Commit::Flush(reply) => flushes.push(reply),
                Commit::Intake(ev, reply) => intakes.push((ev, reply)),
            }
        }
        let Some(shared) = weak.upgrade() else {
            for reply in flushes {
                reply.send(Err(StoreError::Closed));
            }
            for (_, reply) in intakes {
                let _ = reply.send(Err(StoreError::Closed));
            }
            break;
        };
        let busy = health.busy_guard();
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.round(&shared, flushes, intakes)
        }));
        let answers = match round {
            Ok(answers) => answers,
            Err(_) => {
                state.fail(&shared, "internal error: the committer panicked".into());
                Answers::default()
            }
        };
        drop(busy);
        // Let go of the database before answering: a caller that drops its last `Store` after
        // the answer must find it closed (its file lock released).
        drop(shared);
        answers.send();
    }
}

/// A round's answers, sent once the committer has let go of the database.
#[derive(Default)]
struct Answers {
    intakes: Vec<(IntakeReply, Result<Intake, StoreError>)>,
    flushes: Vec<(FlushReply, Result<(), StoreError>)>,
}

impl Answers {
    fn send(self) {
        for (reply, outcome) in self.intakes {
            let _ = reply.send(outcome);
        }
        for (reply, outcome) in self.flushes {
            reply.send(outcome);
        }
    }
}

/// What the committer keeps between rounds.
struct CommitterState {
    /// `None` while the database is closed after a failure.
    syncer: Option<sync::Syncer>,
    /// The database taken out of service after a failure, kept until every other holder has
    /// let go so that its last drop (where sled may still try I/O, or panic) happens here.
    retired: Option<Arc<Inner>>,
}

impl CommitterState {
    /// One round: recover if needed, then write and flush; returns the answers.
    fn round(
        &mut self,
        shared: &Arc<StoreShared>,
        flushes: Vec<FlushReply>,
        intakes: Vec<(Box<PreparedEvent>, IntakeReply)>,
    ) -> Answers {
        if shared.health.failing_reason().is_some() {
            self.recover(shared);
        }
        let refuse = |reason: String, flushes: Vec<FlushReply>, intakes: Vec<_>| Answers {
            intakes: intakes
                .into_iter()
                .map(|(_, reply)| (reply, Err(StoreError::Unavailable(reason.clone()))))
                .collect(),
            flushes: flushes
                .into_iter()
                .map(|reply| (reply, Err(StoreError::Unavailable(reason.clone()))))
                .collect(),
        };
        if let Some(reason) = shared.health.failing_reason() {
            return refuse(reason, flushes, intakes);
        }
        let store = Store {
            shared: shared.clone(),
        };
        let outcomes = record_batch(&store, &intakes);
        drop(store);
        let flushed = self.flush(shared);
        match flushed {
            Ok(()) => {
                shared.health.flushed();
                Answers {
                    intakes: intakes
                        .into_iter()
                        .zip(outcomes)
                        .map(|((_, reply), outcome)| (reply, outcome))
                        .collect(),
                    flushes: flushes.into_iter().map(|reply| (reply, Ok(()))).collect(),
                }
            }
            Err(e) => {
                let reason = e.to_string();
                self.fail(shared, reason.clone());
                refuse(reason, flushes, intakes)
            }
        }
    }

    /// sled's flush, then the syncs it leaves out.
    fn flush(&mut self, shared: &StoreShared) -> Result<(), FlushError> {
        shared.health.faults.check("flush")?;
        let inner = {
            let slot = shared.slot.read().unwrap_or_else(|e| e.into_inner());
            slot.clone().ok_or(FlushError::Closed)?
        };
        inner.db.flush().map_err(FlushError::Flush)?;
        drop(inner);
        let syncer = self.syncer.as_mut().ok_or(FlushError::Closed)?;
        syncer.after_flush().map(drop).map_err(FlushError::Sync)
    }

    /// Takes the database out of service: every later request is refused with `reason` until
    /// [`CommitterState::recover`] reopens it.
    fn fail(&mut self, shared: &StoreShared, reason: String) {
        if shared.health.fail(&reason) {
            tracing::error!(reason = %reason, "State store cannot write; intake refused until it recovers.");
        }
        let taken = shared
            .slot
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(old) = taken {
            self.retired = Some(old);
        }
        self.syncer = None;
    }

    /// While failing: closes the old database once nobody else holds it, probes the state
    /// directory with a real write, reopens the database and flushes it. Leaves the store
    /// failing (with the latest reason) when a step fails; the next heartbeat tries again.
    fn recover(&mut self, shared: &StoreShared) {
        if let Some(old) = self.retired.take() {
            if Arc::strong_count(&old) > 1 {
                self.retired = Some(old);
                shared
                    .health
                    .retry("waiting for readers of the old database to finish");
                return;
            }
            // The last reference: sled's drop may try a last flush (or panic on a failed
            // fsync); it happens here, where a panic is caught.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(old))).is_err() {
                tracing::warn!("Closing the failed state store panicked; reopening anyway.");
            }
        }
        if let Err(e) = health::probe(&shared.dir, &shared.health.faults) {
            shared.health.retry(&format!("probe write: {e}"));
            return;
        }
        let reopened = Inner::open(&shared.dir, &shared.options).and_then(|inner| {
            let syncer = sync::Syncer::open(&shared.dir.join("db")).map_err(sled::Error::Io)?;
            Ok((inner, syncer))
        });
        let (inner, syncer) = match reopened {
            Ok(x) => x,
            Err(e) => {
                shared.health.retry(&format!("reopen: {e}"));
                return;
            }
        };
        *shared.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(inner));
        self.syncer = Some(syncer);
        match self.flush(shared) {
            Ok(()) => {
                let failed_for = shared.health.flushed();
                tracing::info!(
                    failed_secs = failed_for.map_or(0, |d| d.as_secs()),
                    "State store writes again; intake resumed."
                );
            }
            Err(e) => self.fail(shared, e.to_string()),
        }
    }
}

/// Writes a batch of events in one transaction; if that fails, each on its own, so one bad
/// event cannot fail the others. One outcome per event, in order.
fn record_batch(
    store: &Store,
    intakes: &[(Box<PreparedEvent>, IntakeReply)],
) -> Vec<Result<Intake, StoreError>> {
    if intakes.is_empty() {
        return Vec::new();
    }
    let evs: Vec<&PreparedEvent> = intakes.iter().map(|(ev, _)| ev.as_ref()).collect();
    match store.record_events(&evs) {
        Ok(outcomes) if outcomes.len() == evs.len() => outcomes.into_iter().map(Ok).collect(),
        _ => evs.iter().map(|ev| store.record_prepared(ev)).collect(),
    }
}

/// Why the committer's flush failed; the store is out of service with this as its reason.
#[derive(Debug, thiserror::Error)]
enum FlushError {
    #[error("{0}")]
    Injected(#[from] health::InjectedFault),
    #[error("the database is closed")]
    Closed,
    #[error("flush: {0}")]
    Flush(sled::Error),
    #[error("sync after flush: {0}")]
    Sync(std::io::Error),
}
