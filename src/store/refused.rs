//! Webhook event ids refused for their body, remembered for a day. Ingram signs only the event id,
//! so the signature of a refused request is valid on any other body with the same id: once a
//! signed event was refused (malformed body, a field that cannot be carried), the id is refused
//! again whatever the body, until [`REFUSED_TTL_MS`] after the last refusal. Only requests whose
//! signature verified are recorded (the caller's duty), so nobody without the secret can make a
//! legitimate event id refused.
//!
//! Two trees, written with plain inserts (no transaction: the webhook must not wait out a
//! flush, see the module doc of [`crate::store`]): `refused_events` (event id → record) and
//! `refused_by_time` (big-endian refusal time in ms, 0x00, event id → nothing), which
//! [`Store::prune_refused`] walks oldest first in small batches. A record is durable after the
//! next [`Store::flush`]. A stale index entry (left by a crash or a later refusal of the same id)
//! is dropped by the pruning without touching the newer record.

use serde::{Deserialize, Serialize};

use super::{json, parse, Store, StoreError};
use crate::store::records::SCHEMA_VERSION;

/// How long a refused event id stays refused after its last refusal: a day.
pub const REFUSED_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// Expired refusals removed per [`Store::prune_refused`] call.
pub const PRUNE_BATCH: usize = 64;

const REFUSED: &str = "refused_events";
const REFUSED_BY_TIME: &str = "refused_by_time";

/// The longest reason kept (a refusal message can quote a value of the body).
const MAX_REASON: usize = 300;

/// Why and when a signed event was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEvent {
    pub schema_version: u32,
    pub event_id: String,
    /// Milliseconds since the Unix epoch ([`crate::clock::Clock::now_ms`]).
    pub refused_at_ms: u64,
    /// The field the refusal named (`resource[0].lines[1].unitPrice`).
    pub field: String,
    pub reason: String,
}

fn time_key(at_ms: u64, event_id: &str) -> Vec<u8> {
    let mut k = at_ms.to_be_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(event_id.as_bytes());
    k
}

impl Store {
    fn refused_trees(&self) -> Result<(sled::Tree, sled::Tree), StoreError> {
        let inner = self.inner()?;
        Ok((
            inner.db.open_tree(REFUSED)?,
            inner.db.open_tree(REFUSED_BY_TIME)?,
        ))
    }

    /// Remembers that the signed event `event_id` was refused at `now_ms` (a repeated refusal
    /// starts the day again). Durable after the next flush.
    pub fn remember_refused(
        &self,
        event_id: &str,
        field: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (records, by_time) = self.refused_trees()?;
        let reason = crate::text::clip(reason, MAX_REASON);
        let rec = RefusedEvent {
            schema_version: SCHEMA_VERSION,
            event_id: event_id.to_string(),
            refused_at_ms: now_ms,
            field: field.to_string(),
            reason,
        };
        // Index first: a crash between the two leaves an index entry without a record, which
        // pruning drops; never a record that pruning cannot find.
        by_time.insert(time_key(now_ms, event_id), &[])?;
        if let Some(old) = records.insert(event_id.as_bytes(), json(&rec))? {
            let old: RefusedEvent = parse(event_id.as_bytes(), &old)?;
            if old.refused_at_ms != now_ms {
                by_time.remove(time_key(old.refused_at_ms, event_id))?;
            }
        }
        Ok(())
    }

    /// The refusal of `event_id` still in force at `now_ms`, if any.
    pub fn refused_event(
        &self,
        event_id: &str,
        now_ms: u64,
    ) -> Result<Option<RefusedEvent>, StoreError> {
        let (records, _) = self.refused_trees()?;
        let Some(bytes) = records.get(event_id.as_bytes())? else {
            return Ok(None);
        };
        let rec: RefusedEvent = parse(event_id.as_bytes(), &bytes)?;
        Ok((now_ms < rec.refused_at_ms.saturating_add(REFUSED_TTL_MS)).then_some(rec))
    }

    /// Forgets at most `limit` refusals that expired by `now_ms`, oldest first; how many index
    /// entries it removed. Cheap enough to call on every signed webhook.
    pub fn prune_refused(&self, now_ms: u64, limit: usize) -> Result<usize, StoreError> {
        let (records, by_time) = self.refused_trees()?;
        let cutoff = now_ms.saturating_sub(REFUSED_TTL_MS);
        let mut removed = 0;
        for entry in by_time.iter().take(limit) {
            let (key, _) = entry?;
            let Some(at) = key.get(..8).and_then(super::keys::decode_u64) else {
                by_time.remove(&key)?;
                removed += 1;
                continue;
            };
            if at > cutoff {
                break;
            }
            let event_id = &key[9.min(key.len())..];
            if let Some(bytes) = records.get(event_id)? {
                let rec: RefusedEvent = parse(event_id, &bytes)?;
                if rec.refused_at_ms == at {
                    records.remove(event_id)?;
                }
            }
            by_time.remove(&key)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// How many refused event ids are remembered (expired ones not yet pruned included).
    pub fn refused_count(&self) -> usize {
        self.refused_trees().map(|(r, _)| r.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = REFUSED_TTL_MS;

    #[test]
    fn a_refusal_lasts_a_day_from_the_last_one_and_is_pruned_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0 = 1_800_000_000_000;
        store
            .remember_refused("E1", "resource[0].lines[0].unitPrice", "too long", t0)
            .unwrap();
        let rec = store.refused_event("E1", t0 + 1).unwrap().expect("refused");
        assert_eq!(rec.field, "resource[0].lines[0].unitPrice");
        assert!(store.refused_event("E2", t0).unwrap().is_none());
        assert!(store.refused_event("E1", t0 + DAY - 1).unwrap().is_some());
        assert!(
            store.refused_event("E1", t0 + DAY).unwrap().is_none(),
            "expired"
        );

        // Refused again later: the day starts again, and the old index entry is gone.
        store
            .remember_refused("E1", "$", "again", t0 + 1000)
            .unwrap();
        assert!(store.refused_event("E1", t0 + DAY).unwrap().is_some());
        assert_eq!(store.prune_refused(t0 + DAY, PRUNE_BATCH).unwrap(), 0);

        for i in 0..150u64 {
            store
                .remember_refused(&format!("B{i:03}"), "$", "bad", t0 + 2000 + i)
                .unwrap();
        }
        assert_eq!(store.refused_count(), 151);
        let later = t0 + 2 * DAY;
        assert_eq!(
            store.prune_refused(later, PRUNE_BATCH).unwrap(),
            PRUNE_BATCH
        );
        assert_eq!(store.refused_count(), 151 - PRUNE_BATCH);
        while store.prune_refused(later, PRUNE_BATCH).unwrap() > 0 {}
        assert_eq!(store.refused_count(), 0);
        assert!(store.refused_event("B149", later).unwrap().is_none());
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .remember_refused("E", "$", &"é".repeat(400), 5)
            .unwrap();
        let rec = store.refused_event("E", 6).unwrap().unwrap();
        assert!(rec.reason.len() <= MAX_REASON + '…'.len_utf8());
    }
}
