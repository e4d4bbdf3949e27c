//! Process metrics as plain atomics, rendered in the Prometheus text format on `/metrics`.
//! No registry crate: the set is small and fixed, and rendering reads queue depths from the store.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::store::Store;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
pub struct Metrics {
    webhooks_2xx: AtomicU64,
    webhooks_400: AtomicU64,
    webhooks_401: AtomicU64,
    webhooks_413: AtomicU64,
    webhooks_415: AtomicU64,
    webhooks_5xx: AtomicU64,
    webhooks_other: AtomicU64,
    files_850: AtomicU64,
    outbox_errors: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn webhook(&self, status: u16) {
        let c = match status {
            200..=299 => &self.webhooks_2xx,
            400 => &self.webhooks_400,
            401 => &self.webhooks_401,
            413 => &self.webhooks_413,
            415 => &self.webhooks_415,
            500..=599 => &self.webhooks_5xx,
            _ => &self.webhooks_other,
        };
        c.fetch_add(1, Relaxed);
    }

    pub fn webhook_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn file_850_written(&self) {
        self.files_850.fetch_add(1, Relaxed);
    }

    pub fn outbox_error(&self) {
        self.outbox_errors.fetch_add(1, Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self, store: &Store) -> String {
        let mut s = String::new();
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
            ("unavailable", &self.webhooks_5xx),
            ("other", &self.webhooks_other),
        ] {
            let _ = writeln!(
                s,
                "edi_bridge_webhooks_total{{outcome=\"{outcome}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP edi_bridge_webhook_durable_seconds Time from request to durable 2xx."
        );
        let _ = writeln!(s, "# TYPE edi_bridge_webhook_durable_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                s,
                "edi_bridge_webhook_durable_seconds_bucket{{le=\"{b}\"}} {}",
                self.latency_buckets[i].load(Relaxed)
            );
        }
        let count = self.latency_count.load(Relaxed);
        let _ = writeln!(
            s,
            "edi_bridge_webhook_durable_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            s,
            "edi_bridge_webhook_durable_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "edi_bridge_webhook_durable_seconds_count {count}");
        let _ = writeln!(s, "# TYPE edi_bridge_850_written_total counter");
        let _ = writeln!(
            s,
            "edi_bridge_850_written_total {}",
            self.files_850.load(Relaxed)
        );
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
        s
    }
}
