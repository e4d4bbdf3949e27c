//! A store that went backwards (an older copy put back, a backup restored) never hands out a
//! control number the ERP has seen, nor writes a PO again: the daemon refuses to start and
//! names the repair; `store backup` while running and `store restore` end with every number
//! unique; a store sled cannot read is a clear error for every command, never a crash.

use std::path::Path;

use crate::support::*;

/// Posts PO `po` (event `E-po`) and waits for its 850.
async fn order(d: &TestDaemon, po: &str, written: usize) {
    let (s, b) = post(
        &d.url(),
        &sample_with(&format!("E-{po}"), po),
        Some(&sign(&format!("E-{po}"))),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    d.wait_written(written).await;
}

/// Every ISA13 in the outbox, in file-name order.
fn isa13s(ws: &Workspace) -> Vec<String> {
    ws.files("outbox")
        .iter()
        .map(|f| {
            let segs = segments(&read(f));
            segs[0][13].clone()
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs the real binary with `args` and `--config CONFIG`: success, stdout, stderr.
fn run_with(config: &Path, args: &[String]) -> (bool, String, String) {
    let out = edi_bridge_command()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn run(ws: &Workspace, a: &[&str]) -> (bool, String, String) {
    run_with(&ws.path("edi-bridge.toml"), &args(a))
}

/// [`run`] on a blocking thread, for commands that talk to an in-process daemon.
async fn run_async(ws: &Workspace, a: &[&str]) -> (bool, String, String) {
    let (config, a) = (ws.path("edi-bridge.toml"), args(a));
    tokio::task::spawn_blocking(move || run_with(&config, &a))
        .await
        .unwrap()
}

async fn start_result(ws: &Workspace) -> anyhow::Result<TestDaemon> {
    let loaded = edi_bridge::config::Config::load(&ws.path("edi-bridge.toml")).unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let running = edi_bridge::daemon::start(loaded, token.clone()).await?;
    Ok(TestDaemon {
        running: Some(running),
        token,
    })
}

#[tokio::test]
async fn an_older_store_put_back_is_refused_until_repaired_and_then_reuses_nothing() {
    let ws = Workspace::new();
    let d = ws.start().await;
    order(&d, "PO-1", 1).await;
    order(&d, "PO-2", 2).await;
    d.stop().await;
    // The state as a backup taken now would hold it (a plain copy of a stopped store).
    copy_dir(&ws.path("state/db"), &ws.path("old-db"));
    let d = ws.start().await;
    order(&d, "PO-3", 3).await;
    order(&d, "PO-4", 4).await;
    d.stop().await;
    // The disk gives back the older copy.
    std::fs::remove_dir_all(ws.path("state/db")).unwrap();
    copy_dir(&ws.path("old-db"), &ws.path("state/db"));

    let refused = start_result(&ws).await.err().expect("refused to start");
    let text = format!("{refused:#}");
    assert!(
        text.contains("is behind what it already wrote")
            && text.contains("ISA13 4 was already sent")
            && text.contains("PO PO-4")
            && text.contains("edi-bridge store repair --config"),
        "{text}"
    );
    let (ok, out, err) = run(&ws, &["store", "repair"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("raised past the highest sent"), "{out}");
    assert!(out.contains("2 PO(s) remembered as written"), "{out}");

    let d = ws.start().await;
    // The lost POs come again from Ingram: held for review, never a second 850.
    for po in ["PO-3", "PO-4"] {
        let (s, b) = post(
            &d.url(),
            &sample_with(&format!("E-{po}"), po),
            Some(&sign(&format!("E-{po}"))),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["purchaseOrders"]["conflicting"][0], po, "{b}");
    }
    order(&d, "PO-5", 3).await;
    d.stop().await;
    let numbers = isa13s(&ws);
    assert_eq!(numbers.len(), 5, "{numbers:?}");
    let unique: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!(unique.len(), 5, "no ISA13 twice: {numbers:?}");
}

#[tokio::test]
async fn a_backup_taken_while_running_restores_without_reusing_a_number() {
    let ws = Workspace::new();
    let d = ws.start().await;
    order(&d, "PO-1", 1).await;
    order(&d, "PO-2", 2).await;
    // Taken through the running daemon's admin socket, by the real command (off the test's
    // runtime thread, which serves that socket).
    let backup = ws.path("backup-1").to_string_lossy().into_owned();
    let (ok, out, err) = run_async(&ws, &["store", "backup", &backup]).await;
    assert!(ok && out.contains("backed up"), "{out}{err}");
    order(&d, "PO-3", 3).await;
    // Restore refuses while the daemon runs.
    let (ok, _, err) = run_async(&ws, &["store", "restore", &backup]).await;
    assert!(!ok && err.contains("stop it first"), "{err}");
    // A backup directory is never overwritten.
    let again = d.r().store.backup_to(&ws.path("backup-1"));
    assert!(again.is_err());
    d.stop().await;

    let (ok, out, err) = run(
        &ws,
        &["store", "restore", ws.path("backup-1").to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("the replaced store is kept in"), "{out}");
    assert!(out.contains("1 PO(s) remembered as written"), "{out}");
    let d = ws.start().await;
    assert!(d.r().store.order("PO-1").unwrap().is_some());
    order(&d, "PO-4", 3).await;
    d.stop().await;
    let numbers = isa13s(&ws);
    assert_eq!(numbers.len(), 4, "{numbers:?}");
    let unique: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!(unique.len(), 4, "no ISA13 twice: {numbers:?}");
}

#[test]
fn a_store_sled_cannot_read_is_a_clear_error_for_every_command() {
    let ws = Workspace::new();
    std::fs::write(ws.path("edi-bridge.toml"), ws.config_text("")).unwrap();
    for d in ["outbox", "inbox", "archive", "error"] {
        std::fs::create_dir_all(ws.path(d)).unwrap();
    }
    {
        let store = edi_bridge::store::Store::open(&ws.path("state")).unwrap();
        store.flush_blocking().unwrap();
    }
    // Damage: sled's configuration and log overwritten with noise.
    for f in ["state/db/conf", "state/db/db"] {
        std::fs::write(ws.path(f), vec![0xA5u8; 4096]).unwrap();
    }
    for args in [&["status"][..], &["show", "PO-1"], &["store", "repair"]] {
        let (ok, out, err) = run(&ws, args);
        assert!(!ok, "{args:?}: {out}");
        assert!(
            err.contains("cannot be read") && err.contains("store restore"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
