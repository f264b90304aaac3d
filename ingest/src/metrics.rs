//! Counters and histograms of the write path, read by `GET /metrics`.
//!
//! Plain atomics: the hot path pays one relaxed add per event batch, and
//! the Prometheus text is rendered only when scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS_S: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS_S.iter().position(|&b| s <= b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS_S.iter().enumerate() {
            cumulative += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_ns.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// What became of one webhook: stored, ignored, or why it was refused.
/// A fixed set, so the label never grows with what senders put in a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Accepted,
    /// Not a service fact (typing indicators, contact updates, ...).
    Ignored,
    Unauthorized,
    /// A signature that does not match the account's webhook secret, or
    /// one too old or too far ahead.
    BadSignature,
    Forbidden,
    TooLarge,
    BadBody,
    /// The account is missing, or the URL and the body disagree on it.
    Account,
    /// The body could not be mapped onto valid events.
    Unmapped,
    /// An event time outside the accepted window.
    OutsideWindow,
    /// The events could not be stored durably.
    NotDurable,
}

impl WebhookOutcome {
    pub const ALL: [WebhookOutcome; 11] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Ignored,
        WebhookOutcome::Unauthorized,
        WebhookOutcome::BadSignature,
        WebhookOutcome::Forbidden,
        WebhookOutcome::TooLarge,
        WebhookOutcome::BadBody,
        WebhookOutcome::Account,
        WebhookOutcome::Unmapped,
        WebhookOutcome::OutsideWindow,
        WebhookOutcome::NotDurable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Ignored => "ignored",
            WebhookOutcome::Unauthorized => "unauthorized",
            WebhookOutcome::BadSignature => "bad_signature",
            WebhookOutcome::Forbidden => "forbidden",
            WebhookOutcome::TooLarge => "too_large",
            WebhookOutcome::BadBody => "bad_body",
            WebhookOutcome::Account => "account",
            WebhookOutcome::Unmapped => "unmapped",
            WebhookOutcome::OutsideWindow => "outside_window",
            WebhookOutcome::NotDurable => "not_durable",
        }
    }
}

/// Everything the write path counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub events_rejected: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub wal_fsync: Histogram,
    pub flush: Histogram,
    pub flushed_events: AtomicU64,
    pub flush_failures: AtomicU64,
    pub buffered_bytes: AtomicU64,
    pub buffered_events: AtomicU64,
    pub lake_files: AtomicU64,
    pub lake_version: AtomicU64,
    pub lake_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub vacuumed_files: AtomicU64,
    pub ingest_backpressure: AtomicU64,
    /// Chatwoot webhooks by outcome, indexed like [`WebhookOutcome::ALL`].
    pub chatwoot_webhooks: [AtomicU64; WebhookOutcome::ALL.len()],
}

impl Metrics {
    /// The lake gauges, from the table's current version; returns the
    /// file count and version it recorded.
    pub fn record_table(&self, table: &deltalake::DeltaTable) -> (usize, u64) {
        let files = crate::lake::file_count(table);
        let version = table.version().unwrap_or(0).max(0) as u64;
        self.lake_files.store(files as u64, Relaxed);
        self.lake_bytes.store(crate::lake::live_bytes(table), Relaxed);
        self.lake_version.store(version, Relaxed);
        (files, version)
    }

    pub fn count_chatwoot_webhook(&self, outcome: WebhookOutcome) {
        if let Some(i) = WebhookOutcome::ALL.iter().position(|o| *o == outcome) {
            self.chatwoot_webhooks[i].fetch_add(1, Relaxed);
        }
    }

    pub fn observe_wal_fsync(&self, d: Duration) {
        self.wal_fsync.observe(d);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                v.load(Relaxed)
            );
        };
        counter(
            &mut out,
            "cxlake_events_accepted_total",
            "Events acknowledged (durable).",
            &self.events_accepted,
        );
        counter(
            &mut out,
            "cxlake_events_rejected_total",
            "Events rejected by validation.",
            &self.events_rejected,
        );
        counter(
            &mut out,
            "cxlake_events_duplicate_total",
            "Events dropped as retries of an already accepted event_id.",
            &self.events_duplicate,
        );
        counter(
            &mut out,
            "cxlake_batches_accepted_total",
            "Ingest batches written to the WAL.",
            &self.batches_accepted,
        );
        self.wal_fsync.render(
            &mut out,
            "cxlake_wal_fsync_seconds",
            "Write-ahead log write+fdatasync latency.",
        );
        self.flush.render(
            &mut out,
            "cxlake_flush_seconds",
            "Duration of buffer flushes into the lake.",
        );
        counter(
            &mut out,
            "cxlake_flushed_events_total",
            "Events committed to the lake.",
            &self.flushed_events,
        );
        counter(
            &mut out,
            "cxlake_flush_failures_total",
            "Flushes that failed and will be retried.",
            &self.flush_failures,
        );
        gauge(
            &mut out,
            "cxlake_buffered_bytes",
            "Bytes of acknowledged events not yet in the lake.",
            &self.buffered_bytes,
        );
        gauge(
            &mut out,
            "cxlake_buffered_events",
            "Acknowledged events not yet in the lake.",
            &self.buffered_events,
        );
        gauge(
            &mut out,
            "cxlake_lake_files",
            "Parquet files in the current lake version.",
            &self.lake_files,
        );
        gauge(
            &mut out,
            "cxlake_lake_bytes",
            "Bytes of the Parquet files in the current lake version (replaced files not yet vacuumed are not counted).",
            &self.lake_bytes,
        );
        gauge(
            &mut out,
            "cxlake_lake_version",
            "Current Delta table version.",
            &self.lake_version,
        );
        counter(
            &mut out,
            "cxlake_compactions_total",
            "Partitions compacted.",
            &self.compactions,
        );
        counter(
            &mut out,
            "cxlake_vacuumed_files_total",
            "Replaced lake files deleted after the retention period.",
            &self.vacuumed_files,
        );
        counter(
            &mut out,
            "cxlake_ingest_backpressure_total",
            "Ingest requests answered 503 because the lake fell behind.",
            &self.ingest_backpressure,
        );
        let name = "cxlake_webhooks_total";
        let _ = writeln!(
            out,
            "# HELP {name} Webhooks received, by source and outcome (accepted, ignored, or why refused).\n# TYPE {name} counter"
        );
        for (o, n) in WebhookOutcome::ALL.iter().zip(&self.chatwoot_webhooks) {
            let _ = writeln!(
                out,
                "{name}{{source=\"chatwoot\",outcome=\"{}\"}} {}",
                o.label(),
                n.load(Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_counted_by_outcome() {
        let m = Metrics::default();
        m.count_chatwoot_webhook(WebhookOutcome::Ignored);
        m.count_chatwoot_webhook(WebhookOutcome::Ignored);
        m.count_chatwoot_webhook(WebhookOutcome::Account);
        let text = m.render();
        assert!(
            text.contains("cxlake_webhooks_total{source=\"chatwoot\",outcome=\"ignored\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("cxlake_webhooks_total{source=\"chatwoot\",outcome=\"account\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cxlake_webhooks_total{source=\"chatwoot\",outcome=\"accepted\"} 0"),
            "{text}"
        );
    }
}
