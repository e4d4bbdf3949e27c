//! A dedicated thread, at a lowered CPU priority, for blocking work that is not on the webhook's
//! latency path (the outbox's rendering and fsyncs). On a busy machine the scheduler then serves
//! webhook requests and the store's committer first; the background work still gets its share,
//! only later. Jobs run one at a time, in order; a job that panics is reported to its caller
//! and the thread carries on.

use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the thread; dropping every clone ends it once its queue is empty.
#[derive(Clone)]
pub struct Background {
    tx: mpsc::Sender<Job>,
}

/// The background thread is gone, or the job panicked.
#[derive(Debug, thiserror::Error)]
#[error("background job for {0} did not complete")]
pub struct Lost(String);

impl Background {
    /// Starts the thread `name`; it raises its own nice value by `nice` (0 keeps the daemon's).
    pub fn spawn(name: &str, nice: i32) -> std::io::Result<Background> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_name = name.to_string();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if nice > 0 {
                    lower_priority(&thread_name, nice);
                }
                for job in rx {
                    // The caller hears of a panic through its dropped reply channel.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Background { tx })
    }

    /// Runs `f` on the thread and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Lost> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = reply.send(f());
            }))
            .map_err(|_| Lost(what.into()))?;
        rx.await.map_err(|_| Lost(what.into()))
    }
}

/// Adds `nice` to the calling thread's nice value (on Linux, `setpriority` on a thread id
/// applies to that thread alone). Lowering one's priority needs no privilege; if it fails
/// anyway (a seccomp filter, say), the work runs at normal priority.
fn lower_priority(name: &str, nice: i32) {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    let target = (current + nice).min(19);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), target) {
        tracing::warn!(thread = name, error = %e, "Cannot lower the background thread's priority; it runs at normal priority.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_in_order_at_lower_priority_and_survives_a_panic() {
        let bg = Background::spawn("bg-test", 5).unwrap();
        let base = rustix::process::getpriority_process(None).unwrap();
        let on_thread = bg
            .run("nice", || {
                rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
            })
            .await
            .unwrap();
        assert_eq!(on_thread, (base + 5).min(19));
        let r = bg.run("panic", || -> u32 { panic!("boom") }).await;
        assert!(r.is_err());
        let mut order = Vec::new();
        for i in 0..3 {
            order.push(bg.run("order", move || i).await.unwrap());
        }
        assert_eq!(order, [0, 1, 2]);
    }
}
