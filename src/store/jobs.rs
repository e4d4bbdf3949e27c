//! The calls to Ingram waiting to be made (`jobs`) and the ones Ingram refused for good (`dead`):
//! which are due (one per PO, in order, never past a dead-lettered earlier call), and what
//! delivering, rescheduling, dead-lettering and retrying one does to the queue and its PO.

use sled::Transactional;

use super::records::{DeadRecord, DocumentRecord, HistoryEntry, JobRecord};
use super::update::OrderTx;
use super::{abort, json, keys, parse, Store, StoreError};

/// The jobs ready to send now (at most one per PO: a PO's calls go in order, Responses first),
/// and the earliest time a waiting job becomes due.
#[derive(Debug, Default)]
pub struct Due {
    pub jobs: Vec<JobRecord>,
    pub next_due_ms: Option<u64>,
}

impl Store {
    /// Jobs due at `now_ms`, at most `limit`, one per PO, each PO's calls in order: a PO's
    /// PO Response before its PO Status calls, each kind in the order the files came. A call
    /// waits while an earlier call of its PO is dead-lettered (see [`Store::blocked_jobs`]):
    /// Ingram never gets a status before the response it follows.
    pub fn due_jobs(
        &self,
        account: Option<&str>,
        now_ms: u64,
        limit: usize,
    ) -> Result<Due, StoreError> {
        let i = self.inner()?;
        let mut dead_first: std::collections::BTreeMap<String, (crate::domain::CallKind, u64)> =
            Default::default();
        for r in i.dead.iter() {
            let (k, v) = r?;
            let d: DeadRecord = parse(&k, &v)?;
            let at = (d.job.kind, d.job.id);
            let slot = dead_first.entry(d.job.po).or_insert(at);
            *slot = (*slot).min(at);
        }
        // Only what ordering needs is kept per PO (not the whole record with its body and
        // segments): a queue of 30,000 calls stays a few MiB; the due ones are read again.
        #[derive(serde::Deserialize)]
        struct Head {
            id: u64,
            po: String,
            kind: crate::domain::CallKind,
            next_attempt_ms: u64,
        }
        let mut first: std::collections::BTreeMap<String, (crate::domain::CallKind, u64, u64)> =
            Default::default();
        for r in i.jobs.iter() {
            let (k, v) = r?;
            let job: Head = parse(&k, &v)?;
            // A lane takes its own account's calls only.
            if account.is_some_and(|a| crate::domain::split_po_key(&job.po).0 != a) {
                continue;
            }
            let at = (job.kind, job.id, job.next_attempt_ms);
            match first.get(&job.po) {
                Some(cur) if (cur.0, cur.1) <= (job.kind, job.id) => {}
                _ => {
                    first.insert(job.po, at);
                }
            }
        }
        let mut due = Due::default();
        let mut heads: Vec<(String, (crate::domain::CallKind, u64, u64))> = first
            .into_iter()
            .filter(|(po, (kind, id, _))| dead_first.get(po).is_none_or(|d| *d > (*kind, *id)))
            .collect();
        heads.sort_by_key(|(_, (_, id, _))| *id);
        for (_, (_, id, next_attempt_ms)) in heads {
            if next_attempt_ms <= now_ms {
                if due.jobs.len() < limit {
                    if let Some(v) = i.jobs.get(id.to_be_bytes())? {
                        due.jobs.push(parse(&id.to_be_bytes(), &v)?);
                    }
                }
            } else {
                due.next_due_ms = Some(
                    due.next_due_ms
                        .map_or(next_attempt_ms, |n: u64| n.min(next_attempt_ms)),
                );
            }
        }
        Ok(due)
    }

    /// The queued calls that wait behind a dead-lettered call of the same PO (an earlier one
    /// by [`Store::due_jobs`]'s order), each with the dead letter it waits for.
    pub fn blocked_jobs(&self) -> Result<Vec<(JobRecord, DeadRecord)>, StoreError> {
        let i = self.inner()?;
        let mut dead: std::collections::BTreeMap<String, DeadRecord> = Default::default();
        for r in i.dead.iter() {
            let (k, v) = r?;
            let d: DeadRecord = parse(&k, &v)?;
            match dead.get(&d.job.po) {
                Some(cur) if (cur.job.kind, cur.job.id) <= (d.job.kind, d.job.id) => {}
                _ => {
                    dead.insert(d.job.po.clone(), d);
                }
            }
        }
        let mut out = Vec::new();
        if dead.is_empty() {
            return Ok(out);
        }
        for r in i.jobs.iter() {
            let (k, v) = r?;
            let job: JobRecord = parse(&k, &v)?;
            if let Some(d) = dead.get(&job.po) {
                if (d.job.kind, d.job.id) < (job.kind, job.id) {
                    out.push((job, d.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Ingram accepted the job: remove it and advance the PO's lifecycle.
    pub fn complete_job(&self, job: &JobRecord, answer: &str, at: &str) -> Result<(), StoreError> {
        self.finish_job(job, answer, at, true)
    }

    /// A shadow run recorded the job without sending it (`[migration] send_calls = false`):
    /// removed and kept with the PO like a delivered one, its lifecycle advanced as the VAN's
    /// copy was delivered, and the timeline saying it was not sent.
    pub fn record_unsent_job(
        &self,
        job: &JobRecord,
        note: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.finish_job(job, note, at, false)
    }

    fn finish_job(
        &self,
        job: &JobRecord,
        answer: &str,
        at: &str,
        sent: bool,
    ) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        let document = json(&DocumentRecord {
            kind: job.kind,
            source: job.source.clone(),
            segments: job.segments.clone(),
            path: job.path.clone(),
            body: job.body.clone(),
            correlation_id: job.correlation_id.clone(),
            accepted_at: at.to_string(),
            answer: answer.to_string(),
        });
        let what = match job.kind {
            crate::domain::CallKind::PoResponse => "855 sent to Ingram (PO Response)",
            crate::domain::CallKind::PoStatus => "856 sent to Ingram (PO Status)",
        };
        let history = if sent {
            format!(
                "{what} after {} attempt(s), correlation {}, from {}: Ingram answered {answer}",
                job.attempts + 1,
                job.correlation_id,
                job.source
            )
        } else {
            format!(
                "{} from {} recorded, NOT sent to Ingram: {answer}",
                job.kind.label(),
                job.source
            )
        };
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.jobs,
                &i.documents,
            );
            trees.transaction(|(orders, states, awaiting, rejected, jobs, documents)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                // Once only: a job an operator moved meanwhile is not counted twice.
                if jobs.remove(&job.id.to_be_bytes())?.is_none() {
                    return Ok(());
                }
                documents.insert(keys::document_key(&job.po, job.id), document.as_slice())?;
                tx.update(&job.po, |rec| {
                    rec.inbound.calls_pending = rec.inbound.calls_pending.saturating_sub(1);
                    match job.kind {
                        crate::domain::CallKind::PoResponse => {
                            rec.inbound.response_sent_at = Some(at.to_string());
                        }
                        crate::domain::CallKind::PoStatus => rec.inbound.statuses_sent += 1,
                    }
                    rec.history.push(HistoryEntry {
                        at: at.to_string(),
                        what: history.clone(),
                    });
                })?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// The job failed in a way worth retrying: count it and set when to try again.
    pub fn reschedule_job(
        &self,
        job: &JobRecord,
        next_attempt_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut rec = job.clone();
        rec.attempts += 1;
        rec.next_attempt_ms = next_attempt_ms;
        rec.last_error = Some(error.to_string());
        let key = job.id.to_be_bytes();
        // Only if the job is still queued as it was (an operator may have acted on it): a job
        // completed or dead-lettered meanwhile is never brought back.
        let (i, _w) = self.writer()?;
        let jobs = &i.jobs;
        if let Some(current) = jobs.get(key)? {
            let _ = jobs.compare_and_swap(key, Some(current), Some(json(&rec)))?;
        }
        Ok(())
    }

    /// Ingram refused the job for good: move it to the dead letters.
    pub fn dead_letter(&self, job: &JobRecord, reason: &str, at: &str) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        let mut j = job.clone();
        j.attempts += 1;
        j.last_error = Some(reason.to_string());
        let rec = json(&DeadRecord {
            job: j,
            reason: reason.to_string(),
            at: at.to_string(),
        });
        let what = format!(
            "{} call refused by Ingram, dead-lettered (job {}): {reason}",
            job.kind, job.id
        );
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.jobs,
                &i.dead,
            );
            trees.transaction(|(orders, states, awaiting, rejected, jobs, dead)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                // A job completed (or dead-lettered) meanwhile stays as it is.
                if jobs.remove(&job.id.to_be_bytes())?.is_none() {
                    return Ok(());
                }
                dead.insert(&job.id.to_be_bytes(), rec.as_slice())?;
                tx.update(&job.po, |o| {
                    o.history.push(HistoryEntry {
                        at: at.to_string(),
                        what: what.clone(),
                    })
                })?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Puts dead-lettered jobs back in the queue (`None` = all); returns how many.
    pub fn retry_dead(&self, id: Option<u64>) -> Result<usize, StoreError> {
        let (i, _w) = self.writer()?;
        let ids: Vec<u64> = match id {
            Some(id) => vec![id],
            None => i
                .dead
                .iter()
                .keys()
                .filter_map(|k| k.ok().and_then(|k| keys::decode_u64(&k)))
                .collect(),
        };
        let mut n = 0;
        for id in ids {
            let moved = (&i.dead, &i.jobs).transaction(|(dead, jobs)| {
                let Some(bytes) = dead.remove(&id.to_be_bytes())? else {
                    return Ok(false);
                };
                let d: DeadRecord = parse(&id.to_be_bytes(), &bytes).map_err(abort)?;
                let mut job = d.job;
                job.next_attempt_ms = 0;
                jobs.insert(&id.to_be_bytes(), json(&job))?;
                Ok(true)
            })?;
            n += usize::from(moved);
        }
        Ok(n)
    }

    pub fn jobs(&self) -> impl Iterator<Item = Result<JobRecord, StoreError>> + '_ {
        self.tree_iter(|i| &i.jobs).map(|r| {
            let (k, v) = r?;
            parse(&k, &v)
        })
    }

    pub fn dead_letters(&self) -> impl Iterator<Item = Result<DeadRecord, StoreError>> + '_ {
        self.tree_iter(|i| &i.dead).map(|r| {
            let (k, v) = r?;
            parse(&k, &v)
        })
    }

    pub fn job_count(&self) -> usize {
        self.inner().map_or(0, |i| i.jobs.len())
    }
}
