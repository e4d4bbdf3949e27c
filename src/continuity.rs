//! Has the store gone backwards? The 850s in the outbox and the archive are what the ERP has
//! seen, whatever happened to the store since (a torn disk, a restore from an older backup):
//! their ISA13/GS06/ST02 must be below the store's counters, and their POs known as written.
//! [`check`] compares the newest of them at every start (the daemon refuses to start on a
//! gap, naming it and the repair command); [`repair`] reads all of them and adopts what they
//! prove: counters raised past every number used, a PO the store lost remembered as written.
//! Files are read only through `files` handles, never following a symlink; 997s are not
//! archived, and their numbers come from the same counters as the 850s they follow.

use std::ffi::OsStr;
use std::path::Path;

use crate::files::{self, Dir};
use crate::store::continuity::{Adopted, Counters, Known};
use crate::store::records::Envelope850;
use crate::store::{Store, StoreError};

/// The largest file read as evidence (our 850s are a few KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// One 850 interchange found in the outbox or the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Where it was found, for messages.
    pub file: String,
    pub name: String,
    /// `ISA05:ISA06/ISA07:ISA08`, as the store keys its counters.
    pub pair: String,
    pub isa13: u32,
    pub gs06: u32,
    pub st02: u32,
    /// BEG03, keyed in its account by [`in_accounts`] (as the store keys POs).
    pub po: Option<String>,
    /// ISA09/ISA10 as an RFC 3339 instant.
    pub created_at: String,
}

/// How much of the archive to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The outbox and the newest two days of the archive: what a start-up check needs to see
    /// the highest numbers handed out.
    Recent,
    /// The outbox and the whole archive (`store repair`).
    Everything,
}

/// Each 850's PO keyed in the account whose interchange pair wrote it (`pairs`: pair key →
/// account id); an 850 of a pair no account has keeps its bare number (the account default).
pub fn in_accounts(written: &mut [Written], pairs: &[(String, String)]) {
    for w in written {
        let account = pairs.iter().find(|(p, _)| *p == w.pair).map(|(_, a)| a);
        if let (Some(po), Some(account)) = (&w.po, account) {
            w.po = Some(crate::domain::po_key(account, po));
        }
    }
}

/// The 850s in each outbox and `archive/outbound/YYYY/MM/DD/`, oldest day first.
pub fn gather(
    outboxes: &[std::path::PathBuf],
    archive: &Path,
    scope: Scope,
) -> std::io::Result<Vec<Written>> {
    let mut out = Vec::new();
    for outbox in outboxes {
        if let Ok(dir) = Dir::open_existing(outbox) {
            read_dir_850s(&dir, &mut out)?;
        }
    }
    let Ok(root) = Dir::open_existing(archive) else {
        return Ok(out);
    };
    let Ok(outbound) = root.existing_sub_path("outbound") else {
        return Ok(out);
    };
    let days = outbound.days()?;
    let skip = match scope {
        Scope::Recent => days.len().saturating_sub(2),
        Scope::Everything => 0,
    };
    for day in &days[skip..] {
        read_dir_850s(&outbound.existing_sub_path(day)?, &mut out)?;
    }
    Ok(out)
}

/// Every regular, non-hidden file of `dir` that holds an 850 interchange.
fn read_dir_850s(dir: &Dir, out: &mut Vec<Written>) -> std::io::Result<()> {
    for name in dir.names()? {
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let Ok((mut file, meta)) = dir.open_regular(&name) else {
            continue;
        };
        if meta.size > MAX_FILE {
            continue;
        }
        let Some(bytes) = files::read_limited(&mut file, MAX_FILE)? else {
            continue;
        };
        out.extend(parse_850s(&bytes, &dir.display(&name), &name));
    }
    Ok(())
}

/// The 850 interchanges in one file's bytes.
fn parse_850s(bytes: &[u8], file: &str, name: &OsStr) -> Vec<Written> {
    let doc = crate::x12::read(bytes, &Default::default());
    let mut out = Vec::new();
    for ic in &doc.interchanges {
        if ic.synthetic {
            continue;
        }
        let h = &ic.header;
        let Ok(isa13) = h.control_number.trim().parse::<u32>() else {
            continue;
        };
        for g in &ic.groups {
            for t in g.transactions.iter().filter(|t| t.id == "850") {
                let po = t
                    .body()
                    .iter()
                    .find(|s| s.id() == "BEG")
                    .and_then(|s| s.element(3).map(|e| e.trim().to_string()));
                out.push(Written {
                    file: file.to_string(),
                    name: name.to_string_lossy().into_owned(),
                    pair: format!(
                        "{}:{}/{}:{}",
                        h.sender_qualifier.trim(),
                        h.sender_id.trim(),
                        h.receiver_qualifier.trim(),
                        h.receiver_id.trim()
                    ),
                    isa13,
                    gs06: g.header.control_number.trim().parse().unwrap_or(0),
                    st02: t.control_number.trim().parse().unwrap_or(0),
                    po,
                    created_at: isa_instant(&h.date, &h.time),
                });
            }
        }
    }
    out
}

/// ISA09 (YYMMDD) and ISA10 (HHMM) as RFC 3339, 20YY.
fn isa_instant(date: &str, time: &str) -> String {
    let (d, t) = (date.trim(), time.trim());
    if d.len() == 6 && t.len() == 4 && d.bytes().chain(t.bytes()).all(|b| b.is_ascii_digit()) {
        format!(
            "20{}-{}-{}T{}:{}:00Z",
            &d[..2],
            &d[2..4],
            &d[4..],
            &t[..2],
            &t[2..]
        )
    } else {
        "1970-01-01T00:00:00Z".into()
    }
}

/// `seen` was handed out after `counter` (control numbers wrap from 999,999,999 to 1).
fn ahead(seen: u64, counter: u64) -> bool {
    seen > counter && seen - counter < u64::from(crate::store::CONTROL_MAX) / 2
}

/// The highest ISA13, GS06 and ST02 seen per interchange pair.
fn highest(written: &[Written]) -> std::collections::BTreeMap<&str, Counters> {
    let mut pairs: std::collections::BTreeMap<&str, Counters> = Default::default();
    for w in written {
        let c = pairs.entry(&w.pair).or_default();
        c.isa13 = c.isa13.max(w.isa13.into());
        c.gs06 = c.gs06.max(w.gs06.into());
        c.st02 = c.st02.max(w.st02.into());
    }
    pairs
}

/// What the store lacks, one line per finding (empty: the store is not behind).
pub fn check(store: &Store, written: &[Written]) -> Result<Vec<String>, StoreError> {
    let mut gaps = Vec::new();
    for (pair, seen) in &highest(written) {
        let have = store.counters(pair)?;
        for (what, s, h) in [
            ("ISA13", seen.isa13, have.isa13),
            ("GS06", seen.gs06, have.gs06),
            ("ST02", seen.st02, have.st02),
        ] {
            if ahead(s, h) {
                gaps.push(format!(
                    "{what} {s} was already sent for {pair}, but the store's last is {h}: it would be handed out again"
                ));
            }
        }
    }
    for w in written {
        let Some(po) = &w.po else { continue };
        match store.known_850(po)? {
            Known::Written { .. } | Known::Remembered => {}
            Known::Pending => gaps.push(format!(
                "PO {} is in {} but the store has its 850 still to write: it would be written again",
                crate::text::escape(po),
                w.file
            )),
            Known::Unknown => gaps.push(format!(
                "PO {} is in {} but the store does not know it: a redelivery would be written again",
                crate::text::escape(po),
                w.file
            )),
        }
    }
    Ok(gaps)
}

/// What [`repair`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub files_read: usize,
    /// Pairs whose counters were raised.
    pub counters_raised: Vec<String>,
    /// POs the store had as still to write, now written.
    pub marked_written: Vec<String>,
    /// POs the store had lost, now remembered.
    pub remembered: Vec<String>,
}

/// Adopts everything `written` proves: counters past every number, POs known as written.
pub fn repair(store: &Store, written: &[Written], at: &str) -> Result<Repaired, StoreError> {
    let mut out = Repaired {
        files_read: written.len(),
        ..Default::default()
    };
    for (pair, seen) in highest(written) {
        let have = store.counters(pair)?;
        if ahead(seen.isa13, have.isa13)
            || ahead(seen.gs06, have.gs06)
            || ahead(seen.st02, have.st02)
        {
            store.raise_counters(pair, seen)?;
            out.counters_raised.push(pair.to_string());
        }
    }
    for w in written {
        let Some(po) = &w.po else { continue };
        let envelope = Envelope850 {
            isa13: w.isa13,
            gs06: w.gs06,
            st02: w.st02,
            created_at: w.created_at.clone(),
            file_name: w.name.clone(),
        };
        match store.adopt_850(po, &w.pair, &envelope, at)? {
            Adopted::Nothing => {}
            Adopted::MarkedWritten => out.marked_written.push(po.clone()),
            Adopted::Remembered => out.remembered.push(po.clone()),
        }
    }
    store.flush_blocking()?;
    Ok(out)
}

impl std::fmt::Display for Repaired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} 850(s) read from the outbox and the archive",
            self.files_read
        )?;
        if self.counters_raised.is_empty() {
            writeln!(f, "control numbers: already past every number sent")?;
        }
        for p in &self.counters_raised {
            writeln!(f, "control numbers for {p}: raised past the highest sent")?;
        }
        for (what, list) in [
            (
                "marked written (the store had them still to write)",
                &self.marked_written,
            ),
            (
                "remembered as written (the store had lost them; a redelivery is held for review)",
                &self.remembered,
            ),
        ] {
            if !list.is_empty() {
                let shown: Vec<String> = list
                    .iter()
                    .take(20)
                    .map(|p| crate::text::escape(p))
                    .collect();
                let more = list.len().saturating_sub(20);
                writeln!(
                    f,
                    "{} PO(s) {what}: {}{}",
                    list.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        Ok(())
    }
}
