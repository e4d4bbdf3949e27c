//! A burst of 856s against the emulator's rate limit (Ingram answers 429 with `X-RateLimit-*`
//! beyond it), the daemon paced by `requests_per_minute` against an unpaced baseline measured
//! in the same run: the daemon's own API client sending the same calls as fast as `workers`
//! concurrent tasks can, waiting out each 429's `Retry-After` (what the deliver worker did
//! before pacing). Reported as ratios (ours / baseline): 429 answers, calls made per document,
//! documents per second. Knobs: `BENCH_PACING_N` documents (5000), `BENCH_PACING_LIMIT` calls
//! a second the emulator allows (250), `BENCH_PACING_PACE` the daemon's share of it in percent
//! (90). A control run of the daemon at its highest pace shows what its own pipeline manages.
//! Writes `target/bench-pacing.md`. Nothing here asserts on time.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use edi_bridge::sim::{RateLimit, SimConfig, SimHandle};
use tokio_util::sync::CancellationToken;

const CLIENT_SECRET: &str = "bench-client-secret";
const ASN_856: &str = include_str!("../samples/ingram-po-856.edi");
const DAEMON_BIN: &str = env!("CARGO_BIN_EXE_edi-bridge");
const WORKERS: usize = 8;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}

/// The sample 856 for PO `PO-{n}`, its control numbers and shipment id made unique.
fn asn_856(n: usize) -> String {
    let k = 1000 + n;
    ASN_856
        .replace("IM-PO-1001", &format!("PO-{n}"))
        .replace("ASN-5501", &format!("ASN-{k}"))
        .replace("000000601", &format!("{k:09}"))
        .replace("*601*X*", &format!("*{k}*X*"))
        .replace("GE*1*601~", &format!("GE*1*{k}~"))
}

fn write_workspace(
    dir: &Path,
    sim: &SimHandle,
    requests_per_minute: usize,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for sub in ["outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("webhook.secret"), "bench-webhook-secret")?;
    std::fs::write(dir.join("client.secret"), CLIENT_SECRET)?;
    std::fs::write(
        dir.join("mapping.toml"),
        edi_bridge::mapping::DEFAULT_MAPPING,
    )?;
    let d = dir.display();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:0"
webhook_secret_file = "{d}/webhook.secret"
[paths]
state = "{d}/state"
outbox = "{d}/outbox"
inbox = "{d}/inbox"
archive = "{d}/archive"
error = "{d}/error"
[ingram]
api_base_url = "{base}"
token_url = "{token}"
client_id = "bench-client"
client_secret_file = "{d}/client.secret"
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
requests_per_minute = {requests_per_minute}
[mapping]
file = "mapping.toml"
[inbox]
settle_ms = 0
rescan_secs = 1
[delivery]
workers = {WORKERS}
backoff_base_ms = 20
backoff_max_secs = 1
"#,
        base = sim.base_url(),
        token = sim.token_url(),
    );
    let path = dir.join("edi-bridge.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// What one run did.
struct Run {
    elapsed: Duration,
    calls: usize,
    throttled: usize,
}

/// Waits until the emulator recorded `n` 2xx PO calls after the first `skip` calls.
async fn wait_2xx(sim: &SimHandle, skip: usize, n: usize) -> anyhow::Result<()> {
    let mut want = skip + n;
    loop {
        let calls = sim.wait_for_calls(want, Duration::from_secs(300)).await;
        let ok = calls[skip.min(calls.len())..]
            .iter()
            .filter(|c| (200..300).contains(&c.status))
            .count();
        if ok >= n {
            return Ok(());
        }
        if calls.len() < want {
            bail!("only {ok} of {n} calls reached the emulator with a 2xx");
        }
        want = calls.len() + (n - ok);
    }
}

/// The unpaced baseline: `WORKERS` tasks send the calls back to back with the daemon's client,
/// each 429 waited out for its `Retry-After` and sent again.
async fn unpaced(sim: &SimHandle, dir: &Path, n: usize) -> anyhow::Result<Run> {
    let config = write_workspace(dir, sim, 60)?;
    let loaded = edi_bridge::config::Config::load(&config).map_err(|e| anyhow!("{e}"))?;
    let account = loaded.primary();
    let client = edi_bridge::daemon::api_client(&account.account, &account.secrets)?;
    let body = serde_json::json!({"orderStatus": "shipped"});
    let (skip, throttled_before) = (sim.calls().len(), sim.throttled_count());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (client, next, body) = (client.clone(), next.clone(), body.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let path = format!("/purchaseorders/PO-{i}/status");
                let id = edi_bridge::ingram::api::new_correlation_id();
                loop {
                    match client.post_json(&path, &body, &id).await {
                        Ok(_) => break,
                        Err(e) => match e.throttled() {
                            Some(after) => {
                                tokio::time::sleep(after.unwrap_or(Duration::from_secs(1))).await
                            }
                            None => bail!("baseline call failed: {e}"),
                        },
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = started.elapsed();
    wait_2xx(sim, skip, n).await?;
    Ok(Run {
        elapsed,
        calls: sim.calls().len() - skip,
        throttled: sim.throttled_count() - throttled_before,
    })
}

/// The daemon, paced at `requests_per_minute`: `n` 856 files renamed into its inbox at once.
async fn paced(
    sim: &SimHandle,
    dir: &Path,
    n: usize,
    requests_per_minute: usize,
) -> anyhow::Result<Run> {
    let config = write_workspace(dir, sim, requests_per_minute)?;
    let mut loaded = edi_bridge::config::Config::load(&config).map_err(|e| anyhow!("{e}"))?;
    loaded.config.program_worker = Some(DAEMON_BIN.into());
    let stop = CancellationToken::new();
    let running = edi_bridge::daemon::start(loaded, stop.clone()).await?;
    let inbox = dir.join("inbox");
    let staged: Vec<(PathBuf, PathBuf)> = (0..n)
        .map(|i| {
            let hidden = inbox.join(format!(".asn{i}.part"));
            std::fs::write(&hidden, asn_856(i))?;
            Ok((hidden, inbox.join(format!("asn{i}.856"))))
        })
        .collect::<anyhow::Result<_>>()?;
    let (skip, throttled_before) = (sim.calls().len(), sim.throttled_count());
    let started = Instant::now();
    for (hidden, fin) in &staged {
        std::fs::rename(hidden, fin)?;
    }
    wait_2xx(sim, skip, n).await?;
    let elapsed = started.elapsed();
    let run = Run {
        elapsed,
        calls: sim.calls().len() - skip,
        throttled: sim.throttled_count() - throttled_before,
    };
    stop.cancel();
    running.wait().await?;
    Ok(run)
}

fn ratio(ours: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", ours / base)
    } else {
        "n/a".into()
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_PACING_N", 5000)?;
    let limit = env_usize("BENCH_PACING_LIMIT", 250)?.max(1);
    let pace_pct = env_usize("BENCH_PACING_PACE", 90)?.clamp(1, 100);
    let requests_per_minute = (limit * 60 * pace_pct / 100).max(1);
    let stop = CancellationToken::new();
    let sim = SimHandle::start(
        SimConfig {
            client_id: "bench-client".into(),
            client_secret: CLIENT_SECRET.into(),
            partner_id: Some("US123456".into()),
            rate_limit: Some(RateLimit {
                requests: u32::try_from(limit)?,
                per: Duration::from_secs(1),
            }),
            ..SimConfig::default()
        },
        stop.clone(),
    )
    .await?;
    let root = tempfile::tempdir()?;
    eprintln!("pacing: {n} calls, unpaced baseline ({WORKERS} tasks) …");
    let base = unpaced(&sim, &root.path().join("baseline"), n).await?;
    eprintln!("pacing: {n} 856s through the daemon at {requests_per_minute}/min …");
    let ours = paced(&sim, &root.path().join("paced"), n, requests_per_minute).await?;
    // The daemon at the highest pace it accepts: what its own pipeline manages, and whether it
    // reaches the limit without pacing (it still pauses on a 429 or a low Remaining).
    eprintln!("pacing: {n} 856s through the daemon at 60000/min …");
    let fast = paced(&sim, &root.path().join("fast"), n, 60_000).await?;
    let per_doc = |r: &Run| r.calls as f64 / n as f64;
    let rate = |r: &Run| n as f64 / r.elapsed.as_secs_f64();
    let mut out = format!(
        "Pacing: {n} 856s against an emulator allowing {limit} calls/s; the daemon paced at \
         {requests_per_minute}/min ({pace_pct}% of it), {WORKERS} workers; the baseline sends the \
         same calls unpaced with {WORKERS} tasks, waiting out each 429's Retry-After.\n\n\
         | metric | ours | baseline | ratio (ours / baseline) |\n|---|---|---|---|\n"
    );
    out += &format!(
        "| 429 answers | {} | {} | {} |\n",
        ours.throttled,
        base.throttled,
        ratio(ours.throttled as f64, base.throttled as f64)
    );
    out += &format!(
        "| calls per document | {:.3} | {:.3} | {} |\n",
        per_doc(&ours),
        per_doc(&base),
        ratio(per_doc(&ours), per_doc(&base))
    );
    out += &format!(
        "| documents/s (ours: from inbox to Ingram) | {:.1} | {:.1} | {} |\n",
        rate(&ours),
        rate(&base),
        ratio(rate(&ours), rate(&base))
    );
    out += &format!(
        "\nControl, the daemon at 60000/min in the same run: {} 429 answers, \
         {:.3} calls per document, {:.1} documents/s (the paced run reached {} of it).\n",
        fast.throttled,
        per_doc(&fast),
        rate(&fast),
        ratio(rate(&ours), rate(&fast))
    );
    println!("{out}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-pacing.md");
    std::fs::write(&target, &out)?;
    stop.cancel();
    Ok(())
}
