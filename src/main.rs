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
        Command::Check { config } => cli::check(&config),
        Command::Translate { webhook, mapping } => cli::translate(&webhook, mapping.as_deref()),
        Command::Inspect { file } => cli::inspect(&file),
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
                runtime().block_on(cli::run(loaded))
            }
        },
    };
    ExitCode::from(exit.code())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
