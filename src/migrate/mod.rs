//! Moving from a VAN (README "Moving from your VAN"): the ERP already receives Ingram's 850s
//! through a VAN, in a layout its import map is tuned to. [`learn`] reads an archive of those
//! 850s (and, for the same POs, Ingram's webhooks) and writes the mapping that reproduces them;
//! [`compare`] renders webhooks with a mapping and reports, per PO, the first difference from
//! the VAN's 850; [`shadow`] does the same inside the daemon for each 850 it writes to the
//! shadow directory. [`corpus`] builds the varied webhooks and VAN archives the tests and the
//! bench learn from. Everything here reads 850 files with [`X12File::parse`], which keeps the
//! bytes that matter for parity (delimiters, line breaks, padding) instead of normalising them.

pub mod compare;
pub mod corpus;
pub mod learn;
pub mod shadow;

/// One 850 interchange as it was written: its delimiters, its line break and its segments as
/// element strings, ID first (`["N1", "ST", "ACME"]`), from ISA to IEA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X12File {
    pub element: u8,
    pub component: u8,
    /// ISA11 when it is a repetition separator (ISA12 00402 or later and not a letter or digit).
    pub repetition: Option<u8>,
    pub terminator: u8,
    /// What follows each terminator: `""`, `"\n"` or `"\r\n"`.
    pub line_break: &'static str,
    pub segments: Vec<Vec<String>>,
}

/// Why a file cannot be read as an 850 interchange: what is wrong with its ISA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IsaError {
    #[error("no ISA segment")]
    Missing,
    #[error("the ISA segment is {0} bytes, not 106: the delimiters cannot be read")]
    Short(usize),
    #[error("the ISA segment has {0} elements, not 16")]
    Elements(usize),
}

impl X12File {
    /// Reads the interchange in `bytes` (a UTF-8 BOM and anything before `ISA` are skipped).
    /// An error says what is wrong with the ISA.
    pub fn parse(bytes: &[u8]) -> Result<X12File, IsaError> {
        let start = bytes
            .windows(3)
            .position(|w| w == b"ISA")
            .ok_or(IsaError::Missing)?;
        let b = &bytes[start..];
        if b.len() < 106 {
            return Err(IsaError::Short(b.len()));
        }
        let (element, component, terminator) = (b[3], b[104], b[105]);
        let line_break = match (terminator, &b[106..]) {
            (b'\n', _) => "",
            (_, rest) if rest.starts_with(b"\r\n") => "\r\n",
            (_, rest) if rest.starts_with(b"\n") => "\n",
            _ => "",
        };
        let mut segments = Vec::new();
        for raw in b.split(|c| *c == terminator) {
            let raw = match terminator {
                b'\n' | b'\r' => raw,
                _ => trim_line_breaks(raw),
            };
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let elements: Vec<String> = raw
                .split(|c| *c == element)
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
            segments.push(elements);
        }
        let isa = &segments[0];
        if isa.len() != 17 {
            return Err(IsaError::Elements(isa.len() - 1));
        }
        let repetition = {
            let r = isa[11].as_bytes();
            (isa[12].as_str() >= "00402" && r.len() == 1 && !r[0].is_ascii_alphanumeric())
                .then(|| r[0])
        };
        Ok(X12File {
            element,
            component,
            repetition,
            terminator,
            line_break,
            segments,
        })
    }

    /// The segment's element `n` (1-based), or "" when absent.
    pub fn value(segment: &[String], n: usize) -> &str {
        segment.get(n).map(String::as_str).unwrap_or("")
    }

    /// The first segment with this ID.
    pub fn first(&self, id: &str) -> Option<&[String]> {
        self.segments.iter().find(|s| s[0] == id).map(Vec::as_slice)
    }

    /// Each transaction set of the interchange as an interchange of its own (the ISA and GS
    /// around it, GE01 = 1), with its BEG03; an interchange that holds one is returned whole.
    pub fn split(&self) -> Vec<(String, X12File)> {
        let starts: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i][0] == "ST")
            .collect();
        let po_of = |segs: &[Vec<String>]| {
            segs.iter()
                .find(|s| s[0] == "BEG")
                .map(|s| Self::value(s, 3).to_string())
                .unwrap_or_default()
        };
        if starts.len() <= 1 {
            return vec![(po_of(&self.segments), self.clone())];
        }
        let head: Vec<Vec<String>> = self
            .segments
            .iter()
            .take_while(|s| s[0] != "ST")
            .cloned()
            .collect();
        let tail: Vec<Vec<String>> = self
            .segments
            .iter()
            .skip_while(|s| s[0] != "GE")
            .cloned()
            .collect();
        starts
            .iter()
            .map(|&st| {
                let end = (st..self.segments.len())
                    .find(|&i| self.segments[i][0] == "SE")
                    .map_or(self.segments.len(), |i| i + 1);
                let mut segments = head.clone();
                segments.extend(self.segments[st..end].iter().cloned());
                for s in &tail {
                    let mut s = s.clone();
                    if s[0] == "GE" && s.len() > 1 {
                        s[1] = "1".into();
                    }
                    segments.push(s);
                }
                let one = X12File {
                    segments,
                    ..self.clone()
                };
                (po_of(&one.segments), one)
            })
            .collect()
    }
}

fn trim_line_breaks(mut raw: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = raw {
        raw = rest;
    }
    raw
}

/// How a `compare` or `mapping learn` command ended (`main` makes it the exit code: 0, 64, 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// A directory or the mapping cannot be read (64).
    Usage,
    /// Not identical, or not reproduced (1).
    Failed,
}

/// Loads `--mapping` (or the shipped mapping), its programs run in worker processes under its
/// `[limits]`, as `translate` does.
fn load_mapping(path: Option<&std::path::Path>) -> Result<crate::mapping::Mapping, Status> {
    let mapping = match path {
        Some(p) => crate::mapping::Mapping::load(p).map_err(|e| {
            eprintln!("{e}");
            Status::Usage
        })?,
        None => crate::mapping::Mapping::builtin(),
    };
    let sandbox = crate::program::Sandbox::this_binary().map_err(|e| {
        eprintln!("edi-bridge: cannot find the edi-bridge executable: {e}");
        Status::Failed
    })?;
    Ok(mapping.sandboxed(sandbox))
}

/// 850s with the file each came from.
pub type Archive = Vec<(std::path::PathBuf, X12File)>;

pub use crate::input::files_in;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_delimiters_line_breaks_and_padding() {
        let text = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *261120*1200*U*00401*000000001*0*P*>~\r\nGS*PO*SENDER*RECEIVER*20261120*1200*1*X*004010~\r\nST*850*0001~\r\nBEG*00*SA*PO-1**20261120~\r\nSE*3*0001~\r\nGE*1*1~\r\nIEA*1*000000001~\r\n";
        let f = X12File::parse(text.as_bytes()).unwrap();
        assert_eq!(
            (f.element, f.component, f.terminator, f.line_break),
            (b'*', b'>', b'~', "\r\n")
        );
        assert_eq!(f.repetition, None);
        assert_eq!(f.segments.len(), 7);
        assert_eq!(f.segments[0][6], "SENDER         ");
        assert_eq!(f.split()[0].0, "PO-1");
        let bare = text.replace("~\r\n", "\n");
        let f = X12File::parse(bare.as_bytes()).unwrap();
        assert_eq!((f.terminator, f.line_break), (b'\n', ""));
        assert_eq!(f.segments.len(), 7);
    }
}

#[cfg(test)]
mod corpus_tests;
