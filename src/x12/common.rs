//! Building blocks shared by the typed transaction sets: REF, DTM, product ID pairs, PER
//! contacts and N1 parties, each with a reader (from `Segment`) and a writer (to `OutSegment`),
//! plus small helpers for positioned "missing segment/element" diagnostics.

use super::envelope::Transaction;
use super::error::{Diagnostic, DiagnosticCode, Position};
use super::segment::Segment;
use super::writer::OutSegment;
use serde::Serialize;

/// REF: qualifier, value, description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ref {
    pub qualifier: String,
    pub value: String,
    pub description: Option<String>,
}

/// DTM: qualifier, date (CCYYMMDD), time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dtm {
    pub qualifier: String,
    pub date: String,
    pub time: Option<String>,
}

/// A 235/234 product/service ID pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductId {
    pub qualifier: String,
    pub value: String,
}

/// PER contact: function code, name, (qualifier, number) pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub function: String,
    pub name: Option<String>,
    pub comms: Vec<(String, String)>,
}

/// N1 loop: N1, N2, N3, N4, PER.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Party {
    pub entity: String,
    pub name: Option<String>,
    pub id_qualifier: Option<String>,
    pub id: Option<String>,
    /// N201/N202 values.
    pub extra_names: Vec<String>,
    /// N301/N302 values, two per N3.
    pub address: Vec<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub contacts: Vec<Contact>,
}

/// Trimmed element text, None when blank.
pub(super) fn txt(seg: &Segment<'_>, n: usize) -> Option<String> {
    seg.text(n)
}

/// Trimmed, uppercased code value.
pub(super) fn code(seg: &Segment<'_>, n: usize) -> Option<String> {
    seg.text(n).map(|s| s.to_ascii_uppercase())
}

/// A numeric element (R or N: a quantity, a price): its text, or None with an error naming
/// segment and element when it is there but not a number (`TEN`, `1,5`, `--2`).
pub(super) fn number(seg: &Segment<'_>, n: usize, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let v = txt(seg, n)?;
    if is_number(&v) {
        return Some(v);
    }
    diags.push(Diagnostic::error(
        DiagnosticCode::NotNumeric,
        format!(
            "{}{:02} '{}' is not a number",
            seg.id().to_ascii_lowercase(),
            n,
            v.chars().take(40).collect::<String>()
        ),
        seg.position().with_element(n),
    ));
    None
}

/// X12 R/N syntax: an optional minus, digits with at most one decimal point, at least one digit.
pub(super) fn is_number(v: &str) -> bool {
    let body = v.strip_prefix('-').unwrap_or(v);
    let mut digits = 0usize;
    let mut points = 0usize;
    for c in body.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => points += 1,
            _ => return false,
        }
    }
    digits > 0 && points <= 1
}

pub(super) fn missing_element(seg: &Segment<'_>, n: usize) -> Diagnostic {
    Diagnostic::error(
        DiagnosticCode::MissingElement,
        format!("{}{:02} missing", seg.id().to_ascii_lowercase(), n),
        seg.position().with_element(n),
    )
}

/// A mandatory segment missing from a set; `at` is the ST (or the segment it should follow):
/// the diagnostic names the missing segment right after it, as AK3 wants.
pub(super) fn missing_segment(what: &str, at: Position) -> Diagnostic {
    let mut at = at;
    at.segment_id = Some(what.to_ascii_uppercase());
    at.segment_in_set = at.segment_in_set.map(|n| n + 1);
    at.segment_index = at.segment_index.map(|n| n + 1);
    Diagnostic::error(
        DiagnosticCode::MissingSegment,
        format!("mandatory segment {what} missing"),
        at,
    )
}

/// Where the set starts (its ST): a missing heading segment is reported right after it.
pub(super) fn set_start(tx: &Transaction<'_>) -> Position {
    tx.segments
        .first()
        .map(|seg| seg.position())
        .unwrap_or_default()
}

pub(super) fn unexpected(seg: &Segment<'_>, why: &str) -> Diagnostic {
    Diagnostic::warning(
        DiagnosticCode::UnexpectedSegment,
        format!("{} {}", seg.id().to_ascii_lowercase(), why),
        seg.position(),
    )
}

/// The set's heading segment (BAK, BSN) a second time: an error, and it is not read over the
/// first (two documents run together in one ST/SE would otherwise mix one's lines with the
/// other's PO).
pub(super) fn repeated_heading(seg: &Segment<'_>) -> Diagnostic {
    Diagnostic::error(
        DiagnosticCode::UnexpectedSegment,
        format!(
            "{} appears again: a set has one heading; send each document in its own ST/SE",
            seg.id().to_ascii_lowercase()
        ),
        seg.position(),
    )
}

/// Mandatory element: text or "" plus a diagnostic.
pub(super) fn required(seg: &Segment<'_>, n: usize, diags: &mut Vec<Diagnostic>) -> String {
    match txt(seg, n) {
        Some(v) => v,
        None => {
            diags.push(missing_element(seg, n));
            String::new()
        }
    }
}

pub(super) fn parse_ref(seg: &Segment<'_>, diags: &mut Vec<Diagnostic>) -> Ref {
    let qualifier = code(seg, 1).unwrap_or_else(|| {
        diags.push(missing_element(seg, 1));
        String::new()
    });
    Ref {
        qualifier,
        value: txt(seg, 2).unwrap_or_default(),
        description: txt(seg, 3),
    }
}

pub(super) fn parse_dtm(seg: &Segment<'_>, diags: &mut Vec<Diagnostic>) -> Dtm {
    let qualifier = code(seg, 1).unwrap_or_else(|| {
        diags.push(missing_element(seg, 1));
        String::new()
    });
    Dtm {
        qualifier,
        date: txt(seg, 2).unwrap_or_default(),
        time: txt(seg, 3),
    }
}

/// Qualifier/value pairs starting at element `first`, `count` pairs.
pub(super) fn product_ids(seg: &Segment<'_>, first: usize, count: usize) -> Vec<ProductId> {
    let mut out = Vec::new();
    for k in 0..count {
        let q = first + 2 * k;
        if let (Some(qualifier), Some(value)) = (code(seg, q), txt(seg, q + 1)) {
            out.push(ProductId { qualifier, value });
        }
    }
    out
}

pub(super) fn parse_per(seg: &Segment<'_>) -> Contact {
    let mut comms = Vec::new();
    for q in [3, 5, 7] {
        if let (Some(a), Some(b)) = (code(seg, q), txt(seg, q + 1)) {
            comms.push((a, b));
        }
    }
    Contact {
        function: code(seg, 1).unwrap_or_default(),
        name: txt(seg, 2),
        comms,
    }
}

pub(super) fn parse_n1(seg: &Segment<'_>, diags: &mut Vec<Diagnostic>) -> Party {
    let entity = code(seg, 1).unwrap_or_else(|| {
        diags.push(missing_element(seg, 1));
        String::new()
    });
    Party {
        entity,
        name: txt(seg, 2),
        id_qualifier: code(seg, 3),
        id: txt(seg, 4),
        ..Party::default()
    }
}

/// Apply N2/N3/N4/PER to a party; false when the segment is not part of an N1 loop.
pub(super) fn party_detail(p: &mut Party, seg: &Segment<'_>) -> bool {
    if seg.is("N2") {
        p.extra_names.extend(txt(seg, 1));
        p.extra_names.extend(txt(seg, 2));
    } else if seg.is("N3") {
        p.address.extend(txt(seg, 1));
        p.address.extend(txt(seg, 2));
    } else if seg.is("N4") {
        p.city = txt(seg, 1);
        p.state = txt(seg, 2);
        p.postal_code = txt(seg, 3);
        p.country = txt(seg, 4);
    } else if seg.is("PER") {
        p.contacts.push(parse_per(seg));
    } else {
        return false;
    }
    true
}

pub(super) fn ref_out(r: &Ref) -> OutSegment {
    OutSegment::new("REF")
        .el(&r.qualifier)
        .el(&r.value)
        .opt(r.description.as_deref())
}

pub(super) fn dtm_out(d: &Dtm) -> OutSegment {
    OutSegment::new("DTM")
        .el(&d.qualifier)
        .el(&d.date)
        .opt(d.time.as_deref())
}

pub(super) fn per_out(c: &Contact) -> OutSegment {
    let mut s = OutSegment::new("PER")
        .el(&c.function)
        .opt(c.name.as_deref());
    for (q, v) in c.comms.iter().take(3) {
        s = s.el(q).el(v);
    }
    s
}

pub(super) fn party_out(p: &Party) -> Vec<OutSegment> {
    let mut out = vec![OutSegment::new("N1")
        .el(&p.entity)
        .opt(p.name.as_deref())
        .opt(p.id_qualifier.as_deref())
        .opt(p.id.as_deref())];
    for pair in p.extra_names.chunks(2) {
        let mut s = OutSegment::new("N2");
        for v in pair {
            s = s.el(v);
        }
        out.push(s);
    }
    for pair in p.address.chunks(2) {
        let mut s = OutSegment::new("N3");
        for v in pair {
            s = s.el(v);
        }
        out.push(s);
    }
    if p.city.is_some() || p.state.is_some() || p.postal_code.is_some() || p.country.is_some() {
        out.push(
            OutSegment::new("N4")
                .opt(p.city.as_deref())
                .opt(p.state.as_deref())
                .opt(p.postal_code.as_deref())
                .opt(p.country.as_deref()),
        );
    }
    out.extend(p.contacts.iter().map(per_out));
    out
}
