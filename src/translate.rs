//! The admin's preview and golden tests of a mapping: `translate FILE` (a webhook → its 850s, an
//! 855/856 → the Ingram calls as `[{method, path, body}]`, `--canonical` for what the programs
//! see) and `mapping test DIR` (each input beside its `NAME.expected.json`, compared, with a
//! diff). Nothing here touches the store, the network or the ERP's directories.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::Exit;
use crate::domain::{canonical, PurchaseOrder};
use crate::from_erp::preview;
use crate::from_erp::set::SetRefusal;
use crate::ingram::order;
use crate::input::{read, InputError};
use crate::mapping::Mapping;
use crate::to_erp::to_850;

/// What a file given to `translate` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Webhook,
    X12,
}

fn kind_of(bytes: &[u8]) -> Input {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => Input::Webhook,
        _ => Input::X12,
    }
}

/// Loads `--mapping`, or the shipped mapping, its programs run in worker processes under its
/// `[limits]` (as in the daemon).
pub fn load_mapping(path: Option<&Path>) -> Result<Mapping, Exit> {
    let mapping = match path {
        Some(p) => Mapping::load(p).map_err(|e| {
            eprintln!("{e}");
            Exit::Config
        })?,
        None => Mapping::builtin(),
    };
    let sandbox = crate::program::Sandbox::this_binary().map_err(|e| {
        eprintln!("edi-bridge: cannot find the edi-bridge executable: {e}");
        Exit::Failure
    })?;
    Ok(mapping.sandboxed(sandbox))
}

/// The POs of a webhook file, through the mapping (its program and names).
fn webhook_orders(bytes: &[u8], mapping: &Mapping) -> Result<Vec<PurchaseOrder>, InputError> {
    let value: Value = serde_json::from_slice(bytes).map_err(InputError::Json)?;
    let programs = &mapping.programs;
    order::decode_with(
        &value,
        &mapping.webhook,
        Some((&programs.webhook, &programs.runner)),
    )
    .map(|e| e.orders)
    .map_err(InputError::Webhook)
}

/// `translate FILE [--mapping M] [--canonical] [--po WEBHOOK.json]…`
pub fn translate(file: &Path, mapping: Option<&Path>, canonical: bool, pos: &[PathBuf]) -> Exit {
    let mapping = match load_mapping(mapping) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let bytes = match read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edi-bridge: {e}");
            return Exit::Failure;
        }
    };
    match kind_of(&bytes) {
        Input::Webhook => translate_webhook(file, &bytes, &mapping, canonical),
        Input::X12 => {
            let mut orders = Vec::new();
            for p in pos {
                match read(p).and_then(|b| webhook_orders(&b, &mapping)) {
                    Ok(mut o) => orders.append(&mut o),
                    Err(e) => {
                        eprintln!("edi-bridge: {}: {e}", p.display());
                        return Exit::Failure;
                    }
                }
            }
            match preview::calls(&bytes, &mapping, &orders) {
                Ok(calls) => {
                    let out: Vec<Value> = calls
                        .iter()
                        .map(|c| {
                            if canonical {
                                c.canonical_json()
                            } else {
                                c.call_json()
                            }
                        })
                        .collect();
                    println!("{}", pretty(&Value::Array(out)));
                    match calls.iter().find_map(|c| c.body.as_ref().err()) {
                        Some(e) if !canonical => {
                            eprintln!("edi-bridge: {}: {e}", file.display());
                            Exit::Failure
                        }
                        _ => Exit::Ok,
                    }
                }
                Err(e) => {
                    eprintln!("edi-bridge: {}: {e}", file.display());
                    Exit::Failure
                }
            }
        }
    }
}

fn translate_webhook(file: &Path, bytes: &[u8], mapping: &Mapping, canonical: bool) -> Exit {
    let orders = match webhook_orders(bytes, mapping) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("edi-bridge: {}: {e}", file.display());
            return Exit::Failure;
        }
    };
    if canonical {
        let out: Vec<Value> = orders.iter().map(canonical::po_json).collect();
        println!("{}", pretty(&Value::Array(out)));
        return Exit::Ok;
    }
    let now = time::OffsetDateTime::now_utc();
    for (n, po) in orders.iter().enumerate() {
        let n = n as u32 + 1;
        let numbers = to_850::ControlNumbers {
            isa13: n,
            gs06: n,
            st02: n,
        };
        match to_850::render(po, mapping, numbers, now) {
            Ok(bytes) => print!("{}", String::from_utf8_lossy(&bytes)),
            Err(e) => {
                eprintln!("edi-bridge: PO {}: {e}", po.po_number);
                return Exit::Failure;
            }
        }
    }
    Exit::Ok
}

/// Why `mapping test` has no output to compare for an input (it shows `error: ` and this).
#[derive(Debug, thiserror::Error)]
enum ActualError {
    /// The input cannot be read or decoded.
    #[error("{0}")]
    Input(InputError),
    /// The input's calls cannot be previewed: the inbox would refuse it.
    #[error("{0}")]
    Refused(SetRefusal),
    /// The `NAME.po.json` beside an 855/856 cannot be read or decoded.
    #[error("{}: {error}", .path.display())]
    PoFile { path: PathBuf, error: InputError },
    /// A PO of the webhook cannot be rendered as an 850.
    #[error("PO {po}: {error}")]
    Render {
        po: String,
        error: to_850::RenderError,
    },
}

/// What `mapping test` compares for one input: for a webhook, each PO in canonical JSON with
/// its 850 transaction set (ST…SE, one string per segment; the envelope carries today's date
/// and is left out); for an 855/856, the calls as `translate` prints them.
fn actual(input: &Path, mapping: &Mapping) -> Result<Value, ActualError> {
    let bytes = read(input).map_err(ActualError::Input)?;
    let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".json") {
        let orders = webhook_orders(&bytes, mapping).map_err(ActualError::Input)?;
        let mut out = Vec::new();
        for (n, po) in orders.iter().enumerate() {
            let n = n as u32 + 1;
            let numbers = to_850::ControlNumbers {
                isa13: n,
                gs06: n,
                st02: n,
            };
            // A fixed instant: only the envelope (left out below) is dated by it.
            let at = time::OffsetDateTime::UNIX_EPOCH;
            let x12 =
                to_850::render(po, mapping, numbers, at).map_err(|error| ActualError::Render {
                    po: po.po_number.clone(),
                    error,
                })?;
            out.push(json!({"po": canonical::po_json(po), "850": transaction_set(&x12, mapping)}));
        }
        return Ok(Value::Array(out));
    }
    let pos_file = sibling(input, ".po.json");
    let orders = if pos_file.exists() {
        let bytes = read(&pos_file).map_err(ActualError::Input)?;
        webhook_orders(&bytes, mapping).map_err(|error| ActualError::PoFile {
            path: pos_file.clone(),
            error,
        })?
    } else {
        Vec::new()
    };
    let calls = preview::calls(&bytes, mapping, &orders).map_err(ActualError::Refused)?;
    Ok(Value::Array(calls.iter().map(|c| c.call_json()).collect()))
}

/// The segments from ST to SE of an 850 we rendered, one string each, without terminators.
fn transaction_set(x12: &[u8], mapping: &Mapping) -> Vec<String> {
    let text = String::from_utf8_lossy(x12);
    let term = mapping.delimiters.segment.as_str();
    let element = mapping.delimiters.element.as_str();
    let mut inside = false;
    let mut out = Vec::new();
    for seg in text.split(term).map(str::trim) {
        let id = seg.split(element).next().unwrap_or("");
        if id == "ST" {
            inside = true;
        }
        if inside && !seg.is_empty() {
            out.push(seg.to_string());
        }
        if id == "SE" {
            inside = false;
        }
    }
    out
}

/// `NAME.855` → `NAME<suffix>` beside it.
fn sibling(input: &Path, suffix: &str) -> PathBuf {
    let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_suffix(".json")
        .or_else(|| name.strip_suffix(".855"))
        .or_else(|| name.strip_suffix(".856"))
        .unwrap_or(name);
    input.with_file_name(format!("{stem}{suffix}"))
}

/// The inputs of a test directory that have an expected file, sorted by name.
fn cases(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(InputError::reading(dir))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(InputError::reading(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let input = name.ends_with(".855")
            || name.ends_with(".856")
            || (name.ends_with(".json")
                && !name.ends_with(".expected.json")
                && !name.ends_with(".po.json"));
        if input && sibling(&path, ".expected.json").exists() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// `mapping test DIR [--mapping M] [--update]`: 0 when every case matches, 1 otherwise.
pub fn mapping_test(dir: &Path, mapping: Option<&Path>, update: bool) -> Exit {
    let mapping = match load_mapping(mapping) {
        Ok(m) => m,
        Err(e) => return e,
    };
    let cases = match cases(dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("edi-bridge: {e}");
            return Exit::Failure;
        }
    };
    if cases.is_empty() {
        eprintln!(
            "edi-bridge: {}: no test cases (NAME.json, NAME.855 or NAME.856 beside NAME.expected.json)",
            dir.display()
        );
        return Exit::Failure;
    }
    let mut failed = 0;
    for input in &cases {
        let expected_path = sibling(input, ".expected.json");
        let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let actual = match actual(input, &mapping) {
            Ok(v) => pretty(&v),
            Err(e) => format!("error: {e}"),
        };
        if update {
            if let Err(e) = std::fs::write(&expected_path, format!("{actual}\n")) {
                eprintln!("edi-bridge: cannot write {}: {e}", expected_path.display());
                return Exit::Failure;
            }
            println!("updated {name}");
            continue;
        }
        let expected = match std::fs::read_to_string(&expected_path) {
            Ok(t) => match serde_json::from_str::<Value>(&t) {
                Ok(v) => pretty(&v),
                Err(_) => t.trim_end().to_string(),
            },
            Err(e) => {
                eprintln!("edi-bridge: cannot read {}: {e}", expected_path.display());
                return Exit::Failure;
            }
        };
        if expected == actual {
            println!("ok      {name}");
        } else {
            failed += 1;
            println!("FAILED  {name}");
            print!("{}", diff(&expected, &actual));
        }
    }
    if update {
        return Exit::Ok;
    }
    println!(
        "{} passed, {failed} failed ({})",
        cases.len() - failed,
        dir.display()
    );
    if failed == 0 {
        Exit::Ok
    } else {
        Exit::Failure
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A line diff (`-` expected, `+` actual) from the longest common subsequence, with two lines
/// of context around each change.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near = |k: usize| {
        let lo = k.saturating_sub(2);
        let hi = (k + 2).min(ops.len() - 1);
        (lo..=hi).any(|x| ops[x].0 != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near(k) {
            let _ = writeln!(out, "  {op} {line}");
            skipped = false;
        } else if !skipped {
            let _ = writeln!(out, "    …");
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let d = diff("a\nb\nc\nd\ne\nf\ng", "a\nb\nc\nD\ne\nf\ng");
        assert!(d.contains("  - d\n  + D\n"), "{d}");
        assert!(d.contains("    c\n"), "{d}");
        assert!(!d.contains("    a\n"), "{d}");
        assert_eq!(diff("x\ny", "x\ny").trim(), "…");
    }

    #[test]
    fn inputs_are_told_apart_by_content() {
        assert_eq!(kind_of(b"  {\"a\":1}"), Input::Webhook);
        assert_eq!(kind_of(b"ISA*00*"), Input::X12);
        assert_eq!(kind_of(b"ST*855*0001~"), Input::X12);
    }
}
