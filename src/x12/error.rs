//! Diagnostics: what the reader and the typed parsers report instead of failing. Every
//! diagnostic carries a `Position` precise enough to fill a 997 AK3/AK4/AK5/AK9 or a TA1, and a
//! closed `DiagnosticCode` that maps onto the X12 acknowledgment code lists.

use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is. Warnings describe tolerated quirks; errors describe content that a
/// strict translator would reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Severity {
    Warning,
    Error,
}

/// Closed list of everything the codec can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DiagnosticCode {
    /// No ISA and no bare ST found (error), or bare ST..SE without envelope (warning).
    NoInterchange,
    /// Bytes other than whitespace before the first ISA.
    JunkBeforeIsa,
    /// ISA is not the fixed 106-byte layout (unpadded, wrapped); tokenised tolerantly.
    IsaNotFixedWidth,
    /// ISA could not be tokenised (fewer than 16 elements, truncated).
    BadIsa,
    /// Separators not distinct, alphanumeric or whitespace.
    BadDelimiters,
    /// Interchange not closed by IEA.
    MissingIea,
    IeaCountMismatch,
    IeaControlMismatch,
    /// Functional group not closed by GE.
    MissingGe,
    GeCountMismatch,
    GeControlMismatch,
    /// ST without a GS inside an interchange.
    MissingGs,
    /// Transaction set not closed by SE.
    MissingSe,
    SeCountMismatch,
    SeControlMismatch,
    /// GE/IEA/SE without its header.
    UnexpectedTrailer,
    /// A segment between SE and the next ST (or between GE and GS).
    SegmentOutsideSet,
    /// A segment after IEA and before the next ISA.
    SegmentAfterIea,
    /// Segment ID is syntactically fine but not one we know (often a wrapped line).
    UnknownSegmentId,
    /// Segment ID is not 2-3 alphanumerics.
    BadSegmentId,
    /// Empty segment (two terminators in a row).
    EmptySegment,
    /// Element separator right before the terminator.
    TrailingSeparator,
    /// Last segment of the input has no terminator.
    MissingTerminator,
    /// Segment longer than `ReadOptions::max_segment_len`.
    TooLong,
    /// A mandatory segment is missing in a transaction set.
    MissingSegment,
    /// A segment is where the set's structure does not expect it.
    UnexpectedSegment,
    /// A mandatory element is missing or empty.
    MissingElement,
    /// An element has a value that is not acceptable (unknown code).
    InvalidValue,
    /// A numeric element (a quantity, a price) holds something that is not a number.
    NotNumeric,
    /// A date element holds something that is not a date.
    InvalidDate,
    /// ST02 repeated inside one group.
    DuplicateControlNumber,
    /// ISA13 repeated inside one file.
    DuplicateInterchange,
    /// GS06 repeated inside one interchange.
    DuplicateGroup,
    /// The segment terminator in use changes inside the file (`$` then `~`).
    TerminatorChange,
    /// HL02 blank on a level below the shipment: the parent was inferred from the level order.
    HlInferredParent,
    /// HL02 names a parent that does not exist.
    HlOrphan,
    /// HL parent chain loops.
    HlCycle,
    /// HL01 repeated.
    HlDuplicate,
    /// Non-UTF-8 bytes decoded as Latin-1.
    NonUtf8,
}

impl DiagnosticCode {
    /// Lowercase snake-ish name used in dumps.
    pub fn as_str(&self) -> &'static str {
        use DiagnosticCode::*;
        match self {
            NoInterchange => "no_interchange",
            JunkBeforeIsa => "junk_before_isa",
            IsaNotFixedWidth => "isa_not_fixed_width",
            BadIsa => "bad_isa",
            BadDelimiters => "bad_delimiters",
            MissingIea => "missing_iea",
            IeaCountMismatch => "iea_count_mismatch",
            IeaControlMismatch => "iea_control_mismatch",
            MissingGe => "missing_ge",
            GeCountMismatch => "ge_count_mismatch",
            GeControlMismatch => "ge_control_mismatch",
            MissingGs => "missing_gs",
            MissingSe => "missing_se",
            SeCountMismatch => "se_count_mismatch",
            SeControlMismatch => "se_control_mismatch",
            UnexpectedTrailer => "unexpected_trailer",
            SegmentOutsideSet => "segment_outside_set",
            SegmentAfterIea => "segment_after_iea",
            UnknownSegmentId => "unknown_segment_id",
            BadSegmentId => "bad_segment_id",
            EmptySegment => "empty_segment",
            TrailingSeparator => "trailing_separator",
            MissingTerminator => "missing_terminator",
            TooLong => "too_long",
            MissingSegment => "missing_segment",
            UnexpectedSegment => "unexpected_segment",
            MissingElement => "missing_element",
            InvalidValue => "invalid_value",
            NotNumeric => "not_numeric",
            InvalidDate => "invalid_date",
            DuplicateControlNumber => "duplicate_control_number",
            DuplicateInterchange => "duplicate_interchange",
            DuplicateGroup => "duplicate_group",
            TerminatorChange => "terminator_change",
            HlInferredParent => "hl_inferred_parent",
            HlOrphan => "hl_orphan",
            HlCycle => "hl_cycle",
            HlDuplicate => "hl_duplicate",
            NonUtf8 => "non_utf8",
        }
    }

    /// AK304 (720 segment syntax error code) when the problem sits on one segment.
    pub fn ak304(&self) -> Option<&'static str> {
        use DiagnosticCode::*;
        match self {
            UnknownSegmentId | BadSegmentId => Some("1"),
            UnexpectedSegment => Some("2"),
            MissingSegment => Some("3"),
            MissingElement | InvalidValue | NotNumeric | InvalidDate | TooLong
            | TrailingSeparator => Some("8"),
            HlOrphan | HlCycle | HlDuplicate => Some("8"),
            _ => None,
        }
    }

    /// AK403 (723 data element syntax error code) when the problem sits on one element.
    pub fn ak403(&self) -> Option<&'static str> {
        use DiagnosticCode::*;
        match self {
            MissingElement => Some("1"),
            TrailingSeparator => Some("3"),
            TooLong => Some("5"),
            InvalidValue | HlOrphan | HlCycle | HlDuplicate => Some("7"),
            NonUtf8 | NotNumeric => Some("6"),
            InvalidDate => Some("8"),
            _ => None,
        }
    }

    /// AK502 (718 transaction set syntax error code).
    pub fn ak5(&self) -> Option<&'static str> {
        use DiagnosticCode::*;
        match self {
            MissingSe => Some("2"),
            SeControlMismatch => Some("3"),
            SeCountMismatch => Some("4"),
            DuplicateControlNumber => Some("23"),
            UnknownSegmentId | BadSegmentId | UnexpectedSegment | MissingSegment
            | MissingElement | InvalidValue | NotNumeric | InvalidDate | TooLong
            | TrailingSeparator | HlOrphan | HlCycle | HlDuplicate => Some("5"),
            _ => None,
        }
    }

    /// AK905 (716 functional group syntax error code).
    pub fn ak9(&self) -> Option<&'static str> {
        use DiagnosticCode::*;
        match self {
            MissingGe => Some("3"),
            GeControlMismatch => Some("4"),
            GeCountMismatch => Some("5"),
            DuplicateGroup => Some("19"),
            _ => None,
        }
    }
}

impl fmt::Display for DiagnosticCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where something is. Indices of interchange/group/transaction are 1-based in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Position {
    pub byte_offset: usize,
    pub interchange: Option<usize>,
    pub group: Option<usize>,
    pub transaction: Option<usize>,
    pub segment_id: Option<String>,
    /// 1-based index of the segment in the file (ISA = 1 for a file starting with an ISA).
    pub segment_index: Option<usize>,
    /// 1-based index inside the transaction set (ST = 1), as AK302 wants.
    pub segment_in_set: Option<usize>,
    /// 1-based element position.
    pub element: Option<usize>,
    /// 1-based component position.
    pub component: Option<usize>,
}

impl Position {
    /// A human description: segment, element, set, byte offset.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(id) = &self.segment_id {
            let mut s = format!("segment {id}");
            if let Some(n) = self.segment_index {
                s.push_str(&format!(" #{n} in file"));
            }
            if let Some(n) = self.segment_in_set {
                s.push_str(&format!(", #{n} in set"));
            }
            parts.push(s);
        }
        if let Some(e) = self.element {
            let mut s = format!("element {e:02}");
            if let Some(c) = self.component {
                s.push_str(&format!(" component {c}"));
            }
            parts.push(s);
        }
        for (name, v) in [
            ("interchange", self.interchange),
            ("group", self.group),
            ("set", self.transaction),
        ] {
            if let Some(v) = v {
                parts.push(format!("{name} {v}"));
            }
        }
        parts.push(format!("byte {}", self.byte_offset));
        parts.join(", ")
    }
}

impl Position {
    /// Same position narrowed to one element.
    pub fn with_element(&self, element: usize) -> Position {
        let mut p = self.clone();
        p.element = Some(element);
        p
    }
}

/// One reported problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: DiagnosticCode,
    pub message: String,
    pub position: Position,
}

impl Diagnostic {
    pub fn error(code: DiagnosticCode, message: impl Into<String>, position: Position) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            position,
        }
    }

    pub fn warning(code: DiagnosticCode, message: impl Into<String>, position: Position) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            code,
            message: message.into(),
            position,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{sev}: {} (", self.message)?;
        let p = &self.position;
        let mut parts: Vec<String> = Vec::new();
        if let Some(i) = p.interchange {
            parts.push(format!("interchange {i}"));
        }
        if let Some(g) = p.group {
            parts.push(format!("group {g}"));
        }
        if let Some(t) = p.transaction {
            parts.push(format!("set {t}"));
        }
        if let Some(id) = &p.segment_id {
            let mut s = format!("segment {id}");
            if let Some(n) = p.segment_index {
                s.push_str(&format!(" #{n} in file"));
            }
            parts.push(s);
            if let Some(n) = p.segment_in_set {
                parts.push(format!("#{n} in set"));
            }
        } else if let Some(n) = p.segment_index {
            parts.push(format!("segment #{n} in file"));
        }
        if let Some(e) = p.element {
            parts.push(format!("element {e:02}"));
        }
        if let Some(c) = p.component {
            parts.push(format!("component {c}"));
        }
        parts.push(format!("byte {}", p.byte_offset));
        write!(f, "{})", parts.join(", "))
    }
}
