//! The pure translator from a domain [`PurchaseOrder`] and the mapping to an X12 850 interchange:
//! which webhook field lands in which segment and qualifier is read from [`Po850`], identities and
//! delimiters from the mapping's envelope sections, control numbers from the caller. Data in,
//! bytes out; no I/O, no clock (the envelope instant is a parameter).

use time::OffsetDateTime;

use crate::mapping::{CodeLists, Mapping, PartySource, X12Version};
use crate::outbound::order::{Address, PurchaseOrder};
use crate::x12;

/// The envelope values of one 850 interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlNumbers {
    pub isa13: u32,
    pub gs06: u32,
    pub st02: u32,
}

/// The typed 850 for `po` under `mapping`.
pub fn to_850(po: &PurchaseOrder, mapping: &Mapping) -> x12::PurchaseOrder {
    let m = &mapping.po850;
    let lists = &mapping.code_lists;
    let fmt = |iso: &str| x12_date(iso, &m.date_format);
    let some = |q: &str, v: &Option<String>| -> Option<x12::Ref> {
        match (q.is_empty(), v) {
            (false, Some(v)) => Some(x12::Ref {
                qualifier: q.to_string(),
                value: v.clone(),
                description: None,
            }),
            _ => None,
        }
    };
    let mut refs = Vec::new();
    if po.po_number.len() > 22 {
        refs.extend(some(&m.long_po_ref, &Some(po.po_number.clone())));
    }
    refs.extend(some(
        &m.reseller_order_ref,
        &Some(po.reseller_order_number.clone()),
    ));
    refs.extend(some(&m.vendor_quote_ref, &po.vendor_quote_number));
    refs.extend(some(&m.special_bid_ref, &po.special_bid_number));
    let order_type = CodeLists::lookup(&lists.order_type, &po.order_type)
        .unwrap_or(&po.order_type)
        .to_string();
    refs.extend(some(&m.order_type_ref, &Some(order_type)));

    let mut dates = Vec::new();
    let mut dtm = |q: &str, iso: &Option<String>| {
        if let (false, Some(d)) = (q.is_empty(), iso.as_deref().and_then(fmt)) {
            dates.push(x12::Dtm {
                qualifier: q.to_string(),
                date: d,
                time: None,
            });
        }
    };
    dtm(&m.po_date_dtm, &po.po_date);
    dtm(&m.requested_delivery_dtm, &po.requested_delivery_date);

    let terms = match (m.terms_type.is_empty(), po.payment_terms_days) {
        (false, Some(days)) => Some(x12::Terms {
            type_code: m.terms_type.clone(),
            basis_date_code: non_empty(&m.terms_basis_date),
            net_days: Some(days.to_string()),
            description: non_empty(&m.terms_description.replace("{days}", &days.to_string())),
        }),
        _ => None,
    };
    let carrier = po
        .ship_via
        .as_ref()
        .map(|via| match CodeLists::lookup(&lists.carrier, via) {
            Some(scac) => x12::Td5 {
                routing_sequence: non_empty(&m.carrier_routing_sequence),
                id_qualifier: non_empty(&m.carrier_id_qualifier),
                scac: Some(scac.to_string()),
                method: None,
                routing: Some(via.clone()),
            },
            None => x12::Td5 {
                routing_sequence: non_empty(&m.carrier_routing_sequence),
                id_qualifier: None,
                scac: None,
                method: None,
                routing: Some(via.clone()),
            },
        });
    let notes = match (&po.notes, m.notes_n9_qualifier.is_empty()) {
        (Some(text), false) => vec![x12::Note {
            qualifier: m.notes_n9_qualifier.clone(),
            reference: Some("NOTES".into()),
            messages: split_text(text, 264),
        }],
        _ => Vec::new(),
    };
    let parties = m
        .parties
        .iter()
        .filter_map(|pm| {
            let addr = match pm.source {
                PartySource::ShipTo => &po.ship_to,
                PartySource::BillTo => &po.bill_to,
                PartySource::EndUser => &po.end_user,
                PartySource::Reseller => &po.reseller,
            };
            addr.as_ref()
                .map(|a| party(&pm.entity, &pm.contact_function, a))
        })
        .collect();
    let lines = po
        .lines
        .iter()
        .map(|l| {
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
                l.requested_ship_date.as_deref().and_then(fmt),
            ) {
                line_dates.push(x12::Dtm {
                    qualifier: m.requested_ship_dtm.clone(),
                    date: d,
                    time: None,
                });
            }
            x12::Line {
                number: l.ingram_line_number.clone(),
                quantity: l.quantity.to_string(),
                uom: CodeLists::lookup(&lists.unit_of_measure, &l.unit_of_measure)
                    .unwrap_or(&l.unit_of_measure)
                    .to_ascii_uppercase(),
                unit_price: l.unit_price.map(|p| p.to_string()),
                price_basis: l.unit_price.and_then(|_| non_empty(&m.price_basis)),
                product_ids: ids,
                description: if m.line_description {
                    l.description.clone()
                } else {
                    None
                },
                refs: Vec::new(),
                dates: line_dates,
                messages: Vec::new(),
            }
        })
        .collect();
    let any_price = po.lines.iter().any(|l| l.unit_price.is_some());
    x12::PurchaseOrder {
        purpose: m.purpose.clone(),
        po_type: m.po_type.clone(),
        po_number: po.po_number.clone(),
        release: None,
        date: po.po_date.as_deref().and_then(fmt).unwrap_or_default(),
        contract: None,
        currency: match (&po.currency, m.currency_entity.is_empty()) {
            (Some(c), false) => Some((m.currency_entity.clone(), c.clone())),
            _ => None,
        },
        refs,
        contacts: Vec::new(),
        fob: None,
        terms,
        dates,
        carrier,
        notes,
        parties,
        lines,
        hash_total: m.hash_total,
        total_amount: (m.total_amount && any_price).then(|| po.total().to_string()),
    }
}

/// Renders the whole interchange for `po`: ISA/GS/ST…SE/GE/IEA with the given control numbers,
/// dated `at` (UTC). The same inputs always give the same bytes.
pub fn render(
    po: &PurchaseOrder,
    mapping: &Mapping,
    numbers: ControlNumbers,
    at: OffsetDateTime,
) -> Result<Vec<u8>, x12::WriteError> {
    let mut typed = to_850(po, mapping);
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
    x12::write(
        &isa,
        &[x12::OutGroup {
            header: gs,
            transactions: vec![tx],
        }],
        &write_options(mapping),
    )
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
        version,
        max_lengths: mapping.length_overrides(),
        uppercase: mapping.po850.uppercase,
    }
}

fn fmt_at(at: OffsetDateTime, f: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(f)
        .unwrap_or_default()
}

fn party(entity: &str, contact_function: &str, a: &Address) -> x12::Party {
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
        id_qualifier: None,
        id: None,
        extra_names: Vec::new(),
        address: a.address_lines.clone(),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country_code.clone(),
        contacts,
    }
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
}
