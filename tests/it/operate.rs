//! Operating the daemon: `status`/`show`/`replay` through the admin socket while it runs and on
//! the store when it does not, `/metrics`, and mapping hot reload (a good edit is used at once,
//! a bad one is refused with file:line and the previous mapping keeps serving).

use crate::support::*;

async fn admin(ws: &Workspace, method: &str, path: &str) -> Result<String, String> {
    edi_bridge::admin::request(&ws.path("state"), method, path)
        .await
        .expect("the daemon answers on its admin socket")
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn status_show_replay_and_metrics_while_running_and_offline() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let (s, _) = post(&d.url(), SAMPLE, Some(&sign("N01CIB9VVFYKR9J6ZW"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;

    let status = admin(&ws, "GET", "/status").await.unwrap();
    assert!(
        status.contains("IM-PO-1001") && status.contains("850_written"),
        "{status}"
    );
    let filtered = admin(&ws, "GET", "/status?state=856_sent").await.unwrap();
    assert!(!filtered.contains("IM-PO-1001 "), "{filtered}");
    let show = admin(&ws, "GET", "/show/IM-PO-1001").await.unwrap();
    assert!(
        show.contains("webhook received (event N01CIB9VVFYKR9J6ZW)")
            && show.contains("ISA13 000000001"),
        "{show}"
    );
    assert!(admin(&ws, "GET", "/show/NOPE")
        .await
        .unwrap_err()
        .contains("no purchase order NOPE"));

    let replay = admin(&ws, "POST", "/replay/IM-PO-1001").await.unwrap();
    assert!(replay.contains("new control numbers"), "{replay}");
    d.until("the replayed 850", || ws.files("outbox").len() == 2)
        .await;
    let names: Vec<String> = ws.names("outbox");
    assert_eq!(
        names,
        vec!["IM-PO-1001.000000001.850", "IM-PO-1001.000000002.850"]
    );

    // An error file counts; its reason file and a hidden entry do not.
    for name in ["bad.855", "bad.855.reason.txt", ".bad.855.part"] {
        std::fs::write(ws.path(&format!("error/{name}")), b"x").unwrap();
    }
    let text = metrics(&d).await;
    for needle in [
        "edi_bridge_webhooks_total{outcome=\"accepted\"} 1",
        "edi_bridge_850_written_total 2",
        "edi_bridge_webhook_durable_seconds_count 1",
        "edi_bridge_dead_letters 0",
        "edi_bridge_error_dir_files 1",
        "edi_bridge_api_queue_depth 0",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert_eq!(get(&d, "/readyz").await.status().as_u16(), 200);
    d.stop().await;

    // Offline: the CLI opens the store itself.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edi-bridge"))
        .args(["status", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("IM-PO-1001") && text.contains("1 PO(s) shown"),
        "{text}"
    );
}

#[tokio::test]
async fn mapping_reload_applies_good_edits_and_refuses_bad_ones() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let mapping = ws.path("mapping.toml");
    let original = std::fs::read_to_string(&mapping).unwrap();
    std::fs::write(
        &mapping,
        original.replace("po_type = \"SA\"", "po_type = \"DS\""),
    )
    .unwrap();
    assert_eq!(
        admin(&ws, "POST", "/reload").await.unwrap(),
        "mapping reloaded\n"
    );
    let (s, _) = post(&d.url(), &sample_with("E-1", "IM-DS-1"), Some(&sign("E-1"))).await;
    assert_eq!(s, 200);
    d.wait_written(1).await;

    let bad = original
        .replace("po_type = \"SA\"", "po_type = \"DS\"")
        .replace("sender_qualifier = \"ZZ\"", "sender_qualifier = \"ZZZ\"");
    std::fs::write(&mapping, &bad).unwrap();
    let line = bad
        .lines()
        .position(|l| l.starts_with("sender_qualifier"))
        .unwrap()
        + 1;
    let err = admin(&ws, "POST", "/reload").await.unwrap_err();
    assert!(
        err.contains(&format!(
            "mapping.toml:{line}: interchange.sender_qualifier"
        )),
        "{err}"
    );
    let (s, _) = post(&d.url(), &sample_with("E-2", "IM-DS-2"), Some(&sign("E-2"))).await;
    assert_eq!(s, 200, "the daemon keeps serving with the previous mapping");
    d.wait_written(2).await;
    d.stop().await;
    for f in ws.files("outbox") {
        let segs = segments(&read(&f));
        assert_eq!(find(&segs, "BEG")[0][2], "DS", "{f:?}");
        assert_eq!(segs[0][5], "ZZ", "the refused edit never applied");
    }
}
