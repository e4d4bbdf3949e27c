//! The pure translator from a typed 855 to the body of Ingram's *Purchase Order Response* call.
//! BAK02 and ACK01 codes are translated through the mapping's code lists; quantities are summed
//! per line status; dates are converted from X12 to the API's format (the estimated ship date
//! from ACK04/05, else from the line's SCH schedule, else from its DTM); a rejected line carries
//! its ACK29 reason code as `rejectReason`. An unknown code or an unreadable date is a
//! [`TranslateError`] that names segment, element and position.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::domain::CallKind;
use crate::ingram::calls::{convert_date, rename_fields, ApiCall, TranslateError};
use crate::mapping::{CodeLists, Mapping};
use crate::x12::{self, Ack855};

/// The canonical line statuses (values of the `line_status` code list).
const ACCEPTED: &str = "accepted";
const BACKORDERED: &str = "backordered";
const REJECTED: &str = "rejected";
const CHANGED: &str = "changed";

/// One PO Response call for the 855. `fallback_date` (X12 date, e.g. GS04) is used when BAK09
/// is absent.
pub fn from_855(
    ack: &Ack855,
    bak_position: &x12::Position,
    mapping: &Mapping,
    fallback_date: &str,
) -> Result<ApiCall, TranslateError> {
    let dates = Dates::of(mapping);
    let (ack_type, ack_date) = heading(ack, bak_position, mapping, &dates, fallback_date)?;
    let whole_rejected = ack_type == REJECTED;
    let mut lines = Vec::new();
    for (n, line) in ack.lines.iter().enumerate() {
        lines.push(line_json(n, line, whole_rejected, mapping, &dates)?);
    }
    let mut body = Map::new();
    body.insert(
        "ingramPurchaseOrderNumber".into(),
        json!(ack.po_number.trim()),
    );
    if let Some(so) = &ack.seller_order {
        body.insert("vendorSalesOrderNumber".into(), json!(so.trim()));
    }
    body.insert("acknowledgementDate".into(), json!(ack_date));
    body.insert("acknowledgementType".into(), json!(ack_type));
    body.insert("lines".into(), Value::Array(lines));
    let po = ack.po_number.trim().to_string();
    Ok(ApiCall {
        path: mapping
            .po_response
            .path
            .replace("{po}", &crate::ingram::calls::path_segment(&po)),
        body: rename_fields(Value::Object(body), &mapping.po_response.fields),
        po,
        kind: CallKind::PoResponse,
    })
}

/// The error for element `element` of the segment at `pos`.
fn fail(pos: &x12::Position, element: usize, message: String) -> TranslateError {
    TranslateError {
        position: Box::new(x12::Position {
            element: Some(element),
            ..pos.clone()
        }),
        message,
    }
}

/// The mapping's date settings: the API's format, the X12 formats read, and the qualifiers
/// of an estimated ship date.
struct Dates<'m> {
    api: &'m str,
    x12: &'m [String],
    ship: &'m [String],
}

impl<'m> Dates<'m> {
    fn of(mapping: &'m Mapping) -> Self {
        Dates {
            api: &mapping.po_response.date_format,
            x12: &mapping.inbound.x12_date_formats,
            ship: &mapping.inbound.estimated_ship_dtm,
        }
    }

    fn convert(&self, x12_date: &str) -> Option<String> {
        convert_date(x12_date, self.x12, self.api)
    }

    fn is_ship(&self, qualifier: &str) -> bool {
        self.ship.iter().any(|q| q == qualifier)
    }
}

/// The BAK's PO number checked, its BAK02 translated and its date (or `fallback_date`)
/// converted.
fn heading<'m>(
    ack: &Ack855,
    bak_position: &x12::Position,
    mapping: &'m Mapping,
    dates: &Dates<'_>,
    fallback_date: &str,
) -> Result<(&'m str, String), TranslateError> {
    if ack.po_number.trim().is_empty() {
        return Err(fail(
            bak_position,
            3,
            "bak03 (purchase order number) is empty".into(),
        ));
    }
    if let Some(problem) = crate::ingram::calls::dot_segment(ack.po_number.trim()) {
        return Err(fail(bak_position, 3, format!("bak03 {problem}")));
    }
    let ack_type =
        CodeLists::lookup(&mapping.code_lists.ack_type, &ack.ack_type).ok_or_else(|| {
            fail(
                bak_position,
                2,
                format!(
                    "bak02 '{}' is not in code_lists.ack_type of the mapping",
                    ack.ack_type
                ),
            )
        })?;
    let date_src = ack.ack_date.as_deref().unwrap_or(fallback_date);
    let ack_date = dates
        .convert(date_src)
        .ok_or_else(|| fail(bak_position, 9, format!("bak09 '{date_src}' is not a date")))?;
    Ok((ack_type, ack_date))
}

/// What a line's ACKs add up to.
#[derive(Default)]
struct LineAcks<'m> {
    accepted: u64,
    backordered: u64,
    rejected: u64,
    changed: bool,
    statuses: Vec<&'m str>,
    ship_date: Option<String>,
    reject_reason: Option<String>,
}

impl<'m> LineAcks<'m> {
    /// Sums the line's ACKs per status (an ACK without a quantity counts the ordered one); a
    /// line without ACKs takes the header's decision.
    fn of(
        line: &x12::AckLine,
        ordered: Option<u64>,
        whole_rejected: bool,
        mapping: &'m Mapping,
        dates: &Dates<'_>,
    ) -> Result<Self, TranslateError> {
        let mut t = LineAcks::default();
        for detail in &line.acks {
            t.add(detail, ordered, mapping, dates)?;
        }
        if line.acks.is_empty() {
            // No ACK: the header decides for the whole line.
            let q = ordered.unwrap_or(0);
            if whole_rejected {
                t.rejected = q;
            } else {
                t.accepted = q;
            }
        }
        Ok(t)
    }

    fn add(
        &mut self,
        detail: &x12::AckDetail,
        ordered: Option<u64>,
        mapping: &'m Mapping,
        dates: &Dates<'_>,
    ) -> Result<(), TranslateError> {
        let status = CodeLists::lookup(&mapping.code_lists.line_status, &detail.status)
            .ok_or_else(|| {
                fail(
                    &detail.position,
                    1,
                    format!(
                        "ack01 '{}' is not in code_lists.line_status of the mapping",
                        detail.status
                    ),
                )
            })?;
        let qty = match detail.quantity.as_deref() {
            Some(q) => Some(quantity(q, &detail.position, "ack02")?),
            None => None,
        };
        let qty = qty.or(ordered).unwrap_or(0);
        match status {
            BACKORDERED => self.backordered = self.backordered.saturating_add(qty),
            REJECTED => self.rejected = self.rejected.saturating_add(qty),
            CHANGED => {
                self.changed = true;
                self.accepted = self.accepted.saturating_add(qty)
            }
            _ => self.accepted = self.accepted.saturating_add(qty),
        }
        self.statuses.push(status);
        if status == REJECTED && self.reject_reason.is_none() {
            self.reject_reason = detail.reason.clone();
        }
        if let (Some(q), Some(d)) = (&detail.date_qualifier, &detail.date) {
            if dates.is_ship(q) {
                self.ship_date = Some(dates.convert(d).ok_or_else(|| {
                    fail(&detail.position, 5, format!("ack05 '{d}' is not a date"))
                })?);
            }
        }
        Ok(())
    }

    /// The line's status: the header's without ACKs, the one ACK's, else from the sums.
    fn line_status(&self, has_acks: bool, whole_rejected: bool) -> &'m str {
        if !has_acks {
            if whole_rejected {
                REJECTED
            } else {
                ACCEPTED
            }
        } else if let [only] = self.statuses[..] {
            only
        } else if self.accepted == 0 && self.backordered == 0 {
            REJECTED
        } else if self.backordered > 0 {
            BACKORDERED
        } else if self.changed || self.rejected > 0 {
            CHANGED
        } else {
            ACCEPTED
        }
    }
}

/// A PO102 or ACK02 as a quantity, or the error naming it (`element` is e.g. `po102`).
fn quantity(q: &str, position: &x12::Position, element: &str) -> Result<u64, TranslateError> {
    parse_qty(Some(q)).ok_or_else(|| {
        fail(
            position,
            2,
            format!(
                "{element} '{q}' is not a quantity (0 to {})",
                crate::ingram::calls::MAX_QUANTITY
            ),
        )
    })
}

/// The estimated ship date when no ACK gave one: from the line's first SCH with a ship-date
/// qualifier, else from its (last) ship-date DTM.
fn schedule_ship_date(
    line: &x12::AckLine,
    dates: &Dates<'_>,
) -> Result<Option<String>, TranslateError> {
    let sch = line.schedules.iter().find_map(|s| {
        let q = s.date_qualifier.as_ref()?;
        let d = s.date.as_ref()?;
        dates.is_ship(q).then_some((s, d))
    });
    if let Some((s, d)) = sch {
        let date = dates
            .convert(d)
            .ok_or_else(|| fail(&s.position, 6, format!("sch06 '{d}' is not a date")))?;
        return Ok(Some(date));
    }
    let mut ship_date = None;
    for d in &line.dates {
        if dates.is_ship(&d.qualifier) {
            ship_date = dates.convert(&d.date);
        }
    }
    Ok(ship_date)
}

/// One element of the call's `lines`.
fn line_json(
    n: usize,
    line: &x12::AckLine,
    whole_rejected: bool,
    mapping: &Mapping,
    dates: &Dates<'_>,
) -> Result<Value, TranslateError> {
    // A PO102 that is there but no quantity refuses the set: never a line without it.
    let ordered = match line.quantity.as_deref() {
        Some(q) => Some(quantity(q, &line.position, "po102")?),
        None => None,
    };
    let t = LineAcks::of(line, ordered, whole_rejected, mapping, dates)?;
    let ship_date = match &t.ship_date {
        Some(d) => Some(d.clone()),
        None => schedule_ship_date(line, dates)?,
    };
    let mut obj = Map::new();
    obj.insert(
        "ingramLineNumber".into(),
        json!(line
            .line_number
            .as_deref()
            .map(|l| mapping.unpad("PO1", 1, l).to_string())
            .unwrap_or_else(|| (n + 1).to_string())),
    );
    if let Some(v) = product_id(line, &mapping.inbound.vendor_part_qualifiers) {
        obj.insert("vendorPartNumber".into(), json!(v));
    }
    if let Some(v) = product_id(line, &mapping.inbound.ingram_part_qualifiers) {
        obj.insert("ingramPartNumber".into(), json!(v));
    }
    if let Some(q) = ordered {
        obj.insert("quantityOrdered".into(), json!(q));
    }
    obj.insert("quantityAccepted".into(), json!(t.accepted));
    obj.insert("quantityBackordered".into(), json!(t.backordered));
    obj.insert("quantityRejected".into(), json!(t.rejected));
    if let Some(p) = &line.unit_price {
        obj.insert("unitPrice".into(), json!(p.trim()));
    }
    let status = t.line_status(!line.acks.is_empty(), whole_rejected);
    obj.insert("lineStatus".into(), json!(status));
    if let Some(d) = ship_date {
        obj.insert("estimatedShipDate".into(), json!(d));
    }
    if let Some(r) = t.reject_reason {
        obj.insert("rejectReason".into(), json!(r));
    }
    Ok(Value::Object(obj))
}

fn parse_qty(s: Option<&str>) -> Option<u64> {
    let s = s?.trim();
    let whole = s
        .split_once('.')
        .map_or(s, |(i, f)| if f.chars().all(|c| c == '0') { i } else { "" });
    whole
        .parse()
        .ok()
        .filter(|q| *q <= crate::ingram::calls::MAX_QUANTITY)
}

fn product_id(line: &x12::AckLine, qualifiers: &[String]) -> Option<String> {
    let by_q: BTreeMap<String, &str> = line
        .product_ids
        .iter()
        .map(|p| (p.qualifier.to_ascii_uppercase(), p.value.as_str()))
        .collect();
    qualifiers.iter().find_map(|q| {
        by_q.get(&q.to_ascii_uppercase())
            .map(|v| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: &str = "ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *261121*0900*U*00401*000000501*0*P*>~\nGS*PR*VENDORERP*INGRAMMICRO*20261121*0900*501*X*004010~\nST*855*0001~\nBAK*00*AC*IM-PO-1001*20261120****SO-77812*20261121~\nPO1*1*10*EA*123.45*PE*VP*ABC-123*BP*7HW123~\nACK*IA*8*EA*068*20261125~\nACK*IB*2*EA~\nPO1*2*3*EA*19.90**VP*XYZ-9~\nACK*IR*3*EA~\nCTT*2~\nSE*9*0001~\nGE*1*501~\nIEA*1*000000501~\n";

    fn call(text: &str, mapping: &Mapping) -> Result<ApiCall, TranslateError> {
        let doc = x12::read(text.as_bytes(), &x12::ReadOptions::default());
        let tx = doc.transactions().next().expect("one set");
        let (ack, diags) = Ack855::parse(tx);
        assert!(diags.is_empty(), "{diags:?}");
        let bak = tx
            .segments
            .iter()
            .find(|s| s.is("BAK"))
            .unwrap()
            .position()
            .clone();
        from_855(&ack, &bak, mapping, "20261121")
    }

    #[test]
    fn body_matches_the_contract() {
        let c = call(ACK, &Mapping::builtin()).unwrap();
        assert_eq!(c.path, "/purchaseorders/IM-PO-1001/response");
        assert_eq!(
            c.body,
            json!({
                "ingramPurchaseOrderNumber": "IM-PO-1001",
                "vendorSalesOrderNumber": "SO-77812",
                "acknowledgementDate": "2026-11-21",
                "acknowledgementType": "accepted_with_changes",
                "lines": [
                    {"ingramLineNumber": "1", "vendorPartNumber": "ABC-123", "ingramPartNumber": "7HW123",
                     "quantityOrdered": 10, "quantityAccepted": 8, "quantityBackordered": 2, "quantityRejected": 0,
                     "unitPrice": "123.45", "lineStatus": "backordered", "estimatedShipDate": "2026-11-25"},
                    {"ingramLineNumber": "2", "vendorPartNumber": "XYZ-9",
                     "quantityOrdered": 3, "quantityAccepted": 0, "quantityBackordered": 0, "quantityRejected": 3,
                     "unitPrice": "19.90", "lineStatus": "rejected"}
                ]
            })
        );
    }

    #[test]
    fn a_line_number_the_850_padded_is_sent_to_ingram_without_the_fill() {
        let text = format!(
            "{}\n[[po850.pad]]\nelement = \"PO101\"\nwidth = 3\n",
            crate::mapping::DEFAULT_MAPPING
        );
        let padded = Mapping::from_str(&text, std::path::Path::new("m.toml")).unwrap();
        let ack = ACK
            .replace("PO1*1*", "PO1*001*")
            .replace("PO1*2*", "PO1*010*");
        let c = call(&ack, &padded).unwrap();
        assert_eq!(c.body["lines"][0]["ingramLineNumber"], "1");
        assert_eq!(c.body["lines"][1]["ingramLineNumber"], "10");
        // Without the padding in the mapping, the ERP's value is passed on as it is.
        let c = call(&ack, &Mapping::builtin()).unwrap();
        assert_eq!(c.body["lines"][0]["ingramLineNumber"], "001");
    }

    #[test]
    fn unknown_code_names_segment_element_and_position() {
        let e = call(&ACK.replace("ACK*IR", "ACK*ZQ"), &Mapping::builtin()).unwrap_err();
        assert_eq!(e.position.segment_id.as_deref(), Some("ACK"));
        assert_eq!(e.position.element, Some(1));
        assert!(e.message.contains("'ZQ'"), "{e}");
        let e = call(&ACK.replace("BAK*00*AC", "BAK*00*XX"), &Mapping::builtin()).unwrap_err();
        assert_eq!(e.position.element, Some(2));
    }

    #[test]
    fn a_dot_segment_po_is_refused_naming_bak03() {
        for po in [".", ".."] {
            let e = call(
                &ACK.replace("BAK*00*AC*IM-PO-1001", &format!("BAK*00*AC*{po}")),
                &Mapping::builtin(),
            )
            .unwrap_err();
            assert_eq!(e.position.element, Some(3), "{e}");
        }
    }

    #[test]
    fn sch_gives_the_estimated_ship_date_and_ack29_the_reject_reason() {
        let text = ACK
            .replace(
                "ACK*IA*8*EA*068*20261125~\nACK*IB*2*EA~\n",
                "ACK*IA*8*EA~\nACK*IB*2*EA~\nSCH*8*EA***068*20261127~\n",
            )
            .replace("ACK*IR*3*EA~", "ACK*IR*3*EA**************************CW~")
            .replace("SE*9*0001", "SE*10*0001");
        let c = call(&text, &Mapping::builtin()).unwrap();
        assert_eq!(c.body["lines"][0]["estimatedShipDate"], "2026-11-27");
        assert_eq!(c.body["lines"][1]["rejectReason"], "CW");
        assert!(c.body["lines"][0].get("rejectReason").is_none());
        // Without SCH and ACK29 the body has neither field (see body_matches_the_contract).
        let plain = call(&ACK.replace("*068*20261125", ""), &Mapping::builtin()).unwrap();
        assert!(plain.body["lines"][0].get("estimatedShipDate").is_none());
        assert!(plain.body["lines"][1].get("rejectReason").is_none());
    }

    #[test]
    fn a_po102_that_is_no_quantity_refuses_the_set() {
        let text = ACK.replace("PO1*1*10*EA", "PO1*1*2.5*EA");
        let doc = x12::read(text.as_bytes(), &x12::ReadOptions::default());
        let tx = doc.transactions().next().expect("one set");
        let (ack, _) = Ack855::parse(tx);
        let e = from_855(
            &ack,
            &x12::Position::default(),
            &Mapping::builtin(),
            "20261121",
        )
        .unwrap_err();
        assert_eq!(e.position.segment_id.as_deref(), Some("PO1"));
        assert_eq!(e.position.element, Some(2));
        assert!(e.message.contains("po102 '2.5'"), "{e}");
    }

    #[test]
    fn field_names_follow_the_mapping() {
        let mut m = Mapping::builtin();
        m.po_response
            .fields
            .insert("lineStatus".into(), "status".into());
        m.po_response.path = "/v2/po/{po}/ack".into();
        let c = call(ACK, &m).unwrap();
        assert_eq!(c.path, "/v2/po/IM-PO-1001/ack");
        assert_eq!(c.body["lines"][0]["status"], "backordered");
        assert!(c.body["lines"][0].get("lineStatus").is_none());
    }
}
