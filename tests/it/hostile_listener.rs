//! A hostile client of the public listener (issue 11). The acceptance runs the real binary under
//! a 1,024 descriptor limit (`prlimit --nofile=1024:1024`): 1,100 clients that keep re-sending
//! half a request head must not keep a signed webhook or the inbox from being served, and the
//! server must close their sockets; 600 clients stalled inside 1 MiB bodies must not drive the
//! daemon's RSS over 300 MiB. In-process tests pin each limit on its own: the header, body and
//! idle deadlines, the connection cap and the body slots.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edi_bridge::config::{ENV_CLIENT_SECRET, ENV_WEBHOOK_SECRET};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use tokio_util::sync::CancellationToken;

use crate::support::{self, Workspace, CLIENT_SECRET, SECRET};

const WEBHOOK_PATH: &str = "/webhooks/ingram/purchase-orders";
/// The head every half-header client sends: the request line and part of a header, no end.
const HALF_HEAD: &[u8] =
    b"POST /webhooks/ingram/purchase-orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl";

/// Raises this test process's soft descriptor limit to its hard limit (1,100 sockets and more).
fn raise_own_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|n| n >= 4096),
        "the test needs at least 4096 descriptors, has {now:?}"
    );
}

/// The support config with `keys` added to `[server]`.
fn with_server_keys(text: &str, keys: &str) -> String {
    text.replace(
        "max_body_bytes = 65536\n",
        &format!("max_body_bytes = 65536\n{keys}\n"),
    )
}

/// `edi-bridge run` as a child under `prlimit --nofile=N:N`, its stderr copied to a log file.
struct Bridge {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl Bridge {
    async fn spawn(ws: &Workspace, config_text: &str, nofile: u64) -> Bridge {
        // Secrets through the environment, as crash.rs does: the config keeps no secret files.
        let text: String = config_text
            .lines()
            .filter(|l| {
                let l = l.trim_start();
                !l.starts_with("webhook_secret") && !l.starts_with("client_secret_file")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let config = ws.path("hostile.toml");
        std::fs::write(&config, text).unwrap();
        let log = ws.path("hostile.log");
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(support::BIN);
        for var in [
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "CREDENTIALS_DIRECTORY",
            edi_bridge::config::ENV_WEBHOOK_SECRET_PREVIOUS,
        ] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env(ENV_WEBHOOK_SECRET, SECRET)
            .env(ENV_CLIENT_SECRET, CLIENT_SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn prlimit edi-bridge");
        let out = std::fs::File::create(&log).expect("create the log");
        let rx = support::tee_stderr(&mut child, out, String::new(), |_| {});
        let addr = match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(Some(addr))) => addr.parse::<SocketAddr>().expect("listen= is an address"),
            other => panic!(
                "edi-bridge did not start ({other:?}, exit {:?})\nlog:\n{}",
                child.try_wait(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        Bridge { child, log, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The child's resident set size, from `/proc/PID/status`.
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's `/metrics` text (the scrape waits its turn like any client).
    async fn metrics(&self) -> String {
        slow_client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client with a 60 s timeout (the acceptance bound), new connection per request.
fn slow_client() -> reqwest::Client {
    let _ = support::client(); // installs the rustls provider
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The value of one sample line in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// What one persistent half-header client saw.
#[derive(Default, Debug)]
struct Stalled {
    /// Connections the server closed (EOF or reset) while the head was still incomplete.
    closed: usize,
    /// The longest a connection stayed open (connect to close), backlog wait included.
    longest: Duration,
    /// Connections still open after `STALL_BOUND`.
    not_closed: usize,
    /// The server answered with bytes instead of closing.
    answered: usize,
}

/// A half-sent head that is never finished must be closed by the server within this (from
/// the client's side, so the wait in the kernel's backlog counts too).
const STALL_BOUND: Duration = Duration::from_secs(45);

/// Connects, sends half a head, waits for the server to close, and starts again, until `stop`.
/// `first` counts clients whose first half head is out.
async fn half_header_client(
    addr: SocketAddr,
    stop: CancellationToken,
    first: Arc<AtomicUsize>,
    first_closed: Arc<AtomicUsize>,
) -> Stalled {
    let mut seen = Stalled::default();
    let mut counted = false;
    while !stop.is_cancelled() {
        let opened = Instant::now();
        let stream = tokio::select! {
            s = TcpStream::connect(addr) => s,
            _ = stop.cancelled() => break,
        };
        let Ok(mut stream) = stream else {
            continue;
        };
        if stream.write_all(HALF_HEAD).await.is_err() {
            continue;
        }
        if !counted {
            first.fetch_add(1, Ordering::SeqCst);
        }
        let mut buf = [0u8; 512];
        let outcome = tokio::select! {
            r = tokio::time::timeout(STALL_BOUND, stream.read(&mut buf)) => r,
            _ = stop.cancelled() => break,
        };
        match outcome {
            Ok(Ok(0)) | Ok(Err(_)) => {
                seen.closed += 1;
                seen.longest = seen.longest.max(opened.elapsed());
                if !counted {
                    first_closed.fetch_add(1, Ordering::SeqCst);
                    counted = true;
                }
            }
            Ok(Ok(_)) => seen.answered += 1,
            Err(_) => {
                // Never closed: keep holding it, as an attacker would.
                seen.not_closed += 1;
                stop.cancelled().await;
                break;
            }
        }
    }
    seen
}

/// How many established connections wait in the accept queue of the listener on
/// 127.0.0.1:`port` (`rx_queue` of a LISTEN socket in `/proc/net/tcp`).
fn accept_queue(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 4 && f[1] == local && f[3] == "0A")
        .and_then(|f| f[4].split_once(':').map(|(_, rx)| rx.to_string()))
        .and_then(|rx| u64::from_str_radix(&rx, 16).ok())
        .expect("the daemon's listening socket in /proc/net/tcp")
}

/// Waits (bounded) until `counter` reaches `n`, looking every 50 ms.
async fn wait_count(counter: &AtomicUsize, n: usize, bound: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + bound;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}: {} of {n}",
            counter.load(Ordering::SeqCst)
        );
        tick.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_headers_from_1100_clients_starve_neither_webhooks_nor_the_inbox_at_1024_descriptors()
{
    raise_own_nofile();
    let (sim, _sim_stop) = support::sim(|_| {}).await;
    let ws = Workspace::new();
    let text = with_server_keys(
        &ws.config_text_for(
            &sim.base_url(),
            &sim.token_url(),
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n",
        ),
        "header_read_timeout_secs = 2",
    );
    let bridge = Bridge::spawn(&ws, &text, 1024).await;

    const CLIENTS: usize = 1100;
    let stop = CancellationToken::new();
    let first = Arc::new(AtomicUsize::new(0));
    let first_closed = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            tokio::spawn(half_header_client(
                bridge.addr,
                stop.clone(),
                first.clone(),
                first_closed.clone(),
            ))
        })
        .collect();
    wait_count(&first, CLIENTS, Duration::from_secs(60), "half heads sent").await;

    // The attack is in place once the daemon takes no more connections and clients queue in
    // its accept backlog (a client's connect can complete before the daemon accepts it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while accept_queue(bridge.addr.port()) < 64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never stopped accepting: accept queue {}",
            accept_queue(bridge.addr.port())
        );
        tick.tick().await;
    }

    // A signed webhook, sent while all 1,100 hold (and keep re-sending) half heads.
    let (ev, po) = ("HOSTILE-EV-1", "HOSTILE-PO-1");
    let sent = Instant::now();
    let resp = slow_client()
        .post(bridge.url(WEBHOOK_PATH))
        .header("content-type", "application/json")
        .header("x-hub-signature", support::sign(ev))
        .body(support::sample_with(ev, po))
        .send()
        .await;
    let served_in = sent.elapsed();
    let status = resp.as_ref().map(|r| r.status().as_u16());
    assert!(
        matches!(status, Ok(200)),
        "signed webhook under attack: {resp:?} after {served_in:?}\nlog:\n{}",
        bridge.log_text()
    );
    assert!(served_in < Duration::from_secs(60), "{served_in:?}");

    // The inbox keeps delivering: the ERP's 855 for that PO reaches the emulator.
    support::drop_inbox(&ws, "hostile.855", &support::ack_855_for(po, 9001));
    let calls = sim.wait_for_calls(1, Duration::from_secs(60)).await;
    assert!(
        calls
            .iter()
            .any(|c| c.path.ends_with(&format!("/purchaseorders/{po}/response"))),
        "no PO response from the inbox under attack: {calls:?}\nlog:\n{}",
        bridge.log_text()
    );

    // Every client's first connection was closed by the server.
    wait_count(
        &first_closed,
        CLIENTS,
        STALL_BOUND,
        "half-header connections closed by the server",
    )
    .await;
    stop.cancel();
    let mut total = Stalled::default();
    for c in clients {
        let s = c.await.unwrap();
        total.closed += s.closed;
        total.not_closed += s.not_closed;
        total.answered += s.answered;
        total.longest = total.longest.max(s.longest);
    }
    assert_eq!(total.not_closed, 0, "{total:?}");
    assert_eq!(total.answered, 0, "{total:?}");
    assert!(total.closed >= CLIENTS, "{total:?}");
    let m = bridge.metrics().await;
    assert!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"header\"}") >= CLIENTS as u64,
        "{m}"
    );
    assert_eq!(metric(&m, "edi_bridge_http_accept_errors_total"), 0, "{m}");
    assert!(
        metric(&m, "edi_bridge_http_connections_max") + 256 <= 1024,
        "{m}"
    );
    eprintln!(
        "hostile listener: webhook served in {served_in:?} under {CLIENTS} half-header clients; \
         {} server closes, longest half-header connection {:?}",
        total.closed, total.longest
    );
}

/// Sends a head announcing a 1 MiB body, then as much of the body (all but 1 KiB) as the server
/// takes within a few seconds, then holds the socket until `stop`.
async fn body_staller(addr: SocketAddr, stop: CancellationToken, done: Arc<AtomicUsize>) -> usize {
    const BODY: usize = 1024 * 1024;
    let mut sent = 0;
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        done.fetch_add(1, Ordering::SeqCst);
        return 0;
    };
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Hub-Signature: {}\r\nContent-Length: {BODY}\r\n\r\n",
        support::sign("STALLED")
    );
    if stream.write_all(head.as_bytes()).await.is_ok() {
        let chunk = vec![b' '; 64 * 1024];
        while sent < BODY - 1024 {
            let n = chunk.len().min(BODY - 1024 - sent);
            match tokio::time::timeout(Duration::from_secs(3), stream.write(&chunk[..n])).await {
                Ok(Ok(k)) if k > 0 => sent += k,
                _ => break,
            }
        }
    }
    done.fetch_add(1, Ordering::SeqCst);
    stop.cancelled().await;
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_stays_under_300_mib_with_600_clients_stalled_inside_1_mib_bodies() {
    raise_own_nofile();
    let ws = Workspace::new();
    let text = with_server_keys(&ws.config_text(""), "body_read_timeout_secs = 120")
        .replace("max_body_bytes = 65536", "max_body_bytes = 1048576");
    let bridge = Bridge::spawn(&ws, &text, 1024).await;
    let idle_rss = bridge.rss_bytes();

    const CLIENTS: usize = 600;
    let stop = CancellationToken::new();
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(body_staller(bridge.addr, stop.clone(), done.clone())))
        .collect();
    wait_count(
        &done,
        CLIENTS,
        Duration::from_secs(120),
        "stalled bodies sent",
    )
    .await;
    // Every client is stalled now; sample the RSS for a while and keep the peak.
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..15 {
        tick.tick().await;
        peak = peak.max(bridge.rss_bytes());
    }
    stop.cancel();
    let mut body_bytes_sent = 0;
    for c in clients {
        body_bytes_sent += c.await.unwrap();
    }
    eprintln!(
        "hostile listener: RSS idle {} MiB, peak {} MiB with {CLIENTS} clients stalled inside \
         1 MiB bodies ({} MiB of body sent in all)",
        idle_rss >> 20,
        peak >> 20,
        body_bytes_sent >> 20
    );
    assert!(
        peak < 300 << 20,
        "RSS {} MiB with {CLIENTS} stalled bodies\nlog:\n{}",
        peak >> 20,
        bridge.log_text()
    );
}

/// Reads until EOF or a reset, bounded; returns what the server sent.
async fn read_to_close(stream: &mut TcpStream, bound: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server did not close the connection within {bound:?}; it sent {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

#[tokio::test]
async fn a_stalled_body_is_cut_after_the_body_timeout_with_no_2xx_and_nothing_stored() {
    let ws = Workspace::new();
    let d = ws
        .start_text(&with_server_keys(
            &ws.config_text(""),
            "body_read_timeout_secs = 1",
        ))
        .await;
    let ev = "STALL-EV-1";
    let body = support::sample_with(ev, "STALL-PO-1");
    let mut stream = TcpStream::connect(d.r().addr).await.unwrap();
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         X-Hub-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        support::sign(ev),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("body_read_timeout_secs"), "{answer:?}");
    assert_eq!(d.r().store.orders().count(), 0, "nothing stored");
    let m = support::metrics(&d).await;
    assert_eq!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"body\"}"),
        1
    );
    // The event was not remembered: sent whole, it is new.
    let (status, json) = support::post(&d.url(), &body, Some(&support::sign(ev))).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["purchaseOrders"]["new"][0], "STALL-PO-1", "{json}");
    d.stop().await;
}

/// Sends a head announcing a 1,000-byte webhook body and one byte of it.
async fn stall_in_body(d: &support::TestDaemon) -> TcpStream {
    let mut s = TcpStream::connect(d.r().addr).await.unwrap();
    s.write_all(
        format!(
            "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s
}

/// Polls `/metrics` (bounded) until `name` reads `value`.
async fn until_metric(d: &support::TestDaemon, name: &str, value: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        let m = support::metrics(d).await;
        if metric(&m, name) == value {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {name} = {value}\n{m}"
        );
        tick.tick().await;
    }
}

#[tokio::test]
async fn a_body_that_cannot_get_a_slot_in_time_gets_503_and_the_slots_bound_reads() {
    let ws = Workspace::new();
    let d = ws
        .start_text(&with_server_keys(
            &ws.config_text(""),
            "body_read_timeout_secs = 3\nmax_concurrent_bodies = 1",
        ))
        .await;
    // The one slot is held by a stalled body, and a second stalled body queues behind it: it
    // will hold the slot for its own 3 s once it gets it.
    let mut first = stall_in_body(&d).await;
    until_metric(&d, "edi_bridge_http_bodies_reading", 1).await;
    let mut second = stall_in_body(&d).await;
    until_metric(&d, "edi_bridge_http_bodies_waiting", 1).await;
    // So a webhook arriving now cannot get the slot within 3 s.
    let ev = "SLOT-EV-1";
    let body = support::sample_with(ev, "SLOT-PO-1");
    let (status, json) = support::post(&d.url(), &body, Some(&support::sign(ev))).await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["field"], "$", "{json}");
    for s in [&mut first, &mut second] {
        let answer = read_to_close(s, Duration::from_secs(20)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    }
    let m = support::metrics(&d).await;
    assert_eq!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"body_slot\"}"),
        1,
        "{m}"
    );
    assert_eq!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"body\"}"),
        2,
        "{m}"
    );
    assert_eq!(d.r().store.orders().count(), 0, "nothing stored");
    // With the slot free again the same event goes through.
    let (status, json) = support::post(&d.url(), &body, Some(&support::sign(ev))).await;
    assert_eq!(status, 200, "{json}");
    d.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let ws = Workspace::new();
    let d = ws
        .start_text(&with_server_keys(
            &ws.config_text(""),
            "idle_timeout_secs = 1\nheader_read_timeout_secs = 60",
        ))
        .await;
    let mut stream = TcpStream::connect(d.r().addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, the connection stays open for the next request, and then (well before
    // the 60 s header deadline) the server closes it.
    let answer = read_to_close(&mut stream, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("ok\n"), "{answer:?}");
    let m = support::metrics(&d).await;
    assert_eq!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"idle\"}"),
        1,
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_half_heads_are_closed_and_waiting_clients_then_served() {
    let ws = Workspace::new();
    let d = ws
        .start_text(&with_server_keys(
            &ws.config_text(""),
            "max_connections = 2\nheader_read_timeout_secs = 1",
        ))
        .await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(d.r().addr).await.unwrap();
        s.write_all(HALF_HEAD).await.unwrap();
        stalled.push(s);
    }
    // Both slots are taken: this request waits in the backlog until the server cuts a half
    // head at its header deadline, then is served.
    let healthz = support::get(&d, "/healthz").await;
    assert_eq!(healthz.status(), 200);
    for s in &mut stalled {
        let answer = read_to_close(s, Duration::from_secs(20)).await;
        assert_eq!(answer, "", "a half head gets no answer, only a close");
    }
    let m = support::metrics(&d).await;
    assert_eq!(metric(&m, "edi_bridge_http_connections_max"), 2, "{m}");
    assert!(
        metric(&m, "edi_bridge_http_connection_cap_reached_total") >= 1,
        "{m}"
    );
    assert!(
        metric(&m, "edi_bridge_http_timeouts_total{phase=\"header\"}") >= 2,
        "{m}"
    );
    d.stop().await;
}
