//! Persisted record types. Each carries a `schema_version`; none of them reuses a wire DTO or an
//! X12 type (serialization is a boundary). Stored as JSON so an operator can read a dump.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::CallKind;
use crate::domain::PurchaseOrder;

pub const SCHEMA_VERSION: u32 = 1;

/// A webhook event as received: the audit copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub schema_version: u32,
    pub event_id: String,
    pub received_at: String,
    pub headers: Vec<(String, String)>,
    /// The raw body (validated JSON, hence UTF-8).
    pub raw_body: String,
    pub po_numbers: Vec<String>,
}

/// Control numbers and file name of one 850 interchange, fixed before the file is written so a
/// retry after a crash writes the identical bytes under the identical name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope850 {
    pub isa13: u32,
    pub gs06: u32,
    pub st02: u32,
    /// RFC 3339 UTC instant the envelope dates (ISA09/10, GS04/05) come from.
    pub created_at: String,
    pub file_name: String,
}

/// Where the PO's 850 stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outbound850 {
    /// Received; waiting for the outbox worker.
    Pending,
    /// Control numbers allocated; the file may or may not be in the outbox yet.
    Allocated { envelope: Envelope850 },
    /// The file is in the outbox (and archived).
    Written {
        envelope: Envelope850,
        written_at: String,
    },
}

/// One entry of a PO's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: String,
    pub what: String,
}

/// Everything the bridge knows about one Ingram PO.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRecord {
    pub schema_version: u32,
    /// The account the PO came through (records from before accounts: `default`).
    #[serde(default = "default_account")]
    pub account: String,
    pub po_number: String,
    pub event_id: String,
    pub received_at: String,
    /// SHA-256 of the PO's canonical JSON: a re-sent PO with another hash is held for review.
    pub payload_hash: String,
    pub order: PurchaseOrder,
    pub outbound: Outbound850,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    #[serde(default)]
    pub inbound: InboundProgress,
}

/// Where a PO stands (`status`, the console, the state index), each shown as one word
/// ([`Lifecycle::as_str`]). Each has a one-byte code in the state index ([`Lifecycle::code`]):
/// its place in [`Lifecycle::ALL`], from 1, fixed for the life of a store. `finished` and
/// `closed` are the only two a PO leaves the store from (retention); their place at the end
/// keeps the codes of the older ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lifecycle {
    /// `received`: the 850 is not written yet.
    Received,
    /// `850_written`: in the outbox, no answer from the ERP yet.
    Written850,
    /// `997_received`: the ERP accepted the 850; no 855 delivered yet.
    Received997,
    /// `855_sent`: the PO Response is delivered; no 856 yet.
    Sent855,
    /// `856_sent`: at least one PO Status is delivered; not finished.
    Sent856,
    /// `997_rejected`: the ERP's 997 refused the 850.
    Rejected997,
    /// `ta1_rejected`: the ERP's TA1 refused the 850's interchange.
    RejectedTa1,
    /// `finished`: nothing left to wait for.
    Finished,
    /// `closed`: closed by an operator.
    Closed,
}

impl Lifecycle {
    /// Every lifecycle, in code order.
    pub const ALL: [Lifecycle; 9] = [
        Lifecycle::Received,
        Lifecycle::Written850,
        Lifecycle::Received997,
        Lifecycle::Sent855,
        Lifecycle::Sent856,
        Lifecycle::Rejected997,
        Lifecycle::RejectedTa1,
        Lifecycle::Finished,
        Lifecycle::Closed,
    ];

    /// The word `status`, the console and operators use.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Received => "received",
            Lifecycle::Written850 => "850_written",
            Lifecycle::Received997 => "997_received",
            Lifecycle::Sent855 => "855_sent",
            Lifecycle::Sent856 => "856_sent",
            Lifecycle::Rejected997 => "997_rejected",
            Lifecycle::RejectedTa1 => "ta1_rejected",
            Lifecycle::Finished => "finished",
            Lifecycle::Closed => "closed",
        }
    }

    /// The one-byte code in the state index: the place in [`Lifecycle::ALL`], from 1. Stored:
    /// never renumber.
    pub fn code(self) -> u8 {
        match self {
            Lifecycle::Received => 1,
            Lifecycle::Written850 => 2,
            Lifecycle::Received997 => 3,
            Lifecycle::Sent855 => 4,
            Lifecycle::Sent856 => 5,
            Lifecycle::Rejected997 => 6,
            Lifecycle::RejectedTa1 => 7,
            Lifecycle::Finished => 8,
            Lifecycle::Closed => 9,
        }
    }

    /// The words, comma-separated (for messages).
    pub fn words() -> String {
        Lifecycle::ALL.map(Lifecycle::as_str).join(", ")
    }
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that names no [`Lifecycle`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state {word:?}; use one of {}", Lifecycle::words())]
pub struct UnknownLifecycle {
    pub word: String,
}

impl std::str::FromStr for Lifecycle {
    type Err = UnknownLifecycle;

    fn from_str(word: &str) -> Result<Lifecycle, UnknownLifecycle> {
        Lifecycle::ALL
            .into_iter()
            .find(|l| l.as_str() == word)
            .ok_or_else(|| UnknownLifecycle {
                word: word.to_string(),
            })
    }
}

/// Why a PO is still open: the first thing it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Open {
    /// The 850 is not in the outbox yet.
    No850,
    /// The ERP has not answered the 850 with a 997.
    No997,
    /// The ERP refused the 850 (997 or TA1).
    Rejected,
    /// Calls to Ingram for it are queued or dead-lettered.
    CallsPending { calls: u32 },
    /// No PO Response (855) delivered to Ingram yet.
    No855,
    /// This line has not shipped in full (856s delivered so far).
    NotShipped { line: String },
}

impl std::fmt::Display for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Open::No850 => f.write_str("its 850 is not written yet"),
            Open::No997 => f.write_str("no 997 from the ERP for its 850"),
            Open::Rejected => f.write_str("the ERP rejected its 850"),
            Open::CallsPending { calls } => {
                write!(f, "{calls} call(s) to Ingram queued or dead-lettered")
            }
            Open::No855 => f.write_str("no 855 delivered to Ingram"),
            Open::NotShipped { line } => write!(f, "line {line} not shipped in full"),
        }
    }
}

impl OrderRecord {
    /// The PO's lifecycle.
    pub fn lifecycle(&self) -> Lifecycle {
        let o = self;
        if o.inbound.closed.is_some() {
            Lifecycle::Closed
        } else if o.inbound.erp_997 == Some(ErpAck::InterchangeRejected) {
            Lifecycle::RejectedTa1
        } else if o.inbound.erp_997.is_some_and(ErpAck::is_rejection) {
            Lifecycle::Rejected997
        } else if o.open(true).is_none() {
            Lifecycle::Finished
        } else if o.inbound.statuses_sent > 0 {
            Lifecycle::Sent856
        } else if o.inbound.response_sent_at.is_some() {
            Lifecycle::Sent855
        } else if o.inbound.erp_997.is_some() {
            Lifecycle::Received997
        } else if matches!(o.outbound, Outbound850::Written { .. }) {
            Lifecycle::Written850
        } else {
            Lifecycle::Received
        }
    }
}

impl OrderRecord {
    /// The store key of this PO: its number in its account (see [`crate::domain::account`]).
    pub fn key(&self) -> String {
        crate::domain::po_key(&self.account, &self.po_number)
    }

    /// The store key of the event it came with (event ids are the account's).
    pub fn event_key(&self) -> String {
        crate::domain::po_key(&self.account, &self.event_id)
    }

    /// For people: `PO`, or `account/PO` outside the account `default`.
    pub fn shown(&self) -> String {
        crate::domain::PoRef::new(&self.account, &self.po_number).to_string()
    }
}

impl OrderRecord {
    /// What the PO still waits for, `None` once it is finished: its 850 written and accepted by
    /// the ERP's 997 (unless `expect_997` is false: the ERP sends none), its 855 delivered to
    /// Ingram, and every line shipped in full by delivered 856s. A PO an operator closed is
    /// finished whatever it waited for.
    pub fn open(&self, expect_997: bool) -> Option<Open> {
        if self.inbound.closed.is_some() {
            return None;
        }
        if !matches!(self.outbound, Outbound850::Written { .. }) {
            return Some(Open::No850);
        }
        match self.inbound.erp_997 {
            Some(a) if a.is_rejection() => return Some(Open::Rejected),
            Some(ErpAck::Accepted | ErpAck::AcceptedWithErrors) => {}
            _ if expect_997 => return Some(Open::No997),
            _ => {}
        }
        if self.inbound.calls_pending > 0 {
            return Some(Open::CallsPending {
                calls: self.inbound.calls_pending,
            });
        }
        if self.inbound.response_sent_at.is_none() {
            return Some(Open::No855);
        }
        self.order
            .lines
            .iter()
            .find(|l| {
                self.inbound
                    .shipped
                    .get(&l.ingram_line_number)
                    .copied()
                    .unwrap_or(0)
                    < l.quantity
            })
            .map(|l| Open::NotShipped {
                line: l.ingram_line_number.clone(),
            })
    }
}

/// An operator closed the PO (`edi-bridge close`): it counts as finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub at: String,
    pub reason: String,
}

/// What the ERP answered to our 850: its 997 for the 850's group, or its TA1 for the 850's
/// interchange. Stored as the snake_case names (`accepted`, `accepted_with_errors` and
/// `rejected` are the strings stores written before the enum hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErpAck {
    /// 997 AK5 (or AK9) `A`.
    Accepted,
    /// 997 `E`: accepted, errors noted.
    AcceptedWithErrors,
    /// 997 `R` or any other rejection code.
    Rejected,
    /// TA1 TA104 `A`.
    InterchangeAccepted,
    /// TA1 TA104 `E`.
    InterchangeAcceptedWithErrors,
    /// TA1 TA104 `R`: the ERP refused the whole interchange.
    InterchangeRejected,
}

impl ErpAck {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErpAck::Accepted => "accepted",
            ErpAck::AcceptedWithErrors => "accepted_with_errors",
            ErpAck::Rejected => "rejected",
            ErpAck::InterchangeAccepted => "interchange_accepted",
            ErpAck::InterchangeAcceptedWithErrors => "interchange_accepted_with_errors",
            ErpAck::InterchangeRejected => "interchange_rejected",
        }
    }

    /// The ERP refused our 850 (by 997 or TA1).
    pub fn is_rejection(self) -> bool {
        matches!(self, ErpAck::Rejected | ErpAck::InterchangeRejected)
    }

    /// From a TA1 rather than a 997.
    pub fn is_interchange(self) -> bool {
        matches!(
            self,
            ErpAck::InterchangeAccepted
                | ErpAck::InterchangeAcceptedWithErrors
                | ErpAck::InterchangeRejected
        )
    }
}

/// The ERP's 997 (or TA1) for one of our 850s, as an inbound file carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erp997 {
    /// The outbound partner pair whose GS06 numbering it follows.
    pub pair: String,
    /// The GS06 of the 850 it answers (a TA1's: the group of the 850 interchange it names).
    pub gs06: u32,
    pub outcome: ErpAck,
    /// Appended to the PO's history line: empty, or `; ` and the codes and segment errors.
    pub detail: String,
}

impl Erp997 {
    pub fn new(
        pair: impl Into<String>,
        gs06: u32,
        outcome: ErpAck,
        detail: impl Into<String>,
    ) -> Erp997 {
        Erp997 {
            pair: pair.into(),
            gs06,
            outcome,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for ErpAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What came back from the ERP for a PO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundProgress {
    /// The ERP's 997 (or TA1) for our 850.
    pub erp_997: Option<ErpAck>,
    /// When Ingram accepted the PO Response (855).
    pub response_sent_at: Option<String>,
    /// PO Status calls (856) Ingram accepted.
    pub statuses_sent: u32,
    /// Quantity shipped so far per Ingram line number (all 856s parsed).
    pub shipped: BTreeMap<String, u64>,
    /// Set when an operator closed the PO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
    /// Calls for this PO queued or dead-lettered (not yet accepted by Ingram): kept by the
    /// store in the transactions that add and complete them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calls_pending: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An API call waiting for Ingram to accept it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub schema_version: u32,
    pub id: u64,
    pub po: String,
    pub kind: CallKind,
    /// Sent as IM-CorrelationID on every attempt of this job.
    pub correlation_id: String,
    pub path: String,
    /// The canonical body (JSON). What is sent is rendered from it at each attempt by the
    /// mapping's body program, so a corrected program applies to a `retry`.
    pub body: String,
    /// The segments of the transaction set the job came from, as arrays of elements (ID
    /// first): the program's `$segments`. Empty for jobs stored before programs existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Vec<String>>,
    pub created_at: String,
    /// Inbox file and control numbers it came from.
    pub source: String,
    /// The bridge never received this PO's webhook.
    pub unknown_po: bool,
    pub attempts: u32,
    /// Unix milliseconds before which the job is not tried again.
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
}

/// An 855 or 856 whose call Ingram accepted: what the ERP sent and what Ingram answered, kept
/// with the PO (and pruned with it) for its page in the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub kind: CallKind,
    /// Inbox file and control numbers it came from.
    pub source: String,
    /// The transaction set's segments (ID first).
    pub segments: Vec<Vec<String>>,
    pub path: String,
    /// The canonical body of the call.
    pub body: String,
    pub correlation_id: String,
    /// When Ingram accepted it, and its answer.
    pub accepted_at: String,
    pub answer: String,
}

/// A job Ingram refused for good (a 4xx other than 401/408/429), kept for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadRecord {
    pub job: JobRecord,
    pub reason: String,
    pub at: String,
}

/// An inbound interchange already processed (duplicate detection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterchangeRecord {
    pub claimed_file: String,
    pub received_at: String,
}

/// A prepared file for the outbox (a 997), written by the outbox worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub file_name: String,
    pub content: String,
    pub what: String,
    /// The account whose outbox it goes to (records from before accounts: `default`).
    #[serde(default = "default_account")]
    pub account: String,
}

/// The account of a record written before accounts existed.
pub fn default_account() -> String {
    crate::domain::DEFAULT_ACCOUNT.to_owned()
}

/// A PO re-sent under a new event id with a different payload, kept for an operator to review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub schema_version: u32,
    pub po_number: String,
    pub event_id: String,
    pub received_at: String,
    pub payload_hash: String,
    pub order: PurchaseOrder,
}

#[cfg(test)]
mod erp_ack_tests {
    use super::{ErpAck, InboundProgress};

    #[test]
    fn stores_written_with_the_old_strings_still_load() {
        for (old, want) in [
            ("accepted", ErpAck::Accepted),
            ("accepted_with_errors", ErpAck::AcceptedWithErrors),
            ("rejected", ErpAck::Rejected),
        ] {
            let json = format!(
                r#"{{"erp_997":"{old}","response_sent_at":null,"statuses_sent":0,"shipped":{{}}}}"#
            );
            let p: InboundProgress = serde_json::from_str(&json).expect(old);
            assert_eq!(p.erp_997, Some(want));
            assert_eq!(serde_json::to_string(&want).unwrap(), format!("\"{old}\""));
            assert_eq!(want.as_str(), old);
        }
        let ta1: ErpAck = serde_json::from_str("\"interchange_rejected\"").unwrap();
        assert!(ta1.is_rejection() && ta1.is_interchange());
        assert_eq!(ta1.as_str(), "interchange_rejected");
    }
}

#[cfg(test)]
mod lifecycle_tests {
    use super::Lifecycle;

    /// The words and the state-index codes are stored and typed by operators: exactly the
    /// ones stores and scripts written before the enum hold.
    #[test]
    fn the_words_and_codes_are_the_ones_stores_hold() {
        let before = [
            "received",
            "850_written",
            "997_received",
            "855_sent",
            "856_sent",
            "997_rejected",
            "ta1_rejected",
            "finished",
            "closed",
        ];
        for (i, (l, word)) in Lifecycle::ALL.into_iter().zip(before).enumerate() {
            assert_eq!(l.as_str(), word);
            assert_eq!(l.to_string(), word);
            assert_eq!(l.code(), i as u8 + 1, "{word}");
            assert_eq!(word.parse::<Lifecycle>(), Ok(l));
        }
        let e = "nonsense".parse::<Lifecycle>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown state \"nonsense\"; use one of received, 850_written, 997_received, 855_sent, 856_sent, 997_rejected, ta1_rejected, finished, closed"
        );
        assert!("Received".parse::<Lifecycle>().is_err(), "exact words only");
    }
}
