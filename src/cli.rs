//! The command line: `run`, `check`, `translate`, `inspect` (and, as they land, `demo`, `sim`
//! and the operator commands). Each subcommand is a function returning an [`Exit`] so `main`
//! only maps it to a process exit code: 0 ok, 64 config or usage error, 1 runtime failure.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "edi-bridge",
    version,
    about = "Ingram Micro vendor APIs <-> X12 files for a legacy ERP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the config, its mapping and secrets; exit 0, or 64 listing every problem.
    /// With `--online`, also a live connection test (token, API base, directories, clock):
    /// exit 0 only when every check passes, 1 otherwise.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        online: bool,
    },
    /// Preview a mapping: a webhook JSON file → its 850s on stdout (control numbers 1, dated
    /// now); an 855 or 856 → the Ingram calls as a JSON array of {method, path, body}.
    Translate {
        /// A webhook JSON file, or an X12 855/856 file.
        file: PathBuf,
        /// Mapping TOML (default: the shipped mappings/ingram.toml).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Print what the mapping's programs see instead: the canonical PO(s) of a webhook, or
        /// each call's canonical body with `$segments` and `$po`.
        #[arg(long)]
        canonical: bool,
        /// A webhook JSON file whose POs stand in for the store (`$po`, the 856's ordered
        /// quantities). Repeatable.
        #[arg(long = "po")]
        pos: Vec<PathBuf>,
    },
    /// Mapping tools for admins.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Parse any X12 file and print JSON: envelopes, segments, the typed 855/856/997 view and
    /// positioned diagnostics. Exit 0 when readable (warnings only), 1 with the first error
    /// otherwise.
    Inspect { file: PathBuf },
    /// One line per PO with its lifecycle, and queue / dead-letter counts.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// Only POs in this state: received, 850_written, 997_received, 855_sent, 856_sent,
        /// 997_rejected, ta1_rejected, errors.
        #[arg(long)]
        state: Option<String>,
        /// Only POs received at or after this RFC 3339 instant or date (2026-11-20).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        po: Option<String>,
        /// Show at most this many POs.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// A PO's timeline: webhook, 850 and control numbers, 997, 855/856 files and API calls.
    Show {
        #[arg(long, short)]
        config: PathBuf,
        po: String,
    },
    /// Put dead-lettered API calls back in the queue: one JOB, or `--all-dead`.
    Retry {
        #[arg(long, short)]
        config: PathBuf,
        job: Option<u64>,
        #[arg(long, conflicts_with = "job")]
        all_dead: bool,
    },
    /// Write a PO's 850 again, with new control numbers (logged).
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        po: String,
    },
    /// Close a PO that will never finish (lines cancelled, an order handled by phone): it
    /// then counts as finished, and retention may remove it once it is old enough. Logged with
    /// the reason in its timeline.
    Close {
        #[arg(long, short)]
        config: PathBuf,
        po: String,
        /// Why (kept in the PO's timeline).
        #[arg(long)]
        reason: String,
    },
    /// Make the running daemon reload its mapping (same as SIGHUP).
    Reload {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The whole flow in a temporary workspace against the built-in Ingram emulator.
    Demo {
        /// Use this directory as the workspace instead of a new temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The local Ingram emulator (token, PO Response, PO Status), or `sim send-webhook FILE.json`.
    Sim(Box<crate::sim::cli::SimArgs>),
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Golden tests of a mapping: each NAME.json (webhook), NAME.855 or NAME.856 in DIR is
    /// translated and compared with NAME.expected.json (a NAME.po.json webhook beside an
    /// 855/856 stands in for the stored PO). Exit 0 when all match, 1 with a diff otherwise.
    Test {
        dir: PathBuf,
        /// Mapping TOML (default: the shipped mappings/ingram.toml).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Write the actual output as the expected files instead of comparing.
        #[arg(long)]
        update: bool,
    },
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// Configuration or usage problem (64, EX_USAGE).
    Config,
    /// Runtime failure (1).
    Failure,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Config => 64,
            Exit::Failure => 1,
        }
    }
}

/// Loads a config or prints every problem to stderr.
pub fn load_config(path: &Path) -> Result<crate::config::Loaded, Exit> {
    Config::load(path).map_err(|ConfigError(problems)| {
        eprintln!(
            "edi-bridge: configuration has {} problem(s):",
            problems.len()
        );
        for p in problems {
            eprintln!("  {p}");
        }
        Exit::Config
    })
}

pub fn check(config: &Path, online: bool) -> Exit {
    match load_config(config) {
        Ok(loaded) if online => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("edi-bridge: cannot start the runtime: {e}");
                    return Exit::Failure;
                }
            };
            println!("{}: configuration ok; connection test:", config.display());
            let checks = rt.block_on(crate::online::run(&loaded));
            print!("{}", crate::online::render(&checks));
            if checks.iter().all(|c| c.ok) {
                Exit::Ok
            } else {
                Exit::Failure
            }
        }
        Ok(loaded) => {
            println!(
                "{}: ok (mapping {}, webhook secrets: {}, client secret: {})",
                config.display(),
                loaded.config.mapping_path().display(),
                loaded.secrets.webhook.len(),
                if loaded.secrets.client.is_some() {
                    "set"
                } else {
                    "not set"
                }
            );
            Exit::Ok
        }
        Err(e) => e,
    }
}

/// Runs the daemon until SIGTERM or SIGINT. The handlers are installed before anything starts,
/// so a signal arriving right after READY=1 is never lost.
pub async fn run(loaded: crate::config::Loaded) -> Exit {
    let shutdown = CancellationToken::new();
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "Cannot install signal handlers.");
            return Exit::Failure;
        }
    };
    let token = shutdown.clone();
    tokio::spawn(async move {
        signals.wait().await;
        token.cancel();
    });
    match crate::daemon::run(loaded, shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "edi-bridge failed.");
            Exit::Failure
        }
    }
}

/// Runs the emulator until SIGTERM or SIGINT (or `sim send-webhook` once).
pub async fn sim(args: crate::sim::cli::SimArgs) -> Exit {
    let shutdown = CancellationToken::new();
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edi-bridge sim: cannot install signal handlers: {e}");
            return Exit::Failure;
        }
    };
    let token = shutdown.clone();
    tokio::spawn(async move {
        signals.wait().await;
        token.cancel();
    });
    match crate::sim::cli::run(args, shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("edi-bridge sim: {e:#}");
            Exit::Failure
        }
    }
}

/// SIGTERM and SIGINT streams, registered up front.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received."),
            _ = self.int.recv() => tracing::info!("SIGINT received."),
        }
    }
}

pub fn inspect(file: &Path) -> Exit {
    use crate::inbound::DocumentKind;
    use crate::x12;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edi-bridge: cannot read {}: {e}", file.display());
            return Exit::Failure;
        }
    };
    let doc = x12::read(&bytes, &x12::ReadOptions::default());
    let mut typed = Vec::new();
    let mut diagnostics: Vec<x12::Diagnostic> = doc.diagnostics.clone();
    for ic in &doc.interchanges {
        for ta1 in &ic.ta1 {
            typed.push(serde_json::json!({
                "interchange": ic.index, "kind": "TA1", "controlNumber": ta1.control_number,
                "value": ta1,
            }));
        }
        for g in &ic.groups {
            for tx in &g.transactions {
                let (kind, value) = match DocumentKind::of(&tx.id) {
                    DocumentKind::Ack855 => {
                        let (v, d) = x12::Ack855::parse(tx);
                        diagnostics.extend(d);
                        ("855", serde_json::to_value(v))
                    }
                    DocumentKind::Asn856 => {
                        let (v, d) = x12::Asn856::parse(tx);
                        diagnostics.extend(d);
                        ("856", serde_json::to_value(v))
                    }
                    DocumentKind::Ack997 => {
                        let (v, d) = x12::Ack997::parse(tx);
                        diagnostics.extend(d);
                        ("997", serde_json::to_value(v))
                    }
                    DocumentKind::Unknown(_) if tx.id.trim() == "850" => {
                        let (v, d) = x12::PurchaseOrder::parse(tx);
                        diagnostics.extend(d);
                        ("850", serde_json::to_value(v))
                    }
                    DocumentKind::Unknown(_) => continue,
                };
                typed.push(serde_json::json!({
                    "interchange": ic.index, "group": g.index, "set": tx.index,
                    "kind": kind, "controlNumber": tx.control_number,
                    "value": value.unwrap_or(serde_json::Value::Null),
                }));
            }
        }
    }
    let complete = doc.is_complete();
    let out = serde_json::json!({
        "file": file.display().to_string(),
        "complete": complete,
        "interchanges": doc.interchanges,
        "typed": typed,
        "diagnostics": diagnostics.iter().map(|d| serde_json::json!({
            "severity": format!("{:?}", d.severity).to_lowercase(),
            "code": d.code.as_str(),
            "message": d.message,
            "position": d.position,
            "text": d.to_string(),
        })).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    let first_error = diagnostics.iter().find(|d| d.is_error());
    match (complete, first_error) {
        (true, None) => Exit::Ok,
        (_, Some(d)) => {
            eprintln!("edi-bridge: {}: {d}", file.display());
            Exit::Failure
        }
        (false, None) => {
            eprintln!(
                "edi-bridge: {}: no complete interchange (no IEA closing the last ISA, or a bare transaction set without its SE)",
                file.display()
            );
            Exit::Failure
        }
    }
}

/// An operator command: through the running daemon's admin socket, or on the store directly
/// when no daemon answers.
pub async fn operator(
    config: &Path,
    method: &str,
    path: &str,
    offline: impl FnOnce(&crate::store::Store) -> anyhow::Result<String>,
) -> Exit {
    let cfg = match Config::load_paths(config) {
        Ok(c) => c,
        Err(ConfigError(problems)) => {
            for p in problems {
                eprintln!("  {p}");
            }
            return Exit::Config;
        }
    };
    let result = match crate::admin::request(&cfg.paths.state, method, path).await {
        Some(r) => r,
        None if method == "POST" && path == "/reload" => Err(anyhow::anyhow!(
            "no running daemon answers on {}",
            cfg.paths.state.join(crate::admin::SOCKET).display()
        )),
        None => crate::store::Store::open(&cfg.paths.state)
            .map_err(|e| anyhow::anyhow!("{e} (is a daemon running without its admin socket?)"))
            .and_then(|store| offline(&store)),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            Exit::Ok
        }
        Err(e) => {
            eprintln!("edi-bridge: {e:#}");
            Exit::Failure
        }
    }
}

/// `?a=b&c=d` from optional pairs, percent-encoding the values.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", crate::ingram::calls::path_segment(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}
