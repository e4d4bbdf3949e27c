//! Pacing and isolation of an account's API calls, against the emulator's rate limit: a burst
//! goes out at the configured pace with no 429, a 429 pauses the account without spending the
//! job's attempt, and a declared maintenance window holds the calls (by the daemon's clock,
//! which the test moves) without spending attempts or raising the `api_unreachable` alert.

use std::time::Duration;

use edi_bridge::events::{Delivery, Event};
use edi_bridge::sim::{Fault, RateLimit};

use crate::alerts::{alerting, receiver};
use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 0\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

/// The test config with `keys` in `[ingram]`, in place of its fast `requests_per_minute`.
fn with_ingram_keys(
    ws: &Workspace,
    sim: &edi_bridge::sim::SimHandle,
    keys: &str,
    extra: &str,
) -> String {
    ws.config_text_for(&sim.base_url(), &sim.token_url(), extra)
        .replace("requests_per_minute = 60000\n", keys)
}

/// The value of a metric line `name{account="default"}`.
fn gauge(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{account=\"default\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in metrics"))
        .parse()
        .unwrap()
}

/// Waits on daemon events until `n` calls were delivered.
async fn wait_delivered(
    d: &TestDaemon,
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    n: usize,
) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut delivered = 0;
    while delivered < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => {
                if let Event::Delivery {
                    outcome: Delivery::Delivered { .. },
                    ..
                } = &e
                {
                    delivered += 1;
                }
                if matches!(e, Event::Delivery { .. }) {
                    seen.push(e);
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("events: {e}"),
            Err(_) => panic!("timed out: {delivered} of {n} calls delivered"),
        }
    }
    let _ = d;
    seen
}

#[tokio::test]
async fn a_burst_goes_out_at_the_configured_pace_with_no_429() {
    // Ingram's emulator allows 100 calls a second; the account is paced at 80 a second.
    let (sim, _t) = sim(|c| {
        c.rate_limit = Some(RateLimit {
            requests: 100,
            per: Duration::from_secs(1),
        })
    })
    .await;
    let ws = Workspace::new();
    let text = with_ingram_keys(
        &ws,
        &sim,
        "requests_per_minute = 4800\n",
        &format!("{FAST}workers = 8\n"),
    );
    let d = ws.start_text(&text).await;
    let mut rx = d.r().events.subscribe();
    const N: u32 = 300;
    for n in 0..N {
        drop_inbox(
            &ws,
            &format!("asn{n}.856"),
            &asn_856_for(&format!("PO-{n}"), 1000 + n),
        );
    }
    let seen = wait_delivered(&d, &mut rx, N as usize).await;
    assert!(
        seen.iter().all(|e| matches!(
            e,
            Event::Delivery {
                outcome: Delivery::Delivered { .. },
                ..
            }
        )),
        "no retries: {:?}",
        seen.iter()
            .filter(|e| !matches!(
                e,
                Event::Delivery {
                    outcome: Delivery::Delivered { .. },
                    ..
                }
            ))
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(sim.calls().len(), N as usize);
    assert_eq!(sim.throttled_count(), 0, "no 429 at the configured pace");
    let m = metrics(&d).await;
    assert_eq!(gauge(&m, "edi_bridge_api_pace_requests_per_minute"), 4800.0);
    assert_eq!(gauge(&m, "edi_bridge_api_pace_allowed_total"), f64::from(N));
    assert!(
        gauge(&m, "edi_bridge_api_pace_waits_total") > 0.0,
        "the pace held calls back"
    );
    assert_eq!(gauge(&m, "edi_bridge_api_throttled_total"), 0.0);
    assert_eq!(gauge(&m, "edi_bridge_api_low_remaining_total"), 0.0);
    assert_eq!(gauge(&m, "edi_bridge_api_maintenance"), 0.0);
    d.stop().await;
}

#[tokio::test]
async fn a_429_pauses_the_account_and_the_call_goes_again_without_spending_an_attempt() {
    let (sim, _t) = sim(|c| c.faults = vec![Fault::Status(429)]).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    let seen = wait_delivered(&d, &mut rx, 1).await;
    assert_eq!(seen.len(), 1, "one outcome, no retry recorded: {seen:?}");
    let calls = sim.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert_eq!(
        calls[0].header("im-correlationid"),
        calls[1].header("im-correlationid"),
        "the same call again"
    );
    let m = metrics(&d).await;
    assert_eq!(gauge(&m, "edi_bridge_api_throttled_total"), 1.0);
    assert_eq!(gauge(&m, "edi_bridge_api_pace_allowed_total"), 2.0);
    assert!(
        m.contains("edi_bridge_api_calls_total{outcome=\"retry\"} 0"),
        "{m}"
    );
    d.stop().await;
}

/// A window `DAY HH:MM-HH:MM +00:00` opening `from` after now (by the system clock, which the
/// daemon's starts at) and lasting `hours`.
fn window_from_now(from: Duration, hours: i64) -> String {
    let now = time::OffsetDateTime::now_utc() + from;
    let end = now + time::Duration::hours(hours);
    format!(
        "{} {:02}:{:02}-{:02}:{:02} +00:00",
        &format!("{:?}", now.weekday())[..3],
        now.hour(),
        now.minute(),
        end.hour(),
        end.minute()
    )
}

#[tokio::test]
async fn a_declared_window_holds_calls_without_spending_attempts_or_alerting() {
    let (sim, _t) = sim(|_| {}).await;
    let hook = receiver(200).await;
    let ws = Workspace::new();
    let window = window_from_now(Duration::from_secs(10 * 60), 2);
    let text = with_ingram_keys(
        &ws,
        &sim,
        &format!("requests_per_minute = 60000\nmaintenance = [\"{window}\"]\n"),
        &format!(
            "{FAST}{}api_unreachable_minutes = 15\n",
            alerting(&hook.url)
        ),
    );
    let d = ws.start_text(&text).await;
    let limiter = d.r().accounts.primary().limiter.clone();
    assert_eq!(limiter.account(), "default");
    // Ingram stops answering just before its window: a first failed attempt.
    sim.set_down(true);
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "ack.855",
        include_bytes!("../../samples/ingram-po-855.edi"),
    );
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a delivery attempt")
            .unwrap();
        if matches!(
            e,
            Event::Delivery {
                outcome: Delivery::Retry { .. },
                ..
            }
        ) {
            break;
        }
    }
    // Sixteen minutes later by the daemon's clock the window is open: the call waits in it.
    d.r().clock.advance(Duration::from_secs(16 * 60));
    while limiter.snapshot().window_waits == 0 {
        let _ = tokio::time::timeout(Duration::from_secs(20), limiter.changed()).await;
    }
    assert!(limiter.in_window());
    let m = metrics(&d).await;
    assert_eq!(gauge(&m, "edi_bridge_api_maintenance"), 1.0);
    assert_eq!(gauge(&m, "edi_bridge_api_maintenance_waits_total"), 1.0);
    let before = sim.calls().len();
    let allowed = limiter.snapshot().allowed;
    // The window closes with Ingram still down: the next failure is counted from its close, so
    // 136 minutes after the first failure there is still no outage alert.
    d.r().clock.advance(Duration::from_secs(2 * 3600));
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an attempt after the window")
            .unwrap();
        if matches!(
            e,
            Event::Delivery {
                outcome: Delivery::Retry { .. },
                ..
            }
        ) {
            break;
        }
    }
    assert!(limiter.snapshot().allowed > allowed);
    assert!(sim.calls().len() > before);
    sim.set_down(false);
    wait_delivered(&d, &mut rx, 1).await;
    // A rejected file raises an alert; it is the first one: nothing about Ingram came before.
    drop_inbox(&ws, "junk.855", b"not x12 at all");
    let got = hook.wait_for("the rejected file's alert", 1).await;
    assert_eq!(got[0]["kind"], "file_rejected", "{got:?}");
    d.stop().await;
}
