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

use crate::inbound::DocumentKind;
use crate::ingram::from_855::from_855;
use crate::ingram::from_856::{from_856, OrderView};
use crate::mapping::{Mapping, UnknownPo};
use crate::outbound::to_850::write_options;
use crate::store::records::{ErpAck, FileRecord, Outbound850};
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

fn plan(
    store: &Store,
    mapping: &Mapping,
    name: &str,
    bytes: &[u8],
    received_at: &str,
) -> anyhow::Result<Plan> {
    let doc = x12::read(bytes, &read_options(mapping));
    let mut problems: Vec<String> = doc
        .errors()
        .map(|d| {
            format!(
                "{}: {} ({})",
                d.code.as_str(),
                d.message,
                d.position.describe()
            )
        })
        .collect();
    if doc.interchanges.is_empty() && doc.transactions().next().is_none() {
        problems.push("no X12 interchange found (no ISA segment, no transaction set)".into());
    }
    // Tolerated quirks (a wrong count, an inferred delimiter) are processed, and said so.
    for d in doc.diagnostics.iter().filter(|d| !d.is_error()).take(10) {
        tracing::warn!(file = %text::escape(name), code = d.code.as_str(), position = %d.position.describe(), message = %text::escape(&d.message), "Inbox file read with a warning.");
    }
    let pair = mapping.interchange.pair_key();
    let mut batch = InboundBatch {
        claimed_file: name.to_string(),
        received_at: received_at.to_string(),
        ..Default::default()
    };
    for ic in &doc.interchanges {
        let h = &ic.header;
        batch.interchanges.push(if ic.synthetic {
            // Bare sets have no ISA to key them: the file itself (name and content) is the key,
            // which keeps processing it again after a crash from queueing its calls twice. It
            // differs from the key a rejected file's 997 is recorded under, so a rejected file
            // sent again unchanged (say, once its PO has arrived) is processed, not skipped.
            keys::file_key(name, &format!("bare:{}", content_hash(bytes)))
        } else {
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
        });
        for ta1 in &ic.ta1 {
            record_ta1(store, &pair, ta1, name, &mut batch);
        }
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
            // No 997 for a group the reader invented (bare sets): no envelope to answer.
            if mapping.ack997.generate
                && !ic.synthetic
                && !group.synthetic
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
                let source = if ic.synthetic {
                    format!("{name} (bare set) ST02 {}", tx.control_number.trim())
                } else {
                    format!(
                        "{name} ISA13 {} GS06 {} ST02 {}",
                        h.control_number.trim(),
                        group.header.control_number.trim(),
                        tx.control_number.trim()
                    )
                };
                let ctx = Route {
                    store,
                    mapping,
                    pair: &pair,
                    gs: &group.header,
                    source: &source,
                };
                match route(&ctx, tx, &mut batch) {
                    Ok(Routed::Jobs(n)) => {
                        tracing::debug!(source = %source, jobs = n, "Transaction set routed.")
                    }
                    Ok(Routed::ErpAck(a)) => {
                        tracing::debug!(source = %source, outcome = %a, "997 from the ERP recorded.")
                    }
                    Err(refusal) => problems.push(refusal.to_string()),
                }
            }
        }
    }
    Ok(Plan { batch, problems })
}

/// Records a TA1 from the ERP against the 850 interchange it names (TA101 = the ISA13 we
/// wrote), as the ERP's answer to that PO's 850. A rejection is logged as an error.
fn record_ta1(store: &Store, pair: &str, ta1: &x12::Ta1, name: &str, batch: &mut InboundBatch) {
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
        .and_then(|isa13| po_for_isa13(store, isa13))
    else {
        tracing::warn!(file = %text::escape(name), isa13 = %text::escape(&ta1.control_number), ack = %text::escape(&ta1.ack_code), note = %text::escape(note), "TA1 from the ERP for an interchange the bridge did not write; nothing recorded.");
        return;
    };
    if outcome.is_rejection() {
        tracing::error!(po = %po, isa13 = %text::escape(&ta1.control_number), note = %text::escape(note), "The ERP rejected our 850 interchange (TA1).");
    }
    batch.erp_997.push((
        pair.to_string(),
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
fn po_for_isa13(store: &Store, isa13: u32) -> Option<(String, u32)> {
    store
        .orders()
        .filter_map(Result::ok)
        .find_map(|o| match o.outbound {
            Outbound850::Allocated { envelope } | Outbound850::Written { envelope, .. }
                if envelope.isa13 == isa13 =>
            {
                Some((o.po_number, envelope.gs06))
            }
            _ => None,
        })
}

/// What routing needs besides the transaction set: where it came from and where it goes.
struct Route<'a> {
    store: &'a Store,
    mapping: &'a Mapping,
    /// The outbound pair key (control-number counters, GS06 index).
    pair: &'a str,
    gs: &'a x12::GsHeader,
    /// File and control numbers, for history and job sources.
    source: &'a str,
}

/// What routing one transaction set added to the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    /// This many API calls queued (855, 856).
    Jobs(usize),
    /// The ERP's 997 for one of our 850s recorded.
    ErpAck(ErpAck),
}

/// Why a transaction set is not processed; the file then goes to `error/` with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    /// The typed reader found an error (code, message, position).
    #[error("{0}")]
    Invalid(String),
    /// The translator could not build the API call.
    #[error("{0}")]
    Untranslatable(String),
    /// A PO the bridge never received, held by `inbound.unknown_po = "hold"`.
    #[error("{kind} for purchase order {po} which the bridge never received; held by inbound.unknown_po = \"hold\" ({at})")]
    UnknownPoHeld {
        kind: &'static str,
        po: String,
        at: String,
    },
    /// A 997 whose AK102 is not a group control number.
    #[error("997 ak102 '{ak102}' is not a group control number ({at})")]
    BadAk102 { ak102: String, at: String },
    /// ST01 is not one the bridge handles.
    #[error("transaction set {id} is not handled by edi-bridge (855, 856 and 997 are) ({at})")]
    Unsupported { id: String, at: String },
    /// The store could not be read.
    #[error("{0}")]
    Store(String),
}

/// The first error among a typed reader's diagnostics, as a refusal.
fn first_error(diags: &[x12::Diagnostic]) -> Result<(), Refusal> {
    match diags.iter().find(|d| d.is_error()) {
        Some(d) => Err(Refusal::Invalid(format!(
            "{}: {} ({})",
            d.code.as_str(),
            d.message,
            d.position.describe()
        ))),
        None => Ok(()),
    }
}

/// Routes one transaction set by ST01 and adds what it produces to the batch.
fn route(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    batch: &mut InboundBatch,
) -> Result<Routed, Refusal> {
    let st_pos = tx
        .segments
        .first()
        .map(|s| s.position())
        .unwrap_or_default();
    let head = |id: &str| {
        tx.segments
            .iter()
            .find(|s| s.is(id))
            .map(|s| s.position())
            .unwrap_or_else(|| st_pos.clone())
    };
    match DocumentKind::of(&tx.id) {
        DocumentKind::Ack855 => route_855(ctx, tx, &head("BAK"), batch),
        DocumentKind::Asn856 => route_856(ctx, tx, &head("BSN"), batch),
        DocumentKind::Ack997 => route_997(ctx, tx, &st_pos, batch),
        DocumentKind::Unknown(id) => Err(Refusal::Unsupported {
            id,
            at: st_pos.describe(),
        }),
    }
}

/// An 855: one PO Response call.
fn route_855(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    bak: &x12::Position,
    batch: &mut InboundBatch,
) -> Result<Routed, Refusal> {
    let (ack, diags) = x12::Ack855::parse(tx);
    first_error(&diags)?;
    let call = from_855(&ack, bak, ctx.mapping, ctx.gs.date.trim())
        .map_err(|e| Refusal::Untranslatable(e.to_string()))?;
    let unknown = ctx
        .store
        .order(&call.po)
        .map_err(|e| Refusal::Store(e.to_string()))?
        .is_none();
    if unknown && ctx.mapping.inbound.unknown_po == UnknownPo::Hold {
        return Err(Refusal::UnknownPoHeld {
            kind: "855",
            po: call.po,
            at: bak.describe(),
        });
    }
    if unknown {
        tracing::warn!(po = %call.po, source = %ctx.source, "855 for a PO the bridge never received; sending it anyway (flagged).");
    }
    batch
        .history
        .push((call.po.clone(), format!("855 received: {}", ctx.source)));
    batch.jobs.push(NewJob {
        po: call.po,
        kind: call.kind,
        path: call.path,
        body: call.body.to_string(),
        segments: segments_of(tx),
        source: ctx.source.to_string(),
        unknown_po: unknown,
    });
    Ok(Routed::Jobs(1))
}

/// An 856: one PO Status call per PO it names.
fn route_856(
    ctx: &Route<'_>,
    tx: &x12::Transaction<'_>,
    bsn: &x12::Position,
    batch: &mut InboundBatch,
) -> Result<Routed, Refusal> {
    let (asn, diags) = x12::Asn856::parse(tx);
    first_error(&diags)?;
    let views = order_views(ctx.store, &asn, batch)?;
    let calls = from_856(&asn, bsn, ctx.mapping, &views)
        .map_err(|e| Refusal::Untranslatable(e.to_string()))?;
    let n = calls.len();
    for c in calls {
        let unknown = !views.contains_key(&c.call.po);
        if unknown && ctx.mapping.inbound.unknown_po == UnknownPo::Hold {
            return Err(Refusal::UnknownPoHeld {
                kind: "856",
                po: c.call.po,
                at: bsn.describe(),
            });
        }
        if unknown {
            tracing::warn!(po = %c.call.po, source = %ctx.source, "856 for a PO the bridge never received; sending it anyway (flagged).");
        }
        batch.history.push((
            c.call.po.clone(),
            format!(
                "856 received (shipment {}): {}",
                asn.shipment_id.trim(),
                ctx.source
            ),
        ));
        batch.shipped.push((c.call.po.clone(), c.shipped_now));
        batch.jobs.push(NewJob {
            po: c.call.po,
            kind: c.call.kind,
            path: c.call.path,
            body: c.call.body.to_string(),
            segments: segments_of(tx),
            source: ctx.source.to_string(),
            unknown_po: unknown,
        });
    }
    Ok(Routed::Jobs(n))
}

/// What the store knows of each PO the 856 names: ordered quantities, vendor parts and what
/// has shipped so far (earlier 856s, in the store and earlier in this same file).
fn order_views(
    store: &Store,
    asn: &x12::Asn856,
    batch: &InboundBatch,
) -> Result<BTreeMap<String, OrderView>, Refusal> {
    let mut views = BTreeMap::new();
    for node in &asn.nodes {
        let Some(prf) = &node.prf else { continue };
        let po = prf.po_number.trim().to_string();
        let Some(rec) = store
            .order(&po)
            .map_err(|e| Refusal::Store(e.to_string()))?
        else {
            continue;
        };
        let mut shipped = rec.inbound.shipped.clone();
        for (p, lines) in &batch.shipped {
            if *p == po {
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
) -> Result<Routed, Refusal> {
    let (ack, diags) = x12::Ack997::parse(tx);
    first_error(&diags)?;
    let Ok(gs06) = ack.group_control.trim().parse::<u32>() else {
        return Err(Refusal::BadAk102 {
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
        tracing::error!(po = %po, gs06, detail = %detail, "The ERP rejected our 850.");
    }
    batch
        .erp_997
        .push((ctx.pair.to_string(), gs06, outcome, detail));
    Ok(Routed::ErpAck(outcome))
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
    pair: &str,
    ic: &x12::Interchange<'_>,
    group: &x12::Group<'_>,
    diags: &[x12::Diagnostic],
) -> anyhow::Result<FileRecord> {
    let mut opts = write_options(mapping);
    let (version, gs08) = reply_version(&group.header.version, opts.version);
    opts.version = version;
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
