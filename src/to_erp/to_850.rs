//! The pure translator from a domain [`PurchaseOrder`] and the mapping to an X12 850 interchange:
//! which webhook field lands in which segment and qualifier is read from [`crate::mapping::Po850Settings`], identities and
//! delimiters from the mapping's envelope sections, control numbers from the caller. Data in,
//! bytes out; no I/O, no clock (the envelope instant is a parameter). The `[[po850.segments]]`
//! expressions run through the mapping's runner, which in the daemon is a worker process under
//! the mapping's `[limits]`: a render may then wait up to the time limit per expression, so it is
//! called off the async runtime.
//!
//! [`check`] runs before a PO is accepted: every value the 850 must carry exactly (numbers, and
//! the identifiers the ERP echoes back in its 855/856: PO number, line numbers, part numbers)
//! has to fit its element unchanged under the mapping, or the webhook is refused naming the
//! field. Every other value written (codes after the mapping's code lists, names, addresses,
//! contacts, references, descriptions) must fit its element's X12 minimum and maximum length
//! once sanitised (transliterated to ASCII, delimiters replaced): what does not fit is refused,
//! never cut. Notes alone are split over as many MSG segments as they need, and a line
//! description over as many PID segments (exactly: see `description_parts`).

use time::OffsetDateTime;

use crate::domain::{Address, OrderLine, PurchaseOrder};
use crate::ingram::order::FieldError;
use serde_json::Value;

use crate::mapping::{
    CodeLists, Mapping, PartyMap, PartySource, Po850Settings, SegmentPlace, X12Version,
};
use crate::x12;

/// Refuses `po` (the element at `index` of the webhook's `resource`) when the 850 written under
/// `mapping` could not carry one of its numbers or round-trip identifiers exactly: the error names
/// the webhook field by path, with the mapping's field names.
pub fn check(po: &PurchaseOrder, index: usize, mapping: &Mapping) -> Result<(), FieldError> {
    let opts = write_options(mapping);
    let m = &mapping.po850;
    let n = &mapping.webhook;
    let at = |field: &str| format!("resource[{index}].{field}");
    let line_at = |i: usize, field: &str| format!("resource[{index}].{}[{i}].{field}", n.lines);
    let fail = |field: String, element: &str, problem: String| FieldError {
        field,
        message: format!("cannot be carried exactly by the 850 ({element}): {problem}"),
    };
    let ident = |v: &str, seg: &str, el: usize| {
        x12::identifier_problem(v, &opts, x12::max_len(&opts, seg, el))
    };
    let number =
        |v: &str, seg: &str, el: usize| x12::number_problem(v, x12::max_len(&opts, seg, el));
    let po_field = at("ingramPurchaseOrderNumber");
    if let Some(p) = ident(&po.po_number, "BEG", 3) {
        return Err(fail(po_field, "BEG03", p));
    }
    if po.po_number.len() > LONG_PO && !m.long_po_ref.is_empty() {
        if let Some(p) = ident(&po.po_number, "REF", 2) {
            return Err(fail(po_field, "REF02", p));
        }
    }
    for (i, l) in po.lines.iter().enumerate() {
        if let Some(p) = ident(&l.ingram_line_number, "PO1", 1) {
            return Err(fail(line_at(i, &n.ingram_line_number), "PO101", p));
        }
        let mut position = 7;
        for (q, v, name) in [
            (
                &m.vendor_part_qualifier,
                &l.vendor_part_number,
                &n.vendor_part_number,
            ),
            (
                &m.ingram_part_qualifier,
                &l.ingram_part_number,
                &n.ingram_part_number,
            ),
            (&m.upc_qualifier, &l.upc, &n.upc),
        ] {
            if let (false, Some(v)) = (q.is_empty(), v) {
                if let Some(p) = ident(v, "PO1", position) {
                    return Err(fail(line_at(i, name), &format!("PO1{position:02}"), p));
                }
                position += 2;
            }
        }
        if let Some(p) = number(&l.quantity.to_string(), "PO1", 2) {
            return Err(fail(line_at(i, &n.quantity), "PO102", p));
        }
        if let Some(price) = l.unit_price {
            let Some(text) = price_text(price, m.price_decimals) else {
                return Err(fail(
                    line_at(i, &n.unit_price),
                    "PO104",
                    format!(
                        "{price} has more decimals than [po850] price_decimals = {}",
                        m.price_decimals.unwrap_or_default()
                    ),
                ));
            };
            if let Some(p) = number(&text, "PO1", 4) {
                return Err(fail(line_at(i, &n.unit_price), "PO104", p));
            }
        }
    }
    fits(po, index, mapping)?;
    if let Some(p) = number(&po.lines.len().to_string(), "CTT", 1) {
        return Err(fail(at(&n.lines), "CTT01, the number of lines", p));
    }
    if m.hash_total {
        let sum: u128 = po.lines.iter().map(|l| u128::from(l.quantity)).sum();
        if let Some(p) = number(&sum.to_string(), "CTT", 2) {
            return Err(fail(at(&n.lines), "CTT02, the sum of the quantities", p));
        }
    }
    if m.total_amount && po.lines.iter().any(|l| l.unit_price.is_some()) {
        let total = price_text(po.total(), m.price_decimals).unwrap_or_default();
        if let Some(p) = number(&total, "AMT", 2) {
            return Err(fail(at(&n.lines), "AMT02, the order total", p));
        }
    }
    Ok(())
}

/// The part of [`check`] for values that are neither numbers nor echoed identifiers: each one the
/// 850 writes must fit its element's minimum and maximum length as the writer sanitises it.
fn fits(po: &PurchaseOrder, index: usize, mapping: &Mapping) -> Result<(), FieldError> {
    let fit = Fit {
        opts: write_options(mapping),
        index,
        mapping,
    };
    fit.heading(po)?;
    for pm in &mapping.po850.parties {
        fit.party(po, pm)?;
    }
    fit.lines(po)
}

/// [`fits`] for one PO: the write options, and the PO's place in the webhook's `resource`.
struct Fit<'m> {
    opts: x12::WriteOptions,
    index: usize,
    mapping: &'m Mapping,
}

impl Fit<'_> {
    /// The webhook field's path.
    fn at(&self, field: &str) -> String {
        format!("resource[{}].{field}", self.index)
    }

    /// `value` as element `el` of `seg`, or the error naming `field`.
    fn check(&self, value: &str, seg: &str, el: usize, field: String) -> Result<(), FieldError> {
        match x12::fit_problem(value, &self.opts, seg, el) {
            None => Ok(()),
            Some(problem) => Err(FieldError {
                field,
                message: format!(
                    "cannot be carried exactly by the 850 ({seg}{el:02}): {problem}; it is refused, not cut"
                ),
            }),
        }
    }

    /// The heading's REFs, CUR and TD5.
    fn heading(&self, po: &PurchaseOrder) -> Result<(), FieldError> {
        let m = &self.mapping.po850;
        let n = &self.mapping.webhook;
        let lists = &self.mapping.code_lists;
        let order_type =
            CodeLists::lookup(&lists.order_type, &po.order_type).unwrap_or(&po.order_type);
        for (qualifier, value, field) in [
            (
                &m.reseller_order_ref,
                Some(po.reseller_order_number.as_str()),
                "resellerOrderNumber",
            ),
            (
                &m.vendor_quote_ref,
                po.vendor_quote_number.as_deref(),
                "vendorQuoteNumber",
            ),
            (
                &m.special_bid_ref,
                po.special_bid_number.as_deref(),
                n.special_bid_number.as_str(),
            ),
            (&m.order_type_ref, Some(order_type), "orderType"),
        ] {
            if let (false, Some(v)) = (qualifier.is_empty(), value) {
                self.check(v, "REF", 2, self.at(field))?;
            }
        }
        if let (false, Some(c)) = (m.currency_entity.is_empty(), &po.currency) {
            self.check(c, "CUR", 2, self.at("currencyCode"))?;
        }
        if let (true, Some(via)) = (m.td5, &po.ship_via) {
            if let Some(scac) = CodeLists::lookup(&lists.carrier, via) {
                self.check(scac, "TD5", 3, self.at(&n.ship_via))?;
            }
            self.check(via, "TD5", 5, self.at(&n.ship_via))?;
        }
        Ok(())
    }

    /// One party of the mapping: its N1 name, N3/N4 address and PER contact.
    fn party(&self, po: &PurchaseOrder, pm: &PartyMap) -> Result<(), FieldError> {
        let n = &self.mapping.webhook;
        let key = match pm.source {
            PartySource::ShipTo => &n.ship_to,
            PartySource::BillTo => &n.bill_to,
            PartySource::EndUser => &n.end_user,
            PartySource::Reseller => &n.reseller,
        };
        let Some(a) = address(po, pm.source) else {
            return Ok(());
        };
        let field = |name: &str| self.at(&format!("{key}.{name}"));
        match (&a.company_name, &a.contact) {
            (Some(name), _) => self.check(name, "N1", 2, field(&n.company_name))?,
            (None, Some(name)) => self.check(name, "N1", 2, field(&n.contact))?,
            (None, None) => {}
        }
        if pm.address {
            // The lines present, in order (an absent line 1 makes line 2 the first).
            for (i, line) in a.address_lines.iter().enumerate() {
                let name = [&n.address_line1, &n.address_line2, &n.address_line3][i.min(2)];
                self.check(line, "N3", i % 2 + 1, field(name))?;
            }
            for (value, el, name) in [
                (&a.city, 1, &n.city),
                (&a.state, 2, &n.state),
                (&a.postal_code, 3, &n.postal_code),
                (&a.country_code, 4, &n.country_code),
            ] {
                if let Some(v) = value {
                    self.check(v, "N4", el, field(name))?;
                }
            }
        }
        if !pm.contact_function.is_empty() {
            if let Some(c) = &a.contact {
                self.check(c, "PER", 2, field(&n.contact))?;
            }
            let mut el = 4;
            for (value, name) in [(&a.phone, &n.phone), (&a.email, &n.email)] {
                if let Some(v) = value {
                    self.check(v, "PER", el, field(name))?;
                    el += 2;
                }
            }
        }
        Ok(())
    }

    /// Each line's unit of measure and description.
    fn lines(&self, po: &PurchaseOrder) -> Result<(), FieldError> {
        let m = &self.mapping.po850;
        let n = &self.mapping.webhook;
        for (i, l) in po.lines.iter().enumerate() {
            let field = |name: &str| self.at(&format!("{}[{i}].{name}", n.lines));
            let uom =
                CodeLists::lookup(&self.mapping.code_lists.unit_of_measure, &l.unit_of_measure)
                    .unwrap_or(&l.unit_of_measure);
            self.check(uom, "PO1", 3, field(&n.unit_of_measure))?;
            if let (true, Some(d)) = (m.line_description, &l.description) {
                description_parts(d, &self.opts).map_err(|problem| FieldError {
                    field: field(&n.description),
                    message: format!("cannot be carried exactly by the 850 (PID05): {problem}"),
                })?;
            }
        }
        Ok(())
    }
}

/// How many PID segments a PO1 loop holds (the 850's PID loop repeats up to 1000 times).
const MAX_PIDS: usize = 1000;

/// Why a line description cannot be carried exactly by PID05 values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Uncarried {
    /// It does not fit one PID05 as written (empty, or a character the writer cannot carry).
    #[error("{0}; it is refused, not cut")]
    Unfit(String),
    #[error("{len} characters as written, and characters {from}..{to} have no place to split them over PID segments of at most {max} without losing spaces")]
    NoSplit {
        len: usize,
        from: usize,
        to: usize,
        max: usize,
    },
    #[error("{len} characters as written need more than the {MAX_PIDS} PID segments of at most {max} a line holds; it is refused, not cut")]
    TooLong { len: usize, max: usize },
}

/// The PID05 values that carry line description `d` exactly, as the writer writes it under
/// `opts`: `d` itself when it fits one PID05; otherwise the written text split into parts of at
/// most PID05's maximum length, at a single space where there is one (that space is the split,
/// so the parts joined with a space give the text back) and else between two other characters
/// (a word longer than PID05). `Err` says why it cannot be carried: it is empty as written, it
/// needs more than [`MAX_PIDS`] segments, or a stretch of PID05's length has no place to split
/// without losing spaces.
fn description_parts(d: &str, opts: &x12::WriteOptions) -> Result<Vec<String>, Uncarried> {
    let max = x12::max_len(opts, "PID", 5).unwrap_or(80).max(1);
    let text = x12::written(d, opts);
    if text.len() <= max {
        return match x12::fit_problem(d, opts, "PID", 5) {
            None => Ok(vec![d.to_string()]),
            Some(problem) => Err(Uncarried::Unfit(problem)),
        };
    }
    // `text` is ASCII and trimmed, and every part starts and ends with a non-space.
    let b = text.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    while b.len() - start > max {
        let w = &b[start..];
        let single_space = |i: &usize| {
            w[*i] == b' ' && w[*i - 1] != b' ' && w.get(*i + 1).is_some_and(|c| *c != b' ')
        };
        let (end, next) = match (1..=max).rev().find(single_space) {
            Some(i) => (i, i + 1),
            None => match (1..=max).rev().find(|&i| w[i - 1] != b' ' && w[i] != b' ') {
                Some(i) => (i, i),
                None => {
                    return Err(Uncarried::NoSplit {
                        len: b.len(),
                        from: start + 1,
                        to: start + max + 1,
                        max,
                    })
                }
            },
        };
        parts.push(text[start..start + end].to_string());
        start += next;
        if parts.len() >= MAX_PIDS {
            return Err(Uncarried::TooLong { len: b.len(), max });
        }
    }
    parts.push(text[start..].to_string());
    Ok(parts)
}

/// BEG03's length in the X12 dictionary: a longer PO number is repeated in `long_po_ref`.
const LONG_PO: usize = 22;

/// The envelope values of one 850 interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlNumbers {
    pub isa13: u32,
    pub gs06: u32,
    pub st02: u32,
}

/// Why an 850 cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The writer refused a value (a number or identifier it cannot carry exactly, a bad id).
    #[error(transparent)]
    Write(#[from] x12::WriteError),
    /// A `[[po850.segments]]` expression failed or yielded something that is not a segment.
    #[error("the mapping's [[po850.segments]] entry {index} ({place}): {message}")]
    Segments {
        index: usize,
        place: &'static str,
        message: String,
    },
}

/// Segment IDs a `[[po850.segments]]` expression may not yield: the envelope is the writer's.
const ENVELOPE_IDS: [&str; 7] = ["ISA", "GS", "ST", "SE", "GE", "IEA", "TA1"];

/// The segments the mapping's `[[po850.segments]]` expressions yield for `po`: header, per line,
/// summary. Each output must be an array of strings (numbers are written as printed, null as an
/// empty element), the first a segment ID; a value longer than its element allows is refused,
/// never cut.
fn extra_segments(po: &PurchaseOrder, mapping: &Mapping) -> Result<Extras, RenderError> {
    let programs = &mapping.programs.po850_segments;
    let mut header = Vec::new();
    let mut lines = vec![Vec::new(); po.lines.len()];
    let mut summary = Vec::new();
    if programs.is_empty() {
        return Ok(Extras {
            header,
            lines,
            summary,
        });
    }
    let opts = write_options(mapping);
    let canonical_po = crate::domain::canonical::po_json(po);
    let canonical_lines = canonical_po["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (index, (place, program)) in programs.iter().enumerate() {
        let fail = |message: String| RenderError::Segments {
            index,
            place: place.as_str(),
            message,
        };
        let run = |line: serde_json::Value, at: serde_json::Value| {
            let outputs = mapping
                .programs
                .runner
                .run_all(program, &canonical_po, &[line, at])
                .map_err(|e| match program.place() {
                    "" => fail(e.to_string()),
                    written => fail(format!("{written}: {e}")),
                })?;
            outputs
                .iter()
                .map(|v| extra_segment(v, &opts).map_err(|e| fail(e.to_string())))
                .collect::<Result<Vec<_>, _>>()
        };
        match place {
            SegmentPlace::Header => header.extend(run(Value::Null, Value::Null)?),
            SegmentPlace::Summary => summary.extend(run(Value::Null, Value::Null)?),
            SegmentPlace::Line => {
                for (i, line) in canonical_lines.iter().enumerate() {
                    lines[i].extend(run(line.clone(), Value::from(i))?);
                }
            }
        }
    }
    Ok(Extras {
        header,
        lines,
        summary,
    })
}

/// A segment as its elements, ID first.
type Elements = Vec<String>;

/// What the `[[po850.segments]]` expressions add: heading segments, segments per PO1 loop (in
/// line order), summary segments.
struct Extras {
    header: Vec<Elements>,
    lines: Vec<Vec<Elements>>,
    summary: Vec<Elements>,
}

/// Why an output of a `[[po850.segments]]` expression is not a segment the writer can write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BadSegment {
    #[error("each output must be an array of elements, not {0}")]
    NotArray(String),
    #[error("element {0} is not a string or a number")]
    Element(String),
    #[error("'{0}' is not a segment ID (2 or 3 upper-case letters or digits)")]
    Id(String),
    #[error("{0} belongs to the envelope, which the writer builds")]
    Envelope(String),
    #[error("{id} has {elements} elements (at most 99)")]
    TooMany { id: String, elements: usize },
    #[error("{id}{n:02} is longer than {max} characters: '{value}'")]
    TooLong {
        id: String,
        n: usize,
        max: usize,
        value: String,
    },
}

/// One output of a `[[po850.segments]]` expression as a segment's elements.
fn extra_segment(v: &Value, opts: &x12::WriteOptions) -> Result<Vec<String>, BadSegment> {
    let Some(items) = v.as_array() else {
        return Err(BadSegment::NotArray(v.to_string()));
    };
    let mut elements = Vec::with_capacity(items.len());
    for item in items {
        elements.push(match item {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => String::new(),
            other => return Err(BadSegment::Element(other.to_string())),
        });
    }
    let id = elements.first().cloned().unwrap_or_default();
    let valid_id = (2..=3).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && id.as_bytes()[0].is_ascii_uppercase();
    if !valid_id {
        return Err(BadSegment::Id(crate::text::escape(&id)));
    }
    if ENVELOPE_IDS.contains(&id.as_str()) {
        return Err(BadSegment::Envelope(id));
    }
    if elements.len() > 100 {
        return Err(BadSegment::TooMany {
            id,
            elements: elements.len() - 1,
        });
    }
    for (n, value) in elements.iter().enumerate().skip(1) {
        if let Some(max) = x12::max_len(opts, &id, n) {
            if value.chars().count() > max {
                return Err(BadSegment::TooLong {
                    id,
                    n,
                    max,
                    value: crate::text::clip(&crate::text::escape(value), 40),
                });
            }
        }
    }
    Ok(elements)
}

/// The typed 850 for `po` under `mapping`.
pub fn to_850(po: &PurchaseOrder, mapping: &Mapping) -> Result<x12::Po850, RenderError> {
    let Extras {
        header: extra_header,
        lines: mut extra_lines,
        summary: extra_summary,
    } = extra_segments(po, mapping)?;
    let m = &mapping.po850;
    let opts = write_options(mapping);
    let parties = m
        .parties
        .iter()
        .filter_map(|pm| address(po, pm.source).map(|a| party(pm, a)))
        .collect();
    let lines = po
        .lines
        .iter()
        .zip(extra_lines.iter_mut())
        .map(|(l, extra)| line(l, std::mem::take(extra), mapping, &opts))
        .collect::<Result<_, _>>()?;
    let any_price = po.lines.iter().any(|l| l.unit_price.is_some());
    Ok(x12::Po850 {
        purpose: m.purpose.clone(),
        po_type: m.po_type.clone(),
        po_number: po.po_number.clone(),
        release: None,
        date: po
            .po_date
            .as_deref()
            .and_then(|d| x12_date(d, &m.date_format))
            .unwrap_or_default(),
        contract: None,
        currency: match (&po.currency, m.currency_entity.is_empty()) {
            (Some(c), false) => Some((m.currency_entity.clone(), c.clone())),
            _ => None,
        },
        refs: heading_refs(po, mapping),
        contacts: Vec::new(),
        fob: None,
        sales_requirement: non_empty(&m.csh),
        terms: terms(po, m),
        dates: heading_dates(po, m),
        carrier: carrier(po, mapping),
        notes: notes(po, m),
        parties,
        lines,
        hash_total: m.hash_total,
        total_amount: (m.total_amount && any_price).then(|| {
            price_text(po.total(), m.price_decimals).unwrap_or_else(|| po.total().to_string())
        }),
        extra_header,
        extra_summary,
    })
}

/// The address a party of the mapping is written from.
fn address(po: &PurchaseOrder, source: PartySource) -> Option<&Address> {
    match source {
        PartySource::ShipTo => po.ship_to.as_ref(),
        PartySource::BillTo => po.bill_to.as_ref(),
        PartySource::EndUser => po.end_user.as_ref(),
        PartySource::Reseller => po.reseller.as_ref(),
    }
}

/// A REF with qualifier `q` when the mapping names one and there is a value.
fn heading_ref(q: &str, v: Option<&str>) -> Option<x12::Ref> {
    match (q.is_empty(), v) {
        (false, Some(v)) => Some(x12::Ref {
            qualifier: q.to_string(),
            value: v.to_string(),
            description: None,
        }),
        _ => None,
    }
}

/// The heading REFs: a PO number longer than BEG03 holds, the reseller's order, the vendor
/// quote, the special bid, the order type (after the mapping's code list).
fn heading_refs(po: &PurchaseOrder, mapping: &Mapping) -> Vec<x12::Ref> {
    let m = &mapping.po850;
    let mut refs = Vec::new();
    if po.po_number.len() > LONG_PO {
        refs.extend(heading_ref(&m.long_po_ref, Some(&po.po_number)));
    }
    refs.extend(heading_ref(
        &m.reseller_order_ref,
        Some(&po.reseller_order_number),
    ));
    refs.extend(heading_ref(
        &m.vendor_quote_ref,
        po.vendor_quote_number.as_deref(),
    ));
    refs.extend(heading_ref(
        &m.special_bid_ref,
        po.special_bid_number.as_deref(),
    ));
    let order_type =
        CodeLists::lookup(&mapping.code_lists.order_type, &po.order_type).unwrap_or(&po.order_type);
    refs.extend(heading_ref(&m.order_type_ref, Some(order_type)));
    refs
}

/// The heading DTMs: the PO date and the requested delivery date, where the mapping names a
/// qualifier.
fn heading_dates(po: &PurchaseOrder, m: &Po850Settings) -> Vec<x12::Dtm> {
    let mut dates = Vec::new();
    for (q, iso) in [
        (&m.po_date_dtm, &po.po_date),
        (&m.requested_delivery_dtm, &po.requested_delivery_date),
    ] {
        let date = iso.as_deref().and_then(|d| x12_date(d, &m.date_format));
        if let (false, Some(date)) = (q.is_empty(), date) {
            dates.push(x12::Dtm {
                qualifier: q.to_string(),
                date,
                time: None,
            });
        }
    }
    dates
}

/// The ITD, when the mapping names a terms type and the PO has payment terms.
fn terms(po: &PurchaseOrder, m: &Po850Settings) -> Option<x12::Terms> {
    match (m.terms_type.is_empty(), po.payment_terms_days) {
        (false, Some(days)) => Some(x12::Terms {
            type_code: m.terms_type.clone(),
            basis_date_code: non_empty(&m.terms_basis_date),
            net_days: Some(days.to_string()),
            description: non_empty(&m.terms_description.replace("{days}", &days.to_string())),
        }),
        _ => None,
    }
}

/// The TD5 for the PO's ship-via: with the SCAC the mapping's carrier list gives, else the
/// routing only.
fn carrier(po: &PurchaseOrder, mapping: &Mapping) -> Option<x12::Td5> {
    let m = &mapping.po850;
    let via = po.ship_via.as_ref().filter(|_| m.td5)?;
    let scac = CodeLists::lookup(&mapping.code_lists.carrier, via);
    Some(x12::Td5 {
        routing_sequence: non_empty(&m.carrier_routing_sequence),
        id_qualifier: scac.and_then(|_| non_empty(&m.carrier_id_qualifier)),
        scac: scac.map(str::to_string),
        method: None,
        routing: Some(via.clone()),
    })
}

/// The N9 with the PO's notes as MSGs, when the mapping names a qualifier.
fn notes(po: &PurchaseOrder, m: &Po850Settings) -> Vec<x12::Note> {
    match (&po.notes, m.notes_n9_qualifier.is_empty()) {
        (Some(text), false) => vec![x12::Note {
            qualifier: m.notes_n9_qualifier.clone(),
            reference: Some("NOTES".into()),
            messages: split_text(text, 264),
        }],
        _ => Vec::new(),
    }
}

/// One PO1 loop: product IDs, the requested ship date, the description over as many PIDs as
/// it takes, and the expressions' extra segments.
fn line(
    l: &OrderLine,
    extra: Vec<Elements>,
    mapping: &Mapping,
    opts: &x12::WriteOptions,
) -> Result<x12::Line, RenderError> {
    let m = &mapping.po850;
    let mut ids = Vec::new();
    for (q, v) in [
        (&m.vendor_part_qualifier, &l.vendor_part_number),
        (&m.ingram_part_qualifier, &l.ingram_part_number),
        (&m.upc_qualifier, &l.upc),
    ] {
        if let (false, Some(v)) = (q.is_empty(), v) {
            ids.push(x12::ProductId {
                qualifier: q.clone(),
                value: v.clone(),
            });
        }
    }
    let mut line_dates = Vec::new();
    if let (false, Some(d)) = (
        m.requested_ship_dtm.is_empty(),
        l.requested_ship_date
            .as_deref()
            .and_then(|d| x12_date(d, &m.date_format)),
    ) {
        line_dates.push(x12::Dtm {
            qualifier: m.requested_ship_dtm.clone(),
            date: d,
            time: None,
        });
    }
    let mut descriptions = match (m.line_description, &l.description) {
        (true, Some(d)) => {
            description_parts(d, opts).map_err(|problem| x12::WriteError::Inexact {
                segment: "PID".into(),
                element: 5,
                value: d.clone(),
                problem: problem.to_string(),
            })?
        }
        _ => Vec::new(),
    }
    .into_iter();
    Ok(x12::Line {
        number: l.ingram_line_number.clone(),
        quantity: l.quantity.to_string(),
        uom: CodeLists::lookup(&mapping.code_lists.unit_of_measure, &l.unit_of_measure)
            .unwrap_or(&l.unit_of_measure)
            .to_ascii_uppercase(),
        unit_price: l
            .unit_price
            .map(|p| {
                price_text(p, m.price_decimals).ok_or_else(|| x12::WriteError::Inexact {
                    segment: "PO1".into(),
                    element: 4,
                    value: p.to_string(),
                    problem: "more decimals than [po850] price_decimals".into(),
                })
            })
            .transpose()?,
        price_basis: l.unit_price.and_then(|_| non_empty(&m.price_basis)),
        product_ids: ids,
        description: descriptions.next(),
        description_continued: descriptions.collect(),
        refs: Vec::new(),
        dates: line_dates,
        messages: Vec::new(),
        extra,
    })
}

/// Renders the whole interchange for `po`: ISA/GS/ST…SE/GE/IEA with the given control numbers,
/// dated `at` (UTC). The same inputs always give the same bytes.
pub fn render(
    po: &PurchaseOrder,
    mapping: &Mapping,
    numbers: ControlNumbers,
    at: OffsetDateTime,
) -> Result<Vec<u8>, RenderError> {
    let mut typed = to_850(po, mapping)?;
    if typed.date.is_empty() {
        typed.date = at
            .format(time::macros::format_description!("[year][month][day]"))
            .unwrap_or_default();
    }
    let i = &mapping.interchange;
    let isa = x12::IsaHeader {
        auth_qualifier: "00".into(),
        auth_info: String::new(),
        security_qualifier: "00".into(),
        security_info: String::new(),
        sender_qualifier: i.sender_qualifier.clone(),
        sender_id: i.sender_id.clone(),
        receiver_qualifier: i.receiver_qualifier.clone(),
        receiver_id: i.receiver_id.clone(),
        date: fmt_at(
            at,
            time::macros::format_description!("[year repr:last_two][month][day]"),
        ),
        time: fmt_at(at, time::macros::format_description!("[hour][minute]")),
        standards_id: String::new(),
        version: String::new(),
        control_number: numbers.isa13.to_string(),
        ack_requested: if i.ack_requested { "1" } else { "0" }.into(),
        usage: i.usage.clone(),
    };
    let gs = x12::GsHeader {
        functional_id: "PO".into(),
        app_sender: i.gs_sender().to_string(),
        app_receiver: i.gs_receiver().to_string(),
        date: fmt_at(at, time::macros::format_description!("[year][month][day]")),
        time: fmt_at(at, time::macros::format_description!("[hour][minute]")),
        control_number: numbers.gs06.to_string(),
        agency: "X".into(),
        version: i.gs_version().to_string(),
    };
    let tx = typed.to_transaction(&format!("{:04}", numbers.st02));
    Ok(x12::write(
        &isa,
        &[x12::OutGroup {
            header: gs,
            transactions: vec![tx],
        }],
        &write_options(mapping),
    )?)
}

/// Writer options from the mapping's delimiters, version and length overrides.
pub fn write_options(mapping: &Mapping) -> x12::WriteOptions {
    let d = &mapping.delimiters;
    let byte = |s: &str, fallback: u8| s.as_bytes().first().copied().unwrap_or(fallback);
    let version = match mapping.interchange.version {
        X12Version::V4010 => x12::Version::V4010,
        X12Version::V5010 => x12::Version::V5010,
    };
    x12::WriteOptions {
        delimiters: x12::Delimiters {
            element: byte(&d.element, b'*'),
            component: byte(&d.component, b'>'),
            repetition: match version {
                x12::Version::V5010 => Some(byte(&d.repetition, b'^')),
                x12::Version::V4010 => None,
            },
            segment: byte(&d.segment, b'~'),
        },
        newline: d.newline,
        crlf: d.crlf,
        version,
        max_lengths: mapping.length_overrides(),
        uppercase: mapping.po850.uppercase,
        padding: mapping.paddings(),
    }
}

fn fmt_at(at: OffsetDateTime, f: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(f)
        .unwrap_or_default()
}

fn party(pm: &PartyMap, a: &Address) -> x12::Party {
    let (entity, contact_function) = (pm.entity.as_str(), pm.contact_function.as_str());
    let mut comms = Vec::new();
    if let Some(p) = &a.phone {
        comms.push(("TE".to_string(), p.clone()));
    }
    if let Some(e) = &a.email {
        comms.push(("EM".to_string(), e.clone()));
    }
    let contacts = if contact_function.is_empty() || (a.contact.is_none() && comms.is_empty()) {
        Vec::new()
    } else {
        vec![x12::Contact {
            function: contact_function.to_string(),
            name: a.contact.clone(),
            comms,
        }]
    };
    x12::Party {
        entity: entity.to_string(),
        name: a.company_name.clone().or_else(|| a.contact.clone()),
        id_qualifier: non_empty(&pm.id_qualifier),
        id: non_empty(&pm.id),
        extra_names: Vec::new(),
        address: if pm.address {
            a.address_lines.clone()
        } else {
            Vec::new()
        },
        city: a.city.clone().filter(|_| pm.address),
        state: a.state.clone().filter(|_| pm.address),
        postal_code: a.postal_code.clone().filter(|_| pm.address),
        country: a.country_code.clone().filter(|_| pm.address),
        contacts,
    }
}

/// An amount as PO104 and AMT02 write it: exactly `decimals` decimals (`[po850]
/// price_decimals`: padded with zeros), or its plain form (`617.25`, `12`, `0.50`) when unset.
/// `None` when `decimals` would drop a significant digit.
pub fn price_text(a: crate::domain::Amount, decimals: Option<u32>) -> Option<String> {
    let Some(d) = decimals else {
        return Some(a.to_string());
    };
    let units = if a.scale <= d {
        a.units.checked_mul(10i128.checked_pow(d - a.scale)?)?
    } else {
        let div = 10i128.checked_pow(a.scale - d)?;
        if a.units % div != 0 {
            return None;
        }
        a.units / div
    };
    let (sign, abs) = (if units < 0 { "-" } else { "" }, units.unsigned_abs());
    if d == 0 {
        return Some(format!("{sign}{abs}"));
    }
    let pow = 10u128.pow(d);
    Some(format!(
        "{sign}{}.{:0width$}",
        abs / pow,
        abs % pow,
        width = d as usize
    ))
}

/// `YYYY-MM-DD` → the mapping's date format.
fn x12_date(iso: &str, format: &str) -> Option<String> {
    let date = time::Date::parse(
        iso,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let f = time::format_description::parse_borrowed::<2>(format).ok()?;
    date.format(&f).ok()
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Splits free text into chunks of at most `max` characters, on whitespace where possible.
fn split_text(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while cur.chars().count() > max {
            let head: String = cur.chars().take(max).collect();
            let tail: String = cur.chars().skip(max).collect();
            out.push(head);
            cur = tail;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn po_with(mutate: impl Fn(&mut serde_json::Value)) -> PurchaseOrder {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../samples/ingram-po-webhook.json")).unwrap();
        mutate(&mut v["resource"][0]);
        let mapping = Mapping::builtin();
        crate::ingram::order::decode(&v, &mapping.webhook)
            .unwrap()
            .orders
            .remove(0)
    }

    fn checked(po: &PurchaseOrder) -> Result<(), FieldError> {
        check(po, 0, &Mapping::builtin())
    }

    #[test]
    fn the_sample_fits_and_renders() {
        let po = po_with(|_| {});
        checked(&po).unwrap();
        let numbers = ControlNumbers {
            isa13: 1,
            gs06: 1,
            st02: 1,
        };
        render(
            &po,
            &Mapping::builtin(),
            numbers,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
    }

    #[test]
    fn what_the_850_cannot_carry_exactly_is_named_by_field() {
        type Case = (
            Box<dyn Fn(&mut serde_json::Value)>,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                Box::new(|p| p["lines"][0]["unitPrice"] = "999999999999999999.999999".into()),
                "resource[0].lines[0].unitPrice",
                "PO104",
            ),
            (
                Box::new(|p| p["ingramPurchaseOrderNumber"] = "IM~PO*1".into()),
                "resource[0].ingramPurchaseOrderNumber",
                "BEG03",
            ),
            (
                Box::new(|p| p["ingramPurchaseOrderNumber"] = "P".repeat(23).into()),
                "resource[0].ingramPurchaseOrderNumber",
                "at most 22",
            ),
            (
                Box::new(|p| p["lines"][1]["ingramLineNumber"] = "2>1".into()),
                "resource[0].lines[1].ingramLineNumber",
                "PO101",
            ),
            (
                Box::new(|p| p["lines"][1]["vendorPartNumber"] = "XYZ-9*~>".into()),
                "resource[0].lines[1].vendorPartNumber",
                "PO107",
            ),
            (
                Box::new(|p| p["lines"][0]["ingramPartNumber"] = "7HW\u{1b}[2J".into()),
                "resource[0].lines[0].ingramPartNumber",
                "PO109",
            ),
            (
                Box::new(|p| p["lines"][0]["upcCode"] = "0123 4567~".into()),
                "resource[0].lines[0].upcCode",
                "PO111",
            ),
            (
                // Each price fits PO104; their total does not fit AMT02's 18 digits.
                Box::new(|p| {
                    p["lines"][0]["unitPrice"] = "99999999999999.999".into();
                    p["lines"][0]["quantity"] = 999_999_999.into();
                }),
                "resource[0].lines",
                "AMT02",
            ),
        ];
        for (mutate, field, needle) in cases {
            let e = checked(&po_with(mutate)).unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(needle), "{e}");
        }
        // Free text with delimiters is still accepted (and sanitised by the writer).
        checked(&po_with(|p| {
            p["lines"][0]["description"] = "a*b~c>d\n".into()
        }))
        .unwrap();
        // Lower case identifiers are carried as they are.
        checked(&po_with(|p| {
            p["ingramPurchaseOrderNumber"] = "im-po-1".into()
        }))
        .unwrap();
    }

    #[test]
    fn a_long_description_is_split_over_pids_and_carried_exactly() {
        let opts = write_options(&Mapping::builtin());
        let words = "Aruba CX 6100 24G Class4 PoE 4SFP+ 370W switch, rack-mountable ".repeat(5);
        let parts = description_parts(words.trim_end(), &opts).unwrap();
        assert_eq!(parts.len(), 4, "{parts:?}");
        assert!(
            parts.iter().all(|p| (1..=80).contains(&p.len())),
            "{parts:?}"
        );
        assert_eq!(parts.join(" "), words.trim_end().to_uppercase());
        // A word longer than PID05 is broken between two characters: nothing is lost.
        let long = format!("ab {}", "x".repeat(200));
        let parts = description_parts(&long, &opts).unwrap();
        assert_eq!(
            parts,
            ["AB", &"X".repeat(80), &"X".repeat(80), &"X".repeat(40)]
        );
        // Spaces inside a part are kept; a run of spaces is never a split.
        let spaced = format!("{}  {}", "a".repeat(79), "b".repeat(10));
        let parts = description_parts(&spaced, &opts).unwrap();
        assert_eq!(parts.concat(), spaced.to_uppercase());
        // What fits one PID is passed as it is (the writer sanitises it); an empty one is refused.
        assert_eq!(description_parts("a*b", &opts).unwrap(), ["a*b"]);
        assert!(description_parts(" ", &opts).is_err());
        // 1000 PIDs at most; and a text with nowhere to split without losing spaces.
        assert_eq!(
            description_parts(&"d".repeat(80_000), &opts).unwrap().len(),
            1000
        );
        let e = description_parts(&"d".repeat(80_001), &opts).unwrap_err();
        assert!(
            matches!(e, Uncarried::TooLong { .. })
                && e.to_string().contains("more than the 1000 PID segments"),
            "{e}"
        );
        let e = description_parts(&"a  ".repeat(40).repeat(2), &opts).unwrap_err();
        assert!(
            matches!(e, Uncarried::NoSplit { .. }) && e.to_string().contains("no place to split"),
            "{e}"
        );
        // The webhook's longest string (4096 characters) is carried.
        checked(&po_with(|p| {
            p["lines"][1]["description"] = "d".repeat(4096).into()
        }))
        .unwrap();
    }

    #[test]
    fn the_description_settings_still_apply_to_split_descriptions() {
        let desc = format!("{} Tail", "Word ".repeat(30));
        let po = po_with(|p| p["lines"][0]["description"] = desc.clone().into());
        let pids = |m: &Mapping| -> Vec<String> {
            rendered(&po, m)
                .into_iter()
                .filter_map(|s| s.strip_prefix("PID*F****").map(str::to_string))
                .collect()
        };
        let upper = pids(&Mapping::builtin());
        assert_eq!(upper.len(), 3, "two for line 1, one for line 2: {upper:?}");
        assert_eq!(upper[..2].join(" "), desc.to_uppercase());
        let m = mapping_with(|t| t.replacen("uppercase = true", "uppercase = false", 1));
        assert_eq!(pids(&m)[..2].join(" "), desc);
        let m =
            mapping_with(|t| t.replacen("line_description = true", "line_description = false", 1));
        assert!(pids(&m).is_empty());
        checked(&po).unwrap();
        // A shorter PID05 in the mapping's max_lengths gives more, shorter parts.
        let m =
            mapping_with(|t| format!("{t}\n[[max_lengths]]\nelement = \"PID05\"\nlength = 20\n"));
        let short = pids(&m);
        assert!(short.iter().all(|p| p.len() <= 20), "{short:?}");
        assert_eq!(short[..short.len() - 1].join(" "), desc.to_uppercase());
        // The 850 reads back with every part.
        let text = rendered(&po, &Mapping::builtin()).join("~\n") + "~\n";
        assert!(edi::parse(&text).is_ok(), "{:?}", edi::parse(&text).err());
        let doc = x12::read(text.as_bytes(), &x12::ReadOptions::default());
        let (back, d) = x12::Po850::parse(doc.transactions().next().unwrap());
        assert!(d.is_empty(), "{d:?}");
        let l = &back.lines[0];
        assert_eq!(l.description.as_deref(), Some(upper[0].as_str()));
        assert_eq!(l.description_continued, [upper[1].clone()]);
    }

    #[test]
    fn split_text_respects_max() {
        let parts = split_text("aaa bbb ccc", 7);
        assert_eq!(parts, vec!["aaa bbb", "ccc"]);
        let parts = split_text(&"x".repeat(10), 4);
        assert_eq!(parts, vec!["xxxx", "xxxx", "xx"]);
    }

    #[test]
    fn dates_follow_the_mapping_format() {
        assert_eq!(
            x12_date("2026-11-20", "[year][month][day]").as_deref(),
            Some("20261120")
        );
        assert_eq!(
            x12_date("2026-11-20", "[year repr:last_two][month][day]").as_deref(),
            Some("261120")
        );
        assert_eq!(x12_date("nope", "[year][month][day]"), None);
    }

    fn mapping_with(edit: impl Fn(String) -> String) -> Mapping {
        let text = edit(crate::mapping::DEFAULT_MAPPING.to_string());
        Mapping::from_str(&text, std::path::Path::new("m.toml"))
            .unwrap_or_else(|e| panic!("mapping: {e}"))
    }

    fn rendered(po: &PurchaseOrder, mapping: &Mapping) -> Vec<String> {
        let at = OffsetDateTime::UNIX_EPOCH;
        let numbers = ControlNumbers {
            isa13: 1,
            gs06: 1,
            st02: 1,
        };
        let bytes = render(po, mapping, numbers, at).unwrap();
        String::from_utf8(bytes)
            .unwrap()
            .split('~')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn ids(segments: &[String]) -> Vec<&str> {
        segments
            .iter()
            .map(|s| s.split('*').next().unwrap())
            .collect()
    }

    #[test]
    fn party_ids_go_to_n103_n104_and_address_and_contact_can_be_dropped_per_party() {
        let m = mapping_with(|t| {
            t.replacen(
                "source = \"bill_to\"\nentity = \"BT\"\ncontact_function = \"IC\"",
                "source = \"bill_to\"\nentity = \"BT\"\ncontact_function = \"\"\nid_qualifier = \"92\"\nid = \"INGRAM-BT-01\"\naddress = false",
                1,
            )
        });
        let segs = rendered(&po_with(|_| {}), &m);
        let bt = segs.iter().position(|s| s.starts_with("N1*BT*")).unwrap();
        assert_eq!(segs[bt], "N1*BT*INGRAM MICRO INC.*92*INGRAM-BT-01");
        assert!(
            segs[bt + 1].starts_with("N1*"),
            "no N3/N4/PER after N1*BT: {:?}",
            &segs[bt..bt + 2]
        );
        // The other parties keep their addresses.
        let st = segs.iter().position(|s| s.starts_with("N1*ST*")).unwrap();
        assert!(segs[st + 1].starts_with("N3*"), "{:?}", &segs[st..st + 3]);
    }

    #[test]
    fn a_party_id_needs_both_halves() {
        let text = crate::mapping::DEFAULT_MAPPING.replacen(
            "entity = \"BT\"\n",
            "entity = \"BT\"\nid = \"X\"\n",
            1,
        );
        let e = Mapping::from_str(&text, std::path::Path::new("m.toml")).unwrap_err();
        assert!(e.to_string().contains("po850.parties.id_qualifier"), "{e}");
    }

    #[test]
    fn td5_can_be_turned_off_entirely_and_csh_added() {
        let po = po_with(|_| {});
        assert!(ids(&rendered(&po, &Mapping::builtin())).contains(&"TD5"));
        let m = mapping_with(|t| {
            t.replacen("td5 = true", "td5 = false", 1)
                .replacen("csh = \"\"", "csh = \"SC\"", 1)
        });
        let segs = rendered(&po, &m);
        let ids = ids(&segs);
        assert!(!ids.contains(&"TD5"), "{segs:?}");
        let csh = ids.iter().position(|i| *i == "CSH").unwrap();
        assert_eq!(segs[csh], "CSH*SC");
        assert!(ids[csh - 1] == "REF" && ids[csh + 1] == "ITD", "{ids:?}");
        let bad = crate::mapping::DEFAULT_MAPPING.replacen("csh = \"\"", "csh = \"SHIP\"", 1);
        let e = Mapping::from_str(&bad, std::path::Path::new("m.toml")).unwrap_err();
        assert!(e.to_string().contains("po850.csh"), "{e}");
    }

    #[test]
    fn extra_segments_go_to_their_places_and_the_counts_include_them() {
        let m = mapping_with(|t| {
            t + r#"
[[po850.segments]]
place = "header"
expr = '["REF", "IA", "VENDOR-42"]'

[[po850.segments]]
place = "line"
expr = '["SAC", "N", "", "", "", "", "", "", "", "", "", "", "", "", "", "LINE " + ($index + 1 | tostring) + " " + $line.ingramLineNumber]'

[[po850.segments]]
place = "summary"
expr = '["AMT", "1", "0"], ["AMT", "GV", (.lines | length | tostring)]'
"#
        });
        let segs = rendered(&po_with(|_| {}), &m);
        let ids = ids(&segs);
        let extra_ref = segs.iter().position(|s| s == "REF*IA*VENDOR-42").unwrap();
        assert_eq!(
            ids[extra_ref + 1],
            "N1",
            "header extras precede the N1 loops"
        );
        let sac: Vec<&String> = segs.iter().filter(|s| s.starts_with("SAC*")).collect();
        assert_eq!(sac.len(), 2);
        assert!(sac[0].ends_with("*LINE 1 1"), "{sac:?}");
        assert!(sac[1].ends_with("*LINE 2 2"), "{sac:?}");
        let second_po1 = segs.iter().rposition(|s| s.starts_with("PO1*")).unwrap();
        let first_sac = segs.iter().position(|s| s.starts_with("SAC*")).unwrap();
        assert!(first_sac < second_po1, "inside the first PO1 loop");
        let n = segs.len();
        assert_eq!(
            &segs[n - 5..n - 3],
            ["AMT*1*0", "AMT*GV*2"].map(String::from)
        );
        let st = ids.iter().position(|i| *i == "ST").unwrap();
        assert_eq!(
            segs[n - 3],
            format!("SE*{}*0001", n - 3 - st + 1),
            "SE01 counts them"
        );
        assert_eq!(
            n - 3 - st + 1,
            32 + 5,
            "the sample's 32 segments and five extras"
        );
        assert!(segs[n - 6].starts_with("AMT*TT*"), "{:?}", &segs[n - 8..]);
        let text = segs.join("~\n") + "~\n";
        assert!(edi::parse(&text).is_ok(), "{:?}", edi::parse(&text).err());
    }

    #[test]
    fn a_bad_extra_segment_is_refused_never_cut() {
        let po = po_with(|_| {});
        for (expr, expect) in [
            ("'[\"ST\", \"850\"]'", "belongs to the envelope"),
            ("'\"REF*IA\"'", "must be an array"),
            ("'[\"ref\", \"IA\"]'", "is not a segment ID"),
            (
                "'[\"PID\", \"F\", \"\", \"\", \"\", (\"x\" * 81)]'",
                "PID05 is longer than 80",
            ),
            ("'[\"REF\", {}]'", "is not a string or a number"),
            (
                "'error(\"no code for \" + .ingramPurchaseOrderNumber)'",
                "no code for IM-PO-1001",
            ),
        ] {
            let m = mapping_with(|t| {
                format!("{t}\n[[po850.segments]]\nplace = \"header\"\nexpr = {expr}\n")
            });
            let e = to_850(&po, &m).unwrap_err().to_string();
            assert!(e.contains(expect), "{expr}: {e}");
            assert!(e.contains("[[po850.segments]] entry 0 (header)"), "{e}");
        }
    }

    #[test]
    fn a_segments_expression_that_does_not_compile_is_reported_at_its_line() {
        let base = crate::mapping::DEFAULT_MAPPING.to_string();
        let text = format!("{base}\n[[po850.segments]]\nplace = \"line\"\nexpr = \'\'\'\n[\"REF\",\n $nope]\n\'\'\'\n");
        let line = text.lines().position(|l| l.contains("$nope")).unwrap() + 1;
        let e = Mapping::from_str(&text, std::path::Path::new("m.toml")).unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "m.toml:{line}: po850.segments[0].expr: undefined variable"
            )),
            "{e}"
        );
    }

    /// A profile like a published Ingram-style 850 guide: BEG, one REF, CSH, DTM, N1 BT and N1 ST
    /// without addresses but with ids, PO1; no TD5, CUR, ITD, N9, PID, AMT. Golden file beside it,
    /// checked by the `edi` crate.
    #[test]
    fn a_guide_like_profile_matches_its_golden_file() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/po850");
        let text = std::fs::read_to_string(dir.join("guide-profile.toml")).unwrap();
        let m = Mapping::from_str(&text, &dir.join("guide-profile.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let x12 = rendered(&po_with(|_| {}), &m).join("~\n") + "~\n";
        assert!(edi::parse(&x12).is_ok(), "{:?}", edi::parse(&x12).err());
        let golden = dir.join("guide-profile.850");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&golden, &x12).unwrap();
        }
        assert_eq!(x12, std::fs::read_to_string(&golden).unwrap());
        let segs: Vec<&str> = x12.lines().map(|l| l.split('*').next().unwrap()).collect();
        assert_eq!(
            segs,
            [
                "ISA", "GS", "ST", "BEG", "REF", "CSH", "DTM", "N1", "N1", "PO1", "PO1", "CTT",
                "SE", "GE", "IEA"
            ]
        );
    }

    #[test]
    fn pad_writes_elements_at_a_fixed_width_and_leaves_empty_and_long_values_alone() {
        let m = mapping_with(|t| {
            t + "\n[[po850.pad]]\nelement = \"PO101\"\nwidth = 3\n\n[[po850.pad]]\nelement = \"PO102\"\nwidth = 4\nfill = \"0\"\n\n[[po850.pad]]\nelement = \"PO109\"\nwidth = 10\nfill = \" \"\nside = \"right\"\n\n[[po850.pad]]\nelement = \"N104\"\nwidth = 5\n"
        });
        let po = po_with(|_| {});
        checked(&po).unwrap();
        let segs = rendered(&po, &m);
        let po1 = segs.iter().find(|s| s.starts_with("PO1*")).unwrap();
        assert_eq!(
            po1,
            "PO1*001*0010*EA*123.45*PE*VP*ABC-123*BP*7HW123    *UP*012345678905"
        );
        // The last element keeps its fill; N104 is empty in the sample, so no N103/N104 appear.
        let numbers = ControlNumbers {
            isa13: 1,
            gs06: 1,
            st02: 1,
        };
        let bytes = render(&po, &m, numbers, OffsetDateTime::UNIX_EPOCH).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("\nPO1*002*0003*EA*19.90*PE*VP*XYZ-9*BP*7HW456    ~\n"),
            "{text}"
        );
        assert!(segs
            .iter()
            .any(|s| s.starts_with("N1*ST*") && s.split('*').count() == 3));
        let long = po_with(|p| p["lines"][0]["ingramLineNumber"] = "1000".into());
        let segs = rendered(&long, &m);
        assert!(
            segs.iter().any(|s| s.starts_with("PO1*1000*0010*")),
            "{segs:?}"
        );
        // Bad entries are reported at their key.
        for (entry, expect) in [
            ("element = \"P1\"\nwidth = 3", "po850.pad.element"),
            (
                "element = \"PO101\"\nwidth = 21",
                "po850.pad.width: 21 must be from 1 to the element's length (PO101 holds 20)",
            ),
            (
                "element = \"PO101\"\nwidth = 3\nfill = \"x\"",
                "po850.pad.fill",
            ),
            (
                "element = \"PO101\"\nwidth = 3\nside = \"right\"",
                "po850.pad.side",
            ),
        ] {
            let text = format!(
                "{}\n[[po850.pad]]\n{entry}\n",
                crate::mapping::DEFAULT_MAPPING
            );
            let e = Mapping::from_str(&text, std::path::Path::new("m.toml")).unwrap_err();
            assert!(e.to_string().contains(expect), "{entry}: {e}");
        }
    }

    #[test]
    fn price_decimals_pad_and_never_round() {
        let a = |s: &str| crate::domain::Amount::parse(s).unwrap();
        assert_eq!(price_text(a("19.9"), None).unwrap(), "19.90");
        assert_eq!(price_text(a("19.9"), Some(4)).unwrap(), "19.9000");
        assert_eq!(price_text(a("12"), Some(2)).unwrap(), "12.00");
        assert_eq!(price_text(a("12.50"), Some(0)), None);
        assert_eq!(price_text(a("12.000"), Some(0)).unwrap(), "12");
        assert_eq!(price_text(a("19.905"), Some(2)), None);
        let text =
            crate::mapping::DEFAULT_MAPPING.replace("# price_decimals = 2 ", "price_decimals = 2 ");
        let mapping = Mapping::from_str(&text, std::path::Path::new("m.toml")).unwrap();
        assert_eq!(mapping.po850.price_decimals, Some(2));
        let po = po_with(|v| v["lines"][0]["unitPrice"] = "123.455".into());
        let err = check(&po, 0, &mapping).unwrap_err();
        assert_eq!(err.field, "resource[0].lines[0].unitPrice");
        assert!(
            err.message.contains("price_decimals = 2"),
            "{}",
            err.message
        );
    }
}
