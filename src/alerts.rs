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
pub struct AlertSender {
    queue: Arc<Mutex<VecDeque<Alert>>>,
    wake: Arc<Notify>,
    pub counts: Arc<AlertCounts>,
}

impl Default for AlertSender {
    fn default() -> Self {
        AlertSender {
            queue: Arc::default(),
            wake: Arc::new(Notify::new()),
            counts: Arc::default(),
        }
    }
}

impl AlertSender {
    /// An alert queue counting into `counts` (the ones `/metrics` shows).
    pub fn with_counts(counts: Arc<AlertCounts>) -> AlertSender {
        AlertSender {
            counts,
            ..AlertSender::default()
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

/// What every alert names besides its subject: the account (`default` for `[ingram]`), the
/// config file (in the commands it suggests, so they work when copied) and the console's public
/// address (for a link to the page about it), when `[console] public_url` is set.
#[derive(Debug, Clone)]
pub struct Context {
    pub account: String,
    pub config: std::path::PathBuf,
    pub console_url: Option<String>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            account: "default".into(),
            config: crate::config::DEFAULT_CONFIG.into(),
            console_url: None,
        }
    }
}

/// Lines of a reason kept in an alert, and characters per line.
const REASON_LINES: usize = 8;
const REASON_CHARS: usize = 300;

impl Context {
    /// The same context for the account `id`.
    pub fn with_account(&self, id: &str) -> Context {
        Context {
            account: id.to_owned(),
            ..self.clone()
        }
    }

    /// The context for the account a PO's store key names.
    pub fn for_po(&self, po_key: &str) -> Context {
        self.with_account(crate::domain::split_po_key(po_key).0)
    }

    /// A PO as a command's arguments: its number, shell-quoted, and `--account ID` outside the
    /// account `default`.
    pub fn po_args(po_key: &str) -> String {
        let (account, po) = crate::domain::split_po_key(po_key);
        let quoted = crate::config::shell_quote(&crate::text::escape(po));
        match account {
            crate::domain::DEFAULT_ACCOUNT => quoted,
            a => format!("{quoted} --account {a}"),
        }
    }

    /// `edi-bridge SUB --config FILE ARGS`.
    pub fn command(&self, sub: &str, args: &str) -> String {
        crate::config::command(&self.config, sub, args)
    }

    /// The alert's text: a headline naming the account, then each line, then the console link
    /// for `page` when a public URL is configured. Lines are joined by real line breaks.
    fn text(&self, headline: &str, lines: &[String], page: &str) -> String {
        let mut out = format!("edi-bridge, account {}: {headline}", self.account);
        for l in lines.iter().filter(|l| !l.is_empty()) {
            out.push('\n');
            out.push_str(l);
        }
        if let Some(url) = &self.console_url {
            out.push_str(&format!("\nConsole: {}{page}", url.trim_end_matches('/')));
        }
        out
    }
}

/// A value from outside (an error message, a reason file) as alert lines: each line escaped
/// and clipped, at most [`REASON_LINES`] of them.
fn reason_lines(reason: &str) -> Vec<String> {
    let all: Vec<&str> = reason
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut out: Vec<String> = all
        .iter()
        .take(REASON_LINES)
        .map(|l| crate::text::clip(&crate::text::escape(l), REASON_CHARS))
        .collect();
    if all.len() > REASON_LINES {
        out.push(format!("(… {} more lines)", all.len() - REASON_LINES));
    }
    out
}

/// A console page's path for a PO (its store key: `?account=` outside the account default).
fn po_page(key: &str) -> String {
    let (account, po) = crate::domain::split_po_key(key);
    let seg: String = po
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    match account {
        crate::domain::DEFAULT_ACCOUNT => format!("/pos/{seg}"),
        a => format!("/pos/{seg}?account={a}"),
    }
}

/// The alert an event calls for at once, if any (dead letters are grouped by cause instead,
/// see [`DeadLetters`]).
pub fn for_event(e: &Event, ctx: &Context) -> Option<Alert> {
    match e {
        Event::InboxFile {
            file,
            outcome: Outcome::Rejected { reason, .. },
        } => {
            let mut lines = vec!["Why:".to_string()];
            lines.extend(reason_lines(reason));
            lines.push("Fix the file (or the mapping), then press Requeue on the console's error page, or move it back into the inbox.".into());
            Some(Alert {
                kind: "file_rejected",
                subject: file.clone(),
                text: ctx.text(
                    &format!(
                        "the ERP's file {} was moved to error/.",
                        crate::text::escape(file)
                    ),
                    &lines,
                    "/errors",
                ),
            })
        }
        _ => None,
    }
}

/// One API call moved to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub po: String,
    pub job: u64,
    pub kind: crate::domain::CallKind,
    pub reason: String,
    /// The HTTP status that refused it; `None` for a program failure or a local problem.
    pub status: Option<u16>,
    /// The mapping's body program failed (nothing was sent).
    pub program: bool,
}

impl DeadLetter {
    /// From a delivery event that dead-lettered its job.
    pub fn of(e: &Event) -> Option<DeadLetter> {
        let Event::Delivery {
            po,
            job,
            kind,
            outcome,
            ..
        } = e
        else {
            return None;
        };
        let (reason, status, program) = match outcome {
            Delivery::Rejected { reason, status } => (reason, *status, false),
            Delivery::ProgramFailed { reason } => (reason, None, true),
            _ => return None,
        };
        Some(DeadLetter {
            po: po.clone(),
            job: *job,
            kind: *kind,
            reason: reason.clone(),
            status,
            program,
        })
    }

    /// The cause it shares with others (its key, and what to say of it and do about it); a
    /// refusal of this one document is a cause of its own.
    fn cause(&self) -> (String, String, String) {
        let kind = self.kind.describe();
        match (self.program, self.status) {
            (true, _) => (
                format!("program {kind}"),
                format!("the mapping's {kind} body program failed (nothing was sent)"),
                "Fix the program in the mapping (it is reloaded on save), then".into(),
            ),
            (false, Some(s @ (401 | 403))) => (
                format!("status {s}"),
                format!("Ingram refuses the credentials (HTTP {s})"),
                "Check ingram.client_id, the client secret and ingram.partner_id (the connection test checks them), then".into(),
            ),
            (false, Some(s @ 500..)) => (
                format!("status {s}"),
                format!("Ingram answered HTTP {s}"),
                "Once Ingram works again,".into(),
            ),
            _ => (
                format!("job {}", self.job),
                "Ingram refused it".into(),
                "Fix the cause (the 855/856, the mapping or the PO at Ingram), then".into(),
            ),
        }
    }
}

/// Dead letters grouped by cause: many POs failing for one cause (401, a 5xx, a program error)
/// make one alert with a count, sent once no new one of that cause came for a quiet period.
#[derive(Debug, Default)]
pub struct DeadLetters {
    groups: std::collections::BTreeMap<String, CauseGroup>,
}

#[derive(Debug)]
struct CauseGroup {
    items: Vec<DeadLetter>,
    last_ms: u64,
}

/// POs named in a grouped alert; the rest are counted.
const NAMED: usize = 10;

impl DeadLetters {
    pub fn add(&mut self, d: DeadLetter, now_ms: u64) {
        let (cause, ..) = d.cause();
        // One account's causes are its own (its credentials, its API).
        let key = match crate::domain::split_po_key(&d.po).0 {
            crate::domain::DEFAULT_ACCOUNT => cause,
            account => format!("{account} {cause}"),
        };
        let g = self.groups.entry(key).or_insert(CauseGroup {
            items: Vec::new(),
            last_ms: now_ms,
        });
        g.items.push(d);
        g.last_ms = now_ms;
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The alerts of every group quiet for `quiet_ms` (each group once).
    pub fn due(&mut self, now_ms: u64, quiet_ms: u64, ctx: &Context) -> Vec<Alert> {
        let ready: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| now_ms.saturating_sub(g.last_ms) >= quiet_ms)
            .map(|(k, _)| k.clone())
            .collect();
        ready
            .into_iter()
            .filter_map(|k| self.groups.remove(&k).map(|g| (k, g)))
            .map(|(key, g)| group_alert(&key, &g.items, &ctx.for_po(&g.items[0].po)))
            .collect()
    }
}

fn group_alert(key: &str, items: &[DeadLetter], ctx: &Context) -> Alert {
    let first = &items[0];
    let (_, what, todo) = first.cause();
    let po = crate::text::escape(crate::domain::split_po_key(&first.po).1);
    let test = matches!(first.status, Some(401 | 403))
        .then(|| format!("The connection test: {}", ctx.command("check", "--online")));
    if let [d] = items {
        let mut lines = vec![format!("{what}:")];
        lines.extend(reason_lines(&d.reason));
        lines.extend(test);
        lines.push(format!(
            "{todo} put it back in the queue: {}",
            ctx.command("retry", &d.job.to_string())
        ));
        return Alert {
            kind: "dead_letter",
            subject: key.to_string(),
            text: ctx.text(
                &format!(
                    "the {} call for PO {po} is a dead letter (job {}).",
                    d.kind.describe(),
                    d.job
                ),
                &lines,
                &po_page(&d.po),
            ),
        };
    }
    let mut named: Vec<String> = items
        .iter()
        .take(NAMED)
        .map(|d| {
            format!(
                "PO {} ({}, job {})",
                crate::text::escape(&d.po),
                d.kind.describe(),
                d.job
            )
        })
        .collect();
    if items.len() > NAMED {
        named.push(format!("and {} more", items.len() - NAMED));
    }
    let mut lines = vec!["What Ingram said (the first):".to_string()];
    lines.extend(reason_lines(&first.reason));
    lines.push(format!("Calls: {}", named.join(", ")));
    lines.extend(test);
    lines.push(format!(
        "{todo} put them all back in the queue: {}",
        ctx.command("retry", "--all-dead")
    ));
    Alert {
        kind: "dead_letter",
        subject: key.to_string(),
        text: ctx.text(
            &format!(
                "{} API calls are dead letters for one cause: {what}.",
                items.len()
            ),
            &lines,
            "/dead",
        ),
    }
}

/// The "Ingram is down" condition: one alert once Ingram has not answered for the threshold
/// while calls wait, one when it answers again.
#[derive(Debug, Default)]
pub struct Outage {
    /// When the outage alerted about began.
    alerted: Option<u64>,
}

impl Outage {
    pub fn observe(
        &mut self,
        r: &crate::ingram::api::health::Reachability,
        now_ms: u64,
        threshold_ms: u64,
        queued: usize,
        ctx: &Context,
    ) -> Option<Alert> {
        match (r.unanswered_since_ms, self.alerted) {
            (Some(since), None) if now_ms.saturating_sub(since) >= threshold_ms => {
                self.alerted = Some(since);
                let minutes = now_ms.saturating_sub(since) / 60_000;
                let mut lines = vec![format!(
                    "Not answering since {} UTC; the last problem: {}",
                    crate::clock::rfc3339_ms(since),
                    crate::text::clip(
                        &crate::text::escape(r.last_problem.as_deref().unwrap_or("unknown")),
                        REASON_CHARS
                    )
                )];
                lines.push(format!(
                    "{queued} API call(s) wait in the queue and are retried with backoff; nothing is lost."
                ));
                lines.push(format!("Queue and POs: {}", ctx.command("status", "")));
                Some(Alert {
                    kind: "api_unreachable",
                    subject: since.to_string(),
                    text: ctx.text(
                        &format!("Ingram has not answered for {minutes} min."),
                        &lines,
                        "/",
                    ),
                })
            }
            (None, Some(since)) => {
                self.alerted = None;
                let minutes = r.last_answer_ms.unwrap_or(now_ms).saturating_sub(since) / 60_000;
                Some(Alert {
                    kind: "api_reachable",
                    subject: since.to_string(),
                    text: ctx.text(
                        &format!("Ingram answers again, after {minutes} min without an answer."),
                        &["The queued API calls are being delivered.".to_string()],
                        "/",
                    ),
                })
            }
            _ => None,
        }
    }
}

/// The alert for a PO whose 850 the ERP rejected: `how` is the stored outcome, `detail` the
/// 997's AK5/AK9 codes and errors, or the TA1's codes.
pub fn erp_rejected(po: &str, detail: &str, ctx: &Context) -> Alert {
    let ctx = &ctx.for_po(po);
    let args = Context::po_args(po);
    let p = crate::text::escape(crate::domain::split_po_key(po).1);
    let lines = vec![
        format!(
            "The ERP said: {}",
            crate::text::clip(&crate::text::escape(detail), 600)
        ),
        format!("The PO's timeline: {}", ctx.command("show", &args)),
        format!(
            "Once the ERP's problem is fixed, write the 850 again: {}",
            ctx.command("replay", &args)
        ),
    ];
    Alert {
        kind: "erp_rejected",
        subject: po.to_string(),
        text: ctx.text(
            &format!("the ERP rejected the 850 for PO {p}."),
            &lines,
            &po_page(po),
        ),
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

/// Problems with `[alerts.smtp]`'s addresses (`from`, each `to`): each must parse as the mail
/// library's mailbox, the form the mailer sends to. Part of the config's load
/// ([`Config::load`](crate::config::Config::load)), reported with the config's other problems.
pub fn address_problems(config: &crate::config::Config, text: &str) -> Vec<crate::config::Problem> {
    let Some(smtp) = &config.alerts.smtp else {
        return Vec::new();
    };
    std::iter::once(("from", &smtp.from))
        .chain(smtp.to.iter().map(|t| ("to", t)))
        .filter(|(_, addr)| addr.parse::<lettre::message::Mailbox>().is_err())
        .map(|(key, addr)| crate::config::Problem {
            file: config.source.clone(),
            line: crate::tomlfile::locate(text, "alerts.smtp", key),
            key: format!("alerts.smtp.{key}"),
            message: format!("'{addr}' is not an e-mail address"),
        })
        .collect()
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
    alerts: AlertSender,
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
        tracing::warn!(alert = alert.kind, text = %crate::text::Escaped(&alert.text), "Alert.");
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
    fn a_bad_smtp_address_is_a_problem_at_its_line() {
        let t = "[paths]\nstate = \"s\"\noutbox = \"o\"\ninbox = \"i\"\narchive = \"a\"\nerror = \"e\"\n\
                 [ingram]\napi_base_url = \"http://x\"\ntoken_url = \"http://x\"\nclient_id = \"c\"\n\
                 partner_id = \"p\"\ncountry_code = \"US\"\nsender_id = \"S\"\n\
                 [alerts.smtp]\nhost = \"h\"\nfrom = \"edi@vendor.example\"\nto = [\"no at sign\"]\n";
        let mut c: crate::config::Config =
            crate::tomlfile::parse_toml(t, std::path::Path::new("c.toml")).unwrap();
        c.source = "c.toml".into();
        let found: Vec<String> = address_problems(&c, t)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            found,
            ["c.toml:17: alerts.smtp.to: 'no at sign' is not an e-mail address"]
        );
        c.alerts.smtp = None;
        assert!(address_problems(&c, t).is_empty());
    }

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

    fn dl(po: &str, job: u64, status: Option<u16>) -> DeadLetter {
        DeadLetter {
            po: po.into(),
            job,
            kind: crate::domain::CallKind::PoStatus,
            reason: "api answered 401: bad\nsecond line".into(),
            status,
            program: false,
        }
    }

    #[test]
    fn dead_letters_of_one_cause_make_one_alert_once_quiet() {
        let ctx = Context {
            console_url: Some("https://c.example/".into()),
            ..Context::default()
        };
        let mut d = DeadLetters::default();
        d.add(dl("A", 1, Some(401)), 1_000);
        d.add(dl("B", 2, Some(401)), 1_500);
        d.add(dl("C", 3, Some(400)), 1_500);
        assert!(d.due(2_000, 1_000, &ctx).is_empty(), "not quiet yet");
        d.add(dl("D", 4, Some(401)), 2_000);
        let alerts = d.due(3_000, 1_000, &ctx);
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert!(d.is_empty());
        let auth = alerts.iter().find(|a| a.subject == "status 401").unwrap();
        println!("{}\n---\n{}", auth.text, alerts[1].text);
        assert!(auth.text.starts_with("edi-bridge, account default: 3 API calls are dead letters for one cause: Ingram refuses the credentials (HTTP 401)."), "{}", auth.text);
        assert!(auth
            .text
            .contains("PO A (PO Status, job 1), PO B (PO Status, job 2), PO D (PO Status, job 4)"));
        assert!(auth.text.contains("\napi answered 401: bad\nsecond line\n"));
        assert!(auth.text.ends_with("\nConsole: https://c.example/dead"));
        let one = alerts.iter().find(|a| a.subject == "job 3").unwrap();
        assert!(one
            .text
            .contains("the PO Status call for PO C is a dead letter (job 3)."));
        assert!(one
            .text
            .contains("retry --config /etc/edi-bridge/edi-bridge.toml 3"));
        assert!(one.text.ends_with("Console: https://c.example/pos/C"));
    }

    #[test]
    fn an_outage_alerts_after_the_threshold_and_once_when_it_ends() {
        use crate::ingram::api::health::Reachability;
        let ctx = Context::default();
        let mut o = Outage::default();
        let down = Reachability {
            unanswered_since_ms: Some(1_000),
            last_problem: Some("request timed out".into()),
            ..Reachability::default()
        };
        assert!(o.observe(&down, 60_000, 900_000, 3, &ctx).is_none());
        let a = o.observe(&down, 901_000, 900_000, 3, &ctx).unwrap();
        assert!(
            a.text.contains("Ingram has not answered for 15 min."),
            "{}",
            a.text
        );
        assert!(
            o.observe(&down, 999_000, 900_000, 3, &ctx).is_none(),
            "once"
        );
        let up = Reachability {
            last_answer_ms: Some(1_201_000),
            ..Reachability::default()
        };
        let a = o.observe(&up, 1_201_000, 900_000, 0, &ctx).unwrap();
        assert!(
            a.text.contains("Ingram answers again, after 20 min"),
            "{}",
            a.text
        );
        assert!(o.observe(&up, 1_300_000, 900_000, 0, &ctx).is_none());
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let a = AlertSender::default();
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
