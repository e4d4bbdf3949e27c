//! A local emulator of Ingram Micro's vendor API gateway, for tests and the demo (`edi-bridge sim`).
//! It issues OAuth2 client-credentials tokens, validates PO Response / PO Status calls the way
//! Ingram documents its errors, replays scripted faults (statuses, delays, dropped connections),
//! can be switched "down" for a maintenance window, and records every call in memory and, if asked,
//! as JSONL. Tests wait on recorded calls through a `Notify`, never by polling.

pub mod cli;
mod server;
pub mod varied;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use cli::{run, send_webhook, SimArgs};

/// How the emulator behaves. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    pub client_id: String,
    pub client_secret: String,
    /// If set, `IM-PartnerID` must equal it.
    pub partner_id: Option<String>,
    /// `expires_in` of issued tokens, and how long the emulator accepts them.
    pub token_ttl_secs: u64,
    /// Send `expires_in` as a JSON string instead of a number (Ingram has done both).
    pub expires_in_as_string: bool,
    /// Prefix of the API paths, e.g. `/vendors/v1`.
    pub base_path: String,
    /// Path of the token endpoint (not under `base_path`).
    pub token_path: String,
    /// PO Response path under `base_path`; `{po}` is the purchase order number.
    pub response_path: String,
    /// PO Status path under `base_path`; `{po}` is the purchase order number.
    pub status_path: String,
    /// Scripted faults, consumed one per PO API call (token calls do not consume them).
    pub faults: Vec<Fault>,
    /// Added to every answer.
    pub latency: Duration,
    /// Probability in `[0, 1]` that an API call gets a random 503.
    pub failure_rate: f64,
    /// Seed of the random 503s, so a run can be replayed.
    pub seed: u64,
    /// Append one JSON line per call (token calls too) to this file, flushed per line.
    pub record: Option<PathBuf>,
    /// Enforce a rate limit on PO calls like Ingram's gateway: every answer carries
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch seconds), and
    /// a call over the limit gets 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
}

/// At most `requests` PO calls in each window of `per`, windows aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            partner_id: None,
            token_ttl_secs: 86_399,
            expires_in_as_string: false,
            base_path: "/vendors/v1".to_owned(),
            token_path: "/oauth/oauth30/token".to_owned(),
            response_path: "/purchaseorders/{po}/response".to_owned(),
            status_path: "/purchaseorders/{po}/status".to_owned(),
            faults: Vec::new(),
            latency: Duration::ZERO,
            failure_rate: 0.0,
            seed: 0,
            record: None,
            rate_limit: None,
        }
    }
}

/// One scripted misbehaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a documented error body. 429 carries `X-RateLimit-*` and
    /// `Retry-After: 1`; 401 also expires the token the call used.
    Status(u16),
    /// Process the call normally but answer this late.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

/// A fault script item that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("bad delay in fault {0:?}: expected delay:<milliseconds>")]
    BadDelay(String),
    #[error("unknown fault {0:?}: expected a status code, delay:<ms> or drop")]
    Unknown(String),
}

/// Parse a fault script such as `503,503,429,401,delay:2000,drop` (delay in milliseconds).
pub fn parse_faults(s: &str) -> Result<Vec<Fault>, FaultError> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let lower = item.to_ascii_lowercase();
            if lower == "drop" {
                Ok(Fault::Drop)
            } else if let Some(ms) = lower.strip_prefix("delay:") {
                ms.trim()
                    .parse::<u64>()
                    .map(|ms| Fault::Delay(Duration::from_millis(ms)))
                    .map_err(|_| FaultError::BadDelay(item.to_string()))
            } else {
                match lower.parse::<u16>() {
                    Ok(code) if (200..=599).contains(&code) => Ok(Fault::Status(code)),
                    _ => Err(FaultError::Unknown(item.to_string())),
                }
            }
        })
        .collect()
}

/// One call as the emulator saw it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RecordedCall {
    /// When the call arrived (RFC 3339, UTC).
    pub at: String,
    pub method: String,
    pub path: String,
    /// `token`, `po_response`, `po_status` or `unknown`.
    pub kind: String,
    pub po: Option<String>,
    /// Lower-case header names; `Authorization` is redacted to `Bearer <len>`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (a string if it was not JSON; token calls: the form with the secret redacted).
    pub body: serde_json::Value,
    /// The status sent, or 0 when the connection was dropped.
    pub status: u16,
    pub response: serde_json::Value,
}

impl RecordedCall {
    /// A header value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// State shared between the handle and the server.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) faults: Mutex<VecDeque<Fault>>,
    pub(crate) down: AtomicBool,
    pub(crate) calls: Mutex<Vec<RecordedCall>>,
    pub(crate) recorded: tokio::sync::Notify,
    pub(crate) tokens: Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    pub(crate) rng: Mutex<rand::rngs::StdRng>,
    pub(crate) record_file: Option<tokio::sync::Mutex<tokio::fs::File>>,
    /// The rate limit's current window (its index since the epoch) and the calls counted in it.
    pub(crate) rate_window: Mutex<(u64, u32)>,
}

/// A running emulator. Stops when the `shutdown` token given to `start` is cancelled.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// Bind, open the record file and serve in a background task until `shutdown` is cancelled.
    pub async fn start(
        config: SimConfig,
        shutdown: CancellationToken,
    ) -> std::io::Result<SimHandle> {
        use rand::SeedableRng as _;
        if !(0.0..=1.0).contains(&config.failure_rate) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "failure rate must be between 0 and 1",
            ));
        }
        let record_file = match &config.record {
            Some(path) => Some(tokio::sync::Mutex::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            )),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(config.faults.iter().cloned().collect()),
            down: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            recorded: tokio::sync::Notify::new(),
            tokens: Mutex::new(Default::default()),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.seed)),
            record_file,
            rate_window: Mutex::new((0, 0)),
            config,
        });
        let task = tokio::spawn(server::serve(listener, shared.clone(), shutdown));
        Ok(SimHandle {
            shared,
            addr,
            task: Mutex::new(Some(task)),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}{base_path}`: the `api_base_url` for `ApiClient`.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.config.base_path)
    }

    /// `http://{addr}{token_path}`.
    pub fn token_url(&self) -> String {
        format!("http://{}{}", self.addr, self.shared.config.token_path)
    }

    /// The API calls (everything but token calls) so far, in arrival order of their answers.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.all_calls()
            .into_iter()
            .filter(|c| c.kind != "token")
            .collect()
    }

    /// The token calls so far.
    pub fn token_calls(&self) -> Vec<RecordedCall> {
        self.all_calls()
            .into_iter()
            .filter(|c| c.kind == "token")
            .collect()
    }

    /// Every recorded call, token calls included.
    pub fn all_calls(&self) -> Vec<RecordedCall> {
        lock(&self.shared.calls).clone()
    }

    /// Wait until at least `n` API calls are recorded or `timeout` passes; returns the API calls.
    pub async fn wait_for_calls(&self, n: usize, timeout: Duration) -> Vec<RecordedCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.calls();
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.calls();
            }
        }
    }

    /// The API calls recorded after the first `seen` ones, waiting (until `timeout`) for at
    /// least one. Only the new calls are copied, so a waiter following a long burst costs in
    /// proportion to the burst, not to its square.
    pub async fn wait_for_calls_after(&self, seen: usize, timeout: Duration) -> Vec<RecordedCall> {
        let deadline = tokio::time::Instant::now() + timeout;
        let after = || -> Vec<RecordedCall> {
            lock(&self.shared.calls)
                .iter()
                .filter(|c| c.kind != "token")
                .skip(seen)
                .cloned()
                .collect()
        };
        loop {
            let notified = self.shared.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = after();
            if !calls.is_empty() {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return after();
            }
        }
    }

    /// Append faults to the script.
    pub fn push_faults(&self, faults: Vec<Fault>) {
        lock(&self.shared.faults).extend(faults);
    }

    /// While down, every API call gets a 503 (a maintenance window); token calls still work.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many PO calls were answered 429 (by the rate limit or a scripted fault).
    pub fn throttled_count(&self) -> usize {
        self.calls().iter().filter(|c| c.status == 429).count()
    }

    /// How many tokens have been issued.
    pub fn token_count(&self) -> usize {
        self.all_calls()
            .iter()
            .filter(|c| c.kind == "token" && c.status == 200)
            .count()
    }

    /// Wait for the server task to end (after the shutdown token is cancelled).
    pub async fn stopped(&self) -> std::io::Result<()> {
        let task = lock(&self.task).take();
        match task {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Lock a std mutex, recovering from poisoning (a panicked test thread must not hide later data).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
