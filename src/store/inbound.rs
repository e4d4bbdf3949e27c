//! What the inbox keeps between the chunks of one file and across files, in the `inbound`
//! tree: how far a file's sets are committed (`p \0 file key` → sets done), so that a file of
//! many sets is committed in chunks and a restart resumes after the last chunk, neither losing
//! nor repeating a set; and which original documents (an 855 with BAK01 `00`, an 856 with
//! BSN01 `00` and its BSN02) were already queued for a PO (`o \0 po \0 kind \0 id` → where
//! from), so the same original sent again in a new envelope makes no second call.

use serde::{Deserialize, Serialize};

use super::{json, parse, Store, StoreError};

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
