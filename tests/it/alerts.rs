//! Alerts that reach someone: a real HTTP receiver on 127.0.0.1:0 gets the JSON (with `text`)
//! for a dead letter and for a file moved to error/, a repeated alert is sent once, and a
//! receiver that keeps failing never holds up deliveries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use edi_bridge::events::Outcome;
use edi_bridge::sim::Fault;
use serde_json::Value;

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

/// Alert settings for the tests: the receiver's URL and a check interval of a second (dead
/// letters of one cause are collected until none came for that long).
pub(crate) fn alerting(url: &str) -> String {
    format!("[alerts]\ncheck_interval_secs = 1\nwebhook_url = \"{url}\"\n")
}

/// An alert's text: real line breaks, never an escaped one.
fn text_of(alert: &Value) -> String {
    let text = alert["text"].as_str().unwrap().to_string();
    assert!(!text.contains("\\n"), "a literal \\n in {text}");
    text
}

/// Runs a command an alert suggests, as an operator would copy it (no shell: the test's
/// paths need no quoting).
async fn run_copied(line: &str) -> std::process::Output {
    let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "edi-bridge", "{line}");
    tokio::task::spawn_blocking(move || edi_bridge_command().args(&words[1..]).output().unwrap())
        .await
        .unwrap()
}

/// The command on the line of `text` that follows `after`.
fn command_after<'a>(text: &'a str, after: &str) -> &'a str {
    let line = text
        .lines()
        .find(|l| l.contains(after))
        .unwrap_or_else(|| panic!("no line with {after:?} in {text}"));
    let at = line
        .find("edi-bridge ")
        .unwrap_or_else(|| panic!("no command in {line}"));
    &line[at..]
}

/// A receiver that records every body and answers `status`.
pub(crate) struct Receiver {
    pub(crate) url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    hits: Arc<tokio::sync::Notify>,
}

pub(crate) async fn receiver(status: u16) -> Receiver {
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let hits = Arc::new(tokio::sync::Notify::new());
    let (b, h) = (bodies.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/hook/T0KEN",
        axum::routing::post(move |body: String| {
            let (b, h) = (b.clone(), h.clone());
            async move {
                b.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                h.notify_one();
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/hook/T0KEN"),
        bodies,
        hits,
    }
}

impl Receiver {
    pub(crate) async fn wait_for(&self, what: &str, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.hits.notified();
            let got = self.bodies.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}: {got:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_dead_letter_and_a_rejected_file_reach_the_webhook_once_each() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(
            &sim,
            &format!(
                "{FAST}{}[console]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://edi.example.com/console/\"\n",
                alerting(&hook.url)
            ),
        )
        .await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;

    sim.push_faults(vec![Fault::Status(400)]);
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    let got = hook.wait_for("the dead-letter alert", 1).await;
    assert_eq!(got[0]["kind"], "dead_letter", "{got:?}");
    let text = text_of(&got[0]);
    let job = d.r().store.dead_letters().next().unwrap().unwrap().job.id;
    // The README's words, the PO, the job and the account, the command that retries it (which
    // works when copied), a link to the PO's console page; no internal names.
    for want in [
        "account default".to_string(),
        "the PO Response call for PO IM-PO-1001 is a dead letter".to_string(),
        format!("(job {job})"),
        format!(
            "edi-bridge retry --config {} {job}",
            ws.path("edi-bridge.toml").display()
        ),
        "Console: https://edi.example.com/console/pos/IM-PO-1001".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} in {text}");
    }
    assert!(!text.contains("PoResponse"), "{text}");
    let out = run_copied(command_after(&text, "put it back in the queue")).await;
    assert!(out.status.success(), "{out:?}");
    d.until("the job back in the queue", || {
        d.r().store.dead_count() == 0
    })
    .await;

    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "junk.855", b"this is not X12 at all");
    assert!(matches!(
        d.wait_inbox(&mut rx, "junk.855").await,
        Outcome::Rejected { .. }
    ));
    let got = hook.wait_for("the rejected-file alert", 2).await;
    assert_eq!(got[1]["kind"], "file_rejected", "{got:?}");
    let text = text_of(&got[1]);
    assert!(
        text.contains("junk.855") && text.contains("moved to error/") && text.contains('\n'),
        "{text}"
    );
    assert!(
        text.contains("Console: https://edi.example.com/console/errors"),
        "{text}"
    );

    // The same file name rejected again within the hour: not sent again, counted.
    drop_inbox(&ws, "junk.855", b"still not X12");
    assert!(matches!(
        d.wait_inbox(&mut rx, "junk.855").await,
        Outcome::Rejected { .. }
    ));
    d.until("the repeat counted as suppressed", || {
        d.r().store.order("IM-PO-1001").is_ok() && hook.bodies.lock().unwrap().len() == 2
    })
    .await;
    let m = metrics(&d).await;
    assert!(m.contains("edi_bridge_alerts_sent_total 2"), "{m}");
    d.stop().await;
    assert_eq!(hook.bodies.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failing_alert_receiver_does_not_hold_up_deliveries() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(500).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(&sim, &format!("{FAST}{}", alerting(&hook.url)))
        .await;
    for (i, po) in ["IM-A-1", "IM-A-2"].iter().enumerate() {
        let ev = format!("E-A-{i}");
        let (s, _) = post(&d.url(), &sample_with(&ev, po), Some(&sign(&ev))).await;
        assert_eq!(s, 200);
    }
    d.wait_written(2).await;
    // A rejected file raises an alert the receiver keeps refusing (retried with backoff) ...
    drop_inbox(&ws, "junk.856", b"not X12");
    hook.wait_for("the first attempt", 1).await;
    // ... while 855s keep flowing to Ingram.
    drop_inbox(&ws, "a1.855", &ack_855_for("IM-A-1", 901));
    drop_inbox(&ws, "a2.855", &ack_855_for("IM-A-2", 902));
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 2);
    d.stop().await;
}

#[tokio::test]
async fn a_ta1_rejecting_our_850_raises_an_alert_when_its_file_is_processed() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(&sim, &format!("{FAST}{}", alerting(&hook.url)))
        .await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let isa13 = match d.r().store.order("IM-PO-1001").unwrap().unwrap().outbound {
        edi_bridge::store::records::Outbound850::Written { envelope, .. } => envelope.isa13,
        other => panic!("{other:?}"),
    };
    let isa = include_str!("../../samples/ingram-po-855.edi")
        .lines()
        .next()
        .unwrap()
        .replace("000000501", "000000778");
    let ta1 = format!("{isa}\nTA1*{isa13:09}*261121*0900*R*024~\nIEA*0*000000778~\n");
    drop_inbox(&ws, "ta1.edi", ta1.as_bytes());
    let got = hook.wait_for("the ERP-rejection alert", 1).await;
    assert_eq!(got[0]["kind"], "erp_rejected", "{got:?}");
    let text = text_of(&got[0]);
    assert!(
        text.contains("the ERP rejected the 850 for PO IM-PO-1001") && text.contains("TA104 R"),
        "{text}"
    );
    assert_eq!(got[0]["subject"], "IM-PO-1001");
    let out = run_copied(command_after(&text, "timeline")).await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("PO IM-PO-1001"),
        "{out:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_store_that_cannot_write_raises_an_alert_without_waiting_for_the_periodic_check() {
    let hook = receiver(200).await;
    let ws = Workspace::new();
    // The periodic check (check_interval_secs, 300 by default) would come long after the
    // watchdog restarted a daemon whose store keeps failing: store health is watched apart.
    let d = ws
        .start_with(&format!(
            "{FAST}[alerts]\ncheck_interval_secs = 3600\nwebhook_url = \"{}\"\n",
            hook.url
        ))
        .await;
    let store = d.r().store.clone();
    store.faults().fail_writes(true);
    let (status, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(status, 503);
    let got = hook.wait_for("the store alert", 1).await;
    assert_eq!(got[0]["kind"], "store", "{got:?}");
    let text = got[0]["text"].as_str().unwrap();
    assert!(text.contains("cannot write"), "{text}");
    store.faults().fail_writes(false);
    let mut d = d;
    d.token.cancel();
    let _ = d.running.take().unwrap().wait().await;
}

/// A minimal SMTP server on 127.0.0.1:0 (no TLS, no auth): keeps each message's DATA.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>, Arc<tokio::sync::Notify>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<String>>> = Arc::default();
    let got = Arc::new(tokio::sync::Notify::new());
    let (m, g) = (mails.clone(), got.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (m, g) = (m.clone(), g.clone());
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test ESMTP\r\n").await.ok()?;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            w.write_all(b"354 go ahead\r\n").await.ok()?;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            m.lock().unwrap().push(data);
                            g.notify_one();
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.ok()?;
                            return Some(());
                        }
                        _ => b"250 ok\r\n",
                    };
                    w.write_all(reply).await.ok()?;
                }
                Some(())
            });
        }
    });
    (port, mails, got)
}

#[tokio::test]
async fn an_alert_is_also_e_mailed_through_smtp() {
    let (port, mails, got) = smtp_server().await;
    let ws = Workspace::new();
    let d = ws
        .start_with(&format!(
            "{FAST}[alerts.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"edi-bridge@vendor.example\"\nto = [\"erp-admin@vendor.example\"]\n"
        ))
        .await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "bad.856", b"not X12 at all");
    assert!(matches!(
        d.wait_inbox(&mut rx, "bad.856").await,
        Outcome::Rejected { .. }
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let notified = got.notified();
        if let Some(mail) = mails.lock().unwrap().first().cloned() {
            assert!(mail.contains("To: erp-admin@vendor.example"), "{mail}");
            assert!(
                mail.contains("Subject: edi-bridge alert: file_rejected"),
                "{mail}"
            );
            assert!(mail.contains("bad.856"), "{mail}");
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, notified).await.is_ok(),
            "no e-mail arrived"
        );
    }
    d.stop().await;
}

/// The sample 855s for several POs in one file (one interchange each), so their calls are
/// queued together.
fn acks_for(pos: &[&str], first: u32) -> Vec<u8> {
    pos.iter()
        .enumerate()
        .flat_map(|(i, po)| ack_855_for(po, first + i as u32))
        .collect()
}

#[tokio::test]
async fn bad_credentials_make_one_alert_with_a_count_not_one_per_po() {
    // Ingram refuses the client secret: every call is refused with 401 and dead-lettered.
    let (sim, _t) = sim(|c| c.client_secret = "another-secret".into()).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(&sim, &format!("{FAST}{}", alerting(&hook.url)))
        .await;
    let pos = ["IM-B-1", "IM-B-2", "IM-B-3", "IM-B-4", "IM-B-5"];
    for (i, po) in pos.iter().enumerate() {
        let ev = format!("E-B-{i}");
        let (s, _) = post(&d.url(), &sample_with(&ev, po), Some(&sign(&ev))).await;
        assert_eq!(s, 200);
    }
    d.wait_written(pos.len()).await;
    drop_inbox(&ws, "acks.855", &acks_for(&pos, 910));
    let got = hook.wait_for("the grouped alert", 1).await;
    assert_eq!(got[0]["kind"], "dead_letter", "{got:?}");
    let text = text_of(&got[0]);
    assert!(
        text.contains("5 API calls are dead letters for one cause")
            && text.contains("Ingram refuses the credentials (HTTP 401)")
            && text.contains("account default"),
        "{text}"
    );
    for po in pos {
        assert!(
            text.contains(&format!("PO {po} (PO Response, job ")),
            "{po}: {text}"
        );
    }
    assert_eq!(d.r().store.dead_count(), 5);
    // The suggested command puts every one back in the queue.
    let out = run_copied(command_after(&text, "put them all back")).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('5'),
        "{out:?}"
    );
    d.stop().await;
    assert_eq!(
        hook.bodies.lock().unwrap().len(),
        1,
        "one alert, not one per PO"
    );
}

#[tokio::test]
async fn ingram_unreachable_for_the_threshold_alerts_once_and_again_when_it_answers() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(
            &sim,
            &format!(
                "{FAST}{}api_unreachable_minutes = 15\n",
                alerting(&hook.url)
            ),
        )
        .await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    sim.set_down(true);
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    // A first failed attempt: Ingram answers 503 (maintenance).
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a delivery attempt")
            .unwrap();
        if matches!(
            e,
            edi_bridge::events::Event::Delivery {
                outcome: edi_bridge::events::Delivery::Retry { .. },
                ..
            }
        ) {
            break;
        }
    }
    assert!(
        hook.bodies.lock().unwrap().is_empty(),
        "no alert for a retry"
    );
    // Sixteen minutes later, by the daemon's clock: one alert that Ingram is down.
    d.r().clock.advance(Duration::from_secs(16 * 60));
    let got = hook.wait_for("the outage alert", 1).await;
    assert_eq!(got[0]["kind"], "api_unreachable", "{got:?}");
    let text = text_of(&got[0]);
    assert!(
        text.contains("Ingram has not answered for 16 min")
            && text.contains("503")
            && text.contains("1 API call(s) wait in the queue"),
        "{text}"
    );
    // It answers again: one more alert, and the call goes through.
    sim.set_down(false);
    let got = hook.wait_for("the recovery alert", 2).await;
    assert_eq!(got[1]["kind"], "api_reachable", "{got:?}");
    assert!(text_of(&got[1]).contains("Ingram answers again"), "{got:?}");
    sim.wait_for_calls(1, Duration::from_secs(20)).await;
    d.stop().await;
    assert_eq!(hook.bodies.lock().unwrap().len(), 2, "one alert each way");
}

#[tokio::test]
async fn an_erp_997_rejection_alert_gives_its_ak5_and_ak9_codes() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(&sim, &format!("{FAST}{}", alerting(&hook.url)))
        .await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let gs06 = match d.r().store.order("IM-PO-1001").unwrap().unwrap().outbound {
        edi_bridge::store::records::Outbound850::Written { envelope, .. } => envelope.gs06,
        other => panic!("{other:?}"),
    };
    let isa = include_str!("../../samples/ingram-po-855.edi")
        .lines()
        .next()
        .unwrap()
        .replace("000000501", "000000779");
    let ack = format!(
        "{isa}\nGS*FA*VENDORERP*INGRAMMICRO*20261121*0900*779*X*004010~\nST*997*0001~\nAK1*PO*{gs06}~\nAK2*850*0001~\nAK3*PO1*8**8~\nAK5*R*5~\nAK9*R*1*1*0~\nSE*7*0001~\nGE*1*779~\nIEA*1*000000779~\n"
    );
    drop_inbox(&ws, "reject.997", ack.as_bytes());
    let got = hook.wait_for("the ERP-rejection alert", 1).await;
    assert_eq!(got[0]["kind"], "erp_rejected", "{got:?}");
    let text = text_of(&got[0]);
    assert!(
        text.contains("the ERP rejected the 850 for PO IM-PO-1001")
            && text.contains("AK5 R")
            && text.contains("AK9 R")
            && text.contains(&format!(
                "edi-bridge show --config {} IM-PO-1001",
                ws.path("edi-bridge.toml").display()
            )),
        "{text}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_po_still_open_after_open_po_days_raises_an_alert_naming_it() {
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let d = ws
        .start_with(&format!(
            "{FAST}[alerts]\nopen_po_days = 1\ncheck_interval_secs = 1\nwebhook_url = \"{}\"\n",
            hook.url
        ))
        .await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    // Two days on by the daemon's clock, the ERP has sent nothing back.
    d.r().clock.advance(Duration::from_secs(2 * 86_400));
    let mut n = 1;
    let alert = loop {
        let got = hook.wait_for("the open-PO alert", n).await;
        if let Some(a) = got.iter().find(|a| a["kind"] == "open_pos") {
            break a.clone();
        }
        n = got.len() + 1;
    };
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("1 PO(s) still open after 1 days")
            && text.contains("IM-PO-1001 (no 997 from the ERP for its 850)"),
        "{text}"
    );
    d.stop().await;
}
