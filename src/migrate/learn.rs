//! `edi-bridge mapping learn --from ARCHIVE_DIR [--webhooks WEBHOOK_DIR]`: the mapping that
//! reproduces the 850s a VAN delivered. From the archive alone it reads the envelope, the
//! delimiters and line breaks, the segment order, which segments are always, sometimes or never
//! there, and the constant elements and code values. With webhooks of some of the same POs
//! (paired by BEG03) it also learns which field feeds which element: REF, DTM and PO1
//! qualifiers, N1 parties by their names, code lists (order type, unit of measure, carrier), the
//! date format, the terms text and the case. It writes the mapping as TOML, each choice
//! commented with its evidence, and a report of what it could not place. It then renders every
//! paired PO with what it learned and compares it with the archive ([`super::compare`]): any
//! difference is named and makes the command fail, so a learned mapping is never silently wrong.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::compare::{self, Outcome};
use super::{Status, X12File};
use crate::domain::{Address, PurchaseOrder};
use crate::mapping::{Mapping, DEFAULT_MAPPING};
use crate::outbound::to_850::price_text;

/// Counts of the values seen for one element.
#[derive(Debug, Default)]
struct Tally(BTreeMap<String, usize>);

impl Tally {
    fn add(&mut self, v: impl Into<String>) {
        *self.0.entry(v.into()).or_default() += 1;
    }
    /// The most frequent value and its count.
    fn mode(&self) -> Option<(&str, usize)> {
        self.0
            .iter()
            .max_by_key(|(v, n)| (**n, std::cmp::Reverse(v.len())))
            .map(|(v, n)| (v.as_str(), *n))
    }
    fn total(&self) -> usize {
        self.0.values().sum()
    }
}

/// What `learn` found: the mapping TOML and the report of what it could not place.
#[derive(Debug, Default)]
pub struct Learned {
    pub toml: String,
    pub report: Vec<String>,
}

/// TOML basic string.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

struct Out {
    text: String,
    report: Vec<String>,
    files: usize,
}

impl Out {
    fn comment(&mut self, line: &str) {
        let line: String = line
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let _ = writeln!(self.text, "# {line}");
    }
    fn key(&mut self, key: &str, value: &str) {
        let _ = writeln!(self.text, "{key} = {value}");
    }
    fn section(&mut self, name: &str) {
        let _ = writeln!(self.text, "\n[{name}]");
    }
    /// `key = mode` with the evidence "ELEMENT v in n of N files" (or `absent` when never seen).
    fn constant(&mut self, key: &str, element: &str, tally: &Tally, absent: &str) -> String {
        let of = format!("{} files", self.files);
        self.constant_in(key, element, tally, absent, &of)
    }
    /// [`Out::constant`] for a tally over something else than files (`of`: "74 lines").
    fn constant_in(
        &mut self,
        key: &str,
        element: &str,
        tally: &Tally,
        absent: &str,
        of: &str,
    ) -> String {
        match tally.mode() {
            Some((v, n)) => {
                self.comment(&format!("{element} {v} in {n} of {of}"));
                if tally.0.len() > 1 {
                    self.report.push(format!(
                        "{element} varies ({}): using the most frequent, {v}; the others will differ",
                        shown(tally)
                    ));
                }
                self.key(key, &q(v));
                v.to_string()
            }
            None => {
                self.comment(&format!(
                    "{element}: not in any of the {} files",
                    self.files
                ));
                self.key(key, &q(absent));
                absent.to_string()
            }
        }
    }
}

fn shown(t: &Tally) -> String {
    t.0.iter()
        .map(|(v, n)| format!("{} ×{n}", if v.is_empty() { "(none)" } else { v }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A PO's segments split into heading (before the first PO1), lines (each PO1 loop) and
/// summary (CTT on), without the envelope.
struct Parts<'a> {
    heading: Vec<&'a [String]>,
    lines: Vec<Vec<&'a [String]>>,
    summary: Vec<&'a [String]>,
}

fn parts(f: &X12File) -> Parts<'_> {
    let mut p = Parts {
        heading: Vec::new(),
        lines: Vec::new(),
        summary: Vec::new(),
    };
    let mut in_summary = false;
    for s in &f.segments {
        match s[0].as_str() {
            "ISA" | "GS" | "ST" | "SE" | "GE" | "IEA" => continue,
            "PO1" if !in_summary => p.lines.push(vec![s.as_slice()]),
            "CTT" | "AMT" => {
                in_summary = true;
                p.summary.push(s);
            }
            _ if in_summary => p.summary.push(s),
            _ => match p.lines.last_mut() {
                Some(l) => l.push(s),
                None => p.heading.push(s),
            },
        }
    }
    p
}

/// Reads one webhook field of a PO.
type FieldOf = fn(&PurchaseOrder) -> Option<String>;

/// Segments some mapping key writes (anything else needs `[[po850.segments]]`).
const KNOWN: [&str; 23] = [
    "ISA", "GS", "ST", "BEG", "CUR", "REF", "CSH", "ITD", "DTM", "TD5", "N9", "MSG", "N1", "N3",
    "N4", "PER", "PO1", "PID", "CTT", "AMT", "SE", "GE", "IEA",
];

/// The element's value as the ERP saw it, for matching a webhook value against: trimmed, and
/// compared without regard to case.
fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

const DATE_FORMATS: [&str; 4] = [
    "[year][month][day]",
    "[year repr:last_two][month][day]",
    "[month][day][year]",
    "[year]-[month]-[day]",
];

fn format_date(iso: &str, fmt: &str) -> Option<String> {
    let d = time::Date::parse(
        iso,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let f = time::format_description::parse_borrowed::<2>(fmt).ok()?;
    d.format(&f).ok()
}

fn addresses(po: &PurchaseOrder) -> [(&'static str, Option<&Address>); 4] {
    [
        ("ship_to", po.ship_to.as_ref()),
        ("bill_to", po.bill_to.as_ref()),
        ("end_user", po.end_user.as_ref()),
        ("reseller", po.reseller.as_ref()),
    ]
}

/// Learns the mapping from `archive` (each 850 with its file) and the webhook POs `pos`.
pub fn learn(archive: &[(PathBuf, X12File)], pos: &[PurchaseOrder]) -> Learned {
    let mut out = Out {
        text: String::new(),
        report: Vec::new(),
        files: archive.len(),
    };
    let by_po: BTreeMap<&str, &PurchaseOrder> =
        pos.iter().map(|p| (p.po_number.as_str(), p)).collect();
    let pairs: Vec<(&X12File, &PurchaseOrder)> = archive
        .iter()
        .filter_map(|(_, f)| {
            let beg = f.first("BEG")?;
            by_po.get(X12File::value(beg, 3)).map(|po| (f, *po))
        })
        .collect();
    let n = archive.len();
    let _ = writeln!(
        out.text,
        "# edi-bridge mapping learned by `edi-bridge mapping learn` from {n} archived 850s\n\
         # and {} webhook POs ({} paired with an 850 by BEG03). Each choice is commented with its\n\
         # evidence. Check it with `edi-bridge compare` before a shadow run.",
        pos.len(),
        pairs.len()
    );

    // Envelope and delimiters.
    let tally = |f: &dyn Fn(&X12File) -> Option<String>| {
        let mut t = Tally::default();
        for (_, x) in archive {
            if let Some(v) = f(x) {
                t.add(v);
            }
        }
        t
    };
    let el = |seg: &'static str, n: usize, trim: bool| {
        move |x: &X12File| {
            x.first(seg).map(|s| {
                let v = X12File::value(s, n);
                if trim { v.trim() } else { v }.to_string()
            })
        }
    };
    out.section("interchange");
    let version = tally(&el("ISA", 12, false));
    let v = version
        .mode()
        .map(|(v, _)| v.to_string())
        .unwrap_or_default();
    let five = v.as_str() >= "00500";
    if let Some((isa12, k)) = version.mode() {
        out.comment(&format!("ISA12 {isa12} in {k} of {n} files"));
    }
    match v.as_str() {
        "00401" => out.key("version", &q("004010")),
        "00501" => out.key("version", &q("005010")),
        other => {
            out.report.push(format!(
                "ISA12 {other}: the writer knows 00401 and 00501; wrote 004010"
            ));
            out.key("version", &q("004010"));
        }
    }
    out.constant(
        "sender_qualifier",
        "ISA05",
        &tally(&el("ISA", 5, false)),
        "ZZ",
    );
    let sender = out.constant("sender_id", "ISA06", &tally(&el("ISA", 6, true)), "");
    out.constant(
        "receiver_qualifier",
        "ISA07",
        &tally(&el("ISA", 7, false)),
        "ZZ",
    );
    let receiver = out.constant("receiver_id", "ISA08", &tally(&el("ISA", 8, true)), "");
    for (key, n_el, isa) in [("gs_sender", 2, &sender), ("gs_receiver", 3, &receiver)] {
        let t = tally(&el("GS", n_el, false));
        if let Some((v, k)) = t.mode() {
            if v == isa.as_str() {
                out.comment(&format!(
                    "GS{n_el:02} {v} in {k} of {n} files, the same as the ISA id"
                ));
            } else {
                out.constant(key, &format!("GS{n_el:02}"), &t, "");
            }
        }
    }
    let gs08 = tally(&el("GS", 8, false));
    if let Some((g, k)) = gs08.mode() {
        let default = if five { "005010" } else { "004010" };
        if g == default {
            out.comment(&format!(
                "GS08 {g} in {k} of {n} files (the version's default)"
            ));
        } else {
            out.constant("gs_version", "GS08", &gs08, default);
        }
    }
    out.constant("usage", "ISA15", &tally(&el("ISA", 15, false)), "P");
    let ack = tally(&el("ISA", 14, false));
    if let Some((a, k)) = ack.mode() {
        out.comment(&format!("ISA14 {a} in {k} of {n} files"));
        out.key("ack_requested", if a == "1" { "true" } else { "false" });
    }

    out.section("delimiters");
    let byte = |b: u8| String::from_utf8_lossy(&[b]).into_owned();
    out.constant(
        "element",
        "element separator",
        &tally(&|x| Some(byte(x.element))),
        "*",
    );
    out.constant(
        "component",
        "ISA16 component separator",
        &tally(&|x| Some(byte(x.component))),
        ">",
    );
    out.constant(
        "segment",
        "segment terminator",
        &tally(&|x| Some(byte(x.terminator))),
        "~",
    );
    if five {
        out.constant(
            "repetition",
            "ISA11 repetition separator",
            &tally(&el("ISA", 11, false)),
            "^",
        );
    } else {
        // Not written by 004010, but it must differ from the delimiters that are.
        let used: Vec<u8> = archive
            .iter()
            .flat_map(|(_, x)| [x.element, x.component, x.terminator])
            .collect();
        let free = [b'^', b'|', b'!', b'`']
            .into_iter()
            .find(|c| !used.contains(c))
            .unwrap_or(b'^');
        out.comment("ISA11 is U in 004010: the repetition separator is not written");
        out.key("repetition", &q(&byte(free)));
    }
    let breaks = tally(&|x| Some(x.line_break.escape_default().to_string()));
    let lb = breaks
        .mode()
        .map(|(v, _)| v.to_string())
        .unwrap_or_default();
    out.comment(&format!(
        "line break after the terminator: {}",
        shown(&breaks)
    ));
    out.key("newline", if lb.is_empty() { "false" } else { "true" });
    out.key("crlf", if lb == "\\r\\n" { "true" } else { "false" });

    learn_po850(&mut out, archive, &pairs);

    // Inbound and the Ingram calls are not in the archive: the shipped defaults.
    if let Some(at) = DEFAULT_MAPPING.find("[code_lists.carrier_name]") {
        let _ = write!(
            out.text,
            "\n# ---------------------------------------------------------------------------------\n\
             # Not in the 850 archive, so not learned: the shipped defaults for the 855/856 side.\n\n{}",
            &DEFAULT_MAPPING[at..]
        );
    }
    Learned {
        toml: out.text,
        report: out.report,
    }
}

fn learn_po850(
    out: &mut Out,
    archive: &[(PathBuf, X12File)],
    pairs: &[(&X12File, &PurchaseOrder)],
) {
    let n = archive.len();
    let all: Vec<Parts<'_>> = archive.iter().map(|(_, f)| parts(f)).collect();
    let paired: Vec<(Parts<'_>, &PurchaseOrder)> =
        pairs.iter().map(|(f, po)| (parts(f), *po)).collect();
    let webhooks = !pairs.is_empty();

    // Inventory: how often each segment (with its qualifier) is there, and the order.
    let label = |s: &[String]| match s[0].as_str() {
        "REF" | "DTM" | "N1" | "N9" | "CUR" | "ITD" | "CSH" => {
            format!("{}*{}", s[0], X12File::value(s, 1))
        }
        _ => s[0].clone(),
    };
    let mut present: BTreeMap<String, usize> = BTreeMap::new();
    for (_, f) in archive {
        let mut seen = std::collections::BTreeSet::new();
        for s in &f.segments {
            if seen.insert(label(s)) {
                *present.entry(label(s)).or_default() += 1;
            }
        }
    }
    // The order of segment IDs in each area, merged over the files.
    let merged = |seqs: &mut dyn Iterator<Item = Vec<&str>>| {
        let mut order: Vec<String> = Vec::new();
        for seq in seqs {
            let mut prev: Option<usize> = None;
            for id in seq {
                match order.iter().position(|o| o == id) {
                    Some(i) => prev = Some(prev.map_or(i, |p| p.max(i))),
                    None => {
                        let at = prev.map_or(order.len(), |p| p + 1);
                        order.insert(at, id.to_string());
                        prev = Some(at);
                    }
                }
            }
        }
        order.join(" ")
    };
    fn ids<'a>(segs: &[&'a [String]]) -> Vec<&'a str> {
        segs.iter().map(|s| s[0].as_str()).collect()
    }
    let heading = merged(&mut all.iter().map(|p| ids(&p.heading)));
    let line = merged(&mut all.iter().flat_map(|p| p.lines.iter().map(|l| ids(l))));
    let summary = merged(&mut all.iter().map(|p| ids(&p.summary)));
    let order = format!("ST {heading} | each PO1 loop: {line} | {summary} SE");
    let _ = writeln!(out.text, "\n# Segment order in the archive: {order}",);
    let always: Vec<&str> = present
        .iter()
        .filter(|(_, k)| **k == n)
        .map(|(s, _)| s.as_str())
        .collect();
    let sometimes: Vec<String> = present
        .iter()
        .filter(|(_, k)| **k < n)
        .map(|(s, k)| format!("{s} ({k})"))
        .collect();
    let never: Vec<&str> = [
        "CUR", "REF", "CSH", "ITD", "DTM", "TD5", "N9", "PER", "PID", "CTT", "AMT",
    ]
    .into_iter()
    .filter(|id| !present.keys().any(|p| p.split('*').next() == Some(*id)))
    .collect();
    let _ = writeln!(
        out.text,
        "# Always there (in all {n} files): {}",
        always.join(" ")
    );
    let _ = writeln!(
        out.text,
        "# Sometimes there (files): {}",
        sometimes.join(", ")
    );
    let _ = writeln!(out.text, "# Never there: {}", never.join(" "));
    for (id, k) in present
        .iter()
        .filter(|(p, _)| !KNOWN.contains(&p.split('*').next().unwrap_or("")))
    {
        out.report.push(format!(
            "{id} in {k} of {n} files: no mapping key writes it; state it with [[po850.segments]]"
        ));
    }

    out.section("po850");
    let seg_tally = |pick: &dyn Fn(&Parts<'_>) -> Vec<String>| {
        let mut t = Tally::default();
        for p in &all {
            for v in pick(p) {
                t.add(v);
            }
        }
        t
    };
    let heading = |id: &'static str, el: usize| {
        move |p: &Parts<'_>| {
            p.heading
                .iter()
                .filter(|s| s[0] == id)
                .map(|s| X12File::value(s, el).to_string())
                .collect::<Vec<_>>()
        }
    };
    out.constant("purpose", "BEG01", &seg_tally(&heading("BEG", 1)), "00");
    out.constant("po_type", "BEG02", &seg_tally(&heading("BEG", 2)), "SA");

    // Date format: the one under which BEG05 is the webhook's PO date.
    let mut formats = Tally::default();
    for (p, po) in &paired {
        let (Some(date), Some(beg)) = (&po.po_date, p.heading.iter().find(|s| s[0] == "BEG"))
        else {
            continue;
        };
        for f in DATE_FORMATS {
            if format_date(date, f).as_deref() == Some(X12File::value(beg, 5)) {
                formats.add(f);
            }
        }
    }
    let date_format = match formats.mode() {
        Some((f, k)) => {
            out.comment(&format!(
                "BEG05 is the webhook's PO date in this format in {k} of {} paired files",
                paired.len()
            ));
            f.to_string()
        }
        None => {
            let lens = seg_tally(&|p: &Parts<'_>| {
                heading("BEG", 5)(p)
                    .into_iter()
                    .map(|v| v.len().to_string())
                    .collect()
            });
            let f = if lens.mode().map(|(l, _)| l) == Some("6") {
                DATE_FORMATS[1]
            } else {
                DATE_FORMATS[0]
            };
            out.comment(&format!(
                "BEG05 lengths {}: guessed from the length (no webhook to pair)",
                shown(&lens)
            ));
            if !webhooks {
                out.report.push(
                    "po850.date_format: guessed from the length of BEG05 (no webhooks)".into(),
                );
            }
            f.to_string()
        }
    };
    out.key("date_format", &q(&date_format));
    let date = |iso: &Option<String>| iso.as_deref().and_then(|d| format_date(d, &date_format));

    out.constant(
        "currency_entity",
        "CUR01",
        &seg_tally(&heading("CUR", 1)),
        "",
    );
    if let Some((v, k)) = seg_tally(&heading("CSH", 1)).mode() {
        out.comment(&format!("CSH01 {v} in {k} of {n} files"));
        out.key("csh", &q(v));
    } else {
        out.comment("CSH: never there");
        out.key("csh", &q(""));
    }

    // REF qualifiers: which webhook field each carries.
    let ref_fields: [(&str, &str, FieldOf); 5] = [
        ("reseller_order_ref", "resellerOrderNumber", |po| {
            Some(po.reseller_order_number.clone())
        }),
        ("vendor_quote_ref", "vendorQuoteNumber", |po| {
            po.vendor_quote_number.clone()
        }),
        ("special_bid_ref", "specialBidNumber", |po| {
            po.special_bid_number.clone()
        }),
        ("long_po_ref", "ingramPurchaseOrderNumber", |po| {
            Some(po.po_number.clone())
        }),
        ("order_type_ref", "orderType", |po| {
            Some(po.order_type.clone())
        }),
    ];
    let ref_qualifiers = seg_tally(&heading("REF", 1));
    let mut assigned: BTreeMap<&str, (String, String)> = BTreeMap::new();
    let mut order_codes: BTreeMap<String, Tally> = BTreeMap::new();
    for (qual, count) in &ref_qualifiers.0 {
        let mut hits: BTreeMap<&str, usize> = BTreeMap::new();
        for (p, po) in &paired {
            for s in p
                .heading
                .iter()
                .filter(|s| s[0] == "REF" && X12File::value(s, 1) == qual)
            {
                for (key, _, field) in &ref_fields {
                    if field(po).is_some_and(|v| same(&v, X12File::value(s, 2))) {
                        *hits.entry(key).or_default() += 1;
                    }
                }
            }
        }
        let best = hits
            .iter()
            .filter(|(k, _)| **k != "order_type_ref")
            .max_by_key(|(_, h)| **h);
        let total_paired: usize = paired
            .iter()
            .map(|(p, _)| {
                p.heading
                    .iter()
                    .filter(|s| s[0] == "REF" && X12File::value(s, 1) == qual)
                    .count()
            })
            .sum();
        let chosen = match best {
            Some((key, h)) if *h == total_paired && *h > 0 => {
                let name = ref_fields
                    .iter()
                    .find(|(k, _, _)| k == key)
                    .map_or("", |(_, n, _)| *n);
                Some((
                    *key,
                    format!("REF*{qual} carries {name} in {h} of {total_paired} paired REF*{qual}"),
                ))
            }
            _ if webhooks
                && total_paired > 0
                && !assigned.contains_key("order_type_ref")
                && *count == n =>
            {
                for (p, po) in &paired {
                    for s in p
                        .heading
                        .iter()
                        .filter(|s| s[0] == "REF" && X12File::value(s, 1) == qual)
                    {
                        order_codes
                            .entry(po.order_type.clone())
                            .or_default()
                            .add(X12File::value(s, 2));
                    }
                }
                Some(("order_type_ref", format!("REF*{qual} in all {n} files, its value follows orderType (code list below)")))
            }
            _ if !webhooks => {
                let guess = match qual.as_str() {
                    "CO" => Some("reseller_order_ref"),
                    "PR" => Some("vendor_quote_ref"),
                    "CT" => Some("special_bid_ref"),
                    "PO" => Some("long_po_ref"),
                    "ZZ" => Some("order_type_ref"),
                    _ => None,
                };
                guess.map(|g| {
                    out.report.push(format!(
                        "REF*{qual}: po850.{g} guessed from the qualifier code (no webhooks)"
                    ));
                    (
                        g,
                        format!("REF*{qual} in {count} of {n} files; guessed from the code"),
                    )
                })
            }
            _ => None,
        };
        match chosen {
            Some((key, why)) if !assigned.contains_key(key) => {
                assigned.insert(key, (qual.clone(), why));
            }
            _ => out.report.push(format!(
                "REF*{qual} ({count} of {n} files): no webhook field matches its value; state it with [[po850.segments]]"
            )),
        }
    }
    for (key, name, field) in &ref_fields {
        match assigned.get(key) {
            Some((qual, why)) => {
                out.comment(why);
                out.key(key, &q(qual));
            }
            None => {
                let had = paired.iter().filter(|(_, po)| field(po).is_some()).count();
                out.comment(&format!("{name}: in {had} paired webhooks, never in a REF"));
                out.key(key, &q(""));
            }
        }
    }

    // Header DTMs: PO date and requested delivery.
    let mut dtm_hits: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (p, po) in &paired {
        for s in p.heading.iter().filter(|s| s[0] == "DTM") {
            let (qual, value) = (X12File::value(s, 1), X12File::value(s, 2));
            if date(&po.po_date).as_deref() == Some(value) {
                *dtm_hits
                    .entry(("po_date_dtm", qual.to_string()))
                    .or_default() += 1;
            }
            if date(&po.requested_delivery_date).as_deref() == Some(value) {
                *dtm_hits
                    .entry(("requested_delivery_dtm", qual.to_string()))
                    .or_default() += 1;
            }
        }
    }
    let dtm_codes = seg_tally(&heading("DTM", 1));
    for (key, name, default) in [
        ("po_date_dtm", "ingramPurchaseOrderDate", "004"),
        ("requested_delivery_dtm", "requestedDeliveryDate", "002"),
    ] {
        let best = dtm_hits
            .iter()
            .filter(|((k, _), _)| *k == key)
            .max_by_key(|(_, h)| **h);
        match best {
            Some(((_, qual), h)) => {
                out.comment(&format!("DTM*{qual} carries {name} in {h} paired files"));
                out.key(key, &q(qual));
            }
            None if !webhooks && dtm_codes.0.contains_key(default) => {
                out.comment(&format!(
                    "DTM*{default} in {} of {n} files; guessed from the code",
                    dtm_codes.0[default]
                ));
                out.report.push(format!(
                    "po850.{key}: guessed from the qualifier code (no webhooks)"
                ));
                out.key(key, &q(default));
            }
            None => {
                out.comment(&format!("{name}: never in a header DTM"));
                out.key(key, &q(""));
            }
        }
    }
    for (qual, k) in &dtm_codes.0 {
        if !dtm_hits.keys().any(|(_, q2)| q2 == qual)
            && (webhooks || !["004", "002"].contains(&qual.as_str()))
        {
            out.report.push(format!(
                "DTM*{qual} ({k} of {n} files): no webhook date matches it"
            ));
        }
    }

    // Terms.
    let itd = seg_tally(&heading("ITD", 1));
    if itd.total() == 0 {
        out.comment("ITD: never there");
        out.key("terms_type", &q(""));
    } else {
        out.constant("terms_type", "ITD01", &itd, "");
        out.constant(
            "terms_basis_date",
            "ITD02",
            &seg_tally(&heading("ITD", 2)),
            "",
        );
        let described = seg_tally(&|p: &Parts<'_>| {
            p.heading
                .iter()
                .filter(|s| s[0] == "ITD")
                .map(|s| {
                    let days = X12File::value(s, 7);
                    let text = X12File::value(s, 12);
                    if days.is_empty() {
                        text.to_string()
                    } else {
                        text.replacen(days, "{days}", 1)
                    }
                })
                .collect()
        });
        out.constant(
            "terms_description",
            "ITD12 (ITD07's days as {days})",
            &described,
            "",
        );
    }

    // Carrier.
    let td5 = seg_tally(&heading("TD5", 1));
    if td5.total() == 0 {
        let had = paired
            .iter()
            .filter(|(_, po)| po.ship_via.is_some())
            .count();
        out.comment(&format!(
            "TD5: never there (shipVia in {had} paired webhooks)"
        ));
        out.key("td5", "false");
    } else {
        out.comment(&format!("TD5 in {} of {n} files", td5.total()));
        out.key("td5", "true");
        out.constant("carrier_routing_sequence", "TD501", &td5, "");
        let quals = seg_tally(&|p: &Parts<'_>| {
            heading("TD5", 2)(p)
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect()
        });
        out.constant("carrier_id_qualifier", "TD502", &quals, "2");
    }

    let n9 = seg_tally(&heading("N9", 1));
    out.constant("notes_n9_qualifier", "N901", &n9, "");

    // Lines.
    let line_seg = |id: &'static str, el: usize| {
        move |p: &Parts<'_>| {
            p.lines
                .iter()
                .flatten()
                .filter(|s| s[0] == id)
                .map(|s| X12File::value(s, el).to_string())
                .collect::<Vec<_>>()
        }
    };
    let basis = seg_tally(&|p: &Parts<'_>| {
        line_seg("PO1", 5)(p)
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect()
    });
    let line_count: usize = all.iter().map(|p| p.lines.len()).sum();
    out.constant_in(
        "price_basis",
        "PO105",
        &basis,
        "",
        &format!("{line_count} lines"),
    );
    // Number format: PO104 as the webhook's price with a fixed number of decimals, or plain.
    let (mut plain, mut fixed): (usize, BTreeMap<u32, usize>) = (0, BTreeMap::new());
    let mut priced = 0;
    for (p, po) in &paired {
        for l in &p.lines {
            let po1 = l[0];
            let Some(price) = po
                .lines
                .iter()
                .find(|x| x.ingram_line_number == X12File::value(po1, 1))
                .and_then(|x| x.unit_price)
            else {
                continue;
            };
            priced += 1;
            let written = X12File::value(po1, 4);
            if price.to_string() == written {
                plain += 1;
            }
            for d in 0..=6 {
                if price_text(price, Some(d)).as_deref() == Some(written) {
                    *fixed.entry(d).or_default() += 1;
                }
            }
        }
    }
    match fixed.iter().find(|(_, k)| **k == priced && priced > 0) {
        Some((d, k)) if plain < priced => {
            out.comment(&format!(
                "PO104 is the webhook's price with {d} decimals in {k} of {priced} paired lines"
            ));
            out.key("price_decimals", &d.to_string());
        }
        _ if plain < priced => out.report.push(format!(
            "PO104: the webhook's price as written in only {plain} of {priced} paired lines, and no fixed number of decimals fits them all"
        )),
        _ => out.comment(&format!(
            "PO104 is the webhook's price as written in {plain} of {priced} paired lines"
        )),
    }
    let mut id_hits: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut uom: BTreeMap<String, Tally> = BTreeMap::new();
    let mut ship_dtm = Tally::default();
    for (p, po) in &paired {
        for l in &p.lines {
            let po1 = l[0];
            let Some(line) = po
                .lines
                .iter()
                .find(|x| x.ingram_line_number == X12File::value(po1, 1))
            else {
                continue;
            };
            uom.entry(line.unit_of_measure.clone())
                .or_default()
                .add(X12File::value(po1, 3));
            let mut i = 6;
            while i + 1 < po1.len() {
                let (qual, value) = (&po1[i], &po1[i + 1]);
                for (key, field) in [
                    ("vendor_part_qualifier", &line.vendor_part_number),
                    ("ingram_part_qualifier", &line.ingram_part_number),
                    ("upc_qualifier", &line.upc),
                ] {
                    if field.as_deref().is_some_and(|f| f == value) {
                        *id_hits.entry((key, qual.clone())).or_default() += 1;
                    }
                }
                i += 2;
            }
            for s in l.iter().filter(|s| s[0] == "DTM") {
                if date(&line.requested_ship_date).as_deref() == Some(X12File::value(s, 2)) {
                    ship_dtm.add(X12File::value(s, 1));
                }
            }
        }
    }
    let all_ids = seg_tally(&|p: &Parts<'_>| {
        p.lines
            .iter()
            .flat_map(|l| l[0].iter().skip(6).step_by(2).cloned())
            .collect()
    });
    for (key, name, guesses) in [
        (
            "vendor_part_qualifier",
            "vendorPartNumber",
            ["VP", "VN", "MG"],
        ),
        (
            "ingram_part_qualifier",
            "ingramPartNumber",
            ["BP", "IN", "SK"],
        ),
        ("upc_qualifier", "upcCode", ["UP", "UK", "EN"]),
    ] {
        let best = id_hits
            .iter()
            .filter(|((k, _), _)| *k == key)
            .max_by_key(|(_, h)| **h);
        match best {
            Some(((_, qual), h)) => {
                out.comment(&format!("PO1 {qual} carries {name} in {h} paired lines"));
                out.key(key, &q(qual));
            }
            None if !webhooks && guesses.iter().any(|g| all_ids.0.contains_key(*g)) => {
                let g = guesses
                    .iter()
                    .find(|g| all_ids.0.contains_key(**g))
                    .copied()
                    .unwrap_or("");
                out.comment(&format!(
                    "PO1 {g} in {} lines; guessed from the code",
                    all_ids.0[g]
                ));
                out.report.push(format!(
                    "po850.{key}: guessed from the qualifier code (no webhooks)"
                ));
                out.key(key, &q(g));
            }
            None => {
                out.comment(&format!("{name}: never in a PO1"));
                out.key(key, &q(""));
            }
        }
    }
    match ship_dtm.mode() {
        Some((qual, k)) => {
            out.comment(&format!(
                "line DTM*{qual} carries requestedShipDate in {k} paired lines"
            ));
            out.key("requested_ship_dtm", &q(qual));
        }
        None => {
            let line_dtm = seg_tally(&line_seg("DTM", 1));
            let guess = if webhooks {
                None
            } else {
                line_dtm.mode().map(|(v, _)| v.to_string())
            };
            out.comment("requestedShipDate: no line DTM matched it");
            out.key("requested_ship_dtm", &q(guess.as_deref().unwrap_or("")));
        }
    }
    let pid = seg_tally(&line_seg("PID", 1));
    out.comment(&format!("PID in {} lines", pid.total()));
    out.key(
        "line_description",
        if pid.total() > 0 { "true" } else { "false" },
    );
    let ctt2 = seg_tally(&|p: &Parts<'_>| {
        p.summary
            .iter()
            .filter(|s| s[0] == "CTT")
            .map(|s| X12File::value(s, 2).to_string())
            .filter(|v| !v.is_empty())
            .collect()
    });
    out.comment(&format!("CTT02 in {} of {n} files", ctt2.total()));
    out.key(
        "hash_total",
        if ctt2.total() > 0 { "true" } else { "false" },
    );
    let amt = seg_tally(&|p: &Parts<'_>| {
        p.summary
            .iter()
            .filter(|s| s[0] == "AMT")
            .map(|s| X12File::value(s, 1).to_string())
            .collect()
    });
    out.comment(&format!("AMT in {} of {n} files", amt.total()));
    out.key(
        "total_amount",
        if amt.total() > 0 { "true" } else { "false" },
    );

    // Case: free text as the webhook had it, or upper-cased.
    let (mut upper, mut asis) = (0, 0);
    for (p, po) in &paired {
        for s in p.heading.iter().filter(|s| s[0] == "N1") {
            let names = addresses(po)
                .into_iter()
                .filter_map(|(_, a)| a)
                .flat_map(|a| [a.company_name.clone(), a.contact.clone()])
                .flatten();
            for name in names {
                let v = X12File::value(s, 2);
                if name.chars().any(|c| c.is_lowercase()) {
                    if v == name {
                        asis += 1;
                    } else if v == name.to_uppercase() {
                        upper += 1;
                    }
                }
            }
        }
    }
    if webhooks {
        out.comment(&format!("N102 is the webhook's name upper-cased in {upper} and as written in {asis} paired parties"));
        out.key("uppercase", if upper >= asis { "true" } else { "false" });
    } else {
        let lower = archive
            .iter()
            .filter(|(_, f)| {
                f.segments.iter().any(|s| {
                    matches!(s[0].as_str(), "N1" | "N3" | "N4" | "PID" | "MSG")
                        && s.iter()
                            .skip(1)
                            .any(|e| e.chars().any(|c| c.is_lowercase()))
                })
            })
            .count();
        out.comment(&format!(
            "free text (N1, N3, N4, PID, MSG) has lower case in {lower} of {n} files"
        ));
        out.key("uppercase", if lower == 0 { "true" } else { "false" });
    }

    learn_parties(out, &all, &paired, n);

    // Code lists.
    let code_list = |out: &mut Out, name: &str, what: &str, codes: &BTreeMap<String, Tally>| {
        out.section(&format!("code_lists.{name}"));
        for (from, to) in codes {
            if let Some((v, k)) = to.mode() {
                out.comment(&format!("{what} {from} → {v} in {k} of {}", to.total()));
                out.key(&q(from), &q(v));
            }
        }
    };
    code_list(out, "order_type", "orderType", &order_codes);
    code_list(out, "unit_of_measure", "unitOfMeasure", &uom);
    let mut carriers: BTreeMap<String, Tally> = BTreeMap::new();
    for (p, po) in &paired {
        if let (Some(via), Some(s)) = (&po.ship_via, p.heading.iter().find(|s| s[0] == "TD5")) {
            let scac = X12File::value(s, 3);
            if !scac.is_empty() {
                carriers.entry(via.clone()).or_default().add(scac);
            }
        }
    }
    code_list(out, "carrier", "shipVia", &carriers);
}

fn learn_parties(
    out: &mut Out,
    all: &[Parts<'_>],
    paired: &[(Parts<'_>, &PurchaseOrder)],
    n: usize,
) {
    // Entities in the order they appear.
    let mut entities: Vec<String> = Vec::new();
    for p in all {
        let mut prev: Option<usize> = None;
        for s in p.heading.iter().filter(|s| s[0] == "N1") {
            let e = X12File::value(s, 1).to_string();
            match entities.iter().position(|x| *x == e) {
                Some(i) => prev = Some(i),
                None => {
                    let at = prev.map_or(entities.len(), |i| i + 1);
                    entities.insert(at, e);
                    prev = Some(at);
                }
            }
        }
    }
    let loops = |p: &'_ Parts<'_>, entity: &str| -> Vec<Vec<Vec<String>>> {
        let mut out: Vec<Vec<Vec<String>>> = Vec::new();
        let mut inside = false;
        for s in &p.heading {
            if s[0] == "N1" {
                inside = X12File::value(s, 1) == entity;
                if inside {
                    out.push(vec![s.to_vec()]);
                }
            } else if inside && matches!(s[0].as_str(), "N2" | "N3" | "N4" | "REF" | "PER") {
                if let Some(l) = out.last_mut() {
                    l.push(s.to_vec());
                }
            } else {
                inside = false;
            }
        }
        out
    };
    for entity in entities {
        let _ = writeln!(out.text, "\n[[po850.parties]]");
        let mut sources = Tally::default();
        for (p, po) in paired {
            for l in loops(p, &entity) {
                let name = X12File::value(&l[0], 2);
                for (source, a) in addresses(po) {
                    let Some(a) = a else { continue };
                    let hit = a
                        .company_name
                        .as_deref()
                        .or(a.contact.as_deref())
                        .is_some_and(|c| same(c, name));
                    if hit {
                        sources.add(source);
                    }
                }
            }
        }
        let source = match sources.mode() {
            Some((s, k)) => {
                out.comment(&format!(
                    "N1*{entity} names the webhook's {s} in {k} paired files"
                ));
                s.to_string()
            }
            None => {
                let guess = match entity.as_str() {
                    "ST" => "ship_to",
                    "BT" => "bill_to",
                    "EN" => "end_user",
                    _ => "reseller",
                };
                out.report.push(format!(
                    "N1*{entity}: source {guess} guessed from the entity code"
                ));
                out.comment(&format!("N1*{entity}: source guessed from the entity code"));
                guess.to_string()
            }
        };
        out.key("source", &q(&source));
        let in_files = all.iter().filter(|p| !loops(p, &entity).is_empty()).count();
        out.comment(&format!("N1*{entity} in {in_files} of {n} files"));
        out.key("entity", &q(&entity));
        let mut ids = Tally::default();
        let (mut with_address, mut with_per, mut loops_seen) = (0, 0, 0);
        let mut functions = Tally::default();
        for p in all {
            for l in loops(p, &entity) {
                loops_seen += 1;
                ids.add(format!(
                    "{}\u{0}{}",
                    X12File::value(&l[0], 3),
                    X12File::value(&l[0], 4)
                ));
                if l.iter().any(|s| s[0] == "N3" || s[0] == "N4") {
                    with_address += 1;
                }
                if let Some(per) = l.iter().find(|s| s[0] == "PER") {
                    with_per += 1;
                    functions.add(X12File::value(per, 1));
                }
            }
        }
        if let Some((pair, k)) = ids.mode() {
            let (qual, id) = pair.split_once('\u{0}').unwrap_or(("", ""));
            if !qual.is_empty() {
                out.comment(&format!(
                    "N103 {qual} N104 {id} in {k} of {loops_seen} N1*{entity}"
                ));
                out.key("id_qualifier", &q(qual));
                out.key("id", &q(id));
            }
            if ids.0.len() > 1 {
                out.report.push(format!(
                    "N1*{entity} N103/N104 vary ({} values): a mapping states one",
                    ids.0.len()
                ));
            }
        }
        out.comment(&format!(
            "N3/N4 in {with_address} of {loops_seen} N1*{entity} loops"
        ));
        out.key("address", if with_address > 0 { "true" } else { "false" });
        match functions.mode() {
            Some((f, k)) => {
                out.comment(&format!(
                    "PER01 {f} in {k} of {with_per} N1*{entity} loops with a PER"
                ));
                out.key("contact_function", &q(f));
            }
            None => {
                out.comment(&format!("PER: never in N1*{entity}"));
                out.key("contact_function", &q(""));
            }
        }
    }
}

/// Renders each paired PO with the learned mapping and compares it with its archived 850:
/// the POs that differ, with their first difference.
pub fn verify(
    mapping: &Mapping,
    archive: &[(PathBuf, X12File)],
    pos: &[PurchaseOrder],
) -> Vec<String> {
    let vans: BTreeMap<String, (PathBuf, X12File)> = archive
        .iter()
        .map(|(p, f)| {
            (
                f.first("BEG")
                    .map(|b| X12File::value(b, 3).to_string())
                    .unwrap_or_default(),
                (p.clone(), f.clone()),
            )
        })
        .collect();
    let with_files: Vec<(PathBuf, PurchaseOrder)> =
        pos.iter().map(|po| (PathBuf::new(), po.clone())).collect();
    compare::compare(mapping, &with_files, &vans)
        .iter()
        .filter(|r| !matches!(r.outcome, Outcome::Identical | Outcome::NoVan850))
        .map(|r| {
            let file = r
                .van
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{file}: {}", compare::line(r))
        })
        .collect()
}

/// The archive's 850s (each transaction set on its own) and a problem per unreadable file.
pub fn read_archive(dir: &Path) -> Result<(super::Archive, Vec<String>), String> {
    let mut archive = Vec::new();
    let mut problems = Vec::new();
    for path in super::files_in(dir)? {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| X12File::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(f) => archive.extend(f.split().into_iter().map(|(_, one)| (path.clone(), one))),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok((archive, problems))
}

/// Learns and verifies; the TOML (or `None` when it does not even load) and the report.
pub fn learn_and_verify(
    archive: &[(PathBuf, X12File)],
    pos: &[PurchaseOrder],
) -> (Learned, Vec<String>) {
    let learned = learn(archive, pos);
    let failures = match Mapping::from_str(&learned.toml, Path::new("learned.toml")) {
        Ok(m) => verify(&m, archive, pos),
        Err(e) => vec![format!("the learned mapping does not load: {e}")],
    };
    (learned, failures)
}

/// The `mapping learn` command: the TOML on stdout, the report on stderr; exit 1 when the
/// learned mapping does not reproduce every paired PO of the archive.
pub fn run(from: &Path, webhooks: Option<&Path>) -> Status {
    let (archive, mut problems) = match read_archive(from) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("edi-bridge mapping learn: {e}");
            return Status::Usage;
        }
    };
    if archive.is_empty() {
        eprintln!("edi-bridge mapping learn: no 850 in {}", from.display());
        return Status::Usage;
    }
    let pos: Vec<PurchaseOrder> = match webhooks {
        Some(dir) => match compare::webhook_pos(dir, &Mapping::builtin()) {
            Ok((pos, more)) => {
                problems.extend(more);
                pos.into_iter().map(|(_, po)| po).collect()
            }
            Err(e) => {
                eprintln!("edi-bridge mapping learn: {e}");
                return Status::Usage;
            }
        },
        None => Vec::new(),
    };
    let (learned, failures) = learn_and_verify(&archive, &pos);
    print!("{}", learned.toml);
    for p in &problems {
        eprintln!("not read: {p}");
    }
    for r in &learned.report {
        eprintln!("could not place: {r}");
    }
    let paired = pos
        .iter()
        .filter(|po| {
            archive.iter().any(|(_, f)| {
                f.first("BEG")
                    .is_some_and(|b| X12File::value(b, 3) == po.po_number)
            })
        })
        .count();
    if paired == 0 {
        eprintln!("not verified: no webhook is paired with an archived 850 (give --webhooks for some of the same POs), so only the archive's constants were learned");
        return Status::Ok;
    }
    if failures.is_empty() {
        eprintln!(
            "verified: the learned mapping reproduces all {paired} paired POs of the archive"
        );
        Status::Ok
    } else {
        for f in &failures {
            eprintln!("differs: {f}");
        }
        eprintln!(
            "the learned mapping reproduces {} of {paired} paired POs of the archive",
            paired - failures.len()
        );
        Status::Failed
    }
}
