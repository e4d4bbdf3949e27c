//! Fuzz target: the webhook decoder. Arbitrary bytes that parse as JSON go through
//! `order::event_id` and `order::decode` with the shipped mapping's field names: a refusal is
//! fine, a panic is not.
#![no_main]

use std::sync::OnceLock;

use edi_bridge::mapping::Mapping;
use edi_bridge::ingram::order;
use libfuzzer_sys::fuzz_target;

fn mapping() -> &'static Mapping {
    static M: OnceLock<Mapping> = OnceLock::new();
    M.get_or_init(Mapping::builtin)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = order::event_id(&v);
        if let Ok(event) = order::decode(&v, &mapping().webhook) {
            for po in &event.orders {
                let _ = po.total().to_string();
            }
        }
    }
});
