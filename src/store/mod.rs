//! The durable state: a [`Store`] handle over one sled database. This is the only module that
//! names sled. Writes become durable only after [`Store::flush`], which is a group commit: a
//! dedicated committer thread runs one `Db::flush` (completed by the fsyncs sled omits, see
//! `sync`) for every request waiting when it starts.
//! Webhook events go through the same thread ([`Store::intake`]): every event waiting is written
//! in one transaction right before that flush. (sled holds a lock shared with plain writes during
//! a flush, and a transaction needs it exclusively; transactions from request threads would each
//! wait out a flush, so commits would alternate one transaction, one flush.) Multi-tree updates
//! are sled transactions (no I/O inside; closures may re-run). Trees and key layout are in
//! [`keys`]; record types in [`records`].
//! A failed write or flush takes the database out of service until the committer has reopened
//! it (sled poisons itself after one failed write); meanwhile intake is refused at once and
//! [`health`] says why (see `committer`).
//!
//! Indexes are kept in the same transactions as the records they follow. Retention removes only
//! finished or operator-closed POs ([`records::OrderRecord::open`] says what an open one waits
//! for) and remembers pruned event ids and PO numbers forever. `store::backup` copies every tree
//! behind a write gate (writes hold it shared, a backup alone) and restores into a fresh
//! database; [`continuity`] is what the top-level `continuity` check reads and adopts;
//! [`activity`] is the console's activity log; [`inbound`] the inbound progress and
//! original-document keys; `store::refused` the signed event ids refused for their body.

pub mod activity;
mod backup;
mod codec;
mod committer;
pub mod continuity;
pub mod health;
pub mod inbound;
mod intake;
mod jobs;
pub mod keys;
mod outbox;
pub mod records;
mod refused;
mod retention;
mod sync;
#[cfg(test)]
pub(crate) mod tests;
mod update;

pub use backup::Copied;
pub use committer::{COMMIT_WAIT, HEARTBEAT};
pub use health::StoreHealth;
pub use inbound::{InboundBatch, InboundCommit, NewJob};
pub use intake::{Intake, NewEvent, PreparedEvent};
pub use jobs::Due;
pub use refused::{RefusedEvent, PRUNE_BATCH, REFUSED_TTL_MS};
pub use retention::{Expect997, OpenPos, Pruned};

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use records::{
    DeadRecord, DocumentRecord, EventRecord, JobRecord, Lifecycle, OrderRecord, Outbound850,
};

use crate::domain::PurchaseOrder;

/// How long opening waits for a database lock held by one just closed.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// Waits [`LOCK_RETRY`] before trying a database lock again. Opening runs on a blocking thread
/// (the daemon's `spawn_blocking`, the committer, the CLI), never on a runtime worker, and no
/// signal tells when another holder released the file lock.
#[allow(clippy::disallowed_methods)]
fn pause_for_lock() {
    std::thread::sleep(LOCK_RETRY);
}

/// Control numbers wrap back to 1 after this value (ISA13 is 9 digits).
pub const CONTROL_MAX: u32 = 999_999_999;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Sled(#[from] sled::Error),
    #[error("state store record {key}: {message}")]
    Corrupt { key: String, message: String },
    /// sled cannot read the database (damaged files): say where, and what to do.
    #[error("state store {path} cannot be read ({reason}): the files are damaged; restore the latest backup with `edi-bridge store restore BACKUP_DIR` (it moves the damaged one aside), or move {path} away to start empty, then start again (see the README's Backups)")]
    Damaged { path: String, reason: String },
    #[error("state store is closed")]
    Closed,
    /// A write or flush failed (or failed before and the database is not reopened yet): the
    /// caller answers 503 / retries later.
    #[error("state store cannot write: {0}")]
    Unavailable(String),
    #[error("no purchase order {0}")]
    NoSuchOrder(String),
}

impl From<TransactionError<StoreError>> for StoreError {
    fn from(e: TransactionError<StoreError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}
/// One open sled database and its trees. Replaced as a whole when the committer reopens the
/// database after a failed write (see [`health`]).
struct Inner {
    db: sled::Db,
    events: sled::Tree,
    orders: sled::Tree,
    review: sled::Tree,
    outbox_queue: sled::Tree,
    counters: sled::Tree,
    interchanges: sled::Tree,
    jobs: sled::Tree,
    dead: sled::Tree,
    file_queue: sled::Tree,
    gs06_index: sled::Tree,
    awaiting_997: sled::Tree,
    erp_rejected: sled::Tree,
    dedupe: sled::Tree,
    received: sled::Tree,
    states: sled::Tree,
    documents: sled::Tree,
    /// The last count of 850s awaiting a 997 past a cutoff, kept exact by every change to
    /// `awaiting_997` (each holds this lock across its transaction), so `/metrics` counts only
    /// what became overdue since its last scrape.
    overdue: Mutex<Overdue>,
}

/// The awaiting-997 entries written before `cutoff`, counted.
#[derive(Debug, Default)]
struct Overdue {
    known: Option<(u64, usize)>,
}

impl Overdue {
    /// Entries added (+1) or removed (-1) at these write times, after their transaction.
    fn apply(&mut self, changes: &[(u64, i8)]) {
        if let Some((cutoff, n)) = &mut self.known {
            for (ms, delta) in changes {
                if ms < cutoff {
                    *n = n.saturating_add_signed(isize::from(*delta));
                }
            }
        }
    }
}

/// Changes to `awaiting_997` seen inside a transaction (which may run more than once: cleared
/// at each start, applied to [`Overdue`] once it committed).
#[derive(Default)]
struct AwaitingChanges(std::cell::RefCell<Vec<(u64, i8)>>);

impl AwaitingChanges {
    fn restart(&self) {
        self.0.borrow_mut().clear();
    }

    fn insert(
        &self,
        awaiting: &sled::transaction::TransactionalTree,
        ms: u64,
        po: &str,
    ) -> Result<(), sled::transaction::UnabortableTransactionError> {
        if awaiting.insert(keys::awaiting_key(ms, po), &[])?.is_none() {
            self.0.borrow_mut().push((ms, 1));
        }
        Ok(())
    }

    fn remove(
        &self,
        awaiting: &sled::transaction::TransactionalTree,
        ms: u64,
        po: &str,
    ) -> Result<(), sled::transaction::UnabortableTransactionError> {
        if awaiting.remove(keys::awaiting_key(ms, po))?.is_some() {
            self.0.borrow_mut().push((ms, -1));
        }
        Ok(())
    }

    fn into_inner(self) -> Vec<(u64, i8)> {
        self.0.into_inner()
    }
}

impl Inner {
    fn open(dir: &Path, options: &StoreOptions) -> Result<Inner, StoreError> {
        remove_unfinished_snapshots(&dir.join("db"))?;
        let config = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(options.cache_bytes)
            // No background flush: every durable point flushes through the committer, and
            // sled's timer flush would hold the lock intake transactions wait for.
            .flush_every_ms(None);
        // A database closed a moment ago may still be locked while sled's own threads let go
        // of it (nothing signals that): wait for the lock a little before giving up.
        let mut waited = Duration::ZERO;
        let db = loop {
            // sled panics on some damage instead of answering an error: caught here, so a
            // damaged store is a clear error naming it, never a crash.
            let damaged = |reason: String| StoreError::Damaged {
                path: crate::text::escape(&dir.join("db").to_string_lossy()),
                reason,
            };
            let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()))
                .map_err(|_| damaged("sled stopped on it".into()))?;
            match opened {
                Err(
                    e @ (sled::Error::Corruption { .. }
                    | sled::Error::ReportableBug(_)
                    | sled::Error::Unsupported(_)),
                ) => return Err(damaged(e.to_string())),
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::Other
                        && e.to_string().contains("could not acquire lock")
                        && waited < LOCK_WAIT =>
                {
                    pause_for_lock();
                    waited += LOCK_RETRY;
                }
                other => break other?,
            }
        };
        Ok(Inner {
            events: db.open_tree(keys::EVENTS)?,
            orders: db.open_tree(keys::ORDERS)?,
            review: db.open_tree(keys::REVIEW)?,
            outbox_queue: db.open_tree(keys::OUTBOX_QUEUE)?,
            counters: db.open_tree(keys::COUNTERS)?,
            interchanges: db.open_tree(keys::INTERCHANGES)?,
            jobs: db.open_tree(keys::JOBS)?,
            dead: db.open_tree(keys::DEAD)?,
            file_queue: db.open_tree(keys::FILE_QUEUE)?,
            gs06_index: db.open_tree(keys::GS06_INDEX)?,
            awaiting_997: db.open_tree(keys::AWAITING_997)?,
            erp_rejected: db.open_tree(keys::ERP_REJECTED)?,
            dedupe: db.open_tree(keys::DEDUPE)?,
            received: db.open_tree(keys::RECEIVED)?,
            states: db.open_tree(keys::STATES)?,
            documents: db.open_tree(keys::DOCUMENTS)?,
            overdue: Mutex::default(),
            db,
        })
        .and_then(|inner| inner.build_indexes().map(|()| inner))
    }

    /// Runs `write` (one transaction that may change `awaiting_997`, each change tallied in the
    /// [`AwaitingChanges`] it is given) holding the [`Overdue`] lock, and applies the tally
    /// once it committed: the kept count stays exact.
    fn tallying_awaiting<R>(
        &self,
        write: impl FnOnce(&AwaitingChanges) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut overdue = self.overdue.lock().expect("overdue lock");
        let changes = AwaitingChanges::default();
        let out = write(&changes)?;
        overdue.apply(&changes.into_inner());
        Ok(out)
    }

    /// Builds the awaiting-997 and ERP-rejection indexes from the orders, once: a store written
    /// before they existed gets them at its first open, later opens only read the marker.
    fn build_indexes(&self) -> Result<(), StoreError> {
        // Whatever was counted before no longer holds.
        self.overdue.lock().expect("overdue lock").known = None;
        if !self.counters.contains_key(keys::STATES_BUILT)? {
            self.build_states()?;
        }
        if self.counters.contains_key(keys::INDEXES_BUILT)? {
            return Ok(());
        }
        for entry in self.orders.iter() {
            let (k, v) = entry?;
            let rec: OrderRecord = parse(&k, &v)?;
            let entries = update::Entries::of(&rec);
            if let Some(ms) = entries.awaiting {
                self.awaiting_997
                    .insert(keys::awaiting_key(ms, &rec.key()), &[])?;
            }
            if entries.rejected {
                self.erp_rejected.insert(rec.key().as_bytes(), &[])?;
            }
            let received = rfc3339_ms(&rec.received_at).unwrap_or(0);
            self.received
                .insert(keys::awaiting_key(received, &rec.key()), &[])?;
        }
        self.counters.insert(keys::INDEXES_BUILT, &[])?;
        Ok(())
    }
}

impl Inner {
    /// Derives each PO's pending calls from the jobs and dead letters and rebuilds the state
    /// index from the orders (once per store: a store written before either existed).
    fn build_states(&self) -> Result<(), StoreError> {
        let mut pending: std::collections::HashMap<Vec<u8>, u32> = Default::default();
        for entry in self.jobs.iter() {
            let (k, v) = entry?;
            let job: JobRecord = parse(&k, &v)?;
            *pending.entry(job.po.into_bytes()).or_default() += 1;
        }
        for entry in self.dead.iter() {
            let (k, v) = entry?;
            let dead: DeadRecord = parse(&k, &v)?;
            *pending.entry(dead.job.po.into_bytes()).or_default() += 1;
        }
        self.states.clear()?;
        for entry in self.orders.iter() {
            let (k, v) = entry?;
            let mut rec: OrderRecord = parse(&k, &v)?;
            let calls = pending.get(k.as_ref()).copied().unwrap_or(0);
            if rec.inbound.calls_pending != calls {
                rec.inbound.calls_pending = calls;
                self.orders.insert(&k, json(&rec))?;
            }
            self.states.insert(update::state_key(&rec), &[])?;
        }
        self.counters.insert(keys::STATES_BUILT, &[])?;
        Ok(())
    }
}

/// Unix ms of an RFC 3339 instant.
pub fn rfc3339_ms(s: &str) -> Option<u64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
}

/// When the PO's 850 was written (Unix ms), if it was.
fn written_ms(rec: &OrderRecord) -> Option<u64> {
    match &rec.outbound {
        Outbound850::Written { written_at, .. } => rfc3339_ms(written_at),
        _ => None,
    }
}

/// Removes the `snap.*.generating` files an interrupted snapshot left in `sled_dir`. sled 0.34
/// writes a snapshot while opening, to `snap.N.generating`, and renames it to `snap.N` only once
/// complete; but it also counts the unfinished name as a snapshot, and sorts it after `snap.N`.
/// An open that failed on a full disk (or was killed mid-snapshot) therefore leaves a database
/// that never opens again ("Read corrupted data") until that file is removed. It never holds
/// anything the log does not: sled rebuilds the snapshot from the log.
fn remove_unfinished_snapshots(sled_dir: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(sled_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Sled(sled::Error::Io(e))),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %crate::text::Escaped(&name), "Removing an unfinished sled snapshot left by an interrupted open.");
            std::fs::remove_file(entry.path()).map_err(sled::Error::Io)?;
        }
    }
    Ok(())
}

/// What every clone of a [`Store`] shares.
struct StoreShared {
    /// The state directory (sled lives in `db/` under it).
    dir: PathBuf,
    /// How the database is opened (again, after a failure).
    options: StoreOptions,
    /// The open database; `None` while the committer has closed it after a failed write.
    slot: RwLock<Option<Arc<Inner>>>,
    /// Writes hold it shared; a backup holds it alone while it copies (see [`Store::writer`]).
    gate: RwLock<()>,
    commit_tx: Mutex<Option<std_mpsc::Sender<committer::Commit>>>,
    health: Arc<health::CommitterHealth>,
}

/// How the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// sled's page cache in bytes (`[store] cache_mib`). sled's own default is 1 GiB, and its
    /// cache fills with every record ever read or written: the daemon's memory would grow with
    /// its history. The cache is a bound, not a reservation.
    pub cache_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: DEFAULT_CACHE_MIB * 1024 * 1024,
        }
    }
}

/// The default `[store] cache_mib`. sled's real use runs to about twice its cache figure: at 32,
/// 100,000 POs taken in through the webhook left the daemon at 128 MiB; at 16, 85 MiB (bench
/// section 9).
pub const DEFAULT_CACHE_MIB: u64 = 16;

/// Cheap to clone; all clones share the database and the committer.
#[derive(Clone)]
pub struct Store {
    shared: Arc<StoreShared>,
}

/// A record as stored (`codec`: its JSON, compressed).
fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    codec::encode(serde_json::to_vec(v).expect("records serialize"))
}

/// Reads a stored record, compressed or (written before compression) plain JSON.
fn parse<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message,
    };
    let plain = codec::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|e| corrupt(e.to_string()))
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

/// SHA-256 hex of a PO's canonical JSON.
pub fn payload_hash(po: &PurchaseOrder) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(serde_json::to_vec(po).expect("a PO serializes"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (or creates) the store under `dir` and starts its committer thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        let inner = Inner::open(dir, &options)?;
        let syncer = sync::Syncer::open(&dir.join("db")).map_err(sled::Error::Io)?;
        Store::start(dir, options, Some((inner, syncer)))
    }

    /// Like [`Store::open`] for the daemon: a store that cannot be opened for an I/O reason (sled
    /// needs to write to open, so a full disk is one) starts closed and failing, and its
    /// committer opens it once a probe write succeeds. Intake answers 503 until then, and the
    /// daemon stays up to say why instead of exiting into a restart loop.
    pub fn open_or_wait(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        match Store::open_with(dir, options) {
            Err(StoreError::Sled(sled::Error::Io(e))) => {
                let store = Store::start(dir, options, None)?;
                let reason = format!("open: {e}");
                tracing::error!(reason = %reason, "State store cannot be opened; intake refused until it can.");
                store.shared.health.fail(&reason);
                Ok(store)
            }
            other => other,
        }
    }

    fn start(
        dir: &Path,
        options: StoreOptions,
        opened: Option<(Inner, sync::Syncer)>,
    ) -> Result<Store, StoreError> {
        let (inner, syncer) = opened.unzip();
        let (tx, rx) = std_mpsc::channel::<committer::Commit>();
        let health = Arc::new(health::CommitterHealth::new());
        let shared = Arc::new(StoreShared {
            dir: dir.to_path_buf(),
            options,
            slot: RwLock::new(inner.map(Arc::new)),
            gate: RwLock::new(()),
            commit_tx: Mutex::new(Some(tx)),
            health: health.clone(),
        });
        // The committer holds only a weak reference: dropping the last Store closes the database
        // (and its file lock) at once, and the closed channel ends the thread.
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || committer::committer(weak, rx, syncer, health))
            .map_err(|e| StoreError::Corrupt {
                key: "committer".into(),
                message: e.to_string(),
            })?;
        Ok(Store { shared })
    }

    /// The open database, or why there is none (the committer closed it after a failed write
    /// and has not reopened it yet).
    fn inner(&self) -> Result<Arc<Inner>, StoreError> {
        let slot = self.shared.slot.read().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(inner) => Ok(inner.clone()),
            None => Err(StoreError::Unavailable(self.shared.health.reason())),
        }
    }

    /// The open database for a write: holds the write gate shared, so a backup (which takes
    /// it alone) sees no transaction half-way between its trees.
    fn writer(&self) -> Result<(Arc<Inner>, std::sync::RwLockReadGuard<'_, ()>), StoreError> {
        let gate = self.shared.gate.read().unwrap_or_else(|e| e.into_inner());
        Ok((self.inner()?, gate))
    }

    /// Every entry of one tree; one error instead when the database is closed.
    fn tree_iter(
        &self,
        pick: fn(&Inner) -> &sled::Tree,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> {
        let (tree, closed) = match self.inner() {
            Ok(i) => (Some(pick(&i).clone()), None),
            Err(e) => (None, Some(Err(e))),
        };
        closed.into_iter().chain(
            tree.into_iter()
                .flat_map(|t| t.iter().map(|r| r.map_err(StoreError::from))),
        )
    }

    /// What the committer last published: whether the store can write, and since when not.
    /// Never waits on the committer.
    pub fn health(&self) -> StoreHealth {
        self.shared.health.snapshot()
    }

    /// Test-only fault injection (see [`health::Faults`]). Reachable only from code that links
    /// the library: no configuration key or environment variable sets it.
    #[doc(hidden)]
    pub fn faults(&self) -> &health::Faults {
        &self.shared.health.faults
    }

    /// One PO's record.
    pub fn order(&self, po: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.inner()?
            .orders
            .get(po.as_bytes())?
            .map(|b| parse(po.as_bytes(), &b))
            .transpose()
    }

    /// Every PO, in PO-number order.
    pub fn orders(&self) -> impl Iterator<Item = Result<OrderRecord, StoreError>> + '_ {
        self.tree_iter(|i| &i.orders).map(|r| {
            let (k, v) = r?;
            parse(&k, &v)
        })
    }

    /// The stored event record.
    pub fn event(&self, event_id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.inner()?
            .events
            .get(event_id.as_bytes())?
            .map(|b| parse(event_id.as_bytes(), &b))
            .transpose()
    }

    /// Number of POs held for review.
    pub fn review_count(&self) -> usize {
        self.inner().map_or(0, |i| i.review.len())
    }

    /// 850s written before `cutoff_ms` (Unix ms) that still have no 997 or TA1 from the ERP:
    /// read from the time-ordered index, so the cost is the number found, not the history.
    pub fn overdue_850s(&self, cutoff_ms: u64) -> usize {
        let Ok(i) = self.inner() else {
            return 0;
        };
        let mut overdue = i.overdue.lock().expect("overdue lock");
        let key = |ms: u64| ms.to_be_bytes().to_vec();
        // Only what passed the cutoff since the last count is read; the rest is kept exact by
        // each change to the index. A cutoff that moved back is counted afresh.
        let n = match overdue.known {
            Some((last, n)) if cutoff_ms >= last => {
                n + i.awaiting_997.range(key(last)..key(cutoff_ms)).count()
            }
            _ => i.awaiting_997.range(..key(cutoff_ms)).count(),
        };
        overdue.known = Some((cutoff_ms, n));
        n
    }

    /// The POs received at or after `since_ms` (Unix ms), oldest first, read through the
    /// received-time index: the cost is what is shown, not the history.
    pub fn orders_since(
        &self,
        since_ms: u64,
    ) -> impl Iterator<Item = Result<OrderRecord, StoreError>> + '_ {
        let from = Bound::Included(since_ms.to_be_bytes().to_vec());
        self.orders_through(|i| &i.received, (from, Bound::Unbounded), 9)
    }

    /// The POs in lifecycle `state` received at or after `since_ms`, oldest first, read
    /// through the state index.
    pub fn orders_in_state(
        &self,
        state: Lifecycle,
        since_ms: u64,
    ) -> impl Iterator<Item = Result<OrderRecord, StoreError>> + '_ {
        let code = state.code();
        let mut from = vec![code];
        from.extend_from_slice(&since_ms.to_be_bytes());
        let range = (Bound::Included(from), Bound::Excluded(vec![code + 1]));
        self.orders_through(|i| &i.states, range, 10)
    }

    /// The orders an index names, in its order: its keys in `range`, each ending in a PO
    /// number after `po_at` bytes. A PO the index names but the store no longer holds is
    /// skipped.
    fn orders_through(
        &self,
        index: impl Fn(&Inner) -> &sled::Tree,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        po_at: usize,
    ) -> impl Iterator<Item = Result<OrderRecord, StoreError>> + '_ {
        let (tree, orders, closed) = match self.inner() {
            Ok(i) => (Some(index(&i).clone()), Some(i.orders.clone()), None),
            Err(e) => (None, None, Some(Err(e))),
        };
        closed.into_iter().chain(
            tree.into_iter()
                .flat_map(move |t| t.range(range.clone()))
                .filter_map(move |entry| {
                    let orders = orders.as_ref()?;
                    let k = match entry {
                        Ok((k, _)) => k,
                        Err(e) => return Some(Err(StoreError::from(e))),
                    };
                    let po = k.get(po_at..)?;
                    match orders.get(po) {
                        Ok(Some(v)) => Some(parse(po, &v)),
                        Ok(None) => None,
                        Err(e) => Some(Err(StoreError::from(e))),
                    }
                }),
        )
    }

    /// How many POs are in lifecycle `state` (index keys only; no record is read).
    pub fn count_in_state(&self, state: Lifecycle) -> usize {
        let code = state.code();
        self.inner()
            .map_or(0, |i| i.states.range(vec![code]..vec![code + 1]).count())
    }

    /// The 855s and 856s Ingram accepted for the PO, oldest first.
    pub fn documents(&self, po: &str) -> Result<Vec<DocumentRecord>, StoreError> {
        self.inner()?
            .documents
            .scan_prefix(keys::document_prefix(po))
            .map(|e| {
                let (k, v) = e?;
                parse(&k, &v)
            })
            .collect()
    }

    /// How many POs retention has pruned from this store.
    pub fn pruned_count(&self) -> u64 {
        self.inner()
            .ok()
            .and_then(|i| i.counters.get(keys::PRUNED).ok().flatten())
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes)
    }

    /// POs whose 850 the ERP refused (997 or TA1 `R`), from their index.
    pub fn erp_rejected_count(&self) -> usize {
        self.inner().map(|i| i.erp_rejected.len()).unwrap_or(0)
    }

    /// The POs whose 850 the ERP refused (the `erp_rejected` index; small by nature).
    pub fn erp_rejected_pos(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        self.inner()?
            .erp_rejected
            .iter()
            .map(|e| Ok(String::from_utf8_lossy(&e?.0).into_owned()))
            .collect()
    }

    pub fn dead_count(&self) -> usize {
        self.inner().map_or(0, |i| i.dead.len())
    }
}
