//! Process metrics as plain atomics, rendered in the Prometheus text format on `/metrics`.
//! No registry crate: the set is small and fixed. Counters for the workers come from the
//! daemon's event stream ([`Metrics::observe`]); queue depths and alert gauges (error-directory
//! files, dead letters, 850s without a 997, time since the last inbound document) are read when
//! rendered, and [`Metrics::check_alerts`] logs the same conditions as WARN.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::domain::CallKind;
use crate::store::Store;

/// Which mapping program a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    Webhook = 0,
    PoResponse = 1,
    PoStatus = 2,
}

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    webhooks_2xx: AtomicU64,
    webhooks_400: AtomicU64,
    webhooks_401: AtomicU64,
    webhooks_413: AtomicU64,
    webhooks_415: AtomicU64,
    webhooks_409: AtomicU64,
    webhooks_5xx: AtomicU64,
    webhooks_other: AtomicU64,
    files_850: AtomicU64,
    /// Shadow 850s compared with the VAN's: identical, different.
    shadow_850s: [AtomicU64; 2],
    outbox_errors: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    files_997: AtomicU64,
    inbox_archived: AtomicU64,
    inbox_rejected: AtomicU64,
    inbox_duplicate: AtomicU64,
    inbox_scans: AtomicU64,
    inbox_not_regular: AtomicU64,
    /// Mapping program failures: webhook, PO Response, PO Status.
    program_errors: [AtomicU64; 3],
    inbox_unreadable: AtomicU64,
    /// Inbox files waiting to be completed (a gauge, set by each scan).
    inbox_waiting: AtomicU64,
    api_delivered: AtomicU64,
    api_retried: AtomicU64,
    api_rejected: AtomicU64,
    api_buckets: [AtomicU64; BUCKETS.len()],
    api_count: AtomicU64,
    api_sum_us: AtomicU64,
    /// Unix seconds of the last inbound 855/856/997 file processed (0 = none since start).
    last_inbound_unix: AtomicU64,
    started_unix: AtomicU64,
    token_refreshes: std::sync::OnceLock<crate::ingram::api::ApiClient>,
    /// Each account's limiter, shown by account.
    limiters: std::sync::OnceLock<Vec<std::sync::Arc<crate::pacing::Limiter>>>,
    /// The accounts (their clients' token refreshes), shown by account.
    accounts: std::sync::OnceLock<crate::accounts::Accounts>,
    /// Per account: 850s written, calls delivered, retried, refused.
    by_account: std::sync::Mutex<std::collections::BTreeMap<String, [u64; 4]>>,
    pub alerts: Alerts,
    /// The alert channel's counters (sent, failed, dropped, suppressed).
    pub alert_channel: std::sync::Arc<crate::alerts::AlertCounts>,
    listener: ListenerCounts,
}

/// Why the public listener closed a connection (or refused a body) on a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerTimeout {
    /// The request head did not arrive within `server.header_read_timeout_secs`.
    Header,
    /// No next request on a kept-alive connection within `server.idle_timeout_secs`.
    Idle,
    /// The webhook body did not arrive within `server.body_read_timeout_secs`.
    Body,
    /// Every body slot (`server.max_concurrent_bodies`) stayed busy for `body_read_timeout_secs`.
    BodySlot,
}

/// The public listener's gauges and counters.
#[derive(Default)]
struct ListenerCounts {
    open: AtomicU64,
    cap: AtomicU64,
    accepted: AtomicU64,
    cap_reached: AtomicU64,
    accept_errors: AtomicU64,
    timeouts: [AtomicU64; 4],
    bodies_waiting: AtomicU64,
    bodies_reading: AtomicU64,
}

/// Holds a gauge up by one until dropped (an open connection, a body being read).
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl GaugeGuard<'_> {
    fn up(gauge: &AtomicU64) -> GaugeGuard<'_> {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Thresholds for the alert gauges and WARN logs.
#[derive(Debug, Clone, Default)]
pub struct Alerts {
    pub error_dir: Option<std::path::PathBuf>,
    /// The daemon's config file, named in the commands the WARN lines suggest.
    pub config: Option<std::path::PathBuf>,
    pub missing_997_hours: u64,
    pub no_inbound_hours: u64,
    /// Shadow mode (`[outbox] shadow_dir`): the 850s never reach the ERP, so none is overdue.
    pub shadow: bool,
    /// The daemon's clock: what is overdue, and how long since the last inbound document.
    pub clock: crate::clock::Clock,
}

/// The alert conditions as they are now ([`Metrics::alert_values`]): the `/metrics` gauges, the
/// periodic warnings and the alert task's condition alerts all read these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertValues {
    /// Files waiting in the error directory (not their reason files, not hidden entries).
    pub error_files: usize,
    /// API calls Ingram refused.
    pub dead_letters: usize,
    /// 850s written more than `alerts.missing_997_hours` ago with no 997 from the ERP.
    pub missing_997: usize,
    /// Seconds since the last inbound document (or since start).
    pub secs_since_inbound: u64,
}

fn observe_latency(
    buckets: &[AtomicU64; BUCKETS.len()],
    count: &AtomicU64,
    sum_us: &AtomicU64,
    d: Duration,
) {
    let secs = d.as_secs_f64();
    for (i, b) in BUCKETS.iter().enumerate() {
        if secs <= *b {
            buckets[i].fetch_add(1, Relaxed);
        }
    }
    count.fetch_add(1, Relaxed);
    sum_us.fetch_add(d.as_micros() as u64, Relaxed);
}

/// One unlabelled sample with its `# HELP` and `# TYPE` lines.
fn single(s: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
    let _ = writeln!(s, "{name} {value}");
}

fn histogram(
    s: &mut String,
    name: &str,
    help: &str,
    buckets: &[AtomicU64; BUCKETS.len()],
    count: &AtomicU64,
    sum_us: &AtomicU64,
) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} histogram");
    for (i, b) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "{name}_bucket{{le=\"{b}\"}} {}",
            buckets[i].load(Relaxed)
        );
    }
    let count = count.load(Relaxed);
    let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(s, "{name}_sum {}", sum_us.load(Relaxed) as f64 / 1e6);
    let _ = writeln!(s, "{name}_count {count}");
}

impl Metrics {
    pub fn webhook(&self, status: u16) {
        let c = match status {
            200..=299 => &self.webhooks_2xx,
            400 => &self.webhooks_400,
            401 => &self.webhooks_401,
            413 => &self.webhooks_413,
            415 => &self.webhooks_415,
            409 => &self.webhooks_409,
            500..=599 => &self.webhooks_5xx,
            _ => &self.webhooks_other,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn webhook_latency(&self, d: Duration) {
        observe_latency(
            &self.latency_buckets,
            &self.latency_count,
            &self.latency_sum_us,
            d,
        );
    }

    pub fn new(alerts: Alerts) -> Metrics {
        let m = Metrics {
            alerts,
            ..Metrics::default()
        };
        m.started_unix
            .store(m.alerts.clock.now_ms() / 1000, Relaxed);
        m
    }

    /// The accounts `/metrics` reports by account (set once, at start): their limiters, and
    /// the first account's client for the unlabelled token-refresh total.
    pub fn set_accounts(&self, accounts: crate::accounts::Accounts) {
        self.set_limiters(accounts.iter().map(|a| a.limiter.clone()).collect());
        self.set_client(accounts.primary().client.clone());
        let _ = self.accounts.set(accounts);
    }

    /// Counts one of an account's figures (0: 850 written, 1 delivered, 2 retried, 3 refused).
    fn count_for(&self, po_key: &str, figure: usize) {
        let account = crate::domain::split_po_key(po_key).0;
        let mut m = self.by_account.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(account) {
            Some(v) => v[figure] += 1,
            None => {
                let mut v = [0; 4];
                v[figure] = 1;
                m.insert(account.to_owned(), v);
            }
        }
    }

    /// The figures labelled by account.
    fn render_accounts(&self, s: &mut String) {
        let ids: Vec<String> = self
            .accounts
            .get()
            .map(|a| a.iter().map(|a| a.id.clone()).collect())
            .unwrap_or_default();
        let counts = self
            .by_account
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let get = |id: &str, i: usize| counts.get(id).map_or(0, |v| v[i]);
        let _ = writeln!(
            s,
            "# HELP edi_bridge_account_850s_written_total 850s written to the outbox, by account."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_account_850s_written_total counter");
        for id in &ids {
            let _ = writeln!(
                s,
                "edi_bridge_account_850s_written_total{{account=\"{id}\"}} {}",
                get(id, 0)
            );
        }
        let _ = writeln!(
            s,
            "# HELP edi_bridge_account_api_calls_total API call attempts by account and outcome."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_account_api_calls_total counter");
        for id in &ids {
            for (i, o) in [(1, "delivered"), (2, "retry"), (3, "rejected")] {
                let _ = writeln!(
                    s,
                    "edi_bridge_account_api_calls_total{{account=\"{id}\",outcome=\"{o}\"}} {}",
                    get(id, i)
                );
            }
        }
        let _ = writeln!(s, "# HELP edi_bridge_account_token_refreshes_total OAuth2 access tokens fetched, by account.");
        let _ = writeln!(s, "# TYPE edi_bridge_account_token_refreshes_total counter");
        if let Some(accounts) = self.accounts.get() {
            for a in accounts.iter() {
                let _ = writeln!(
                    s,
                    "edi_bridge_account_token_refreshes_total{{account=\"{}\"}} {}",
                    a.id,
                    a.client.token_refreshes()
                );
            }
        }
    }

    /// The accounts' limiters `/metrics` reports (set once, at start).
    pub fn set_limiters(&self, limiters: Vec<std::sync::Arc<crate::pacing::Limiter>>) {
        let _ = self.limiters.set(limiters);
    }

    /// Each account's limiter: its pace, what it let through, what waited and why.
    fn render_limiters(&self, s: &mut String) {
        let snaps: Vec<crate::pacing::LimiterSnapshot> = self
            .limiters
            .get()
            .map(|ls| ls.iter().map(|l| l.snapshot()).collect())
            .unwrap_or_default();
        type Pick = fn(&crate::pacing::LimiterSnapshot) -> String;
        let rows: [(&str, &str, &str, Pick); 9] = [
            ("edi_bridge_api_pace_requests_per_minute", "gauge", "The account's client-side pace (requests_per_minute).", |l| l.requests_per_minute.to_string()),
            ("edi_bridge_api_pace_allowed_total", "counter", "API calls the account's limiter let through.", |l| l.allowed.to_string()),
            ("edi_bridge_api_pace_waits_total", "counter", "API calls that waited for their slot in the account's pace.", |l| l.paced.to_string()),
            ("edi_bridge_api_pace_wait_seconds_total", "counter", "Time API calls waited for the pace, a pause or a maintenance window.", |l| format!("{:.3}", l.waited_ms as f64 / 1000.0)),
            ("edi_bridge_api_throttled_total", "counter", "429 answers from Ingram (each pauses the account until its reset; no retry attempt spent).", |l| l.throttled.to_string()),
            ("edi_bridge_api_low_remaining_total", "counter", "Answers whose X-RateLimit-Remaining ran low (each pauses the account until the reset).", |l| l.low_remaining.to_string()),
            ("edi_bridge_api_paused_seconds", "gauge", "How long the account's calls still wait for Ingram's rate-limit reset (0: not paused).", |l| format!("{:.3}", l.paused_ms as f64 / 1000.0)),
            ("edi_bridge_api_maintenance", "gauge", "1 while one of the account's declared maintenance windows is open (its calls wait).", |l| u8::from(l.in_window).to_string()),
            ("edi_bridge_api_maintenance_waits_total", "counter", "API calls that waited for a declared maintenance window to close.", |l| l.window_waits.to_string()),
        ];
        for (name, kind, help, pick) in rows {
            let _ = writeln!(s, "# HELP {name} {help}");
            let _ = writeln!(s, "# TYPE {name} {kind}");
            for l in &snaps {
                let _ = writeln!(s, "{name}{{account=\"{}\"}} {}", l.account, pick(l));
            }
        }
    }

    /// The client whose token refreshes `/metrics` reports.
    pub fn set_client(&self, client: crate::ingram::api::ApiClient) {
        let _ = self.token_refreshes.set(client);
    }

    /// Counts one daemon event.
    pub fn observe(&self, e: &crate::events::Event) {
        use crate::events::Delivery;
        use crate::events::Event;
        use crate::events::Outcome;
        match e {
            Event::Written850 { po, .. } => self.count_for(po, 0),
            // Counted where they happen (`shadow_850`).
            Event::Shadow850 { .. } | Event::CallRecorded { .. } | Event::ArchivePruned { .. } => {}
            Event::WrittenFile { .. } => {
                self.files_997.fetch_add(1, Relaxed);
            }
            Event::InboxFile { outcome, .. } => {
                let c = match outcome {
                    Outcome::Archived { .. } => {
                        self.last_inbound_unix
                            .store(self.alerts.clock.now_ms() / 1000, Relaxed);
                        &self.inbox_archived
                    }
                    Outcome::Rejected { .. } => &self.inbox_rejected,
                    Outcome::Duplicate { .. } => &self.inbox_duplicate,
                    Outcome::Changing { .. } => return,
                };
                c.fetch_add(1, Relaxed);
            }
            Event::Delivery {
                outcome,
                elapsed,
                kind,
                po,
                ..
            } => {
                self.count_for(
                    po,
                    match outcome {
                        Delivery::Delivered { .. } => 1,
                        Delivery::Retry { .. } => 2,
                        _ => 3,
                    },
                );
                observe_latency(
                    &self.api_buckets,
                    &self.api_count,
                    &self.api_sum_us,
                    *elapsed,
                );
                let c = match outcome {
                    Delivery::Delivered { .. } => &self.api_delivered,
                    Delivery::Retry { .. } => &self.api_retried,
                    Delivery::Rejected { .. } => &self.api_rejected,
                    Delivery::ProgramFailed { .. } => {
                        &self.program_errors[match kind {
                            CallKind::PoResponse => ProgramKind::PoResponse,
                            CallKind::PoStatus => ProgramKind::PoStatus,
                        } as usize]
                    }
                };
                c.fetch_add(1, Relaxed);
            }
        }
    }

    /// The alert conditions as they are now.
    pub fn alert_values(&self, store: &Store) -> AlertValues {
        let error_files = self
            .alerts
            .error_dir
            .as_ref()
            .and_then(|d| {
                crate::files::Dir::open_existing(d)
                    .and_then(|dir| dir.names())
                    .ok()
            })
            .map(|names| {
                names
                    .iter()
                    .map(|n| n.to_string_lossy())
                    .filter(|n| !n.starts_with('.') && !n.ends_with(".reason.txt"))
                    .count()
            })
            .unwrap_or(0);
        let cutoff_ms = self
            .alerts
            .clock
            .now_ms()
            .saturating_sub(self.alerts.missing_997_hours.saturating_mul(3_600_000));
        let no_997 = if self.alerts.shadow {
            0
        } else {
            store.overdue_850s(cutoff_ms)
        };
        let last = self.last_inbound_unix.load(Relaxed);
        let since = (self.alerts.clock.now_ms() / 1000).saturating_sub(if last == 0 {
            self.started_unix.load(Relaxed)
        } else {
            last
        });
        AlertValues {
            error_files,
            dead_letters: store.dead_count(),
            missing_997: no_997,
            secs_since_inbound: since,
        }
    }

    /// POs whose 850 the ERP refused, by its 997 (`R`) or its TA1 (TA104 `R`): an alert.
    pub fn erp_rejections(&self, store: &Store) -> usize {
        store.erp_rejected_count()
    }

    /// Logs a WARN for each alert condition that holds.
    pub fn check_alerts(&self, store: &Store) {
        let refused = self.erp_rejections(store);
        let command = |args: &str| {
            let config = self
                .alerts
                .config
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(crate::config::DEFAULT_CONFIG));
            crate::config::command(&config, "status", args)
        };
        if refused > 0 {
            tracing::warn!(
                pos = refused,
                see = %command("--state errors"),
                "The ERP rejected 850s (997 or TA1)."
            );
        }
        let AlertValues {
            error_files,
            dead_letters: dead,
            missing_997: no_997,
            secs_since_inbound: since,
        } = self.alert_values(store);
        if error_files > 0 {
            tracing::warn!(files = error_files, dir = ?self.alerts.error_dir, "Inbox files are waiting in the error directory.");
        }
        if dead > 0 {
            tracing::warn!(
                dead_letters = dead,
                see = %command("--state errors"),
                "Ingram refused API calls."
            );
        }
        if no_997 > 0 {
            tracing::warn!(
                pos = no_997,
                hours = self.alerts.missing_997_hours,
                "850s without a 997 from the ERP."
            );
        }
        if since > self.alerts.no_inbound_hours * 3600 {
            tracing::warn!(
                hours = since / 3600,
                "No inbound 855/856/997 from the ERP for a long time."
            );
        }
    }

    /// The listener's effective connection cap.
    pub fn listener_cap(&self, cap: usize) {
        self.listener.cap.store(cap as u64, Relaxed);
    }

    /// One accepted connection, open until the guard drops.
    pub fn listener_open(&self) -> GaugeGuard<'_> {
        self.listener.accepted.fetch_add(1, Relaxed);
        GaugeGuard::up(&self.listener.open)
    }

    /// A webhook waiting for a body slot, until the guard drops.
    pub fn listener_body_waiting(&self) -> GaugeGuard<'_> {
        GaugeGuard::up(&self.listener.bodies_waiting)
    }

    /// A webhook body being read (holding a slot), until the guard drops.
    pub fn listener_body_reading(&self) -> GaugeGuard<'_> {
        GaugeGuard::up(&self.listener.bodies_reading)
    }

    /// The listener found every connection slot taken and stopped accepting for a while.
    pub fn listener_cap_reached(&self) {
        self.listener.cap_reached.fetch_add(1, Relaxed);
    }

    pub fn listener_accept_error(&self) {
        self.listener.accept_errors.fetch_add(1, Relaxed);
    }

    pub fn listener_timeout(&self, t: ListenerTimeout) {
        self.listener.timeouts[t as usize].fetch_add(1, Relaxed);
    }

    fn render_listener(&self, s: &mut String) {
        let l = &self.listener;
        for (name, kind, help, value) in [
            ("edi_bridge_http_connections_open", "gauge", "Connections open on the public listener.", &l.open),
            ("edi_bridge_http_connections_max", "gauge", "The listener's connection cap (server.max_connections, lowered to fit the descriptor limit).", &l.cap),
            ("edi_bridge_http_connections_total", "counter", "Connections accepted.", &l.accepted),
            ("edi_bridge_http_connection_cap_reached_total", "counter", "Times every connection slot was taken and the listener stopped accepting.", &l.cap_reached),
            ("edi_bridge_http_accept_errors_total", "counter", "Accept errors (EMFILE, ENFILE, ...) other than a reset connection.", &l.accept_errors),
            (
                "edi_bridge_http_bodies_reading",
                "gauge",
                "Webhook bodies being read (each holds one of server.max_concurrent_bodies slots).",
                &l.bodies_reading,
            ),
            (
                "edi_bridge_http_bodies_waiting",
                "gauge",
                "Webhook requests waiting for a body slot.",
                &l.bodies_waiting,
            ),
        ] {
            single(s, name, kind, help, value.load(Relaxed));
        }
        let name = "edi_bridge_http_timeouts_total";
        let _ = writeln!(
            s,
            "# HELP {name} Connections closed or bodies refused on a listener deadline, by phase."
        );
        let _ = writeln!(s, "# TYPE {name} counter");
        for t in [
            ListenerTimeout::Header,
            ListenerTimeout::Idle,
            ListenerTimeout::Body,
            ListenerTimeout::BodySlot,
        ] {
            let phase = match t {
                ListenerTimeout::Header => "header",
                ListenerTimeout::Idle => "idle",
                ListenerTimeout::Body => "body",
                ListenerTimeout::BodySlot => "body_slot",
            };
            let _ = writeln!(
                s,
                "{name}{{phase=\"{phase}\"}} {}",
                l.timeouts[t as usize].load(Relaxed)
            );
        }
    }

    pub fn file_850_written(&self) {
        self.files_850.fetch_add(1, Relaxed);
    }

    /// One shadow 850 compared with the VAN's (`[migration] van_dir`).
    pub fn shadow_850(&self, identical: bool) {
        self.shadow_850s[usize::from(!identical)].fetch_add(1, Relaxed);
    }

    pub fn outbox_error(&self) {
        self.outbox_errors.fetch_add(1, Relaxed);
    }

    pub fn inbox_scan(&self) {
        self.inbox_scans.fetch_add(1, Relaxed);
    }

    /// A mapping program failed at run time (`which`: 0 webhook, 1 PO Response, 2 PO Status).
    pub fn program_error(&self, which: ProgramKind) {
        self.program_errors[which as usize].fetch_add(1, Relaxed);
    }

    /// A symlink, FIFO, socket or device found in the inbox (moved to `error/`).
    pub fn inbox_not_regular(&self) {
        self.inbox_not_regular.fetch_add(1, Relaxed);
    }

    /// How many inbox files wait to be completed (set by each scan).
    pub fn inbox_waiting(&self, n: usize) {
        self.inbox_waiting.store(n as u64, Relaxed);
    }

    /// An inbox file the daemon could not open or read (counted per failed attempt).
    pub fn inbox_unreadable(&self) {
        self.inbox_unreadable.fetch_add(1, Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, store: &Store) -> String {
        let mut s = String::new();
        self.render_intake(&mut s, store);
        self.render_outbox(&mut s, store);
        self.render_inbox(&mut s);
        self.render_api(&mut s, store);
        self.render_store_health(&mut s, store);
        self.render_alert_gauges(&mut s, store);
        s
    }

    /// Webhooks in: outcomes, refused event ids, the listener, alert delivery, program errors, the durable-2xx latency.
    fn render_intake(&self, s: &mut String, store: &Store) {
        let _ = writeln!(
            s,
            "# HELP edi_bridge_webhooks_total Webhook requests by outcome."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_webhooks_total counter");
        for (outcome, c) in [
            ("accepted", &self.webhooks_2xx),
            ("bad_request", &self.webhooks_400),
            ("unauthorized", &self.webhooks_401),
            ("too_large", &self.webhooks_413),
            ("unsupported_media_type", &self.webhooks_415),
            ("refused_event_id", &self.webhooks_409),
            ("unavailable", &self.webhooks_5xx),
            ("other", &self.webhooks_other),
        ] {
            let _ = writeln!(
                s,
                "edi_bridge_webhooks_total{{outcome=\"{outcome}\"}} {}",
                c.load(Relaxed)
            );
        }
        single(
            s,
            "edi_bridge_refused_event_ids",
            "gauge",
            "Signed webhook event ids refused for their body in the last day (refused again whatever the body).",
            store.refused_count(),
        );
        self.render_listener(s);
        for (name, help, c) in [
            (
                "edi_bridge_alerts_sent_total",
                "Alerts the alert webhook accepted.",
                &self.alert_channel.sent,
            ),
            (
                "edi_bridge_alerts_failed_total",
                "Alerts not delivered after every retry (the log has them).",
                &self.alert_channel.failed,
            ),
            (
                "edi_bridge_alerts_dropped_total",
                "Alerts dropped because the queue was full (the oldest go first).",
                &self.alert_channel.dropped,
            ),
            (
                "edi_bridge_alerts_suppressed_total",
                "Alerts not sent again: the same one within an hour, or over 30 an hour.",
                &self.alert_channel.suppressed,
            ),
        ] {
            single(s, name, "counter", help, c.load(Relaxed));
        }
        let _ = writeln!(
            s,
            "# HELP edi_bridge_program_errors_total Mapping jq programs that failed at run time (nothing was sent or stored for them)."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_program_errors_total counter");
        for (kind, c) in ["webhook", "po_response", "po_status"]
            .iter()
            .zip(&self.program_errors)
        {
            let _ = writeln!(
                s,
                "edi_bridge_program_errors_total{{program=\"{kind}\"}} {}",
                c.load(Relaxed)
            );
        }
        histogram(
            s,
            "edi_bridge_webhook_durable_seconds",
            "Time from request to durable 2xx.",
            &self.latency_buckets,
            &self.latency_count,
            &self.latency_sum_us,
        );
    }

    /// Files out to the ERP: 850s (and shadow 850s), outbox errors and queue, POs held for review, 997s.
    fn render_outbox(&self, s: &mut String, store: &Store) {
        let _ = writeln!(s, "# TYPE edi_bridge_850_written_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_850_written_total {}",
            self.files_850.load(Relaxed)
        );
        let _ = writeln!(s, "# TYPE edi_bridge_shadow_850s_total counter");
        for (i, result) in ["identical", "different"].iter().enumerate() {
            let _ = writeln!(
                s,
                "edi_bridge_shadow_850s_total{{result=\"{result}\"}} {}",
                self.shadow_850s[i].load(Relaxed)
            );
        }
        let _ = writeln!(s, "# TYPE edi_bridge_outbox_errors_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_outbox_errors_total {}",
            self.outbox_errors.load(Relaxed)
        );
        let _ = writeln!(s, "# TYPE edi_bridge_outbox_queue_depth gauge");
        let _ = writeln!(s, "edi_bridge_outbox_queue_depth {}", store.outbox_depth());
        let _ = writeln!(s, "# TYPE edi_bridge_review_held gauge");
        let _ = writeln!(s, "edi_bridge_review_held {}", store.review_count());
        let _ = writeln!(s, "# TYPE edi_bridge_997_written_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_997_written_total {}",
            self.files_997.load(Relaxed)
        );
    }

    /// Files in from the ERP: outcomes, files waiting, scans, refused and unreadable entries.
    fn render_inbox(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP edi_bridge_inbox_files_total Inbox files by outcome."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_inbox_files_total counter");
        for (o, c) in [
            ("archived", &self.inbox_archived),
            ("rejected", &self.inbox_rejected),
            ("duplicate", &self.inbox_duplicate),
        ] {
            let _ = writeln!(
                s,
                "edi_bridge_inbox_files_total{{outcome=\"{o}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP edi_bridge_inbox_waiting_files Inbox files waiting to be completed (no IEA closes their last ISA yet); each goes to error/ once inbox.incomplete_timeout_secs have passed since its last write."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_inbox_waiting_files gauge");
        let _ = writeln!(
            s,
            "edi_bridge_inbox_waiting_files {}",
            self.inbox_waiting.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP edi_bridge_inbox_scans_total Passes over the inbox directory (at start, on a change, every rescan_secs)."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_inbox_scans_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_inbox_scans_total {}",
            self.inbox_scans.load(Relaxed)
        );
        for (name, help, c) in [
            (
                "edi_bridge_inbox_not_regular_total",
                "Symlinks, FIFOs, sockets and devices found in the inbox and moved to error/ (never followed or read).",
                &self.inbox_not_regular,
            ),
            (
                "edi_bridge_inbox_unreadable_total",
                "Attempts to open or read an inbox file that failed (permissions, I/O errors).",
                &self.inbox_unreadable,
            ),
        ] {
            single(s, name, "counter", help, c.load(Relaxed));
        }
    }

    /// Calls to Ingram: outcomes, durations, each account's pace, the queue, token refreshes.
    fn render_api(&self, s: &mut String, store: &Store) {
        let _ = writeln!(
            s,
            "# HELP edi_bridge_api_calls_total Ingram API call attempts by outcome."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_api_calls_total counter");
        for (o, c) in [
            ("delivered", &self.api_delivered),
            ("retry", &self.api_retried),
            ("rejected", &self.api_rejected),
        ] {
            let _ = writeln!(
                s,
                "edi_bridge_api_calls_total{{outcome=\"{o}\"}} {}",
                c.load(Relaxed)
            );
        }
        histogram(
            s,
            "edi_bridge_api_call_seconds",
            "Duration of Ingram API call attempts.",
            &self.api_buckets,
            &self.api_count,
            &self.api_sum_us,
        );
        self.render_limiters(s);
        self.render_accounts(s);
        let _ = writeln!(s, "# TYPE edi_bridge_api_queue_depth gauge");
        let _ = writeln!(s, "edi_bridge_api_queue_depth {}", store.job_count());
        let _ = writeln!(s, "# TYPE edi_bridge_token_refreshes_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_token_refreshes_total {}",
            self.token_refreshes
                .get()
                .map_or(0, |c| c.token_refreshes())
        );
    }

    /// The state store's health.
    fn render_store_health(&self, s: &mut String, store: &Store) {
        let health = store.health();
        single(
            s,
            "edi_bridge_store_healthy",
            "gauge",
            "1 while the state store can write, 0 while writes fail (intake answers 503).",
            u8::from(health.failing.is_none() && health.committer_alive),
        );
        single(
            s,
            "edi_bridge_store_failing_seconds",
            "gauge",
            "How long the state store has been unable to write (0 while it can).",
            health.failing.as_ref().map_or(0, |(_, d)| d.as_secs()),
        );
        single(
            s,
            "edi_bridge_store_failures_total",
            "counter",
            "Times the state store started failing to write (each is recovered by reopening it).",
            health.failures_total,
        );
    }

    /// What the alerts watch: dead letters, error files, 850s without a 997, ERP rejections, inbound silence.
    fn render_alert_gauges(&self, s: &mut String, store: &Store) {
        let AlertValues {
            error_files,
            dead_letters: dead,
            missing_997: no_997,
            secs_since_inbound: since,
        } = self.alert_values(store);
        let _ = writeln!(
            s,
            "# HELP edi_bridge_dead_letters API calls Ingram refused (alert when > 0)."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_dead_letters gauge");
        let _ = writeln!(s, "edi_bridge_dead_letters {dead}");
        let _ = writeln!(s, "# HELP edi_bridge_error_dir_files Inbox files in the error directory (alert when > 0).");
        let _ = writeln!(s, "# TYPE edi_bridge_error_dir_files gauge");
        let _ = writeln!(s, "edi_bridge_error_dir_files {error_files}");
        let _ = writeln!(s, "# HELP edi_bridge_850_without_997 850s written more than alerts.missing_997_hours ago with no 997 from the ERP.");
        let _ = writeln!(s, "# TYPE edi_bridge_850_without_997 gauge");
        let _ = writeln!(s, "edi_bridge_850_without_997 {no_997}");
        let refused = self.erp_rejections(store);
        let _ = writeln!(s, "# HELP edi_bridge_850_rejected_by_erp POs whose 850 the ERP rejected by 997 or TA1 (alert when > 0).");
        let _ = writeln!(s, "# TYPE edi_bridge_850_rejected_by_erp gauge");
        let _ = writeln!(s, "edi_bridge_850_rejected_by_erp {refused}");
        let _ = writeln!(s, "# HELP edi_bridge_seconds_since_inbound Seconds since the last inbound document (or since start).");
        let _ = writeln!(s, "# TYPE edi_bridge_seconds_since_inbound gauge");
        let _ = writeln!(s, "edi_bridge_seconds_since_inbound {since}");
    }
}
