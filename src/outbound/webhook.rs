//! The Ingram PO webhook endpoint (the only module that names axum outside the emulator).
//! Order of work per request: content type → signature present → JSON → event id → signature
//! valid (constant time, any configured secret) → typed decode → one sled transaction → group
//! commit flush → 2xx. Nothing is stored before the signature verifies, and nothing is
//! acknowledged before it is durable. Every refusal is a 4xx whose JSON body names the field.
//!
//! The typed decode includes [`to_850::check`]: a number or a round-trip identifier the 850
//! cannot carry exactly is a 400 naming the field. A signed event refused for its body is
//! remembered in the store for a day ([`crate::store::REFUSED_TTL_MS`]) and answered 409
//! whatever body comes with that id later (Ingram signs the id only, so its signature fits any
//! body). Every value from the request that reaches a log line goes through [`text::Escaped`].
//!
//! The body is read into memory only while holding one of `max_concurrent_bodies` slots, and
//! must arrive within `body_read_timeout` of taking the slot: body memory stays under slots ×
//! `max_body_bytes`, and a client that stalls inside its body gets 408, the connection closed,
//! and nothing stored. A request that waits longer than `body_read_timeout` for a slot gets 503
//! with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

use crate::clock::Clock;
use crate::config::Secret;
use crate::ingram::order::{self, DecodeError};
use crate::mapping::SharedMapping;
use crate::metrics::{ListenerTimeout, Metrics, ProgramKind};
use crate::outbound::to_850;
use crate::store::{Intake, NewEvent, Store};
use crate::text::{self, Escaped};

/// Header carrying the Base64 HMAC-SHA512 of the event id.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

/// What the webhook handler needs.
#[derive(Clone)]
pub struct WebhookState {
    pub store: Store,
    pub secrets: Arc<Vec<Secret>>,
    pub mapping: SharedMapping,
    /// Woken after each durable intake so the outbox worker starts at once.
    pub outbox_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub request_timeout: Duration,
    /// Ages remembered refusals (tests move it forward).
    pub clock: Clock,
    pub bodies: BodyLimits,
}

/// How webhook bodies are read.
#[derive(Clone)]
pub struct BodyLimits {
    /// One permit per body being read (`server.max_concurrent_bodies`).
    pub slots: Arc<Semaphore>,
    /// The longest wait for a slot (then 503), and the time the body then has to arrive
    /// (then 408).
    pub read_timeout: Duration,
    /// `server.max_body_bytes`.
    pub max_bytes: usize,
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    /// No slot came free before the deadline.
    NoSlot,
    /// The body did not arrive before the deadline.
    Timeout,
    /// The client broke the body off (reset, bad chunk encoding).
    Broken(String),
}

/// The router: the webhook path plus `/healthz`, `/readyz` and `/metrics`.
pub fn router(state: WebhookState, path: &str, max_body_bytes: usize) -> Router {
    Router::new()
        .route(path, post(receive))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// A committer round running longer than this makes `/readyz` and `/healthz` fail.
const COMMITTER_STUCK: Duration = Duration::from_secs(10);

/// Seconds a client is asked to wait before retrying a webhook the store could not take.
const RETRY_AFTER_SECS: u64 = 5;

/// Ready when the store can write: answered from what the committer published, never by
/// waiting on it.
async fn ready(State(s): State<WebhookState>) -> Response {
    match s.store.health().problem(COMMITTER_STUCK) {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {p}\n")).into_response(),
    }
}

/// Healthy unless the store cannot write or its committer is stuck or gone (same source).
async fn health(State(s): State<WebhookState>) -> Response {
    match s.store.health().problem(COMMITTER_STUCK) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {p}\n")).into_response(),
    }
}

/// A 503 with `Retry-After` for an event that is not durable (or not read yet): the client
/// retries (Ingram does).
fn unavailable(field: &str, message: &str) -> Response {
    let mut r = refuse(StatusCode::SERVICE_UNAVAILABLE, field, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    r
}

async fn metrics(State(s): State<WebhookState>) -> Response {
    let body = s.metrics.render(&s.store);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// The first PO of `event` whose 850 the mapping's `[[po850.segments]]` cannot build (an
/// expression fails or yields something that is not a segment), checked before anything is
/// stored so the order is never accepted and then stuck.
fn segments_refusal(
    event: &order::WebhookEvent,
    mapping: &crate::mapping::Mapping,
) -> Option<(usize, to_850::RenderError)> {
    if mapping.programs.po850_segments.is_empty() {
        return None;
    }
    event
        .orders
        .iter()
        .enumerate()
        .find_map(|(i, po)| to_850::to_850(po, mapping).err().map(|e| (i, e)))
}

fn refuse(status: StatusCode, field: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": message.into(), "field": field })),
    )
        .into_response()
}

/// Waits (bounded) for a body slot, then reads the whole body within the read deadline while
/// holding the slot.
async fn read_body(
    limits: &BodyLimits,
    metrics: &Metrics,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(BodyError::TooLarge);
    }
    let waiting = metrics.listener_body_waiting();
    let _slot = tokio::time::timeout(limits.read_timeout, limits.slots.acquire())
        .await
        .map_err(|_| BodyError::NoSlot)?
        .expect("the body semaphore is never closed");
    drop(waiting);
    let _reading = metrics.listener_body_reading();
    let deadline = tokio::time::Instant::now() + limits.read_timeout;
    let read = async {
        let mut body = body;
        let first = declared
            .map_or(16 * 1024, |n| n as usize)
            .min(limits.max_bytes);
        let mut buf: Vec<u8> = Vec::with_capacity(first);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let needed = buf.len() + data.len();
            if needed > limits.max_bytes {
                return Err(BodyError::TooLarge);
            }
            if needed > buf.capacity() {
                // Grow without overshooting max_bytes (Vec would double past it).
                let target = (buf.capacity() * 2).clamp(needed, limits.max_bytes);
                buf.reserve_exact(target - buf.len());
            }
            buf.extend_from_slice(&data);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout_at(deadline, read)
        .await
        .map_err(|_| BodyError::Timeout)?
}

async fn receive(State(s): State<WebhookState>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(&s.bodies, &s.metrics, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            let mut response = match e {
                BodyError::TooLarge => refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "$",
                    "body larger than server.max_body_bytes",
                ),
                BodyError::NoSlot => {
                    s.metrics.listener_timeout(ListenerTimeout::BodySlot);
                    tracing::debug!("Webhook body refused: every body slot stayed busy.");
                    unavailable("$", "too many request bodies being received; retry")
                }
                BodyError::Timeout => {
                    s.metrics.listener_timeout(ListenerTimeout::Body);
                    tracing::debug!("Webhook body not received within the body deadline.");
                    refuse(
                        StatusCode::REQUEST_TIMEOUT,
                        "$",
                        "body not received within server.body_read_timeout_secs",
                    )
                }
                BodyError::Broken(e) => refuse(
                    StatusCode::BAD_REQUEST,
                    "$",
                    format!("failed to read the request body: {e}"),
                ),
            };
            // The rest of the body is not wanted: close instead of draining it.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            s.metrics.webhook(response.status().as_u16());
            return response;
        }
    };
    let response = match tokio::time::timeout(s.request_timeout, handle(&s, &headers, &body)).await
    {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                timeout_secs = s.request_timeout.as_secs(),
                "Webhook request timed out before it was durable."
            );
            unavailable("", "timed out before the event was durable; retry")
        }
    };
    s.metrics.webhook(response.status().as_u16());
    response
}

async fn handle(s: &WebhookState, headers: &HeaderMap, body: &Bytes) -> Response {
    let started = std::time::Instant::now();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !(mime.eq_ignore_ascii_case("application/json")
        || mime.to_ascii_lowercase().ends_with("+json"))
    {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            format!("content type '{content_type}' is not application/json"),
        );
    }
    let Some(signature) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        tracing::warn!("Webhook refused: no signature header.");
        return refuse(
            StatusCode::UNAUTHORIZED,
            SIGNATURE_HEADER,
            "missing signature",
        );
    };
    let root: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "$", format!("malformed json: {e}")),
    };
    // serde_json keeps the last of two values for one key; which the sender meant is a guess.
    if let Some(field) = order::repeated_key(body) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &field,
            "this key appears twice in one object: which value is meant cannot be told",
        );
    }
    let event_id = match order::event_id(&root) {
        Ok(id) => id,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.field, e.message),
    };
    if !crate::ingram::signature::verify(
        &s.secrets
            .iter()
            .map(|x| x.expose().as_bytes())
            .collect::<Vec<_>>(),
        &event_id,
        signature,
    ) {
        tracing::warn!(event_id = %Escaped(&event_id), "Webhook refused: signature does not verify.");
        return refuse(
            StatusCode::UNAUTHORIZED,
            SIGNATURE_HEADER,
            "signature does not verify",
        );
    }
    // The signature verified: this id is Ingram's (or a replay of Ingram's signature).
    let now_ms = s.clock.now_ms();
    if let Some(refused) = refused_before(s, &event_id, now_ms) {
        return refused;
    }
    let mapping = s.mapping.current();
    // The mapping's programs run in worker processes and may take up to their time limit: off
    // the async runtime, so a slow or looping program holds this request only.
    let decoded = {
        let mapping = mapping.clone();
        let runs_programs =
            !mapping.programs.webhook.is_identity() || !mapping.programs.po850_segments.is_empty();
        let work = move || {
            let programs = &mapping.programs;
            order::decode_with(
                &root,
                &mapping.webhook,
                Some((&programs.webhook, &programs.runner)),
            )
            .and_then(|event| {
                for (i, po) in event.orders.iter().enumerate() {
                    to_850::check(po, i, &mapping)?;
                }
                Ok(event)
            })
            .map(|event| {
                let refusal = segments_refusal(&event, &mapping);
                (event, refusal)
            })
        };
        if runs_programs {
            tokio::task::spawn_blocking(work).await
        } else {
            Ok(work())
        }
    };
    let decoded = match decoded {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(event_id = %Escaped(&event_id), error = %e, "Webhook not accepted: decoding it failed unexpectedly; answered 500.");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "the event could not be decoded",
            );
        }
    };
    let event = match decoded {
        Ok((e, refusal)) => match refusal {
            None => e,
            Some((index, error)) => {
                // As for the webhook program: the mapping is at fault, nothing is stored, and
                // Ingram redelivers once it is corrected.
                s.metrics.program_error(ProgramKind::Webhook);
                let field = format!("resource[{index}]");
                tracing::error!(
                    event_id = %Escaped(&event_id),
                    field = %field,
                    reason = %Escaped(&error.to_string()),
                    mapping = %mapping.source.display(),
                    "Webhook not accepted: the 850 cannot be built with the mapping's [[po850.segments]]; nothing stored, answered 500."
                );
                return refuse(StatusCode::INTERNAL_SERVER_ERROR, &field, error.to_string());
            }
        },
        Err(DecodeError::Field(e)) => {
            tracing::warn!(
                event_id = %Escaped(&event_id),
                field = %Escaped(&e.field),
                reason = %Escaped(&e.message),
                "Webhook refused: the body cannot be accepted."
            );
            remember_refusal(s, &event_id, &e, now_ms).await;
            return refuse(StatusCode::BAD_REQUEST, &e.field, e.message);
        }
        Err(DecodeError::Program {
            index,
            error,
            place,
        }) => {
            // The mapping is at fault, not Ingram: nothing is stored, and a 5xx makes Ingram
            // deliver the event again once the mapping is corrected.
            s.metrics.program_error(ProgramKind::Webhook);
            let field = format!("resource[{index}]");
            tracing::error!(
                event_id = %Escaped(&event_id),
                field = %field,
                reason = %Escaped(&error.to_string()),
                mapping = %mapping.source.display(),
                program = %place,
                "Webhook not accepted: the mapping's [webhook] program failed; nothing stored, answered 500."
            );
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &field,
                format!("the mapping's [webhook] program failed: {error}"),
            );
        }
    };
    let raw = String::from_utf8_lossy(body).into_owned();
    let kept_headers: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "authorization" | "cookie"))
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let intake = s
        .store
        .intake(NewEvent {
            event_id: event.event_id.clone(),
            received_at: crate::clock::now_rfc3339(),
            headers: kept_headers,
            raw_body: raw,
            orders: event.orders.clone(),
        })
        .await;
    let intake = match intake {
        Ok(i) => i,
        Err(e) => {
            // The store's own failure is logged once by its committer; this is per request.
            tracing::warn!(event_id = %Escaped(&event.event_id), error = %e, "Webhook not stored; answered 503.");
            return unavailable("", "could not store the event durably; retry");
        }
    };
    s.metrics.webhook_latency(started.elapsed());
    match intake {
        Intake::DuplicateEvent => {
            tracing::info!(event_id = %Escaped(&event.event_id), "Duplicate webhook event acknowledged; nothing new stored.");
            (
                StatusCode::OK,
                Json(json!({"status": "duplicate", "eventId": event.event_id})),
            )
                .into_response()
        }
        Intake::Stored {
            new,
            repeated,
            conflicting,
        } => {
            for po in &conflicting {
                tracing::warn!(event_id = %Escaped(&event.event_id), po = %Escaped(po), "Purchase order re-sent with a different payload; held for review, no second 850.");
            }
            if !new.is_empty() {
                s.outbox_wake.notify_one();
            }
            tracing::info!(
                event_id = %Escaped(&event.event_id),
                new = %text::escape(&new.join(",")),
                repeated = %text::escape(&repeated.join(",")),
                "Webhook event stored."
            );
            (
                StatusCode::OK,
                Json(json!({
                    "status": "accepted",
                    "eventId": event.event_id,
                    "purchaseOrders": {"new": new, "repeated": repeated, "conflicting": conflicting},
                })),
            )
                .into_response()
        }
    }
}

/// The 409 for a signed event id refused for its body within the last day, unless that id was
/// accepted meanwhile (then intake answers it as a duplicate). Prunes a batch of expired refusals.
fn refused_before(s: &WebhookState, event_id: &str, now_ms: u64) -> Option<Response> {
    if let Err(e) = s.store.prune_refused(now_ms, crate::store::PRUNE_BATCH) {
        tracing::warn!(error = %e, "Could not prune expired webhook refusals.");
    }
    let refused = match s.store.refused_event(event_id, now_ms) {
        Ok(r) => r?,
        Err(e) => {
            tracing::error!(event_id = %Escaped(event_id), error = %e, "Could not read webhook refusals.");
            return Some(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "",
                "could not read the state store; retry",
            ));
        }
    };
    if matches!(s.store.event(event_id), Ok(Some(_))) {
        return None;
    }
    let at = crate::clock::rfc3339_ms(refused.refused_at_ms);
    tracing::warn!(
        event_id = %Escaped(event_id),
        refused_at = %at,
        field = %Escaped(&refused.field),
        "Webhook refused: this event id was refused for its body before; refused again whatever the body."
    );
    Some(refuse(
        StatusCode::CONFLICT,
        "eventid",
        format!(
            "event id was refused at {at} ({}: {}); a refused event id is refused again for {} hours whatever the body",
            refused.field,
            refused.reason,
            crate::store::REFUSED_TTL_MS / 3_600_000
        ),
    ))
}

/// Remembers durably that the signed `event_id` was refused for its body, unless the id was
/// accepted before (a later bad body must not turn Ingram's retries of a stored event into 409s).
async fn remember_refusal(s: &WebhookState, event_id: &str, e: &order::FieldError, now_ms: u64) {
    if matches!(s.store.event(event_id), Ok(Some(_))) {
        return;
    }
    let stored = match s
        .store
        .remember_refused(event_id, &e.field, &e.message, now_ms)
    {
        Ok(()) => s.store.flush().await,
        Err(e) => Err(e),
    };
    if let Err(err) = stored {
        tracing::error!(event_id = %Escaped(event_id), error = %err, "Could not remember a refused webhook event id.");
    }
}
