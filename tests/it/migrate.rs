//! Moving from a VAN, through the real daemon: with `[outbox] shadow_dir` the 850s land there
//! and never in the ERP's outbox; with `[migration] van_dir` each is compared with the VAN's
//! 850 for the same PO as soon as both exist (before or after ours), counted in
//! `edi_bridge_shadow_850s_total{result}` and listed, escaped, on the console's Migration page;
//! with `[migration] send_calls = false` the ERP's 855 is read and its call recorded, and
//! Ingram (the emulator) receives nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edi_bridge::events::Event;

use crate::support::*;

fn corpus(layout: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/van")
        .join(layout)
}

/// Waits (on daemon events) until `n` shadow comparisons were made: PO → identical.
async fn comparisons(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    n: usize,
) -> BTreeMap<String, bool> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::Shadow850 { po, identical })) => {
                seen.insert(po, identical);
            }
            Ok(_) => {}
            Err(_) => panic!("timed out: {seen:?} of {n} shadow comparisons"),
        }
    }
    seen
}

#[tokio::test]
async fn shadow_850s_go_to_the_shadow_dir_and_are_compared_with_the_vans() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("shadow")).unwrap();
    std::fs::create_dir(ws.path("van")).unwrap();
    // The mapping states the VAN's layout (as `mapping learn` would have written it).
    std::fs::copy(corpus("classic").join("van.toml"), ws.path("mapping.toml")).unwrap();
    let check = corpus("classic").join("check");
    let van_850 = |po: &str| std::fs::read(check.join(format!("archive/{po}.850"))).unwrap();
    let webhook =
        |po: &str| std::fs::read_to_string(check.join(format!("webhooks/{po}.json"))).unwrap();
    // The VAN's copy of the first PO is there before ours; the second's comes after; the
    // third's differs in the ship-to's name, with markup in it.
    let (first, second, third) = ("4500011000", "4500011001", "4500011002");
    std::fs::write(ws.path(&format!("van/{first}.850")), van_850(first)).unwrap();
    let changed = String::from_utf8(van_850(third)).unwrap();
    let n1 = changed
        .lines()
        .find(|l| l.starts_with("N1*ST*"))
        .unwrap()
        .to_string();
    let changed = changed.replacen(&n1, "N1*ST*<i>ACME</i>", 1);
    std::fs::write(ws.path(&format!("van/{third}.850")), changed).unwrap();
    let extra = format!(
        "shadow_dir = \"{}\"\n[migration]\nvan_dir = \"{}\"\n[inbox]\nrescan_secs = 1\n[alerts]\nmissing_997_hours = 0\n[console]\nlisten = \"127.0.0.1:0\"\n",
        ws.path("shadow").display(),
        ws.path("van").display()
    );
    let d = ws.start_with(&extra).await;
    let mut rx = d.r().events.subscribe();
    for (n, po) in [first, second, third].iter().enumerate() {
        let (status, body) = post(
            &d.url(),
            &webhook(po),
            Some(&sign(&format!("EV{:08}", 1000 + n))),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let seen = comparisons(&mut rx, 2).await;
    assert_eq!(
        seen,
        BTreeMap::from([(first.into(), true), (third.into(), false)])
    );
    d.wait_written(3).await;
    assert!(ws.files("outbox").is_empty(), "{:?}", ws.names("outbox"));
    assert_eq!(ws.files("shadow").len(), 3);
    // The VAN's copy of the second PO arrives: compared as soon as it is seen.
    std::fs::write(ws.path(&format!("van/{second}.850")), van_850(second)).unwrap();
    let seen = comparisons(&mut rx, 1).await;
    assert_eq!(seen, BTreeMap::from([(second.into(), true)]));

    let m = metrics(&d).await;
    assert!(
        m.contains("edi_bridge_shadow_850s_total{result=\"identical\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("edi_bridge_shadow_850s_total{result=\"different\"} 1"),
        "{m}"
    );
    // No 997 is expected for a shadow 850: none is overdue, even past a zero-hour threshold.
    assert!(m.contains("edi_bridge_850_without_997 0"), "{m}");

    // A PO written again (`replay`, after a mapping fix) is compared again.
    let config = ws.path("edi-bridge.toml");
    // (Off the runtime: the daemon answers the admin socket on it.)
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(&[
            "replay".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            first.as_ref(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let seen = comparisons(&mut rx, 1).await;
    assert_eq!(seen, BTreeMap::from([(first.into(), true)]));
    assert_eq!(ws.files("shadow").len(), 4);

    let html = migration_page(&d).await;
    assert!(html.contains("3 of 4 identical"), "{html}");
    assert!(html.contains(third) && html.contains("N102"), "{html}");
    assert!(html.contains("po850.parties.source"), "{html}");
    assert!(html.contains("&lt;i&gt;ACME&lt;/i&gt;"), "{html}");
    assert!(!html.contains("<i>ACME"), "{html}");
    d.stop().await;
}

#[tokio::test]
async fn send_calls_false_reads_the_erps_855_and_records_its_call_without_sending_it() {
    let (sim, stop_sim) = sim(|_| {}).await;
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("shadow")).unwrap();
    let extra = format!(
        "shadow_dir = \"{}\"\n[migration]\nsend_calls = false\n[inbox]\nsettle_ms = 50\nrescan_secs = 1\n",
        ws.path("shadow").display()
    );
    let d = ws.start_against(&sim, &extra).await;
    let (status, _) = post(
        &d.url(),
        &sample_with("EV-1", "IM-PO-1001"),
        Some(&sign("EV-1")),
    )
    .await;
    assert_eq!(status, 200);
    d.wait_written(1).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "po-1001.855", &ack_855_for("IM-PO-1001", 900));
    assert_eq!(wait_call_recorded(&mut rx).await, "IM-PO-1001");
    assert!(sim.calls().is_empty(), "{:?}", sim.calls());
    assert_eq!(
        d.r().store.job_count(),
        0,
        "nothing left to send after a cut-over"
    );
    let order = d.r().store.order("IM-PO-1001").unwrap().unwrap();
    assert!(
        order
            .history
            .iter()
            .any(|h| h.what.contains("not sent, [migration] send_calls = false")),
        "{:?}",
        order.history
    );
    // The timeline never says it was sent.
    assert!(
        order
            .history
            .iter()
            .all(|h| !h.what.contains("sent to Ingram (")),
        "{:?}",
        order.history
    );
    assert!(
        order
            .history
            .iter()
            .any(|h| h.what.contains("recorded, NOT sent to Ingram")),
        "{:?}",
        order.history
    );
    assert!(ws.files("outbox").is_empty());
    d.stop().await;
    stop_sim.cancel();
}

/// Runs `edi-bridge ARGS`: (exit code, stdout, stderr).
fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = edi_bridge_command().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn learn_then_compare_on_the_command_line_and_their_exit_codes() {
    let ws = Workspace::new();
    let at = corpus("pipes");
    let (learn, check) = (at.join("learn"), at.join("check"));
    let os = |p: &Path| p.as_os_str().to_owned();
    let (code, toml, err) = run(&[
        "mapping".as_ref(),
        "learn".as_ref(),
        "--from".as_ref(),
        &os(&learn.join("archive")),
        "--webhooks".as_ref(),
        &os(&learn.join("webhooks")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("verified: the learned mapping reproduces all 30 paired POs"),
        "{err}"
    );
    assert!(
        toml.contains("# ISA05 01 in 30 of 30 files\nsender_qualifier = \"01\""),
        "{toml}"
    );
    std::fs::write(ws.path("learned.toml"), &toml).unwrap();

    let compare = |mapping: &Path, json: bool| {
        let mut args = vec![
            "compare".into(),
            "--mapping".into(),
            os(mapping),
            "--van".into(),
            os(&check.join("archive")),
            "--webhooks".into(),
            os(&check.join("webhooks")),
        ];
        if json {
            args.push("--json".into());
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(&refs)
    };
    let (code, out, err) = compare(&ws.path("learned.toml"), false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("15 of 15 identical\n"), "{out}");
    // The shipped mapping is not this VAN's layout: the first difference is the delimiter.
    let (code, out, _) = compare(&ws.path("mapping.toml"), false);
    assert_eq!(code, 1);
    assert!(out.contains("4500011000: segment 1 (delimiters), element separator: VAN \"|\" ours \"*\" (mapping key delimiters.element)"), "{out}");
    assert!(out.ends_with("0 of 15 identical\n"), "{out}");
    let (code, out, _) = compare(&ws.path("mapping.toml"), true);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["identical"].as_u64(), v["compared"].as_u64()),
        (Some(0), Some(15))
    );
    assert_eq!(v["pos"][0]["result"], "different");
    assert_eq!(v["pos"][0]["difference"]["key"], "delimiters.element");

    // An archived PO the learned mapping cannot reproduce: named, and the exit code says so.
    let archive = ws.path("archive-with-sac");
    std::fs::create_dir(&archive).unwrap();
    for f in plain_files(&learn.join("archive")) {
        let mut text = std::fs::read_to_string(&f).unwrap();
        if name_of(&f) == "4500010007.850" {
            text = text.replacen("\r\nPO1|", "\r\nSAC|N|||||||||||||||BUNDLE~\r\nPO1|", 1);
        }
        std::fs::write(archive.join(name_of(&f)), text).unwrap();
    }
    let (code, _, err) = run(&[
        "mapping".as_ref(),
        "learn".as_ref(),
        "--from".as_ref(),
        &os(&archive),
        "--webhooks".as_ref(),
        &os(&learn.join("webhooks")),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("could not place: SAC in 1 of 30 files"),
        "{err}"
    );
    assert!(
        err.contains("differs: ") && err.contains("4500010007.850"),
        "{err}"
    );
    assert!(err.contains("reproduces 29 of 30 paired POs"), "{err}");
}

/// The webhooks of `from` as a vendor's Ingram feed would send them with other names: the PO
/// number as `poNumber`, the lines as `items` with `lineNo`, the ship-to as `deliverTo`.
fn renamed_webhooks(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in plain_files(from) {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let po = v["resource"][0].as_object_mut().unwrap();
        let number = po.remove("ingramPurchaseOrderNumber").unwrap();
        po.insert("poNumber".into(), number);
        let mut lines = po.remove("lines").unwrap();
        for l in lines.as_array_mut().unwrap() {
            let l = l.as_object_mut().unwrap();
            let n = l.remove("ingramLineNumber").unwrap();
            l.insert("lineNo".into(), n);
        }
        po.insert("items".into(), lines);
        let ship_to = po.remove("shipToInfo").unwrap();
        po.insert("deliverTo".into(), ship_to);
        std::fs::write(to.join(name_of(&f)), v.to_string()).unwrap();
    }
}

#[test]
fn learn_reads_the_webhooks_through_the_vendors_mapping_and_keeps_its_webhook_view() {
    let ws = Workspace::new();
    let at = corpus("padded");
    let os = |p: &Path| p.as_os_str().to_owned();
    renamed_webhooks(&at.join("learn/webhooks"), &ws.path("learn-webhooks"));
    renamed_webhooks(&at.join("check/webhooks"), &ws.path("check-webhooks"));
    // The shipped mapping with the vendor's [webhook]: a key rename and a reshaping program.
    let mapping = edi_bridge::mapping::DEFAULT_MAPPING
        .replacen("ship_to = \"shipToInfo\"", "ship_to = \"deliverTo\"", 1)
        .replacen(
            "[webhook]\n",
            "[webhook]\nprogram = '''\n\
             . + {ingramPurchaseOrderNumber: .poNumber, lines: (.items | map(. + {ingramLineNumber: .lineNo} | del(.lineNo)))}\n\
             | del(.poNumber, .items)\n'''\n",
            1,
        );
    std::fs::write(ws.path("vendor.toml"), &mapping).unwrap();
    let learn = |extra: &[&std::ffi::OsStr]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "mapping".into(),
            "learn".into(),
            "--from".into(),
            os(&at.join("learn/archive")),
            "--webhooks".into(),
            os(&ws.path("learn-webhooks")),
        ];
        args.extend(extra.iter().map(|a| a.to_os_string()));
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        run(&refs)
    };
    // Read as the shipped mapping reads them, these webhooks have no PO number: nothing pairs.
    let (code, _, err) = learn(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("not read: ") && err.contains("ingramPurchaseOrderNumber"),
        "{err}"
    );
    assert!(err.contains("not verified: no webhook is paired"), "{err}");
    // Through the vendor's mapping they pair, padding and all, and the result keeps its view.
    let (code, toml, err) = learn(&["--mapping".as_ref(), ws.path("vendor.toml").as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("verified: the learned mapping reproduces all 30 paired POs"),
        "{err}"
    );
    assert!(!err.contains("not read"), "{err}");
    assert!(toml.contains("element = \"PO101\"\nwidth = 3\n"), "{toml}");
    assert!(toml.contains("ship_to = \"deliverTo\""), "{toml}");
    assert!(toml.contains("ingramLineNumber: .lineNo"), "{toml}");
    assert!(toml.contains("kept from "), "{toml}");
    std::fs::write(ws.path("learned.toml"), &toml).unwrap();
    // The learned mapping reads the renamed webhooks of the POs it never saw the same way.
    let (code, out, err) = run(&[
        "compare".as_ref(),
        "--mapping".as_ref(),
        ws.path("learned.toml").as_os_str(),
        "--van".as_ref(),
        &os(&at.join("check/archive")),
        "--webhooks".as_ref(),
        ws.path("check-webhooks").as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("15 of 15 identical\n"), "{out}");
}
