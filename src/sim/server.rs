//! The emulator's HTTP side: one axum fallback handler that routes token and PO calls by path,
//! applies the fault script, down mode, random failures and latency, validates like Ingram, and
//! records the call. A custom listener wraps each connection so that a `drop` fault can close it
//! without sending any response.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{lock, Fault, RecordedCall, Shared};

/// Longest `IM-CorrelationID` / `IM-SenderID` accepted.
const MAX_ID_LEN: usize = 32;

/// Serve until `shutdown` is cancelled, then drain in-flight calls.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let app = Router::new().fallback(handle).with_state(shared);
    axum::serve(
        SimListener(listener),
        app.into_make_service_with_connect_info::<ConnControl>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// A TCP listener whose connections can be killed from a handler.
struct SimListener(TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = SimIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimIo, SocketAddr) {
        let (inner, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let io = SimIo {
            inner,
            dropped: Arc::new(AtomicBool::new(false)),
        };
        (io, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A connection that fails every read and write once `dropped` is set, so hyper closes it
/// before writing the response.
struct SimIo {
    inner: TcpStream,
    dropped: Arc<AtomicBool>,
}

fn dropped_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "dropped by the fault script",
    )
}

impl AsyncRead for SimIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dropped.load(Ordering::SeqCst) {
            return Poll::Ready(Err(dropped_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The handler's grip on its connection.
#[derive(Clone)]
struct ConnControl(Arc<AtomicBool>);

impl Connected<IncomingStream<'_, SimListener>> for ConnControl {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        ConnControl(stream.io().dropped.clone())
    }
}

/// What to answer.
struct Answer {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        (status, headers, Json(self.body)).into_response()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnControl>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = &shared.config;
    let path = uri.path().to_owned();
    let mut call = RecordedCall {
        at: now_rfc3339(),
        method: method.to_string(),
        path: path.clone(),
        kind: "unknown".to_owned(),
        po: None,
        headers: recorded_headers(&headers),
        body: Value::Null,
        status: 0,
        response: Value::Null,
    };
    if path == cfg.token_path {
        return token_call(&shared, call, &method, &headers, &body).await;
    }

    call.body = body_value(&body);
    let (kind, po) = classify(cfg, &path);
    call.kind = kind.to_owned();
    call.po = po.clone();
    let rate = match (&po, &method) {
        (Some(_), &Method::POST) => rate_check(&shared),
        _ => None,
    };
    let (mut answer, extra_delay) = match route(&shared, &conn, &method, &headers, &body, po, rate)
    {
        Routed::Answer(answer, extra_delay) => (answer, extra_delay),
        Routed::Dropped => {
            call.response = json!({"dropped": true});
            record(&shared, call).await;
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if let Some(r) = rate {
        with_rate_headers(&mut answer, r);
    }
    call.status = answer.status;
    call.response = answer.body.clone();
    record(&shared, call).await;
    let delay = cfg.latency + extra_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    answer.into_response()
}

/// The token endpoint's call: answered, recorded (the secret and the token redacted), delayed by
/// the configured latency.
async fn token_call(
    shared: &Arc<Shared>,
    mut call: RecordedCall,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    call.kind = "token".to_owned();
    let (answer, form) = token(shared, method, headers, body);
    call.body = form;
    call.status = answer.status;
    call.response = redact_token(&answer.body);
    record(shared, call).await;
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    answer.into_response()
}

/// What an API path answers, or that the connection is dropped (a `drop` fault).
enum Routed {
    /// The answer, and a delay a `delay:` fault adds to the configured latency.
    Answer(Answer, Duration),
    Dropped,
}

/// Routes an API call: an unknown path, a wrong method, the rate limit, an outage, then the
/// next scripted fault or a random failure, else the PO call's answer.
fn route(
    shared: &Shared,
    conn: &ConnControl,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    po: Option<String>,
    rate: Option<RateState>,
) -> Routed {
    let cfg = &shared.config;
    let answer = match po {
        // Like Ingram's gateway, a presented token is checked before the path is routed, and
        // then the partner id (the connection test's harmless GET relies on both).
        None if header(headers, "authorization").is_some() => check_token(shared, headers)
            .or_else(|| check_partner(cfg, headers))
            .unwrap_or_else(|| {
                Answer::new(
                    404,
                    error_entry("notFound", "Resource not found", Vec::new()),
                )
            }),
        None => Answer::new(
            404,
            error_entry("notFound", "Resource not found", Vec::new()),
        ),
        Some(_) if method != Method::POST => Answer::new(
            405,
            error_entry("methodNotAllowed", "Method not allowed", Vec::new()),
        ),
        Some(_) if rate.is_some_and(|r| r.over) => Answer::new(
            429,
            json!({"errors": [{"field": null, "message": "too many requests"}]}),
        ),
        Some(_) if shared.down.load(Ordering::SeqCst) => fault_answer(shared, 503, headers),
        Some(po) => {
            let fault = lock(&shared.faults).pop_front();
            match fault {
                Some(Fault::Status(code)) => fault_answer(shared, code, headers),
                Some(Fault::Drop) => {
                    conn.0.store(true, Ordering::SeqCst);
                    return Routed::Dropped;
                }
                Some(Fault::Delay(d)) => {
                    return Routed::Answer(api_answer(shared, headers, &po, body), d)
                }
                None if random_failure(shared) => fault_answer(shared, 503, headers),
                None => api_answer(shared, headers, &po, body),
            }
        }
    };
    Routed::Answer(answer, Duration::ZERO)
}

/// Ingram's rate-limit headers on a PO call's answer (and `Retry-After` over the limit).
fn with_rate_headers(answer: &mut Answer, r: RateState) {
    answer
        .headers
        .retain(|(name, _)| !name.starts_with("x-ratelimit-"));
    answer.headers.extend([
        ("x-ratelimit-limit", r.limit.to_string()),
        ("x-ratelimit-remaining", r.remaining.to_string()),
        ("x-ratelimit-reset", r.reset_epoch_secs.to_string()),
    ]);
    if r.over {
        answer
            .headers
            .push(("retry-after", r.retry_after_secs.to_string()));
    }
}

/// Where a PO call stands against the configured rate limit.
#[derive(Debug, Clone, Copy)]
struct RateState {
    limit: u32,
    remaining: u32,
    reset_epoch_secs: u64,
    retry_after_secs: u64,
    /// Over the limit: answer 429 (not counted).
    over: bool,
}

/// Counts this call in the current window of the rate limit, if one is configured.
fn rate_check(shared: &Shared) -> Option<RateState> {
    let limit = shared.config.rate_limit?;
    let per_ms = (limit.per.as_millis() as u64).max(1);
    let now_ms = crate::clock::since_epoch().as_millis() as u64;
    let index = now_ms / per_ms;
    let mut window = lock(&shared.rate_window);
    if window.0 != index {
        *window = (index, 0);
    }
    let over = window.1 >= limit.requests;
    if !over {
        window.1 += 1;
    }
    let reset_ms = (index + 1) * per_ms;
    Some(RateState {
        limit: limit.requests,
        remaining: limit.requests - window.1,
        reset_epoch_secs: reset_ms.div_ceil(1000),
        retry_after_secs: (reset_ms - now_ms).div_ceil(1000).max(1),
        over,
    })
}

/// Whether this call draws one of the configured random 503s.
fn random_failure(shared: &Shared) -> bool {
    use rand::Rng as _;
    let rate = shared.config.failure_rate;
    rate > 0.0 && lock(&shared.rng).random::<f64>() < rate
}

/// Append the call to the JSONL file (if any), then to memory, then wake waiters.
async fn record(shared: &Shared, call: RecordedCall) {
    if let Some(file) = &shared.record_file {
        match serde_json::to_vec(&call) {
            Ok(mut line) => {
                line.push(b'\n');
                let mut file = file.lock().await;
                let written = async {
                    file.write_all(&line).await?;
                    file.flush().await
                }
                .await;
                if let Err(e) = written {
                    tracing::warn!(error = %e, "Cannot append to the emulator's record file.");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Cannot encode a recorded call."),
        }
    }
    lock(&shared.calls).push(call);
    shared.recorded.notify_waiters();
}

/// The token endpoint. Returns the answer and the form as recorded (secret redacted).
fn token(shared: &Shared, method: &Method, headers: &HeaderMap, body: &[u8]) -> (Answer, Value) {
    let cfg = &shared.config;
    let form = parse_form(body);
    let recorded: serde_json::Map<String, Value> = form
        .iter()
        .map(|(k, v)| {
            let v = if k == "client_secret" {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.clone(), Value::String(v.to_owned()))
        })
        .collect();
    let recorded = Value::Object(recorded);
    let message = |status: u16, text: &str| {
        (
            Answer::new(status, json!({ "message": text })),
            recorded.clone(),
        )
    };
    if method != Method::POST {
        return message(405, "Method not allowed");
    }
    let content_type = header(headers, "content-type").unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return message(
            400,
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    match get("grant_type") {
        None | Some("") => return message(400, "grant_type is required"),
        Some("client_credentials") => {}
        Some(_) => {
            return message(
                400,
                "Unsupported grant_type, only client_credentials is allowed",
            )
        }
    }
    let (Some(id), Some(secret)) = (get("client_id"), get("client_secret")) else {
        return message(400, "client_id and client_secret are required");
    };
    if id != cfg.client_id || secret != cfg.client_secret {
        return (
            Answer::new(
                401,
                gateway_fault(
                    "Invalid client credentials",
                    "oauth.v2.InvalidClientCredentials",
                ),
            ),
            recorded,
        );
    }
    let token = format!("sim{}", uuid::Uuid::new_v4().simple());
    let expires = tokio::time::Instant::now() + Duration::from_secs(cfg.token_ttl_secs);
    lock(&shared.tokens).insert(token.clone(), expires);
    let expires_in = if cfg.expires_in_as_string {
        json!(cfg.token_ttl_secs.to_string())
    } else {
        json!(cfg.token_ttl_secs)
    };
    let reply = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    (Answer::new(200, reply), recorded)
}

/// A token reply as recorded: the access token replaced by its length.
fn redact_token(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(t) = body.get_mut("access_token") {
        let len = t.as_str().map_or(0, str::len);
        *t = Value::String(format!("<{len} chars>"));
    }
    body
}

/// Validate a PO call and answer it.
fn api_answer(shared: &Shared, headers: &HeaderMap, po: &str, body: &[u8]) -> Answer {
    let cfg = &shared.config;
    if let Some(fault) = check_token(shared, headers) {
        return fault;
    }
    let mut fields: Vec<Value> = Vec::new();
    let mut problem = |field: &str, value: Option<&str>, message: &str| {
        fields.push(json!({ "field": field, "value": value, "message": message }));
    };
    let partner = header(headers, "im-partnerid");
    match (partner, &cfg.partner_id) {
        (None | Some(""), _) => problem("IM-PartnerID", partner, "IM-PartnerID header is required"),
        (Some(p), Some(want)) if p != want => problem(
            "IM-PartnerID",
            partner,
            "IM-PartnerID is not a registered partner id",
        ),
        _ => {}
    }
    let correlation = header(headers, "im-correlationid");
    match correlation {
        None | Some("") => problem(
            "IM-CorrelationID",
            correlation,
            "IM-CorrelationID header is required",
        ),
        Some(c) if c.chars().count() > MAX_ID_LEN => problem(
            "IM-CorrelationID",
            correlation,
            "IM-CorrelationID must be at most 32 characters",
        ),
        _ => {}
    }
    let country = header(headers, "im-countrycode");
    match country {
        Some(c) if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {}
        _ => problem(
            "IM-CountryCode",
            country,
            "IM-CountryCode must be a 2-letter country code",
        ),
    }
    let sender = header(headers, "im-senderid");
    match sender {
        None | Some("") => problem("IM-SenderID", sender, "IM-SenderID header is required"),
        Some(s) if s.chars().count() > MAX_ID_LEN => problem(
            "IM-SenderID",
            sender,
            "IM-SenderID must be at most 32 characters",
        ),
        _ => {}
    }
    let content_type = header(headers, "content-type");
    if !content_type.is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json")) {
        problem(
            "Content-Type",
            content_type,
            "Content-Type must be application/json",
        );
    }
    let accept = header(headers, "accept");
    if !accept.is_some_and(|a| a.contains("application/json") || a.contains("*/*")) {
        problem("Accept", accept, "Accept must allow application/json");
    }
    match serde_json::from_slice::<Value>(body) {
        Err(_) => problem("body", None, "request body must be JSON"),
        Ok(Value::Object(obj)) => match obj.get("ingramPurchaseOrderNumber") {
            None => {}
            Some(Value::String(n)) if n == po => {}
            Some(other) => {
                let value = other
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| other.to_string());
                problem(
                    "ingramPurchaseOrderNumber",
                    Some(&value),
                    "ingramPurchaseOrderNumber does not match the purchase order in the path",
                );
            }
        },
        Ok(_) => problem("body", None, "request body must be a JSON object"),
    }
    if !fields.is_empty() {
        return Answer::new(
            400,
            error_entry("validation", "The request failed validation", fields),
        );
    }
    Answer::new(
        200,
        json!({
            "status": "accepted",
            "ingramPurchaseOrderNumber": po,
            "correlationId": correlation,
        }),
    )
}

/// A 401 answer unless the call carries a token this emulator issued and that is still valid.
fn check_token(shared: &Shared, headers: &HeaderMap) -> Option<Answer> {
    let token = bearer(headers);
    let expires = token.and_then(|t| lock(&shared.tokens).get(t).copied());
    match expires {
        None => Some(Answer::new(
            401,
            gateway_fault(
                "Invalid Access Token",
                "keymanagement.service.invalid_access_token",
            ),
        )),
        Some(at) if tokio::time::Instant::now() >= at => Some(Answer::new(
            401,
            gateway_fault(
                "Access Token expired",
                "keymanagement.service.access_token_expired",
            ),
        )),
        Some(_) => None,
    }
}

/// A 400 in Ingram's `faultcode` shape when the call names no partner id, or one other than
/// the registered one (when one is configured).
fn check_partner(cfg: &super::SimConfig, headers: &HeaderMap) -> Option<Answer> {
    let partner = header(headers, "im-partnerid").unwrap_or_default();
    let refused = partner.is_empty() || cfg.partner_id.as_deref().is_some_and(|p| p != partner);
    refused.then(|| {
        Answer::new(
            400,
            json!({
                "faultcode": "Server",
                "faultstring": "Invalid partner id. Check the IM-PartnerID header.",
            }),
        )
    })
}

/// The bearer token of a call, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let auth = header(headers, "authorization")?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The answer for a scripted (or down-mode, or random) failure status, in Ingram's shapes.
fn fault_answer(shared: &Shared, status: u16, headers: &HeaderMap) -> Answer {
    match status {
        401 => {
            // Pretend the token expired: it stays expired for later calls too.
            if let Some(t) = bearer(headers) {
                if let Some(at) = lock(&shared.tokens).get_mut(t) {
                    *at = tokio::time::Instant::now();
                }
            }
            Answer::new(
                401,
                gateway_fault(
                    "Access Token expired",
                    "keymanagement.service.access_token_expired",
                ),
            )
        }
        429 => {
            let reset = crate::clock::since_epoch().as_secs() + 1;
            let mut answer = Answer::new(
                429,
                json!({"errors": [{"field": null, "message": "too many requests"}]}),
            );
            answer.headers = vec![
                ("x-ratelimit-limit", "60".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
                ("retry-after", "1".to_owned()),
            ];
            answer
        }
        400 => Answer::new(
            400,
            error_entry("validation", "The request failed validation", Vec::new()),
        ),
        403 => Answer::new(
            403,
            gateway_fault("Access denied", "accesscontrol.AccessDenied"),
        ),
        404 => Answer::new(
            404,
            error_entry("notFound", "Resource not found", Vec::new()),
        ),
        500 => Answer::new(
            500,
            json!({"faultcode": "Server", "faultstring": "Internal server error"}),
        ),
        502..=504 => Answer::new(
            status,
            gateway_fault(
                "The Service is temporarily unavailable",
                "messaging.adaptors.http.flow.ServiceUnavailable",
            ),
        ),
        _ => Answer::new(
            status,
            json!({ "message": format!("scripted status {status}") }),
        ),
    }
}

/// `{"errors":[{"id","type","message","fields"}]}`.
fn error_entry(kind: &str, message: &str, fields: Vec<Value>) -> Value {
    json!({"errors": [{
        "id": uuid::Uuid::new_v4().to_string(),
        "type": kind,
        "message": message,
        "fields": fields,
    }]})
}

/// The API gateway's `{"fault":{"faultstring","detail":{"errorcode"}}}`.
fn gateway_fault(text: &str, code: &str) -> Value {
    json!({"fault": {"faultstring": text, "detail": {"errorcode": code}}})
}

/// Which API a path names, and its PO number.
fn classify(cfg: &super::SimConfig, path: &str) -> (&'static str, Option<String>) {
    let Some(rest) = path.strip_prefix(cfg.base_path.trim_end_matches('/')) else {
        return ("unknown", None);
    };
    for (kind, template) in [
        ("po_response", &cfg.response_path),
        ("po_status", &cfg.status_path),
    ] {
        if let Some(po) = match_template(template, rest) {
            return (kind, Some(po));
        }
    }
    ("unknown", None)
}

/// Match `/purchaseorders/{po}/response` against a path; returns the decoded `{po}`.
fn match_template(template: &str, path: &str) -> Option<String> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut po = None;
    for (ts, ps) in t.iter().zip(&p) {
        if *ts == "{po}" {
            if ps.is_empty() {
                return None;
            }
            po = Some(percent_decode(ps, false));
        } else if ts != ps {
            return None;
        }
    }
    po
}

/// Decode `%XX` escapes (and `+` as a space in forms); invalid escapes are kept as they are.
fn percent_decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_as_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An `application/x-www-form-urlencoded` body as ordered pairs.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// A header as text, if present and visible ASCII.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Headers as recorded: lower-case names, `Authorization` reduced to its scheme and length.
fn recorded_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let text = if name == axum::http::header::AUTHORIZATION {
                match text.split_once(' ') {
                    Some((scheme, cred)) => format!("{scheme} <{}>", cred.trim().len()),
                    None => format!("<{}>", text.len()),
                }
            } else {
                text
            };
            (name.as_str().to_owned(), text)
        })
        .collect()
}

/// The body as JSON, else as a string (`null` when empty).
fn body_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_decoding() {
        let cfg = super::super::SimConfig::default();
        assert_eq!(
            classify(&cfg, "/vendors/v1/purchaseorders/IM-PO-1/response"),
            ("po_response", Some("IM-PO-1".to_owned()))
        );
        assert_eq!(
            classify(&cfg, "/vendors/v1/purchaseorders/A%20B/status"),
            ("po_status", Some("A B".to_owned()))
        );
        assert_eq!(
            classify(&cfg, "/vendors/v1/purchaseorders//status"),
            ("unknown", None)
        );
        assert_eq!(
            classify(&cfg, "/other/purchaseorders/X/status"),
            ("unknown", None)
        );
        assert_eq!(percent_decode("a%2", false), "a%2");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("a+b%3D", true), "a b=");
        assert_eq!(
            parse_form(b"grant_type=client_credentials&client_id=a%2Bb&x"),
            vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("client_id".to_owned(), "a+b".to_owned()),
                ("x".to_owned(), String::new()),
            ]
        );
    }
}
