//! Typed 855 Purchase Order Acknowledgment reader: BAK heading, N1 loops, and PO1 loops with
//! their ACK line-status details (reference §4).

use super::common::{
    code, missing_element, missing_segment, parse_dtm, parse_n1, parse_ref, party_detail,
    product_ids, txt, Dtm, Party, ProductId, Ref,
};
use super::envelope::Transaction;
use super::error::{Diagnostic, Position};
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
    pub position: Position,
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
    pub position: Position,
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
}

impl Ack855 {
    /// Read an 855. Missing BAK/BAK03 → error diagnostics naming segment and element.
    pub fn parse(tx: &Transaction<'_>) -> (Ack855, Vec<Diagnostic>) {
        let mut a = Ack855::default();
        let mut d = Vec::new();
        let mut seen_bak = false;
        let mut in_party = false;
        for seg in tx.body() {
            if seg.is("BAK") {
                seen_bak = true;
                a.purpose = code(seg, 1).unwrap_or_default();
                a.ack_type = code(seg, 2).unwrap_or_default();
                match txt(seg, 3) {
                    Some(v) => a.po_number = v,
                    None => d.push(missing_element(seg, 3)),
                }
                a.po_date = txt(seg, 4);
                a.release = txt(seg, 5);
                a.seller_order = txt(seg, 8);
                a.ack_date = txt(seg, 9);
                if a.purpose.is_empty() {
                    d.push(missing_element(seg, 1));
                }
                if a.ack_type.is_empty() {
                    d.push(missing_element(seg, 2));
                }
            } else if seg.is("CUR") {
                a.currency = code(seg, 2);
            } else if seg.is("REF") {
                let r = parse_ref(seg, &mut d);
                match a.lines.last_mut() {
                    Some(l) => l.refs.push(r),
                    None => a.refs.push(r),
                }
            } else if seg.is("DTM") {
                let x = parse_dtm(seg, &mut d);
                match a.lines.last_mut() {
                    Some(l) => l.dates.push(x),
                    None => a.dates.push(x),
                }
            } else if seg.is("N1") && a.lines.is_empty() {
                in_party = true;
                a.parties.push(parse_n1(seg, &mut d));
            } else if in_party
                && a.lines.is_empty()
                && a.parties.last_mut().is_some_and(|p| party_detail(p, seg))
            {
            } else if seg.is("PO1") {
                in_party = false;
                a.lines.push(AckLine {
                    line_number: txt(seg, 1),
                    quantity: txt(seg, 2),
                    uom: code(seg, 3),
                    unit_price: txt(seg, 4),
                    price_basis: code(seg, 5),
                    product_ids: product_ids(seg, 6, 10),
                    position: seg.position(),
                    ..AckLine::default()
                });
            } else if seg.is("PID") {
                if let Some(l) = a.lines.last_mut() {
                    if l.description.is_none() {
                        l.description = txt(seg, 5);
                    }
                }
            } else if seg.is("ACK") {
                let status = code(seg, 1).unwrap_or_else(|| {
                    d.push(missing_element(seg, 1));
                    String::new()
                });
                let detail = AckDetail {
                    status,
                    quantity: txt(seg, 2),
                    uom: code(seg, 3),
                    date_qualifier: code(seg, 4),
                    date: txt(seg, 5),
                    product_ids: product_ids(seg, 7, 11),
                    position: seg.position(),
                };
                match a.lines.last_mut() {
                    Some(l) => l.acks.push(detail),
                    None => d.push(super::common::unexpected(seg, "before any po1")),
                }
            }
        }
        if !seen_bak {
            let at = tx
                .segments
                .first()
                .map(|s| s.position())
                .unwrap_or_default();
            d.push(missing_segment("bak", at));
        }
        (a, d)
    }
}
