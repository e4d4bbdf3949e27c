//! The strict writer: `OutSegment`/`OutTransaction`/`OutGroup` builders rendered to bytes with a
//! fixed-width ISA, exact SE/GE/IEA counts and control numbers, and element data sanitised for
//! X12 (delimiters and control characters removed, non-ASCII transliterated, truncated to the
//! per-version maximum lengths, trailing empty elements dropped).
//!
//! Sanitising is for free text only (names, addresses, descriptions, notes). Two kinds of element
//! are never altered, only written exactly or refused with a [`WriteError`]: numbers (X12 types R
//! and N0, [`NUMERIC`]: a quantity or price with more digits than the element holds is an error,
//! never cut) and identifiers the partner echoes back (the PO number in BEG03, the line number in
//! PO101 and the product ids in PO107…PO125, [`IDENTIFIERS`]: written as given, not upper-cased,
//! and refused when they hold a delimiter, a control or non-ASCII character, or are too long).
//! [`number_problem`] and [`identifier_problem`] are the same rules for callers that check input
//! before it reaches the writer. Codes of the 850 that come from outside ([`CODES`]: the unit of
//! measure, a state, a country, a currency) are sanitised but never cut: one that does not fit its
//! minimum and maximum length is refused too. [`fit_problem`] says whether any value, sanitised,
//! fits an element's [`min_len`] and [`max_len`]: the webhook checks every value it will write.
//! The one change made to a number or an identifier is the one the caller asks for: a
//! [`Padding`] writes an element at a fixed width (`1` → `001` in PO101), and the partner's own
//! echo of it is read back through [`Padding::strip`].

use super::envelope::{GsHeader, IsaHeader};
use super::segment::Delimiters;

/// X12 release written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Version {
    #[default]
    V4010,
    V5010,
}

impl Version {
    /// ISA12.
    pub fn isa12(self) -> &'static str {
        match self {
            Version::V4010 => "00401",
            Version::V5010 => "00501",
        }
    }

    /// Default GS08.
    pub fn gs08(self) -> &'static str {
        match self {
            Version::V4010 => "004010",
            Version::V5010 => "005010",
        }
    }
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    pub delimiters: Delimiters,
    /// Write "\n" after each terminator.
    pub newline: bool,
    /// With `newline`, write "\r\n" instead.
    pub crlf: bool,
    pub version: Version,
    /// Overrides of the built-in maximum lengths: (segment id, element 1-based, max len).
    pub max_lengths: Vec<(String, usize, usize)>,
    /// Uppercase all data.
    pub uppercase: bool,
    /// Elements written at a fixed width (a non-empty value shorter than it is filled out).
    pub padding: Vec<Padding>,
}

/// An element written at least `width` characters wide: a shorter non-empty value is filled out
/// with `fill` on the left (`1` → `001`) or on the right (`AB` → `AB  `). Applied after the
/// value is checked (numbers, identifiers) or sanitised (free text); never to an empty element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padding {
    pub segment: String,
    /// 1-based.
    pub element: usize,
    pub width: usize,
    pub fill: u8,
    /// The fill goes before the value (right-justified).
    pub left: bool,
}

impl Padding {
    /// `value` padded to the width.
    pub fn apply(&self, value: String) -> String {
        if value.is_empty() || value.len() >= self.width {
            return value;
        }
        let fill = (self.fill as char)
            .to_string()
            .repeat(self.width - value.len());
        if self.left {
            fill + &value
        } else {
            value + &fill
        }
    }

    /// `value` without the fill this padding adds (at least one character is kept, so `000`
    /// stays `0`): how a padded identifier the partner echoes back is read.
    pub fn strip<'a>(&self, value: &'a str) -> &'a str {
        let fill = self.fill as char;
        let stripped = if self.left {
            value.trim_start_matches(fill)
        } else {
            value.trim_end_matches(fill)
        };
        match (stripped.is_empty(), value.is_empty()) {
            (true, false) if self.left => &value[value.len() - 1..],
            (true, false) => &value[..1],
            _ => stripped,
        }
    }
}

/// The padding of `seg`/`element` under `opts`, if any.
pub fn padding<'o>(opts: &'o WriteOptions, seg: &str, element: usize) -> Option<&'o Padding> {
    opts.padding
        .iter()
        .find(|p| p.segment.eq_ignore_ascii_case(seg) && p.element == element)
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            delimiters: Delimiters::default(),
            newline: false,
            crlf: false,
            version: Version::V4010,
            max_lengths: Vec::new(),
            uppercase: true,
            padding: Vec::new(),
        }
    }
}

/// One element to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutElement {
    Simple(String),
    Composite(Vec<String>),
    Repeated(Vec<String>),
}

/// A segment to write (ID + elements, 1-based positions in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutSegment {
    pub id: String,
    pub elements: Vec<OutElement>,
}

impl OutSegment {
    pub fn new(id: &str) -> Self {
        OutSegment {
            id: id.to_string(),
            elements: Vec::new(),
        }
    }

    /// Append a simple element.
    pub fn el(mut self, v: impl Into<String>) -> Self {
        self.elements.push(OutElement::Simple(v.into()));
        self
    }

    /// Append an optional simple element (None → empty).
    pub fn opt(mut self, v: Option<impl Into<String>>) -> Self {
        self.elements
            .push(OutElement::Simple(v.map(Into::into).unwrap_or_default()));
        self
    }

    /// Append a composite element.
    pub fn comp(mut self, parts: Vec<String>) -> Self {
        self.elements.push(OutElement::Composite(parts));
        self
    }

    /// Append a repeated element (5010 repetition separator).
    pub fn rep(mut self, parts: Vec<String>) -> Self {
        self.elements.push(OutElement::Repeated(parts));
        self
    }
}

/// One transaction set body (ST/SE are generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTransaction {
    pub id: String,
    pub control_number: String,
    pub implementation_ref: Option<String>,
    pub segments: Vec<OutSegment>,
}

/// One functional group (GS/GE are generated; GS06 is `header.control_number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutGroup {
    pub header: GsHeader,
    pub transactions: Vec<OutTransaction>,
}

/// Why a document cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("{field} is {len} characters, at most {max} allowed")]
    IsaFieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} {value:?} is not a valid value")]
    BadField { field: &'static str, value: String },
    #[error("{field} control number {value:?} is not 1-9 digits")]
    BadControlNumber { field: &'static str, value: String },
    #[error("delimiters not distinct or alphanumeric: {0}")]
    BadDelimiters(String),
    #[error("bad segment id {0:?}")]
    BadSegmentId(String),
    #[error("mandatory element {segment}{element:02} empty after sanitising")]
    MissingElement { segment: String, element: usize },
    /// A number or an identifier that cannot be written exactly (never cut or altered).
    #[error("{segment}{element:02} {value:?} cannot be written exactly: {problem}")]
    Inexact {
        segment: String,
        element: usize,
        value: String,
        problem: String,
    },
}

/// Built-in maximum lengths (segment, element, 4010 len, 5010 len).
const MAX_LENGTHS: &[(&str, usize, usize, usize)] = &[
    ("BEG", 3, 22, 22),
    ("BEG", 4, 30, 30),
    ("BEG", 6, 30, 30),
    ("CUR", 2, 3, 3),
    ("REF", 2, 30, 50),
    ("REF", 3, 80, 80),
    ("PER", 2, 60, 60),
    ("PER", 4, 80, 256),
    ("PER", 6, 80, 256),
    ("PER", 8, 80, 256),
    ("FOB", 3, 80, 80),
    ("ITD", 12, 80, 80),
    ("DTM", 2, 8, 8),
    ("DTM", 3, 8, 8),
    ("TD5", 3, 80, 80),
    ("TD5", 5, 35, 35),
    ("N9", 2, 30, 50),
    ("N9", 3, 45, 45),
    ("MSG", 1, 264, 264),
    ("N1", 2, 60, 60),
    ("N1", 4, 80, 80),
    ("N2", 1, 60, 60),
    ("N2", 2, 60, 60),
    ("N3", 1, 55, 55),
    ("N3", 2, 55, 55),
    ("N4", 1, 30, 30),
    ("N4", 2, 2, 2),
    ("N4", 3, 15, 15),
    ("N4", 4, 3, 3),
    ("PO1", 1, 20, 20),
    ("PO1", 2, 15, 15),
    ("PO1", 3, 2, 2),
    ("PO1", 4, 17, 17),
    ("PID", 5, 80, 80),
    ("ITD", 7, 3, 3),
    ("CTT", 1, 6, 6),
    ("CTT", 2, 10, 10),
    ("AMT", 2, 18, 18),
    ("AK1", 2, 9, 9),
    ("AK2", 2, 9, 9),
    ("AK4", 4, 99, 99),
];

/// Minimum lengths above 1 of the elements the 850 writes from the webhook's values (the same in
/// 4010 and 5010): N401 city 2/30, N402 state 2/2, N403 postal code 3/15, N404 country 2/3,
/// N104 id 2/80, PO103 unit of measure 2/2, TD503 SCAC 2/80, CUR02 currency 3/3.
const MIN_LENGTHS: &[(&str, usize, usize)] = &[
    ("N4", 1, 2),
    ("N4", 2, 2),
    ("N4", 3, 3),
    ("N4", 4, 2),
    ("N1", 4, 2),
    ("PO1", 3, 2),
    ("TD5", 3, 2),
    ("CUR", 2, 3),
];

/// Code elements (X12 type ID) whose values come from outside: sanitised (upper-cased), never
/// cut; a value that does not fit is a [`WriteError::Inexact`].
pub const CODES: &[(&str, usize)] = &[("PO1", 3), ("N4", 2), ("N4", 4), ("CUR", 2)];

/// Minimum length of `seg`/`element` (1 unless listed).
pub fn min_len(seg: &str, element: usize) -> usize {
    MIN_LENGTHS
        .iter()
        .find(|(s, e, _)| s.eq_ignore_ascii_case(seg) && *e == element)
        .map_or(1, |(_, _, m)| *m)
}

/// Why `value`, sanitised as the writer sanitises it (but not cut), does not fit element
/// `seg`/`element` under `opts` (its [`min_len`] and [`max_len`]), or `None` when it fits.
pub fn fit_problem(value: &str, opts: &WriteOptions, seg: &str, element: usize) -> Option<String> {
    let written = written(value, opts);
    let len = written.len();
    let min = min_len(seg, element);
    let max = max_len(opts, seg, element);
    let fits = len >= min && max.is_none_or(|m| len <= m);
    if fits {
        return None;
    }
    let holds = match max {
        Some(m) if m == min => format!("exactly {m}"),
        Some(m) => format!("{min} to {m}"),
        None => format!("at least {min}"),
    };
    let written_as = if written == value {
        String::new()
    } else {
        " as written".to_string()
    };
    Some(format!(
        "{len} characters{written_as}, the element holds {holds}"
    ))
}

/// `value` as the writer writes a free-text element under `opts` (sanitised: ASCII, delimiters
/// and control characters as spaces, upper-cased if asked, trimmed), before any cut.
pub fn written(value: &str, opts: &WriteOptions) -> String {
    let rep = match opts.version {
        Version::V4010 => None,
        Version::V5010 => Some(opts.delimiters.repetition.unwrap_or(b'^')),
    };
    sanitize(value, &opts.delimiters, rep, opts.uppercase, None)
}

fn is_code(seg: &str, element: usize) -> bool {
    CODES
        .iter()
        .any(|(s, e)| s.eq_ignore_ascii_case(seg) && *e == element)
}

/// Maximum length of `seg`/`element` under `opts` (the mapping's overrides first), if any: what
/// free text is truncated to, and what numbers (in digits) and identifiers must fit.
pub fn max_len(opts: &WriteOptions, seg: &str, element: usize) -> Option<usize> {
    if let Some((_, _, m)) = opts
        .max_lengths
        .iter()
        .find(|(s, e, _)| s.eq_ignore_ascii_case(seg) && *e == element)
    {
        return Some(*m);
    }
    if seg.eq_ignore_ascii_case("PO1") && element >= 7 && element % 2 == 1 && element <= 25 {
        return Some(48);
    }
    MAX_LENGTHS
        .iter()
        .find(|(s, e, _, _)| s.eq_ignore_ascii_case(seg) && *e == element)
        .map(|(_, _, a, b)| match opts.version {
            Version::V4010 => *a,
            Version::V5010 => *b,
        })
}

/// Numeric elements (X12 types R and N0) of the documents written; their maximum length (from
/// the table above or the mapping's overrides) counts digits only, as X12 does for these types
/// (sign and decimal point are not counted).
pub const NUMERIC: &[(&str, usize)] = &[
    ("PO1", 2),
    ("PO1", 4),
    ("ITD", 7),
    ("CTT", 1),
    ("CTT", 2),
    ("AMT", 2),
];

/// Identifier elements the partner echoes back (855 BAK03 / PO1, 856 PRF01 / LIN): written
/// exactly as given or not at all. PO1 product ids are the values of PO106/07 … PO124/25.
pub const IDENTIFIERS: &[(&str, usize)] = &[("BEG", 3), ("PO1", 1)];

fn is_numeric(seg: &str, element: usize) -> bool {
    NUMERIC
        .iter()
        .any(|(s, e)| s.eq_ignore_ascii_case(seg) && *e == element)
}

fn is_identifier(seg: &str, element: usize) -> bool {
    IDENTIFIERS
        .iter()
        .any(|(s, e)| s.eq_ignore_ascii_case(seg) && *e == element)
        || (seg.eq_ignore_ascii_case("PO1") && (7..=25).contains(&element) && element % 2 == 1)
}

/// Why `value` cannot be written exactly as an X12 number (R / N0) of at most `max` digits, or
/// `None` when it can: `-?digits[.digits]`, at least one digit.
pub fn number_problem(value: &str, max: Option<usize>) -> Option<String> {
    let body = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = int.len() + frac.len();
    if digits == 0 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Some("not a decimal number".into());
    }
    match max {
        Some(m) if digits > m => Some(format!("{digits} digits, the element holds at most {m}")),
        _ => None,
    }
}

/// Why `value` cannot be written unchanged as one element under `opts` (an identifier that must
/// come back as it went out), or `None` when it can. `max` is the element's maximum length.
pub fn identifier_problem(value: &str, opts: &WriteOptions, max: Option<usize>) -> Option<String> {
    let d = &opts.delimiters;
    let rep = match opts.version {
        Version::V4010 => None,
        Version::V5010 => Some(d.repetition.unwrap_or(b'^')),
    };
    if value.trim().is_empty() {
        return Some("empty".into());
    }
    if value.trim() != value {
        return Some("leading or trailing spaces".into());
    }
    for c in value.chars() {
        let name = match c {
            c if !c.is_ascii() => "a non-ASCII character",
            c if (c as u32) < 0x20 || c == '\u{7f}' => "a control character",
            c if c as u32 == u32::from(d.element) => "the element separator",
            c if c as u32 == u32::from(d.component) => "the component separator",
            c if c as u32 == u32::from(d.segment) => "the segment terminator",
            c if Some(c as u32) == rep.map(u32::from) => "the repetition separator",
            _ => continue,
        };
        return Some(format!("contains {c:?}, {name} of the 850"));
    }
    match max {
        Some(m) if value.len() > m => Some(format!(
            "{} characters, the element holds at most {m}",
            value.len()
        )),
        _ => None,
    }
}

/// Elements that must not be empty (after sanitising) when the segment is written.
const MANDATORY: &[(&str, &[usize])] = &[
    ("BEG", &[1, 2, 3, 5]),
    ("BAK", &[1, 2, 3]),
    ("BSN", &[1, 2, 3]),
    ("CUR", &[1, 2]),
    ("REF", &[1]),
    ("PER", &[1]),
    ("DTM", &[1]),
    ("N9", &[1]),
    ("MSG", &[1]),
    ("N1", &[1]),
    ("N2", &[1]),
    ("N3", &[1]),
    ("PO1", &[2, 3]),
    ("CTT", &[1]),
    ("AMT", &[1, 2]),
    ("HL", &[1, 3]),
    ("AK1", &[1, 2]),
    ("AK2", &[1, 2]),
    ("AK3", &[1, 2]),
    ("AK4", &[1, 3]),
    ("AK5", &[1]),
    ("AK9", &[1, 2, 3, 4]),
];

fn translit(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ą' => "A",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ę' | 'Ě' => "E",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'İ' => "I",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ő' => "O",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ç' | 'ć' | 'č' => "c",
        'Ç' | 'Ć' | 'Č' => "C",
        'ñ' | 'ń' | 'ň' => "n",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'š' | 'ś' | 'ş' => "s",
        'Š' | 'Ś' | 'Ş' => "S",
        'ž' | 'ź' | 'ż' => "z",
        'Ž' | 'Ź' | 'Ż' => "Z",
        'ł' => "l",
        'Ł' => "L",
        'ř' => "r",
        'Ř' => "R",
        'ď' | 'đ' => "d",
        'Ď' | 'Đ' => "D",
        'ť' => "t",
        'Ť' => "T",
        'ß' => "ss",
        'æ' => "ae",
        'Æ' => "AE",
        'œ' => "oe",
        'Œ' => "OE",
        'þ' => "th",
        'Þ' => "TH",
        '“' | '”' | '„' | '«' | '»' | '″' => "\"",
        '‘' | '’' | '‚' | '′' => "'",
        '–' | '—' | '‐' | '‑' | '−' => "-",
        '…' => "...",
        '\u{a0}' | '\u{2009}' | '\u{202f}' => " ",
        '€' => "EUR",
        '£' => "GBP",
        '©' => "(C)",
        '®' => "(R)",
        '™' => "TM",
        '×' => "x",
        _ => return None,
    })
}

/// Sanitise one data value: transliterate to ASCII, replace delimiter and control characters
/// by spaces, optionally uppercase, trim, truncate to `max` and trim again.
pub fn sanitize(
    value: &str,
    delims: &Delimiters,
    extra: Option<u8>,
    uppercase: bool,
    max: Option<usize>,
) -> String {
    let mut out = String::with_capacity(value.len());
    let push = |out: &mut String, b: u8| {
        let bad = b < 0x20
            || b == 0x7f
            || b == delims.element
            || b == delims.component
            || b == delims.segment
            || Some(b) == delims.repetition
            || Some(b) == extra;
        if bad {
            out.push(' ');
        } else if uppercase {
            out.push(b.to_ascii_uppercase() as char);
        } else {
            out.push(b as char);
        }
    };
    for c in value.chars() {
        if c.is_ascii() {
            push(&mut out, c as u8);
        } else if let Some(t) = translit(c) {
            for b in t.bytes() {
                push(&mut out, b);
            }
        } else {
            push(&mut out, b'?');
        }
    }
    let mut s = out.trim().to_string();
    if let Some(m) = max {
        if s.len() > m {
            s.truncate(m);
            s = s.trim_end().to_string();
        }
    }
    s
}

struct Ctx<'o> {
    opts: &'o WriteOptions,
    rep: Option<u8>,
    out: Vec<u8>,
}

impl Ctx<'_> {
    fn term(&mut self) {
        self.out.push(self.opts.delimiters.segment);
        if self.opts.newline {
            if self.opts.crlf {
                self.out.push(b'\r');
            }
            self.out.push(b'\n');
        }
    }

    /// One simple element: numbers and identifiers exactly or an error, free text sanitised;
    /// then padded when `opts.padding` says so.
    fn simple(&self, seg: &str, n: usize, v: &str) -> Result<String, WriteError> {
        let written = self.unpadded(seg, n, v)?;
        Ok(match padding(self.opts, seg, n) {
            Some(p) => p.apply(written),
            None => written,
        })
    }

    fn unpadded(&self, seg: &str, n: usize, v: &str) -> Result<String, WriteError> {
        let problem = if v.is_empty() {
            None
        } else if is_numeric(seg, n) {
            number_problem(v, max_len(self.opts, seg, n))
        } else if is_identifier(seg, n) {
            identifier_problem(v, self.opts, max_len(self.opts, seg, n))
        } else if is_code(seg, n) {
            match fit_problem(v, self.opts, seg, n) {
                None => return Ok(self.clean(seg, n, v)),
                problem => problem,
            }
        } else {
            return Ok(self.clean(seg, n, v));
        };
        match problem {
            None => Ok(v.to_string()),
            Some(problem) => Err(WriteError::Inexact {
                segment: seg.to_string(),
                element: n,
                value: v.to_string(),
                problem,
            }),
        }
    }

    fn clean(&self, seg: &str, n: usize, v: &str) -> String {
        sanitize(
            v,
            &self.opts.delimiters,
            self.rep,
            self.opts.uppercase,
            max_len(self.opts, seg, n),
        )
    }

    fn segment(&mut self, s: &OutSegment) -> Result<(), WriteError> {
        let id = s.id.trim().to_ascii_uppercase();
        if !(2..=3).contains(&id.len())
            || !id.bytes().all(|b| b.is_ascii_alphanumeric())
            || !id
                .as_bytes()
                .first()
                .is_some_and(|b| b.is_ascii_alphabetic())
        {
            return Err(WriteError::BadSegmentId(s.id.clone()));
        }
        let d = self.opts.delimiters;
        let mut rendered: Vec<Vec<u8>> = Vec::with_capacity(s.elements.len());
        for (i, e) in s.elements.iter().enumerate() {
            let n = i + 1;
            let bytes = match e {
                OutElement::Simple(v) => self.simple(&id, n, v)?.into_bytes(),
                OutElement::Composite(parts) => {
                    let mut ps: Vec<String> = parts.iter().map(|p| self.clean(&id, n, p)).collect();
                    while ps.last().is_some_and(|p| p.is_empty()) {
                        ps.pop();
                    }
                    ps.join(&(d.component as char).to_string()).into_bytes()
                }
                OutElement::Repeated(parts) => {
                    let ps: Vec<String> = parts
                        .iter()
                        .map(|p| self.clean(&id, n, p))
                        .filter(|p| !p.is_empty())
                        .collect();
                    let sep = self.rep.unwrap_or(b'^') as char;
                    ps.join(&sep.to_string()).into_bytes()
                }
            };
            rendered.push(bytes);
        }
        if let Some((_, req)) = MANDATORY.iter().find(|(s, _)| *s == id) {
            for &n in req.iter() {
                if rendered.get(n - 1).is_none_or(|v| v.is_empty()) {
                    return Err(WriteError::MissingElement {
                        segment: id.clone(),
                        element: n,
                    });
                }
            }
        }
        while rendered.last().is_some_and(|v| v.is_empty()) {
            rendered.pop();
        }
        self.out.extend_from_slice(id.as_bytes());
        for v in rendered {
            self.out.push(d.element);
            self.out.extend_from_slice(&v);
        }
        self.term();
        Ok(())
    }
}

fn digits(field: &'static str, v: &str, max: usize) -> Result<u64, WriteError> {
    let t = v.trim();
    if t.is_empty() || t.len() > max || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WriteError::BadControlNumber {
            field,
            value: v.to_string(),
        });
    }
    t.parse::<u64>().map_err(|_| WriteError::BadControlNumber {
        field,
        value: v.to_string(),
    })
}

fn fixed(
    field: &'static str,
    v: &str,
    width: usize,
    delims: &Delimiters,
    rep: Option<u8>,
    uppercase: bool,
) -> Result<String, WriteError> {
    let s = sanitize(v, delims, rep, uppercase, None);
    if s.len() > width {
        return Err(WriteError::IsaFieldTooLong {
            field,
            len: s.len(),
            max: width,
        });
    }
    Ok(format!("{s:<width$}"))
}

fn gs01_for(st01: &str) -> &'static str {
    match st01 {
        "850" => "PO",
        "855" => "PR",
        "856" => "SH",
        "860" => "PC",
        "810" => "IN",
        "997" | "999" => "FA",
        _ => "",
    }
}

/// Render one interchange.
pub fn write(
    isa: &IsaHeader,
    groups: &[OutGroup],
    opts: &WriteOptions,
) -> Result<Vec<u8>, WriteError> {
    let rep = repetition(opts)?;
    let isa13 = digits("isa13", &isa.control_number, 9)?;
    let (date, time) = isa_date_time(isa)?;
    if isa.sender_id.trim().is_empty() || isa.receiver_id.trim().is_empty() {
        return Err(WriteError::BadField {
            field: "isa06/isa08",
            value: String::new(),
        });
    }
    let mut ctx = Ctx {
        opts,
        rep,
        out: Vec::new(),
    };
    ctx.isa(isa, isa13, date, time)?;
    for g in groups {
        ctx.group(g, date, time)?;
    }
    let iea = OutSegment::new("IEA")
        .el(groups.len().to_string())
        .el(format!("{isa13:09}"));
    ctx.segment(&iea)?;
    Ok(ctx.out)
}

/// The repetition separator (5010 only), once the delimiters are checked: none alphanumeric,
/// a space, or used twice.
fn repetition(opts: &WriteOptions) -> Result<Option<u8>, WriteError> {
    let d = opts.delimiters;
    let rep = match opts.version {
        Version::V4010 => None,
        Version::V5010 => Some(d.repetition.unwrap_or(b'^')),
    };
    let mut chars = vec![d.element, d.component, d.segment];
    chars.extend(rep);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b' ' || chars.iter().skip(i + 1).any(|&o| o == c) {
            return Err(WriteError::BadDelimiters(format!(
                "{:?}",
                chars.iter().map(|&c| c as char).collect::<String>()
            )));
        }
    }
    Ok(rep)
}

/// ISA09 (YYMMDD) and ISA10 (HHMM), trimmed, or the error naming the one that is not.
fn isa_date_time(isa: &IsaHeader) -> Result<(&str, &str), WriteError> {
    let date = isa.date.trim();
    if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WriteError::BadField {
            field: "isa09",
            value: isa.date.clone(),
        });
    }
    let time = isa.time.trim();
    if time.len() != 4 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WriteError::BadField {
            field: "isa10",
            value: isa.time.clone(),
        });
    }
    Ok((date, time))
}

/// `v`, or `default` when it is blank.
fn or(v: &str, default: &'static str) -> String {
    if v.trim().is_empty() {
        default.to_string()
    } else {
        v.to_string()
    }
}

impl Ctx<'_> {
    /// The fixed-width ISA, blank qualifiers and flags defaulted.
    fn isa(
        &mut self,
        isa: &IsaHeader,
        isa13: u64,
        date: &str,
        time: &str,
    ) -> Result<(), WriteError> {
        let d = self.opts.delimiters;
        let (rep, up) = (self.rep, self.opts.uppercase);
        let f = |field, v: &str, w| fixed(field, v, w, &d, rep, up);
        let isa11 = match rep {
            Some(r) => (r as char).to_string(),
            None => "U".to_string(),
        };
        let isa_line = [
            "ISA".to_string(),
            f("isa01", &or(&isa.auth_qualifier, "00"), 2)?,
            f("isa02", &isa.auth_info, 10)?,
            f("isa03", &or(&isa.security_qualifier, "00"), 2)?,
            f("isa04", &isa.security_info, 10)?,
            f("isa05", &or(&isa.sender_qualifier, "ZZ"), 2)?,
            f("isa06", &isa.sender_id, 15)?,
            f("isa07", &or(&isa.receiver_qualifier, "ZZ"), 2)?,
            f("isa08", &isa.receiver_id, 15)?,
            date.to_string(),
            time.to_string(),
            isa11,
            self.opts.version.isa12().to_string(),
            format!("{isa13:09}"),
            f("isa14", &or(&isa.ack_requested, "0"), 1)?,
            f("isa15", &or(&isa.usage, "P"), 1)?,
            (d.component as char).to_string(),
        ]
        .join(&(d.element as char).to_string());
        self.out.extend_from_slice(isa_line.as_bytes());
        self.term();
        Ok(())
    }

    /// GS, the group's sets, GE.
    fn group(&mut self, g: &OutGroup, date: &str, time: &str) -> Result<(), WriteError> {
        let gs06 = digits("gs06", &g.header.control_number, 9)?;
        let gs = self.gs(g, gs06, date, time)?;
        self.segment(&gs)?;
        for t in &g.transactions {
            self.transaction(t)?;
        }
        let ge = OutSegment::new("GE")
            .el(g.transactions.len().to_string())
            .el(gs06.to_string());
        self.segment(&ge)
    }

    /// The GS: GS01 from the first set's ID, GS04/GS05 from the ISA when blank; no element
    /// may end up empty.
    fn gs(
        &self,
        g: &OutGroup,
        gs06: u64,
        date: &str,
        time: &str,
    ) -> Result<OutSegment, WriteError> {
        let h = &g.header;
        let first = g.transactions.first().map(|t| t.id.trim()).unwrap_or("");
        let gs01 = if h.functional_id.trim().is_empty() {
            gs01_for(first).to_string()
        } else {
            h.functional_id.clone()
        };
        let gs04 = if h.date.trim().is_empty() {
            format!("20{date}")
        } else {
            h.date.clone()
        };
        let gs05 = if h.time.trim().is_empty() {
            time.to_string()
        } else {
            h.time.clone()
        };
        let gs = OutSegment::new("GS")
            .el(gs01)
            .el(or(&h.app_sender, "").trim().to_string())
            .el(h.app_receiver.clone())
            .el(gs04)
            .el(gs05)
            .el(gs06.to_string())
            .el(or(&h.agency, "X"))
            .el(or(&h.version, self.opts.version.gs08()));
        let d = self.opts.delimiters;
        for n in 1..=8 {
            if gs.elements.get(n - 1).is_some_and(|e| match e {
                OutElement::Simple(v) => {
                    sanitize(v, &d, self.rep, self.opts.uppercase, None).is_empty()
                }
                _ => false,
            }) {
                return Err(WriteError::MissingElement {
                    segment: "GS".into(),
                    element: n,
                });
            }
        }
        Ok(gs)
    }

    /// ST, the set's segments, SE.
    fn transaction(&mut self, t: &OutTransaction) -> Result<(), WriteError> {
        let st02 = t.control_number.trim();
        if st02.is_empty() || st02.len() > 9 || !st02.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(WriteError::BadControlNumber {
                field: "st02",
                value: t.control_number.clone(),
            });
        }
        let st02 = if st02.len() < 4 && st02.bytes().all(|b| b.is_ascii_digit()) {
            format!("{st02:0>4}")
        } else {
            st02.to_string()
        };
        let st01 = sanitize(
            &t.id,
            &self.opts.delimiters,
            self.rep,
            self.opts.uppercase,
            None,
        );
        if st01.is_empty() {
            return Err(WriteError::MissingElement {
                segment: "ST".into(),
                element: 1,
            });
        }
        let mut st = OutSegment::new("ST").el(st01).el(st02.clone());
        if self.opts.version == Version::V5010 {
            st = st.opt(t.implementation_ref.clone());
        }
        self.segment(&st)?;
        for s in &t.segments {
            self.segment(s)?;
        }
        let se = OutSegment::new("SE")
            .el((t.segments.len() + 2).to_string())
            .el(st02);
        self.segment(&se)
    }
}
