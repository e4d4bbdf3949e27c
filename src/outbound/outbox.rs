//! The outbox worker: takes queued POs in arrival order and makes each an 850 file in the ERP's
//! outbox exactly once, crash or not.
//!
//! Per PO: (1) allocate ISA13/GS06/ST02 and the file name in sled and flush — a retry reuses
//! them, so a re-render is byte-identical under the same name; (2) write a hidden temp file
//! `.NAME.tmp` in the outbox and fsync it; (3) hard-link it to `NAME` (atomic, never replaces) and
//! fsync the directory — the temp file's link count is the receipt that the link happened, even if
//! the ERP has already moved the file away; (4) archive a copy; (5) mark the PO written and
//! dequeue it, flush; (6) remove the temp file. Recovery is the same loop run at start. Where
//! the filesystem has no hard links, (3) falls back to rename.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::mapping::{Mapping, SharedMapping};
use crate::metrics::Metrics;
use crate::outbound::to_850::{self, ControlNumbers};
use crate::store::records::{Envelope850, Outbound850};
use crate::store::Store;

/// What the worker needs.
#[derive(Clone)]
pub struct Outbox {
    pub store: Store,
    pub mapping: SharedMapping,
    pub outbox_dir: PathBuf,
    pub archive_dir: Option<PathBuf>,
    pub file_pattern: String,
    pub retry: Duration,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub events: tokio::sync::broadcast::Sender<crate::daemon::Event>,
    /// Where the blocking work runs: a thread at lowered priority (`outbox.nice`).
    pub background: crate::background::Background,
    /// Busy while a batch is being written (the watchdog's view of this worker).
    pub live: crate::notify::Stamp,
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
                        tracing::info!(po = %po, file = %file, "850 written to the outbox.");
                        let _ = self.events.send(crate::daemon::Event::Written850 {
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
                        error = format!("{e:#}"),
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

    /// Writes up to `limit` queued 850s, sharing the syncs: allocate all and flush once; write,
    /// fsync and link each file; fsync each directory once; mark all written and flush once;
    /// then drop the receipts. The order of durable steps per PO is the one in the module docs.
    fn write_batch(&self, limit: usize) -> anyhow::Result<Batch> {
        let store = &self.store;
        let mapping = self.mapping.current();
        let pair = pair_key(&mapping);
        let now = crate::clock::now_rfc3339();
        let mut finished = Vec::new();
        let mut pending = Vec::new();
        for (queue_id, po) in store.outbox_batch(limit)? {
            match store.order(&po)? {
                None => {
                    tracing::warn!(po = %po, "Queued PO has no record; dropping the queue entry.");
                    finished.push((queue_id, po));
                }
                Some(rec) if matches!(rec.outbound, Outbound850::Written { .. }) => {
                    finished.push((queue_id, po))
                }
                Some(_) => pending.push((queue_id, po)),
            }
        }
        // One transaction for the whole batch: sled serialises transactions against flushes, so
        // fewer of them keep webhook intake from waiting.
        let names: Vec<&str> = pending.iter().map(|(_, po)| po.as_str()).collect();
        let recs = if names.is_empty() {
            Vec::new()
        } else {
            store.allocate_850s(&names, &pair, &now, |po, env| {
                file_name(&self.file_pattern, po, env)
            })?
        };
        let work: Vec<(u64, String, _)> = pending
            .into_iter()
            .zip(recs)
            .map(|((queue_id, po), rec)| (queue_id, po, rec))
            .collect();
        if work.is_empty() && finished.is_empty() {
            return Ok(Batch::default());
        }
        store.flush_blocking()?;
        let mut staged = Vec::new();
        let mut archive_dirs = std::collections::BTreeSet::new();
        let mut failed = 0;
        for (queue_id, po, rec) in work {
            let Outbound850::Allocated { envelope } = &rec.outbound else {
                anyhow::bail!("allocation left PO {po} pending");
            };
            let bytes = match render(&rec.order, &mapping, envelope) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(po = %po, error = format!("{e:#}"), "850 cannot be rendered with the current mapping; it stays queued.");
                    failed += 1;
                    continue;
                }
            };
            stage(&self.outbox_dir, &envelope.file_name, &bytes)?;
            if let Some(archive) = &self.archive_dir {
                let day = archive
                    .join("outbound")
                    .join(crate::clock::date_path(&envelope.created_at));
                stage_replace(&day, &envelope.file_name, &bytes)?;
                archive_dirs.insert(day);
            }
            staged.push((queue_id, po, envelope.file_name.clone()));
        }
        sync_dir(&self.outbox_dir)?;
        for d in &archive_dirs {
            sync_dir(d)?;
        }
        let at = crate::clock::now_rfc3339();
        let done: Vec<(u64, &str)> = finished
            .iter()
            .map(|(q, po)| (*q, po.as_str()))
            .chain(staged.iter().map(|(q, po, _)| (*q, po.as_str())))
            .collect();
        store.complete_850s(&done, &at)?;
        store.flush_blocking()?;
        let mut removed = false;
        for (_, _, name) in &staged {
            removed |= std::fs::remove_file(temp_path(&self.outbox_dir, name)).is_ok();
        }
        if removed {
            let _ = sync_dir(&self.outbox_dir);
        }
        Ok(Batch {
            written: staged.into_iter().map(|(_, po, f)| (po, f)).collect(),
            failed,
        })
    }

    /// Writes queued prepared files (997s); true when one was written (look again).
    async fn write_prepared_files(&self, shutdown: &CancellationToken) -> bool {
        let store = self.store.clone();
        let dir = self.outbox_dir.clone();
        let result = self
            .background
            .run("997 file", move || -> anyhow::Result<Option<String>> {
                let Some((id, file)) = store.next_file()? else {
                    return Ok(None);
                };
                // The record (and the control numbers in it) must be durable before the file exists.
                store.flush_blocking()?;
                deliver(&dir, &file.file_name, file.content.as_bytes())?;
                store.complete_file(id)?;
                store.flush_blocking()?;
                let _ = std::fs::remove_file(temp_path(&dir, &file.file_name));
                Ok(Some(file.file_name))
            })
            .await;
        match result {
            Ok(Ok(Some(file))) => {
                tracing::info!(file = %file, "997 written to the outbox.");
                let _ = self.events.send(crate::daemon::Event::WrittenFile { file });
                true
            }
            Ok(Ok(None)) => false,
            Ok(Err(e)) => {
                tracing::error!(
                    error = format!("{e:#}"),
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
}

/// The 850 bytes for a stored PO and its envelope.
pub fn render(
    order: &crate::outbound::order::PurchaseOrder,
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

/// The counter key of the mapping's (sender, receiver) pair.
pub fn pair_key(mapping: &Mapping) -> String {
    let i = &mapping.interchange;
    format!(
        "{}:{}/{}:{}",
        i.sender_qualifier, i.sender_id, i.receiver_qualifier, i.receiver_id
    )
}

/// The file name for a PO's 850: the pattern with placeholders filled and the PO number made
/// safe (only `A-Z a-z 0-9 . _ -`, no leading dot, at most 80 characters).
pub fn file_name(pattern: &str, po: &str, env: &Envelope850) -> String {
    let safe_po = safe_name(po);
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
}

/// `s` made safe as part of a file name: only `A-Z a-z 0-9 . _ -`, no `..`, no leading dot, at
/// most 80 characters, never empty.
pub fn safe_name(s: &str) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect::<String>()
        .replace("..", "__");
    let safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        "PO".to_string()
    } else {
        safe
    }
}

fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

/// Puts `bytes` at `dir/name` exactly once (see the module docs for the protocol).
pub fn deliver(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    stage(dir, name, bytes)?;
    sync_dir(dir)
}

/// `deliver` without the directory fsync, for callers that sync a directory once for a batch.
fn stage(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let final_path = dir.join(name);
    let tmp = temp_path(dir, name);
    if let Ok(meta) = std::fs::metadata(&tmp) {
        if meta.nlink() >= 2 {
            return Ok(());
        }
    }
    write_synced(&tmp, bytes)?;
    match std::fs::hard_link(&tmp, &final_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(1 | 18 | 95)) => {
            // EPERM / EXDEV / EOPNOTSUPP: no hard links here; rename is still atomic.
            std::fs::rename(&tmp, &final_path)
        }
        Err(e) => Err(e),
    }
}

/// Writes `dir/name` atomically, replacing any earlier copy (archive use).
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    stage_replace(dir, name, bytes)?;
    sync_dir(dir)
}

/// `replace_file` without the directory fsync.
fn stage_replace(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = temp_path(dir, name);
    write_synced(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Creates (or truncates) `path`, writes `bytes` and fsyncs the file.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// fsync a directory so a rename or link in it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
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
            file_name("{po}.{isa13}.850", "IM-1", &env()),
            "IM-1.000000042.850"
        );
        assert_eq!(
            file_name("{po}.{isa13}.850", "../../etc/passwd", &env()),
            "______etc_passwd.000000042.850"
        );
        assert_eq!(
            file_name("{po}.{isa13}.850", "a/b\nc\u{0}", &env()),
            "a_b_c_.000000042.850"
        );
        assert_eq!(
            file_name("{date}-{gs06}-{st02}-{isa13}", ".x", &env()),
            "20261123-7-0003-000000042"
        );
    }

    #[test]
    fn deliver_is_idempotent_and_keeps_a_receipt() {
        let dir = tempfile::tempdir().unwrap();
        deliver(dir.path(), "a.850", b"one").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.850")).unwrap(), b"one");
        // A retry after a crash before the temp file was removed: nothing changes.
        deliver(dir.path(), "a.850", b"one").unwrap();
        // The ERP moved the file away: the receipt (link count 2) says it was delivered.
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        std::fs::rename(dir.path().join("a.850"), dir.path().join("taken/a.850")).unwrap();
        deliver(dir.path(), "a.850", b"one").unwrap();
        assert!(!dir.path().join("a.850").exists(), "not delivered twice");
    }

    #[test]
    fn deliver_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.850"), b"first").unwrap();
        deliver(dir.path(), "a.850", b"second").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.850")).unwrap(), b"first");
    }
}
