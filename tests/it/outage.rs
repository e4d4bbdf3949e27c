//! Ingram outages and API faults, and broken ERP directories, against the in-process daemon and
//! the emulator on 127.0.0.1:0, with short backoff settings so each runs in seconds: a long
//! maintenance window, a 429 storm whose `Retry-After` is honoured, a 401 token expiry mid-stream,
//! short-lived tokens, answers slower than the request timeout, an outbox replaced by a plain file,
//! and an error directory replaced by a plain file. Waits listen to daemon events or the
//! emulator's notify; the two places that must let wall-clock time pass say why.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use edi_bridge::events::Event;
use edi_bridge::events::Outcome;
use edi_bridge::sim::{Fault, RecordedCall, SimHandle};

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

/// Ingram announces `po`; the 2xx means it is durable.
async fn announce(d: &TestDaemon, po: &str) {
    let ev = format!("EV-{po}");
    let (s, b) = post(&d.url(), &sample_with(&ev, po), Some(&sign(&ev))).await;
    assert_eq!(s, 200, "{po}: {b}");
}

/// Upper bound of every wait here: generous, because a shared CI disk can stall fsync for
/// seconds and every step of the daemon waits for one. A passing run never waits this long.
const WAIT: Duration = Duration::from_secs(60);

/// Waits (on daemon events, no sleeping) until `cond` holds.
async fn until(d: &TestDaemon, what: &str, cond: impl Fn() -> bool) {
    let mut rx = d.r().events.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        if tokio::time::timeout_at(deadline, rx.recv()).await.is_err() {
            panic!("timed out waiting for {what}");
        }
    }
}

/// Waits (on daemon events) until every file in `names` has an inbox outcome; returns them.
async fn wait_files(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    names: &[&str],
) -> BTreeMap<String, Outcome> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < names.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::InboxFile { file, outcome })) if names.contains(&file.as_str()) => {
                seen.insert(file, outcome);
            }
            Ok(_) => {}
            Err(_) => panic!("timed out: inbox outcomes so far {seen:?}"),
        }
    }
    seen
}

/// Waits (on daemon events) for the outcome of one inbox file.
async fn wait_file(rx: &mut tokio::sync::broadcast::Receiver<Event>, name: &str) -> Outcome {
    wait_files(rx, &[name]).await.remove(name).unwrap()
}

/// Waits (on daemon events) until the job queue is empty.
async fn drained(d: &TestDaemon) {
    let mut rx = d.r().events.subscribe();
    let deadline = tokio::time::Instant::now() + WAIT;
    while d.r().store.job_count() != 0 {
        if tokio::time::timeout_at(deadline, rx.recv()).await.is_err() {
            let jobs: Vec<_> = d.r().store.jobs().collect();
            panic!("timed out waiting for the job queue to drain: {jobs:?}");
        }
    }
}

/// Waits (on daemon events) until `n` POs have their 850 written.
async fn written(d: &TestDaemon, n: usize) {
    until(d, &format!("{n} 850s written"), || d.written_count() >= n).await;
}

fn ok(calls: &[RecordedCall]) -> Vec<&RecordedCall> {
    calls.iter().filter(|c| c.status == 200).collect()
}

fn corr(c: &RecordedCall) -> &str {
    c.header("im-correlationid").unwrap_or("")
}

fn at(c: &RecordedCall) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(&c.at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("emulator timestamp {:?}: {e}", c.at))
}

/// The PO's timeline as stored, one entry per line.
fn history(d: &TestDaemon, po: &str) -> String {
    d.r()
        .store
        .order(po)
        .unwrap()
        .unwrap()
        .history
        .iter()
        .map(|h| h.what.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

fn config_with(ws: &Workspace, sim: &SimHandle, ingram_extra: &str, extra: &str) -> String {
    ws.config_text_for(&sim.base_url(), &sim.token_url(), extra)
        .replacen(
            "request_timeout_secs = 2\n",
            &format!("request_timeout_secs = 2\n{ingram_extra}"),
            1,
        )
}

#[tokio::test]
async fn ingram_down_for_a_long_stretch_then_everything_is_delivered_in_per_po_order() {
    let (sim, _t) = sim(|_| {}).await;
    sim.set_down(true);
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let pos: Vec<String> = (1..=4).map(|i| format!("IM-DOWN-{i}")).collect();
    for po in &pos {
        announce(&d, po).await;
    }
    written(&d, pos.len()).await;
    let mut rx = d.r().events.subscribe();
    let mut names = Vec::new();
    for (i, po) in pos.iter().enumerate() {
        let n = u32::try_from(i).unwrap();
        for (name, bytes) in [
            (format!("{po}.a.855"), ack_855_for(po, 3_000 + n)),
            (format!("{po}.b.856"), asn_856_for(po, 4_000 + n)),
        ] {
            drop_inbox(&ws, &name, &bytes);
            names.push(name);
        }
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let outcomes = wait_files(&mut rx, &names).await;
    assert!(
        outcomes
            .values()
            .all(|o| matches!(o, Outcome::Archived { jobs: 1, .. })),
        "{outcomes:?}"
    );
    // A long stretch: every PO's first job refused several times over.
    let down_calls = sim.wait_for_calls(24, WAIT).await;
    assert!(
        down_calls.len() >= 24,
        "{} calls while down",
        down_calls.len()
    );
    assert!(down_calls.iter().all(|c| c.status == 503));
    assert!(
        down_calls.iter().all(|c| c.path.ends_with("/response")),
        "a PO Status was tried before its PO Response went through"
    );
    assert_eq!(d.r().store.dead_count(), 0, "an outage is not a refusal");
    assert_eq!(d.r().store.job_count(), 2 * pos.len());
    let per_po_attempts: BTreeMap<String, usize> =
        down_calls.iter().fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.po.clone().unwrap()).or_default() += 1;
            m
        });
    assert_eq!(per_po_attempts.len(), pos.len(), "POs proceed in parallel");
    assert!(
        per_po_attempts.values().all(|&n| n >= 3),
        "{per_po_attempts:?}"
    );

    sim.set_down(false);
    drained(&d).await;
    assert_eq!(d.r().store.dead_count(), 0);
    let calls = sim.calls();
    let delivered = ok(&calls);
    assert_eq!(delivered.len(), 2 * pos.len(), "each job delivered once");
    for po in &pos {
        let mine: Vec<(usize, &RecordedCall)> = calls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.po.as_deref() == Some(po.as_str()))
            .collect();
        let response_ok = mine
            .iter()
            .filter(|(_, c)| c.status == 200 && c.path.ends_with("/response"))
            .map(|(i, _)| *i)
            .collect::<Vec<_>>();
        let status_ok = mine
            .iter()
            .filter(|(_, c)| c.status == 200 && c.path.ends_with("/status"))
            .map(|(i, _)| *i)
            .collect::<Vec<_>>();
        let first_status_try = mine
            .iter()
            .find(|(_, c)| c.path.ends_with("/status"))
            .map(|(i, _)| *i);
        assert_eq!((response_ok.len(), status_ok.len()), (1, 1), "{po}");
        assert!(
            first_status_try > Some(response_ok[0]),
            "{po}: its PO Status went before its PO Response was accepted"
        );
        assert!(
            at(&calls[status_ok[0]]) >= at(&calls[response_ok[0]]),
            "{po}: timestamps"
        );
        // Every retry of one job kept its correlation id.
        let responses: BTreeSet<&str> = mine
            .iter()
            .filter(|(_, c)| c.path.ends_with("/response"))
            .map(|(_, c)| corr(c))
            .collect();
        assert_eq!(responses.len(), 1, "{po}: {responses:?}");
    }
    d.stop().await;
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_retry_after() {
    let (sim, _t) = sim(|c| c.faults = vec![Fault::Status(429); 4]).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let pos = ["IM-RATE-1", "IM-RATE-2"];
    let mut rx = d.r().events.subscribe();
    let mut names = Vec::new();
    for (i, po) in pos.iter().enumerate() {
        announce(&d, po).await;
        let name = format!("{po}.855");
        drop_inbox(&ws, &name, &ack_855_for(po, 5_000 + i as u32));
        names.push(name);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_files(&mut rx, &names).await;
    let calls = sim.wait_for_calls(6, WAIT).await;
    drained(&d).await;
    assert_eq!(d.r().store.dead_count(), 0);
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(ok(&calls).len(), 2, "{statuses:?}");
    // The emulator sends `Retry-After: 1` (and an `X-RateLimit-Reset` a second ahead): the next
    // attempt of the same job comes no sooner. Arrival stamps are taken before the answer is
    // sent, so the true gap can only be larger; 20 ms covers clock granularity.
    let mut by_job: BTreeMap<&str, Vec<&RecordedCall>> = BTreeMap::new();
    for c in &calls {
        by_job.entry(corr(c)).or_default().push(c);
    }
    assert_eq!(by_job.len(), 2);
    let mut gaps = Vec::new();
    for attempts in by_job.values() {
        assert_eq!(attempts.last().unwrap().status, 200);
        for pair in attempts.windows(2) {
            if pair[0].status == 429 {
                let gap = at(pair[1]) - at(pair[0]);
                gaps.push(gap);
                assert!(
                    gap >= time::Duration::milliseconds(980),
                    "retried {gap} after a 429 with Retry-After: 1"
                );
            }
        }
    }
    assert_eq!(gaps.len(), 4, "{gaps:?}");
    d.stop().await;
}

#[tokio::test]
async fn a_401_mid_stream_refreshes_the_token_once_without_a_dead_letter() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    announce(&d, "IM-AUTH-1").await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", &ack_855_for("IM-AUTH-1", 6_001));
    wait_file(&mut rx, "ack.855").await;
    drained(&d).await;
    assert_eq!(sim.token_count(), 1);

    // The token expires under the next call.
    sim.push_faults(vec![Fault::Status(401)]);
    drop_inbox(&ws, "asn.856", &asn_856_for("IM-AUTH-1", 6_002));
    wait_file(&mut rx, "asn.856").await;
    drained(&d).await;
    let calls = sim.calls();
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 401, 200]);
    assert_eq!(corr(&calls[1]), corr(&calls[2]), "the same job");
    assert_eq!(calls[1].body, calls[2].body);
    assert_eq!(sim.token_count(), 2, "exactly one refresh");
    assert_eq!(sim.token_calls().len(), 2);
    assert_eq!(d.r().store.dead_count(), 0);
    // Refreshed within the same attempt, not as a retry with backoff.
    let h = history(&d, "IM-AUTH-1");
    assert!(
        h.contains("856 sent to Ingram (PO Status) after 1 attempt(s)"),
        "{h}"
    );
    d.stop().await;
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_before_they_expire() {
    let (sim, _t) = sim(|c| c.token_ttl_secs = 2).await;
    let ws = Workspace::new();
    let d = ws
        .start_text(&config_with(
            &ws,
            &sim,
            "token_refresh_margin_secs = 1\n",
            FAST,
        ))
        .await;
    announce(&d, "IM-TTL-1").await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", &ack_855_for("IM-TTL-1", 7_001));
    wait_file(&mut rx, "ack.855").await;
    drained(&d).await;
    assert_eq!(sim.token_count(), 1);
    // The token's lifetime is what is under test: let it run down past its refresh point (1 s)
    // but not past its expiry at the emulator (2 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    drop_inbox(&ws, "asn.856", &asn_856_for("IM-TTL-1", 7_002));
    wait_file(&mut rx, "asn.856").await;
    drained(&d).await;
    let statuses: Vec<u16> = sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [200, 200], "no 401: refreshed ahead of expiry");
    assert_eq!(sim.token_count(), 2, "a new token for the second call");
    d.stop().await;
}

#[tokio::test]
async fn answers_slower_than_the_timeout_are_retried_under_the_same_correlation_id() {
    let (sim, _t) = sim(|c| c.faults = vec![Fault::Delay(Duration::from_secs(3))]).await;
    let ws = Workspace::new();
    let text = config_with(&ws, &sim, "", FAST).replacen(
        "request_timeout_secs = 2\n",
        "request_timeout_secs = 1\n",
        1,
    );
    let d = ws.start_text(&text).await;
    announce(&d, "IM-SLOW-1").await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", &ack_855_for("IM-SLOW-1", 8_001));
    wait_file(&mut rx, "ack.855").await;
    drained(&d).await;
    assert_eq!(d.r().store.dead_count(), 0);
    let calls = sim.calls();
    // The slow call was processed by Ingram (recorded 200) but answered after the timeout, so
    // the bridge could not know: at least once, never under a new correlation id.
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.status == 200));
    assert!(calls.iter().all(|c| corr(c) == corr(&calls[0])));
    assert!(calls.iter().all(|c| c.body == calls[0].body));
    assert!(
        at(&calls[1]) - at(&calls[0]) >= time::Duration::milliseconds(980),
        "the retry came after the 1 s timeout"
    );
    let h = history(&d, "IM-SLOW-1");
    assert!(
        h.contains(&format!("after {} attempt(s)", calls.len())),
        "{h}"
    );
    d.stop().await;
}

/// `edi_bridge_outbox_errors_total` from `/metrics`.
async fn outbox_errors(d: &TestDaemon) -> u64 {
    let text = metrics(d).await;
    text.lines()
        .find_map(|l| l.strip_prefix("edi_bridge_outbox_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the outbox error counter")
}

#[tokio::test]
async fn an_unwritable_outbox_acknowledges_webhooks_then_writes_each_850_once_restored() {
    let ws = Workspace::new();
    let d = ws.start_with(FAST).await;
    std::fs::remove_dir(ws.path("outbox")).unwrap();
    std::fs::write(ws.path("outbox"), b"not a directory").unwrap();
    let pos = ["IM-FULL-1", "IM-FULL-2", "IM-FULL-3"];
    for po in pos {
        announce(&d, po).await;
    }
    // A failed write publishes no event; the error counter is the only sign, so poll it at a
    // short interval, bounded. Two errors: the worker failed and retried while broken.
    let deadline = std::time::Instant::now() + WAIT;
    while outbox_errors(&d).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox worker never failed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        d.written_count(),
        0,
        "no 850 marked written without its file"
    );
    for po in pos {
        assert!(d.r().store.order(po).unwrap().is_some(), "{po} durable");
    }
    assert_eq!(read(&ws.path("outbox")), b"not a directory");

    std::fs::remove_file(ws.path("outbox")).unwrap();
    std::fs::create_dir(ws.path("outbox")).unwrap();
    written(&d, pos.len()).await;
    d.stop().await;
    // A restart writes nothing again.
    let d = ws.start_with(FAST).await;
    assert_eq!(d.written_count(), pos.len());
    d.stop().await;

    let files = ws.files("outbox");
    let names: Vec<String> = files.iter().map(|p| name_of(p)).collect();
    assert_eq!(files.len(), pos.len(), "{names:?}");
    let mut isa13 = BTreeSet::new();
    for (po, f) in pos.iter().zip(&files) {
        let bytes = read(f);
        let doc = edi_bridge::x12::read(&bytes, &edi_bridge::x12::ReadOptions::default());
        assert!(doc.is_complete() && doc.errors().next().is_none(), "{f:?}");
        assert_eq!(find(&segments(&bytes), "BEG")[0][3], *po);
        isa13.insert(doc.interchanges[0].header.control_number.clone());
    }
    assert_eq!(isa13.len(), pos.len(), "control numbers never reused");
}

fn processing(ws: &Workspace) -> Vec<String> {
    ws.names("inbox/.processing")
}

/// The 997s in the outbox answering inbound group `gs06`.
fn acks_for_group(ws: &Workspace, gs06: u32) -> Vec<PathBuf> {
    let prefix = format!("997.{gs06}.");
    ws.files("outbox")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

/// Documented behaviour: a claimed file that cannot be moved to `error/` stays in
/// `inbox/.processing/` (nothing lost, the daemon goes on) and is retried at every scan, so
/// restoring `error/` is enough to move it; the ERP gets one 997 for it, however many attempts.
#[tokio::test]
async fn an_unwritable_error_directory_keeps_the_daemon_running_and_loses_no_file() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // A wrong SE01 is a rejection only with `strict_envelope` (a warning by default).
    std::fs::write(
        ws.path("mapping.toml"),
        edi_bridge::mapping::DEFAULT_MAPPING
            .replace("strict_envelope = false", "strict_envelope = true"),
    )
    .unwrap();
    let d = ws.start_against(&sim, FAST).await;
    announce(&d, "IM-ERR-1").await;
    std::fs::remove_dir(ws.path("error")).unwrap();
    std::fs::write(ws.path("error"), b"not a directory").unwrap();
    let mut rx = d.r().events.subscribe();
    // A complete interchange whose SE count is wrong: rejected, with a 997 that says so.
    let bad = String::from_utf8(ack_855_for("IM-ERR-1", 9_001))
        .unwrap()
        .replace("SE*9*0001", "SE*7*0001");
    drop_inbox(&ws, "bad.855", bad.as_bytes());
    // The daemon carries on: a later good file (which sorts after it) is processed and delivered.
    drop_inbox(&ws, "good.855", &ack_855_for("IM-ERR-1", 9_002));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::InboxFile { file, outcome })) if file == "good.855" => {
                assert!(
                    matches!(outcome, Outcome::Archived { jobs: 1, .. }),
                    "{outcome:?}"
                );
                break;
            }
            Ok(Ok(Event::InboxFile { file, outcome })) => {
                panic!("{file}: {outcome:?} although error/ is a plain file")
            }
            Ok(_) => {}
            Err(_) => panic!("good.855 was never processed"),
        }
    }
    assert_eq!(processing(&ws), ["bad.855"], "kept in the processing area");
    drained(&d).await;
    assert_eq!(ok(&sim.calls()).len(), 1);
    // The ERP still gets the 997 rejecting the bad group.
    until(&d, "the rejecting 997", || {
        acks_for_group(&ws, 9_001).len() == 1
    })
    .await;

    // Restoring error/ is enough: the next scan takes the claimed file up again and quarantines
    // it with its reason, without a restart and without a second 997.
    std::fs::remove_file(ws.path("error")).unwrap();
    std::fs::create_dir(ws.path("error")).unwrap();
    wait_file(&mut rx, "bad.855").await;
    until(&d, "the prepared files written", || {
        d.r().store.next_file().unwrap().is_none()
    })
    .await;
    d.stop().await;
    assert!(processing(&ws).is_empty());
    assert_eq!(read(&ws.path("error/bad.855")), bad.as_bytes(), "unchanged");
    let reason = std::fs::read_to_string(ws.path("error/bad.855.reason.txt")).unwrap();
    assert!(reason.contains("SE"), "{reason}");
    // The ERP is told about the rejected group once, not once per processing attempt.
    let acks = acks_for_group(&ws, 9_001);
    assert_eq!(acks.len(), 1, "997s for the rejected group: {acks:?}");
}
