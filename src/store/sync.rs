//! What sled 0.34's flush leaves undone, done by the committer after each one. On Linux
//! `Db::flush` writes the log with `sync_file_range`, which neither commits the file's metadata
//! (its size, its newly allocated blocks) nor flushes the drive's write cache (sled issue
//! #1452), and a value too large for a log segment goes to a file under `blobs/` that sled never
//! syncs at all. A killed process loses nothing either way (the page cache outlives it); a power
//! cut or a kernel crash would. So after every flush the log file gets an `fdatasync`, and each
//! blob file not yet synced at its current size an `fsync`, followed by the blob directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The committer's handles on sled's files.
pub(super) struct Syncer {
    log: File,
    blobs: PathBuf,
    /// Blob files synced so far, by name, at the size they had then. A blob seen while sled is
    /// still writing it has a smaller size and is synced again at the next flush; a flush only
    /// returns once the blobs its log records point to are complete.
    synced: HashMap<OsString, u64>,
}

impl Syncer {
    /// Opens sled's log file in `sled_dir` and makes the files sled created there reachable
    /// after a power cut (sled does not sync directories).
    pub(super) fn open(sled_dir: &Path) -> io::Result<Syncer> {
        let log = File::open(sled_dir.join("db"))?;
        let blobs = sled_dir.join("blobs");
        for dir in [Some(sled_dir), sled_dir.parent(), Some(blobs.as_path())]
            .into_iter()
            .flatten()
        {
            File::open(dir)?.sync_all()?;
        }
        Ok(Syncer {
            log,
            blobs,
            synced: HashMap::new(),
        })
    }

    /// Makes what the flush just wrote durable; returns how many blob files it had to sync.
    pub(super) fn after_flush(&mut self) -> io::Result<usize> {
        self.log.sync_data()?;
        let mut present = HashMap::with_capacity(self.synced.len());
        let mut newly = 0;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            // sled removes blobs whose segments it has cleaned: gone is fine.
            let len = match entry.metadata() {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if self.synced.get(&name) != Some(&len) {
                match File::open(entry.path()).and_then(|f| f.sync_all()) {
                    Ok(()) => newly += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            present.insert(name, len);
        }
        if newly > 0 {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced = present;
        Ok(newly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a real sled: a value over its blob threshold (a quarter of a 512 KiB segment)
    /// lands in `blobs/`, and the syncer finds it once.
    #[test]
    fn blobs_written_by_a_flush_are_synced_once() {
        let dir = tempfile::tempdir().unwrap();
        let sled_dir = dir.path().join("db");
        let db = sled::Config::new()
            .path(&sled_dir)
            .flush_every_ms(None)
            .open()
            .unwrap();
        let mut syncer = Syncer::open(&sled_dir).unwrap();
        db.insert("small", vec![b'x'; 100]).unwrap();
        db.flush().unwrap();
        assert_eq!(syncer.after_flush().unwrap(), 0);
        db.insert("big", vec![b'y'; 300 * 1024]).unwrap();
        db.flush().unwrap();
        assert_eq!(syncer.after_flush().unwrap(), 1);
        assert_eq!(syncer.after_flush().unwrap(), 0);
        db.insert("bigger", vec![b'z'; 600 * 1024]).unwrap();
        db.flush().unwrap();
        assert_eq!(syncer.after_flush().unwrap(), 1);
    }
}
