//! Text that came from outside (the network, an inbox file, a file name) made safe to show: in a
//! log line, a reason file, an error message. [`Escaped`] writes control characters as
//! Rust-style escapes (`\n`, `\x1b`, `\u{2028}`), so a value can never forge a log line or send
//! terminal escapes (its output has none, so escaping twice changes nothing); [`excerpt`] quotes at most a few bytes of a file around a
//! position, never the file. Nothing here allocates more than it prints.

use std::fmt;

/// The largest excerpt of a file quoted anywhere (reason files, log lines), in bytes of input.
pub const MAX_EXCERPT: usize = 200;

/// A value from outside, shown escaped: `tracing::info!(po = %Escaped(&po), …)`.
#[derive(Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape_into(f, self.0.as_bytes())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        escape_into(f, self.0.as_bytes())?;
        f.write_str("\"")
    }
}

/// `s` escaped, as an owned string.
pub fn escape(s: &str) -> String {
    Escaped(s).to_string()
}

/// Bytes (not necessarily UTF-8) escaped: printable ASCII and valid printable UTF-8 as they are,
/// everything else as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    struct B<'a>(&'a [u8]);
    impl fmt::Display for B<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            escape_into(f, self.0)
        }
    }
    B(bytes).to_string()
}

fn escape_into(f: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{:02x}", c as u32)?,
                // C1 controls, line/paragraph separators and bidi overrides: invisible or
                // reordering in a terminal or an editor.
                c if ('\u{80}'..='\u{9f}').contains(&c)
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                    || ('\u{202a}'..='\u{202e}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c) =>
                {
                    write!(f, "\\u{{{:x}}}", c as u32)?
                }
                c => f.write_char(c)?,
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// `s` cut to at most `max` bytes (on a character boundary) with `…` added where cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// At most [`MAX_EXCERPT`] bytes of `bytes` around `at`, escaped, with `…` where cut:
/// `…ST*855*0001~BAK*00*AD*` — what a reason file quotes of an inbox file.
pub fn excerpt(bytes: &[u8], at: usize) -> String {
    let at = at.min(bytes.len());
    let before = MAX_EXCERPT / 4;
    let start = at.saturating_sub(before);
    let end = (start + MAX_EXCERPT).min(bytes.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&escape_bytes(&bytes[start..end]));
    if end < bytes.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_log_line() {
        let forged = "evt-1\n2026-11-29T00:00:00Z INFO 850 written po=FAKE\x1b[2J";
        let shown = escape(forged);
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert_eq!(
            shown,
            "evt-1\\n2026-11-29T00:00:00Z INFO 850 written po=FAKE\\x1b[2J"
        );
        assert_eq!(escape("a\"b\\c\r\t\u{7f}"), "a\"b\\c\\r\\t\\x7f");
        assert_eq!(escape(&shown), shown, "escaping twice changes nothing");
        assert_eq!(
            escape("x\u{202e}y\u{2028}z\u{85}"),
            "x\\u{202e}y\\u{2028}z\\u{85}"
        );
        assert_eq!(escape("PO-Ünïcode 42"), "PO-Ünïcode 42");
        assert_eq!(format!("{:?}", Escaped("a\nb")), "\"a\\nb\"");
    }

    #[test]
    fn clip_cuts_on_a_character_boundary() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 3), "é…");
    }

    #[test]
    fn invalid_utf8_is_shown_as_bytes() {
        assert_eq!(escape_bytes(b"IS\xffA\x00"), "IS\\xffA\\x00");
    }

    #[test]
    fn an_excerpt_is_short_and_centred_on_the_position() {
        let file: Vec<u8> = (0..10_000u32).map(|i| b'A' + (i % 26) as u8).collect();
        let e = excerpt(&file, 5_000);
        assert!(e.starts_with('…') && e.ends_with('…'));
        assert_eq!(e.chars().count(), MAX_EXCERPT + 2);
        let whole = excerpt(b"ISA*00~", 3);
        assert_eq!(whole, "ISA*00~");
        assert_eq!(excerpt(b"", 10), "");
        // A secret file is never quoted in full.
        let secret = vec![b's'; 4096];
        assert!(excerpt(&secret, 0).len() <= MAX_EXCERPT + 3);
    }
}
