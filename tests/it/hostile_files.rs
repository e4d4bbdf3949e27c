//! The ERP's directories are writable by other accounts: what such an account can plant there
//! (symlinks at the outbox's names and in the inbox, a FIFO, a replaced processing area, a file
//! the daemon may not read), and what a writer can do to a file (keep it open and append, cut
//! its last ISA, send something that is not X12, send too much). Each test drives the real daemon against the emulator and
//! checks that nothing is written or read through a planted name and nothing is lost.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use edi_bridge::events::Outcome;

use crate::support::*;

const FAST: &str = "[inbox]\nsettle_ms = 100\nrescan_secs = 1\nincomplete_timeout_secs = 30\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n";

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A file outside the ERP's directories that an attacker would like overwritten or read.
fn victim(ws: &Workspace, content: &[u8]) -> std::path::PathBuf {
    let p = ws.path("victim.conf");
    std::fs::write(&p, content).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_never_writes_through_a_planted_symlink() {
    let ws = Workspace::new();
    let target = victim(&ws, b"root-owned secret config");
    // Every temp name the old writer would have used for the first interchanges, and the
    // final name of the third 850, point at the victim.
    std::fs::create_dir_all(ws.path("outbox")).unwrap();
    for isa13 in 1..=5u32 {
        for po in ["IM-SYM-1", "IM-SYM-2", "IM-SYM-3"] {
            let tmp = ws.path(&format!("outbox/.{po}.{isa13:09}.850.tmp"));
            std::os::unix::fs::symlink(&target, tmp).unwrap();
        }
    }
    let d = ws.start_with(FAST).await;
    for po in ["IM-SYM-1", "IM-SYM-2"] {
        let ev = format!("EV-{po}");
        let (s, b) = post(&d.url(), &sample_with(&ev, po), Some(&sign(&ev))).await;
        assert_eq!(s, 200, "{b}");
    }
    d.wait_written(2).await;
    assert_eq!(read(&target), b"root-owned secret config");
    let files = ws.files("outbox");
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert!(std::fs::symlink_metadata(f).unwrap().file_type().is_file());
        assert_eq!(mode(f), 0o640, "{f:?}");
        assert_eq!(find(&segments(&read(f)), "ST").len(), 1);
    }
    // A symlink at the very name the next 850 gets: the 850 is not written through it, the PO
    // stays queued, and once the name is cleared it is written.
    let next = format!("IM-SYM-3.{:09}.850", 3);
    std::os::unix::fs::symlink(&target, ws.path(&format!("outbox/{next}"))).unwrap();
    let ev = "EV-IM-SYM-3";
    let (s, _) = post(&d.url(), &sample_with(ev, "IM-SYM-3"), Some(&sign(ev))).await;
    assert_eq!(s, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !metrics(&d)
        .await
        .contains("edi_bridge_outbox_errors_total 1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox never refused the name"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(d.written_count(), 2);
    assert_eq!(read(&target), b"root-owned secret config");
    std::fs::remove_file(ws.path(&format!("outbox/{next}"))).unwrap();
    d.wait_written(3).await;
    d.stop().await;
    assert_eq!(read(&target), b"root-owned secret config");
    let third = ws.path(&format!("outbox/{next}"));
    assert!(std::fs::symlink_metadata(&third)
        .unwrap()
        .file_type()
        .is_file());
    assert_eq!(find(&segments(&read(&third)), "BEG")[0][3], "IM-SYM-3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_symlink_is_moved_as_it_is_and_never_read() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let secret = victim(&ws, b"SECRET-TOKEN-4242 do not quote me");
    // An X12 file outside the inbox that would make a real API call.
    let outside = ws.path("outside.855");
    std::fs::write(&outside, ack_855_for("IM-OUT-1", 7001)).unwrap();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    std::os::unix::fs::symlink(&secret, ws.path("inbox/secret.855")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.path("inbox/outside.855")).unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while outcomes.len() < 2 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(edi_bridge::events::Event::InboxFile { file, outcome })) => {
                outcomes.insert(file, outcome);
            }
            Ok(_) => {}
            Err(_) => panic!("timed out: {outcomes:?}"),
        }
    }
    for name in ["secret.855", "outside.855"] {
        let Some(Outcome::Rejected { reason, moved }) = outcomes.remove(name) else {
            panic!("{name} not rejected: {outcomes:?}")
        };
        assert!(
            reason.contains("not a regular file") && reason.contains("symlink"),
            "{reason}"
        );
        assert!(std::fs::symlink_metadata(&moved)
            .unwrap()
            .file_type()
            .is_symlink());
        let text = std::fs::read_to_string(format!("{}.reason.txt", moved.display())).unwrap();
        assert!(!text.contains("SECRET-TOKEN"), "{text}");
    }
    // A good file still flows, and it is the only call Ingram got.
    drop_inbox(&ws, "good.855", &ack_855_for("IM-GOOD-1", 7002));
    assert!(matches!(
        d.wait_inbox(&mut rx, "good.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    let m = metrics(&d).await;
    d.stop().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].path.contains("IM-GOOD-1"), "{}", calls[0].path);
    assert!(m.contains("edi_bridge_inbox_not_regular_total 2"), "{m}");
    assert_eq!(read(&secret), b"SECRET-TOKEN-4242 do not quote me");
    assert!(outside.exists(), "the symlink's target is never moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_in_the_inbox_neither_blocks_nor_stops_the_daemon() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        ws.path("inbox/pipe.855").as_path(),
        rustix::fs::Mode::from_raw_mode(0o666),
    )
    .unwrap();
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "pipe.855").await else {
        panic!("not rejected")
    };
    assert!(reason.contains("FIFO"), "{reason}");
    let m = metrics(&d).await;
    assert!(m.contains("edi_bridge_inbox_not_regular_total 1"), "{m}");
    drop_inbox(&ws, "good.855", &ack_855_for("IM-FIFO-1", 7101));
    assert!(matches!(
        d.wait_inbox(&mut rx, "good.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processing_area_replaced_by_a_symlink_is_refused() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // Someone else's directory full of files the daemon must not touch.
    let elsewhere = ws.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("payroll.csv"), b"name,salary\n").unwrap();
    std::fs::write(elsewhere.join("other.855"), ack_855_for("IM-ELSE-1", 7201)).unwrap();
    std::fs::create_dir_all(ws.path("inbox")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, ws.path("inbox/.processing")).unwrap();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "good.855", &ack_855_for("IM-PROC-1", 7202));
    assert!(matches!(
        d.wait_inbox(&mut rx, "good.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let calls = sim.wait_for_calls(1, Duration::from_secs(20)).await;
    d.stop().await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].path.contains("IM-PROC-1"));
    // The other directory is untouched; the impostor link sits in error/ with its reason, and
    // the processing area is a real private directory now.
    assert_eq!(read(&elsewhere.join("payroll.csv")), b"name,salary\n");
    assert!(elsewhere.join("other.855").exists());
    let p = ws.path("inbox/.processing");
    let meta = std::fs::symlink_metadata(&p).unwrap();
    assert!(meta.is_dir() && mode(&p) == 0o700, "{meta:?}");
    let refused = ws.path("error/inbox.processing.refused");
    assert!(std::fs::symlink_metadata(&refused)
        .unwrap()
        .file_type()
        .is_symlink());
    let reason = std::fs::read_to_string(ws.path("error/inbox.processing.refused.reason.txt"));
    assert!(reason.unwrap().contains("not the daemon's own directory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_keeps_the_file_open_and_appends_loses_nothing() {
    use std::io::Write;
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    let mut f = std::fs::File::create(ws.path("inbox/two.855")).unwrap();
    f.write_all(&ack_855_for("IM-OPEN-1", 7301)).unwrap();
    f.flush().unwrap();
    // The writer pauses well past settle_ms with the file open: a pause is the point here.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ws.names("inbox").contains(&"two.855".to_string()),
        "taken while its writer still had it open"
    );
    f.write_all(&ack_855_for("IM-OPEN-2", 7302)).unwrap();
    drop(f);
    assert!(matches!(
        d.wait_inbox(&mut rx, "two.855").await,
        Outcome::Archived { jobs: 2, .. }
    ));
    let calls = sim.wait_for_calls(2, Duration::from_secs(20)).await;
    d.stop().await;
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert!(paths.iter().any(|p| p.contains("IM-OPEN-1")), "{paths:?}");
    assert!(paths.iter().any(|p| p.contains("IM-OPEN-2")), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_isa_cut_mid_way_is_waited_for_not_quarantined() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    let d = ws.start_against(&sim, FAST).await;
    let mut rx = d.r().events.subscribe();
    let first = ack_855_for("IM-CUT-1", 7401);
    let second = ack_855_for("IM-CUT-2", 7402);
    // The first interchange is whole; the second stops 40 bytes into its ISA. Written under a
    // name the daemon takes, then completed by rename over it (as a slow writer's last write).
    let mut partial = first.clone();
    partial.extend_from_slice(&second[..40]);
    drop_inbox(&ws, "slow.855", &partial);
    // Long enough for several scans past settle_ms: the file must still be waiting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ws.names("inbox").contains(&"slow.855".to_string()),
        "a cut ISA was taken: {:?} / error: {:?}",
        ws.names("inbox"),
        ws.names("error")
    );
    assert!(ws.names("error").is_empty(), "{:?}", ws.names("error"));
    let mut whole = first;
    whole.extend_from_slice(&second);
    drop_inbox(&ws, "slow.855", &whole);
    assert!(matches!(
        d.wait_inbox(&mut rx, "slow.855").await,
        Outcome::Archived { jobs: 2, .. }
    ));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_x12_and_too_big_files_go_to_error_at_once() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // An incomplete timeout far beyond the test's waits: only "at once" can pass.
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 100\nrescan_secs = 1\nincomplete_timeout_secs = 3600\nmax_file_bytes = 65536\n",
        )
        .await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n");
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "report.pdf").await else {
        panic!("not rejected")
    };
    assert!(
        reason.starts_with("not an X12 file") && reason.contains("%PDF"),
        "{reason}"
    );
    let mut big = ack_855_for("IM-BIG-1", 7501);
    big.resize(70_000, b'\n');
    drop_inbox(&ws, "big.855", &big);
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "big.855").await else {
        panic!("not rejected")
    };
    assert!(
        reason.contains("too big") && reason.contains("max_file_bytes = 65536"),
        "{reason}"
    );
    d.stop().await;
    assert!(sim.calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_daemon_cannot_read_is_reported_once_then_moved_to_error() {
    use std::process::{Command, Stdio};
    let ws = Workspace::new();
    for d in ["inbox", "outbox", "archive", "error", "state"] {
        std::fs::create_dir_all(ws.path(d)).unwrap();
    }
    let config = ws.path("edi-bridge.toml");
    std::fs::write(
        &config,
        ws.config_text("[inbox]\nsettle_ms = 50\nrescan_secs = 1\nincomplete_timeout_secs = 3\n"),
    )
    .unwrap();
    // Root reads every file, so as root the daemon runs as nobody, who then owns the workspace;
    // the locked file stays root's own.
    let as_root = rustix::process::geteuid().is_root();
    let mut cmd = if as_root {
        let chown = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(ws.dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "CREDENTIALS_DIRECTORY",
    ] {
        cmd.env_remove(var);
    }
    let locked = ws.path("inbox/locked.855");
    std::fs::write(&locked, ack_855_for("IM-LOCK-1", 7601)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut child = cmd
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edi-bridge");
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let log = ws.path("daemon.log");
    let started = tee_stderr(
        &mut child,
        std::fs::File::create(&log).unwrap(),
        String::new(),
        move |l| {
            let _ = lines_tx.send(String::from_utf8_lossy(l).into_owned());
        },
    );
    let addr = match tokio::time::timeout(Duration::from_secs(30), started).await {
        Ok(Ok(Some(addr))) => addr,
        other => panic!(
            "edi-bridge did not start ({other:?})\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    let moved = ws.path("error/locked.855");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut complaints = 0;
    let mut rejected = false;
    while !rejected {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("never moved to error/\n{}", read_log(&log)));
        complaints += usize::from(line.contains("Cannot read an inbox file"));
        rejected = line.contains("Inbox file rejected.") && line.contains("locked.855");
    }
    let metrics = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        complaints,
        1,
        "logged once, not per scan:\n{}",
        read_log(&log)
    );
    let unreadable: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("edi_bridge_inbox_unreadable_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no unreadable counter:\n{metrics}"));
    assert!(unreadable >= 1, "{metrics}");
    assert!(std::fs::symlink_metadata(&moved).is_ok(), "in error/");
    let reason = std::fs::read_to_string(ws.path("error/locked.855.reason.txt")).unwrap();
    assert!(reason.contains("cannot be read by the daemon"), "{reason}");
    assert!(reason.contains("ermission denied"), "{reason}");
}

fn read_log(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Every entry under `dir` (not following symlinks) with its mode.
fn modes_under(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32, bool)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), meta.permissions().mode() & 0o7777, meta.is_dir()));
        if meta.is_dir() {
            modes_under(&p, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_directory_open_to_others_or_owned_by_another_user_is_refused_at_start() {
    use std::os::unix::fs::MetadataExt;
    let ws = Workspace::new();
    let state = ws.path("state");
    let config = ws.path("edi-bridge.toml");
    std::fs::write(&config, ws.config_text("")).unwrap();
    let check = || {
        let out = edi_bridge_command()
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let start = || async {
        let loaded = edi_bridge::config::Config::load(&config).unwrap();
        let token = tokio_util::sync::CancellationToken::new();
        edi_bridge::daemon::start(loaded, token).await
    };
    std::fs::create_dir(&state).unwrap();
    for loose in [0o777, 0o770, 0o702] {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(loose)).unwrap();
        let Err(e) = start().await else {
            panic!("a state directory at {loose:o} was used")
        };
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&state.display().to_string())
                && msg.contains(&format!("chmod 700 {}", state.display())),
            "{msg}"
        );
        assert_eq!(mode(&state), loose, "refused, not changed");
        let (code, text) = check();
        assert_eq!(code, Some(64), "check reports it: {text}");
        assert!(text.contains("chmod 700"), "{text}");
        assert!(
            !state.join("db").exists() && !state.join("admin.sock").exists(),
            "nothing was created in it"
        );
    }
    // Owned by another user (here nobody): refused, with the chown that fixes it.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), None)
        .expect("this test runs as root (as in CI) so that it can give the directory away");
    let Err(e) = start().await else {
        panic!("a state directory owned by another user was used")
    };
    let msg = format!("{e:#}");
    let me = edi_bridge::files::my_uid();
    assert!(
        msg.contains("uid 65534") && msg.contains(&format!("chown {me} {}", state.display())),
        "{msg}"
    );
    let (code, text) = check();
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains("chown"), "{text}");

    // Fixed as the message says: the daemon starts, and all it creates in the directory is
    // private (files 0600, directories 0700).
    std::os::unix::fs::chown(&state, Some(me), None).unwrap();
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    let d = ws.start().await;
    let (s, _) = post(
        &d.url(),
        &sample_with("HF-STATE-1", "IM-HF-STATE-1"),
        Some(&sign("HF-STATE-1")),
    )
    .await;
    assert_eq!(s, 200);
    d.wait_written(1).await;
    let mut entries = Vec::new();
    modes_under(&state, &mut entries);
    assert!(entries.len() >= 4, "{entries:?}");
    for (p, m, is_dir) in &entries {
        let want = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(*m & 0o777, want, "{} is {m:o}", p.display());
        assert_eq!(std::fs::symlink_metadata(p).unwrap().uid(), me);
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_name_is_too_long_for_a_reason_suffix_still_gets_its_reason() {
    let ws = Workspace::new();
    let d = ws.start_with(FAST).await;
    let mut rx = d.r().events.subscribe();
    let name = format!("{}.855", "n".repeat(246));
    assert_eq!(name.len(), 250);
    std::fs::write(ws.path("inbox/.long.part"), b"%PDF-1.7 not x12\n").unwrap();
    std::fs::rename(
        ws.path("inbox/.long.part"),
        ws.path(&format!("inbox/{name}")),
    )
    .unwrap();
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, &name).await else {
        panic!("not rejected")
    };
    assert!(reason.starts_with("not an X12 file"), "{reason}");
    d.stop().await;
    let names = ws.names("error");
    assert!(names.contains(&name), "{names:?}");
    let reasons: Vec<&String> = names
        .iter()
        .filter(|n| n.ends_with(".reason.txt"))
        .collect();
    assert_eq!(reasons.len(), 1, "one reason file: {names:?}");
    assert!(reasons[0].len() <= 255);
    // Its name is derived from the file's name alone (the same every time), and it names the
    // file in full.
    assert_eq!(
        reasons[0].as_str(),
        edi_bridge::files::reason_name(std::ffi::OsStr::new(&name))
            .to_str()
            .unwrap()
    );
    let text = std::fs::read_to_string(ws.path(&format!("error/{}", reasons[0]))).unwrap();
    assert!(text.contains(&name), "{text}");
    assert!(text.contains("not an X12 file"), "{text}");
    assert_eq!(mode(&ws.path(&format!("error/{}", reasons[0]))), 0o640);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_become_complete_goes_to_error_at_once_and_a_waiting_one_is_shown() {
    let (sim, _t) = sim(|_| {}).await;
    let ws = Workspace::new();
    // An incomplete timeout far beyond the test's waits: only "at once" can pass.
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 100\nrescan_secs = 1\nincomplete_timeout_secs = 3600\n",
        )
        .await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "garbage.855", b"ISA*00*garbage garbage garbage~");
    let Outcome::Rejected { reason, .. } = d.wait_inbox(&mut rx, "garbage.855").await else {
        panic!("not rejected")
    };
    assert!(
        reason.contains("bad_isa") || reason.contains("isa"),
        "{reason}"
    );
    // A whole interchange, then bytes that cannot be an ISA.
    let mut tail = ack_855_for("IM-TAIL-1", 7601);
    tail.extend_from_slice(b"ISA*00*garbage that is not a header~");
    drop_inbox(&ws, "tail.855", &tail);
    assert!(matches!(
        d.wait_inbox(&mut rx, "tail.855").await,
        Outcome::Rejected { .. }
    ));
    // A file cut inside a valid ISA waits, and says so in /metrics and in the store.
    let mut partial = ack_855_for("IM-WAIT-1", 7602);
    partial.extend_from_slice(&ack_855_for("IM-WAIT-2", 7603)[..40]);
    drop_inbox(&ws, "slow.855", &partial);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = d.r().store.inbox_waiting().unwrap();
        if waiting.iter().any(|w| w.name == "slow.855") {
            assert_eq!(waiting[0].timeout_secs, 3600);
            assert_eq!(waiting[0].size, partial.len() as u64);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never shown as waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = metrics(&d).await;
    assert!(m.contains("edi_bridge_inbox_waiting_files 1\n"), "{m}");
    d.stop().await;
    assert!(ws.names("inbox").contains(&"slow.855".to_string()));
    // The wait counts from the file's last write, not from a start: a file last written an
    // hour ago is past a 60 s timeout at once after a restart.
    let f = std::fs::File::options()
        .write(true)
        .open(ws.path("inbox/slow.855"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(f);
    let d = ws
        .start_against(
            &sim,
            "[inbox]\nsettle_ms = 100\nrescan_secs = 1\nincomplete_timeout_secs = 60\n",
        )
        .await;
    // (Its first scan may come before a subscription could: the error directory is the truth;
    // the reason file may be seen between its creation and its write.)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let reason =
            std::fs::read_to_string(ws.path("error/slow.855.reason.txt")).unwrap_or_default();
        if reason.contains("incomplete") || std::time::Instant::now() > deadline {
            break reason;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(reason.contains("incomplete"), "{reason}");
    d.stop().await;
    assert!(sim.calls().is_empty());
}
