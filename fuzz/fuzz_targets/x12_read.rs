//! Fuzz target: `read` plus every typed parser and the 997 builder must never panic.
#![no_main]

use edi_bridge::x12::{read, Ack855, Ack997, Asn856, Po850, ReadOptions, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doc = read(data, &ReadOptions::default());
    for d in &doc.diagnostics {
        let _ = d.to_string();
    }
    for ic in &doc.interchanges {
        for g in &ic.groups {
            let _ = Ack997::for_group(g, &doc.diagnostics, Version::V4010);
            for t in &g.transactions {
                let _ = Po850::parse(t);
                let _ = Ack855::parse(t);
                let (asn, _) = Asn856::parse(t);
                for i in 0..asn.nodes.len() {
                    let _ = asn.ancestor(i, "O");
                }
                let _ = Ack997::parse(t);
            }
        }
    }
});
