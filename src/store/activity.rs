//! The console's activity log: what happened (850s written, inbox files, Ingram's answers) and
//! every operator action (with its time and client address), kept in the store so the home
//! page's recent activity survives a restart. Bounded: only the last [`MAX_ENTRIES`] are kept,
//! older ones are removed as new ones come. Also the last inbound file, for the health line.
//!
//! Two trees, written with plain inserts (no transaction, like `store::refused`): `activity`
//! (big-endian sequence number, one more than the newest entry's → entry) and `activity_meta` (fixed keys
//! → small records). An entry is durable after the next [`Store::flush`]; losing the last few
//! lines to a crash costs nothing but those lines.

use serde::{Deserialize, Serialize};

use super::{json, parse, Store, StoreError};

const ACTIVITY: &str = "activity";
const META: &str = "activity_meta";
const LAST_INBOUND: &[u8] = b"last_inbound";

/// Entries kept; older ones are removed as new ones are written.
pub const MAX_ENTRIES: u64 = 1000;
/// The longest text kept per entry (texts quote file names and Ingram's messages).
const MAX_TEXT: usize = 500;

/// One line of activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// RFC 3339 UTC.
    pub at: String,
    /// `ok`, `warn` or `error`.
    pub level: String,
    pub text: String,
    /// The PO it is about.
    #[serde(default)]
    pub po: Option<String>,
    /// For an operator's action: the client address it came from.
    #[serde(default)]
    pub client: Option<String>,
}

/// The last file the ERP put in the inbox that was processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastInbound {
    pub file: String,
    pub at: String,
    /// `archived`, `rejected` or `duplicate`.
    pub outcome: String,
}

/// An entry's sequence number from its key.
fn seq(key: &[u8]) -> u64 {
    key.try_into().map_or(0, u64::from_be_bytes)
}

impl Store {
    fn activity_trees(&self) -> Result<(sled::Tree, sled::Tree), StoreError> {
        let inner = self.inner()?;
        Ok((inner.db.open_tree(ACTIVITY)?, inner.db.open_tree(META)?))
    }

    /// Appends entries (oldest first), then drops what is beyond [`MAX_ENTRIES`]. Durable
    /// after the next flush.
    pub fn log_activity(&self, entries: &[ActivityEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (tree, _) = self.activity_trees()?;
        let mut last = 0;
        for e in entries {
            let mut e = e.clone();
            e.text = crate::text::clip(&e.text, MAX_TEXT);
            let value = json(&e);
            // The next number after the newest entry; a writer on another thread that took it
            // first makes this one take the one after.
            loop {
                let next = match tree.last()? {
                    Some((k, _)) => seq(&k).saturating_add(1),
                    None => 1,
                };
                let put = tree.compare_and_swap(
                    next.to_be_bytes(),
                    None as Option<&[u8]>,
                    Some(value.as_slice()),
                )?;
                if put.is_ok() {
                    last = next;
                    break;
                }
            }
        }
        // Numbers are consecutive: everything at or below `last - MAX_ENTRIES` is beyond the bound.
        if let Some(cut) = last.checked_sub(MAX_ENTRIES) {
            for old in tree.range(..=cut.to_be_bytes()).keys() {
                tree.remove(old?)?;
            }
        }
        Ok(())
    }

    /// The newest `n` entries, newest first.
    pub fn recent_activity(&self, n: usize) -> Result<Vec<ActivityEntry>, StoreError> {
        let (tree, _) = self.activity_trees()?;
        tree.iter()
            .rev()
            .take(n)
            .map(|r| {
                let (k, v) = r?;
                parse(&k, &v)
            })
            .collect()
    }

    /// Records the last inbox file processed (durable after the next flush).
    pub fn set_last_inbound(&self, last: &LastInbound) -> Result<(), StoreError> {
        let (_, meta) = self.activity_trees()?;
        meta.insert(LAST_INBOUND, json(last))?;
        Ok(())
    }

    pub fn last_inbound(&self) -> Result<Option<LastInbound>, StoreError> {
        let (_, meta) = self.activity_trees()?;
        meta.get(LAST_INBOUND)?
            .map(|v| parse(LAST_INBOUND, &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> ActivityEntry {
        ActivityEntry {
            at: format!("t{i}"),
            level: "ok".into(),
            text: format!("line {i}"),
            po: None,
            client: None,
        }
    }

    #[test]
    fn the_log_keeps_the_newest_entries_across_a_reopen() {
        let t = tempfile::tempdir().unwrap();
        {
            let store = Store::open(t.path()).unwrap();
            let batch: Vec<_> = (0..MAX_ENTRIES + 50).map(entry).collect();
            store.log_activity(&batch).unwrap();
            store
                .set_last_inbound(&LastInbound {
                    file: "a.855".into(),
                    at: "t".into(),
                    outcome: "archived".into(),
                })
                .unwrap();
            store.flush_blocking().unwrap();
            let tree = store.activity_trees().unwrap().0;
            assert_eq!(tree.len() as u64, MAX_ENTRIES, "bounded");
        }
        let store = Store::open(t.path()).unwrap();
        let recent = store.recent_activity(3).unwrap();
        assert_eq!(
            recent.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            [
                format!("line {}", MAX_ENTRIES + 49),
                format!("line {}", MAX_ENTRIES + 48),
                format!("line {}", MAX_ENTRIES + 47)
            ]
        );
        store.log_activity(&[entry(9999)]).unwrap();
        assert_eq!(store.recent_activity(1).unwrap()[0].text, "line 9999");
        assert_eq!(store.last_inbound().unwrap().unwrap().file, "a.855");
    }
}
