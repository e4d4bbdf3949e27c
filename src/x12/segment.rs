//! `Segment`: one tokenised segment as a byte slice of the input (borrowed, or owned when CR/LF
//! had to be removed), split into elements, components and repetitions lazily on access. Values
//! decode as UTF-8 with a Latin-1 fallback. Also holds `Delimiters`, the per-interchange
//! separators.

use super::error::Position;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::OnceLock;

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

/// Compact location data stored per segment; the full `Position` is built on first request.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Loc {
    pub(super) byte_offset: usize,
    pub(super) segment_index: u32,
    pub(super) segment_in_set: u32,
    pub(super) interchange: u32,
    pub(super) group: u32,
    pub(super) transaction: u32,
}

/// One segment (no terminator).
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    raw: Cow<'a, [u8]>,
    element_sep: u8,
    component_sep: u8,
    repetition_sep: Option<u8>,
    id_end: usize,
    loc: Loc,
    position: OnceLock<Box<Position>>,
}

impl<'a> Segment<'a> {
    pub(super) fn new(raw: Cow<'a, [u8]>, delims: &Delimiters, loc: Loc) -> Self {
        let id_end = raw
            .iter()
            .position(|&b| b == delims.element)
            .unwrap_or(raw.len());
        Segment {
            raw,
            element_sep: delims.element,
            component_sep: delims.component,
            repetition_sep: delims.repetition,
            id_end,
            loc,
            position: OnceLock::new(),
        }
    }

    pub(super) fn set_loc(&mut self, loc: Loc) {
        self.loc = loc;
        self.position = OnceLock::new();
    }

    /// Raw bytes of the segment without terminator.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    fn id_bytes(&self) -> &[u8] {
        let b = self.raw.get(..self.id_end).unwrap_or(&[]);
        b.trim_ascii()
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
        let rest = self.raw.get(self.id_end..)?;
        let mut it = rest.split(|&b| b == self.element_sep);
        it.next()?; // the empty piece before the first separator
        let v = it.nth(n - 1)?;
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
        let Some(rest) = self.raw.get(self.id_end..) else {
            return 0;
        };
        let mut count = 0;
        for (i, piece) in rest.split(|&b| b == self.element_sep).enumerate() {
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
        self.raw.len() > self.id_end && self.raw.last() == Some(&self.element_sep)
    }

    /// Where this segment is.
    pub fn position(&self) -> &Position {
        self.position.get_or_init(|| {
            let l = self.loc;
            let nz = |v: u32| if v == 0 { None } else { Some(v as usize) };
            Box::new(Position {
                byte_offset: l.byte_offset,
                interchange: nz(l.interchange),
                group: nz(l.group),
                transaction: nz(l.transaction),
                segment_id: Some(self.id().to_string()),
                segment_index: nz(l.segment_index),
                segment_in_set: nz(l.segment_in_set),
                element: None,
                component: None,
            })
        })
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
