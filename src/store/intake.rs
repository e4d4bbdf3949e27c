//! Webhook intake: a validated event and its POs written in one transaction (several events
//! share one, in order), each new PO queued for its 850, a repeated PO recognised by its payload
//! hash (a pruned one too, through `dedupe`) and a conflicting one held for review.

use crate::domain::po_key;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;
use tokio::sync::oneshot;

use super::committer::{committer_late, Commit, COMMIT_WAIT};
use super::records::{
    EventRecord, HistoryEntry, OrderRecord, Outbound850, ReviewRecord, SCHEMA_VERSION,
};
use super::{abort, json, keys, parse, payload_hash, update, Store, StoreError};
use crate::domain::PurchaseOrder;

/// A new webhook event, validated and ready to persist.
#[derive(Clone)]
pub struct NewEvent {
    /// The account whose webhook it came through: its POs and event id are that account's.
    pub account: String,
    pub event_id: String,
    pub received_at: String,
    pub headers: Vec<(String, String)>,
    pub raw_body: String,
    pub orders: Vec<PurchaseOrder>,
}

/// What persisting a webhook event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// The event id was seen before: nothing new stored.
    DuplicateEvent,
    /// Stored; `new` POs were queued for an 850; `repeated` were known already (no second 850);
    /// `conflicting` were known with a different payload and are held for review.
    Stored {
        new: Vec<String>,
        repeated: Vec<String>,
        conflicting: Vec<String>,
    },
}

/// A webhook event with what its transaction writes computed beforehand, on the caller's
/// thread: the payload hashes and the encoded event and new-order records (JSON, SHA-256 and
/// zstd are most of an intake's CPU). The committer's single thread then only looks up and
/// inserts, so its rounds stay short while many requests share the cores.
pub struct PreparedEvent {
    ev: NewEvent,
    hashes: Vec<String>,
    event_rec: Vec<u8>,
    /// Each PO's record as a new order, and its encoding (unused when the PO is known).
    new_orders: Vec<(OrderRecord, Vec<u8>)>,
}

impl PreparedEvent {
    pub fn new(ev: NewEvent) -> PreparedEvent {
        let hashes: Vec<String> = ev.orders.iter().map(payload_hash).collect();
        let event_rec = json(&EventRecord {
            schema_version: SCHEMA_VERSION,
            event_id: ev.event_id.clone(),
            received_at: ev.received_at.clone(),
            headers: ev.headers.clone(),
            raw_body: ev.raw_body.clone(),
            po_numbers: ev.orders.iter().map(|o| o.po_number.clone()).collect(),
        });
        let new_orders = ev
            .orders
            .iter()
            .zip(&hashes)
            .map(|(po, hash)| {
                let rec = OrderRecord {
                    schema_version: SCHEMA_VERSION,
                    account: ev.account.clone(),
                    po_number: po.po_number.clone(),
                    event_id: ev.event_id.clone(),
                    received_at: ev.received_at.clone(),
                    payload_hash: hash.clone(),
                    order: po.clone(),
                    outbound: Outbound850::Pending,
                    history: vec![HistoryEntry {
                        at: ev.received_at.clone(),
                        what: format!("webhook received (event {})", &ev.event_id),
                    }],
                    inbound: Default::default(),
                };
                let bytes = json(&rec);
                (rec, bytes)
            })
            .collect();
        PreparedEvent {
            ev,
            hashes,
            event_rec,
            new_orders,
        }
    }
}

impl Store {
    /// Persists a webhook event and its POs and makes them durable: the answer comes after the
    /// flush. Events arriving together share one transaction and one flush. While the store
    /// cannot write, refuses at once (nothing is queued behind a failing disk).
    pub async fn intake(&self, ev: NewEvent) -> Result<Intake, StoreError> {
        if let Some(reason) = self.shared.health.failing_reason() {
            return Err(StoreError::Unavailable(reason));
        }
        let prepared = PreparedEvent::new(ev);
        let (tx, rx) = oneshot::channel();
        self.send(Commit::Intake(Box::new(prepared), tx))?;
        match tokio::time::timeout(COMMIT_WAIT, rx).await {
            Ok(r) => r.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Unavailable(committer_late())),
        }
    }

    /// Persists a webhook event and its POs in one transaction (not yet flushed).
    pub fn record_event(&self, ev: &NewEvent) -> Result<Intake, StoreError> {
        self.record_prepared(&PreparedEvent::new(ev.clone()))
    }

    /// [`Store::record_event`] for an event prepared already.
    pub(super) fn record_prepared(&self, ev: &PreparedEvent) -> Result<Intake, StoreError> {
        let mut out = self.record_events(&[ev])?;
        out.pop().ok_or_else(|| StoreError::Corrupt {
            key: ev.ev.event_id.clone(),
            message: "transaction returned no outcome".into(),
        })
    }

    /// Persists several webhook events in one transaction, in order (a later event sees the
    /// earlier ones: a repeated event id is a duplicate, a repeated PO is repeated or
    /// conflicting). Not yet flushed. One outcome per event.
    pub fn record_events(&self, evs: &[&PreparedEvent]) -> Result<Vec<Intake>, StoreError> {
        let (i, _w) = self.writer()?;
        let mut staged = Vec::with_capacity(evs.len());
        for ev in evs {
            let queue_ids: Vec<u64> = ev
                .ev
                .orders
                .iter()
                .map(|_| i.db.generate_id())
                .collect::<Result<_, _>>()?;
            staged.push((*ev, queue_ids));
        }
        let out = (
            &i.events,
            &i.orders,
            &i.review,
            &i.outbox_queue,
            &i.dedupe,
            &i.received,
            &i.states,
        )
            .transaction(
                |(events, orders, review, queue, dedupe, received, states)| {
                    let mut out = Vec::with_capacity(staged.len());
                    for (ev, queue_ids) in &staged {
                        out.push(stage_event(
                            (events, orders, review, queue, dedupe, received, states),
                            ev,
                            queue_ids,
                        )?);
                    }
                    Ok(out)
                },
            )?;
        Ok(out)
    }
}

/// The trees an intake transaction touches: events, orders, review, outbox queue, dedupe,
/// received, states.
type IntakeTrees<'t> = (
    &'t TransactionalTree,
    &'t TransactionalTree,
    &'t TransactionalTree,
    &'t TransactionalTree,
    &'t TransactionalTree,
    &'t TransactionalTree,
    &'t TransactionalTree,
);

/// One event's part of an intake transaction (see [`Store::record_events`]).
fn stage_event(
    (events, orders, review, queue, dedupe, received, states): IntakeTrees<'_>,
    prepared: &PreparedEvent,
    queue_ids: &[u64],
) -> Result<Intake, ConflictableTransactionError<StoreError>> {
    let ev = &prepared.ev;
    // Event ids and PO numbers are the account's: keyed in it (`domain::account`).
    let event_key = po_key(&ev.account, &ev.event_id);
    if events.get(event_key.as_bytes())?.is_some()
        || dedupe.get(keys::dedupe_event_key(&event_key))?.is_some()
    {
        return Ok(Intake::DuplicateEvent);
    }
    events.insert(event_key.as_bytes(), prepared.event_rec.as_slice())?;
    let (mut new, mut repeated, mut conflicting) = (vec![], vec![], vec![]);
    for (((po, hash), qid), (rec, bytes)) in ev
        .orders
        .iter()
        .zip(&prepared.hashes)
        .zip(queue_ids)
        .zip(&prepared.new_orders)
    {
        let po_key = po_key(&ev.account, &po.po_number);
        let key = po_key.as_bytes();
        // A PO pruned by retention is still known by its hash in `dedupe`.
        let known_hash = match orders.get(key)? {
            Some(bytes) => {
                let existing: OrderRecord = parse(key, &bytes).map_err(abort)?;
                Some(existing.payload_hash)
            }
            None => dedupe
                .get(keys::dedupe_po_key(&po_key))?
                .map(|v| String::from_utf8_lossy(v.get(8..).unwrap_or_default()).into_owned()),
        };
        match known_hash {
            Some(existing_hash) => {
                if &existing_hash == hash {
                    repeated.push(po.po_number.clone());
                } else {
                    review.insert(
                        keys::review_key(&po_key, &event_key),
                        json(&ReviewRecord {
                            schema_version: SCHEMA_VERSION,
                            po_number: po.po_number.clone(),
                            event_id: ev.event_id.clone(),
                            received_at: ev.received_at.clone(),
                            payload_hash: hash.clone(),
                            order: po.clone(),
                        }),
                    )?;
                    conflicting.push(po.po_number.clone());
                }
            }
            None => {
                update::create(orders, states, received, rec, bytes)?;
                queue.insert(&qid.to_be_bytes(), key)?;
                new.push(po.po_number.clone());
            }
        }
    }
    Ok(Intake::Stored {
        new,
        repeated,
        conflicting,
    })
}
