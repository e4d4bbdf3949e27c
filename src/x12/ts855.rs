//! Typed 855 Purchase Order Acknowledgment reader: BAK heading (with PER, TD5, N9/MSG, AMT,
//! CTT), N1 loops, and PO1 loops with their ACK line-status details, SCH schedules and N1
//! parties (reference §4). Fields added after the first release are left out of the serialized
//! form when the file does not carry them.

use super::common::{
    code, missing_element, missing_segment, number, parse_dtm, parse_n1, parse_per, parse_ref,
    party_detail, product_ids, repeated_heading, set_start, txt, unexpected, Contact, Dtm, Party,
    ProductId, Ref,
};
use super::envelope::Transaction;
use super::error::{Diagnostic, Position};
use super::segment::Segment;
use super::ts850::{Note, Td5};
use serde::Serialize;

/// One ACK segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AckDetail {
    /// ACK01 (668)
    pub status: String,
    pub quantity: Option<String>,
    pub uom: Option<String>,
    pub date_qualifier: Option<String>,
    pub date: Option<String>,
    /// ACK07..ACK28
    pub product_ids: Vec<ProductId>,
    /// ACK06 (326) request reference number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_reference: Option<String>,
    /// ACK29 (1271) industry (reason) code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub position: Position,
}

impl AckDetail {
    fn read(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> AckDetail {
        let status = code(seg, 1).unwrap_or_else(|| {
            d.push(missing_element(seg, 1));
            String::new()
        });
        AckDetail {
            status,
            quantity: number(seg, 2, d),
            uom: code(seg, 3),
            date_qualifier: code(seg, 4),
            date: txt(seg, 5),
            product_ids: product_ids(seg, 7, 11),
            request_reference: txt(seg, 6),
            reason: code(seg, 29),
            position: seg.position(),
        }
    }
}

/// One SCH line item schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// SCH01
    pub quantity: Option<String>,
    /// SCH02
    pub uom: Option<String>,
    /// SCH03, SCH04: entity and name (e.g. a ship-to).
    pub entity: Option<String>,
    pub name: Option<String>,
    /// SCH05 (374) and SCH06/SCH07.
    pub date_qualifier: Option<String>,
    pub date: Option<String>,
    pub time: Option<String>,
    /// SCH08 (374) and SCH09/SCH10: a second date (the end of a range).
    pub date_qualifier2: Option<String>,
    pub date2: Option<String>,
    pub time2: Option<String>,
    /// SCH11 request reference, SCH12 assigned identification.
    pub request_reference: Option<String>,
    pub assigned_id: Option<String>,
    pub position: Position,
}

impl Schedule {
    fn read(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> Schedule {
        Schedule {
            quantity: number(seg, 1, d),
            uom: code(seg, 2),
            entity: code(seg, 3),
            name: txt(seg, 4),
            date_qualifier: code(seg, 5),
            date: txt(seg, 6),
            time: txt(seg, 7),
            date_qualifier2: code(seg, 8),
            date2: txt(seg, 9),
            time2: txt(seg, 10),
            request_reference: txt(seg, 11),
            assigned_id: txt(seg, 12),
            position: seg.position(),
        }
    }
}

/// AMT: qualifier, amount, credit/debit flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Amt {
    pub qualifier: String,
    pub amount: String,
    pub credit_debit: Option<String>,
}

/// One PO1 loop of an 855.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AckLine {
    pub line_number: Option<String>,
    pub quantity: Option<String>,
    pub uom: Option<String>,
    pub unit_price: Option<String>,
    pub price_basis: Option<String>,
    pub product_ids: Vec<ProductId>,
    pub description: Option<String>,
    pub refs: Vec<Ref>,
    pub dates: Vec<Dtm>,
    pub acks: Vec<AckDetail>,
    /// SCH segments of the line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<Schedule>,
    /// N1 loops inside the PO1 loop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<Party>,
    pub position: Position,
}

impl AckLine {
    /// The PO1; the rest of the loop follows.
    fn read(seg: &Segment<'_>, d: &mut Vec<Diagnostic>) -> AckLine {
        AckLine {
            line_number: txt(seg, 1),
            quantity: number(seg, 2, d),
            uom: code(seg, 3),
            unit_price: number(seg, 4, d),
            price_basis: code(seg, 5),
            product_ids: product_ids(seg, 6, 10),
            position: seg.position(),
            ..AckLine::default()
        }
    }
}

/// The 855.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ack855 {
    pub purpose: String,
    /// BAK02 (587)
    pub ack_type: String,
    pub po_number: String,
    pub po_date: Option<String>,
    pub release: Option<String>,
    /// BAK08
    pub seller_order: Option<String>,
    /// BAK09
    pub ack_date: Option<String>,
    /// CUR02
    pub currency: Option<String>,
    pub refs: Vec<Ref>,
    pub dates: Vec<Dtm>,
    pub parties: Vec<Party>,
    pub lines: Vec<AckLine>,
    /// BAK06 request reference number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_reference: Option<String>,
    /// BAK07 contract number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// BAK10 transaction type code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<String>,
    /// Heading PER contacts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Heading TD5 carrier details.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub carriers: Vec<Td5>,
    /// Heading N9 notes with their MSG texts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// AMT amounts (summary or heading).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amounts: Vec<Amt>,
    /// CTT01 number of line items, CTT02 hash total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_count: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_total: Option<String>,
}

impl Ack855 {
    /// Read an 855. Missing BAK/BAK03 → error diagnostics naming segment and element.
    pub fn parse(tx: &Transaction<'_>) -> (Ack855, Vec<Diagnostic>) {
        let mut a = Ack855::default();
        let mut d = Vec::new();
        let mut seen_bak = false;
        let mut in_party = false;
        for seg in tx.body() {
            if seg.is("BAK") && seen_bak {
                d.push(repeated_heading(seg));
            } else if seg.is("BAK") {
                seen_bak = true;
                a.read_bak(seg, &mut d);
            } else if seg.is("N1") {
                in_party = true;
                let party = parse_n1(seg, &mut d);
                match a.lines.last_mut() {
                    Some(l) => l.parties.push(party),
                    None => a.parties.push(party),
                }
            } else if in_party && a.last_party().is_some_and(|p| party_detail(p, seg)) {
            } else if seg.is("PO1") {
                in_party = false;
                a.lines.push(AckLine::read(seg, &mut d));
            } else if a.lines.is_empty() && a.read_heading(seg) {
            } else {
                a.read_segment(seg, &mut d);
            }
        }
        if !seen_bak {
            d.push(missing_segment("bak", set_start(tx)));
        }
        (a, d)
    }

    fn read_bak(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) {
        self.purpose = code(seg, 1).unwrap_or_default();
        self.ack_type = code(seg, 2).unwrap_or_default();
        match txt(seg, 3) {
            Some(v) => self.po_number = v,
            None => d.push(missing_element(seg, 3)),
        }
        self.po_date = txt(seg, 4);
        self.release = txt(seg, 5);
        self.request_reference = txt(seg, 6);
        self.contract = txt(seg, 7);
        self.seller_order = txt(seg, 8);
        self.ack_date = txt(seg, 9);
        self.transaction_type = code(seg, 10);
        if self.purpose.is_empty() {
            d.push(missing_element(seg, 1));
        }
        if self.ack_type.is_empty() {
            d.push(missing_element(seg, 2));
        }
    }

    /// The N1 loop being read: the current line's last, or the heading's.
    fn last_party(&mut self) -> Option<&mut Party> {
        match self.lines.last_mut() {
            Some(l) => l.parties.last_mut(),
            None => self.parties.last_mut(),
        }
    }

    /// PER, TD5, N9 and MSG of the heading (before any PO1); false for other segments.
    fn read_heading(&mut self, seg: &Segment<'_>) -> bool {
        if seg.is("PER") {
            self.contacts.push(parse_per(seg));
        } else if seg.is("TD5") {
            self.carriers.push(Td5::read(seg));
        } else if seg.is("N9") {
            self.notes.push(Note::read(seg));
        } else if seg.is("MSG") {
            if let Some(n) = self.notes.last_mut() {
                n.messages
                    .extend(seg.element(1).map(|m| m.trim_end().to_string()));
            }
        } else {
            return false;
        }
        true
    }

    /// CUR, REF, DTM, AMT, CTT, and a line's SCH, PID and ACK.
    fn read_segment(&mut self, seg: &Segment<'_>, d: &mut Vec<Diagnostic>) {
        if seg.is("CUR") {
            self.currency = code(seg, 2);
        } else if seg.is("REF") {
            let r = parse_ref(seg, d);
            match self.lines.last_mut() {
                Some(l) => l.refs.push(r),
                None => self.refs.push(r),
            }
        } else if seg.is("DTM") {
            let x = parse_dtm(seg, d);
            match self.lines.last_mut() {
                Some(l) => l.dates.push(x),
                None => self.dates.push(x),
            }
        } else if seg.is("AMT") {
            self.amounts.push(Amt {
                qualifier: code(seg, 1).unwrap_or_default(),
                amount: txt(seg, 2).unwrap_or_default(),
                credit_debit: code(seg, 3),
            });
        } else if seg.is("CTT") {
            self.line_count = txt(seg, 1);
            self.hash_total = txt(seg, 2);
        } else if seg.is("SCH") {
            let schedule = Schedule::read(seg, d);
            match self.lines.last_mut() {
                Some(l) => l.schedules.push(schedule),
                None => d.push(unexpected(seg, "before any po1")),
            }
        } else if seg.is("PID") {
            if let Some(l) = self.lines.last_mut() {
                if l.description.is_none() {
                    l.description = txt(seg, 5);
                }
            }
        } else if seg.is("ACK") {
            let detail = AckDetail::read(seg, d);
            match self.lines.last_mut() {
                Some(l) => l.acks.push(detail),
                None => d.push(unexpected(seg, "before any po1")),
            }
        }
    }
}
