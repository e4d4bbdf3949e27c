//! What the inbox keeps between the chunks of one file and across files, in the `inbound`
//! tree: how far a file's sets are committed (`p \0 file key` → sets done), so that a file of
//! many sets is committed in chunks and a restart resumes after the last chunk, neither losing
//! nor repeating a set; and which original documents (an 855 with BAK01 `00`, an 856 with
//! BSN01 `00` and its BSN02) were already queued for a PO (`o \0 po \0 kind \0 id` → where
//! from), so the same original sent again in a new envelope makes no second call.

use serde::{Deserialize, Serialize};

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::records::{
    self, FileRecord, HistoryEntry, InterchangeRecord, JobRecord, SCHEMA_VERSION,
};
use super::update::{OrderTx, TxResult};
use super::{abort, json, keys, parse, Store, StoreError};

/// The tree.
pub const INBOUND: &str = "inbound";

/// `p \0 file key`: the number of sets of that file already committed.
pub fn progress_key(file_key: &[u8]) -> Vec<u8> {
    let mut k = b"p\0".to_vec();
    k.extend_from_slice(file_key);
    k
}

/// `o \0 po \0 kind \0 id`: an original document (kind `855` or `856`, id empty or the BSN02).
pub fn original_key(po: &str, kind: &str, id: &str) -> Vec<u8> {
    let mut k = b"o\0".to_vec();
    for (i, part) in [po, kind, id].iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

/// `o \0 po \0`: every original document of a PO (for retention).
pub fn original_prefix(po: &str) -> Vec<u8> {
    let mut k = b"o\0".to_vec();
    k.extend_from_slice(po.as_bytes());
    k.push(0);
    k
}

/// Where an original document was first taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalRecord {
    /// The claimed file name.
    pub file: String,
    /// The file's content hash.
    pub hash: String,
    /// The set's place in the file (0-based, file order).
    pub set: u64,
    pub received_at: String,
}

impl OriginalRecord {
    pub fn encode(&self) -> Vec<u8> {
        json(self)
    }
}

/// A chunk's position: `done` sets of the file committed, or (`None`) the file finished.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// [`progress_key`].
    pub key: Vec<u8>,
    pub done: Option<u64>,
}

/// An inbox file waiting to be completed (no IEA closes its last ISA yet), as the inbox
/// watcher last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingFile {
    pub name: String,
    pub size: u64,
    /// Its mtime (RFC 3339): the wait counts from there.
    pub modified_at: String,
    pub waited_secs: u64,
    /// `inbox.incomplete_timeout_secs`: it goes to `error/` once `waited_secs` reaches this.
    pub timeout_secs: u64,
    /// What the reader said of it (its first error), if anything.
    pub reader: String,
}

/// `w`: the list of [`WaitingFile`]s.
const WAITING: &[u8] = b"w";

/// What a chunk of a file adds to its [`super::InboundBatch`].
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// How far the file is committed after this chunk.
    pub progress: Option<Progress>,
    /// Original documents this chunk queues: ([`original_key`], [`OriginalRecord::encode`]).
    pub originals: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Store {
    /// How many sets of the file with this key an earlier attempt committed (0 if none).
    pub fn inbound_progress(&self, file_key: &[u8]) -> Result<u64, StoreError> {
        let tree = self.inner()?.db.open_tree(INBOUND)?;
        Ok(tree
            .get(progress_key(file_key))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Where the original document with this key ([`original_key`]) was taken from, if it was.
    pub fn original(&self, key: &[u8]) -> Result<Option<OriginalRecord>, StoreError> {
        let tree = self.inner()?.db.open_tree(INBOUND)?;
        tree.get(key)?.map(|v| parse(key, &v)).transpose()
    }

    /// Records the inbox files waiting to be completed (the inbox watcher, when the list
    /// changes).
    pub fn set_inbox_waiting(&self, files: &[WaitingFile]) -> Result<(), StoreError> {
        let tree = self.inner()?.db.open_tree(INBOUND)?;
        tree.insert(WAITING, json(&files))?;
        Ok(())
    }

    /// The inbox files waiting to be completed, as the inbox watcher last saw them (for the
    /// console): each with its size, mtime, how long it has waited and the timeout.
    pub fn inbox_waiting(&self) -> Result<Vec<WaitingFile>, StoreError> {
        let tree = self.inner()?.db.open_tree(INBOUND)?;
        match tree.get(WAITING)? {
            Some(v) => parse(WAITING, &v),
            None => Ok(Vec::new()),
        }
    }

    /// Which file an interchange key was processed from, if any (read only; the commit checks
    /// again).
    pub fn interchange_file(&self, key: &[u8]) -> Result<Option<String>, StoreError> {
        let i = self.inner()?;
        match i.interchanges.get(key)? {
            Some(v) => {
                let r: super::records::InterchangeRecord = parse(key, &v)?;
                Ok(Some(r.claimed_file))
            }
            None => Ok(None),
        }
    }
}

/// Everything one inbound file produced, committed in one transaction.
#[derive(Debug, Default)]
pub struct InboundBatch {
    /// Interchange keys (see [`keys::interchange_key`]) this file carries.
    pub interchanges: Vec<Vec<u8>>,
    /// The claimed file name, recorded with each interchange key.
    pub claimed_file: String,
    pub received_at: String,
    pub jobs: Vec<NewJob>,
    /// Quantities shipped per PO and line by this file's 856s.
    pub shipped: Vec<(String, std::collections::BTreeMap<String, u64>)>,
    /// 997s (and TA1s, by the GS06 of the 850 they name) from the ERP for our 850s:
    pub erp_997: Vec<records::Erp997>,
    /// 997s to write into the outbox.
    pub files: Vec<FileRecord>,
    /// Timeline entries: (PO, text).
    pub history: Vec<(String, String)>,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub po: String,
    pub kind: crate::domain::CallKind,
    pub path: String,
    /// The canonical body (JSON); the mapping's program renders the request body at delivery.
    pub body: String,
    /// The transaction set's segments (`$segments` of the mapping's body program).
    pub segments: Vec<Vec<String>>,
    pub source: String,
    pub unknown_po: bool,
}

/// What committing an inbound file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundCommit {
    Committed {
        jobs: usize,
    },
    /// Already committed from this same claimed file (a crash came before it was archived).
    AlreadyCommitted,
    /// An interchange of this file was processed before, from `previous_file`.
    Duplicate {
        previous_file: String,
    },
}

impl Store {
    /// Commits everything one inbound file produced; duplicate interchanges commit nothing.
    pub fn commit_inbound(&self, b: &InboundBatch) -> Result<InboundCommit, StoreError> {
        self.commit_inbound_chunk(b, &Chunk::default())
    }

    /// [`Store::commit_inbound`] for one chunk of a file: with the file's position and the
    /// original documents the chunk queued (this module).
    pub fn commit_inbound_chunk(
        &self,
        b: &InboundBatch,
        chunk: &Chunk,
    ) -> Result<InboundCommit, StoreError> {
        let (i, _w) = self.writer()?;
        let job_ids: Vec<u64> = b
            .jobs
            .iter()
            .map(|_| i.db.generate_id())
            .collect::<Result<_, _>>()?;
        let file_ids: Vec<u64> = b
            .files
            .iter()
            .map(|_| i.db.generate_id())
            .collect::<Result<_, _>>()?;
        let new_jobs = job_records(b, &job_ids);
        let ic = json(&InterchangeRecord {
            claimed_file: b.claimed_file.clone(),
            received_at: b.received_at.clone(),
        });
        let inbound = i.db.open_tree(INBOUND)?;
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.interchanges,
                &i.jobs,
                &i.file_queue,
                &i.gs06_index,
                &inbound,
            );
            let out = trees.transaction(
                |(
                    orders,
                    states,
                    awaiting,
                    rejected,
                    interchanges,
                    jobs,
                    files,
                    index,
                    inbound,
                )| {
                    let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                    if let Some(seen) = seen_before(interchanges, b)? {
                        return Ok(seen);
                    }
                    for key in &b.interchanges {
                        interchanges.insert(key.as_slice(), ic.as_slice())?;
                    }
                    if let Some(p) = &chunk.progress {
                        match p.done {
                            Some(n) => inbound.insert(p.key.as_slice(), &n.to_be_bytes())?,
                            None => inbound.remove(p.key.as_slice())?,
                        };
                    }
                    for (key, rec) in &chunk.originals {
                        inbound.insert(key.as_slice(), rec.as_slice())?;
                    }
                    for (id, job) in job_ids.iter().zip(&new_jobs) {
                        jobs.insert(&id.to_be_bytes(), job.as_slice())?;
                    }
                    for (file, id) in b.files.iter().zip(&file_ids) {
                        files.insert(&id.to_be_bytes(), json(file))?;
                    }
                    stage_orders(&tx, index, b)?;
                    Ok(InboundCommit::Committed { jobs: b.jobs.len() })
                },
            )?;
            Ok(out)
        })
    }
}

/// Each job's record, made once outside the transaction (with its id and correlation id).
fn job_records(b: &InboundBatch, ids: &[u64]) -> Vec<Vec<u8>> {
    b.jobs
        .iter()
        .zip(ids)
        .map(|(job, id)| {
            json(&JobRecord {
                schema_version: SCHEMA_VERSION,
                id: *id,
                po: job.po.clone(),
                kind: job.kind,
                correlation_id: crate::domain::new_correlation_id(),
                path: job.path.clone(),
                body: job.body.clone(),
                segments: job.segments.clone(),
                created_at: b.received_at.clone(),
                source: job.source.clone(),
                unknown_po: job.unknown_po,
                attempts: 0,
                next_attempt_ms: 0,
                last_error: None,
            })
        })
        .collect()
}

/// What an interchange of the file processed before says: committed already from this same
/// claimed file, or a duplicate of another; `None` when none was.
fn seen_before(
    interchanges: &TransactionalTree,
    b: &InboundBatch,
) -> TxResult<Option<InboundCommit>> {
    for key in &b.interchanges {
        if let Some(prev) = interchanges.get(key)? {
            let prev: InterchangeRecord = parse(key, &prev).map_err(abort)?;
            return Ok(Some(if prev.claimed_file == b.claimed_file {
                InboundCommit::AlreadyCommitted
            } else {
                InboundCommit::Duplicate {
                    previous_file: prev.claimed_file,
                }
            }));
        }
    }
    Ok(None)
}

/// What an inbound file changes in its POs' records (and, through [`OrderTx`], their
/// indexes): calls pending, quantities shipped, the ERP's 997s and TA1s for our 850s, timeline
/// entries.
fn stage_orders(tx: &OrderTx<'_>, index: &TransactionalTree, b: &InboundBatch) -> TxResult<()> {
    for job in &b.jobs {
        tx.update(&job.po, |rec| {
            rec.inbound.calls_pending = rec.inbound.calls_pending.saturating_add(1);
        })?;
    }
    for (po, shipped) in &b.shipped {
        tx.update(po, |rec| {
            for (line, q) in shipped {
                let slot = rec.inbound.shipped.entry(line.clone()).or_default();
                *slot = slot.saturating_add(*q);
            }
        })?;
    }
    for records::Erp997 {
        pair,
        gs06,
        outcome,
        detail,
    } in &b.erp_997
    {
        let Some(po) = index.get(keys::gs06_key(pair, *gs06))? else {
            continue;
        };
        // No longer awaiting a 997; rejected or not: the indexes follow the record.
        tx.update(&String::from_utf8_lossy(&po), |rec| {
            // A TA1 that does not refuse the interchange says less than a 997.
            let keep = outcome.is_interchange()
                && !outcome.is_rejection()
                && rec.inbound.erp_997.is_some();
            if !keep {
                rec.inbound.erp_997 = Some(*outcome);
            }
            let what = if outcome.is_interchange() {
                format!("TA1 from ERP for the 850 interchange (GS06 {gs06}): {outcome}{detail}")
            } else {
                format!("997 from ERP for the 850 (GS06 {gs06}): {outcome}{detail}")
            };
            rec.history.push(HistoryEntry {
                at: b.received_at.clone(),
                what,
            });
        })?;
    }
    for (po, what) in &b.history {
        tx.update(po, |rec| {
            rec.history.push(HistoryEntry {
                at: b.received_at.clone(),
                what: what.clone(),
            })
        })?;
    }
    Ok(())
}
