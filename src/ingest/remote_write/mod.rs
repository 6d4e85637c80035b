//! The remote_write 1.0 receiver: `POST /api/v1/write` with a snappy
//! block-compressed protobuf `prometheus.WriteRequest`.
//!
//! Answers as Prometheus 2.42's `storage/remote/write_handler.go` does —
//! 204 on success, 400 with a text/plain message for a body that does not
//! decode and for out-of-order / duplicate / too-old samples (400 so the sender
//! does not retry them forever), 500 when the store fails — with these
//! differences, each because the reference's behaviour loses data or makes a
//! sender retry forever:
//!
//! - A refused sample does not take the batch down with it: Prometheus rolls
//!   back the whole request at the first bad sample; bellwether stores every
//!   acceptable sample and answers 400 naming what it refused and how many.
//! - Invalid series (a repeated label name, no labels at all, an invalid label
//!   or metric name) are refused with 400; Prometheus answers 500 for the first
//!   two (so the sender retries forever) and stores the last two.
//! - Native histogram samples are refused with 400 and counted (bellwether
//!   stores floats only); exemplars and metadata are decoded and ignored.
//! - A remote_write 2.0 body (`Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request`)
//!   is answered 415: decoded as 1.0 it would look like an empty request and
//!   be acknowledged while dropping every sample. Other content types and
//!   encodings are not checked, as in Prometheus 2.42; when a body fails to
//!   decode, the error mentions a non-snappy `Content-Encoding`.

pub mod decode;
pub mod proto;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use self::decode::{decode_write_request, describe_labels, series_labels};
use super::{IngestMetrics, Outcome, RefusedReason};
use crate::api::AppState;
use crate::storage::{AppendOutcome, Storage, StorageError};

/// The protobuf message name remote_write 1.0 senders may put in `proto=`.
const PROTO_V1: &str = "prometheus.WriteRequest";

/// `POST /api/v1/write`.
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let metrics = state.ingest_metrics.clone();
    if let Err(e) = crate::api::check_write_token(&state, &headers) {
        metrics.request(Outcome::Unauthorized);
        return e.into_response();
    }
    if let Some(proto) = unsupported_proto(&headers) {
        metrics.request(Outcome::UnsupportedMediaType);
        return text_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!(
                "unsupported remote_write message {proto:?} in Content-Type: this receiver speaks remote_write 1.0 (application/x-protobuf, proto={PROTO_V1})"
            ),
        );
    }
    metrics.bytes_received(body.len());

    let request = match decode_write_request(&body) {
        Ok(request) => request,
        Err(e) => {
            metrics.request(Outcome::Malformed);
            let message = format!("{e}{}", content_encoding_hint(&headers));
            tracing::warn!(error = %message, body_bytes = body.len(), "refused a remote_write request that does not decode");
            return text_response(StatusCode::BAD_REQUEST, &message);
        }
    };

    let storage = state.storage.clone();
    let appended = tokio::task::spawn_blocking(move || append(&storage, request)).await;
    let report = match appended {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            metrics.request(Outcome::StorageError);
            tracing::error!(error = %e, "storing a remote_write request failed");
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("storing the samples failed: {e}"),
            );
        }
        Err(e) => {
            metrics.request(Outcome::StorageError);
            tracing::error!(error = %e, "the remote_write append task failed");
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storing the samples failed; see the daemon's log",
            );
        }
    };
    report.count(&metrics);
    match report.refusal_message() {
        None => {
            metrics.request(Outcome::Success);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(message) => {
            metrics.request(Outcome::PartiallyRefused);
            tracing::warn!(
                received = report.received,
                appended = report.outcome.appended,
                out_of_order = report.outcome.out_of_order,
                duplicate = report.outcome.duplicate,
                too_old = report.outcome.too_old,
                series_limit = report.outcome.series_limit,
                invalid_series = report.invalid_series,
                native_histograms = report.histograms,
                first_invalid = report.first_invalid.as_deref().unwrap_or(""),
                "remote_write samples refused"
            );
            text_response(StatusCode::BAD_REQUEST, &message)
        }
    }
}

/// What became of one request's samples.
#[derive(Debug, Default)]
pub struct Report {
    /// Float and histogram samples in the request.
    pub received: usize,
    pub outcome: AppendOutcome,
    /// Series refused for their labels, and their samples.
    pub invalid_series: usize,
    pub invalid_samples: usize,
    /// The first invalid series and why, e.g. `invalid label name: 1a in series {...}`.
    pub first_invalid: Option<String>,
    /// Native histogram samples (refused).
    pub histograms: usize,
    pub exemplars: usize,
    pub metadata: usize,
}

/// Validates every series and appends the valid ones' samples in one commit.
pub fn append(storage: &Storage, request: proto::WriteRequest) -> Result<Report, StorageError> {
    let mut report = Report {
        metadata: request.metadata.len(),
        ..Report::default()
    };
    let mut appender = storage.appender();
    for series in request.timeseries {
        report.received += series.samples.len() + series.histograms.len();
        report.histograms += series.histograms.len();
        report.exemplars += series.exemplars.len();
        match series_labels(&series.labels) {
            Ok(labels) => {
                for sample in &series.samples {
                    appender.add(labels.clone(), sample.timestamp, sample.value);
                }
            }
            Err(e) => {
                report.invalid_series += 1;
                report.invalid_samples += series.samples.len();
                if report.first_invalid.is_none() {
                    report.first_invalid =
                        Some(format!("{e} in series {}", describe_labels(&series.labels)));
                }
            }
        }
    }
    report.outcome = appender.commit()?;
    Ok(report)
}

impl Report {
    fn count(&self, metrics: &IngestMetrics) {
        metrics.samples_received(self.received);
        metrics.samples_refused(RefusedReason::OutOfOrder, self.outcome.out_of_order);
        metrics.samples_refused(RefusedReason::Duplicate, self.outcome.duplicate);
        metrics.samples_refused(RefusedReason::TooOld, self.outcome.too_old);
        metrics.samples_refused(RefusedReason::SeriesLimit, self.outcome.series_limit);
        metrics.samples_refused(RefusedReason::InvalidLabels, self.invalid_samples);
        metrics.samples_refused(RefusedReason::NativeHistogram, self.histograms);
        metrics.ignored("exemplar", self.exemplars);
        metrics.ignored("metadata", self.metadata);
    }

    /// The 400 message when anything was refused; `None` when all was stored.
    ///
    /// Each part starts with Prometheus's error text for that refusal (`out of
    /// order sample`, `duplicate sample for timestamp`, `out of bounds`), then
    /// says how many samples it hit.
    pub fn refusal_message(&self) -> Option<String> {
        let o = &self.outcome;
        let mut parts = Vec::new();
        if let Some(first) = &self.first_invalid {
            parts.push(format!(
                "{first} ({} series with {} samples refused for their labels)",
                self.invalid_series, self.invalid_samples
            ));
        }
        if o.out_of_order > 0 {
            parts.push(format!(
                "out of order sample: {} samples older than the newest sample of their series",
                o.out_of_order
            ));
        }
        if o.duplicate > 0 {
            parts.push(format!(
                "duplicate sample for timestamp: {} samples with the timestamp of the newest sample of their series but another value",
                o.duplicate
            ));
        }
        if o.too_old > 0 {
            parts.push(format!(
                "out of bounds: {} samples older than the retention window",
                o.too_old
            ));
        }
        if o.series_limit > 0 {
            parts.push(format!(
                "series limit reached: {} samples of new series refused because storage.max_series is reached",
                o.series_limit
            ));
        }
        if self.histograms > 0 {
            parts.push(format!(
                "native histograms are not supported: {} histogram samples refused",
                self.histograms
            ));
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "{}; {} of {} samples stored",
            parts.join("; "),
            o.appended,
            self.received
        ))
    }
}

/// The `proto=` parameter of a Content-Type naming a message other than
/// remote_write 1.0's.
fn unsupported_proto(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("proto") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (value != PROTO_V1).then(|| value.to_string())
    })
}

/// A hint for a body that did not decode and was declared as not snappy.
fn content_encoding_hint(headers: &HeaderMap) -> String {
    match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("<not text>"))
    {
        Some(encoding) if !encoding.eq_ignore_ascii_case("snappy") => format!(
            " (the request says Content-Encoding: {encoding}; remote_write bodies must be snappy)"
        ),
        _ => String::new(),
    }
}

/// A text/plain answer the way Go's `http.Error` writes one.
fn text_response(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests;
