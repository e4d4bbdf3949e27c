//! systemd notify protocol: `READY=1` once the store is open and the listener bound,
//! `WATCHDOG=1` at half the watchdog interval from a task on the daemon's tracker, and
//! `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` every call is a no-op.
//!
//! The watchdog is fed only while the daemon makes progress ([`Liveness::verdict`]): the
//! store's committer is alive and not stuck inside one round, the store has not been unable
//! to write for longer than the watchdog interval, and no worker has been busy with one item
//! for longer than that interval (at least [`MIN_STUCK`]). Otherwise the pings stop, with one
//! log line giving the reason, and systemd restarts the daemon after `WatchdogSec`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::Store;

/// A worker or the committer busy this long with one item never counts as stuck, whatever the
/// watchdog interval (short intervals are for tests; real work can take seconds).
pub const MIN_STUCK: Duration = Duration::from_secs(5);

/// Liveness stamps of the workers' loops.
pub struct Liveness {
    epoch: Instant,
    workers: Mutex<Vec<(&'static str, Arc<AtomicU64>)>>,
}

/// One worker's stamp: [`Stamp::busy`] while it works on an item; idle (waiting for work) is
/// never stuck.
#[derive(Clone)]
pub struct Stamp {
    epoch: Instant,
    /// Milliseconds since `epoch` (+1) when the current item began; 0 while idle.
    busy_since: Arc<AtomicU64>,
}

impl Default for Stamp {
    /// A stamp nobody watches.
    fn default() -> Stamp {
        Stamp {
            epoch: Instant::now(),
            busy_since: Arc::default(),
        }
    }
}

impl Stamp {
    /// Marks the worker busy until the guard drops.
    pub fn busy(&self) -> Busy<'_> {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.busy_since.store(now + 1, Relaxed);
        Busy(self)
    }
}

/// See [`Stamp::busy`].
pub struct Busy<'a>(&'a Stamp);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy_since.store(0, Relaxed);
    }
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            epoch: Instant::now(),
            workers: Mutex::default(),
        }
    }
}

impl Liveness {
    /// A new stamp for the worker `name`, watched from now on.
    pub fn stamp(&self, name: &'static str) -> Stamp {
        let busy_since = Arc::new(AtomicU64::new(0));
        self.workers
            .lock()
            .expect("liveness lock")
            .push((name, busy_since.clone()));
        Stamp {
            epoch: self.epoch,
            busy_since,
        }
    }

    /// Why the daemon is not making progress (so the watchdog must not be fed), or `None`.
    /// `interval` is the watchdog interval.
    pub fn verdict(&self, store: &Store, interval: Duration) -> Option<String> {
        let stuck = interval.max(MIN_STUCK);
        let health = store.health();
        match &health.failing {
            Some((_, d)) if *d < interval => {}
            _ => {
                if let Some(problem) = health.problem(stuck) {
                    return Some(problem);
                }
            }
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        for (name, since) in self.workers.lock().expect("liveness lock").iter() {
            let since = since.load(Relaxed);
            if since != 0 {
                let busy = Duration::from_millis(now.saturating_sub(since - 1));
                if busy > stuck {
                    return Some(format!(
                        "{name} has been busy with one item for {} s",
                        busy.as_secs()
                    ));
                }
            }
        }
        None
    }
}

/// Sends READY=1 and starts the watchdog pinger when systemd asked for one.
pub fn ready(
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    store: Store,
    live: Arc<Liveness>,
) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        tracing::warn!(error = %e, "Could not notify systemd of readiness.");
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        let period = interval / 2;
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(period);
            let mut withheld = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                match live.verdict(&store, interval) {
                    None => {
                        if withheld {
                            tracing::info!("Progress again; feeding the systemd watchdog.");
                            withheld = false;
                        }
                        let _ = sd_notify::notify(&[NotifyState::Watchdog]);
                    }
                    Some(reason) => {
                        if !withheld {
                            tracing::error!(reason = %reason, "No progress; no longer feeding the systemd watchdog.");
                            withheld = true;
                        }
                    }
                }
            }
        });
    }
}

/// Sends STOPPING=1.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}
