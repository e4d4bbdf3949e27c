//! What real partners send (issue 13), end to end through the daemon against the emulator:
//! wrong envelope counts processed and answered with a 997 "E" (and rejected again with
//! `strict_envelope = true`), bare ST..SE files processed without a 997, duplicate control
//! numbers inside one file tolerated while the cross-file duplicate check holds, a TA1 from the
//! ERP recorded against our 850, blank HL02 levels tied to their PO, causes named in reasons,
//! a 997 in the inbound group's version, and the extra 855 fields in the PO Response body.

use std::time::Duration;

use edi_bridge::events::Outcome;
use edi_bridge::store::records::{ErpAck, Outbound850};
use serde_json::json;

use crate::support::*;

const ACK: &str = include_str!("../../samples/ingram-po-855.edi");
const ASN: &str = include_str!("../../samples/ingram-po-856.edi");
const FAST: &str = "[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

/// Posts the sample webhook (PO IM-PO-1001) and waits for its 850.
async fn with_order(d: &TestDaemon) {
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
}

/// The 997 files in the outbox, oldest name first.
fn acks_997(ws: &Workspace) -> Vec<String> {
    let mut v: Vec<_> = ws
        .files("outbox")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "997"))
        .collect();
    v.sort();
    v.iter()
        .map(|p| String::from_utf8(std::fs::read(p).unwrap()).unwrap())
        .collect()
}

/// Only the ST..SE lines of an enveloped sample.
fn bare(enveloped: &str) -> String {
    enveloped
        .lines()
        .filter(|l| {
            !["ISA*", "GS*", "GE*", "IEA*"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn an_856_with_a_wrong_se01_is_processed_and_answered_with_997_e() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "asn.856",
        ASN.replace("SE*28*0001", "SE*27*0001").as_bytes(),
    );
    assert!(
        matches!(
            d.wait_inbox(&mut rx, "asn.856").await,
            Outcome::Archived { jobs: 1, .. }
        ),
        "a wrong count is a warning: the file is processed"
    );
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    assert_eq!(
        calls[0].path,
        "/vendors/v1/purchaseorders/IM-PO-1001/status"
    );
    assert_eq!(
        calls[0].body["shipments"][0]["packages"][0]["lines"][0]["serialNumbers"],
        json!(["SN001", "SN002"])
    );
    d.until("a 997", || !acks_997(&ws).is_empty()).await;
    let ack = acks_997(&ws).remove(0);
    assert!(ack.contains("AK2*856*0001~"), "{ack}");
    assert!(
        ack.contains("AK5*E*4~"),
        "AK5: accepted with errors, 4 = segment count: {ack}"
    );
    assert!(ack.contains("AK9*E*1*1*1~"), "{ack}");
    d.stop().await;
}

#[tokio::test]
async fn strict_envelope_restores_the_rejection() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    std::fs::write(
        ws.path("mapping.toml"),
        edi_bridge::mapping::DEFAULT_MAPPING
            .replace("strict_envelope = false", "strict_envelope = true"),
    )
    .unwrap();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(
        &ws,
        "asn.856",
        ASN.replace("SE*28*0001", "SE*27*0001").as_bytes(),
    );
    match d.wait_inbox(&mut rx, "asn.856").await {
        Outcome::Rejected { reason, .. } => {
            assert!(reason.contains("se_count_mismatch"), "{reason}");
            assert!(
                reason.contains("se01 says 27 segments, counted 28"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    d.until("a 997", || !acks_997(&ws).is_empty()).await;
    let ack = acks_997(&ws).remove(0);
    assert!(
        ack.contains("AK5*R*4~") && ack.contains("AK9*R*1*1*0~"),
        "{ack}"
    );
    assert!(sim.calls().is_empty(), "no call to Ingram");
    d.stop().await;
}

#[tokio::test]
async fn bare_855s_reach_ingram_without_a_997_or_a_duplicate() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    // SCH dates the first line, ACK29 says why the second is rejected.
    let text = bare(ACK)
        .replace(
            "ACK*IA*8*EA*068*20261125~",
            "ACK*IA*8*EA~\nSCH*8*EA***068*20261127~",
        )
        .replace(
            "ACK*IA*3*EA*068*20261125~",
            &format!("ACK*IR*3*EA{}CW~", "*".repeat(26)),
        )
        .replace("SE*9*0001", "SE*10*0001");
    drop_inbox(&ws, "bare-1.855", text.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "bare-1.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    // The same sets again in another file: bare sets have no interchange number, so this is
    // no duplicate interchange (and two sets with the same ST02 are no duplicate either). As
    // replacements (BAK01 05) they are no duplicate documents either.
    let replaced = text.replace("BAK*00*", "BAK*05*");
    let twice = format!("{replaced}{replaced}");
    drop_inbox(&ws, "bare-2.855", twice.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "bare-2.855").await,
        Outcome::Archived { jobs: 2, .. }
    ));
    let calls = sim.wait_for_calls(3, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(
        calls[0].path,
        "/vendors/v1/purchaseorders/IM-PO-1001/response"
    );
    let lines = &calls[0].body["lines"];
    assert_eq!(lines[0]["estimatedShipDate"], "2026-11-27", "from SCH");
    assert_eq!(lines[1]["lineStatus"], "rejected");
    assert_eq!(lines[1]["rejectReason"], "CW", "from ACK29");
    // An enveloped file after them: its 997 is the only one (the queue is in order).
    drop_inbox(
        &ws,
        "enveloped.855",
        ACK.replace("BAK*00*", "BAK*05*").as_bytes(),
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "enveloped.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    d.until("a 997", || !acks_997(&ws).is_empty()).await;
    let acks = acks_997(&ws);
    assert_eq!(acks.len(), 1, "no 997 for bare sets: {acks:?}");
    assert!(acks[0].contains("AK1*PR*501~"), "{}", acks[0]);
    d.stop().await;
}

#[tokio::test]
async fn repeated_control_numbers_in_one_file_are_warnings_and_duplicates_across_files_still_caught(
) {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    // Two interchanges with one ISA13; the second holds two groups with one GS06.
    let second_group: String = ACK
        .lines()
        .filter(|l| !l.starts_with("ISA*") && !l.starts_with("IEA*"))
        .map(|l| format!("{l}\n"))
        .collect();
    // Replacements (BAK01 05): the same original twice would be a duplicate document.
    let doubled = ACK
        .replace(
            "IEA*1*000000501~",
            &format!("{second_group}IEA*2*000000501~"),
        )
        .replace("BAK*00*", "BAK*05*");
    let file = format!("{ACK}{doubled}");
    drop_inbox(&ws, "twice.855", file.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "twice.855").await,
        Outcome::Archived { jobs: 3, .. }
    ));
    drop_inbox(&ws, "again.855", ACK.as_bytes());
    match d.wait_inbox(&mut rx, "again.855").await {
        Outcome::Duplicate { reason, .. } => assert!(reason.contains("twice.855"), "{reason}"),
        other => panic!("{other:?}"),
    }
    d.until("three 997s", || acks_997(&ws).len() >= 3).await;
    let acks = acks_997(&ws);
    assert!(
        acks.iter().any(|a| a.contains("AK9*E*1*1*1*19~")),
        "the repeated GS06 is noted (716 code 19): {acks:?}"
    );
    d.stop().await;
}

#[tokio::test]
async fn a_ta1_rejecting_our_850_is_an_error_on_the_po_and_an_alert() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let isa13 = match d.r().store.order("IM-PO-1001").unwrap().unwrap().outbound {
        Outbound850::Written { envelope, .. } => envelope.isa13,
        other => panic!("{other:?}"),
    };
    let mut rx = d.r().events.subscribe();
    let isa = ACK
        .lines()
        .next()
        .unwrap()
        .replace("000000501", "000000777");
    let ta1 = format!("{isa}\nTA1*{isa13:09}*261121*0900*R*024~\nIEA*0*000000777~\n");
    drop_inbox(&ws, "ta1.edi", ta1.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "ta1.edi").await,
        Outcome::Archived { jobs: 0, .. }
    ));
    let o = d.r().store.order("IM-PO-1001").unwrap().unwrap();
    assert_eq!(o.inbound.erp_997, Some(ErpAck::InterchangeRejected));
    assert!(
        o.history
            .iter()
            .any(|h| h.what.contains("TA1 from ERP") && h.what.contains("TA105 024")),
        "{:?}",
        o.history
    );
    let m = metrics(&d).await;
    assert!(m.contains("edi_bridge_850_rejected_by_erp 1"), "{m}");
    assert!(sim.calls().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn blank_hl02_levels_are_tied_to_their_po() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    let mut text = ASN.to_string();
    for (from, to) in [
        ("HL*2*1*O", "HL*2**O"),
        ("HL*3*2*P", "HL*3**P"),
        ("HL*4*3*I", "HL*4**I"),
        ("HL*5*2*P", "HL*5**P"),
        ("HL*6*5*I", "HL*6**I"),
    ] {
        text = text.replace(from, to);
    }
    drop_inbox(&ws, "blank.856", text.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "blank.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    let packages = &calls[0].body["shipments"][0]["packages"];
    assert_eq!(packages[1]["trackingNumber"], "1Z999AA10123456791");
    assert_eq!(packages[0]["lines"][0]["quantityShipped"], 8);
    assert_eq!(packages[1]["lines"][0]["ingramLineNumber"], "2");
    d.stop().await;
}

#[tokio::test]
async fn reasons_name_the_cause_and_997s_answer_in_the_groups_version() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    // A mangled ISA.
    drop_inbox(&ws, "mangled.855", &ACK.as_bytes()[1..]);
    match d.wait_inbox(&mut rx, "mangled.855").await {
        Outcome::Rejected { reason, .. } => assert!(
            reason
                .contains("the file does not start with an ISA interchange header (found `SA*00*"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    // `$` declared, `~` used from the PO1 on.
    let mut mixed = ACK.replace('~', "$");
    let at = mixed.find("PO1*2").unwrap();
    let tail = mixed[at..].replace('$', "~");
    mixed.replace_range(at.., &tail);
    drop_inbox(&ws, "mixed.855", mixed.as_bytes());
    match d.wait_inbox(&mut rx, "mixed.855").await {
        Outcome::Rejected { reason, .. } => assert!(
            reason.contains("the segment terminator changes from `$` to `~` at byte"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    // A 005010 group, with a line break inside BAK08: answered in 005010.
    let v5 = ACK
        .replace("*U*00401*", "*^*00501*")
        .replace("*X*004010~", "*X*005010~")
        .replace("SO-77812", "SO\n77812");
    drop_inbox(&ws, "v5.855", v5.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "v5.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    assert_eq!(calls[0].body["vendorSalesOrderNumber"], "SO 77812");
    let v5 = || {
        acks_997(&ws)
            .into_iter()
            .find(|a| a.contains("AK1*PR*501*005010~"))
    };
    d.until("the 997 of the 005010 group", || v5().is_some())
        .await;
    let v5_ack = v5().unwrap();
    assert!(v5_ack.contains("*00501*"), "{v5_ack}");
    assert!(v5_ack.contains("*X*005010~"), "{v5_ack}");
    d.stop().await;
}

#[test]
fn inspect_exits_0_on_warnings_shows_ta1_and_names_a_missing_isa() {
    let ws = Workspace::new();
    let run = |name: &str, content: &[u8]| {
        let path = ws.path(name);
        std::fs::write(&path, content).unwrap();
        let out = edi_bridge_command()
            .arg("inspect")
            .arg(&path)
            .output()
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.code(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, json, stderr) = run("wrong-se01.856", ASN.replace("SE*28*", "SE*27*").as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["diagnostics"][0]["severity"], "warning", "{json}");
    let (code, json, stderr) = run("bare.855", bare(ACK).as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["typed"][0]["kind"], "855");
    let isa = ACK.lines().next().unwrap();
    let ta1 = format!("{isa}\nTA1*000000042*261121*0900*R*024~\nIEA*0*000000501~\n");
    let (code, json, stderr) = run("ta1.edi", ta1.as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(json["typed"][0]["kind"], "TA1");
    assert_eq!(json["typed"][0]["value"]["ack_code"], "R");
    assert_eq!(json["typed"][0]["value"]["note_code"], "024");
    let (code, _, stderr) = run("mangled.855", &ACK.as_bytes()[1..]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the file does not start with an ISA interchange header (found `SA*00*"),
        "{stderr}"
    );
}

#[tokio::test]
async fn standard_segments_are_known_and_only_unknown_ones_are_noted_in_the_997() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    // CLD and TAX are X12 segments (dictionary): no note. ZQX is none: AK3 code 1, AK5 "E".
    let known = ASN
        .replace("SN1*1*8*EA~", "SN1*1*8*EA~\nCLD*1*8*CTN~\nTAX*EX-1~")
        .replace("SE*28*0001", "SE*30*0001");
    drop_inbox(&ws, "known.856", known.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "known.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let unknown = ASN
        .replace("SN1*1*8*EA~", "SN1*1*8*EA~\nZQX*1~")
        .replace("SE*28*0001", "SE*29*0001")
        .replace("000000601", "000000602")
        .replace("ASN-5501", "ASN-5502");
    drop_inbox(&ws, "unknown.856", unknown.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "unknown.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    d.until("two 997s", || acks_997(&ws).len() >= 2).await;
    let acks = acks_997(&ws);
    assert!(
        acks.iter()
            .any(|a| a.contains("AK5*A~") && a.contains("AK9*A*1*1*1~")),
        "{acks:?}"
    );
    assert!(
        acks.iter()
            .any(|a| a.contains("AK3*ZQX*18**1~") && a.contains("AK5*E*5~")),
        "{acks:?}"
    );
    d.stop().await;
}

/// The sample with its ISA13/GS06 replaced by `n` (a new envelope for the same documents).
fn envelope(text: &str, isa13: &str, gs06: &str, n: u32) -> String {
    text.replace(isa13, &format!("{n:09}"))
        .replace(&format!("*{gs06}*X*"), &format!("*{n}*X*"))
        .replace(&format!("GE*1*{gs06}~"), &format!("GE*1*{n}~"))
}

#[tokio::test]
async fn a_bare_855_without_bak09_takes_the_date_it_was_received() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    let text = bare(ACK).replace("*SO-77812*20261121~", "*SO-77812~");
    assert!(!text.contains("20261121~"), "{text}");
    let day = || {
        time::OffsetDateTime::now_utc()
            .date()
            .format(time::macros::format_description!("[year]-[month]-[day]"))
            .unwrap()
    };
    let before = day();
    drop_inbox(&ws, "no-bak09.855", text.as_bytes());
    let outcome = d.wait_inbox(&mut rx, "no-bak09.855").await;
    assert!(
        matches!(outcome, Outcome::Archived { jobs: 1, .. }),
        "{outcome:?}"
    );
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    let got = calls[0].body["acknowledgementDate"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(got == before || got == day(), "{got}");
    d.stop().await;
}

#[tokio::test]
async fn documents_sent_twice_are_sent_once() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ack.855", ACK.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    // The same original 855 (BAK01 00, same PO) in a new envelope: no call.
    drop_inbox(
        &ws,
        "ack-again.855",
        envelope(ACK, "000000501", "501", 502).as_bytes(),
    );
    match d.wait_inbox(&mut rx, "ack-again.855").await {
        Outcome::Duplicate { reason, moved } => {
            assert!(
                reason.contains("IM-PO-1001") && reason.contains("855"),
                "{reason}"
            );
            assert!(
                moved.starts_with(ws.path("archive/duplicates")),
                "{moved:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A replacement (BAK01 05) is sent.
    drop_inbox(
        &ws,
        "ack-replace.855",
        envelope(ACK, "000000501", "501", 503)
            .replace("BAK*00*", "BAK*05*")
            .as_bytes(),
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "ack-replace.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    // The same for an 856: the original shipment again (BSN01 00, same BSN02) is no call, and
    // twice in one file it is queued once.
    let twice = envelope(ASN, "000000601", "601", 602)
        .replace(
            "SE*28*0001~\n",
            &format!(
                "SE*28*0001~\n{}",
                bare(ASN)
                    .replace("ST*856*0001", "ST*856*0002")
                    .replace("SE*28*0001", "SE*28*0002")
            ),
        )
        .replace("GE*1*602~", "GE*2*602~");
    drop_inbox(&ws, "asn.856", twice.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "asn.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    drop_inbox(
        &ws,
        "asn-again.856",
        envelope(ASN, "000000601", "601", 604).as_bytes(),
    );
    match d.wait_inbox(&mut rx, "asn-again.856").await {
        Outcome::Duplicate { reason, .. } => {
            assert!(reason.contains("ASN-5501"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    drop_inbox(
        &ws,
        "asn-replace.856",
        envelope(ASN, "000000601", "601", 605)
            .replace("BSN*00*", "BSN*05*")
            .as_bytes(),
    );
    assert!(matches!(
        d.wait_inbox(&mut rx, "asn-replace.856").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    sim.wait_for_calls(4, Duration::from_secs(20)).await;
    d.stop().await;
    let calls = sim.calls();
    let kinds: Vec<&str> = calls
        .iter()
        .map(|c| {
            if c.path.ends_with("/response") {
                "855"
            } else {
                "856"
            }
        })
        .collect();
    assert_eq!(kinds, ["855", "855", "856", "856"], "{calls:?}");
}

#[tokio::test]
async fn a_997_says_what_the_bridge_did_with_each_set() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    with_order(&d).await;
    let mut rx = d.r().events.subscribe();
    // No BAK: to error/, and the 997 rejects the set naming the missing segment.
    let no_bak = envelope(ACK, "000000501", "501", 511)
        .replace("BAK*00*AC*IM-PO-1001*20261120****SO-77812*20261121~\n", "")
        .replace("SE*9*0001", "SE*8*0001");
    drop_inbox(&ws, "no-bak.855", no_bak.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "no-bak.855").await,
        Outcome::Rejected { .. }
    ));
    // PO102 `TEN`: an error with its position, to error/, and the 997 names element and value.
    let ten = envelope(ACK, "000000501", "501", 512).replace("PO1*1*10*EA", "PO1*1*TEN*EA");
    drop_inbox(&ws, "ten.855", ten.as_bytes());
    match d.wait_inbox(&mut rx, "ten.855").await {
        Outcome::Rejected { reason, .. } => {
            assert!(reason.contains("po102 'TEN' is not a number"), "{reason}");
            assert!(
                reason.contains("segment PO1") && reason.contains("element 02"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // An unknown ACK01 code: the translator refuses it, so does the 997.
    let code = envelope(ACK, "000000501", "501", 513).replace("ACK*IB", "ACK*ZQ");
    drop_inbox(&ws, "code.855", code.as_bytes());
    assert!(matches!(
        d.wait_inbox(&mut rx, "code.855").await,
        Outcome::Rejected { .. }
    ));
    d.until("three 997s", || acks_997(&ws).len() >= 3).await;
    let acks = acks_997(&ws);
    let of = |gs06: &str| {
        acks.iter()
            .find(|a| a.contains(&format!("AK1*PR*{gs06}~")))
            .unwrap_or_else(|| panic!("no 997 for {gs06}: {acks:?}"))
            .clone()
    };
    let a = of("511");
    assert!(
        a.contains("AK3*BAK*2**3~") && a.contains("AK5*R*5~") && a.contains("AK9*R*1*1*0~"),
        "{a}"
    );
    let a = of("512");
    assert!(
        a.contains("AK3*PO1*3**8~") && a.contains("AK4*2**6*TEN~") && a.contains("AK5*R*5~"),
        "{a}"
    );
    assert!(a.contains("AK9*R*1*1*0~"), "{a}");
    let a = of("513");
    assert!(
        a.contains("AK4*1**7*ZQ~") && a.contains("AK5*R*5~") && a.contains("AK9*R*1*1*0~"),
        "{a}"
    );
    d.stop().await;
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());
    // inspect reports the non-numeric quantity too.
    std::fs::write(ws.path("ten.edi"), &ten).unwrap();
    let out = edi_bridge_command()
        .args(["inspect", &ws.path("ten.edi").display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not_numeric") && stdout.contains("po102 'TEN'"),
        "{stdout}"
    );
}
