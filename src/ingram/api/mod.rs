//! Outbound client for Ingram's OAuth2-protected vendor APIs (PO Response, PO Status). One reqwest
//! `Client` and one token cache are shared by every clone of `ApiClient`; `post_json` sends a JSON
//! document with every required `IM-*` header and refreshes the token once on a 401. Failures are
//! typed (`Error`) and carry their own retry decision (`Error::retry_action`). This is the only
//! module that names reqwest.

mod error;
pub mod health;
mod token;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};

pub use error::{
    backoff, parse_error_message, rate_limit, retry_after, status_action, Error, RateLimitHeaders,
    RetryAction,
};
pub use token::{parse_expires_in, refresh_deadline, MAX_TOKEN_LIFETIME};

use error::{message_from_body, now_epoch_secs};
use token::{Token, TokenCache};

/// Idle pooled connections are closed before Ingram's gateway would drop them.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest `IM-CorrelationID` / `IM-SenderID` Ingram accepts.
pub const MAX_ID_LEN: usize = 32;

/// Where and as whom to call Ingram. `Debug` redacts `client_secret`.
#[derive(Clone)]
pub struct ApiSettings {
    /// Base of the vendor API, e.g. `https://api.ingrammicro.com:443/vendors/v1`.
    pub api_base_url: String,
    /// OAuth2 token endpoint, e.g. `https://api.ingrammicro.com:443/oauth/oauth30/token`.
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Sent as `IM-PartnerID`.
    pub partner_id: String,
    /// Sent as `IM-CountryCode` (two letters).
    pub country_code: String,
    /// Sent as `IM-SenderID` (at most 32 characters).
    pub sender_id: String,
    pub connect_timeout: Duration,
    /// Whole-request deadline (connect, send, read the body).
    pub request_timeout: Duration,
    /// How long before its computed expiry a token is replaced.
    pub token_refresh_margin: Duration,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("api_base_url", &self.api_base_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("partner_id", &self.partner_id)
            .field("country_code", &self.country_code)
            .field("sender_id", &self.sender_id)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("token_refresh_margin", &self.token_refresh_margin)
            .finish()
    }
}

/// A 2xx answer from Ingram (207 means partial success: log the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub status: u16,
    pub body: String,
    /// What the answer said of the app's rate limit (the caller paces by it).
    pub rate: RateLimitHeaders,
}

/// What the API base answered to the connection test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAnswer {
    pub status: u16,
    /// The server's `Date` header, as sent.
    pub date: Option<String>,
    /// The message of an error body, when the answer was not 2xx.
    pub message: Option<String>,
}

/// The client. Cheap to clone; clones share the connection pool and the token cache.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    settings: Arc<ApiSettings>,
    tokens: Arc<TokenCache>,
    health: Arc<health::ApiHealth>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("settings", &self.settings)
            .field("token_refreshes", &self.tokens.refreshes())
            .finish_non_exhaustive()
    }
}

/// Install ring as rustls's process-wide crypto provider; reqwest panics without one.
fn install_crypto_provider() {
    // An Err only means a provider is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the project's timeouts and pool settings.
fn build_http(
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<reqwest::Client, Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("edi-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Build(error_chain(&e)))
}

impl ApiClient {
    /// Validate the settings and build the client. Makes no network call.
    pub fn new(settings: ApiSettings) -> Result<Self, Error> {
        let mut problems = Vec::new();
        for (name, url) in [
            ("api_base_url", &settings.api_base_url),
            ("token_url", &settings.token_url),
        ] {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => problems.push(format!("{name} is not an http(s) url")),
            }
        }
        for (name, value) in [
            ("client_id", &settings.client_id),
            ("client_secret", &settings.client_secret),
            ("partner_id", &settings.partner_id),
            ("sender_id", &settings.sender_id),
        ] {
            if value.is_empty() {
                problems.push(format!("{name} is empty"));
            } else if HeaderValue::from_str(value).is_err() {
                problems.push(format!("{name} has characters not allowed in a header"));
            }
        }
        if settings.sender_id.chars().count() > MAX_ID_LEN {
            problems.push(format!("sender_id is longer than {MAX_ID_LEN} characters"));
        }
        if settings.country_code.len() != 2
            || !settings
                .country_code
                .chars()
                .all(|c| c.is_ascii_alphabetic())
        {
            problems.push("country_code is not two letters".to_owned());
        }
        if !problems.is_empty() {
            return Err(Error::Build(problems.join(", ")));
        }
        let http = build_http(settings.connect_timeout, settings.request_timeout)?;
        Ok(Self {
            http,
            settings: Arc::new(settings),
            tokens: Arc::new(TokenCache::default()),
            health: Arc::new(health::ApiHealth::new(crate::clock::Clock::system())),
        })
    }

    /// The same client recording what it sees of Ingram by `clock` (the daemon's, which tests
    /// move forward). Call before cloning: clones share the record.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.health = Arc::new(health::ApiHealth::new(clock));
        self
    }

    /// When Ingram last answered, since when it has not, and the token's state.
    pub fn health(&self) -> &health::ApiHealth {
        &self.health
    }

    /// A valid token (cached or new), recording what the token endpoint said when it was asked.
    async fn token(&self) -> Result<Token, Error> {
        let before = self.tokens.refreshes();
        match self.tokens.get(&self.http, &self.settings).await {
            Ok(t) => {
                if self.tokens.refreshes() != before {
                    self.health.answered();
                    let left = t
                        .refresh_at
                        .saturating_duration_since(tokio::time::Instant::now());
                    let renew_by_ms = self
                        .health
                        .clock()
                        .now_ms()
                        .saturating_add(left.as_millis() as u64);
                    self.health.token(health::TokenState::Valid { renew_by_ms });
                }
                Ok(t)
            }
            Err(e) => {
                self.note_token_error(&e);
                Err(e)
            }
        }
    }

    fn note_token_error(&self, e: &Error) {
        match e {
            Error::TokenStatus {
                status, message, ..
            } => {
                self.health.status(*status, "the token endpoint");
                if *status < 500 {
                    self.health.token(health::TokenState::Refused {
                        at_ms: self.health.clock().now_ms(),
                        status: *status,
                        message: crate::text::clip(message, 200),
                    });
                }
            }
            Error::Timeout | Error::Connect(_) | Error::Body(_) => {
                self.health.unanswered(format!("token endpoint: {e}"))
            }
            // An answer Ingram gave that we could not use; or a local problem.
            Error::Token(_) => self.health.answered(),
            Error::Status { .. } | Error::Build(_) => {}
        }
    }

    /// One attempt, with what it showed of Ingram recorded.
    async fn send_noted(
        &self,
        url: &str,
        payload: &[u8],
        correlation_id: &str,
        token: &Token,
    ) -> Result<reqwest::Response, Error> {
        let r = self.send(url, payload, correlation_id, token).await;
        match &r {
            Ok(resp) => self.health.status(resp.status().as_u16(), "the API"),
            Err(e) => self.health.unanswered(format!("API: {e}")),
        }
        r
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &ApiSettings {
        &self.settings
    }

    /// POST `body` as JSON to `{api_base_url}{path}` with every required header. The caller keeps
    /// `correlation_id` (1 to 32 characters) the same across retries of one job. On a 401 the token
    /// is replaced once and the call retried once. Any 2xx, 207 included, is success.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        correlation_id: &str,
    ) -> Result<Delivered, Error> {
        if correlation_id.is_empty()
            || correlation_id.chars().count() > MAX_ID_LEN
            || HeaderValue::from_str(correlation_id).is_err()
        {
            return Err(Error::Build(format!(
                "correlation id must be 1 to {MAX_ID_LEN} header-safe characters"
            )));
        }
        let url = format!(
            "{}{}",
            self.settings.api_base_url.trim_end_matches('/'),
            if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            }
        );
        exact_path(&self.settings.api_base_url, &url)?;
        let payload = serde_json::to_vec(body).map_err(|e| Error::Body(e.to_string()))?;

        let token = self.token().await?;
        let first = self
            .send_noted(&url, &payload, correlation_id, &token)
            .await?;
        let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
            tracing::info!(
                correlation_id,
                path = %crate::text::Escaped(path),
                "Ingram rejected the access token, fetching a new one."
            );
            self.tokens.invalidate(&token).await;
            let token = self.token().await?;
            self.send_noted(&url, &payload, correlation_id, &token)
                .await?
        } else {
            first
        };

        let status = response.status().as_u16();
        let wait = retry_after(response.headers(), now_epoch_secs());
        let rate = rate_limit(response.headers(), now_epoch_secs());
        let text = response.text().await.map_err(map_reqwest_error)?;
        if (200..300).contains(&status) {
            Ok(Delivered {
                status,
                body: text,
                rate,
            })
        } else {
            Err(Error::Status {
                status,
                message: message_from_body(&text),
                retry_after: wait,
            })
        }
    }

    /// One attempt with one token.
    async fn send(
        &self,
        url: &str,
        payload: &[u8],
        correlation_id: &str,
        token: &Token,
    ) -> Result<reqwest::Response, Error> {
        let s = &self.settings;
        self.http
            .post(url)
            .bearer_auth(&*token.value)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("IM-PartnerID", &s.partner_id)
            .header("IM-CorrelationID", correlation_id)
            .header("IM-CountryCode", &s.country_code)
            .header("IM-SenderID", &s.sender_id)
            .body(payload.to_vec())
            .send()
            .await
            .map_err(map_reqwest_error)
    }

    /// Fetches a fresh access token (not the cached one), for the connection test: how long it
    /// lasts. The token itself is never returned.
    pub async fn probe_token(&self) -> Result<Duration, Error> {
        self.tokens
            .refresh(&self.http, &self.settings)
            .await
            .map(|t| t.expires_in)
    }

    /// One authenticated GET of the API base, for the connection test: the status Ingram
    /// answered and its `Date` header. Any answer means the base is reachable with this token;
    /// 401/403 mean the token was refused.
    pub async fn probe_api(&self) -> Result<ApiAnswer, Error> {
        let token = self.tokens.get(&self.http, &self.settings).await?;
        let s = &self.settings;
        let response = self
            .http
            .get(&s.api_base_url)
            .bearer_auth(&*token.value)
            .header(ACCEPT, "application/json")
            .header("IM-PartnerID", &s.partner_id)
            .header("IM-CorrelationID", new_correlation_id())
            .header("IM-CountryCode", &s.country_code)
            .header("IM-SenderID", &s.sender_id)
            .send()
            .await
            .map_err(map_reqwest_error)?;
        let status = response.status().as_u16();
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        Ok(ApiAnswer {
            status,
            date,
            message: (!(200..300).contains(&status)).then(|| message_from_body(&text)),
        })
    }

    /// How many access tokens this client (and its clones) fetched: a metric.
    pub fn token_refreshes(&self) -> u64 {
        self.tokens.refreshes()
    }
}

/// Refuses a URL that the URL parser (and so the request line) would not keep as written: a dot
/// segment, even percent-encoded (`%2E%2E`), is resolved by the URL standard, which would send the
/// call to another resource (`/purchaseorders/%2E%2E/response` → `/response`).
fn exact_path(base_url: &str, url: &str) -> Result<(), Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Build(format!("bad url: {e}")))?;
    let base = reqwest::Url::parse(base_url).map_err(|e| Error::Build(format!("bad url: {e}")))?;
    let wanted = url
        .get(base_url.trim_end_matches('/').len()..)
        .unwrap_or_default();
    let expected = format!("{}{wanted}", base.path().trim_end_matches('/'));
    let expected = expected.split(['?', '#']).next().unwrap_or_default();
    if parsed.path() != expected {
        return Err(Error::Build(format!(
            "path {:?} would be sent as {:?}: a dot segment or other part the url parser rewrites",
            crate::text::escape(expected),
            crate::text::escape(parsed.path())
        )));
    }
    Ok(())
}

pub use crate::domain::new_correlation_id;

/// POST raw bytes with extra headers and return the status and body text, whatever the status.
/// For tools (the emulator's `send-webhook`), so that only this module names the HTTP client.
pub async fn post_bytes(
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, String), Error> {
    let http = build_http(timeout, timeout)?;
    let mut request = http.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.map_err(map_reqwest_error)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(map_reqwest_error)?;
    Ok((status, text))
}

/// Classify a reqwest failure. reqwest's messages name the URL but never the form body.
pub(crate) fn map_reqwest_error(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout
    } else if e.is_builder() {
        Error::Build(error_chain(&e))
    } else if e.is_body() || e.is_decode() {
        Error::Body(error_chain(&e))
    } else {
        Error::Connect(error_chain(&e))
    }
}

/// `e: source: source…`, so the root cause (refused, reset, dns) is visible.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests;
