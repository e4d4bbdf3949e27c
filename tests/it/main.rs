//! The single integration-test binary: every test drives the real daemon (`daemon::start`) with a
//! real listener on 127.0.0.1:0, temporary directories, a real sled store and real files.

mod inbox_to_api;
mod support;
mod webhook_to_850;
