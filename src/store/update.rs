//! The one write path of a stored order. Every index derived from an order record (its entry in
//! `states`, in `awaiting_997` while its written 850 waits for the ERP's 997, in `erp_rejected`
//! once the ERP refused it) is computed from the record alone ([`Entries::of`]); a change goes
//! read → mutate → [`OrderTx::save`], which writes the record and moves exactly the entries that
//! changed with it, inside the caller's sled transaction (closures may re-run: [`OrderTx::new`]
//! starts each run afresh). A new PO ([`create`]) and a pruned one ([`OrderTx::remove`]) are the
//! only other writes of the `orders` tree.

use std::ops::{Deref, DerefMut};

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::records::OrderRecord;
use super::{abort, json, keys, parse, rfc3339_ms, written_ms, AwaitingChanges, StoreError};

/// What a step inside a sled transaction returns.
pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The PO's key in the state index.
pub(super) fn state_key(rec: &OrderRecord) -> Vec<u8> {
    keys::state_key(
        rec.lifecycle(),
        rfc3339_ms(&rec.received_at).unwrap_or(0),
        &rec.key(),
    )
}

/// The index entries an order record has, derived from the record alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entries {
    /// Its key in `states`.
    pub state: Vec<u8>,
    /// When its 850 was written (Unix ms), while no 997 or TA1 from the ERP answered it: its
    /// entry in `awaiting_997`.
    pub awaiting: Option<u64>,
    /// The ERP refused its 850: its entry in `erp_rejected`.
    pub rejected: bool,
}

impl Entries {
    pub(super) fn of(rec: &OrderRecord) -> Entries {
        Entries {
            state: state_key(rec),
            awaiting: rec
                .inbound
                .erp_997
                .is_none()
                .then(|| written_ms(rec))
                .flatten(),
            rejected: rec.inbound.erp_997.is_some_and(|a| a.is_rejection()),
        }
    }
}

/// A PO's record read for a change, with the index entries it had when read. Derefs to the
/// record; [`OrderTx::save`] writes it back.
pub(super) struct Edit {
    rec: OrderRecord,
    before: Entries,
}

impl Edit {
    /// The record as changed so far, not written (a change given up).
    pub(super) fn into_record(self) -> OrderRecord {
        self.rec
    }
}

impl Deref for Edit {
    type Target = OrderRecord;
    fn deref(&self) -> &OrderRecord {
        &self.rec
    }
}

impl DerefMut for Edit {
    fn deref_mut(&mut self) -> &mut OrderRecord {
        &mut self.rec
    }
}

/// The trees a change to an order touches inside one transaction: the records and every index
/// derived from them, and the tally of `awaiting_997` changes for [`super::Overdue`].
pub(super) struct OrderTx<'t> {
    orders: &'t TransactionalTree,
    states: &'t TransactionalTree,
    awaiting: &'t TransactionalTree,
    rejected: &'t TransactionalTree,
    changes: &'t AwaitingChanges,
}

impl<'t> OrderTx<'t> {
    /// Made once per run of the transaction's closure: clears what an earlier run tallied.
    pub(super) fn new(
        orders: &'t TransactionalTree,
        states: &'t TransactionalTree,
        awaiting: &'t TransactionalTree,
        rejected: &'t TransactionalTree,
        changes: &'t AwaitingChanges,
    ) -> OrderTx<'t> {
        changes.restart();
        OrderTx {
            orders,
            states,
            awaiting,
            rejected,
            changes,
        }
    }

    /// The PO's record for a change; `None` when the store does not hold it.
    pub(super) fn edit(&self, po: &str) -> TxResult<Option<Edit>> {
        let Some(bytes) = self.orders.get(po.as_bytes())? else {
            return Ok(None);
        };
        let rec: OrderRecord = parse(po.as_bytes(), &bytes).map_err(abort)?;
        let before = Entries::of(&rec);
        Ok(Some(Edit { rec, before }))
    }

    /// Writes the changed record and moves each of its index entries that changed with it.
    /// Returns the record as written.
    pub(super) fn save(&self, edit: Edit) -> TxResult<OrderRecord> {
        let Edit { rec, before } = edit;
        let after = Entries::of(&rec);
        let key = rec.key();
        let po = key.as_str();
        if before.state != after.state {
            self.states.remove(before.state)?;
            self.states.insert(after.state, &[])?;
        }
        if before.awaiting != after.awaiting {
            if let Some(ms) = before.awaiting {
                self.changes.remove(self.awaiting, ms, po)?;
            }
            if let Some(ms) = after.awaiting {
                self.changes.insert(self.awaiting, ms, po)?;
            }
        }
        if before.rejected != after.rejected {
            if after.rejected {
                self.rejected.insert(po.as_bytes(), &[])?;
            } else {
                self.rejected.remove(po.as_bytes())?;
            }
        }
        self.orders.insert(po.as_bytes(), json(&rec))?;
        Ok(rec)
    }

    /// Reads the PO's record, applies `f` and saves it ([`OrderTx::save`]); `None` when the
    /// store does not hold the PO (nothing is written).
    pub(super) fn update<R>(
        &self,
        po: &str,
        f: impl FnOnce(&mut OrderRecord) -> R,
    ) -> TxResult<Option<R>> {
        let Some(mut edit) = self.edit(po)? else {
            return Ok(None);
        };
        let out = f(&mut edit);
        self.save(edit)?;
        Ok(Some(out))
    }

    /// Removes the PO's record (retention) with its entries in every index, `received` too.
    pub(super) fn remove(&self, rec: &OrderRecord, received: &TransactionalTree) -> TxResult<()> {
        let key = rec.key();
        let po = key.as_str();
        self.orders.remove(po.as_bytes())?;
        self.states.remove(state_key(rec))?;
        received.remove(keys::awaiting_key(
            rfc3339_ms(&rec.received_at).unwrap_or(0),
            po,
        ))?;
        if let Some(ms) = written_ms(rec) {
            self.changes.remove(self.awaiting, ms, po)?;
        }
        self.rejected.remove(po.as_bytes())?;
        Ok(())
    }
}

/// Stores a new PO's record (intake) with its entries in `states` and `received`. A new record
/// has no 850 written and no answer from the ERP: no entry in `awaiting_997` or
/// `erp_rejected`. `bytes` is the record encoded ([`json`]): intake encodes it off the
/// committer's thread.
pub(super) fn create(
    orders: &TransactionalTree,
    states: &TransactionalTree,
    received: &TransactionalTree,
    rec: &OrderRecord,
    bytes: &[u8],
) -> TxResult<()> {
    let entries = Entries::of(rec);
    debug_assert!(entries.awaiting.is_none() && !entries.rejected);
    let key = rec.key();
    let po = key.as_str();
    orders.insert(po.as_bytes(), bytes)?;
    let at = rfc3339_ms(&rec.received_at).unwrap_or(0);
    received.insert(keys::awaiting_key(at, po), &[])?;
    states.insert(entries.state, &[])?;
    Ok(())
}
