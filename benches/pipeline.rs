//! End-to-end benchmarks of edi-bridge, each next to a baseline measured in the same run on the
//! same machine and disk, so that the report is a ratio and never an absolute claim: webhook
//! intake with durability (the release daemon as a child process against a minimal handler that
//! appends each body to a file and `sync_data()`s it under one lock: one fsync per request),
//! closed-loop at 32 keep-alive connections and open-loop at a fixed rate; inbox file → Ingram API
//! call latency against the in-process emulator (against calling the emulator directly); our X12
//! reader against pyx12 on the same file (when a Python with pyx12 is given); and memory (RSS of
//! the daemon idle and under load, peak RSS reading a 100 MB interchange streaming versus
//! whole-document, each in a fresh child process). It folds in the criterion results of
//! `benches/x12.rs` when they are fresh, prints one markdown table and writes it to
//! `target/bench-results.md`. Run it through `scripts/bench`; knobs are `BENCH_*` variables
//! (see `Settings::from_env`). Nothing here asserts on time.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use axum::body::Bytes;
use edi_bridge::x12::{read, ReadEvent, ReadOptions, Reader};

#[path = "common/gen_856.rs"]
mod gen_856;
use gen_856::gen_856;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-webhook-secret";
const CLIENT_SECRET: &str = "bench-client-secret";
const WEBHOOK_PATH: &str = "/webhooks/ingram/purchase-orders";
const SAMPLE: &str = include_str!("../samples/ingram-po-webhook.json");
const ACK_855: &str = include_str!("../samples/ingram-po-855.edi");
const DAEMON_BIN: &str = env!("CARGO_BIN_EXE_edi-bridge");
const MIB: f64 = 1024.0 * 1024.0;

/// What to run and how much of it; every knob is a `BENCH_*` environment variable.
struct Settings {
    /// Requests in the closed-loop intake run (`BENCH_REQUESTS`, 5000).
    requests: usize,
    /// Concurrent keep-alive connections (`BENCH_CONNECTIONS`, 32).
    connections: usize,
    /// Open-loop target rate in requests/s (`BENCH_RATE`, 1000) ...
    rate: usize,
    /// ... for this many seconds (`BENCH_RATE_SECS`, 5).
    rate_secs: usize,
    /// Inbox documents dropped one at a time (`BENCH_INBOX_SEQ`, 100).
    inbox_seq: usize,
    /// Inbox documents dropped at once (`BENCH_INBOX_BURST`, 300).
    inbox_burst: usize,
    /// Size of the interchange for the memory run (`BENCH_BIG_MB`, 100).
    big_mb: usize,
    /// Size of the interchange compared with pyx12 (`BENCH_PY_MB`, 5).
    py_mb: usize,
    /// A Python with pyx12 importable (`BENCH_PYTHON`); empty or unset skips the comparison.
    python: Option<String>,
    /// Criterion results older than this Unix time are ignored (`BENCH_CRITERION_SINCE`).
    criterion_since: Option<u64>,
    /// Sections to run (`BENCH_ONLY`, a comma list of intake, accounts, inbox, x12, pyx12, memory, bigfile, history, inboxsets, webhookhistory; all
    /// when unset).
    only: Option<Vec<String>>,
    /// POs preloaded for the history section (`BENCH_HISTORY_POS`, 200,000).
    history_pos: usize,
    /// POs posted through the webhook in the webhook-history section (`BENCH_WEBHOOK_POS`,
    /// 100,000).
    webhook_pos: usize,
    /// 855 sets in the one inbox file of the inbox-sets section (`BENCH_INBOX_SETS`, 30,000).
    inbox_sets: usize,
    /// Cargo's target directory (derived from this executable's path).
    target: PathBuf,
    /// Scratch space for workspaces and generated files (`target/bench-tmp`).
    root: PathBuf,
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name} must be a whole number, not {v:?}")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
        let q = |full: usize, small: usize| if quick { small } else { full };
        let exe = std::env::current_exe()?;
        // target/release/deps/pipeline-HASH
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) => PathBuf::from(d),
            None => exe
                .ancestors()
                .nth(3)
                .context("cannot find the target directory")?
                .to_path_buf(),
        };
        let root = target.join("bench-tmp");
        Ok(Settings {
            requests: env_usize("BENCH_REQUESTS", q(5000, 500))?,
            connections: env_usize("BENCH_CONNECTIONS", 32)?,
            rate: env_usize("BENCH_RATE", 1000)?,
            rate_secs: env_usize("BENCH_RATE_SECS", q(5, 1))?,
            inbox_seq: env_usize("BENCH_INBOX_SEQ", q(100, 20))?,
            inbox_burst: env_usize("BENCH_INBOX_BURST", q(300, 40))?,
            big_mb: env_usize("BENCH_BIG_MB", q(100, 10))?,
            history_pos: env_usize("BENCH_HISTORY_POS", q(200_000, 5_000))?,
            inbox_sets: env_usize("BENCH_INBOX_SETS", q(30_000, 3_000))?,
            webhook_pos: env_usize("BENCH_WEBHOOK_POS", q(100_000, 5_000))?,
            py_mb: env_usize("BENCH_PY_MB", q(5, 1))?,
            python: std::env::var("BENCH_PYTHON")
                .ok()
                .filter(|p| !p.trim().is_empty()),
            criterion_since: std::env::var("BENCH_CRITERION_SINCE")
                .ok()
                .and_then(|v| v.parse().ok()),
            only: std::env::var("BENCH_ONLY")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.split(',').map(|x| x.trim().to_string()).collect()),
            target,
            root,
        })
    }

    /// Whether section `name` is to run (see `only`).
    fn runs(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|x| x == name))
    }
}

/// One line of the results table.
struct Row {
    metric: String,
    ours: String,
    baseline: String,
    ratio: String,
}

/// The table, grouped by benchmark number, plus notes printed under it.
#[derive(Default)]
struct Report {
    sections: BTreeMap<u8, Vec<Row>>,
    notes: Vec<String>,
}

impl Report {
    fn row(&mut self, section: u8, metric: &str, ours: String, baseline: String, ratio: String) {
        self.sections.entry(section).or_default().push(Row {
            metric: metric.to_string(),
            ours,
            baseline,
            ratio,
        });
    }

    /// A row with a numeric ratio ours / baseline.
    fn compare(&mut self, section: u8, metric: &str, ours: f64, base: f64, unit: Unit) {
        let ratio = if base > 0.0 && ours.is_finite() && base.is_finite() {
            format!("{:.2}×", ours / base)
        } else {
            "–".into()
        };
        self.row(section, metric, unit.fmt(ours), unit.fmt(base), ratio);
    }

    fn markdown(&self) -> String {
        let mut s = String::from("| # | metric | ours | baseline | ratio (ours / baseline) |\n");
        s.push_str("|---|---|---:|---:|---:|\n");
        for (n, rows) in &self.sections {
            for r in rows {
                s.push_str(&format!(
                    "| {n} | {} | {} | {} | {} |\n",
                    r.metric, r.ours, r.baseline, r.ratio
                ));
            }
        }
        if !self.notes.is_empty() {
            s.push('\n');
            let mut notes: Vec<&String> = self.notes.iter().collect();
            // Numbered notes in benchmark order, then the rest (stable).
            notes.sort_by_key(|n| n.chars().next().filter(char::is_ascii_digit).unwrap_or('9'));
            for n in notes {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

#[derive(Clone, Copy)]
enum Unit {
    PerSec(&'static str),
    Ms,
    MiBps,
    MiB,
}

impl Unit {
    fn fmt(self, v: f64) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        match self {
            Unit::PerSec(what) => format!("{} {what}/s", group_digits(v.round() as u64)),
            Unit::Ms if v < 10.0 => format!("{v:.2} ms"),
            Unit::Ms => format!("{v:.1} ms"),
            Unit::MiBps => format!("{v:.1} MiB/s"),
            Unit::MiB => format!("{v:.1} MiB"),
        }
    }
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; criterion-style flags are ignored.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("child") {
        return child(&args[1..]);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Settings::from_env()?;
    if s.root.exists() {
        std::fs::remove_dir_all(&s.root)
            .with_context(|| format!("cannot clear {}", s.root.display()))?;
    }
    std::fs::create_dir_all(&s.root)?;
    let mut rep = Report::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(async {
        // The baseline server's runs, measured once for sections 1 and 10.
        let base = if s.runs("intake") || s.runs("accounts") {
            step("1/10. the baseline: one fsync per request");
            Some(intake_one(&s, Kind::Baseline).await?)
        } else {
            None
        };
        if let (true, Some(base)) = (s.runs("intake"), &base) {
            step("1. webhook intake with durability (+ daemon memory)");
            intake(&s, &mut rep, base).await?;
        }
        if let (true, Some(base)) = (s.runs("accounts"), &base) {
            step("10. end to end (2xx and the 850 in the outbox), one account against two");
            accounts(&s, &mut rep, base).await?;
        }
        if s.runs("inbox") {
            step("4. inbox file → Ingram API call");
            inbox(&s, &mut rep).await?;
        }
        if s.runs("bigfile") {
            step("6. webhook intake while a 100 MB file is still being written into the inbox");
            big_inbox_file(&s, &mut rep).await?;
        }
        if s.runs("history") {
            step("7. history: a store holding many POs against an empty one");
            history(&s, &mut rep).await?;
        }
        if s.runs("inboxsets") {
            step("8. one inbox file of many 855 sets: the daemon's peak RSS");
            inbox_sets(&s, &mut rep).await?;
        }
        if s.runs("webhookhistory") {
            step("9. many POs taken in through the webhook: the daemon's RSS after");
            webhook_history(&s, &mut rep).await?;
        }
        anyhow::Ok(())
    })?;
    drop(rt);
    if s.runs("x12") {
        step("2/3. criterion results of benches/x12.rs");
        criterion_rows(&s, &mut rep)?;
    }
    if s.runs("pyx12") {
        step("3. our reader against pyx12 on the same file");
        parse_vs_pyx12(&s, &mut rep)?;
    }
    if s.runs("memory") {
        step("5. memory reading a big interchange");
        memory_big(&s, &mut rep)?;
    }
    rep.notes.push(environment());
    rep.notes.push(format!(
        "pipeline bench wall time {:.0} s",
        started.elapsed().as_secs_f64()
    ));

    let text = format!("## Benchmark results\n\n{}", rep.markdown());
    println!("\n{text}");
    let out = s.target.join("bench-results.md");
    std::fs::write(&out, &text).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("written to {}", out.display());
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&s.root);
    }
    Ok(())
}

fn step(what: &str) {
    eprintln!("== {what}");
}

fn environment() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cpus} CPUs available, Linux {}; the load generator, the servers and the other \
         builds share them, so compare ratios within one run, not numbers across runs",
        kernel.trim()
    )
}

// ---------------------------------------------------------------------------------------------
// Child processes: the baseline server and the memory probes run in a fresh process each.

fn child(args: &[String]) -> anyhow::Result<()> {
    match args {
        [mode, dir] if mode == "baseline-server" => baseline_server(Path::new(dir)),
        [mode, how, file] if mode == "mem-read" => mem_read(how, Path::new(file)),
        _ => bail!("unknown child mode {args:?}"),
    }
}

/// The baseline: axum on the same runtime shape as the daemon; each request appends its body to
/// one file and `sync_data()`s it while holding the file's lock, then answers 200.
fn baseline_server(dir: &Path) -> anyhow::Result<()> {
    use axum::extract::State;
    use axum::routing::{get, post};
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("baseline.log"))?;
    let file = Arc::new(std::sync::Mutex::new(file));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new()
            .route(
                WEBHOOK_PATH,
                post(
                    |State(f): State<Arc<std::sync::Mutex<std::fs::File>>>, body: Bytes| async move {
                        let done = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                            f.write_all(&body)?;
                            f.write_all(b"\n")?;
                            f.sync_data()
                        })
                        .await;
                        match done {
                            Ok(Ok(())) => (axum::http::StatusCode::OK, "{\"status\":\"accepted\"}"),
                            _ => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "{}"),
                        }
                    },
                ),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .with_state(file);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTEN {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

/// Reads `file` into memory, then: `load` nothing more, `stream` walks `x12::Reader`, `whole`
/// builds the `x12::read` document; prints peak RSS.
fn mem_read(how: &str, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file)?;
    let opts = ReadOptions::default();
    let t = Instant::now();
    let items = match how {
        "load" => bytes.iter().step_by(4096).filter(|b| **b == b'~').count(),
        "stream" => {
            let mut n = 0usize;
            for ev in Reader::new(&bytes, &opts) {
                if let ReadEvent::Transaction(t) = ev {
                    n += t.segments.len();
                }
            }
            n
        }
        "whole" => {
            let doc = read(&bytes, &opts);
            let n = doc.interchanges.len() + doc.diagnostics.len();
            // Measure while the document is alive.
            let hwm = status_kb("self", "VmHWM").unwrap_or(0);
            println!("hwm_kb {hwm} secs {} items {n}", t.elapsed().as_secs_f64());
            drop(doc);
            return Ok(());
        }
        _ => bail!("unknown mem-read mode {how}"),
    };
    let hwm = status_kb("self", "VmHWM").unwrap_or(0);
    println!(
        "hwm_kb {hwm} secs {} items {items}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A `kB` field of `/proc/PID/status`.
fn status_kb(pid: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn kb_to_mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// 1. Webhook intake.

/// A server under test, killed (by its own pid) when dropped.
struct Proc {
    child: Child,
    base: String,
}

impl Proc {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
    fn url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.base)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ours,
    Baseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Baseline => "baseline",
        }
    }
}

/// Writes secrets, mapping and config into `dir`; returns the config path.
fn write_workspace(
    dir: &Path,
    listen: &str,
    api_base: &str,
    token_url: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for sub in ["outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("webhook.secret"), SECRET)?;
    std::fs::write(dir.join("client.secret"), CLIENT_SECRET)?;
    std::fs::write(
        dir.join("mapping.toml"),
        edi_bridge::mapping::DEFAULT_MAPPING,
    )?;
    let d = dir.display();
    let text = format!(
        r#"[server]
listen = "{listen}"
webhook_secret_file = "{d}/webhook.secret"
[paths]
state = "{d}/state"
outbox = "{d}/outbox"
inbox = "{d}/inbox"
archive = "{d}/archive"
error = "{d}/error"
[ingram]
api_base_url = "{api_base}"
token_url = "{token_url}"
client_id = "bench-client"
client_secret_file = "{d}/client.secret"
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
requests_per_minute = 600000
[mapping]
file = "mapping.toml"
{extra}
"#
    );
    let path = dir.join("edi-bridge.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts the release daemon (`edi-bridge run`), logging at its default level to a file.
fn start_ours(dir: &Path, extra: &str) -> anyhow::Result<Proc> {
    let port = free_port()?;
    let config = write_workspace(
        dir,
        &format!("127.0.0.1:{port}"),
        "http://127.0.0.1:9/vendors/v1",
        "http://127.0.0.1:9/oauth/oauth30/token",
        extra,
    )?;
    // Beside the workspace, not in it: the daemon watches the mapping file's directory, and a log
    // growing there would wake that watcher on every line (in production logs go to journald).
    let log = std::fs::File::create(dir.with_extension("log"))?;
    let child = Command::new(DAEMON_BIN)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {DAEMON_BIN}"))?;
    Ok(Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
    })
}

fn start_baseline(dir: &Path) -> anyhow::Result<Proc> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("child")
        .arg("baseline-server")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let addr = line
        .strip_prefix("LISTEN ")
        .map(str::trim)
        .ok_or_else(|| anyhow!("baseline server said {line:?}"))?
        .to_string();
    Ok(Proc {
        child,
        base: format!("http://{addr}"),
    })
}

async fn start_server(kind: Kind, dir: &Path) -> anyhow::Result<Proc> {
    start_server_with(kind, dir, "").await
}

/// [`start_server`] with extra config text (ours only).
async fn start_server_with(kind: Kind, dir: &Path, extra: &str) -> anyhow::Result<Proc> {
    let p = match kind {
        Kind::Ours => start_ours(dir, extra)?,
        Kind::Baseline => start_baseline(dir)?,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", p.base)).send().await {
            if r.status().is_success() {
                return Ok(p);
            }
        }
        if Instant::now() > deadline {
            bail!("{} server did not become ready", kind.name());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Distinct signed webhooks (one PO each): body and `x-hub-signature`.
fn webhooks(tag: &str, n: usize) -> anyhow::Result<Arc<Vec<(Bytes, String)>>> {
    webhooks_signed(tag, n, SECRET)
}

/// [`webhooks`] signed with an account's own `secret`.
fn webhooks_signed(tag: &str, n: usize, secret: &str) -> anyhow::Result<Arc<Vec<(Bytes, String)>>> {
    let template: serde_json::Value = serde_json::from_str(SAMPLE)?;
    Ok(Arc::new(
        (0..n)
            .map(|i| {
                let event = format!("{tag}-EV-{i:06}");
                let mut v = template.clone();
                v["eventid"] = event.clone().into();
                v["resource"][0]["ingramPurchaseOrderNumber"] = format!("{tag}-{i:06}").into();
                (
                    Bytes::from(v.to_string()),
                    edi_bridge::ingram::signature::sign(secret.as_bytes(), &event),
                )
            })
            .collect(),
    ))
}

async fn post_one(client: &reqwest::Client, url: &str, body: &Bytes, sig: &str) -> bool {
    match client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature", sig)
        .body(body.clone())
        .send()
        .await
    {
        Ok(r) => {
            let ok = r.status().is_success();
            ok && r.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// Latencies of the 2xx answers, the failures, and the wall time of one load run.
struct Load {
    lat: Vec<Duration>,
    failed: usize,
    elapsed: Duration,
}

impl Load {
    fn rate(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, q: f64) -> f64 {
        ms(quantile(&self.lat, q))
    }
}

/// `conns` connections (one client each, keep-alive), each sending its next request as soon as
/// the previous one is answered, until `bodies` is used up.
async fn closed_loop(url: &str, bodies: Arc<Vec<(Bytes, String)>>, conns: usize) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let (url, bodies, next) = (url.to_string(), bodies.clone(), next.clone());
        set.spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("http client");
            let (mut lat, mut failed) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, sig)) = bodies.get(i) else {
                    break;
                };
                let t = Instant::now();
                if post_one(&client, &url, body, sig).await {
                    lat.push(t.elapsed());
                } else {
                    failed += 1;
                }
            }
            (lat, failed)
        });
    }
    let (mut lat, mut failed) = (Vec::new(), 0);
    while let Some(r) = set.join_next().await {
        let (l, f) = r.expect("load task");
        lat.extend(l);
        failed += f;
    }
    let elapsed = start.elapsed();
    lat.sort();
    Load {
        lat,
        failed,
        elapsed,
    }
}

/// Open loop: request `i` is due at `start + i / rate` whatever happened to the earlier ones;
/// latency counts from that due time (no coordinated omission). Achieved rate is 2xx answers
/// over the time from start to the last answer.
async fn open_loop(url: &str, bodies: Arc<Vec<(Bytes, String)>>, rate: usize) -> Load {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .expect("http client");
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..bodies.len() {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (client, url, bodies) = (client.clone(), url.to_string(), bodies.clone());
        set.spawn(async move {
            let (body, sig) = &bodies[i];
            let ok = post_one(&client, &url, body, sig).await;
            let done = tokio::time::Instant::now();
            (ok, done - due, done)
        });
    }
    let (mut lat, mut failed, mut last) = (Vec::new(), 0, start);
    while let Some(r) = set.join_next().await {
        let (ok, l, done) = r.expect("load task");
        last = last.max(done);
        if ok {
            lat.push(l);
        } else {
            failed += 1;
        }
    }
    lat.sort();
    Load {
        lat,
        failed,
        elapsed: last - start,
    }
}

/// Samples `/proc/PID/status` VmRSS every 20 ms on a thread; `stop` returns the largest value.
/// The stop signal is a channel, so the sampler ends at once instead of finishing a sleep.
struct RssSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: String) -> RssSampler {
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            loop {
                max = max.max(status_kb(&pid, "VmRSS").unwrap_or(0));
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return max,
                }
            }
        });
        RssSampler { stop, thread }
    }
    fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(0)
    }
}

/// Section 6: the same daemon and the same open loop, once idle and once while another thread
/// writes a 100 MB interchange into the inbox in place (1 MiB every 30 ms, never finished): the
/// webhook p99 and peak RSS of the busy run against the idle one.
async fn big_inbox_file(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let dir = s.root.join("bigfile");
    let p = start_server(Kind::Ours, &dir).await?;
    let warm = closed_loop(&p.url(), webhooks("GW", 200)?, s.connections).await;
    if warm.failed > 0 {
        bail!("{} warm-up requests failed", warm.failed);
    }
    let rate = s.rate / 2;
    let run = |tag: &'static str| async move {
        let bodies = webhooks(tag, rate * s.rate_secs)?;
        anyhow::Ok(bodies)
    };
    let sampler = RssSampler::start(p.pid());
    let idle = open_loop(&p.url(), run("GI").await?, rate).await;
    let idle_kb = sampler.stop();
    // The writer: an ISA, then segment after segment, and no IEA.
    let path = dir.join("inbox").join("huge.856");
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || -> std::io::Result<u64> {
        use std::io::Write;
        let mut f = std::fs::File::create(&path)?;
        f.write_all(b"ISA*00*          *00*          *ZZ*VENDORERP      *ZZ*INGRAMMICRO    *261129*1200*U*00401*000000001*0*P*>~GS*SH*VENDORERP*INGRAMMICRO*20261129*1200*1*X*004010~ST*856*0001~")?;
        let chunk = "LIN**VP*PART-0001*UP*012345678905~SN1**1*EA~".repeat(1 << 20 >> 6);
        let mut written = 0u64;
        while written < 100 << 20 {
            f.write_all(chunk.as_bytes())?;
            written += chunk.len() as u64;
            if stop_rx.recv_timeout(Duration::from_millis(30)).is_ok() {
                break;
            }
        }
        // Held open, unfinished, until the measurement ends.
        let _ = stop_rx.recv();
        Ok(written)
    });
    let sampler = RssSampler::start(p.pid());
    let busy = open_loop(&p.url(), run("GB").await?, rate).await;
    let busy_kb = sampler.stop();
    let _ = stop_tx.send(());
    let written = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    drop(p);
    eprintln!(
        "   open loop at {rate}/s: idle p99 {:.2} ms, RSS {} KiB; with {} MiB being written p99 {:.2} ms, RSS {} KiB",
        idle.p(0.99),
        idle_kb,
        written >> 20,
        busy.p(0.99),
        busy_kb
    );
    rep.compare(
        6,
        &format!(
            "webhook p99 at {rate} req/s, a 100 MB file being written into the inbox vs idle ↓"
        ),
        busy.p(0.99),
        idle.p(0.99),
        Unit::Ms,
    );
    rep.compare(
        6,
        "… daemon peak RSS ↓",
        busy_kb as f64 / 1024.0,
        idle_kb as f64 / 1024.0,
        Unit::MiB,
    );
    Ok(())
}

/// What one server did in the closed-loop and open-loop runs.
struct IntakeResult {
    closed: Load,
    open: Load,
    idle_kb: u64,
    load_peak_kb: u64,
    hwm_kb: u64,
    written_850: usize,
    /// 850 files written per second in the 5 s after the closed-loop run (intake idle).
    drain_rate: f64,
    /// Ours: the same closed loop on a fresh server with `[outbox] paused = true`.
    paused: Option<Load>,
}

async fn intake_one(s: &Settings, kind: Kind) -> anyhow::Result<IntakeResult> {
    let tag = match kind {
        Kind::Ours => "O",
        Kind::Baseline => "B",
    };
    // Closed loop on a fresh server.
    let dir = s.root.join(format!("intake-{}-closed", kind.name()));
    let p = start_server(kind, &dir).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_kb = status_kb(&p.pid(), "VmRSS").unwrap_or(0);
    let warm = closed_loop(&p.url(), webhooks(&format!("{tag}W"), 200)?, s.connections).await;
    if warm.failed > 0 {
        bail!("{}: {} warm-up requests failed", kind.name(), warm.failed);
    }
    let bodies = webhooks(&format!("{tag}C"), s.requests)?;
    let sampler = RssSampler::start(p.pid());
    let closed = closed_loop(&p.url(), bodies, s.connections).await;
    let load_peak_kb = sampler.stop();
    let hwm_kb = status_kb(&p.pid(), "VmHWM").unwrap_or(0);
    let written_850 = count_850(&dir.join("outbox"));
    eprintln!(
        "   {} closed loop: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
        kind.name(),
        closed.rate(),
        closed.p(0.50),
        closed.p(0.99),
        closed.failed
    );
    // With intake idle, how fast does the outbox worker catch up?
    let drain_secs = 5.0;
    let drained_850 = if kind == Kind::Ours {
        tokio::time::sleep(Duration::from_secs_f64(drain_secs)).await;
        count_850(&dir.join("outbox")).saturating_sub(written_850)
    } else {
        0
    };
    drop(p);

    // The store's write path alone: the closed loop again, the outbox paused.
    let paused = if kind == Kind::Ours {
        let dir = s.root.join("intake-ours-paused");
        let p = start_server_with(kind, &dir, "[outbox]\npaused = true\n").await?;
        let warm = closed_loop(&p.url(), webhooks("QW", 200)?, s.connections).await;
        if warm.failed > 0 {
            bail!(
                "ours (outbox paused): {} warm-up requests failed",
                warm.failed
            );
        }
        let load = closed_loop(&p.url(), webhooks("QC", s.requests)?, s.connections).await;
        eprintln!(
            "   ours closed loop, outbox paused: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
            load.rate(),
            load.p(0.50),
            load.p(0.99),
            load.failed
        );
        drop(p);
        Some(load)
    } else {
        None
    };

    // Open loop on another fresh server (no backlog from the closed-loop run).
    let dir = s.root.join(format!("intake-{}-open", kind.name()));
    let p = start_server(kind, &dir).await?;
    let warm = closed_loop(&p.url(), webhooks(&format!("{tag}X"), 200)?, s.connections).await;
    if warm.failed > 0 {
        bail!("{}: {} warm-up requests failed", kind.name(), warm.failed);
    }
    let bodies = webhooks(&format!("{tag}P"), s.rate * s.rate_secs)?;
    let open = open_loop(&p.url(), bodies, s.rate).await;
    eprintln!(
        "   {} open loop at {}/s: achieved {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
        kind.name(),
        s.rate,
        open.rate(),
        open.p(0.50),
        open.p(0.99),
        open.failed
    );
    drop(p);
    Ok(IntakeResult {
        closed,
        open,
        idle_kb,
        load_peak_kb,
        hwm_kb,
        written_850,
        drain_rate: drained_850 as f64 / drain_secs,
        paused,
    })
}

/// Visible `.850` files in an outbox.
fn count_850(outbox: &Path) -> usize {
    std::fs::read_dir(outbox)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".850") && !n.starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

async fn intake(s: &Settings, rep: &mut Report, base: &IntakeResult) -> anyhow::Result<()> {
    let ours = intake_one(s, Kind::Ours).await?;
    let c = s.connections;
    let n = s.requests;
    rep.compare(
        1,
        &format!("webhook intake, {n} req closed-loop over {c} keep-alive conns: throughput ↑"),
        ours.closed.rate(),
        base.closed.rate(),
        Unit::PerSec("req"),
    );
    rep.compare(
        1,
        "… p50 latency to 2xx ↓",
        ours.closed.p(0.50),
        base.closed.p(0.50),
        Unit::Ms,
    );
    rep.compare(
        1,
        "… p99 latency to 2xx ↓",
        ours.closed.p(0.99),
        base.closed.p(0.99),
        Unit::Ms,
    );
    rep.row(
        1,
        "… failed requests",
        ours.closed.failed.to_string(),
        base.closed.failed.to_string(),
        "".into(),
    );
    rep.row(
        1,
        "… 850 files already in the outbox when the last 2xx arrived",
        format!("{} of {}", ours.written_850, n + 200),
        "n/a".into(),
        "".into(),
    );
    rep.row(
        1,
        "… then 850 files written per second with intake idle (5 s)",
        Unit::PerSec("850").fmt(ours.drain_rate),
        "n/a".into(),
        "".into(),
    );
    if let Some(paused) = &ours.paused {
        rep.compare(
            1,
            "… the same with the outbox paused (`[outbox] paused`: the store's write path alone): throughput ↑",
            paused.rate(),
            base.closed.rate(),
            Unit::PerSec("req"),
        );
        rep.compare(
            1,
            "… with the outbox paused: p99 latency to 2xx ↓",
            paused.p(0.99),
            base.closed.p(0.99),
            Unit::Ms,
        );
    }
    let r = s.rate;
    let total = s.rate * s.rate_secs;
    rep.compare(
        1,
        &format!(
            "open loop at {r} req/s for {} s: achieved rate ↑",
            s.rate_secs
        ),
        ours.open.rate(),
        base.open.rate(),
        Unit::PerSec("req"),
    );
    rep.compare(
        1,
        "… p50 latency from due time ↓",
        ours.open.p(0.50),
        base.open.p(0.50),
        Unit::Ms,
    );
    rep.compare(
        1,
        "… p99 latency from due time ↓",
        ours.open.p(0.99),
        base.open.p(0.99),
        Unit::Ms,
    );
    let verdict = |l: &Load| {
        let held = l.rate() >= 0.95 * r as f64 && l.failed == 0;
        let fast = l.p(0.99) < 10.0;
        match (held, fast) {
            (true, true) => "yes".to_string(),
            (false, _) => format!("no (rate not held: {:.0}/s)", l.rate()),
            (true, false) => "no".to_string(),
        }
    };
    rep.row(
        1,
        &format!("… p99 < 10 ms at {r} POs/s ({total} requests)?"),
        verdict(&ours.open),
        verdict(&base.open),
        "".into(),
    );
    rep.row(
        1,
        "… failed requests",
        ours.open.failed.to_string(),
        base.open.failed.to_string(),
        "".into(),
    );
    rep.compare(
        5,
        "server RSS idle (after start) ↓",
        kb_to_mib(ours.idle_kb),
        kb_to_mib(base.idle_kb),
        Unit::MiB,
    );
    rep.compare(
        5,
        "server RSS under load (max VmRSS sampled every 20 ms, closed loop) ↓",
        kb_to_mib(ours.load_peak_kb),
        kb_to_mib(base.load_peak_kb),
        Unit::MiB,
    );
    rep.compare(
        5,
        "server VmHWM after the closed-loop run ↓",
        kb_to_mib(ours.hwm_kb),
        kb_to_mib(base.hwm_kb),
        Unit::MiB,
    );
    rep.notes.push(format!(
        "1: ours = the release binary (`edi-bridge run`, default config, info logs to a file) on \
         127.0.0.1; each request is a distinct signed webhook with 1 PO (2 lines): content type, \
         HMAC, JSON decode, one sled transaction, group-commit flush, 2xx; the outbox worker \
         renders 850s concurrently and makes each batch durable at once. The row \
         \"outbox paused\" is the same closed loop on a third fresh server with \
         `[outbox] paused = true`: the store's write path alone. Baseline = a child process running axum with the \
         same runtime shape whose handler appends the body to one file and `sync_data()`s it \
         under a lock (one fsync per request, no parsing). Each server gets a fresh directory \
         under target/ (same disk) and a 200-request warm-up; the open-loop run uses a second \
         fresh server. The client shares the {} CPUs with the server.",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Inbox file → API call.

/// The sample 855 for PO `BENCH-n`, with its own ISA13 and GS06.
fn ack_855(n: usize) -> (String, String) {
    let po = format!("BENCH-{n:06}");
    let control = 700_000 + n;
    let text = ACK_855
        .replace("000000501", &format!("{control:09}"))
        .replace("*0900*501*X*", &format!("*0900*{control}*X*"))
        .replace("GE*1*501~", &format!("GE*1*{control}~"))
        .replace("IM-PO-1001", &po);
    (po, text)
}

/// Writes document `n` under a hidden name; returns (hidden path, final path, PO).
fn stage_855(inbox: &Path, n: usize) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let (po, text) = ack_855(n);
    let hidden = inbox.join(format!(".{po}.855.part"));
    std::fs::write(&hidden, text)?;
    Ok((hidden, inbox.join(format!("{po}.855")), po))
}

async fn inbox(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    use edi_bridge::sim::{SimConfig, SimHandle};
    let stop = CancellationToken::new();
    let sim = Arc::new(
        SimHandle::start(
            SimConfig {
                client_id: "bench-client".into(),
                client_secret: CLIENT_SECRET.into(),
                partner_id: Some("US123456".into()),
                ..SimConfig::default()
            },
            stop.clone(),
        )
        .await?,
    );
    let dir = s.root.join("inbox-bench");
    let config = write_workspace(
        &dir,
        "127.0.0.1:0",
        &sim.base_url(),
        &sim.token_url(),
        "[inbox]\nsettle_ms = 0\nrescan_secs = 1\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n",
    )?;
    let loaded = edi_bridge::config::Config::load(&config).map_err(|e| anyhow!("{e}"))?;
    let running = edi_bridge::daemon::start(loaded, stop.clone()).await?;
    let inbox = dir.join("inbox");
    let timeout = Duration::from_secs(60);
    let mut n = 0usize;

    // One document at a time (the first five warm up: token, trees, page cache).
    let mut seq = Vec::new();
    for i in 0..5 + s.inbox_seq {
        let (hidden, fin, po) = stage_855(&inbox, n)?;
        let t = Instant::now();
        std::fs::rename(&hidden, &fin)?;
        n += 1;
        let calls = sim.wait_for_calls_after(n - 1, timeout).await;
        let now = Instant::now();
        let Some(call) = calls.first() else {
            bail!("inbox: no API call for {po} within {timeout:?}");
        };
        if call.po.as_deref() != Some(po.as_str()) || !(200..300).contains(&call.status) {
            bail!(
                "inbox: expected a 2xx for {po}, got {:?} {}",
                call.po,
                call.status
            );
        }
        if i >= 5 {
            seq.push(now - t);
        }
    }
    seq.sort();

    // A burst: every file renamed in at once; each timed from its rename to its recorded 2xx.
    let staged: Vec<_> = (n..n + s.inbox_burst)
        .map(|k| stage_855(&inbox, k))
        .collect::<Result<_, _>>()?;
    let base = n;
    let watcher = {
        let sim = sim.clone();
        let want = base + s.inbox_burst;
        tokio::spawn(async move {
            let mut seen = base;
            let mut stamps = Vec::new();
            while seen < want {
                // Only the new calls are copied: the watcher must not cost the square of the
                // burst (it shares the CPUs with the daemon it times).
                let calls = sim.wait_for_calls_after(seen, timeout).await;
                let now = Instant::now();
                if calls.is_empty() {
                    break;
                }
                for c in &calls {
                    stamps.push((c.po.clone().unwrap_or_default(), c.status, now));
                }
                seen += calls.len();
            }
            stamps
        })
    };
    // The inbox's own part: the instant each file of the burst is archived (before its call).
    let archived = {
        let mut rx = running.events.subscribe();
        let want = s.inbox_burst;
        tokio::spawn(async move {
            let mut last = None;
            let mut n = 0;
            while n < want {
                match tokio::time::timeout(timeout, rx.recv()).await {
                    Ok(Ok(edi_bridge::events::Event::InboxFile { .. })) => {
                        n += 1;
                        last = Some(Instant::now());
                    }
                    Ok(Ok(_)) => {}
                    _ => break,
                }
            }
            (n, last)
        })
    };
    let mut renamed: HashMap<String, Instant> = HashMap::new();
    let first = Instant::now();
    for (hidden, fin, po) in &staged {
        std::fs::rename(hidden, fin)?;
        renamed.insert(po.clone(), Instant::now());
    }
    let stamps = watcher.await?;
    let mut burst = Vec::new();
    let mut last = first;
    for (po, status, at) in &stamps {
        if let Some(t) = renamed.get(po) {
            if (200..300).contains(status) {
                burst.push(*at - *t);
                last = last.max(*at);
            }
        }
    }
    if burst.len() != s.inbox_burst {
        bail!(
            "inbox burst: {} of {} documents reached the emulator with a 2xx",
            burst.len(),
            s.inbox_burst
        );
    }
    burst.sort();
    let burst_rate = burst.len() as f64 / (last - first).as_secs_f64();
    let (inbox_files, inbox_last) = archived.await?;
    let inbox_rate = inbox_last.map_or(0.0, |t| inbox_files as f64 / (t - first).as_secs_f64());

    // Baseline: the same call straight to the emulator with the daemon's API client.
    let reference = sim.calls()[0].clone();
    let loaded = edi_bridge::config::Config::load(&config).map_err(|e| anyhow!("{e}"))?;
    let account = loaded.primary();
    let client = edi_bridge::daemon::api_client(&account.account, &account.secrets)?;
    let path = reference
        .path
        .strip_prefix("/vendors/v1")
        .unwrap_or(&reference.path)
        .to_string();
    let body = reference.body.clone();
    let mut direct = Vec::new();
    for i in 0..5 + s.inbox_seq {
        let t = Instant::now();
        client
            .post_json(&path, &body, &edi_bridge::ingram::api::new_correlation_id())
            .await?;
        if i >= 5 {
            direct.push(t.elapsed());
        }
    }
    direct.sort();
    let workers = loaded.config.delivery.workers;
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (client, path, body, next) = (client.clone(), path.clone(), body.clone(), next.clone());
        let total = s.inbox_burst;
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                client
                    .post_json(&path, &body, &edi_bridge::ingram::api::new_correlation_id())
                    .await?;
            }
            Ok::<_, edi_bridge::ingram::api::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let direct_rate = s.inbox_burst as f64 / t.elapsed().as_secs_f64();

    stop.cancel();
    running.wait().await?;
    sim.stopped().await?;

    let q = s.inbox_seq;
    rep.compare(
        4,
        &format!("855 rename → emulator 2xx, one at a time ({q} docs): p50 ↓"),
        ms(quantile(&seq, 0.50)),
        ms(quantile(&direct, 0.50)),
        Unit::Ms,
    );
    rep.compare(
        4,
        "… p99 ↓",
        ms(quantile(&seq, 0.99)),
        ms(quantile(&direct, 0.99)),
        Unit::Ms,
    );
    let b = s.inbox_burst;
    rep.compare(
        4,
        &format!("burst of {b} 855s renamed at once: documents/s ↑"),
        burst_rate,
        direct_rate,
        Unit::PerSec("doc"),
    );
    rep.row(
        4,
        "… of which the inbox alone (rename → file archived, jobs durable): files/s",
        Unit::PerSec("file").fmt(inbox_rate),
        "n/a".into(),
        "".into(),
    );
    rep.row(
        4,
        "… p50 / p99 rename → 2xx",
        format!(
            "{} / {}",
            Unit::Ms.fmt(ms(quantile(&burst, 0.50))),
            Unit::Ms.fmt(ms(quantile(&burst, 0.99)))
        ),
        "n/a".into(),
        "".into(),
    );
    rep.notes.push(format!(
        "4: ours = `daemon::start` in this process against `SimHandle` (settle_ms = 0, \
         {workers} delivery workers, no log subscriber): rename into the inbox → claim, parse, \
         one store transaction + flush, archive, 997, job → PO Response call; timed from the \
         rename to the emulator's recorded 2xx (`wait_for_calls`). Baseline = the same PO \
         Response body posted straight to the emulator with the daemon's `ApiClient` (one at a \
         time; {workers} concurrent for the burst): the floor set by the HTTP call itself."
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2/3. Criterion results from benches/x12.rs.

/// Mean time per iteration (ns) and the declared throughput, by criterion's `full_id`.
fn criterion_results(s: &Settings) -> BTreeMap<String, (f64, Option<(String, f64)>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![s.target.join("criterion")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.file_name().is_none_or(|n| n != "benchmark.json")
                || p.parent()
                    .and_then(Path::file_name)
                    .is_none_or(|n| n != "new")
            {
                continue;
            }
            let estimates = p.with_file_name("estimates.json");
            let fresh = match (s.criterion_since, std::fs::metadata(&estimates)) {
                (None, Ok(_)) => true,
                (Some(since), Ok(m)) => m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .is_some_and(|t| t.as_secs() >= since),
                (_, Err(_)) => false,
            };
            if !fresh {
                continue;
            }
            let (Ok(b), Ok(est)) = (std::fs::read(&p), std::fs::read(&estimates)) else {
                continue;
            };
            let (Ok(b), Ok(est)) = (
                serde_json::from_slice::<serde_json::Value>(&b),
                serde_json::from_slice::<serde_json::Value>(&est),
            ) else {
                continue;
            };
            let Some(id) = b["full_id"].as_str() else {
                continue;
            };
            // The median, not the mean: on a shared VM a few preempted samples drag the mean of
            // the longer benchmarks down more than that of the short baseline.
            let Some(median) = est["median"]["point_estimate"].as_f64() else {
                continue;
            };
            let tp = b["throughput"].as_object().and_then(|o| {
                o.iter()
                    .next()
                    .and_then(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
            });
            out.insert(id.to_string(), (median, tp));
        }
    }
    out
}

/// Throughput per second of one criterion result (bytes → MiB/s, elements → elements/s).
fn per_sec(r: &(f64, Option<(String, f64)>)) -> Option<(f64, bool)> {
    let (median_ns, tp) = r;
    let (kind, amount) = tp.as_ref()?;
    let per_sec = amount / (median_ns * 1e-9);
    Some(if kind.starts_with("Bytes") {
        (per_sec / MIB, true)
    } else {
        (per_sec, false)
    })
}

fn criterion_rows(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let all = criterion_results(s);
    if all.is_empty() {
        rep.notes.push(
            "2/3: no fresh criterion results (run `cargo bench --bench x12` first; \
             `scripts/bench` does)"
                .into(),
        );
        return Ok(());
    }
    let get = |id: &str| all.get(id).and_then(per_sec);
    let mut used = Vec::new();
    let render = "render_850/100 POs x 20 lines";
    if let Some((v, _)) = get(render) {
        rep.row(
            2,
            "850 render, POs of 20 lines (criterion) ↑",
            Unit::PerSec("PO").fmt(v),
            "n/a".into(),
            "".into(),
        );
        used.push(render);
    }
    let pairs = [
        (
            "read_856/x12::read 50MB",
            "read_856/memchr segment split 50MB",
            "X12 parse, 50 MB 856: `x12::read` vs bare memchr `~` split ↑",
        ),
        (
            "read_856/x12::Reader streaming 50MB",
            "read_856/memchr segment split 50MB",
            "X12 parse, 50 MB 856: `x12::Reader` streaming vs bare memchr split ↑",
        ),
        (
            "read_856/x12::read 5MB",
            "read_856/edi::parse 5MB",
            "X12 parse, 5 MB 856: `x12::read` vs `edi::parse` ↑",
        ),
    ];
    for (ours, base, metric) in pairs {
        if let (Some((o, _)), Some((b, _))) = (get(ours), get(base)) {
            rep.compare(3, metric, o, b, Unit::MiBps);
            used.push(ours);
            used.push(base);
        }
    }
    // Anything else the x12 bench measured (it is being extended): listed as is.
    for (id, r) in &all {
        if used.contains(&id.as_str())
            || !(id.starts_with("read_856/") || id.starts_with("render_850/"))
        {
            continue;
        }
        if let Some((v, bytes)) = per_sec(r) {
            let (section, unit) = if bytes {
                (3, Unit::MiBps)
            } else {
                (2, Unit::PerSec("elem"))
            };
            rep.row(
                section,
                &format!("criterion `{id}`"),
                unit.fmt(v),
                "".into(),
                "".into(),
            );
        }
    }
    rep.notes.push(
        "2/3: criterion median times from `benches/x12.rs` (generated 856 with deep HL trees; 850s \
         with 20 lines), run by `scripts/bench` just before this bench"
            .into(),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. pyx12 on the same file.

/// The median of `runs` timings of `f`, in seconds.
fn median_secs(runs: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

const PYX12_SCRIPT: &str = r#"
import sys, time
path, mode = sys.argv[1], sys.argv[2]
import pyx12.rawx12file, pyx12.x12file
n = 0
t = time.perf_counter()
with open(path, encoding="ascii") as f:
    reader = pyx12.rawx12file.RawX12File(f) if mode == "raw" else pyx12.x12file.X12Reader(f)
    for seg in reader:
        n += 1
print(n, time.perf_counter() - t)
"#;

/// Runs pyx12 over `file`; returns (segments, seconds).
fn pyx12(python: &str, file: &Path, mode: &str) -> anyhow::Result<(usize, f64)> {
    let out = Command::new(python)
        .arg("-c")
        .arg(PYX12_SCRIPT)
        .arg(file)
        .arg(mode)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {python}"))?;
    if !out.status.success() {
        bail!(
            "pyx12 {mode} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let n = it.next().and_then(|v| v.parse().ok());
    let secs = it.next().and_then(|v| v.parse().ok());
    match (n, secs) {
        (Some(n), Some(secs)) => Ok((n, secs)),
        _ => bail!("pyx12 printed {text:?}"),
    }
}

fn parse_vs_pyx12(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let Some(python) = &s.python else {
        rep.notes.push(
            "3: pyx12 comparison skipped (no Python with pyx12; set BENCH_PYTHON or let \
             `scripts/bench` install it into target/pyx12-venv)"
                .into(),
        );
        return Ok(());
    };
    let data = gen_856(s.py_mb * 1024 * 1024);
    let file = s.root.join("pyx12-856.x12");
    std::fs::write(&file, &data)?;
    let mib = data.len() as f64 / MIB;
    let opts = ReadOptions::default();
    let ours_read = median_secs(5, || read(&data, &opts).diagnostics.len());
    let ours_stream = median_secs(5, || {
        Reader::new(&data, &opts)
            .filter(|e| matches!(e, ReadEvent::Transaction(_)))
            .count()
    });
    let segments = data.iter().filter(|b| **b == b'~').count();
    for (mode, label) in [
        ("raw", "`pyx12.rawx12file.RawX12File`"),
        ("x12file", "`pyx12.x12file.X12Reader`"),
    ] {
        match pyx12(python, &file, mode) {
            Ok((n, secs)) => {
                if n != segments {
                    rep.notes.push(format!(
                        "3: pyx12 {mode} saw {n} segments, the file has {segments}"
                    ));
                }
                let metric = format!(
                    "X12 parse, same {:.0} MB 856 file: `x12::read` vs {label} (Python subprocess, read loop only) ↑",
                    mib
                );
                rep.compare(3, &metric, mib / ours_read, mib / secs, Unit::MiBps);
                if mode == "raw" {
                    rep.compare(
                        3,
                        &format!("… `x12::Reader` streaming vs {label} ↑"),
                        mib / ours_stream,
                        mib / secs,
                        Unit::MiBps,
                    );
                }
            }
            Err(e) => rep.notes.push(format!("3: pyx12 {mode} skipped: {e:#}")),
        }
    }
    let version = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('pyx12'))",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    rep.notes.push(format!(
        "3: pyx12 {version} times only its segment loop (file opened in text mode, Python \
         start-up excluded); ours: median of 5 in-process runs over the same bytes in memory"
    ));
    let _ = std::fs::remove_file(&file);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Memory reading a big interchange.

/// Runs one `mem-read` child; returns (VmHWM kB, seconds).
fn mem_child(how: &str, file: &Path) -> anyhow::Result<(u64, f64)> {
    let out = Command::new(std::env::current_exe()?)
        .args(["child", "mem-read", how])
        .arg(file)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "mem-read {how} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    let field = |k: &str| {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
            .map(|v| v.to_string())
    };
    let hwm = field("hwm_kb").and_then(|v| v.parse().ok());
    let secs = field("secs").and_then(|v| v.parse().ok());
    match (hwm, secs) {
        (Some(h), Some(s)) => Ok((h, s)),
        _ => bail!("mem-read {how} printed {text:?}"),
    }
}

fn memory_big(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let file = s.root.join("big-856.x12");
    let size = {
        let data = gen_856(s.big_mb * 1024 * 1024);
        std::fs::write(&file, &data)?;
        data.len()
    };
    let mb = size as f64 / MIB;
    let (load, _) = mem_child("load", &file)?;
    let (stream, stream_secs) = mem_child("stream", &file)?;
    let (whole, whole_secs) = mem_child("whole", &file)?;
    let label = format!("{mb:.0} MiB 856");
    rep.compare(
        5,
        &format!("peak RSS reading a {label}: `x12::Reader` streaming vs the bytes alone ↓"),
        kb_to_mib(stream),
        kb_to_mib(load),
        Unit::MiB,
    );
    rep.compare(
        5,
        &format!("peak RSS reading a {label}: `x12::read` whole document vs the bytes alone ↓"),
        kb_to_mib(whole),
        kb_to_mib(load),
        Unit::MiB,
    );
    rep.compare(
        5,
        "… peak RSS above the bytes: streaming vs whole document ↓",
        kb_to_mib(stream.saturating_sub(load)),
        kb_to_mib(whole.saturating_sub(load)),
        Unit::MiB,
    );
    rep.compare(
        5,
        &format!("… parse speed on the {label}: streaming vs whole document ↑"),
        mb / stream_secs,
        mb / whole_secs,
        Unit::MiBps,
    );
    rep.notes.push(
        "5: each probe is a fresh child process reading the file into memory (`Reader` borrows \
         a byte slice) and reporting VmHWM; \"the bytes alone\" is the same process without \
         parsing. Daemon RSS is `/proc/PID/status` of the release binary during benchmark 1."
            .into(),
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. History: the cost of a year of POs against an empty store.

/// Writes `n` POs of two lines into the state directory of `dir` through the store API, as the
/// daemon would have: each event stored, its 850 allocated and written, and all but one in a
/// hundred have their 997 from the ERP (those stay overdue, as a few do in real life). Returns the size of the state directory in bytes.
fn preload(dir: &Path, n: usize, received_at: &str) -> anyhow::Result<u64> {
    use edi_bridge::store::{InboundBatch, NewEvent, PreparedEvent, Store};
    let mapping = edi_bridge::mapping::Mapping::builtin();
    let pair = mapping.interchange.pair_key();
    let store = Store::open(&dir.join("state"))?;
    let batch = 500;
    let mut done = 0;
    while done < n {
        let upto = (done + batch).min(n);
        // Each PO with its own names, addresses and parts (the emulator's varied webhooks), so
        // the store's compression meets values its dictionary has never seen.
        let events = (done..upto)
            .map(|i| {
                let po_number = format!("H-{i:07}");
                let event_id = format!("HEV-{i:07}");
                let raw = edi_bridge::sim::varied::webhook(i as u64, &event_id, &po_number);
                let v: serde_json::Value = serde_json::from_str(&raw)?;
                let orders = edi_bridge::ingram::order::decode(&v, &mapping.webhook)
                    .map_err(|e| anyhow!("{e}"))?
                    .orders;
                Ok(NewEvent {
                    account: edi_bridge::domain::DEFAULT_ACCOUNT.into(),
                    event_id,
                    received_at: received_at.into(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    raw_body: raw,
                    orders,
                })
            })
            .collect::<anyhow::Result<Vec<NewEvent>>>()?;
        let events: Vec<PreparedEvent> = events.into_iter().map(PreparedEvent::new).collect();
        let refs: Vec<&PreparedEvent> = events.iter().collect();
        store.record_events(&refs)?;
        let names: Vec<String> = (done..upto).map(|i| format!("H-{i:07}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let recs = store
            .allocate_850s(&name_refs, &pair, received_at, |po, e| {
                format!("{po}.{}.850", e.isa13)
            })?
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        let queue = store.outbox_batch(batch * 2)?;
        let done_refs: Vec<(u64, &str)> = queue.iter().map(|(q, p)| (*q, p.as_str())).collect();
        store.complete_850s(&done_refs, received_at)?;
        let acks: Vec<_> = recs
            .iter()
            .enumerate()
            .filter(|(k, _)| k % 100 != 0)
            .filter_map(|(_, r)| match &r.outbound {
                edi_bridge::store::records::Outbound850::Allocated { envelope } => {
                    Some(edi_bridge::store::records::Erp997::new(
                        pair.clone(),
                        envelope.gs06,
                        edi_bridge::store::records::ErpAck::Accepted,
                        "",
                    ))
                }
                _ => None,
            })
            .collect();
        store.commit_inbound(&InboundBatch {
            interchanges: vec![format!("bench-997-{done}").into_bytes()],
            claimed_file: format!("bench-997-{done}"),
            received_at: received_at.into(),
            jobs: vec![],
            shipped: vec![],
            erp_997: acks,
            files: vec![],
            history: vec![],
        })?;
        done = upto;
    }
    store.flush_blocking()?;
    drop(store);
    Ok(dir_size(&dir.join("state")))
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct HistoryResult {
    state_bytes: u64,
    start_ms: f64,
    idle_kb: u64,
    load_peak_kb: u64,
    metrics_ms: f64,
    status_ms: f64,
    p99_ms: f64,
    /// Intake p99 while retention prunes the whole history (`None` for the empty store).
    pruning_p99_ms: Option<f64>,
}

async fn history_one(s: &Settings, n: usize) -> anyhow::Result<HistoryResult> {
    let dir = s.root.join(format!("history-{n}"));
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    // Received two days ago: kept by the default retention (90 days) for the measurements,
    // all prunable with retention_days = 1 for the last one.
    let received_at = edi_bridge::clock::rfc3339_ms(
        edi_bridge::clock::Clock::system()
            .now_ms()
            .saturating_sub(2 * 86_400_000),
    );
    let state_bytes = if n > 0 {
        preload(&dir, n, &received_at)?
    } else {
        0
    };
    eprintln!(
        "   preloaded {n} POs in {:.1} s ({:.0} MiB of state)",
        started.elapsed().as_secs_f64(),
        state_bytes as f64 / MIB
    );
    let t = Instant::now();
    let p = start_server(Kind::Ours, &dir).await?;
    let start_ms = ms(t.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_kb = status_kb(&p.pid(), "VmRSS").unwrap_or(0);
    let client = reqwest::Client::new();
    let mut metrics = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let r = client.get(format!("{}/metrics", p.base)).send().await?;
        let _ = r.text().await?;
        metrics.push(t.elapsed());
    }
    metrics.sort();
    let mut status = Vec::new();
    let target_po = if n > 0 {
        format!("H-{:07}", n / 2)
    } else {
        "NONE".into()
    };
    for _ in 0..5 {
        let t = Instant::now();
        let out = Command::new(DAEMON_BIN)
            .args(["status", "--config"])
            .arg(dir.join("edi-bridge.toml"))
            .args(["--po", &target_po])
            .output()?;
        if !out.status.success() {
            bail!(
                "status --po failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        status.push(t.elapsed());
    }
    status.sort();
    let bodies = webhooks(&format!("HL{n}"), s.rate * s.rate_secs)?;
    let sampler = RssSampler::start(p.pid());
    let open = open_loop(&p.url(), bodies, s.rate).await;
    let load_peak_kb = sampler.stop();
    eprintln!(
        "   {n} POs: RSS idle {:.1} MiB, peak {:.1} MiB; /metrics {:.2} ms; status --po {:.1} ms; p99 {:.2} ms at {:.0} req/s",
        kb_to_mib(idle_kb),
        kb_to_mib(load_peak_kb),
        ms(metrics[metrics.len() / 2]),
        ms(status[status.len() / 2]),
        open.p(0.99),
        open.rate()
    );
    drop(p);
    // Again with retention_days = 1: the pruner starts at once and removes the whole history
    // in batches of 200 while the same open-loop load runs.
    let pruning_p99_ms = if n > 0 {
        let p = start_server_with(Kind::Ours, &dir, "[store]\nretention_days = 1\n").await?;
        let bodies = webhooks(&format!("HP{n}"), s.rate * s.rate_secs)?;
        let open = open_loop(&p.url(), bodies, s.rate).await;
        let still = Command::new(DAEMON_BIN)
            .args(["status", "--config"])
            .arg(dir.join("edi-bridge.toml"))
            .args(["--limit", "1"])
            .output()?;
        let summary = String::from_utf8_lossy(&still.stdout);
        eprintln!(
            "   while pruning: p99 {:.2} ms at {:.0} req/s; {}",
            open.p(0.99),
            open.rate(),
            summary.lines().last().unwrap_or_default()
        );
        drop(p);
        Some(open.p(0.99))
    } else {
        None
    };
    Ok(HistoryResult {
        state_bytes,
        start_ms,
        idle_kb,
        load_peak_kb,
        metrics_ms: ms(metrics[metrics.len() / 2]),
        status_ms: ms(status[status.len() / 2]),
        p99_ms: open.p(0.99),
        pruning_p99_ms,
    })
}

async fn history(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let empty = history_one(s, 0).await?;
    let full = history_one(s, s.history_pos).await?;
    let n = s.history_pos;
    rep.row(
        7,
        &format!("state on disk per stored 2-line PO ({n} POs, all records)"),
        format!("{:.2} KiB", full.state_bytes as f64 / 1024.0 / n as f64),
        "—".into(),
        "–".into(),
    );
    rep.compare(
        7,
        &format!("daemon start to /healthz, {n} POs vs empty"),
        full.start_ms,
        empty.start_ms,
        Unit::Ms,
    );
    rep.compare(
        7,
        &format!("RSS idle, {n} POs vs empty"),
        kb_to_mib(full.idle_kb),
        kb_to_mib(empty.idle_kb),
        Unit::MiB,
    );
    rep.compare(
        7,
        &format!("RSS peak at {} req/s, {n} POs vs empty", s.rate),
        kb_to_mib(full.load_peak_kb),
        kb_to_mib(empty.load_peak_kb),
        Unit::MiB,
    );
    rep.compare(
        7,
        &format!("/metrics, {n} POs vs empty (median)"),
        full.metrics_ms,
        empty.metrics_ms,
        Unit::Ms,
    );
    rep.compare(
        7,
        &format!("status --po (CLI, admin socket), {n} POs vs empty (median)"),
        full.status_ms,
        empty.status_ms,
        Unit::Ms,
    );
    rep.compare(
        7,
        &format!("intake p99 at {} req/s, {n} POs vs empty", s.rate),
        full.p99_ms,
        empty.p99_ms,
        Unit::Ms,
    );
    if let Some(pruning) = full.pruning_p99_ms {
        rep.compare(
            7,
            &format!(
                "intake p99 at {} req/s while retention prunes the {n} POs, vs the same store not pruning",
                s.rate
            ),
            pruning,
            full.p99_ms,
            Unit::Ms,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 8. One inbox file of many sets.

/// One interchange of `n` small 855 sets, each for its own PO (so none is a duplicate).
fn many_855(n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n * 150 + 300);
    out.push_str(ACK_855.lines().next().unwrap_or_default());
    out.push('\n');
    out.push_str("GS*PR*VENDORERP*INGRAMMICRO*20261121*0900*501*X*004010~\n");
    for i in 1..=n {
        out.push_str(&format!(
            "ST*855*{i:04}~\nBAK*00*AC*BENCH-PO-{i}*20261120****SO-{i}*20261121~\nPO1*1*10*EA*123.45*PE*VP*ABC-123*BP*7HW123~\nACK*IA*10*EA*068*20261125~\nCTT*1~\nSE*6*{i:04}~\n"
        ));
    }
    out.push_str(&format!("GE*{n}*501~\nIEA*1*000000501~\n"));
    out.into_bytes()
}

/// The release daemon (Ingram unreachable, so every call stays queued) takes in one file of
/// `BENCH_INBOX_SETS` 855 sets; its RSS is sampled every 20 ms and its peak (`VmHWM`) read 5 s
/// after the file is archived (its calls queued), against its idle RSS. The mark is 150 MiB.
async fn inbox_sets(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let dir = s.root.join("inbox-sets");
    let n = s.inbox_sets;
    let p = start_server_with(Kind::Ours, &dir, "[inbox]\nsettle_ms = 100\n").await?;
    let pid = p.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = status_kb(&pid, "VmRSS").unwrap_or(0);
    let bytes = many_855(n);
    let size = bytes.len();
    std::fs::write(dir.join("inbox/.sets.part"), &bytes)?;
    drop(bytes);
    let started = Instant::now();
    std::fs::rename(dir.join("inbox/.sets.part"), dir.join("inbox/sets.855"))?;
    let archived = |sub: &str| {
        walkdir(&dir.join(sub))
            .iter()
            .any(|f| f.file_name().is_some_and(|x| x == "sets.855"))
    };
    let mut sampled = 0u64;
    loop {
        sampled = sampled.max(status_kb(&pid, "VmRSS").unwrap_or(0));
        if archived("archive") || archived("error") {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the file of {n} sets was not processed in 900 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    // And a while after: the deliver worker now holds 30,000 queued calls (Ingram is down).
    let after = Instant::now();
    while after.elapsed() < Duration::from_secs(5) {
        sampled = sampled.max(status_kb(&pid, "VmRSS").unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = status_kb(&pid, "VmHWM").unwrap_or(sampled).max(sampled);
    if archived("error") {
        bail!("the file of {n} sets went to error/");
    }
    rep.row(
        8,
        &format!(
            "inbox: peak RSS taking in one file of {} 855 sets ({:.1} MB; mark 150 MiB)",
            group_digits(n as u64),
            size as f64 / 1e6
        ),
        format!("{:.0} MiB", kb_to_mib(peak)),
        format!("{:.0} MiB idle", kb_to_mib(idle)),
        format!("{:.2}x", peak as f64 / idle.max(1) as f64),
    );
    rep.notes.push(format!(
        "8: {} sets taken in (committed in chunks, archived) in {:.1} s",
        group_digits(n as u64),
        took.as_secs_f64()
    ));
    Ok(())
}

/// Section 9: `webhook_pos` POs posted through the webhook (16 connections, each PO its own
/// event), every 850 written, then the daemon's RSS once idle, against its RSS idle when empty
/// (mark: under 100 MiB after 100,000).
async fn webhook_history(s: &Settings, rep: &mut Report) -> anyhow::Result<()> {
    let dir = s.root.join("webhook-history");
    let n = s.webhook_pos;
    // `BENCH_WEBHOOK_EXTRA`: config lines for this run (e.g. "[store]\ncache_mib = 16").
    let extra = std::env::var("BENCH_WEBHOOK_EXTRA").unwrap_or_default();
    let p = start_server_with(Kind::Ours, &dir, &extra.replace("\\n", "\n")).await?;
    let pid = p.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let empty = status_kb(&pid, "VmRSS").unwrap_or(0);
    let url = p.url();
    let mut failed = 0;
    let started = Instant::now();
    // In slices, so the bodies never all sit in memory at once.
    for slice in 0..n.div_ceil(10_000) {
        let count = 10_000.min(n - slice * 10_000);
        let bodies = webhooks(&format!("WH{slice:02}"), count)?;
        failed += closed_loop(&url, bodies, 16).await.failed;
    }
    let took = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(900);
    while count_850(&dir.join("outbox")) < n - failed {
        if Instant::now() > deadline {
            bail!("not every 850 was written in 900 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = status_kb(&pid, "VmRSS").unwrap_or(0);
    let peak = status_kb(&pid, "VmHWM").unwrap_or(after);
    rep.row(
        9,
        &format!(
            "history: RSS after {} POs taken in through the webhook (mark 100 MiB)",
            group_digits(n as u64)
        ),
        format!("{:.0} MiB (peak {:.0})", kb_to_mib(after), kb_to_mib(peak)),
        format!("{:.0} MiB empty", kb_to_mib(empty)),
        format!("{:.2}x", after as f64 / empty.max(1) as f64),
    );
    rep.notes.push(format!(
        "9: {} webhooks posted in {:.0} s ({failed} failed), state {:.0} MiB on disk",
        group_digits(n as u64),
        took.as_secs_f64(),
        dir_size(&dir.join("state")) as f64 / 1048576.0
    ));
    Ok(())
}

/// Every file under `dir` (recursively); empty when it does not exist.
fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The second account of section 10: its own ISA06 (so the ERP tells its 850s apart), its own
/// webhook secret.
const CA_SECRET: &str = "bench-ca-webhook-secret";

/// Config text for section 10: every 850 named by its account; with `two`, the account `ca`.
fn accounts_extra(dir: &Path, two: bool) -> anyhow::Result<String> {
    let mut text = "[outbox]\nfile_pattern = \"{account}-{po}.{isa13}.850\"\n".to_string();
    if two {
        std::fs::create_dir_all(dir)?;
        let mapping = edi_bridge::mapping::DEFAULT_MAPPING.replacen(
            "sender_id = \"INGRAMMICRO\" ",
            "sender_id = \"INGRAMMICROCA\" ",
            1,
        );
        anyhow::ensure!(
            mapping != edi_bridge::mapping::DEFAULT_MAPPING,
            "the shipped mapping changed: ca's ISA06 not set"
        );
        std::fs::write(dir.join("mapping-ca.toml"), mapping)?;
        std::fs::write(dir.join("ca.webhook.secret"), CA_SECRET)?;
        let d = dir.display();
        text.push_str(&format!(
            r#"[[accounts]]
id = "ca"
api_base_url = "http://127.0.0.1:9/vendors/v1"
token_url = "http://127.0.0.1:9/oauth/oauth30/token"
client_id = "bench-ca"
partner_id = "CA654321"
country_code = "CA"
sender_id = "ACME-EDI"
mapping = "mapping-ca.toml"
client_secret_file = "{d}/client.secret"
webhook_secret_file = "{d}/ca.webhook.secret"
requests_per_minute = 600000
"#
        ));
    }
    Ok(text)
}

/// Waits (polling the outbox every 20 ms, up to 300 s) until it holds `n` 850s; when it did.
async fn until_850s(outbox: &Path, n: usize) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if count_850(outbox) >= n {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} 850s in {}",
                count_850(outbox),
                outbox.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One end-to-end run: the closed loop over the accounts' webhook paths (the requests split
/// evenly), then the wait for every 850. The closed loop's 2xx figures, and POs/s from the first
/// request to the last 850 in the outbox.
async fn end_to_end(s: &Settings, two: bool) -> anyhow::Result<(Load, f64)> {
    let dir = s
        .root
        .join(format!("accounts-{}", if two { "two" } else { "one" }));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = accounts_extra(&dir, two)?;
    let p = start_server_with(Kind::Ours, &dir, &extra).await?;
    let outbox = dir.join("outbox");
    let path = |id: &str| format!("{}/webhooks/ingram/{id}/purchase-orders", p.base);
    let tag = if two { "T" } else { "S" };
    // Warm-up, and its 850s out of the way before the measured run.
    let warm = closed_loop(
        &path("default"),
        webhooks(&format!("{tag}W"), 200)?,
        s.connections,
    )
    .await;
    anyhow::ensure!(warm.failed == 0, "{} warm-up requests failed", warm.failed);
    until_850s(&outbox, 200).await?;
    let n = s.requests;
    let start = Instant::now();
    let load = if two {
        let half = s.connections / 2;
        let (default_url, ca_url) = (path("default"), path("ca"));
        let default_bodies = webhooks(&format!("{tag}D"), n / 2)?;
        let ca_bodies = webhooks_signed(&format!("{tag}C"), n - n / 2, CA_SECRET)?;
        let (a, b) = tokio::join!(
            closed_loop(&default_url, default_bodies, half),
            closed_loop(&ca_url, ca_bodies, s.connections - half)
        );
        let mut lat: Vec<Duration> = a.lat.into_iter().chain(b.lat).collect();
        lat.sort();
        Load {
            lat,
            failed: a.failed + b.failed,
            elapsed: a.elapsed.max(b.elapsed),
        }
    } else {
        closed_loop(
            &path("default"),
            webhooks(&format!("{tag}D"), n)?,
            s.connections,
        )
        .await
    };
    anyhow::ensure!(load.failed == 0, "{} requests failed", load.failed);
    let last = until_850s(&outbox, 200 + n).await?;
    let rate = n as f64 / (last - start).as_secs_f64();
    eprintln!(
        "   {} account(s): 2xx {:.0} req/s (p99 {:.2} ms), end to end {:.0} POs/s",
        if two { 2 } else { 1 },
        load.rate(),
        load.p(0.99),
        rate
    );
    drop(p);
    Ok((load, rate))
}

/// Section 10: POs from the first request to the last 850 in the outbox, with one account and
/// with two (each taking half the requests on its own webhook path), beside the baseline's
/// closed loop (one fsync per request, nothing else) in the same run.
async fn accounts(s: &Settings, rep: &mut Report, base: &IntakeResult) -> anyhow::Result<()> {
    let (one_load, one) = end_to_end(s, false).await?;
    let (two_load, two) = end_to_end(s, true).await?;
    let n = s.requests;
    rep.compare(
        10,
        &format!("{n} POs end to end (durable 2xx and the 850 in the outbox), one account, vs the baseline's 2xx ↑"),
        one,
        base.closed.rate(),
        Unit::PerSec("PO"),
    );
    rep.compare(
        10,
        "… the same, two accounts (half the POs each, own paths and secrets), vs one account ↑",
        two,
        one,
        Unit::PerSec("PO"),
    );
    rep.compare(
        10,
        "… 2xx throughput, one account, vs the baseline ↑",
        one_load.rate(),
        base.closed.rate(),
        Unit::PerSec("req"),
    );
    rep.compare(
        10,
        "… 2xx p99, one account, vs the baseline ↓",
        one_load.p(0.99),
        base.closed.p(0.99),
        Unit::Ms,
    );
    rep.compare(
        10,
        "… 2xx throughput, two accounts vs one ↑",
        two_load.rate(),
        one_load.rate(),
        Unit::PerSec("req"),
    );
    rep.compare(
        10,
        "… 2xx p99, two accounts vs one ↓",
        two_load.p(0.99),
        one_load.p(0.99),
        Unit::Ms,
    );
    Ok(())
}
