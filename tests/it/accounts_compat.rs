//! A store and config written by the version before accounts (commit 0fd3804, the fixture in
//! `tests/data/before-accounts/`, see its README.txt) open unchanged under the account `default`:
//! the old POs, their dedupe keys (webhook event ids, PO numbers, inbound interchanges), the
//! control numbers, the dead letter and the delivered 855 all carry on.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use edi_bridge::events::Outcome;
use edi_bridge::store::records::Outbound850;

use crate::support::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/before-accounts");
/// The secrets the fixture's daemon ran with (the fixture's `*.secret` files).
const FIXTURE_WEBHOOK_SECRET: &str = "fixture-webhook-secret";
const FIXTURE_CLIENT_ID: &str = "fixture-client";
const FIXTURE_CLIENT_SECRET: &str = "fixture-client-secret";

/// Copies `from` into `to` (directories merged, files overwritten).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn sign_old(event_id: &str) -> String {
    edi_bridge::ingram::signature::sign(FIXTURE_WEBHOOK_SECRET.as_bytes(), event_id)
}

/// The webhook the fixture's daemon took for `IM-OLD-{n}` (event `FX-OLD-EVT-{n}`), as
/// `make.sh` built it from the sample.
fn old_event(n: u32) -> (String, String) {
    let id = format!("FX-OLD-EVT-{n}");
    let body = sample_with(&id, &format!("IM-OLD-{n}"));
    (id, body)
}

fn isa13(o: &edi_bridge::store::records::OrderRecord) -> u32 {
    match &o.outbound {
        Outbound850::Written { envelope, .. } => envelope.isa13,
        other => panic!("{}: 850 not written: {other:?}", o.po_number),
    }
}

fn outbox_850s(ws: &Workspace) -> Vec<String> {
    ws.names("outbox")
        .into_iter()
        .filter(|n| n.ends_with(".850"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_and_config_from_before_accounts_open_unchanged_as_default() {
    let (sim, _sim_token) = sim(|c| {
        c.client_id = FIXTURE_CLIENT_ID.into();
        c.client_secret = FIXTURE_CLIENT_SECRET.into();
    })
    .await;
    let ws = Workspace::new();
    copy_tree(Path::new(FIXTURE), ws.dir.path());
    // The fixture keeps no empty directories; the old daemon made its state directory private.
    std::fs::create_dir_all(ws.path("state/db/blobs")).unwrap();
    for d in ["state", "state/db", "state/db/blobs"] {
        let p = ws.path(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let template = std::fs::read_to_string(ws.path("edi-bridge.toml.template")).unwrap();
    assert!(
        !template.lines().any(|l| l.starts_with("[[accounts]]"))
            && template.lines().any(|l| l == "[ingram]"),
        "the fixture's config is the single-account one"
    );
    let text = template
        .replace("{dir}", &ws.dir.path().display().to_string())
        .replace("{base_url}", &sim.base_url())
        .replace("{token_url}", &sim.token_url());
    let d = ws.start_text(&text).await;
    let store = &d.r().store;

    // Every old PO is there, under the account `default`, keyed by its bare number, in the
    // state the old daemon left it.
    let olds: Vec<_> = (1..=3)
        .map(|n| {
            store
                .order(&format!("IM-OLD-{n}"))
                .unwrap()
                .unwrap_or_else(|| panic!("IM-OLD-{n} is in the store"))
        })
        .collect();
    for (i, o) in olds.iter().enumerate() {
        assert_eq!(o.account, "default", "{}", o.po_number);
        assert_eq!(
            o.key(),
            o.po_number,
            "the default account's key is the bare PO"
        );
        assert_eq!(o.event_id, format!("FX-OLD-EVT-{}", i + 1));
        assert_eq!(isa13(o), i as u32 + 1, "{}", o.po_number);
    }
    let states: Vec<_> = olds.iter().map(|o| o.lifecycle()).collect();
    assert_eq!(
        states.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["850_written", "855_sent", "997_received"]
    );
    assert_eq!(store.orders().count(), 3);
    let status =
        edi_bridge::admin::ops::status(store, &["default".to_string()], &Default::default())
            .unwrap();
    for po in ["IM-OLD-1", "IM-OLD-2", "IM-OLD-3"] {
        assert!(status.contains(po), "{po} in\n{status}");
    }
    assert!(status.contains("3 PO(s) shown"), "{status}");
    assert!(status.contains("dead letters 1"), "{status}");
    let show =
        edi_bridge::admin::ops::show(store, "IM-OLD-2", &ws.path("edi-bridge.toml")).unwrap();
    assert!(
        show.contains("webhook event FX-OLD-EVT-2") && show.contains("old2.855"),
        "{show}"
    );

    // The old dead letter (IM-OLD-1's PO Response, refused with a 400) is intact, as a job of
    // the account default.
    let dead: Vec<_> = store.dead_letters().collect::<Result<_, _>>().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].job.po, "IM-OLD-1");
    assert_eq!(
        edi_bridge::domain::split_po_key(&dead[0].job.po).0,
        "default"
    );
    assert!(dead[0].reason.contains("400"), "{}", dead[0].reason);
    assert_eq!(store.jobs().count(), 0, "no job was left queued");

    // A redelivery of an old event is a duplicate; an old PO number under a new event id is
    // repeated. Neither writes an 850.
    let (id, body) = old_event(2);
    let (s, b) = post(&d.url(), &body, Some(&sign_old(&id))).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("duplicate")), "{b}");
    let (s, b) = post(
        &d.url(),
        &sample_with("FX-NEW-EVT-9", "IM-OLD-3"),
        Some(&sign_old("FX-NEW-EVT-9")),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["purchaseOrders"]["repeated"],
        serde_json::json!(["IM-OLD-3"]),
        "{b}"
    );
    assert_eq!(b["purchaseOrders"]["new"], serde_json::json!([]), "{b}");

    // A new PO's 850 takes the next ISA13 after the old 850s (1–3) and the 997s the old daemon
    // wrote for its two 855s (4 and 5): the control numbers carry on.
    let (s, b) = post(
        &d.url(),
        &sample_with("FX-NEW-EVT-10", "IM-NEW-4"),
        Some(&sign_old("FX-NEW-EVT-10")),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("accepted")), "{b}");
    d.wait_written(4).await;
    let new = store.order("IM-NEW-4").unwrap().unwrap();
    assert_eq!(new.account, "default");
    assert_eq!(isa13(&new), 6);
    assert_eq!(
        outbox_850s(&ws),
        [
            "IM-NEW-4.000000006.850",
            "IM-OLD-1.000000001.850",
            "IM-OLD-2.000000002.850",
            "IM-OLD-3.000000003.850",
        ],
        "one new 850, none for the duplicate or the repeated PO"
    );
    let segs = segments(&read(&ws.path("outbox/IM-NEW-4.000000006.850")));
    assert_eq!(find(&segs, "ISA")[0][13], "000000006");

    // The inbound interchanges the old daemon processed are remembered: its 855 for IM-OLD-2,
    // dropped again, is a duplicate and calls nothing.
    let calls_before = sim.calls().len();
    let mut rx = d.r().events.subscribe();
    let old_855 = read(&ws.path("archive/inbound/2026/12/07/old2.855"));
    drop_inbox(&ws, "again.855", &old_855);
    let outcome = d.wait_inbox(&mut rx, "again.855").await;
    assert!(matches!(outcome, Outcome::Duplicate { .. }), "{outcome:?}");

    // The old dead letter can be retried: its call goes to the account default's API.
    let out = edi_bridge_command()
        .args(["retry", "--config"])
        .arg(ws.path("edi-bridge.toml"))
        .arg(dead[0].job.id.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.until("IM-OLD-1's 855 delivered", || {
        store
            .order("IM-OLD-1")
            .unwrap()
            .is_some_and(|o| o.lifecycle().as_str() == "855_sent")
    })
    .await;
    let calls = sim.calls();
    let new_calls: Vec<_> = calls[calls_before..].iter().collect();
    assert_eq!(new_calls.len(), 1, "{new_calls:?}");
    assert_eq!(new_calls[0].po.as_deref(), Some("IM-OLD-1"));
    assert_eq!(new_calls[0].kind, "po_response");
    assert_eq!(new_calls[0].header("im-partnerid"), Some("US123456"));
    assert_eq!(store.dead_letters().count(), 0);
    d.stop().await;
}
