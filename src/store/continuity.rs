//! What the store says about the 850s it has written, for the check that it has not gone
//! backwards (the top-level `continuity` module): its control-number counters per interchange pair, whether
//! it knows a PO as written, and the repair that adopts what the archive proves was written
//! (counters raised past it; a PO the store lost is remembered as written, so a redelivery is
//! never a second 850).

use sled::Transactional;

use super::records::{Envelope850, HistoryEntry, OrderRecord, Outbound850};
use super::update::OrderTx;
use super::{keys, parse, Store, StoreError};

/// The last control numbers the store handed out for one pair (0: none yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub isa13: u64,
    pub gs06: u64,
    pub st02: u64,
}

/// What the store knows of a PO whose 850 was found in the outbox or the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// Stored with this 850 envelope (allocated or written).
    Written { isa13: u32 },
    /// Stored, but its 850 is still to be written: it would be written again.
    Pending,
    /// Pruned by retention: its number is remembered, a redelivery is a duplicate.
    Remembered,
    /// Not known at all: a redelivery would be a new PO.
    Unknown,
}

/// What adopting an archived 850 changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// The store already knew it as written: nothing changed.
    Nothing,
    /// The stored PO is now written with the archive's envelope and no longer queued.
    MarkedWritten,
    /// The store had lost the PO: its number is remembered (a redelivery is held for review).
    Remembered,
}

impl Store {
    /// The counters for `pair` (`ISA05:ISA06/ISA07:ISA08`).
    pub fn counters(&self, pair: &str) -> Result<Counters, StoreError> {
        let i = self.inner()?;
        let get = |kind: &str| -> Result<u64, StoreError> {
            Ok(i.counters
                .get(keys::counter_key(kind, pair))?
                .and_then(|b| keys::decode_u64(&b))
                .unwrap_or(0))
        };
        Ok(Counters {
            isa13: get("isa13")?,
            gs06: get("gs06")?,
            st02: get("st02")?,
        })
    }

    /// Raises the counters for `pair` to at least `to` (never lowers one).
    pub fn raise_counters(&self, pair: &str, to: Counters) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        i.counters.transaction(|counters| {
            for (kind, at_least) in [("isa13", to.isa13), ("gs06", to.gs06), ("st02", to.st02)] {
                let key = keys::counter_key(kind, pair);
                let now = counters
                    .get(&key)?
                    .and_then(|b| keys::decode_u64(&b))
                    .unwrap_or(0);
                if at_least > now {
                    counters.insert(key, &at_least.to_be_bytes())?;
                }
            }
            Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?;
        Ok(())
    }

    /// What the store knows of `po`'s 850.
    pub fn known_850(&self, po: &str) -> Result<Known, StoreError> {
        let i = self.inner()?;
        if let Some(b) = i.orders.get(po.as_bytes())? {
            let rec: OrderRecord = parse(po.as_bytes(), &b)?;
            return Ok(match &rec.outbound {
                Outbound850::Pending => Known::Pending,
                Outbound850::Allocated { envelope } | Outbound850::Written { envelope, .. } => {
                    Known::Written {
                        isa13: envelope.isa13,
                    }
                }
            });
        }
        Ok(if i.dedupe.contains_key(keys::dedupe_po_key(po))? {
            Known::Remembered
        } else {
            Known::Unknown
        })
    }

    /// Records that the archive proves `po`'s 850 was written with `envelope` (for `pair`).
    /// A stored PO still pending is marked written (and leaves the 850 queue); a PO the store
    /// does not know is remembered by number, with a payload hash no webhook can match, so a
    /// redelivery is held for review instead of written again.
    pub fn adopt_850(
        &self,
        po: &str,
        pair: &str,
        envelope: &Envelope850,
        at: &str,
    ) -> Result<Adopted, StoreError> {
        let (i, _w) = self.writer()?;
        let queued: Vec<sled::IVec> = i
            .outbox_queue
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, v)| v.as_ref() == po.as_bytes())
            .map(|(k, _)| k)
            .collect();
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.outbox_queue,
                &i.dedupe,
                &i.gs06_index,
            );
            let out = trees.transaction(|(orders, states, awaiting, rejected, queue, dedupe, index)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                let Some(mut rec) = tx.edit(po)? else {
                    if dedupe.get(keys::dedupe_po_key(po))?.is_some() {
                        return Ok(Adopted::Nothing);
                    }
                    let mut value = 0u64.to_be_bytes().to_vec();
                    value.extend_from_slice(b"repaired-from-archive");
                    dedupe.insert(keys::dedupe_po_key(po), value)?;
                    return Ok(Adopted::Remembered);
                };
                if matches!(rec.outbound, Outbound850::Written { .. }) {
                    return Ok(Adopted::Nothing);
                }
                rec.history.push(HistoryEntry {
                    at: at.to_string(),
                    what: format!(
                        "850 found written in the archive (ISA13 {} GS06 {}, file {}) after the store lost it: marked written, not written again",
                        envelope.isa13, envelope.gs06, envelope.file_name
                    ),
                });
                rec.outbound = Outbound850::Written {
                    envelope: envelope.clone(),
                    written_at: at.to_string(),
                };
                index.insert(keys::gs06_key(pair, envelope.gs06), po.as_bytes())?;
                for k in &queued {
                    queue.remove(k)?;
                }
                tx.save(rec)?;
                Ok(Adopted::MarkedWritten)
            })?;
            Ok(out)
        })
    }
}
