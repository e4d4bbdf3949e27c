//! Tree names and key encodings. Queue keys are big-endian `u64`s so that iteration order is
//! arrival order; compound keys join parts with a 0x00 byte, which no part contains.

use super::records::Lifecycle;

pub const EVENTS: &str = "events";
pub const ORDERS: &str = "orders";
pub const REVIEW: &str = "review";
pub const OUTBOX_QUEUE: &str = "outbox_queue";
pub const COUNTERS: &str = "counters";
pub const INTERCHANGES: &str = "interchanges";
pub const JOBS: &str = "jobs";
pub const DEAD: &str = "dead";
pub const FILE_QUEUE: &str = "file_queue";
pub const GS06_INDEX: &str = "gs06_index";
/// 850s written and still without a 997 (or TA1) from the ERP, by when they were written.
pub const AWAITING_997: &str = "awaiting_997";
/// POs whose 850 the ERP refused (997 `R`, TA1 `R`).
pub const ERP_REJECTED: &str = "erp_rejected";
/// Every stored PO by when it was received: `status --since` reads a range of it.
pub const RECEIVED: &str = "received";

/// Every stored PO by lifecycle, then by when it was received: `status --state` and the
/// console's state filter read one range of it.
pub const STATES: &str = "states";
/// Marker in `counters`: the state index was built from the orders.
/// (v2: the `finished` and `closed` lifecycles, and each PO's count of pending calls, are
/// derived once from the orders, jobs and dead letters.)
pub const STATES_BUILT: &[u8] = b"index\0built\0states\0v2";

/// `state code, received at (Unix ms, big-endian) \0 po` (the code: [`Lifecycle::code`]).
pub fn state_key(lifecycle: Lifecycle, received_ms: u64, po: &str) -> Vec<u8> {
    let mut k = vec![lifecycle.code()];
    k.extend_from_slice(&awaiting_key(received_ms, po));
    k
}

/// The 855s and 856s Ingram accepted, per PO: `po \0 job id (big-endian)`.
pub const DOCUMENTS: &str = "documents";

/// `po \0 job id`: a PO's documents are one prefix, in the order their jobs were made.
pub fn document_key(po: &str, job_id: u64) -> Vec<u8> {
    let mut k = document_prefix(po);
    k.extend_from_slice(&job_id.to_be_bytes());
    k
}

/// `po \0`.
pub fn document_prefix(po: &str) -> Vec<u8> {
    let mut k = po.as_bytes().to_vec();
    k.push(0);
    k
}

/// What outlives a pruned PO, compactly and for the life of the store: its event id and PO
/// number (with the payload hash), so a redelivery is always recognised.
pub const DEDUPE: &str = "dedupe";
/// `counters` key: how many POs retention pruned.
pub const PRUNED: &[u8] = b"pruned\0orders";

/// `e \0 event id` in `dedupe`; the value is the received time (Unix ms, big-endian).
pub fn dedupe_event_key(event_id: &str) -> Vec<u8> {
    join(&["e", event_id])
}

/// `p \0 po` in `dedupe`; the value is the received time (Unix ms, big-endian) and the hash.
pub fn dedupe_po_key(po: &str) -> Vec<u8> {
    join(&["p", po])
}

/// Marker in `counters`: the two indexes above were built from the orders.
pub const INDEXES_BUILT: &[u8] = b"index\0built\0v1";

/// `written at (Unix ms, big-endian) \0 po`: iteration order is the order 850s were written.
pub fn awaiting_key(written_ms: u64, po: &str) -> Vec<u8> {
    let mut k = written_ms.to_be_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(po.as_bytes());
    k
}

/// `ISA05 \0 ISA06 \0 ISA07 \0 ISA08 \0 ISA13` (ids trimmed, ISA13 as a number).
pub fn interchange_key(parts: [&str; 5]) -> Vec<u8> {
    join(&parts)
}

/// `file \0 claimed name \0 content hash`: a rejected file already answered with a 997.
pub fn file_key(claimed_name: &str, hash: &str) -> Vec<u8> {
    join(&["file", claimed_name, hash])
}

/// `pair \0 gs06`: which PO an 850 group number belongs to.
pub fn gs06_key(pair: &str, gs06: u32) -> Vec<u8> {
    join(&[pair, &gs06.to_string()])
}

/// `kind \0 pair`, e.g. `isa13 \0 ZZ:INGRAMMICRO/ZZ:VENDORERP`.
pub fn counter_key(kind: &str, pair: &str) -> Vec<u8> {
    join(&[kind, pair])
}

/// `po \0 event id`.
pub fn review_key(po: &str, event_id: &str) -> Vec<u8> {
    join(&[po, event_id])
}

fn join(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

pub fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}
