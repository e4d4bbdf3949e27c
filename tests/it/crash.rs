//! Crash consistency of the real `edi-bridge` binary. A seeded harness runs `edi-bridge run` as a
//! child process against the in-process Ingram emulator, drives signed webhooks and 855/856 inbox
//! files at it concurrently, SIGKILLs it at random instants (during start-up and recovery, webhook
//! handling, sled flushes, inbox renames, outbox links and API deliveries) and restarts it on the
//! same state directory, round after round. Ingram is played faithfully: a webhook that got no 2xx
//! is sent again after the restart. At the end the bridge runs to quiescence, is stopped with
//! SIGTERM, and the outbox, the ERP directories, the emulator's record and the store are checked
//! for loss, duplication and torn files. `EDI_BRIDGE_CRASH_ROUNDS` (default 20; e.g. 200 for a
//! soak) and `EDI_BRIDGE_CRASH_SEED` choose the length and the seed of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use edi_bridge::config::{ENV_CLIENT_SECRET, ENV_WEBHOOK_SECRET};
use edi_bridge::sim::{RecordedCall, SimHandle};
use edi_bridge::store::records::Outbound850;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::oneshot;

use crate::support::{self, Workspace, CLIENT_SECRET, SECRET};

/// New POs Ingram announces per round.
const NEW_POS_PER_ROUND: usize = 2;
/// The kill lands this long after the child said it started (uniformly from 0).
const MAX_KILL_DELAY_MS: u64 = 150;
/// In about one round in six the kill lands during start-up (store open, recovery), this long
/// after the spawn.
const MAX_EARLY_KILL_MS: u64 = 40;
const START_TIMEOUT: Duration = Duration::from_secs(30);
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Quiet time with no API call that, with `backoff_max_secs = 1`, means no job is still queued.
const QUIET: Duration = Duration::from_millis(1500);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn po_number(i: usize) -> String {
    format!("CRASH-PO-{i:04}")
}

fn event_id(i: usize) -> String {
    format!("CRASH-EV-{i:04}")
}

/// The 855 and the 856 the ERP writes for PO `i`: unique ISA13/GS06 and shipment, names that sort
/// the 855 first.
fn erp_files(i: usize) -> [(String, Vec<u8>); 2] {
    let po = po_number(i);
    let n = u32::try_from(i).expect("few POs");
    [
        (
            format!("{po}.a.855"),
            support::ack_855_for(&po, 100_000 + n),
        ),
        (
            format!("{po}.b.856"),
            support::asn_856_for(&po, 200_000 + n),
        ),
    ]
}

/// The support config with the secrets taken from the child's environment instead of files, and
/// fast settle, rescan, backoff and outbox retry.
fn write_config(ws: &Workspace, sim: &SimHandle) -> PathBuf {
    let text: String = ws
        .config_text_for(
            &sim.base_url(),
            &sim.token_url(),
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n",
        )
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("webhook_secret") && !l.starts_with("client_secret_file")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = ws.path("crash.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One run of the binary, its stderr copied into the shared log by a reader thread.
struct Bridge {
    child: Child,
    run: usize,
    /// The listen address from the `edi-bridge started.` line; `None` if stderr closed first.
    started: Option<oneshot::Receiver<Option<String>>>,
}

impl Bridge {
    fn spawn(config: &Path, log: &Path, run: usize) -> Bridge {
        let mut cmd = support::edi_bridge_command();
        let mut child = cmd
            .arg("run")
            .arg("--config")
            .arg(config)
            .env(ENV_WEBHOOK_SECRET, SECRET)
            .env(ENV_CLIENT_SECRET, CLIENT_SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edi-bridge");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log");
        let rx = support::tee_stderr(&mut child, out, format!("[run {run}] "), |_| {});
        Bridge {
            child,
            run,
            started: Some(rx),
        }
    }

    /// Waits for the `edi-bridge started.` line (a signal: the reader thread sends it); returns
    /// the webhook URL.
    async fn wait_started(&mut self, log: &Path) -> String {
        let rx = self.started.take().expect("waited once");
        match tokio::time::timeout(START_TIMEOUT, rx).await {
            Ok(Ok(Some(addr))) => format!("http://{addr}/webhooks/ingram/purchase-orders"),
            other => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "run {}: edi-bridge did not start ({other:?}, exit {status:?})\nlog tail:\n{}",
                    self.run,
                    tail(log, 60)
                )
            }
        }
    }

    fn signal(&mut self, sig: &str, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "run {}: edi-bridge exited on its own ({status}) before {sig}\nlog tail:\n{}",
                self.run,
                tail(log, 60)
            );
        }
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill {sig} {pid}: {ok}");
    }

    /// SIGKILL, then reap the child (immediate after SIGKILL).
    fn kill(mut self, log: &Path) {
        self.signal("-KILL", log);
        let status = self.child.wait().expect("wait for the killed child");
        assert_eq!(status.signal(), Some(9), "run {}: {status}", self.run);
    }

    /// SIGTERM, then a bounded wait for the exit (a helper thread blocks in `wait`).
    fn terminate(mut self, log: &Path) -> ExitStatus {
        self.signal("-TERM", log);
        let pid = self.child.id().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut child = self.child;
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(status) => status.expect("wait for edi-bridge"),
            Err(_) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
                panic!("edi-bridge ignored SIGTERM\nlog tail:\n{}", tail(log, 60));
            }
        }
    }
}

fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A client that never reuses a connection: every request goes to the current child.
fn webhook_client() -> reqwest::Client {
    let _ = support::client();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Ingram's PO Create webhook for PO `i`; the status, or `None` when no answer came.
async fn send_webhook(client: reqwest::Client, url: String, i: usize) -> (usize, Option<u16>) {
    let ev = event_id(i);
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .header("x-hub-signature", support::sign(&ev))
        .body(support::sample_with(&ev, &po_number(i)))
        .send()
        .await;
    (i, resp.ok().map(|r| r.status().as_u16()))
}

#[derive(Default)]
struct Po {
    acked: bool,
    files_dropped: bool,
}

/// What the harness did, for the failure message and the report line.
#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    early_kills: usize,
    webhooks_sent: usize,
    webhooks_unanswered: usize,
    webhooks_non_2xx: usize,
}

/// Drops the ERP's files for every PO Ingram has had a 2xx for and whose files are not out yet.
fn drop_files(ws: &Workspace, pos: &mut [Po], dropped: &mut BTreeMap<String, Vec<u8>>) {
    for (i, po) in pos.iter_mut().enumerate() {
        if po.acked && !po.files_dropped {
            for (name, bytes) in erp_files(i) {
                support::drop_inbox(ws, &name, &bytes);
                dropped.insert(name, bytes);
            }
            po.files_dropped = true;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_loses_and_duplicates_nothing() {
    let rounds = env_u64("EDI_BRIDGE_CRASH_ROUNDS", 20) as usize;
    let seed = env_u64("EDI_BRIDGE_CRASH_SEED", 0x0edb_2026);
    let mut rng = StdRng::seed_from_u64(seed);
    let ws = Workspace::new();
    // The emulator's record goes into the workspace, which is kept when a check fails.
    let record = ws.path("emulator-calls.jsonl");
    let (sim, _sim_stop) = support::sim(|c| {
        c.record = Some(record);
        // A little latency keeps calls in flight when the kill lands; random 503s exercise
        // retries, whose correlation id must not change.
        c.latency = Duration::from_millis(5);
        c.failure_rate = 0.05;
        c.seed = seed;
    })
    .await;
    std::fs::create_dir_all(ws.path("inbox")).unwrap();
    let config = write_config(&ws, &sim);
    let log = ws.path("edi-bridge.log");
    let client = webhook_client();
    let mut pos: Vec<Po> = Vec::new();
    let mut dropped: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut tally = Tally::default();

    for round in 0..rounds {
        pos.extend((0..NEW_POS_PER_ROUND).map(|_| Po::default()));
        let mut bridge = Bridge::spawn(&config, &log, round);
        // The ERP drops files whenever it likes: here, while the bridge is starting.
        drop_files(&ws, &mut pos, &mut dropped);
        let mut inflight = tokio::task::JoinSet::new();
        if rng.random_ratio(1, 6) {
            tally.early_kills += 1;
            // The kill instant is random by design (there is nothing to wait for).
            tokio::time::sleep(Duration::from_millis(
                rng.random_range(0..=MAX_EARLY_KILL_MS),
            ))
            .await;
        } else {
            let url = bridge.wait_started(&log).await;
            for (i, po) in pos.iter().enumerate() {
                if !po.acked {
                    tally.webhooks_sent += 1;
                    inflight.spawn(send_webhook(client.clone(), url.clone(), i));
                }
            }
            // The kill instant is random by design (there is nothing to wait for).
            tokio::time::sleep(Duration::from_millis(
                rng.random_range(0..=MAX_KILL_DELAY_MS),
            ))
            .await;
        }
        bridge.kill(&log);
        tally.kills += 1;
        while let Some(r) = inflight.join_next().await {
            match r.expect("webhook task") {
                (i, Some(s)) if (200..300).contains(&s) => pos[i].acked = true,
                (_, Some(_)) => tally.webhooks_non_2xx += 1,
                (_, None) => tally.webhooks_unanswered += 1,
            }
        }
    }

    // The last run: resend what never got a 2xx, drop the remaining files, run to quiescence.
    let mut bridge = Bridge::spawn(&config, &log, rounds);
    let url = bridge.wait_started(&log).await;
    for (i, po) in pos.iter_mut().enumerate() {
        if !po.acked {
            tally.webhooks_sent += 1;
            let (_, status) = send_webhook(client.clone(), url.clone(), i).await;
            assert!(
                status.is_some_and(|s| (200..300).contains(&s)),
                "{} resent without a crash: {status:?}",
                po_number(i)
            );
            po.acked = true;
        }
    }
    drop_files(&ws, &mut pos, &mut dropped);
    let expected = Expected {
        pos: (0..pos.len()).map(po_number).collect(),
        files: dropped,
    };
    let mut quiet = wait_quiescent(&ws, &sim, &expected).await;
    let status = bridge.terminate(&log);
    assert_eq!(status.code(), Some(0), "{status}\n{}", tail(&log, 60));
    // Quiet-time is a heuristic seen from outside: a disk that stalls fsync for seconds can hold
    // a retry back longer than QUIET. If the store still has work queued, let a clean run finish
    // it (no crash involved) before judging; check_store reports whatever is left after that.
    for extra in 1..=3 {
        if !work_left(&ws) {
            break;
        }
        let mut bridge = Bridge::spawn(&config, &log, rounds + extra);
        bridge.wait_started(&log).await;
        quiet = format!(
            "{quiet}; clean run {extra}: {}",
            wait_quiescent(&ws, &sim, &expected).await
        );
        let status = bridge.terminate(&log);
        assert_eq!(status.code(), Some(0), "{status}\n{}", tail(&log, 60));
    }

    let mut problems = Vec::new();
    check_850s(&ws, &expected, &mut problems);
    check_inbox_files(&ws, &expected, &mut problems);
    check_calls(&sim.calls(), &expected, &mut problems);
    check_store(&ws, &expected, &mut problems);
    let summary = format!(
        "seed {seed:#x}, {rounds} rounds, {} POs, {} inbox files, {tally:?}, quiescent: {quiet}",
        expected.pos.len(),
        expected.files.len()
    );
    eprintln!("crash harness: {summary}");
    if !problems.is_empty() {
        let kept = ws.dir.keep();
        panic!(
            "{} problem(s) ({summary}); workspace kept at {}:\n{}",
            problems.len(),
            kept.display(),
            problems.join("\n")
        );
    }
}

/// What must be there at the end.
struct Expected {
    pos: Vec<String>,
    /// Every file dropped into the inbox, by name.
    files: BTreeMap<String, Vec<u8>>,
}

impl Expected {
    fn api_paths(&self) -> BTreeSet<String> {
        self.pos
            .iter()
            .flat_map(|po| {
                [
                    format!("/vendors/v1/purchaseorders/{po}/response"),
                    format!("/vendors/v1/purchaseorders/{po}/status"),
                ]
            })
            .collect()
    }
}

/// `(po, isa13)` from `{po}.{isa13}.850`.
fn parse_850_name(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".850")?;
    let (po, isa13) = stem.rsplit_once('.')?;
    Some((po.to_string(), isa13.to_string()))
}

/// Waits until the outbox has an 850 for every PO and a 997 for every inbox file, the inbox is
/// empty, Ingram has a 2xx for every expected call, and no API call came for [`QUIET`]. The
/// bridge is another process and these are its files and the emulator's record, so this is
/// bounded polling at a short interval (no signal exists across the process boundary).
async fn wait_quiescent(ws: &Workspace, sim: &SimHandle, expected: &Expected) -> String {
    let deadline = Instant::now() + QUIESCE_TIMEOUT;
    let paths = expected.api_paths();
    let started = Instant::now();
    let mut last_calls = usize::MAX;
    let mut quiet_since = Instant::now();
    loop {
        let outbox = support::plain_files(&ws.path("outbox"));
        let pos_written: BTreeSet<String> = outbox
            .iter()
            .filter_map(|p| parse_850_name(&support::name_of(p)).map(|(po, _)| po))
            .collect();
        let acks = outbox
            .iter()
            .filter(|p| support::name_of(p).ends_with(".997"))
            .count();
        let waiting = support::plain_files(&ws.path("inbox")).len()
            + support::plain_files(&ws.path("inbox/.processing")).len();
        let calls = sim.calls();
        let delivered: BTreeSet<&str> = calls
            .iter()
            .filter(|c| (200..300).contains(&c.status))
            .map(|c| c.path.as_str())
            .collect();
        if calls.len() != last_calls {
            last_calls = calls.len();
            quiet_since = Instant::now();
        }
        let missing_850 = expected
            .pos
            .iter()
            .filter(|p| !pos_written.contains(*p))
            .count();
        let missing_calls = paths
            .iter()
            .filter(|p| !delivered.contains(p.as_str()))
            .count();
        let done =
            missing_850 == 0 && acks >= expected.files.len() && waiting == 0 && missing_calls == 0;
        if done && quiet_since.elapsed() >= QUIET {
            return format!("after {:?}", started.elapsed());
        }
        if Instant::now() > deadline {
            // Not a panic: the checks below say precisely what is missing.
            return format!(
                "NOT REACHED after {QUIESCE_TIMEOUT:?}: {missing_850} 850s missing, {acks} 997s, {waiting} files waiting, {missing_calls} calls undelivered"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exactly one complete, parseable 850 per PO; no ISA13 used twice in the outbox.
fn check_850s(ws: &Workspace, expected: &Expected, problems: &mut Vec<String>) {
    let mut by_po: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut isa13s: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in support::plain_files(&ws.path("outbox")) {
        let name = support::name_of(&path);
        let bytes = std::fs::read(&path).unwrap();
        let doc = edi_bridge::x12::read(&bytes, &edi_bridge::x12::ReadOptions::default());
        let errors: Vec<String> = doc.errors().map(|d| d.message.clone()).collect();
        if !errors.is_empty() || !doc.is_complete() {
            problems.push(format!(
                "torn or invalid outbox file {name}: complete={}, errors {errors:?}",
                doc.is_complete()
            ));
            continue;
        }
        let isa13 = doc.interchanges[0].header.control_number.trim().to_string();
        isa13s.entry(isa13.clone()).or_default().push(name.clone());
        if let Some((po, name_isa13)) = parse_850_name(&name) {
            if name_isa13 != isa13 {
                problems.push(format!("{name}: ISA13 {isa13} differs from its name"));
            }
            let segs = support::segments(&bytes);
            let beg03 = support::find(&segs, "BEG")
                .first()
                .map(|b| b[3].clone())
                .unwrap_or_default();
            if beg03 != po {
                problems.push(format!("{name}: BEG03 {beg03} is not the PO of its name"));
            }
            by_po.entry(po).or_default().push(name);
        } else if !name.ends_with(".997") {
            problems.push(format!("unexpected outbox file {name}"));
        }
    }
    for po in &expected.pos {
        match by_po.get(po).map(Vec::len) {
            Some(1) => {}
            None => problems.push(format!("{po}: acknowledged webhook but no 850")),
            Some(_) => problems.push(format!("{po}: more than one 850: {:?}", by_po[po])),
        }
    }
    for po in by_po.keys() {
        if !expected.pos.contains(po) {
            problems.push(format!("850 for a PO never sent: {po}"));
        }
    }
    for (isa13, names) in isa13s {
        if names.len() > 1 {
            problems.push(format!("ISA13 {isa13} used by {names:?}"));
        }
    }
}

/// Every inbox file in exactly one final place, unchanged, none left behind; one 997 each.
fn check_inbox_files(ws: &Workspace, expected: &Expected, problems: &mut Vec<String>) {
    for dir in ["inbox", "inbox/.processing"] {
        for p in support::plain_files(&ws.path(dir)) {
            problems.push(format!("left in {dir}: {}", support::name_of(&p)));
        }
    }
    let mut places: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for root in ["archive/inbound", "archive/duplicates", "error"] {
        for p in support::walk(&ws.path(root), false) {
            let name = support::name_of(&p);
            if name.ends_with(".reason.txt") {
                continue;
            }
            places.entry(name).or_default().push(p);
        }
    }
    for (name, bytes) in &expected.files {
        match places.get(name).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("inbox file lost: {name}")),
            Some([one]) => {
                if !one.starts_with(ws.path("archive/inbound")) {
                    problems.push(format!("{name} (valid, unique) ended in {}", one.display()));
                }
                if std::fs::read(one).ok().as_ref() != Some(bytes) {
                    problems.push(format!("{name} changed on its way to {}", one.display()));
                }
            }
            Some(many) => problems.push(format!("{name} in several places: {many:?}")),
        }
    }
    for name in places.keys() {
        if !expected.files.contains_key(name) {
            problems.push(format!("unexpected file {name} in archive/error"));
        }
    }
    // One inbound group per file, so one 997 per file: a second one means a file was committed twice.
    let acks: Vec<String> = support::plain_files(&ws.path("outbox"))
        .iter()
        .map(|p| support::name_of(p))
        .filter(|n| n.ends_with(".997"))
        .collect();
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    for n in &acks {
        // 997.{GS06 of the inbound group}.{ISA13}.997
        let group = n.split('.').nth(1).unwrap_or_default().to_string();
        *per_group.entry(group).or_default() += 1;
    }
    for (group, n) in per_group {
        if n != 1 {
            problems.push(format!("{n} 997s for inbound group {group}"));
        }
    }
    if acks.len() != expected.files.len() {
        problems.push(format!(
            "{} 997s for {} inbound files",
            acks.len(),
            expected.files.len()
        ));
    }
}

/// Every expected call delivered at least once; a job keeps its correlation id across repeats.
fn check_calls(calls: &[RecordedCall], expected: &Expected, problems: &mut Vec<String>) {
    let ok: Vec<&RecordedCall> = calls
        .iter()
        .filter(|c| (200..300).contains(&c.status))
        .collect();
    let mut by_corr: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut by_job: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for c in &ok {
        let corr = c.header("im-correlationid").unwrap_or("");
        let job = (c.path.clone(), c.body.to_string());
        by_corr.entry(corr).or_default().insert(job.clone());
        by_job.entry(job).or_default().insert(corr);
    }
    for (corr, jobs) in &by_corr {
        if jobs.len() != 1 {
            problems.push(format!(
                "correlation id {corr} used for {} different calls",
                jobs.len()
            ));
        }
    }
    for ((path, _), corrs) in &by_job {
        if corrs.len() != 1 {
            problems.push(format!(
                "{path}: the same document delivered under {} correlation ids {corrs:?}",
                corrs.len()
            ));
        }
    }
    // Retries and repeats of one correlation id always go to the same path.
    let mut paths_by_corr: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in calls {
        paths_by_corr
            .entry(c.header("im-correlationid").unwrap_or(""))
            .or_default()
            .insert(c.path.as_str());
    }
    for (corr, paths) in paths_by_corr {
        if paths.len() != 1 {
            problems.push(format!("correlation id {corr} sent to {paths:?}"));
        }
    }
    let delivered: BTreeSet<&str> = ok.iter().map(|c| c.path.as_str()).collect();
    for path in expected.api_paths() {
        if !delivered.contains(path.as_str()) {
            problems.push(format!("never delivered: {path}"));
        }
    }
    let refused: Vec<String> = calls
        .iter()
        .filter(|c| c.status != 0 && c.status != 503 && !(200..300).contains(&c.status))
        .map(|c| format!("{} {} {}", c.status, c.path, c.response))
        .collect();
    if !refused.is_empty() {
        problems.push(format!("unexpected refusals: {refused:?}"));
    }
}

/// Whether the stopped bridge's store still has queued jobs, 850s or prepared files.
fn work_left(ws: &Workspace) -> bool {
    let Ok(store) = edi_bridge::store::Store::open(&ws.path("state")) else {
        return false;
    };
    store.job_count() + store.outbox_depth() > 0 || matches!(store.next_file(), Ok(Some(_)))
}

/// The store after the clean stop: nothing queued, nothing dead, every PO written under the one
/// file name found in the outbox.
fn check_store(ws: &Workspace, expected: &Expected, problems: &mut Vec<String>) {
    let store = match edi_bridge::store::Store::open(&ws.path("state")) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("the store does not open after the run: {e}"));
            return;
        }
    };
    for (what, n) in [
        ("queued API jobs", store.job_count()),
        ("dead letters", store.dead_count()),
        ("queued 850s", store.outbox_depth()),
        ("POs held for review", store.review_count()),
    ] {
        if n != 0 {
            problems.push(format!("{n} {what} at the end"));
        }
    }
    if let Ok(Some((_, f))) = store.next_file() {
        problems.push(format!("prepared file still queued: {}", f.file_name));
    }
    for po in &expected.pos {
        match store.order(po) {
            Ok(Some(rec)) => match rec.outbound {
                Outbound850::Written { envelope, .. } => {
                    if !ws.path("outbox").join(&envelope.file_name).is_file() {
                        problems.push(format!(
                            "{po}: store says written as {} but no such file",
                            envelope.file_name
                        ));
                    }
                }
                other => problems.push(format!("{po}: not written in the store: {other:?}")),
            },
            Ok(None) => problems.push(format!("{po}: acknowledged but not in the store")),
            Err(e) => problems.push(format!("{po}: {e}")),
        }
    }
}

/// One interchange of `n` small 855 sets, each for its own PO.
fn many_855(n: usize) -> Vec<u8> {
    let sample = include_str!("../../samples/ingram-po-855.edi");
    let mut out = format!(
        "{}\nGS*PR*VENDORERP*INGRAMMICRO*20261121*0900*501*X*004010~\n",
        sample.lines().next().unwrap()
    );
    for i in 1..=n {
        out.push_str(&format!(
            "ST*855*{i:04}~\nBAK*00*AC*CR-PO-{i}*20261120****SO-{i}*20261121~\nPO1*1*10*EA*123.45*PE*VP*ABC-123*BP*7HW123~\nACK*IA*10*EA*068*20261125~\nCTT*1~\nSE*6*{i:04}~\n"
        ));
    }
    out.push_str(&format!("GE*{n}*501~\nIEA*1*000000501~\n"));
    out.into_bytes()
}

/// A file of many sets is committed in chunks, each with the file's position: killed after
/// its first chunk, the daemon resumes after the last chunk committed, and every set becomes
/// exactly one call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_many_sets_killed_mid_way_loses_and_duplicates_nothing() {
    const SETS: usize = 1000;
    let (sim, _t) = support::sim(|_| {}).await;
    let ws = Workspace::new();
    let config = write_config(&ws, &sim);
    let log = ws.path("crash.log");
    std::fs::create_dir_all(ws.path("inbox")).unwrap();
    std::fs::write(ws.path("inbox/.many.part"), many_855(SETS)).unwrap();
    std::fs::rename(ws.path("inbox/.many.part"), ws.path("inbox/many.855")).unwrap();
    let (chunk_tx, chunk_rx) = std::sync::mpsc::channel::<()>();
    let mut child = support::edi_bridge_command()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env(ENV_WEBHOOK_SECRET, SECRET)
        .env(ENV_CLIENT_SECRET, CLIENT_SECRET)
        .env("RUST_LOG", "info,edi_bridge::from_erp::inbox=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edi-bridge");
    let out = std::fs::File::create(&log).unwrap();
    let _started = support::tee_stderr(&mut child, out, "[run 0] ".into(), move |line| {
        if String::from_utf8_lossy(line).contains("Inbox file chunk committed") {
            let _ = chunk_tx.send(());
        }
    });
    // The signal: the first chunk is committed. Kill right then, mid-file.
    let got = tokio::task::spawn_blocking(move || chunk_rx.recv_timeout(START_TIMEOUT))
        .await
        .unwrap();
    assert!(
        got.is_ok(),
        "no chunk committed\nlog tail:\n{}",
        tail(&log, 40)
    );
    let first = Bridge {
        child,
        run: 0,
        started: None,
    };
    first.kill(&log);
    assert!(
        support::walk(&ws.path("archive"), false).is_empty(),
        "the file was finished before the kill; nothing was tested"
    );
    let mut second = Bridge::spawn(&config, &log, 1);
    second.wait_started(&log).await;
    let calls = sim.wait_for_calls(SETS, QUIESCE_TIMEOUT).await;
    assert_eq!(calls.len(), SETS, "log tail:\n{}", tail(&log, 40));
    // Nothing more comes.
    let calls = sim.wait_for_calls(SETS + 1, QUIET).await;
    second.terminate(&log);
    let pos: BTreeSet<String> = calls
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| {
            c.body["ingramPurchaseOrderNumber"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pos.len(), SETS, "each set exactly once");
    assert_eq!(calls.len(), SETS, "no call twice");
    let archived = support::walk(&ws.path("archive/inbound"), false);
    assert!(
        archived.iter().any(|p| support::name_of(p) == "many.855"),
        "{archived:?}"
    );
}
