//! `Segment`: one tokenised segment as a byte slice of the input (borrowed, or owned when CR/LF
//! had to be removed), split into elements, components and repetitions lazily on access. Values
//! decode as UTF-8 with a Latin-1 fallback. Also holds `Delimiters`, the per-interchange
//! separators.

use super::error::Position;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::borrow::Cow;

/// The separators of one interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Delimiters {
    pub element: u8,
    pub component: u8,
    pub repetition: Option<u8>,
    /// First byte of the segment terminator (see `Interchange::terminator` for multi-byte ones).
    pub segment: u8,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            element: b'*',
            component: b'>',
            repetition: None,
            segment: b'~',
        }
    }
}

/// Decode bytes as UTF-8, falling back to Latin-1 (every byte one char).
pub(super) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
    }
}

/// Location data the reader hands to `Segment::new`; the full `Position` is built on
/// request.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Loc {
    pub(super) byte_offset: usize,
    pub(super) segment_index: u32,
    pub(super) segment_in_set: u32,
    pub(super) interchange: u32,
    pub(super) group: u32,
    pub(super) transaction: u32,
}

/// Segment bytes: a slice of the input, or (rarely, when CR/LF had to be removed) an owned copy
/// behind a thin pointer, so that the whole thing is two words.
#[derive(Debug, Clone)]
enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(Box<Box<[u8]>>),
}

impl Bytes<'_> {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(v) => v,
        }
    }
}

/// One segment (no terminator).
///
/// Kept to 48 bytes: the bytes (16) and the location and separators stored flat (32); the
/// `Position` is built on request (diagnostics only). The segment ID end is found again on access
/// (IDs are 2-3 bytes).
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    raw: Bytes<'a>,
    byte_offset: usize,
    segment_index: u32,
    segment_in_set: u32,
    interchange: u32,
    group: u32,
    transaction: u32,
    element_sep: u8,
    component_sep: u8,
    repetition_sep: Option<u8>,
}

impl<'a> Segment<'a> {
    #[inline]
    pub(super) fn new(raw: Cow<'a, [u8]>, delims: &Delimiters, loc: Loc) -> Self {
        let raw = match raw {
            Cow::Borrowed(b) => Bytes::Borrowed(b),
            Cow::Owned(v) => Bytes::Owned(Box::new(v.into_boxed_slice())),
        };
        Segment {
            raw,
            byte_offset: loc.byte_offset,
            segment_index: loc.segment_index,
            segment_in_set: loc.segment_in_set,
            interchange: loc.interchange,
            group: loc.group,
            transaction: loc.transaction,
            element_sep: delims.element,
            component_sep: delims.component,
            repetition_sep: delims.repetition,
        }
    }

    pub(super) fn set_loc(&mut self, loc: Loc) {
        self.byte_offset = loc.byte_offset;
        self.segment_index = loc.segment_index;
        self.segment_in_set = loc.segment_in_set;
        self.interchange = loc.interchange;
        self.group = loc.group;
        self.transaction = loc.transaction;
    }

    /// Raw bytes of the segment without terminator.
    #[inline]
    pub fn raw(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// Segment ID bytes as sent (up to the first element separator), trimmed.
    #[inline]
    pub(super) fn id_bytes(&self) -> &[u8] {
        let raw = self.raw();
        let end = raw
            .iter()
            .position(|&b| b == self.element_sep)
            .unwrap_or(raw.len());
        raw.get(..end).unwrap_or(&[]).trim_ascii()
    }

    /// Segment ID as sent, trimmed. Non-UTF-8 IDs come back as "".
    pub fn id(&self) -> &str {
        std::str::from_utf8(self.id_bytes()).unwrap_or("")
    }

    /// Case-insensitive ID comparison.
    pub fn is(&self, id: &str) -> bool {
        self.id_bytes().eq_ignore_ascii_case(id.as_bytes())
    }

    /// Raw bytes of element `n` (1-based), empty or absent → None.
    pub fn element_bytes(&self, n: usize) -> Option<&[u8]> {
        if n == 0 {
            return None;
        }
        // Piece 0 is the ID; piece n is element n.
        let v = self.raw().split(|&b| b == self.element_sep).nth(n)?;
        if v.is_empty() {
            None
        } else {
            Some(v)
        }
    }

    /// Element `n` (1-based; BAK02 = element(2)). None if absent or empty. Not trimmed.
    pub fn element(&self, n: usize) -> Option<Cow<'_, str>> {
        self.element_bytes(n).map(decode)
    }

    /// Element `n` trimmed, None if blank.
    pub fn text(&self, n: usize) -> Option<String> {
        let e = self.element(n)?;
        let t = e.trim();
        if t.is_empty() {
            None
        } else {
            Some(t.to_string())
        }
    }

    /// Component `c` (1-based) of element `n`.
    pub fn component(&self, n: usize, c: usize) -> Option<Cow<'_, str>> {
        if c == 0 {
            return None;
        }
        let e = self.element_bytes(n)?;
        let v = e.split(|&b| b == self.component_sep).nth(c - 1)?;
        if v.is_empty() {
            None
        } else {
            Some(decode(v))
        }
    }

    /// Repetitions of element `n` (split by the repetition separator when the interchange has
    /// one); empty element → empty vec.
    pub fn repetitions(&self, n: usize) -> Vec<Cow<'_, str>> {
        let Some(e) = self.element_bytes(n) else {
            return Vec::new();
        };
        match self.repetition_sep {
            Some(r) => e.split(|&b| b == r).map(decode).collect(),
            None => vec![decode(e)],
        }
    }

    /// Number of elements, not counting trailing empty ones.
    pub fn element_count(&self) -> usize {
        let mut count = 0;
        // Piece 0 is the ID and is never counted.
        for (i, piece) in self.raw().split(|&b| b == self.element_sep).enumerate() {
            if i > 0 && !piece.is_empty() {
                count = i;
            }
        }
        count
    }

    /// All elements (1..=element_count) as strings, empty ones as "".
    pub fn elements(&self) -> Vec<Cow<'_, str>> {
        (1..=self.element_count())
            .map(|n| self.element(n).unwrap_or(Cow::Borrowed("")))
            .collect()
    }

    /// Whether the raw segment ends with an element separator.
    pub fn has_trailing_separator(&self) -> bool {
        // A separator at the end means there is one, so the ID ends before it.
        self.raw().last() == Some(&self.element_sep)
    }

    /// Where this segment is.
    pub fn position(&self) -> Position {
        let nz = |v: u32| if v == 0 { None } else { Some(v as usize) };
        Position {
            byte_offset: self.byte_offset,
            interchange: nz(self.interchange),
            group: nz(self.group),
            transaction: nz(self.transaction),
            segment_id: Some(self.id().to_string()),
            segment_index: nz(self.segment_index),
            segment_in_set: nz(self.segment_in_set),
            element: None,
            component: None,
        }
    }
}

impl Serialize for Segment<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Segment", 2)?;
        st.serialize_field("id", self.id())?;
        st.serialize_field("elements", &self.elements())?;
        st.end()
    }
}
