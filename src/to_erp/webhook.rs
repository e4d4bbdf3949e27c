//! The Ingram PO webhook endpoint: each account's `POST /webhooks/ingram/{id}/purchase-orders`
//! (and `server.webhook_path` for the account `default`). Order of work per request, each step
//! a function returning `Result<_, Refusal>` (a refusal becomes the response and logs once):
//! the account → content type → signature present → JSON → event id → signature valid
//! (constant time, any of *that account's* secrets) → typed decode through the account's
//! mapping → one sled transaction → group commit flush → 2xx. Nothing is stored before the
//! signature verifies, and nothing is acknowledged before it is durable. Every refusal is a
//! 4xx (or a 5xx the sender retries) whose JSON body names the field.
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
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

use tracing::Level;

use crate::accounts::{Account, Accounts};
use crate::clock::Clock;
use crate::domain::DEFAULT_ACCOUNT;
use crate::ingram::order::{self, DecodeError};
use crate::metrics::{ListenerTimeout, Metrics, ProgramKind};
use crate::store::{Intake, NewEvent, Store};
use crate::text::{self, Escaped};
use crate::to_erp::to_850;

/// Each account's webhook path.
pub const ACCOUNT_PATH: &str = "/webhooks/ingram/{id}/purchase-orders";

/// Header carrying the Base64 HMAC-SHA512 of the event id.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";

/// What the webhook handler needs.
#[derive(Clone)]
pub struct WebhookState {
    pub store: Store,
    /// Each account: its secrets and mapping.
    pub accounts: Accounts,
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

/// The router: each account's webhook path (`/webhooks/ingram/{id}/purchase-orders`), the
/// single-account path (`path`) for the account `default`, plus `/healthz`, `/readyz` and
/// `/metrics`.
pub fn router(state: WebhookState, path: &str, max_body_bytes: usize) -> Router {
    Router::new()
        .route(ACCOUNT_PATH, post(receive_for))
        .route(path, post(receive_default))
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

/// `POST /webhooks/ingram/{id}/purchase-orders`: the account `id`'s webhook.
async fn receive_for(
    State(s): State<WebhookState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(s, account, headers, body).await
}

/// The single-account path (`server.webhook_path`): the account `default`'s webhook.
async fn receive_default(
    State(s): State<WebhookState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(s, DEFAULT_ACCOUNT.to_owned(), headers, body).await
}

async fn receive(s: WebhookState, account: String, headers: HeaderMap, body: Body) -> Response {
    let Some(account) = s.accounts.get(&account).cloned() else {
        let mut response = Refusal::new(
            StatusCode::NOT_FOUND,
            "account",
            format!("no account '{}' in this bridge", text::escape(&account)),
        )
        .into_response();
        // Its body is not read: close instead of draining it.
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        s.metrics.webhook(response.status().as_u16());
        return response;
    };
    let body = match read_body(&s.bodies, &s.metrics, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            let mut response = body_refusal(&s, e).into_response();
            // The rest of the body is not wanted: close instead of draining it.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            s.metrics.webhook(response.status().as_u16());
            return response;
        }
    };
    let response = match tokio::time::timeout(
        s.request_timeout,
        handle(&s, &account, &headers, &body),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(refusal)) => refusal.into_response(),
        Err(_) => Refusal::unavailable("", "timed out before the event was durable; retry")
            .logged(
                Level::WARN,
                "Webhook request timed out before it was durable.",
                None,
                Some(format!("timeout {} s", s.request_timeout.as_secs())),
            )
            .into_response(),
    };
    s.metrics.webhook(response.status().as_u16());
    response
}

/// The refusal for a body that could not be read.
fn body_refusal(s: &WebhookState, e: BodyError) -> Refusal {
    match e {
        BodyError::TooLarge => Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "$",
            "body larger than server.max_body_bytes",
        ),
        BodyError::NoSlot => {
            s.metrics.listener_timeout(ListenerTimeout::BodySlot);
            Refusal::unavailable("$", "too many request bodies being received; retry").logged(
                Level::DEBUG,
                "Webhook body refused: every body slot stayed busy.",
                None,
                None,
            )
        }
        BodyError::Timeout => {
            s.metrics.listener_timeout(ListenerTimeout::Body);
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "$",
                "body not received within server.body_read_timeout_secs",
            )
            .logged(
                Level::DEBUG,
                "Webhook body not received within the body deadline.",
                None,
                None,
            )
        }
        BodyError::Broken(e) => Refusal::new(
            StatusCode::BAD_REQUEST,
            "$",
            format!("failed to read the request body: {e}"),
        ),
    }
}

/// Why a webhook is not accepted: the response it becomes (a JSON body naming the field), and
/// the log line, written once, where the refusal becomes the response.
struct Refusal {
    status: StatusCode,
    field: String,
    message: String,
    log: Option<Box<RefusalLog>>,
}

struct RefusalLog {
    level: Level,
    what: &'static str,
    event_id: Option<String>,
    detail: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, field: &str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            field: field.to_owned(),
            message: message.into(),
            log: None,
        }
    }

    /// A 503 with `Retry-After` for an event that is not durable (or not read yet): the client
    /// retries (Ingram does).
    fn unavailable(field: &str, message: &str) -> Refusal {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, field, message)
    }

    /// The refusal, logged at `level` with `what`, the event id (escaped) and a detail.
    fn logged(
        mut self,
        level: Level,
        what: &'static str,
        event_id: Option<&str>,
        detail: Option<String>,
    ) -> Refusal {
        self.log = Some(Box::new(RefusalLog {
            level,
            what,
            event_id: event_id.map(text::escape),
            detail,
        }));
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Some(l) = &self.log {
            let (id, detail) = (
                l.event_id.as_deref().unwrap_or(""),
                l.detail.as_deref().unwrap_or(""),
            );
            match l.level {
                Level::ERROR => tracing::error!(event_id = %id, detail = %detail, "{}", l.what),
                Level::WARN => tracing::warn!(event_id = %id, detail = %detail, "{}", l.what),
                Level::INFO => tracing::info!(event_id = %id, detail = %detail, "{}", l.what),
                _ => tracing::debug!(event_id = %id, detail = %detail, "{}", l.what),
            }
        }
        let mut r = (
            self.status,
            Json(json!({ "error": self.message, "field": self.field })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        r
    }
}

/// One webhook, step by step; any step may refuse it.
async fn handle(
    s: &WebhookState,
    account: &Account,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Refusal> {
    let started = std::time::Instant::now();
    json_content(headers)?;
    let signature = signature_header(headers)?;
    let root = parse(body)?;
    let event_id = order::event_id(&root)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, &e.field, e.message))?;
    verify(account, &event_id, signature)?;
    // The signature verified: this id is the account's (or a replay of its signature).
    let event_key = crate::domain::po_key(&account.id, &event_id);
    let now_ms = s.clock.now_ms();
    refused_before(s, &event_key, now_ms)?;
    let event = decode(s, account, root, &event_id, &event_key, now_ms).await?;
    let intake = store(s, account, &event, headers, body).await?;
    s.metrics.webhook_latency(started.elapsed());
    Ok(answer(s, account, &event, intake))
}

fn json_content(headers: &HeaderMap) -> Result<(), Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
    {
        return Ok(());
    }
    Err(Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "content-type",
        format!(
            "content type '{}' is not application/json",
            text::escape(content_type)
        ),
    ))
}

fn signature_header(headers: &HeaderMap) -> Result<&str, Refusal> {
    headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::UNAUTHORIZED,
                SIGNATURE_HEADER,
                "missing signature",
            )
            .logged(
                Level::WARN,
                "Webhook refused: no signature header.",
                None,
                None,
            )
        })
}

/// The body as JSON; a key repeated in one object is refused (serde_json keeps the last of two
/// values for one key; which the sender meant is a guess).
fn parse(body: &Bytes) -> Result<Value, Refusal> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, "$", format!("malformed json: {e}")))?;
    if let Some(field) = order::repeated_key(body) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            &field,
            "this key appears twice in one object: which value is meant cannot be told",
        ));
    }
    Ok(root)
}

/// The signature, against this account's secrets only.
fn verify(account: &Account, event_id: &str, signature: &str) -> Result<(), Refusal> {
    let secrets: Vec<&[u8]> = account
        .webhook_secrets
        .iter()
        .map(|x| x.expose().as_bytes())
        .collect();
    if crate::ingram::signature::verify(&secrets, event_id, signature) {
        return Ok(());
    }
    Err(Refusal::new(
        StatusCode::UNAUTHORIZED,
        SIGNATURE_HEADER,
        "signature does not verify",
    )
    .logged(
        Level::WARN,
        "Webhook refused: signature does not verify.",
        Some(event_id),
        Some(format!("account {}", account.id)),
    ))
}

/// The typed event through the account's mapping: the webhook program, the decode, the 850
/// checks and its segment programs. A body the account cannot accept is remembered as refused.
async fn decode(
    s: &WebhookState,
    account: &Account,
    root: Value,
    event_id: &str,
    event_key: &str,
    now_ms: u64,
) -> Result<order::WebhookEvent, Refusal> {
    let mapping = account.mapping.current();
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
    let mapping_file = mapping.source.display().to_string();
    match decoded {
        Err(e) => Err(Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            "the event could not be decoded",
        )
        .logged(
            Level::ERROR,
            "Webhook not accepted: decoding it failed unexpectedly; answered 500.",
            Some(event_id),
            Some(e.to_string()),
        )),
        Ok(Ok((event, None))) => Ok(event),
        Ok(Ok((_, Some((index, error))))) => {
            // As for the webhook program: the mapping is at fault, nothing is stored, and
            // Ingram redelivers once it is corrected.
            s.metrics.program_error(ProgramKind::Webhook);
            let field = format!("resource[{index}]");
            Err(Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, &field, error.to_string()).logged(
                Level::ERROR,
                "Webhook not accepted: the 850 cannot be built with the mapping's [[po850.segments]]; nothing stored, answered 500.",
                Some(event_id),
                Some(format!("{field}: {} (mapping {mapping_file})", text::escape(&error.to_string()))),
            ))
        }
        Ok(Err(DecodeError::Field(e))) => {
            remember_refusal(s, event_key, &e, now_ms).await;
            Err(
                Refusal::new(StatusCode::BAD_REQUEST, &e.field, e.message.clone()).logged(
                    Level::WARN,
                    "Webhook refused: the body cannot be accepted.",
                    Some(event_id),
                    Some(format!(
                        "{}: {}",
                        text::escape(&e.field),
                        text::escape(&e.message)
                    )),
                ),
            )
        }
        Ok(Err(DecodeError::Program {
            index,
            error,
            place,
        })) => {
            // The mapping is at fault, not Ingram: nothing is stored, and a 5xx makes Ingram
            // deliver the event again once the mapping is corrected.
            s.metrics.program_error(ProgramKind::Webhook);
            let field = format!("resource[{index}]");
            Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                &field,
                format!("the mapping's [webhook] program failed: {error}"),
            )
            .logged(
                Level::ERROR,
                "Webhook not accepted: the mapping's [webhook] program failed; nothing stored, answered 500.",
                Some(event_id),
                Some(format!("{field}: {} (mapping {mapping_file}, program {place})", text::escape(&error.to_string()))),
            ))
        }
    }
}

/// The event, its POs and their queue entries, durably (the store's group commit).
async fn store(
    s: &WebhookState,
    account: &Account,
    event: &order::WebhookEvent,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Intake, Refusal> {
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
    s.store
        .intake(NewEvent {
            account: account.id.clone(),
            event_id: event.event_id.clone(),
            received_at: crate::clock::now_rfc3339(),
            headers: kept_headers,
            raw_body: String::from_utf8_lossy(body).into_owned(),
            orders: event.orders.clone(),
        })
        .await
        .map_err(|e| {
            // The store's own failure is logged once by its committer; this is per request.
            Refusal::unavailable("", "could not store the event durably; retry").logged(
                Level::WARN,
                "Webhook not stored; answered 503.",
                Some(&event.event_id),
                Some(e.to_string()),
            )
        })
}

/// The 200 for a stored (or duplicate) event.
fn answer(
    s: &WebhookState,
    account: &Account,
    event: &order::WebhookEvent,
    intake: Intake,
) -> Response {
    let id = Escaped(&event.event_id);
    match intake {
        Intake::DuplicateEvent => {
            tracing::info!(account = %account.id, event_id = %id, "Duplicate webhook event acknowledged; nothing new stored.");
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
                tracing::warn!(account = %account.id, event_id = %id, po = %Escaped(po), "Purchase order re-sent with a different payload; held for review, no second 850.");
            }
            if !new.is_empty() {
                s.outbox_wake.notify_one();
            }
            tracing::info!(
                account = %account.id,
                event_id = %id,
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
fn refused_before(s: &WebhookState, event_key: &str, now_ms: u64) -> Result<(), Refusal> {
    if let Err(e) = s.store.prune_refused(now_ms, crate::store::PRUNE_BATCH) {
        tracing::warn!(error = %e, "Could not prune expired webhook refusals.");
    }
    let refused = match s.store.refused_event(event_key, now_ms) {
        Ok(None) => return Ok(()),
        Ok(Some(r)) => r,
        Err(e) => {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "",
                "could not read the state store; retry",
            )
            .logged(
                Level::ERROR,
                "Could not read webhook refusals.",
                Some(event_key),
                Some(e.to_string()),
            ))
        }
    };
    if matches!(s.store.event(event_key), Ok(Some(_))) {
        return Ok(());
    }
    let at = crate::clock::rfc3339_ms(refused.refused_at_ms);
    Err(Refusal::new(
        StatusCode::CONFLICT,
        "eventid",
        format!(
            "event id was refused at {at} ({}: {}); a refused event id is refused again for {} hours whatever the body",
            refused.field,
            refused.reason,
            crate::store::REFUSED_TTL_MS / 3_600_000
        ),
    )
    .logged(
        Level::WARN,
        "Webhook refused: this event id was refused for its body before; refused again whatever the body.",
        Some(event_key),
        Some(format!("refused at {at}, field {}", text::escape(&refused.field))),
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
