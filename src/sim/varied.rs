//! Webhooks that differ the way real ones do: the sample PO with its names, addresses, part
//! numbers, descriptions and references replaced by deterministic pseudo-random text of the same
//! length (random letters compress worse than real text, so sizes measured with them are on the
//! safe side). Used by the store's size test and the history benchmark, so that a compressed
//! record is measured against values the store's dictionary has never seen.

/// The sample webhook's values that vary from one PO to the next.
const VARYING: [&str; 21] = [
    "Acme Corp Receiving",
    "Dana Smith",
    "100 Main St",
    "Dock B",
    "Santa Ana",
    "92705",
    "714-555-0100",
    "receiving@acme.example",
    "Café Münster GmbH",
    "Jörg Weiß",
    "Königsallee 1",
    "Düsseldorf",
    "40212",
    "7HW123",
    "ABC-123",
    "012345678905",
    "Widget 24-port managed switch",
    "7HW456",
    "XYZ-9",
    "RSL-77812",
    "Deliver to loading dock B. Call 30 minutes before arrival.",
];

/// The sample webhook (`samples/ingram-po-webhook.json`) as PO `po_number` under event
/// `event_id`, its other values varied by `seed`.
pub fn webhook(seed: u64, event_id: &str, po_number: &str) -> String {
    let mut raw = include_str!("../../samples/ingram-po-webhook.json")
        .replace("N01CIB9VVFYKR9J6ZW", event_id)
        .replace("IM-PO-1001", po_number);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ";
    for v in VARYING {
        let new: String = (0..v.chars().count())
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
            .collect();
        raw = raw.replace(&format!("\"{v}\""), &format!("\"{}\"", new.trim_end()));
    }
    raw
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_seed_gives_another_valid_webhook() {
        let a = super::webhook(1, "E-1", "P-1");
        let b = super::webhook(2, "E-2", "P-2");
        assert_ne!(a, b);
        assert_eq!(a, super::webhook(1, "E-1", "P-1"));
        assert!(!a.contains("Acme Corp") && a.contains("\"P-1\""));
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        let m = crate::mapping::Mapping::builtin();
        let po = crate::ingram::order::decode(&v, &m.webhook)
            .unwrap()
            .orders
            .remove(0);
        assert_eq!(po.po_number, "P-1");
        assert_eq!(po.lines.len(), 2);
    }
}
