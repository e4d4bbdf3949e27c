//! Typed 850 Purchase Order: `Po850::to_transaction` renders the segment order of the
//! reference §3.1 (BEG, CUR, REF, PER, FOB, ITD, DTM, TD5, N9/MSG, N1 loops, PO1 loops, CTT,
//! AMT); `Po850::parse` reads it back (for round trips and for inspecting outbound files).

use super::common::{
    code, dtm_out, missing_segment, parse_dtm, parse_n1, parse_per, parse_ref, party_detail,
    party_out, per_out, product_ids, ref_out, required, set_start, txt, unexpected, Contact, Dtm,
    Party, ProductId, Ref,
};
use super::envelope::Transaction;
use super::error::Diagnostic;
use super::segment::Segment;
use super::writer::{OutSegment, OutTransaction};
use serde::Serialize;

/// FOB01, FOB02, FOB03.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fob {
    pub payment_method: String,
    pub location_qualifier: Option<String>,
    pub description: Option<String>,
}

/// ITD01, ITD02, ITD07, ITD12.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Terms {
    pub type_code: String,
    pub basis_date_code: Option<String>,
    pub net_days: Option<String>,
    pub description: Option<String>,
}

/// TD501..TD505.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Td5 {
    pub routing_sequence: Option<String>,
    pub id_qualifier: Option<String>,
    pub scac: Option<String>,
    pub method: Option<String>,
    pub routing: Option<String>,
}

impl Fob {
    pub(super) fn read(seg: &Segment<'_>) -> Fob {
        Fob {
            payment_method: code(seg, 1).unwrap_or_default(),
            location_qualifier: code(seg, 2),
            description: txt(seg, 3),
        }
    }
}

impl Td5 {
    pub(super) fn read(seg: &Segment<'_>) -> Td5 {
        Td5 {
            routing_sequence: code(seg, 1),
            id_qualifier: code(seg, 2),
            scac: txt(seg, 3),
            method: code(seg, 4),
            routing: txt(seg, 5),
        }
    }
}

/// N9 + MSG*.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Note {
    pub qualifier: String,
    pub reference: Option<String>,
    pub messages: Vec<String>,
}

impl Note {
    /// The N9; its MSGs follow.
    pub(super) fn read(seg: &Segment<'_>) -> Note {
        Note {
            qualifier: code(seg, 1).unwrap_or_default(),
            reference: txt(seg, 2),
            messages: Vec::new(),
        }
    }
}

/// Which loop of an 850 the reader is in: where a REF, DTM, MSG or PER belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loop850 {
    Head,
    Note,
    Party,
    Line,
}

/// PO1 loop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Line {
    pub number: String,
    pub quantity: String,
    pub uom: String,
    pub unit_price: Option<String>,
    pub price_basis: Option<String>,
    pub product_ids: Vec<ProductId>,
    /// PID*F****x
    pub description: Option<String>,
    /// Further `PID*F****x` segments carrying the rest of a description longer than PID05 holds,
    /// in order (a reader joins the PID05s with a space).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub description_continued: Vec<String>,
    pub refs: Vec<Ref>,
    pub dates: Vec<Dtm>,
    pub messages: Vec<String>,
    /// Further segments after the line's own, as elements (ID first); written, never read back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<Vec<String>>,
}

/// The 850.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Po850 {
    pub purpose: String,
    pub po_type: String,
    pub po_number: String,
    pub release: Option<String>,
    /// CCYYMMDD
    pub date: String,
    pub contract: Option<String>,
    /// (CUR01, CUR02)
    pub currency: Option<(String, String)>,
    pub refs: Vec<Ref>,
    pub contacts: Vec<Contact>,
    pub fob: Option<Fob>,
    /// CSH01 sales requirement code (`SC` ship complete, `N` no back order, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sales_requirement: Option<String>,
    pub terms: Option<Terms>,
    pub dates: Vec<Dtm>,
    pub carrier: Option<Td5>,
    pub notes: Vec<Note>,
    pub parties: Vec<Party>,
    pub lines: Vec<Line>,
    /// Write CTT02 = sum of PO102.
    pub hash_total: bool,
    /// AMT*TT
    pub total_amount: Option<String>,
    /// Further heading segments, after the notes and before the N1 loops (ID first); written,
    /// never read back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_header: Vec<Vec<String>>,
    /// Further summary segments, after CTT and AMT (ID first); written, never read back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_summary: Vec<Vec<String>>,
}

/// A segment given as its elements, ID first.
fn extra_out(elements: &[String]) -> OutSegment {
    let mut seg = OutSegment::new(elements.first().map(String::as_str).unwrap_or(""));
    for e in elements.iter().skip(1) {
        seg = seg.el(e);
    }
    seg
}

/// Sum decimal strings; None if one is not a number.
fn decimal_sum<'s>(values: impl Iterator<Item = &'s str>) -> Option<String> {
    let mut scale = 0usize;
    let mut parsed = Vec::new();
    for v in values {
        let v = v.trim();
        let (neg, v) = match v.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, v),
        };
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || int.len() + frac.len() > 30
        {
            return None;
        }
        scale = scale.max(frac.len());
        parsed.push((neg, int.to_string(), frac.to_string()));
    }
    if scale > 6 {
        return None;
    }
    let mut total: i128 = 0;
    for (neg, int, frac) in parsed {
        let digits = format!("{int}{frac:0<scale$}");
        let n: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        total = if neg {
            total.checked_sub(n)?
        } else {
            total.checked_add(n)?
        };
    }
    let neg = total < 0;
    let abs = total.unsigned_abs().to_string();
    let s = if scale == 0 {
        abs
    } else {
        let padded = format!("{abs:0>w$}", w = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        let f = f.trim_end_matches('0');
        if f.is_empty() {
            i.to_string()
        } else {
            format!("{i}.{f}")
        }
    };
    Some(if neg { format!("-{s}") } else { s })
}

impl Po850 {
    /// Render the body (ST/SE are added by the writer).
    pub fn to_transaction(&self, control_number: &str) -> OutTransaction {
        let mut s = vec![OutSegment::new("BEG")
            .el(&self.purpose)
            .el(&self.po_type)
            .el(&self.po_number)
            .opt(self.release.as_deref())
            .el(&self.date)
            .opt(self.contract.as_deref())];
        if let Some((e, c)) = &self.currency {
            s.push(OutSegment::new("CUR").el(e).el(c));
        }
        s.extend(self.refs.iter().map(ref_out));
        s.extend(self.contacts.iter().map(per_out));
        if let Some(f) = &self.fob {
            s.push(
                OutSegment::new("FOB")
                    .el(&f.payment_method)
                    .opt(f.location_qualifier.as_deref())
                    .opt(f.description.as_deref()),
            );
        }
        if let Some(c) = &self.sales_requirement {
            s.push(OutSegment::new("CSH").el(c));
        }
        if let Some(t) = &self.terms {
            let mut seg = OutSegment::new("ITD")
                .el(&t.type_code)
                .opt(t.basis_date_code.as_deref());
            for _ in 3..7 {
                seg = seg.el("");
            }
            seg = seg.opt(t.net_days.as_deref());
            for _ in 8..12 {
                seg = seg.el("");
            }
            s.push(seg.opt(t.description.as_deref()));
        }
        s.extend(self.dates.iter().map(dtm_out));
        if let Some(t) = self.carrier.as_ref().filter(|t| **t != Td5::default()) {
            s.push(
                OutSegment::new("TD5")
                    .opt(t.routing_sequence.as_deref())
                    .opt(t.id_qualifier.as_deref())
                    .opt(t.scac.as_deref())
                    .opt(t.method.as_deref())
                    .opt(t.routing.as_deref()),
            );
        }
        for n in &self.notes {
            s.push(
                OutSegment::new("N9")
                    .el(&n.qualifier)
                    .opt(n.reference.as_deref()),
            );
            s.extend(n.messages.iter().map(|m| OutSegment::new("MSG").el(m)));
        }
        s.extend(self.extra_header.iter().map(|e| extra_out(e)));
        for p in &self.parties {
            s.extend(party_out(p));
        }
        for l in &self.lines {
            let mut po1 = OutSegment::new("PO1")
                .el(&l.number)
                .el(&l.quantity)
                .el(&l.uom)
                .opt(l.unit_price.as_deref())
                .opt(l.price_basis.as_deref());
            for p in l.product_ids.iter().take(10) {
                po1 = po1.el(&p.qualifier).el(&p.value);
            }
            s.push(po1);
            for d in l.description.iter().chain(&l.description_continued) {
                s.push(OutSegment::new("PID").el("F").el("").el("").el("").el(d));
            }
            s.extend(l.refs.iter().map(ref_out));
            s.extend(l.dates.iter().map(dtm_out));
            s.extend(l.messages.iter().map(|m| OutSegment::new("MSG").el(m)));
            s.extend(l.extra.iter().map(|e| extra_out(e)));
        }
        let mut ctt = OutSegment::new("CTT").el(self.lines.len().to_string());
        if self.hash_total {
            ctt = ctt.opt(decimal_sum(self.lines.iter().map(|l| l.quantity.as_str())));
        }
        s.push(ctt);
        if let Some(a) = &self.total_amount {
            s.push(OutSegment::new("AMT").el("TT").el(a));
        }
        s.extend(self.extra_summary.iter().map(|e| extra_out(e)));
        OutTransaction {
            id: "850".into(),
            control_number: control_number.into(),
            implementation_ref: None,
            segments: s,
        }
    }

    /// Read an 850 back.
    pub fn parse(tx: &Transaction<'_>) -> (Po850, Vec<Diagnostic>) {
        let mut po = Po850::default();
        let mut d = Vec::new();
        let mut seen_beg = false;
        let mut at = Loop850::Head;
        for seg in tx.body() {
            if seg.is("BEG") {
                seen_beg = true;
                po.read_beg(seg, &mut d);
            } else if let Some(start) = po.read_loop_start(seg, &mut d) {
                at = start;
            } else if at == Loop850::Party
                && po.parties.last_mut().is_some_and(|p| party_detail(p, seg))
            {
            } else {
                po.read_segment(seg, at, &mut d);
            }
        }
        if !seen_beg {
            d.push(missing_segment("beg", set_start(tx)));
        }
        (po, d)
    }

    fn read_beg(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) {
        self.purpose = required(seg, 1, d);
        self.po_type = required(seg, 2, d);
        self.po_number = required(seg, 3, d);
        self.release = txt(seg, 4);
        self.date = required(seg, 5, d);
        self.contract = txt(seg, 6);
    }

    /// N9, N1 and PO1 open a loop: the loop they open, None for any other segment.
    fn read_loop_start(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> Option<Loop850> {
        if seg.is("N9") {
            self.notes.push(Note::read(seg));
            Some(Loop850::Note)
        } else if seg.is("N1") {
            self.parties.push(parse_n1(seg, d));
            Some(Loop850::Party)
        } else if seg.is("PO1") {
            self.lines.push(Line {
                number: txt(seg, 1).unwrap_or_default(),
                quantity: required(seg, 2, d),
                uom: code(seg, 3).unwrap_or_default(),
                unit_price: txt(seg, 4),
                price_basis: code(seg, 5),
                product_ids: product_ids(seg, 6, 10),
                ..Line::default()
            });
            Some(Loop850::Line)
        } else {
            None
        }
    }

    /// Any segment but BEG, the loop starts and a party's own: into the heading, or the loop
    /// `at` where it belongs there.
    fn read_segment(&mut self, seg: &Segment<'_>, at: Loop850, d: &mut Vec<Diagnostic>) {
        let line = match at {
            Loop850::Line => self.lines.last_mut(),
            _ => None,
        };
        if seg.is("CUR") {
            self.currency = Some((
                code(seg, 1).unwrap_or_default(),
                code(seg, 2).unwrap_or_default(),
            ));
        } else if seg.is("REF") {
            let r = parse_ref(seg, d);
            match line {
                Some(l) => l.refs.push(r),
                None => self.refs.push(r),
            }
        } else if seg.is("DTM") {
            let x = parse_dtm(seg, d);
            match line {
                Some(l) => l.dates.push(x),
                None => self.dates.push(x),
            }
        } else if seg.is("MSG") {
            let m = txt(seg, 1).unwrap_or_default();
            match (line, self.notes.last_mut()) {
                (Some(l), _) => l.messages.push(m),
                (None, Some(n)) if at == Loop850::Note => n.messages.push(m),
                _ => d.push(unexpected(seg, "outside an n9 or po1 loop")),
            }
        } else if seg.is("FOB") {
            self.fob = Some(Fob::read(seg));
        } else if seg.is("CSH") {
            self.sales_requirement = code(seg, 1);
        } else if seg.is("ITD") {
            self.terms = Some(Terms {
                type_code: code(seg, 1).unwrap_or_default(),
                basis_date_code: code(seg, 2),
                net_days: txt(seg, 7),
                description: txt(seg, 12),
            });
        } else if seg.is("TD5") {
            self.carrier = Some(Td5::read(seg));
        } else if seg.is("PER") {
            self.contacts.push(parse_per(seg));
        } else if seg.is("PID") {
            if let Some(l) = self.lines.last_mut() {
                if l.description.is_none() {
                    l.description = txt(seg, 5);
                } else {
                    l.description_continued.extend(txt(seg, 5));
                }
            }
        } else if seg.is("CTT") {
            self.hash_total = txt(seg, 2).is_some();
        } else if seg.is("AMT") && code(seg, 1).as_deref() == Some("TT") {
            self.total_amount = txt(seg, 2);
        }
    }
}
