//! The tolerant tokenizer and envelope state machine. `Reader` walks the input bytes once,
//! detects delimiters at every ISA (fixed-width fast path, separator-counting tolerant path),
//! yields one `ReadEvent` per envelope boundary, per complete transaction set and per diagnostic, and
//! keeps at most one transaction set in memory. `read` collects the events into a `Document`.

use super::dictionary::SEGMENT_IDS;
use super::envelope::{
    Document, Group, GsHeader, Interchange, IsaHeader, ReadEvent, ReadOptions, Transaction,
};
use super::error::{Diagnostic, DiagnosticCode as C, Position};
use super::segment::{Delimiters, Loc, Segment};
use super::ta1::Ta1;
use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};

/// Cap on the capacity reserved up front for a transaction set's segments.
const MAX_SEG_HINT: usize = 1 << 16;

/// Offsets of the 16 element separators in a fixed-width ISA.
const ISA_SEPS: [usize; 16] = [
    3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103,
];

/// Per byte: 0 for anything but an ASCII alphanumeric, 1..=10 for digits, 11..=36 for letters
/// of either case.
static CODE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8 + 1;
        i += 1;
    }
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8 + 11;
        t[b'a' as usize + i] = i as u8 + 11;
        i += 1;
    }
    t
};

/// Index of a 2-3 byte alphanumeric ID (case-insensitive) in `KNOWN`: a missing third byte
/// codes as 0. None for anything else.
const fn id_index(id: &[u8]) -> Option<usize> {
    let (a, b, c) = match id {
        [a, b] => (CODE[*a as usize], CODE[*b as usize], 0),
        [a, b, c] => match CODE[*c as usize] {
            0 => return None,
            c => (CODE[*a as usize], CODE[*b as usize], c),
        },
        _ => return None,
    };
    if a == 0 || b == 0 {
        return None;
    }
    Some(idx3(a, b, c))
}

const fn idx3(a: u8, b: u8, c: u8) -> usize {
    (a as usize * 37 + b as usize) * 37 + c as usize
}

/// Dispatch key of a segment whose ID is none of the envelope IDs below.
const K_OTHER: usize = usize::MAX;

const fn key_of(id: &[u8]) -> usize {
    match id_index(id) {
        Some(k) => k,
        None => K_OTHER,
    }
}

const K_GS: usize = key_of(b"GS");
const K_ST: usize = key_of(b"ST");
const K_SE: usize = key_of(b"SE");
const K_GE: usize = key_of(b"GE");
const K_IEA: usize = key_of(b"IEA");
const K_TA1: usize = key_of(b"TA1");
const K_ISA: usize = key_of(b"ISA");

/// One bit per possible 2-3 byte alphanumeric ID (37³ bits, 6.3 KB), set for the IDs of the
/// segment dictionary (`SEGMENT_IDS`).
static KNOWN: [u64; 792] = {
    let mut bits = [0u64; 792];
    let mut i = 0;
    while i < SEGMENT_IDS.len() {
        if let Some(k) = id_index(SEGMENT_IDS[i]) {
            bits[k / 64] |= 1 << (k % 64);
        }
        i += 1;
    }
    bits
};

/// Whether the ID with index `k` (see `id_index`) is one we know.
fn known_index(k: usize) -> bool {
    KNOWN.get(k / 64).is_some_and(|w| w & (1 << (k % 64)) != 0)
}

/// Fast path for the usual segment start: two or three ASCII alphanumerics, the first a letter,
/// then the element separator or the end. Returns the ID's index (see `id_index`); None means
/// "take the general path" (whitespace, odd IDs, ...).
#[inline]
fn quick_id(raw: &[u8], sep: u8) -> Option<usize> {
    let code = |b: &u8| CODE.get(*b as usize).copied().unwrap_or(0);
    let (a, b, c) = match raw {
        [a, b] => (code(a), code(b), 0),
        [a, b, s, ..] if *s == sep => (code(a), code(b), 0),
        [a, b, c] => match code(c) {
            0 => return None,
            c => (code(a), code(b), c),
        },
        [a, b, c, s, ..] if *s == sep => match code(c) {
            0 => return None,
            c => (code(a), code(b), c),
        },
        _ => return None,
    };
    // A letter first, an alphanumeric second, and none of them the separator (possible only
    // with alphanumeric default delimiters from the options).
    let first = raw.first().copied().unwrap_or(sep);
    let second = raw.get(1).copied().unwrap_or(sep);
    if a < 11 || b == 0 || first == sep || second == sep {
        return None;
    }
    Some(idx3(a, b, c))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_isa_at(input: &[u8], p: usize) -> bool {
    match input.get(p..p + 4) {
        Some([a, b, c, d]) => {
            a.eq_ignore_ascii_case(&b'I')
                && b.eq_ignore_ascii_case(&b'S')
                && c.eq_ignore_ascii_case(&b'A')
                && !d.is_ascii_alphanumeric()
                && !is_ws(*d)
        }
        _ => false,
    }
}

fn find_isa(input: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = input.get(i..).and_then(|s| memchr::memchr2(b'I', b'i', s)) {
        let j = i + off;
        if is_isa_at(input, j) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}

fn has_crlf(raw: &[u8]) -> bool {
    memchr::memchr2(b'\n', b'\r', raw).is_some()
}

/// `has_crlf` for the short slices of the hot loop: eight bytes at a time in a register (the
/// classic "has zero byte" trick on the word xor'ed with the byte), no call, no byte loop.
#[inline]
fn has_crlf_short(raw: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64| {
        let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
        zero(w ^ (LO * u64::from(b'\n'))) | zero(w ^ (LO * u64::from(b'\r'))) != 0
    };
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    if raw.len() < 8 {
        return raw.iter().any(|&b| b == b'\n' || b == b'\r');
    }
    // Whole words, then the last eight bytes (overlapping the last whole word: harmless).
    raw.chunks_exact(8).any(|c| has(word(c)))
        || raw.get(raw.len() - 8..).is_some_and(|c| has(word(c)))
}

fn strip_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    if has_crlf(raw) {
        Cow::Owned(
            raw.iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    }
}

/// A control number as compared for duplicates: its numeric value when it is a number.
fn control_key(v: &str) -> String {
    let v = v.trim();
    v.parse::<u64>()
        .map_or_else(|_| v.to_string(), |n| n.to_string())
}

/// A short excerpt of `bytes` for a message: at most 12 characters, control characters
/// escaped, `…` when cut.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(12).flat_map(char::escape_debug).collect();
    if text.chars().nth(12).is_some() {
        out.push('…');
    }
    out
}

/// Whether `b` could be a segment terminator (not data, not whitespace).
fn terminator_like(b: u8) -> bool {
    !b.is_ascii_alphanumeric() && !is_ws(b) && b != b'-' && b != b'.' && b != b'/'
}

/// For input starting with a bare `ST` or `GS` segment: its element separator and, when the
/// segment shows it, its terminator (the first byte after the last element that cannot be data
/// of ST01-ST03, or of GS08).
fn bare_start(first: &[u8]) -> Option<(u8, Option<u8>)> {
    let head = first.get(..2)?;
    let rest = first.get(2..)?;
    let is_st = head.eq_ignore_ascii_case(b"ST");
    if !is_st && !head.eq_ignore_ascii_case(b"GS") {
        return None;
    }
    let e = *rest.first()?;
    if e.is_ascii_alphanumeric() || is_ws(e) {
        return None;
    }
    // GS02/GS03 may hold any character: the terminator is looked for after GS08 only.
    let before_last = if is_st { 1 } else { 8 };
    let mut seps = 0;
    for &b in rest {
        if b == e {
            seps += 1;
        } else if seps >= before_last && !b.is_ascii_alphanumeric() && b != b' ' {
            return Some((e, Some(b)));
        }
    }
    Some((e, None))
}

/// Whether `bytes` begin like a segment: two or three alphanumerics, then a separator byte that
/// recurs at least twice more in the next 40 bytes.
fn looks_like_segment(bytes: &[u8]) -> bool {
    let n = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let Some(&sep) = bytes.get(n) else {
        return false;
    };
    (2..=3).contains(&n)
        && !is_ws(sep)
        && !sep.is_ascii_alphanumeric()
        && bytes.iter().take(40).filter(|&&b| b == sep).count() >= 3
}

/// Whether `bytes` begin with a segment ID (2-3 alphanumerics, a letter first) and `sep`.
fn starts_segment(bytes: &[u8], sep: u8) -> bool {
    let n = bytes
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    (2..=3).contains(&n)
        && bytes.first().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.get(n) == Some(&sep)
}

/// A delimiter byte as shown in a message.
fn shown(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        (b as char).escape_debug().to_string()
    }
}

fn numeric_eq(a: &str, b: &str) -> bool {
    match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// What a segment is to the envelope state machine: each envelope segment has its own
/// transition (`Reader::on_gs`, `on_st`, ...), everything else is body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegKind {
    Gs,
    St,
    Se,
    Ge,
    Iea,
    Ta1,
    Body,
}

impl SegKind {
    /// From an ID's index (see `id_index`).
    fn of_key(k: usize) -> SegKind {
        match k {
            K_GS => SegKind::Gs,
            K_ST => SegKind::St,
            K_SE => SegKind::Se,
            K_GE => SegKind::Ge,
            K_IEA => SegKind::Iea,
            K_TA1 => SegKind::Ta1,
            _ => SegKind::Body,
        }
    }

    /// From an uppercased ID padded with NUL to three bytes.
    fn of_padded(pad: &[u8; 3]) -> SegKind {
        match pad {
            b"GS\0" => SegKind::Gs,
            b"ST\0" => SegKind::St,
            b"SE\0" => SegKind::Se,
            b"GE\0" => SegKind::Ge,
            b"IEA" => SegKind::Iea,
            b"TA1" => SegKind::Ta1,
            _ => SegKind::Body,
        }
    }
}

/// ISA01..ISA15 as read (ISA11 untrimmed: it may be the repetition separator).
fn isa_header(seg: &Segment<'_>) -> IsaHeader {
    let t = |n| seg.text(n).unwrap_or_default();
    IsaHeader {
        auth_qualifier: t(1),
        auth_info: t(2),
        security_qualifier: t(3),
        security_info: t(4),
        sender_qualifier: t(5),
        sender_id: t(6),
        receiver_qualifier: t(7),
        receiver_id: t(8),
        date: t(9),
        time: t(10),
        standards_id: seg.element(11).map(|c| c.into_owned()).unwrap_or_default(),
        version: t(12),
        control_number: t(13),
        ack_requested: t(14),
        usage: t(15),
    }
}

/// GS01..GS08.
fn gs_header(seg: &Segment<'_>) -> GsHeader {
    let t = |n| seg.text(n).unwrap_or_default();
    GsHeader {
        functional_id: t(1),
        app_sender: t(2),
        app_receiver: t(3),
        date: t(4),
        time: t(5),
        control_number: t(6),
        agency: t(7),
        version: t(8),
    }
}

struct IcState {
    header: IsaHeader,
    index: u32,
    groups: u32,
    synthetic: bool,
    /// GS06 values seen in this interchange (as numbers where they are numbers).
    seen_gs06: HashSet<String>,
}

struct GrpState {
    header: GsHeader,
    index: u32,
    txs: u32,
    synthetic: bool,
    /// ST02 values seen in this group (a set: big groups hold thousands of sets).
    seen_st02: HashSet<String>,
}

struct TxState<'a> {
    tx: Transaction<'a>,
}

enum Raw<'a> {
    Isa(usize),
    Seg(Cow<'a, [u8]>, usize),
}

/// Streaming reader: an iterator of `ReadEvent`s over one input.
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    opts: ReadOptions,
    delims: Delimiters,
    term: Vec<u8>,
    strip: bool,
    started: bool,
    finished: bool,
    seg_index: u32,
    ic_count: u32,
    real_isa_seen: bool,
    any_segment: bool,
    after_iea: bool,
    ic: Option<IcState>,
    grp: Option<GrpState>,
    tx: Option<TxState<'a>>,
    pending: VecDeque<ReadEvent<'a>>,
    /// Segment count of the last transaction set, used as the capacity of the next one.
    seg_hint: usize,
    /// Whether `fast_run` may take the bulk of the segments (off only in tests that prove it
    /// changes nothing).
    fast_path: bool,
    /// ISA13 values seen in this input (as numbers where they are numbers).
    seen_isa13: HashSet<String>,
    /// The line width of a file wrapped at a fixed column (its ISA is broken across lines): a
    /// line break at that column inside a segment is a wrap and is deleted; any other line
    /// break inside element data becomes a space.
    wrap: Option<usize>,
    /// A change of segment terminator was reported (once per input).
    term_change_reported: bool,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8], opts: &ReadOptions) -> Self {
        let d = opts.default_delimiters;
        Reader {
            input,
            pos: 0,
            opts: opts.clone(),
            delims: d,
            term: vec![d.segment],
            strip: d.segment != b'\r' && d.segment != b'\n',
            started: false,
            finished: false,
            seg_index: 0,
            ic_count: 0,
            real_isa_seen: false,
            any_segment: false,
            after_iea: false,
            ic: None,
            grp: None,
            tx: None,
            pending: VecDeque::new(),
            seg_hint: 0,
            fast_path: true,
            seen_isa13: HashSet::new(),
            wrap: None,
            term_change_reported: false,
        }
    }

    /// The same reader with every segment taken by the general path.
    #[cfg(test)]
    pub(super) fn without_fast_path(mut self) -> Self {
        self.fast_path = false;
        self
    }

    fn base_pos(&self, byte_offset: usize) -> Position {
        Position {
            byte_offset,
            interchange: self.ic.as_ref().map(|i| i.index as usize),
            group: self.grp.as_ref().map(|g| g.index as usize),
            transaction: self.tx.as_ref().map(|t| t.tx.index),
            ..Position::default()
        }
    }

    fn diag(&mut self, d: Diagnostic) {
        self.pending.push_back(ReadEvent::Diagnostic(d));
    }

    /// A count or control-number mismatch between a header and its trailer: a warning, or an
    /// error with `ReadOptions::strict_envelope`.
    fn mismatch(&mut self, code: C, message: String, position: Position) {
        self.diag(if self.opts.strict_envelope {
            Diagnostic::error(code, message, position)
        } else {
            Diagnostic::warning(code, message, position)
        });
    }

    fn start(&mut self) {
        self.started = true;
        if self.input.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.pos = 3;
        }
        match find_isa(self.input, self.pos) {
            Some(p) => {
                let prefix = self.input.get(self.pos..p).unwrap_or(&[]).trim_ascii();
                if prefix.is_empty() {
                    self.pos = p;
                } else {
                    let bare = bare_start(prefix).is_some();
                    if !bare && looks_like_segment(prefix) {
                        // A mangled ISA (`SA*…`, `IS*…`) or another segment where the
                        // interchange must begin: nothing before the ISA is skipped silently.
                        self.not_isa_start(prefix);
                        self.pos = p;
                    } else if !bare {
                        let off = self.pos;
                        let shown: String =
                            String::from_utf8_lossy(prefix).chars().take(40).collect();
                        self.diag(Diagnostic::warning(
                            C::JunkBeforeIsa,
                            format!(
                                "skipped {} bytes before the first isa: {:?}",
                                p - off,
                                shown
                            ),
                            Position {
                                byte_offset: off,
                                ..Position::default()
                            },
                        ));
                        self.pos = p;
                    }
                }
            }
            None => {
                let rest = self.input.get(self.pos..).unwrap_or(&[]);
                let first = rest.trim_ascii_start();
                match bare_start(first) {
                    Some(found) => self.bare_delimiters(found),
                    None if !first.is_empty() => self.not_isa_start(first),
                    None => {}
                }
            }
        }
    }

    /// The error for input that does not begin with an ISA (nor with a bare ST or GS).
    fn not_isa_start(&mut self, first: &[u8]) {
        // `first` is a slice of the input: its offset is the distance between the two starts.
        let offset = (first.as_ptr() as usize).saturating_sub(self.input.as_ptr() as usize);
        self.diag(Diagnostic::error(
            C::NoInterchange,
            format!(
                "the file does not start with an ISA interchange header (found `{}`)",
                excerpt(first)
            ),
            Position {
                byte_offset: offset,
                ..Position::default()
            },
        ));
    }

    /// Bare ST..SE / GS..GE input: the element separator and segment terminator are taken from
    /// the first segment when it shows them; otherwise the options' defaults stay.
    fn bare_delimiters(&mut self, found: (u8, Option<u8>)) {
        let (element, terminator) = found;
        let Some(t) = terminator else { return };
        let mut d = self.delims;
        d.element = element;
        d.segment = t;
        d.repetition = d.repetition.filter(|r| *r != element && *r != t);
        if d.component == element || d.component == t {
            d.component = [b'>', b':', b'^', b'|', b'\\']
                .into_iter()
                .find(|c| *c != element && *c != t)
                .unwrap_or(b'>');
        }
        self.delims = d;
        self.term = vec![t];
        self.strip = t != b'\r' && t != b'\n';
    }

    /// Detect delimiters at an ISA at `p`. On success sets the reader's delimiters and returns
    /// the ISA segment bytes and the position after its terminator.
    #[allow(clippy::result_large_err)]
    fn detect_isa(&mut self, p: usize) -> Result<(Cow<'a, [u8]>, usize, bool), Diagnostic> {
        let input = self.input;
        let at = |i: usize| input.get(i).copied();
        let bad = |code, msg: String| {
            Diagnostic::error(
                code,
                msg,
                Position {
                    byte_offset: p,
                    segment_id: Some("ISA".into()),
                    ..Position::default()
                },
            )
        };
        let e = at(p + 3).ok_or_else(|| bad(C::BadIsa, "isa truncated".into()))?;
        let fixed = input.len() >= p + 106 && ISA_SEPS.iter().all(|&o| at(p + o) == Some(e));
        let (comp, term_start) = if fixed {
            (at(p + 104).unwrap_or(0), p + 105)
        } else {
            let mut i = p + 3;
            let mut count = 0;
            while let Some(b) = at(i) {
                i += 1;
                if b == e {
                    count += 1;
                    if count == 16 {
                        break;
                    }
                }
            }
            if count < 16 {
                return Err(bad(
                    C::BadIsa,
                    format!("isa has {count} element separators, expected 16"),
                ));
            }
            while matches!(at(i), Some(b'\r' | b'\n')) {
                i += 1;
            }
            let c = at(i).ok_or_else(|| bad(C::BadIsa, "isa truncated before isa16".into()))?;
            (c, i + 1)
        };
        let t0 =
            at(term_start).ok_or_else(|| bad(C::BadIsa, "isa has no segment terminator".into()))?;
        let term: Vec<u8> = if t0 >= 0xC0 {
            let len = if t0 >= 0xF0 {
                4
            } else if t0 >= 0xE0 {
                3
            } else {
                2
            };
            match input.get(term_start..term_start + len) {
                Some(s) if std::str::from_utf8(s).is_ok() => s.to_vec(),
                _ => vec![t0],
            }
        } else {
            vec![t0]
        };
        let bad_char = |b: u8| b.is_ascii_alphanumeric() || b == b' ';
        if e == t0 || e == comp || comp == t0 || bad_char(e) || bad_char(comp) || bad_char(t0) {
            return Err(bad(
                C::BadDelimiters,
                format!(
                    "delimiters not distinct or alphanumeric: element {:?}, component {:?}, terminator {:?}",
                    e as char, comp as char, t0 as char
                ),
            ));
        }
        let raw = input.get(p..term_start).unwrap_or(&[]);
        let raw = strip_crlf(raw);
        self.delims = Delimiters {
            element: e,
            component: comp,
            repetition: None,
            segment: t0,
        };
        self.strip = !term.contains(&b'\r') && !term.contains(&b'\n');
        let end = term_start + term.len();
        self.term = term;
        Ok((raw, end, !fixed))
    }

    fn next_raw(&mut self) -> Option<Raw<'a>> {
        let input = self.input;
        loop {
            while input.get(self.pos).is_some_and(|&b| is_ws(b)) {
                self.pos += 1;
            }
            let rest = match input.get(self.pos..) {
                Some(r) if !r.is_empty() => r,
                _ => return None,
            };
            let t0 = self.term.first().copied().unwrap_or(b'~');
            if rest.first() == Some(&t0) && rest.starts_with(&self.term) {
                let mut p = self.base_pos(self.pos);
                p.segment_index = Some(self.seg_index as usize + 1);
                self.diag(Diagnostic::warning(
                    C::EmptySegment,
                    "empty segment (stray terminator) skipped",
                    p,
                ));
                self.pos += self.term.len();
                continue;
            }
            if is_isa_at(input, self.pos) {
                return Some(Raw::Isa(self.pos));
            }
            let start = self.pos;
            // Offset of the terminator in `rest`, and whether a CR/LF was seen before it.
            let mut crlf = false;
            let found = if self.term.len() == 1 {
                if self.strip {
                    // One pass finds the terminator or a CR/LF that has to be stripped.
                    match memchr::memchr3(t0, b'\r', b'\n', rest) {
                        Some(j) if rest.get(j) == Some(&t0) => Some(j),
                        Some(j) => {
                            crlf = true;
                            memchr::memchr(t0, rest.get(j..).unwrap_or(&[])).map(|k| j + k)
                        }
                        None => None,
                    }
                } else {
                    memchr::memchr(t0, rest)
                }
            } else {
                let mut hit = None;
                let mut i = 0;
                while let Some(off) = rest.get(i..).and_then(|s| memchr::memchr(t0, s)) {
                    let j = i + off;
                    if rest.get(j..).is_some_and(|s| s.starts_with(&self.term)) {
                        hit = Some(j);
                        break;
                    }
                    i = j + 1;
                }
                crlf = self.strip;
                hit
            };
            let (end, next) = match found {
                Some(j) => (start + j, start + j + self.term.len()),
                None => {
                    let mut p = self.base_pos(start);
                    p.segment_index = Some(self.seg_index as usize + 1);
                    self.diag(Diagnostic::warning(
                        C::MissingTerminator,
                        "last segment has no terminator",
                        p,
                    ));
                    crlf = self.strip;
                    (input.len(), input.len())
                }
            };
            self.pos = next;
            let mut raw = input.get(start..end).unwrap_or(&[]);
            if !self.strip {
                while let Some((&last, init)) = raw.split_last() {
                    if last == b'\r' || last == b'\n' {
                        raw = init;
                    } else {
                        break;
                    }
                }
            }
            // `crlf` is false only when the scan proved there is no CR/LF in `raw`.
            let raw = if crlf {
                self.unbreak(start, raw)
            } else {
                Cow::Borrowed(raw)
            };
            let blank = match raw.first() {
                None => true,
                Some(b) => b.is_ascii_whitespace() && raw.trim_ascii().is_empty(),
            };
            if blank {
                continue;
            }
            return Some(Raw::Seg(raw, start));
        }
    }

    /// Removes the line breaks inside one segment (`raw` starts at byte `start`): a break at
    /// the wrap column of a file wrapped at a fixed width is deleted, a break between two data
    /// characters becomes one space, any other (next to a separator or a blank) is deleted. A
    /// break right after a byte that could be a terminator and before what looks like the next
    /// segment means the file changes its terminator: reported once per input, as an error.
    fn unbreak(&mut self, start: usize, raw: &'a [u8]) -> Cow<'a, [u8]> {
        if !has_crlf(raw) {
            return Cow::Borrowed(raw);
        }
        let d = self.delims;
        let is_delim =
            |b: u8| b == d.element || b == d.component || Some(b) == d.repetition || b == d.segment;
        let data = |b: Option<u8>| b.is_some_and(|b| !is_delim(b) && !is_ws(b));
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(&b) = raw.get(i) {
            if b != b'\r' && b != b'\n' {
                out.push(b);
                i += 1;
                continue;
            }
            let run = i;
            while raw.get(i).is_some_and(|&b| b == b'\r' || b == b'\n') {
                i += 1;
            }
            let prev = run.checked_sub(1).and_then(|k| raw.get(k)).copied();
            let next = raw.get(i).copied();
            let rest = raw.get(i..).unwrap_or(&[]);
            let new_terminator = prev
                .filter(|&p| terminator_like(p) && !is_delim(p) && starts_segment(rest, d.element));
            if let Some(p) = new_terminator {
                if !self.term_change_reported {
                    self.term_change_reported = true;
                    let mut pos = self.base_pos(start + run - 1);
                    pos.segment_index = Some(self.seg_index as usize + 1);
                    let declared: String = String::from_utf8_lossy(&self.term)
                        .chars()
                        .flat_map(char::escape_debug)
                        .collect();
                    self.diag(Diagnostic::error(
                        C::TerminatorChange,
                        format!(
                            "the segment terminator changes from `{declared}` to `{}` at byte {}",
                            shown(p),
                            start + run - 1
                        ),
                        pos,
                    ));
                }
            }
            let abs = start + run;
            let before = self.input.get(..abs).unwrap_or(&[]);
            let line_start = memchr::memrchr(b'\n', before).map_or(0, |k| k + 1);
            let wrapped = self.wrap == Some(abs - line_start.min(abs));
            if !wrapped && new_terminator.is_none() && data(prev) && data(next) {
                out.push(b' ');
            }
        }
        Cow::Owned(out)
    }

    fn loc(&self, byte_offset: usize) -> Loc {
        Loc {
            byte_offset,
            segment_index: self.seg_index,
            segment_in_set: self
                .tx
                .as_ref()
                .map(|t| t.tx.segments.len() as u32 + 1)
                .unwrap_or(0),
            interchange: self.ic.as_ref().map(|i| i.index).unwrap_or(0),
            group: self.grp.as_ref().map(|g| g.index).unwrap_or(0),
            transaction: self.tx.as_ref().map(|t| t.tx.index as u32).unwrap_or(0),
        }
    }

    fn seg_pos(seg: &Segment<'_>, element: Option<usize>) -> Position {
        let mut p = seg.position();
        p.element = element;
        p
    }

    fn close_tx(&mut self, at: Option<&Segment<'_>>, offset: usize) {
        if let Some(t) = self.tx.take() {
            let mut p = match t.tx.segments.first() {
                Some(st) => Self::seg_pos(st, None),
                None => self.base_pos(offset),
            };
            if let Some(s) = at {
                p.byte_offset = s.position().byte_offset;
            }
            self.diag(Diagnostic::error(
                C::MissingSe,
                format!(
                    "transaction set {} {} not closed by se",
                    t.tx.id, t.tx.control_number
                ),
                p,
            ));
            self.pending.push_back(ReadEvent::Transaction(t.tx));
        }
    }

    fn close_group(&mut self, offset: usize) {
        if let Some(g) = self.grp.take() {
            if !g.synthetic {
                let mut p = self.base_pos(offset);
                p.group = Some(g.index as usize);
                self.diag(Diagnostic::error(
                    C::MissingGe,
                    format!(
                        "functional group {} not closed by ge",
                        g.header.control_number
                    ),
                    p,
                ));
            }
            self.pending.push_back(ReadEvent::GroupEnd {
                index: g.index as usize,
                closed: false,
            });
        }
    }

    fn close_ic(&mut self, offset: usize) {
        if let Some(i) = self.ic.take() {
            if !i.synthetic {
                let mut p = self.base_pos(offset);
                p.interchange = Some(i.index as usize);
                self.diag(Diagnostic::error(
                    C::MissingIea,
                    format!("interchange {} not closed by iea", i.header.control_number),
                    p,
                ));
            }
            self.pending.push_back(ReadEvent::InterchangeEnd {
                index: i.index as usize,
                closed: false,
            });
        }
    }

    fn open_synthetic_ic(&mut self, offset: usize) {
        self.ic_count += 1;
        self.ic = Some(IcState {
            header: IsaHeader::default(),
            index: self.ic_count,
            groups: 0,
            synthetic: true,
            seen_gs06: HashSet::new(),
        });
        self.pending.push_back(ReadEvent::InterchangeStart {
            header: IsaHeader::default(),
            delimiters: self.delims,
            terminator: self.term.clone(),
            index: self.ic_count as usize,
            byte_offset: offset,
            synthetic: true,
        });
        self.after_iea = false;
    }

    fn open_group(&mut self, header: GsHeader, synthetic: bool) {
        let ic = match self.ic.as_mut() {
            Some(ic) => ic,
            None => return,
        };
        ic.groups += 1;
        let index = ic.groups;
        self.grp = Some(GrpState {
            header: header.clone(),
            index,
            txs: 0,
            synthetic,
            seen_st02: HashSet::new(),
        });
        self.pending.push_back(ReadEvent::GroupStart {
            header,
            index: index as usize,
            synthetic,
        });
    }

    /// The ISA transition: a broken ISA is reported and skipped to the next one; a good one
    /// closes whatever is open, takes its delimiters and opens a real interchange.
    fn on_isa(&mut self, p: usize) {
        match self.detect_isa(p) {
            Err(d) => {
                self.diag(d);
                self.pos = find_isa(self.input, p + 3).unwrap_or(self.input.len());
            }
            Ok((raw, end, tolerant)) => {
                // An ISA broken across lines means a file wrapped at a fixed width: the
                // width of its first line.
                let isa = self
                    .input
                    .get(p..end.saturating_sub(self.term.len()))
                    .unwrap_or(&[]);
                self.wrap = memchr::memchr2(b'\r', b'\n', isa).filter(|&w| w > 0);
                self.pos = end;
                self.close_tx(None, p);
                self.close_group(p);
                self.close_ic(p);
                self.seg_index += 1;
                self.any_segment = true;
                self.real_isa_seen = true;
                self.after_iea = false;
                self.ic_count += 1;
                let loc = Loc {
                    byte_offset: p,
                    segment_index: self.seg_index,
                    interchange: self.ic_count,
                    ..Loc::default()
                };
                let seg = Segment::new(raw, &self.delims, loc);
                let header = isa_header(&seg);
                self.take_repetition(&header);
                self.check_isa(&seg, &header, tolerant);
                self.open_ic(header, p);
            }
        }
    }

    /// From 00402 on, ISA11 is the repetition separator when it is a plausible one.
    fn take_repetition(&mut self, header: &IsaHeader) {
        let ver: u32 = header.version.trim().parse().unwrap_or(0);
        if let [r] = header.standards_id.as_bytes() {
            let r = *r;
            if ver >= 402
                && !r.is_ascii_alphanumeric()
                && r != b' '
                && r != self.delims.element
                && r != self.delims.component
                && r != self.delims.segment
            {
                self.delims.repetition = Some(r);
            }
        }
    }

    /// The ISA's own diagnostics: read by counting separators, ISA13 not numeric or repeated.
    fn check_isa(&mut self, seg: &Segment<'_>, header: &IsaHeader, tolerant: bool) {
        if tolerant {
            self.diag(Diagnostic::warning(
                C::IsaNotFixedWidth,
                "isa is not fixed width, delimiters found by counting separators",
                Self::seg_pos(seg, None),
            ));
        }
        let isa13 = &header.control_number;
        if isa13.is_empty() || !isa13.bytes().all(|b| b.is_ascii_digit()) {
            self.diag(Diagnostic::error(
                C::InvalidValue,
                format!("isa13 {isa13:?} is not numeric"),
                Self::seg_pos(seg, Some(13)),
            ));
        }
        if !self.seen_isa13.insert(control_key(isa13)) && !isa13.is_empty() {
            self.diag(Diagnostic::warning(
                C::DuplicateInterchange,
                format!(
                    "isa13 {isa13:?} repeats the control number of an earlier interchange in this file"
                ),
                Self::seg_pos(seg, Some(13)),
            ));
        }
    }

    fn open_ic(&mut self, header: IsaHeader, byte_offset: usize) {
        self.ic = Some(IcState {
            header: header.clone(),
            index: self.ic_count,
            groups: 0,
            synthetic: false,
            seen_gs06: HashSet::new(),
        });
        self.pending.push_back(ReadEvent::InterchangeStart {
            header,
            delimiters: self.delims,
            terminator: self.term.clone(),
            index: self.ic_count as usize,
            byte_offset,
            synthetic: false,
        });
    }

    /// Checks the segment's ID, shape and length, and returns what it is to the envelope.
    fn check_segment(&mut self, seg: &Segment<'_>) -> SegKind {
        let (key, valid, known) = match quick_id(seg.raw(), self.delims.element) {
            Some(k) => (SegKind::of_key(k), true, known_index(k)),
            None => {
                // General path: the uppercased trimmed ID padded with NUL to three bytes (all NUL
                // for longer IDs) picks the envelope segments, exactly as it always has.
                let idb = seg.id_bytes();
                let mut pad = [0u8; 3];
                if idb.len() <= 3 {
                    for (k, b) in pad.iter_mut().zip(idb) {
                        *k = b.to_ascii_uppercase();
                    }
                }
                let valid = (2..=3).contains(&idb.len())
                    && idb.iter().all(|b| b.is_ascii_alphanumeric())
                    && idb.first().is_some_and(|b| b.is_ascii_alphabetic());
                let known = valid && id_index(idb).is_some_and(known_index);
                (SegKind::of_padded(&pad), valid, known)
            }
        };
        if !valid {
            let id = seg.raw().get(..seg.raw().len().min(8)).unwrap_or(&[]);
            self.diag(Diagnostic::error(
                C::BadSegmentId,
                format!(
                    "bad segment id {:?}",
                    String::from_utf8_lossy(id)
                        .chars()
                        .take(8)
                        .collect::<String>()
                ),
                Self::seg_pos(seg, None),
            ));
        } else if !known {
            self.diag(Diagnostic::warning(
                C::UnknownSegmentId,
                format!("unknown segment id {}", seg.id()),
                Self::seg_pos(seg, None),
            ));
        }
        if seg.has_trailing_separator() {
            self.diag(Diagnostic::warning(
                C::TrailingSeparator,
                "trailing element separator",
                Self::seg_pos(seg, Some(seg.element_count() + 1)),
            ));
        }
        if seg.raw().len() > self.opts.max_segment_len {
            self.diag(Diagnostic::error(
                C::TooLong,
                format!(
                    "segment is {} bytes, limit {}",
                    seg.raw().len(),
                    self.opts.max_segment_len
                ),
                Self::seg_pos(seg, None),
            ));
        }
        key
    }

    /// One segment other than the ISA: checked, then dispatched to the transition for what it
    /// is to the envelope, like the states of csv-core's reader.
    fn on_segment(&mut self, raw: Cow<'a, [u8]>, offset: usize) {
        self.seg_index += 1;
        self.any_segment = true;
        let seg = Segment::new(raw, &self.delims, self.loc(offset));
        match self.check_segment(&seg) {
            SegKind::Gs => self.on_gs(&seg, offset),
            SegKind::St => self.on_st(seg, offset),
            SegKind::Se => self.on_se(seg),
            SegKind::Ge => self.on_ge(&seg, offset),
            SegKind::Iea => self.on_iea(&seg, offset),
            // An interchange acknowledgment sits directly in a real interchange.
            SegKind::Ta1 if self.tx.is_none() && self.ic.as_ref().is_some_and(|i| !i.synthetic) => {
                self.on_ta1(&seg)
            }
            SegKind::Ta1 | SegKind::Body => self.on_body(seg),
        }
    }

    /// GS: closes an open set and group, opens a group (inside an invented interchange when
    /// there is no ISA).
    fn on_gs(&mut self, seg: &Segment<'_>, offset: usize) {
        self.close_tx(Some(seg), offset);
        if self.grp.is_some() {
            self.close_group(offset);
        }
        if self.ic.is_none() {
            self.open_synthetic_ic(offset);
        }
        let header = gs_header(seg);
        let gs06 = header.control_number.clone();
        let repeated = self
            .ic
            .as_mut()
            .is_some_and(|i| !i.synthetic && !i.seen_gs06.insert(control_key(&gs06)));
        self.open_group(header, false);
        if repeated && !gs06.is_empty() {
            let mut p = Self::seg_pos(seg, Some(6));
            p.group = self.grp.as_ref().map(|g| g.index as usize);
            self.diag(Diagnostic::warning(
                C::DuplicateGroup,
                format!(
                    "gs06 {gs06:?} repeats the control number of an earlier group in this interchange"
                ),
                p,
            ));
        }
    }

    /// ST: closes an open set, invents the interchange and group it lacks, opens a set.
    fn on_st(&mut self, mut seg: Segment<'a>, offset: usize) {
        self.close_tx(Some(&seg), offset);
        if self.ic.is_none() {
            self.st_without_isa(&seg, offset);
        }
        if self.grp.is_none() {
            self.st_without_gs(&seg);
        }
        let mut index = 1;
        if let Some(g) = self.grp.as_mut() {
            g.txs += 1;
            index = g.txs as usize;
        }
        let id = seg.text(1).unwrap_or_default();
        let control_number = seg.text(2).unwrap_or_default();
        // A group the reader invented (bare sets, ST without GS) has no control number of
        // its own to keep unique within: its sets are not checked against each other.
        let dup = match self.grp.as_mut() {
            Some(g) if !g.synthetic => {
                !g.seen_st02.insert(control_number.clone()) && !control_number.is_empty()
            }
            _ => false,
        };
        for (n, value) in [(1, &id), (2, &control_number)] {
            if value.is_empty() {
                self.diag(Diagnostic::error(
                    C::MissingElement,
                    format!("st0{n} missing"),
                    Self::seg_pos(&seg, Some(n)),
                ));
            }
        }
        let implementation_ref = seg.text(3);
        self.tx = Some(TxState {
            tx: Transaction {
                id,
                control_number,
                implementation_ref,
                segments: Vec::with_capacity(self.seg_hint),
                index,
                closed: false,
            },
        });
        seg.set_loc(self.loc(offset));
        if dup {
            self.diag(Diagnostic::error(
                C::DuplicateControlNumber,
                "st02 repeats a control number already used in this group",
                Self::seg_pos(&seg, Some(2)),
            ));
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.tx.segments.push(seg);
        }
    }

    /// An ST before any ISA (a bare set: a warning) or after an IEA (an error), inside an
    /// invented interchange.
    fn st_without_isa(&mut self, seg: &Segment<'_>, offset: usize) {
        let p = Self::seg_pos(seg, None);
        if !self.real_isa_seen {
            let d = self.delims;
            let term: String = String::from_utf8_lossy(&self.term)
                .chars()
                .flat_map(char::escape_debug)
                .collect();
            self.diag(Diagnostic::warning(
                C::NoInterchange,
                format!(
                    "transaction set without isa/gs envelope (no 997 answers it), read with element separator `{}` and segment terminator `{term}`",
                    shown(d.element)
                ),
                p,
            ));
        } else {
            self.diag(Diagnostic::error(
                C::SegmentAfterIea,
                "st after iea without a new isa",
                p,
            ));
        }
        self.open_synthetic_ic(offset);
    }

    /// An ST outside a group, inside an invented group (an error in a real interchange).
    fn st_without_gs(&mut self, seg: &Segment<'_>) {
        let synthetic = self.ic.as_ref().is_some_and(|i| i.synthetic);
        if !synthetic {
            self.diag(Diagnostic::error(
                C::MissingGs,
                "st without gs",
                Self::seg_pos(seg, None),
            ));
        }
        self.open_group(GsHeader::default(), true);
    }

    /// SE: closes the open set, checks its count and control number, yields it.
    fn on_se(&mut self, seg: Segment<'a>) {
        let Some(mut ts) = self.tx.take() else {
            self.diag(Diagnostic::error(
                C::UnexpectedTrailer,
                "se without st",
                Self::seg_pos(&seg, None),
            ));
            return;
        };
        ts.tx.segments.push(seg);
        ts.tx.closed = true;
        let count = ts.tx.segments.len();
        self.seg_hint = count.min(MAX_SEG_HINT);
        if let Some(se) = ts.tx.segments.last() {
            match se.text(1).map(|v| v.parse::<usize>()) {
                Some(Ok(n)) if n == count => {}
                Some(Ok(n)) => self.mismatch(
                    C::SeCountMismatch,
                    format!("se01 says {n} segments, counted {count}"),
                    Self::seg_pos(se, Some(1)),
                ),
                Some(Err(_)) => self.diag(Diagnostic::error(
                    C::InvalidValue,
                    "se01 is not a number",
                    Self::seg_pos(se, Some(1)),
                )),
                None => self.diag(Diagnostic::error(
                    C::MissingElement,
                    "se01 missing",
                    Self::seg_pos(se, Some(1)),
                )),
            }
            let st02 = &ts.tx.control_number;
            self.check_control(se, C::SeControlMismatch, "se02", "st02", st02);
        }
        self.pending.push_back(ReadEvent::Transaction(ts.tx));
    }

    /// GE: closes an open set and the group, checks its count and control number.
    fn on_ge(&mut self, seg: &Segment<'_>, offset: usize) {
        self.close_tx(Some(seg), offset);
        let Some(g) = self.grp.take() else {
            self.diag(Diagnostic::error(
                C::UnexpectedTrailer,
                "ge without gs",
                Self::seg_pos(seg, None),
            ));
            return;
        };
        self.check_count(seg, C::GeCountMismatch, "ge01", "transaction sets", g.txs);
        let gs06 = &g.header.control_number;
        self.check_control(seg, C::GeControlMismatch, "ge02", "gs06", gs06);
        self.pending.push_back(ReadEvent::GroupEnd {
            index: g.index as usize,
            closed: true,
        });
    }

    /// IEA: closes an open set and group and the interchange, checks its count and control
    /// number.
    fn on_iea(&mut self, seg: &Segment<'_>, offset: usize) {
        self.close_tx(Some(seg), offset);
        self.close_group(offset);
        let Some(ic) = self.ic.take() else {
            self.diag(Diagnostic::error(
                C::UnexpectedTrailer,
                "iea without isa",
                Self::seg_pos(seg, None),
            ));
            return;
        };
        self.check_count(seg, C::IeaCountMismatch, "iea01", "groups", ic.groups);
        let isa13 = &ic.header.control_number;
        self.check_control(seg, C::IeaControlMismatch, "iea02", "isa13", isa13);
        self.after_iea = true;
        self.pending.push_back(ReadEvent::InterchangeEnd {
            index: ic.index as usize,
            closed: !ic.synthetic,
        });
    }

    /// A TA1 directly in a real interchange.
    fn on_ta1(&mut self, seg: &Segment<'_>) {
        let (ta1, ds) = Ta1::parse(seg);
        for d in ds {
            self.diag(d);
        }
        self.pending.push_back(ReadEvent::Ta1(ta1));
    }

    /// Any other segment: part of the open set, or reported and ignored outside one.
    fn on_body(&mut self, seg: Segment<'a>) {
        if let Some(tx) = self.tx.as_mut() {
            tx.tx.segments.push(seg);
        } else if self.ic.is_none() && self.after_iea {
            self.diag(Diagnostic::error(
                C::SegmentAfterIea,
                format!("segment {} after iea ignored", seg.id()),
                Self::seg_pos(&seg, None),
            ));
        } else {
            self.diag(Diagnostic::error(
                C::SegmentOutsideSet,
                format!("segment {} outside a transaction set ignored", seg.id()),
                Self::seg_pos(&seg, None),
            ));
        }
    }

    /// A GE01 or IEA01 against the count of what it closes.
    fn check_count(&mut self, seg: &Segment<'_>, code: C, name: &str, what: &str, counted: u32) {
        match seg.text(1).map(|v| v.parse::<u32>()) {
            Some(Ok(n)) if n == counted => {}
            Some(Ok(n)) => self.mismatch(
                code,
                format!("{name} says {n} {what}, counted {counted}"),
                Self::seg_pos(seg, Some(1)),
            ),
            _ => self.diag(Diagnostic::error(
                code,
                format!("{name} missing or not a number"),
                Self::seg_pos(seg, Some(1)),
            )),
        }
    }

    /// A trailer's control number (element 2) against its header's.
    fn check_control(&mut self, seg: &Segment<'_>, code: C, name: &str, header: &str, want: &str) {
        let value = seg.text(2).unwrap_or_default();
        if !numeric_eq(&value, want) {
            self.mismatch(
                code,
                format!("{name} {value:?} does not match {header} {want:?}"),
                Self::seg_pos(seg, Some(2)),
            );
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        let end = self.input.len();
        self.close_tx(None, end);
        self.close_group(end);
        self.close_ic(end);
        if !self.any_segment {
            self.diag(Diagnostic::error(
                C::NoInterchange,
                "no isa and no transaction set found",
                Position {
                    byte_offset: 0,
                    ..Position::default()
                },
            ));
        }
    }

    /// The hot loop, for the bulk of every file: inside an open transaction set with a one-byte
    /// terminator, push every segment that is known, well formed and not part of the envelope
    /// (those for which `check_segment` reports nothing and `on_body` only pushes)
    /// straight into the set, in one tight loop. It stops, leaving `pos` at the segment, at the
    /// first thing the general path must see: an envelope segment, an ISA, a CR/LF inside a
    /// segment, a stray terminator, an odd or unknown ID, a trailing separator, an oversized
    /// segment or the end of input. Produces exactly what the general path would.
    fn fast_run(&mut self) {
        let input = self.input;
        let [t0] = self.term[..] else { return };
        if !self.strip || !self.pending.is_empty() {
            return;
        }
        let delims = self.delims;
        let sep = delims.element;
        let max_len = self.opts.max_segment_len;
        let interchange = self.ic.as_ref().map(|i| i.index).unwrap_or(0);
        let group = self.grp.as_ref().map(|g| g.index).unwrap_or(0);
        let Some(ts) = self.tx.as_mut() else { return };
        let transaction = ts.tx.index as u32;
        let segments = &mut ts.tx.segments;
        let mut pos = self.pos;
        let mut seg_index = self.seg_index;
        loop {
            while input.get(pos).is_some_and(|&b| b == b'\n' || b == b'\r') {
                pos += 1;
            }
            let Some(rest) = input.get(pos..) else { break };
            let Some(j) = memchr::memchr(t0, rest) else {
                break;
            };
            let Some(raw) = rest.get(..j) else { break };
            if raw.len() > max_len || has_crlf_short(raw) || raw.last() == Some(&sep) {
                break;
            }
            match quick_id(raw, sep) {
                Some(k)
                    if known_index(k)
                        && !matches!(k, K_GS | K_ST | K_SE | K_GE | K_IEA | K_ISA) => {}
                _ => break,
            }
            seg_index += 1;
            let loc = Loc {
                byte_offset: pos,
                segment_index: seg_index,
                segment_in_set: segments.len() as u32 + 1,
                interchange,
                group,
                transaction,
            };
            segments.push(Segment::new(Cow::Borrowed(raw), &delims, loc));
            pos += j + 1;
        }
        if seg_index != self.seg_index {
            self.any_segment = true;
        }
        self.seg_index = seg_index;
        self.pos = pos;
    }

    fn step(&mut self) {
        if !self.started {
            self.start();
        }
        if self.fast_path && self.tx.is_some() {
            self.fast_run();
        }
        match self.next_raw() {
            None => self.finish(),
            Some(Raw::Isa(p)) => self.on_isa(p),
            Some(Raw::Seg(raw, off)) => self.on_segment(raw, off),
        }
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = ReadEvent<'a>;

    fn next(&mut self) -> Option<ReadEvent<'a>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            if self.finished {
                return None;
            }
            self.step();
        }
    }
}

/// Read a whole input into a `Document`. Never panics; collects every diagnostic.
pub fn read<'a>(input: &'a [u8], opts: &ReadOptions) -> Document<'a> {
    let mut doc = Document {
        interchanges: Vec::new(),
        diagnostics: Vec::new(),
    };
    for ev in Reader::new(input, opts) {
        match ev {
            ReadEvent::InterchangeStart {
                header,
                delimiters,
                terminator,
                index,
                byte_offset,
                synthetic,
            } => doc.interchanges.push(Interchange {
                header,
                delimiters,
                terminator,
                groups: Vec::new(),
                ta1: Vec::new(),
                index,
                byte_offset,
                closed: false,
                synthetic,
            }),
            ReadEvent::Ta1(t) => {
                if let Some(ic) = doc.interchanges.last_mut() {
                    ic.ta1.push(t);
                }
            }
            ReadEvent::GroupStart {
                header,
                index,
                synthetic,
            } => {
                if let Some(ic) = doc.interchanges.last_mut() {
                    ic.groups.push(Group {
                        header,
                        transactions: Vec::new(),
                        index,
                        interchange: ic.index,
                        closed: false,
                        synthetic,
                    });
                }
            }
            ReadEvent::Transaction(tx) => {
                if let Some(g) = doc
                    .interchanges
                    .last_mut()
                    .and_then(|ic| ic.groups.last_mut())
                {
                    g.transactions.push(tx);
                }
            }
            ReadEvent::GroupEnd { closed, .. } => {
                if let Some(g) = doc
                    .interchanges
                    .last_mut()
                    .and_then(|ic| ic.groups.last_mut())
                {
                    g.closed = closed;
                }
            }
            ReadEvent::InterchangeEnd { closed, .. } => {
                if let Some(ic) = doc.interchanges.last_mut() {
                    ic.closed = closed;
                }
            }
            ReadEvent::Diagnostic(d) => doc.diagnostics.push(d),
        }
    }
    doc
}

#[cfg(test)]
mod word_tests {
    use super::{has_crlf, has_crlf_short};

    #[test]
    fn word_at_a_time_crlf_check_agrees_with_memchr() {
        for len in 0..40usize {
            for at in 0..=len {
                for b in [b'\r', b'\n', b'\x0b', b'\x8d', b'\x0a' ^ 0x80, b'*'] {
                    let mut v = vec![b'A'; len];
                    if let Some(x) = v.get_mut(at) {
                        *x = b;
                    }
                    assert_eq!(has_crlf_short(&v), has_crlf(&v), "{v:?}");
                }
            }
        }
    }
}
