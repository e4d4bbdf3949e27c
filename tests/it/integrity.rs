//! Input integrity (issue 11): values the 850 cannot carry exactly are refused naming the field,
//! never cut or altered; a PO number that is a URL dot segment never reaches another API path
//! (checked on a raw loopback server that records request lines byte for byte); a forged log
//! line in an event id stays one escaped line in the real binary's stderr; and a signed event id
//! refused for its body is refused again, whatever the body, for a day of the daemon's clock
//! (moved forward, not slept), across a restart, without unsigned requests being able to poison
//! an id.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edi_bridge::events::Delivery;
use edi_bridge::events::Event;
use edi_bridge::events::Outcome;
use edi_bridge::ingram::api::{ApiClient, ApiSettings, Error as ApiError};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::*;

/// The sample with `event_id`, a PO number and one mutation of its first purchase order.
fn body_with(event_id: &str, po: &str, mutate: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&sample_with(event_id, po)).unwrap();
    mutate(&mut v["resource"][0]);
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_the_850_cannot_carry_is_refused_naming_the_field() {
    let ws = Workspace::new();
    let d = ws.start().await;
    // The finding: written as PO104 99999999999999999, ten times too small.
    let body = body_with("INT-N1", "INT-PO-N1", |po| {
        po["lines"][0]["unitPrice"] = json!("999999999999999999.999999")
    });
    let (status, answer) = post(&d.url(), &body, Some(&sign("INT-N1"))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["field"], "resource[0].lines[0].unitPrice",
        "{answer}"
    );
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains("PO104") && message.contains("17"),
        "{message}"
    );
    // The order total must fit AMT02 too: each price fits, the sum does not.
    let body = body_with("INT-N2", "INT-PO-N2", |po| {
        po["lines"][0]["unitPrice"] = json!("99999999999999.999");
        po["lines"][0]["quantity"] = json!(999_999_999);
    });
    let (status, answer) = post(&d.url(), &body, Some(&sign("INT-N2"))).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["field"], "resource[0].lines", "{answer}");
    assert!(d.r().store.order("INT-PO-N1").unwrap().is_none());
    assert!(d.r().store.order("INT-PO-N2").unwrap().is_none());

    // 17 digits fit PO104 exactly and are written as sent.
    let body = body_with("INT-N3", "INT-PO-N3", |po| {
        po["lines"][0]["unitPrice"] = json!("12345678901234.567");
        po["lines"][0]["quantity"] = json!(1);
    });
    let (status, answer) = post(&d.url(), &body, Some(&sign("INT-N3"))).await;
    assert_eq!(status, 200, "{answer}");
    d.wait_written(1).await;
    let file = &ws.files("outbox")[0];
    let segs = segments(&read(file));
    assert_eq!(find(&segs, "PO1")[0][4], "12345678901234.567");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identifier_the_850_cannot_carry_is_refused_never_altered() {
    let ws = Workspace::new();
    let d = ws.start().await;
    type Mutate = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Mutate, &str)> = vec![
        // The finding: BEG03 was written with `~` and `*` replaced.
        (
            "IM~PO*1",
            Box::new(|_| {}),
            "resource[0].ingramPurchaseOrderNumber",
        ),
        (
            "INT-PO-I2",
            Box::new(|po| po["lines"][1]["vendorPartNumber"] = json!("XYZ-9*~>")),
            "resource[0].lines[1].vendorPartNumber",
        ),
        (
            "INT-PO-I3",
            Box::new(|po| po["lines"][0]["ingramPartNumber"] = json!("7HW\n123")),
            "resource[0].lines[0].ingramPartNumber",
        ),
        (
            "INT-PO-I4",
            Box::new(|po| po["lines"][0]["ingramLineNumber"] = json!("1>2")),
            "resource[0].lines[0].ingramLineNumber",
        ),
        (
            "INT-PO-I5",
            Box::new(|po| po["lines"][0]["upcCode"] = json!("01234567890É")),
            "resource[0].lines[0].upcCode",
        ),
        (
            "INT-PO-LONGER-THAN-BEG03",
            Box::new(|_| {}),
            "resource[0].ingramPurchaseOrderNumber",
        ),
    ];
    for (i, (po, mutate, field)) in cases.into_iter().enumerate() {
        let id = format!("INT-I{i}");
        let (status, answer) = post(&d.url(), &body_with(&id, po, mutate), Some(&sign(&id))).await;
        assert_eq!(status, 400, "{po}: {answer}");
        assert_eq!(answer["field"], field, "{po}: {answer}");
        assert!(d.r().store.order(po).unwrap().is_none(), "{po} stored");
    }
    // Identifiers are written exactly: not upper-cased like free text.
    let (status, answer) = post(
        &d.url(),
        &body_with("INT-I-ok", "im-po-lower", |po| {
            po["lines"][0]["vendorPartNumber"] = json!("abc-123x")
        }),
        Some(&sign("INT-I-ok")),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    d.wait_written(1).await;
    let segs = segments(&read(&ws.files("outbox")[0]));
    assert_eq!(find(&segs, "BEG")[0][3], "im-po-lower");
    assert_eq!(find(&segs, "PO1")[0][7], "abc-123x");
    assert_eq!(find(&segs, "N1")[0][2], "ACME CORP RECEIVING", "free text");
    d.stop().await;
}

// ---------------------------------------------------------------------------------------------
// URL path segments
// ---------------------------------------------------------------------------------------------

/// A raw HTTP/1.1 server on loopback: records each request line exactly as received, answers a
/// token to `/token` and `{}` to anything else, one request per connection.
struct RawServer {
    addr: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RawServer {
    async fn start() -> RawServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let l = lines.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let l = l.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let length: usize = head
                        .lines()
                        .find_map(|h| {
                            let (k, v) = h.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let line = head.lines().next().unwrap_or_default().to_string();
                    let body = if line.contains(" /token ") {
                        r#"{"access_token":"t0k","token_type":"Bearer","expires_in":86399}"#
                    } else {
                        "{}"
                    };
                    l.lock().unwrap().push(line);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        RawServer { addr, lines }
    }

    fn base_url(&self) -> String {
        format!("http://{}/vendors/v1", self.addr)
    }

    fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Request lines other than the token's.
    fn api_lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| !l.contains(" /token "))
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dot_segment_po_number_never_reaches_another_api_path() {
    let server = RawServer::start().await;
    let ws = Workspace::new();
    let d = ws
        .start_text(&ws.config_text_for(
            &server.base_url(),
            &server.token_url(),
            "[inbox]\nsettle_ms = 50\nrescan_secs = 1\n[delivery]\nbackoff_base_ms = 20\nbackoff_max_secs = 1\n",
        ))
        .await;
    let mut rx = d.r().events.subscribe();
    // The finding: BAK03 `..` was sent to POST {base}/response.
    drop_inbox(&ws, "dots.855", &ack_855_for("..", 701));
    match d.wait_inbox(&mut rx, "dots.855").await {
        Outcome::Rejected { reason, .. } => {
            assert!(
                reason.contains("bak03") && reason.contains("'..'"),
                "{reason}"
            )
        }
        other => panic!("a `..` PO number was accepted: {other:?}"),
    }
    drop_inbox(&ws, "dot.855", &ack_855_for(".", 702));
    assert!(matches!(
        d.wait_inbox(&mut rx, "dot.855").await,
        Outcome::Rejected { .. }
    ));
    // Slashes, dots inside a segment, spaces and `%` are encoded and kept verbatim on the wire.
    let po = "IM/../PO 1%";
    drop_inbox(&ws, "slash.855", &ack_855_for(po, 703));
    assert!(matches!(
        d.wait_inbox(&mut rx, "slash.855").await,
        Outcome::Archived { jobs: 1, .. }
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::Delivery {
                po: p,
                outcome: Delivery::Delivered { .. },
                ..
            })) if p == po => break,
            Ok(_) => {}
            Err(_) => panic!("the slash PO was not delivered: {:?}", server.api_lines()),
        }
    }
    assert_eq!(
        server.api_lines(),
        vec!["POST /vendors/v1/purchaseorders/IM%2F..%2FPO%201%25/response HTTP/1.1".to_string()]
    );
    d.stop().await;

    // The client itself refuses a path the URL parser would rewrite (`%2E%2E` is `..` to the URL
    // standard), before anything is sent.
    let client = ApiClient::new(ApiSettings {
        api_base_url: server.base_url(),
        token_url: server.token_url(),
        client_id: "test-client".into(),
        client_secret: CLIENT_SECRET.into(),
        partner_id: "US123456".into(),
        country_code: "US".into(),
        sender_id: "ACME-EDI".into(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        token_refresh_margin: Duration::from_secs(60),
    })
    .unwrap();
    let before = server.lines.lock().unwrap().len();
    for path in [
        format!(
            "/purchaseorders/{}/response",
            edi_bridge::ingram::calls::path_segment("..")
        ),
        "/purchaseorders/%2e/status".to_string(),
        "/purchaseorders/../response".to_string(),
    ] {
        let e = client.post_json(&path, &json!({}), "c1").await.unwrap_err();
        assert!(matches!(e, ApiError::Build(_)), "{path}: {e}");
        assert_eq!(
            e.retry_action(),
            edi_bridge::ingram::api::RetryAction::Reject,
            "{path}"
        );
    }
    assert_eq!(server.lines.lock().unwrap().len(), before, "nothing sent");
}

// ---------------------------------------------------------------------------------------------
// Log lines
// ---------------------------------------------------------------------------------------------

/// The real binary; its stderr line by line (raw bytes) over a channel, and its listen address.
async fn spawn_binary(
    config: &std::path::Path,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<Vec<u8>>,
    String,
) {
    let mut child = edi_bridge_command()
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edi-bridge");
    let (tx, rx) = std::sync::mpsc::channel();
    let started = tee_stderr(&mut child, std::io::sink(), String::new(), move |line| {
        let _ = tx.send(line.to_vec());
    });
    let addr = match tokio::time::timeout(Duration::from_secs(30), started).await {
        Ok(Ok(Some(addr))) => addr,
        other => panic!("edi-bridge did not start: {other:?}"),
    };
    (child, rx, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_log_line_in_an_event_id_stays_one_escaped_line() {
    let ws = Workspace::new();
    let config = ws.path("edi-bridge.toml");
    std::fs::write(&config, ws.config_text("")).unwrap();
    let (mut child, rx, addr) = spawn_binary(&config).await;
    let mut log: Vec<Vec<u8>> = Vec::new();
    let url = format!("http://{addr}/webhooks/ingram/purchase-orders");
    let forged = "evt-1\n2026-11-29T00:00:00.000000Z  INFO edi_bridge::to_erp::outbox: 850 written to the outbox. po=FAKE\x1b[2J";
    // The finding: an unsigned request (a signature that does not verify).
    let body = sample_with(forged, "LOG-PO-1");
    let (status, _) = post(&url, &body, Some(&sign("something else"))).await;
    assert_eq!(status, 401);
    // A signed request whose refusal reason quotes the body.
    let id = "evt-2\u{1b}]0;pwned\u{7}";
    let body = body_with(id, "LOG-PO-2", |po| {
        po["lines"][0]["unitPrice"] = json!("1\n2026-11-29 INFO forged\u{1b}[31m")
    });
    let (status, answer) = post(&url, &body, Some(&sign(id))).await;
    assert_eq!(status, 400, "{answer}");
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        log.push(line);
    }
    let all: Vec<u8> = log.concat();
    let text = String::from_utf8_lossy(&all);
    assert!(
        !all.contains(&0x1b) && !all.contains(&0x07),
        "raw terminal escapes in the log:\n{text}"
    );
    for line in text.lines() {
        assert!(
            !line.contains("po=FAKE") || line.contains("signature does not verify"),
            "forged log line:\n{text}"
        );
        assert!(
            !line.contains("INFO forged") || line.contains("Webhook refused"),
            "forged log line:\n{text}"
        );
    }
    assert!(
        text.contains(r"evt-1\n2026-11-29T00:00:00.000000Z  INFO"),
        "the event id is shown escaped:\n{text}"
    );
    assert!(text.contains(r"evt-2\x1b]0;pwned\x07"), "{text}");
    assert!(
        text.contains(r"\x1b[31m"),
        "the reason is shown escaped:\n{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused event ids
// ---------------------------------------------------------------------------------------------

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_id_is_refused_again_whatever_the_body_for_a_day() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let id = "INT-R1";
    let signature = sign(id);
    let bad = body_with(id, "INT-PO-R1", |po| {
        po["lines"][0]["quantity"] = json!("many")
    });
    let (status, answer) = post(&d.url(), &bad, Some(&signature)).await;
    assert_eq!(status, 400, "{answer}");
    // The signature seen on the refused request, now with a good body.
    let good = sample_with(id, "INT-PO-R1");
    let (status, answer) = post(&d.url(), &good, Some(&signature)).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["field"], "eventid", "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.contains("resource[0].lines[0].quantity") && message.contains("24 hours"),
        "{message}"
    );
    assert!(d.r().store.order("INT-PO-R1").unwrap().is_none());
    assert!(metrics(&d)
        .await
        .contains("edi_bridge_webhooks_total{outcome=\"refused_event_id\"} 1"));
    assert!(metrics(&d).await.contains("edi_bridge_refused_event_ids 1"));

    // Durable: still refused after a restart.
    d.stop().await;
    let d = ws.start().await;
    let (status, _) = post(&d.url(), &good, Some(&signature)).await;
    assert_eq!(status, 409);
    // Just under a day later: still refused.
    d.r().clock.advance(DAY - Duration::from_secs(60));
    let (status, _) = post(&d.url(), &good, Some(&signature)).await;
    assert_eq!(status, 409);
    // A day after the refusal: forgotten, and pruned.
    d.r().clock.advance(Duration::from_secs(120));
    let (status, answer) = post(&d.url(), &good, Some(&signature)).await;
    assert_eq!(status, 200, "{answer}");
    d.wait_written(1).await;
    assert_eq!(d.r().store.refused_count(), 0, "expired refusal pruned");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_requests_cannot_poison_an_event_id() {
    let ws = Workspace::new();
    let d = ws.start().await;
    let id = "INT-P1";
    let bad = body_with(id, "INT-PO-P1", |po| {
        po["lines"][0]["quantity"] = json!("many")
    });
    // Without the secret: a wrong signature, and none at all.
    let (status, _) = post(&d.url(), &bad, Some(&sign("another id"))).await;
    assert_eq!(status, 401);
    let (status, _) = post(&d.url(), &bad, None).await;
    assert_eq!(status, 401);
    let good = sample_with(id, "INT-PO-P1");
    let (status, answer) = post(&d.url(), &good, Some(&sign(id))).await;
    assert_eq!(status, 200, "{answer}");
    // A bad body replayed with the signature of an accepted event: refused, but Ingram's own
    // retries of the stored event stay duplicates, not 409s.
    let (status, _) = post(&d.url(), &bad, Some(&sign(id))).await;
    assert_eq!(status, 400);
    let (status, answer) = post(&d.url(), &good, Some(&sign(id))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    assert_eq!(d.r().store.refused_count(), 0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_po_number_from_the_erp_is_logged_escaped() {
    let ws = Workspace::new();
    let config = ws.path("edi-bridge.toml");
    std::fs::write(&config, ws.config_text("")).unwrap();
    let (mut child, rx, _) = spawn_binary(&config).await;
    // The finding: the inbox logged the PO number and the source of an 855 as they came.
    let sample = include_str!("../../samples/ingram-po-855.edi");
    let hostile = sample.replace("IM-PO-1001", "IM-PO-\u{1b}[2J1001");
    drop_inbox(&ws, "hostile.855", hostile.as_bytes());
    let mut log: Vec<Vec<u8>> = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let done = String::from_utf8_lossy(&line).contains("never received");
        log.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let all: Vec<u8> = log.concat();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("never received"), "{text}");
    assert!(
        !all.contains(&0x1b),
        "a raw terminal escape in the log:\n{text}"
    );
    assert!(text.contains(r"IM-PO-\x1b[2J1001"), "{text}");
}
