//! Push ingest over HTTP: the remote_write 1.0 receiver (`POST /api/v1/write`).
//!
//! This module owns decoding pushed payloads, validating them and handing the
//! samples to the store through one `Appender` per request, plus the counters
//! about it. It must not reach into the store's internals or answer queries.

pub mod remote_write;

use axum::routing::post;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::api::AppState;

/// How a remote_write request ended (`outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 204: every sample stored (or an exact duplicate of a stored one).
    Success,
    /// 400: the body could not be decoded; nothing stored.
    Malformed,
    /// 400: the body decoded but some samples were refused; the rest stored.
    PartiallyRefused,
    /// 401: missing or wrong write token.
    Unauthorized,
    /// 415: a content type this receiver does not speak (remote_write 2.0).
    UnsupportedMediaType,
    /// 500: the store failed.
    StorageError,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Success,
        Outcome::Malformed,
        Outcome::PartiallyRefused,
        Outcome::Unauthorized,
        Outcome::UnsupportedMediaType,
        Outcome::StorageError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Malformed => "malformed",
            Outcome::PartiallyRefused => "partially_refused",
            Outcome::Unauthorized => "unauthorized",
            Outcome::UnsupportedMediaType => "unsupported_media_type",
            Outcome::StorageError => "storage_error",
        }
    }
}

/// Why samples were refused (`reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedReason {
    /// Older than the newest sample of their series.
    OutOfOrder,
    /// Same timestamp as the newest sample of their series, different value.
    Duplicate,
    /// Older than the retention window.
    TooOld,
    /// Their series would exceed `storage.max_series`.
    SeriesLimit,
    /// Their series' labels are invalid (bad name, repeated name, empty set).
    InvalidLabels,
    /// Native histogram samples: bellwether stores float samples only.
    NativeHistogram,
}

impl RefusedReason {
    pub const ALL: [RefusedReason; 6] = [
        RefusedReason::OutOfOrder,
        RefusedReason::Duplicate,
        RefusedReason::TooOld,
        RefusedReason::SeriesLimit,
        RefusedReason::InvalidLabels,
        RefusedReason::NativeHistogram,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusedReason::OutOfOrder => "out_of_order",
            RefusedReason::Duplicate => "duplicate",
            RefusedReason::TooOld => "too_old",
            RefusedReason::SeriesLimit => "series_limit",
            RefusedReason::InvalidLabels => "invalid_labels",
            RefusedReason::NativeHistogram => "native_histogram",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Counters of the ingest endpoints. Cheap to clone; clones share the counts.
#[derive(Clone)]
pub struct IngestMetrics {
    requests: Family<OutcomeLabel, Counter>,
    samples_received: Counter,
    samples_refused: Family<ReasonLabel, Counter>,
    bytes_received: Counter,
    ignored: Family<KindLabel, Counter>,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        let metrics = IngestMetrics {
            requests: Family::default(),
            samples_received: Counter::default(),
            samples_refused: Family::default(),
            bytes_received: Counter::default(),
            ignored: Family::default(),
        };
        // Every label value exists from the start, so rate() and alerts on a
        // reason see 0 rather than nothing before its first occurrence.
        for outcome in Outcome::ALL {
            let _ = metrics.requests.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for reason in RefusedReason::ALL {
            let _ = metrics.samples_refused.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        for kind in ["exemplar", "metadata"] {
            let _ = metrics.ignored.get_or_create(&KindLabel { kind });
        }
        metrics
    }
}

impl IngestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_remote_write_requests",
            "remote_write requests received, by outcome",
            self.requests.clone(),
        );
        registry.register(
            "bellwether_remote_write_samples_received",
            "Samples (float and native histogram) received in decoded remote_write requests",
            self.samples_received.clone(),
        );
        registry.register(
            "bellwether_remote_write_samples_refused",
            "Samples of remote_write requests that were not stored, by reason",
            self.samples_refused.clone(),
        );
        registry.register(
            "bellwether_remote_write_bytes_received",
            "Bytes of remote_write request bodies received, as sent (compressed)",
            self.bytes_received.clone(),
        );
        registry.register(
            "bellwether_remote_write_ignored",
            "Exemplars and metadata entries received by remote_write and not stored, by kind",
            self.ignored.clone(),
        );
    }

    pub fn request(&self, outcome: Outcome) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn samples_received(&self, n: usize) {
        self.samples_received.inc_by(n as u64);
    }

    pub fn samples_refused(&self, reason: RefusedReason, n: usize) {
        if n > 0 {
            self.samples_refused
                .get_or_create(&ReasonLabel {
                    reason: reason.as_str(),
                })
                .inc_by(n as u64);
        }
    }

    pub fn bytes_received(&self, n: usize) {
        self.bytes_received.inc_by(n as u64);
    }

    pub fn ignored(&self, kind: &'static str, n: usize) {
        if n > 0 {
            self.ignored
                .get_or_create(&KindLabel { kind })
                .inc_by(n as u64);
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/write", post(remote_write::handle))
}
