//! edi-bridge: Ingram Micro's vendor APIs on one side, a legacy ERP's X12 flat files on the other.
//!
//! Reading order:
//! - [`config`], [`mapping`]: validated data from TOML; every assumed Ingram name lives in the mapping;
//!   [`load`] loads both (and the secrets) as one.
//! - [`x12`]: the sans-IO X12 codec (no I/O, no async, nothing from the rest of the crate).
//! - [`to_erp`]: webhook → [`store`] → pure `to_850` → outbox file, exactly once.
//! - [`from_erp`]: inbox → parse → pure `from_855`/`from_856` → store jobs → the account's `partner::Partner` → Ingram.
//! - [`ingram::api`]: the Ingram client; [`sim`]: the Ingram emulator.
//! - [`store`]: the only module that names sled; group-committed flushes.
//! - [`daemon`]: starts and drains every task; [`notify`]: systemd protocol.
//! - [`cli`], [`telemetry`], [`metrics`], [`clock`], [`ingram::signature`], [`background`], [`text`]:
//!   edges and small helpers.
//!
//! See ARCHITECTURE.md for the map and the invariants.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, unreachable_pub)]

pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod archive;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod continuity;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod events;
pub mod files;
pub mod from_erp;
pub mod ingram;
pub mod input;
pub mod listener;
pub mod load;
pub mod manual;
pub mod mapping;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod online;
pub mod pacing;
pub mod partner;
pub mod program;
pub mod reload;
pub mod samples;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod to_erp;
pub mod tomlfile;
pub mod translate;
pub mod x12;
