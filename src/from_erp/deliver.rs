//! The delivery worker: sends queued API jobs to the distributor until it accepts them. Each
//! account has its own lane (a [`DeliveryAccount`]: its [`Partner`], its [`Limiter`], its mapping)
//! running on its own task, taking only its own account's jobs, so one account's API being down, slow or throttling never delays another account's
//! calls. Each round of a lane takes the due jobs — at most one per PO, so a PO's calls go
//! strictly in order (its PO Response before its PO Status calls, and behind a dead letter of
//! its PO: `Store::due_jobs`), up to `ROUND_PER_WORKER` per call in flight, while different POs
//! proceed in parallel — and sends them `delivery.workers` at a time, each call first waiting for the account's limiter: its pace
//! (`requests_per_minute`), a pause Ingram asked for (a 429's `Retry-After` /
//! `X-RateLimit-Reset`, or an `X-RateLimit-Remaining` at or below the calls that may be in
//! flight), and any declared maintenance window. Such waits (and a retryable failure of a call
//! a window began under) send the call again later without recording an attempt. Otherwise
//! each outcome is recorded: 2xx removes the job (the only way a job leaves the queue, besides a
//! dead letter); a retryable failure (timeout, 408, 5xx) reschedules it with exponential backoff
//! and jitter, never sooner than Ingram's `Retry-After`; a refusal (another 4xx) moves it to the
//! dead letters. PO numbers (from ERP files) and Ingram's error messages are logged escaped
//! ([`Escaped`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{canonical, CallKind};
use crate::events::Delivery;
use crate::pacing::{Limiter, PauseCause};
use crate::partner::{self, Partner, PartnerAnswer, Rate, Retry};
use crate::store::records::JobRecord;
use crate::store::Store;
use crate::text::Escaped;

/// A round takes up to this many due jobs per call in flight (`delivery.workers`): the queue is
/// read, and flushed, once per round rather than once per `workers` calls.
const ROUND_PER_WORKER: usize = 16;

/// Longest idle wait before looking at the queue again.
const IDLE: Duration = Duration::from_secs(60);

/// How long a 429 without `Retry-After` or `X-RateLimit-Reset` pauses the account (Ingram's
/// limits are per minute).
const THROTTLE_PAUSE: Duration = Duration::from_secs(60);

/// One account's bundle: everything its lane needs to deliver its calls.
#[derive(Clone)]
pub struct DeliveryAccount {
    /// The account's id (`default` for `[ingram]`): in logs and metrics labels.
    pub id: String,
    /// Who the calls go to.
    pub partner: Arc<dyn Partner>,
    /// The account's pace, pauses and maintenance windows (shared with `/metrics` and alerts).
    pub limiter: Arc<Limiter>,
    /// The mapping whose body programs render the account's requests.
    pub mapping: crate::mapping::SharedMapping,
}

#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    /// One lane each.
    pub accounts: Vec<DeliveryAccount>,
    /// Jobs a lane sends at once.
    pub workers: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Woken when jobs are queued; wakes every lane.
    pub wake: Arc<Notify>,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    /// Busy while it works with the store (the watchdog's view of this worker; API calls have
    /// their own timeouts).
    pub live: crate::clock::BusySince,
    /// The daemon's clock: when jobs are due.
    pub clock: crate::clock::Clock,
}

/// One account's lane: the worker's shared parts, the account, and its own wake-up.
#[derive(Clone)]
struct Lane {
    d: Deliverer,
    account: DeliveryAccount,
    wake: Arc<Notify>,
}

impl Deliverer {
    /// Runs one lane per account until shutdown (or a lane fails).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut lanes = tokio::task::JoinSet::new();
        let mut wakes = Vec::new();
        for account in self.accounts.clone() {
            let lane = Lane {
                d: self.clone(),
                account,
                wake: Arc::new(Notify::new()),
            };
            wakes.push(lane.wake.clone());
            lanes.spawn(lane.run(shutdown.clone()));
        }
        loop {
            tokio::select! {
                // New jobs: each lane looks at its queue (`notify_one` keeps a wake-up that
                // lands while the lane is busy).
                _ = self.wake.notified() => wakes.iter().for_each(|w| w.notify_one()),
                r = lanes.join_next() => match r {
                    Some(r) => r??,
                    None => return Ok(()),
                },
            }
        }
    }
}

impl Lane {
    async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let busy = self.d.live.busy();
            let due = self.due().await?;
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
                        Duration::from_millis(t.saturating_sub(self.d.clock.now_ms()))
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
                let _busy = self.d.live.busy();
                self.d.store.flush().await
            };
            if let Err(e) = flushed {
                self.store_wait(&e, &shutdown).await;
                continue;
            }
            // At most `workers` calls in flight; the round's other jobs wait their turn (in
            // queue order: the semaphore is fair).
            let slots = Arc::new(tokio::sync::Semaphore::new(self.d.workers));
            let mut set = tokio::task::JoinSet::new();
            for job in due.jobs {
                let me = self.clone();
                let stop = shutdown.clone();
                let slots = slots.clone();
                set.spawn(async move {
                    let slot = tokio::select! {
                        slot = slots.acquire_owned() => slot?,
                        _ = stop.cancelled() => return Ok(()),
                    };
                    me.deliver(job, &stop, slot).await
                });
            }
            while let Some(r) = set.join_next().await {
                if let Err(e) = r? {
                    // The store failed to record an outcome: the job stays queued and is retried.
                    tracing::error!(
                        account = %self.account.id,
                        error = %Escaped(&format!("{e:#}")),
                        "Could not record a delivery outcome."
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(self.d.backoff_base) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// This account's due jobs.
    async fn due(&self) -> anyhow::Result<Result<crate::store::Due, crate::store::StoreError>> {
        let store = self.d.store.clone();
        let (limit, now) = (self.d.workers * ROUND_PER_WORKER, self.d.clock.now_ms());
        let account = self.account.id.clone();
        Ok(tokio::task::spawn_blocking(move || store.due_jobs(Some(&account), now, limit)).await?)
    }

    /// Logs a store error and waits a backoff (or until shutdown).
    async fn store_wait(&self, e: &crate::store::StoreError, shutdown: &CancellationToken) {
        tracing::warn!(error = %e, "Deliveries wait for the state store.");
        tokio::select! {
            _ = tokio::time::sleep(self.d.backoff_base.max(Duration::from_secs(1))) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// The request body: the job's canonical body through the mapping's body program (with
    /// `$segments` and `$po`, the stored canonical PO or null). Rendered at every attempt, so a
    /// corrected mapping applies to jobs already queued.
    async fn render(
        &self,
        job: &JobRecord,
    ) -> anyhow::Result<Result<serde_json::Value, crate::program::BodyProgramError>> {
        let canonical: serde_json::Value = serde_json::from_str(&job.body)?;
        let mapping = self.account.mapping.current();
        let program = match job.kind {
            CallKind::PoResponse => &mapping.programs.po_response,
            CallKind::PoStatus => &mapping.programs.po_status,
        };
        let po = if program.is_identity() || !program.uses("$po") {
            serde_json::Value::Null
        } else {
            let store = self.d.store.clone();
            let po_number = job.po.clone();
            let order = tokio::task::spawn_blocking(move || store.order(&po_number)).await??;
            order.map_or(serde_json::Value::Null, |o| canonical::po_json(&o.order))
        };
        let kind = job.kind;
        let partner = self.account.partner.clone();
        if program.is_identity() {
            // No program to run: rendered here, at once.
            return Ok(partner.render_body(&mapping, kind, &canonical, &job.segments, &po));
        }
        // The program runs in a worker process under the mapping's limits, up to its time limit:
        // off the async runtime.
        let segments = job.segments.clone();
        Ok(tokio::task::spawn_blocking(move || {
            partner.render_body(&mapping, kind, &canonical, &segments, &po)
        })
        .await?)
    }

    /// One attempt at one job, outcome recorded durably. Nothing is recorded when shutdown
    /// came while the call waited for the account's limiter. `slot` (one of the calls in
    /// flight) is given back once the call is answered, before its outcome is recorded.
    async fn deliver(
        &self,
        job: JobRecord,
        shutdown: &CancellationToken,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) -> anyhow::Result<()> {
        let attempt = self.attempt(&job, shutdown).await;
        drop(slot);
        let Some((outcome, elapsed)) = attempt? else {
            return Ok(());
        };
        let store = self.d.store.clone();
        let j = job.clone();
        let o = outcome.clone();
        let now = self.d.clock.now_ms();
        let _busy = self.d.live.busy();
        tokio::task::spawn_blocking(move || -> Result<(), crate::store::StoreError> {
            let at = crate::clock::now_rfc3339();
            match &o {
                Delivery::Delivered { status } => store.complete_job(&j, &status.to_string(), &at),
                Delivery::Retry { after, reason } => {
                    store.reschedule_job(&j, now + after.as_millis() as u64, reason)
                }
                Delivery::Rejected { reason, .. } | Delivery::ProgramFailed { reason } => {
                    store.dead_letter(&j, reason, &at)
                }
            }
        })
        .await??;
        self.d.store.flush().await?;
        match &outcome {
            Delivery::Delivered { status } => {
                tracing::info!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, status, attempts = job.attempts + 1, correlation_id = %job.correlation_id, "Delivered.")
            }
            Delivery::Retry { after, reason } => {
                tracing::warn!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, attempts = job.attempts + 1, retry_in_ms = after.as_millis() as u64, reason = %Escaped(reason), "Call failed; will retry.")
            }
            Delivery::Rejected { reason, .. } => {
                tracing::error!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, job = job.id, reason = %Escaped(reason), "The call was refused; dead-lettered.")
            }
            Delivery::ProgramFailed { reason } => {
                tracing::error!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, job = job.id, reason = %Escaped(reason), "Nothing sent: the mapping's program failed; dead-lettered (fix the mapping, then retry).")
            }
        }
        let _ = self.d.events.send(crate::events::Event::Delivery {
            po: job.po.clone(),
            job: job.id,
            kind: job.kind,
            outcome,
            elapsed,
        });
        Ok(())
    }

    /// Waits for the account's limiter, renders and sends the call, and classifies the answer;
    /// with the time the last send took. A 429 pauses the account and the call waits again; so
    /// does a retryable failure while a declared window is open (it began during the call).
    /// `None`: shutdown came first.
    async fn attempt(
        &self,
        job: &JobRecord,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Option<(Delivery, Duration)>> {
        let limiter = &self.account.limiter;
        loop {
            if !limiter.acquire(shutdown).await {
                return Ok(None);
            }
            let started = std::time::Instant::now();
            let body = match self.render(job).await? {
                Ok(body) => body,
                Err(reason) => {
                    return Ok(Some((
                        Delivery::ProgramFailed {
                            reason: reason.to_string(),
                        },
                        started.elapsed(),
                    )))
                }
            };
            let answer = self
                .account
                .partner
                .send(&job.path, &body, &job.correlation_id)
                .await;
            let (reason, status, retry) = match answer {
                PartnerAnswer::Accepted { status, rate } => {
                    self.observe_rate(&rate);
                    let outcome = Delivery::Delivered { status };
                    return Ok(Some((outcome, started.elapsed())));
                }
                PartnerAnswer::Throttled { after } => {
                    let pause = after.unwrap_or(THROTTLE_PAUSE);
                    tracing::warn!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, pause_ms = pause.as_millis() as u64, "The distributor throttled the account (429); its calls pause until the reset, no attempt spent.");
                    limiter.pause(pause, PauseCause::Throttled);
                    continue;
                }
                PartnerAnswer::Failed {
                    reason,
                    status,
                    retry,
                } => (reason, status, retry),
            };
            if matches!(retry, Retry::Later { .. }) && limiter.in_window() {
                tracing::info!(account = %self.account.id, po = %Escaped(&shown(&job.po)), kind = ?job.kind, error = %Escaped(&reason), "A call failed as a declared maintenance window opened; it waits for the window to close, no attempt spent.");
                continue;
            }
            let outcome = match retry {
                Retry::Later { after } => {
                    let backoff =
                        partner::backoff(job.attempts, self.d.backoff_base, self.d.backoff_max);
                    Delivery::Retry {
                        after: after.map_or(backoff, |a| a.max(backoff)),
                        reason,
                    }
                }
                Retry::Never => Delivery::Rejected { reason, status },
            };
            return Ok(Some((outcome, started.elapsed())));
        }
    }

    /// An answer whose `X-RateLimit-Remaining` is at or below the calls this lane may have in
    /// flight pauses the account until Ingram's reset: the next calls would be throttled.
    fn observe_rate(&self, rate: &Rate) {
        if let (Some(remaining), Some(reset)) = (rate.remaining, rate.reset) {
            if remaining <= self.d.workers as u64 && !reset.is_zero() {
                self.account.limiter.pause(reset, PauseCause::LowRemaining);
            }
        }
    }
}

/// A job's PO for a log line (`PO`, or `account/PO`).
fn shown(key: &str) -> String {
    crate::domain::account::show_po_key(key)
}
