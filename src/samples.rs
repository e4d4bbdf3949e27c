//! The sample run `check` and reload give a mapping before it is accepted: every jq program runs
//! on sample inputs under the mapping's `[limits]` (in the worker processes when the mapping's
//! runner is sandboxed), and a program that fails there, or breaks a limit, is a problem named
//! with its file, line and key, like a syntax error. The inputs are the mapping's own
//! `[samples] dir` (the layout of `mapping test`: `NAME.json` webhooks, `NAME.855` and
//! `NAME.856` with an optional `NAME.po.json`) or, when it has none, the samples shipped with the
//! binary (`samples/`): Ingram's webhook, and the ERP's 855 and 856 for its PO.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::domain::{CallKind, PurchaseOrder};
use crate::from_erp::preview;
use crate::ingram::order::{self, DecodeError};
use crate::input::InputError;
use crate::mapping::Mapping;
use crate::program::Program;
use crate::to_erp::to_850::{self, RenderError};
use crate::tomlfile::Problem;

const SHIPPED_WEBHOOK: &str = include_str!("../samples/ingram-po-webhook.json");
const SHIPPED_855: &str = include_str!("../samples/ingram-po-855.edi");
const SHIPPED_856: &str = include_str!("../samples/ingram-po-856.edi");

/// One sample input.
struct Sample {
    name: String,
    bytes: Vec<u8>,
    /// For an 855/856: the webhook whose POs stand in for the store (`$po`).
    pos: Option<Vec<u8>>,
}

/// Runs every program of `mapping` on its samples; each failure is a problem. Blocks for up to
/// the time limit per run: call it off the async runtime.
pub fn check(mapping: &Mapping) -> Vec<Problem> {
    let mut problems = Vec::new();
    let samples = match mapping.samples_dir() {
        Some(dir) => match own(&dir) {
            Ok(s) => s,
            Err(message) => {
                problems.push(Problem {
                    file: mapping.source.clone(),
                    line: None,
                    key: "samples.dir".into(),
                    message: message.to_string(),
                });
                return problems;
            }
        },
        None => shipped(),
    };
    for sample in &samples {
        run(mapping, sample, &mut problems);
    }
    problems
}

fn shipped() -> Vec<Sample> {
    let webhook = SHIPPED_WEBHOOK.as_bytes().to_vec();
    vec![
        Sample {
            name: "samples/ingram-po-webhook.json".into(),
            bytes: webhook.clone(),
            pos: None,
        },
        Sample {
            name: "samples/ingram-po-855.edi".into(),
            bytes: SHIPPED_855.as_bytes().to_vec(),
            pos: Some(webhook.clone()),
        },
        Sample {
            name: "samples/ingram-po-856.edi".into(),
            bytes: SHIPPED_856.as_bytes().to_vec(),
            pos: Some(webhook),
        },
    ]
}

/// The inputs of a `[samples] dir`, sorted by name.
fn own(dir: &Path) -> Result<Vec<Sample>, InputError> {
    let unreadable = InputError::reading(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(&unreadable)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(&unreadable)?;
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let stem = if let Some(stem) = name
            .strip_suffix(".855")
            .or_else(|| name.strip_suffix(".856"))
        {
            Some(stem)
        } else if name.ends_with(".json")
            && !name.ends_with(".expected.json")
            && !name.ends_with(".po.json")
        {
            None
        } else {
            continue;
        };
        let read = crate::input::read;
        let pos = match stem {
            Some(stem) => {
                let p = path.with_file_name(format!("{stem}.po.json"));
                if p.exists() {
                    Some(read(&p)?)
                } else {
                    Some(Vec::new())
                }
            }
            None => None,
        };
        out.push(Sample {
            name: path.display().to_string(),
            bytes: read(&path)?,
            pos,
        });
    }
    if out.is_empty() {
        return Err(InputError::Nothing {
            path: dir.to_path_buf(),
            what: "no samples (NAME.json, NAME.855 or NAME.856)",
        });
    }
    Ok(out)
}

/// A problem for `program` (written under `key`) failing on `sample`.
fn failed(
    mapping: &Mapping,
    program: &Program,
    key: String,
    sample: &str,
    error: String,
) -> Problem {
    Problem {
        file: mapping.source.clone(),
        line: program.line(),
        key,
        message: format!("fails on the sample {sample}: {error}"),
    }
}

/// The POs of a webhook through the mapping's program, or (when that fails, which is reported
/// on its own) through the shipped names only.
fn orders(mapping: &Mapping, bytes: &[u8]) -> Result<Vec<PurchaseOrder>, InputError> {
    let value: Value = serde_json::from_slice(bytes).map_err(InputError::Json)?;
    let p = &mapping.programs;
    match order::decode_with(&value, &mapping.webhook, Some((&p.webhook, &p.runner))) {
        Ok(e) => Ok(e.orders),
        Err(DecodeError::Program { .. }) => order::decode(&value, &mapping.webhook)
            .map(|e| e.orders)
            .map_err(|e| InputError::Webhook(e.into())),
        Err(e) => Err(InputError::Webhook(e)),
    }
}

fn run(mapping: &Mapping, sample: &Sample, problems: &mut Vec<Problem>) {
    let programs = &mapping.programs;
    let Some(pos) = &sample.pos else {
        // A webhook: its program on each PO, then the 850's segment programs.
        let value: Value = match serde_json::from_slice(&sample.bytes) {
            Ok(v) => v,
            Err(e) => {
                problems.push(Problem {
                    file: mapping.source.clone(),
                    line: None,
                    key: "samples.dir".into(),
                    message: format!("{}: malformed json: {e}", sample.name),
                });
                return;
            }
        };
        let decoded = order::decode_with(
            &value,
            &mapping.webhook,
            Some((&programs.webhook, &programs.runner)),
        );
        let event = match decoded {
            Ok(e) => e,
            Err(DecodeError::Program { error, .. }) => {
                problems.push(failed(
                    mapping,
                    &programs.webhook,
                    "webhook.program".into(),
                    &sample.name,
                    error.to_string(),
                ));
                return;
            }
            // A sample Ingram's rules refuse is not a program's failure.
            Err(DecodeError::Field(_)) => return,
        };
        for po in &event.orders {
            if let Err(e) = to_850::to_850(po, mapping) {
                if let RenderError::Segments { index, .. } = &e {
                    problems.push(failed(
                        mapping,
                        &programs.po850_segments[*index].1,
                        format!("po850.segments[{index}].expr"),
                        &sample.name,
                        e.to_string(),
                    ));
                    return;
                }
            }
        }
        return;
    };
    let known = if pos.is_empty() {
        Vec::new()
    } else {
        orders(mapping, pos).unwrap_or_default()
    };
    let Ok(calls) = preview::calls(&sample.bytes, mapping, &known) else {
        // An unreadable ERP file is the sample's fault, not a program's.
        return;
    };
    for call in calls {
        if let Err(error) = call.body {
            let (program, key) = match call.kind {
                CallKind::PoResponse => (&programs.po_response, "po_response.body"),
                CallKind::PoStatus => (&programs.po_status, "po_status.body"),
            };
            problems.push(failed(
                mapping,
                program,
                key.into(),
                &sample.name,
                error.to_string(),
            ));
            return;
        }
    }
}
