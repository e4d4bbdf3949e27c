//! The `edi-bridge` binary: parse the command line, load and validate configuration before
//! binding anything, set up logging, and hand over to the subcommand. Exit 64 for config or
//! usage errors, 1 for runtime failures.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use edi_bridge::admin::ops;
use edi_bridge::cli::{self, Cli, Command, Exit};
use edi_bridge::config::LogFormat;
use edi_bridge::ingram::calls::path_segment;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Config.code()
            } else {
                0
            });
        }
    };
    let exit = match cli.command {
        Command::ProgramWorker => return edi_bridge::program::worker::serve(),
        Command::GenerateDocs { dir } => generate_docs(&dir),
        Command::Check { config, online } => cli::check(&config, online),
        Command::Run { config } => run_daemon(&config),
        Command::Demo { dir } => demo(dir),
        Command::Sim(args) => {
            edi_bridge::telemetry::init(LogFormat::Text, "info");
            runtime().block_on(cli::sim(*args))
        }
        Command::Store(cmd) => runtime().block_on(cli::store(cmd)),
        Command::Translate {
            file,
            mapping,
            canonical,
            pos,
        } => edi_bridge::translate::translate(&file, mapping.as_deref(), canonical, &pos),
        Command::Mapping(cli::MappingCommand::Test {
            dir,
            mapping,
            update,
        }) => edi_bridge::translate::mapping_test(&dir, mapping.as_deref(), update),
        Command::Mapping(cli::MappingCommand::Learn {
            from,
            webhooks,
            mapping,
        }) => migrated(edi_bridge::migrate::learn::run(
            &from,
            webhooks.as_deref(),
            mapping.as_deref(),
        )),
        Command::Compare {
            mapping,
            van,
            webhooks,
            json,
        } => migrated(edi_bridge::migrate::compare::run(
            mapping.as_deref(),
            &van,
            &webhooks,
            json,
        )),
        Command::Inspect { file } => cli::inspect(&file),
        Command::Status {
            config,
            state,
            since,
            po,
            limit,
            account,
        } => status(
            &config,
            edi_bridge::admin::StatusQuery {
                state,
                since,
                po,
                limit,
                account,
            },
        ),
        Command::Show {
            config,
            po,
            account,
        } => show(&config, &po, account.as_deref()),
        Command::Retry {
            config,
            job,
            all_dead,
            account,
        } => retry(&config, job, all_dead, account.as_deref()),
        Command::Replay {
            config,
            po,
            account,
        } => replay(&config, &po, account.as_deref()),
        Command::Close {
            config,
            po,
            reason,
            account,
        } => close(&config, &po, &reason, account.as_deref()),
        Command::Reload { config } => {
            runtime().block_on(cli::operator(&config, "POST", "/reload", |_, _| {
                unreachable_reload()
            }))
        }
    };
    ExitCode::from(exit.code())
}

/// `edi-bridge status`: through the daemon's admin socket, or on the store when none answers
/// (as every operator command below).
fn status(config: &Path, q: edi_bridge::admin::StatusQuery) -> Exit {
    let path = status_path(&q);
    runtime().block_on(cli::operator(config, "GET", &path, |st, accounts| {
        ops::status(st, accounts, &q)
    }))
}

/// `?account=ID` when one is named.
fn account_query(account: Option<&str>) -> String {
    cli::query(&[("account", account)])
}

fn show(config: &Path, po: &str, account: Option<&str>) -> Exit {
    let path = format!("/show/{}{}", path_segment(po), account_query(account));
    runtime().block_on(cli::operator(config, "GET", &path, |st, accounts| {
        ops::show(st, &ops::resolve(st, accounts, po, account)?, config)
    }))
}

fn retry(config: &Path, job: Option<u64>, all_dead: bool, account: Option<&str>) -> Exit {
    if job.is_none() && !all_dead {
        eprintln!("edi-bridge retry: name a JOB or --all-dead");
        return Exit::Config;
    }
    let job_text = job.map(|j| j.to_string());
    let path = format!(
        "/retry{}",
        cli::query(&[("job", job_text.as_deref()), ("account", account)])
    );
    runtime().block_on(cli::operator(config, "POST", &path, |st, accounts| {
        ops::retry(st, accounts, job, account)
    }))
}

fn replay(config: &Path, po: &str, account: Option<&str>) -> Exit {
    let path = format!("/replay/{}{}", path_segment(po), account_query(account));
    runtime().block_on(cli::operator(config, "POST", &path, |st, accounts| {
        ops::replay(st, &ops::resolve(st, accounts, po, account)?)
    }))
}

fn close(config: &Path, po: &str, reason: &str, account: Option<&str>) -> Exit {
    let path = format!(
        "/close/{}{}",
        path_segment(po),
        cli::query(&[("reason", Some(reason)), ("account", account)])
    );
    runtime().block_on(cli::operator(config, "POST", &path, |st, accounts| {
        ops::close(st, &ops::resolve(st, accounts, po, account)?, reason)
    }))
}

/// `/status?…` for a status query.
fn status_path(q: &edi_bridge::admin::StatusQuery) -> String {
    let limit_text = q.limit.map(|l| l.to_string());
    format!(
        "/status{}",
        cli::query(&[
            ("state", q.state.as_deref()),
            ("since", q.since.as_deref()),
            ("po", q.po.as_deref()),
            ("limit", limit_text.as_deref()),
            ("account", q.account.as_deref())
        ])
    )
}

/// `edi-bridge run`: config first, then logging as it says, then the daemon.
fn run_daemon(config: &Path) -> Exit {
    match cli::load_config(config) {
        Err(e) => e,
        Ok(loaded) => {
            edi_bridge::telemetry::init(
                loaded.config.log.format,
                loaded.config.log.filter.as_deref().unwrap_or("info"),
            );
            // Not the runtime's drop: it would wait for every blocking task, and one stuck
            // on a failing disk must not hold the exit past the grace period.
            let rt = runtime();
            let exit = rt.block_on(cli::run(loaded));
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            exit
        }
    }
}

fn demo(dir: Option<PathBuf>) -> Exit {
    edi_bridge::telemetry::init(LogFormat::Text, "warn");
    match runtime().block_on(edi_bridge::demo::run(dir)) {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("edi-bridge demo failed: {e:#}");
            Exit::Failure
        }
    }
}

/// `edi-bridge generate-docs DIR` (hidden): the package's man pages and completions.
fn generate_docs(dir: &Path) -> Exit {
    match edi_bridge::manual::generate(dir) {
        Ok(files) => {
            println!("wrote {} files under {}", files.len(), dir.display());
            Exit::Ok
        }
        Err(e) => {
            eprintln!("edi-bridge generate-docs: {e:#}");
            Exit::Failure
        }
    }
}

fn unreachable_reload() -> anyhow::Result<String> {
    anyhow::bail!("reload needs a running daemon")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The exit of a `compare` or `mapping learn` command.
fn migrated(status: edi_bridge::migrate::Status) -> cli::Exit {
    match status {
        edi_bridge::migrate::Status::Ok => cli::Exit::Ok,
        edi_bridge::migrate::Status::Usage => cli::Exit::Config,
        edi_bridge::migrate::Status::Failed => cli::Exit::Failure,
    }
}
