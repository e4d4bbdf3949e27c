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
    /// Internal: a program worker, started by the daemon and the admin commands to run the
    /// mapping's jq programs under their limits (frames on stdin and stdout).
    #[command(name = "program-worker", hide = true)]
    ProgramWorker,
    /// Internal: write the man pages and the bash and zsh completions into DIR (`scripts/deb`
    /// runs it before `cargo deb`).
    #[command(name = "generate-docs", hide = true)]
    GenerateDocs { dir: PathBuf },
    /// Run the daemon.
    Run {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
    },
    /// Validate the config, its mapping and secrets; exit 0, or 64 listing every problem.
    /// With `--online`, also a live connection test (token, API base, directories, clock):
    /// exit 0 only when every check passes, 1 otherwise.
    Check {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
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
    /// The state store: backup, restore, repair (see the README's Backups).
    #[command(subcommand)]
    Store(StoreCommand),
    /// Mapping tools for admins.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// Parse any X12 file and print JSON: envelopes, segments, the typed 855/856/997 view and
    /// positioned diagnostics. Exit 0 when readable (warnings only), 1 with the first error
    /// otherwise.
    Inspect { file: PathBuf },
    /// One line per PO with its lifecycle, and queue / dead-letter counts.
    Status {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        /// Only POs in this state: received, 850_written, 997_received, 855_sent, 856_sent,
        /// 997_rejected, ta1_rejected, finished, closed, errors.
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
        /// Only this account's POs.
        #[arg(long)]
        account: Option<String>,
    },
    /// A PO's timeline: webhook, 850 and control numbers, 997, 855/856 files and API calls.
    Show {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        po: String,
        /// The account the PO is in (needed only when a PO number is in several).
        #[arg(long)]
        account: Option<String>,
    },
    /// Put dead-lettered API calls back in the queue: one JOB, or `--all-dead` (of one
    /// `--account`).
    Retry {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        job: Option<u64>,
        #[arg(long, conflicts_with = "job")]
        all_dead: bool,
        /// With `--all-dead`: only this account's dead letters.
        #[arg(long, requires = "all_dead")]
        account: Option<String>,
    },
    /// Write a PO's 850 again, with new control numbers (logged).
    Replay {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        po: String,
        /// The account the PO is in (needed only when a PO number is in several).
        #[arg(long)]
        account: Option<String>,
    },
    /// Close a PO that will never finish (lines cancelled, an order handled by phone): it
    /// then counts as finished, and retention may remove it once it is old enough. Logged with
    /// the reason in its timeline.
    Close {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        po: String,
        /// Why (kept in the PO's timeline).
        #[arg(long)]
        reason: String,
        /// The account the PO is in (needed only when a PO number is in several).
        #[arg(long)]
        account: Option<String>,
    },
    /// Make the running daemon reload its mapping (same as SIGHUP).
    Reload {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
    },
    /// The whole flow in a temporary workspace against the built-in Ingram emulator.
    Demo {
        /// Use this directory as the workspace instead of a new temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Moving from a VAN: pair each webhook PO with the VAN's 850 of the same BEG03, render
    /// ours with the mapping and report per PO the first difference, then "N of M identical".
    /// Exit 0 only when every compared PO is identical.
    Compare {
        /// Mapping TOML (default: the shipped mappings/ingram.toml).
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// The VAN's 850s (one interchange per file).
        #[arg(long)]
        van: PathBuf,
        /// Ingram's webhooks for the same POs (`*.json`).
        #[arg(long)]
        webhooks: PathBuf,
        /// One JSON document for scripts instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// The local Ingram emulator (token, PO Response, PO Status), or `sim send-webhook FILE.json`.
    Sim(Box<crate::sim::cli::SimArgs>),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write a consistent copy of the store to DIR/db (a new directory), while the daemon runs
    /// (through its admin socket; webhooks wait for the copy) or not.
    Backup {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        dir: PathBuf,
    },
    /// Put a backup back, with the daemon stopped: the current store is moved aside (never
    /// deleted), the backup copied in, then repaired from the outbox and the archive so that
    /// no control number is handed out twice and no written PO is written again.
    Restore {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
        dir: PathBuf,
    },
    /// With the daemon stopped, adopt what the outbox and the whole archive prove was written:
    /// control numbers raised past every one sent, POs the store lost remembered as written.
    /// The daemon refuses to start until this has run on a store that went backwards.
    Repair {
        /// The config file [default: $EDI_BRIDGE_CONFIG, else /etc/edi-bridge/edi-bridge.toml].
        #[arg(long, short, env = crate::config::ENV_CONFIG, default_value = crate::config::DEFAULT_CONFIG, hide_default_value = true, hide_env = true)]
        config: PathBuf,
    },
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
    /// Learn the mapping from the ERP's archive of the 850s Ingram's VAN delivered: the TOML on
    /// stdout (each choice commented with its evidence), what could not be placed on stderr.
    /// With webhooks of some of the same POs it also learns which field feeds which element,
    /// and checks itself: exit 1 when the learned mapping does not reproduce a paired PO.
    Learn {
        /// The archived 850s.
        #[arg(long = "from")]
        from: PathBuf,
        /// Ingram's webhooks (`*.json`) for some of the same POs.
        #[arg(long)]
        webhooks: Option<PathBuf>,
        /// An existing mapping: the webhooks are read through its `[webhook]` renames and
        /// program, as the daemon reads them, and the learned mapping keeps that section and
        /// the 855/856 side (default: the shipped mapping's).
        #[arg(long)]
        mapping: Option<PathBuf>,
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
pub fn load_config(path: &Path) -> Result<crate::load::Loaded, Exit> {
    Config::load(path).map_err(|ConfigError(problems)| report(problems))
}

/// Prints every problem; the exit for a configuration error.
fn report(problems: Vec<crate::tomlfile::Problem>) -> Exit {
    eprintln!(
        "edi-bridge: configuration has {} problem(s):",
        problems.len()
    );
    for p in problems {
        eprintln!("  {p}");
    }
    Exit::Config
}

pub fn check(config: &Path, online: bool) -> Exit {
    match load_config(config).and_then(|loaded| {
        // Every program runs on the samples, in the workers, under the mapping's limits.
        let sandbox = crate::program::Sandbox::this_binary().map_err(|e| {
            eprintln!("edi-bridge: cannot find the edi-bridge executable: {e}");
            Exit::Failure
        })?;
        let problems: Vec<_> = loaded
            .accounts
            .iter()
            .flat_map(|a| crate::samples::check(&a.mapping.clone().sandboxed(sandbox.clone())))
            .collect();
        if !problems.is_empty() {
            Err(report(problems))
        } else if online {
            // `--online` reports an unsafe state directory in its checklist.
            Ok(loaded)
        } else {
            refuse_unsafe_state(config, loaded)
        }
    }) {
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
            for a in &loaded.accounts {
                let account = match loaded.accounts.len() {
                    1 => String::new(),
                    _ => format!("account {}: ", a.account.id),
                };
                println!(
                    "{}: {account}ok (mapping {}, webhook secrets: {}, client secret: {})",
                    config.display(),
                    loaded.config.resolve_path(&a.account.mapping).display(),
                    a.secrets.webhook.len(),
                    if a.secrets.client.is_some() {
                        "set"
                    } else {
                        "not set"
                    }
                );
            }
            println!(
                "{}: archive: {}",
                config.display(),
                loaded.config.archive.describe()
            );
            Exit::Ok
        }
        Err(e) => e,
    }
}

/// The loaded config, or (printed) why `run` would refuse its state directory.
fn refuse_unsafe_state(
    config: &Path,
    loaded: crate::load::Loaded,
) -> Result<crate::load::Loaded, Exit> {
    match crate::files::state_dir_problem(&loaded.config.paths.state) {
        None => Ok(loaded),
        Some(problem) => {
            eprintln!("edi-bridge: {}: paths.state: {problem}", config.display());
            Err(Exit::Config)
        }
    }
}

/// Runs the daemon until SIGTERM or SIGINT. The handlers are installed before anything starts,
/// so a signal arriving right after READY=1 is never lost.
pub async fn run(loaded: crate::load::Loaded) -> Exit {
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
    use crate::from_erp::DocumentKind;
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
                        let (v, d) = x12::Po850::parse(tx);
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
    offline: impl FnOnce(&crate::store::Store, &[String]) -> anyhow::Result<String>,
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
        None => {
            let accounts: Vec<String> = cfg.accounts().into_iter().map(|a| a.settings.id).collect();
            open_offline(&cfg.paths.state).and_then(|store| offline(&store, &accounts))
        }
    };
    print_outcome(result)
}

/// Prints an operator command's answer (stdout) or its error (stderr); the exit it means.
fn print_outcome(result: anyhow::Result<String>) -> Exit {
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

/// `edi-bridge store …`.
pub async fn store(cmd: StoreCommand) -> Exit {
    let config = match &cmd {
        StoreCommand::Backup { config, .. }
        | StoreCommand::Restore { config, .. }
        | StoreCommand::Repair { config } => config.clone(),
    };
    let cfg = match Config::load_paths(&config) {
        Ok(c) => c,
        Err(ConfigError(problems)) => {
            for p in problems {
                eprintln!("  {p}");
            }
            return Exit::Config;
        }
    };
    let result = match cmd {
        StoreCommand::Backup { dir, .. } => store_backup(&cfg, &dir).await,
        StoreCommand::Restore { dir, .. } => store_restore(&cfg, &config, &dir).await,
        StoreCommand::Repair { .. } => store_repair(&cfg).await,
    };
    print_outcome(result)
}

/// An absolute form of `dir` (the daemon may run in another working directory).
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    Ok(if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?.join(dir)
    })
}

async fn store_backup(cfg: &Config, dir: &Path) -> anyhow::Result<String> {
    let dir = absolute(dir)?;
    let dir_text = dir.to_string_lossy().into_owned();
    let path = format!("/backup{}", query(&[("dir", Some(&dir_text))]));
    if let Some(answer) = crate::admin::request(&cfg.paths.state, "POST", &path).await {
        return answer;
    }
    let state = cfg.paths.state.clone();
    tokio::task::spawn_blocking(move || crate::admin::ops::backup(&open_offline(&state)?, &dir))
        .await?
}

/// Refuses when a daemon answers on the admin socket: restore and repair need the store alone.
async fn daemon_stopped(cfg: &Config, what: &str) -> anyhow::Result<()> {
    if crate::admin::request(&cfg.paths.state, "GET", "/status?limit=0")
        .await
        .is_some()
    {
        anyhow::bail!(
            "a daemon is running on {}: stop it first (systemctl stop edi-bridge), then {what}",
            cfg.paths.state.display()
        );
    }
    Ok(())
}

fn open_offline(state: &Path) -> anyhow::Result<crate::store::Store> {
    crate::store::Store::open(state).map_err(|e| match e {
        crate::store::StoreError::Sled(sled_err) if sled_err.to_string().contains("lock") => {
            anyhow::anyhow!(
                "the store in {} is in use by another process (a daemon without its admin socket?): {sled_err}",
                state.display()
            )
        }
        e => e.into(),
    })
}

async fn store_restore(cfg: &Config, config: &Path, dir: &Path) -> anyhow::Result<String> {
    daemon_stopped(cfg, "restore").await?;
    let (cfg, dir) = (cfg.clone(), absolute(dir)?);
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let stamp = crate::clock::now_rfc3339().replace(':', "");
        let copied = crate::store::Store::restore_from(&cfg.paths.state, &dir, &stamp)?;
        let mut out = format!(
            "restored {} entries in {} trees from {}; the replaced store is kept in {}\n",
            copied.entries,
            copied.trees,
            dir.display(),
            copied.path.display()
        );
        out.push_str(&repair_now(&cfg)?);
        out.push_str(&format!(
            "now start the daemon (systemctl start edi-bridge); `edi-bridge status --config {}` shows where each PO stands\n",
            config.display()
        ));
        Ok(out)
    })
    .await?
}

async fn store_repair(cfg: &Config) -> anyhow::Result<String> {
    daemon_stopped(cfg, "repair").await?;
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || repair_now(&cfg)).await?
}

/// Each account's outbound pair key and id, from its mapping.
fn account_pairs(cfg: &Config) -> anyhow::Result<Vec<(String, String)>> {
    cfg.accounts()
        .into_iter()
        .map(|a| {
            let m = crate::mapping::Mapping::load(&cfg.resolve_path(&a.mapping))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((m.interchange.pair_key(), a.settings.id))
        })
        .collect()
}

/// Reads the outbox and the whole archive and adopts what they prove.
fn repair_now(cfg: &Config) -> anyhow::Result<String> {
    let store = open_offline(&cfg.paths.state)?;
    let mut written = crate::continuity::gather(
        &cfg.outboxes(),
        &cfg.paths.archive,
        crate::continuity::Scope::Everything,
    )?;
    crate::continuity::in_accounts(&mut written, &account_pairs(cfg)?);
    let repaired = crate::continuity::repair(&store, &written, &crate::clock::now_rfc3339())?;
    tracing::warn!(
        counters = repaired.counters_raised.len(),
        marked_written = repaired.marked_written.len(),
        remembered = repaired.remembered.len(),
        "The store was repaired from the outbox and the archive."
    );
    Ok(repaired.to_string())
}
