//! `edi-bridge demo`: the whole flow in one command, in a fresh temporary workspace. Starts the
//! Ingram emulator and the daemon in this process, sends the sample webhook (signed), shows the
//! 850 that lands in the outbox, drops the sample 855 and 856 into the inbox, waits for the
//! emulator to receive the PO Response and PO Status calls, and prints each step. Every wait
//! listens to the daemon's events or the emulator's call log, bounded by a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon;
use crate::events::Event;
use crate::sim::{SimConfig, SimHandle};

const WEBHOOK: &str = include_str!("../samples/ingram-po-webhook.json");
const ACK_855: &str = include_str!("../samples/ingram-po-855.edi");
const ASN_856: &str = include_str!("../samples/ingram-po-856.edi");
const WEBHOOK_SECRET: &str = "demo-webhook-secret";
const CLIENT_SECRET: &str = "demo-client-secret";
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the demo; `dir` is the workspace (a new temporary directory when `None`).
pub async fn run(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("edi-bridge-demo-")
            .tempdir()?
            .keep(),
    };
    step(&format!("workspace {}", dir.display()));

    let stop = CancellationToken::new();
    let sim = SimHandle::start(
        SimConfig {
            client_id: "demo-client".into(),
            client_secret: CLIENT_SECRET.into(),
            partner_id: Some("US123456".into()),
            record: Some(dir.join("ingram-calls.jsonl")),
            ..SimConfig::default()
        },
        stop.clone(),
    )
    .await
    .context("cannot start the Ingram emulator")?;
    say(&format!(
        "Ingram emulator on {} (token {}, API {})",
        sim.addr(),
        sim.token_url(),
        sim.base_url()
    ));

    let config_path = write_workspace(&dir, &sim)?;
    let loaded = Config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = daemon::start(loaded, stop.clone()).await?;
    let mut events = running.events.subscribe();
    say(&format!(
        "edi-bridge daemon listening on http://{}/webhooks/ingram/purchase-orders",
        running.addr
    ));

    step("1. Ingram sends the Purchase Order Create webhook (signed x-hub-signature)");
    let event_id = crate::sim::cli::event_id_of(WEBHOOK.as_bytes())?;
    let url = format!("http://{}/webhooks/ingram/purchase-orders", running.addr);
    let (status, body) = crate::sim::cli::send_webhook(
        &url,
        WEBHOOK_SECRET.as_bytes(),
        WEBHOOK.as_bytes(),
        &event_id,
    )
    .await?;
    say(&format!("event {event_id} -> HTTP {status} {body}"));
    if !(200..300).contains(&status) {
        bail!("the daemon refused the sample webhook");
    }

    step("2. the 850 lands in the ERP outbox");
    let file = wait(&mut events, |e| match e {
        Event::Written850 { file, .. } => Some(file.clone()),
        _ => None,
    })
    .await
    .context("no 850 was written")?;
    let path = dir.join("outbox").join(&file);
    let text = std::fs::read_to_string(&path)?;
    say(&format!("{} ({} bytes)", path.display(), text.len()));
    let po = running
        .store
        .order("IM-PO-1001")?
        .context("PO not stored")?;
    if let crate::store::records::Outbound850::Written { envelope, .. } = &po.outbound {
        say(&format!(
            "control numbers: ISA13 {:09}, GS06 {}, ST02 {:04}",
            envelope.isa13, envelope.gs06, envelope.st02
        ));
    }
    for line in text.lines() {
        println!("      {line}");
    }

    step("3. the ERP answers: an 855 (acknowledgment) and an 856 (ship notice) in the inbox");
    for (name, content) in [("IM-PO-1001.855", ACK_855), ("IM-PO-1001.856", ASN_856)] {
        let tmp = dir.join("inbox").join(format!(".{name}.part"));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, dir.join("inbox").join(name))?;
        let outcome = wait(&mut events, |e| match e {
            Event::InboxFile { file, outcome } if file == name => Some(outcome.clone()),
            _ => None,
        })
        .await
        .with_context(|| format!("{name} was not processed"))?;
        say(&format!("{name}: {outcome:?}"));
    }

    step("4. Ingram receives the PO Response and PO Status calls");
    let calls = sim.wait_for_calls(2, DEADLINE).await;
    if calls
        .iter()
        .filter(|c| (200..300).contains(&c.status))
        .count()
        < 2
    {
        bail!("the emulator did not accept two calls: {calls:?}");
    }
    for c in &calls {
        say(&format!(
            "{} {} -> {} (IM-CorrelationID {})",
            c.method,
            c.path,
            c.status,
            c.header("im-correlationid").unwrap_or("?")
        ));
        for line in serde_json::to_string_pretty(&c.body)?.lines() {
            println!("      {line}");
        }
    }

    step("5. the PO's final state");
    // The job leaves the queue only after its outcome is stored; wait for both.
    let store = running.store.clone();
    for _ in 0..2 {
        if store.job_count() == 0 {
            break;
        }
        wait(&mut events, |e| {
            matches!(e, Event::Delivery { .. }).then_some(())
        })
        .await?;
    }
    let acks = wait_for_997s(&dir, &mut events).await;
    let po = store.order("IM-PO-1001")?.context("PO not stored")?;
    for h in &po.history {
        say(&format!("{}  {}", h.at, h.what));
    }
    say(&format!("997s written back to the ERP: {acks}"));
    say(&format!(
        "queued jobs: {}, dead letters: {}",
        store.job_count(),
        store.dead_count()
    ));
    stop.cancel();
    running.wait().await?;
    step(&format!(
        "done. Inspect {} (outbox/, archive/, ingram-calls.jsonl); run `edi-bridge inspect FILE` on any X12 file",
        dir.display()
    ));
    Ok(())
}

async fn wait_for_997s(dir: &Path, events: &mut tokio::sync::broadcast::Receiver<Event>) -> usize {
    let count = || {
        std::fs::read_dir(dir.join("outbox"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".997"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count() < 2 {
        if tokio::time::timeout_at(deadline, events.recv())
            .await
            .is_err()
        {
            break;
        }
    }
    count()
}

/// Waits for the first event `pick` accepts.
async fn wait<T>(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    pick: impl Fn(&Event) -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(e)) => {
                if let Some(t) = pick(&e) {
                    return Ok(t);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => bail!("daemon events closed: {e}"),
            Err(_) => bail!("timed out after {} s", DEADLINE.as_secs()),
        }
    }
}

fn write_workspace(dir: &Path, sim: &SimHandle) -> anyhow::Result<PathBuf> {
    for sub in ["state", "outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join("webhook.secret"), WEBHOOK_SECRET)?;
    std::fs::write(dir.join("client.secret"), CLIENT_SECRET)?;
    std::fs::write(dir.join("mapping.toml"), crate::mapping::DEFAULT_MAPPING)?;
    let d = dir.display();
    let config = format!(
        r#"# Written by `edi-bridge demo`.
[server]
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
client_id = "demo-client"
client_secret_file = "{d}/client.secret"
partner_id = "US123456"
country_code = "US"
sender_id = "ACME-EDI"
[mapping]
file = "mapping.toml"
[inbox]
settle_ms = 200
rescan_secs = 2
"#,
        base = sim.base_url(),
        token = sim.token_url(),
    );
    let path = dir.join("edi-bridge.toml");
    std::fs::write(&path, config)?;
    Ok(path)
}

fn step(s: &str) {
    println!("\n==> {s}");
}

fn say(s: &str) {
    println!("    {s}");
}
