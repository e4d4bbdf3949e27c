//! What the workers tell the rest of the daemon: each finished piece of work is an [`Event`] on a
//! broadcast channel (metrics, tests and the demo listen instead of polling), with the closed
//! outcome enums it carries. A bottom layer: it imports only `domain`, so the workers and
//! `metrics` share it without importing `daemon` (or each other).

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::CallKind;

/// Something the daemon finished, published on [`Running::events`](crate::daemon::Running::events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A PO's 850 is in the outbox under `file`.
    Written850 { po: String, file: String },
    /// A prepared file (a 997) is in the outbox.
    WrittenFile { file: String },
    /// An inbox file was processed (archived, rejected or a duplicate).
    InboxFile { file: String, outcome: Outcome },
    /// One attempt at an Ingram API call ended.
    Delivery {
        po: String,
        /// The queued job (`edi-bridge retry JOB` names it).
        job: u64,
        kind: CallKind,
        outcome: Delivery,
        /// How long the call took.
        elapsed: Duration,
    },
    /// Shadow mode: a shadow 850 was compared with the VAN's 850 for the same PO.
    Shadow850 { po: String, identical: bool },
    /// Shadow mode (`[migration] send_calls = false`): a call was recorded instead of sent.
    CallRecorded { po: String, job: u64 },
    /// Archive retention (`[archive] keep_days`) removed `days` day directories holding `files`
    /// files (`bytes` in all); `problems` could not be removed. Only for a round that found
    /// something.
    ArchivePruned {
        days: usize,
        files: u64,
        bytes: u64,
        problems: usize,
    },
}

/// How processing one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and archived; `jobs` API calls queued.
    Archived { jobs: usize, archived: PathBuf },
    /// Moved to `error/` with a reason file.
    Rejected { reason: String, moved: PathBuf },
    /// A repeated interchange: moved to `archive/duplicates/YYYY/MM/DD/`.
    Duplicate { reason: String, moved: PathBuf },
    /// Still changing after it was taken: nothing committed; it stays in the processing area
    /// and is looked at again at the next scan.
    Changing { reason: String },
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered {
        status: u16,
    },
    Retry {
        after: Duration,
        reason: String,
    },
    Rejected {
        reason: String,
        /// The HTTP status that refused it (from the API or its token endpoint), if any.
        status: Option<u16>,
    },
    /// Nothing was sent: the mapping's body program failed on this job (dead-lettered).
    ProgramFailed {
        reason: String,
    },
}
