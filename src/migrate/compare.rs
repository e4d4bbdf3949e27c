//! `edi-bridge compare --mapping M --van VAN_DIR --webhooks WEBHOOK_DIR [--json]`: pairs each
//! webhook PO with the VAN's 850 of the same BEG03, renders ours with the mapping, and reports
//! per PO the first difference (segment, position, element, both values and the mapping key
//! that governs it), then "N of M identical". Identical means the same bytes except the control
//! numbers and the envelope's own dates and times ([`IGNORED`]): same delimiters and line breaks,
//! same segments, same elements, same padding. The daemon's shadow mode uses
//! [`first_difference`] for each 850 it writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{Status, X12File};
use crate::domain::PurchaseOrder;
use crate::input::InputError;
use crate::mapping::Mapping;
use crate::to_erp::to_850::{self, ControlNumbers};

/// The elements that may differ between two identical 850s: control numbers, and the
/// envelope's own dates and times.
pub const IGNORED: [(&str, usize); 10] = [
    ("ISA", 9),
    ("ISA", 10),
    ("ISA", 13),
    ("GS", 4),
    ("GS", 5),
    ("GS", 6),
    ("ST", 2),
    ("SE", 2),
    ("GE", 2),
    ("IEA", 2),
];

/// Where two 850s first differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The segment ID (the VAN's where they differ in ID), or `delimiters`.
    pub segment: String,
    /// 1-based position of the segment in the interchange (ISA is 1).
    pub position: usize,
    /// The element (`N102`), or empty when a whole segment differs.
    pub element: String,
    pub van: String,
    pub ours: String,
    /// The mapping key that governs it.
    pub key: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.element.is_empty() {
            self.segment.clone()
        } else {
            self.element.clone()
        };
        write!(
            f,
            "segment {} ({}), {what}: VAN {} ours {} (mapping key {})",
            self.position,
            self.segment,
            show(&self.van),
            show(&self.ours),
            self.key
        )
    }
}

fn show(v: &str) -> String {
    format!("\"{}\"", crate::text::escape(v))
}

fn delimiter(b: Option<u8>) -> String {
    match b {
        Some(b) => String::from_utf8_lossy(&[b]).into_owned(),
        None => "(none)".into(),
    }
}

/// The first difference between the VAN's 850 and ours, or `None` when identical.
pub fn first_difference(van: &X12File, ours: &X12File, mapping: &Mapping) -> Option<Difference> {
    let delim = |element: &str, v: String, o: String, key: &str| Difference {
        segment: "delimiters".into(),
        position: 1,
        element: element.into(),
        van: v,
        ours: o,
        key: key.into(),
    };
    if van.element != ours.element {
        return Some(delim(
            "element separator",
            delimiter(Some(van.element)),
            delimiter(Some(ours.element)),
            "delimiters.element",
        ));
    }
    if van.component != ours.component {
        return Some(delim(
            "ISA16",
            delimiter(Some(van.component)),
            delimiter(Some(ours.component)),
            "delimiters.component",
        ));
    }
    if van.terminator != ours.terminator {
        return Some(delim(
            "segment terminator",
            delimiter(Some(van.terminator)),
            delimiter(Some(ours.terminator)),
            "delimiters.segment",
        ));
    }
    if van.line_break != ours.line_break {
        return Some(delim(
            "line break",
            van.line_break.escape_default().to_string(),
            ours.line_break.escape_default().to_string(),
            "delimiters.newline, delimiters.crlf",
        ));
    }
    let mut line = false;
    for i in 0..van.segments.len().max(ours.segments.len()) {
        let (v, o) = (van.segments.get(i), ours.segments.get(i));
        let any = v.or(o).expect("one of them has segment i");
        if any[0] == "PO1" {
            line = true;
        }
        if any[0] == "CTT" {
            line = false;
        }
        let (Some(v), Some(o)) = (v, o) else {
            return Some(Difference {
                segment: any[0].clone(),
                position: i + 1,
                element: String::new(),
                van: v.map(|s| joined(s, van)).unwrap_or_else(|| "(none)".into()),
                ours: o
                    .map(|s| joined(s, ours))
                    .unwrap_or_else(|| "(none)".into()),
                key: governing_key(any, 1, line, mapping, false),
            });
        };
        if v[0] != o[0] {
            return Some(Difference {
                segment: v[0].clone(),
                position: i + 1,
                element: String::new(),
                van: joined(v, van),
                ours: joined(o, ours),
                key: governing_key(v, 1, line, mapping, false),
            });
        }
        for n in 1..v.len().max(o.len()) {
            if IGNORED.contains(&(v[0].as_str(), n)) {
                continue;
            }
            let (a, b) = (v.get(n), o.get(n));
            if a != b {
                let case_only = matches!((a, b), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b));
                let padding_only = matches!((a, b), (Some(a), Some(b)) if only_padding(a, b));
                return Some(Difference {
                    segment: v[0].clone(),
                    position: i + 1,
                    element: format!("{}{n:02}", v[0]),
                    van: a.cloned().unwrap_or_else(|| "(absent)".into()),
                    ours: b.cloned().unwrap_or_else(|| "(absent)".into()),
                    key: if padding_only {
                        "po850.pad".into()
                    } else {
                        governing_key(v, n, line, mapping, case_only)
                    },
                });
            }
        }
    }
    None
}

/// Whether two different values, neither of them blank, are the same but for the fill
/// `[[po850.pad]]` adds: zeros or spaces on the left, spaces on the right (`1` and `001`, `7HW1`
/// and `7HW1  `).
pub fn only_padding(a: &str, b: &str) -> bool {
    a != b
        && !a.trim().is_empty()
        && !b.trim().is_empty()
        && (a.trim_start_matches('0') == b.trim_start_matches('0')
            || a.trim_start_matches(' ') == b.trim_start_matches(' ')
            || a.trim_end_matches(' ') == b.trim_end_matches(' '))
}

fn joined(segment: &[String], file: &X12File) -> String {
    segment.join(&delimiter(Some(file.element)))
}

/// The mapping key that decides element `n` of `segment` (`line`: inside a PO1 loop).
pub fn governing_key(
    segment: &[String],
    n: usize,
    line: bool,
    mapping: &Mapping,
    case_only: bool,
) -> String {
    if case_only {
        return "po850.uppercase".into();
    }
    let m = &mapping.po850;
    let q = X12File::value(segment, 1);
    let k = |s: &str| s.to_string();
    match (segment[0].as_str(), n) {
        ("ISA", 5) => k("interchange.sender_qualifier"),
        ("ISA", 6) => k("interchange.sender_id"),
        ("ISA", 7) => k("interchange.receiver_qualifier"),
        ("ISA", 8) => k("interchange.receiver_id"),
        ("ISA", 11) => k("interchange.version, delimiters.repetition"),
        ("ISA", 12) => k("interchange.version"),
        ("ISA", 14) => k("interchange.ack_requested"),
        ("ISA", 15) => k("interchange.usage"),
        ("ISA", 16) => k("delimiters.component"),
        ("ISA", _) => k("(fixed: ISA01-ISA04 are 00 and blanks)"),
        ("GS", 2) => k("interchange.gs_sender"),
        ("GS", 3) => k("interchange.gs_receiver"),
        ("GS", 8) => k("interchange.gs_version"),
        ("GS", _) | ("ST", _) | ("GE", _) | ("IEA", _) => k("(fixed by the writer)"),
        ("SE", _) => k("(the segment count: follows the segments above)"),
        ("BEG", 1) => k("po850.purpose"),
        ("BEG", 2) => k("po850.po_type"),
        ("BEG", 5) => k("po850.date_format"),
        ("BEG", _) => k("webhook ingramPurchaseOrderNumber"),
        ("CUR", _) => k("po850.currency_entity"),
        ("REF", _) => {
            let keys = [
                (&m.reseller_order_ref, "po850.reseller_order_ref"),
                (&m.vendor_quote_ref, "po850.vendor_quote_ref"),
                (&m.special_bid_ref, "po850.special_bid_ref"),
                (&m.order_type_ref, "po850.order_type_ref"),
                (&m.long_po_ref, "po850.long_po_ref"),
            ];
            match keys.iter().find(|(v, _)| v.as_str() == q) {
                Some((_, "po850.order_type_ref")) if n == 2 => k("code_lists.order_type"),
                Some((_, key)) => k(key),
                None => k("po850.*_ref"),
            }
        }
        ("DTM", 2) if line => k("po850.date_format"),
        ("DTM", _) if line => k("po850.requested_ship_dtm"),
        ("DTM", 2) => k("po850.date_format"),
        ("DTM", _) if q == m.requested_delivery_dtm => k("po850.requested_delivery_dtm"),
        ("DTM", _) => k("po850.po_date_dtm"),
        ("ITD", 2) => k("po850.terms_basis_date"),
        ("ITD", 12) => k("po850.terms_description"),
        ("ITD", _) => k("po850.terms_type"),
        ("TD5", 1) => k("po850.carrier_routing_sequence"),
        ("TD5", 2) => k("po850.carrier_id_qualifier"),
        ("TD5", 3) => k("code_lists.carrier"),
        ("TD5", _) => k("po850.td5"),
        ("CSH", _) => k("po850.csh"),
        ("N9" | "MSG", _) => k("po850.notes_n9_qualifier"),
        ("N1", 1) => k("po850.parties.entity"),
        ("N1", 3) => k("po850.parties.id_qualifier"),
        ("N1", 4) => k("po850.parties.id"),
        ("N1", _) => k("po850.parties.source"),
        ("N2" | "N3" | "N4", _) => k("po850.parties.address"),
        ("PER", _) => k("po850.parties.contact_function"),
        ("PO1", 3) => k("code_lists.unit_of_measure"),
        ("PO1", 5) => k("po850.price_basis"),
        ("PO1", p) if p >= 6 => {
            let qualifier = if p % 2 == 0 {
                X12File::value(segment, p)
            } else {
                X12File::value(segment, p - 1)
            };
            [
                (&m.vendor_part_qualifier, "po850.vendor_part_qualifier"),
                (&m.ingram_part_qualifier, "po850.ingram_part_qualifier"),
                (&m.upc_qualifier, "po850.upc_qualifier"),
            ]
            .iter()
            .find(|(v, _)| v.as_str() == qualifier)
            .map_or_else(
                || k("po850.vendor_part_qualifier, ingram_part_qualifier, upc_qualifier"),
                |(_, key)| k(key),
            )
        }
        ("PO1", _) => k("(the webhook line: number, quantity, price)"),
        ("PID", _) => k("po850.line_description"),
        ("CTT", 2) => k("po850.hash_total"),
        ("CTT", _) => k("(the number of lines)"),
        ("AMT", _) => k("po850.total_amount"),
        _ => k("[[po850.segments]]"),
    }
}

/// Our 850 for `po`, rendered with `mapping`, with the VAN's control numbers where it has them
/// (they are ignored anyway).
pub fn render_ours(
    po: &PurchaseOrder,
    mapping: &Mapping,
    van: &X12File,
) -> Result<X12File, OursError> {
    let number = |seg: &str, n: usize, fallback: u32| {
        van.first(seg)
            .and_then(|s| X12File::value(s, n).trim().parse().ok())
            .unwrap_or(fallback)
    };
    let numbers = ControlNumbers {
        isa13: number("ISA", 13, 1),
        gs06: number("GS", 6, 1),
        st02: number("ST", 2, 1),
    };
    let at = van
        .first("GS")
        .and_then(|gs| {
            let text = format!("{}{}", X12File::value(gs, 4), X12File::value(gs, 5));
            time::PrimitiveDateTime::parse(
                text.get(..12)?,
                time::macros::format_description!("[year][month][day][hour][minute]"),
            )
            .ok()
        })
        .map_or(OffsetDateTime::UNIX_EPOCH, |t| t.assume_utc());
    let bytes = to_850::render(po, mapping, numbers, at).map_err(OursError::Render)?;
    X12File::parse(&bytes).map_err(OursError::Unreadable)
}

/// Why our 850 for a PO could not be put beside the VAN's.
#[derive(Debug, thiserror::Error)]
pub enum OursError {
    #[error("cannot render our 850: {0}")]
    Render(to_850::RenderError),
    #[error("our 850 cannot be read back: {0}")]
    Unreadable(super::IsaError),
}

/// The VAN's 850s by BEG03, with their files.
pub type VanIndex = BTreeMap<String, (PathBuf, X12File)>;

/// Webhook POs with the file each came from.
pub type WebhookPos = Vec<(PathBuf, PurchaseOrder)>;

/// The outcome for one webhook PO.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    Identical,
    Different {
        difference: Difference,
    },
    /// The VAN directory holds no 850 with this BEG03.
    NoVan850,
    /// Ours could not be rendered.
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PoReport {
    pub po: String,
    pub webhook: PathBuf,
    pub van: Option<PathBuf>,
    #[serde(flatten)]
    pub outcome: Verdict,
}

/// The VAN's 850s of `dir` by BEG03, and a problem per file that could not be read.
pub fn van_850s(dir: &Path) -> Result<(VanIndex, Vec<String>), InputError> {
    let mut by_po = BTreeMap::new();
    let mut problems = Vec::new();
    for path in super::files_in(dir)? {
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| X12File::parse(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(file) => {
                for (po, one) in file.split() {
                    if po.is_empty() {
                        problems.push(format!(
                            "{}: a transaction set without BEG03",
                            path.display()
                        ));
                        continue;
                    }
                    by_po.insert(po, (path.clone(), one));
                }
            }
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((by_po, problems))
}

/// The POs of each webhook file in `dir` (`*.json`), decoded through the mapping.
pub fn webhook_pos(dir: &Path, mapping: &Mapping) -> Result<(WebhookPos, Vec<String>), InputError> {
    let mut pos = Vec::new();
    let mut problems = Vec::new();
    for path in super::files_in(dir)? {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let decoded = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<Value>(&b).map_err(|e| format!("malformed json: {e}"))
            })
            .and_then(|v| {
                let p = &mapping.programs;
                crate::ingram::order::decode_with(
                    &v,
                    &mapping.webhook,
                    Some((&p.webhook, &p.runner)),
                )
                .map_err(|e| e.to_string())
            });
        match decoded {
            Ok(event) => pos.extend(event.orders.into_iter().map(|po| (path.clone(), po))),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((pos, problems))
}

/// Compares every webhook PO of `webhooks` with the VAN's 850 for it in `vans`.
pub fn compare(
    mapping: &Mapping,
    pos: &[(PathBuf, PurchaseOrder)],
    vans: &BTreeMap<String, (PathBuf, X12File)>,
) -> Vec<PoReport> {
    pos.iter()
        .map(|(webhook, po)| {
            let Some((van_path, van)) = vans.get(&po.po_number) else {
                return PoReport {
                    po: po.po_number.clone(),
                    webhook: webhook.clone(),
                    van: None,
                    outcome: Verdict::NoVan850,
                };
            };
            let outcome = match render_ours(po, mapping, van) {
                Ok(ours) => match first_difference(van, &ours, mapping) {
                    None => Verdict::Identical,
                    Some(difference) => Verdict::Different { difference },
                },
                Err(e) => Verdict::Failed {
                    error: e.to_string(),
                },
            };
            PoReport {
                po: po.po_number.clone(),
                webhook: webhook.clone(),
                van: Some(van_path.clone()),
                outcome,
            }
        })
        .collect()
}

/// (identical, compared): POs without a VAN 850 are not compared.
pub fn tally(reports: &[PoReport]) -> (usize, usize) {
    let compared = reports
        .iter()
        .filter(|r| !matches!(r.outcome, Verdict::NoVan850))
        .count();
    let identical = reports
        .iter()
        .filter(|r| matches!(r.outcome, Verdict::Identical))
        .count();
    (identical, compared)
}

/// One line per PO.
pub fn line(r: &PoReport) -> String {
    match &r.outcome {
        Verdict::Identical => format!("{}: identical", r.po),
        Verdict::Different { difference } => format!("{}: {difference}", r.po),
        Verdict::NoVan850 => format!("{}: not compared: no VAN 850 has BEG03 {}", r.po, r.po),
        Verdict::Failed { error } => format!("{}: {error}", r.po),
    }
}

/// The `compare` command. Exit 0 only when every compared PO is identical (and at least one was).
pub fn run(mapping: Option<&Path>, van: &Path, webhooks: &Path, json: bool) -> Status {
    let mapping = match super::load_mapping(mapping) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let loaded = van_850s(van).and_then(|v| Ok((v, webhook_pos(webhooks, &mapping)?)));
    let ((vans, mut problems), (pos, more)) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("edi-bridge compare: {e}");
            return Status::Usage;
        }
    };
    problems.extend(more);
    let reports = compare(&mapping, &pos, &vans);
    let (identical, compared) = tally(&reports);
    if json {
        let out = serde_json::json!({
            "identical": identical,
            "compared": compared,
            "pos": reports,
            "problems": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        for r in &reports {
            println!("{}", line(r));
        }
        for p in &problems {
            println!("not read: {p}");
        }
        println!("{identical} of {compared} identical");
    }
    if compared > 0 && identical == compared {
        Status::Ok
    } else {
        Status::Failed
    }
}
