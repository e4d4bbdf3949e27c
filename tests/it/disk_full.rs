//! A failing disk under the state store. With a small tmpfs as the state directory (when the test
//! may mount one; CI runs as root) the real binary runs under an emulated systemd notify socket:
//! the volume is filled, then a signed webhook must get 503 quickly, `/readyz` and `/healthz`
//! must say why within a second, the watchdog must stop being fed; once the filler is deleted
//! intake resumes by itself and every acknowledged PO gets exactly one 850; SIGTERM while the
//! volume is full again ends within `shutdown_grace_secs`, and a restart on the full volume comes
//! up, says why, and resumes intake once space returns. Where no tmpfs can be mounted, the
//! store's test-only fault hook drives the same assertions in process. Waits are socket reads,
//! channel timeouts and inotify events, never sleeps.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{self, Workspace};

/// Bounds from the issue: a refused webhook and a not-ready answer come this fast.
const REFUSE_WITHIN: Duration = Duration::from_secs(5);
const READYZ_WITHIN: Duration = Duration::from_secs(1);
/// Upper bound for every other awaited event.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
const GRACE_SECS: u64 = 4;

/// A tmpfs mounted on a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` when this process may not mount (not root, no CAP_SYS_ADMIN, no `mount`).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` with `dir/filler` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    // Whatever is left is smaller than a chunk: take it too.
    while f.write_all(&[0u8; 512]).is_ok() {}
    path
}

/// The notify socket, read by a thread: each `KEY=VALUE` line on a channel.
fn notify_socket(path: &Path) -> mpsc::Receiver<String> {
    let sock = UnixDatagram::bind(path).expect("bind the notify socket");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                if tx.send(line.to_string()).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for `state` on the notify channel.
fn wait_notify(rx: &mpsc::Receiver<String>, state: &str, log: &Path) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(s) if s == state => return,
            Ok(_) => {}
            Err(_) => panic!("no {state}\nlog:\n{}", read(log)),
        }
    }
}

/// Waits for a gap of `gap` without a watchdog ping; fails if pings go on for `EVENT_TIMEOUT`.
fn wait_watchdog_silent(rx: &mpsc::Receiver<String>, gap: Duration, log: &Path) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        match rx.recv_timeout(gap) {
            Err(mpsc::RecvTimeoutError::Timeout) => return,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("notify socket closed"),
            Ok(_) if Instant::now() > deadline => panic!(
                "the watchdog is still fed {EVENT_TIMEOUT:?} after the store failed\nlog:\n{}",
                read(log)
            ),
            Ok(_) => {}
        }
    }
}

/// Waits for the daemon's `intake resumed` log line.
fn wait_resumed(rx: &mpsc::Receiver<()>, log: &Path) {
    if rx.recv_timeout(EVENT_TIMEOUT).is_err() {
        panic!("intake did not resume by itself\nlog:\n{}", read(log));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The binary under test, killed if the test fails first.
struct Bridge {
    child: Option<Child>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `edi-bridge run` with the notify socket and a 1 s watchdog; returns it, the
/// listener's base URL (from the `edi-bridge started.` line) and a channel that gets one message
/// per `intake resumed` log line.
async fn spawn(ws: &Workspace, notify: &Path, log: &Path) -> (Bridge, String, mpsc::Receiver<()>) {
    let config = ws.path("edi-bridge.toml");
    let text = format!("shutdown_grace_secs = {GRACE_SECS}\n{}", ws.config_text(""));
    std::fs::write(&config, text).unwrap();
    let mut child = support::edi_bridge_command()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", notify)
        .env("WATCHDOG_USEC", "1000000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edi-bridge");
    let out = std::fs::File::create(log).unwrap();
    let (resumed_tx, resumed) = mpsc::channel();
    let started = support::tee_stderr(&mut child, out, String::new(), move |line| {
        if String::from_utf8_lossy(line).contains("intake resumed") {
            let _ = resumed_tx.send(());
        }
    });
    let addr = match tokio::time::timeout(EVENT_TIMEOUT, started).await {
        Ok(Ok(Some(addr))) => addr,
        _ => panic!("edi-bridge did not start\nlog:\n{}", read(log)),
    };
    (
        Bridge { child: Some(child) },
        format!("http://{addr}"),
        resumed,
    )
}

/// POSTs the sample for (event, PO), signed; status and how long the answer took.
async fn post(base: &str, event: &str, po: &str) -> (u16, Duration) {
    let started = Instant::now();
    let (status, _) = support::post(
        &format!("{base}/webhooks/ingram/purchase-orders"),
        &support::sample_with(event, po),
        Some(&support::sign(event)),
    )
    .await;
    (status, started.elapsed())
}

/// A GET bounded by `within`: status and body, or a panic naming the hang.
async fn get_within(base: &str, path: &str, within: Duration) -> (u16, String) {
    let started = Instant::now();
    let resp = support::client()
        .get(format!("{base}{path}"))
        .timeout(within)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} not answered within {within:?}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert!(
        started.elapsed() <= within,
        "GET {path} took {:?}",
        started.elapsed()
    );
    (status, body)
}

/// The PO of each 850 in the outbox, counted.
fn outbox_pos(ws: &Workspace) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in ws.files("outbox") {
        let segs = support::segments(&support::read(&p));
        if let Some(beg) = support::find(&segs, "BEG").first() {
            *out.entry(beg[3].clone()).or_default() += 1;
        }
    }
    out
}

/// Waits (on inotify events in the outbox) until every PO in `acked` has an 850; then each must
/// have exactly one.
fn assert_one_850_each(ws: &Workspace, acked: &[String], log: &Path) {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel();
    let mut w = notify::recommended_watcher(move |_| {
        let _ = tx.send(());
    })
    .unwrap();
    w.watch(&ws.path("outbox"), notify::RecursiveMode::NonRecursive)
        .unwrap();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !acked.iter().all(|po| outbox_pos(ws).contains_key(po)) {
        let left = deadline.saturating_duration_since(Instant::now());
        // A bounded wait for the next change; the loop re-checks either way.
        if rx.recv_timeout(left.min(Duration::from_secs(1))).is_err() && left.is_zero() {
            panic!(
                "acknowledged POs without an 850: have {:?}, want {acked:?}\nlog:\n{}",
                outbox_pos(ws),
                read(log)
            );
        }
    }
    let have = outbox_pos(ws);
    for po in acked {
        assert_eq!(have.get(po), Some(&1), "850s per PO: {have:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_state_volume_refuses_fast_says_why_stops_the_watchdog_and_recovers_by_itself() {
    let ws = Workspace::new();
    let state = ws.path("state");
    let Some(_tmpfs) = Tmpfs::mount(&state, "8m") else {
        eprintln!("cannot mount a tmpfs here; the fault-hook test covers the same ground");
        return;
    };
    let log = ws.path("edi-bridge.log");
    let notify = notify_socket(&ws.path("notify.sock"));
    let (mut bridge, base, resumed) = spawn(&ws, &ws.path("notify.sock"), &log).await;
    wait_notify(&notify, "READY=1", &log);
    wait_notify(&notify, "WATCHDOG=1", &log);

    let mut acked = Vec::new();
    assert_eq!(post(&base, "EV-D1", "PO-D1").await.0, 200);
    acked.push("PO-D1".to_string());

    // Fill the volume. A write may still fit in space sled already holds: keep sending new
    // events until one is refused; each answer must come fast.
    let filler = fill(&state);
    let mut refused = None;
    for n in 2..60 {
        let (ev, po) = (format!("EV-D{n}"), format!("PO-D{n}"));
        let (status, took) = post(&base, &ev, &po).await;
        assert!(
            took < REFUSE_WITHIN,
            "webhook answered {status} after {took:?}"
        );
        match status {
            200 => acked.push(po),
            503 => {
                refused = Some((ev, po));
                break;
            }
            other => panic!("webhook on a full disk: {other}\nlog:\n{}", read(&log)),
        }
    }
    let (refused_ev, refused_po) = refused.expect("a webhook is refused once the disk is full");

    let (status, body) = get_within(&base, "/readyz", READYZ_WITHIN).await;
    assert_eq!(status, 503, "/readyz: {body}");
    assert!(
        body.contains("No space left"),
        "/readyz gives the reason: {body}"
    );
    let (status, body) = get_within(&base, "/healthz", READYZ_WITHIN).await;
    assert_eq!(status, 503, "/healthz: {body}");
    let metrics = get_within(&base, "/metrics", Duration::from_secs(5))
        .await
        .1;
    assert!(metrics.contains("edi_bridge_store_healthy 0"), "{metrics}");
    // While failing, refusals come at once.
    let (status, took) = post(&base, "EV-DX", "PO-DX").await;
    assert_eq!(status, 503);
    assert!(took < REFUSE_WITHIN, "{took:?}");
    wait_watchdog_silent(&notify, Duration::from_secs(3), &log);

    // Space returns: the watchdog is fed again once the store writes, with no restart.
    std::fs::remove_file(&filler).unwrap();
    wait_resumed(&resumed, &log);
    wait_notify(&notify, "WATCHDOG=1", &log);
    assert_eq!(get_within(&base, "/readyz", READYZ_WITHIN).await.0, 200);
    assert_eq!(post(&base, "EV-D100", "PO-D100").await.0, 200);
    acked.push("PO-D100".into());
    // Ingram retries the refused event: stored now (or found stored), answered 2xx.
    assert_eq!(post(&base, &refused_ev, &refused_po).await.0, 200);
    acked.push(refused_po);
    assert_one_850_each(&ws, &acked, &log);

    // Full again, then SIGTERM: the daemon ends within the grace period.
    let filler = fill(&state);
    for n in 200..260 {
        if post(&base, &format!("EV-D{n}"), &format!("PO-D{n}"))
            .await
            .0
            == 503
        {
            break;
        }
    }
    let child = bridge.child.take().unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let waiter = std::thread::spawn(move || {
        let mut child = child;
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let bound = Duration::from_secs(GRACE_SECS + 3);
    if rx.recv_timeout(bound).is_err() {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("no exit within {bound:?} of SIGTERM\nlog:\n{}", read(&log));
    }
    let status = waiter.join().unwrap().unwrap();
    eprintln!("exit {status} after {:?}", started.elapsed());

    // A restart (what systemd does after the watchdog) on the still full volume: the daemon
    // comes up and says why, rather than exiting into a restart loop; then recovers by itself.
    let notify_path = ws.path("notify2.sock");
    let notify = notify_socket(&notify_path);
    let (_bridge, base, resumed) = spawn(&ws, &notify_path, &log).await;
    wait_notify(&notify, "READY=1", &log);
    let (status, body) = get_within(&base, "/readyz", READYZ_WITHIN).await;
    assert_eq!(status, 503, "/readyz: {body}");
    assert!(
        body.contains("No space left"),
        "/readyz gives the reason: {body}"
    );
    assert_eq!(post(&base, "EV-D300", "PO-D300").await.0, 503);
    std::fs::remove_file(&filler).unwrap();
    wait_resumed(&resumed, &log);
    wait_notify(&notify, "WATCHDOG=1", &log);
    assert_eq!(post(&base, "EV-D301", "PO-D301").await.0, 200);
    acked.push("PO-D301".into());
    assert_one_850_each(&ws, &acked, &log);
}

#[tokio::test]
async fn fault_hook_failing_store_refuses_fast_says_why_and_recovers() {
    let ws = Workspace::new();
    let d = ws
        .start_text(&format!(
            "shutdown_grace_secs = {GRACE_SECS}\n{}",
            ws.config_text("")
        ))
        .await;
    let base = format!("http://{}", d.r().addr);
    assert_eq!(post(&base, "EV-F1", "PO-F1").await.0, 200);
    let store = d.r().store.clone();

    store.faults().fail_writes(true);
    let (status, took) = post(&base, "EV-F2", "PO-F2").await;
    assert_eq!(status, 503);
    assert!(took < REFUSE_WITHIN, "{took:?}");
    let (status, body) = get_within(&base, "/readyz", READYZ_WITHIN).await;
    assert_eq!(status, 503);
    assert!(body.contains("no space left"), "{body}");
    assert_eq!(get_within(&base, "/healthz", READYZ_WITHIN).await.0, 503);
    // The watchdog verdict (what the pinger asks before each WATCHDOG=1), for a short interval.
    let interval = Duration::from_millis(100);
    let failing_since = Instant::now();
    while d.r().liveness.verdict(&store, interval).is_none() {
        assert!(
            failing_since.elapsed() < EVENT_TIMEOUT,
            "watchdog still fed"
        );
        tokio::task::yield_now().await;
    }

    store.faults().fail_writes(false);
    // The committer recovers on its own heartbeat: wait for its published health.
    let mut rx = d.r().events.subscribe();
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    while store.health().failing.is_some() {
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_millis(100)),
            rx.recv(),
        )
        .await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never recovered"
        );
    }
    assert!(d.r().liveness.verdict(&store, interval).is_none());
    assert_eq!(get_within(&base, "/readyz", READYZ_WITHIN).await.0, 200);
    assert_eq!(post(&base, "EV-F3", "PO-F3").await.0, 200);
    assert_eq!(post(&base, "EV-F2", "PO-F2").await.0, 200);
    d.wait_written(3).await;
    for po in ["PO-F1", "PO-F2", "PO-F3"] {
        assert_eq!(outbox_pos(&ws).get(po), Some(&1), "{:?}", outbox_pos(&ws));
    }

    // Failing again, then cancel: the drain and the final flush end within the grace period.
    store.faults().fail_writes(true);
    assert_eq!(post(&base, "EV-F4", "PO-F4").await.0, 503);
    let mut d = d;
    let started = Instant::now();
    d.token.cancel();
    let r = d.running.take().unwrap().wait().await;
    assert!(r.is_err(), "the final flush failed and says so");
    assert!(
        started.elapsed() < Duration::from_secs(GRACE_SECS + 2),
        "{:?}",
        started.elapsed()
    );
}
