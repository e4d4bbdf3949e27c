//! The outbox worker: takes queued POs in arrival order and makes each an 850 file in the ERP's
//! outbox exactly once, crash or not.
//!
//! Per PO: (1) allocate ISA13/GS06/ST02 and the file name in sled and flush — a retry reuses
//! them, so a re-render is byte-identical under the same name; (2) create a hidden temp file
//! `.NAME.<tag>.tmp` in the outbox (`O_EXCL|O_NOFOLLOW`, mode 0640; the tag comes from a key in
//! the state directory, so nobody can plant anything at the name beforehand) and make it
//! durable (a batch's temp files and archive copies at once: `files::sync_files`);
//! (3) hard-link the open file to `NAME` (atomic, never replaces) and fsync the directory — the
//! temp file's link count is the receipt that the link happened, even if the ERP has already
//! moved the file away; (4) archive a copy; (5) mark the PO written and dequeue it, flush;
//! (6) remove the temp file. Recovery is the same loop run at start. Where the filesystem has
//! no hard links, (3) falls back to a rename that never replaces. Every file operation goes
//! through [`crate::files`]: nothing here follows a symlink.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::PoRef;
use crate::files::{self, Dir, OpenError, Root, TempKey};
use crate::mapping::{Mapping, SharedMapping};
use crate::metrics::Metrics;
use crate::store::records::{Envelope850, Outbound850};
use crate::store::Store;
use crate::to_erp::to_850::{self, ControlNumbers};

/// What the worker needs.
#[derive(Clone)]
pub struct Outbox {
    pub store: Store,
    /// Each account's mapping and outbox directory.
    pub accounts: Vec<OutboxAccount>,
    /// The archive root (`archive/`), when 850 copies are kept.
    pub archive_dir: Option<Root>,
    /// Makes the temp names unguessable (see the module docs).
    pub temp_key: TempKey,
    pub file_pattern: String,
    pub retry: Duration,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    /// Where the blocking work runs: a thread at lowered priority (`outbox.nice`).
    pub background: crate::background::Background,
    /// Busy while a batch is being written (the watchdog's view of this worker).
    pub live: crate::clock::BusySince,
    /// `[outbox] paused`: write nothing, leave everything queued.
    pub paused: bool,
}

/// What the worker needs of one account.
#[derive(Clone)]
pub struct OutboxAccount {
    pub id: String,
    pub mapping: SharedMapping,
    pub dir: Root,
}

/// How many queued 850s one round takes.
const BATCH: usize = 64;

/// What one round did: 850s written (PO, file) and POs that could not be rendered.
#[derive(Debug, Default)]
struct Batch {
    written: Vec<(String, String)>,
    failed: usize,
}

impl Outbox {
    /// Runs until `shutdown`; finishes the batch it is on first.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        if self.paused {
            tracing::warn!("The outbox is paused ([outbox] paused = true): webhooks are accepted and their 850s (and the 997s) stay queued until the daemon runs with paused = false.");
            shutdown.cancelled().await;
            return Ok(());
        }
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let me = self.clone();
            let result = {
                let _busy = self.live.busy();
                self.background
                    .run("850 batch", move || me.write_batch(BATCH))
                    .await?
            };
            let failed = match result {
                Ok(Batch { written, failed }) => {
                    for (po, file) in written.iter() {
                        self.metrics.file_850_written();
                        tracing::info!(po = %shown(po), file = %crate::text::Escaped(file), "850 written to the outbox.");
                        let _ = self.events.send(crate::events::Event::Written850 {
                            po: po.clone(),
                            file: file.clone(),
                        });
                    }
                    if written.is_empty() && failed == 0 {
                        // Queue empty: 997s, then sleep until woken.
                        let wrote = {
                            let _busy = self.live.busy();
                            self.write_prepared_files(&shutdown).await
                        };
                        if wrote {
                            continue;
                        }
                        tokio::select! {
                            _ = self.wake.notified() => continue,
                            _ = shutdown.cancelled() => return Ok(()),
                        }
                    }
                    failed > 0
                }
                Err(e) => {
                    tracing::error!(
                        error = %crate::text::Escaped(&format!("{e:#}")),
                        retry_secs = self.retry.as_secs(),
                        "850s not written; will retry."
                    );
                    true
                }
            };
            if failed {
                self.metrics.outbox_error();
                tokio::select! {
                    _ = tokio::time::sleep(self.retry) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
            }
        }
    }

    /// Writes up to `limit` queued 850s, sharing the syncs: allocate all and flush once; write
    /// each temp file (and its archive copy), sync them all at once ([`files::sync_files`]);
    /// link each; fsync each directory once; mark all written and flush once; then drop the
    /// receipts. The order of durable steps per PO is the one in the module docs.
    fn write_batch(&self, limit: usize) -> anyhow::Result<Batch> {
        let store = &self.store;
        let Taken {
            finished,
            work,
            mut failed,
        } = self.take(limit)?;
        if work.is_empty() && finished.is_empty() {
            return Ok(Batch {
                written: Vec::new(),
                failed,
            });
        }
        store.flush_blocking()?;
        let mut outboxes: BTreeMap<String, Dir> = BTreeMap::new();
        let mut archive = match &self.archive_dir {
            Some(root) => Some(ArchiveCopies::new(root.open()?)),
            None => None,
        };
        let mut staged = Vec::new();
        for w in work {
            let Outbound850::Allocated { envelope } = &w.rec.outbound else {
                anyhow::bail!("allocation left PO {} pending", shown(&w.po));
            };
            let bytes = match render(&w.rec.order, &w.mapping, envelope) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(po = %shown(&w.po), error = %crate::text::Escaped(&format!("{e:#}")), "850 cannot be rendered with the current mapping; it stays queued.");
                    failed += 1;
                    continue;
                }
            };
            let outbox = match outboxes.entry(w.account.id.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => v.insert(w.account.dir.open()?),
            };
            let name = envelope.file_name.clone();
            let prepared = prepare(outbox, &self.temp_key, &name, &bytes)?;
            if let Some(archive) = &mut archive {
                let day = format!("outbound/{}", crate::clock::date_path(&envelope.created_at));
                archive.write(day, &name, &bytes)?;
            }
            staged.push(Staged {
                queue_id: w.queue_id,
                po: w.po,
                name,
                account: w.account.id.clone(),
                prepared,
                bytes,
            });
        }
        let mut synced: Vec<&std::fs::File> =
            staged.iter().filter_map(|s| s.prepared.file()).collect();
        if let Some(archive) = &archive {
            synced.extend(archive.files());
        }
        files::sync_files(&synced)?;
        for s in &staged {
            if let Prepared::Written(file) = &s.prepared {
                finish(
                    &outboxes[&s.account],
                    &self.temp_key,
                    &s.name,
                    file,
                    &s.bytes,
                )?;
            }
        }
        let archive_dirs = match archive {
            Some(archive) => archive.name_all()?,
            None => Vec::new(),
        };
        for d in outboxes.values().chain(archive_dirs.iter()) {
            d.sync()?;
        }
        let at = crate::clock::now_rfc3339();
        let done: Vec<(u64, &str)> = finished
            .iter()
            .map(|(q, po)| (*q, po.as_str()))
            .chain(staged.iter().map(|s| (s.queue_id, s.po.as_str())))
            .collect();
        store.complete_850s(&done, &at)?;
        store.flush_blocking()?;
        self.drop_receipts(
            &outboxes,
            staged.iter().map(|s| (s.account.as_str(), s.name.as_str())),
        );
        Ok(Batch {
            written: staged.into_iter().map(|s| (s.po, s.name)).collect(),
            failed,
        })
    }

    /// The queue's next `limit` POs: those already written or without a record (their queue
    /// entries to finish), and the others with their envelopes allocated (one transaction per
    /// account: each numbers its own interchanges, and sled serialises transactions against
    /// flushes, so fewer of them keep webhook intake from waiting).
    fn take(&self, limit: usize) -> anyhow::Result<Taken<'_>> {
        let store = &self.store;
        let now = crate::clock::now_rfc3339();
        let mut finished = Vec::new();
        let mut pending: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for (queue_id, po) in store.outbox_batch(limit)? {
            let account = PoRef::from_key(&po).account;
            pending.entry(account).or_default().push((queue_id, po));
        }
        let mut failed = 0;
        let mut work = Vec::new();
        for (account, entries) in pending {
            let Some(acc) = self.accounts.iter().find(|a| a.id == account) else {
                tracing::error!(account = %crate::text::Escaped(&account), pos = entries.len(), "Queued POs of an account that is no longer configured stay queued: configure the account again.");
                failed += entries.len();
                continue;
            };
            let mapping = acc.mapping.current();
            let names: Vec<&str> = entries.iter().map(|(_, po)| po.as_str()).collect();
            let recs =
                store.allocate_850s(&names, &mapping.interchange.pair_key(), &now, |po, env| {
                    file_name(&self.file_pattern, &PoRef::from_key(po), env)
                })?;
            for ((queue_id, po), rec) in entries.into_iter().zip(recs) {
                let rec = match rec {
                    None => {
                        tracing::warn!(po = %shown(&po), "Queued PO has no record; dropping the queue entry.");
                        finished.push((queue_id, po));
                        continue;
                    }
                    Some(rec) if matches!(rec.outbound, Outbound850::Written { .. }) => {
                        finished.push((queue_id, po));
                        continue;
                    }
                    Some(rec) => rec,
                };
                work.push(Work {
                    queue_id,
                    po,
                    rec,
                    account: acc,
                    mapping: mapping.clone(),
                });
            }
        }
        Ok(Taken {
            finished,
            work,
            failed,
        })
    }

    /// Removes the temp files (the receipts) of files now marked written, then syncs each
    /// directory one was removed from. Best effort: a receipt left behind is dropped by the
    /// next attempt at that name, and a written PO is never attempted again.
    fn drop_receipts<'a>(
        &self,
        dirs: &BTreeMap<String, Dir>,
        written: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        let mut removed = BTreeMap::new();
        for (account, name) in written {
            if let Some(dir) = dirs.get(account) {
                if dir.unlink(&self.temp_key.temp_name(name)).is_ok() {
                    removed.insert(account, dir);
                }
            }
        }
        for dir in removed.values() {
            let _ = dir.sync();
        }
    }

    /// The outbox directory a prepared file of `account` goes to (the first account's when that
    /// account is no longer configured: every outbox is the ERP's).
    fn dir_of(&self, account: &str) -> Root {
        self.accounts
            .iter()
            .find(|a| a.id == account)
            .unwrap_or(&self.accounts[0])
            .dir
            .clone()
    }

    /// Writes queued prepared files (997s), a batch at a time; true when one was written (look
    /// again).
    async fn write_prepared_files(&self, shutdown: &CancellationToken) -> bool {
        let me = self.clone();
        let result = self
            .background
            .run("997 files", move || me.write_files(BATCH))
            .await;
        match result {
            Ok(Ok(written)) => {
                for file in &written {
                    tracing::info!(file = %crate::text::Escaped(file), "997 written to the outbox.");
                    let _ = self
                        .events
                        .send(crate::events::Event::WrittenFile { file: file.clone() });
                }
                !written.is_empty()
            }
            Ok(Err(e)) => {
                tracing::error!(
                    error = %crate::text::Escaped(&format!("{e:#}")),
                    retry_secs = self.retry.as_secs(),
                    "Prepared file not written; will retry."
                );
                tokio::select! {
                    _ = tokio::time::sleep(self.retry) => {}
                    _ = shutdown.cancelled() => {}
                }
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "Outbox file task failed.");
                false
            }
        }
    }

    /// Writes up to `limit` queued prepared files with the 850s' protocol and shared syncs: one
    /// flush (their records, with the control numbers in them, durable before any file
    /// exists); each file written, fsynced and linked; each directory fsynced once; the
    /// written ones dequeued and flushed once; then the receipts dropped. The names written;
    /// an error when one could not be (it stays queued, the others are done).
    fn write_files(&self, limit: usize) -> anyhow::Result<Vec<String>> {
        let store = &self.store;
        let queued = store.next_files(limit)?;
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        store.flush_blocking()?;
        let mut dirs: BTreeMap<String, Dir> = BTreeMap::new();
        let mut prepared = Vec::new();
        let mut failure = None;
        for (id, file) in queued {
            let dir = match dirs.entry(file.account.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(self.dir_of(&file.account).open()?)
                }
            };
            let content = file.content.as_bytes();
            match prepare(dir, &self.temp_key, &file.file_name, content) {
                Ok(p) => prepared.push((id, file, p)),
                Err(e) => {
                    failure =
                        Some(anyhow::Error::new(e).context(format!("997 {}", file.file_name)));
                    break;
                }
            }
        }
        let synced: Vec<&std::fs::File> =
            prepared.iter().filter_map(|(_, _, p)| p.file()).collect();
        files::sync_files(&synced)?;
        let mut staged = Vec::new();
        for (id, file, p) in &prepared {
            let linked = match p {
                Prepared::Written(f) => finish(
                    &dirs[&file.account],
                    &self.temp_key,
                    &file.file_name,
                    f,
                    file.content.as_bytes(),
                ),
                Prepared::Delivered => Ok(()),
            };
            match linked {
                Ok(()) => staged.push((*id, file.account.as_str(), file.file_name.as_str())),
                Err(e) => {
                    failure =
                        Some(anyhow::Error::new(e).context(format!("997 {}", file.file_name)));
                    break;
                }
            }
        }
        for d in dirs.values() {
            d.sync()?;
        }
        let ids: Vec<u64> = staged.iter().map(|(id, _, _)| *id).collect();
        store.complete_files(&ids)?;
        store.flush_blocking()?;
        self.drop_receipts(&dirs, staged.iter().map(|(_, a, n)| (*a, *n)));
        match failure {
            Some(e) => Err(e),
            None => Ok(staged
                .into_iter()
                .map(|(_, _, name)| name.to_string())
                .collect()),
        }
    }
}

/// One queued PO with its allocated envelope, the account it belongs to and that account's
/// mapping as it was at allocation.
struct Work<'a> {
    queue_id: u64,
    po: String,
    rec: crate::store::records::OrderRecord,
    account: &'a OutboxAccount,
    mapping: Arc<Mapping>,
}

/// What [`Outbox::take`] found in the queue.
struct Taken<'a> {
    /// Queue entries to finish without writing (already written, or no record).
    finished: Vec<(u64, String)>,
    work: Vec<Work<'a>>,
    /// POs left queued (their account is gone).
    failed: usize,
}

/// One 850 of a batch, between its temp file and its record.
struct Staged {
    queue_id: u64,
    po: String,
    name: String,
    account: String,
    prepared: Prepared,
    bytes: Vec<u8>,
}

/// A batch's archive copies: written under temp names, synced with the batch's outbox files,
/// then each renamed to its name. Temp files not yet renamed are removed when it is dropped
/// (a batch that stopped on an error leaves nothing behind).
struct ArchiveCopies {
    root: Dir,
    days: BTreeMap<String, Dir>,
    /// (day, temp name, name, file), in the order written.
    temps: Vec<(String, std::ffi::OsString, String, std::fs::File)>,
}

impl ArchiveCopies {
    fn new(root: Dir) -> ArchiveCopies {
        ArchiveCopies {
            root,
            days: BTreeMap::new(),
            temps: Vec::new(),
        }
    }

    /// Writes `bytes` under a temp name for `name` in the day's directory (not synced).
    fn write(&mut self, day: String, name: &str, bytes: &[u8]) -> io::Result<()> {
        let dir = match self.days.entry(day.clone()) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let dir = self.root.sub_path(v.key(), files::SHARED_DIR_MODE)?;
                v.insert(dir)
            }
        };
        let (tmp, file) = dir.write_temp(OsStr::new(name), bytes)?;
        self.temps.push((day, tmp, name.to_string(), file));
        Ok(())
    }

    fn files(&self) -> impl Iterator<Item = &std::fs::File> {
        self.temps.iter().map(|(_, _, _, f)| f)
    }

    /// Renames every synced temp file to its name (replacing an earlier copy); the day
    /// directories, for the caller to sync.
    fn name_all(mut self) -> io::Result<Vec<Dir>> {
        // One at a time off the list: on an error, those not renamed yet are still on it
        // for `drop` to remove.
        while let Some((day, tmp, name, _)) = self.temps.pop() {
            let dir = &self.days[&day];
            if let Err(e) = dir.rename_replace(&tmp, OsStr::new(&name)) {
                let _ = dir.unlink(&tmp);
                return Err(e);
            }
        }
        Ok(std::mem::take(&mut self.days).into_values().collect())
    }
}

impl Drop for ArchiveCopies {
    fn drop(&mut self) {
        for (day, tmp, _, _) in &self.temps {
            if let Some(dir) = self.days.get(day) {
                let _ = dir.unlink(tmp);
            }
        }
    }
}

/// The 850 bytes for a stored PO and its envelope.
pub fn render(
    order: &crate::domain::PurchaseOrder,
    mapping: &Mapping,
    envelope: &Envelope850,
) -> anyhow::Result<Vec<u8>> {
    let at = time::OffsetDateTime::parse(
        &envelope.created_at,
        &time::format_description::well_known::Rfc3339,
    )?;
    Ok(to_850::render(
        order,
        mapping,
        ControlNumbers {
            isa13: envelope.isa13,
            gs06: envelope.gs06,
            st02: envelope.st02,
        },
        at,
    )?)
}

/// The file name for a PO's 850: the pattern with placeholders filled and the PO number made
/// safe (only `A-Z a-z 0-9 . _ -`, no leading dot, at most 80 characters).
pub fn file_name(pattern: &str, po: &PoRef, env: &Envelope850) -> String {
    let safe_po = files::safe_name(&po.po);
    let date: String = env
        .created_at
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(8)
        .collect();
    pattern
        .replace("{po}", &safe_po)
        .replace("{isa13}", &format!("{:09}", env.isa13))
        .replace("{gs06}", &env.gs06.to_string())
        .replace("{st02}", &format!("{:04}", env.st02))
        .replace("{date}", &date)
        .replace("{account}", &po.account)
}

/// A PO's store key for a log line (`PO`, or `account/PO`), escaped.
fn shown(key: &str) -> String {
    crate::text::escape(&crate::domain::account::show_po_key(key))
}

/// Puts `bytes` at `dir/name` exactly once (see the module docs for the protocol).
pub fn deliver(dir: &Dir, key: &TempKey, name: &str, bytes: &[u8]) -> io::Result<()> {
    stage(dir, key, name, bytes)?;
    dir.sync()
}

/// `deliver` without the directory fsync, for callers that sync a directory once for a batch.
fn stage(dir: &Dir, key: &TempKey, name: &str, bytes: &[u8]) -> io::Result<()> {
    match prepare(dir, key, name, bytes)? {
        Prepared::Delivered => Ok(()),
        Prepared::Written(file) => {
            file.sync_all()?;
            finish(dir, key, name, &file, bytes)
        }
    }
}

/// Where a file stands after [`prepare`].
enum Prepared {
    /// Its temp file is linked already: the receipt that it was delivered.
    Delivered,
    /// Its temp file is written, neither synced nor linked.
    Written(std::fs::File),
}

impl Prepared {
    /// The temp file still to sync and link.
    fn file(&self) -> Option<&std::fs::File> {
        match self {
            Prepared::Written(f) => Some(f),
            Prepared::Delivered => None,
        }
    }
}

/// The first half of [`stage`]: the temp file written and not synced (a batch syncs all its
/// files at once), or the receipt found.
fn prepare(dir: &Dir, key: &TempKey, name: &str, bytes: &[u8]) -> io::Result<Prepared> {
    let tmp = key.temp_name(name);
    match dir.open_regular(&tmp) {
        // Our own temp file, linked already: the receipt that this file was delivered.
        Ok((_, meta)) if meta.nlink >= 2 && meta.uid == files::my_uid() => {
            return Ok(Prepared::Delivered)
        }
        // A temp file from an attempt that stopped before linking: start again.
        Ok(_) => dir.unlink(&tmp)?,
        Err(OpenError::NotRegular(kind)) => {
            tracing::warn!(
                file = %dir.display(&tmp),
                found = kind.describe(),
                "Something else was planted at the outbox temp name; removing it (never written through)."
            );
            dir.unlink(&tmp)?;
        }
        Err(OpenError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
        Err(OpenError::Io(e)) => return Err(e),
    }
    let mut file = dir.create_new(&tmp, files::FILE_MODE)?;
    file.write_all(bytes)?;
    Ok(Prepared::Written(file))
}

/// The second half of [`stage`], once `file` (the temp file [`prepare`] wrote) is synced: its
/// link to `name`, never replacing anything.
fn finish(
    dir: &Dir,
    key: &TempKey,
    name: &str,
    file: &std::fs::File,
    bytes: &[u8],
) -> io::Result<()> {
    let tmp = key.temp_name(name);
    let final_name = OsStr::new(name);
    let linked = match dir.link_file(file, &tmp, final_name) {
        Err(e) if matches!(e.raw_os_error(), Some(1 | 18 | 95)) => {
            // EPERM / EXDEV / EOPNOTSUPP: no hard links here; a rename that never replaces.
            dir.rename_noreplace(&tmp, dir, final_name)
        }
        other => other,
    };
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => already_there(dir, final_name, bytes),
        Err(e) => Err(e),
    }
}

/// The final name exists: fine when it holds exactly these bytes (a retry after a crash on a
/// filesystem without hard links), refused otherwise: the daemon never writes over, or
/// through, what someone else put there.
fn already_there(dir: &Dir, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    let found = match dir.open_regular(name) {
        Ok((mut f, meta)) if meta.size == bytes.len() as u64 => {
            files::read_limited(&mut f, meta.size)?.unwrap_or_default()
        }
        Ok(_) => Vec::new(),
        Err(OpenError::NotRegular(kind)) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is {}, not this 850; it is left alone and the file is not written until it is removed",
                    dir.display(name),
                    kind.describe()
                ),
            ))
        }
        Err(OpenError::Io(e)) => return Err(e),
    };
    if found == bytes {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} already exists with other content; it is left alone and the file is not written until it is removed",
            dir.display(name)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope850 {
        Envelope850 {
            isa13: 42,
            gs06: 7,
            st02: 3,
            created_at: "2026-11-23T10:00:00Z".into(),
            file_name: String::new(),
        }
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name("{po}.{isa13}.850", &PoRef::new("default", "IM-1"), &env()),
            "IM-1.000000042.850"
        );
        assert_eq!(
            file_name(
                "{po}.{isa13}.850",
                &PoRef::new("default", "../../etc/passwd"),
                &env()
            ),
            "______etc_passwd.000000042.850"
        );
        assert_eq!(
            file_name(
                "{po}.{isa13}.850",
                &PoRef::new("default", "a/b\nc\u{0}"),
                &env()
            ),
            "a_b_c_.000000042.850"
        );
        assert_eq!(
            file_name(
                "{date}-{gs06}-{st02}-{isa13}",
                &PoRef::new("default", ".x"),
                &env()
            ),
            "20261123-7-0003-000000042"
        );
    }

    fn outbox() -> (tempfile::TempDir, Dir, TempKey) {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open(t.path(), files::SHARED_DIR_MODE).unwrap();
        (t, d, TempKey::random())
    }

    #[test]
    fn deliver_is_idempotent_and_keeps_a_receipt() {
        let (t, dir, key) = outbox();
        deliver(&dir, &key, "a.850", b"one").unwrap();
        assert_eq!(std::fs::read(t.path().join("a.850")).unwrap(), b"one");
        // A retry after a crash before the temp file was removed: nothing changes.
        deliver(&dir, &key, "a.850", b"one").unwrap();
        // The ERP moved the file away: the receipt (link count 2) says it was delivered.
        std::fs::create_dir(t.path().join("taken")).unwrap();
        std::fs::rename(t.path().join("a.850"), t.path().join("taken/a.850")).unwrap();
        deliver(&dir, &key, "a.850", b"one").unwrap();
        assert!(!t.path().join("a.850").exists(), "not delivered twice");
    }

    #[test]
    fn deliver_never_replaces_an_existing_file() {
        let (t, dir, key) = outbox();
        std::fs::write(t.path().join("a.850"), b"first").unwrap();
        let e = deliver(&dir, &key, "a.850", b"second").unwrap_err();
        assert!(
            e.to_string().contains("already exists with other content"),
            "{e}"
        );
        assert_eq!(std::fs::read(t.path().join("a.850")).unwrap(), b"first");
        // The same bytes already there (a retry where links are not supported): delivered.
        std::fs::write(t.path().join("b.850"), b"same").unwrap();
        deliver(&dir, &key, "b.850", b"same").unwrap();
    }

    #[test]
    fn deliver_never_writes_through_a_planted_symlink() {
        let (t, dir, key) = outbox();
        let victim = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(victim.path(), b"root-owned config").unwrap();
        // At the temp name (were it guessed) and at the final name.
        std::os::unix::fs::symlink(victim.path(), t.path().join(key.temp_name("a.850"))).unwrap();
        deliver(&dir, &key, "a.850", b"850 bytes").unwrap();
        assert_eq!(std::fs::read(t.path().join("a.850")).unwrap(), b"850 bytes");
        std::os::unix::fs::symlink(victim.path(), t.path().join("b.850")).unwrap();
        let e = deliver(&dir, &key, "b.850", b"850 bytes").unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        assert_eq!(std::fs::read(victim.path()).unwrap(), b"root-owned config");
    }

    #[test]
    fn temp_names_cannot_be_guessed_from_the_file_name() {
        let (a, b) = (TempKey::random(), TempKey::random());
        assert_ne!(a.temp_name("x.850"), b.temp_name("x.850"));
        assert_eq!(a.temp_name("x.850"), a.temp_name("x.850"));
        let n = a.temp_name("x.850");
        let n = n.to_string_lossy();
        assert!(n.starts_with(".x.850.") && n.ends_with(".tmp"), "{n}");
    }
}
