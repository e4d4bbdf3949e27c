//! Test support: a daemon in a temporary workspace, a signing HTTP client, and waits that wake on
//! the daemon's own events instead of sleeping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edi_bridge::config::Config;
use edi_bridge::daemon::{self, Running};
use edi_bridge::sim::{SimConfig, SimHandle};
use edi_bridge::store::records::Outbound850;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-webhook-secret";
pub const OLD_SECRET: &str = "previous-webhook-secret";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const SAMPLE: &str = include_str!("../../samples/ingram-po-webhook.json");

/// The ERP's directories a workspace has (the state directory is the daemon's own).
pub const ERP_DIRS: [&str; 4] = ["outbox", "inbox", "archive", "error"];

/// A temporary workspace: config, mapping, ERP directories.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        // The ERP's directories exist before the daemon starts (it never creates them).
        for d in ERP_DIRS {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("webhook.secret"), SECRET).unwrap();
        std::fs::write(dir.path().join("webhook.previous"), OLD_SECRET).unwrap();
        std::fs::write(dir.path().join("client.secret"), CLIENT_SECRET).unwrap();
        std::fs::write(
            dir.path().join("mapping.toml"),
            edi_bridge::mapping::DEFAULT_MAPPING,
        )
        .unwrap();
        Workspace { dir }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config_text(&self, extra: &str) -> String {
        self.config_text_for(
            "http://127.0.0.1:9/vendors/v1",
            "http://127.0.0.1:9/oauth/oauth30/token",
            extra,
        )
    }

    pub fn config_text_for(&self, base_url: &str, token_url: &str, extra: &str) -> String {
        let d = self.dir.path().display();
        format!(
            r#"[server]
listen = "127.0.0.1:0"
webhook_secret_file = "{d}/webhook.secret"
webhook_secret_previous_file = "{d}/webhook.previous"
max_body_bytes = 65536
[paths]
state = "{d}/state"
outbox = "{d}/outbox"
inbox = "{d}/inbox"
archive = "{d}/archive"
error = "{d}/error"
[ingram]
api_base_url = "{base_url}"
token_url = "{token_url}"
client_id = "test-client"
client_secret_file = "{d}/client.secret"
request_timeout_secs = 2
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
# The emulator has no rate limit unless a test sets one: no pacing to wait for.
requests_per_minute = 60000
[mapping]
file = "mapping.toml"
[outbox]
retry_secs = 1
{extra}
"#
        )
    }

    pub async fn start(&self) -> TestDaemon {
        self.start_with("").await
    }

    pub async fn start_with(&self, extra: &str) -> TestDaemon {
        self.start_text(&self.config_text(extra)).await
    }

    /// Starts against an emulator (its base and token URLs).
    pub async fn start_against(&self, sim: &SimHandle, extra: &str) -> TestDaemon {
        self.start_text(&self.config_text_for(&sim.base_url(), &sim.token_url(), extra))
            .await
    }

    pub async fn start_text(&self, text: &str) -> TestDaemon {
        let path = self.path("edi-bridge.toml");
        std::fs::write(&path, text).unwrap();
        let mut loaded = Config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
        // The program workers are the real binary's (this test binary is not edi-bridge).
        loaded.config.program_worker = Some(BIN.into());
        let token = CancellationToken::new();
        let running = daemon::start(loaded, token.clone())
            .await
            .expect("daemon starts");
        TestDaemon {
            running: Some(running),
            token,
        }
    }

    /// Regular (non-hidden) files in a directory of the workspace, sorted.
    pub fn files(&self, sub: &str) -> Vec<PathBuf> {
        plain_files(&self.path(sub))
    }

    /// The names of `files(sub)`.
    pub fn names(&self, sub: &str) -> Vec<String> {
        self.files(sub).iter().map(|p| name_of(p)).collect()
    }
}

pub struct TestDaemon {
    pub running: Option<Running>,
    pub token: CancellationToken,
}

impl TestDaemon {
    pub fn r(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhooks/ingram/purchase-orders", self.r().addr)
    }

    /// Stops the daemon and waits for it to drain.
    pub async fn stop(mut self) {
        self.token.cancel();
        self.running
            .take()
            .unwrap()
            .wait()
            .await
            .expect("clean shutdown");
    }

    /// Waits (on daemon events, no sleeping) until `n` POs have their 850 written.
    pub async fn wait_written(&self, n: usize) {
        let mut rx = self.r().events.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.written_count() >= n {
                return;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(_) => {}
                Err(_) => panic!("timed out: {} of {n} 850s written", self.written_count()),
            }
        }
    }

    pub fn written_count(&self) -> usize {
        self.r()
            .store
            .orders()
            .filter(|o| {
                matches!(
                    o.as_ref().map(|o| &o.outbound),
                    Ok(Outbound850::Written { .. })
                )
            })
            .count()
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn sign(event_id: &str) -> String {
    edi_bridge::ingram::signature::sign(SECRET.as_bytes(), event_id)
}

/// POSTs `body` signed for `event_id` (or with `signature` when given).
pub async fn post(url: &str, body: &str, signature: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature", sig);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// The sample webhook with another event id and PO number.
pub fn sample_with(event_id: &str, po: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    v["eventid"] = event_id.into();
    v["resource"][0]["ingramPurchaseOrderNumber"] = po.into();
    v.to_string()
}

/// Splits an X12 file written with the default mapping (`*`, `~`, newline) into segments.
pub fn segments(bytes: &[u8]) -> Vec<Vec<String>> {
    String::from_utf8(bytes.to_vec())
        .expect("850 is ASCII")
        .split('~')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.split('*').map(str::to_string).collect())
        .collect()
}

pub fn find<'a>(segs: &'a [Vec<String>], id: &str) -> Vec<&'a Vec<String>> {
    segs.iter().filter(|s| s[0] == id).collect()
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Every regular file under `dir`, recursively; hidden ones (temp files, receipts) only when
/// `hidden` is set.
pub fn walk(dir: &Path, hidden: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p, hidden));
        } else if hidden || !e.file_name().to_string_lossy().starts_with('.') {
            out.push(p);
        }
    }
    out
}

/// Regular (non-hidden) files directly in `dir`, sorted.
pub fn plain_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && !name_of(p).starts_with('.'));
    v.sort();
    v
}

/// A file's name, as a string.
pub fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The release-under-test `edi-bridge` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_edi-bridge");

/// `edi-bridge` with none of the secret or systemd variables the test runner might carry.
pub fn edi_bridge_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "CREDENTIALS_DIRECTORY",
        edi_bridge::config::ENV_WEBHOOK_SECRET,
        edi_bridge::config::ENV_WEBHOOK_SECRET_PREVIOUS,
        edi_bridge::config::ENV_CLIENT_SECRET,
        edi_bridge::config::ENV_CONSOLE_TOKEN,
        edi_bridge::config::ENV_SMTP_PASSWORD,
        edi_bridge::config::ENV_CONFIG,
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// Reads a child's stderr on a thread: every line (raw bytes, so a test can look for control
/// characters) is written to `log` behind `prefix` and handed to `on_line`. The returned channel
/// gets the listen address from the daemon's `edi-bridge started.` line, or `None` when stderr
/// closes without one.
pub fn tee_stderr(
    child: &mut std::process::Child,
    mut log: impl std::io::Write + Send + 'static,
    prefix: String,
    mut on_line: impl FnMut(&[u8]) + Send + 'static,
) -> tokio::sync::oneshot::Receiver<Option<String>> {
    use std::io::BufRead as _;
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut reader = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let _ = log.write_all(prefix.as_bytes());
            let _ = log.write_all(&line);
            if !line.ends_with(b"\n") {
                let _ = log.write_all(b"\n");
            }
            on_line(&line);
            let text = String::from_utf8_lossy(&line);
            if text.contains("edi-bridge started.") {
                let addr = text
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("listen="))
                    .map(str::to_string);
                if let (Some(addr), Some(tx)) = (addr, tx.take()) {
                    let _ = tx.send(Some(addr));
                }
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(None);
        }
    });
    rx
}

/// A GET of `path` on the daemon's listener.
pub async fn get(d: &TestDaemon, path: &str) -> reqwest::Response {
    client()
        .get(format!("http://{}{path}", d.r().addr))
        .send()
        .await
        .unwrap()
}

/// The daemon's `/metrics` text.
pub async fn metrics(d: &TestDaemon) -> String {
    get(d, "/metrics").await.text().await.unwrap()
}

/// The daemon's `/metrics` text once it has every line of `want`: the figures come from
/// daemon events a metrics task counts after the test saw their effect, so they are asked for
/// again (each scrape a real request, no sleep) until they show or 20 s pass.
pub async fn metrics_showing(d: &TestDaemon, want: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics(d).await;
        if want.iter().all(|w| m.contains(w)) || tokio::time::Instant::now() > deadline {
            return m;
        }
        tokio::task::yield_now().await;
    }
}

/// The console's Migration page (`[console]` must be set).
pub async fn migration_page(d: &TestDaemon) -> String {
    let url = format!(
        "http://{}/migration",
        d.r().console_addr.expect("console listening")
    );
    client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits (on daemon events) for the next call recorded instead of sent
/// (`[migration] send_calls = false`); its PO key.
pub async fn wait_call_recorded(
    rx: &mut tokio::sync::broadcast::Receiver<edi_bridge::events::Event>,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(edi_bridge::events::Event::CallRecorded { po, .. })) => return po,
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for a recorded call"),
        }
    }
}

/// An emulator on 127.0.0.1:0 accepting the test client's credentials.
pub async fn sim(configure: impl FnOnce(&mut SimConfig)) -> (SimHandle, CancellationToken) {
    let mut cfg = SimConfig {
        client_id: "test-client".into(),
        client_secret: CLIENT_SECRET.into(),
        partner_id: Some("US123456".into()),
        ..SimConfig::default()
    };
    configure(&mut cfg);
    let token = CancellationToken::new();
    let handle = SimHandle::start(cfg, token.clone())
        .await
        .expect("sim starts");
    (handle, token)
}

/// Writes `content` into the inbox the way an ERP should: a temporary name, then a rename.
pub fn drop_inbox(ws: &Workspace, name: &str, content: &[u8]) {
    let tmp = ws.path(&format!("inbox/.{name}.part"));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, ws.path(&format!("inbox/{name}"))).unwrap();
}

impl TestDaemon {
    /// Waits on daemon events (no sleeping) until `cond` holds.
    pub async fn until(&self, what: &str, cond: impl Fn() -> bool) {
        let mut rx = self.r().events.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !cond() {
            if tokio::time::timeout_at(deadline, rx.recv()).await.is_err() {
                panic!("timed out waiting for {what}");
            }
        }
    }

    /// Waits (on daemon events) for the next inbox file outcome for `name`.
    pub async fn wait_inbox(
        &self,
        rx: &mut tokio::sync::broadcast::Receiver<edi_bridge::events::Event>,
        name: &str,
    ) -> edi_bridge::events::Outcome {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Ok(edi_bridge::events::Event::InboxFile { file, outcome })) if file == name => {
                    return outcome
                }
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for inbox file {name}"),
            }
        }
    }
}

/// The sample 855 for another PO, its ISA13 and GS06 made unique by `n`.
pub fn ack_855_for(po: &str, n: u32) -> Vec<u8> {
    include_str!("../../samples/ingram-po-855.edi")
        .replace("IM-PO-1001", po)
        .replace("000000501", &format!("{n:09}"))
        .replace("*501*X*", &format!("*{n}*X*"))
        .replace("GE*1*501~", &format!("GE*1*{n}~"))
        .into_bytes()
}

/// The sample 856 for another PO, its ISA13, GS06 and shipment id made unique by `n`.
pub fn asn_856_for(po: &str, n: u32) -> Vec<u8> {
    include_str!("../../samples/ingram-po-856.edi")
        .replace("IM-PO-1001", po)
        .replace("ASN-5501", &format!("ASN-{n}"))
        .replace("000000601", &format!("{n:09}"))
        .replace("*601*X*", &format!("*{n}*X*"))
        .replace("GE*1*601~", &format!("GE*1*{n}~"))
        .into_bytes()
}
