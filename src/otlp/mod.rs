//! The OTLP/HTTP receiver: `POST /v1/metrics` and `POST /v1/traces` on the
//! main HTTP port and, when `web.otlp_listen_address` is set, on a listener
//! of their own (docs/otlp.md).
//!
//! Bodies are `application/x-protobuf` or `application/json` (OTLP/JSON:
//! lowerCamelCase keys, 64-bit integers as strings or numbers, hex trace and
//! span ids, unknown fields ignored), optionally `Content-Encoding: gzip`.
//! `web.max_request_body` caps the body as sent and again after
//! decompression (inflated through a bounded reader, never unbounded).
//! Answers follow the OTLP/HTTP specification: 200 with an
//! `Export*ServiceResponse` in the request's encoding, with `partial_success`
//! when points or spans were refused; 400 with a `google.rpc.Status` for a body
//! that does not decode; 413 too large; 415 unsupported content type or
//! encoding; 429 with `Retry-After` when too many OTLP requests are in
//! flight; 503 with `Retry-After` when the store or the usage service cannot
//! take the data now.

pub mod metrics;
pub mod traces;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;

use crate::api::AppState;
use crate::model::now_millis;

/// Most OTLP requests decoded at once; more are answered 429.
pub const MAX_IN_FLIGHT: usize = 8;
/// `Retry-After` seconds of 429 and 503 answers.
const RETRY_AFTER: &str = "1";
/// gRPC codes used in `google.rpc.Status`.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_RESOURCE_EXHAUSTED: i32 = 8;
const CODE_UNAVAILABLE: i32 = 14;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    signal: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: &'static str,
}

/// The receiver's counters (in `/metrics`).
#[derive(Default)]
pub struct OtlpMetrics {
    requests: Family<RequestLabel, Counter>,
    rejected: Family<SignalLabel, Counter>,
    received: Family<SignalLabel, Counter>,
}

/// Request outcomes (`outcome` label).
pub const OUTCOMES: [&str; 8] = [
    "success",
    "partial",
    "malformed",
    "too_large",
    "unsupported_media_type",
    "unauthorized",
    "throttled",
    "unavailable",
];

static METRICS: LazyLock<OtlpMetrics> = LazyLock::new(OtlpMetrics::default);

/// Registers the receiver's counters; called once at start-up.
pub fn register_metrics(registry: &mut Registry) {
    let m = &*METRICS;
    for signal in ["metrics", "traces"] {
        for outcome in OUTCOMES {
            let _ = m.requests.get_or_create(&RequestLabel { signal, outcome });
        }
        let _ = m.rejected.get_or_create(&SignalLabel { signal });
        let _ = m.received.get_or_create(&SignalLabel { signal });
    }
    registry.register(
        "bellwether_otlp_requests",
        "OTLP/HTTP export requests, by signal (metrics, traces) and outcome",
        m.requests.clone(),
    );
    registry.register(
        "bellwether_otlp_received",
        "OTLP data points (metrics) and spans (traces) received in decoded requests",
        m.received.clone(),
    );
    registry.register(
        "bellwether_otlp_rejected",
        "OTLP data points and spans refused (reported in partial_success), by signal",
        m.rejected.clone(),
    );
}

fn count(signal: &'static str, outcome: &'static str) {
    METRICS
        .requests
        .get_or_create(&RequestLabel { signal, outcome })
        .inc();
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/metrics", post(metrics_handler))
        .route("/v1/traces", post(traces_handler))
}

/// The router of the OTLP-only listener (`web.otlp_listen_address`): the
/// same handlers, body limit, write token and in-flight limit (shared with
/// the main port) as on the main port, and nothing else.
pub fn router(state: AppState) -> Router {
    let body_limit = state.max_request_body;
    routes()
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// The body's encoding from `Content-Type`; `None` for anything else.
pub fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    UnsupportedEncoding(String),
    TooLarge(usize),
    Corrupt(String),
}

/// The `Content-Encoding` header, if any (`?` when it is not text).
pub fn content_encoding(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
}

/// The body after its `Content-Encoding`, at most `limit` bytes once inflated
/// (an uncompressed body is borrowed, not copied).
pub fn decompress<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, BodyError> {
    let enc = content_encoding
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match enc.as_str() {
        "" | "identity" => Ok(std::borrow::Cow::Borrowed(body)),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let mut reader = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
            reader
                .read_to_end(&mut out)
                .map_err(|e| BodyError::Corrupt(format!("gzip body does not decompress: {e}")))?;
            if out.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        other => Err(BodyError::UnsupportedEncoding(other.to_string())),
    }
}

/// `google.rpc.Status`, the body of OTLP/HTTP error answers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

fn error_response(
    status: StatusCode,
    encoding: Option<Encoding>,
    code: i32,
    message: &str,
) -> Response {
    let mut response = match encoding {
        Some(Encoding::Protobuf) => {
            let body = RpcStatus {
                code,
                message: message.to_string(),
            }
            .encode_to_vec();
            (
                status,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
                .into_response()
        }
        _ => {
            let body = serde_json::json!({"code": code, "message": message}).to_string();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    }
    response
}

/// A 200 answer: `(rejected, message)` becomes `partial_success`.
fn success_response(
    signal: &'static str,
    encoding: Encoding,
    rejected: usize,
    message: String,
) -> Response {
    let partial = rejected > 0 || !message.is_empty();
    match encoding {
        Encoding::Protobuf => {
            let body = if signal == "metrics" {
                ExportMetricsServiceResponse {
                    partial_success: partial.then_some(ExportMetricsPartialSuccess {
                        rejected_data_points: rejected as i64,
                        error_message: message,
                    }),
                }
                .encode_to_vec()
            } else {
                ExportTraceServiceResponse {
                    partial_success: partial.then_some(ExportTracePartialSuccess {
                        rejected_spans: rejected as i64,
                        error_message: message,
                    }),
                }
                .encode_to_vec()
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                body,
            )
                .into_response()
        }
        Encoding::Json => {
            let field = if signal == "metrics" {
                "rejectedDataPoints"
            } else {
                "rejectedSpans"
            };
            let body = if partial {
                let mut ps = serde_json::Map::new();
                ps.insert(
                    field.into(),
                    serde_json::Value::String(rejected.to_string()),
                );
                ps.insert("errorMessage".into(), serde_json::Value::String(message));
                serde_json::json!({ "partialSuccess": ps })
            } else {
                serde_json::json!({})
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// A resource's attributes (none when the request carries no resource).
pub(crate) fn resource_attributes(
    resource: &Option<opentelemetry_proto::tonic::resource::v1::Resource>,
) -> &[opentelemetry_proto::tonic::common::v1::KeyValue] {
    resource.as_ref().map_or(&[], |r| r.attributes.as_slice())
}

/// Decodes a request body in the given encoding.
pub fn decode<T: Message + Default + serde::de::DeserializeOwned>(
    body: &[u8],
    encoding: Encoding,
) -> Result<T, String> {
    match encoding {
        Encoding::Protobuf => {
            T::decode(body).map_err(|e| format!("protobuf body does not decode: {e}"))
        }
        Encoding::Json => {
            // serde would also read a struct from a JSON array.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err("JSON body does not decode: expected a JSON object".into());
            }
            serde_json::from_slice(body).map_err(|e| format!("JSON body does not decode: {e}"))
        }
    }
}

/// Decodes and translates a (decompressed) `/v1/metrics` body.
pub fn metrics_body(
    body: &[u8],
    encoding: Encoding,
    now: crate::model::Timestamp,
) -> Result<metrics::Translated, String> {
    let request: ExportMetricsServiceRequest = decode(body, encoding)?;
    Ok(metrics::translate(&request, now))
}

/// Decodes a (decompressed) `/v1/traces` body into usage records.
pub fn traces_body(
    body: &[u8],
    encoding: Encoding,
    now: crate::model::Timestamp,
) -> Result<traces::SpanUsage, String> {
    let request: ExportTraceServiceRequest = decode(body, encoding)?;
    Ok(traces::usage_records(&request, now))
}

/// Releases an in-flight slot when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        let prev = IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
        if prev >= MAX_IN_FLIGHT {
            IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a signal's work produced.
enum Done {
    Ok { rejected: usize, message: String },
    Bad(String),
    TooLarge(String),
    Unsupported(String),
    Unavailable(String),
}

fn read_body<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, Done> {
    decompress(content_encoding(headers), body, limit).map_err(|e| match e {
        BodyError::UnsupportedEncoding(enc) => Done::Unsupported(format!(
            "unsupported Content-Encoding {enc:?} (gzip or none)"
        )),
        BodyError::TooLarge(limit) => Done::TooLarge(format!(
            "the decompressed body exceeds {limit} bytes (web.max_request_body)"
        )),
        BodyError::Corrupt(e) => Done::Bad(e),
    })
}

type Work = fn(&AppState, &HeaderMap, &[u8], Encoding) -> Done;

async fn handle(
    signal: &'static str,
    state: AppState,
    headers: HeaderMap,
    body: Bytes,
    work: Work,
) -> Response {
    if let Err(e) = crate::api::check_write_token(&state, &headers) {
        count(signal, "unauthorized");
        return e.into_response();
    }
    let Some(enc) = encoding(&headers) else {
        count(signal, "unsupported_media_type");
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            CODE_INVALID_ARGUMENT,
            "unsupported Content-Type: OTLP/HTTP bodies are application/x-protobuf or application/json",
        );
    };
    let Some(slot) = Slot::take() else {
        count(signal, "throttled");
        return error_response(
            StatusCode::TOO_MANY_REQUESTS,
            Some(enc),
            CODE_RESOURCE_EXHAUSTED,
            "too many OTLP requests in flight; retry later",
        );
    };
    let done = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work(&state, &headers, &body, enc)
    })
    .await
    .unwrap_or_else(|e| Done::Unavailable(format!("the OTLP task failed: {e}")));
    match done {
        Done::Ok { rejected, message } => {
            count(signal, if rejected > 0 { "partial" } else { "success" });
            success_response(signal, enc, rejected, message)
        }
        Done::Bad(m) => {
            count(signal, "malformed");
            tracing::warn!(signal, error = %m, "refused an OTLP request that does not decode");
            error_response(
                StatusCode::BAD_REQUEST,
                Some(enc),
                CODE_INVALID_ARGUMENT,
                &m,
            )
        }
        Done::TooLarge(m) => {
            count(signal, "too_large");
            error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some(enc),
                CODE_INVALID_ARGUMENT,
                &m,
            )
        }
        Done::Unsupported(m) => {
            count(signal, "unsupported_media_type");
            error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some(enc),
                CODE_INVALID_ARGUMENT,
                &m,
            )
        }
        Done::Unavailable(m) => {
            count(signal, "unavailable");
            tracing::error!(signal, error = %m, "an OTLP request could not be stored");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(enc),
                CODE_UNAVAILABLE,
                &m,
            )
        }
    }
}

async fn metrics_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle("metrics", state, headers, body, metrics_work).await
}

async fn traces_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle("traces", state, headers, body, traces_work).await
}

fn metrics_work(state: &AppState, headers: &HeaderMap, body: &[u8], enc: Encoding) -> Done {
    let raw = match read_body(headers, body, state.max_request_body) {
        Ok(raw) => raw,
        Err(done) => return done,
    };
    let t = match metrics_body(&raw, enc, now_millis()) {
        Ok(t) => t,
        Err(e) => return Done::Bad(e),
    };
    METRICS
        .received
        .get_or_create(&SignalLabel { signal: "metrics" })
        .inc_by(t.points as u64);
    let mut appender = state.storage.appender();
    for (labels, ts, v) in t.samples {
        appender.add(labels, ts, v);
    }
    let outcome = match appender.commit() {
        Ok(o) => o,
        Err(e) => return Done::Unavailable(format!("storing the samples failed: {e}")),
    };
    let mut messages = t.messages;
    let refused = outcome.out_of_order + outcome.duplicate + outcome.too_old + outcome.series_limit;
    if refused > 0 {
        messages.push(format!(
            "{refused} samples refused by the store ({} out of order, {} duplicate, {} too old, {} over storage.max_series)",
            outcome.out_of_order, outcome.duplicate, outcome.too_old, outcome.series_limit
        ));
    }
    METRICS
        .rejected
        .get_or_create(&SignalLabel { signal: "metrics" })
        .inc_by(t.rejected as u64);
    Done::Ok {
        rejected: t.rejected,
        message: messages.join("; "),
    }
}

fn traces_work(state: &AppState, headers: &HeaderMap, body: &[u8], enc: Encoding) -> Done {
    let raw = match read_body(headers, body, state.max_request_body) {
        Ok(raw) => raw,
        Err(done) => return done,
    };
    let now = now_millis();
    let usage = match traces_body(&raw, enc, now) {
        Ok(u) => u,
        Err(e) => return Done::Bad(e),
    };
    METRICS
        .received
        .get_or_create(&SignalLabel { signal: "traces" })
        .inc_by(usage.spans as u64);
    let mut errors = usage.errors;
    match &state.llm {
        Some(service) if !usage.records.is_empty() => {
            match service.ingest_usage(usage.records, now, &mut errors) {
                Ok(n) => service.metrics().record_outcomes(n, errors.len()),
                Err(overloaded) => return Done::Unavailable(overloaded.to_string()),
            }
        }
        Some(service) => service.metrics().record_outcomes(0, errors.len()),
        None if !usage.records.is_empty() => {
            return Done::Unavailable("the LLM usage service is not running".into())
        }
        None => {}
    }
    METRICS
        .rejected
        .get_or_create(&SignalLabel { signal: "traces" })
        .inc_by(errors.len() as u64);
    errors.sort_by_key(|e| e.index);
    let message: Vec<String> = errors.iter().take(5).map(|e| e.to_string()).collect();
    Done::Ok {
        rejected: errors.len(),
        message: message.join("; "),
    }
}

#[cfg(test)]
mod tests;
