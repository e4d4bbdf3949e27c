//! The decoder from Ingram's *Purchase Order Create Webhook v1*
//! JSON into the domain [`PurchaseOrder`]. Decoding is tolerant of the documented variations (`eventid`/`eventId`, numbers sent as
//! strings, enum values in any case, unknown fields) and strict about what the 850 needs: a
//! missing or malformed field is a [`FieldError`] naming it by path (`resource[0].lines[1].quantity`).
//! Names of undocumented fields come from the mapping. No I/O.

use serde_json::{Map, Value};

use crate::domain::{Address, Amount, OrderLine, PurchaseOrder};
use crate::mapping::WebhookFields;
use crate::program::{Program, RunError, Runner};

/// The only event this endpoint accepts.
pub const EVENT_PO_CREATE: &str = "im::vendorpocreate";
/// The PO-level event type Ingram documents for a new order.
pub const EVENT_TYPE_NEW_PO: &str = "im::new_purchaseorder";

/// A field that is missing or malformed, by JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// A decoded webhook event: its id and one order per element of `resource`.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub event_id: String,
    pub event_time: Option<String>,
    pub orders: Vec<PurchaseOrder>,
}

/// The event id, read from `eventid` or `eventId`, if the body is a JSON object that has one.
pub fn event_id(root: &Value) -> Result<String, FieldError> {
    let obj = root
        .as_object()
        .ok_or_else(|| err("$", "body must be a JSON object"))?;
    let v = obj
        .get("eventid")
        .or_else(|| obj.get("eventId"))
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("eventid"))
                .map(|(_, v)| v)
        })
        .ok_or_else(|| err("eventid", "missing"))?;
    let id = scalar_string(v).ok_or_else(|| err("eventid", "must be a string"))?;
    if id.is_empty() || id.len() > 200 {
        return Err(err("eventid", "must be 1 to 200 characters"));
    }
    Ok(id)
}

/// Why a webhook event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body (or what the mapping's program made of it) is missing or malforms a field:
    /// Ingram's to fix (400).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The mapping's `[webhook] program` failed on `resource[index]`: ours to fix (500, so
    /// Ingram redelivers once the mapping is corrected).
    #[error(
        "resource[{index}]: the mapping's [webhook] program{}: {error}",
        at(place)
    )]
    Program {
        index: usize,
        error: RunError,
        /// Where the program is written (`mapping.toml:12`).
        place: String,
    },
}

/// ` (FILE:LINE)` for a program's place, or nothing.
fn at(place: &str) -> String {
    if place.is_empty() {
        String::new()
    } else {
        format!(" ({place})")
    }
}

/// Decodes a whole webhook event with the shipped names and no program.
pub fn decode(root: &Value, names: &WebhookFields) -> Result<WebhookEvent, FieldError> {
    match decode_with(root, names, None) {
        Ok(e) => Ok(e),
        Err(DecodeError::Field(e)) => Err(e),
        Err(DecodeError::Program { .. }) => unreachable!("no program was run"),
    }
}

/// Decodes a whole webhook event: each element of `resource` goes through `program` (when it is
/// not the identity) by its runner and the result is decoded as a canonical PO. With a sandboxed
/// runner this blocks up to the time limit per element: call it off the async runtime.
pub fn decode_with(
    root: &Value,
    names: &WebhookFields,
    program: Option<(&Program, &Runner)>,
) -> Result<WebhookEvent, DecodeError> {
    let event_id = event_id(root)?;
    let obj = root.as_object().expect("event_id checked it is an object");
    if let Some(ev) = obj.get("event") {
        let ev = scalar_string(ev).ok_or_else(|| err("event", "must be a string"))?;
        if !ev.eq_ignore_ascii_case(EVENT_PO_CREATE) {
            return Err(err("event", format!("'{ev}' is not {EVENT_PO_CREATE}")).into());
        }
    }
    let event_time = opt_string(obj, "eventTimeStamp", "eventTimeStamp")?;
    let resource = obj
        .get("resource")
        .ok_or_else(|| err("resource", "missing"))?;
    let items: Vec<&Value> = match resource {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![resource],
        _ => return Err(err("resource", "must be an array of purchase orders").into()),
    };
    if items.is_empty() {
        return Err(err("resource", "must hold at least one purchase order").into());
    }
    let mut orders = Vec::with_capacity(items.len());
    let program = program.filter(|(p, _)| !p.is_identity());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("resource[{i}]");
        let po = match program {
            None => decode_po(item, &path, names)?,
            Some((p, runner)) => {
                let mapped =
                    runner
                        .run_object(p, item, &[])
                        .map_err(|error| DecodeError::Program {
                            index: i,
                            error,
                            place: p.place().to_string(),
                        })?;
                decode_po(&mapped, &path, names)?
            }
        };
        orders.push(po);
    }
    let mut seen = std::collections::HashSet::new();
    for (i, o) in orders.iter().enumerate() {
        if !seen.insert(o.po_number.as_str()) {
            return Err(err(
                format!("resource[{i}].ingramPurchaseOrderNumber"),
                format!("'{}' appears twice in this event", o.po_number),
            )
            .into());
        }
    }
    Ok(WebhookEvent {
        event_id,
        event_time,
        orders,
    })
}

fn decode_po(v: &Value, path: &str, n: &WebhookFields) -> Result<PurchaseOrder, FieldError> {
    let o = v
        .as_object()
        .ok_or_else(|| err(path, "must be an object"))?;
    let p = |k: &str| format!("{path}.{k}");
    if let Some(et) = opt_string(o, "eventType", &p("eventType"))? {
        if !et.eq_ignore_ascii_case(EVENT_TYPE_NEW_PO) {
            return Err(err(
                p("eventType"),
                format!("'{et}' is not {EVENT_TYPE_NEW_PO}"),
            ));
        }
    }
    let po_number = req_string(
        o,
        "ingramPurchaseOrderNumber",
        &p("ingramPurchaseOrderNumber"),
    )?;
    if po_number.len() > 80 {
        return Err(err(
            p("ingramPurchaseOrderNumber"),
            "longer than 80 characters",
        ));
    }
    let po_date = opt_string(o, "ingramPurchaseOrderDate", &p("ingramPurchaseOrderDate"))?
        .map(|s| {
            iso_date(&s).ok_or_else(|| {
                err(
                    p("ingramPurchaseOrderDate"),
                    format!("'{s}' is not a date or UTC timestamp"),
                )
            })
        })
        .transpose()?;
    let reseller_order_number = req_string(o, "resellerOrderNumber", &p("resellerOrderNumber"))?;
    let order_type = opt_string(o, "orderType", &p("orderType"))?
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "im::commercial".into());
    let vendor_quote_number = opt_string(o, "vendorQuoteNumber", &p("vendorQuoteNumber"))?;
    let payment_terms_days = payment_terms(o, path)?;
    let currency = currency(o, path)?;
    let requested_delivery_date = opt_string(
        o,
        &n.requested_delivery_date,
        &p(&n.requested_delivery_date),
    )?
    .map(|s| {
        iso_date(&s).ok_or_else(|| {
            err(
                p(&n.requested_delivery_date),
                format!("'{s}' is not a date"),
            )
        })
    })
    .transpose()?;
    let lines = decode_lines(o, path, n)?;
    let address = |key: &str| -> Result<Option<Address>, FieldError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(a)) => decode_address(a, &p(key), n).map(Some),
            Some(_) => Err(err(p(key), "must be an object")),
        }
    };
    Ok(PurchaseOrder {
        po_number,
        po_date,
        reseller_order_number,
        order_type,
        vendor_quote_number,
        payment_terms_days,
        currency,
        special_bid_number: opt_string(o, &n.special_bid_number, &p(&n.special_bid_number))?,
        ship_via: opt_string(o, &n.ship_via, &p(&n.ship_via))?,
        requested_delivery_date,
        notes: opt_string(o, &n.notes, &p(&n.notes))?,
        ship_to: address(&n.ship_to)?,
        bill_to: address(&n.bill_to)?,
        end_user: address(&n.end_user)?,
        reseller: address(&n.reseller)?,
        lines,
    })
}

/// `paymentTerms`: net days, 0 to 999.
fn payment_terms(o: &Map<String, Value>, path: &str) -> Result<Option<u32>, FieldError> {
    let at = format!("{path}.paymentTerms");
    opt_string(o, "paymentTerms", &at)?
        .map(|s| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= 999)
                .ok_or_else(|| err(&at, format!("'{s}' is not a number of net days")))
        })
        .transpose()
}

/// `currencyCode`: three letters, uppercased.
fn currency(o: &Map<String, Value>, path: &str) -> Result<Option<String>, FieldError> {
    let at = format!("{path}.currencyCode");
    opt_string(o, "currencyCode", &at)?
        .map(|s| {
            let c = s.trim().to_ascii_uppercase();
            if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) {
                Ok(c)
            } else {
                Err(err(&at, format!("'{s}' is not an ISO 4217 code")))
            }
        })
        .transpose()
}

/// The PO's lines: at least one, each line number its own.
fn decode_lines(
    o: &Map<String, Value>,
    path: &str,
    n: &WebhookFields,
) -> Result<Vec<OrderLine>, FieldError> {
    let at = format!("{path}.{}", n.lines);
    let lines_v = o.get(&n.lines).ok_or_else(|| err(&at, "missing"))?;
    let arr = lines_v
        .as_array()
        .ok_or_else(|| err(&at, "must be an array"))?;
    if arr.is_empty() {
        return Err(err(&at, "must hold at least one line"));
    }
    let mut lines = Vec::with_capacity(arr.len());
    // Line numbers as the ERP's 855 and 856 name lines (leading zeros dropped): one line each.
    let mut numbers = std::collections::HashMap::new();
    for (i, l) in arr.iter().enumerate() {
        let at = format!("{path}.{}[{i}]", n.lines);
        let line = decode_line(l, &at, i, n)?;
        let key = line.ingram_line_number.trim_start_matches('0').to_string();
        if let Some(first) = numbers.insert(key, i) {
            return Err(err(
                format!("{at}.{}", n.ingram_line_number),
                format!(
                    "line number '{}' is also line [{first}]'s: the erp's 855 and 856 name lines by their number, so each needs its own",
                    line.ingram_line_number
                ),
            ));
        }
        lines.push(line);
    }
    Ok(lines)
}

fn decode_address(
    o: &Map<String, Value>,
    path: &str,
    n: &WebhookFields,
) -> Result<Address, FieldError> {
    let f = |k: &str| opt_string(o, k, &format!("{path}.{k}"));
    let address_lines = [&n.address_line1, &n.address_line2, &n.address_line3]
        .into_iter()
        .map(|k| f(k))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(Address {
        company_name: f(&n.company_name)?,
        contact: f(&n.contact)?,
        address_lines,
        city: f(&n.city)?,
        state: f(&n.state)?,
        postal_code: f(&n.postal_code)?,
        country_code: f(&n.country_code)?,
        phone: f(&n.phone)?,
        email: f(&n.email)?,
    })
}

fn decode_line(
    v: &Value,
    path: &str,
    index: usize,
    n: &WebhookFields,
) -> Result<OrderLine, FieldError> {
    let o = v
        .as_object()
        .ok_or_else(|| err(path, "must be an object"))?;
    let p = |k: &str| format!("{path}.{k}");
    let f = |k: &str| opt_string(o, k, &p(k));
    let ingram_line_number = f(&n.ingram_line_number)?.unwrap_or_else(|| (index + 1).to_string());
    let quantity_raw = o
        .get(&n.quantity)
        .filter(|v| !v.is_null())
        .ok_or_else(|| err(p(&n.quantity), "missing"))?;
    let quantity = match quantity_raw {
        Value::Number(num) => num.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .filter(|q| *q > 0 && *q < 1_000_000_000)
    .ok_or_else(|| {
        err(
            p(&n.quantity),
            format!("{quantity_raw} is not a positive whole number"),
        )
    })?;
    let unit_price = match o.get(&n.unit_price) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = scalar_string(v).ok_or_else(|| err(p(&n.unit_price), "must be a decimal"))?;
            let a = Amount::parse(&s)
                .filter(|a| a.units >= 0)
                .ok_or_else(|| err(p(&n.unit_price), format!("'{s}' is not a price")))?;
            Some(a)
        }
    };
    let requested_ship_date = f(&n.requested_ship_date)?
        .map(|s| {
            iso_date(&s)
                .ok_or_else(|| err(p(&n.requested_ship_date), format!("'{s}' is not a date")))
        })
        .transpose()?;
    let line = OrderLine {
        ingram_line_number,
        ingram_part_number: f(&n.ingram_part_number)?,
        vendor_part_number: f(&n.vendor_part_number)?,
        upc: f(&n.upc)?,
        description: f(&n.description)?,
        quantity,
        unit_of_measure: f(&n.unit_of_measure)?.unwrap_or_else(|| "EA".into()),
        unit_price,
        requested_ship_date,
    };
    if line.ingram_part_number.is_none() && line.vendor_part_number.is_none() && line.upc.is_none()
    {
        return Err(err(
            p(&n.vendor_part_number),
            format!(
                "a line needs {}, {} or {}",
                n.vendor_part_number, n.ingram_part_number, n.upc
            ),
        ));
    }
    Ok(line)
}

/// The path of the first key repeated within one JSON object of `body` (`resource[0].lines[1].quantity`),
/// or `None` when no object repeats a key or the body is not JSON (the parse that follows says
/// why). A JSON parser keeps one of the two values; which one the sender meant is a guess.
pub fn repeated_key(body: &[u8]) -> Option<String> {
    use serde::de::DeserializeSeed as _;
    let path = std::cell::RefCell::new(Vec::new());
    let found = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Keys {
        path: &path,
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner()
}

/// One step of a path in the body.
enum Step {
    Key(String),
    Index(usize),
}

/// Walks a JSON value (a serde seed), noting the first repeated key's path in `found`.
#[derive(Clone, Copy)]
struct Keys<'a> {
    path: &'a std::cell::RefCell<Vec<Step>>,
    found: &'a std::cell::RefCell<Option<String>>,
}

impl Keys<'_> {
    fn at(&self, last: &str) -> String {
        let mut s = String::new();
        for step in self.path.borrow().iter() {
            match step {
                Step::Key(k) if s.is_empty() => s.push_str(k),
                Step::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Step::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(last);
        s
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Keys<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Keys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.path.borrow_mut().push(Step::Index(i));
            let more = seq.next_element_seed(self);
            self.path.borrow_mut().pop();
            if more?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.to_string()) {
                *self.found.borrow_mut() = Some(self.at(&key));
                return Err(serde::de::Error::custom("repeated key"));
            }
            self.path.borrow_mut().push(Step::Key(key.into_owned()));
            let r = map.next_value_seed(self);
            self.path.borrow_mut().pop();
            r?;
        }
        Ok(())
    }
}

/// A scalar as a string: strings trimmed, numbers and booleans printed; `None` for objects,
/// arrays and null.
fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn opt_string(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, FieldError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = scalar_string(v).ok_or_else(|| err(path, "must be a string"))?;
            if s.len() > 4096 {
                return Err(err(path, "longer than 4096 characters"));
            }
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

fn req_string(o: &Map<String, Value>, key: &str, path: &str) -> Result<String, FieldError> {
    opt_string(o, key, path)?.ok_or_else(|| err(path, "missing"))
}

/// `YYYY-MM-DD` from an RFC 3339 timestamp (converted to UTC) or a plain date.
pub fn iso_date(s: &str) -> Option<String> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    let date = if let Ok(ts) = time::OffsetDateTime::parse(s, &Rfc3339) {
        ts.to_offset(time::UtcOffset::UTC).date()
    } else if let Ok(ts) = time::PrimitiveDateTime::parse(
        s.trim_end_matches('Z'),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ) {
        ts.date()
    } else {
        time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?
    };
    date.format(time::macros::format_description!("[year]-[month]-[day]"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> WebhookFields {
        WebhookFields::default()
    }

    #[test]
    fn a_repeated_key_is_found_by_its_path() {
        let found = |body: &str| repeated_key(body.as_bytes());
        assert_eq!(found(r#"{"a":1,"b":[{"c":1},{"c":2}]}"#), None);
        assert_eq!(found(r#"{"a":1,"a":1}"#).as_deref(), Some("a"));
        assert_eq!(found(r#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
        assert_eq!(
            found(r#"{"r":[{},{"l":[{"q":1,"x":{},"q":2}]}]}"#).as_deref(),
            Some("r[1].l[0].q")
        );
        assert_eq!(found(r#"{"a":{"b":1,"b":2}}"#).as_deref(), Some("a.b"));
        assert_eq!(found("not json"), None);
        assert_eq!(
            found(&format!("{}1{}", "[".repeat(500), "]".repeat(500))),
            None
        );
    }

    fn minimal() -> Value {
        json!({
            "topic": "vendors/purchaseorders", "event": "IM::VendorPOCreate", "eventId": "E1",
            "resource": [{
                "ingramPurchaseOrderNumber": "IM-1", "resellerOrderNumber": "R-1",
                "ingramPurchaseOrderDate": "2026-11-20T23:30:00-05:00",
                "paymentTerms": "30",
                "lines": [{"ingramLineNumber": 1, "vendorPartNumber": "ABC", "quantity": "5", "unitPrice": 12.5}]
            }]
        })
    }

    #[test]
    fn decodes_variations() {
        let e = decode(&minimal(), &names()).unwrap();
        assert_eq!(e.event_id, "E1");
        let po = &e.orders[0];
        assert_eq!(
            po.po_date.as_deref(),
            Some("2026-11-21"),
            "converted to UTC"
        );
        assert_eq!(po.payment_terms_days, Some(30));
        assert_eq!(po.order_type, "im::commercial");
        assert_eq!(po.lines[0].quantity, 5);
        assert_eq!(po.lines[0].ingram_line_number, "1");
        assert_eq!(po.lines[0].unit_of_measure, "EA");
        assert_eq!(po.total().to_string(), "62.50");
    }

    #[test]
    fn names_the_failing_field() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|v| {
                    v["resource"][0]["lines"][0]["quantity"] = json!("x");
                }),
                "resource[0].lines[0].quantity",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["lines"][0]["quantity"] = json!(0);
                }),
                "resource[0].lines[0].quantity",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["lines"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("quantity");
                }),
                "resource[0].lines[0].quantity",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["lines"] = json!([]);
                }),
                "resource[0].lines",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("ingramPurchaseOrderNumber");
                }),
                "resource[0].ingramPurchaseOrderNumber",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("resellerOrderNumber");
                }),
                "resource[0].resellerOrderNumber",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["currencyCode"] = json!("DOLLARS");
                }),
                "resource[0].currencyCode",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["paymentTerms"] = json!("soon");
                }),
                "resource[0].paymentTerms",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["lines"][0]["unitPrice"] = json!("1.2.3");
                }),
                "resource[0].lines[0].unitPrice",
            ),
            (
                Box::new(|v| {
                    v["resource"] = json!("nope");
                }),
                "resource",
            ),
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("eventId");
                }),
                "eventid",
            ),
            (
                Box::new(|v| {
                    v["event"] = json!("im::other");
                }),
                "event",
            ),
            (
                Box::new(|v| {
                    v["resource"][0]["shipToInfo"] = json!([1]);
                }),
                "resource[0].shipToInfo",
            ),
        ];
        for (mutate, field) in cases {
            let mut v = minimal();
            mutate(&mut v);
            let e = decode(&v, &names()).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(
            Amount::parse("123.45").unwrap().times(3).to_string(),
            "370.35"
        );
        assert_eq!(
            Amount::parse("0.1")
                .unwrap()
                .plus(Amount::parse("0.2").unwrap())
                .to_string(),
            "0.30"
        );
        assert_eq!(Amount::parse("10").unwrap().to_string(), "10");
        assert_eq!(Amount::parse("1.23456").unwrap().to_string(), "1.23456");
        assert!(Amount::parse("").is_none());
        assert!(Amount::parse("1e5").is_none());
        assert!(Amount::parse(".").is_none());
    }

    #[test]
    fn the_canonical_po_decodes_back_to_the_same_po() {
        let sample: Value =
            serde_json::from_str(include_str!("../../samples/ingram-po-webhook.json")).unwrap();
        for root in [sample, minimal()] {
            let event = decode(&root, &names()).unwrap();
            for po in &event.orders {
                let canonical = crate::domain::canonical::po_json(po);
                let again = decode(
                    &json!({"eventId": "X", "resource": [canonical.clone()]}),
                    &names(),
                )
                .unwrap();
                // Amounts may come back at another scale (19.9 → "19.90"): same value, same JSON.
                assert_eq!(
                    crate::domain::canonical::po_json(&again.orders[0]),
                    canonical
                );
                assert_eq!(again.orders[0].total().to_string(), po.total().to_string());
                assert_eq!(again.orders[0].lines.len(), po.lines.len());
            }
        }
    }

    #[test]
    fn a_webhook_program_reshapes_each_po_and_its_failure_is_not_a_field_error() {
        let program = Program::compile(
            ".lines = (.items | map({ingramLineNumber: .lineNumber, vendorPartNumber: .sku, quantity: .qty})) | del(.items)",
            &[],
        )
        .unwrap();
        let root = json!({"eventId": "E", "resource": [{
            "ingramPurchaseOrderNumber": "P", "resellerOrderNumber": "R",
            "items": [{"lineNumber": "7", "sku": "S-1", "qty": 3}]
        }]});
        let runner = Runner::in_process(crate::program::Limits::default());
        let program = (&program, &runner);
        let e = decode_with(&root, &names(), Some(program)).unwrap();
        assert_eq!(e.orders[0].lines[0].ingram_line_number, "7");
        assert_eq!(e.orders[0].lines[0].quantity, 3);
        let failing = json!({"eventId": "E", "resource": [{"ingramPurchaseOrderNumber": "P"}]});
        match decode_with(&failing, &names(), Some(program)) {
            Err(DecodeError::Program {
                index: 0, error, ..
            }) => {
                assert!(error.to_string().contains("cannot"), "{error}")
            }
            other => panic!("{other:?}"),
        }
        // What the program yields is decoded as before: a missing field is still a 400.
        let no_reseller =
            json!({"eventId": "E", "resource": [{"ingramPurchaseOrderNumber": "P", "items": []}]});
        match decode_with(&no_reseller, &names(), Some(program)) {
            Err(DecodeError::Field(f)) => assert_eq!(f.field, "resource[0].resellerOrderNumber"),
            other => panic!("{other:?}"),
        }
    }
}
