//! The single integration-test binary: tests drive the real daemon (`daemon::start`, or the built
//! binary for the systemd protocol and exit codes) with a
//! real listener on 127.0.0.1:0, temporary directories, a real sled store and real files.

mod accounts;
mod accounts_compat;
mod alerts;
mod archive_retention;
mod bad_input;
mod browser;
mod console;
mod continuity;
mod crash;
mod disk_full;
mod first_run;
mod hostile_files;
mod hostile_listener;
mod inbox_to_api;
mod integrity;
mod migrate;
mod notify;
mod online;
mod operate;
mod outage;
mod pacing;
mod programs;
mod real_world;
mod setup;
mod support;
mod webhook_to_850;
