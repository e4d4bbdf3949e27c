//! Sans-IO X12 codec: a tolerant streaming reader with envelope validation and positioned
//! diagnostics, a strict writer, typed views of the 850, 855, 856 and 997 transaction sets and
//! of the TA1 segment, and the segment dictionary that decides which IDs are "unknown".
//!
//! Invariants: no IO, no async, no imports from the rest of the crate, never panics on input.

mod common;
mod dictionary;
mod envelope;
mod error;
mod reader;
mod segment;
mod ta1;
mod ts850;
mod ts855;
mod ts856;
mod ts997;
mod writer;

#[cfg(test)]
mod tests;

pub use common::{Contact, Dtm, Party, ProductId, Ref};
pub use envelope::{
    Document, Group, GsHeader, Interchange, IsaHeader, ReadEvent, ReadOptions, Transaction,
};
pub use error::{Diagnostic, DiagnosticCode, Position, Severity};
pub use reader::{read, Reader};
pub use segment::{Delimiters, Segment};
pub use ta1::Ta1;
pub use ts850::{Fob, Line, Note, Po850, Td5, Terms};
pub use ts855::{Ack855, AckDetail, AckLine};
pub use ts856::{Asn856, HlNode, Lin, Man, Prf, Sn1, Td1};
pub use ts997::{Ack997, ElementError, SegmentError, SetAck};
pub use writer::{
    fit_problem, identifier_problem, max_len, min_len, number_problem, padding, sanitize, write,
    written, OutElement, OutGroup, OutSegment, OutTransaction, Padding, Version, WriteError,
    WriteOptions, CODES, IDENTIFIERS, NUMERIC,
};
