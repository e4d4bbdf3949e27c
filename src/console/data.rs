//! What the console's pages show, read from the store and the ERP's directories (blocking: the
//! handlers call these on the blocking pool), and what it changes: a dead letter put back in the
//! queue, a file in `error/` moved back to the inbox or dismissed into the archive. Directory
//! entries are reached only through `files` handles (no symlink followed, nothing created but
//! the archive's `dismissed/` days), and names an operator posts are checked against what is
//! there before anything moves.

use std::ffi::OsStr;
use std::io;

use crate::files::{self, Root};
use crate::store::records::{
    DeadRecord, DocumentRecord, JobRecord, Lifecycle, OrderRecord, Outbound850,
};
use crate::store::{Store, StoreError};

/// How much of an archived 850 a page shows.
const MAX_SHOWN_BYTES: u64 = 256 * 1024;
/// How much of a reason file a page shows (the daemon writes short ones; others can write there).
const MAX_REASON_BYTES: u64 = 16 * 1024;
/// Files the error page lists (the oldest); the rest are counted.
pub const MAX_ERROR_FILES: usize = 200;

/// The ERP directories the console reads (and, for a requeue, moves between).
#[derive(Debug, Clone)]
pub struct ConsoleDirs {
    pub inbox: Root,
    pub error: Root,
    pub archive: Root,
}

/// The home page's numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// POs whose 850 the ERP rejected (by 997 or TA1).
    pub erp_rejected: usize,
    /// POs received since midnight UTC.
    pub received_today: usize,
    /// Of those, the ones whose 850 is in the outbox.
    pub written_today: usize,
    /// 850 written, no 855 sent yet (the state index).
    pub waiting_855: usize,
    /// 855 sent, no 856 yet.
    pub waiting_856: usize,
    pub queued_jobs: usize,
    pub dead_letters: usize,
    /// Queued calls held behind a dead letter of their PO.
    pub blocked_calls: usize,
    pub error_files: usize,
    /// Inbox files not yet complete, waiting (up to the incomplete timeout) to grow.
    pub inbox_waiting: usize,
    /// 850s with no 997 past the alert threshold.
    pub overdue_997: usize,
}

/// The PO's lifecycle as one word (the same words as `status`).
pub fn state(o: &OrderRecord) -> &'static str {
    crate::admin::ops::lifecycle(o)
}

pub fn counts(
    store: &Store,
    dirs: &ConsoleDirs,
    now_ms: u64,
    missing_997_hours: u64,
) -> Result<Counts, StoreError> {
    let midnight = now_ms - now_ms % 86_400_000;
    let mut c = Counts::default();
    for o in store.orders_since(midnight) {
        let o = o?;
        c.received_today += 1;
        if matches!(o.outbound, Outbound850::Written { .. }) {
            c.written_today += 1;
        }
    }
    c.waiting_855 =
        store.count_in_state(Lifecycle::Written850) + store.count_in_state(Lifecycle::Received997);
    c.waiting_856 = store.count_in_state(Lifecycle::Sent855);
    c.queued_jobs = store.job_count();
    c.erp_rejected = store.erp_rejected_count();
    c.dead_letters = store.dead_count();
    if c.dead_letters > 0 {
        c.blocked_calls = store.blocked_jobs()?.len();
    }
    c.inbox_waiting = store.inbox_waiting().map(|w| w.len()).unwrap_or(0);
    c.error_files = error_names(dirs).map(|n| n.len()).unwrap_or(0);
    c.overdue_997 = store.overdue_850s(now_ms.saturating_sub(missing_997_hours * 3_600_000));
    Ok(c)
}

/// A row of the PO list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoRow {
    pub po: String,
    /// The account it came through.
    pub account: String,
    pub state: &'static str,
    pub received_at: String,
    pub file: Option<String>,
}

/// The PO list's filters (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListQuery {
    /// A PO number (a key lookup).
    #[serde(default)]
    pub po: String,
    /// A lifecycle word, or `errors`.
    #[serde(default)]
    pub state: String,
    /// Only this account's POs.
    #[serde(default)]
    pub account: String,
    /// A date (`2026-12-01`) or an RFC 3339 instant: POs received since.
    #[serde(default)]
    pub since: String,
    /// Page number, from 0.
    #[serde(default)]
    pub page: usize,
}

/// The states a PO list can be filtered by: each lifecycle, and `errors`.
pub fn states() -> impl Iterator<Item = &'static str> {
    Lifecycle::ALL
        .into_iter()
        .map(Lifecycle::as_str)
        .chain(["errors"])
}

/// One page of POs matching `q`, and whether there are more.
pub fn list(
    store: &Store,
    accounts: &[String],
    q: &ListQuery,
    page_size: usize,
) -> Result<(Vec<PoRow>, bool), ListError> {
    let account = q.account.trim();
    if !account.is_empty() && !accounts.iter().any(|a| a == account) {
        return Err(ListError::Query(format!(
            "unknown account; use one of {}",
            accounts.join(", ")
        )));
    }
    let po = q.po.trim();
    if !po.is_empty() {
        // A PO number is looked up in each account (or the one chosen).
        let mut rows = Vec::new();
        for a in accounts
            .iter()
            .filter(|a| account.is_empty() || *a == account)
        {
            if let Some(o) = store.order(&crate::domain::po_key(a, po))? {
                rows.push(row(&o));
            }
        }
        return Ok((rows, false));
    }
    let lifecycle = match q.state.as_str() {
        "" | "errors" => None,
        word => Some(word.parse::<Lifecycle>().map_err(|_| {
            ListError::Query(format!(
                "unknown state; use one of {}",
                states().collect::<Vec<_>>().join(", ")
            ))
        })?),
    };
    let since = q.since.trim();
    let since_ms = if since.is_empty() {
        None
    } else {
        Some(crate::admin::since_ms(since).ok_or_else(|| {
            ListError::Query("since: use a date like 2026-12-01 or an RFC 3339 instant".into())
        })?)
    };
    // A state reads the state index; `errors` the dead letters and the rejected states.
    let orders: Box<dyn Iterator<Item = Result<OrderRecord, StoreError>>> =
        match (lifecycle, q.state.as_str(), since_ms) {
            (Some(state), _, ms) => Box::new(store.orders_in_state(state, ms.unwrap_or(0))),
            (None, "errors", ms) => {
                let dead = store.dead_letters().collect::<Result<Vec<_>, _>>()?;
                let found = crate::admin::ops::errors(store, &dead, ms.unwrap_or(0))
                    .map_err(|e| ListError::Query(format!("{e:#}")))?;
                Box::new(found.into_iter().map(Ok))
            }
            (None, _, Some(ms)) => Box::new(store.orders_since(ms)),
            (None, _, None) => Box::new(store.orders()),
        };
    let skip = q.page.saturating_mul(page_size);
    let mut rows = Vec::new();
    let mut seen = 0usize;
    for o in orders {
        let o = o?;
        if !account.is_empty() && o.account != account {
            continue;
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        if rows.len() == page_size {
            return Ok((rows, true));
        }
        rows.push(row(&o));
    }
    Ok((rows, false))
}

fn row(o: &OrderRecord) -> PoRow {
    PoRow {
        po: o.po_number.clone(),
        account: o.account.clone(),
        state: state(o),
        received_at: o.received_at.clone(),
        file: match &o.outbound {
            Outbound850::Written { envelope, .. } | Outbound850::Allocated { envelope } => {
                Some(envelope.file_name.clone())
            }
            Outbound850::Pending => None,
        },
    }
}

/// Why a list cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{0}")]
    Query(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the PO page shows.
#[derive(Debug, Clone)]
pub struct PoPage {
    pub order: OrderRecord,
    pub state: &'static str,
    pub jobs: Vec<JobRecord>,
    pub dead: Vec<DeadRecord>,
    /// The 855s and 856s Ingram accepted.
    pub documents: Vec<DocumentRecord>,
    /// The archived 850 as text, or why it cannot be shown.
    pub x850: Option<Result<String, String>>,
}

pub fn po_page(store: &Store, dirs: &ConsoleDirs, po: &str) -> Result<Option<PoPage>, StoreError> {
    let Some(order) = store.order(po)? else {
        return Ok(None);
    };
    let jobs = store
        .jobs()
        .filter(|j| j.as_ref().map_or(true, |j| j.po == po))
        .collect::<Result<Vec<_>, _>>()?;
    let dead = store
        .dead_letters()
        .filter(|d| d.as_ref().map_or(true, |d| d.job.po == po))
        .collect::<Result<Vec<_>, _>>()?;
    let x850 = match &order.outbound {
        Outbound850::Written { envelope, .. } => Some(
            archived_850(dirs, &envelope.created_at, &envelope.file_name)
                .map_err(|e| format!("the archived copy cannot be read: {e}")),
        ),
        _ => None,
    };
    let documents = store.documents(po)?;
    Ok(Some(PoPage {
        state: state(&order),
        order,
        jobs,
        dead,
        documents,
        x850,
    }))
}

fn archived_850(dirs: &ConsoleDirs, created_at: &str, file_name: &str) -> io::Result<String> {
    let day = format!("outbound/{}", crate::clock::date_path(created_at));
    let dir = dirs.archive.open()?.existing_sub_path(&day)?;
    read_text(&dir, OsStr::new(file_name), MAX_SHOWN_BYTES)
}

/// Reads a regular file (never through a symlink) of at most `limit` bytes, as text.
fn read_text(dir: &files::Dir, name: &OsStr, limit: u64) -> io::Result<String> {
    let (mut f, _) = dir.open_regular(name).map_err(|e| match e {
        files::OpenError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    })?;
    let bytes = files::read_limited(&mut f, limit)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, not shown"),
        )
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A file waiting in `error/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFile {
    /// The entry's name (not necessarily UTF-8 on disk; shown lossily, requeued only when it is).
    pub name: String,
    pub size: u64,
    pub kind: &'static str,
    pub modified_ms: i64,
    /// The reason file's text, or why it cannot be read.
    pub reason: String,
}

/// The entries of `error/` that are not reason files or hidden.
fn error_names(dirs: &ConsoleDirs) -> io::Result<Vec<String>> {
    Ok(dirs
        .error
        .open()?
        .names()?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| !n.starts_with('.') && !n.ends_with(".reason.txt"))
        .collect())
}

/// The files in `error/` (not the reason files, not hidden entries), oldest first: the first
/// [`MAX_ERROR_FILES`] with their reasons, and how many there are in all.
pub fn error_files(dirs: &ConsoleDirs) -> io::Result<(Vec<ErrorFile>, usize)> {
    let dir = dirs.error.open()?;
    let names = error_names(dirs)?;
    let total = names.len();
    let mut listed: Vec<(i64, String, files::Meta)> = names
        .into_iter()
        .filter_map(|n| {
            let meta = dir.lstat(OsStr::new(&n)).ok()?;
            Some(((meta.mtime_ns / 1_000_000) as i64, n, meta))
        })
        .collect();
    listed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    listed.truncate(MAX_ERROR_FILES);
    let out = listed
        .into_iter()
        .map(|(modified_ms, name, meta)| {
            let reason = match read_text(
                &dir,
                &files::reason_name(OsStr::new(&name)),
                MAX_REASON_BYTES,
            ) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => "(no reason file)".to_string(),
                Err(e) => format!("(the reason file cannot be read: {e})"),
            };
            ErrorFile {
                name,
                size: meta.size,
                kind: meta.kind.describe(),
                modified_ms,
                reason,
            }
        })
        .collect();
    Ok((out, total))
}

/// How much of a file in `error/` its page shows.
pub const MAX_VIEW_BYTES: u64 = 64 * 1024;
/// The longest dismissal reason kept.
pub const MAX_DISMISS_REASON: usize = 500;

/// A file in `error/` as its page shows it: the first [`MAX_VIEW_BYTES`], escaped line by line
/// (control characters and invalid UTF-8 as `\xNN`), and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFileView {
    pub name: String,
    pub size: u64,
    pub lines: Vec<String>,
    /// Only the first [`MAX_VIEW_BYTES`] are shown.
    pub truncated: bool,
    pub reason: String,
}

/// The name an operator posted, checked: a plain, visible name that is not a reason file.
fn plain_name(name: &str) -> Result<(), RequeueError> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains('/')
        || name.contains('\0')
        || name.ends_with(".reason.txt")
    {
        return Err(RequeueError::BadName);
    }
    Ok(())
}

/// A regular file in `error/` named `name` (never through a symlink), or why not.
fn error_entry(error: &files::Dir, name: &str) -> Result<files::Meta, RequeueError> {
    plain_name(name)?;
    let meta = match error.lstat(OsStr::new(name)) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(RequeueError::Missing(crate::text::escape(name)))
        }
        Err(e) => return Err(e.into()),
    };
    if meta.kind != files::Kind::Regular {
        return Err(RequeueError::NotRegular(
            crate::text::escape(name),
            meta.kind.describe(),
        ));
    }
    Ok(meta)
}

/// `error/NAME` for its page: bounded and escaped.
pub fn view_error_file(dirs: &ConsoleDirs, name: &str) -> Result<ErrorFileView, RequeueError> {
    let error = dirs.error.open()?;
    error_entry(&error, name)?;
    let (mut f, meta) = error.open_regular(OsStr::new(name)).map_err(|e| match e {
        files::OpenError::Io(e) => RequeueError::Io(e),
        files::OpenError::NotRegular(k) => {
            RequeueError::NotRegular(crate::text::escape(name), k.describe())
        }
    })?;
    let (bytes, truncated) = files::read_prefix(&mut f, MAX_VIEW_BYTES)?;
    let lines = bytes
        .split(|b| *b == b'\n')
        .map(|l| crate::text::escape_bytes(l.strip_suffix(b"\r").unwrap_or(l)))
        .collect();
    let reason = match read_text(
        &error,
        OsStr::new(&format!("{name}.reason.txt")),
        MAX_REASON_BYTES,
    ) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => "(no reason file)".to_string(),
        Err(e) => format!("(the reason file cannot be read: {e})"),
    };
    Ok(ErrorFileView {
        name: name.to_string(),
        size: meta.size,
        lines,
        truncated,
        reason,
    })
}

/// Moves `error/NAME` (and its reason file) into `archive/dismissed/DAY/` (`day` is
/// `YYYY/MM/DD`), never replacing a file there (a taken name gets a `.N` suffix). Returns where
/// it went, relative to the archive.
pub fn dismiss(dirs: &ConsoleDirs, name: &str, day: &str) -> Result<String, RequeueError> {
    let error = dirs.error.open()?;
    error_entry(&error, name)?;
    let dest = dirs
        .archive
        .open()?
        .sub_path(&format!("dismissed/{day}"), files::SHARED_DIR_MODE)?;
    let moved = error.move_unique(OsStr::new(name), &dest, OsStr::new(name))?;
    let reason = format!("{name}.reason.txt");
    let reason_to = format!("{}.reason.txt", moved.to_string_lossy());
    match error.move_unique(OsStr::new(&reason), &dest, OsStr::new(&reason_to)) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    dest.sync()?;
    error.sync()?;
    Ok(format!("dismissed/{day}/{}", moved.to_string_lossy()))
}

/// Why a requeue was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error("no file named {0} in error/")]
    Missing(String),
    #[error("{0} is {1}, not a regular file: it is never moved to the inbox")]
    NotRegular(String, &'static str),
    #[error("not a file the error page lists")]
    BadName,
    #[error("moving the file failed: {0}")]
    Io(#[from] io::Error),
}

/// Moves `error/NAME` back to the inbox (never replacing a file there: a taken name gets a
/// `.N` suffix), then removes its reason file. Returns the name it has in the inbox.
pub fn requeue(dirs: &ConsoleDirs, name: &str) -> Result<String, RequeueError> {
    plain_name(name)?;
    let error = dirs.error.open()?;
    let inbox = dirs.inbox.open()?;
    error_entry(&error, name)?;
    let moved = error.move_unique(OsStr::new(name), &inbox, OsStr::new(name))?;
    inbox.sync()?;
    match error.unlink(&files::reason_name(OsStr::new(&name))) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    error.sync()?;
    Ok(moved.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &std::path::Path) -> ConsoleDirs {
        let mk = |n: &str| Root::create(&root.join(n), 0o750).unwrap();
        ConsoleDirs {
            inbox: mk("inbox"),
            error: mk("error"),
            archive: mk("archive"),
        }
    }

    #[test]
    fn the_error_page_lists_the_oldest_files_and_counts_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        let err = t.path().join("error");
        for i in 0..(MAX_ERROR_FILES + 5) {
            let name = format!("f{i:03}.855");
            std::fs::write(err.join(&name), b"x").unwrap();
            std::fs::write(
                err.join(format!("{name}.reason.txt")),
                format!("reason {i}"),
            )
            .unwrap();
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(err.join(&name))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        std::fs::write(err.join(".hidden"), b"x").unwrap();
        let (files, total) = error_files(&d).unwrap();
        assert_eq!(total, MAX_ERROR_FILES + 5);
        assert_eq!(files.len(), MAX_ERROR_FILES);
        assert_eq!(files[0].name, "f000.855");
        assert_eq!(files[0].reason, "reason 0");
        assert_eq!(
            files.last().unwrap().name,
            format!("f{:03}.855", MAX_ERROR_FILES - 1)
        );
    }

    #[test]
    fn a_reason_that_is_a_symlink_or_too_long_is_not_shown() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        let err = t.path().join("error");
        std::fs::write(t.path().join("secret"), b"do not show").unwrap();
        std::fs::write(err.join("a.855"), b"x").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), err.join("a.855.reason.txt")).unwrap();
        std::fs::write(err.join("b.855"), b"x").unwrap();
        std::fs::write(
            err.join("b.855.reason.txt"),
            vec![b'r'; MAX_REASON_BYTES as usize + 1],
        )
        .unwrap();
        std::fs::write(err.join("c.855"), b"x").unwrap();
        let (files, _) = error_files(&d).unwrap();
        let reason = |n: &str| files.iter().find(|f| f.name == n).unwrap().reason.clone();
        assert!(
            reason("a.855").contains("cannot be read"),
            "{}",
            reason("a.855")
        );
        assert!(!reason("a.855").contains("do not show"));
        assert!(reason("b.855").contains("not shown"), "{}", reason("b.855"));
        assert_eq!(reason("c.855"), "(no reason file)");
        assert_eq!(counts_error_files(&d), 3);
    }

    fn counts_error_files(d: &ConsoleDirs) -> usize {
        error_names(d).unwrap().len()
    }
}
