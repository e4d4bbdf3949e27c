//! systemd notify protocol: `READY=1` once the store is open and the listener bound,
//! `WATCHDOG=1` at half the watchdog interval from a task on the daemon's tracker, and
//! `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` every call is a no-op.
//!
//! The watchdog is fed only while the daemon makes progress ([`Liveness::verdict`]): the
//! store's committer is alive and not stuck inside one round, the store has not been unable
//! to write for longer than the watchdog interval, and no worker has been busy with one item
//! for longer than that interval (at least [`MIN_STUCK`]). Otherwise the pings stop, with one
//! log line giving the reason, and systemd restarts the daemon after `WatchdogSec`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::BusySince;
use crate::store::Store;

/// A worker or the committer busy this long with one item never counts as stuck, whatever the
/// watchdog interval (short intervals are for tests; real work can take seconds).
pub const MIN_STUCK: Duration = Duration::from_secs(5);

/// Liveness stamps of the workers' loops: idle (waiting for work) is never stuck.
#[derive(Default)]
pub struct Liveness {
    workers: Mutex<Vec<(&'static str, BusySince)>>,
}

impl Liveness {
    /// A new stamp for the worker `name`, watched from now on.
    pub fn stamp(&self, name: &'static str) -> BusySince {
        let stamp = BusySince::default();
        self.workers
            .lock()
            .expect("liveness lock")
            .push((name, stamp.clone()));
        stamp
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
        for (name, stamp) in self.workers.lock().expect("liveness lock").iter() {
            if let Some(busy) = stamp.busy_for().filter(|b| *b > stuck) {
                return Some(format!(
                    "{name} has been busy with one item for {} s",
                    busy.as_secs()
                ));
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
