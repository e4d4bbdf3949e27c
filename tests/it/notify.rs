//! The systemd contract of the real `edi-bridge` binary, as a child process: `run` reports
//! READY=1, pings WATCHDOG=1 when `WATCHDOG_USEC` asks for it, says STOPPING=1 on SIGTERM and
//! exits 0; `check` exits 64 naming file:line:key for a bad config and 0 for a good one, including
//! with secrets only as systemd credentials and with the shipped `systemd/edi-bridge.toml`. Every
//! wait is a socket read timeout or a channel timeout on a real event, never a sleep.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use edi_bridge::config::ENV_WEBHOOK_SECRET;

use crate::support::{edi_bridge_command, Workspace, SECRET};

/// Upper bound for each awaited event; generous for a loaded CI machine.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the support workspace's config without its `webhook_secret*_file` keys, so the secret
/// has to come from the environment or from systemd credentials.
fn config_without_secret_files(ws: &Workspace, name: &str) -> PathBuf {
    let text: String = ws
        .config_text("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("webhook_secret"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = ws.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The `$NOTIFY_SOCKET` end: every datagram the daemon sent, split into `KEY=VALUE` lines.
struct NotifySocket {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        NotifySocket {
            sock: UnixDatagram::bind(path).expect("bind the notify socket"),
            seen: Vec::new(),
        }
    }

    fn count(&self, state: &str) -> usize {
        self.seen.iter().filter(|s| *s == state).count()
    }

    /// Reads datagrams until `state` has been seen `n` times. Fails on timeout, or once the child
    /// has exited without sending it, with everything received so far and the child's log.
    fn wait_for(&mut self, state: &str, n: usize, child: &mut Child, log: &Path) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while self.count(state) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "timed out waiting for {state} x{n}; got {:?}\nchild log:\n{}",
                    self.seen,
                    read_log(log)
                );
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                // Whatever it sent before exiting is already queued on the socket.
                self.sock.set_nonblocking(true).unwrap();
                while self.recv_one() {}
                self.sock.set_nonblocking(false).unwrap();
                assert!(
                    self.count(state) >= n,
                    "edi-bridge exited ({status}) before {state} x{n}; got {:?}\nchild log:\n{}",
                    self.seen,
                    read_log(log)
                );
                return;
            }
            // Short slices so a child that dies is noticed early; each slice ends on a datagram.
            self.sock
                .set_read_timeout(Some(left.min(Duration::from_millis(500))))
                .unwrap();
            self.recv_one();
        }
    }

    /// Receives one datagram into `seen`; false when none arrived within the read timeout (or,
    /// non-blocking, none is queued).
    fn recv_one(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(len) => {
                self.seen.extend(
                    String::from_utf8_lossy(&buf[..len])
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                false
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Kills the child if the test fails before it exits on its own.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for the child to exit, bounded: a helper thread blocks in `wait`.
fn wait_with_timeout(mut child: Child, log: &Path) -> ExitStatus {
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(EVENT_TIMEOUT) {
        Ok(status) => status.expect("wait for edi-bridge"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!(
                "edi-bridge did not exit within {EVENT_TIMEOUT:?} of SIGTERM\nchild log:\n{}",
                read_log(log)
            );
        }
    }
}

#[test]
fn run_notifies_ready_watchdog_and_stopping_then_exits_0_on_sigterm() {
    let ws = Workspace::new();
    let config = config_without_secret_files(&ws, "edi-bridge.toml");
    let socket_path = ws.path("notify.sock");
    let mut notify = NotifySocket::bind(&socket_path);
    let log = ws.path("edi-bridge.log");

    let child = edi_bridge_command()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .env(ENV_WEBHOOK_SECRET, SECRET)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn edi-bridge");
    let mut guard = KillOnDrop(Some(child));
    let child = guard.0.as_mut().unwrap();

    notify.wait_for("READY=1", 1, child, &log);
    assert!(
        ws.path("state/db").is_dir(),
        "READY=1 before the store was opened"
    );
    // Two pings: the pinger is periodic (every WATCHDOG_USEC/2 = 100 ms), not a one-off.
    notify.wait_for("WATCHDOG=1", 2, child, &log);
    assert_eq!(notify.count("STOPPING=1"), 0, "{:?}", notify.seen);

    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success(), "kill -TERM {pid}: {kill}");
    notify.wait_for("STOPPING=1", 1, child, &log);

    let status = wait_with_timeout(guard.0.take().unwrap(), &log);
    assert_eq!(
        status.code(),
        Some(0),
        "{status}\nchild log:\n{}",
        read_log(&log)
    );
    let ready = notify.seen.iter().position(|s| s == "READY=1");
    let stopping = notify.seen.iter().position(|s| s == "STOPPING=1");
    assert!(ready < stopping, "order: {:?}", notify.seen);
}

fn check(config: &Path, credentials: Option<&Path>) -> Output {
    let mut cmd = edi_bridge_command();
    cmd.arg("check").arg("--config").arg(config);
    if let Some(dir) = credentials {
        cmd.env("CREDENTIALS_DIRECTORY", dir);
    }
    cmd.output().expect("run edi-bridge check")
}

fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Writes `text` to `name` in the workspace, runs `check` on it, and expects exit 64 with a line
/// `FILE:LINE: WHAT` on stderr, where LINE is that of the first line of `text` equal to `at`.
fn assert_check_names(ws: &Workspace, name: &str, text: &str, at: &str, what: &str) {
    let line = text.lines().position(|l| l == at).expect("marker line") + 1;
    let path = ws.path(name);
    std::fs::write(&path, text).unwrap();
    let out = check(&path, None);
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:{line}: {what}", path.display());
    assert!(stderr.contains(&expected), "want {expected:?} in\n{stderr}");
}

#[test]
fn check_exits_64_naming_file_line_key_and_0_on_a_good_config() {
    let ws = Workspace::new();

    let good = ws.path("good.toml");
    std::fs::write(&good, ws.config_text("")).unwrap();
    let out = check(&good, None);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // `listen` is on line 2 of the support config.
    let bad_listen = "listen = \"not-an-address\"";
    let text = ws
        .config_text("")
        .replace("listen = \"127.0.0.1:0\"", bad_listen);
    assert_eq!(text.lines().nth(1), Some(bad_listen));
    assert_check_names(&ws, "bad.toml", &text, bad_listen, "server.listen:");

    // A TOML syntax error is also file:line: key.
    let big = "max_body_bytes = \"big\"";
    let text = ws.config_text("").replace("max_body_bytes = 65536", big);
    assert_check_names(&ws, "broken.toml", &text, big, "max_body_bytes:");

    // A value out of range, too.
    let text = ws
        .config_text("")
        .replace("[outbox]\n", "[outbox]\nnice = 25\n");
    assert_check_names(
        &ws,
        "nice.toml",
        &text,
        "nice = 25",
        "outbox.nice: must be 0 to 19",
    );
}

/// What the unit's `LoadCredential=` lines provide.
fn credentials(ws: &Workspace) -> PathBuf {
    let dir = ws.path("credentials");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("webhook_secret"), "current-secret\n").unwrap();
    std::fs::write(dir.join("webhook_secret_previous"), "previous-secret\n").unwrap();
    std::fs::write(dir.join("client_secret"), "client-secret\n").unwrap();
    dir
}

#[test]
fn check_takes_secrets_from_systemd_credentials() {
    let ws = Workspace::new();
    let config = config_without_secret_files(&ws, "creds.toml");

    let out = check(&config, None);
    assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("webhook_secret"),
        "{}",
        describe(&out)
    );

    let creds = credentials(&ws);
    let out = check(&config, Some(&creds));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("webhook secrets: 2")
            && stdout.contains("client secret: set")
            && stdout.contains("archive: kept forever"),
        "{}",
        describe(&out)
    );
}

#[test]
fn shipped_systemd_example_config_passes_check() {
    let ws = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = ws.path("edi-bridge.toml");
    // The ERP's directories must exist: the workspace's stand in for /srv/erp.
    let shipped = std::fs::read_to_string(root.join("systemd/edi-bridge.toml")).unwrap();
    std::fs::write(
        &config,
        shipped.replace("\"/srv/erp/", &format!("\"{}/", ws.dir.path().display())),
    )
    .unwrap();
    std::fs::create_dir(ws.path("mappings")).unwrap();
    std::fs::copy(
        root.join("mappings/ingram.toml"),
        ws.path("mappings/ingram.toml"),
    )
    .unwrap();
    let creds = credentials(&ws);
    let out = check(&config, Some(&creds));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
