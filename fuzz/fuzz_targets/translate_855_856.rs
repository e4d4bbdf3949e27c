//! Fuzz target: `read`, the typed 855/856 parsers and then the project's translators
//! (`from_855`, `from_856` with the shipped mapping, with and without a known order) on every
//! transaction set, whatever its ST01: none of it may panic.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use edi_bridge::ingram::from_855::from_855;
use edi_bridge::ingram::from_856::{from_856, OrderView};
use edi_bridge::mapping::Mapping;
use edi_bridge::x12::{read, Ack855, Asn856, Position, ReadOptions};
use libfuzzer_sys::fuzz_target;

fn mapping() -> &'static Mapping {
    static M: OnceLock<Mapping> = OnceLock::new();
    M.get_or_init(Mapping::builtin)
}

fuzz_target!(|data: &[u8]| {
    let doc = read(data, &ReadOptions::default());
    for t in doc.transactions() {
        let pos = Position::default();
        let (ack, _) = Ack855::parse(t);
        let _ = from_855(&ack, &pos, mapping(), "20261121");
        let (asn, _) = Asn856::parse(t);
        let _ = from_856(&asn, &pos, mapping(), &BTreeMap::new());
        // Every PO it names "known", with ordered and shipped quantities, exercises orderStatus.
        let known: BTreeMap<String, OrderView> = asn
            .nodes
            .iter()
            .filter_map(|n| n.prf.as_ref())
            .map(|p| {
                let view = OrderView {
                    ordered: [("1".to_string(), 10), ("2".to_string(), u64::MAX)].into(),
                    line_by_vendor_part: BTreeMap::new(),
                    shipped: [("1".to_string(), u64::MAX)].into(),
                };
                (p.po_number.trim().to_string(), view)
            })
            .collect();
        let _ = from_856(&asn, &pos, mapping(), &known);
    }
});
