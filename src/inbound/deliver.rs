//! The delivery worker: sends queued API jobs to Ingram until Ingram accepts them. Each round
//! takes the due jobs — at most one per PO, so a PO's calls go strictly in order (its PO Response
//! before its PO Status calls) while different POs proceed in parallel — sends them
//! concurrently, and records each outcome: 2xx removes the job (the only way a job leaves the
//! queue, besides a dead letter); a retryable failure (timeout, 408, 429, 5xx) reschedules it
//! with exponential backoff and jitter, never sooner than Ingram's `Retry-After` /
//! `X-RateLimit-Reset`; a refusal (another 4xx) moves it to the dead letters. Ingram's nightly
//! maintenance is just a long run of retries; the queue drains on its own afterwards. PO numbers
//! (from ERP files) and Ingram's error messages are logged escaped ([`Escaped`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{canonical, CallKind};
use crate::events::Delivery;
use crate::ingram::api::{self, ApiClient, RetryAction};
use crate::store::records::JobRecord;
use crate::store::Store;
use crate::text::Escaped;

/// Longest idle wait before looking at the queue again.
const IDLE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub client: ApiClient,
    pub workers: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub wake: Arc<Notify>,
    /// The mapping whose body programs render each request.
    pub mapping: crate::mapping::SharedMapping,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    /// Busy while it works with the store (the watchdog's view of this worker; API calls have
    /// their own timeouts).
    pub live: crate::clock::BusySince,
}

impl Deliverer {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let store = self.store.clone();
            let limit = self.workers;
            let busy = self.live.busy();
            let due = tokio::task::spawn_blocking(move || store.due_jobs(now_ms(), limit)).await?;
            drop(busy);
            // A store that cannot be read or written (a full disk) is waited out, not fatal.
            let due = match due {
                Ok(due) => due,
                Err(e) => {
                    self.store_wait(&e, &shutdown).await;
                    continue;
                }
            };
            if due.jobs.is_empty() {
                let wait = due
                    .next_due_ms
                    .map(|t| {
                        Duration::from_millis(t.saturating_sub(now_ms()))
                            .max(Duration::from_millis(10))
                    })
                    .unwrap_or(IDLE)
                    .min(IDLE);
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                continue;
            }
            // A job may have been committed but not yet flushed by the inbox: make it durable
            // before Ingram sees it, so a crash cannot re-create it under a new correlation id.
            let flushed = {
                let _busy = self.live.busy();
                self.store.flush().await
            };
            if let Err(e) = flushed {
                self.store_wait(&e, &shutdown).await;
                continue;
            }
            let mut set = tokio::task::JoinSet::new();
            for job in due.jobs {
                let me = self.clone();
                set.spawn(async move { me.deliver(job).await });
            }
            while let Some(r) = set.join_next().await {
                if let Err(e) = r? {
                    // The store failed to record an outcome: the job stays queued and is retried.
                    tracing::error!(
                        error = %Escaped(&format!("{e:#}")),
                        "Could not record a delivery outcome."
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(self.backoff_base) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Logs a store error and waits a backoff (or until shutdown).
    async fn store_wait(&self, e: &crate::store::StoreError, shutdown: &CancellationToken) {
        tracing::warn!(error = %e, "Deliveries wait for the state store.");
        tokio::select! {
            _ = tokio::time::sleep(self.backoff_base.max(Duration::from_secs(1))) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// The request body: the job's canonical body through the mapping's body program (with
    /// `$segments` and `$po`, the stored canonical PO or null). Rendered at every attempt, so a
    /// corrected mapping applies to jobs already queued.
    async fn render(&self, job: &JobRecord) -> anyhow::Result<Result<serde_json::Value, String>> {
        let canonical: serde_json::Value = serde_json::from_str(&job.body)?;
        let mapping = self.mapping.current();
        let program = match job.kind {
            CallKind::PoResponse => &mapping.programs.po_response,
            CallKind::PoStatus => &mapping.programs.po_status,
        };
        let po = if program.is_identity() || !program.uses("$po") {
            serde_json::Value::Null
        } else {
            let store = self.store.clone();
            let po_number = job.po.clone();
            let order = tokio::task::spawn_blocking(move || store.order(&po_number)).await??;
            order.map_or(serde_json::Value::Null, |o| canonical::po_json(&o.order))
        };
        if program.is_identity() {
            return Ok(Ok(canonical));
        }
        // The program runs in a worker process under the mapping's limits, up to its time limit:
        // off the async runtime.
        let kind = job.kind;
        let segments = job.segments.clone();
        Ok(tokio::task::spawn_blocking(move || {
            crate::ingram::calls::render_body(&mapping, kind, &canonical, &segments, &po)
        })
        .await?)
    }

    /// One attempt at one job, outcome recorded durably.
    async fn deliver(&self, job: JobRecord) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let outcome = match self.render(&job).await? {
            Ok(body) => self.send(&job, &body).await,
            Err(reason) => Delivery::ProgramFailed { reason },
        };
        let elapsed = started.elapsed();
        let store = self.store.clone();
        let j = job.clone();
        let o = outcome.clone();
        let _busy = self.live.busy();
        tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
            let at = crate::clock::now_rfc3339();
            match &o {
                Delivery::Delivered { status } => store.complete_job(&j, &status.to_string(), &at),
                Delivery::Retry { after, reason } => {
                    store.reschedule_job(&j, now_ms() + after.as_millis() as u64, reason)
                }
                Delivery::Rejected { reason, .. } | Delivery::ProgramFailed { reason } => {
                    store.dead_letter(&j, reason, &at)
                }
            }
        })
        .await??;
        self.store.flush().await?;
        match &outcome {
            Delivery::Delivered { status } => {
                tracing::info!(po = %Escaped(&job.po), kind = ?job.kind, status, attempts = job.attempts + 1, correlation_id = %job.correlation_id, "Delivered to Ingram.")
            }
            Delivery::Retry { after, reason } => {
                tracing::warn!(po = %Escaped(&job.po), kind = ?job.kind, attempts = job.attempts + 1, retry_in_ms = after.as_millis() as u64, reason = %Escaped(reason), "Ingram call failed; will retry.")
            }
            Delivery::Rejected { reason, .. } => {
                tracing::error!(po = %Escaped(&job.po), kind = ?job.kind, job = job.id, reason = %Escaped(reason), "Ingram refused the call; dead-lettered.")
            }
            Delivery::ProgramFailed { reason } => {
                tracing::error!(po = %Escaped(&job.po), kind = ?job.kind, job = job.id, reason = %Escaped(reason), "Nothing sent: the mapping's program failed; dead-lettered (fix the mapping, then retry).")
            }
        }
        let _ = self.events.send(crate::events::Event::Delivery {
            po: job.po.clone(),
            job: job.id,
            kind: job.kind,
            outcome,
            elapsed,
        });
        Ok(())
    }

    /// Sends the rendered body once and classifies the answer.
    async fn send(&self, job: &JobRecord, body: &serde_json::Value) -> Delivery {
        let result = self
            .client
            .post_json(&job.path, body, &job.correlation_id)
            .await;
        match result {
            Ok(d) => Delivery::Delivered { status: d.status },
            Err(e) => match e.retry_action() {
                RetryAction::Retry { after } => {
                    let backoff = api::backoff(job.attempts, self.backoff_base, self.backoff_max);
                    Delivery::Retry {
                        after: after.map_or(backoff, |a| a.max(backoff)),
                        reason: e.to_string(),
                    }
                }
                RetryAction::Reject => Delivery::Rejected {
                    reason: e.to_string(),
                    status: e.status(),
                },
            },
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
