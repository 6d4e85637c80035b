//! The store's self-metrics, registered with the daemon's registry by
//! [`super::Storage::register_metrics`]. Counters get `_total` appended by
//! prometheus-client.
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `bellwether_storage_samples_appended_total` | counter | Samples accepted into the head |
//! | `bellwether_storage_samples_refused_total{reason}` | counter | Samples refused, by reason: `out_of_order`, `duplicate`, `too_old`, `series_limit`, `unknown_ref` |
//! | `bellwether_storage_series_created_total` | counter | Series created in the head |
//! | `bellwether_storage_active_series` | gauge | Series currently in the head index |
//! | `bellwether_storage_wal_bytes_written_total` | counter | Bytes written to WAL segments |
//! | `bellwether_storage_wal_fsync_duration_seconds` | histogram | Time to fsync the WAL |
//! | `bellwether_storage_wal_corruptions_total` | counter | Corrupt or torn WAL segment tails truncated during replay |
//! | `bellwether_storage_sqlite_batch_duration_seconds` | histogram | Time of one SQLite write transaction (chunk batch or checkpoint) |
//! | `bellwether_storage_chunks_persisted_total` | counter | Sealed chunks written to SQLite |
//! | `bellwether_storage_checkpoints_total` | counter | Checkpoints completed (WAL truncated) |
//! | `bellwether_storage_retention_deletions_total{kind}` | counter | Chunks (`kind="chunk"`) and series (`kind="series"`) deleted by retention |
//! | `bellwether_storage_disk_bytes` | gauge | Bytes on disk: database, its SQLite WAL, and the WAL segments |
//!
//! This module owns the metric handles only; the engine decides when to count.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// Handles to every storage metric; clones share the same values.
#[derive(Clone)]
pub struct Metrics {
    pub samples_appended: Counter,
    pub samples_refused: Family<ReasonLabels, Counter>,
    pub series_created: Counter,
    pub active_series: Gauge,
    pub wal_bytes_written: Counter,
    pub wal_fsync_duration: Histogram,
    pub wal_corruptions: Counter,
    pub sqlite_batch_duration: Histogram,
    pub chunks_persisted: Counter,
    pub checkpoints: Counter,
    pub retention_deletions: Family<KindLabels, Counter>,
    pub disk_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            samples_appended: Counter::default(),
            samples_refused: Family::default(),
            series_created: Counter::default(),
            active_series: Gauge::default(),
            wal_bytes_written: Counter::default(),
            wal_fsync_duration: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
            wal_corruptions: Counter::default(),
            sqlite_batch_duration: Histogram::new(exponential_buckets(0.0005, 4.0, 9)),
            chunks_persisted: Counter::default(),
            checkpoints: Counter::default(),
            retention_deletions: Family::default(),
            disk_bytes: Gauge::default(),
        }
    }
}

impl Metrics {
    pub fn refused(&self, reason: &'static str, n: usize) {
        if n > 0 {
            self.samples_refused
                .get_or_create(&ReasonLabels { reason })
                .inc_by(n as u64);
        }
    }

    pub fn deleted(&self, kind: &'static str, n: usize) {
        if n > 0 {
            self.retention_deletions
                .get_or_create(&KindLabels { kind })
                .inc_by(n as u64);
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("bellwether_storage");
        r.register(
            "samples_appended",
            "Samples accepted into the head",
            self.samples_appended.clone(),
        );
        r.register(
            "samples_refused",
            "Samples refused, by reason (out_of_order, duplicate, too_old, series_limit, unknown_ref)",
            self.samples_refused.clone(),
        );
        r.register(
            "series_created",
            "Series created in the head",
            self.series_created.clone(),
        );
        r.register(
            "active_series",
            "Series currently in the head index",
            self.active_series.clone(),
        );
        r.register(
            "wal_bytes_written",
            "Bytes written to WAL segments",
            self.wal_bytes_written.clone(),
        );
        r.register(
            "wal_fsync_duration_seconds",
            "Time to fsync the WAL",
            self.wal_fsync_duration.clone(),
        );
        r.register(
            "wal_corruptions",
            "Corrupt or torn WAL segment tails truncated during replay",
            self.wal_corruptions.clone(),
        );
        r.register(
            "sqlite_batch_duration_seconds",
            "Time of one SQLite write transaction (chunk batch or checkpoint)",
            self.sqlite_batch_duration.clone(),
        );
        r.register(
            "chunks_persisted",
            "Sealed chunks written to SQLite",
            self.chunks_persisted.clone(),
        );
        r.register(
            "checkpoints",
            "Checkpoints completed (WAL truncated)",
            self.checkpoints.clone(),
        );
        r.register(
            "retention_deletions",
            "Chunks (kind=chunk) and series (kind=series) deleted by retention",
            self.retention_deletions.clone(),
        );
        r.register(
            "disk_bytes",
            "Bytes on disk: database, its SQLite WAL, and the WAL segments",
            self.disk_bytes.clone(),
        );
    }
}
