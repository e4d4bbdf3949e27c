//! The pure translator from a typed 856 to Ingram *Purchase Order Status* calls, one per PO (an
//! 856 may carry several O levels). The HL tree is read by level, not by position: each item (I)
//! finds its order (nearest O ancestor), its package (nearest P/T ancestor, or a P child in
//! S/O/I/P files) and its shipment (nearest S). Where tracking numbers, serials and SSCCs live
//! comes from the mapping. `orderStatus` compares what has shipped so far (the stored state plus
//! this 856) with what the stored webhook ordered. No I/O: prior state comes in as data.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::domain::CallKind;
use crate::ingram::calls::{convert_date, rename_fields, ApiCall, TranslateError};
use crate::mapping::{CodeLists, Mapping};
use crate::x12::{self, Asn856, HlNode};

/// What the bridge knows of a PO before this 856.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderView {
    /// Ordered quantity per Ingram line number (from the webhook).
    pub ordered: BTreeMap<String, u64>,
    /// Vendor part number → Ingram line number, to place items that carry no line number.
    pub line_by_vendor_part: BTreeMap<String, String>,
    /// Quantity shipped by earlier 856s, per line.
    pub shipped: BTreeMap<String, u64>,
}

/// One Status call and the quantities this 856 ships per line of that PO.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCall {
    pub call: ApiCall,
    pub shipped_now: BTreeMap<String, u64>,
}

/// Items grouped PO → shipment node → package node → item nodes; shipments and packages keep
/// the order they first appear in the file.
type Packages = Vec<(Option<usize>, Vec<usize>)>;
type PerPo = BTreeMap<String, Vec<(Option<usize>, Packages)>>;

/// Translates one 856 transaction set. `orders` holds what is known of each PO it names (POs the
/// bridge never received are absent).
pub fn from_856(
    asn: &Asn856,
    bsn_position: &x12::Position,
    mapping: &Mapping,
    orders: &BTreeMap<String, OrderView>,
) -> Result<Vec<StatusCall>, TranslateError> {
    if asn.shipment_id.trim().is_empty() {
        return Err(TranslateError {
            position: Box::new(x12::Position {
                element: Some(2),
                ..bsn_position.clone()
            }),
            message: "bsn02 (shipment identification) is empty".into(),
        });
    }
    check_po_numbers(asn)?;
    let per_po = group_items(asn, bsn_position)?;
    let mut out = Vec::new();
    for (po, shipments) in per_po {
        let view = orders.get(&po);
        let mut shipped_now: BTreeMap<String, u64> = BTreeMap::new();
        let mut shipment_values = Vec::new();
        for (s_node, packages) in &shipments {
            shipment_values.push(shipment(
                asn,
                *s_node,
                packages,
                mapping,
                view,
                &mut shipped_now,
            )?);
        }
        let status = if complete(view, &shipped_now) {
            &mapping.po_status.shipped
        } else {
            &mapping.po_status.partially_shipped
        };
        let mut body = Map::new();
        body.insert("ingramPurchaseOrderNumber".into(), json!(po));
        if let Some(v) = vendor_sales_order(asn, &po) {
            body.insert("vendorSalesOrderNumber".into(), json!(v));
        }
        body.insert("orderStatus".into(), json!(status));
        body.insert("shipments".into(), Value::Array(shipment_values));
        out.push(StatusCall {
            call: ApiCall {
                path: mapping
                    .po_status
                    .path
                    .replace("{po}", &crate::ingram::calls::path_segment(&po)),
                body: rename_fields(Value::Object(body), &mapping.po_status.fields),
                po,
                kind: CallKind::PoStatus,
            },
            shipped_now,
        });
    }
    Ok(out)
}

/// Step 1: every PRF01 must be usable as a URL path segment.
fn check_po_numbers(asn: &Asn856) -> Result<(), TranslateError> {
    for node in &asn.nodes {
        let po = node.prf.as_ref().map(|p| p.po_number.trim());
        if let Some(problem) = po.and_then(crate::ingram::calls::dot_segment) {
            return Err(TranslateError {
                position: Box::new(node.position.clone()),
                message: format!("prf01 of hl {}: {problem}", node.id),
            });
        }
    }
    Ok(())
}

/// The entry for `k` in a small ordered map kept as a vector (first-seen order).
fn slot<K: PartialEq, V: Default>(v: &mut Vec<(K, V)>, k: K) -> &mut V {
    let at = match v.iter().position(|(x, _)| *x == k) {
        Some(at) => at,
        None => {
            v.push((k, V::default()));
            v.len() - 1
        }
    };
    &mut v[at].1
}

/// Step 2: each item (I) under its PO (nearest O), shipment (nearest S) and package (nearest
/// P/T, or a P child in S/O/I/P files); POs named by an O level that ships no item get an entry
/// too (a status without packages).
fn group_items(asn: &Asn856, bsn_position: &x12::Position) -> Result<PerPo, TranslateError> {
    let mut per_po = PerPo::new();
    for (i, node) in asn.nodes.iter().enumerate() {
        if !node.level.eq_ignore_ascii_case("I") {
            continue;
        }
        let Some(order) = asn.ancestor(i, "O") else {
            return Err(TranslateError {
                position: Box::new(node.position.clone()),
                message: format!("item hl {} has no order (O) level above it", node.id),
            });
        };
        let po = asn.nodes[order]
            .prf
            .as_ref()
            .map(|p| p.po_number.trim().to_string())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| TranslateError {
                position: Box::new(asn.nodes[order].position.clone()),
                message: format!(
                    "order hl {} has no prf01 purchase order number",
                    asn.nodes[order].id
                ),
            })?;
        let shipment = asn.ancestor(i, "S");
        let package = asn
            .ancestor(i, "P")
            .or_else(|| asn.ancestor(i, "T"))
            .or_else(|| {
                node.children
                    .iter()
                    .copied()
                    .find(|c| asn.nodes[*c].level.eq_ignore_ascii_case("P"))
            });
        let shipments = per_po.entry(po).or_default();
        slot(slot(shipments, shipment), package).push(i);
    }
    for (i, node) in asn.nodes.iter().enumerate() {
        if node.level.eq_ignore_ascii_case("O") {
            if let Some(prf) = &node.prf {
                let po = prf.po_number.trim().to_string();
                if !po.is_empty() {
                    slot(per_po.entry(po).or_default(), asn.ancestor(i, "S"));
                }
            }
        }
    }
    if per_po.is_empty() {
        return Err(TranslateError {
            position: Box::new(bsn_position.clone()),
            message: "856 names no purchase order (no O level with prf01)".into(),
        });
    }
    Ok(per_po)
}

/// Step 3: one shipment of a PO: its dates, carrier and bill of lading (from the S level or the
/// heading) and its packages.
fn shipment(
    asn: &Asn856,
    s_node: Option<usize>,
    packages: &Packages,
    mapping: &Mapping,
    view: Option<&OrderView>,
    shipped_now: &mut BTreeMap<String, u64>,
) -> Result<Value, TranslateError> {
    let ib = &mapping.inbound;
    let api_format = &mapping.po_status.date_format;
    let s = s_node.map(|i| &asn.nodes[i]);
    let mut sh = Map::new();
    sh.insert("shipmentId".into(), json!(asn.shipment_id.trim()));
    let heading_or_s = |quals: &[String]| -> Option<(String, &HlNode)> {
        s.into_iter()
            .flat_map(|n| n.dates.iter().map(move |d| (d, n)))
            .find(|(d, _)| quals.contains(&d.qualifier))
            .map(|(d, n)| (d.date.clone(), n))
            .or_else(|| {
                let first = asn.nodes.first()?;
                asn.dates
                    .iter()
                    .find(|d| quals.contains(&d.qualifier))
                    .map(|d| (d.date.clone(), s.unwrap_or(first)))
            })
    };
    let ship_date = match heading_or_s(&ib.ship_date_dtm) {
        Some((d, n)) => Some(api_date(&d, n, mapping)?),
        None => asn
            .date
            .as_deref()
            .and_then(|d| convert_date(d, &ib.x12_date_formats, api_format)),
    };
    if let Some(d) = ship_date {
        sh.insert("shipDate".into(), json!(d));
    }
    if let Some((d, n)) = heading_or_s(&ib.delivery_date_dtm) {
        sh.insert(
            "estimatedDeliveryDate".into(),
            json!(api_date(&d, n, mapping)?),
        );
    }
    if let Some(td5) = s.and_then(|n| n.td5.first()) {
        if let Some(scac) = td5.scac.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            sh.insert("carrierCode".into(), json!(scac));
            let name = CodeLists::lookup(&mapping.code_lists.carrier_name, scac)
                .map(str::to_string)
                .or_else(|| td5.routing.clone());
            if let Some(name) = name {
                sh.insert("carrierName".into(), json!(name.trim()));
            }
        } else if let Some(r) = &td5.routing {
            sh.insert("carrierName".into(), json!(r.trim()));
        }
    }
    if let Some(bol) = s.and_then(|n| find_ref(n, &ib.bill_of_lading)) {
        sh.insert("billOfLading".into(), json!(bol));
    }
    let mut package_values = Vec::new();
    for (p_node, items) in packages {
        if items.is_empty() {
            continue;
        }
        let p = p_node.map(|i| &asn.nodes[i]);
        package_values.push(package(asn, s, p, items, mapping, view, shipped_now)?);
    }
    sh.insert("packages".into(), Value::Array(package_values));
    Ok(Value::Object(sh))
}

/// An X12 date at `node` in the API's format, or the error naming it.
fn api_date(d: &str, node: &HlNode, mapping: &Mapping) -> Result<String, TranslateError> {
    convert_date(
        d,
        &mapping.inbound.x12_date_formats,
        &mapping.po_status.date_format,
    )
    .ok_or_else(|| TranslateError {
        position: Box::new(node.position.clone()),
        message: format!("dtm date '{d}' is not a date"),
    })
}

/// Step 4: one package: tracking (package, else shipment), SSCC, weight, and its item lines.
fn package(
    asn: &Asn856,
    s: Option<&HlNode>,
    p: Option<&HlNode>,
    items: &[usize],
    mapping: &Mapping,
    view: Option<&OrderView>,
    shipped_now: &mut BTreeMap<String, u64>,
) -> Result<Value, TranslateError> {
    let ib = &mapping.inbound;
    let mut pk = Map::new();
    let tracking = p
        .and_then(|n| find_source(n, &ib.tracking))
        .or_else(|| s.and_then(|n| find_source(n, &ib.tracking)));
    if let Some(t) = tracking {
        pk.insert("trackingNumber".into(), json!(t));
    }
    if let Some(sscc) = p.and_then(|n| {
        ib.sscc.iter().find_map(|src| {
            let q = src.split_once(':').map_or(src.as_str(), |(_, q)| q);
            n.man
                .iter()
                .find(|m| m.qualifier.eq_ignore_ascii_case(q))
                .map(|m| m.value.trim().to_string())
        })
    }) {
        pk.insert("sscc".into(), json!(sscc));
    }
    if let Some(w) = p.and_then(|n| n.td1.iter().find_map(|t| t.weight.clone())) {
        pk.insert("weight".into(), json!(w.trim()));
    }
    let mut lines = Vec::new();
    for &i in items {
        lines.push(item_line(asn, &asn.nodes[i], mapping, view, shipped_now)?);
    }
    pk.insert("lines".into(), Value::Array(lines));
    Ok(Value::Object(pk))
}

/// Step 5: one item line: line number (LIN01, SN101, else by vendor part), quantity shipped
/// (SN102, added to `shipped_now`), vendor part and serial numbers.
fn item_line(
    asn: &Asn856,
    item: &HlNode,
    mapping: &Mapping,
    view: Option<&OrderView>,
    shipped_now: &mut BTreeMap<String, u64>,
) -> Result<Value, TranslateError> {
    let ib = &mapping.inbound;
    let vendor_part = item.lin.as_ref().and_then(|l| {
        ib.vendor_part_qualifiers.iter().find_map(|q| {
            l.product_ids
                .iter()
                .find(|p| p.qualifier.eq_ignore_ascii_case(q))
                .map(|p| p.value.trim().to_string())
        })
    });
    let line_no = item
        .lin
        .as_ref()
        .and_then(|l| l.assigned_id.clone())
        .or_else(|| item.sn1.as_ref().and_then(|s| s.assigned_id.clone()))
        .map(|l| l.trim().trim_start_matches('0').to_string())
        .filter(|l| !l.is_empty())
        .or_else(|| {
            let vp = vendor_part.as_ref()?;
            view?.line_by_vendor_part.get(vp).cloned()
        })
        .ok_or_else(|| TranslateError {
            position: Box::new(item.position.clone()),
            message: format!(
                "item hl {} has no line number (lin01/sn101) and no known vendor part",
                item.id
            ),
        })?;
    let qty_raw = item
        .sn1
        .as_ref()
        .and_then(|s| s.quantity.clone())
        .ok_or_else(|| TranslateError {
            position: Box::new(item.position.clone()),
            message: format!("item hl {} has no sn102 quantity shipped", item.id),
        })?;
    let qty: u64 = qty_raw
        .trim()
        .split_once('.')
        .map_or(qty_raw.trim(), |(i, _)| i)
        .parse()
        .ok()
        .filter(|q| *q <= crate::ingram::calls::MAX_QUANTITY)
        .ok_or_else(|| TranslateError {
            position: Box::new(item.position.clone()),
            message: format!(
                "sn102 '{qty_raw}' is not a quantity (0 to {})",
                crate::ingram::calls::MAX_QUANTITY
            ),
        })?;
    let slot = shipped_now.entry(line_no.clone()).or_default();
    *slot = slot.saturating_add(qty);
    let serials: Vec<String> = ib
        .serial
        .iter()
        .flat_map(|src| sources(item, src))
        .chain(item.children.iter().flat_map(|c| {
            let child = &asn.nodes[*c];
            ib.serial
                .iter()
                .flat_map(move |src| sources(child, src))
                .collect::<Vec<_>>()
        }))
        .collect();
    let mut l = Map::new();
    l.insert("ingramLineNumber".into(), json!(line_no));
    if let Some(vp) = vendor_part {
        l.insert("vendorPartNumber".into(), json!(vp));
    }
    l.insert("quantityShipped".into(), json!(qty));
    if !serials.is_empty() {
        l.insert("serialNumbers".into(), json!(serials));
    }
    Ok(Value::Object(l))
}

/// Step 6: whether every ordered line has shipped in full (earlier 856s plus this one).
fn complete(view: Option<&OrderView>, shipped_now: &BTreeMap<String, u64>) -> bool {
    match view {
        Some(v) if !v.ordered.is_empty() => v.ordered.iter().all(|(line, ordered)| {
            v.shipped
                .get(line)
                .copied()
                .unwrap_or(0)
                .saturating_add(shipped_now.get(line).copied().unwrap_or(0))
                >= *ordered
        }),
        _ => false,
    }
}

/// The vendor's sales order of `po`: REF*VN (else REF*CO) at its O level.
fn vendor_sales_order(asn: &Asn856, po: &str) -> Option<String> {
    let o = asn.nodes.iter().find(|n| {
        n.level.eq_ignore_ascii_case("O")
            && n.prf.as_ref().is_some_and(|p| p.po_number.trim() == po)
    })?;
    find_ref(o, "VN").or_else(|| find_ref(o, "CO"))
}

fn find_ref(n: &HlNode, qualifier: &str) -> Option<String> {
    n.refs
        .iter()
        .find(|r| r.qualifier.eq_ignore_ascii_case(qualifier))
        .map(|r| r.value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Values of a `REF:XX` / `MAN:XX` source at a node.
fn sources(n: &HlNode, src: &str) -> Vec<String> {
    let Some((kind, q)) = src.split_once(':') else {
        return Vec::new();
    };
    match kind {
        "REF" => n
            .refs
            .iter()
            .filter(|r| r.qualifier.eq_ignore_ascii_case(q))
            .map(|r| r.value.trim().to_string())
            .collect(),
        "MAN" => n
            .man
            .iter()
            .flat_map(|m| {
                let mut v = Vec::new();
                if m.qualifier.eq_ignore_ascii_case(q) {
                    v.push(m.value.trim().to_string());
                }
                if let (Some(q2), Some(v2)) = (&m.qualifier2, &m.value2) {
                    if q2.eq_ignore_ascii_case(q) {
                        v.push(v2.trim().to_string());
                    }
                }
                v
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn find_source(n: &HlNode, list: &[String]) -> Option<String> {
    list.iter()
        .find_map(|src| sources(n, src).into_iter().find(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const ASN: &str = "ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *261121*1000*U*00401*000000601*0*P*>~\nGS*SH*VENDORERP*INGRAMMICRO*20261121*1000*601*X*004010~\nST*856*0001~\nBSN*00*ASN-5501*20261121*1000*0001~\nHL*1**S*1~\nTD1*CTN25*2****G*12.5*LB~\nTD5*B*2*UPSN*M~\nREF*BM*BOL123~\nDTM*011*20261121~\nDTM*017*20261124~\nHL*2*1*O*1~\nPRF*IM-PO-1001~\nHL*3*2*P*1~\nMAN*GM*00012345678901234567~\nREF*CN*1Z999AA10123456784~\nTD1*CTN25*1****G*12.5*LB~\nHL*4*3*I*0~\nLIN*1*VP*ABC-123~\nSN1*1*8*EA~\nREF*SE*SN001~\nREF*SE*SN002~\nHL*5*2*I*0~\nLIN*2*VP*XYZ-9~\nSN1*2*3*EA~\nCTT*5~\nSE*24*0001~\nGE*1*601~\nIEA*1*000000601~\n";

    fn calls(
        text: &str,
        orders: &BTreeMap<String, OrderView>,
    ) -> Result<Vec<StatusCall>, TranslateError> {
        let doc = x12::read(text.as_bytes(), &x12::ReadOptions::default());
        let tx = doc.transactions().next().expect("one set");
        let (asn, diags) = Asn856::parse(tx);
        assert!(
            diags.iter().all(|d| d.severity != x12::Severity::Error),
            "{diags:?}"
        );
        let bsn = tx
            .segments
            .iter()
            .find(|s| s.is("BSN"))
            .unwrap()
            .position()
            .clone();
        from_856(&asn, &bsn, &Mapping::builtin(), orders)
    }

    fn view(shipped: &[(&str, u64)]) -> BTreeMap<String, OrderView> {
        let mut m = BTreeMap::new();
        m.insert(
            "IM-PO-1001".to_string(),
            OrderView {
                ordered: [("1".to_string(), 10), ("2".to_string(), 3)].into(),
                line_by_vendor_part: BTreeMap::new(),
                shipped: shipped.iter().map(|(l, q)| (l.to_string(), *q)).collect(),
            },
        );
        m
    }

    #[test]
    fn a_dot_segment_po_is_refused_at_its_order_level() {
        let e = calls(&ASN.replace("PRF*IM-PO-1001", "PRF*.."), &BTreeMap::new()).unwrap_err();
        assert!(
            e.message.contains("prf01") && e.message.contains("'..'"),
            "{e}"
        );
        let c = calls(&ASN.replace("PRF*IM-PO-1001", "PRF*A/.."), &BTreeMap::new()).unwrap();
        assert_eq!(c[0].call.path, "/purchaseorders/A%2F../status");
    }

    #[test]
    fn body_matches_the_contract() {
        let out = calls(ASN, &view(&[])).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].call.path, "/purchaseorders/IM-PO-1001/status");
        assert_eq!(
            out[0].call.body,
            json!({
                "ingramPurchaseOrderNumber": "IM-PO-1001",
                "orderStatus": "partially_shipped",
                "shipments": [{
                    "shipmentId": "ASN-5501", "shipDate": "2026-11-21", "estimatedDeliveryDate": "2026-11-24",
                    "carrierCode": "UPSN", "carrierName": "UPS", "billOfLading": "BOL123",
                    "packages": [
                        {"trackingNumber": "1Z999AA10123456784", "sscc": "00012345678901234567", "weight": "12.5",
                         "lines": [{"ingramLineNumber": "1", "vendorPartNumber": "ABC-123", "quantityShipped": 8, "serialNumbers": ["SN001", "SN002"]}]},
                        {"lines": [{"ingramLineNumber": "2", "vendorPartNumber": "XYZ-9", "quantityShipped": 3}]}
                    ]
                }]
            })
        );
        assert_eq!(
            out[0].shipped_now,
            [("1".to_string(), 8), ("2".to_string(), 3)].into()
        );
    }

    #[test]
    fn shipped_when_everything_ordered_has_shipped_across_856s() {
        let out = calls(ASN, &view(&[("1", 2)])).unwrap();
        assert_eq!(out[0].call.body["orderStatus"], "shipped");
        let out = calls(ASN, &BTreeMap::new()).unwrap();
        assert_eq!(
            out[0].call.body["orderStatus"], "partially_shipped",
            "unknown PO: cannot claim complete"
        );
    }

    #[test]
    fn tree_is_built_from_hl_parents_not_order_and_several_pos_give_several_calls() {
        // Second order appended after the first order's items, with its item listed before its O.
        let text = ASN
            .replace(
                "CTT*5~",
                "HL*7*6*I*0~\nLIN*1*VP*Q-1~\nSN1*1*1*EA~\nHL*6*1*O*1~\nPRF*IM-PO-2002~\nCTT*7~",
            )
            .replace("SE*24*0001", "SE*30*0001");
        let out = calls(&text, &view(&[])).unwrap();
        let pos: Vec<&str> = out.iter().map(|c| c.call.po.as_str()).collect();
        assert_eq!(pos, vec!["IM-PO-1001", "IM-PO-2002"]);
        assert_eq!(
            out[1].call.body["shipments"][0]["packages"][0]["lines"][0]["quantityShipped"],
            1
        );
        assert_eq!(
            out[1].call.body["shipments"][0]["carrierCode"], "UPSN",
            "shipment context from S"
        );
    }

    #[test]
    fn missing_quantity_is_positioned() {
        let e = calls(&ASN.replace("SN1*2*3*EA~", "SN1*2~"), &view(&[])).unwrap_err();
        assert_eq!(e.position.segment_id.as_deref(), Some("HL"));
        assert!(e.message.contains("sn102"), "{e}");
    }
}
