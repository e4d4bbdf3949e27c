//! `edi-bridge demo`: the whole flow in one command, in a fresh temporary workspace. Starts the
//! Ingram emulator and the daemon in this process, sends the sample webhook (signed), shows the
//! 850 that lands in the outbox, drops the sample 855 and 856 into the inbox, waits for the
//! emulator to receive the PO Response and PO Status calls, and prints each step. Every wait
//! listens to the daemon's events or the emulator's call log, bounded by a deadline. It ends
//! with what happened in a few plain sentences.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon;
use crate::events::{Event, Outcome};
use crate::sim::{RecordedCall, SimConfig, SimHandle};
use tokio::sync::broadcast::Receiver;

const WEBHOOK: &str = include_str!("../samples/ingram-po-webhook.json");
const ACK_855: &str = include_str!("../samples/ingram-po-855.edi");
const ASN_856: &str = include_str!("../samples/ingram-po-856.edi");
const WEBHOOK_SECRET: &str = "demo-webhook-secret";
const CLIENT_SECRET: &str = "demo-client-secret";
const DEADLINE: Duration = Duration::from_secs(60);
/// The sample webhook's PO number.
const PO: &str = "IM-PO-1001";

/// Runs the demo; `dir` is the workspace (a new temporary directory when `None`).
pub async fn run(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = workspace(dir)?;
    step(&format!("workspace {}", dir.display()));
    let stop = CancellationToken::new();
    let sim = start_emulator(&dir, &stop).await?;
    let config_path = write_workspace(&dir, &sim)?;
    let loaded = Config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = daemon::start(loaded, stop.clone()).await?;
    let mut events = running.events.subscribe();
    say(&format!(
        "edi-bridge daemon listening on http://{}/webhooks/ingram/purchase-orders",
        running.addr
    ));

    send_webhook(&running).await?;
    let file = show_850(&dir, &running, &mut events).await?;
    let answered = erp_answers(&dir, &mut events).await?;
    let calls = ingram_calls(&sim).await?;
    let finished = final_state(&dir, &running, &mut events).await?;
    stop.cancel();
    running.wait().await?;
    step("what happened");
    for line in summary(&file, &answered, &calls, &finished) {
        say(&line);
    }
    step(&format!(
        "done. Inspect {} (outbox/, archive/, ingram-calls.jsonl); run `edi-bridge inspect FILE` on any X12 file",
        dir.display()
    ));
    Ok(())
}

/// The workspace: `dir`, created when absent, or a new temporary directory (kept afterwards).
fn workspace(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("edi-bridge-demo-")
            .tempdir()?
            .keep(),
    })
}

/// The Ingram emulator, recording every call into the workspace.
async fn start_emulator(dir: &Path, stop: &CancellationToken) -> anyhow::Result<SimHandle> {
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
    Ok(sim)
}

/// Step 1: the signed sample webhook, which the daemon must accept.
async fn send_webhook(running: &daemon::Running) -> anyhow::Result<()> {
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
    Ok(())
}

/// Step 2: the 850 in the outbox, its control numbers and its text; its file name.
async fn show_850(
    dir: &Path,
    running: &daemon::Running,
    events: &mut Receiver<Event>,
) -> anyhow::Result<String> {
    step("2. the 850 lands in the ERP outbox");
    let file = wait(events, |e| match e {
        Event::Written850 { file, .. } => Some(file.clone()),
        _ => None,
    })
    .await
    .context("no 850 was written")?;
    let path = dir.join("outbox").join(&file);
    let text = std::fs::read_to_string(&path)?;
    say(&format!("{} ({} bytes)", path.display(), text.len()));
    let po = running.store.order(PO)?.context("PO not stored")?;
    if let crate::store::records::Outbound850::Written { envelope, .. } = &po.outbound {
        say(&format!(
            "control numbers: ISA13 {:09}, GS06 {}, ST02 {:04}",
            envelope.isa13, envelope.gs06, envelope.st02
        ));
    }
    for line in text.lines() {
        println!("      {line}");
    }
    Ok(file)
}

/// Step 3: the sample 855 and 856 dropped into the inbox; what became of each, in words.
async fn erp_answers(dir: &Path, events: &mut Receiver<Event>) -> anyhow::Result<Vec<String>> {
    step("3. the ERP answers: an 855 (acknowledgment) and an 856 (ship notice) in the inbox");
    let mut answered = Vec::new();
    for (name, content) in [("IM-PO-1001.855", ACK_855), ("IM-PO-1001.856", ASN_856)] {
        let tmp = dir.join("inbox").join(format!(".{name}.part"));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, dir.join("inbox").join(name))?;
        let outcome = wait(events, |e| match e {
            Event::InboxFile { file, outcome } if file == name => Some(outcome.clone()),
            _ => None,
        })
        .await
        .with_context(|| format!("{name} was not processed"))?;
        say(&format!("{name}: {}", describe(dir, &outcome)));
        if let Outcome::Archived { .. } = outcome {
            answered.push(name.to_string());
        }
    }
    Ok(answered)
}

/// An inbox file's outcome in words.
fn describe(dir: &Path, outcome: &Outcome) -> String {
    let shown = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
    match outcome {
        Outcome::Archived { jobs, archived } => format!(
            "processed, {jobs} Ingram call(s) queued; the file is archived as {}",
            shown(archived)
        ),
        Outcome::Rejected { reason, moved } => format!(
            "refused and moved to {}: {}",
            shown(moved),
            reason.lines().next().unwrap_or_default()
        ),
        Outcome::Duplicate { moved, .. } => format!(
            "a repeat of a file already processed, moved to {}; no call made",
            shown(moved)
        ),
        Outcome::Changing { .. } => "still being written; taken again at the next scan".into(),
    }
}

/// Step 4: the calls the emulator received (at least two accepted), with their bodies.
async fn ingram_calls(sim: &SimHandle) -> anyhow::Result<Vec<RecordedCall>> {
    step("4. Ingram receives the PO Response and PO Status calls");
    let calls = sim.wait_for_calls(2, DEADLINE).await;
    let accepted = calls
        .iter()
        .filter(|c| (200..300).contains(&c.status))
        .count();
    if accepted < 2 {
        let seen: Vec<String> = calls
            .iter()
            .map(|c| format!("{} {} -> {}", c.method, c.path, c.status))
            .collect();
        bail!(
            "the emulator accepted {accepted} of the two calls (received: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        );
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
    Ok(calls)
}

/// What the store says once every job is done.
struct Finished {
    acks_997: usize,
    queued: usize,
    dead: usize,
}

/// Step 5: the PO's timeline once its jobs are done, and the 997s written back.
async fn final_state(
    dir: &Path,
    running: &daemon::Running,
    events: &mut Receiver<Event>,
) -> anyhow::Result<Finished> {
    step("5. the PO's final state");
    // The job leaves the queue only after its outcome is stored; wait for both.
    let store = &running.store;
    for _ in 0..2 {
        if store.job_count() == 0 {
            break;
        }
        wait(events, |e| {
            matches!(e, Event::Delivery { .. }).then_some(())
        })
        .await?;
    }
    let acks_997 = wait_for_997s(dir, events).await;
    let po = store.order(PO)?.context("PO not stored")?;
    for h in &po.history {
        say(&format!("{}  {}", h.at, h.what));
    }
    let finished = Finished {
        acks_997,
        queued: store.job_count(),
        dead: store.dead_count(),
    };
    say(&format!("997s written back to the ERP: {acks_997}"));
    say(&format!(
        "queued jobs: {}, dead letters: {}",
        finished.queued, finished.dead
    ));
    Ok(finished)
}

/// The run in a few sentences.
fn summary(
    file: &str,
    answered: &[String],
    calls: &[RecordedCall],
    finished: &Finished,
) -> Vec<String> {
    let accepted: Vec<&str> = calls
        .iter()
        .filter(|c| (200..300).contains(&c.status) && c.kind != "token")
        .map(|c| match c.kind.as_str() {
            "po_response" => "the PO Response",
            "po_status" => "the PO Status",
            _ => "a call",
        })
        .collect();
    vec![
        format!("Ingram's webhook for PO {PO} was accepted, stored, and written to the ERP's outbox as the 850 {file}."),
        format!(
            "The ERP's answers were processed: {}.",
            if answered.is_empty() { "none".to_string() } else { answered.join(" and ") }
        ),
        format!(
            "Ingram accepted {}, and the ERP got {} acknowledgment(s) (997) back.",
            if accepted.is_empty() { "no call".to_string() } else { accepted.join(" and ") },
            finished.acks_997
        ),
        if finished.queued == 0 && finished.dead == 0 {
            "Nothing is left waiting: no queued call, no dead letter.".to_string()
        } else {
            format!(
                "Still waiting: {} queued call(s), {} dead letter(s) (`edi-bridge status` shows them).",
                finished.queued, finished.dead
            )
        },
    ]
}

async fn wait_for_997s(dir: &Path, events: &mut Receiver<Event>) -> usize {
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
    events: &mut Receiver<Event>,
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
