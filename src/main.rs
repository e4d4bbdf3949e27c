//! The `edi-bridge` binary: parse the command line, load and validate configuration before
//! binding anything, set up logging, and hand over to the subcommand. Exit 64 for config or
//! usage errors, 1 for runtime failures.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use edi_bridge::cli::{self, Cli, Command, Exit};
use edi_bridge::config::LogFormat;

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
        Command::Check { config, online } => cli::check(&config, online),
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
        Command::Store(cmd) => runtime().block_on(cli::store(cmd)),
        Command::Status {
            config,
            state,
            since,
            po,
            limit,
            account,
        } => {
            let q = edi_bridge::admin::StatusQuery {
                state,
                since,
                po,
                limit,
                account,
            };
            let limit_text = q.limit.map(|l| l.to_string());
            let path = format!(
                "/status{}",
                cli::query(&[
                    ("state", q.state.as_deref()),
                    ("since", q.since.as_deref()),
                    ("po", q.po.as_deref()),
                    ("limit", limit_text.as_deref()),
                    ("account", q.account.as_deref())
                ])
            );
            runtime().block_on(cli::operator(&config, "GET", &path, |st, accounts| {
                edi_bridge::admin::ops::status(st, accounts, &q)
            }))
        }
        Command::Show {
            config,
            po,
            account,
        } => {
            let path = format!(
                "/show/{}{}",
                edi_bridge::ingram::calls::path_segment(&po),
                cli::query(&[("account", account.as_deref())])
            );
            runtime().block_on(cli::operator(&config, "GET", &path, |st, accounts| {
                let key = edi_bridge::admin::ops::resolve(st, accounts, &po, account.as_deref())?;
                edi_bridge::admin::ops::show(st, &key, &config)
            }))
        }
        Command::Retry {
            config,
            job,
            all_dead,
            account,
        } => {
            if job.is_none() && !all_dead {
                eprintln!("edi-bridge retry: name a JOB or --all-dead");
                Exit::Config
            } else {
                let path = format!(
                    "/retry{}",
                    cli::query(&[
                        ("job", job.map(|j| j.to_string()).as_deref()),
                        ("account", account.as_deref())
                    ])
                );
                runtime().block_on(cli::operator(&config, "POST", &path, |st, accounts| {
                    edi_bridge::admin::ops::retry(st, accounts, job, account.as_deref())
                }))
            }
        }
        Command::Replay {
            config,
            po,
            account,
        } => {
            let path = format!(
                "/replay/{}{}",
                edi_bridge::ingram::calls::path_segment(&po),
                cli::query(&[("account", account.as_deref())])
            );
            runtime().block_on(cli::operator(&config, "POST", &path, |st, accounts| {
                let key = edi_bridge::admin::ops::resolve(st, accounts, &po, account.as_deref())?;
                edi_bridge::admin::ops::replay(st, &key)
            }))
        }
        Command::Close {
            config,
            po,
            reason,
            account,
        } => {
            let path = format!(
                "/close/{}{}",
                edi_bridge::ingram::calls::path_segment(&po),
                cli::query(&[("reason", Some(&reason)), ("account", account.as_deref())])
            );
            runtime().block_on(cli::operator(&config, "POST", &path, |st, accounts| {
                let key = edi_bridge::admin::ops::resolve(st, accounts, &po, account.as_deref())?;
                edi_bridge::admin::ops::close(st, &key, &reason)
            }))
        }
        Command::Reload { config } => {
            runtime().block_on(cli::operator(&config, "POST", "/reload", |_, _| {
                unreachable_reload()
            }))
        }
        Command::Demo { dir } => {
            edi_bridge::telemetry::init(LogFormat::Text, "warn");
            match runtime().block_on(edi_bridge::demo::run(dir)) {
                Ok(()) => Exit::Ok,
                Err(e) => {
                    eprintln!("edi-bridge demo failed: {e:#}");
                    Exit::Failure
                }
            }
        }
        Command::Sim(args) => {
            edi_bridge::telemetry::init(LogFormat::Text, "info");
            runtime().block_on(cli::sim(*args))
        }
        Command::Run { config } => match cli::load_config(&config) {
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
        },
    };
    ExitCode::from(exit.code())
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
