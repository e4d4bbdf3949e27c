//! Consistent copies of the store (`edi-bridge store backup DIR`) and putting one back
//! (`store restore DIR`). A backup is a fresh sled database in `DIR/db` holding every tree as
//! it stood at one instant: the copy holds the write gate alone, so no transaction is half in
//! it (reads and the webhook's answers wait for the copy; nothing is lost). A restore, with
//! no daemon running, moves the current database aside (never deletes it) and copies the
//! backup in; the caller then repairs it from the archive (the top-level `continuity` module), because a
//! backup is older than what was written since.

use std::path::{Path, PathBuf};

use super::{Store, StoreError};

/// The database directory inside a backup (and inside the state directory).
const DB_DIR: &str = "db";

/// What a backup or a restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub trees: usize,
    pub entries: u64,
    /// Where the copy went (backup), or where the replaced database was moved (restore).
    pub path: PathBuf,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Sled(sled::Error::Io(e))
}

/// Copies every tree of `from` into `to` (an empty database), then flushes `to`.
fn copy_trees(from: &sled::Db, to: &sled::Db) -> Result<(usize, u64), StoreError> {
    let mut trees = 0;
    let mut entries = 0u64;
    for name in from.tree_names() {
        let src = from.open_tree(&name)?;
        let dst = to.open_tree(&name)?;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for kv in src.iter() {
            let (k, v) = kv?;
            batch.insert(k, v);
            n += 1;
            if n % 10_000 == 0 {
                dst.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        dst.apply_batch(batch)?;
        trees += 1;
        entries += n;
    }
    to.flush()?;
    Ok((trees, entries))
}

/// A new, empty database at `dir/db`; refuses one that exists (a backup is never
/// overwritten).
fn fresh_db(dir: &Path) -> Result<sled::Db, StoreError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let db_dir = dir.join(DB_DIR);
    if db_dir.exists() {
        return Err(StoreError::Corrupt {
            key: db_dir.display().to_string(),
            message: "already exists; a backup is never overwritten: choose a new directory".into(),
        });
    }
    Ok(sled::Config::new()
        .path(&db_dir)
        .flush_every_ms(None)
        .open()?)
}

/// Makes what was written under `dir` durable: every file fsynced, then each directory.
fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            std::fs::File::open(entry.path())
                .and_then(|f| f.sync_all())
                .map_err(io)?;
        }
    }
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io)
}

impl Store {
    /// Writes a consistent copy of the whole store to `dir/db` (a new directory), while the
    /// store stays open: writes wait for the copy.
    pub fn backup_to(&self, dir: &Path) -> Result<Copied, StoreError> {
        let db = fresh_db(dir)?;
        let (trees, entries) = {
            let _alone = self.shared.gate.write().unwrap_or_else(|e| e.into_inner());
            let i = self.inner()?;
            copy_trees(&i.db, &db)?
        };
        drop(db);
        sync_tree(&dir.join(DB_DIR))?;
        Ok(Copied {
            trees,
            entries,
            path: dir.join(DB_DIR),
        })
    }

    /// Puts the backup in `backup/db` in place of the store in `state/db`; no process may
    /// have the store open. The database it replaces is moved to `state/db.replaced-STAMP`.
    pub fn restore_from(state: &Path, backup: &Path, stamp: &str) -> Result<Copied, StoreError> {
        let src_dir = backup.join(DB_DIR);
        if !src_dir.join("conf").is_file() {
            return Err(StoreError::Corrupt {
                key: src_dir.display().to_string(),
                message:
                    "is not a backup made by `edi-bridge store backup` (no sled database there)"
                        .into(),
            });
        }
        let src = sled::Config::new()
            .path(&src_dir)
            .flush_every_ms(None)
            .open()?;
        let current = state.join(DB_DIR);
        let aside = state.join(format!("{DB_DIR}.replaced-{stamp}"));
        if current.exists() {
            // Locked while another process has it open: then nothing is moved.
            drop(
                sled::Config::new()
                    .path(&current)
                    .flush_every_ms(None)
                    .open()?,
            );
            std::fs::rename(&current, &aside).map_err(io)?;
        }
        let dst = fresh_db(state)?;
        let (trees, entries) = copy_trees(&src, &dst)?;
        drop(dst);
        sync_tree(&current)?;
        std::fs::File::open(state)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        Ok(Copied {
            trees,
            entries,
            path: aside,
        })
    }
}
