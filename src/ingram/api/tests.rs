//! `ApiClient` on the wire: against the emulator (`crate::sim`) for the token cache, headers and
//! the 401 refresh path, and against tiny axum servers for token endpoint failures and 207.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::sim::{parse_faults, SimConfig, SimHandle};

const SECRET: &str = "very-secret-client-secret";

fn settings(base: &str, token_url: &str) -> ApiSettings {
    ApiSettings {
        api_base_url: base.to_owned(),
        token_url: token_url.to_owned(),
        client_id: "sim-client".to_owned(),
        client_secret: SECRET.to_owned(),
        partner_id: "US123456".to_owned(),
        country_code: "US".to_owned(),
        sender_id: "ACME-EDI".to_owned(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        token_refresh_margin: Duration::from_secs(60),
    }
}

async fn sim_with(config: SimConfig) -> (SimHandle, ApiClient, CancellationToken) {
    let stop = CancellationToken::new();
    let sim = SimHandle::start(
        SimConfig {
            client_secret: SECRET.to_owned(),
            partner_id: Some("US123456".to_owned()),
            ..config
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let client = ApiClient::new(settings(&sim.base_url(), &sim.token_url())).unwrap();
    (sim, client, stop)
}

fn po_body(po: &str) -> serde_json::Value {
    json!({"ingramPurchaseOrderNumber": po, "acknowledgementType": "accepted", "lines": []})
}

#[tokio::test]
async fn one_token_for_many_concurrent_calls() {
    let (sim, client, _stop) = sim_with(SimConfig::default()).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let po = format!("IM-PO-{i}");
            client
                .post_json(
                    &format!("/purchaseorders/{po}/response"),
                    &po_body(&po),
                    &new_correlation_id(),
                )
                .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, 200);
    }
    assert_eq!(sim.token_count(), 1);
    assert_eq!(client.token_refreshes(), 1);
    assert_eq!(sim.calls().len(), 16);
}

#[tokio::test]
async fn sends_every_required_header() {
    let (sim, client, _stop) = sim_with(SimConfig::default()).await;
    let cid = new_correlation_id();
    let delivered = client
        .post_json("purchaseorders/IM-PO-9/status", &po_body("IM-PO-9"), &cid)
        .await
        .unwrap();
    assert_eq!(delivered.status, 200);
    let reply: serde_json::Value = serde_json::from_str(&delivered.body).unwrap();
    assert_eq!(reply["correlationId"], cid.as_str());
    let call = &sim.calls()[0];
    assert_eq!(call.kind, "po_status");
    assert_eq!(call.path, "/vendors/v1/purchaseorders/IM-PO-9/status");
    assert!(call
        .header("authorization")
        .unwrap()
        .starts_with("Bearer <"));
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header("accept"), Some("application/json"));
    assert_eq!(call.header("IM-PartnerID"), Some("US123456"));
    assert_eq!(call.header("IM-CorrelationID"), Some(cid.as_str()));
    assert_eq!(call.header("IM-CountryCode"), Some("US"));
    assert_eq!(call.header("IM-SenderID"), Some("ACME-EDI"));
    assert_eq!(call.body, po_body("IM-PO-9"));
    let form = &sim.token_calls()[0].body;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "sim-client");
    assert_eq!(
        sim.token_calls()[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn refreshes_before_expiry_and_accepts_string_expires_in() {
    // expires_in 30 s with a 60 s margin: the token is due for refresh as soon as it arrives.
    let (sim, client, _stop) = sim_with(SimConfig {
        token_ttl_secs: 30,
        expires_in_as_string: true,
        ..SimConfig::default()
    })
    .await;
    for _ in 0..3 {
        let r = client
            .post_json("/purchaseorders/A/response", &po_body("A"), "c1")
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(sim.token_count(), 3);
    assert_eq!(client.token_refreshes(), 3);

    // A long lifetime (number) is reused.
    let (sim, client, _stop) = sim_with(SimConfig::default()).await;
    for _ in 0..3 {
        client
            .post_json("/purchaseorders/A/response", &po_body("A"), "c1")
            .await
            .unwrap();
    }
    assert_eq!(sim.token_count(), 1);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries_with_the_same_correlation_id() {
    let (sim, client, _stop) = sim_with(SimConfig {
        faults: parse_faults("401").unwrap(),
        ..SimConfig::default()
    })
    .await;
    let cid = new_correlation_id();
    let r = client
        .post_json("/purchaseorders/A/response", &po_body("A"), &cid)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sim.token_count(), 2);
    assert_eq!(client.token_refreshes(), 2);
    let calls = sim.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [401, 200]
    );
    assert!(calls
        .iter()
        .all(|c| c.header("im-correlationid") == Some(cid.as_str())));
}

#[tokio::test]
async fn a_persisting_401_is_rejected() {
    let (sim, client, _stop) = sim_with(SimConfig {
        faults: parse_faults("401,401").unwrap(),
        ..SimConfig::default()
    })
    .await;
    let err = client
        .post_json("/purchaseorders/A/response", &po_body("A"), "c1")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.retry_action(), RetryAction::Reject);
    assert!(err.to_string().contains("Access Token expired"), "{err}");
    assert_eq!(sim.calls().len(), 2, "one retry only");
}

#[tokio::test]
async fn failures_map_to_retry_or_reject() {
    let (sim, client, _stop) = sim_with(SimConfig {
        faults: parse_faults("503,429,500,501,drop").unwrap(),
        ..SimConfig::default()
    })
    .await;
    let body = po_body("A");
    let call = || client.post_json("/purchaseorders/A/response", &body, "c1");
    let e = call().await.unwrap_err();
    assert_eq!(e.retry_action(), RetryAction::Retry { after: None });
    assert!(e.to_string().contains("temporarily unavailable"), "{e}");
    let e = call().await.unwrap_err();
    match e.retry_action() {
        RetryAction::Retry { after: Some(d) } => assert!(d >= Duration::from_secs(1)),
        other => panic!("429 should retry after a while, got {other:?}"),
    }
    assert_eq!(e.to_string(), "api answered 429: too many requests");
    let e = call().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "api answered 500: Server: Internal server error"
    );
    assert!(matches!(e.retry_action(), RetryAction::Retry { .. }));
    assert_eq!(
        call().await.unwrap_err().retry_action(),
        RetryAction::Reject
    );
    let e = call().await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(matches!(e.retry_action(), RetryAction::Retry { .. }));
    // Validation errors reject with the field named.
    let e = client
        .post_json("/purchaseorders/A/response", &po_body("B"), "c1")
        .await
        .unwrap_err();
    assert_eq!(e.retry_action(), RetryAction::Reject);
    assert!(e.to_string().contains("ingramPurchaseOrderNumber"), "{e}");
    assert_eq!(sim.token_count(), 1);
}

#[tokio::test]
async fn a_late_answer_is_a_retryable_timeout() {
    let stop = CancellationToken::new();
    let sim = SimHandle::start(
        SimConfig {
            client_secret: SECRET.to_owned(),
            faults: parse_faults("delay:5000").unwrap(),
            ..SimConfig::default()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let client = ApiClient::new(ApiSettings {
        request_timeout: Duration::from_millis(300),
        ..settings(&sim.base_url(), &sim.token_url())
    })
    .unwrap();
    let e = client
        .post_json("/purchaseorders/A/response", &po_body("A"), "c1")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout), "{e:?}");
    assert_eq!(e.retry_action(), RetryAction::Retry { after: None });
}

#[tokio::test]
async fn bad_credentials_are_a_token_error_without_the_secret() {
    let (sim, _client, _stop) = sim_with(SimConfig::default()).await;
    let client = ApiClient::new(ApiSettings {
        client_id: "someone-else".to_owned(),
        ..settings(&sim.base_url(), &sim.token_url())
    })
    .unwrap();
    let e = client
        .post_json("/purchaseorders/A/response", &po_body("A"), "c1")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "token endpoint answered 401: Invalid client credentials (oauth.v2.InvalidClientCredentials)"
    );
    assert_eq!(e.retry_action(), RetryAction::Reject);
    assert!(sim.calls().is_empty());
}

/// A server whose token endpoint answers `token` and whose API answers `api`, counting token hits.
async fn mock(
    token: (StatusCode, String),
    api: (StatusCode, String),
) -> (String, String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new()
        .route(
            "/token",
            axum::routing::post(move |form: String| {
                h.fetch_add(1, Ordering::SeqCst);
                let (status, body) = token.clone();
                // "ECHO" reflects the submitted form, as a careless gateway might.
                let body = if body == "ECHO" {
                    json!({ "message": form }).to_string()
                } else {
                    body
                };
                async move { (status, body) }
            }),
        )
        .route(
            "/api/po",
            axum::routing::post(move || {
                let api = api.clone();
                async move { api }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://{addr}/api"),
        format!("http://{addr}/token"),
        hits,
    )
}

const GOOD_TOKEN: &str = r#"{"access_token":"t0k","token_type":"Bearer","expires_in":"86399"}"#;

#[tokio::test]
async fn token_endpoint_outage_retries_and_echoed_secrets_are_redacted() {
    let (base, token_url, hits) = mock(
        (StatusCode::SERVICE_UNAVAILABLE, "<html>down</html>".into()),
        (StatusCode::OK, "{}".into()),
    )
    .await;
    let client = ApiClient::new(settings(&base, &token_url)).unwrap();
    let e = client.post_json("/po", &json!({}), "c1").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "token endpoint answered 503: <html>down</html>"
    );
    assert_eq!(e.retry_action(), RetryAction::Retry { after: None });
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let (base, token_url, _) = mock(
        (StatusCode::BAD_REQUEST, "ECHO".into()),
        (StatusCode::OK, "{}".into()),
    )
    .await;
    let client = ApiClient::new(settings(&base, &token_url)).unwrap();
    let e = client.post_json("/po", &json!({}), "c1").await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
    assert_eq!(e.retry_action(), RetryAction::Reject);

    let (base, token_url, _) = mock(
        (StatusCode::OK, r#"{"token_type":"Bearer"}"#.into()),
        (StatusCode::OK, "{}".into()),
    )
    .await;
    let client = ApiClient::new(settings(&base, &token_url)).unwrap();
    let e = client.post_json("/po", &json!({}), "c1").await.unwrap_err();
    assert!(matches!(e, Error::Token(_)), "{e:?}");
}

#[tokio::test]
async fn partial_success_207_is_delivered() {
    let body = r#"{"status":"partial","errors":[{"message":"line 2 unknown"}]}"#;
    let (base, token_url, hits) = mock(
        (StatusCode::OK, GOOD_TOKEN.into()),
        (StatusCode::MULTI_STATUS, body.into()),
    )
    .await;
    let client = ApiClient::new(settings(&base, &token_url)).unwrap();
    let d = client.post_json("/po", &json!({}), "c1").await.unwrap();
    assert_eq!(
        d,
        Delivered {
            status: 207,
            body: body.to_owned(),
            rate: Default::default(),
        }
    );
    client.post_json("/po", &json!({}), "c2").await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "string expires_in is cached"
    );
}

#[tokio::test]
async fn unreachable_api_is_a_retryable_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = ApiClient::new(settings(
        &format!("http://{addr}/v1"),
        &format!("http://{addr}/token"),
    ))
    .unwrap();
    let e = client.post_json("/po", &json!({}), "c1").await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert_eq!(e.retry_action(), RetryAction::Retry { after: None });
}

#[tokio::test]
async fn correlation_ids_and_settings_are_checked() {
    let id = new_correlation_id();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(id, new_correlation_id());

    let client = ApiClient::new(settings("http://127.0.0.1:9/v1", "http://127.0.0.1:9/t")).unwrap();
    for bad in ["", &"x".repeat(33), "bad\nid"] {
        let e = client.post_json("/po", &json!({}), bad).await.unwrap_err();
        assert!(matches!(e, Error::Build(_)), "{e:?}");
        assert_eq!(e.retry_action(), RetryAction::Reject);
    }
    let e = ApiClient::new(ApiSettings {
        api_base_url: "not a url".into(),
        country_code: "USA".into(),
        sender_id: "s".repeat(33),
        ..settings("", "http://127.0.0.1:9/t")
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot build request: api_base_url is not an http(s) url, \
         sender_id is longer than 32 characters, country_code is not two letters"
    );
}

#[test]
fn secret_never_in_debug_output() {
    let s = settings("http://127.0.0.1:9/v1", "http://127.0.0.1:9/t");
    let shown = format!("{s:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("client_secret: \"<redacted>\""));
    let client = ApiClient::new(s).unwrap();
    let shown = format!("{client:?} {:#?}", client);
    assert!(!shown.contains(SECRET), "{shown}");
}
