//! The outbound client's error type and the one retry policy every caller uses: `Error::retry_action`
//! maps a failure to `Retry { after }` or `Reject`. Also the pure helpers behind it: parsing every
//! documented Ingram error-body shape, reading `Retry-After` / `X-RateLimit-Reset`, and the
//! exponential backoff with full jitter used between attempts.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Longest body excerpt kept in an error message when no documented error shape matches.
const EXCERPT_CHARS: usize = 200;

/// A failed call to Ingram (token endpoint or vendor API). Never carries the client secret or token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with a non-2xx status (a 401 here persisted after one token refresh).
    #[error("api answered {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request (connect, send or read) ran past its deadline.
    #[error("request timed out")]
    Timeout,
    /// The connection could not be made or broke before a response arrived.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The token endpoint answered 2xx with an unusable reply, or failed in another way.
    #[error("token endpoint failed: {0}")]
    Token(String),
    /// The token endpoint answered with a non-2xx status.
    #[error("token endpoint answered {status}: {message}")]
    TokenStatus {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The response body could not be read, or the request body could not be encoded.
    #[error("bad body: {0}")]
    Body(String),
    /// The client or the request could not be built (bad URL, bad header value, bad settings).
    #[error("cannot build request: {0}")]
    Build(String),
}

/// What the caller does with a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Try again later, not before `after` when the server said so.
    Retry { after: Option<Duration> },
    /// Give up: the request will never succeed as it is (dead-letter it).
    Reject,
}

impl Error {
    /// The one retry policy: 408, 429 and 5xx (except 501) retry, as do timeouts, connection
    /// failures, unreadable bodies and token endpoint outages; any other 4xx, including a 401 that
    /// persisted after a token refresh, rejects.
    pub fn retry_action(&self) -> RetryAction {
        match self {
            Error::Status {
                status,
                retry_after,
                ..
            }
            | Error::TokenStatus {
                status,
                retry_after,
                ..
            } => status_action(*status, *retry_after),
            Error::Timeout | Error::Connect(_) | Error::Token(_) | Error::Body(_) => {
                RetryAction::Retry { after: None }
            }
            Error::Build(_) => RetryAction::Reject,
        }
    }

    /// `Some(wait)` when Ingram throttled the call (429, from the API or its token endpoint):
    /// the wait its `Retry-After` / `X-RateLimit-Reset` asked for, if any. A throttled call is
    /// paced, not failed: the caller pauses the account and sends it again.
    pub fn throttled(&self) -> Option<Option<Duration>> {
        match self {
            Error::Status {
                status: 429,
                retry_after,
                ..
            }
            | Error::TokenStatus {
                status: 429,
                retry_after,
                ..
            } => Some(*retry_after),
            _ => None,
        }
    }

    /// The HTTP status behind this error, if the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } | Error::TokenStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The retry decision for an HTTP status alone.
pub fn status_action(status: u16, after: Option<Duration>) -> RetryAction {
    match status {
        408 | 429 => RetryAction::Retry { after },
        501 => RetryAction::Reject,
        500..=599 => RetryAction::Retry { after },
        _ => RetryAction::Reject,
    }
}

/// The human message from any documented Ingram error body:
/// `{"errors":[{"id","type","message","fields":[{"field","value","message"}]}]}`,
/// `{"errors":[{"field":null,"message":".."}]}`, `{"faultcode","faultstring"}`,
/// `{"fault":{"faultstring","detail":{"errorcode"}}}` and `{"message":".."}`.
/// Several errors are joined with `; `. `None` when the body is none of these.
pub fn parse_error_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let obj = value.as_object()?;
    if let Some(errors) = obj.get("errors").and_then(|e| e.as_array()) {
        let parts: Vec<String> = errors.iter().filter_map(describe_error).collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    if let Some(fault) = obj.get("fault").and_then(|f| f.as_object()) {
        let text = fault.get("faultstring").and_then(|s| s.as_str());
        let code = fault
            .get("detail")
            .and_then(|d| d.get("errorcode"))
            .and_then(|c| c.as_str());
        match (text, code) {
            (Some(t), Some(c)) => return Some(format!("{t} ({c})")),
            (Some(t), None) => return Some(t.to_owned()),
            (None, Some(c)) => return Some(c.to_owned()),
            (None, None) => {}
        }
    }
    if let Some(text) = obj.get("faultstring").and_then(|s| s.as_str()) {
        return Some(match obj.get("faultcode").and_then(|c| c.as_str()) {
            Some(code) => format!("{code}: {text}"),
            None => text.to_owned(),
        });
    }
    for key in ["message", "error_description", "error"] {
        if let Some(text) = obj.get(key).and_then(|s| s.as_str()) {
            return Some(text.to_owned());
        }
    }
    None
}

/// One entry of an `errors` array: its message plus any field-level details.
fn describe_error(err: &serde_json::Value) -> Option<String> {
    let message = err.get("message").and_then(|m| m.as_str());
    let mut fields = Vec::new();
    for field in err
        .get("fields")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
    {
        let name = field.get("field").and_then(|f| f.as_str()).unwrap_or("?");
        match field.get("message").and_then(|m| m.as_str()) {
            Some(m) => fields.push(format!("{name}: {m}")),
            None => fields.push(name.to_owned()),
        }
    }
    // The rate-limit shape names its field directly on the error.
    let own_field = err.get("field").and_then(|f| f.as_str());
    let head = match (own_field, message) {
        (Some(f), Some(m)) => format!("{f}: {m}"),
        (None, Some(m)) => m.to_owned(),
        (Some(f), None) => f.to_owned(),
        (None, None) if fields.is_empty() => return None,
        (None, None) => String::new(),
    };
    if fields.is_empty() {
        Some(head)
    } else if head.is_empty() {
        Some(fields.join(", "))
    } else {
        Some(format!("{head} ({})", fields.join(", ")))
    }
}

/// The error message for a non-2xx reply: a documented shape, else a short excerpt of the body.
pub(crate) fn message_from_body(body: &str) -> String {
    if let Some(m) = parse_error_message(body) {
        return m;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "empty body".to_owned();
    }
    let mut excerpt: String = trimmed.chars().take(EXCERPT_CHARS).collect();
    if trimmed.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    excerpt
}

/// How long the server asked us to wait: `Retry-After` (seconds or an HTTP date) and
/// `X-RateLimit-Reset` (epoch seconds; a value below 10^9 is seconds to wait). When both are
/// present the longer wait wins.
pub fn retry_after(headers: &HeaderMap, now_epoch_secs: u64) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let from_retry_after = header("retry-after").and_then(|v| {
        parse_secs(v).or_else(|| {
            let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
                .ok()?;
            let at = u64::try_from(at.unix_timestamp()).ok()?;
            Some(Duration::from_secs(at.saturating_sub(now_epoch_secs)))
        })
    });
    let from_reset = header("x-ratelimit-reset").and_then(|v| {
        let secs = parse_secs(v)?;
        if secs.as_secs() < 1_000_000_000 {
            Some(secs)
        } else {
            Some(Duration::from_secs(
                secs.as_secs().saturating_sub(now_epoch_secs),
            ))
        }
    });
    match (from_retry_after, from_reset) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// What an answer said of the app's rate limit (`X-RateLimit-Limit`, `X-RateLimit-Remaining`,
/// `X-RateLimit-Reset`); each `None` when absent or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// How long until the limit resets (from epoch seconds, or seconds below 10^9).
    pub reset: Option<Duration>,
}

/// Reads the `X-RateLimit-*` headers of any answer.
pub fn rate_limit(headers: &HeaderMap, now_epoch_secs: u64) -> RateLimitHeaders {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_secs(v.trim()))
        .map(|secs| {
            if secs.as_secs() < 1_000_000_000 {
                secs
            } else {
                secs.saturating_sub(Duration::from_secs(now_epoch_secs))
            }
        });
    RateLimitHeaders {
        limit: number("x-ratelimit-limit"),
        remaining: number("x-ratelimit-remaining"),
        reset,
    }
}

/// A non-negative number of seconds, integer or decimal.
fn parse_secs(v: &str) -> Option<Duration> {
    if let Ok(n) = v.parse::<u64>() {
        return Some(Duration::from_secs(n));
    }
    let f = v.parse::<f64>().ok()?;
    (f.is_finite() && f >= 0.0).then(|| Duration::from_secs_f64(f.min(1e12)))
}

pub use crate::partner::backoff;

/// The current time as Unix seconds.
pub(crate) fn now_epoch_secs() -> u64 {
    crate::clock::since_epoch().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn parses_every_documented_error_shape() {
        let cases = [
            (
                r#"{"errors":[{"id":"a1","type":"validation","message":"invalid request","fields":[{"field":"IM-CorrelationID","value":"x","message":"too long"}]}]}"#,
                "invalid request (IM-CorrelationID: too long)",
            ),
            (
                r#"{"errors":[{"field":null,"message":"too many requests"}]}"#,
                "too many requests",
            ),
            (
                r#"{"faultcode":"Server","faultstring":"Invalid partner id. Check IM-PartnerID"}"#,
                "Server: Invalid partner id. Check IM-PartnerID",
            ),
            (
                r#"{"fault":{"faultstring":"Invalid client credentials","detail":{"errorcode":"oauth.v2.InvalidClientCredentials"}}}"#,
                "Invalid client credentials (oauth.v2.InvalidClientCredentials)",
            ),
            (
                r#"{"message":"grant_type is required"}"#,
                "grant_type is required",
            ),
            (r#"{"errors":[{"message":"a"},{"message":"b"}]}"#, "a; b"),
        ];
        for (body, want) in cases {
            assert_eq!(parse_error_message(body).as_deref(), Some(want), "{body}");
        }
        assert_eq!(parse_error_message("<html>oops</html>"), None);
        assert_eq!(parse_error_message("[1,2]"), None);
        assert_eq!(parse_error_message(r#"{"other":1}"#), None);
    }

    #[test]
    fn unparsed_body_becomes_a_short_excerpt() {
        let long = "x".repeat(1000);
        let m = message_from_body(&long);
        assert_eq!(m.chars().count(), EXCERPT_CHARS + 1);
        assert_eq!(message_from_body("  "), "empty body");
        assert_eq!(message_from_body("bad gateway"), "bad gateway");
    }

    #[test]
    fn retry_action_table() {
        let after = Some(Duration::from_secs(3));
        let status = |s: u16| Error::Status {
            status: s,
            message: String::new(),
            retry_after: after,
        };
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(
                status(s).retry_action(),
                RetryAction::Retry { after },
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 422, 501] {
            assert_eq!(status(s).retry_action(), RetryAction::Reject, "{s}");
        }
        let token = |s: u16| Error::TokenStatus {
            status: s,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(
            token(503).retry_action(),
            RetryAction::Retry { after: None }
        );
        assert_eq!(
            token(429).retry_action(),
            RetryAction::Retry { after: None }
        );
        assert_eq!(token(401).retry_action(), RetryAction::Reject);
        let retry = RetryAction::Retry { after: None };
        assert_eq!(Error::Timeout.retry_action(), retry);
        assert_eq!(Error::Connect("refused".into()).retry_action(), retry);
        assert_eq!(Error::Token("bad json".into()).retry_action(), retry);
        assert_eq!(Error::Body("reset".into()).retry_action(), retry);
        assert_eq!(
            Error::Build("bad url".into()).retry_action(),
            RetryAction::Reject
        );
    }

    #[test]
    fn retry_after_reads_both_headers() {
        let now = 1_800_000_000;
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));

        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000030"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1799999990"));
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("45"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(45)));
        h.insert("retry-after", HeaderValue::from_static("1"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(45)));

        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Fri, 15 Jan 2027 08:00:10 GMT"),
        );
        let at = 1_800_000_010; // 2027-01-15T08:00:10Z
        assert_eq!(retry_after(&h, at - 10), Some(Duration::from_secs(10)));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn rate_limit_headers_are_read_from_any_answer() {
        let now = 1_800_000_000;
        assert_eq!(
            rate_limit(&HeaderMap::new(), now),
            RateLimitHeaders::default()
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("60"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("3"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1800000012"));
        assert_eq!(
            rate_limit(&h, now),
            RateLimitHeaders {
                limit: Some(60),
                remaining: Some(3),
                reset: Some(Duration::from_secs(12))
            }
        );
        h.insert("x-ratelimit-reset", HeaderValue::from_static("0.5"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("many"));
        let r = rate_limit(&h, now);
        assert_eq!(
            (r.remaining, r.reset),
            (None, Some(Duration::from_millis(500)))
        );
        let throttled = Error::Status {
            status: 429,
            message: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(throttled.throttled(), Some(Some(Duration::from_secs(2))));
        assert_eq!(Error::Timeout.throttled(), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for attempt in 0..40 {
            let cap = (base * 2u32.saturating_pow(attempt.min(20))).min(max);
            for _ in 0..20 {
                assert!(backoff(attempt, base, max) <= cap, "attempt {attempt}");
            }
        }
        assert_eq!(backoff(u32::MAX, base, Duration::ZERO), Duration::ZERO);
        let samples: std::collections::HashSet<_> =
            (0..50).map(|_| backoff(10, base, max)).collect();
        assert!(samples.len() > 1, "full jitter varies");
    }
}
