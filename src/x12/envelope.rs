//! Envelope data types: the ISA/GS headers, the `Document` → `Interchange` → `Group` →
//! `Transaction` tree that `read` builds, the streaming `ReadEvent`s that `Reader` yields, and
//! `ReadOptions`.

use super::error::{Diagnostic, Severity};
use super::segment::{Delimiters, Segment};
use super::ta1::Ta1;
use serde::Serialize;

/// Reader settings.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Delimiters for input without an ISA (bare ST..SE).
    pub default_delimiters: Delimiters,
    /// Segments longer than this (bytes) get a `TooLong` error.
    pub max_segment_len: usize,
    /// Count and control-number mismatches between headers and trailers (SE01, GE01, IEA01;
    /// SE02/ST02, GE02/GS06, IEA02/ISA13) are errors instead of warnings.
    pub strict_envelope: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            default_delimiters: Delimiters::default(),
            max_segment_len: 65_536,
            strict_envelope: false,
        }
    }
}

/// ISA01..ISA15, values trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IsaHeader {
    pub auth_qualifier: String,
    pub auth_info: String,
    pub security_qualifier: String,
    pub security_info: String,
    pub sender_qualifier: String,
    pub sender_id: String,
    pub receiver_qualifier: String,
    pub receiver_id: String,
    /// YYMMDD
    pub date: String,
    /// HHMM
    pub time: String,
    /// ISA11 as sent (`U` or the repetition separator).
    pub standards_id: String,
    /// ISA12, e.g. "00401".
    pub version: String,
    pub control_number: String,
    pub ack_requested: String,
    pub usage: String,
}

/// GS01..GS08, values trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GsHeader {
    pub functional_id: String,
    pub app_sender: String,
    pub app_receiver: String,
    pub date: String,
    pub time: String,
    pub control_number: String,
    pub agency: String,
    /// GS08, e.g. "004010" or "004010VICS".
    pub version: String,
}

/// Everything read from one input.
#[derive(Debug, Clone, Serialize)]
pub struct Document<'a> {
    pub interchanges: Vec<Interchange<'a>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Document<'_> {
    /// At least one real ISA, and every real ISA closed by its IEA; or, for input without any
    /// ISA (bare ST..SE sets), at least one transaction set and every set closed by its SE.
    pub fn is_complete(&self) -> bool {
        let mut real = self.interchanges.iter().filter(|i| !i.synthetic).peekable();
        if real.peek().is_some() {
            return real.all(|i| i.closed);
        }
        let mut sets = self.transactions().peekable();
        sets.peek().is_some() && sets.all(|t| t.closed)
    }

    /// Diagnostics with `Severity::Error`.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// All transactions in file order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction<'_>> {
        self.interchanges
            .iter()
            .flat_map(|i| i.groups.iter())
            .flat_map(|g| g.transactions.iter())
    }
}

/// ISA..IEA. `synthetic` when built around bare ST..SE / GS..GE input.
#[derive(Debug, Clone, Serialize)]
pub struct Interchange<'a> {
    pub header: IsaHeader,
    pub delimiters: Delimiters,
    /// Full segment terminator (may be several bytes, e.g. U+2026).
    pub terminator: Vec<u8>,
    pub groups: Vec<Group<'a>>,
    /// TA1 interchange acknowledgments carried directly in this interchange.
    pub ta1: Vec<Ta1>,
    /// 1-based in file.
    pub index: usize,
    pub byte_offset: usize,
    pub closed: bool,
    pub synthetic: bool,
}

/// GS..GE.
#[derive(Debug, Clone, Serialize)]
pub struct Group<'a> {
    pub header: GsHeader,
    pub transactions: Vec<Transaction<'a>>,
    /// 1-based inside its interchange.
    pub index: usize,
    /// `index` of the enclosing interchange.
    pub interchange: usize,
    pub closed: bool,
    pub synthetic: bool,
}

/// ST..SE inclusive.
#[derive(Debug, Clone, Serialize)]
pub struct Transaction<'a> {
    pub id: String,
    pub control_number: String,
    pub implementation_ref: Option<String>,
    pub segments: Vec<Segment<'a>>,
    /// 1-based inside its group.
    pub index: usize,
    pub closed: bool,
}

impl<'a> Transaction<'a> {
    /// Segments between ST and SE (exclusive).
    pub fn body(&self) -> &[Segment<'a>] {
        let n = self.segments.len();
        let start = usize::from(self.segments.first().is_some_and(|s| s.is("ST")));
        let end = if n > start && self.segments.last().is_some_and(|s| s.is("SE")) {
            n - 1
        } else {
            n
        };
        self.segments.get(start..end).unwrap_or(&[])
    }
}

/// What the streaming `Reader` yields.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ReadEvent<'a> {
    InterchangeStart {
        header: IsaHeader,
        delimiters: Delimiters,
        terminator: Vec<u8>,
        index: usize,
        byte_offset: usize,
        synthetic: bool,
    },
    GroupStart {
        header: GsHeader,
        index: usize,
        synthetic: bool,
    },
    Transaction(Transaction<'a>),
    /// A TA1 segment inside the current interchange.
    Ta1(Ta1),
    GroupEnd {
        index: usize,
        closed: bool,
    },
    InterchangeEnd {
        index: usize,
        closed: bool,
    },
    Diagnostic(Diagnostic),
}
