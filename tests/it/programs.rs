//! Mapping programs (jq) through the real daemon: a webhook in another vocabulary mapped to a
//! full 850, a line-centric PO Status body, a PO Response program reading `$segments` and `$po`,
//! a program failing for one document while others flow (and `retry` after the fix, with the
//! mapping hot-reloaded), a failing webhook program answered 500 with nothing stored, compile
//! errors reported at their line, and `mapping test` passing and failing.

use std::time::Duration;

use edi_bridge::events::{Delivery, Event, Outcome};
use serde_json::json;

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

async fn admin(ws: &Workspace, method: &str, path: &str) -> Result<String, String> {
    edi_bridge::admin::request(&ws.path("state"), method, path)
        .await
        .expect("the daemon answers on its admin socket")
        .map_err(|e| e.to_string())
}

/// The shipped mapping with `text` added at the top of `[section]`.
fn mapping_with(section: &str, text: &str) -> String {
    edi_bridge::mapping::DEFAULT_MAPPING.replacen(
        &format!("\n[{section}]\n"),
        &format!("\n[{section}]\n{text}\n"),
        1,
    )
}

fn set_mapping(ws: &Workspace, text: &str) {
    std::fs::write(ws.path("mapping.toml"), text).unwrap();
}

async fn order(d: &TestDaemon, event: &str, po: &str) {
    let (s, body) = post(&d.url(), &sample_with(event, po), Some(&sign(event))).await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn a_webhook_in_another_vocabulary_is_mapped_by_a_program_to_a_full_850() {
    let ws = Workspace::new();
    set_mapping(
        &ws,
        &mapping_with(
            "webhook",
            r#"program = '''
.lines = (.items | map({
    ingramLineNumber: .lineNumber,
    vendorPartNumber,
    description: .partDescription,
    quantity
  }))
| del(.items)
'''"#,
        ),
    );
    let d = ws.start().await;
    let body = json!({
        "topic": "vendors/purchaseorders", "event": "IM::VendorPOCreate", "eventId": "E-ITEMS",
        "resource": [{
            "ingramPurchaseOrderNumber": "IM-ITEMS-1", "resellerOrderNumber": "R-9",
            "ingramPurchaseOrderDate": "2026-11-20",
            "items": [
                {"lineNumber": "010", "vendorPartNumber": "ABC-1", "partDescription": "Widget", "quantity": 2},
                {"lineNumber": "020", "vendorPartNumber": "XYZ-2", "partDescription": "Rack kit", "quantity": "5"}
            ]
        }]
    })
    .to_string();
    let (s, answer) = post(&d.url(), &body, Some(&sign("E-ITEMS"))).await;
    assert_eq!(s, 200, "{answer}");
    d.wait_written(1).await;
    d.stop().await;
    let files = ws.files("outbox");
    let segs = segments(&read(&files[0]));
    let po1 = find(&segs, "PO1");
    assert_eq!(po1.len(), 2);
    assert_eq!(po1[0][1], "010");
    assert_eq!(po1[0][2], "2");
    assert_eq!(po1[1][1], "020");
    assert_eq!(po1[1][2], "5");
    assert!(po1[0].contains(&"ABC-1".to_string()), "{po1:?}");
    let pid = find(&segs, "PID");
    assert_eq!(pid[0][5], "WIDGET");
    assert_eq!(pid[1][5], "RACK KIT");
    assert_eq!(find(&segs, "CTT")[0][2], "7");
}

#[tokio::test]
async fn a_line_centric_status_body_and_a_response_program_reading_segments_and_the_po() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let text = mapping_with(
        "po_status",
        r#"body = '''
{
  ingramPurchaseOrderNumber,
  orderStatus,
  lines: [
    .shipments[] as $s | $s.packages[] as $p | $p.lines[]
    | {
        ingramLineNumber,
        shippedQuantity: .quantityShipped,
        shipmentDetails: [{
          shipDate: $s.shipDate,
          carrierDetails: [{
            carrierName: $s.carrierName,
            trackingDetails: [{trackingNumber: $p.trackingNumber}]
          }]
        }]
      }
  ]
}
'''"#,
    );
    let text = text.replacen(
        "\n[po_response]\n",
        "\n[po_response]\nbody = '''\n. + {\n  promotionCode: ([$segments[] | select(.[0] == \"REF\" and .[1] == \"ZZ\") | .[2]] | first),\n  resellerOrderNumber: $po.resellerOrderNumber\n}\n'''\n",
        1,
    );
    set_mapping(&ws, &text);
    let d = ws.start_against(&sim, FAST).await;
    order(&d, "E-LC", "IM-PO-1001").await;
    d.wait_written(1).await;
    let mut rx = d.r().events.subscribe();
    let ack = include_str!("../../samples/ingram-po-855.edi")
        .replace(
            "BAK*00*AC*IM-PO-1001*20261120****SO-77812*20261121~\n",
            "BAK*00*AC*IM-PO-1001*20261120****SO-77812*20261121~\nREF*ZZ*PROMO-7~\n",
        )
        .replace("SE*9*0001~", "SE*10*0001~");
    drop_inbox(&ws, "ack.855", ack.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    drop_inbox(
        &ws,
        "asn.856",
        include_str!("../../samples/ingram-po-856.edi").as_bytes(),
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "asn.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    assert_eq!(calls[0].body["promotionCode"], "PROMO-7");
    assert_eq!(calls[0].body["vendorSalesOrderNumber"], "SO-77812");
    assert_eq!(
        calls[0].body["resellerOrderNumber"],
        serde_json::from_str::<serde_json::Value>(SAMPLE).unwrap()["resource"][0]
            ["resellerOrderNumber"]
    );
    assert_eq!(
        calls[1].body,
        json!({
            "ingramPurchaseOrderNumber": "IM-PO-1001",
            "orderStatus": "partially_shipped",
            "lines": [
                {"ingramLineNumber": "1", "shippedQuantity": 8, "shipmentDetails": [{"shipDate": "2026-11-21",
                  "carrierDetails": [{"carrierName": "UPS", "trackingDetails": [{"trackingNumber": "1Z999AA10123456784"}]}]}]},
                {"ingramLineNumber": "2", "shippedQuantity": 3, "shipmentDetails": [{"shipDate": "2026-11-21",
                  "carrierDetails": [{"carrierName": "UPS", "trackingDetails": [{"trackingNumber": "1Z999AA10123456791"}]}]}]}
            ]
        })
    );
    d.stop().await;
}

#[tokio::test]
async fn a_program_failing_for_one_po_dead_letters_it_while_others_flow_and_retry_reruns_it() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let failing = mapping_with(
        "po_status",
        r#"body = '''
if .ingramPurchaseOrderNumber == "IM-BAD" then error("no carrier for " + .ingramPurchaseOrderNumber) else . end
'''"#,
    );
    set_mapping(&ws, &failing);
    let d = ws.start_against(&sim, FAST).await;
    order(&d, "E-G", "IM-GOOD").await;
    order(&d, "E-B", "IM-BAD").await;
    d.wait_written(2).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "bad.856", &asn_856_for("IM-BAD", 801));
    drop_inbox(&ws, "good.856", &asn_856_for("IM-GOOD", 802));
    // Both files are committed; the good PO's call reaches Ingram, the bad one is dead-lettered.
    let mut failed = None;
    let mut delivered = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while failed.is_none() || !delivered {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::Delivery { po, outcome, .. })) => match outcome {
                Delivery::ProgramFailed { reason } if po == "IM-BAD" => failed = Some(reason),
                Delivery::Delivered { .. } if po == "IM-GOOD" => delivered = true,
                other => panic!("unexpected outcome for {po}: {other:?}"),
            },
            Ok(_) => {}
            Err(_) => panic!("timed out: failed={failed:?} delivered={delivered}"),
        }
    }
    let reason = failed.unwrap();
    assert!(
        reason.contains("[po_status] body program failed")
            && reason.contains("no carrier for IM-BAD"),
        "{reason}"
    );
    let calls = sim.calls();
    assert_eq!(calls.len(), 1, "nothing was sent for IM-BAD: {calls:?}");
    assert!(calls[0].path.ends_with("/IM-GOOD/status"));
    let errors = admin(&ws, "GET", "/status?state=errors").await.unwrap();
    assert!(errors.contains("IM-BAD"), "{errors}");
    let show = admin(&ws, "GET", "/show/IM-BAD").await.unwrap();
    assert!(show.contains("no carrier for IM-BAD"), "{show}");
    assert!(metrics(&d)
        .await
        .contains("edi_bridge_program_errors_total{program=\"po_status\"} 1"));

    // The admin fixes the program; the reload applies it and `retry` runs it again.
    set_mapping(
        &ws,
        &mapping_with("po_status", "body = '. + {fixed: true}'"),
    );
    assert_eq!(
        admin(&ws, "POST", "/reload").await.unwrap(),
        "mapping reloaded\n"
    );
    admin(&ws, "POST", "/retry").await.unwrap();
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    assert!(calls[1].path.ends_with("/IM-BAD/status"), "{calls:?}");
    assert_eq!(calls[1].body["fixed"], true);
    assert_eq!(calls[1].body["ingramPurchaseOrderNumber"], "IM-BAD");
    d.stop().await;
}

#[tokio::test]
async fn a_failing_webhook_program_answers_500_stores_nothing_and_the_redelivery_succeeds_after_a_fix(
) {
    let ws = Workspace::new();
    set_mapping(
        &ws,
        &mapping_with(
            "webhook",
            "program = 'if .items == null then error(\"no items in this PO\") else . end'",
        ),
    );
    let d = ws.start().await;
    let (s, body) = post(&d.url(), &sample_with("E-W", "IM-W-1"), Some(&sign("E-W"))).await;
    assert_eq!(s, 500, "{body}");
    assert_eq!(body["field"], "resource[0]");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no items in this PO"),
        "{body}"
    );
    assert!(d.r().store.order("IM-W-1").unwrap().is_none());
    assert!(metrics(&d)
        .await
        .contains("edi_bridge_program_errors_total{program=\"webhook\"} 1"));

    // Not remembered as refused: once the mapping is fixed, Ingram's redelivery is accepted.
    set_mapping(&ws, edi_bridge::mapping::DEFAULT_MAPPING);
    admin(&ws, "POST", "/reload").await.unwrap();
    let (s, body) = post(&d.url(), &sample_with("E-W", "IM-W-1"), Some(&sign("E-W"))).await;
    assert_eq!(s, 200, "{body}");
    d.wait_written(1).await;
    d.stop().await;
}

#[tokio::test]
async fn a_program_that_does_not_compile_is_reported_at_its_line_and_a_reload_keeps_the_old_one() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let bad = mapping_with("po_status", "body = '''\n{\n  a: .x,\n  b: $nope\n}\n'''");
    set_mapping(&ws, &bad);
    let line = bad.lines().position(|l| l.contains("b: $nope")).unwrap() + 1;
    let err = admin(&ws, "POST", "/reload").await.unwrap_err();
    assert!(
        err.contains(&format!(
            "mapping.toml:{line}: po_status.body: undefined variable `$nope`"
        )),
        "{err}"
    );
    d.stop().await;

    let bad = mapping_with("webhook", "program = '.a | {'");
    set_mapping(&ws, &bad);
    let line = bad
        .lines()
        .position(|l| l.starts_with("program ="))
        .unwrap()
        + 1;
    let out = edi_bridge_command()
        .args(["check", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "mapping.toml:{line}: webhook.program: syntax error"
        )),
        "{stderr}"
    );
}

#[test]
fn mapping_test_passes_on_the_shipped_cases_and_fails_with_a_diff() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/tests");
    let out = edi_bridge_command()
        .args(["mapping", "test", shipped])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");

    // A copy whose expected PO Response disagrees by one value.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let expected = dir.path().join("ack.expected.json");
    let text = std::fs::read_to_string(&expected).unwrap();
    assert!(text.contains("\"SO-77812\""));
    std::fs::write(&expected, text.replace("\"SO-77812\"", "\"SO-00000\"")).unwrap();
    let out = edi_bridge_command()
        .args(["mapping", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED  ack.855"), "{stdout}");
    let changed: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("  - ") || l.starts_with("  + "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        changed,
        [
            "- \"vendorSalesOrderNumber\": \"SO-00000\"",
            "+ \"vendorSalesOrderNumber\": \"SO-77812\""
        ],
        "{stdout}"
    );
    assert!(stdout.contains("2 passed, 1 failed"), "{stdout}");
}

#[tokio::test]
async fn po850_segments_at_all_three_places_and_a_failing_one_refuses_only_its_po() {
    let ws = Workspace::new();
    set_mapping(
        &ws,
        &format!(
            "{}{}",
            edi_bridge::mapping::DEFAULT_MAPPING,
            r#"
[[po850.segments]]
place = "header"
expr = '''
if .ingramPurchaseOrderNumber == "IM-NOCODE" then error("no vendor code for " + .ingramPurchaseOrderNumber)
else ["REF", "IA", "V-" + .resellerOrderNumber] end
'''

[[po850.segments]]
place = "line"
expr = '["MSG", "LINE " + $line.ingramLineNumber + " OF " + (.lines | length | tostring)]'

[[po850.segments]]
place = "summary"
expr = '["AMT", "GV", (.lines | length | tostring)]'
"#
        ),
    );
    let d = ws.start().await;
    order(&d, "E-S1", "IM-SEG-1").await;
    let (s, body) = post(
        &d.url(),
        &sample_with("E-S2", "IM-NOCODE"),
        Some(&sign("E-S2")),
    )
    .await;
    assert_eq!(s, 500, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no vendor code for IM-NOCODE"),
        "{body}"
    );
    assert!(d.r().store.order("IM-NOCODE").unwrap().is_none());
    order(&d, "E-S3", "IM-SEG-3").await;
    d.wait_written(2).await;
    d.stop().await;
    let files = ws.files("outbox");
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        let segs = segments(&read(&f));
        let ids: Vec<&str> = segs.iter().map(|s| s[0].as_str()).collect();
        let reference = segs
            .iter()
            .position(|s| s[0] == "REF" && s[1] == "IA")
            .unwrap();
        assert!(
            segs[reference][2].starts_with("V-"),
            "{:?}",
            segs[reference]
        );
        assert_eq!(ids[reference + 1], "N1");
        let msgs: Vec<&Vec<String>> = segs
            .iter()
            .filter(|s| s[0] == "MSG" && s[1].starts_with("LINE"))
            .collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1][1], "LINE 2 OF 2");
        let se = ids.iter().position(|i| *i == "SE").unwrap();
        assert_eq!(segs[se - 1], ["AMT", "GV", "2"]);
        let st = ids.iter().position(|i| *i == "ST").unwrap();
        assert_eq!(
            segs[se][1],
            (se - st + 1).to_string(),
            "SE01 counts the extras"
        );
    }
}

/// `text` as the mapping's `[limits]` table.
fn with_limits(mapping: &str, text: &str) -> String {
    format!("{mapping}\n[limits]\n{text}\n")
}

/// A webhook program that loops for one PO number and passes every other PO through.
const LOOP_FOR_ONE: &str =
    "program = 'if .ingramPurchaseOrderNumber == \"IM-LOOP\" then (def f: f; f) else . end'";

/// A PO Response body that recurses 200,000 deep.
const DEEP: &str =
    "body = 'def f(n): if n == 0 then 0 else 1 + f(n - 1) end; . + {depth: f(200000)}'";

/// Yields to the runtime (no sleeping) until one program run is in progress in the daemon's
/// workers.
async fn until_a_program_runs(d: &TestDaemon) {
    let mapping = d.r().mapping.current();
    let sandbox = mapping
        .programs
        .runner
        .sandbox()
        .expect("the daemon runs programs in workers");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sandbox.running() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no program run started"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_looping_webhook_program_costs_its_webhook_a_500_while_the_daemon_keeps_serving_and_stops(
) {
    let ws = Workspace::new();
    set_mapping(
        &ws,
        &with_limits(
            &mapping_with("webhook", LOOP_FOR_ONE),
            "program_time_ms = 3000",
        ),
    );
    let d = ws.start().await;
    let url = d.url();
    let looping = tokio::spawn(async move {
        post(
            &url,
            &sample_with("E-LOOP", "IM-LOOP"),
            Some(&sign("E-LOOP")),
        )
        .await
    });
    until_a_program_runs(&d).await;
    // While the program loops: the health check, another webhook, the admin socket.
    assert_eq!(get(&d, "/healthz").await.status(), 200);
    order(&d, "E-OK", "IM-OK").await;
    d.wait_written(1).await;
    admin(&ws, "GET", "/status").await.unwrap();
    assert!(
        !looping.is_finished(),
        "the others were served while the program looped"
    );
    let (s, body) = looping.await.unwrap();
    assert_eq!(s, 500, "{body}");
    assert_eq!(body["field"], "resource[0]");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("[webhook] program failed")
            && error.contains("time limit ([limits] program_time_ms = 3000)"),
        "{error}"
    );
    assert!(d.r().store.order("IM-LOOP").unwrap().is_none());

    // A shutdown while a program loops still completes.
    let url = d.url();
    let again = tokio::spawn(async move {
        post(
            &url,
            &sample_with("E-LOOP2", "IM-LOOP"),
            Some(&sign("E-LOOP2")),
        )
        .await
    });
    until_a_program_runs(&d).await;
    d.stop().await;
    let _ = again.await;
}

#[tokio::test]
async fn sigterm_stops_the_daemon_while_a_webhook_program_loops() {
    let ws = Workspace::new();
    set_mapping(
        &ws,
        &with_limits(
            &mapping_with("webhook", LOOP_FOR_ONE),
            "program_time_ms = 10000",
        ),
    );
    std::fs::write(ws.path("edi-bridge.toml"), ws.config_text("")).unwrap();
    let mut child = edi_bridge_command()
        .args(["run", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = tee_stderr(&mut child, std::io::sink(), String::new(), |_| {});
    let addr = tokio::time::timeout(Duration::from_secs(30), started)
        .await
        .expect("the daemon starts")
        .unwrap()
        .expect("the daemon says where it listens");
    let url = format!("http://{addr}/webhooks/ingram/purchase-orders");
    let looping = tokio::spawn(async move {
        post(
            &url,
            &sample_with("E-LOOP", "IM-LOOP"),
            Some(&sign("E-LOOP")),
        )
        .await
    });
    let health = client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let url = format!("http://{addr}/webhooks/ingram/purchase-orders");
    let (s, body) = post(&url, &sample_with("E-OK", "IM-OK"), Some(&sign("E-OK"))).await;
    assert_eq!(s, 200, "{body}");
    assert!(!looping.is_finished());
    let pid = child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    match status {
        Ok(status) => assert!(status.unwrap().success()),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid])
                .status();
            panic!("edi-bridge ignored SIGTERM while a program looped");
        }
    }
    let _ = looping.await;
}

#[tokio::test]
async fn a_body_program_recursing_200000_deep_is_dead_lettered_naming_it_and_its_limit_and_a_restart_with_it_queued_survives(
) {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // First run: Ingram is unreachable, so the PO Response stays queued.
    let d = ws.start_with(FAST).await;
    order(&d, "E-D", "IM-PO-1001").await;
    d.wait_written(1).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", &ack_855_for("IM-PO-1001", 901));
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    d.stop().await;

    // The deep program is in force when the daemon starts again with the job queued (with time
    // enough to reach the depth limit in a release build too).
    let deep = with_limits(
        &mapping_with("po_response", DEEP),
        "program_time_ms = 10000",
    );
    let line = deep
        .lines()
        .position(|l| l.starts_with("body = 'def f(n)"))
        .unwrap()
        + 1;
    set_mapping(&ws, &deep);
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reason = loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::Delivery {
                po,
                outcome: Delivery::ProgramFailed { reason },
                ..
            })) if po == "IM-PO-1001" => break reason,
            Ok(Ok(Event::Delivery { po, outcome, .. })) => panic!("{po}: {outcome:?}"),
            Ok(_) => {}
            Err(_) => panic!("timed out waiting for the dead letter"),
        }
    };
    assert!(
        reason.contains(&format!(
            "the mapping's [po_response] body program failed at {}:{line}",
            ws.path("mapping.toml").display()
        )) && reason.contains("depth limit allows ([limits] program_stack_mib = 16)"),
        "{reason}"
    );
    assert!(sim.calls().is_empty(), "nothing was sent");
    // Still serving, and the dead letter says why.
    assert_eq!(get(&d, "/healthz").await.status(), 200);
    let show = admin(&ws, "GET", "/show/IM-PO-1001").await.unwrap();
    assert!(show.contains("program_stack_mib"), "{show}");
    order(&d, "E-D2", "IM-PO-1002").await;
    d.wait_written(2).await;
    d.stop().await;
}

#[tokio::test]
async fn reload_and_check_run_the_programs_on_the_samples_and_refuse_one_breaking_a_limit() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let bad = with_limits(
        &mapping_with("po_status", "body = 'def f: f; f'"),
        "program_time_ms = 200",
    );
    set_mapping(&ws, &bad);
    let line = bad
        .lines()
        .position(|l| l.starts_with("body = 'def f: f; f'"))
        .unwrap()
        + 1;
    let expected = format!(
        "mapping.toml:{line}: po_status.body: fails on the sample samples/ingram-po-856.edi: the mapping's [po_status] body program failed at {}:{line}: the program ran longer than its time limit ([limits] program_time_ms = 200)",
        ws.path("mapping.toml").display()
    );
    let err = admin(&ws, "POST", "/reload").await.unwrap_err();
    assert!(err.contains(&expected), "{err}");
    assert!(
        d.r().mapping.current().programs.po_status.is_identity(),
        "the old mapping stays in force"
    );
    assert_eq!(get(&d, "/healthz").await.status(), 200);
    d.stop().await;

    let out = edi_bridge_command()
        .args(["check", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains(&expected), "{stderr}");

    // An exploding webhook program: refused by its memory limit.
    let bad = with_limits(
        &mapping_with("webhook", "program = '[range(1e8)] | {}'"),
        "program_time_ms = 10000\nprogram_memory_mib = 32",
    );
    set_mapping(&ws, &bad);
    let out = edi_bridge_command()
        .args(["check", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("webhook.program: fails on the sample samples/ingram-po-webhook.json")
            && stderr.contains("more memory than its limit ([limits] program_memory_mib = 32)"),
        "{stderr}"
    );

    // The shipped mapping passes.
    set_mapping(&ws, edi_bridge::mapping::DEFAULT_MAPPING);
    let out = edi_bridge_command()
        .args(["check", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn translate_and_mapping_test_stop_a_looping_or_exploding_program_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/ingram-po-webhook.json"
    );
    for (program, limits, expected) in [
        (
            "program = 'def f: f; f'",
            "program_time_ms = 300",
            "time limit ([limits] program_time_ms = 300)",
        ),
        (
            "program = '[range(1e8)] | {}'",
            "program_time_ms = 10000\nprogram_memory_mib = 32",
            "memory than its limit ([limits] program_memory_mib = 32)",
        ),
    ] {
        let mapping = dir.path().join("m.toml");
        std::fs::write(
            &mapping,
            with_limits(&mapping_with("webhook", program), limits),
        )
        .unwrap();
        let out = edi_bridge_command()
            .arg("translate")
            .arg(sample)
            .arg("--mapping")
            .arg(&mapping)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{program}: {stderr}");

        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/tests");
        let out = edi_bridge_command()
            .args(["mapping", "test", shipped, "--mapping"])
            .arg(&mapping)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains(expected), "{program}: {stdout}");
    }
}
