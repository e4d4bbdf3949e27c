//! Several Ingram accounts in one bridge, through the real daemon and two emulators: the same PO
//! number in two accounts is two POs end to end (two 850s from two ISA ids, each 855 reaching its
//! own API with its own token, partner id and country), inbound files route by interchange pair
//! (an unknown pair goes to error/ naming the known ones), webhook secrets are not
//! interchangeable, one account's API being down never delays the other's calls, and the CLI's
//! `--account` picks between POs with one number.

use edi_bridge::sim::SimHandle;

use crate::support::*;

const CA_CLIENT_SECRET: &str = "ca-client-secret";
const CA_WEBHOOK_SECRET: &str = "ca-webhook-secret";

/// The ca account's mapping: the shipped one, with its own ISA06 (Ingram Canada's profile).
fn ca_mapping() -> String {
    let m = edi_bridge::mapping::DEFAULT_MAPPING;
    assert!(
        m.contains("sender_id = \"INGRAMMICRO\" "),
        "the shipped mapping changed"
    );
    m.replacen(
        "sender_id = \"INGRAMMICRO\" ",
        "sender_id = \"INGRAMMICROCA\" ",
        1,
    )
}

/// A workspace with the account `default` (`[ingram]`, against `us`) and `ca` (against `ca`).
fn two_accounts(ws: &Workspace, us: &SimHandle, ca: &SimHandle) -> String {
    let d = ws.dir.path().display();
    std::fs::write(ws.path("mapping-ca.toml"), ca_mapping()).unwrap();
    std::fs::write(ws.path("ca.client.secret"), CA_CLIENT_SECRET).unwrap();
    std::fs::write(ws.path("ca.webhook.secret"), CA_WEBHOOK_SECRET).unwrap();
    ws.config_text_for(
        &us.base_url(),
        &us.token_url(),
        &format!(
            r#"file_pattern = "{{account}}-{{po}}.{{isa13}}.850"
[delivery]
backoff_base_ms = 50
backoff_max_secs = 1
[[accounts]]
id = "ca"
api_base_url = "{}"
token_url = "{}"
client_id = "ca-client"
partner_id = "CA654321"
country_code = "CA"
sender_id = "ACME-EDI-CA"
mapping = "mapping-ca.toml"
client_secret_file = "{d}/ca.client.secret"
webhook_secret_file = "{d}/ca.webhook.secret"
request_timeout_secs = 2
requests_per_minute = 60000
"#,
            ca.base_url(),
            ca.token_url()
        ),
    )
}

async fn ca_sim() -> (SimHandle, tokio_util::sync::CancellationToken) {
    sim(|c| {
        c.client_id = "ca-client".into();
        c.client_secret = CA_CLIENT_SECRET.into();
        c.partner_id = Some("CA654321".into());
    })
    .await
}

fn ca_sign(event_id: &str) -> String {
    edi_bridge::ingram::signature::sign(CA_WEBHOOK_SECRET.as_bytes(), event_id)
}

/// The sample 855 for `po`, addressed as the ERP's answer to the ca account's 850s.
fn ca_855(po: &str, n: u32) -> Vec<u8> {
    let text = String::from_utf8(ack_855_for(po, n)).unwrap();
    text.replace("*ZZ*INGRAMMICRO    *", "*ZZ*INGRAMMICROCA  *")
        .replace("*VENDORERP*INGRAMMICRO*", "*VENDORERP*INGRAMMICROCA*")
        .into_bytes()
}

fn ca_url(d: &TestDaemon) -> String {
    format!("http://{}/webhooks/ingram/ca/purchase-orders", d.r().addr)
}

fn default_url(d: &TestDaemon) -> String {
    format!(
        "http://{}/webhooks/ingram/default/purchase-orders",
        d.r().addr
    )
}

/// The value of element `n` of the first segment `id` of an X12 file.
fn element(bytes: &[u8], id: &str, n: usize) -> String {
    let segs = segments(bytes);
    find(&segs, id)[0][n].trim().to_string()
}

#[tokio::test]
async fn the_same_po_number_in_two_accounts_is_two_pos_end_to_end() {
    let (us, _us_stop) = sim(|_| {}).await;
    let (ca, _ca_stop) = ca_sim().await;
    let ws = Workspace::new();
    let d = ws.start_text(&two_accounts(&ws, &us, &ca)).await;
    // The old single-account path is the account default; its own path too.
    let (status, body) = post(
        &d.url(),
        &sample_with("EV-US", "PO-SAME"),
        Some(&sign("EV-US")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &ca_url(&d),
        &sample_with("EV-CA", "PO-SAME"),
        Some(&ca_sign("EV-CA")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purchaseOrders"]["new"][0], "PO-SAME", "{body}");
    d.wait_written(2).await;
    let names = ws.names("outbox");
    assert_eq!(names.len(), 2, "{names:?}");
    let us_850 = names
        .iter()
        .find(|n| n.starts_with("default-"))
        .expect("default's 850");
    let ca_850 = names
        .iter()
        .find(|n| n.starts_with("ca-"))
        .expect("ca's 850");
    let us_bytes = read(&ws.path(&format!("outbox/{us_850}")));
    let ca_bytes = read(&ws.path(&format!("outbox/{ca_850}")));
    assert_eq!(element(&us_bytes, "ISA", 6), "INGRAMMICRO");
    assert_eq!(element(&ca_bytes, "ISA", 6), "INGRAMMICROCA");
    assert_eq!(element(&us_bytes, "BEG", 3), "PO-SAME");
    assert_eq!(element(&ca_bytes, "BEG", 3), "PO-SAME");
    // Each account numbers its own interchanges.
    assert_eq!(element(&us_bytes, "ISA", 13), "000000001");
    assert_eq!(element(&ca_bytes, "ISA", 13), "000000001");

    // Each account's 855 reaches its own API, as that account.
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "us.855", &ack_855_for("PO-SAME", 71));
    drop_inbox(&ws, "ca.855", &ca_855("PO-SAME", 72));
    d.wait_inbox(&mut rx, "us.855").await;
    d.until("both 855s delivered", || {
        us.calls().iter().any(|c| c.kind == "po_response")
            && ca.calls().iter().any(|c| c.kind == "po_response")
    })
    .await;
    let us_calls: Vec<_> = us
        .calls()
        .into_iter()
        .filter(|c| c.kind == "po_response")
        .collect();
    let ca_calls: Vec<_> = ca
        .calls()
        .into_iter()
        .filter(|c| c.kind == "po_response")
        .collect();
    assert_eq!((us_calls.len(), ca_calls.len()), (1, 1));
    assert_eq!(us_calls[0].header("IM-PartnerID"), Some("US123456"));
    assert_eq!(us_calls[0].header("IM-CountryCode"), Some("US"));
    assert_eq!(ca_calls[0].header("IM-PartnerID"), Some("CA654321"));
    assert_eq!(ca_calls[0].header("IM-CountryCode"), Some("CA"));
    assert_eq!(ca_calls[0].header("IM-SenderID"), Some("ACME-EDI-CA"));
    assert_eq!(ca_calls[0].po.as_deref(), Some("PO-SAME"));
    assert_eq!(ca.token_count(), 1, "ca's own token");
    assert_eq!(us.token_count(), 1, "default's own token");

    // Two POs in the store, one per account; the CLI needs --account to tell them apart.
    let store = d.r().store.clone();
    let accounts = vec!["default".to_string(), "ca".to_string()];
    let err = edi_bridge::admin::ops::resolve(&store, &accounts, "PO-SAME", None).unwrap_err();
    assert!(err.to_string().contains("name one with --account"), "{err}");
    let ca_key = edi_bridge::admin::ops::resolve(&store, &accounts, "PO-SAME", Some("ca")).unwrap();
    let shown = edi_bridge::admin::ops::show(&store, &ca_key, &ws.path("edi-bridge.toml")).unwrap();
    assert!(shown.starts_with("PO ca/PO-SAME"), "{shown}");
    assert!(shown.contains("855 received"), "{shown}");
    let q = edi_bridge::admin::StatusQuery {
        account: Some("ca".into()),
        ..Default::default()
    };
    let status = edi_bridge::admin::ops::status(&store, &accounts, &q).unwrap();
    assert!(status.contains("1 PO(s) shown"), "{status}");
    // /metrics labels figures by account.
    let wanted = [
        "edi_bridge_account_850s_written_total{account=\"ca\"} 1",
        "edi_bridge_account_850s_written_total{account=\"default\"} 1",
        "edi_bridge_account_api_calls_total{account=\"ca\",outcome=\"delivered\"} 1",
    ];
    let m = metrics_showing(&d, &wanted).await;
    assert!(
        m.contains("edi_bridge_account_850s_written_total{account=\"ca\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("edi_bridge_account_850s_written_total{account=\"default\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("edi_bridge_account_api_calls_total{account=\"ca\",outcome=\"delivered\"} 1"),
        "{m}"
    );
    d.stop().await;
}

#[tokio::test]
async fn webhook_secrets_are_not_interchangeable() {
    let (us, _us_stop) = sim(|_| {}).await;
    let (ca, _ca_stop) = ca_sim().await;
    let ws = Workspace::new();
    let d = ws.start_text(&two_accounts(&ws, &us, &ca)).await;
    let body = sample_with("EV-X", "PO-X");
    // ca's path refuses default's signature, and the other way round.
    let (status, reply) = post(&ca_url(&d), &body, Some(&sign("EV-X"))).await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = post(&d.url(), &body, Some(&ca_sign("EV-X"))).await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = post(&default_url(&d), &body, Some(&ca_sign("EV-X"))).await;
    assert_eq!(status, 401, "{reply}");
    // An account the bridge does not have.
    let url = format!("http://{}/webhooks/ingram/mx/purchase-orders", d.r().addr);
    let (status, reply) = post(&url, &body, Some(&sign("EV-X"))).await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["field"], "account", "{reply}");
    assert!(d.r().store.orders().next().is_none(), "nothing stored");
    // The same event id in two accounts is two events (each app signs its own ids).
    let (status, _) = post(&ca_url(&d), &body, Some(&ca_sign("EV-X"))).await;
    assert_eq!(status, 200);
    let (status, reply) = post(&d.url(), &body, Some(&sign("EV-X"))).await;
    assert_eq!(status, 200);
    assert_eq!(reply["status"], "accepted", "{reply}");
    d.stop().await;
}

#[tokio::test]
async fn an_inbound_file_routes_by_its_pair_and_an_unknown_pair_goes_to_error() {
    let (us, _us_stop) = sim(|_| {}).await;
    let (ca, _ca_stop) = ca_sim().await;
    let ws = Workspace::new();
    let d = ws.start_text(&two_accounts(&ws, &us, &ca)).await;
    let mut rx = d.r().events.subscribe();
    let stranger = String::from_utf8(ack_855_for("PO-1", 81))
        .unwrap()
        .replace("*ZZ*INGRAMMICRO    *", "*ZZ*SOMEONEELSE    *")
        .replace("*VENDORERP*INGRAMMICRO*", "*VENDORERP*SOMEONEELSE*");
    drop_inbox(&ws, "stranger.855", stranger.as_bytes());
    let outcome = d.wait_inbox(&mut rx, "stranger.855").await;
    assert!(
        matches!(outcome, edi_bridge::events::Outcome::Rejected { .. }),
        "{outcome:?}"
    );
    let reason = std::fs::read_to_string(ws.path("error/stranger.855.reason.txt")).unwrap();
    assert!(
        reason.contains("no account answers ISA06 VENDORERP / ISA08 SOMEONEELSE"),
        "{reason}"
    );
    assert!(
        reason.contains("ISA06 VENDORERP / ISA08 INGRAMMICRO (account default)"),
        "{reason}"
    );
    assert!(
        reason.contains("ISA06 VENDORERP / ISA08 INGRAMMICROCA (account ca)"),
        "{reason}"
    );
    // A file mixing two accounts' interchanges is refused whole.
    let mut mixed = ack_855_for("PO-2", 82);
    mixed.extend(ca_855("PO-3", 83));
    drop_inbox(&ws, "mixed.855", &mixed);
    let outcome = d.wait_inbox(&mut rx, "mixed.855").await;
    assert!(
        matches!(outcome, edi_bridge::events::Outcome::Rejected { .. }),
        "{outcome:?}"
    );
    let reason = std::fs::read_to_string(ws.path("error/mixed.855.reason.txt")).unwrap();
    assert!(reason.contains("is the account ca's"), "{reason}");
    assert!(
        us.calls().is_empty() && ca.calls().is_empty(),
        "nothing sent"
    );
    d.stop().await;
}

#[tokio::test]
async fn one_accounts_api_down_never_delays_the_others_calls() {
    let (us, _us_stop) = sim(|_| {}).await;
    let (ca, _ca_stop) = ca_sim().await;
    let ws = Workspace::new();
    let d = ws.start_text(&two_accounts(&ws, &us, &ca)).await;
    ca.set_down(true);
    let mut rx = d.r().events.subscribe();
    // ca's call first: it fails and waits for its retry while default's goes through.
    drop_inbox(&ws, "ca.855", &ca_855("PO-CA", 91));
    d.wait_inbox(&mut rx, "ca.855").await;
    d.until("ca's call failed once", || {
        d.r()
            .store
            .jobs()
            .filter_map(Result::ok)
            .any(|j| j.attempts > 0)
    })
    .await;
    drop_inbox(&ws, "us.855", &ack_855_for("PO-US", 92));
    // Delivered, and its job done in the store (recorded after Ingram answered).
    d.until("default's call delivered", || {
        us.calls().iter().any(|c| c.kind == "po_response")
            && d.r()
                .store
                .jobs()
                .filter_map(Result::ok)
                .all(|j| j.po.starts_with("ca"))
    })
    .await;
    let waiting: Vec<_> = d.r().store.jobs().filter_map(Result::ok).collect();
    assert_eq!(waiting.len(), 1, "ca's call still queued: {waiting:?}");
    assert!(waiting[0].po.starts_with("ca"), "{:?}", waiting[0].po);
    // ca comes back: its call goes out too.
    ca.set_down(false);
    d.until("ca's call delivered", || {
        ca.calls()
            .iter()
            .any(|c| c.kind == "po_response" && c.status == 200)
    })
    .await;
    d.stop().await;
}

/// The seam with the VAN move: in a shadow run that records calls instead of sending them,
/// each account's call is rendered with its own mapping (here ca's body program), not the
/// first account's.
#[tokio::test]
async fn a_shadow_run_renders_each_accounts_calls_with_its_own_mapping() {
    let (us, _us_stop) = sim(|_| {}).await;
    let (ca, _ca_stop) = ca_sim().await;
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("shadow")).unwrap();
    let text = two_accounts(&ws, &us, &ca).replacen(
        "[outbox]\n",
        &format!(
            "[outbox]\nshadow_dir = \"{}\"\n",
            ws.path("shadow").display()
        ),
        1,
    ) + "[migration]\nsend_calls = false\n[console]\nlisten = \"127.0.0.1:0\"\n";
    let ca_mapping = ca_mapping();
    assert!(
        ca_mapping.contains("[po_response]\n"),
        "the shipped mapping changed"
    );
    std::fs::write(
        ws.path("mapping-ca.toml"),
        ca_mapping.replacen(
            "[po_response]\n",
            "[po_response]\nbody = '''. + {renderedBy: \"the ca mapping\"}'''\n",
            1,
        ),
    )
    .unwrap();
    let d = ws.start_text(&text).await;
    let (status, body) = post(
        &ca_url(&d),
        &sample_with("EV-CA-S", "PO-CA-S"),
        Some(&ca_sign("EV-CA-S")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    d.wait_written(1).await;
    let mut rx = d.r().events.subscribe();
    drop_inbox(&ws, "ca.855", &ca_855("PO-CA-S", 94));
    assert_eq!(
        wait_call_recorded(&mut rx).await,
        edi_bridge::domain::po_key("ca", "PO-CA-S")
    );
    let html = migration_page(&d).await;
    assert!(
        html.contains("renderedBy") && html.contains("the ca mapping"),
        "{html}"
    );
    assert!(
        us.calls().is_empty() && ca.calls().is_empty(),
        "nothing sent"
    );
    d.stop().await;
}

/// A distributor that is not Ingram: its own body shape, its own answers, no HTTP at all. The
/// delivery worker drives it through the same `Partner` seam as Ingram's client.
struct OtherDistributor {
    calls: std::sync::Mutex<Vec<(String, serde_json::Value, String)>>,
    /// Answers to give, in order; then every call is accepted.
    answers: std::sync::Mutex<std::collections::VecDeque<edi_bridge::partner::PartnerAnswer>>,
}

impl edi_bridge::partner::Partner for OtherDistributor {
    fn send<'a>(
        &'a self,
        path: &'a str,
        body: &'a serde_json::Value,
        correlation_id: &'a str,
    ) -> edi_bridge::partner::Sending<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((
                path.to_string(),
                body.clone(),
                correlation_id.to_string(),
            ));
            let answer = self.answers.lock().unwrap().pop_front();
            answer.unwrap_or(edi_bridge::partner::PartnerAnswer::Accepted {
                status: 202,
                rate: Default::default(),
            })
        })
    }

    fn render_body(
        &self,
        _mapping: &edi_bridge::mapping::Mapping,
        kind: edi_bridge::domain::CallKind,
        canonical: &serde_json::Value,
        _segments: &[Vec<String>],
        _po: &serde_json::Value,
    ) -> Result<serde_json::Value, edi_bridge::program::BodyProgramError> {
        Ok(serde_json::json!({ "document": kind.to_string(), "payload": canonical }))
    }
}

#[tokio::test]
async fn the_delivery_worker_drives_a_distributor_that_is_not_ingram() {
    use edi_bridge::partner::{PartnerAnswer, Retry};
    use edi_bridge::store::{InboundBatch, NewJob};
    let dir = tempfile::tempdir().unwrap();
    let store = edi_bridge::store::Store::open(dir.path()).unwrap();
    let key = edi_bridge::domain::po_key("other", "PO-9");
    let job = |kind, path: &str| NewJob {
        po: key.clone(),
        kind,
        path: path.into(),
        body: r#"{"purchaseOrderNumber":"PO-9"}"#.into(),
        segments: vec![],
        source: "test".into(),
        unknown_po: true,
    };
    store
        .commit_inbound(&InboundBatch {
            claimed_file: "f".into(),
            received_at: "2026-12-07T00:00:00Z".into(),
            jobs: vec![
                job(edi_bridge::domain::CallKind::PoResponse, "/acks/PO-9"),
                job(edi_bridge::domain::CallKind::PoStatus, "/shipments/PO-9"),
            ],
            ..Default::default()
        })
        .unwrap();
    store.flush().await.unwrap();
    let other = std::sync::Arc::new(OtherDistributor {
        calls: Default::default(),
        // Its first answer: busy, try again (no attempt lost, nothing reordered).
        answers: std::sync::Mutex::new(
            [PartnerAnswer::Failed {
                reason: "busy".into(),
                status: Some(503),
                retry: Retry::Later { after: None },
            }]
            .into(),
        ),
    });
    let clock = edi_bridge::clock::Clock::system();
    let (events, mut rx) = tokio::sync::broadcast::channel(64);
    let mapping = edi_bridge::mapping::Mapping::from_str(
        edi_bridge::mapping::DEFAULT_MAPPING,
        std::path::Path::new("mapping.toml"),
    )
    .unwrap();
    let deliverer = edi_bridge::from_erp::deliver::Deliverer {
        store: store.clone(),
        accounts: vec![edi_bridge::from_erp::deliver::DeliveryAccount {
            id: "other".into(),
            partner: other.clone(),
            limiter: std::sync::Arc::new(edi_bridge::pacing::Limiter::new(
                "other",
                60_000,
                Default::default(),
                clock.clone(),
            )),
            mapping: edi_bridge::mapping::SharedMapping::new(mapping),
        }],
        workers: 2,
        backoff_base: std::time::Duration::from_millis(1),
        backoff_max: std::time::Duration::from_millis(5),
        wake: Default::default(),
        events: events.clone(),
        live: Default::default(),
        clock,
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(deliverer.run(stop.clone()));
    // Each attempt's outcome is an event, sent once it is recorded.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut delivered = 0;
    while delivered < 2 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(edi_bridge::events::Event::Delivery {
                outcome: edi_bridge::events::Delivery::Delivered { .. },
                ..
            })) => delivered += 1,
            Ok(_) => {}
            Err(_) => panic!("the jobs were not delivered"),
        }
    }
    assert_eq!(store.job_count(), 0);
    stop.cancel();
    task.await.unwrap().unwrap();
    let calls = other.calls.lock().unwrap().clone();
    let paths: Vec<&str> = calls.iter().map(|(p, ..)| p.as_str()).collect();
    // The response first (tried twice), then the status: one PO's calls stay in order.
    assert_eq!(paths, ["/acks/PO-9", "/acks/PO-9", "/shipments/PO-9"]);
    assert_eq!(calls[0].1["document"], "PO Response (855)");
    assert_eq!(calls[0].1["payload"]["purchaseOrderNumber"], "PO-9");
    assert_eq!(
        calls[0].2, calls[1].2,
        "one correlation id across a job's attempts"
    );
    assert_eq!(store.dead_letters().count(), 0);
}
