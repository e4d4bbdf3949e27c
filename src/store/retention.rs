//! Retention and the end of a PO's life: pruning finished POs (remembered forever in `dedupe`),
//! an operator's close, and the open POs older than a cutoff (the `open_pos` alert).

use std::time::Duration;

use sled::Transactional;

use super::records::{self, EventRecord, HistoryEntry, Lifecycle, OrderRecord, Outbound850};
use super::update::OrderTx;
use super::{abort, inbound, keys, parse, rfc3339_ms, Inner, Store, StoreError};

/// Whether the ERP answers each account's 850s with a 997 (the account's `[ack997]
/// expect_from_erp`; false in a shadow run): a PO of an account without one is finished
/// without it. An account not listed expects one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect997 {
    /// The accounts whose ERP sends no 997.
    pub without: std::collections::BTreeSet<String>,
    /// No account's ERP sends one (the single-mapping form, and tests).
    pub none: bool,
}

impl Expect997 {
    /// Whether a PO of `account` waits for a 997.
    pub fn of(&self, account: &str) -> bool {
        !self.none && !self.without.contains(account)
    }

    /// Whether some account's POs may finish without one.
    fn some_without(&self) -> bool {
        self.none || !self.without.is_empty()
    }
}

/// Every account alike: `true`, each waits for a 997; `false`, none does.
impl From<bool> for Expect997 {
    fn from(expect: bool) -> Expect997 {
        Expect997 {
            without: Default::default(),
            none: !expect,
        }
    }
}

/// The lifecycles a PO may be finished in when the ERP sends no 997 (`expect_997` false).
const ENDS_WITHOUT_997: [Lifecycle; 3] = [
    Lifecycle::Written850,
    Lifecycle::Sent855,
    Lifecycle::Sent856,
];

/// A PO retention picked: its record, the bytes it was picked as, its documents' keys.
type PruneCandidate = (OrderRecord, sled::IVec, Vec<sled::IVec>);

/// Open POs older than a cutoff (see [`Store::open_before`]).
#[derive(Debug, Default)]
pub struct OpenPos {
    pub count: usize,
    /// Some of the oldest, with what each waits for.
    pub oldest: Vec<(OrderRecord, records::Open)>,
}

/// What one retention round removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub orders: usize,
}

impl Store {
    /// Retention: removes up to `limit` finished POs received before `now_ms - retention`
    /// (see [`OrderRecord::open`]: 850 written and accepted, or no 997 expected when
    /// `expect_997` is false; 855 delivered; every line shipped; no call queued or
    /// dead-lettered; or closed by an operator), with their documents, GS06 entries and their
    /// webhook event once none of its POs is left. An open PO stays, whatever its age. Each
    /// pruned PO's event id and PO number (with the payload hash) stay in `dedupe` for the life
    /// of the store, so a redelivery is always a duplicate. A PO whose record changed after it
    /// was picked is left for a later round. Their files stay in `archive/`. One transaction
    /// per call: the caller runs it in small batches.
    pub fn prune(
        &self,
        now_ms: u64,
        retention: Duration,
        expect_997: impl Into<Expect997>,
        limit: usize,
    ) -> Result<Pruned, StoreError> {
        let candidates = self.prune_pick(now_ms, retention, &expect_997.into(), limit)?;
        self.prune_picked(&candidates)
    }

    /// The reads of [`Store::prune`]: the finished POs old enough, as they are now.
    pub(super) fn prune_pick(
        &self,
        now_ms: u64,
        retention: Duration,
        expect_997: &Expect997,
        limit: usize,
    ) -> Result<Vec<PruneCandidate>, StoreError> {
        let i = self.inner()?;
        let cutoff = now_ms.saturating_sub(retention.as_millis() as u64);
        // Only finished POs are read: the state index's `finished` and `closed` ranges (and,
        // when the ERP sends no 997, the lifecycles that end without one), received before the
        // cutoff, oldest first.
        let mut lifecycles = vec![Lifecycle::Finished, Lifecycle::Closed];
        if expect_997.some_without() {
            lifecycles.extend(ENDS_WITHOUT_997);
        }
        let mut candidates: Vec<PruneCandidate> = Vec::new();
        'pick: for lifecycle in lifecycles {
            let code = lifecycle.code();
            let mut end = vec![code];
            end.extend_from_slice(&cutoff.to_be_bytes());
            for entry in i.states.range(vec![code]..end) {
                if candidates.len() >= limit {
                    break 'pick;
                }
                let (k, _) = entry?;
                let Some(po) = k.get(10..) else { continue };
                let Some(bytes) = i.orders.get(po)? else {
                    continue;
                };
                let rec: OrderRecord = parse(po, &bytes)?;
                let old = rfc3339_ms(&rec.received_at).is_some_and(|ms| ms < cutoff);
                let expect = expect_997.of(&rec.account);
                if old && rec.open(expect).is_none() && rec.inbound.calls_pending == 0 {
                    let documents = i
                        .documents
                        .scan_prefix(keys::document_prefix(&rec.key()))
                        .keys()
                        .collect::<Result<Vec<_>, _>>()?;
                    candidates.push((rec, bytes, documents));
                }
            }
        }
        Ok(candidates)
    }

    /// The transaction of [`Store::prune`]: removes the picked POs still exactly as picked.
    pub(super) fn prune_picked(&self, candidates: &[PruneCandidate]) -> Result<Pruned, StoreError> {
        let (i, _w) = self.writer()?;
        let pruned = i.tallying_awaiting(|changes| {
            let trees = (
                &i.orders,
                &i.states,
                &i.awaiting_997,
                &i.erp_rejected,
                &i.received,
                &i.events,
                &i.dedupe,
                &i.counters,
                &i.documents,
            );
            let pruned = trees.transaction(
                |(
                    orders,
                    states,
                    awaiting,
                    rejected,
                    received,
                    events,
                    dedupe,
                    counters,
                    documents,
                )| {
                    let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                    let mut pruned = Vec::new();
                    for (rec, picked, docs) in candidates {
                        // Exactly as it was picked, or not at all: a call queued, a 997, a
                        // replay or a close since then is seen at the next round.
                        if orders.get(rec.key().as_bytes())?.as_ref() != Some(picked) {
                            continue;
                        }
                        tx.remove(rec, received)?;
                        for k in docs {
                            documents.remove(k)?;
                        }
                        let received_at = rfc3339_ms(&rec.received_at).unwrap_or(0).to_be_bytes();
                        let mut po_value = received_at.to_vec();
                        po_value.extend_from_slice(rec.payload_hash.as_bytes());
                        dedupe.insert(keys::dedupe_po_key(&rec.key()), po_value)?;
                        dedupe.insert(keys::dedupe_event_key(&rec.event_key()), &received_at)?;
                        if let Some(ev) = events.get(rec.event_key().as_bytes())? {
                            let ev: EventRecord =
                                parse(rec.event_key().as_bytes(), &ev).map_err(abort)?;
                            let mut others = false;
                            for p in ev.po_numbers.iter().filter(|p| **p != rec.po_number) {
                                let key = crate::domain::po_key(&rec.account, p);
                                others |= orders.get(key.as_bytes())?.is_some();
                            }
                            if !others {
                                events.remove(rec.event_key().as_bytes())?;
                            }
                        }
                        pruned.push(rec.clone());
                    }
                    let before = counters
                        .get(keys::PRUNED)?
                        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                        .map_or(0, u64::from_be_bytes);
                    counters.insert(keys::PRUNED, &(before + pruned.len() as u64).to_be_bytes())?;
                    Ok(pruned)
                },
            )?;
            Ok(pruned)
        })?;
        self.prune_after(&i, &pruned)?;
        Ok(Pruned {
            orders: pruned.len(),
        })
    }

    /// What goes with the pruned POs outside the transaction: their GS06 entries and the keys
    /// of the original documents they received.
    fn prune_after(&self, i: &Inner, pruned: &[OrderRecord]) -> Result<(), StoreError> {
        // The pruned POs' GS06 entries (which PO a 997 answers), for every sender/receiver pair
        // that has numbered 850s; each goes only if it still names that PO.
        let pairs: Vec<String> = i
            .counters
            .scan_prefix(keys::counter_key("gs06", ""))
            .keys()
            .map(|k| k.map(|k| String::from_utf8_lossy(&k[5..]).into_owned()))
            .collect::<Result<_, _>>()?;
        // And the keys of the originals (855 BAK03, 856 BSN02) it received, which tell a
        // document sent twice: they go with the PO.
        let originals = i.db.open_tree(inbound::INBOUND)?;
        for rec in pruned {
            for k in originals
                .scan_prefix(inbound::original_prefix(&rec.key()))
                .keys()
            {
                originals.remove(k?)?;
            }
        }
        for rec in pruned {
            let Outbound850::Written { envelope, .. } = &rec.outbound else {
                continue;
            };
            for pair in &pairs {
                let _ = i.gs06_index.compare_and_swap(
                    keys::gs06_key(pair, envelope.gs06),
                    Some(rec.key().as_bytes()),
                    None::<&[u8]>,
                )?;
            }
        }
        Ok(())
    }

    /// Marks a PO closed by an operator: it counts as finished (retention may prune it once
    /// it is old enough and no call for it is queued or dead-lettered). Returns the record.
    pub fn close(&self, po: &str, reason: &str, at: &str) -> Result<OrderRecord, StoreError> {
        let (i, _w) = self.writer()?;
        i.tallying_awaiting(|changes| {
            let trees = (&i.orders, &i.states, &i.awaiting_997, &i.erp_rejected);
            let rec = trees.transaction(|(orders, states, awaiting, rejected)| {
                let tx = OrderTx::new(orders, states, awaiting, rejected, changes);
                let Some(mut rec) = tx.edit(po)? else {
                    return Err(abort(StoreError::NoSuchOrder(po.to_string())));
                };
                if rec.inbound.closed.is_some() {
                    return Ok(rec.into_record());
                }
                let open = rec.open(true).map_or("nothing".into(), |o| o.to_string());
                rec.inbound.closed = Some(records::Closed {
                    at: at.to_string(),
                    reason: reason.to_string(),
                });
                rec.history.push(HistoryEntry {
                    at: at.to_string(),
                    what: format!("closed by an operator ({reason}); it was waiting for: {open}"),
                });
                tx.save(rec)
            })?;
            Ok(rec)
        })
    }

    /// Open POs (not finished, not closed) received before `cutoff_ms`: how many, and the
    /// oldest of each lifecycle (at most `limit` each) with what each waits for. Read through
    /// the state index: keys are counted, and records read only for the sample (and, when the
    /// ERP sends no 997, for the lifecycles that may end without one).
    pub fn open_before(
        &self,
        cutoff_ms: u64,
        expect_997: impl Into<Expect997>,
        limit: usize,
    ) -> Result<OpenPos, StoreError> {
        let expect_997 = expect_997.into();
        let i = self.inner()?;
        let mut out = OpenPos::default();
        for lifecycle in Lifecycle::ALL {
            if matches!(lifecycle, Lifecycle::Finished | Lifecycle::Closed) {
                continue;
            }
            let may_be_finished =
                expect_997.some_without() && ENDS_WITHOUT_997.contains(&lifecycle);
            let code = lifecycle.code();
            let mut end = vec![code];
            end.extend_from_slice(&cutoff_ms.to_be_bytes());
            let mut sampled = 0;
            for entry in i.states.range(vec![code]..end) {
                let (k, _) = entry?;
                if !may_be_finished && sampled >= limit {
                    out.count += 1;
                    continue;
                }
                let Some(po) = k.get(10..) else { continue };
                let Some(bytes) = i.orders.get(po)? else {
                    continue;
                };
                let rec: OrderRecord = parse(po, &bytes)?;
                if let Some(why) = rec.open(expect_997.of(&rec.account)) {
                    out.count += 1;
                    if sampled < limit {
                        sampled += 1;
                        out.oldest.push((rec, why));
                    }
                }
            }
        }
        out.oldest
            .sort_by_key(|(r, _)| rfc3339_ms(&r.received_at).unwrap_or(0));
        Ok(out)
    }
}
