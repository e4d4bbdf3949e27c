//! The canonical PO as JSON: the webhook's PO object in its documented shape, with the names
//! `docs/mapping.md` lists (Ingram's documented names, and our assumed ones at their defaults).
//! It is what a `[webhook] program` must produce, and what `$po` holds in the PO Response and
//! PO Status programs and in `[[po850.segments]]`. Built from the stored [`PurchaseOrder`], so it
//! is the same whatever names or program the webhook arrived through; absent values are left out.

use serde_json::{json, Map, Value};

use super::{Address, OrderLine, PurchaseOrder};

/// The canonical JSON of a PO.
pub fn po_json(po: &PurchaseOrder) -> Value {
    let mut o = Map::new();
    put(&mut o, "ingramPurchaseOrderNumber", Some(&po.po_number));
    put(&mut o, "ingramPurchaseOrderDate", po.po_date.as_ref());
    put(
        &mut o,
        "resellerOrderNumber",
        Some(&po.reseller_order_number),
    );
    put(&mut o, "orderType", Some(&po.order_type));
    put(&mut o, "vendorQuoteNumber", po.vendor_quote_number.as_ref());
    put(
        &mut o,
        "paymentTerms",
        po.payment_terms_days.map(|d| d.to_string()).as_ref(),
    );
    put(&mut o, "currencyCode", po.currency.as_ref());
    put(&mut o, "specialBidNumber", po.special_bid_number.as_ref());
    put(&mut o, "shipVia", po.ship_via.as_ref());
    put(
        &mut o,
        "requestedDeliveryDate",
        po.requested_delivery_date.as_ref(),
    );
    put(&mut o, "notes", po.notes.as_ref());
    for (key, party) in [
        ("shipToInfo", &po.ship_to),
        ("billToInfo", &po.bill_to),
        ("endUserInfo", &po.end_user),
        ("resellerInfo", &po.reseller),
    ] {
        if let Some(a) = party {
            o.insert(key.into(), address_json(a));
        }
    }
    o.insert(
        "lines".into(),
        Value::Array(po.lines.iter().map(line_json).collect()),
    );
    Value::Object(o)
}

fn address_json(a: &Address) -> Value {
    let mut o = Map::new();
    put(&mut o, "companyName", a.company_name.as_ref());
    put(&mut o, "contact", a.contact.as_ref());
    for (i, key) in ["addressLine1", "addressLine2", "addressLine3"]
        .into_iter()
        .enumerate()
    {
        put(&mut o, key, a.address_lines.get(i));
    }
    put(&mut o, "city", a.city.as_ref());
    put(&mut o, "state", a.state.as_ref());
    put(&mut o, "postalCode", a.postal_code.as_ref());
    put(&mut o, "countryCode", a.country_code.as_ref());
    put(&mut o, "phoneNumber", a.phone.as_ref());
    put(&mut o, "email", a.email.as_ref());
    Value::Object(o)
}

fn line_json(l: &OrderLine) -> Value {
    let mut o = Map::new();
    put(&mut o, "ingramLineNumber", Some(&l.ingram_line_number));
    put(&mut o, "ingramPartNumber", l.ingram_part_number.as_ref());
    put(&mut o, "vendorPartNumber", l.vendor_part_number.as_ref());
    put(&mut o, "upcCode", l.upc.as_ref());
    put(&mut o, "description", l.description.as_ref());
    o.insert("quantity".into(), json!(l.quantity));
    put(&mut o, "unitOfMeasure", Some(&l.unit_of_measure));
    put(
        &mut o,
        "unitPrice",
        l.unit_price.map(|p| p.to_string()).as_ref(),
    );
    put(&mut o, "requestedShipDate", l.requested_ship_date.as_ref());
    Value::Object(o)
}

fn put(o: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(v) = value {
        o.insert(key.into(), Value::String(v.clone()));
    }
}
