//! Archive retention, `[archive] keep_days`: unset (the default), the archive is kept forever.
//! Set, the daemon's `archive retention` task removes each day directory of the dated trees
//! (`outbound/`, `inbound/`, `duplicates/`, `dismissed/`, each `YYYY/MM/DD/`) once the whole
//! day is older than `keep_days` (by the daemon's clock, in UTC like the directories' names),
//! then the month and year directories left empty. The newest two days of `outbound/` stay
//! whatever their age: the start-up continuity check and `store repair` read them for the
//! highest control numbers sent. Everything goes through [`crate::files`]: directory handles,
//! nothing followed through a symlink (a symlink inside a day is removed itself, its target
//! stays; one in place of a day, month or year directory is not a day and is left alone).

use std::time::Duration;

use time::{Date, Month, OffsetDateTime};

use crate::files::{Removed, Root};

/// The dated trees under the archive, each `TREE/YYYY/MM/DD/`.
pub const TREES: [&str; 4] = ["outbound", "inbound", "duplicates", "dismissed"];

/// Days of `outbound/` never removed, whatever their age (`continuity::Scope::Recent`).
const KEEP_NEWEST_OUTBOUND: usize = 2;

/// How deep below a day directory anything is removed (the daemon writes files only).
const MAX_DEPTH: usize = 4;

/// How often the task looks (and once soon after start).
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// One round's result.
#[derive(Debug, Default)]
pub struct PrunedDays {
    /// The day directories removed, `TREE/YYYY/MM/DD`, with what each held.
    pub days: Vec<(String, Removed)>,
    /// What could not be removed (the round goes on with the next day).
    pub problems: Vec<String>,
}

impl PrunedDays {
    /// Everything removed this round.
    pub fn total(&self) -> Removed {
        let mut all = Removed::default();
        for (_, r) in &self.days {
            all.add(*r);
        }
        all
    }
}

/// `YYYY/MM/DD` as a date; `None` for a name that is not one.
fn day_date(day: &str) -> Option<Date> {
    let mut parts = day.split('/').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()
}

/// The first day kept: days before it ended more than `keep_days` days before `now_ms`.
pub fn first_kept_day(now_ms: u64, keep_days: u64) -> Date {
    let now = OffsetDateTime::from_unix_timestamp(i64::try_from(now_ms / 1000).unwrap_or(0))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let days = i64::try_from(keep_days).unwrap_or(i64::MAX / 2);
    now.date()
        .checked_sub(time::Duration::days(days))
        .unwrap_or(Date::MIN)
}

/// One round over the archive: removes every day directory older than `keep_days` at
/// `now_ms` (blocking; the daemon runs it on a blocking thread).
pub fn prune(archive: &Root, now_ms: u64, keep_days: u64) -> std::io::Result<PrunedDays> {
    let root = archive.open()?;
    let first_kept = first_kept_day(now_ms, keep_days);
    let mut pruned = PrunedDays::default();
    for tree_name in TREES {
        let tree = match root.existing_sub_path(tree_name) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                pruned.problems.push(format!("{tree_name}: {e}"));
                continue;
            }
        };
        let days = match tree.days() {
            Ok(days) => days,
            Err(e) => {
                pruned.problems.push(format!("{tree_name}: {e}"));
                continue;
            }
        };
        let candidates = match tree_name {
            "outbound" => days.len().saturating_sub(KEEP_NEWEST_OUTBOUND),
            _ => days.len(),
        };
        for day in &days[..candidates] {
            if day_date(day).is_none_or(|d| d >= first_kept) {
                continue;
            }
            let (month_path, name) = day.rsplit_once('/').unwrap_or(("", day));
            let removed = tree
                .existing_sub_path(month_path)
                .and_then(|month| month.remove_tree(name, MAX_DEPTH));
            match removed {
                Ok(r) => pruned.days.push((format!("{tree_name}/{day}"), r)),
                Err(e) => pruned.problems.push(format!("{tree_name}/{day}: {e}")),
            }
        }
        remove_empty_parents(&tree, &pruned.days, tree_name);
    }
    Ok(pruned)
}

/// The month, then year, directories of the removed days that are now empty.
fn remove_empty_parents(tree: &crate::files::Dir, days: &[(String, Removed)], tree_name: &str) {
    let prefix = format!("{tree_name}/");
    let mut months: Vec<&str> = days
        .iter()
        .filter_map(|(d, _)| d.strip_prefix(&prefix)?.rsplit_once('/').map(|(m, _)| m))
        .collect();
    months.dedup();
    for month in months {
        let Some((year, m)) = month.split_once('/') else {
            continue;
        };
        // Not empty (a day still kept), or already gone: either way it stays as it is.
        if let Ok(y) = tree.existing_sub_path(year) {
            let _ = y.remove_dir(std::ffi::OsStr::new(m));
        }
        let _ = tree.remove_dir(std::ffi::OsStr::new(year));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-10T12:00:00Z.
    const NOW_MS: u64 = 1_773_144_000_000;

    fn mkday(root: &std::path::Path, tree: &str, day: &str, files: &[&str]) {
        let dir = root.join(tree).join(day);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"ISA*00*...~").unwrap();
        }
    }

    #[test]
    fn the_first_kept_day_is_keep_days_before_today_in_utc() {
        assert_eq!(
            first_kept_day(NOW_MS, 2),
            Date::from_calendar_date(2026, Month::March, 8).unwrap()
        );
        assert_eq!(day_date("2026/03/08"), Some(first_kept_day(NOW_MS, 2)));
        assert_eq!(day_date("2026/02/30"), None);
        assert_eq!(day_date("2026/13"), None);
    }

    #[test]
    fn old_days_go_new_days_stay_and_a_planted_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("archive");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(outside.join("secret-dir")).unwrap();
        std::fs::write(outside.join("secret.txt"), b"keep me").unwrap();
        std::fs::write(outside.join("secret-dir/inner.txt"), b"keep me").unwrap();
        for tree in TREES {
            mkday(&archive, tree, "2026/01/31", &["old-a", "old-b"]);
            mkday(&archive, tree, "2026/03/07", &["old-c"]);
            mkday(&archive, tree, "2026/03/08", &["new-a"]);
            mkday(&archive, tree, "2026/03/10", &["today"]);
        }
        // Planted: a symlink to a file and one to a directory inside an old day, a symlink in
        // place of an old year directory, and a hidden file (removed with its day).
        let old_day = archive.join("inbound/2026/01/31");
        std::os::unix::fs::symlink(outside.join("secret.txt"), old_day.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret-dir"), old_day.join("dirlink")).unwrap();
        std::fs::write(old_day.join(".hidden"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, archive.join("inbound/2020")).unwrap();
        mkday(&outside, "", "2020/01/01", &["not-ours"]);

        let root = Root::existing(&archive).unwrap();
        let pruned = prune(&root, NOW_MS, 2).unwrap();
        assert!(pruned.problems.is_empty(), "{:?}", pruned.problems);
        let mut removed: Vec<&str> = pruned.days.iter().map(|(d, _)| d.as_str()).collect();
        removed.sort();
        let mut expected = Vec::new();
        for tree in TREES {
            expected.push(format!("{tree}/2026/01/31"));
            expected.push(format!("{tree}/2026/03/07"));
        }
        expected.sort();
        assert_eq!(removed, expected);
        let total = pruned.total();
        assert_eq!((total.files, total.other), (4 * 3 + 1, 2), "{total:?}");
        for tree in TREES {
            assert!(
                !archive.join(tree).join("2026/01").exists(),
                "{tree}: empty month removed"
            );
            assert!(!archive.join(tree).join("2026/03/07").exists());
            assert!(archive.join(tree).join("2026/03/08/new-a").exists());
            assert!(archive.join(tree).join("2026/03/10/today").exists());
        }
        // Nothing reached through a symlink: the targets are all still there.
        assert_eq!(
            std::fs::read(outside.join("secret.txt")).unwrap(),
            b"keep me"
        );
        assert!(outside.join("secret-dir/inner.txt").exists());
        assert!(outside.join("2020/01/01/not-ours").exists());
        assert!(archive
            .join("inbound/2020")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        // A second round finds nothing more.
        assert!(prune(&root, NOW_MS, 2).unwrap().days.is_empty());
    }

    #[test]
    fn the_newest_two_outbound_days_stay_whatever_their_age() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path();
        for day in ["2025/12/01", "2025/12/24", "2025/12/25"] {
            mkday(archive, "outbound", day, &["x.850"]);
            mkday(archive, "inbound", day, &["x.855"]);
        }
        let pruned = prune(&Root::existing(archive).unwrap(), NOW_MS, 30).unwrap();
        let mut removed: Vec<&str> = pruned.days.iter().map(|(d, _)| d.as_str()).collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                "inbound/2025/12/01",
                "inbound/2025/12/24",
                "inbound/2025/12/25",
                "outbound/2025/12/01"
            ]
        );
        assert!(archive.join("outbound/2025/12/24/x.850").exists());
        assert!(archive.join("outbound/2025/12/25/x.850").exists());
    }

    #[test]
    fn an_archive_without_trees_prunes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let pruned = prune(&Root::existing(tmp.path()).unwrap(), NOW_MS, 2).unwrap();
        assert!(pruned.days.is_empty() && pruned.problems.is_empty());
    }
}
