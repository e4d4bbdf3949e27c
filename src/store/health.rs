//! What the committer publishes about the store, for readers that must never wait on it
//! (`/readyz`, `/healthz`, the systemd watchdog, metrics, intake's fast refusal): whether the
//! last write or flush failed and why, since when, whether the committer thread is alive, and
//! how long its current round has been running. Also the write probe used before reopening a
//! failed database, and a fault hook that only tests can reach ([`Faults`]).

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::{BusyGuard, BusySince, Monotonic};

/// Bytes the probe writes (and syncs, and removes) before a failed database is reopened: two of
/// sled's 512 KiB log segments, so a reopened database can at least roll to a new one.
pub const PROBE_BYTES: usize = 1024 * 1024;

/// The probe file's name in the state directory.
pub const PROBE_FILE: &str = ".write-probe";

/// The committer's published state (shared with every `Store` clone).
pub struct CommitterHealth {
    epoch: Monotonic,
    /// Milliseconds since `epoch` of the committer's last loop turn.
    beat_ms: AtomicU64,
    /// Since when the current round has been running.
    busy: BusySince,
    alive: AtomicBool,
    failures: AtomicU64,
    failing: Mutex<Option<Failing>>,
    pub faults: Faults,
}

struct Failing {
    reason: String,
    since: Instant,
}

/// A snapshot of [`CommitterHealth`].
#[derive(Debug, Clone)]
pub struct StoreHealth {
    /// Why the store cannot write and for how long, or `None` while it can.
    pub failing: Option<(String, Duration)>,
    /// False once the committer thread has ended (every `Store` dropped, or it died).
    pub committer_alive: bool,
    /// How long the committer's current round has been running (`None`: waiting for work).
    pub committer_busy_for: Option<Duration>,
    /// Time since the committer last went round its loop (it wakes at least every heartbeat).
    pub since_beat: Duration,
    /// Transitions into the failing state since start.
    pub failures_total: u64,
}

impl StoreHealth {
    /// Why the store is not healthy now, or `None`. A round running longer than `stuck_after`
    /// counts as a hung committer.
    pub fn problem(&self, stuck_after: Duration) -> Option<String> {
        if let Some((reason, d)) = &self.failing {
            return Some(format!(
                "state store cannot write (for {} s): {reason}",
                d.as_secs()
            ));
        }
        if !self.committer_alive {
            return Some("state store committer has stopped".into());
        }
        match self.committer_busy_for {
            Some(d) if d > stuck_after => Some(format!(
                "state store committer has been inside one flush for {} s",
                d.as_secs()
            )),
            _ => None,
        }
    }
}

impl CommitterHealth {
    pub(super) fn new() -> CommitterHealth {
        CommitterHealth {
            epoch: Monotonic::start(),
            beat_ms: AtomicU64::new(0),
            busy: BusySince::default(),
            alive: AtomicBool::new(true),
            failures: AtomicU64::new(0),
            failing: Mutex::new(None),
            faults: Faults::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Failing>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> StoreHealth {
        let now = self.epoch.ms();
        StoreHealth {
            failing: self
                .lock()
                .as_ref()
                .map(|f| (f.reason.clone(), f.since.elapsed())),
            committer_alive: self.alive.load(Relaxed),
            committer_busy_for: self.busy.busy_for(),
            since_beat: Duration::from_millis(now.saturating_sub(self.beat_ms.load(Relaxed))),
            failures_total: self.failures.load(Relaxed),
        }
    }

    pub(super) fn failing_reason(&self) -> Option<String> {
        self.lock().as_ref().map(|f| f.reason.clone())
    }

    /// Why the database is closed (for errors raised while it is).
    pub(super) fn reason(&self) -> String {
        self.failing_reason()
            .unwrap_or_else(|| "the database is closed".into())
    }

    /// Marks the store failing; true when it was not failing before.
    pub(super) fn fail(&self, reason: &str) -> bool {
        let mut f = self.lock();
        match f.as_mut() {
            Some(f) => {
                f.reason = reason.to_string();
                false
            }
            None => {
                *f = Some(Failing {
                    reason: reason.to_string(),
                    since: Instant::now(),
                });
                self.failures.fetch_add(1, Relaxed);
                true
            }
        }
    }

    /// A recovery attempt failed: the latest reason, same start.
    pub(super) fn retry(&self, reason: &str) {
        if let Some(f) = self.lock().as_mut() {
            f.reason = reason.to_string();
        }
    }

    /// A flush succeeded; returns how long the store had been failing, if it was.
    pub(super) fn flushed(&self) -> Option<Duration> {
        self.lock().take().map(|f| f.since.elapsed())
    }

    pub(super) fn beat(&self) {
        self.beat_ms.store(self.epoch.ms(), Relaxed);
    }

    /// Marks a round running until the guard drops.
    pub(super) fn busy_guard(&self) -> BusyGuard<'_> {
        self.busy.busy()
    }

    /// Marks the committer dead when the guard drops (the thread ends, by return or panic).
    pub(super) fn alive_guard(&self) -> AliveGuard<'_> {
        AliveGuard(self)
    }
}

pub(super) struct AliveGuard<'a>(&'a CommitterHealth);

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.alive.store(false, Relaxed);
    }
}

/// Fault injection for tests that cannot mount a small filesystem: while `fail_writes` is on,
/// every flush and every recovery probe fails as if the disk were full. Compiled always, reachable
/// only through `Store::faults` (hidden from the docs); nothing in the configuration or the
/// environment sets it.
#[doc(hidden)]
#[derive(Default)]
pub struct Faults {
    fail_writes: AtomicBool,
}

impl Faults {
    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Relaxed);
    }

    pub(super) fn check(&self, what: &'static str) -> Result<(), InjectedFault> {
        if self.fail_writes.load(Relaxed) {
            Err(InjectedFault { what })
        } else {
            Ok(())
        }
    }
}

/// A write failure injected by a test ([`Faults::fail_writes`]), worded as a full disk.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: injected fault: no space left on device (os error 28)")]
pub(super) struct InjectedFault {
    what: &'static str,
}

/// Writes [`PROBE_BYTES`] to [`PROBE_FILE`] in `dir`, syncs it (delayed allocation reports a
/// full disk only there) and removes it.
pub(super) fn probe(dir: &Path, faults: &Faults) -> std::io::Result<()> {
    faults.check("probe").map_err(std::io::Error::other)?;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(PROBE_FILE);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&vec![0u8; PROBE_BYTES])?;
            f.sync_data()
        });
    let _ = std::fs::remove_file(&path);
    result
}
