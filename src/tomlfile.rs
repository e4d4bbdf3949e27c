//! Loading TOML files the admin edits (the daemon's config and the mapping): reading them,
//! typed decoding with the line and key of the first error, and finding the line a key (or a
//! line inside a key's multi-line value) is written on, so every problem is reported as
//! `file:line: key: message`. Both `config` and `mapping` build on this; neither imports the
//! other's loading code.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found while loading configuration or mapping: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file.display())?,
            None => write!(f, "{}: ", self.file.display())?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in a configuration; `Display` lists one per line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Reads a config or mapping file; a failure is a [`ConfigError`] naming the file.
pub fn read_source(path: &Path, what: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![Problem {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("{what}: {e}"),
        }])
    })
}

/// Deserializes `text` as TOML into `T`, turning a parse or type error into a [`Problem`] with
/// the line it points at and, where the message names one, the key.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, Problem> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let key = line
            .and_then(|l| text.lines().nth(l - 1))
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().to_string())
            .unwrap_or_default();
        Problem {
            file: path.to_path_buf(),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    })
}

/// The 1-based line where `key` is set inside `[section]` (a dotted section like
/// `po850.refs` works too), if it is written out in the file.
pub fn locate(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix('[') {
            current = rest
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// The 1-based file line of line `inner` (1-based) of the value of `key` in `[section]`: a
/// multi-line string that opens with `'''` or `"""` at the end of the key's line starts on the
/// next line (TOML drops that first line break).
pub fn value_line(text: &str, section: &str, key: &str, inner: usize) -> Option<usize> {
    let line = locate(text, section, key)?;
    Some(line + opens_block(text, line) + inner.saturating_sub(1))
}

/// The 1-based line where `key` is set in the `index`-th (0-based) `[[section]]` table.
pub fn locate_nth(text: &str, section: &str, index: usize, key: &str) -> Option<usize> {
    let mut seen: Option<usize> = None;
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("[[") {
            inside = rest.trim_end_matches("]]").trim() == section;
            if inside {
                seen = Some(seen.map_or(0, |n| n + 1));
            }
            continue;
        }
        if line.starts_with('[') {
            inside = false;
            continue;
        }
        if inside && seen == Some(index) {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim().trim_matches('"') == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// Like [`value_line`] for the `index`-th `[[section]]` table.
pub fn nth_value_line(
    text: &str,
    section: &str,
    index: usize,
    key: &str,
    inner: usize,
) -> Option<usize> {
    let line = locate_nth(text, section, index, key)?;
    Some(line + opens_block(text, line) + inner.saturating_sub(1))
}

/// 1 when the value on (1-based) `line` opens a multi-line string and nothing follows on it.
fn opens_block(text: &str, line: usize) -> usize {
    let value = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(_, v)| v.trim())
        .unwrap_or_default();
    usize::from(value == "'''" || value == "\"\"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_key_in_section() {
        let t = "[server]\nlisten = \"x\"\n[paths]\nstate = \"/a\"\n";
        assert_eq!(locate(t, "server", "listen"), Some(2));
        assert_eq!(locate(t, "paths", "state"), Some(4));
        assert_eq!(locate(t, "paths", "listen"), None);
    }

    #[test]
    fn parse_error_names_line_and_key() {
        let t = "[server]\nlisten = 5\n";
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct ServerTable {
            listen: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct C {
            server: ServerTable,
        }
        let p = parse_toml::<C>(t, Path::new("c.toml")).unwrap_err();
        assert_eq!(p.line, Some(2));
        assert_eq!(p.key, "listen");
    }

    #[test]
    fn value_lines_follow_multi_line_strings() {
        let t = "[a]\nx = 1\np = '''\n.a\n| .b\n'''\nq = \".c\"\n[[s]]\ne = \".\"\n[[s]]\ne = '''\n\n.z'''\n";
        assert_eq!(value_line(t, "a", "p", 1), Some(4));
        assert_eq!(value_line(t, "a", "p", 2), Some(5));
        assert_eq!(value_line(t, "a", "q", 1), Some(7));
        assert_eq!(nth_value_line(t, "s", 0, "e", 1), Some(9));
        assert_eq!(nth_value_line(t, "s", 1, "e", 2), Some(13));
        assert_eq!(locate_nth(t, "s", 2, "e"), None);
    }
}
