//! The inbox watcher and worker loop. A full directory scan is the source of truth (at start,
//! every `rescan_secs`, and whenever a `notify` event wakes it); events carry no meaning beyond
//! "look now". A file is taken only when its size and mtime have not changed for `settle_ms` and
//! it holds a complete interchange (IEA closing the last ISA); one still incomplete after
//! `incomplete_timeout_secs` goes to `error/`. Taking a file means renaming it into
//! `inbox/.processing/` (same filesystem, atomic), so a restart resumes it and never takes it
//! twice. Hidden files and the configured patterns (`*.tmp`, `*.part`) are never taken.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::inbound::inbox::{self, Dirs, Outcome};
use crate::mapping::SharedMapping;
use crate::store::Store;

/// The processing area inside the inbox.
pub const PROCESSING: &str = ".processing";

#[derive(Clone)]
pub struct Inbox {
    pub store: Store,
    pub mapping: SharedMapping,
    pub inbox: PathBuf,
    pub dirs: Dirs,
    pub settle: Duration,
    pub rescan: Duration,
    pub incomplete_timeout: Duration,
    pub ignore: Vec<String>,
    /// Woken after each commit: the deliver worker (jobs) and the outbox worker (997s).
    pub deliver_wake: Arc<Notify>,
    pub outbox_wake: Arc<Notify>,
    pub events: tokio::sync::broadcast::Sender<crate::daemon::Event>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Busy during a scan (the watchdog's view of this worker).
    pub live: crate::notify::Stamp,
}

/// What the scanner remembers of a file between scans.
struct Seen {
    size: u64,
    mtime: Option<SystemTime>,
    stable_since: Instant,
    first_seen: Instant,
}

impl Inbox {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let processing = self.inbox.join(PROCESSING);
        std::fs::create_dir_all(&processing)?;
        let wake = Arc::new(Notify::new());
        let _watcher = {
            use notify::Watcher as _;
            let wake = wake.clone();
            let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if res.as_ref().map_or(true, |ev| worth_a_scan(&ev.kind)) {
                    wake.notify_one()
                }
            })?;
            match w.watch(&self.inbox, notify::RecursiveMode::NonRecursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "Cannot watch the inbox; relying on the periodic rescan.");
                    None
                }
            }
        };
        // Files claimed before a restart are resumed by the first scan.
        let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let pending = {
                let _busy = self.live.busy();
                self.scan(&mut seen, &processing).await
            };
            let wait = if pending {
                self.settle.min(self.rescan)
            } else {
                self.rescan
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// One pass over the inbox; true when some file is waiting to settle.
    async fn scan(&self, seen: &mut HashMap<PathBuf, Seen>, processing: &Path) -> bool {
        self.metrics.inbox_scan();
        // Files left claimed by a failed attempt (a move that failed, a store error) are retried.
        for path in list(processing) {
            self.handle(path).await;
        }
        let now = Instant::now();
        let mut present = Vec::new();
        let mut pending = false;
        for path in list(&self.inbox) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if self.ignored(&name) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            present.push(path.clone());
            let (size, mtime) = (meta.len(), meta.modified().ok());
            let entry = seen.entry(path.clone()).or_insert(Seen {
                size,
                mtime,
                stable_since: now,
                first_seen: now,
            });
            if entry.size != size || entry.mtime != mtime {
                entry.size = size;
                entry.mtime = mtime;
                entry.stable_since = now;
            }
            if now.duration_since(entry.stable_since) < self.settle {
                pending = true;
                continue;
            }
            let ready = match std::fs::read(&path) {
                Ok(bytes) => readiness(&bytes),
                Err(_) => continue,
            };
            let complete = !matches!(ready, Readiness::Incomplete(_));
            let timed_out = now.duration_since(entry.first_seen) >= self.incomplete_timeout;
            if !complete && !timed_out {
                pending = true;
                continue;
            }
            let Some(claimed) = claim(&path, processing, &name) else {
                continue;
            };
            seen.remove(&path);
            if complete {
                self.handle(claimed).await;
            } else {
                let mut reason = format!(
                    "incomplete: no IEA closes the last ISA after {} s (a file still being written, or truncated); write to a temporary name and rename into the inbox when complete",
                    self.incomplete_timeout.as_secs()
                );
                if let Readiness::Incomplete(seen) = &ready {
                    for line in seen {
                        reason.push_str("\nreader: ");
                        reason.push_str(line);
                    }
                }
                match inbox::quarantine(&self.dirs.error, &claimed, &name, &reason) {
                    Ok(moved) => self.report(&name, &Outcome::Rejected { reason, moved }),
                    Err(e) => {
                        tracing::error!(file = %name, error = %e, "Cannot move an incomplete file to the error directory; it stays in the processing area.")
                    }
                }
            }
        }
        seen.retain(|p, _| present.contains(p));
        pending
    }

    fn ignored(&self, name: &str) -> bool {
        name.starts_with('.') || self.ignore.iter().any(|p| glob(p, name))
    }

    /// Processes one claimed file; errors leave it in the processing area for the next start.
    async fn handle(&self, path: PathBuf) {
        let store = self.store.clone();
        let mapping = self.mapping.current();
        let dirs = self.dirs.clone();
        let p = path.clone();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let result =
            tokio::task::spawn_blocking(move || inbox::process(&store, &mapping, &dirs, &p)).await;
        match result {
            Ok(Ok(outcome)) => {
                self.report(&name, &outcome);
                self.deliver_wake.notify_one();
                self.outbox_wake.notify_one();
            }
            Ok(Err(e)) => {
                tracing::error!(file = %name, error = format!("{e:#}"), "Inbox file not processed; it stays claimed and is retried at the next scan.");
                // A 997 may have been committed before the failure.
                self.outbox_wake.notify_one();
            }
            Err(e) => tracing::error!(file = %name, error = %e, "Inbox task failed."),
        }
    }

    fn report(&self, name: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Archived { jobs, archived } => {
                tracing::info!(file = %name, jobs, archived = %archived.display(), "Inbox file processed.")
            }
            Outcome::Rejected { reason, moved } => {
                tracing::error!(file = %name, moved = %moved.display(), reason = %reason.lines().next().unwrap_or(""), "Inbox file rejected.")
            }
            Outcome::Duplicate { moved, .. } => {
                tracing::warn!(file = %name, moved = %moved.display(), "Duplicate interchange; no API call made.")
            }
        }
        let _ = self.events.send(crate::daemon::Event::InboxFile {
            file: name.to_string(),
            outcome: outcome.clone(),
        });
    }
}

/// Whether a watch event can mean that a file arrived or changed. inotify also reports the
/// directory being opened and read, which is what every scan does: waking on those would make
/// each scan cause the next, a busy loop. A file closed after writing still counts. A watch
/// error (a queue overflow, say) wakes a scan too.
fn worth_a_scan(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether a settled file can be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// At least one complete interchange and nothing left open (or, for a bare file without
    /// ISA, every transaction set closed).
    Complete,
    /// Its ISA is there but unusable (bad delimiters): waiting cannot help, take it now and let
    /// processing reject it with the positioned diagnostic.
    Unreadable,
    /// Not (yet) complete; what the reader reported so far, for the reason file on timeout.
    Incomplete(Vec<String>),
}

/// How ready `bytes` are to be processed.
pub fn readiness(bytes: &[u8]) -> Readiness {
    use crate::x12::DiagnosticCode;
    let doc = crate::x12::read(bytes, &crate::x12::ReadOptions::default());
    let complete = if doc.interchanges.iter().all(|i| i.synthetic) {
        let mut sets = doc.transactions().peekable();
        sets.peek().is_some() && sets.all(|t| t.closed)
    } else {
        doc.is_complete()
    };
    if complete {
        return Readiness::Complete;
    }
    // 128 bytes hold a whole ISA even with generous padding: a writer cannot still be in it.
    let broken_isa = bytes.len() >= 128
        && doc.diagnostics.iter().any(|d| {
            matches!(
                d.code,
                DiagnosticCode::BadDelimiters | DiagnosticCode::BadIsa
            )
        });
    if broken_isa {
        return Readiness::Unreadable;
    }
    Readiness::Incomplete(
        doc.errors()
            .take(5)
            .map(|d| {
                format!(
                    "{}: {} ({})",
                    d.code.as_str(),
                    d.message,
                    crate::inbound::describe(&d.position)
                )
            })
            .collect(),
    )
}

/// Claims a file by renaming it into the processing area (a unique name if taken).
fn claim(path: &Path, processing: &Path, name: &str) -> Option<PathBuf> {
    for n in 0..1000u32 {
        let target = if n == 0 {
            processing.join(name)
        } else {
            processing.join(format!("{name}.{n}"))
        };
        if target.exists() {
            continue;
        }
        return match std::fs::rename(path, &target) {
            Ok(()) => {
                let _ = crate::outbound::outbox::sync_dir(processing);
                Some(target)
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "Cannot claim inbox file; will retry.");
                None
            }
        };
    }
    None
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_wake_a_scan() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
        use notify::EventKind;
        for quiet in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Any,
        ] {
            assert!(!worth_a_scan(&EventKind::Access(quiet)), "{quiet:?}");
        }
        for change in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Remove(notify::event::RemoveKind::Any),
            EventKind::Any,
        ] {
            assert!(worth_a_scan(&change), "{change:?}");
        }
    }

    #[test]
    fn glob_patterns() {
        assert!(glob("*.tmp", "a.tmp"));
        assert!(!glob("*.tmp", "a.tmp.edi"));
        assert!(glob("*.part", ".x.part"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXc"));
        assert!(glob("exact", "exact"));
    }
}
