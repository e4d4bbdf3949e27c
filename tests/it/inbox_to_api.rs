//! Inbox files → Ingram API calls, against the project's emulator on 127.0.0.1:0: exact bodies
//! and headers, per-PO order, 997s back to the ERP, quirky files, garbage, duplicates, fault
//! sequences, dead letters, and restarts with jobs pending.

use std::time::Duration;

use edi_bridge::events::Outcome;
use edi_bridge::sim::Fault;
use serde_json::json;

use crate::support::*;

const ACK: &str = include_str!("../../samples/ingram-po-855.edi");
const ASN: &str = include_str!("../../samples/ingram-po-856.edi");
const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

async fn with_order(ws: &Workspace, d: &TestDaemon) {
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let _ = ws;
}

#[tokio::test]
async fn ack_then_ship_notice_reach_ingram_in_order_with_exact_bodies() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&ws, &d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    drop_inbox(&ws, "asn.856", ASN.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "asn.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0].path,
        "/vendors/v1/purchaseorders/IM-PO-1001/response"
    );
    assert_eq!(
        calls[1].path,
        "/vendors/v1/purchaseorders/IM-PO-1001/status"
    );
    assert_eq!(
        calls[0].body,
        json!({
            "ingramPurchaseOrderNumber": "IM-PO-1001",
            "vendorSalesOrderNumber": "SO-77812",
            "acknowledgementDate": "2026-11-21",
            "acknowledgementType": "accepted_with_changes",
            "lines": [
                {"ingramLineNumber": "1", "vendorPartNumber": "ABC-123", "ingramPartNumber": "7HW123", "quantityOrdered": 10,
                 "quantityAccepted": 8, "quantityBackordered": 2, "quantityRejected": 0, "unitPrice": "123.45",
                 "lineStatus": "backordered", "estimatedShipDate": "2026-11-25"},
                {"ingramLineNumber": "2", "vendorPartNumber": "XYZ-9", "ingramPartNumber": "7HW456", "quantityOrdered": 3,
                 "quantityAccepted": 3, "quantityBackordered": 0, "quantityRejected": 0, "unitPrice": "19.90",
                 "lineStatus": "accepted", "estimatedShipDate": "2026-11-25"}
            ]
        })
    );
    assert_eq!(
        calls[1].body["orderStatus"], "partially_shipped",
        "2 of line 1 are backordered"
    );
    assert_eq!(
        calls[1].body["shipments"][0]["packages"][1]["trackingNumber"],
        "1Z999AA10123456791"
    );
    assert_eq!(
        calls[1].body["shipments"][0]["packages"][0]["lines"][0]["serialNumbers"],
        json!(["SN001", "SN002"])
    );
    for c in &calls {
        assert_eq!(c.status, 200);
        assert_eq!(c.header("im-partnerid"), Some("US123456"));
        assert_eq!(c.header("im-countrycode"), Some("US"));
        assert_eq!(c.header("im-senderid"), Some("ACME-EDI"));
        let corr = c.header("im-correlationid").unwrap();
        assert!(!corr.is_empty() && corr.len() <= 32, "{corr}");
        assert_eq!(c.header("content-type"), Some("application/json"));
    }
    assert_ne!(
        calls[0].header("im-correlationid"),
        calls[1].header("im-correlationid")
    );
    assert_eq!(sim.token_count(), 1, "one token for both calls");

    // Files archived unchanged; one 997 per inbound group in the outbox.
    let archived: Vec<_> = walk(&ws.path("archive/inbound"), true);
    assert_eq!(archived.len(), 2);
    assert!(archived
        .iter()
        .any(|p| std::fs::read(p).unwrap() == ACK.as_bytes()));
    let acks = || -> Vec<std::path::PathBuf> {
        ws.files("outbox")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "997"))
            .collect()
    };
    d.until("two 997s", || acks().len() >= 2).await;
    let acks = acks();
    assert_eq!(acks.len(), 2, "{acks:?}");
    let text = String::from_utf8(std::fs::read(&acks[0]).unwrap()).unwrap();
    assert!(
        text.contains("ST*997*") && text.contains("AK9*A*1*1*1"),
        "{text}"
    );
    assert!(
        text.starts_with("ISA*00*          *00*          *ZZ*INGRAMMICRO    *ZZ*VENDORERP      *"),
        "addressed back to the ERP: {text}"
    );

    // The PO's lifecycle advanced.
    wait_until(&d, |o| {
        o.inbound.statuses_sent == 1 && o.inbound.response_sent_at.is_some()
    })
    .await;
    let o = d.r().store.order("IM-PO-1001").unwrap().unwrap();
    assert_eq!(o.inbound.shipped.get("1"), Some(&8));
    d.stop().await;
}

async fn wait_until(d: &TestDaemon, f: impl Fn(&edi_bridge::store::records::OrderRecord) -> bool) {
    d.until("the PO state", || {
        d.r()
            .store
            .order("IM-PO-1001")
            .unwrap()
            .is_some_and(|o| f(&o))
    })
    .await;
}

/// The sample 855 rewritten with other delimiters / terminators / layout (as replacements,
/// BAK01 05: the same original again would be a duplicate document).
fn quirky() -> Vec<(&'static str, Vec<u8>)> {
    let replace = ACK.replace("BAK*00*", "BAK*05*");
    let ack = replace.as_str();
    let pipes = ack.replace('*', "|").replace("000000501", "000000502");
    let mut bom_cr = vec![0xEF, 0xBB, 0xBF];
    bom_cr.extend(
        ack.replace("~\n", "\r")
            .replace("000000501", "000000503")
            .replace('~', "\r")
            .bytes(),
    );
    let flat: String = ack.replace("000000501", "000000504").replace('\n', "");
    let wrapped: String = flat
        .as_bytes()
        .chunks(80)
        .map(|c| String::from_utf8_lossy(c).into_owned() + "\n")
        .collect();
    let two = format!(
        "{}{}",
        ack.replace("000000501", "000000505"),
        ack.replace("000000501", "000000506")
    );
    let v5010 = ACK
        .replace("000000501", "000000507")
        .replace("*U*00401*", "*^*00501*")
        .replace("*X*004010~", "*X*005010~");
    vec![
        ("pipes.855", pipes.into_bytes()),
        ("bom-cr.855", bom_cr),
        ("wrapped.855", wrapped.into_bytes()),
        ("two-isa.855", two.into_bytes()),
        ("v5010.855", v5010.into_bytes()),
    ]
}

#[tokio::test]
async fn quirky_files_are_all_delivered() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&ws, &d).await;
    let mut rx = d.r().events.subscribe();
    let files = quirky();
    let mut expected_jobs = 0;
    for (name, bytes) in &files {
        drop_inbox(&ws, name, bytes);
        match d.wait_inbox(&mut rx, name).await {
            Outcome::Archived { jobs, .. } => expected_jobs += jobs,
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(expected_jobs, 6, "two-isa carries two 855s");
    let calls = sim.wait_for_calls(6, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 6);
    assert!(calls
        .iter()
        .all(|c| c.body["acknowledgementType"] == "accepted_with_changes" && c.status == 200));
    d.stop().await;
}

#[tokio::test]
async fn garbage_and_bad_codes_go_to_error_with_a_positioned_reason_and_the_daemon_carries_on() {
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
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "bad-code.855",
        ACK.replace("ACK*IB", "ACK*ZQ").as_bytes(),
    );
    let Outcome::Rejected { reason, moved } = d.wait_inbox(&mut rx, "bad-code.855").await else {
        panic!("not rejected")
    };
    assert!(
        reason.contains("ack01 'ZQ'")
            && reason.contains("segment ACK")
            && reason.contains("element 01"),
        "{reason}"
    );
    let reason_file = std::fs::read_to_string(format!("{}.reason.txt", moved.display())).unwrap();
    assert!(reason_file.contains("segment ACK"), "{reason_file}");
    drop_inbox(
        &ws,
        "count.855",
        ACK.replace("SE*9*0001", "SE*7*0001").as_bytes(),
    );
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "count.855").await else {
        panic!("not rejected")
    };
    assert!(reason.contains("SE") && reason.contains("byte"), "{reason}");
    drop_inbox(&ws, "noise.bin", &[0u8, 159, 146, 150, 7, 8, 255]);
    // Garbage cannot start X12: it goes to error at once, not after the incomplete timeout.
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "noise.bin").await else {
        panic!("not rejected")
    };
    assert!(reason.contains("not an X12 file"), "{reason}");
    // The daemon still works.
    drop_inbox(&ws, "good.855", ACK.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "good.855").await,
        Outcome::Archived { .. }
    ));
    assert_eq!(
        sim.wait_for_calls(1, Duration::from_secs(20)).await.len(),
        1
    );
    d.stop().await;
    let errors: Vec<String> = ws.names("error");
    for n in [
        "bad-code.855",
        "bad-code.855.reason.txt",
        "count.855",
        "noise.bin",
        "noise.bin.reason.txt",
    ] {
        assert!(errors.contains(&n.to_string()), "{n} in {errors:?}");
    }
}

#[tokio::test]
async fn a_repeated_interchange_makes_no_second_call() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "a.855", ACK.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "a.855").await,
        Outcome::Archived { .. }
    ));
    drop_inbox(&ws, "again.855", ACK.as_bytes());
    let Outcome::Duplicate { reason, moved } = d.wait_inbox(&mut rx, "again.855").await else {
        panic!("not a duplicate")
    };
    assert!(reason.contains("a.855"), "{reason}");
    assert!(moved.starts_with(ws.path("archive/duplicates")));
    assert_eq!(
        sim.wait_for_calls(1, Duration::from_secs(20)).await.len(),
        1
    );
    d.stop().await;
    assert_eq!(sim.calls().len(), 1);
}

#[tokio::test]
async fn fault_sequences_end_in_delivery_in_order_and_400_is_dead_lettered() {
    let (sim, _t) = sim(|c| {
        c.faults = vec![
            Fault::Status(503),
            Fault::Status(503),
            Fault::Status(429),
            Fault::Status(401),
        ]
    })
    .await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&ws, &d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    d.wait_inbox(&mut rx, "ack.855").await;
    drop_inbox(&ws, "asn.856", ASN.as_bytes());
    d.wait_inbox(&mut rx, "asn.856").await;
    let all = sim.wait_for_calls(6, Duration::from_secs(30)).await;
    let ok: Vec<_> = all.iter().filter(|c| c.status == 200).collect();
    assert_eq!(ok.len(), 2, "{all:?}");
    assert!(
        ok[0].path.ends_with("/response") && ok[1].path.ends_with("/status"),
        "855 before 856"
    );
    let statuses: Vec<u16> = all.iter().map(|c| c.status).collect();
    assert_eq!(&statuses[..4], &[503, 503, 429, 401]);
    let first = all[0].header("im-correlationid");
    assert!(
        all[..5]
            .iter()
            .all(|c| c.header("im-correlationid") == first),
        "retries keep the correlation id"
    );
    assert!(sim.token_count() >= 2, "401 refreshed the token");

    // A refusal is dead-lettered, not retried.
    sim.push_faults(vec![Fault::Status(400)]);
    drop_inbox(
        &ws,
        "again.855",
        ACK.replace("000000501", "000000777")
            .replace("BAK*00*", "BAK*05*")
            .as_bytes(),
    );
    d.wait_inbox(&mut rx, "again.855").await;
    d.until("a dead letter", || d.r().store.dead_count() == 1)
        .await;
    assert_eq!(d.r().store.job_count(), 0);
    let dead = d.r().store.dead_letters().next().unwrap().unwrap();
    assert!(dead.reason.contains("400"), "{}", dead.reason);
    d.stop().await;
}

#[tokio::test]
async fn ingram_down_then_restart_delivers_each_job_once() {
    let (sim, _t) = sim(|_| {}).await;
    sim.set_down(true);
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    d.wait_inbox(&mut rx, "ack.855").await;
    sim.wait_for_calls(1, Duration::from_secs(20)).await;
    assert_eq!(d.r().store.job_count(), 1);
    d.stop().await;
    sim.set_down(false);
    let d = ws.start_against(&sim, FAST).await;
    d.until("the queue to drain", || d.r().store.job_count() == 0)
        .await;
    d.stop().await;
    let ok = sim.calls().into_iter().filter(|c| c.status == 200).count();
    assert_eq!(ok, 1, "delivered exactly once");
}

#[tokio::test]
async fn a_slow_writer_is_waited_for() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 30\n",
        )
        .await;
    let mut rx = d.r().events.subscribe();
    // Written in place, in two parts: the first part has no IEA and must not be taken.
    let (head, tail) = ACK.split_at(ACK.find("GE*").unwrap());
    std::fs::write(ws.path("inbox/slow.855"), head).unwrap();
    let early = tokio::time::timeout(
        Duration::from_millis(1500),
        d.wait_inbox(&mut rx, "slow.855"),
    )
    .await;
    assert!(early.is_err(), "taken before it was complete");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(ws.path("inbox/slow.855"))
        .unwrap();
    std::io::Write::write_all(&mut f, tail.as_bytes()).unwrap();
    drop(f);
    assert!(matches!(
        d.wait_inbox(&mut rx, "slow.855").await,
        Outcome::Archived { .. }
    ));
    d.stop().await;
}

/// The scanner reads the inbox, and inotify reports that read as an event on the inbox: a
/// watcher that woke on every event would scan without end while nothing happens.
#[tokio::test]
async fn the_inbox_scanner_does_not_wake_itself() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws
        .start_against(&sim, "[inbox]\nsettle_ms = 50\nrescan_secs = 3600\n")
        .await;
    with_order(&ws, &d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack.855").await,
        Outcome::Archived { .. }
    ));
    let text = metrics(&d).await;
    let scans: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("edi_bridge_inbox_scans_total "))
        .expect("scan counter in /metrics")
        .parse()
        .unwrap();
    // At start, on the new file, after it settled, after it was claimed: a handful. The
    // self-waking loop made thousands in the same time.
    assert!((2..=20).contains(&scans), "{scans} inbox scans");
    d.stop().await;
}

#[tokio::test]
async fn one_856_for_two_pos_makes_one_status_call_each() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    for (id, po) in [("E-A", "IM-PO-1001"), ("E-B", "IM-PO-2002")] {
        let (s, _) = post(&d.url(), &sample_with(id, po), Some(&sign(id))).await;
        assert_eq!(s, 200);
    }
    d.wait_written(2).await;
    // The sample's second pack becomes a second order: HL 7 (O, PO 2002) under the shipment,
    // and the pack that held line 2 moves under it, listed after its item to prove the tree
    // is built from HL parents, not from segment order.
    let two = ASN
        .replace("HL*5*2*P*1~", "HL*5*7*P*1~")
        .replace("CTT*6~", "HL*7*1*O*1~\nPRF*IM-PO-2002~\nCTT*7~")
        .replace("SE*28*0001", "SE*30*0001");
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "two.856", two.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "two.856").await,
        Outcome::Archived { jobs: 2, .. }
    ));
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    let mut paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "/vendors/v1/purchaseorders/IM-PO-1001/status",
            "/vendors/v1/purchaseorders/IM-PO-2002/status"
        ]
    );
    let second = calls.iter().find(|c| c.path.contains("2002")).unwrap();
    assert_eq!(
        second.body["shipments"][0]["packages"][0]["lines"][0]["ingramLineNumber"],
        "2"
    );
    assert_eq!(
        second.body["shipments"][0]["carrierCode"], "UPSN",
        "shipment context from the S level"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_dead_lettered_response_holds_its_status_back_until_retry_sends_both_in_order() {
    let (sim, _t) = sim(|c| c.faults = vec![Fault::Status(400)]).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&ws, &d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    d.wait_inbox(&mut rx, "ack.855").await;
    d.until("the 855's call dead-lettered", || {
        d.r().store.dead_count() == 1
    })
    .await;
    drop_inbox(&ws, "asn.856", ASN.as_bytes());
    d.wait_inbox(&mut rx, "asn.856").await;
    // The 856's call waits behind the dead letter, and says so.
    let store = &d.r().store;
    let blocked = store.blocked_jobs().unwrap();
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    let shown =
        edi_bridge::admin::ops::show(store, "IM-PO-1001", &ws.path("edi-bridge.toml")).unwrap();
    assert!(
        shown.contains("blocked: waits for the dead-lettered PO Response (855)"),
        "{shown}"
    );
    let status =
        edi_bridge::admin::ops::status(store, &["default".to_string()], &Default::default())
            .unwrap();
    assert!(
        status.contains("1 blocked behind a dead letter"),
        "{status}"
    );
    // Retry: the response goes first, then the status.
    let out = edi_bridge::admin::request(&ws.path("state"), "POST", "/retry")
        .await
        .expect("the daemon answers on its admin socket")
        .unwrap();
    assert!(out.contains("1 job(s) put back"), "{out}");
    let calls = sim.wait_for_calls(3, Duration::from_secs(20)).await;
    let seen: Vec<(bool, u16)> = calls
        .iter()
        .map(|c| (c.path.ends_with("/response"), c.status))
        .collect();
    assert_eq!(seen, [(true, 400), (true, 200), (false, 200)], "{calls:?}");
    d.stop().await;
}
