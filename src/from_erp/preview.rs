//! The admin's preview of an inbound file: the Ingram calls an 855 or 856 would produce, without
//! a store, a daemon or a network. `translate` prints them and `mapping test` compares them with
//! expected files. It routes each set as the inbox does (`set::translate`: typed parse, the pure
//! translators), then runs the mapping's body program, with the POs the caller supplies
//! standing in for the store.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::domain::{canonical, CallKind, PurchaseOrder};
use crate::from_erp::inbox::segments_of;
use crate::from_erp::set::{self, SetCalls, SetRefusal};
use crate::ingram::calls::render_body;
use crate::ingram::from_856::OrderView;
use crate::mapping::Mapping;
use crate::program::BodyProgramError;
use crate::x12;

/// One call as the daemon would queue it, before and after the mapping's body program.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub po: String,
    pub kind: CallKind,
    pub path: String,
    /// The canonical body (the program's input).
    pub canonical: Value,
    /// `$segments`.
    pub segments: Vec<Vec<String>>,
    /// `$po`: the supplied PO in canonical JSON, or null.
    pub po_json: Value,
    /// The request body, or why the program failed.
    pub body: Result<Value, BodyProgramError>,
}

impl Preview {
    /// `{method, path, body}` as `translate` prints it (a failed program shows as `error`).
    pub fn call_json(&self) -> Value {
        match &self.body {
            Ok(body) => json!({"method": "POST", "path": self.path, "body": body}),
            Err(e) => json!({"method": "POST", "path": self.path, "error": e.to_string()}),
        }
    }

    /// What the program sees: `{kind, po, input, $segments, $po}`.
    pub fn canonical_json(&self) -> Value {
        json!({
            "kind": match self.kind { CallKind::PoResponse => "po_response", CallKind::PoStatus => "po_status" },
            "po": self.po,
            "path": self.path,
            "input": self.canonical,
            "$segments": self.segments,
            "$po": self.po_json,
        })
    }
}

/// The calls an inbound X12 file would produce, routed as the inbox routes them
/// ([`set::translate`]). `orders` are the POs the store would know (for `$po`, and for the
/// 856's ordered and shipped quantities). An unreadable file, a set the bridge does not handle
/// or one the translators refuse is the refusal the inbox would give, naming its position.
pub fn calls(
    bytes: &[u8],
    mapping: &Mapping,
    orders: &[PurchaseOrder],
) -> Result<Vec<Preview>, SetRefusal> {
    let doc = x12::read(bytes, &crate::from_erp::inbox::read_options(mapping));
    set::first_error(&doc.diagnostics)?;
    let known: BTreeMap<&str, &PurchaseOrder> =
        orders.iter().map(|o| (o.po_number.as_str(), o)).collect();
    let views = || {
        known
            .iter()
            .map(|(po, o)| (po.to_string(), view(o)))
            .collect()
    };
    let mut out = Vec::new();
    for ic in &doc.interchanges {
        for g in &ic.groups {
            for tx in &g.transactions {
                let calls =
                    match set::translate(tx, mapping, g.header.date.trim(), |_| Ok(views()))? {
                        SetCalls::Ack855 { call, .. } => vec![call],
                        SetCalls::Asn856 { calls, .. } => {
                            calls.into_iter().map(|c| c.call).collect()
                        }
                        SetCalls::Ack997 { .. } => continue,
                    };
                let segments = segments_of(tx);
                for call in calls {
                    let po_json = known
                        .get(call.po.as_str())
                        .map_or(Value::Null, |o| canonical::po_json(o));
                    let body = render_body(mapping, call.kind, &call.body, &segments, &po_json);
                    out.push(Preview {
                        po: call.po,
                        kind: call.kind,
                        path: call.path,
                        canonical: call.body,
                        segments: segments.clone(),
                        po_json,
                        body,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn view(o: &PurchaseOrder) -> OrderView {
    OrderView::of(o, BTreeMap::new())
}

impl OrderView {
    /// The view of a stored PO, with what earlier 856s shipped.
    pub fn of(o: &PurchaseOrder, shipped: BTreeMap<String, u64>) -> OrderView {
        OrderView {
            ordered: o
                .lines
                .iter()
                .map(|l| (l.ingram_line_number.clone(), l.quantity))
                .collect(),
            line_by_vendor_part: o
                .lines
                .iter()
                .filter_map(|l| Some((l.vendor_part_number.clone()?, l.ingram_line_number.clone())))
                .collect(),
            shipped,
        }
    }
}
