//! The inbox watcher and worker loop. A full directory scan is the source of truth (at start,
//! every `rescan_secs`, and whenever a `notify` event wakes it); events otherwise only say which
//! files a writer still has open. A file is taken only when its size and mtime have not changed
//! for `settle_ms`, no writer is known to hold it open (inotify: modified and not closed since),
//! and its *last* interchange is complete (an ISA cut at the end of the file means "still being
//! written"); one still incomplete after `incomplete_timeout_secs` goes to `error/`. Taking a
//! file means renaming it into `inbox/.processing/` (same filesystem, atomic, never replacing),
//! so a restart resumes it and never takes it twice.
//!
//! The inbox is shared with other accounts: every name is looked at through directory handles
//! ([`crate::files`]) without following symlinks. A symlink, FIFO, socket or device is moved to
//! `error/` as it is (its target never opened); a file that cannot start X12 goes there at once;
//! one bigger than `max_file_bytes` too; one that cannot be read is logged (at most once a
//! minute per file), counted, and moved there after the incomplete timeout. Reading and parsing
//! run on a blocking thread, and a file that has not changed (same inode, size and mtime) is not
//! read again. Hidden files and the configured patterns (`*.tmp`, `*.part`) are never taken.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::events::Outcome;
use crate::files::{self, Dir, Kind, Meta, OpenError, Root};
use crate::from_erp::inbox::{self, Dirs};
use crate::store::inbound::WaitingFile;
use crate::store::Store;
use crate::text::Escaped;

/// The processing area inside the inbox.
pub const PROCESSING: &str = ".processing";

/// How often one and the same problem (a file that cannot be read, an inbox that cannot be
/// opened) is logged.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);

/// When a problem was last logged: at most once every [`COMPLAIN_EVERY`].
#[derive(Default)]
struct Throttle(Option<Instant>);

impl Throttle {
    /// Whether to log now (and if so, counts this as logged).
    fn due(&mut self, now: Instant) -> bool {
        if self
            .0
            .is_some_and(|t| now.duration_since(t) < COMPLAIN_EVERY)
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

#[derive(Clone)]
pub struct Inbox {
    pub store: Store,
    /// Every account: a file goes to the account its interchange answers.
    pub accounts: Accounts,
    pub inbox: Root,
    pub dirs: Dirs,
    pub settle: Duration,
    pub rescan: Duration,
    pub incomplete_timeout: Duration,
    pub ignore: Vec<String>,
    /// Woken after each commit: the deliver worker (jobs) and the outbox worker (997s).
    pub deliver_wake: Arc<Notify>,
    pub outbox_wake: Arc<Notify>,
    pub events: tokio::sync::broadcast::Sender<crate::events::Event>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Busy during a scan (the watchdog's view of this worker).
    pub live: crate::clock::BusySince,
}

/// What the scanner remembers of a file between scans.
struct Seen {
    meta: Meta,
    stable_since: Instant,
    first_seen: Instant,
    /// The readiness of exactly this content (same inode, size, mtime), so it is read once.
    ready: Option<Readiness>,
    /// Its read failures, logged at most once a minute.
    complaint: Throttle,
    /// In the processing area: it changed after it was taken, and has not settled since.
    changing: bool,
}

impl Seen {
    fn new(meta: Meta, now: Instant) -> Seen {
        Seen {
            meta,
            stable_since: now,
            first_seen: now,
            ready: None,
            complaint: Throttle::default(),
            changing: false,
        }
    }

    /// Records what `lstat` says now; true when the file changed since the last look.
    fn update(&mut self, meta: Meta, now: Instant) -> bool {
        if self.meta.same_content(&meta) {
            return false;
        }
        self.meta = meta;
        self.stable_since = now;
        self.ready = None;
        true
    }
}

/// What the scanner remembers between scans.
#[derive(Default)]
struct State {
    inbox: HashMap<OsString, Seen>,
    processing: HashMap<OsString, Seen>,
    /// The inbox or its processing area could not be opened, listed or used.
    dir_complaint: Throttle,
    /// Files said to be waiting (logged once each).
    announced: HashSet<String>,
    /// The waiting list last recorded in the store (names and sizes).
    published: Option<Vec<(String, u64)>>,
    /// Settled files of this scan not yet claimed, with what was read of them: claimed and
    /// processed together ([`Inbox::take_ready`]).
    ready: Vec<(OsString, Option<inbox::Read>)>,
}

/// The most bytes of settled files a scan holds before it claims and processes them.
const READY_BYTES: usize = 16 << 20;

/// What one scan works with: the inbox and its processing area (opened for this scan), the
/// writers known to hold files open, and the scan's instant.
struct Pass<'a> {
    incoming: &'a Dir,
    processing: &'a Dir,
    writers: &'a Writers,
    now: Instant,
}

/// A settled inbox file as a scan judged it: its metadata, its readiness, the bytes read to
/// judge it (passed on, so a file is read once), whether its incomplete timeout has passed, and
/// whether an unreadable file is due a complaint in the log.
struct Judged {
    meta: Meta,
    ready: Readiness,
    read: Option<inbox::Read>,
    timed_out: bool,
    complain: bool,
}

/// A running watch on the inbox: wakes the scanner and follows writers.
pub struct Watch {
    _watcher: Option<notify::RecommendedWatcher>,
    wake: Arc<Notify>,
    writers: Writers,
}

/// Names in the inbox that a writer has modified and not closed since, as inotify reports it.
#[derive(Clone, Default)]
pub struct Writers(Arc<Mutex<HashSet<OsString>>>);

impl Writers {
    /// Follows one watch event.
    pub fn observe(&self, inbox: &Path, ev: &notify::Event) {
        use notify::event::{AccessKind, AccessMode, ModifyKind};
        use notify::EventKind;
        let writing = match ev.kind {
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => true,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_)) => false,
            _ => return,
        };
        let mut set = self.0.lock().expect("writers lock");
        for p in &ev.paths {
            if p.parent() != Some(inbox) {
                continue;
            }
            if let Some(name) = p.file_name() {
                if writing {
                    set.insert(name.to_os_string());
                } else {
                    set.remove(name);
                }
            }
        }
    }

    /// Whether a writer is known to hold `name` open.
    pub fn open(&self, name: &OsStr) -> bool {
        self.0.lock().expect("writers lock").contains(name)
    }
}

impl Inbox {
    /// Starts watching the inbox (before the daemon says it is ready, so that no writer's
    /// events are missed). A watch that cannot be set up leaves the periodic rescan.
    pub fn watch(&self) -> anyhow::Result<Watch> {
        use notify::Watcher as _;
        let wake = Arc::new(Notify::new());
        let writers = Writers::default();
        let w = {
            let wake = wake.clone();
            let writers = writers.clone();
            let inbox = self.inbox.path().to_path_buf();
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = &res {
                    writers.observe(&inbox, ev);
                }
                if res.as_ref().map_or(true, |ev| worth_a_scan(&ev.kind)) {
                    wake.notify_one()
                }
            })
        };
        let watcher = match w.and_then(|mut w| {
            w.watch(self.inbox.path(), notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "Cannot watch the inbox; relying on the periodic rescan (a writer that keeps a file open is then seen only through settle_ms).");
                None
            }
        };
        Ok(Watch {
            _watcher: watcher,
            wake,
            writers,
        })
    }

    pub async fn run(self, watch: Watch, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Watch { wake, writers, .. } = &watch;
        // Files claimed before a restart are resumed by the first scan.
        let mut state = State::default();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let me = self.clone();
            let w = (*writers).clone();
            let (back, pending) = tokio::task::spawn_blocking(move || {
                let _busy = me.live.busy();
                let pending = me.scan(&mut state, &w);
                (state, pending)
            })
            .await?;
            state = back;
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

    /// One pass over the processing area and the inbox (blocking); true when some file is
    /// waiting to settle or to be completed.
    fn scan(&self, state: &mut State, writers: &Writers) -> bool {
        self.metrics.inbox_scan();
        let now = Instant::now();
        let incoming = match self.inbox.open() {
            Ok(d) => d,
            Err(e) => {
                if state.dir_complaint.due(now) {
                    tracing::error!(error = %e, "Cannot open the inbox; looking again at the next scan.");
                }
                return true;
            }
        };
        let Some(processing) = self.processing(&incoming, state, now) else {
            return true;
        };
        // Files left claimed by a failed attempt (a move that failed, a store error, a file
        // still changing) are retried once they have settled.
        let mut pending = self.resume(&processing, &mut state.processing, now);
        let names = match incoming.names() {
            Ok(n) => n,
            Err(e) => {
                if state.dir_complaint.due(now) {
                    tracing::error!(dir = %Escaped(&incoming.path().to_string_lossy()), error = %e, "Cannot list the inbox.");
                }
                return true;
            }
        };
        let pass = Pass {
            incoming: &incoming,
            processing: &processing,
            writers,
            now,
        };
        let mut present = HashSet::new();
        let mut waiting = Vec::new();
        for name in names {
            if let Some(p) = self.scan_entry(&pass, &name, state, &mut waiting) {
                present.insert(name);
                pending |= p;
            }
            let bytes: usize = state
                .ready
                .iter()
                .filter_map(|(_, r)| r.as_ref().map(|r| r.bytes.len()))
                .sum();
            if state.ready.len() >= inbox::BATCH_FILES || bytes >= READY_BYTES {
                pending |= self.take_ready(&pass, state);
            }
        }
        pending |= self.take_ready(&pass, state);
        state.inbox.retain(|n, _| present.contains(n));
        self.publish_waiting(state, waiting);
        pending
    }

    /// One inbox entry in a scan: `None` when it is no regular file (ignored, gone, a
    /// directory, or a special file refused), else whether it is still pending. A file that
    /// has settled (and that no writer holds open) is judged by [`Inbox::act_on`].
    fn scan_entry(
        &self,
        pass: &Pass<'_>,
        name: &OsString,
        state: &mut State,
        waiting: &mut Vec<WaitingFile>,
    ) -> Option<bool> {
        if self.ignored(&name.to_string_lossy()) {
            return None;
        }
        let meta = match pass.incoming.lstat(name) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.metrics.inbox_unreadable();
                tracing::debug!(file = %Escaped(&name.to_string_lossy()), error = %e, "Cannot stat an inbox entry.");
                return None;
            }
        };
        match meta.kind {
            Kind::Regular => {}
            // Not a file anybody delivers; not ours to move either.
            Kind::Directory => return None,
            kind => {
                self.refuse_special(pass.incoming, name, kind);
                return None;
            }
        }
        let entry = state
            .inbox
            .entry(name.clone())
            .or_insert_with(|| Seen::new(meta, pass.now));
        entry.update(meta, pass.now);
        // Counted from the file's mtime (its last write), not from when this process first
        // saw it: a restart does not start the wait again.
        let timed_out = age(&meta) >= self.incomplete_timeout;
        if meta.size > self.dirs.max_file_bytes {
            // It can only grow: refuse it now rather than read it.
            let reason = inbox::too_big_reason(meta.size, self.dirs.max_file_bytes);
            self.refuse(pass.incoming, name, &reason);
            state.inbox.remove(name);
            return Some(false);
        }
        if pass.now.duration_since(entry.stable_since) < self.settle
            || (pass.writers.open(name) && !timed_out)
        {
            return Some(true);
        }
        // The bytes read to judge readiness go on to processing, so a file is read once.
        let (ready, read) = match &entry.ready {
            Some(r) => (r.clone(), None),
            None => {
                let (r, read) = self.readiness_of(pass.incoming, name, &meta);
                if !matches!(r, Readiness::CannotRead(_)) {
                    entry.ready = Some(r.clone());
                }
                (r, read)
            }
        };
        let complain = matches!(ready, Readiness::CannotRead(_)) && entry.complaint.due(pass.now);
        let judged = Judged {
            meta,
            ready,
            read,
            timed_out,
            complain,
        };
        Some(self.act_on(pass, name, judged, state, waiting))
    }

    /// What a settled inbox file's readiness calls for: claim and process it, refuse it to
    /// `error/` with a reason, or keep waiting (listed in `waiting` while incomplete). True
    /// when it is still pending.
    fn act_on(
        &self,
        pass: &Pass<'_>,
        name: &OsString,
        judged: Judged,
        state: &mut State,
        waiting: &mut Vec<WaitingFile>,
    ) -> bool {
        let Judged {
            meta,
            ready,
            read,
            timed_out,
            complain,
        } = judged;
        match ready {
            Readiness::Complete | Readiness::Unreadable => {
                // Claimed and processed with the other settled files of this scan.
                state.inbox.remove(name);
                state.ready.push((name.clone(), read));
                false
            }
            Readiness::NotX12 { found } => {
                state.inbox.remove(name);
                let reason = format!(
                    "not an X12 file: the file does not start with an ISA interchange header (found `{found}`), and its first non-blank bytes cannot start a bare transaction set (ST) either"
                );
                self.refuse(pass.incoming, name, &reason);
                false
            }
            Readiness::Incomplete(seen) if timed_out => {
                state.inbox.remove(name);
                let mut reason = format!(
                    "incomplete: no IEA closes the last ISA after {} s (a file still being written, or truncated); write to a temporary name and rename into the inbox when complete",
                    self.incomplete_timeout.as_secs()
                );
                for line in seen {
                    reason.push_str("\nreader: ");
                    reason.push_str(&line);
                }
                self.refuse(pass.incoming, name, &reason);
                false
            }
            Readiness::Incomplete(seen) => {
                waiting.push(WaitingFile {
                    name: name.to_string_lossy().into_owned(),
                    size: meta.size,
                    modified_at: rfc3339_of(meta.mtime_ns),
                    waited_secs: age(&meta).as_secs(),
                    timeout_secs: self.incomplete_timeout.as_secs(),
                    reader: seen.first().cloned().unwrap_or_default(),
                });
                true
            }
            Readiness::NotRegular(kind) => {
                state.inbox.remove(name);
                self.refuse_special(pass.incoming, name, kind);
                false
            }
            Readiness::CannotRead(error) => {
                self.metrics.inbox_unreadable();
                if complain {
                    tracing::error!(file = %Escaped(&name.to_string_lossy()), error = %error, timeout_secs = self.incomplete_timeout.as_secs(), "Cannot read an inbox file; it goes to the error directory if it stays unreadable past the incomplete timeout.");
                }
                if !timed_out {
                    return true;
                }
                state.inbox.remove(name);
                let reason = format!(
                    "cannot be read by the daemon: {error} (for {} s); give the daemon's user read access and move it back into the inbox",
                    self.incomplete_timeout.as_secs()
                );
                self.refuse(pass.incoming, name, &reason);
                false
            }
        }
    }

    /// Says which files wait to be completed: the `edi_bridge_inbox_waiting_files` gauge, a
    /// log line when a file starts waiting, and the list in the store for the console
    /// ([`Store::inbox_waiting`]), rewritten only when it changes.
    fn publish_waiting(&self, state: &mut State, waiting: Vec<WaitingFile>) {
        self.metrics.inbox_waiting(waiting.len());
        let names: HashSet<&str> = waiting.iter().map(|w| w.name.as_str()).collect();
        for w in &waiting {
            if !state.announced.contains(&w.name) {
                tracing::info!(file = %Escaped(&w.name), size = w.size, timeout_secs = w.timeout_secs, waited_secs = w.waited_secs, reader = %Escaped(&w.reader), "Inbox file incomplete (no IEA closes its last ISA yet); waiting for the rest until the incomplete timeout, counted from its last write.");
            }
        }
        state.announced = names.iter().map(|n| n.to_string()).collect();
        let key: Vec<(String, u64)> = waiting.iter().map(|w| (w.name.clone(), w.size)).collect();
        if state.published.as_ref() != Some(&key) {
            match self.store.set_inbox_waiting(&waiting) {
                Ok(()) => state.published = Some(key),
                Err(e) => tracing::debug!(error = %e, "Cannot record the waiting inbox files."),
            }
        }
    }

    /// The processing area, checked before each use: a real directory the daemon owns. An
    /// impostor (a symlink, someone else's directory) is moved to `error/` as it is and a new
    /// one made; until that works, nothing is taken.
    fn processing(&self, incoming: &Dir, state: &mut State, now: Instant) -> Option<Dir> {
        let e = match incoming.private_sub(PROCESSING) {
            Ok(d) => return Some(d),
            Err(e) => e,
        };
        let reason = format!(
            "inbox/{PROCESSING} was not the daemon's own directory ({e}); it was moved here as it was and a new one made"
        );
        let moved = self.dirs.error.open().and_then(|error| {
            inbox::quarantine_as(
                incoming,
                OsStr::new(PROCESSING),
                &error,
                OsStr::new("inbox.processing.refused"),
                &reason,
            )
        });
        match moved {
            Ok(moved) => {
                tracing::error!(moved = %moved.display(), reason = %Escaped(&reason), "Inbox processing area replaced.");
                incoming.private_sub(PROCESSING).ok()
            }
            Err(e2) => {
                if state.dir_complaint.due(now) {
                    tracing::error!(error = %e, move_error = %e2, "The inbox processing area is unusable and cannot be moved aside; no inbox file is taken until it is fixed.");
                }
                None
            }
        }
    }

    /// Retries what is in the processing area once it has settled; true when some wait.
    fn resume(&self, processing: &Dir, seen: &mut HashMap<OsString, Seen>, now: Instant) -> bool {
        let names = processing.names().unwrap_or_default();
        let mut pending = false;
        let mut present = HashSet::new();
        for name in names {
            let Ok(meta) = processing.lstat(&name) else {
                continue;
            };
            present.insert(name.clone());
            let entry = seen
                .entry(name.clone())
                .or_insert_with(|| Seen::new(meta, now));
            // A new entry is taken at once (a restart resumes it); one that changed waits.
            let changed = entry.update(meta, now);
            if changed && now.duration_since(entry.stable_since) < self.settle {
                pending = true;
                continue;
            }
            if now.duration_since(entry.first_seen) >= self.incomplete_timeout && entry.changing {
                seen.remove(&name);
                self.refuse(
                    processing,
                    &name,
                    &format!(
                        "it kept changing after it was taken, for {} s; write to a temporary name and rename into the inbox when complete",
                        self.incomplete_timeout.as_secs()
                    ),
                );
                continue;
            }
            if self.handle(processing, &name, None) {
                pending = true;
                if let Some(e) = seen.get_mut(&name) {
                    e.changing = true;
                    e.stable_since = now;
                }
            } else {
                seen.remove(&name);
            }
        }
        seen.retain(|n, _| present.contains(n));
        pending
    }

    fn ignored(&self, name: &str) -> bool {
        name.starts_with('.') || self.ignore.iter().any(|p| glob(p, name))
    }

    /// How ready the settled file `name` is (reads it through one handle, off the runtime).
    /// With a file that can be taken, what was read of it (for [`inbox::process`]).
    fn readiness_of(
        &self,
        incoming: &Dir,
        name: &OsStr,
        meta: &Meta,
    ) -> (Readiness, Option<inbox::Read>) {
        let (mut file, opened) = match incoming.open_regular(name) {
            Ok(f) => f,
            Err(OpenError::NotRegular(kind)) => return (Readiness::NotRegular(kind), None),
            Err(OpenError::Io(e)) => return (Readiness::CannotRead(e.to_string()), None),
        };
        if !opened.same_content(meta) {
            // Replaced or changed since the scan looked: look again next time.
            return (Readiness::Incomplete(Vec::new()), None);
        }
        match files::read_limited(&mut file, self.dirs.max_file_bytes) {
            Ok(Some(bytes)) => match readiness(&bytes) {
                r @ (Readiness::Complete | Readiness::Unreadable) => (
                    r,
                    Some(inbox::Read {
                        meta: opened,
                        bytes,
                    }),
                ),
                r => (r, None),
            },
            Ok(None) => (Readiness::Incomplete(Vec::new()), None),
            Err(e) => (Readiness::CannotRead(e.to_string()), None),
        }
    }

    /// Claims the settled files of this scan (one directory sync for all the renames) and
    /// processes them as one [`inbox::FileBatch`]: each committed on its own, one flush, then the
    /// moves. True when one is still changing and stays claimed.
    fn take_ready(&self, pass: &Pass<'_>, state: &mut State) -> bool {
        let ready = std::mem::take(&mut state.ready);
        let claimed: Vec<(OsString, Option<inbox::Read>)> = ready
            .into_iter()
            .filter_map(|(name, read)| {
                Some((self.claim(pass.incoming, &name, pass.processing)?, read))
            })
            .collect();
        if claimed.is_empty() {
            return false;
        }
        if let Err(e) = pass.processing.sync() {
            tracing::warn!(error = %e, "Cannot sync the inbox processing area after claiming files.");
        }
        let mut pending = false;
        let mut batch =
            inbox::FileBatch::new(&self.store, &self.accounts, &self.dirs, pass.processing);
        for (name, read) in claimed {
            if batch.full() {
                self.finished(std::mem::replace(
                    &mut batch,
                    inbox::FileBatch::new(&self.store, &self.accounts, &self.dirs, pass.processing),
                ));
            }
            let outcome = batch.add(&name, read);
            pending |= self.handled(&name, outcome.transpose());
        }
        self.finished(batch);
        pending
    }

    /// Finishes a batch (its flush and moves) and reports each file.
    fn finished(&self, batch: inbox::FileBatch<'_>) {
        if batch.is_empty() {
            return;
        }
        for (name, outcome) in batch.finish() {
            self.handled(&name, Some(outcome));
        }
    }

    /// Reports what became of a claimed file (`None`: kept by a batch until it finishes); true
    /// when it is still changing and stays claimed. Errors leave it in the processing area for
    /// the next scan.
    fn handled(&self, name: &OsStr, outcome: Option<anyhow::Result<Outcome>>) -> bool {
        let shown = name.to_string_lossy().into_owned();
        match outcome {
            None => false,
            Some(Ok(Outcome::Changing { reason })) => {
                tracing::warn!(file = %Escaped(&shown), reason = %Escaped(&reason), "Inbox file changed after it was taken; nothing committed, looking again once it settles.");
                true
            }
            Some(Ok(outcome)) => {
                self.report(&shown, &outcome);
                self.deliver_wake.notify_one();
                self.outbox_wake.notify_one();
                false
            }
            Some(Err(e)) => {
                tracing::error!(file = %Escaped(&shown), error = %Escaped(&format!("{e:#}")), "Inbox file not processed; it stays claimed and is retried at the next scan.");
                // A 997 may have been committed before the failure.
                self.outbox_wake.notify_one();
                false
            }
        }
    }

    /// Processes one claimed file; true when it is still changing and stays claimed. Errors
    /// leave it in the processing area for the next scan.
    fn handle(&self, processing: &Dir, name: &OsStr, read: Option<inbox::Read>) -> bool {
        let outcome = inbox::process(
            &self.store,
            &self.accounts,
            &self.dirs,
            processing,
            name,
            read,
        );
        self.handled(name, Some(outcome))
    }

    /// Moves a symlink, FIFO, socket or device (the entry itself) to `error/`.
    fn refuse_special(&self, dir: &Dir, name: &OsStr, kind: Kind) {
        self.metrics.inbox_not_regular();
        self.refuse(dir, name, &inbox::not_regular_reason(kind));
    }

    /// Moves `name` to `error/` with `reason`, and reports it.
    fn refuse(&self, dir: &Dir, name: &OsStr, reason: &str) {
        let shown = name.to_string_lossy().into_owned();
        let moved = self
            .dirs
            .error
            .open()
            .and_then(|error| inbox::quarantine(dir, name, &error, reason));
        match moved {
            Ok(moved) => self.report(
                &shown,
                &Outcome::Rejected {
                    reason: reason.to_string(),
                    moved,
                },
            ),
            Err(e) => {
                tracing::error!(file = %Escaped(&shown), error = %e, reason = %Escaped(reason), "Cannot move a refused inbox file to the error directory; will retry.")
            }
        }
    }

    fn report(&self, name: &str, outcome: &Outcome) {
        let file = Escaped(name);
        match outcome {
            Outcome::Archived { jobs, archived } => {
                tracing::info!(file = %file, jobs, archived = %Escaped(&archived.to_string_lossy()), "Inbox file processed.")
            }
            Outcome::Rejected { reason, moved } => {
                tracing::error!(file = %file, moved = %Escaped(&moved.to_string_lossy()), reason = %Escaped(reason.lines().next().unwrap_or("")), "Inbox file rejected.")
            }
            Outcome::Duplicate { moved, .. } => {
                tracing::warn!(file = %file, moved = %Escaped(&moved.to_string_lossy()), "Duplicate interchange; no API call made.")
            }
            Outcome::Changing { .. } => return,
        }
        let _ = self.events.send(crate::events::Event::InboxFile {
            file: name.to_string(),
            outcome: outcome.clone(),
        });
    }

    /// Claims a file by renaming it into the processing area (a unique name if taken); the
    /// caller syncs the processing area.
    fn claim(&self, incoming: &Dir, name: &OsStr, processing: &Dir) -> Option<OsString> {
        // The processing area is synced once for all the files claimed together.
        match incoming.move_unique(name, processing, name) {
            Ok(claimed) => Some(claimed),
            Err(e) => {
                tracing::warn!(file = %Escaped(&name.to_string_lossy()), error = %e, "Cannot claim inbox file; will retry.");
                None
            }
        }
    }
}

/// How long ago the file was last written (zero for an mtime in the future).
fn age(meta: &Meta) -> Duration {
    let now = crate::clock::since_epoch().as_nanos() as i128;
    Duration::from_nanos(u64::try_from(now - meta.mtime_ns).unwrap_or(0))
}

/// An mtime as RFC 3339 (UTC).
fn rfc3339_of(mtime_ns: i128) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(mtime_ns)
        .ok()
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
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
    /// An ISA that is all there but unusable (bad delimiters): waiting cannot help, take it now
    /// and let processing reject it with the positioned diagnostic.
    Unreadable,
    /// Its first non-blank bytes cannot start X12: refused at once; `found` is a short escaped
    /// excerpt.
    NotX12 { found: String },
    /// Not (yet) complete; what the reader reported so far, for the reason file on timeout.
    Incomplete(Vec<String>),
    /// Not a regular file when opened (swapped after the scan looked).
    NotRegular(Kind),
    /// Opening or reading failed.
    CannotRead(String),
}

/// How ready `bytes` are to be processed. Streams through the reader: memory stays at one
/// transaction set, whatever the file's size.
pub fn readiness(bytes: &[u8]) -> Readiness {
    use crate::x12::{DiagnosticCode, ReadEvent, Severity};
    if let Some(found) = not_x12(bytes) {
        return Readiness::NotX12 { found };
    }
    let (mut real, mut real_open, mut sets, mut sets_open) = (false, false, false, false);
    let mut in_real = false;
    let mut broken_isa: Option<usize> = None;
    let mut errors = Vec::new();
    for ev in crate::x12::Reader::new(bytes, &crate::x12::ReadOptions::default()) {
        match ev {
            ReadEvent::InterchangeStart { synthetic, .. } => {
                in_real = !synthetic;
                real |= !synthetic;
            }
            ReadEvent::InterchangeEnd { closed, .. } => real_open |= in_real && !closed,
            ReadEvent::Transaction(t) => {
                sets = true;
                sets_open |= !t.closed;
            }
            ReadEvent::Diagnostic(d) => {
                if matches!(
                    d.code,
                    DiagnosticCode::BadDelimiters | DiagnosticCode::BadIsa
                ) {
                    broken_isa = Some(d.position.byte_offset);
                }
                if d.severity == Severity::Error && errors.len() < 5 {
                    errors.push(format!(
                        "{}: {} ({})",
                        d.code.as_str(),
                        d.message,
                        d.position.describe()
                    ));
                }
            }
            _ => {}
        }
    }
    // Only an ISA that could still grow into a valid one waits; one whose bytes already
    // cannot be an ISA (wrong lengths, inconsistent delimiters, letters in numeric fields) is
    // broken now, and processing rejects it with the reader's positioned diagnostic.
    let cut_at_end =
        broken_isa.is_some_and(|at| isa_could_grow(&bytes[at..])) || isa_begun_at_end(bytes);
    let complete = if real { !real_open } else { sets && !sets_open };
    if cut_at_end {
        return Readiness::Incomplete(errors);
    }
    if complete {
        return Readiness::Complete;
    }
    if broken_isa.is_some() || last_isa_broken(bytes) {
        return Readiness::Unreadable;
    }
    Readiness::Incomplete(errors)
}

/// Whether the file ends inside an ISA that has only begun (`I`, `IS`, or a last `ISA` with no
/// IEA after it whose header is, so far, a valid one): a writer that has not finished.
fn isa_begun_at_end(bytes: &[u8]) -> bool {
    let end = bytes.trim_ascii_end();
    for k in 1..=2 {
        if end.ends_with(&b"ISA"[..k]) && at_boundary(bytes, end.len() - k) {
            return true;
        }
    }
    last_open_isa(bytes).is_some_and(|p| isa_could_grow(&bytes[p..]))
}

/// Whether the last `ISA` with no IEA after it has a header that can no longer be one.
fn last_isa_broken(bytes: &[u8]) -> bool {
    last_open_isa(bytes).is_some_and(|p| !isa_could_grow(&bytes[p..]))
}

/// Where the last `ISA` (at a segment boundary) with no `IEA` after it starts.
fn last_open_isa(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(p) = memchr::memmem::rfind(&bytes[..end], b"ISA") {
        if at_boundary(bytes, p) {
            return memchr::memmem::find(&bytes[p..], b"IEA")
                .is_none()
                .then_some(p);
        }
        end = p;
    }
    None
}

fn at_boundary(bytes: &[u8], p: usize) -> bool {
    p == 0 || !bytes[p - 1].is_ascii_alphanumeric()
}

/// Whether `b` (an `ISA` to the end of the file) could still be, or grow into, a valid ISA
/// header: the element separator neither alphanumeric nor blank, sixteen elements each no
/// longer than its maximum (ISA01 2, ISA02 10, ISA03 2, ISA04 10, ISA05 2, ISA06 15, ISA07 2,
/// ISA08 15, ISA09 6, ISA10 4, ISA11 1, ISA12 5, ISA13 9, ISA14 1, ISA15 1, ISA16 1), digits
/// in ISA09, ISA10, ISA12, ISA13 and ISA14. Line breaks are skipped (a wrapped ISA is read).
/// Bytes after the ISA's terminator are not looked at.
pub fn isa_could_grow(b: &[u8]) -> bool {
    const MAX: [usize; 16] = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1];
    const DIGITS: [bool; 16] = [
        false, false, false, false, false, false, false, false, true, true, false, true, true,
        true, false, false,
    ];
    if b.len() <= 3 {
        return b"ISA".starts_with(b);
    }
    if !b.starts_with(b"ISA") {
        return false;
    }
    let sep = b[3];
    if sep.is_ascii_alphanumeric() || sep.is_ascii_whitespace() {
        return false;
    }
    let (mut el, mut len, mut component) = (0usize, 0usize, 0u8);
    for &c in &b[4..] {
        if el == 15 {
            if len == 0 && (c == b'\r' || c == b'\n') {
                continue;
            }
            if len == 0 {
                // ISA16, the component separator.
                if c == sep || c.is_ascii_alphanumeric() {
                    return false;
                }
                component = c;
                len = 1;
                continue;
            }
            // The segment terminator: distinct from both separators.
            return c != sep && c != component && !c.is_ascii_alphanumeric();
        }
        if c == b'\r' || c == b'\n' {
            continue;
        }
        if c == sep {
            el += 1;
            len = 0;
            continue;
        }
        len += 1;
        if len > MAX[el] || (DIGITS[el] && !(c.is_ascii_digit() || c == b' ')) {
            return false;
        }
    }
    true
}

/// `Some(excerpt)` when the first non-blank bytes cannot begin X12: an interchange (`ISA`), a
/// bare group (`GS`) or a bare transaction set (`ST`). A prefix of those (a file just begun)
/// can. Junk followed by a real ISA is the reader's business (it warns and skips it).
fn not_x12(bytes: &[u8]) -> Option<String> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &body[start..body.len().min(start + 3)];
    let can_start = |word: &[u8]| {
        let n = head.len().min(word.len());
        head[..n] == word[..n]
    };
    if can_start(b"ISA") || can_start(b"GS") || can_start(b"ST") {
        return None;
    }
    if memchr::memmem::find(&body[start..body.len().min(start + 65_536)], b"ISA").is_some() {
        return None;
    }
    Some(crate::text::excerpt(
        &body[start..body.len().min(start + 40)],
        0,
    ))
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
    fn a_last_isa_cut_at_the_end_is_still_being_written() {
        let one = include_bytes!("../../samples/ingram-po-855.edi");
        assert_eq!(readiness(one), Readiness::Complete);
        for cut in [3usize, 40, 105] {
            let mut v = one.to_vec();
            v.extend_from_slice(&one[..cut]);
            assert!(
                matches!(readiness(&v), Readiness::Incomplete(_)),
                "cut at {cut}: {:?}",
                readiness(&v)
            );
        }
        // A whole ISA with unusable delimiters cannot get better by waiting.
        let bad = String::from_utf8_lossy(one).replace('~', "*");
        assert_eq!(readiness(bad.as_bytes()), Readiness::Unreadable);
    }

    #[test]
    fn an_isa_that_cannot_be_one_is_broken_now_and_one_that_can_grow_waits() {
        let one = include_bytes!("../../samples/ingram-po-855.edi");
        for cut in [1usize, 3, 4, 20, 60, 104, 105, 106] {
            assert!(isa_could_grow(&one[..cut]), "cut at {cut}");
        }
        assert!(isa_could_grow(one));
        for broken in [
            &b"ISA*00*garbage garbage garbage"[..],
            b"ISAA00",
            b"ISA 00",
            b"ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *26112X",
            b"ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *261121*0900*U*00401*00000050A",
            b"ISA*000*",
        ] {
            assert!(!isa_could_grow(broken), "{}", String::from_utf8_lossy(broken));
            assert_eq!(
                readiness(broken),
                Readiness::Unreadable,
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
        // A complete interchange followed by something that cannot be an ISA: taken now (and
        // rejected by processing with the reader's diagnostic).
        let mut v = one.to_vec();
        v.extend_from_slice(b"ISA*00*garbage that goes on and on~");
        assert!(
            matches!(readiness(&v), Readiness::Unreadable | Readiness::Complete),
            "{:?}",
            readiness(&v)
        );
        // One followed by the start of a valid ISA still waits.
        let mut v = one.to_vec();
        v.extend_from_slice(&one[..50]);
        assert!(matches!(readiness(&v), Readiness::Incomplete(_)));
    }

    #[test]
    fn what_cannot_start_x12_is_refused_at_once() {
        for text in [
            &b"SA*00*"[..],
            b"%PDF-1.7",
            b"\0\0\0",
            b"{\"topic\":1}",
            b"  \r\nIEA*1*1~",
        ] {
            assert!(
                matches!(readiness(text), Readiness::NotX12 { .. }),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        for text in [
            &b""[..],
            b"  \n",
            b"I",
            b"IS",
            b"\xEF\xBB\xBFISA",
            b"ST*855*0001~",
            b"GS*PR",
        ] {
            assert!(
                matches!(readiness(text), Readiness::Incomplete(_)),
                "{:?}",
                String::from_utf8_lossy(text)
            );
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
