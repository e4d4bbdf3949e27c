//! The bad-input corpus. Webhook requests (generated from `samples/ingram-po-webhook.json` by
//! mutating one field at a time, plus truncations, signatures, content types, sizes, nesting,
//! replays and limits) are sent to one real in-process daemon, each with its exact expected
//! status and, for a 400, the exact `field` path. X12 inbox files (truncations of the sample
//! 855/856, broken envelopes, bad delimiters, garbage, a 5 MB element, unknown sets and codes,
//! bad dates, missing elements) are dropped into one daemon's inbox in a batch and each outcome
//! is checked against its class. Two seeded randomized tests feed mutated JSON to the webhook
//! decoder and mutated X12 to the 855/856 translators and require that nothing panics. Every
//! test prints how many cases it ran.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

use edi_bridge::events::Outcome;
use edi_bridge::ingram::from_855::from_855;
use edi_bridge::ingram::from_856::{from_856, OrderView};
use edi_bridge::ingram::order;
use edi_bridge::mapping::{Mapping, WebhookFields};
use edi_bridge::x12;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::support::*;

const ACK: &str = include_str!("../../samples/ingram-po-855.edi");
const ASN: &str = include_str!("../../samples/ingram-po-856.edi");
const SIG: &str = "x-hub-signature";

// ---------------------------------------------------------------------------------------------
// Webhook corpus
// ---------------------------------------------------------------------------------------------

/// One request and what must come back.
struct WCase {
    name: String,
    body: Vec<u8>,
    content_type: Option<String>,
    signature: Option<String>,
    status: u16,
    /// For refusals: the exact `field` of the JSON error body.
    field: Option<String>,
    /// For 200s: the `status` of the JSON body (`accepted` / `duplicate`).
    outcome: Option<&'static str>,
}

impl WCase {
    /// A JSON body signed for the event id the daemon will read from it.
    fn json(name: impl Into<String>, v: &Value, status: u16, field: Option<&str>) -> WCase {
        let id = order::event_id(v).unwrap_or_else(|_| "no-id".into());
        WCase {
            name: name.into(),
            body: v.to_string().into_bytes(),
            content_type: Some("application/json".into()),
            signature: Some(sign(&id)),
            status,
            field: field.map(str::to_string),
            outcome: (status == 200).then_some("accepted"),
        }
    }

    fn raw(name: impl Into<String>, body: Vec<u8>, status: u16, field: Option<&str>) -> WCase {
        WCase {
            name: name.into(),
            body,
            content_type: Some("application/json".into()),
            signature: Some(sign("any-event")),
            status,
            field: field.map(str::to_string),
            outcome: (status == 200).then_some("accepted"),
        }
    }
}

/// The sample with its own event id and PO number, so every accepted case is a new PO.
fn base(n: usize) -> Value {
    let mut v: Value = serde_json::from_str(SAMPLE).unwrap();
    v["eventid"] = format!("BI-E-{n}").into();
    v["resource"][0]["ingramPurchaseOrderNumber"] = format!("BI-PO-{n}").into();
    v
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Every path of a JSON value except the root, parents before children.
fn all_paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Seg::Idx(i));
                out.push(prefix.clone());
                all_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for p in path {
        cur = match p {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Idx(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// Replaces (`Some`) or removes (`None`) the value at `path`.
fn set_path(v: &mut Value, path: &[Seg], new: Option<Value>) {
    let (last, parent) = path.split_last().unwrap();
    let Some(parent) = get_mut(v, parent) else {
        return;
    };
    match (last, new) {
        (Seg::Key(k), Some(n)) => {
            parent[k.as_str()] = n;
        }
        (Seg::Key(k), None) => {
            parent.as_object_mut().unwrap().remove(k);
        }
        (Seg::Idx(i), Some(n)) => parent[*i] = n,
        (Seg::Idx(i), None) => {
            parent.as_array_mut().unwrap().remove(*i);
        }
    }
}

/// How the decoder treats a field of the sample.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    Ignored,
    Event,
    EventId,
    OptStr,
    ReqStr,
    Date,
    Terms,
    Currency,
    EventType,
    Address,
    Lines,
    Resource,
    Po,
    Line,
    Qty,
    Price,
}

fn class(path: &[Seg]) -> Class {
    let keys: Vec<&str> = path
        .iter()
        .map(|p| match p {
            Seg::Key(k) => k.as_str(),
            Seg::Idx(_) => "#",
        })
        .collect();
    match keys.as_slice() {
        ["topic"] => Class::Ignored,
        ["event"] => Class::Event,
        ["eventTimeStamp"] => Class::OptStr,
        ["eventid"] => Class::EventId,
        ["resource"] => Class::Resource,
        ["resource", "#"] => Class::Po,
        ["resource", "#", "someFutureField", ..] => Class::Ignored,
        ["resource", "#", k] => match *k {
            "eventType" => Class::EventType,
            "ingramPurchaseOrderNumber" | "resellerOrderNumber" => Class::ReqStr,
            "ingramPurchaseOrderDate" | "requestedDeliveryDate" => Class::Date,
            "paymentTerms" => Class::Terms,
            "currencyCode" => Class::Currency,
            "shipToInfo" | "billToInfo" | "endUserInfo" => Class::Address,
            "lines" => Class::Lines,
            _ => Class::OptStr,
        },
        ["resource", "#", "lines", "#"] => Class::Line,
        ["resource", "#", "lines", "#", k] => match *k {
            "quantity" => Class::Qty,
            "unitPrice" => Class::Price,
            "requestedShipDate" => Class::Date,
            _ => Class::OptStr,
        },
        ["resource", "#", _addr, _field] => Class::OptStr,
        other => panic!("no class for {other:?}"),
    }
}

/// The replacement kinds applied to every field.
const KINDS: [&str; 7] = [
    "string", "number", "object", "array", "null", "bool", "absent",
];

fn replacement(kind: &str) -> Option<Value> {
    match kind {
        "string" => Some(json!("zz-bad")),
        "number" => Some(json!(7)),
        "object" => Some(json!({})),
        "array" => Some(json!([])),
        "null" => Some(Value::Null),
        "bool" => Some(json!(true)),
        _ => None,
    }
}

/// X12 minimum and maximum lengths of the 850 elements that carry these sample fields (N401
/// city 2/30, N402 state 2/2, N403 postal code 3/15, N404 country 2/3, PO103 unit 2/2).
fn bounds(f: &str) -> Option<(usize, usize)> {
    let key = f.rsplit('.').next().unwrap_or(f);
    match key {
        "city" => Some((2, 30)),
        "state" => Some((2, 2)),
        "postalCode" => Some((3, 15)),
        "countryCode" => Some((2, 3)),
        "unitOfMeasure" => Some((2, 2)),
        _ => None,
    }
}

/// The replacement of `kind` fits the element that carries `f` (or no element is bounded).
fn fits(f: &str, kind: &str) -> bool {
    let len = match replacement(kind) {
        Some(Value::String(s)) => s.len(),
        Some(Value::Number(n)) => n.to_string().len(),
        Some(Value::Bool(b)) => b.to_string().len(),
        _ => return true,
    };
    bounds(f).is_none_or(|(min, max)| (min..=max).contains(&len))
}

/// (status, field) the decoder must answer for `kind` at a field of `class`.
fn expected(class: Class, kind: &str, f: &str) -> (u16, Option<String>) {
    let ok = (200, None);
    let bad = |field: &str| (400, Some(field.to_string()));
    let structured = matches!(kind, "object" | "array");
    let nothing = matches!(kind, "null" | "absent");
    match class {
        Class::Ignored => ok,
        Class::Event => {
            if kind == "absent" {
                ok
            } else {
                bad("event")
            }
        }
        Class::EventId => {
            if structured || nothing {
                bad("eventid")
            } else {
                ok
            }
        }
        Class::OptStr => {
            if structured || !fits(f, kind) {
                bad(f)
            } else {
                ok
            }
        }
        Class::ReqStr => {
            if structured || nothing {
                bad(f)
            } else {
                ok
            }
        }
        Class::Date | Class::Currency | Class::EventType => {
            if nothing {
                ok
            } else {
                bad(f)
            }
        }
        Class::Terms => {
            if nothing || kind == "number" {
                ok
            } else {
                bad(f)
            }
        }
        Class::Price => {
            if nothing || kind == "number" {
                ok
            } else {
                bad(f)
            }
        }
        Class::Qty => {
            if kind == "number" {
                ok
            } else {
                bad(f)
            }
        }
        Class::Address => {
            if nothing || kind == "object" {
                ok
            } else {
                bad(f)
            }
        }
        Class::Lines => bad(f),
        Class::Resource => {
            if kind == "object" {
                bad("resource[0].ingramPurchaseOrderNumber")
            } else {
                bad("resource")
            }
        }
        Class::Po => match kind {
            "object" => bad("resource[0].ingramPurchaseOrderNumber"),
            "absent" => bad("resource"),
            _ => bad(f),
        },
        Class::Line => match kind {
            "object" => bad(&format!("{f}.quantity")),
            "absent" => ok,
            _ => bad(f),
        },
    }
}

/// Every field of the sample × every replacement kind, with the expectation table above.
fn type_and_missing_cases(n: &mut usize) -> Vec<WCase> {
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    let mut paths = Vec::new();
    all_paths(&sample, &mut Vec::new(), &mut paths);
    let mut cases = Vec::new();
    for path in &paths {
        let f = path_string(path);
        let c = class(path);
        for kind in KINDS {
            *n += 1;
            let mut v = base(*n);
            set_path(&mut v, path, replacement(kind));
            let (status, field) = expected(c, kind, &f);
            cases.push(WCase::json(
                format!("{kind} at {f} ({c:?})"),
                &v,
                status,
                field.as_deref(),
            ));
        }
    }
    cases
}

/// The sample cut at many offsets: never valid JSON, always 400 at `$`.
fn truncation_cases() -> Vec<WCase> {
    let bytes = SAMPLE.as_bytes();
    let last = SAMPLE.rfind('}').unwrap();
    (0..last)
        .step_by(9)
        .chain([1, 2, last - 1])
        .map(|k| {
            WCase::raw(
                format!("truncated at byte {k}"),
                bytes[..k].to_vec(),
                400,
                Some("$"),
            )
        })
        .collect()
}

/// Hand-written bodies, values and limits.
fn value_cases(n: &mut usize) -> Vec<WCase> {
    let mut cases = Vec::new();
    // Malformed or non-object bodies.
    let sample_min = base(0).to_string();
    let raw: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty body", b"".to_vec(), "$"),
        ("whitespace body", b" \n\t ".to_vec(), "$"),
        ("null", b"null".to_vec(), "$"),
        ("array", b"[]".to_vec(), "$"),
        ("number", b"42".to_vec(), "$"),
        ("string", b"\"po\"".to_vec(), "$"),
        ("true", b"true".to_vec(), "$"),
        ("empty object", b"{}".to_vec(), "eventid"),
        (
            "trailing brace",
            format!("{sample_min}}}").into_bytes(),
            "$",
        ),
        (
            "two objects",
            format!("{sample_min}{sample_min}").into_bytes(),
            "$",
        ),
        (
            "NaN",
            br#"{"eventid":"x","resource":[{"lines":[{"quantity":NaN}]}]}"#.to_vec(),
            "$",
        ),
        ("single quotes", b"{'eventid':'x'}".to_vec(), "$"),
        ("comment", b"{\"eventid\":\"x\" // c\n}".to_vec(), "$"),
        ("unquoted key", b"{eventid:\"x\"}".to_vec(), "$"),
        ("trailing comma", b"{\"eventid\":\"x\",}".to_vec(), "$"),
        (
            "invalid utf-8 in a string",
            sample_min
                .replacen("Acme", "\u{1}", 1)
                .into_bytes()
                .into_iter()
                .map(|b| if b == 1 { 0xFF } else { b })
                .collect(),
            "$",
        ),
        (
            "utf-8 bom",
            [&[0xEF, 0xBB, 0xBF][..], sample_min.as_bytes()].concat(),
            "$",
        ),
        (
            "lone surrogate",
            sample_min.replacen("Acme", "\\ud800", 1).into_bytes(),
            "$",
        ),
        (
            "control character in a string",
            sample_min.replacen("Acme", "A\u{1}cme", 1).into_bytes(),
            "$",
        ),
        (
            "quantity 1e400",
            sample_min
                .replacen("\"quantity\":10", "\"quantity\":1e400", 1)
                .into_bytes(),
            "$",
        ),
        (
            "deep array nesting",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "$",
        ),
        (
            "deep nesting inside resource",
            format!(
                "{{\"eventid\":\"deep\",\"resource\":{}{}}}",
                "[".repeat(200),
                "]".repeat(200)
            )
            .into_bytes(),
            "$",
        ),
        (
            "deep object nesting",
            format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300)).into_bytes(),
            "$",
        ),
    ];
    for (name, body, field) in raw {
        cases.push(WCase::raw(name, body, 400, Some(field)));
    }
    assert!(sample_min.contains("\"quantity\":10,"), "sample layout");

    // (name, mutation, status, field); the mutation gets a fresh base.
    type Mutate = Box<dyn Fn(&mut Value)>;
    let r0 = "resource[0]";
    let mut table: Vec<(String, Mutate, u16, Option<String>)> = Vec::new();
    let mut add = |name: &str, m: Mutate, status: u16, field: Option<&str>| {
        table.push((name.to_string(), m, status, field.map(str::to_string)))
    };
    // Lengths at the limits.
    // BEG03 holds 22 characters, and the ERP's 855 (BAK03) and 856 (PRF01) echo no more.
    add(
        "po number of 22",
        Box::new(|v| v["resource"][0]["ingramPurchaseOrderNumber"] = "P".repeat(22).into()),
        200,
        None,
    );
    for len in [23, 80, 81] {
        add(
            &format!("po number of {len}"),
            Box::new(move |v| {
                v["resource"][0]["ingramPurchaseOrderNumber"] = "P".repeat(len).into()
            }),
            400,
            Some("resource[0].ingramPurchaseOrderNumber"),
        );
    }
    add(
        "empty po number",
        Box::new(|v| v["resource"][0]["ingramPurchaseOrderNumber"] = "".into()),
        400,
        Some("resource[0].ingramPurchaseOrderNumber"),
    );
    add(
        "blank po number",
        Box::new(|v| v["resource"][0]["ingramPurchaseOrderNumber"] = "   ".into()),
        400,
        Some("resource[0].ingramPurchaseOrderNumber"),
    );
    add(
        "event id of 200",
        Box::new(|v| v["eventid"] = "E".repeat(200).into()),
        200,
        None,
    );
    add(
        "event id of 201",
        Box::new(|v| v["eventid"] = "E".repeat(201).into()),
        400,
        Some("eventid"),
    );
    add(
        "empty event id",
        Box::new(|v| v["eventid"] = "".into()),
        400,
        Some("eventid"),
    );
    add(
        "blank event id",
        Box::new(|v| v["eventid"] = "  ".into()),
        400,
        Some("eventid"),
    );
    for (key, path) in [
        ("notes", vec!["resource", "0", "notes"]),
        (
            "shipToInfo.companyName",
            vec!["resource", "0", "shipToInfo", "companyName"],
        ),
        (
            "lines[0].description",
            vec!["resource", "0", "lines", "0", "description"],
        ),
        (
            "resellerOrderNumber",
            vec!["resource", "0", "resellerOrderNumber"],
        ),
        ("eventTimeStamp", vec!["eventTimeStamp"]),
    ] {
        let segs: Vec<Seg> = path
            .iter()
            .map(|p| match p.parse::<usize>() {
                Ok(i) => Seg::Idx(i),
                Err(_) => Seg::Key(p.to_string()),
            })
            .collect();
        let field = path_string(&segs);
        // Notes are split over MSG segments, a line description over PID segments, and the
        // timestamp is not written; the others would not fit their element (N102 60, REF02 30)
        // and are refused, not cut.
        let carried = matches!(key, "notes" | "lines[0].description" | "eventTimeStamp");
        for (len, status) in [(4096, if carried { 200 } else { 400 }), (4097, 400)] {
            let segs = segs.clone();
            add(
                &format!("{key} of {len}"),
                Box::new(move |v| set_path(v, &segs, Some("x".repeat(len).into()))),
                status,
                (status == 400).then_some(field.as_str()),
            );
        }
    }
    // Quantities.
    for (q, status) in [
        (json!(999_999_999), 200),
        (json!(1_000_000_000), 400),
        (json!(0), 400),
        (json!(-1), 400),
        (json!(1.5), 400),
        (json!(10.0), 400),
        (json!("10"), 200),
        (json!(" 10 "), 200),
        (json!("1e3"), 400),
        (json!("0x10"), 400),
        (json!("1.0"), 400),
        (json!(""), 400),
        (json!(u64::MAX), 400),
        (json!(18_446_744_073_709_551_616.0_f64), 400),
    ] {
        let qq = q.clone();
        add(
            &format!("quantity {q}"),
            Box::new(move |v| v["resource"][0]["lines"][0]["quantity"] = qq.clone()),
            status,
            (status == 400).then_some("resource[0].lines[0].quantity"),
        );
    }
    // Prices.
    for (p, status) in [
        (json!("0"), 200),
        (json!(0), 200),
        (json!("-0.01"), 400),
        (json!(-1), 400),
        (json!("1.123456"), 200),
        (json!("1.1234567"), 400),
        // PO104 holds 17 digits.
        (json!("999999999999999999"), 400),
        (json!("1000000000000000000"), 400),
        (json!("1e5"), 400),
        (json!(""), 400),
        (json!("."), 400),
        (json!("12,50"), 400),
        (json!("$12.50"), 400),
        (json!(1e20), 400),
    ] {
        let pp = p.clone();
        add(
            &format!("unit price {p}"),
            Box::new(move |v| v["resource"][0]["lines"][0]["unitPrice"] = pp.clone()),
            status,
            (status == 400).then_some("resource[0].lines[0].unitPrice"),
        );
    }
    // 17 digits fit PO104, but the order total (× 10, plus line 2) no longer fits AMT02's 18.
    add(
        "unit price of 17 digits",
        Box::new(|v| v["resource"][0]["lines"][0]["unitPrice"] = json!("99999999999999999")),
        400,
        Some("resource[0].lines"),
    );
    // Terms, currency, dates, enums.
    for (key, val, status) in [
        ("paymentTerms", json!("999"), 200),
        ("paymentTerms", json!("1000"), 400),
        ("paymentTerms", json!("-1"), 400),
        ("paymentTerms", json!(""), 200),
        ("paymentTerms", json!("NET 30"), 400),
        ("currencyCode", json!("usd"), 200),
        ("currencyCode", json!("US"), 400),
        ("currencyCode", json!("EURO"), 400),
        ("currencyCode", json!("U$D"), 400),
        ("currencyCode", json!(""), 200),
        ("ingramPurchaseOrderDate", json!("2026-02-30"), 400),
        ("ingramPurchaseOrderDate", json!("2026-13-01"), 400),
        ("ingramPurchaseOrderDate", json!("20261120"), 400),
        (
            "ingramPurchaseOrderDate",
            json!("2026-11-20T23:30:00-05:00"),
            200,
        ),
        (
            "ingramPurchaseOrderDate",
            json!("2026-11-20T14:30:00+14:00"),
            200,
        ),
        ("ingramPurchaseOrderDate", json!("2026-11-20"), 200),
        ("requestedDeliveryDate", json!("tomorrow"), 400),
        ("requestedDeliveryDate", json!("0000-00-00"), 400),
        ("eventType", json!("IM::NEW_PURCHASEORDER"), 200),
        ("eventType", json!("im::cancel_purchaseorder"), 400),
        ("orderType", json!("IM::DROPSHIP"), 200),
    ] {
        let vv = val.clone();
        add(
            &format!("{key} = {val}"),
            Box::new(move |v| v["resource"][0][key] = vv.clone()),
            status,
            (status == 400).then_some(&format!("{r0}.{key}")),
        );
    }
    add(
        "event in capitals",
        Box::new(|v| v["event"] = "IM::VENDORPOCREATE".into()),
        200,
        None,
    );
    add(
        "another event",
        Box::new(|v| v["event"] = "im::vendorpoupdate".into()),
        400,
        Some("event"),
    );
    add(
        "eventId spelling",
        Box::new(|v| {
            let id = v.as_object_mut().unwrap().remove("eventid").unwrap();
            v["eventId"] = id;
        }),
        200,
        None,
    );
    add(
        "EVENTID spelling",
        Box::new(|v| {
            let id = v.as_object_mut().unwrap().remove("eventid").unwrap();
            v["EVENTID"] = id;
        }),
        200,
        None,
    );
    add(
        "resource as a single object",
        Box::new(|v| v["resource"] = v["resource"][0].clone()),
        200,
        None,
    );
    add(
        "resource as an empty array",
        Box::new(|v| v["resource"] = json!([])),
        400,
        Some("resource"),
    );
    add(
        "same po twice in one event",
        Box::new(|v| {
            let po = v["resource"][0].clone();
            v["resource"].as_array_mut().unwrap().push(po);
        }),
        400,
        Some("resource[1].ingramPurchaseOrderNumber"),
    );
    add(
        "second po broken",
        Box::new(|v| {
            let mut po = v["resource"][0].clone();
            po["ingramPurchaseOrderNumber"] =
                format!("{}-B", po["ingramPurchaseOrderNumber"].as_str().unwrap()).into();
            po["lines"][1]["quantity"] = json!("many");
            v["resource"].as_array_mut().unwrap().push(po);
        }),
        400,
        Some("resource[1].lines[1].quantity"),
    );
    add(
        "two pos",
        Box::new(|v| {
            let mut po = v["resource"][0].clone();
            po["ingramPurchaseOrderNumber"] =
                format!("{}-B", po["ingramPurchaseOrderNumber"].as_str().unwrap()).into();
            v["resource"].as_array_mut().unwrap().push(po);
        }),
        200,
        None,
    );
    add(
        "line without any part number",
        Box::new(|v| {
            let l = v["resource"][0]["lines"][0].as_object_mut().unwrap();
            for k in ["ingramPartNumber", "vendorPartNumber", "upcCode"] {
                l.remove(k);
            }
        }),
        400,
        Some("resource[0].lines[0].vendorPartNumber"),
    );
    add(
        "line with blank part numbers",
        Box::new(|v| {
            for k in ["ingramPartNumber", "vendorPartNumber", "upcCode"] {
                v["resource"][0]["lines"][0][k] = json!(" ");
            }
        }),
        400,
        Some("resource[0].lines[0].vendorPartNumber"),
    );
    add(
        "line with only a upc",
        Box::new(|v| {
            let l = v["resource"][0]["lines"][0].as_object_mut().unwrap();
            for k in ["ingramPartNumber", "vendorPartNumber"] {
                l.remove(k);
            }
        }),
        200,
        None,
    );
    add(
        "150 lines",
        Box::new(|v| {
            let line = v["resource"][0]["lines"][0].clone();
            let lines: Vec<Value> = (1..=150)
                .map(|i| {
                    let mut l = line.clone();
                    l["ingramLineNumber"] = i.to_string().into();
                    l
                })
                .collect();
            v["resource"][0]["lines"] = Value::Array(lines);
        }),
        200,
        None,
    );
    add(
        "line 3 of 3 broken",
        Box::new(|v| {
            let mut l = v["resource"][0]["lines"][0].clone();
            l["unitPrice"] = json!({"amount": 1});
            v["resource"][0]["lines"].as_array_mut().unwrap().push(l);
        }),
        400,
        Some("resource[0].lines[2].unitPrice"),
    );
    // Every element the 850 carries fits its X12 minimum and maximum length, code lists or
    // not: what does not fit is refused naming the field, never cut.
    let l0 = "resource[0].lines[0]";
    let ship = "resource[0].shipToInfo";
    for (name, at, key, val, status) in [
        ("unit of 500", l0, "unitOfMeasure", "U".repeat(500), 400),
        (
            "unit of 3 not in the code list",
            l0,
            "unitOfMeasure",
            "BXS".into(),
            400,
        ),
        ("unit of 1", l0, "unitOfMeasure", "E".into(), 400),
        (
            "unit 'box' (code list: BX)",
            l0,
            "unitOfMeasure",
            "box".into(),
            200,
        ),
        ("unit 'pc'", l0, "unitOfMeasure", "pc".into(), 200),
        ("description of 80", l0, "description", "d".repeat(80), 200),
        // A longer description is split over as many PID segments as it needs.
        ("description of 81", l0, "description", "d".repeat(81), 200),
        (
            "description of 300 in words",
            l0,
            "description",
            "word ".repeat(60).trim_end().to_string(),
            200,
        ),
        (
            "description of 2000 in words",
            l0,
            "description",
            "longer words ".repeat(154).trim_end().to_string(),
            200,
        ),
        (
            "state 'California'",
            ship,
            "state",
            "California".into(),
            400,
        ),
        ("country 'USA'", ship, "countryCode", "USA".into(), 200),
        ("country 'U'", ship, "countryCode", "U".into(), 400),
        ("postal code of 2", ship, "postalCode", "12".into(), 400),
        ("city of 30", ship, "city", "c".repeat(30), 200),
        ("city of 31", ship, "city", "c".repeat(31), 400),
        ("city of 1", ship, "city", "c".into(), 400),
        ("company of 60", ship, "companyName", "n".repeat(60), 200),
        ("company of 61", ship, "companyName", "n".repeat(61), 400),
        (
            "company of 59 that grows to 61",
            ship,
            "companyName",
            format!("{}ß", "n".repeat(59)),
            400,
        ),
        (
            "address line of 56",
            ship,
            "addressLine1",
            "a".repeat(56),
            400,
        ),
        (
            "second address line of 56",
            ship,
            "addressLine2",
            "a".repeat(56),
            400,
        ),
        ("contact of 61", ship, "contact", "c".repeat(61), 400),
        (
            "email of 81",
            ship,
            "email",
            format!("{}@x.example", "e".repeat(71)),
            400,
        ),
        (
            "reseller order number of 30",
            "resource[0]",
            "resellerOrderNumber",
            "R".repeat(30),
            200,
        ),
        (
            "reseller order number of 31",
            "resource[0]",
            "resellerOrderNumber",
            "R".repeat(31),
            400,
        ),
        (
            "vendor quote of 31",
            "resource[0]",
            "vendorQuoteNumber",
            "Q".repeat(31),
            400,
        ),
        (
            "special bid of 31",
            "resource[0]",
            "specialBidNumber",
            "S".repeat(31),
            400,
        ),
        (
            "order type of 31 not in the code list",
            "resource[0]",
            "orderType",
            "o".repeat(31),
            400,
        ),
        (
            "ship via of 36",
            "resource[0]",
            "shipVia",
            "v".repeat(36),
            400,
        ),
    ] {
        let (at2, key2, val2) = (at.to_string(), key.to_string(), val.clone());
        add(
            name,
            Box::new(move |v| {
                let target = if at2 == "resource[0]" {
                    &mut v["resource"][0]
                } else if at2.ends_with("shipToInfo") {
                    &mut v["resource"][0]["shipToInfo"]
                } else {
                    &mut v["resource"][0]["lines"][0]
                };
                target[key2.as_str()] = val2.clone().into();
            }),
            status,
            (status == 400).then_some(&format!("{at}.{key}")),
        );
    }
    // Two lines with the same line number (as the ERP echoes it: 1 and 01 are one line).
    for (name, second, field) in [
        ("two lines numbered 1", Some("1"), "ingramLineNumber"),
        ("lines numbered 1 and 01", Some("01"), "ingramLineNumber"),
    ] {
        add(
            name,
            Box::new(move |v| {
                v["resource"][0]["lines"][1]["ingramLineNumber"] = second.into();
            }),
            400,
            Some(&format!("resource[0].lines[1].{field}")),
        );
    }
    add(
        "a line without a number where its default is taken",
        Box::new(|v| {
            v["resource"][0]["lines"][0]["ingramLineNumber"] = "2".into();
            v["resource"][0]["lines"][1]
                .as_object_mut()
                .unwrap()
                .remove("ingramLineNumber");
        }),
        400,
        Some("resource[0].lines[1].ingramLineNumber"),
    );
    // Unknown fields everywhere are kept and ignored.
    add(
        "unknown top-level field",
        Box::new(|v| v["x-new"] = json!({"a": [1, 2, {"b": null}]})),
        200,
        None,
    );
    add(
        "unknown po field",
        Box::new(|v| v["resource"][0]["newThing"] = json!([true])),
        200,
        None,
    );
    add(
        "unknown address field",
        Box::new(|v| v["resource"][0]["shipToInfo"]["geo"] = json!({"lat": 1.5})),
        200,
        None,
    );
    add(
        "unknown line field",
        Box::new(|v| v["resource"][0]["lines"][0]["warranty"] = json!("3y")),
        200,
        None,
    );
    add(
        "reseller address present",
        Box::new(|v| v["resource"][0]["resellerInfo"] = json!({"companyName": "R", "city": 12345})),
        200,
        None,
    );
    add(
        "reseller address wrong type",
        Box::new(|v| v["resource"][0]["resellerInfo"] = json!("R")),
        400,
        Some("resource[0].resellerInfo"),
    );
    add(
        "nesting 100 deep in an unknown field",
        Box::new(|v| {
            let mut x = json!(1);
            for _ in 0..100 {
                x = json!([x]);
            }
            v["resource"][0]["someFutureField"] = x;
        }),
        200,
        None,
    );
    add(
        "non-ascii and delimiters in data",
        Box::new(|v| {
            v["resource"][0]["notes"] = json!("~*>^|\u{0}\u{7f} 日本語 ﬁ \r\n");
            v["resource"][0]["lines"][0]["description"] = json!("É~É*É>É");
        }),
        200,
        None,
    );

    for (name, m, status, field) in table {
        *n += 1;
        let mut v = base(*n);
        m(&mut v);
        cases.push(WCase::json(name, &v, status, field.as_deref()));
    }

    // A key repeated in one object, anywhere in the body: which value counts would be a guess.
    for (name, from, to, field) in [
        (
            "po number twice in a po object",
            "\"ingramPurchaseOrderNumber\":",
            "\"ingramPurchaseOrderNumber\":\"OTHER-PO\",\"ingramPurchaseOrderNumber\":",
            "resource[0].ingramPurchaseOrderNumber",
        ),
        (
            "event id twice",
            "\"eventid\":",
            "\"eventid\":\"other-event\",\"eventid\":",
            "eventid",
        ),
        (
            "quantity twice in a line",
            "\"quantity\":10",
            "\"quantity\":1,\"quantity\":10",
            "resource[0].lines[0].quantity",
        ),
        (
            "a key twice inside an unknown field",
            "\"kept\":",
            "\"kept\":1,\"kept\":",
            "resource[0].someFutureField.kept",
        ),
    ] {
        *n += 1;
        let v = base(*n);
        let text = v.to_string();
        assert!(text.contains(from), "sample layout: {from}");
        let body = text.replacen(from, to, 1);
        let id = order::event_id(&v).unwrap();
        cases.push(WCase {
            name: name.to_string(),
            body: body.into_bytes(),
            content_type: Some("application/json".into()),
            signature: Some(sign(&id)),
            status: 400,
            field: Some(field.to_string()),
            outcome: None,
        });
    }
    cases
}

/// Content types, signatures and sizes on otherwise good bodies.
fn transport_cases(n: &mut usize) -> Vec<WCase> {
    let mut cases = Vec::new();
    let next = |n: &mut usize| {
        *n += 1;
        let v = base(*n);
        let id = v["eventid"].as_str().unwrap().to_string();
        (v.to_string().into_bytes(), id)
    };
    for (ct, status) in [
        (None, 415),
        (Some(""), 415),
        (Some("text/plain"), 415),
        (Some("application/xml"), 415),
        (Some("application/jsonx"), 415),
        (Some("application/x-www-form-urlencoded"), 415),
        (Some("multipart/form-data; boundary=x"), 415),
        (Some("json"), 415),
        (Some("application/json; charset=utf-8"), 200),
        (Some("APPLICATION/JSON"), 200),
        (Some("application/vnd.ingram+json"), 200),
        (Some(" application/json ; charset=UTF-8"), 200),
    ] {
        let (body, id) = next(n);
        cases.push(WCase {
            name: format!("content type {ct:?}"),
            body,
            content_type: ct.map(str::to_string),
            signature: Some(sign(&id)),
            status,
            field: (status == 415).then(|| "content-type".to_string()),
            outcome: (status == 200).then_some("accepted"),
        });
    }
    // Signatures.
    type MakeSig = Box<dyn Fn(&str) -> Option<String>>;
    let sigs: Vec<(&str, MakeSig, u16)> = vec![
        ("missing", Box::new(|_| None), 401),
        ("empty", Box::new(|_| Some(String::new())), 401),
        (
            "wrong secret",
            Box::new(|id| Some(edi_bridge::ingram::signature::sign(b"wrong", id))),
            401,
        ),
        (
            "client secret",
            Box::new(|id| {
                Some(edi_bridge::ingram::signature::sign(
                    CLIENT_SECRET.as_bytes(),
                    id,
                ))
            }),
            401,
        ),
        (
            "another event id",
            Box::new(|_| Some(sign("N01CIB9VVFYKR9J6ZW"))),
            401,
        ),
        (
            "event id in lower case",
            Box::new(|id| Some(sign(&id.to_lowercase()))),
            401,
        ),
        (
            "truncated by 4",
            Box::new(|id| {
                let s = sign(id);
                Some(s[..s.len() - 4].to_string())
            }),
            401,
        ),
        (
            "truncated by 1",
            Box::new(|id| {
                let s = sign(id);
                Some(s[..s.len() - 1].to_string())
            }),
            401,
        ),
        (
            "half",
            Box::new(|id| {
                let s = sign(id);
                Some(s[..44].to_string())
            }),
            401,
        ),
        (
            "padding stripped",
            Box::new(|id| Some(sign(id).trim_end_matches('=').to_string())),
            401,
        ),
        (
            "non-base64",
            Box::new(|_| Some("not base64 at all!".into())),
            401,
        ),
        (
            "one character changed",
            Box::new(|id| {
                let mut s = sign(id).into_bytes();
                s[10] = if s[10] == b'A' { b'B' } else { b'A' };
                Some(String::from_utf8(s).unwrap())
            }),
            401,
        ),
        (
            "two signatures",
            Box::new(|id| Some(format!("{},{}", sign(id), sign(id)))),
            401,
        ),
        (
            "sha512= prefix",
            Box::new(|id| Some(format!("sha512={}", sign(id)))),
            401,
        ),
        (
            "signature of the body",
            Box::new(|_| Some(sign(SAMPLE))),
            401,
        ),
        (
            "surrounding spaces",
            Box::new(|id| Some(format!("  {}  ", sign(id)))),
            200,
        ),
        (
            "previous secret",
            Box::new(|id| {
                Some(edi_bridge::ingram::signature::sign(
                    OLD_SECRET.as_bytes(),
                    id,
                ))
            }),
            200,
        ),
    ];
    for (name, make, status) in sigs {
        let (body, id) = next(n);
        cases.push(WCase {
            name: format!("signature: {name}"),
            body,
            content_type: Some("application/json".into()),
            signature: make(&id),
            status,
            field: (status == 401).then(|| SIG.to_string()),
            outcome: (status == 200).then_some("accepted"),
        });
    }
    // Order of checks: JSON before signature, signature before decoding.
    *n += 1;
    cases.push(WCase {
        name: "bad signature and malformed json".into(),
        body: b"{\"eventid\":".to_vec(),
        content_type: Some("application/json".into()),
        signature: Some("bad".into()),
        status: 400,
        field: Some("$".into()),
        outcome: None,
    });
    *n += 1;
    let mut v = base(*n);
    v.as_object_mut().unwrap().remove("eventid");
    cases.push(WCase {
        name: "bad signature and no event id".into(),
        body: v.to_string().into_bytes(),
        content_type: Some("application/json".into()),
        signature: Some("bad".into()),
        status: 400,
        field: Some("eventid".into()),
        outcome: None,
    });
    *n += 1;
    let mut v = base(*n);
    v["resource"][0]["lines"][0]["quantity"] = json!("x");
    cases.push(WCase {
        name: "bad signature and a bad quantity".into(),
        body: v.to_string().into_bytes(),
        content_type: Some("application/json".into()),
        signature: Some(edi_bridge::ingram::signature::sign(
            b"wrong",
            &format!("BI-E-{n}"),
        )),
        status: 401,
        field: Some(SIG.into()),
        outcome: None,
    });
    *n += 1;
    cases.push(WCase {
        name: "wrong content type and no signature".into(),
        body: b"garbage".to_vec(),
        content_type: Some("text/plain".into()),
        signature: None,
        status: 415,
        field: Some("content-type".into()),
        outcome: None,
    });
    // Sizes around max_body_bytes = 65536.
    for (len, status) in [
        (65_535, 200),
        (65_536, 200),
        (65_537, 413),
        (70_000, 413),
        (1 << 20, 413),
        (8 << 20, 413),
    ] {
        *n += 1;
        let mut v = base(*n);
        v["pad"] = "".into();
        let plain = v.to_string().len();
        if len >= plain {
            v["pad"] = "p".repeat(len - plain).into();
        }
        let body = v.to_string().into_bytes();
        assert_eq!(body.len(), len);
        cases.push(WCase::json(
            format!("body of {len} bytes"),
            &v,
            status,
            None,
        ));
        cases.last_mut().unwrap().body = body;
    }
    cases
}

async fn send(client: &reqwest::Client, url: &str, c: &WCase) -> (u16, Value) {
    let mut req = client.post(url).body(c.body.clone());
    if let Some(ct) = &c.content_type {
        req = req.header("content-type", ct);
    }
    if let Some(sig) = &c.signature {
        req = req.header(SIG, sig);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        // HTTP/1: for an upload far over the limit the server answers 413 and closes while the
        // client is still sending, so the client may see the closed connection instead of the
        // answer. That is a refusal too; only bodies over the limit may end this way.
        Err(e) if c.body.len() > 65_536 && e.is_request() => {
            return (
                413,
                Value::String(format!("connection closed during upload: {e}")),
            );
        }
        Err(e) => panic!("request {}: {e}", c.name),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_bad_input_corpus() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let url = d.url();
    let client = client();
    let mut n = 0;
    let mut cases = truncation_cases();
    cases.extend(type_and_missing_cases(&mut n));
    cases.extend(value_cases(&mut n));
    cases.extend(transport_cases(&mut n));

    let mut failures = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut accepted_pos: BTreeSet<String> = BTreeSet::new();
    let mut accepted: Vec<&WCase> = Vec::new();
    let mut refused_ids: Vec<String> = Vec::new();
    // A few requests in flight at a time; each case has its own event id and PO.
    for chunk in cases.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for (i, c) in chunk.iter().enumerate() {
            let (client, url) = (client.clone(), url.clone());
            let c = WCase {
                name: c.name.clone(),
                body: c.body.clone(),
                content_type: c.content_type.clone(),
                signature: c.signature.clone(),
                status: c.status,
                field: c.field.clone(),
                outcome: c.outcome,
            };
            set.spawn(async move { (i, send(&client, &url, &c).await) });
        }
        let mut answers = set.join_all().await;
        answers.sort_by_key(|(i, _)| *i);
        for (i, (status, body)) in answers {
            let c = &chunk[i];
            *statuses.entry(status).or_default() += 1;
            let field = body.get("field").and_then(Value::as_str);
            let ok = status == c.status
                && match &c.field {
                    Some(f) => field == Some(f.as_str()),
                    None => true,
                }
                && match c.outcome {
                    Some(o) => body["status"] == o,
                    None => true,
                }
                && (status < 400
                    || body.get("error").is_some_and(Value::is_string)
                    || status == 413);
            if !ok {
                failures.push(format!(
                    "{}: expected {} {:?}, got {status} {}",
                    c.name,
                    c.status,
                    c.field,
                    body.to_string().chars().take(300).collect::<String>()
                ));
            }
            if status == 200 {
                accepted.push(c);
                for k in ["new", "repeated", "conflicting"] {
                    for po in body["purchaseOrders"][k].as_array().into_iter().flatten() {
                        accepted_pos.insert(po.as_str().unwrap().to_string());
                    }
                }
            } else if let Ok(v) = serde_json::from_slice::<Value>(&c.body) {
                if let Ok(id) = order::event_id(&v) {
                    refused_ids.push(id);
                }
            }
        }
    }
    let total = cases.len();

    // Replays of accepted events (same id, same or other body): 2xx duplicate, nothing new.
    let replays: Vec<WCase> = accepted
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, c)| {
            let body = if i % 2 == 0 {
                c.body.clone()
            } else {
                let mut v: Value = serde_json::from_slice(&c.body).unwrap();
                v["resource"][0]["lines"][0]["quantity"] = json!(1);
                v.to_string().into_bytes()
            };
            WCase {
                name: format!("replay of {}", c.name),
                body,
                content_type: c.content_type.clone(),
                signature: c.signature.clone(),
                status: 200,
                field: None,
                outcome: Some("duplicate"),
            }
        })
        .collect();
    let before = d.r().store.orders().count();
    for c in &replays {
        let (status, body) = send(&client, &url, c).await;
        *statuses.entry(status).or_default() += 1;
        if status != 200 || body["status"] != "duplicate" {
            failures.push(format!("{}: got {status} {body}", c.name));
        }
    }
    assert_eq!(
        d.r().store.orders().count(),
        before,
        "replays stored nothing"
    );
    let total = total + replays.len();

    // Nothing refused was stored.
    for id in &refused_ids {
        if id.starts_with("BI-E-") {
            assert!(
                d.r().store.event(id).unwrap().is_none(),
                "refused event {id} was stored"
            );
        }
    }

    // The daemon still answers a good webhook.
    let (s, b) = post(
        &url,
        &sample_with("BI-FINAL", "BI-PO-FINAL"),
        Some(&sign("BI-FINAL")),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("accepted")), "{b}");
    accepted_pos.insert("BI-PO-FINAL".into());
    let total = total + 1;

    println!("webhook corpus: {total} cases; statuses {statuses:?}");
    assert!(
        failures.is_empty(),
        "{} of {total} webhook cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        statuses.keys().all(|s| *s < 500),
        "a 5xx was answered: {statuses:?}"
    );

    // One 850 per accepted distinct PO, no more, no fewer.
    // Waits on 850 events; the deadline is per 850, not for all of them (hundreds on 2 cores).
    let mut rx = d.r().events.subscribe();
    while d.written_count() < accepted_pos.len() {
        let got = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        assert!(
            got.is_ok(),
            "no progress: {} of {} 850s written",
            d.written_count(),
            accepted_pos.len()
        );
    }
    assert_eq!(d.written_count(), accepted_pos.len());
    assert_eq!(d.r().store.orders().count(), accepted_pos.len());
    d.stop().await;
    let files: Vec<_> = ws
        .files("outbox")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "850"))
        .collect();
    assert_eq!(files.len(), accepted_pos.len(), "850s in the outbox");
    for f in &files {
        for seg in segments(&read(f)) {
            match seg[0].as_str() {
                "PO1" => assert_eq!(seg[3].len(), 2, "PO103 in {}: {seg:?}", f.display()),
                "N4" if seg.len() > 2 && !seg[2].is_empty() => {
                    assert_eq!(seg[2].len(), 2, "N402 in {}: {seg:?}", f.display())
                }
                _ => {}
            }
        }
    }
    println!("{total} cases");
}

// ---------------------------------------------------------------------------------------------
// X12 inbox corpus
// ---------------------------------------------------------------------------------------------

/// What must happen to an inbox file.
#[derive(Debug, Clone)]
enum Expect {
    /// Archived (the bytes are acceptable).
    Archived,
    /// No complete interchange: `error/` after `incomplete_timeout_secs`, reason "incomplete".
    Incomplete,
    /// Cannot start X12 at all: `error/` at once, reason "not an X12 file".
    NotX12,
    /// `error/` with a reason containing every needle and a byte offset.
    Rejected(Vec<String>),
}

struct XCase {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn rejected(needles: &[&str]) -> Expect {
    Expect::Rejected(needles.iter().map(|s| s.to_string()).collect())
}

/// The sample with a unique interchange control number (ISA13 and IEA02), so no two cases are
/// duplicates of each other.
fn unique(sample: &str, n: usize) -> String {
    let old = if sample.contains("ST*855") {
        "000000501"
    } else {
        "000000601"
    };
    sample.replace(old, &format!("{:09}", 700_000 + n))
}

/// As replacements (BAK01/BSN01 05): the same original document again would be a duplicate.
fn as_replacement(bytes: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(bytes) {
        Ok(t) => t
            .replace("BAK*00*", "BAK*05*")
            .replace("BSN*00*", "BSN*05*")
            .into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

fn x12_cases() -> Vec<XCase> {
    let mut cases: Vec<XCase> = Vec::new();
    let mut n = 0usize;
    let push = |cases: &mut Vec<XCase>, name: String, bytes: Vec<u8>, expect: Expect| {
        cases.push(XCase {
            name,
            bytes: as_replacement(bytes),
            expect,
        })
    };
    // Truncations.
    for (kind, sample, step) in [("855", ACK, 5), ("856", ASN, 9)] {
        n += 1;
        let text = unique(sample, n);
        let iea = text.rfind("IEA*").unwrap();
        let end = text.rfind('~').unwrap();
        let cuts: BTreeSet<usize> = (0..text.len())
            .step_by(step)
            .chain(iea.saturating_sub(3)..=text.len())
            .chain([1, 2, 3, 4, 105, 106, 107])
            .collect();
        for k in cuts {
            n += 1;
            let t = unique(sample, n);
            let expect = if k < iea + 3 {
                Expect::Incomplete
            } else if k < end {
                rejected(&["segment IEA", "element 0"])
            } else {
                Expect::Archived
            };
            push(
                &mut cases,
                format!("{kind} cut at {k}"),
                t.as_bytes()[..k].to_vec(),
                expect,
            );
        }
    }
    // Envelope counts and control numbers. (name, from, to, needles)
    let envelope: Vec<(&str, &str, &str, &[&str])> = vec![
        (
            "se01 - 1",
            "SE*9*",
            "SE*8*",
            &["se_count_mismatch", "segment SE", "element 01"],
        ),
        (
            "se01 + 1",
            "SE*9*",
            "SE*10*",
            &["se_count_mismatch", "segment SE", "element 01"],
        ),
        (
            "se01 0",
            "SE*9*",
            "SE*0*",
            &["se_count_mismatch", "segment SE", "element 01"],
        ),
        (
            "se01 huge",
            "SE*9*",
            "SE*99999999999999999999*",
            &["segment SE", "element 01"],
        ),
        (
            "se01 text",
            "SE*9*",
            "SE*X*",
            &["invalid_value", "segment SE", "element 01"],
        ),
        (
            "se01 empty",
            "SE*9*",
            "SE**",
            &["missing_element", "segment SE", "element 01"],
        ),
        (
            "se02 other",
            "SE*9*0001",
            "SE*9*0002",
            &["se_control_mismatch", "segment SE", "element 02"],
        ),
        (
            "se02 empty",
            "SE*9*0001",
            "SE*9",
            &["se_control_mismatch", "segment SE", "element 02"],
        ),
        (
            "st02 other",
            "ST*855*0001",
            "ST*855*0009",
            &["se_control_mismatch", "segment SE", "element 02"],
        ),
        (
            "st02 empty",
            "ST*855*0001",
            "ST*855*",
            &["missing_element", "segment ST", "element 02"],
        ),
        (
            "ge01 0",
            "GE*1*",
            "GE*0*",
            &["ge_count_mismatch", "segment GE", "element 01"],
        ),
        (
            "ge01 2",
            "GE*1*",
            "GE*2*",
            &["ge_count_mismatch", "segment GE", "element 01"],
        ),
        (
            "ge01 text",
            "GE*1*",
            "GE*one*",
            &["ge_count_mismatch", "segment GE", "element 01"],
        ),
        (
            "ge01 empty",
            "GE*1*",
            "GE**",
            &["ge_count_mismatch", "segment GE", "element 01"],
        ),
        (
            "ge02 other",
            "GE*1*501",
            "GE*1*502",
            &["ge_control_mismatch", "segment GE", "element 02"],
        ),
        (
            "gs06 other",
            "*501*X*",
            "*599*X*",
            &["ge_control_mismatch", "segment GE", "element 02"],
        ),
        (
            "ge02 empty",
            "GE*1*501",
            "GE*1",
            &["ge_control_mismatch", "segment GE", "element 02"],
        ),
        (
            "iea01 0",
            "IEA*1*",
            "IEA*0*",
            &["iea_count_mismatch", "segment IEA", "element 01"],
        ),
        (
            "iea01 2",
            "IEA*1*",
            "IEA*2*",
            &["iea_count_mismatch", "segment IEA", "element 01"],
        ),
        (
            "iea01 text",
            "IEA*1*",
            "IEA*A*",
            &["iea_count_mismatch", "segment IEA", "element 01"],
        ),
        (
            "iea02 other",
            "IEA*1*0007",
            "IEA*1*0008",
            &["iea_control_mismatch", "segment IEA", "element 02"],
        ),
        (
            "isa13 text",
            "*00401*0007",
            "*00401*A007",
            &["segment ISA", "element 13"],
        ),
        ("ge missing", "GE*1*501~\n", "", &["missing_ge", "byte "]),
        (
            "se missing",
            "SE*9*0001~\n",
            "",
            &["missing_se", "segment ST"],
        ),
        (
            "gs missing",
            "GS*PR*VENDORERP*INGRAMMICRO*20261121*0900*501*X*004010~\n",
            "",
            &["missing_gs", "segment ST"],
        ),
        (
            "ge before se",
            "SE*9*0001~\nGE*1*501~\n",
            "GE*1*501~\nSE*9*0001~\n",
            &["missing_se", "segment ST"],
        ),
        (
            "segment between se and ge",
            "SE*9*0001~\n",
            "SE*9*0001~\nREF*ZZ*LOST~\n",
            &["segment_outside_set", "segment REF"],
        ),
        (
            "segment between ge and iea",
            "IEA*1*0007",
            "REF*ZZ*LATE~\nIEA*1*0007",
            &["segment_outside_set", "segment REF"],
        ),
        (
            "segment after iea",
            "IEA*1*0007~\n",
            "IEA*1*0007~\nREF*ZZ*LATE~\n",
            &["segment_after_iea", "segment REF"],
        ),
        (
            "bad segment id",
            "CTT*2~",
            "C#T*2~",
            &["bad_segment_id", "byte "],
        ),
        (
            "numeric segment id",
            "CTT*2~",
            "9TT*2~",
            &["bad_segment_id", "byte "],
        ),
    ];
    for (name, from, to, needles) in envelope {
        n += 1;
        let ctl = format!("{:09}", 700_000 + n);
        let text = unique(ACK, n);
        let from = from.replace("0007", &ctl);
        let to = to.replace("0007", &ctl);
        assert!(text.contains(&from), "{name}: {from:?} not in the 855");
        push(
            &mut cases,
            format!("855 {name}"),
            text.replacen(&from, &to, 1).into_bytes(),
            rejected(needles),
        );
    }
    // The same on the 856 (counts only; the structure differs).
    for (name, from, to, needles) in [
        (
            "se01",
            "SE*28*",
            "SE*27*",
            &["se_count_mismatch", "segment SE", "element 01"][..],
        ),
        ("se02", "SE*28*0001", "SE*28*1", &["segment SE"][..]),
        (
            "ge01",
            "GE*1*",
            "GE*3*",
            &["ge_count_mismatch", "segment GE", "element 01"][..],
        ),
        (
            "ge02",
            "GE*1*601",
            "GE*1*6011",
            &["ge_control_mismatch", "segment GE", "element 02"][..],
        ),
        (
            "iea01",
            "IEA*1*",
            "IEA*9*",
            &["iea_count_mismatch", "segment IEA", "element 01"][..],
        ),
    ] {
        n += 1;
        let text = unique(ASN, n);
        assert!(text.contains(from), "{name}");
        let expect = if name == "se02" {
            // SE02 "1" equals ST02 "0001" numerically: tolerated.
            Expect::Archived
        } else {
            rejected(needles)
        };
        push(
            &mut cases,
            format!("856 {name}"),
            text.replacen(from, to, 1).into_bytes(),
            expect,
        );
    }
    // Two sets with the same ST02 in one group.
    n += 1;
    {
        let text = unique(ACK, n);
        let st = text.find("ST*").unwrap();
        let ge = text.find("GE*").unwrap();
        let set = &text[st..ge];
        let doubled =
            format!("{}{set}{set}{}", &text[..st], &text[ge..]).replacen("GE*1*", "GE*2*", 1);
        push(
            &mut cases,
            "855 st02 repeated".into(),
            doubled.into_bytes(),
            rejected(&["duplicate_control_number", "segment ST", "element 02"]),
        );
    }
    // Delimiters that cannot be detected: no real ISA, so the watcher waits for the incomplete
    // timeout and the reason says "incomplete" (see the separate known-bug test below).
    let isa_end = 106;
    type Rewrite = Box<dyn Fn(&str) -> String>;
    let delimiter_cases: Vec<(&str, Rewrite)> = vec![
        (
            "element separator alphanumeric",
            Box::new(|t: &str| t.replace('*', "A")),
        ),
        (
            "element separator is the terminator",
            Box::new(|t: &str| t.replace('~', "*")),
        ),
        (
            "component separator is the element separator",
            Box::new(move |t: &str| format!("{}*{}", &t[..isa_end - 2], &t[isa_end - 1..])),
        ),
        (
            "component separator alphanumeric",
            Box::new(move |t: &str| format!("{}Q{}", &t[..isa_end - 2], &t[isa_end - 1..])),
        ),
        (
            "terminator is a space",
            Box::new(|t: &str| t.replace('~', " ")),
        ),
        (
            "terminator alphanumeric",
            Box::new(|t: &str| t.replace('~', "Z")),
        ),
        (
            "isa with 15 elements",
            Box::new(|t: &str| t.replacen("*00*          *00*", "*00*", 1)),
        ),
        (
            "isa only",
            Box::new(move |t: &str| t[..isa_end].to_string()),
        ),
        (
            "body uses newline terminators only",
            Box::new(move |t: &str| format!("{}{}", &t[..isa_end], t[isa_end..].replace('~', ""))),
        ),
        (
            "no element separators",
            Box::new(|t: &str| t.replace('*', "")),
        ),
    ];
    // An ISA that is all there but declares unusable delimiters is refused at once, naming the
    // ISA; the others never show a usable ISA and wait for the incomplete timeout.
    let unusable_isa = [
        "element separator is the terminator",
        "component separator is the element separator",
        "component separator alphanumeric",
        "terminator is a space",
        "terminator alphanumeric",
        "isa with 15 elements",
    ];
    for (name, f) in delimiter_cases {
        n += 1;
        let expect = if unusable_isa.contains(&name) {
            rejected(&["bad_delimiters", "segment ISA", "byte 0"])
        } else {
            Expect::Incomplete
        };
        push(
            &mut cases,
            format!("855 {name}"),
            f(&unique(ACK, n)).into_bytes(),
            expect,
        );
    }
    // Garbage.
    let mut rng = StdRng::seed_from_u64(0x000B_AD1A);
    for len in [1usize, 3, 17, 106, 500, 4096, 65_537] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
        push(
            &mut cases,
            format!("random bytes {len}"),
            bytes,
            Expect::NotX12,
        );
    }
    // A file just created (empty or blank so far) may still become X12: it waits.
    for (name, bytes) in [
        ("empty file", Vec::new()),
        ("whitespace", b"  \r\n\t\n".to_vec()),
    ] {
        push(&mut cases, name.into(), bytes, Expect::Incomplete);
    }
    // Bytes that cannot begin an ISA, GS or ST are refused at once, not after the timeout.
    for (name, bytes) in [
        ("nul bytes", vec![0u8; 2048]),
        ("0xff bytes", vec![0xFFu8; 300]),
        (
            "utf-16 855",
            ACK.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ),
        ("json", SAMPLE.as_bytes().to_vec()),
        ("only terminators", b"~~~~~~~~".to_vec()),
        ("IEA alone", b"IEA*1*000000001~\n".to_vec()),
        (
            "mangled ISA",
            b"SA*00*          *00*          *ZZ*SENDER~".to_vec(),
        ),
    ] {
        push(&mut cases, name.into(), bytes, Expect::NotX12);
    }
    // An enormous single segment (5 MB element), and a 5 MB file with no terminator.
    n += 1;
    let big = "X".repeat(5 << 20);
    push(
        &mut cases,
        "855 5 MB element".into(),
        unique(ACK, n).replacen("SO-77812", &big, 1).into_bytes(),
        rejected(&["too_long", "segment BAK"]),
    );
    n += 1;
    push(
        &mut cases,
        "856 5 MB element".into(),
        unique(ASN, n).replacen("SN002", &big, 1).into_bytes(),
        rejected(&["too_long", "segment REF"]),
    );
    n += 1;
    push(
        &mut cases,
        "855 5 MB without a terminator".into(),
        format!("{}{big}", &unique(ACK, n)[..isa_end]).into_bytes(),
        Expect::Incomplete,
    );
    // Content: (sample, name, from, to, needles).
    let content: Vec<(&str, &str, &str, &str, &[&str])> = vec![
        (
            ACK,
            "transaction set 810",
            "ST*855*",
            "ST*810*",
            &["transaction set 810", "segment ST"],
        ),
        (
            ACK,
            "transaction set 850",
            "ST*855*",
            "ST*850*",
            &["transaction set 850", "segment ST"],
        ),
        (
            ASN,
            "856 as 810",
            "ST*856*",
            "ST*810*",
            &["transaction set 810", "segment ST"],
        ),
        (
            ACK,
            "empty st01",
            "ST*855*",
            "ST**",
            &["st01 missing", "segment ST", "element 01"],
        ),
        (
            ACK,
            "bak02 ZZ",
            "BAK*00*AC*",
            "BAK*00*ZZ*",
            &["bak02 'ZZ'", "segment BAK", "element 02"],
        ),
        (
            ACK,
            "bak02 Q1",
            "BAK*00*AC*",
            "BAK*00*Q1*",
            &["bak02 'Q1'", "segment BAK", "element 02"],
        ),
        (
            ACK,
            "bak02 ack code",
            "BAK*00*AC*",
            "BAK*00*IA*",
            &["bak02 'IA'", "segment BAK", "element 02"],
        ),
        (
            ACK,
            "bak02 empty",
            "BAK*00*AC*",
            "BAK*00**",
            &["bak02 missing", "segment BAK", "element 02"],
        ),
        (
            ACK,
            "bak01 empty",
            "BAK*00*AC*",
            "BAK**AC*",
            &["bak01 missing", "segment BAK", "element 01"],
        ),
        (
            ACK,
            "bak03 empty",
            "*AC*IM-PO-1001*",
            "*AC**",
            &["bak03", "segment BAK", "element 03"],
        ),
        (
            ACK,
            "no bak",
            "BAK*00*AC*IM-PO-1001*20261120****SO-77812*20261121~\n",
            "",
            &[
                "mandatory segment bak missing",
                "segment BAK #4 in file, #2 in set",
            ],
        ),
        (
            ACK,
            "ack01 ZQ",
            "ACK*IB*",
            "ACK*ZQ*",
            &["ack01 'ZQ'", "segment ACK", "element 01"],
        ),
        (
            ACK,
            "ack01 XX",
            "ACK*IA*8",
            "ACK*XX*8",
            &["ack01 'XX'", "segment ACK", "element 01"],
        ),
        (
            ACK,
            "ack01 bak code",
            "ACK*IB*",
            "ACK*AD*",
            &["ack01 'AD'", "segment ACK", "element 01"],
        ),
        (
            ACK,
            "ack01 empty",
            "ACK*IB*",
            "ACK**",
            &["ack01 missing", "segment ACK", "element 01"],
        ),
        (
            ACK,
            "ack02 text",
            "ACK*IB*2*",
            "ACK*IB*two*",
            &["ack02 'two'", "segment ACK", "element 02"],
        ),
        (
            ACK,
            "ack02 negative",
            "ACK*IB*2*",
            "ACK*IB*-2*",
            &["ack02 '-2'", "segment ACK", "element 02"],
        ),
        (
            ACK,
            "ack before po1",
            "PO1*1*10*EA*123.45*PE*VP*ABC-123*BP*7HW123~\nACK*IA*8",
            "ACK*IA*8*EA~\nPO1*1*10*EA*123.45*PE*VP*ABC-123*BP*7HW123~\nACK*IA*8",
            &["se_count_mismatch"],
        ),
        (
            ACK,
            "bak09 month 13",
            "*SO-77812*20261121",
            "*SO-77812*20261321",
            &["bak09 '20261321'", "segment BAK", "element 09"],
        ),
        (
            ACK,
            "bak09 feb 30",
            "*SO-77812*20261121",
            "*SO-77812*20260230",
            &["bak09 '20260230'", "segment BAK", "element 09"],
        ),
        (
            ACK,
            "bak09 short",
            "*SO-77812*20261121",
            "*SO-77812*2026112",
            &["bak09", "segment BAK", "element 09"],
        ),
        (
            ACK,
            "bak09 text",
            "*SO-77812*20261121",
            "*SO-77812*TOMORROW",
            &["bak09 'TOMORROW'", "segment BAK", "element 09"],
        ),
        (
            ACK,
            "bak09 iso",
            "*SO-77812*20261121",
            "*SO-77812*2026-11-21",
            &["bak09", "segment BAK", "element 09"],
        ),
        (
            ACK,
            "no bak09 and a bad gs04",
            "*SO-77812*20261121~",
            "*SO-77812~",
            &[],
        ),
        (
            ACK,
            "ack05 bad date",
            "ACK*IA*8*EA*068*20261125",
            "ACK*IA*8*EA*068*20261132",
            &["ack05 '20261132'", "segment ACK", "element 05"],
        ),
        (
            ACK,
            "ack05 text date",
            "ACK*IA*3*EA*068*20261125",
            "ACK*IA*3*EA*068*SOON",
            &["ack05 'SOON'", "segment ACK", "element 05"],
        ),
        (
            ASN,
            "dtm 011 bad date",
            "DTM*011*20261121",
            "DTM*011*20261199",
            &["dtm date '20261199'", "segment HL"],
        ),
        (
            ASN,
            "dtm 017 bad date",
            "DTM*017*20261124",
            "DTM*017*2026",
            &["dtm date '2026'", "segment HL"],
        ),
        (
            ASN,
            "bsn02 missing",
            "BSN*00*ASN-5501*",
            "BSN*00**",
            &["bsn02 missing", "segment BSN", "element 02"],
        ),
        (
            ASN,
            "bsn02 blank",
            "BSN*00*ASN-5501*",
            "BSN*00*   *",
            &["bsn02", "segment BSN", "element 02"],
        ),
        (
            ASN,
            "bsn01 missing",
            "BSN*00*",
            "BSN**",
            &["bsn01 missing", "segment BSN", "element 01"],
        ),
        (
            ASN,
            "no bsn",
            "BSN*00*ASN-5501*20261121*1000*0001~\n",
            "",
            &[
                "mandatory segment bsn missing",
                "segment BSN #4 in file, #2 in set",
            ],
        ),
        (
            ASN,
            "prf01 missing",
            "PRF*IM-PO-1001~",
            "PRF~",
            &["prf01 missing", "segment PRF", "element 01"],
        ),
        (
            ASN,
            "prf01 empty",
            "PRF*IM-PO-1001~",
            "PRF**20261120~",
            &["prf01 missing", "segment PRF", "element 01"],
        ),
        (
            ASN,
            "no prf",
            "PRF*IM-PO-1001~\n",
            "",
            &["no prf01", "segment HL"],
        ),
        (
            ASN,
            "sn102 missing",
            "SN1*1*8*EA",
            "SN1*1**EA",
            &["no sn102", "segment HL"],
        ),
        (
            ASN,
            "second sn102 missing",
            "SN1*2*3*EA",
            "SN1*2**EA",
            &["no sn102", "segment HL"],
        ),
        (
            ASN,
            "sn1 removed",
            "SN1*1*8*EA~\n",
            "",
            &["no sn102", "segment HL"],
        ),
        (
            ASN,
            "sn102 text",
            "SN1*1*8*EA",
            "SN1*1*eight*EA",
            &["sn102 'eight' is not a number", "segment SN1", "element 02"],
        ),
        (
            ASN,
            "sn102 negative",
            "SN1*1*8*EA",
            "SN1*1*-8*EA",
            &["sn102 '-8'", "segment HL"],
        ),
        (
            ASN,
            "sn102 overflow",
            "SN1*1*8*EA",
            "SN1*1*18446744073709551616*EA",
            &["sn102", "segment HL"],
        ),
        (
            ASN,
            "item without a line number",
            "LIN*1*VP*ABC-123*BP*7HW123~\nSN1*1*8*EA",
            "LIN**BP*7HW123~\nSN1**8*EA",
            &["no line number", "segment HL"],
        ),
        (
            ASN,
            "item under the shipment",
            "HL*4*3*I*0",
            "HL*4*1*I*0",
            &["no order (O) level", "segment HL"],
        ),
        (
            ASN,
            "hl own parent",
            "HL*4*3*I*0",
            "HL*4*4*I*0",
            &["hl_cycle", "segment HL", "element 02"],
        ),
        (
            ASN,
            "hl01 repeated",
            "HL*5*2*P*1",
            "HL*4*2*P*1",
            &["hl_duplicate", "segment HL", "element 01"],
        ),
        (
            ASN,
            "hl01 missing",
            "HL*5*2*P*1",
            "HL**2*P*1",
            &["hl01 missing", "segment HL", "element 01"],
        ),
        (
            ASN,
            "hl03 missing",
            "HL*2*1*O*1",
            "HL*2*1**1",
            &["hl03 missing", "segment HL", "element 03"],
        ),
        (
            ASN,
            "no o level",
            "HL*2*1*O*1~\nPRF*IM-PO-1001~\n",
            "",
            &["segment HL"],
        ),
        // Two documents run together in one set: the second heading is refused, never read
        // over the first.
        (
            ACK,
            "a second bak",
            "ACK*IB*2*EA~",
            "ACK*IB*2*EA~\nBAK*00*AC*IM-PO-2002*20261120~",
            &["bak appears again", "segment BAK"],
        ),
        (
            ASN,
            "a second bsn",
            "HL*2*1*O*1~",
            "BSN*00*OTHER-SHIPMENT*20261122*1000~\nHL*2*1*O*1~",
            &["bsn appears again", "segment BSN"],
        ),
    ];
    for (sample, name, from, to, needles) in content {
        n += 1;
        let text = unique(sample, n);
        assert!(text.contains(from), "{name}: {from:?}");
        let mut out = text.replacen(from, to, 1);
        let expect = if name == "no bak09 and a bad gs04" {
            out = out.replacen("*20261121*0900*", "*2026XX21*0900*", 1);
            rejected(&["bak09 '2026XX21'", "segment BAK", "element 09"])
        } else if needles == ["se_count_mismatch"] {
            // ACK before PO1 adds a segment: the count no longer matches.
            rejected(&["se_count_mismatch", "segment SE", "element 01"])
        } else {
            // Removing a segment changes SE01: fix the count so only the named problem remains.
            let removed = from.matches('~').count() as i64 - to.matches('~').count() as i64;
            if removed != 0 {
                let se = if sample == ACK { 9 } else { 28 };
                out = out.replacen(&format!("SE*{se}*"), &format!("SE*{}*", se - removed), 1);
            }
            rejected(needles)
        };
        let kind = if sample == ACK { "855" } else { "856" };
        push(
            &mut cases,
            format!("{kind} {name}"),
            out.into_bytes(),
            expect,
        );
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_bad_input_corpus() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // The corpus states the strict rules: envelope count and control-number mismatches are
    // rejections only with `strict_envelope = true` (by default they are warnings, see
    // `real_world`).
    std::fs::write(
        ws.path("mapping.toml"),
        edi_bridge::mapping::DEFAULT_MAPPING
            .replace("strict_envelope = false", "strict_envelope = true"),
    )
    .unwrap();
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 1\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n",
        )
        .await;
    let cases = x12_cases();
    let names: Vec<String> = (0..cases.len())
        .map(|i| format!("bad-{i:04}.edi"))
        .collect();
    let mut outcomes: HashMap<String, Outcome> = HashMap::new();
    // Batches well below the event channel's capacity.
    for (batch, chunk) in cases.chunks(120).enumerate() {
        let mut rx = d.r().events.subscribe();
        let mut waiting = BTreeSet::new();
        for (j, c) in chunk.iter().enumerate() {
            let name = &names[batch * 120 + j];
            drop_inbox(&ws, name, &c.bytes);
            waiting.insert(name.clone());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !waiting.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(edi_bridge::events::Event::InboxFile { file, outcome })) => {
                    if waiting.remove(&file) {
                        outcomes.insert(file, outcome);
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("event channel: {e}"),
                Err(_) => panic!("timed out; no outcome for {waiting:?}"),
            }
        }
    }
    let mut failures = Vec::new();
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for (c, name) in cases.iter().zip(&names) {
        let outcome = &outcomes[name];
        let class = match &c.expect {
            Expect::Archived => "archived",
            Expect::Incomplete => "incomplete",
            Expect::NotX12 => "not_x12",
            Expect::Rejected(_) => "rejected",
        };
        *per_class.entry(class).or_default() += 1;
        let problem = match (&c.expect, outcome) {
            (Expect::Archived, Outcome::Archived { .. }) => None,
            (Expect::Incomplete, Outcome::Rejected { reason, moved }) => {
                check_quarantined(&ws, moved, reason).err().or_else(|| {
                    (!reason.starts_with("incomplete")).then(|| format!("reason {reason:?}"))
                })
            }
            (Expect::NotX12, Outcome::Rejected { reason, moved }) => {
                check_quarantined(&ws, moved, reason).err().or_else(|| {
                    (!reason.starts_with("not an X12 file")).then(|| format!("reason {reason:?}"))
                })
            }
            (Expect::Rejected(needles), Outcome::Rejected { reason, moved }) => {
                check_quarantined(&ws, moved, reason).err().or_else(|| {
                    let missing: Vec<&String> = needles
                        .iter()
                        .filter(|s| !reason.contains(s.as_str()))
                        .collect();
                    (!missing.is_empty() || !reason.contains("byte "))
                        .then(|| format!("reason lacks {missing:?} / byte: {reason}"))
                })
            }
            (e, o) => Some(format!("expected {e:?}, got {o:?}")),
        };
        if let Some(p) = problem {
            failures.push(format!("{name} ({}): {p}", c.name));
        }
    }
    // Nothing left behind, and the daemon still works.
    assert!(ws.files("inbox").is_empty(), "{:?}", ws.files("inbox"));
    assert!(
        ws.files("inbox/.processing").is_empty(),
        "{:?}",
        ws.files("inbox/.processing")
    );
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "good.855",
        &as_replacement(unique(ACK, 999_999).into_bytes()),
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "good.855").await,
        Outcome::Archived { .. }
    ));
    d.stop().await;
    let total = cases.len() + 1;
    println!("inbox corpus: {total} cases {per_class:?}");
    println!("{total} cases");
    assert!(
        failures.is_empty(),
        "{} of {} inbox cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The file is in `error/` and its `NAME.reason.txt` holds the reason.
fn check_quarantined(ws: &Workspace, moved: &Path, reason: &str) -> Result<(), String> {
    if moved.parent() != Some(ws.path("error").as_path()) {
        return Err(format!("moved to {}", moved.display()));
    }
    let text = std::fs::read_to_string(format!("{}.reason.txt", moved.display()))
        .map_err(|e| format!("no reason file: {e}"))?;
    let first = reason.lines().next().unwrap_or("");
    if !text.contains(first) {
        return Err(format!("reason file {text:?} lacks {first:?}"));
    }
    // A reason quotes an excerpt, never the file: no line runs on, no control character.
    if let Some(long) = text.lines().find(|l| l.len() > 600) {
        return Err(format!("reason line of {} bytes", long.len()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(format!("control character in reason file {text:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Randomized no-panic tests
// ---------------------------------------------------------------------------------------------

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.random_range(0..6)
    } else {
        rng.random_range(0..8)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => match rng.random_range(0..6) {
            0 => json!(rng.random::<i64>()),
            1 => json!(rng.random::<u64>()),
            2 => json!(rng.random::<f64>() * 1e12 - 5e11),
            3 => json!(rng.random_range(-3i64..20)),
            4 => json!(f64::MAX),
            _ => json!(rng.random_range(0u64..1_000_000_001)),
        },
        3 | 4 => {
            const WORDS: [&str; 18] = [
                "",
                " ",
                "0",
                "-1",
                "10",
                "1.5",
                "1e9",
                "2026-11-20",
                "2026-02-30",
                "2026-11-20T25:61:00Z",
                "usd",
                "im::vendorpocreate",
                "im::new_purchaseorder",
                "é",
                "~*>",
                "18446744073709551616",
                "999999999999999999.999999",
                "\u{0}",
            ];
            let w = WORDS[rng.random_range(0..WORDS.len())];
            let s = if rng.random_bool(0.1) {
                w.repeat(rng.random_range(1..5000))
            } else {
                w.to_string()
            };
            json!(s)
        }
        5 => json!("x".repeat(rng.random_range(0..100))),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            const KEYS: [&str; 8] = [
                "quantity",
                "unitPrice",
                "lines",
                "eventid",
                "resource",
                "x",
                "city",
                "ingramPurchaseOrderNumber",
            ];
            Value::Object(
                (0..rng.random_range(0..4))
                    .map(|_| {
                        (
                            KEYS[rng.random_range(0..KEYS.len())].to_string(),
                            random_value(rng, depth - 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

#[test]
fn webhook_decoder_never_panics_on_random_json() {
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    let mut paths = Vec::new();
    all_paths(&sample, &mut Vec::new(), &mut paths);
    let names = WebhookFields::default();
    let mut rng = StdRng::seed_from_u64(0x5EED_0850);
    let (mut ok, mut refused) = (0, 0);
    const N: usize = 10_000;
    for case in 0..N {
        let v = if case % 10 == 0 {
            random_value(&mut rng, 4)
        } else {
            let mut v = sample.clone();
            for _ in 0..rng.random_range(1..4) {
                let path = &paths[rng.random_range(0..paths.len())];
                if get_mut(&mut v, path).is_none() {
                    continue;
                }
                let new = if rng.random_bool(0.15) {
                    None
                } else {
                    Some(random_value(&mut rng, 3))
                };
                set_path(&mut v, path, new);
            }
            v
        };
        let text = v.to_string();
        let result = catch_unwind(AssertUnwindSafe(|| order::decode(&v, &names)));
        match result {
            Err(_) => panic!("decode panicked on case {case}: {text}"),
            Ok(Ok(ev)) => {
                ok += 1;
                assert!(!ev.event_id.is_empty() && ev.event_id.len() <= 200);
                assert!(!ev.orders.is_empty(), "{text}");
                for o in &ev.orders {
                    assert!(!o.po_number.is_empty() && o.po_number.len() <= 80, "{text}");
                    assert!(!o.lines.is_empty(), "{text}");
                    for l in &o.lines {
                        assert!(l.quantity > 0 && l.quantity < 1_000_000_000, "{text}");
                    }
                    let _ = o.total().to_string();
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                assert!(!e.field.is_empty(), "{e} on {text}");
            }
        }
    }
    println!("decoder: {N} cases ({ok} decoded, {refused} refused)");
    println!("{N} cases");
}

const TOKENS: [&str; 22] = [
    "",
    "0",
    "1",
    "2",
    "-1",
    "X",
    "IA",
    "IB",
    "IR",
    "ZZ",
    "AC",
    "O",
    "I",
    "P",
    "S",
    "T",
    "068",
    "011",
    "20261399",
    "18446744073709551615",
    "9999999999",
    "1.5",
];

/// One random edit of an X12 text: an element replaced, a segment deleted, duplicated or
/// swapped, a delimiter inserted, or a byte range removed.
fn mutate_x12(rng: &mut StdRng, text: &str) -> Vec<u8> {
    let mut segs: Vec<String> = text.split('~').map(str::to_string).collect();
    let last = segs.len().saturating_sub(2);
    for _ in 0..rng.random_range(1..4) {
        let i = rng.random_range(0..=last.max(1)).min(segs.len() - 1);
        match rng.random_range(0..7) {
            0..=2 => {
                let mut els: Vec<String> = segs[i].split('*').map(str::to_string).collect();
                let e = rng.random_range(0..els.len() + 2);
                let tok = TOKENS[rng.random_range(0..TOKENS.len())].to_string();
                if e < els.len() && e > 0 {
                    els[e] = tok;
                } else {
                    els.push(tok);
                }
                segs[i] = els.join("*");
            }
            3 => {
                if i > 0 {
                    segs.remove(i);
                }
            }
            4 => {
                let s = segs[i].clone();
                segs.insert(i, s);
            }
            5 => {
                let j = rng.random_range(0..segs.len());
                if i > 0 && j > 0 {
                    segs.swap(i, j);
                }
            }
            _ => {
                let s = &mut segs[i];
                let at = rng.random_range(0..=s.len());
                if s.is_char_boundary(at) {
                    s.insert(at, ['*', '~', '>', '\n'][rng.random_range(0..4)]);
                }
            }
        }
    }
    let mut bytes = segs.join("~").into_bytes();
    if rng.random_bool(0.05) && bytes.len() > 10 {
        let a = rng.random_range(0..bytes.len() - 5);
        let b = rng.random_range(a..(a + 40).min(bytes.len()));
        bytes.drain(a..b);
    }
    bytes
}

/// Reads `bytes` and runs every 855/856 in it through the translators.
fn translate_all(bytes: &[u8], mapping: &Mapping, views: &BTreeMap<String, OrderView>) -> usize {
    let doc = x12::read(bytes, &x12::ReadOptions::default());
    let mut n = 0;
    for tx in doc.transactions() {
        let pos = tx
            .segments
            .first()
            .map(|s| s.position().clone())
            .unwrap_or_default();
        match tx.id.trim() {
            "855" => {
                let (ack, _) = x12::Ack855::parse(tx);
                let _ = from_855(&ack, &pos, mapping, "20261121");
                n += 1;
            }
            "856" => {
                let (asn, _) = x12::Asn856::parse(tx);
                let _ = from_856(&asn, &pos, mapping, views);
                n += 1;
            }
            _ => {}
        }
    }
    n
}

#[test]
fn translators_never_panic_on_mutated_files() {
    let mapping = Mapping::builtin();
    let mut views = BTreeMap::new();
    views.insert(
        "IM-PO-1001".to_string(),
        OrderView {
            ordered: [("1".to_string(), 10), ("2".to_string(), 3)].into(),
            line_by_vendor_part: [("ABC-123".to_string(), "1".to_string())].into(),
            shipped: [("1".to_string(), 2)].into(),
        },
    );
    let mut rng = StdRng::seed_from_u64(0x5EED_0855);
    const N: usize = 6_000;
    let mut translated = 0;
    let mut panics = Vec::new();
    for case in 0..N {
        let sample = if case % 2 == 0 { ACK } else { ASN };
        let bytes = mutate_x12(&mut rng, sample);
        match catch_unwind(AssertUnwindSafe(|| translate_all(&bytes, &mapping, &views))) {
            Ok(k) => translated += k,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panics.push(format!(
                    "case {case}: {msg}\n{}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
        }
    }
    println!(
        "translators: {N} cases ({translated} sets translated, {} panics)",
        panics.len()
    );
    println!("{N} cases");
    assert!(
        panics.is_empty(),
        "{} panics; first:\n{}",
        panics.len(),
        panics[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Candidate bugs, each isolated in its own test
// ---------------------------------------------------------------------------------------------

/// Runs the translators on one file and returns the panic message, if any.
fn panic_of(bytes: &[u8], views: &BTreeMap<String, OrderView>) -> Option<String> {
    let mapping = Mapping::builtin();
    catch_unwind(AssertUnwindSafe(|| translate_all(bytes, &mapping, views)))
        .err()
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
}

#[test]
fn huge_855_quantities_are_refused_not_overflowed() {
    // Two ACK lines of u64::MAX on one PO1: summing them must not overflow.
    let text = ACK
        .replacen("ACK*IA*8*EA", "ACK*IA*18446744073709551615*EA", 1)
        .replacen("ACK*IB*2*EA", "ACK*IA*18446744073709551615*EA", 1);
    assert_eq!(panic_of(text.as_bytes(), &BTreeMap::new()), None);
}

#[test]
fn huge_856_quantities_are_refused_not_overflowed() {
    // One item of u64::MAX on a line that already shipped 2: the completeness check adds them.
    let mut views = BTreeMap::new();
    views.insert(
        "IM-PO-1001".to_string(),
        OrderView {
            ordered: [("1".to_string(), 10)].into(),
            line_by_vendor_part: BTreeMap::new(),
            shipped: [("1".to_string(), 2)].into(),
        },
    );
    let text = ASN.replacen("SN1*1*8*EA", "SN1*1*18446744073709551615*EA", 1);
    assert_eq!(panic_of(text.as_bytes(), &views), None);
    // Two items of the same line in one 856.
    let text = ASN.replacen("SN1*2*3*EA", "SN1*1*18446744073709551615*EA", 1);
    let text = text.replacen("SN1*1*8*EA", "SN1*1*18446744073709551615*EA", 1);
    let text = text.replacen("LIN*2*", "LIN*1*", 1);
    assert_eq!(panic_of(text.as_bytes(), &BTreeMap::new()), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_isa_delimiters_are_named_in_the_reason() {
    // An interchange whose ISA declares unusable delimiters is complete (it has its IEA), so the
    // reason should name the ISA problem and its byte, not "incomplete ... still being written".
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 1\n",
        )
        .await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "delims.855",
        unique(ACK, 1).replace('~', "*").as_bytes(),
    );
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "delims.855").await else {
        panic!("not rejected")
    };
    d.stop().await;
    assert!(
        reason.contains("bad_delimiters")
            && reason.contains("segment ISA")
            && reason.contains("byte 0"),
        "{reason}"
    );
}
