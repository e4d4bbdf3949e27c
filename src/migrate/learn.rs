//! `edi-bridge mapping learn --from ARCHIVE_DIR [--webhooks WEBHOOK_DIR] [--mapping M]`: the
//! mapping that reproduces the 850s a VAN delivered. From the archive alone it reads the
//! envelope, the delimiters and line breaks, the segment order, which segments are always,
//! sometimes or never there, and the constant elements and code values. With webhooks of some
//! of the same POs (paired by BEG03; read through M's `[webhook]` renames and program when M is
//! given, as the daemon reads them) it also learns which field feeds which element: REF, DTM and
//! PO1 qualifiers, N1 parties by their names, code lists (order type, unit of measure, carrier),
//! the date format, the terms text, the case and the padding of fixed-width elements
//! (`[[po850.pad]]`, found by rendering the paired POs unpadded and comparing them with the
//! archive). It writes the mapping as TOML, each choice commented with its evidence, and a
//! report of what it could not place. It then renders every paired PO with what it learned and
//! compares it with the archive ([`super::compare`]): any difference is named and makes the
//! command fail, so a learned mapping is never silently wrong. Each step is a function of its
//! own, in the order of the TOML it writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::compare::{self, Verdict};
use super::{Status, X12File};
use crate::domain::{Address, PurchaseOrder};
use crate::input::InputError;
use crate::mapping::{Mapping, DEFAULT_MAPPING};
use crate::to_erp::to_850::price_text;

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

/// Learns the mapping from `archive` (each 850 with its file) and the webhook POs `pos`, with
/// the shipped defaults for what the archive cannot say.
pub fn learn(archive: &[(PathBuf, X12File)], pos: &[PurchaseOrder]) -> Learned {
    learn_onto(archive, pos, &shipped_unlearned())
}

/// [`learn`], followed by `unlearned`: the sections the archive cannot say (the webhook view,
/// the 855/856 side), from [`shipped_unlearned`] or [`unlearned_sections`] of a mapping.
pub fn learn_onto(
    archive: &[(PathBuf, X12File)],
    pos: &[PurchaseOrder],
    unlearned: &str,
) -> Learned {
    let mut out = Out {
        text: String::new(),
        report: Vec::new(),
        files: archive.len(),
    };
    let pairs = pair(archive, pos);
    let _ = writeln!(
        out.text,
        "# edi-bridge mapping learned by `edi-bridge mapping learn` from {} archived 850s\n\
         # and {} webhook POs ({} paired with an 850 by BEG03). Each choice is commented with its\n\
         # evidence. Check it with `edi-bridge compare` before a shadow run.",
        archive.len(),
        pos.len(),
        pairs.len()
    );
    let five = learn_interchange(&mut out, archive);
    learn_delimiters(&mut out, archive, five);
    learn_po850(&mut out, archive, &pairs);
    learn_padding(&mut out, &pairs, unlearned);
    out.text.push_str(unlearned);
    Learned {
        toml: out.text,
        report: out.report,
    }
}

/// Each archived 850 with the webhook PO of its BEG03, where there is one.
fn pair<'a>(
    archive: &'a [(PathBuf, X12File)],
    pos: &'a [PurchaseOrder],
) -> Vec<(&'a X12File, &'a PurchaseOrder)> {
    let by_po: BTreeMap<&str, &PurchaseOrder> =
        pos.iter().map(|p| (p.po_number.as_str(), p)).collect();
    archive
        .iter()
        .filter_map(|(_, f)| {
            let beg = f.first("BEG")?;
            by_po.get(X12File::value(beg, 3)).map(|po| (f, *po))
        })
        .collect()
}

/// The tally of one value per archived file (`f` yields none for a file without it).
fn file_tally(archive: &[(PathBuf, X12File)], f: &dyn Fn(&X12File) -> Option<String>) -> Tally {
    let mut t = Tally::default();
    for (_, x) in archive {
        if let Some(v) = f(x) {
            t.add(v);
        }
    }
    t
}

/// Element `n` of the first `seg` of a file (trimmed of the ISA's padding when `trim`).
fn first_el(seg: &'static str, n: usize, trim: bool) -> impl Fn(&X12File) -> Option<String> {
    move |x: &X12File| {
        x.first(seg).map(|s| {
            let v = X12File::value(s, n);
            if trim { v.trim() } else { v }.to_string()
        })
    }
}

/// `[interchange]`: the version, the ISA and GS ids and qualifiers, GS08, ISA14 and ISA15.
/// Whether the archive is 005010 or later.
fn learn_interchange(out: &mut Out, archive: &[(PathBuf, X12File)]) -> bool {
    let n = archive.len();
    let tally = |f: &dyn Fn(&X12File) -> Option<String>| file_tally(archive, f);
    out.section("interchange");
    let version = tally(&first_el("ISA", 12, false));
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
        &tally(&first_el("ISA", 5, false)),
        "ZZ",
    );
    let sender = out.constant("sender_id", "ISA06", &tally(&first_el("ISA", 6, true)), "");
    out.constant(
        "receiver_qualifier",
        "ISA07",
        &tally(&first_el("ISA", 7, false)),
        "ZZ",
    );
    let receiver = out.constant(
        "receiver_id",
        "ISA08",
        &tally(&first_el("ISA", 8, true)),
        "",
    );
    for (key, n_el, isa) in [("gs_sender", 2, &sender), ("gs_receiver", 3, &receiver)] {
        let t = tally(&first_el("GS", n_el, false));
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
    let gs08 = tally(&first_el("GS", 8, false));
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
    out.constant("usage", "ISA15", &tally(&first_el("ISA", 15, false)), "P");
    let ack = tally(&first_el("ISA", 14, false));
    if let Some((a, k)) = ack.mode() {
        out.comment(&format!("ISA14 {a} in {k} of {n} files"));
        out.key("ack_requested", if a == "1" { "true" } else { "false" });
    }
    five
}

/// `[delimiters]`: element, component, segment terminator, repetition and the line break.
fn learn_delimiters(out: &mut Out, archive: &[(PathBuf, X12File)], five: bool) {
    let tally = |f: &dyn Fn(&X12File) -> Option<String>| file_tally(archive, f);
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
            &tally(&first_el("ISA", 11, false)),
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
}

/// Inbound and the Ingram calls are not in the archive: the shipped defaults.
pub fn shipped_unlearned() -> String {
    match DEFAULT_MAPPING.find("[code_lists.carrier_name]") {
        Some(at) => format!(
            "\n# ---------------------------------------------------------------------------------\n\
             # Not in the 850 archive, so not learned: the shipped defaults for the 855/856 side.\n\n{}",
            &DEFAULT_MAPPING[at..]
        ),
        None => String::new(),
    }
}

/// The sections of the mapping TOML `text` (read from `source`) that `learn` does not learn
/// and keeps as they are: `[webhook]` (the renames and the program the daemon decodes Ingram's
/// webhooks with), the 855/856 side (`[po_response]`, `[po_status]`, `[inbound]`, `[ack997]`,
/// the code lists `carrier_name`, `ack_type` and `line_status`), `[limits]` and `[samples]`
/// (its `dir` made absolute, as the learned mapping may be written elsewhere).
pub fn unlearned_sections(text: &str, source: &Path) -> Result<String, InputError> {
    let all: toml::Table = toml::from_str(text).map_err(|e| InputError::Toml {
        path: source.to_path_buf(),
        error: Box::new(e),
    })?;
    let mut kept = toml::Table::new();
    for key in [
        "webhook",
        "po_response",
        "po_status",
        "inbound",
        "ack997",
        "limits",
        "samples",
    ] {
        if let Some(v) = all.get(key) {
            kept.insert(key.into(), v.clone());
        }
    }
    if let Some(toml::Value::Table(lists)) = all.get("code_lists") {
        let inbound: toml::Table = lists
            .iter()
            .filter(|(k, _)| ["carrier_name", "ack_type", "line_status"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        kept.insert("code_lists".into(), toml::Value::Table(inbound));
    }
    if let Some(toml::Value::Table(samples)) = kept.get_mut("samples") {
        if let Some(toml::Value::String(dir)) = samples.get_mut("dir") {
            let parent = source.parent().unwrap_or(Path::new("."));
            let joined = parent.join(&*dir);
            let resolved = std::path::absolute(&joined).map_err(InputError::reading(&joined))?;
            *dir = resolved.display().to_string();
        }
    }
    let body = toml::to_string(&kept).map_err(|error| InputError::TomlOut {
        path: source.to_path_buf(),
        error,
    })?;
    Ok(format!(
        "\n# ---------------------------------------------------------------------------------\n\
         # Not in the 850 archive, so not learned: kept from {} (the webhook view the daemon\n\
         # decodes Ingram's webhooks with, the 855/856 side and the program limits).\n\n{body}",
        source.display()
    ))
}

/// The archive as the `[po850]` steps read it: every file split into parts, and the paired ones
/// with their webhook PO.
struct Evidence<'a> {
    /// The number of archived 850s.
    n: usize,
    all: Vec<Parts<'a>>,
    paired: Vec<(Parts<'a>, &'a PurchaseOrder)>,
    /// Whether any webhook is paired (else codes are guessed and reported).
    webhooks: bool,
}

impl Evidence<'_> {
    /// The values `pick` yields over every archived 850.
    fn tally(&self, pick: &dyn Fn(&Parts<'_>) -> Vec<String>) -> Tally {
        let mut t = Tally::default();
        for p in &self.all {
            for v in pick(p) {
                t.add(v);
            }
        }
        t
    }

    /// Element `el` of each heading segment `id`.
    fn heading(&self, id: &'static str, el: usize) -> Tally {
        self.tally(&heading_values(id, el))
    }
}

/// Element `el` of each heading segment `id` of a PO.
fn heading_values(id: &'static str, el: usize) -> impl Fn(&Parts<'_>) -> Vec<String> {
    move |p: &Parts<'_>| {
        p.heading
            .iter()
            .filter(|s| s[0] == id)
            .map(|s| X12File::value(s, el).to_string())
            .collect::<Vec<_>>()
    }
}

/// Element `el` of each segment `id` inside the PO's PO1 loops.
fn line_values(id: &'static str, el: usize) -> impl Fn(&Parts<'_>) -> Vec<String> {
    move |p: &Parts<'_>| {
        p.lines
            .iter()
            .flatten()
            .filter(|s| s[0] == id)
            .map(|s| X12File::value(s, el).to_string())
            .collect::<Vec<_>>()
    }
}

/// The webhook line a PO1 is for: the same line number, leading zeros aside (the ERP's 855 and
/// 856 name lines the same way, and a padded PO101 is learned as `[[po850.pad]]`).
fn line_of<'p>(po: &'p PurchaseOrder, po1: &[String]) -> Option<&'p crate::domain::OrderLine> {
    po.lines
        .iter()
        .find(|x| same_value(X12File::value(po1, 1), &x.ingram_line_number))
}

/// Whether `written` is `value` as it is or filled out by a padding.
fn same_value(written: &str, value: &str) -> bool {
    written == value || compare::only_padding(written, value)
}

/// `[po850]` and what follows it: everything the 850s and their webhooks say about the
/// transaction set, step by step in the order of the TOML.
fn learn_po850(
    out: &mut Out,
    archive: &[(PathBuf, X12File)],
    pairs: &[(&X12File, &PurchaseOrder)],
) {
    let ev = Evidence {
        n: archive.len(),
        all: archive.iter().map(|(_, f)| parts(f)).collect(),
        paired: pairs.iter().map(|(f, po)| (parts(f), *po)).collect(),
        webhooks: !pairs.is_empty(),
    };
    learn_inventory(out, archive, &ev.all);
    out.section("po850");
    out.constant("purpose", "BEG01", &ev.heading("BEG", 1), "00");
    out.constant("po_type", "BEG02", &ev.heading("BEG", 2), "SA");
    let date_format = learn_date_format(out, &ev);
    out.constant("currency_entity", "CUR01", &ev.heading("CUR", 1), "");
    if let Some((v, k)) = ev.heading("CSH", 1).mode() {
        out.comment(&format!("CSH01 {v} in {k} of {} files", ev.n));
        out.key("csh", &q(v));
    } else {
        out.comment("CSH: never there");
        out.key("csh", &q(""));
    }
    let order_codes = learn_refs(out, &ev);
    learn_header_dates(out, &ev, &date_format);
    learn_terms(out, &ev);
    learn_carrier(out, &ev);
    out.constant("notes_n9_qualifier", "N901", &ev.heading("N9", 1), "");
    learn_prices(out, &ev);
    let uom = learn_line_ids(out, &ev, &date_format);
    learn_summary(out, &ev);
    learn_case(out, &ev, archive);
    learn_parties(out, &ev.all, &ev.paired, ev.n);
    learn_code_lists(out, &ev, &order_codes, &uom);
}

/// Comments on the segments: their order, which are always, sometimes or never there; and a
/// report of those no mapping key writes.
fn learn_inventory(out: &mut Out, archive: &[(PathBuf, X12File)], all: &[Parts<'_>]) {
    let n = archive.len();
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
    let _ = writeln!(
        out.text,
        "\n# Segment order in the archive: {}",
        segment_order(all)
    );
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
}

/// The order of segment IDs in the heading, in each PO1 loop and in the summary, merged over
/// the files: `ST BEG … | each PO1 loop: PO1 PID | CTT SE`.
fn segment_order(all: &[Parts<'_>]) -> String {
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
    format!("ST {heading} | each PO1 loop: {line} | {summary} SE")
}

/// `date_format`: the one under which BEG05 is the webhook's PO date (else guessed from its
/// length).
fn learn_date_format(out: &mut Out, ev: &Evidence<'_>) -> String {
    let mut formats = Tally::default();
    for (p, po) in &ev.paired {
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
                ev.paired.len()
            ));
            f.to_string()
        }
        None => {
            let lens = ev.tally(&|p: &Parts<'_>| {
                heading_values("BEG", 5)(p)
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
            if !ev.webhooks {
                out.report.push(
                    "po850.date_format: guessed from the length of BEG05 (no webhooks)".into(),
                );
            }
            f.to_string()
        }
    };
    out.key("date_format", &q(&date_format));
    date_format
}

/// The REF keys: which webhook field each REF qualifier carries.
fn ref_fields() -> [(&'static str, &'static str, FieldOf); 5] {
    [
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
    ]
}

/// The heading REFs with qualifier `qual` of a PO.
fn refs_with<'a, 'p>(p: &'a Parts<'p>, qual: &'a str) -> impl Iterator<Item = &'a &'p [String]> {
    p.heading
        .iter()
        .filter(move |s| s[0] == "REF" && X12File::value(s, 1) == qual)
}

/// The REF keys (`reseller_order_ref` …) and the order type's code list, which follows the
/// REF that carries it.
fn learn_refs(out: &mut Out, ev: &Evidence<'_>) -> BTreeMap<String, Tally> {
    let ref_qualifiers = ev.heading("REF", 1);
    let mut assigned: BTreeMap<&str, (String, String)> = BTreeMap::new();
    let mut order_codes: BTreeMap<String, Tally> = BTreeMap::new();
    for (qual, count) in &ref_qualifiers.0 {
        let chosen = ref_choice(out, ev, qual, *count, &assigned, &mut order_codes);
        match chosen {
            Some((key, why)) if !assigned.contains_key(key) => {
                assigned.insert(key, (qual.clone(), why));
            }
            _ => out.report.push(format!(
                "REF*{qual} ({count} of {} files): no webhook field matches its value; state it with [[po850.segments]]",
                ev.n
            )),
        }
    }
    for (key, name, field) in &ref_fields() {
        match assigned.get(key) {
            Some((qual, why)) => {
                out.comment(why);
                out.key(key, &q(qual));
            }
            None => {
                let had = ev
                    .paired
                    .iter()
                    .filter(|(_, po)| field(po).is_some())
                    .count();
                out.comment(&format!("{name}: in {had} paired webhooks, never in a REF"));
                out.key(key, &q(""));
            }
        }
    }
    order_codes
}

/// The REF key qualifier `qual` (in `count` files) carries, with the evidence: the webhook
/// field that matches every paired REF of it, else the order type (its values go to
/// `order_codes`), else (without webhooks) a guess from the code.
fn ref_choice(
    out: &mut Out,
    ev: &Evidence<'_>,
    qual: &str,
    count: usize,
    assigned: &BTreeMap<&str, (String, String)>,
    order_codes: &mut BTreeMap<String, Tally>,
) -> Option<(&'static str, String)> {
    let n = ev.n;
    let fields = ref_fields();
    let mut hits: BTreeMap<&str, usize> = BTreeMap::new();
    for (p, po) in &ev.paired {
        for s in refs_with(p, qual) {
            for (key, _, field) in &fields {
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
    let total_paired: usize = ev
        .paired
        .iter()
        .map(|(p, _)| refs_with(p, qual).count())
        .sum();
    match best {
        Some((key, h)) if *h == total_paired && *h > 0 => {
            let (key, name) = fields
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(k, n, _)| (*k, *n))?;
            Some((
                key,
                format!("REF*{qual} carries {name} in {h} of {total_paired} paired REF*{qual}"),
            ))
        }
        _ if ev.webhooks
            && total_paired > 0
            && !assigned.contains_key("order_type_ref")
            && count == n =>
        {
            for (p, po) in &ev.paired {
                for s in refs_with(p, qual) {
                    order_codes
                        .entry(po.order_type.clone())
                        .or_default()
                        .add(X12File::value(s, 2));
                }
            }
            Some((
                "order_type_ref",
                format!(
                    "REF*{qual} in all {n} files, its value follows orderType (code list below)"
                ),
            ))
        }
        _ if !ev.webhooks => {
            let guess = match qual {
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
    }
}

/// `iso` in the learned date format.
fn x12_date(iso: &Option<String>, date_format: &str) -> Option<String> {
    iso.as_deref().and_then(|d| format_date(d, date_format))
}

/// The header DTM qualifiers of the PO date and the requested delivery date.
fn learn_header_dates(out: &mut Out, ev: &Evidence<'_>, date_format: &str) {
    let n = ev.n;
    let date = |iso: &Option<String>| x12_date(iso, date_format);
    let mut dtm_hits: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (p, po) in &ev.paired {
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
    let dtm_codes = ev.heading("DTM", 1);
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
            None if !ev.webhooks && dtm_codes.0.contains_key(default) => {
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
            && (ev.webhooks || !["004", "002"].contains(&qual.as_str()))
        {
            out.report.push(format!(
                "DTM*{qual} ({k} of {n} files): no webhook date matches it"
            ));
        }
    }
}

/// ITD: the terms type, basis date and text (ITD07's days as `{days}`).
fn learn_terms(out: &mut Out, ev: &Evidence<'_>) {
    let itd = ev.heading("ITD", 1);
    if itd.total() == 0 {
        out.comment("ITD: never there");
        out.key("terms_type", &q(""));
        return;
    }
    out.constant("terms_type", "ITD01", &itd, "");
    out.constant("terms_basis_date", "ITD02", &ev.heading("ITD", 2), "");
    let described = ev.tally(&|p: &Parts<'_>| {
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

/// TD5: whether it is written, its routing sequence and id qualifier.
fn learn_carrier(out: &mut Out, ev: &Evidence<'_>) {
    let td5 = ev.heading("TD5", 1);
    if td5.total() == 0 {
        let had = ev
            .paired
            .iter()
            .filter(|(_, po)| po.ship_via.is_some())
            .count();
        out.comment(&format!(
            "TD5: never there (shipVia in {had} paired webhooks)"
        ));
        out.key("td5", "false");
        return;
    }
    out.comment(&format!("TD5 in {} of {} files", td5.total(), ev.n));
    out.key("td5", "true");
    out.constant("carrier_routing_sequence", "TD501", &td5, "");
    let quals = ev.tally(&|p: &Parts<'_>| {
        heading_values("TD5", 2)(p)
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect()
    });
    out.constant("carrier_id_qualifier", "TD502", &quals, "2");
}

/// PO105 and the number format of PO104: the webhook's price with a fixed number of decimals,
/// or as written.
fn learn_prices(out: &mut Out, ev: &Evidence<'_>) {
    let basis = ev.tally(&|p: &Parts<'_>| {
        line_values("PO1", 5)(p)
            .into_iter()
            .filter(|v| !v.is_empty())
            .collect()
    });
    let line_count: usize = ev.all.iter().map(|p| p.lines.len()).sum();
    out.constant_in(
        "price_basis",
        "PO105",
        &basis,
        "",
        &format!("{line_count} lines"),
    );
    let (mut plain, mut fixed): (usize, BTreeMap<u32, usize>) = (0, BTreeMap::new());
    let mut priced = 0;
    for (p, po) in &ev.paired {
        for l in &p.lines {
            let po1 = l[0];
            let Some(price) = line_of(po, po1).and_then(|x| x.unit_price) else {
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
}

/// What the paired PO1 loops show: which qualifier carries which product id, the units of
/// measure each webhook unit became, and the line DTM qualifier of the requested ship date.
#[derive(Default)]
struct LineHits<'k> {
    ids: BTreeMap<(&'k str, String), usize>,
    uom: BTreeMap<String, Tally>,
    ship_dtm: Tally,
}

fn line_hits(ev: &Evidence<'_>, date_format: &str) -> LineHits<'static> {
    let mut hits = LineHits::default();
    for (p, po) in &ev.paired {
        for l in &p.lines {
            let po1 = l[0];
            let Some(line) = line_of(po, po1) else {
                continue;
            };
            hits.uom
                .entry(line.unit_of_measure.clone())
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
                    if field.as_deref().is_some_and(|f| same_value(value, f)) {
                        *hits.ids.entry((key, qual.clone())).or_default() += 1;
                    }
                }
                i += 2;
            }
            for s in l.iter().filter(|s| s[0] == "DTM") {
                if x12_date(&line.requested_ship_date, date_format).as_deref()
                    == Some(X12File::value(s, 2))
                {
                    hits.ship_dtm.add(X12File::value(s, 1));
                }
            }
        }
    }
    hits
}

/// The PO1 product id qualifiers, the line DTM qualifier and PID; the units of measure seen,
/// for the code list.
fn learn_line_ids(out: &mut Out, ev: &Evidence<'_>, date_format: &str) -> BTreeMap<String, Tally> {
    let hits = line_hits(ev, date_format);
    let all_ids = ev.tally(&|p: &Parts<'_>| {
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
        let best = hits
            .ids
            .iter()
            .filter(|((k, _), _)| *k == key)
            .max_by_key(|(_, h)| **h);
        match best {
            Some(((_, qual), h)) => {
                out.comment(&format!("PO1 {qual} carries {name} in {h} paired lines"));
                out.key(key, &q(qual));
            }
            None if !ev.webhooks && guesses.iter().any(|g| all_ids.0.contains_key(*g)) => {
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
    match hits.ship_dtm.mode() {
        Some((qual, k)) => {
            out.comment(&format!(
                "line DTM*{qual} carries requestedShipDate in {k} paired lines"
            ));
            out.key("requested_ship_dtm", &q(qual));
        }
        None => {
            let line_dtm = ev.tally(&line_values("DTM", 1));
            let guess = if ev.webhooks {
                None
            } else {
                line_dtm.mode().map(|(v, _)| v.to_string())
            };
            out.comment("requestedShipDate: no line DTM matched it");
            out.key("requested_ship_dtm", &q(guess.as_deref().unwrap_or("")));
        }
    }
    let pid = ev.tally(&line_values("PID", 1));
    out.comment(&format!("PID in {} lines", pid.total()));
    out.key(
        "line_description",
        if pid.total() > 0 { "true" } else { "false" },
    );
    hits.uom
}

/// CTT02 (the hash total) and AMT.
fn learn_summary(out: &mut Out, ev: &Evidence<'_>) {
    let n = ev.n;
    let ctt2 = ev.tally(&|p: &Parts<'_>| {
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
    let amt = ev.tally(&|p: &Parts<'_>| {
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
}

/// `uppercase`: free text as the webhook had it, or upper-cased (from the N1 names when
/// webhooks are paired, else from any lower case in the free text).
fn learn_case(out: &mut Out, ev: &Evidence<'_>, archive: &[(PathBuf, X12File)]) {
    let (mut upper, mut asis) = (0, 0);
    for (p, po) in &ev.paired {
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
    if ev.webhooks {
        out.comment(&format!("N102 is the webhook's name upper-cased in {upper} and as written in {asis} paired parties"));
        out.key("uppercase", if upper >= asis { "true" } else { "false" });
        return;
    }
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
        "free text (N1, N3, N4, PID, MSG) has lower case in {lower} of {} files",
        ev.n
    ));
    out.key("uppercase", if lower == 0 { "true" } else { "false" });
}

/// The code lists: order type, unit of measure, carrier.
fn learn_code_lists(
    out: &mut Out,
    ev: &Evidence<'_>,
    order_codes: &BTreeMap<String, Tally>,
    uom: &BTreeMap<String, Tally>,
) {
    let code_list = |out: &mut Out, name: &str, what: &str, codes: &BTreeMap<String, Tally>| {
        out.section(&format!("code_lists.{name}"));
        for (from, to) in codes {
            if let Some((v, k)) = to.mode() {
                out.comment(&format!("{what} {from} → {v} in {k} of {}", to.total()));
                out.key(&q(from), &q(v));
            }
        }
    };
    code_list(out, "order_type", "orderType", order_codes);
    code_list(out, "unit_of_measure", "unitOfMeasure", uom);
    let mut carriers: BTreeMap<String, Tally> = BTreeMap::new();
    for (p, po) in &ev.paired {
        if let (Some(via), Some(s)) = (&po.ship_via, p.heading.iter().find(|s| s[0] == "TD5")) {
            let scac = X12File::value(s, 3);
            if !scac.is_empty() {
                carriers.entry(via.clone()).or_default().add(scac);
            }
        }
    }
    code_list(out, "carrier", "shipVia", &carriers);
}

/// One `[[po850.parties]]` per N1 entity code, in the order they appear.
fn learn_parties(
    out: &mut Out,
    all: &[Parts<'_>],
    paired: &[(Parts<'_>, &PurchaseOrder)],
    n: usize,
) {
    for entity in party_entities(all) {
        let _ = writeln!(out.text, "\n[[po850.parties]]");
        let source = party_source(out, paired, &entity);
        out.key("source", &q(&source));
        let in_files = all
            .iter()
            .filter(|p| !party_loops(p, &entity).is_empty())
            .count();
        out.comment(&format!("N1*{entity} in {in_files} of {n} files"));
        out.key("entity", &q(&entity));
        party_details(out, all, &entity);
    }
}

/// The N1 entity codes, in the order they appear, merged over the files.
fn party_entities(all: &[Parts<'_>]) -> Vec<String> {
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
    entities
}

/// The PO's N1 loops of `entity`: the N1 and its N2, N3, N4, REF and PER.
fn party_loops(p: &Parts<'_>, entity: &str) -> Vec<Vec<Vec<String>>> {
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
}

/// The webhook address an N1 entity names (by N102), else a guess from the entity code.
fn party_source(out: &mut Out, paired: &[(Parts<'_>, &PurchaseOrder)], entity: &str) -> String {
    let mut sources = Tally::default();
    for (p, po) in paired {
        for l in party_loops(p, entity) {
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
    match sources.mode() {
        Some((s, k)) => {
            out.comment(&format!(
                "N1*{entity} names the webhook's {s} in {k} paired files"
            ));
            s.to_string()
        }
        None => {
            let guess = match entity {
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
    }
}

/// A party's N103/N104 constant, whether it has an address, and its PER01.
fn party_details(out: &mut Out, all: &[Parts<'_>], entity: &str) {
    let mut ids = Tally::default();
    let (mut with_address, mut with_per, mut loops_seen) = (0, 0, 0);
    let mut functions = Tally::default();
    for p in all {
        for l in party_loops(p, entity) {
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

/// How the values of one element compare between the archive and our rendering of the same
/// PO without padding.
#[derive(Debug, Default)]
struct PadSeen {
    /// `(fill, on the left, width)` → how many archived values were ours filled out so.
    padded: BTreeMap<(char, bool, usize), usize>,
    /// Length → how many archived values were ours unchanged.
    plain: BTreeMap<usize, usize>,
    /// Values that differ otherwise (another key governs them).
    other: usize,
}

/// `(fill, on the left)` when `written` is `ours` filled out with zeros or spaces on the left
/// or spaces on the right.
fn fill_of(written: &str, ours: &str) -> Option<(char, bool)> {
    if written.len() <= ours.len() {
        return None;
    }
    let extra = written.len() - ours.len();
    if let Some(head) = written.strip_suffix(ours).filter(|h| h.len() == extra) {
        for fill in ['0', ' '] {
            if head.chars().all(|c| c == fill) {
                return Some((fill, true));
            }
        }
    }
    written
        .strip_prefix(ours)
        .filter(|tail| tail.chars().all(|c| c == ' '))
        .map(|_| (' ', false))
}

/// Renders each paired PO with the mapping learned so far (which pads nothing) and compares
/// its elements with the archive's: where the archive's value is ours filled out.
fn padding_seen(
    mapping: &Mapping,
    pairs: &[(&X12File, &PurchaseOrder)],
) -> BTreeMap<(String, usize), PadSeen> {
    let mut seen: BTreeMap<(String, usize), PadSeen> = BTreeMap::new();
    for (van, po) in pairs {
        let Ok(ours) = compare::render_ours(po, mapping, van) else {
            continue;
        };
        for (v, o) in van.segments.iter().zip(&ours.segments) {
            let envelope = matches!(v[0].as_str(), "ISA" | "GS" | "ST" | "SE" | "GE" | "IEA");
            if v[0] != o[0] || envelope {
                continue;
            }
            for (n, (a, b)) in v.iter().zip(o).enumerate().skip(1) {
                if b.is_empty() {
                    continue;
                }
                let e = seen.entry((v[0].clone(), n)).or_default();
                if a == b {
                    *e.plain.entry(b.len()).or_default() += 1;
                } else if let Some((fill, left)) = fill_of(a, b) {
                    *e.padded.entry((fill, left, a.len())).or_default() += 1;
                } else {
                    e.other += 1;
                }
            }
        }
    }
    seen
}

/// `[[po850.pad]]`: each element whose archived values are the webhook's filled out to one
/// width with one fill on one side (and never a shorter value left as it is). The mapping
/// learned so far must load; when it does not, [`learn_and_verify`] says so.
fn learn_padding(out: &mut Out, pairs: &[(&X12File, &PurchaseOrder)], unlearned: &str) {
    if pairs.is_empty() {
        return;
    }
    let text = format!("{}{unlearned}", out.text);
    let Ok(mapping) = Mapping::from_str(&text, Path::new("learned.toml")) else {
        return;
    };
    for ((seg, n), s) in padding_seen(&mapping, pairs) {
        if s.padded.is_empty() {
            continue;
        }
        let element = format!("{seg}{n:02}");
        let total = s.padded.values().sum::<usize>() + s.plain.values().sum::<usize>() + s.other;
        let widths: Vec<&(char, bool, usize)> = s.padded.keys().collect();
        let (fill, left, width) = *widths[0];
        let shorter_plain: usize = s.plain.range(..width).map(|(_, k)| k).sum();
        if widths.len() > 1 || shorter_plain > 0 {
            let ways: Vec<String> = s
                .padded
                .iter()
                .map(|((f, l, w), k)| format!("{} {} to {w} ×{k}", q(&f.to_string()), side(*l)))
                .collect();
            out.report.push(format!(
                "{element}: padded in more than one way ({}, and {shorter_plain} shorter values as they are): no [[po850.pad]] fits them all",
                ways.join(", ")
            ));
            continue;
        }
        let longer: usize = s.plain.range(width..).map(|(_, k)| k).sum();
        let _ = writeln!(out.text, "\n[[po850.pad]]");
        out.comment(&format!(
            "{element} is the webhook's value filled with {} on the {} to {width} in {} of {total} paired values ({longer} already {width} or longer)",
            q(&fill.to_string()),
            side(left),
            s.padded.values().sum::<usize>(),
        ));
        out.key("element", &q(&element));
        out.key("width", &width.to_string());
        out.key("fill", &q(&fill.to_string()));
        out.key("side", &q(side(left)));
    }
}

fn side(left: bool) -> &'static str {
    if left {
        "left"
    } else {
        "right"
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
        .filter(|r| !matches!(r.outcome, Verdict::Identical | Verdict::NoVan850))
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
pub fn read_archive(dir: &Path) -> Result<(super::Archive, Vec<String>), InputError> {
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
    learn_onto_and_verify(archive, pos, &shipped_unlearned())
}

/// [`learn_and_verify`] with the unlearned sections given (see [`learn_onto`]).
pub fn learn_onto_and_verify(
    archive: &[(PathBuf, X12File)],
    pos: &[PurchaseOrder],
    unlearned: &str,
) -> (Learned, Vec<String>) {
    let learned = learn_onto(archive, pos, unlearned);
    let failures = match Mapping::from_str(&learned.toml, Path::new("learned.toml")) {
        Ok(m) => verify(&m, archive, pos),
        Err(e) => vec![format!("the learned mapping does not load: {e}")],
    };
    (learned, failures)
}

/// What `mapping learn` reads: the archive, the webhook POs decoded through the mapping, the
/// files it could not read, and the sections it keeps from the mapping.
struct Inputs {
    archive: super::Archive,
    pos: Vec<PurchaseOrder>,
    problems: Vec<String>,
    unlearned: String,
}

/// Reads the archive, `--mapping` (or the shipped mapping) and the webhooks through it, as the
/// daemon would decode them (its `[webhook]` renames and program).
fn inputs(from: &Path, webhooks: Option<&Path>, mapping: Option<&Path>) -> Result<Inputs, Status> {
    let fail = |e: String| {
        eprintln!("edi-bridge mapping learn: {e}");
        Status::Usage
    };
    let (archive, mut problems) = read_archive(from).map_err(|e| fail(e.to_string()))?;
    if archive.is_empty() {
        return Err(fail(format!("no 850 in {}", from.display())));
    }
    let base = super::load_mapping(mapping)?;
    let unlearned = match mapping {
        Some(path) => std::fs::read_to_string(path)
            .map_err(InputError::reading(path))
            .and_then(|text| unlearned_sections(&text, path))
            .map_err(|e| fail(e.to_string()))?,
        None => shipped_unlearned(),
    };
    let pos = match webhooks {
        Some(dir) => {
            let (pos, more) = compare::webhook_pos(dir, &base).map_err(|e| fail(e.to_string()))?;
            problems.extend(more);
            pos.into_iter().map(|(_, po)| po).collect()
        }
        None => Vec::new(),
    };
    Ok(Inputs {
        archive,
        pos,
        problems,
        unlearned,
    })
}

/// The `mapping learn` command: the TOML on stdout, the report on stderr; exit 1 when the
/// learned mapping does not reproduce every paired PO of the archive. With `--mapping`, the
/// webhooks are read through that mapping and its unlearned sections are kept.
pub fn run(from: &Path, webhooks: Option<&Path>, mapping: Option<&Path>) -> Status {
    let Inputs {
        archive,
        pos,
        problems,
        unlearned,
    } = match inputs(from, webhooks, mapping) {
        Ok(i) => i,
        Err(status) => return status,
    };
    let (learned, failures) = learn_onto_and_verify(&archive, &pos, &unlearned);
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
