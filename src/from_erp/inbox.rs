//! Processing of one claimed inbox file: parse it, route each transaction set by ST01, translate
//! 855s and 856s into API jobs, match the ERP's 997s to our 850s, build a 997 for each inbound
//! functional group, and commit all of it in one store transaction (then flush). Only after
//! that is the file moved, unchanged, to `archive/inbound/YYYY/MM/DD/`. A file that cannot be
//! processed goes to `error/` with `NAME.reason.txt` naming the problem and its position; a
//! repeated interchange goes to `archive/duplicates/YYYY/MM/DD/` with its reason. Nothing here
//! panics on input.
//!
//! The file is opened through its directory handle without following a symlink, read through
//! that one handle (never more than `inbox.max_file_bytes`), and checked again before the
//! commit and before the move: a file that changed after it was taken is never archived with
//! bytes nobody processed. Reason files quote at most a short escaped excerpt of a file.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::accounts::{AccountRoute, Accounts};
use crate::domain::po_key;
use crate::events::Outcome;
use crate::files::{self, Dir, Meta, OpenError, Root};
use crate::text;

use crate::from_erp::set::{self, first_error, SetCalls, SetRefusal};
use crate::ingram::calls::ApiCall;
use crate::ingram::from_856::{OrderView, StatusCall};
use crate::mapping::{Mapping, UnknownPo};
use crate::store::inbound::{self, OriginalRecord};
use crate::store::records::{Erp997, ErpAck, FileRecord, Outbound850};
use crate::store::{keys, InboundBatch, InboundCommit, NewJob, Store};
use crate::to_erp::to_850::write_options;
use crate::x12;

/// Directories the inbox worker moves files to.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The archive root (`archive/`).
    pub archive: Root,
    pub error: Root,
    /// The largest file read (`inbox.max_file_bytes`).
    pub max_file_bytes: u64,
}

/// Sets committed per store transaction. A file of many sets is committed in chunks of this
/// many, each with the file's position, so memory stays at one chunk whatever the number of
/// sets, and a restart resumes after the last chunk committed (nothing lost, nothing twice).
pub const CHUNK_SETS: usize = 256;

/// The most problems a reason file lists (the rest are counted).
const MAX_PROBLEMS: usize = 50;

/// A file's bytes as read before it was claimed, with what `fstat` said of it then.
pub struct Read {
    pub meta: Meta,
    pub bytes: Vec<u8>,
}

/// The most files one [`FileBatch`] holds before it is flushed and moved.
pub const BATCH_FILES: usize = 64;

/// Processes the claimed file `name` in the processing area completely: a [`FileBatch`] of one.
/// `read` is what the watcher already read of it; used only when the claimed file is still
/// that file unchanged (same inode, size and mtime), otherwise the file is read again.
pub fn process(
    store: &Store,
    accounts: &Accounts,
    dirs: &Dirs,
    processing: &Dir,
    claimed: &OsStr,
    read: Option<Read>,
) -> anyhow::Result<Outcome> {
    let mut batch = FileBatch::new(store, accounts, dirs, processing);
    if let Some(outcome) = batch.add(claimed, read)? {
        return Ok(outcome);
    }
    batch
        .finish()
        .pop()
        .map(|(_, outcome)| outcome)
        .unwrap_or_else(|| Err(anyhow::anyhow!("the batch lost the file")))
}

/// Claimed files processed together. Each file is read, checked and committed on its own, in
/// the order added (its own store transaction, so a later file sees what an earlier one
/// queued: its original documents, its shipped quantities, its interchange keys); then one
/// flush makes every file's work durable, and only then is each file moved: to the archive,
/// or to `error/` or `archive/duplicates/` with its reason. A crash before the flush leaves
/// every file claimed with nothing durable (or, for a file committed by an earlier attempt,
/// only its move left); a crash after it leaves each file either moved or claimed with its
/// interchanges recorded under its name, which a restart recognises and only moves.
///
/// Two streaming passes over each file's bytes, each holding one transaction set at a time:
/// the check reads, parses and translates every set and acknowledges it (a set that cannot
/// become a call is `R`, with its AK3/AK4 codes); only a file whose every set passed is then
/// committed, set by set in chunks of [`CHUNK_SETS`] (each chunk but the last flushed with the
/// file's position), the last chunk with its 997s and interchange keys. A file with any
/// problem goes to `error/` and its 997 rejects every set (none was sent).
pub struct FileBatch<'a> {
    store: &'a Store,
    accounts: &'a Accounts,
    dirs: &'a Dirs,
    processing: &'a Dir,
    /// Files committed, waiting for the flush before their move.
    pending: Vec<Pending>,
}

/// A file whose work is committed, waiting for the batch's flush; what is left to do then.
struct Pending {
    claimed: OsString,
    name: String,
    /// The claimed file, still open, with what `fstat` said when it was taken and how many
    /// bytes were read: looked at once more before the move.
    file: std::fs::File,
    taken: Meta,
    read: usize,
    received_at: String,
    then: Then,
}

/// What a pending file's move is.
enum Then {
    /// Its calls and 997s committed: archived when it has not changed since it was taken (or
    /// moved to `archive/duplicates/` with this reason when all it brought was documents sent
    /// again).
    Committed {
        jobs: usize,
        duplicates: Option<String>,
    },
    /// Committed completely by an earlier attempt under this name: only the move is left.
    Moved,
    /// Refused with this reason; the 997s rejecting every set are committed.
    Refused(String),
}

/// A claimed file opened and read, or what became of it at once.
enum Opened {
    File {
        file: std::fs::File,
        taken: Meta,
        bytes: Vec<u8>,
    },
    Done(Outcome),
}

impl<'a> FileBatch<'a> {
    pub fn new(
        store: &'a Store,
        accounts: &'a Accounts,
        dirs: &'a Dirs,
        processing: &'a Dir,
    ) -> FileBatch<'a> {
        FileBatch {
            store,
            accounts,
            dirs,
            processing,
            pending: Vec::new(),
        }
    }

    /// Whether the batch should be finished before another file is added.
    pub fn full(&self) -> bool {
        self.pending.len() >= BATCH_FILES
    }

    /// Files waiting for [`FileBatch::finish`].
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Reads, checks and commits the claimed file; keeps it for [`FileBatch::finish`] (`None`), or
    /// returns what became of it when it needs nothing of the flush: moved to `error/` or
    /// `archive/duplicates/` with nothing committed, or still changing (left claimed). An
    /// error leaves it claimed for the next scan.
    pub fn add(&mut self, claimed: &OsStr, read: Option<Read>) -> anyhow::Result<Option<Outcome>> {
        let (file, taken, bytes) = match self.open(claimed, read)? {
            Opened::File { file, taken, bytes } => (file, taken, bytes),
            Opened::Done(outcome) => return Ok(Some(outcome)),
        };
        // Whose file it is: the account whose 850s its interchange answers.
        let account = match self.accounts.route_file(&bytes) {
            AccountRoute::Account(a) => a,
            AccountRoute::Unknown(reason) => return self.quarantined(claimed, reason).map(Some),
        };
        let mapping = &*account.mapping.current();
        let name = claimed.to_string_lossy().into_owned();
        let received_at = crate::clock::now_rfc3339();
        let hash = content_hash(&bytes);
        let file_key = keys::file_key(&name, &hash);
        let walk = Walk {
            store: self.store,
            mapping,
            account: &account.id,
            accounts: self.accounts,
            name: &name,
            hash: &hash,
            received_at: &received_at,
            pair: mapping.interchange.pair_key(),
            done: self.store.inbound_progress(&file_key)?,
        };
        let mut check = FileCheck::default();
        walk.pass(&bytes, &mut Mode::Check(&mut check))?;
        let then = match check.seen_before.take() {
            // Committed completely before a crash; only the move is left.
            Some(previous) if previous == name => Then::Moved,
            Some(previous) => {
                let reason = format!("duplicate interchange: already processed from {previous} (same ISA05/06/07/08/13); no API call made");
                return duplicate(self.dirs, self.processing, claimed, &received_at, reason)
                    .map(Some);
            }
            None => {
                // Looked at once more right before anything is committed: a writer still at
                // work gets its file back untouched at the next scan.
                if let Some(reason) = changed(&taken, &files::meta_of(&file)?, bytes.len()) {
                    return Ok(Some(Outcome::Changing { reason }));
                }
                if !check.problems.is_empty() {
                    Then::Refused(walk.refuse(&mut check, file_key)?)
                } else {
                    match walk.commit(&bytes, check, &file_key)? {
                        Committed::Pending(then) => then,
                        Committed::Duplicate(reason) => {
                            return duplicate(
                                self.dirs,
                                self.processing,
                                claimed,
                                &received_at,
                                reason,
                            )
                            .map(Some)
                        }
                    }
                }
            }
        };
        self.pending.push(Pending {
            claimed: claimed.to_os_string(),
            name,
            file,
            taken,
            read: bytes.len(),
            received_at,
            then,
        });
        Ok(None)
    }

    /// Opens the claimed file through the processing area's handle and takes its bytes: what
    /// the watcher read when it is still that file, else read again. A special file or one too
    /// big goes to `error/`; one changed since it was taken stays claimed.
    fn open(&self, claimed: &OsStr, read: Option<Read>) -> anyhow::Result<Opened> {
        let (mut file, taken) = match self.processing.open_regular(claimed) {
            Ok(f) => f,
            Err(OpenError::NotRegular(kind)) => {
                return self
                    .quarantined(claimed, not_regular_reason(kind))
                    .map(Opened::Done)
            }
            Err(OpenError::Io(e)) => return Err(e.into()),
        };
        let limit = self.dirs.max_file_bytes;
        let earlier =
            read.filter(|r| r.meta.same_content(&taken) && r.bytes.len() as u64 == taken.size);
        let bytes = match earlier {
            Some(r) => Some(r.bytes),
            None => files::read_limited(&mut file, limit)?,
        };
        let Some(bytes) = bytes else {
            let reason = too_big_reason(taken.size.max(limit + 1), limit);
            return self.quarantined(claimed, reason).map(Opened::Done);
        };
        if let Some(reason) = changed(&taken, &files::meta_of(&file)?, bytes.len()) {
            return Ok(Opened::Done(Outcome::Changing { reason }));
        }
        Ok(Opened::File { file, taken, bytes })
    }

    /// Moves a claimed file to `error/` with `reason` (nothing of it committed).
    fn quarantined(&self, claimed: &OsStr, reason: String) -> anyhow::Result<Outcome> {
        let moved = quarantine(self.processing, claimed, &self.dirs.error.open()?, &reason)?;
        Ok(Outcome::Rejected { reason, moved })
    }

    /// One flush for every file added, then each file's move; each file's outcome, in the
    /// order added. When the flush fails, every file stays claimed (an error each) and is
    /// processed again at the next scan, which finds what was committed.
    pub fn finish(self) -> Vec<(OsString, anyhow::Result<Outcome>)> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        if let Err(e) = self.store.flush_blocking() {
            return self
                .pending
                .into_iter()
                .map(|p| (p.claimed, Err(anyhow::anyhow!("flush: {e}"))))
                .collect();
        }
        tracing::debug!(files = self.pending.len(), "Inbox batch flushed.");
        let mut archive = ArchiveDays::default();
        let out: Vec<_> = self
            .pending
            .into_iter()
            .map(|p| {
                let outcome = settle(self.dirs, self.processing, &mut archive, &p);
                (p.claimed, outcome)
            })
            .collect();
        // The moves made durable, once for the batch.
        for dir in archive
            .days
            .values()
            .chain(std::iter::once(self.processing))
        {
            if let Err(e) = dir.sync() {
                tracing::error!(dir = %text::escape(&dir.path().to_string_lossy()), error = %e, "Cannot sync a directory after moving inbox files.");
            }
        }
        out
    }
}

/// The move of a pending file, once its work is durable.
fn settle(
    dirs: &Dirs,
    processing: &Dir,
    archive: &mut ArchiveDays,
    p: &Pending,
) -> anyhow::Result<Outcome> {
    let claimed = p.claimed.as_os_str();
    let (jobs, duplicates) = match &p.then {
        Then::Moved => (0, None),
        Then::Refused(reason) => {
            let moved = quarantine(processing, claimed, &dirs.error.open()?, reason)?;
            return Ok(Outcome::Rejected {
                reason: reason.clone(),
                moved,
            });
        }
        Then::Committed { jobs, duplicates } => (*jobs, duplicates.as_ref()),
    };
    if !matches!(p.then, Then::Moved) {
        if let Some(change) = changed(&p.taken, &files::meta_of(&p.file)?, p.read) {
            // Committed already: what was read goes to Ingram; what came after it was never
            // read, so the file is not archived as if it had been.
            let reason = format!(
                "{change}; the first {} bytes were processed ({jobs} API call(s) queued, 997s written), the bytes after byte {} were NOT processed: send them again in a new file (write it under a temporary name and rename it into the inbox when complete)",
                p.read, p.read
            );
            let moved = quarantine(processing, claimed, &dirs.error.open()?, &reason)?;
            return Ok(Outcome::Rejected { reason, moved });
        }
    }
    if let Some(reason) = duplicates {
        return duplicate(dirs, processing, claimed, &p.received_at, reason.clone());
    }
    let dest = archive.day(dirs, &p.received_at)?;
    let got = processing.move_unique(claimed, dest, claimed)?;
    tracing::trace!(file = %text::escape(&p.name), "Inbox file archived.");
    Ok(Outcome::Archived {
        jobs,
        archived: dest.path().join(got),
    })
}

/// The archive's day directories a batch moved files into (synced once each at its end).
#[derive(Default)]
struct ArchiveDays {
    days: BTreeMap<String, Dir>,
}

impl ArchiveDays {
    /// `archive/inbound/YYYY/MM/DD/` of the day a file was received, made when missing.
    fn day(&mut self, dirs: &Dirs, received_at: &str) -> std::io::Result<&Dir> {
        let day = format!("inbound/{}", crate::clock::date_path(received_at));
        if !self.days.contains_key(&day) {
            let dir = dirs
                .archive
                .open()?
                .sub_path(&day, files::SHARED_DIR_MODE)?;
            self.days.insert(day.clone(), dir);
        }
        Ok(&self.days[&day])
    }
}

/// What the commit of a checked file left to do.
enum Committed {
    /// Its move, once the batch is flushed.
    Pending(Then),
    /// Its interchange was processed meanwhile from another file: nothing committed.
    Duplicate(String),
}

impl Walk<'_> {
    /// A file with problems: the 997s rejecting every set (none goes to Ingram) are committed,
    /// and the reason it goes to `error/` is returned. The file's own key (name + content)
    /// makes answering it idempotent: processed again after a crash or a failed move, it gets
    /// no second 997.
    fn refuse(&self, check: &mut FileCheck, file_key: Vec<u8>) -> anyhow::Result<String> {
        let mut batch = InboundBatch {
            claimed_file: self.name.to_string(),
            received_at: self.received_at.to_string(),
            interchanges: vec![file_key],
            ..Default::default()
        };
        for g in &mut check.acks {
            for s in &mut g.sets {
                s.reject();
            }
        }
        batch.files = replies(
            self.store,
            self.mapping,
            self.account,
            &self.pair,
            &check.acks,
            &mut check.problems,
        );
        if !batch.files.is_empty() {
            self.store.commit_inbound(&batch)?;
        }
        let mut reason = check.problems.join("\n");
        if check.more_problems > 0 {
            reason.push_str(&format!("\n… and {} more problem(s)", check.more_problems));
        }
        if self.done > 0 {
            reason.push_str(&format!("\nthe first {} set(s) of this file were processed before (API calls queued); the others were NOT", self.done));
        }
        Ok(reason)
    }

    /// The commit pass over a checked file: its sets in chunks of [`CHUNK_SETS`] (each but the
    /// last flushed with the file's position), then the last chunk with the 997s answering its
    /// groups and its interchange keys, committed but not flushed (the batch flushes).
    fn commit(&self, bytes: &[u8], check: FileCheck, file_key: &[u8]) -> anyhow::Result<Committed> {
        let queued = RefCell::new(Vec::new());
        let mut chunks = Chunks {
            store: self.store,
            name: self.name,
            received_at: self.received_at,
            progress: inbound::progress_key(file_key),
            batch: InboundBatch::default(),
            originals: &queued,
            sets: 0,
            jobs: 0,
            recorded: 0,
            duplicates: Vec::new(),
        };
        self.pass(bytes, &mut Mode::Commit(&mut chunks))?;
        let mut problems = Vec::new();
        let files_997 = replies(
            self.store,
            self.mapping,
            self.account,
            &self.pair,
            &check.acks,
            &mut problems,
        );
        for p in problems {
            tracing::error!(file = %text::escape(self.name), problem = %text::escape(&p), "No 997 for an inbound group.");
        }
        let mut last = std::mem::take(&mut chunks.batch);
        last.interchanges = check.interchanges;
        last.files = files_997;
        last.claimed_file = self.name.to_string();
        last.received_at = self.received_at.to_string();
        let chunk = inbound::Chunk {
            progress: Some(inbound::Progress {
                key: chunks.progress.clone(),
                done: None,
            }),
            originals: chunks.originals.take(),
        };
        let jobs = chunks.jobs + last.jobs.len();
        if let InboundCommit::Duplicate { previous_file } =
            self.store.commit_inbound_chunk(&last, &chunk)?
        {
            // Only a file processed meanwhile under another name can get here.
            return Ok(Committed::Duplicate(format!("duplicate interchange: already processed from {previous_file} (same ISA05/06/07/08/13); no API call made")));
        }
        for d in chunks.duplicates.iter().take(10) {
            tracing::warn!(file = %text::escape(self.name), duplicate = %text::escape(d), "Document sent again; no API call made.");
        }
        let only_duplicates =
            self.done == 0 && jobs == 0 && chunks.recorded == 0 && !chunks.duplicates.is_empty();
        Ok(Committed::Pending(Then::Committed {
            jobs,
            duplicates: only_duplicates.then(|| duplicates_reason(&chunks.duplicates)),
        }))
    }
}

/// The reason a file that brought only documents sent again goes to `archive/duplicates/`.
fn duplicates_reason(duplicates: &[String]) -> String {
    let mut reason = format!(
        "duplicate document(s), no API call made: {}",
        duplicates
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if duplicates.len() > 5 {
        reason.push_str(&format!("; and {} more", duplicates.len() - 5));
    }
    reason
}

/// Moves a file that brought nothing new to `archive/duplicates/YYYY/MM/DD/` with its reason
/// (dated like the rest of the archive, so `[archive] keep_days` prunes it by day).
fn duplicate(
    dirs: &Dirs,
    processing: &Dir,
    claimed: &OsStr,
    received_at: &str,
    reason: String,
) -> anyhow::Result<Outcome> {
    let day = format!("duplicates/{}", crate::clock::date_path(received_at));
    let dup = dirs
        .archive
        .open()?
        .sub_path(&day, files::SHARED_DIR_MODE)?;
    let moved = quarantine(processing, claimed, &dup, &reason)?;
    Ok(Outcome::Duplicate { reason, moved })
}

/// Why a file that was taken no longer looks the way it did, if it does not.
fn changed(taken: &Meta, now: &Meta, read: usize) -> Option<String> {
    if taken.same_content(now) && now.size == read as u64 {
        return None;
    }
    Some(format!(
        "the file changed after it was taken (size {} -> {} bytes, {} bytes read{})",
        taken.size,
        now.size,
        read,
        if taken.mtime_ns != now.mtime_ns {
            ", modified again"
        } else {
            ""
        }
    ))
}

/// The reason given for a symlink, FIFO, socket or device in the inbox.
pub fn not_regular_reason(kind: files::Kind) -> String {
    format!(
        "not a regular file: it is {}; the entry itself was moved here, whatever it points to was never opened (the ERP must write plain files)",
        kind.describe()
    )
}

/// The reason given for a file over `inbox.max_file_bytes`.
pub fn too_big_reason(size: u64, limit: u64) -> String {
    format!(
        "too big: {size} bytes, more than inbox.max_file_bytes = {limit}; split it into smaller files or raise the limit"
    )
}

/// The reader settings the mapping asks for: its delimiters for bare transaction sets (when
/// their first segment does not show others) and `inbound.strict_envelope`.
pub fn read_options(mapping: &Mapping) -> x12::ReadOptions {
    let d = write_options(mapping).delimiters;
    x12::ReadOptions {
        default_delimiters: x12::Delimiters {
            repetition: None,
            ..d
        },
        strict_envelope: mapping.inbound.strict_envelope,
        ..x12::ReadOptions::default()
    }
}

/// The acknowledgment of one inbound group, built set by set during the check.
struct GroupAck {
    ic: x12::IsaHeader,
    header: x12::GsHeader,
    sets: Vec<x12::SetAck>,
    /// Diagnostics on the group itself (AK9 codes).
    diags: Vec<x12::Diagnostic>,
}

/// What the check (the first pass) found.
#[derive(Default)]
struct FileCheck {
    problems: Vec<String>,
    more_problems: usize,
    acks: Vec<GroupAck>,
    interchanges: Vec<Vec<u8>>,
    /// An interchange of this file already processed, from this file.
    seen_before: Option<String>,
}

impl FileCheck {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.more_problems += 1;
        }
    }
}

/// The commit (the second pass): the batch being filled and what was committed so far.
struct Chunks<'a> {
    store: &'a Store,
    name: &'a str,
    received_at: &'a str,
    /// [`inbound::progress_key`] of the file.
    progress: Vec<u8>,
    batch: InboundBatch,
    /// Original documents `batch` queues.
    originals: &'a RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
    /// Sets in `batch`.
    sets: usize,
    /// Jobs committed by earlier chunks.
    jobs: usize,
    /// 997s and TA1s from the ERP recorded.
    recorded: usize,
    /// Original documents sent again (no call).
    duplicates: Vec<String>,
}

impl Chunks<'_> {
    /// Commits the batch with the file's position (`done` sets) and flushes it: jobs become
    /// visible to the deliver worker only once durable.
    fn commit(&mut self, done: u64) -> anyhow::Result<()> {
        let mut b = std::mem::take(&mut self.batch);
        b.claimed_file = self.name.to_string();
        b.received_at = self.received_at.to_string();
        let chunk = inbound::Chunk {
            progress: Some(inbound::Progress {
                key: self.progress.clone(),
                done: Some(done),
            }),
            originals: self.originals.take(),
        };
        self.jobs += b.jobs.len();
        self.store.commit_inbound_chunk(&b, &chunk)?;
        self.store.flush_blocking()?;
        self.sets = 0;
        tracing::debug!(file = %text::escape(self.name), sets = done, "Inbox file chunk committed.");
        Ok(())
    }
}

enum Mode<'m, 'a> {
    Check(&'m mut FileCheck),
    Commit(&'m mut Chunks<'a>),
}

/// Where one pass over a file is: the envelope it is inside, the current group's
/// acknowledgments and diagnostics, and the sets seen so far.
#[derive(Default)]
struct Cursor {
    ic: Option<(x12::IsaHeader, bool)>,
    group: Option<(x12::GsHeader, bool)>,
    sets: Vec<x12::SetAck>,
    diags: Vec<x12::Diagnostic>,
    /// Whether an interchange or a set was found at all.
    any: bool,
    /// Warnings logged so far (the first ten are).
    warned: usize,
    /// Sets passed so far, in file order.
    n: u64,
    /// Original documents seen earlier in this file (see [`Route`]).
    seen: RefCell<HashMap<Vec<u8>, u64>>,
    /// The check's stand-in for the originals a chunk queues.
    scratch_originals: RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// One file being processed.
struct Walk<'a> {
    store: &'a Store,
    mapping: &'a Mapping,
    /// The account the file belongs to: its POs are this account's.
    account: &'a str,
    /// Every account, to check that each interchange of the file is this account's.
    accounts: &'a Accounts,
    name: &'a str,
    hash: &'a str,
    received_at: &'a str,
    /// The outbound pair key (control-number counters, GS06 index).
    pair: String,
    /// Sets committed by an earlier attempt (skipped by the commit, acknowledged by the check).
    done: u64,
}

impl Walk<'_> {
    /// A problem when an interchange of the file is another account's (or no account's): one
    /// file, one account.
    fn other_account(&self, h: &x12::IsaHeader, synthetic: bool) -> Option<String> {
        if synthetic {
            return None;
        }
        match self.accounts.route(&h.sender_id, &h.receiver_id, None) {
            AccountRoute::Account(a) if a.id == self.account => None,
            AccountRoute::Account(a) => Some(format!(
                "interchange {} is the account {}'s, the file's first is the account {}'s: send each account's documents in files of their own",
                text::escape(h.control_number.trim()),
                a.id,
                self.account
            )),
            // Two accounts share these ISA ids (their GS ids tell them apart).
            AccountRoute::Unknown(_) if self.accounts.iter().any(|a| a.inbound_pair().matches_isa(&h.sender_id, &h.receiver_id)) => None,
            AccountRoute::Unknown(reason) => Some(reason),
        }
    }

    /// One streaming pass over the file, one transaction set at a time.
    fn pass(&self, bytes: &[u8], mode: &mut Mode<'_, '_>) -> anyhow::Result<()> {
        let opts = read_options(self.mapping);
        let mut at = Cursor::default();
        for ev in x12::Reader::new(bytes, &opts) {
            match ev {
                x12::ReadEvent::Diagnostic(d) => self.on_diagnostic(&mut at, d, mode),
                x12::ReadEvent::InterchangeStart {
                    header, synthetic, ..
                } => {
                    if self.on_interchange(&mut at, header, synthetic, bytes, mode)? {
                        return Ok(());
                    }
                }
                x12::ReadEvent::Ta1(t) => self.on_ta1(&at, &t, mode),
                x12::ReadEvent::GroupStart {
                    header,
                    synthetic,
                    index,
                } => {
                    at.group = Some((header, synthetic));
                    at.sets.clear();
                    at.diags.retain(|d| d.position.group == Some(index));
                }
                x12::ReadEvent::Transaction(t) => self.on_transaction(&mut at, &t, mode)?,
                x12::ReadEvent::GroupEnd { .. } => self.on_group_end(&mut at, mode),
                x12::ReadEvent::InterchangeEnd { .. } => at.ic = None,
            }
        }
        if let Mode::Check(c) = mode {
            if !at.any {
                c.problem("no X12 interchange found (no ISA segment, no transaction set)".into());
            }
        }
        Ok(())
    }

    /// A reader's diagnostic: an error is a problem of the file (check), a tolerated quirk is
    /// logged (the first ten); those inside a group are kept for its 997.
    fn on_diagnostic(&self, at: &mut Cursor, d: x12::Diagnostic, mode: &mut Mode<'_, '_>) {
        if let Mode::Check(c) = mode {
            if d.is_error() {
                c.problem(set::describe(std::slice::from_ref(&d)));
            } else if at.warned < 10 {
                // Tolerated quirks (a wrong count, an inferred delimiter) are processed, and
                // said so.
                at.warned += 1;
                tracing::warn!(file = %text::escape(self.name), code = d.code.as_str(), position = %text::escape(&d.position.describe()), message = %text::escape(&d.message), "Inbox file read with a warning.");
            }
        }
        if d.position.group.is_some() {
            at.diags.push(d);
        }
    }

    /// An interchange begins: the check makes sure it is this account's and not processed
    /// before. True when it was processed before from this file (the pass stops there).
    fn on_interchange(
        &self,
        at: &mut Cursor,
        header: x12::IsaHeader,
        synthetic: bool,
        bytes: &[u8],
        mode: &mut Mode<'_, '_>,
    ) -> anyhow::Result<bool> {
        at.any = true;
        if let Mode::Check(c) = mode {
            if let Some(problem) = self.other_account(&header, synthetic) {
                c.problem(problem);
            }
            let key = self.interchange_key(&header, synthetic, bytes);
            if let Some(prev) = self.store.interchange_file(&key)? {
                c.seen_before = Some(prev);
                return Ok(true);
            }
            c.interchanges.push(key);
        }
        at.ic = Some((header, synthetic));
        Ok(false)
    }

    /// A TA1 from the ERP, recorded by the commit (unless an earlier attempt did).
    fn on_ta1(&self, at: &Cursor, t: &x12::Ta1, mode: &mut Mode<'_, '_>) {
        if let Mode::Commit(k) = mode {
            if at.n >= self.done {
                record_ta1(
                    self.store,
                    self.account,
                    &self.pair,
                    t,
                    self.name,
                    &mut k.batch,
                );
                k.recorded += 1;
            }
        }
    }

    /// One transaction set: the check routes it into a scratch batch and acknowledges it; the
    /// commit routes it into the chunk and commits the chunk when it is full.
    fn on_transaction(
        &self,
        at: &mut Cursor,
        t: &x12::Transaction<'_>,
        mode: &mut Mode<'_, '_>,
    ) -> anyhow::Result<()> {
        at.any = true;
        let mine: Vec<x12::Diagnostic> = at
            .diags
            .iter()
            .filter(|d| d.position.transaction == Some(t.index))
            .cloned()
            .collect();
        at.diags.retain(|d| d.position.transaction.is_none());
        let set = at.n;
        at.n += 1;
        let (Some((h, ic_synthetic)), Some((gs, _))) = (&at.ic, &at.group) else {
            return Ok(());
        };
        if set < self.done {
            if let Mode::Check(_) = mode {
                at.sets.push(x12::SetAck::for_set(t, &mine));
            }
            return Ok(());
        }
        let source = if *ic_synthetic {
            format!("{} (bare set) ST02 {}", self.name, t.control_number.trim())
        } else {
            format!(
                "{} ISA13 {} GS06 {} ST02 {}",
                self.name,
                h.control_number.trim(),
                gs.control_number.trim(),
                t.control_number.trim()
            )
        };
        let ctx = Route {
            store: self.store,
            mapping: self.mapping,
            account: self.account,
            pair: &self.pair,
            gs,
            source: &source,
            name: self.name,
            hash: self.hash,
            received_at: self.received_at,
            set,
            seen: &at.seen,
            originals: match mode {
                Mode::Check(_) => &at.scratch_originals,
                Mode::Commit(k) => k.originals,
            },
        };
        match mode {
            Mode::Check(c) => {
                let mut scratch = InboundBatch::default();
                at.scratch_originals.borrow_mut().clear();
                match route(&ctx, t, &mut scratch) {
                    Ok(_) => at.sets.push(x12::SetAck::for_set(t, &mine)),
                    Err(refusal) => {
                        c.problem(refusal.to_string());
                        let mut all = mine;
                        all.extend(refusal.diagnostics());
                        let mut ack = x12::SetAck::for_set(t, &all);
                        ack.reject();
                        at.sets.push(ack);
                    }
                }
                Ok(())
            }
            Mode::Commit(k) => {
                match route(&ctx, t, &mut k.batch) {
                    Ok(SetRouted::Jobs(j)) => {
                        tracing::debug!(source = %text::escape(&source), jobs = j, "Transaction set routed.")
                    }
                    Ok(SetRouted::ErpAck(a)) => {
                        k.recorded += 1;
                        tracing::debug!(source = %text::escape(&source), outcome = %a, "997 from the ERP recorded.")
                    }
                    Ok(SetRouted::Duplicate(what)) => k.duplicates.push(what),
                    Err(refusal) => anyhow::bail!(
                        "set {} ({source}) passed the check but is refused now (the store changed meanwhile): {refusal}",
                        set + 1
                    ),
                }
                k.sets += 1;
                if k.sets >= CHUNK_SETS {
                    k.commit(set + 1)?;
                }
                Ok(())
            }
        }
    }

    /// A group ends: the check keeps what its 997 will say.
    fn on_group_end(&self, at: &mut Cursor, mode: &mut Mode<'_, '_>) {
        if let (Mode::Check(c), Some((h, ic_synthetic)), Some((gs, synthetic))) =
            (&mut *mode, &at.ic, at.group.take())
        {
            // No 997 for a group the reader invented (bare sets): no envelope to answer;
            // none for the ERP's own 997s either.
            if self.mapping.ack997.generate
                && !ic_synthetic
                && !synthetic
                && !gs.functional_id.trim().eq_ignore_ascii_case("FA")
            {
                c.acks.push(GroupAck {
                    ic: h.clone(),
                    header: gs,
                    sets: std::mem::take(&mut at.sets),
                    diags: std::mem::take(&mut at.diags),
                });
            }
        }
        at.sets.clear();
        at.diags.clear();
    }

    /// The key that recognises an interchange sent again: ISA05/06/07/08/13; for bare sets,
    /// which have no ISA, the file itself (name and content), which keeps processing it again
    /// after a crash from queueing its calls twice. It differs from the key a rejected file's
    /// 997 is recorded under, so a rejected file sent again unchanged (say, once its PO has
    /// arrived) is processed, not skipped.
    fn interchange_key(&self, h: &x12::IsaHeader, synthetic: bool, bytes: &[u8]) -> Vec<u8> {
        if synthetic {
            let _ = bytes;
            return keys::file_key(self.name, &format!("bare:{}", self.hash));
        }
        let isa13 = h
            .control_number
            .trim()
            .parse::<u64>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| h.control_number.trim().to_string());
        keys::interchange_key([
            h.sender_qualifier.trim(),
            h.sender_id.trim(),
            h.receiver_qualifier.trim(),
            h.receiver_id.trim(),
            &isa13,
        ])
    }
}

/// The 997s answering the groups acknowledged by the check (a group whose 997 cannot be built
/// is a problem).
fn replies(
    store: &Store,
    mapping: &Mapping,
    account: &str,
    pair: &str,
    acks: &[GroupAck],
    problems: &mut Vec<String>,
) -> Vec<FileRecord> {
    let mut out = Vec::new();
    for g in acks {
        match reply_997(store, mapping, account, pair, g) {
            Ok(f) => out.push(f),
            Err(e) => problems.push(format!(
                "could not build the 997 for group {}: {e}",
                g.header.control_number
            )),
        }
    }
    out
}

/// Records a TA1 from the ERP against the 850 interchange it names (TA101 = the ISA13 we
/// wrote), as the ERP's answer to that PO's 850. A rejection is logged as an error.
fn record_ta1(
    store: &Store,
    account: &str,
    pair: &str,
    ta1: &x12::Ta1,
    name: &str,
    batch: &mut InboundBatch,
) {
    let outcome = match ta1.ack_code.as_str() {
        "A" => ErpAck::InterchangeAccepted,
        "E" => ErpAck::InterchangeAcceptedWithErrors,
        _ => ErpAck::InterchangeRejected,
    };
    let note = ta1.note_code.as_deref().unwrap_or("-");
    let Some((po, gs06)) = ta1
        .control_number
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|isa13| po_for_isa13(store, account, isa13))
    else {
        tracing::warn!(file = %text::escape(name), isa13 = %text::escape(&ta1.control_number), ack = %text::escape(&ta1.ack_code), note = %text::escape(note), "TA1 from the ERP for an interchange the bridge did not write; nothing recorded.");
        return;
    };
    if outcome.is_rejection() {
        tracing::error!(po = %text::escape(&po), isa13 = %text::escape(&ta1.control_number), note = %text::escape(note), "The ERP rejected our 850 interchange (TA1).");
    }
    batch.erp_997.push(Erp997::new(
        pair,
        gs06,
        outcome,
        format!(
            "; ISA13 {} TA104 {} TA105 {note} ({name})",
            ta1.control_number.trim(),
            ta1.ack_code
        ),
    ));
}

/// The PO (and GS06) of the 850 we wrote with this ISA13. TA1s are rare: a scan of the orders.
fn po_for_isa13(store: &Store, account: &str, isa13: u32) -> Option<(String, u32)> {
    store
        .orders()
        .filter_map(Result::ok)
        .filter(|o| o.account == account)
        .find_map(|o| match o.outbound {
            Outbound850::Allocated { envelope } | Outbound850::Written { envelope, .. }
                if envelope.isa13 == isa13 =>
            {
                Some((po_key(&o.account, &o.po_number), envelope.gs06))
            }
            _ => None,
        })
}

/// What routing needs besides the transaction set: where it came from and where it goes.
struct Route<'a> {
    store: &'a Store,
    mapping: &'a Mapping,
    /// The file's account: a PO number in it is this account's PO.
    account: &'a str,
    /// The outbound pair key (control-number counters, GS06 index).
    pair: &'a str,
    gs: &'a x12::GsHeader,
    /// File and control numbers, for history and job sources.
    source: &'a str,
    /// The claimed file's name and content hash, and when it was received.
    name: &'a str,
    hash: &'a str,
    received_at: &'a str,
    /// The set's place in the file (0-based).
    set: u64,
    /// Original documents met earlier in this pass over the file: key → set.
    seen: &'a RefCell<HashMap<Vec<u8>, u64>>,
    /// Original documents queued by the batch being built.
    originals: &'a RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Route<'_> {
    /// Whether the original document with `key` was already queued (earlier in this file, or
    /// from another file): then a description of it for the warning; otherwise it is recorded
    /// in the batch as queued by this set.
    fn sent_before(&self, key: Vec<u8>, what: &str) -> Result<Option<String>, SetRefusal> {
        if let Some(first) = self.seen.borrow().get(&key) {
            if *first < self.set {
                return Ok(Some(format!(
                    "{what} already in this file (set {}), {}",
                    first + 1,
                    self.source
                )));
            }
        }
        if let Some(rec) = self
            .store
            .original(&key)
            .map_err(|e| SetRefusal::Store(e.to_string()))?
        {
            let mine = rec.file == self.name && rec.hash == self.hash && rec.set >= self.set;
            if !mine {
                return Ok(Some(format!(
                    "{what} already queued from {} at {}, {}",
                    rec.file, rec.received_at, self.source
                )));
            }
        }
        self.seen
            .borrow_mut()
            .entry(key.clone())
            .or_insert(self.set);
        let rec = OriginalRecord {
            file: self.name.to_string(),
            hash: self.hash.to_string(),
            set: self.set,
            received_at: self.received_at.to_string(),
        };
        self.originals.borrow_mut().push((key, rec.encode()));
        Ok(None)
    }
}

/// What routing one transaction set added to the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SetRouted {
    /// This many API calls queued (855, 856).
    Jobs(usize),
    /// The ERP's 997 for one of our 850s recorded.
    ErpAck(ErpAck),
    /// An original document sent again: no call (what it is, for the warning).
    Duplicate(String),
}

impl Route<'_> {
    /// The store key of a PO number in this file's account.
    fn key(&self, po: &str) -> String {
        po_key(self.account, po)
    }
}

/// Routes one transaction set (read and translated as the preview does) and adds what it
/// produces to the batch.
fn route(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    batch: &mut InboundBatch,
) -> Result<SetRouted, SetRefusal> {
    // Without BAK09 the group's date (GS04) dates an acknowledgment; a bare set has none, so
    // the day the file was received does.
    let received_day: String = ctx
        .received_at
        .chars()
        .take(10)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let fallback = match ctx.gs.date.trim() {
        "" => received_day.as_str(),
        gs04 => gs04,
    };
    let translated = set::translate(tx, ctx.mapping, fallback, |asn| {
        order_views(ctx, asn, batch)
    })?;
    match translated {
        SetCalls::Ack855 { ack, call, at } => route_855(ctx, tx, &ack, call, &at, batch),
        SetCalls::Asn856 {
            asn,
            calls,
            views,
            at,
        } => route_856(ctx, tx, &asn, calls, &views, &at, batch),
        SetCalls::Ack997 { at } => route_997(ctx, tx, &at, batch),
    }
}

/// An 855: one PO Response call.
fn route_855(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    ack: &x12::Ack855,
    call: ApiCall,
    bak: &x12::Position,
    batch: &mut InboundBatch,
) -> Result<SetRouted, SetRefusal> {
    let key = ctx.key(&call.po);
    let unknown = ctx
        .store
        .order(&key)
        .map_err(|e| SetRefusal::Store(e.to_string()))?
        .is_none();
    if unknown && ctx.mapping.inbound.unknown_po == UnknownPo::Hold {
        return Err(SetRefusal::UnknownPoHeld {
            kind: "855",
            po: call.po,
            at: bak.describe(),
        });
    }
    if ack.purpose.trim() == "00" {
        let original = inbound::original_key(&key, "855", "");
        let what = format!("original 855 (BAK01 00) for PO {}", call.po);
        if let Some(dup) = ctx.sent_before(original, &what)? {
            batch
                .history
                .push((key.clone(), format!("855 received again, not sent: {dup}")));
            return Ok(SetRouted::Duplicate(dup));
        }
    }
    if unknown {
        tracing::warn!(po = %text::escape(&call.po), source = %text::escape(ctx.source), "855 for a PO the bridge never received; sending it anyway (flagged).");
    }
    batch
        .history
        .push((key.clone(), format!("855 received: {}", ctx.source)));
    batch.jobs.push(NewJob {
        po: key,
        kind: call.kind,
        path: call.path,
        body: call.body.to_string(),
        segments: segments_of(tx),
        source: ctx.source.to_string(),
        unknown_po: unknown,
    });
    Ok(SetRouted::Jobs(1))
}

/// An 856: one PO Status call per PO it names.
fn route_856(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    asn: &x12::Asn856,
    calls: Vec<StatusCall>,
    views: &BTreeMap<String, OrderView>,
    bsn: &x12::Position,
    batch: &mut InboundBatch,
) -> Result<SetRouted, SetRefusal> {
    let mut n = 0;
    let mut duplicates = Vec::new();
    for c in calls {
        let unknown = !views.contains_key(&c.call.po);
        let key = ctx.key(&c.call.po);
        if unknown && ctx.mapping.inbound.unknown_po == UnknownPo::Hold {
            return Err(SetRefusal::UnknownPoHeld {
                kind: "856",
                po: c.call.po,
                at: bsn.describe(),
            });
        }
        if asn.purpose.trim() == "00" {
            let original = inbound::original_key(&key, "856", asn.shipment_id.trim());
            let what = format!(
                "original 856 (BSN01 00) shipment {} for PO {}",
                asn.shipment_id.trim(),
                c.call.po
            );
            if let Some(dup) = ctx.sent_before(original, &what)? {
                batch
                    .history
                    .push((key.clone(), format!("856 received again, not sent: {dup}")));
                duplicates.push(dup);
                continue;
            }
        }
        n += 1;
        if unknown {
            tracing::warn!(po = %text::escape(&c.call.po), source = %text::escape(ctx.source), "856 for a PO the bridge never received; sending it anyway (flagged).");
        }
        batch.history.push((
            key.clone(),
            format!(
                "856 received (shipment {}): {}",
                asn.shipment_id.trim(),
                ctx.source
            ),
        ));
        batch.shipped.push((key.clone(), c.shipped_now));
        batch.jobs.push(NewJob {
            po: key,
            kind: c.call.kind,
            path: c.call.path,
            body: c.call.body.to_string(),
            segments: segments_of(tx),
            source: ctx.source.to_string(),
            unknown_po: unknown,
        });
    }
    if n == 0 && !duplicates.is_empty() {
        return Ok(SetRouted::Duplicate(duplicates.join("; ")));
    }
    Ok(SetRouted::Jobs(n))
}

/// What the store knows of each PO the 856 names: ordered quantities, vendor parts and what
/// has shipped so far (earlier 856s, in the store and earlier in this same file).
fn order_views(
    ctx: &Route<'_>,
    asn: &x12::Asn856,
    batch: &InboundBatch,
) -> Result<BTreeMap<String, OrderView>, SetRefusal> {
    let mut views = BTreeMap::new();
    for node in &asn.nodes {
        let Some(prf) = &node.prf else { continue };
        let po = prf.po_number.trim().to_string();
        let key = ctx.key(&po);
        let Some(rec) = ctx
            .store
            .order(&key)
            .map_err(|e| SetRefusal::Store(e.to_string()))?
        else {
            continue;
        };
        let mut shipped = rec.inbound.shipped.clone();
        for (p, lines) in &batch.shipped {
            if *p == key {
                for (l, q) in lines {
                    let slot = shipped.entry(l.clone()).or_default();
                    *slot = slot.saturating_add(*q);
                }
            }
        }
        let lines = &rec.order.lines;
        views.insert(
            po,
            OrderView {
                ordered: lines
                    .iter()
                    .map(|l| (l.ingram_line_number.clone(), l.quantity))
                    .collect(),
                line_by_vendor_part: lines
                    .iter()
                    .filter_map(|l| {
                        Some((l.vendor_part_number.clone()?, l.ingram_line_number.clone()))
                    })
                    .collect(),
                shipped,
            },
        );
    }
    Ok(views)
}

/// A 997 from the ERP: its outcome for the 850 whose GS06 it names.
fn route_997(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    st_pos: &x12::Position,
    batch: &mut InboundBatch,
) -> Result<SetRouted, SetRefusal> {
    let (ack, diags) = x12::Ack997::parse(tx);
    first_error(&diags)?;
    let Ok(gs06) = ack.group_control.trim().parse::<u32>() else {
        return Err(SetRefusal::BadAk102 {
            ak102: ack.group_control,
            at: st_pos.describe(),
        });
    };
    let set_status = ack
        .sets
        .first()
        .map(|s| s.status.as_str())
        .unwrap_or(ack.group_status.as_str());
    let outcome = match set_status.trim() {
        "A" => ErpAck::Accepted,
        "E" => ErpAck::AcceptedWithErrors,
        _ => ErpAck::Rejected,
    };
    // The codes themselves (AK5 of the set, AK9 of the group), for the PO's history and alerts.
    let codes = format!(
        "; AK5 {} AK9 {}",
        text::escape(set_status.trim()),
        text::escape(ack.group_status.trim())
    );
    let detail: String = std::iter::once(codes)
        .chain(
            ack.sets
                .iter()
                .flat_map(|s| s.segment_errors.iter())
                .map(|e| {
                    format!(
                        "; {} at segment {} (code {})",
                        e.segment_id,
                        e.position,
                        e.code.as_deref().unwrap_or("?")
                    )
                }),
        )
        .collect();
    if outcome.is_rejection() {
        let po = ctx
            .store
            .po_for_gs06(ctx.pair, gs06)
            .ok()
            .flatten()
            .unwrap_or_else(|| "unknown".into());
        tracing::error!(po = %text::escape(&po), gs06, detail = %text::escape(&detail), "The ERP rejected our 850.");
    }
    batch
        .erp_997
        .push(Erp997::new(ctx.pair, gs06, outcome, detail));
    Ok(SetRouted::ErpAck(outcome))
}

/// The release a 997 answers in: the inbound group's GS08 (ISA12 00501 for 005xxx and later,
/// 00401 otherwise), or the mapping's when the group names none.
fn reply_version(gs08: &str, mapping_version: x12::Version) -> (x12::Version, Option<String>) {
    let v = gs08.trim();
    let release: Option<u32> = v.get(..6).and_then(|r| r.parse().ok());
    match release {
        Some(r) if r >= 5000 => (x12::Version::V5010, Some(v.to_string())),
        Some(_) => (x12::Version::V4010, Some(v.to_string())),
        None => (mapping_version, None),
    }
}

/// A 997 answering one inbound group, addressed back to its sender.
fn reply_997(
    store: &Store,
    mapping: &Mapping,
    account: &str,
    pair: &str,
    group: &GroupAck,
) -> anyhow::Result<FileRecord> {
    let mut opts = write_options(mapping);
    let (version, gs08) = reply_version(&group.header.version, opts.version);
    opts.version = version;
    let ack = x12::Ack997::for_sets(
        &group.header,
        group.sets.clone(),
        &group.diags,
        opts.version,
    );
    let (isa13, gs06, st02) = store.allocate_numbers(pair)?;
    let now = time::OffsetDateTime::now_utc();
    let f =
        |d: &[time::format_description::BorrowedFormatItem<'_>]| now.format(d).unwrap_or_default();
    let h = &group.ic;
    let isa = x12::IsaHeader {
        auth_qualifier: "00".into(),
        auth_info: String::new(),
        security_qualifier: "00".into(),
        security_info: String::new(),
        sender_qualifier: h.receiver_qualifier.trim().to_string(),
        sender_id: h.receiver_id.trim().to_string(),
        receiver_qualifier: h.sender_qualifier.trim().to_string(),
        receiver_id: h.sender_id.trim().to_string(),
        date: f(time::macros::format_description!(
            "[year repr:last_two][month][day]"
        )),
        time: f(time::macros::format_description!("[hour][minute]")),
        standards_id: String::new(),
        version: String::new(),
        control_number: isa13.to_string(),
        ack_requested: "0".into(),
        usage: mapping.interchange.usage.clone(),
    };
    let gs = x12::GsHeader {
        functional_id: "FA".into(),
        app_sender: group.header.app_receiver.trim().to_string(),
        app_receiver: group.header.app_sender.trim().to_string(),
        date: f(time::macros::format_description!("[year][month][day]")),
        time: f(time::macros::format_description!("[hour][minute]")),
        control_number: gs06.to_string(),
        agency: "X".into(),
        version: gs08.unwrap_or_else(|| mapping.interchange.gs_version().to_string()),
    };
    let bytes = x12::write(
        &isa,
        &[x12::OutGroup {
            header: gs,
            transactions: vec![ack.to_transaction(&format!("{st02:04}"))],
        }],
        &opts,
    )?;
    // Each account numbers its own interchanges: another account's 997 names say whose.
    let prefix = match account {
        crate::domain::DEFAULT_ACCOUNT => String::new(),
        other => format!("{other}."),
    };
    Ok(FileRecord {
        account: account.to_owned(),
        file_name: format!(
            "997.{prefix}{}.{isa13:09}.997",
            files::safe_name(group.header.control_number.trim())
        ),
        content: String::from_utf8_lossy(&bytes).into_owned(),
        what: format!(
            "997 ({}) for inbound group {} of {}",
            ack.group_status,
            group.header.control_number.trim(),
            h.sender_id.trim()
        ),
    })
}

/// SHA-256 hex of a file's bytes.
fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Moves entry `name` from `from` into `to` (as `name`, or `name.N` when taken) and writes
/// `NAME.reason.txt` beside it (`files::reason_name`: shortened for a long name; the reason
/// names the file in full). The reason is escaped line by line and each line kept short,
/// so a reason file never carries more than an excerpt of what was read.
pub fn quarantine(from: &Dir, name: &OsStr, to: &Dir, reason: &str) -> std::io::Result<PathBuf> {
    quarantine_as(from, name, to, name, reason)
}

/// [`quarantine`] under another name in `to` (for a hidden entry that should be seen there).
pub fn quarantine_as(
    from: &Dir,
    name: &OsStr,
    to: &Dir,
    wanted: &OsStr,
    reason: &str,
) -> std::io::Result<PathBuf> {
    let moved = from.move_unique(name, to, wanted)?;
    let shown = text::escape(&name.to_string_lossy());
    let text = format!(
        "file: {shown}\nat: {}\nreason:\n{}\n",
        crate::clock::now_rfc3339(),
        reason
            .lines()
            .map(|l| format!("  {}", text::clip(&text::escape(l), MAX_REASON_LINE)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut written = false;
    for n in 0..100u32 {
        let mut base: OsString = moved.clone();
        if n > 0 {
            base.push(format!(".{n}"));
        }
        // Shortened (deterministically) when NAME.reason.txt would be too long a name.
        let reason_name = files::reason_name(&base);
        match to.write_new(&reason_name, text.as_bytes(), files::FILE_MODE) {
            Ok(()) => {
                written = true;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    if !written {
        tracing::error!(file = %shown, "No free name for the reason file; the reason is only in this log.");
    }
    to.sync()?;
    from.sync()?;
    Ok(to.path().join(moved))
}

/// The longest line a reason file carries (after escaping); longer ones are cut with `…`.
const MAX_REASON_LINE: usize = 400;

/// A transaction set's segments as arrays of strings, ID first (the programs' `$segments`).
pub fn segments_of(tx: &x12::Transaction<'_>) -> Vec<Vec<String>> {
    tx.segments
        .iter()
        .map(|s| {
            std::iter::once(s.id().to_string())
                .chain(s.elements().into_iter().map(|e| e.into_owned()))
                .collect()
        })
        .collect()
}
