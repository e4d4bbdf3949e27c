//! The command line: `run`, `check`, `translate`, `inspect` (and, as they land, `demo`, `sim`
//! and the operator commands). Each subcommand is a function returning an [`Exit`] so `main`
//! only maps it to a process exit code: 0 ok, 64 config or usage error, 1 runtime failure.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::mapping::Mapping;

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
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Translate an Ingram webhook payload to an 850 on stdout (control numbers 1, dated now).
    Translate {
        /// The webhook JSON file.
        webhook: PathBuf,
        /// Mapping TOML (default: the shipped mappings/ingram.toml).
        #[arg(long)]
        mapping: Option<PathBuf>,
    },
    /// The local Ingram emulator (token, PO Response, PO Status), or `sim send-webhook FILE.json`.
    Sim(Box<crate::sim::cli::SimArgs>),
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

pub fn check(config: &Path) -> Exit {
    match load_config(config) {
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

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(loaded: crate::config::Loaded) -> Exit {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
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
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signals.cancel();
    });
    match crate::sim::cli::run(args, shutdown).await {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("edi-bridge sim: {e:#}");
            Exit::Failure
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received."),
        _ = int.recv() => tracing::info!("SIGINT received."),
    }
}

pub fn translate(webhook: &Path, mapping: Option<&Path>) -> Exit {
    let mapping = match mapping {
        Some(p) => match Mapping::load(p) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                return Exit::Config;
            }
        },
        None => Mapping::builtin(),
    };
    let body = match std::fs::read(webhook) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edi-bridge: cannot read {}: {e}", webhook.display());
            return Exit::Failure;
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("edi-bridge: {}: malformed json: {e}", webhook.display());
            return Exit::Failure;
        }
    };
    let event = match crate::outbound::order::decode(&value, &mapping.webhook) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("edi-bridge: {}: {e}", webhook.display());
            return Exit::Failure;
        }
    };
    let now = time::OffsetDateTime::now_utc();
    for (n, po) in event.orders.iter().enumerate() {
        let n = n as u32 + 1;
        let numbers = crate::outbound::to_850::ControlNumbers {
            isa13: n,
            gs06: n,
            st02: n,
        };
        match crate::outbound::to_850::render(po, &mapping, numbers, now) {
            Ok(bytes) => print!("{}", String::from_utf8_lossy(&bytes)),
            Err(e) => {
                eprintln!("edi-bridge: PO {}: {e}", po.po_number);
                return Exit::Failure;
            }
        }
    }
    Exit::Ok
}
