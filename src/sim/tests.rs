//! Emulator tests: start it on 127.0.0.1:0 and drive it with raw HTTP requests, checking the
//! documented error shapes, the fault script, down mode, recording, and the CLI helpers.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;

const SECRET: &str = "s3cr3t-value";
const WAIT: Duration = Duration::from_secs(10);

async fn start(config: SimConfig) -> (SimHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let sim = SimHandle::start(
        SimConfig {
            client_secret: SECRET.to_owned(),
            ..config
        },
        shutdown.clone(),
    )
    .await
    .expect("sim starts");
    (sim, shutdown)
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

async fn token_call(sim: &SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(sim.token_url())
        .form(form)
        .send()
        .await
        .expect("token call");
    (r.status().as_u16(), r.json().await.expect("json"))
}

async fn token(sim: &SimHandle) -> String {
    let (status, body) = token_call(
        sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().expect("token").to_owned()
}

/// A well-formed PO Response call with `tweak` applied to its headers.
async fn po_call(
    sim: &SimHandle,
    token: &str,
    body: &Value,
    tweak: impl FnOnce(&mut Headers),
) -> reqwest::Response {
    let mut headers = vec![
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_owned()),
        ("accept", "application/json".to_owned()),
        ("im-partnerid", "US123456".to_owned()),
        (
            "im-correlationid",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("im-countrycode", "US".to_owned()),
        ("im-senderid", "ACME".to_owned()),
    ];
    tweak(&mut headers);
    let mut req = http().post(format!(
        "{}/purchaseorders/IM-PO-1/response",
        sim.base_url()
    ));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body(body.to_string()).send().await.expect("po call")
}

/// Request headers as the tests build them.
type Headers = Vec<(&'static str, String)>;

/// One change to a well-formed request's headers.
type Tweak = Box<dyn FnOnce(&mut Headers)>;

fn set(headers: &mut Headers, name: &'static str, value: Option<&str>) {
    headers.retain(|(k, _)| *k != name);
    if let Some(v) = value {
        headers.push((name, v.to_owned()));
    }
}

#[tokio::test]
async fn token_flow_and_its_errors() {
    let (sim, _stop) = start(SimConfig::default()).await;
    let (status, body) = token_call(&sim, &[("client_id", "sim-client")]).await;
    assert_eq!(status, 400);
    assert_eq!(body, json!({"message": "grant_type is required"}));
    let (status, body) = token_call(&sim, &[("grant_type", "password")]).await;
    assert_eq!(status, 400);
    assert!(body["message"].is_string());
    let (status, body) = token_call(&sim, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = token_call(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"fault": {"faultstring": "Invalid client credentials",
            "detail": {"errorcode": "oauth.v2.InvalidClientCredentials"}}})
    );
    let r = http()
        .post(sim.token_url())
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "json instead of a form");

    let (status, body) = token_call(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_399);
    assert_eq!(sim.token_count(), 1);
    let calls = sim.token_calls();
    assert_eq!(calls.len(), 6);
    assert!(sim.calls().is_empty(), "token calls are not API calls");
    let last = calls.last().unwrap();
    assert_eq!(last.body["client_secret"], "<redacted>");
    let recorded = serde_json::to_string(&calls).unwrap();
    assert!(!recorded.contains(SECRET));
    assert!(!recorded.contains(body["access_token"].as_str().unwrap()));

    let (sim, _stop) = start(SimConfig {
        expires_in_as_string: true,
        token_ttl_secs: 3600,
        ..SimConfig::default()
    })
    .await;
    let (_, body) = token_call(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(body["expires_in"], "3600");
}

#[tokio::test]
async fn validates_headers_and_body_with_ingram_error_shapes() {
    let (sim, _stop) = start(SimConfig {
        partner_id: Some("US123456".to_owned()),
        ..SimConfig::default()
    })
    .await;
    let token = token(&sim).await;
    let body = json!({"ingramPurchaseOrderNumber": "IM-PO-1", "lines": []});

    let ok = po_call(&sim, &token, &body, |_| {}).await;
    assert_eq!(ok.status().as_u16(), 200);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(
        ok,
        json!({"status": "accepted", "ingramPurchaseOrderNumber": "IM-PO-1",
            "correlationId": "0123456789abcdef0123456789abcdef"})
    );

    let long = "x".repeat(33);
    let cases: Vec<(&str, Tweak)> = vec![
        ("IM-PartnerID", Box::new(|h| set(h, "im-partnerid", None))),
        (
            "IM-PartnerID",
            Box::new(|h| set(h, "im-partnerid", Some("US999999"))),
        ),
        (
            "IM-CorrelationID",
            Box::new(|h| set(h, "im-correlationid", None)),
        ),
        (
            "IM-CorrelationID",
            Box::new(move |h| set(h, "im-correlationid", Some(&"c".repeat(33)))),
        ),
        (
            "IM-CountryCode",
            Box::new(|h| set(h, "im-countrycode", Some("USA"))),
        ),
        (
            "IM-CountryCode",
            Box::new(|h| set(h, "im-countrycode", None)),
        ),
        ("IM-SenderID", Box::new(|h| set(h, "im-senderid", None))),
        (
            "IM-SenderID",
            Box::new(move |h| set(h, "im-senderid", Some(&long))),
        ),
        (
            "Content-Type",
            Box::new(|h| set(h, "content-type", Some("text/plain"))),
        ),
        ("Accept", Box::new(|h| set(h, "accept", Some("text/html")))),
    ];
    for (field, tweak) in cases {
        let r = po_call(&sim, &token, &body, tweak).await;
        assert_eq!(r.status().as_u16(), 400, "{field}");
        let v: Value = r.json().await.unwrap();
        let err = &v["errors"][0];
        assert_eq!(err["type"], "validation");
        assert_eq!(err["id"].as_str().unwrap().len(), 36);
        assert!(err["message"].is_string());
        let fields = err["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 1, "{field}: {v}");
        assert_eq!(fields[0]["field"], field);
        assert!(fields[0]["message"].is_string());
        let msg = crate::ingram::api::parse_error_message(&v.to_string()).unwrap();
        assert!(msg.contains(field), "{msg}");
    }

    let wrong_po = json!({"ingramPurchaseOrderNumber": "IM-PO-2"});
    let v: Value = po_call(&sim, &token, &wrong_po, |_| {})
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["errors"][0]["fields"][0]["field"],
        "ingramPurchaseOrderNumber"
    );
    assert_eq!(v["errors"][0]["fields"][0]["value"], "IM-PO-2");
    let v: Value = po_call(&sim, &token, &json!([1]), |_| {})
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["errors"][0]["fields"][0]["field"], "body");

    let r = po_call(&sim, "forged", &body, |_| {}).await;
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["fault"]["detail"]["errorcode"],
        "keymanagement.service.invalid_access_token"
    );
    let r = po_call(&sim, &token, &body, |h| set(h, "authorization", None)).await;
    assert_eq!(r.status().as_u16(), 401);

    let r = http()
        .post(format!("{}/nowhere", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let calls = sim.calls();
    assert_eq!(calls.last().unwrap().kind, "unknown");
    assert_eq!(calls[0].kind, "po_response");
    assert_eq!(calls[0].po.as_deref(), Some("IM-PO-1"));
    assert_eq!(
        calls[0].header("Authorization"),
        Some(format!("Bearer <{}>", token.len()).as_str())
    );
    assert_eq!(calls[0].body, body);
}

#[tokio::test]
async fn fault_script_plays_in_order() {
    let (sim, _stop) = start(SimConfig {
        faults: parse_faults("503,503,429,401").unwrap(),
        ..SimConfig::default()
    })
    .await;
    let t1 = token(&sim).await;
    let body = json!({});
    let mut seen = Vec::new();
    for _ in 0..4 {
        let r = po_call(&sim, &t1, &body, |_| {}).await;
        let status = r.status().as_u16();
        if status == 429 {
            let h = r.headers();
            assert_eq!(h["retry-after"], "1");
            assert_eq!(h["x-ratelimit-remaining"], "0");
            assert_eq!(h["x-ratelimit-limit"], "60");
            let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
            assert!(reset > 1_000_000_000);
            let v: Value = r.json().await.unwrap();
            assert_eq!(
                v,
                json!({"errors": [{"field": null, "message": "too many requests"}]})
            );
        } else if status == 503 {
            let v: Value = r.json().await.unwrap();
            assert!(v["fault"]["faultstring"].is_string());
        }
        seen.push(status);
    }
    assert_eq!(seen, [503, 503, 429, 401]);
    // The 401 expired that token for good; a new one works.
    assert_eq!(
        po_call(&sim, &t1, &body, |_| {}).await.status().as_u16(),
        401
    );
    let t2 = token(&sim).await;
    assert_eq!(
        po_call(&sim, &t2, &body, |_| {}).await.status().as_u16(),
        200
    );
    let statuses: Vec<u16> = sim.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [503, 503, 429, 401, 401, 200]);

    sim.push_faults(vec![Fault::Status(500), Fault::Status(404)]);
    let r = po_call(&sim, &t2, &body, |_| {}).await;
    assert_eq!(r.status().as_u16(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["faultcode"], "Server");
    assert_eq!(
        po_call(&sim, &t2, &body, |_| {}).await.status().as_u16(),
        404
    );
}

#[tokio::test]
async fn down_mode_answers_503_until_lifted() {
    let (sim, _stop) = start(SimConfig {
        faults: vec![Fault::Status(429)],
        ..SimConfig::default()
    })
    .await;
    sim.set_down(true);
    let t = token(&sim).await;
    for _ in 0..3 {
        assert_eq!(
            po_call(&sim, &t, &json!({}), |_| {})
                .await
                .status()
                .as_u16(),
            503
        );
    }
    sim.set_down(false);
    assert_eq!(
        po_call(&sim, &t, &json!({}), |_| {})
            .await
            .status()
            .as_u16(),
        429,
        "down mode does not eat the script"
    );
    assert_eq!(
        po_call(&sim, &t, &json!({}), |_| {})
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn random_failures_follow_the_rate() {
    let (sim, _stop) = start(SimConfig {
        failure_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let t = token(&sim).await;
    assert_eq!(
        po_call(&sim, &t, &json!({}), |_| {})
            .await
            .status()
            .as_u16(),
        503
    );
    let err = SimHandle::start(
        SimConfig {
            failure_rate: 1.5,
            ..SimConfig::default()
        },
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn records_jsonl_one_line_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let (sim, stop) = start(SimConfig {
        record: Some(path.clone()),
        ..SimConfig::default()
    })
    .await;
    let t = token(&sim).await;
    po_call(
        &sim,
        &t,
        &json!({"ingramPurchaseOrderNumber": "IM-PO-1"}),
        |_| {},
    )
    .await;
    po_call(&sim, &t, &json!({}), |h| set(h, "im-senderid", None)).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<RecordedCall> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines, sim.all_calls());
    assert_eq!(lines[0].kind, "token");
    assert_eq!(lines[1].status, 200);
    assert_eq!(lines[2].status, 400);
    assert!(time::OffsetDateTime::parse(
        &lines[1].at,
        &time::format_description::well_known::Rfc3339
    )
    .is_ok());
    assert!(!text.contains(SECRET));
    assert!(!text.contains(&t));
    stop.cancel();
    sim.stopped().await.unwrap();
}

#[tokio::test]
async fn wait_for_calls_wakes_on_record() {
    let (sim, _stop) = start(SimConfig::default()).await;
    let sim = std::sync::Arc::new(sim);
    assert!(sim.wait_for_calls(1, Duration::ZERO).await.is_empty());
    let waiter = {
        let sim = sim.clone();
        tokio::spawn(async move { sim.wait_for_calls(2, Duration::from_secs(60)).await })
    };
    let t = token(&sim).await;
    po_call(&sim, &t, &json!({}), |_| {}).await;
    po_call(&sim, &t, &json!({}), |_| {}).await;
    let started = std::time::Instant::now();
    let calls = waiter.await.unwrap();
    assert_eq!(calls.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn drop_and_delay_faults() {
    let (sim, _stop) = start(SimConfig {
        faults: parse_faults("drop, delay:20").unwrap(),
        ..SimConfig::default()
    })
    .await;
    let t = token(&sim).await;
    let mut req = http()
        .post(format!("{}/purchaseorders/IM-PO-1/status", sim.base_url()))
        .bearer_auth(&t);
    for (k, v) in [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("im-partnerid", "P"),
        ("im-correlationid", "c"),
        ("im-countrycode", "CA"),
        ("im-senderid", "S"),
    ] {
        req = req.header(k, v);
    }
    let dropped = req.try_clone().unwrap().body("{}").send().await;
    assert!(dropped.is_err(), "no response on a dropped connection");
    let late = req.body("{}").send().await.unwrap();
    assert_eq!(late.status().as_u16(), 200);
    let calls = sim.calls();
    assert_eq!(calls[0].status, 0);
    assert_eq!(calls[0].kind, "po_status");
    assert_eq!(calls[1].status, 200);
}

#[test]
fn fault_scripts_parse() {
    assert_eq!(
        parse_faults("503, 503,429,401,delay:2000,DROP,").unwrap(),
        vec![
            Fault::Status(503),
            Fault::Status(503),
            Fault::Status(429),
            Fault::Status(401),
            Fault::Delay(Duration::from_millis(2000)),
            Fault::Drop,
        ]
    );
    assert!(parse_faults("").unwrap().is_empty());
    assert!(parse_faults("teapot").is_err());
    assert!(parse_faults("99").is_err());
    assert!(parse_faults("delay:x").is_err());
}

/// A one-route webhook receiver that checks the signature with the secret it is given.
async fn webhook_receiver(secret: String) -> (String, CancellationToken) {
    use axum::http::{HeaderMap, StatusCode};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/webhook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let secret = secret.clone();
            async move {
                let sig = headers["x-hub-signature"].to_str().unwrap().to_owned();
                let id = cli::event_id_of(&body).unwrap();
                let json = headers["content-type"] == "application/json";
                if json && crate::ingram::signature::verify(&[secret.as_bytes()], &id, &sig) {
                    (StatusCode::OK, format!("stored {id}"))
                } else {
                    (StatusCode::UNAUTHORIZED, "bad signature".to_owned())
                }
            }
        }),
    );
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await
    });
    (format!("http://{addr}/webhook"), stop)
}

#[tokio::test]
async fn send_webhook_signs_the_event_id() {
    let (url, _stop) = webhook_receiver("my-webhook-secret".to_owned()).await;
    let body =
        br#"{"topic":"vendors/purchaseorders","eventId":"AH7ESSIWSIO22Y77DD","resource":[]}"#;
    let (status, text) = send_webhook(&url, b"my-webhook-secret", body, "AH7ESSIWSIO22Y77DD")
        .await
        .unwrap();
    assert_eq!((status, text.as_str()), (200, "stored AH7ESSIWSIO22Y77DD"));
    let (status, _) = send_webhook(&url, b"wrong", body, "AH7ESSIWSIO22Y77DD")
        .await
        .unwrap();
    assert_eq!(status, 401);
}

#[derive(clap::Parser, Debug)]
struct TestCli {
    #[command(subcommand)]
    cmd: TestCmd,
}

#[derive(clap::Subcommand, Debug)]
enum TestCmd {
    Sim(SimArgs),
}

/// Any variable of this process's environment: it stands in for a secret without `set_var`.
fn some_env_var() -> (String, String) {
    std::env::vars()
        .find(|(k, v)| !v.is_empty() && !k.starts_with('-'))
        .expect("the test environment has at least one variable")
}

fn parse_cli(args: &[&str]) -> SimArgs {
    use clap::Parser as _;
    let TestCmd::Sim(args) = TestCli::try_parse_from(args).unwrap().cmd;
    args
}

#[tokio::test]
async fn cli_send_webhook_uses_env_secret_and_fails_on_non_2xx() {
    let (var, secret) = some_env_var();
    let (url, _stop) = webhook_receiver(secret).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, br#"{"eventid":"N01CIB9VVFYKR9J6ZW","resource":[]}"#).unwrap();
    let file = file.to_str().unwrap();
    let args = parse_cli(&[
        "x",
        "sim",
        "send-webhook",
        file,
        "--url",
        &url,
        "--secret-env",
        &var,
    ]);
    run(args, CancellationToken::new()).await.unwrap();
    let args = parse_cli(&[
        "x",
        "sim",
        "send-webhook",
        file,
        "--url",
        &url,
        "--secret-env",
        &var,
        "--event-id",
        "OTHER",
    ]);
    let err = run(args, CancellationToken::new()).await.unwrap_err();
    assert_eq!(err.to_string(), "webhook answered 401");
}

#[tokio::test]
async fn cli_serves_until_shutdown() {
    let (var, _) = some_env_var();
    let args = parse_cli(&[
        "x",
        "sim",
        "--client-secret-env",
        &var,
        "--faults",
        "503,drop",
        "--latency-ms",
        "1",
        "--partner-id",
        "US1",
    ]);
    assert_eq!(args.listen.to_string(), "127.0.0.1:0");
    assert_eq!(args.latency_ms, 1);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(args, stop.clone()));
    stop.cancel();
    task.await.unwrap().unwrap();

    let bad = parse_cli(&["x", "sim", "--client-secret-env", &var, "--faults", "nope"]);
    let err = run(bad, CancellationToken::new()).await.unwrap_err();
    assert!(
        format!("{err:#}").starts_with("bad --faults: unknown fault"),
        "{err:#}"
    );
    let missing = parse_cli(&[
        "x",
        "sim",
        "--client-secret-env",
        "EDI_BRIDGE_TEST_SURELY_UNSET",
    ]);
    assert!(run(missing, CancellationToken::new()).await.is_err());
}

#[tokio::test]
async fn a_rate_limit_answers_429_with_its_headers_beyond_the_limit() {
    // A window far longer than the test, so it never rolls over mid-test.
    let per = Duration::from_secs(10 * 365 * 86_400);
    let (sim, _stop) = start(SimConfig {
        rate_limit: Some(RateLimit { requests: 3, per }),
        ..SimConfig::default()
    })
    .await;
    let t = token(&sim).await;
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for left in ["2", "1", "0"] {
        let r = po_call(&sim, &t, &json!({}), |_| {}).await;
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some(left));
        assert_eq!(header(&r, "retry-after"), None);
    }
    let r = po_call(&sim, &t, &json!({}), |_| {}).await;
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("0"));
    let now = crate::clock::since_epoch().as_secs();
    let reset: u64 = header(&r, "x-ratelimit-reset").unwrap().parse().unwrap();
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!(reset > now && retry >= 1, "{reset} {retry}");
    assert_eq!(sim.throttled_count(), 1);
    // Token calls are not limited.
    token(&sim).await;
}
