//! Alerts that reach someone: `[alerts] webhook_url` gets one JSON POST per alert, with a `text`
//! field that Slack and Teams incoming webhooks display, and `[alerts.smtp]` an e-mail (lettre). Event alerts (a dead letter, a file moved
//! to `error/`) come from the daemon's event stream and go out at once; condition alerts (850s
//! without a 997 past the threshold, no inbound file for N hours, the ERP refusing 850s, the store
//! unable to write) go out when the condition is first seen, and again only after it cleared.
//! The store's health is looked at every [`STORE_HEALTH_EVERY`], the rest every
//! `alerts.check_interval_secs`.
//!
//! Never in the pipeline's way: alerts wait in a bounded queue (the oldest is dropped and counted
//! when it is full), identical alerts within an hour are sent once, at most 30 go out per hour,
//! and a failing channel is retried with backoff, logged and counted, never waited for. The URL
//! may carry a token (Slack's do): only its host is ever logged.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::{Delivery, Event, Outcome};

/// Alerts kept waiting at most; beyond this the oldest is dropped.
const QUEUE: usize = 256;
/// An identical alert (kind and subject) within this window is sent once.
const DEDUPE: Duration = Duration::from_secs(3600);
/// At most this many alerts per hour.
const RATE_PER_HOUR: usize = 30;
/// Attempts per alert, with backoff between them.
const ATTEMPTS: u32 = 4;
/// How often the store's published health is looked at (the other conditions wait for
/// `alerts.check_interval_secs`).
pub const STORE_HEALTH_EVERY: Duration = Duration::from_secs(5);
/// A committer inside one flush for longer than this counts as a store that is not healthy.
pub const STORE_STUCK_AFTER: Duration = Duration::from_secs(30);

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `dead_letter`, `file_rejected`, `overdue_997`, `no_inbound`, `erp_rejected`, `store`.
    pub kind: &'static str,
    /// What it is about (a PO number, a file name), for deduplication.
    pub subject: String,
    pub text: String,
}

/// The alert channel's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct AlertCounts {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub suppressed: AtomicU64,
}

/// The sending side: cheap to clone; `raise` never blocks.
#[derive(Clone)]
pub struct Alerts {
    queue: Arc<Mutex<VecDeque<Alert>>>,
    wake: Arc<Notify>,
    pub counts: Arc<AlertCounts>,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            queue: Arc::default(),
            wake: Arc::new(Notify::new()),
            counts: Arc::default(),
        }
    }
}

impl Alerts {
    /// An alert queue counting into `counts` (the ones `/metrics` shows).
    pub fn with_counts(counts: Arc<AlertCounts>) -> Alerts {
        Alerts {
            counts,
            ..Alerts::default()
        }
    }

    /// Queues an alert; when the queue is full the oldest one is dropped (and counted).
    pub fn raise(&self, alert: Alert) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= QUEUE {
            q.pop_front();
            self.counts.dropped.fetch_add(1, Relaxed);
        }
        q.push_back(alert);
        drop(q);
        self.wake.notify_one();
    }

    fn next(&self) -> Option<Alert> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

/// The alert an event calls for, if any.
pub fn for_event(e: &Event) -> Option<Alert> {
    match e {
        Event::Delivery {
            po,
            kind,
            outcome: Delivery::Rejected { reason } | Delivery::ProgramFailed { reason },
            ..
        } => Some(Alert {
            kind: "dead_letter",
            subject: format!("{po} {kind:?}"),
            text: format!(
                "edi-bridge: the {kind:?} call for PO {} is dead-lettered: {}. Fix it, then `edi-bridge retry`.",
                crate::text::escape(po),
                crate::text::clip(&crate::text::escape(reason), 300)
            ),
        }),
        Event::InboxFile {
            file,
            outcome: Outcome::Rejected { reason, .. },
        } => Some(Alert {
            kind: "file_rejected",
            subject: file.clone(),
            text: format!(
                "edi-bridge: inbox file {} was moved to error/: {}",
                crate::text::escape(file),
                crate::text::clip(&crate::text::escape(reason), 300)
            ),
        }),
        _ => None,
    }
}

/// Condition alerts: raised when a condition is first seen, again only after it cleared.
#[derive(Debug, Default)]
pub struct Conditions {
    active: HashMap<&'static str, bool>,
}

impl Conditions {
    /// Records whether `kind` holds now; returns the alert when it has just begun.
    pub fn observe(&mut self, kind: &'static str, holds: bool, text: String) -> Option<Alert> {
        let was = self.active.insert(kind, holds).unwrap_or(false);
        (holds && !was).then(|| Alert {
            kind,
            subject: String::new(),
            text,
        })
    }
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct Channel {
    pub webhook_url: Option<String>,
    pub email: Option<Email>,
    pub timeout: Duration,
    /// First retry delay (doubled each attempt).
    pub backoff: Duration,
}

/// E-mailed alerts (lettre's SMTP transport).
#[derive(Clone)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: crate::config::SmtpTls,
    /// User and password; the password is never logged.
    pub credentials: Option<(String, crate::config::Secret)>,
    pub from: String,
    pub to: Vec<String>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Sends queued alerts until shutdown: dedupe, rate limit, retries with backoff.
pub async fn run(
    alerts: Alerts,
    channel: Option<Channel>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut recent: HashMap<(String, String), Instant> = HashMap::new();
    let mut sent_times: VecDeque<Instant> = VecDeque::new();
    loop {
        let Some(alert) = alerts.next() else {
            tokio::select! {
                _ = alerts.wake.notified() => continue,
                _ = shutdown.cancelled() => return Ok(()),
            }
        };
        tracing::warn!(alert = alert.kind, text = %alert.text, "Alert.");
        let Some(channel) = &channel else { continue };
        let now = Instant::now();
        recent.retain(|_, at| now.duration_since(*at) < DEDUPE);
        let key = (alert.kind.to_string(), alert.subject.clone());
        while sent_times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
        {
            sent_times.pop_front();
        }
        if recent.contains_key(&key) || sent_times.len() >= RATE_PER_HOUR {
            alerts.counts.suppressed.fetch_add(1, Relaxed);
            continue;
        }
        recent.insert(key, now);
        sent_times.push_back(now);
        let body = json!({
            "text": alert.text,
            "kind": alert.kind,
            "subject": alert.subject,
            "source": "edi-bridge",
            "at": crate::clock::now_rfc3339(),
        })
        .to_string();
        let mut delivered = true;
        if let Some(url) = &channel.webhook_url {
            delivered &= send(channel, url, &body, &shutdown).await;
        }
        if let Some(email) = &channel.email {
            delivered &= mail(channel, email, &alert, &shutdown).await;
        }
        if delivered {
            alerts.counts.sent.fetch_add(1, Relaxed);
        } else {
            alerts.counts.failed.fetch_add(1, Relaxed);
        }
    }
}

/// Posts one alert, retrying with backoff; false when every attempt failed (or shutdown).
async fn send(channel: &Channel, url: &str, body: &str, shutdown: &CancellationToken) -> bool {
    let host = host_of(url);
    let mut delay = channel.backoff;
    for attempt in 1..=ATTEMPTS {
        let result = crate::ingram::api::post_bytes(
            url,
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
            channel.timeout,
        )
        .await;
        let problem = match result {
            Ok((status, _)) if (200..300).contains(&status) => return true,
            Ok((status, _)) => format!("HTTP {status}"),
            // The error text may repeat the URL (and its token): name the host only.
            Err(_) => "no answer".to_string(),
        };
        tracing::warn!(host = %host, attempt, problem = %problem, "Alert channel failed.");
        if attempt < ATTEMPTS {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return false,
            }
            delay *= 2;
        }
    }
    tracing::error!(host = %host, "Alert not delivered after retries; see the log for the alert itself.");
    false
}

/// E-mails one alert, retrying with backoff; false when every attempt failed (or shutdown).
async fn mail(
    channel: &Channel,
    email: &Email,
    alert: &Alert,
    shutdown: &CancellationToken,
) -> bool {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let message = (|| -> Result<Message, String> {
        let mut m = Message::builder()
            .from(email.from.parse().map_err(|e| format!("from: {e}"))?)
            .subject(format!("edi-bridge alert: {}", alert.kind));
        for to in &email.to {
            m = m.to(to.parse().map_err(|e| format!("to: {e}"))?);
        }
        m.body(alert.text.clone()).map_err(|e| e.to_string())
    })();
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(problem = %e, "Alert e-mail cannot be built.");
            return false;
        }
    };
    let builder = match email.tls {
        crate::config::SmtpTls::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.host)
        }
        crate::config::SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&email.host),
        crate::config::SmtpTls::None => Ok(
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host),
        ),
    };
    let mut builder = match builder {
        Ok(b) => b.port(email.port).timeout(Some(channel.timeout)),
        Err(e) => {
            tracing::error!(host = %email.host, problem = %e, "Alert e-mail transport cannot be set up.");
            return false;
        }
    };
    if let Some((user, password)) = &email.credentials {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    let mailer = builder.build();
    let mut delay = channel.backoff;
    for attempt in 1..=ATTEMPTS {
        match mailer.send(message.clone()).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(host = %email.host, attempt, problem = %crate::text::escape(&e.to_string()), "Alert e-mail failed.")
            }
        }
        if attempt < ATTEMPTS {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => return false,
            }
            delay *= 2;
        }
    }
    false
}

/// The host of a URL, for logs (never the path or query, which may hold a token).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.rsplit('@').next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_is_logged() {
        assert_eq!(
            host_of("https://hooks.slack.com/services/T000/B000/SECRET"),
            "hooks.slack.com"
        );
        assert_eq!(
            host_of("http://user:pw@127.0.0.1:9/x?k=SECRET"),
            "127.0.0.1:9"
        );
    }

    #[test]
    fn a_condition_alerts_once_until_it_clears() {
        let mut c = Conditions::default();
        assert!(c.observe("store", true, "x".into()).is_some());
        assert!(c.observe("store", true, "x".into()).is_none());
        assert!(c.observe("store", false, "x".into()).is_none());
        assert!(c.observe("store", true, "x".into()).is_some());
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let a = Alerts::default();
        for i in 0..QUEUE + 3 {
            a.raise(Alert {
                kind: "file_rejected",
                subject: i.to_string(),
                text: String::new(),
            });
        }
        assert_eq!(a.counts.dropped.load(Relaxed), 3);
        assert_eq!(a.next().unwrap().subject, "3");
    }
}
