//! What the Ingram translators produce and share: an [`ApiCall`] (PO, which API, path, canonical
//! body), a positioned [`TranslateError`], date conversion, the `fields` renames, URL path
//! segments made safe, and [`render_body`], which turns a canonical body into the request body
//! through the mapping's program. Pure: no clock, file or network.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::domain::CallKind;
use crate::mapping::Mapping;
use crate::x12;

/// The largest quantity accepted from an 855/856 (as for webhooks): larger values are refused
/// with a positioned error instead of overflowing sums.
pub const MAX_QUANTITY: u64 = 999_999_999;

/// One API call to make: path under the base URL and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    pub po: String,
    pub kind: CallKind,
    pub path: String,
    pub body: Value,
}

/// Why a transaction set cannot be translated, with the X12 position it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub position: Box<x12::Position>,
    pub message: String,
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.position.describe())
    }
}

/// Converts an X12 date (any of `x12_formats`) to `api_format`.
pub fn convert_date(value: &str, x12_formats: &[String], api_format: &str) -> Option<String> {
    let out = time::format_description::parse_borrowed::<2>(api_format).ok()?;
    let value = value.trim();
    x12_formats.iter().find_map(|f| {
        let f = time::format_description::parse_borrowed::<2>(f).ok()?;
        time::Date::parse(value, &f).ok()?.format(&out).ok()
    })
}

/// Renames object keys everywhere in `v` by the mapping's canonical → wire table.
pub fn rename_fields(v: Value, names: &BTreeMap<String, String>) -> Value {
    if names.is_empty() {
        return v;
    }
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let k = names.get(&k).cloned().unwrap_or(k);
                    (k, rename_fields(v, names))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| rename_fields(v, names)).collect()),
        other => other,
    }
}

/// A value made safe as one URL path segment: every byte but the RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, and the dot segments `.` and `..` written `%2E` and
/// `%2E%2E`. Encoding alone does not make a dot segment safe: the URL standard (and the `url`
/// crate under reqwest) treats `%2E%2E` as `..`, and RFC 3986 makes `%2E` equivalent to `.`, so a
/// gateway may resolve it too. The translators refuse such a PO number ([`dot_segment`]) and
/// `api::ApiClient::post_json` refuses any path the URL parser would change.
pub fn path_segment(value: &str) -> String {
    match value {
        "." => return "%2E".into(),
        ".." => return "%2E%2E".into(),
        _ => {}
    }
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why `po` cannot address its own resource as a URL path segment (`.` or `..`, which resolve to
/// the parent path whether encoded or not), or `None`.
pub fn dot_segment(po: &str) -> Option<String> {
    matches!(po, "." | "..").then(|| {
        format!(
            "'{po}' cannot be sent as a URL path segment: '.' and '..' (even encoded) address another resource"
        )
    })
}

/// The request body for a canonical body: the mapping's body program for `kind`, run with
/// `$segments` and `$po`. Used by the deliver worker at each attempt and by the preview. With a
/// sandboxed runner it blocks up to the time limit: call it off the async runtime.
pub fn render_body(
    mapping: &Mapping,
    kind: CallKind,
    canonical: &Value,
    segments: &[Vec<String>],
    po: &Value,
) -> Result<Value, crate::program::BodyProgramError> {
    let (program, key) = match kind {
        CallKind::PoResponse => (&mapping.programs.po_response, "[po_response] body"),
        CallKind::PoStatus => (&mapping.programs.po_status, "[po_status] body"),
    };
    if program.is_identity() {
        return Ok(canonical.clone());
    }
    let segments = if program.uses("$segments") {
        Value::Array(
            segments
                .iter()
                .map(|s| Value::Array(s.iter().cloned().map(Value::String).collect()))
                .collect(),
        )
    } else {
        Value::Null
    };
    let at = match program.place() {
        "" => String::new(),
        written => format!(" at {written}"),
    };
    mapping
        .programs
        .runner
        .run_object(program, canonical, &[segments, po.clone()])
        .map_err(|error| crate::program::BodyProgramError { key, at, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_convert_between_formats() {
        let f = vec!["[year][month][day]".to_string()];
        assert_eq!(
            convert_date("20261121", &f, "[year]-[month]-[day]").as_deref(),
            Some("2026-11-21")
        );
        assert_eq!(convert_date("20261341", &f, "[year]-[month]-[day]"), None);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(path_segment("IM-PO/1 0"), "IM-PO%2F1%200");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
        assert_eq!(path_segment("..."), "...");
        assert_eq!(path_segment("a/../b"), "a%2F..%2Fb");
        assert_eq!(path_segment("?#%é\n"), "%3F%23%25%C3%A9%0A");
        assert!(dot_segment("..").is_some() && dot_segment(".").is_some());
        assert!(dot_segment("...").is_none() && dot_segment("IM-1").is_none());
    }
}
