//! OAuth2 client-credentials token cache shared by every clone of `ApiClient`. One refresh runs at a
//! time (the cache is a tokio `Mutex` held across the fetch, so concurrent callers wait for it and
//! reuse its result); a token is refreshed when `now >= obtained + min(expires_in, 86400) - margin`,
//! and a 401 invalidates it only if it is still the token the failed call used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::error::{message_from_body, now_epoch_secs, retry_after, Error};
use super::{map_reqwest_error, ApiSettings};

/// Ingram says tokens last 24 h even when `expires_in` claims longer.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// A bearer token and when it must be replaced. Debug never shows the token.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: Arc<str>,
    pub(crate) refresh_at: Instant,
    /// What the token endpoint said the token lasts (capped at 24 h).
    pub(crate) expires_in: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &format_args!("<{} chars>", self.value.len()))
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// When a token obtained at `obtained` with the given `expires_in` must be refreshed.
pub fn refresh_deadline(obtained: Instant, expires_in: Duration, margin: Duration) -> Instant {
    obtained + expires_in.min(MAX_TOKEN_LIFETIME).saturating_sub(margin)
}

/// The shared cache.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    current: tokio::sync::Mutex<Option<Token>>,
    refreshes: AtomicU64,
}

/// The token endpoint's reply; `expires_in` arrives as a number or a string.
#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// `expires_in` as seconds, from a number or a numeric string.
pub fn parse_expires_in(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl TokenCache {
    /// How many tokens have been fetched since start.
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// A valid token, fetching a new one (once, for all waiting callers) when needed.
    pub(crate) async fn get(
        &self,
        http: &reqwest::Client,
        settings: &ApiSettings,
    ) -> Result<Token, Error> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        let token = fetch(http, settings).await?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        *current = Some(token.clone());
        Ok(token)
    }

    /// A new token whatever the cache holds (the connection test), kept for the next call.
    pub(crate) async fn refresh(
        &self,
        http: &reqwest::Client,
        settings: &ApiSettings,
    ) -> Result<Token, Error> {
        let mut current = self.current.lock().await;
        let token = fetch(http, settings).await?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        *current = Some(token.clone());
        Ok(token)
    }

    /// Forget `used` unless another caller already replaced it.
    pub(crate) async fn invalidate(&self, used: &Token) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &used.value))
        {
            *current = None;
        }
    }
}

/// POST the client-credentials form to the token endpoint.
async fn fetch(http: &reqwest::Client, settings: &ApiSettings) -> Result<Token, Error> {
    let obtained = Instant::now();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", settings.client_id.as_str()),
        ("client_secret", settings.client_secret.as_str()),
    ];
    let response = http
        .post(&settings.token_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(map_reqwest_error)?;
    let status = response.status().as_u16();
    let wait = retry_after(response.headers(), now_epoch_secs());
    let body = response.text().await.map_err(map_reqwest_error)?;
    let redact = |m: String| {
        if settings.client_secret.is_empty() {
            m
        } else {
            m.replace(&settings.client_secret, "<redacted>")
        }
    };
    if !(200..300).contains(&status) {
        return Err(Error::TokenStatus {
            status,
            message: redact(message_from_body(&body)),
            retry_after: wait,
        });
    }
    let reply: TokenReply = serde_json::from_str(&body)
        .map_err(|e| Error::Token(format!("unreadable token reply: {e}")))?;
    if reply.access_token.is_empty() {
        return Err(Error::Token("empty access_token in token reply".into()));
    }
    let expires_in = match &reply.expires_in {
        None => MAX_TOKEN_LIFETIME.as_secs(),
        Some(v) => parse_expires_in(v)
            .ok_or_else(|| Error::Token(format!("unreadable expires_in in token reply: {v}")))?,
    };
    let expires_in = Duration::from_secs(expires_in);
    tracing::info!(
        expires_in_secs = expires_in.as_secs(),
        "Fetched a new access token."
    );
    Ok(Token {
        value: reply.access_token.into(),
        refresh_at: refresh_deadline(obtained, expires_in, settings.token_refresh_margin),
        expires_in: expires_in.min(MAX_TOKEN_LIFETIME),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_number_or_string() {
        assert_eq!(parse_expires_in(&serde_json::json!(86399)), Some(86399));
        assert_eq!(parse_expires_in(&serde_json::json!("86399")), Some(86399));
        assert_eq!(parse_expires_in(&serde_json::json!(" 30 ")), Some(30));
        assert_eq!(parse_expires_in(&serde_json::json!(12.0)), Some(12));
        assert_eq!(parse_expires_in(&serde_json::json!("soon")), None);
        assert_eq!(parse_expires_in(&serde_json::json!(null)), None);
        assert_eq!(parse_expires_in(&serde_json::json!(-5)), None);
    }

    #[test]
    fn deadline_caps_at_a_day_and_subtracts_the_margin() {
        let t0 = Instant::now();
        let margin = Duration::from_secs(300);
        let month = Duration::from_secs(30 * 86_400);
        assert_eq!(
            refresh_deadline(t0, month, margin),
            t0 + Duration::from_secs(86_400 - 300)
        );
        assert_eq!(
            refresh_deadline(t0, Duration::from_secs(3600), margin),
            t0 + Duration::from_secs(3300)
        );
        // A margin longer than the lifetime means "refresh on every use".
        assert_eq!(refresh_deadline(t0, Duration::from_secs(10), margin), t0);
    }

    #[test]
    fn token_debug_hides_the_value() {
        let token = Token {
            value: "abc-secret-token".into(),
            refresh_at: Instant::now(),
            expires_in: Duration::from_secs(60),
        };
        let shown = format!("{token:?}");
        assert!(!shown.contains("abc-secret-token"), "{shown}");
        assert!(shown.contains("<16 chars>"), "{shown}");
    }

    #[tokio::test]
    async fn invalidate_only_the_token_that_failed() {
        let cache = TokenCache::default();
        let old = Token {
            value: "old".into(),
            refresh_at: Instant::now() + Duration::from_secs(60),
            expires_in: Duration::from_secs(60),
        };
        let new = Token {
            value: "new".into(),
            refresh_at: Instant::now() + Duration::from_secs(60),
            expires_in: Duration::from_secs(60),
        };
        *cache.current.lock().await = Some(new.clone());
        cache.invalidate(&old).await;
        assert!(cache.current.lock().await.is_some(), "a newer token stays");
        cache.invalidate(&new).await;
        assert!(cache.current.lock().await.is_none());
    }
}
