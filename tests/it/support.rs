//! Test support: a daemon in a temporary workspace, a signing HTTP client, and waits that wake on
//! the daemon's own events instead of sleeping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use edi_bridge::config::Config;
use edi_bridge::daemon::{self, Event, Running};
use edi_bridge::store::records::Outbound850;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-webhook-secret";
pub const OLD_SECRET: &str = "previous-webhook-secret";
pub const SAMPLE: &str = include_str!("../../samples/ingram-po-webhook.json");

/// A temporary workspace: config, mapping, ERP directories.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("webhook.secret"), SECRET).unwrap();
        std::fs::write(dir.path().join("webhook.previous"), OLD_SECRET).unwrap();
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
api_base_url = "http://127.0.0.1:9/vendors/v1"
token_url = "http://127.0.0.1:9/oauth/oauth30/token"
client_id = "test-client"
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
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
        let path = self.path("edi-bridge.toml");
        std::fs::write(&path, self.config_text(extra)).unwrap();
        let loaded = Config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
        let token = CancellationToken::new();
        let running = daemon::start(loaded, token.clone())
            .await
            .expect("daemon starts");
        TestDaemon {
            running: Some(running),
            token,
        }
    }

    /// Regular (non-hidden) files in a directory, sorted.
    pub fn files(&self, sub: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path(sub))
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'));
        v.sort();
        v
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
                Ok(Ok(Event::Written850 { .. })) | Ok(Err(_)) => {}
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
    edi_bridge::signature::sign(SECRET.as_bytes(), event_id)
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
