//! systemd notify protocol: `READY=1` once the store is open and the listener bound,
//! `WATCHDOG=1` pings at half the watchdog interval from a task on the daemon's tracker, and
//! `STOPPING=1` on shutdown. Without `NOTIFY_SOCKET` every call is a no-op.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Sends READY=1 and starts the watchdog pinger when systemd asked for one.
pub fn ready(tracker: &TaskTracker, shutdown: &CancellationToken) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready]) {
        tracing::warn!(error = %e, "Could not notify systemd of readiness.");
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        let period = interval / 2;
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => { let _ = sd_notify::notify(&[NotifyState::Watchdog]); }
                    _ = shutdown.cancelled() => return,
                }
            }
        });
    }
}

/// Sends STOPPING=1.
pub fn stopping() {
    let _ = sd_notify::notify(&[NotifyState::Stopping]);
}
