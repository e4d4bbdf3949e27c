//! Typed TA1 Interchange Acknowledgment (reference §1.6): the segment that sits directly in an
//! interchange (no GS/ST) and accepts or rejects a whole interchange by its ISA13.

use super::common::{code, missing_element, txt};
use super::error::{Diagnostic, Position};
use super::segment::Segment;
use serde::Serialize;

/// One TA1 segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ta1 {
    /// TA101: the ISA13 of the interchange acknowledged.
    pub control_number: String,
    /// TA102 (YYMMDD) of the acknowledged interchange.
    pub date: Option<String>,
    /// TA103 (HHMM).
    pub time: Option<String>,
    /// TA104 (I17): `A` accepted, `E` accepted with errors noted, `R` rejected.
    pub ack_code: String,
    /// TA105 (I18): `000` no error, `001`..`031` the interchange note code.
    pub note_code: Option<String>,
    pub position: Position,
}

impl Ta1 {
    /// Reads one TA1 segment; a missing TA101 or TA104 is an error diagnostic.
    pub fn parse(seg: &Segment<'_>) -> (Ta1, Vec<Diagnostic>) {
        let mut d = Vec::new();
        let control_number = txt(seg, 1).unwrap_or_else(|| {
            d.push(missing_element(seg, 1));
            String::new()
        });
        let ack_code = code(seg, 4).unwrap_or_else(|| {
            d.push(missing_element(seg, 4));
            String::new()
        });
        let t = Ta1 {
            control_number,
            date: txt(seg, 2),
            time: txt(seg, 3),
            ack_code,
            note_code: txt(seg, 5),
            position: seg.position(),
        };
        (t, d)
    }

    /// TA104 is `R`: the interchange was rejected.
    pub fn is_rejection(&self) -> bool {
        self.ack_code == "R"
    }
}
