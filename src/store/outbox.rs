//! The 850 queue and control numbers: the outbox worker takes queued POs, fixes each one's
//! envelope (ISA13/GS06/ST02 per sender/receiver pair, consecutive, wrapping at
//! [`super::CONTROL_MAX`]) and file name, then marks them written; an operator's replay puts a PO
//! back. Also the prepared-file queue (997s) the same worker writes.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::records::{Envelope850, FileRecord, HistoryEntry, OrderRecord, Outbound850};
use super::update::OrderTx;
use super::{abort, keys, parse, Store, StoreError, CONTROL_MAX};

impl Store {
    /// Up to `limit` queued 850s, oldest first.
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        let mut out = Vec::new();
        for r in self.inner()?.outbox_queue.iter().take(limit) {
            let (k, v) = r?;
            let id = keys::decode_u64(&k).ok_or_else(|| StoreError::Corrupt {
                key: format!("{k:?}"),
                message: "outbox queue key is not 8 bytes".into(),
            })?;
            out.push((id, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }

    /// Number of 850s waiting to be written.
    pub fn outbox_depth(&self) -> usize {
        self.inner().map_or(0, |i| i.outbox_queue.len())
    }

    /// Gives each PO its 850 envelope, in one transaction: allocates ISA13/GS06/ST02 for the
    /// (sender, receiver) pair (in order: consecutive control numbers) and fixes the file name.
    /// A PO that already has an envelope keeps it (a written one is returned as it is). `None`
    /// for a PO with no record. `file_name` gets the PO number and envelope.
    pub fn allocate_850s(
        &self,
        pos: &[&str],
        pair: &str,
        created_at: &str,
        file_name: impl Fn(&str, &Envelope850) -> String,
    ) -> Result<Vec<Option<OrderRecord>>, StoreError> {
        let (i, _w) = self.writer()?;
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.counters,
                &i.gs06_index,
            );
            let recs =
                trees.transaction(|(orders, states, awaiting, rejected, counters, index)| {
                    let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                    let mut out = Vec::with_capacity(pos.len());
                    for po in pos {
                        let Some(mut rec) = tx.edit(po)? else {
                            out.push(None);
                            continue;
                        };
                        if !matches!(rec.outbound, Outbound850::Pending) {
                            out.push(Some(rec.into_record()));
                            continue;
                        }
                        let mut envelope = Envelope850 {
                            isa13: next_counter(counters, &keys::counter_key("isa13", pair))?,
                            gs06: next_counter(counters, &keys::counter_key("gs06", pair))?,
                            st02: next_counter(counters, &keys::counter_key("st02", pair))?,
                            created_at: created_at.to_string(),
                            file_name: String::new(),
                        };
                        envelope.file_name = file_name(po, &envelope);
                        index.insert(keys::gs06_key(pair, envelope.gs06), po.as_bytes())?;
                        rec.history.push(HistoryEntry {
                            at: created_at.to_string(),
                            what: format!(
                                "850 control numbers ISA13 {} GS06 {} ST02 {:04}, file {}",
                                envelope.isa13, envelope.gs06, envelope.st02, envelope.file_name
                            ),
                        });
                        rec.outbound = Outbound850::Allocated { envelope };
                        out.push(Some(tx.save(rec)?));
                    }
                    Ok(out)
                })?;
            Ok(recs)
        })
    }

    /// Marks the POs' 850s written and removes their queue entries, in one transaction. A PO
    /// whose 850 is not allocated (no record, already written) only loses its queue entry.
    pub fn complete_850s(&self, done: &[(u64, &str)], written_at: &str) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.outbox_queue,
            );
            trees.transaction(|(orders, states, awaiting, rejected, queue)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                for (queue_id, po) in done {
                    if let Some(mut rec) = tx.edit(po)? {
                        if let Outbound850::Allocated { envelope } = &rec.outbound {
                            let envelope = envelope.clone();
                            rec.history.push(HistoryEntry {
                                at: written_at.to_string(),
                                what: format!("850 written: {}", envelope.file_name),
                            });
                            rec.outbound = Outbound850::Written {
                                envelope,
                                written_at: written_at.to_string(),
                            };
                            tx.save(rec)?;
                        }
                    }
                    queue.remove(&queue_id.to_be_bytes())?;
                }
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Puts a PO back in the 850 queue with fresh control numbers (operator `replay`).
    pub fn requeue_850(&self, po: &str, at: &str) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        let qid = i.db.generate_id()?;
        i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.outbox_queue,
            );
            trees.transaction(|(orders, states, awaiting, rejected, queue)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                let replayed = tx.update(po, |rec| {
                    rec.history.push(HistoryEntry {
                        at: at.to_string(),
                        what: "850 replay requested by operator".into(),
                    });
                    rec.outbound = Outbound850::Pending;
                })?;
                if replayed.is_none() {
                    return Err(abort(StoreError::NoSuchOrder(po.to_string())));
                }
                queue.insert(&qid.to_be_bytes(), po.as_bytes())?;
                Ok(())
            })?;
            Ok(())
        })
    }

    /// Which PO our 850 with this GS06 (for the pair) carried.
    pub fn po_for_gs06(&self, pair: &str, gs06: u32) -> Result<Option<String>, StoreError> {
        Ok(self
            .inner()?
            .gs06_index
            .get(keys::gs06_key(pair, gs06))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Allocates ISA13/GS06/ST02 for an outbound document that is not an 850 (a 997).
    pub fn allocate_numbers(&self, pair: &str) -> Result<(u32, u32, u32), StoreError> {
        let (i, _w) = self.writer()?;
        let out = i.counters.transaction(|counters| {
            Ok((
                next_counter(counters, &keys::counter_key("isa13", pair))?,
                next_counter(counters, &keys::counter_key("gs06", pair))?,
                next_counter(counters, &keys::counter_key("st02", pair))?,
            ))
        })?;
        Ok(out)
    }
    /// The oldest prepared file waiting for the outbox.
    pub fn next_file(&self) -> Result<Option<(u64, FileRecord)>, StoreError> {
        match self.inner()?.file_queue.first()? {
            None => Ok(None),
            Some((k, v)) => Ok(Some((keys::decode_u64(&k).unwrap_or(0), parse(&k, &v)?))),
        }
    }

    /// Up to `limit` prepared files waiting for the outbox, oldest first.
    pub fn next_files(&self, limit: usize) -> Result<Vec<(u64, FileRecord)>, StoreError> {
        let mut out = Vec::new();
        for r in self.inner()?.file_queue.iter().take(limit) {
            let (k, v) = r?;
            out.push((keys::decode_u64(&k).unwrap_or(0), parse(&k, &v)?));
        }
        Ok(out)
    }

    /// The prepared file is in the outbox: dequeue it.
    pub fn complete_file(&self, id: u64) -> Result<(), StoreError> {
        self.complete_files(&[id])
    }

    /// These prepared files are in the outbox: dequeue them (one batch).
    pub fn complete_files(&self, ids: &[u64]) -> Result<(), StoreError> {
        let (i, _w) = self.writer()?;
        let mut batch = sled::Batch::default();
        for id in ids {
            batch.remove(&id.to_be_bytes());
        }
        i.file_queue.apply_batch(batch)?;
        Ok(())
    }
}

fn next_counter(
    counters: &TransactionalTree,
    key: &[u8],
) -> Result<u32, ConflictableTransactionError<StoreError>> {
    let current = counters
        .get(key)?
        .and_then(|b| keys::decode_u64(&b))
        .unwrap_or(0);
    let next = if current >= u64::from(CONTROL_MAX) {
        1
    } else {
        current + 1
    };
    counters.insert(key, &next.to_be_bytes())?;
    Ok(next as u32)
}
