//! Processing of one claimed inbox file: parse it, route each transaction set by ST01, translate
//! 855s and 856s into API jobs, match the ERP's 997s to our 850s, build a 997 for each inbound
//! functional group, and commit all of it in one store transaction (then flush). Only after
//! that is the file moved, unchanged, to `archive/inbound/YYYY/MM/DD/`. A file that cannot be
//! processed goes to `error/` with `NAME.reason.txt` naming the problem and its position; a
//! repeated interchange goes to `archive/duplicates/` with its reason. Nothing here panics on
//! input.
//!
//! The file is opened through its directory handle without following a symlink, read through
//! that one handle (never more than `inbox.max_file_bytes`), and checked again before the
//! commit and before the move: a file that changed after it was taken is never archived with
//! bytes nobody processed. Reason files quote at most a short escaped excerpt of a file.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::events::Outcome;
use crate::files::{self, Dir, Meta, OpenError, Root};
use crate::text;

use crate::inbound::from_855::from_855;
use crate::inbound::from_856::{from_856, OrderView};
use crate::inbound::{describe, DocumentKind};
use crate::mapping::{Mapping, UnknownPo};
use crate::outbound::to_850::write_options;
use crate::store::records::FileRecord;
use crate::store::{keys, InboundBatch, InboundCommit, NewJob, Store};
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

/// What reading a file gave, before anything is committed.
struct Plan {
    batch: InboundBatch,
    problems: Vec<String>,
}

/// A file's bytes as read before it was claimed, with what `fstat` said of it then.
pub struct Read {
    pub meta: Meta,
    pub bytes: Vec<u8>,
}

/// Processes the claimed file `name` in the processing area completely. `read` is what the
/// watcher already read of it; used only when the claimed file is still that file unchanged
/// (same inode, size and mtime), otherwise the file is read again.
pub fn process(
    store: &Store,
    mapping: &Mapping,
    dirs: &Dirs,
    processing: &Dir,
    claimed: &OsStr,
    read: Option<Read>,
) -> anyhow::Result<Outcome> {
    let name = claimed.to_string_lossy().into_owned();
    let (mut file, taken) = match processing.open_regular(claimed) {
        Ok(f) => f,
        Err(OpenError::NotRegular(kind)) => {
            let reason = not_regular_reason(kind);
            let moved = quarantine(processing, claimed, &dirs.error.open()?, &reason)?;
            return Ok(Outcome::Rejected { reason, moved });
        }
        Err(OpenError::Io(e)) => return Err(e.into()),
    };
    let earlier =
        read.filter(|r| r.meta.same_content(&taken) && r.bytes.len() as u64 == taken.size);
    let bytes = match earlier {
        Some(r) => Some(r.bytes),
        None => files::read_limited(&mut file, dirs.max_file_bytes)?,
    };
    let Some(bytes) = bytes else {
        let reason = too_big_reason(taken.size.max(dirs.max_file_bytes + 1), dirs.max_file_bytes);
        let moved = quarantine(processing, claimed, &dirs.error.open()?, &reason)?;
        return Ok(Outcome::Rejected { reason, moved });
    };
    if let Some(reason) = changed(&taken, &files::meta_of(&file)?, bytes.len()) {
        return Ok(Outcome::Changing { reason });
    }
    let received_at = crate::clock::now_rfc3339();
    let plan = plan(store, mapping, &name, &bytes, &received_at)?;
    // Looked at once more right before anything is committed: a writer still at work gets its
    // file back untouched at the next scan.
    if let Some(reason) = changed(&taken, &files::meta_of(&file)?, bytes.len()) {
        return Ok(Outcome::Changing { reason });
    }
    if !plan.problems.is_empty() {
        // Still answer the ERP with a 997 that rejects the group, then quarantine the file.
        let mut batch = plan.batch;
        // The file's own key (name + content) makes answering it idempotent: processed again
        // after a crash or a failed move, it gets no second 997.
        batch.interchanges = vec![keys::file_key(&name, &content_hash(&bytes))];
        batch.jobs.clear();
        batch.shipped.clear();
        batch.erp_997.clear();
        batch.history.clear();
        if !batch.files.is_empty() {
            match store.commit_inbound(&batch)? {
                InboundCommit::Committed { .. } => store.flush_blocking()?,
                InboundCommit::AlreadyCommitted | InboundCommit::Duplicate { .. } => {}
            }
        }
        let reason = plan.problems.join("\n");
        let moved = quarantine(processing, claimed, &dirs.error.open()?, &reason)?;
        return Ok(Outcome::Rejected { reason, moved });
    }
    let jobs = plan.batch.jobs.len();
    match store.commit_inbound(&plan.batch)? {
        InboundCommit::Duplicate { previous_file } => {
            let reason = format!("duplicate interchange: already processed from {previous_file} (same ISA05/06/07/08/13); no API call made");
            let dup = dirs
                .archive
                .open()?
                .sub("duplicates", files::SHARED_DIR_MODE)?;
            let moved = quarantine(processing, claimed, &dup, &reason)?;
            Ok(Outcome::Duplicate { reason, moved })
        }
        InboundCommit::Committed { .. } | InboundCommit::AlreadyCommitted => {
            store.flush_blocking()?;
            if let Some(change) = changed(&taken, &files::meta_of(&file)?, bytes.len()) {
                // Committed already: what was read goes to Ingram; what came after it was never
                // read, so the file is not archived as if it had been.
                let reason = format!(
                    "{change}; the first {} bytes were processed ({jobs} API call(s) queued, 997s written), the bytes after byte {} were NOT processed: send them again in a new file (write it under a temporary name and rename it into the inbox when complete)",
                    bytes.len(),
                    bytes.len()
                );
                let moved = quarantine(processing, claimed, &dirs.error.open()?, &reason)?;
                return Ok(Outcome::Rejected { reason, moved });
            }
            let day = format!("inbound/{}", crate::clock::date_path(&received_at));
            let dest = dirs
                .archive
                .open()?
                .sub_path(&day, files::SHARED_DIR_MODE)?;
            let got = processing.move_unique(claimed, &dest, claimed)?;
            dest.sync()?;
            Ok(Outcome::Archived {
                jobs,
                archived: dest.path().join(got),
            })
        }
    }
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

fn plan(
    store: &Store,
    mapping: &Mapping,
    name: &str,
    bytes: &[u8],
    received_at: &str,
) -> anyhow::Result<Plan> {
    let doc = x12::read(bytes, &x12::ReadOptions::default());
    let mut problems: Vec<String> = doc
        .errors()
        .map(|d| {
            format!(
                "{}: {} ({})",
                d.code.as_str(),
                d.message,
                describe(&d.position)
            )
        })
        .collect();
    if doc.interchanges.is_empty() && doc.transactions().next().is_none() {
        problems.push("no X12 interchange found (no ISA segment, no transaction set)".into());
    }
    let pair = mapping.interchange.pair_key();
    let mut batch = InboundBatch {
        claimed_file: name.to_string(),
        received_at: received_at.to_string(),
        ..Default::default()
    };
    for ic in &doc.interchanges {
        let h = &ic.header;
        let isa13 = h
            .control_number
            .trim()
            .parse::<u64>()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| h.control_number.trim().to_string());
        batch.interchanges.push(keys::interchange_key([
            h.sender_qualifier.trim(),
            h.sender_id.trim(),
            h.receiver_qualifier.trim(),
            h.receiver_id.trim(),
            &isa13,
        ]));
        for group in &ic.groups {
            let group_diags: Vec<x12::Diagnostic> = doc
                .diagnostics
                .iter()
                .filter(|d| {
                    d.position.interchange == Some(ic.index)
                        && d.position.group == Some(group.index)
                })
                .cloned()
                .collect();
            if mapping.ack997.generate
                && !group.header.functional_id.trim().eq_ignore_ascii_case("FA")
            {
                match reply_997(store, mapping, &pair, ic, group, &group_diags) {
                    Ok(f) => batch.files.push(f),
                    Err(e) => problems.push(format!(
                        "could not build the 997 for group {}: {e}",
                        group.header.control_number
                    )),
                }
            }
            for tx in &group.transactions {
                let source = format!(
                    "{name} ISA13 {} GS06 {} ST02 {}",
                    h.control_number.trim(),
                    group.header.control_number.trim(),
                    tx.control_number.trim()
                );
                if let Err(p) = route(
                    store,
                    mapping,
                    &pair,
                    tx,
                    &group.header,
                    &source,
                    &mut batch,
                ) {
                    problems.push(p);
                }
            }
        }
    }
    Ok(Plan { batch, problems })
}

/// Routes one transaction set by ST01 and adds what it produces to the batch.
fn route(
    store: &Store,
    mapping: &Mapping,
    pair: &str,
    tx: &x12::Transaction<'_>,
    gs: &x12::GsHeader,
    source: &str,
    batch: &mut InboundBatch,
) -> Result<(), String> {
    let head = |id: &str| tx.segments.iter().find(|s| s.is(id)).map(|s| s.position());
    let st_pos = tx
        .segments
        .first()
        .map(|s| s.position())
        .unwrap_or_default();
    let errors = |diags: &[x12::Diagnostic]| -> Result<(), String> {
        match diags.iter().find(|d| d.severity == x12::Severity::Error) {
            Some(d) => Err(format!(
                "{}: {} ({})",
                d.code.as_str(),
                d.message,
                describe(&d.position)
            )),
            None => Ok(()),
        }
    };
    match DocumentKind::of(&tx.id) {
        DocumentKind::Ack855 => {
            let (ack, diags) = x12::Ack855::parse(tx);
            errors(&diags)?;
            let bak = head("BAK").unwrap_or(st_pos);
            let call = from_855(&ack, &bak, mapping, gs.date.trim()).map_err(|e| e.to_string())?;
            let unknown = store.order(&call.po).map_err(|e| e.to_string())?.is_none();
            if unknown && mapping.inbound.unknown_po == UnknownPo::Hold {
                return Err(format!("855 for purchase order {} which the bridge never received; held by inbound.unknown_po = \"hold\" ({})", call.po, describe(&bak)));
            }
            if unknown {
                tracing::warn!(po = %call.po, source = %source, "855 for a PO the bridge never received; sending it anyway (flagged).");
            }
            batch
                .history
                .push((call.po.clone(), format!("855 received: {source}")));
            batch.jobs.push(NewJob {
                po: call.po,
                kind: call.kind,
                path: call.path,
                body: call.body.to_string(),
                segments: segments_of(tx),
                source: source.to_string(),
                unknown_po: unknown,
            });
        }
        DocumentKind::Asn856 => {
            let (asn, diags) = x12::Asn856::parse(tx);
            errors(&diags)?;
            let bsn = head("BSN").unwrap_or(st_pos);
            let mut views = BTreeMap::new();
            for node in &asn.nodes {
                let Some(prf) = &node.prf else { continue };
                let po = prf.po_number.trim().to_string();
                if let Some(rec) = store.order(&po).map_err(|e| e.to_string())? {
                    let mut shipped = rec.inbound.shipped.clone();
                    // Earlier 856s in this same file count too.
                    for (p, lines) in &batch.shipped {
                        if *p == po {
                            for (l, q) in lines {
                                let slot = shipped.entry(l.clone()).or_default();
                                *slot = slot.saturating_add(*q);
                            }
                        }
                    }
                    views.insert(
                        po,
                        OrderView {
                            ordered: rec
                                .order
                                .lines
                                .iter()
                                .map(|l| (l.ingram_line_number.clone(), l.quantity))
                                .collect(),
                            line_by_vendor_part: rec
                                .order
                                .lines
                                .iter()
                                .filter_map(|l| {
                                    Some((
                                        l.vendor_part_number.clone()?,
                                        l.ingram_line_number.clone(),
                                    ))
                                })
                                .collect(),
                            shipped,
                        },
                    );
                }
            }
            let calls = from_856(&asn, &bsn, mapping, &views).map_err(|e| e.to_string())?;
            for c in calls {
                let unknown = !views.contains_key(&c.call.po);
                if unknown && mapping.inbound.unknown_po == UnknownPo::Hold {
                    return Err(format!("856 for purchase order {} which the bridge never received; held by inbound.unknown_po = \"hold\" ({})", c.call.po, describe(&bsn)));
                }
                if unknown {
                    tracing::warn!(po = %c.call.po, source = %source, "856 for a PO the bridge never received; sending it anyway (flagged).");
                }
                batch.history.push((
                    c.call.po.clone(),
                    format!(
                        "856 received (shipment {}): {source}",
                        asn.shipment_id.trim()
                    ),
                ));
                batch.shipped.push((c.call.po.clone(), c.shipped_now));
                batch.jobs.push(NewJob {
                    po: c.call.po,
                    kind: c.call.kind,
                    path: c.call.path,
                    body: c.call.body.to_string(),
                    segments: segments_of(tx),
                    source: source.to_string(),
                    unknown_po: unknown,
                });
            }
        }
        DocumentKind::Ack997 => {
            let (ack, diags) = x12::Ack997::parse(tx);
            errors(&diags)?;
            let Ok(gs06) = ack.group_control.trim().parse::<u32>() else {
                return Err(format!(
                    "997 ak102 '{}' is not a group control number ({})",
                    ack.group_control,
                    describe(&st_pos)
                ));
            };
            let set_status = ack
                .sets
                .first()
                .map(|s| s.status.as_str())
                .unwrap_or(ack.group_status.as_str());
            let outcome = match set_status.trim() {
                "A" => "accepted",
                "E" => "accepted_with_errors",
                _ => "rejected",
            };
            let detail: String = ack
                .sets
                .iter()
                .flat_map(|s| s.segment_errors.iter())
                .map(|e| {
                    format!(
                        "; {} at segment {} (code {})",
                        e.segment_id,
                        e.position,
                        e.code.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            if outcome == "rejected" {
                let po = store
                    .po_for_gs06(pair, gs06)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "unknown".into());
                tracing::error!(po = %po, gs06, detail = %detail, "The ERP rejected our 850.");
            }
            batch
                .erp_997
                .push((pair.to_string(), gs06, outcome.to_string(), detail));
        }
        DocumentKind::Unknown(id) => {
            return Err(format!(
                "transaction set {id} is not handled by edi-bridge (855, 856 and 997 are) ({})",
                describe(&st_pos)
            ));
        }
    }
    Ok(())
}

/// A 997 answering one inbound group, addressed back to its sender.
fn reply_997(
    store: &Store,
    mapping: &Mapping,
    pair: &str,
    ic: &x12::Interchange<'_>,
    group: &x12::Group<'_>,
    diags: &[x12::Diagnostic],
) -> anyhow::Result<FileRecord> {
    let opts = write_options(mapping);
    let ack = x12::Ack997::for_group(group, diags, opts.version);
    let (isa13, gs06, st02) = store.allocate_numbers(pair)?;
    let now = time::OffsetDateTime::now_utc();
    let f =
        |d: &[time::format_description::BorrowedFormatItem<'_>]| now.format(d).unwrap_or_default();
    let h = &ic.header;
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
        version: mapping.interchange.gs_version().to_string(),
    };
    let bytes = x12::write(
        &isa,
        &[x12::OutGroup {
            header: gs,
            transactions: vec![ack.to_transaction(&format!("{st02:04}"))],
        }],
        &opts,
    )?;
    Ok(FileRecord {
        file_name: format!(
            "997.{}.{isa13:09}.997",
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
/// `NAME.reason.txt` beside it. The reason is escaped line by line and each line kept short,
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
        let mut reason_name: OsString = moved.clone();
        if n > 0 {
            reason_name.push(format!(".{n}"));
        }
        reason_name.push(".reason.txt");
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
