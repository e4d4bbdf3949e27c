//! Fuzz target: `read`, then the 855 and 856 translators (`Ack855::parse`, `Asn856::parse` and
//! the HL tree walk) on every transaction set, whatever its ST01, must never panic.
#![no_main]

use edi_bridge::x12::{read, Ack855, Asn856, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doc = read(data, &ReadOptions::default());
    for t in doc.transactions() {
        let (ack, diags) = Ack855::parse(t);
        let _ = (ack.lines.len(), diags.len());
        let (asn, diags) = Asn856::parse(t);
        let _ = diags.len();
        for i in 0..asn.nodes.len() {
            let _ = asn.ancestor(i, "S");
            let _ = asn.ancestor(i, "O");
        }
    }
});
