//! Webhook intake → durable store → 850 in the outbox: the happy path field by field, every
//! refusal with its status and named field, duplicates, multi-PO events, key rotation, and
//! exactly-once across restarts.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn sample_webhook_becomes_one_850_field_by_field() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let (status, body) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["purchaseOrders"]["new"][0], "IM-PO-1001");
    d.wait_written(1).await;

    let files = ws.files("outbox");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].file_name().unwrap(), "IM-PO-1001.000000001.850");
    let bytes = read(&files[0]);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.is_ascii(), "non-ASCII leaked into the 850");
    let isa_line = text.lines().next().unwrap();
    assert_eq!(isa_line.len(), 106, "fixed-width ISA: {isa_line:?}");
    let segs = segments(&bytes);
    let isa = &segs[0];
    assert_eq!(isa[0], "ISA");
    assert_eq!(isa[5], "ZZ");
    assert_eq!(isa[6], "INGRAMMICRO    ");
    assert_eq!(isa[8], "VENDORERP      ");
    assert_eq!(isa[11], "U");
    assert_eq!(isa[12], "00401");
    assert_eq!(isa[13], "000000001");
    assert_eq!(isa[15], "P");
    let gs = &find(&segs, "GS")[0];
    assert_eq!(
        (
            gs[1].as_str(),
            gs[2].as_str(),
            gs[3].as_str(),
            gs[6].as_str(),
            gs[8].as_str()
        ),
        ("PO", "INGRAMMICRO", "VENDORERP", "1", "004010")
    );
    let st = &find(&segs, "ST")[0];
    assert_eq!((st[1].as_str(), st[2].as_str()), ("850", "0001"));
    assert_eq!(
        find(&segs, "BEG")[0][1..],
        ["00", "SA", "IM-PO-1001", "", "20261120"]
    );
    assert_eq!(find(&segs, "CUR")[0][1..], ["BY", "USD"]);
    let refs: Vec<(String, String)> = find(&segs, "REF")
        .iter()
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    for expected in [
        ("CO", "RSL-77812"),
        ("PR", "Q-2026-0042"),
        ("CT", "SB-9001"),
        ("ZZ", "COMMERCIAL"),
    ] {
        assert!(
            refs.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {refs:?}"
        );
    }
    let itd = &find(&segs, "ITD")[0];
    assert_eq!(
        (
            itd[1].as_str(),
            itd[2].as_str(),
            itd[7].as_str(),
            itd[12].as_str()
        ),
        ("01", "3", "30", "NET 30")
    );
    let dtms: Vec<(String, String)> = find(&segs, "DTM")
        .iter()
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    assert!(
        dtms.contains(&("004".into(), "20261120".into())),
        "{dtms:?}"
    );
    assert!(
        dtms.contains(&("002".into(), "20261125".into())),
        "{dtms:?}"
    );
    assert!(
        dtms.contains(&("010".into(), "20261122".into())),
        "line ship date {dtms:?}"
    );
    let td5 = &find(&segs, "TD5")[0];
    assert_eq!(
        (td5[1].as_str(), td5[2].as_str(), td5[3].as_str()),
        ("B", "2", "UPSN")
    );
    assert_eq!(find(&segs, "N9")[0][1], "L1");
    assert!(find(&segs, "MSG")[0][1].starts_with("DELIVER TO LOADING DOCK B"));
    let n1: Vec<(String, String)> = find(&segs, "N1")
        .iter()
        .map(|r| (r[1].clone(), r[2].clone()))
        .collect();
    assert_eq!(
        n1,
        vec![
            ("ST".into(), "ACME CORP RECEIVING".into()),
            ("BT".into(), "INGRAM MICRO INC.".into()),
            ("EN".into(), "CAFE MUNSTER GMBH".into()),
        ]
    );
    assert_eq!(find(&segs, "N3")[0][1..], ["100 MAIN ST", "DOCK B"]);
    assert_eq!(
        find(&segs, "N4")[0][1..],
        ["SANTA ANA", "CA", "92705", "US"]
    );
    assert!(
        find(&segs, "N4").iter().any(|n4| n4[1] == "DUSSELDORF"),
        "transliterated city"
    );
    let per = &find(&segs, "PER")[0];
    assert_eq!(
        per[1..],
        [
            "IC",
            "DANA SMITH",
            "TE",
            "714-555-0100",
            "EM",
            "RECEIVING@ACME.EXAMPLE"
        ]
    );
    let po1 = find(&segs, "PO1");
    assert_eq!(po1.len(), 2);
    assert_eq!(
        po1[0][1..],
        [
            "1",
            "10",
            "EA",
            "123.45",
            "PE",
            "VP",
            "ABC-123",
            "BP",
            "7HW123",
            "UP",
            "012345678905"
        ]
    );
    assert_eq!(po1[1][1..4], ["2", "3", "EA"], "EACH mapped to EA");
    assert_eq!(po1[1][4], "19.90");
    assert_eq!(po1[1][7], "XYZ-9", "identifiers are written exactly");
    assert_eq!(
        find(&segs, "PID")[0][1..],
        ["F", "", "", "", "WIDGET 24-PORT MANAGED SWITCH"]
    );
    assert_eq!(
        find(&segs, "PID")[1][1..],
        ["F", "", "", "", "RACK KIT    2U"],
        "delimiters in free text become spaces"
    );
    assert_eq!(find(&segs, "CTT")[0][1..], ["2", "13"]);
    assert_eq!(find(&segs, "AMT")[0][1..], ["TT", "1294.20"]);
    let se = &find(&segs, "SE")[0];
    let st_pos = segs.iter().position(|s| s[0] == "ST").unwrap();
    let se_pos = segs.iter().position(|s| s[0] == "SE").unwrap();
    assert_eq!(
        se[1],
        (se_pos - st_pos + 1).to_string(),
        "SE01 counts ST..SE"
    );
    assert_eq!(se[2], "0001");
    assert_eq!(find(&segs, "GE")[0][1..], ["1", "1"]);
    assert_eq!(find(&segs, "IEA")[0][1..], ["1", "000000001"]);
    assert!(text.ends_with("~\n"));

    // Archived copy, identical.
    let archived: Vec<_> = walk(&ws.path("archive/outbound"), false);
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert_eq!(read(&archived[0]), bytes);
    // The raw event is kept for audit, unknown fields included.
    let ev = d.r().store.event("N01CIB9VVFYKR9J6ZW").unwrap().unwrap();
    assert!(ev.raw_body.contains("someFutureField"));
    d.stop().await;
}

/// Ingram product descriptions are often longer than PID05 holds (1/80): the line's description
/// is split over as many `PID*F****` segments as it needs, at single spaces, and carried exactly.
#[tokio::test]
async fn a_long_line_description_is_split_over_pid_segments() {
    let words = [
        "HPE",
        "Aruba",
        "Networking",
        "CX",
        "6100",
        "24G",
        "Class4",
        "PoE",
        "4SFP+",
        "370W",
        "Switch",
        "-",
        "rack-mountable,",
        "limited",
        "lifetime",
        "warranty;",
        "JL677A#ABA",
    ];
    let mut desc = String::new();
    for w in words.iter().cycle() {
        if desc.len() + 1 + w.len() > 300 {
            break;
        }
        if !desc.is_empty() {
            desc.push(' ');
        }
        desc.push_str(w);
    }
    while desc.len() < 300 {
        desc.push('X');
    }
    let ws = Workspace::new();
    let d = ws.start().await;
    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    v["resource"][0]["lines"][0]["description"] = desc.clone().into();
    let (status, body) = post(&d.url(), &v.to_string(), Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(status, 200, "{body}");
    d.wait_written(1).await;
    let files = ws.files("outbox");
    let bytes = read(&files[0]);
    let segs = segments(&bytes);
    let po1 = segs.iter().position(|s| s[0] == "PO1").unwrap();
    let pids: Vec<&Vec<String>> = segs[po1 + 1..]
        .iter()
        .take_while(|s| s[0] == "PID")
        .collect();
    assert_eq!(
        pids.len(),
        4,
        "300 characters need 4 PIDs of at most 80: {pids:?}"
    );
    for p in &pids {
        assert_eq!(p[1..5], ["F", "", "", ""]);
        assert!((1..=80).contains(&p[5].len()), "{p:?}");
    }
    let joined = pids
        .iter()
        .map(|p| p[5].as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        joined,
        desc.to_uppercase(),
        "the mapping uppercases free text"
    );
    // The second line's PID is still right after its PO1.
    let po1b = segs.iter().rposition(|s| s[0] == "PO1").unwrap();
    assert_eq!(segs[po1b + 1][5], "RACK KIT    2U");
    let st = segs.iter().position(|s| s[0] == "ST").unwrap();
    let se = segs.iter().position(|s| s[0] == "SE").unwrap();
    assert_eq!(
        segs[se][1],
        (se - st + 1).to_string(),
        "SE01 counts the PIDs"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(edi::parse(&text).is_ok(), "{:?}", edi::parse(&text).err());
    d.stop().await;
}

#[tokio::test]
async fn refusals_name_the_field_and_store_nothing() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let url = d.url();
    let ok_sig = sign("N01CIB9VVFYKR9J6ZW");

    let (s, b) = post(
        &url,
        SAMPLE,
        Some(&edi_bridge::ingram::signature::sign(
            b"wrong",
            "N01CIB9VVFYKR9J6ZW",
        )),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (401, Some("x-hub-signature")));
    let (s, _) = post(&url, SAMPLE, None).await;
    assert_eq!(s, 401);
    let (s, _) = post(&url, SAMPLE, Some("not base64 at all")).await;
    assert_eq!(s, 401);
    let (s, b) = post(&url, "{not json", Some(&ok_sig)).await;
    assert_eq!((s, b["field"].as_str()), (400, Some("$")));

    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    v["resource"][0]["lines"][1]
        .as_object_mut()
        .unwrap()
        .remove("quantity");
    let (s, b) = post(&url, &v.to_string(), Some(&ok_sig)).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("resource[0].lines[1].quantity")),
        "{b}"
    );

    // The id refused for its body is refused again whatever the body (Ingram signs only the id).
    let (s, b) = post(&url, SAMPLE, Some(&ok_sig)).await;
    assert_eq!((s, b["field"].as_str()), (409, Some("eventid")), "{b}");

    let mut v: serde_json::Value =
        serde_json::from_str(&sample_with("N01CIB9VVFYKR9J6ZX", "IM-PO-1001")).unwrap();
    v["resource"][0]["lines"][0]["unitPrice"] = "twelve".into();
    let (s, b) = post(&url, &v.to_string(), Some(&sign("N01CIB9VVFYKR9J6ZX"))).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (400, Some("resource[0].lines[0].unitPrice"))
    );

    let resp = client()
        .post(&url)
        .header("content-type", "text/plain")
        .header("x-hub-signature", &ok_sig)
        .body(SAMPLE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);

    let huge = format!(
        "{{\"eventid\":\"N01CIB9VVFYKR9J6ZW\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    );
    let (s, _) = post(&url, &huge, Some(&ok_sig)).await;
    assert_eq!(s, 413);

    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (s, _) = post(&url, &deep, Some(&ok_sig)).await;
    assert_eq!(s, 400);

    assert_eq!(d.r().store.orders().count(), 0, "nothing stored");
    assert!(d.r().store.event("N01CIB9VVFYKR9J6ZW").unwrap().is_none());
    d.stop().await;
    assert!(ws.files("outbox").is_empty());
}

#[tokio::test]
async fn duplicates_never_make_a_second_850() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let url = d.url();
    let (s, _) = post(&url, SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    // Same event again: 2xx, nothing new.
    let (s, b) = post(&url, SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")));
    // Same PO, new event id, same payload: 2xx, repeated.
    let (s, b) = post(&url, &sample_with("E-2", "IM-PO-1001"), Some(&sign("E-2"))).await;
    assert_eq!(s, 200);
    assert_eq!(b["purchaseOrders"]["repeated"][0], "IM-PO-1001");
    // Same PO, new event id, different payload: 2xx, held for review.
    let mut v: serde_json::Value = serde_json::from_str(&sample_with("E-3", "IM-PO-1001")).unwrap();
    v["resource"][0]["lines"][0]["quantity"] = 11.into();
    let (s, b) = post(&url, &v.to_string(), Some(&sign("E-3"))).await;
    assert_eq!(s, 200);
    assert_eq!(b["purchaseOrders"]["conflicting"][0], "IM-PO-1001");
    assert_eq!(d.r().store.review_count(), 1);
    d.wait_written(1).await;
    d.stop().await;
    assert_eq!(ws.files("outbox").len(), 1);
}

#[tokio::test]
async fn retention_keeps_open_pos_and_redeliveries_stay_duplicates_forever() {
    let ws = Workspace::new();
    // The old contract's knobs, set as low as they go: neither may forget an order now.
    let d = ws
        .start_with("[store]\nretention_days = 1\ndedupe_days = 1\n")
        .await;
    let url = d.url();
    let (s, _) = post(&url, SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let day = std::time::Duration::from_secs(86_400);
    let store = &d.r().store;
    let prune = |at: u64| store.prune(at, day, true, 100).unwrap().orders;
    // Three days on, the 850 has had no 997, 855 or 856: the PO is open and stays.
    d.r().clock.advance(3 * day);
    assert_eq!(prune(d.r().clock.now_ms()), 0);
    let shown =
        edi_bridge::admin::ops::show(store, "IM-PO-1001", &ws.path("edi-bridge.toml")).unwrap();
    assert!(
        shown.contains("open: no 997 from the ERP for its 850"),
        "{shown}"
    );
    let old_open = store.open_before(d.r().clock.now_ms(), true, 10).unwrap();
    assert_eq!(old_open.count, 1);
    // Redelivered three days later: a duplicate, no second 850.
    let (s, b) = post(&url, SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    // An operator closes it; the next round prunes it.
    let out = edi_bridge::admin::ops::close(store, "IM-PO-1001", "handled by phone").unwrap();
    assert!(out.contains("closed"), "{out}");
    assert_eq!(prune(d.r().clock.now_ms()), 1);
    assert!(store.order("IM-PO-1001").unwrap().is_none());
    // Years later, Ingram redelivers the event and re-sends the PO under a new event id:
    // still no second 850.
    d.r().clock.advance(3000 * day);
    assert_eq!(prune(d.r().clock.now_ms()), 0);
    let (s, b) = post(&url, SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    let (s, b) = post(&url, &sample_with("E-9", "IM-PO-1001"), Some(&sign("E-9"))).await;
    assert_eq!(s, 200);
    assert_eq!(b["purchaseOrders"]["repeated"][0], "IM-PO-1001", "{b}");
    d.stop().await;
    assert_eq!(ws.files("outbox").len(), 1);
}

#[tokio::test]
async fn multi_po_event_gives_one_850_each_and_old_secret_still_verifies() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    let mut second = v["resource"][0].clone();
    second["ingramPurchaseOrderNumber"] = "IM-PO-1002".into();
    v["resource"].as_array_mut().unwrap().push(second);
    v["eventid"] = "MULTI-1".into();
    let sig = edi_bridge::ingram::signature::sign(OLD_SECRET.as_bytes(), "MULTI-1");
    let (s, b) = post(&d.url(), &v.to_string(), Some(&sig)).await;
    assert_eq!(s, 200, "{b}");
    d.wait_written(2).await;
    d.stop().await;
    let names: Vec<String> = ws.names("outbox");
    assert_eq!(
        names,
        vec!["IM-PO-1001.000000001.850", "IM-PO-1002.000000002.850"]
    );
}

#[tokio::test]
async fn restart_mid_flight_writes_each_850_exactly_once() {
    let ws = Workspace::new();
    let d = ws.start().await;
    // Make the outbox unwritable for the worker: replace the directory with a plain file.
    std::fs::remove_dir(ws.path("outbox")).unwrap();
    std::fs::write(ws.path("outbox"), b"not a directory").unwrap();
    // Acknowledged while the outbox is broken: durable in the store.
    post_pos(&d, "R", 5).await;
    assert_eq!(d.written_count(), 0);
    d.stop().await;
    std::fs::remove_file(ws.path("outbox")).unwrap();
    std::fs::create_dir(ws.path("outbox")).unwrap();

    // A PO whose envelope was allocated but whose file never landed (crash between the two).
    let d = ws.start().await;
    d.wait_written(5).await;
    d.stop().await;
    let d = ws.start().await;
    assert_eq!(d.written_count(), 5);
    d.stop().await;
    let files = ws.files("outbox");
    assert_eq!(files.len(), 5, "{files:?}");
    let mut isa13: Vec<String> = files
        .iter()
        .map(|f| segments(&read(f))[0][13].clone())
        .collect();
    isa13.sort();
    isa13.dedup();
    assert_eq!(isa13.len(), 5, "control numbers never reused");
}

#[tokio::test]
async fn check_reports_every_problem_with_line_and_key() {
    let ws = Workspace::new();
    let bad = ws
        .config_text("")
        .replace("country_code = \"US\"", "country_code = \"USA\"")
        .replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\"");
    let path = ws.path("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let err = edi_bridge::config::Config::load(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.toml:2: server.listen"), "{err}");
    assert!(err.contains("ingram.country_code"), "{err}");
    let line = bad
        .lines()
        .position(|l| l.starts_with("country_code"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("bad.toml:{line}: ingram.country_code")),
        "{err}"
    );
}

#[tokio::test]
async fn a_paused_outbox_takes_webhooks_and_writes_their_850s_once_resumed() {
    let ws = Workspace::new();
    let d = ws.start_with("paused = true").await;
    let mut events = d.r().events.subscribe();
    post_pos(&d, "P", 3).await;
    // Absence: no 850 event within a second of the last 2xx (an unpaused outbox writes them in
    // milliseconds), and nothing in the outbox.
    let written = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if let Ok(edi_bridge::events::Event::Written850 { .. }) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(written.is_err(), "an 850 was written while paused");
    assert_eq!(d.written_count(), 0);
    assert!(ws.files("outbox").is_empty(), "{:?}", ws.files("outbox"));
    d.stop().await;

    let d = ws.start().await;
    d.wait_written(3).await;
    d.stop().await;
    let mut names = ws.names("outbox");
    names.sort();
    assert_eq!(
        names,
        [
            "IM-P-0.000000001.850",
            "IM-P-1.000000002.850",
            "IM-P-2.000000003.850"
        ]
    );
}

#[tokio::test]
async fn an_archive_copy_that_cannot_be_named_leaves_no_temp_file_and_no_second_850() {
    let ws = Workspace::new();
    let day = edi_bridge::clock::date_path(&edi_bridge::clock::now_rfc3339());
    let day_dir = ws.path("archive/outbound").join(&day);
    std::fs::create_dir_all(&day_dir).unwrap();
    // The second PO's archive name is taken by a directory: its copy cannot be renamed there,
    // after the batch's outbox files were linked.
    let blocker = day_dir.join("IM-A-1.000000002.850");
    std::fs::create_dir(&blocker).unwrap();
    let d = ws.start_with("paused = true").await;
    post_pos(&d, "A", 3).await;
    d.stop().await;
    // One batch of three, failing at the second archive copy, and retried.
    let d = ws.start().await;
    let m = metrics_showing(&d, &["edi_bridge_outbox_errors_total 2"]).await;
    assert!(m.contains("edi_bridge_outbox_errors_total 2"), "{m}");
    assert_eq!(
        d.written_count(),
        0,
        "not marked written while its archive copy fails"
    );
    let leftovers: Vec<_> = walk(&ws.path("archive"), true)
        .into_iter()
        .filter(|p| name_of(p).ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "archive temp files left: {leftovers:?}"
    );
    std::fs::remove_dir(&blocker).unwrap();
    d.wait_written(3).await;
    d.stop().await;
    let names = ws.names("outbox");
    assert_eq!(
        names,
        [
            "IM-A-0.000000001.850",
            "IM-A-1.000000002.850",
            "IM-A-2.000000003.850"
        ],
        "each 850 once, under the numbers first allocated"
    );
    let archived: Vec<String> = walk(&ws.path("archive/outbound"), true)
        .iter()
        .filter(|p| p.is_file())
        .map(|p| name_of(p))
        .collect();
    assert_eq!(archived.len(), 3, "{archived:?}");
    for f in ws.files("outbox") {
        let copy = day_dir.join(name_of(&f));
        assert_eq!(read(&f), read(&copy), "{}", copy.display());
    }
    let hidden: Vec<_> = walk(&ws.path("outbox"), true)
        .into_iter()
        .filter(|p| name_of(p).starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "receipts left: {hidden:?}");
}

/// Posts `n` signed sample webhooks, event `{tag}-{i}` carrying PO `IM-{tag}-{i}`, each
/// answered 200.
async fn post_pos(d: &TestDaemon, tag: &str, n: usize) {
    for i in 0..n {
        let id = format!("{tag}-{i}");
        let (s, body) = post(
            &d.url(),
            &sample_with(&id, &format!("IM-{tag}-{i}")),
            Some(&sign(&id)),
        )
        .await;
        assert_eq!(s, 200, "{id}: {body}");
    }
}
