//! The HTTP API: lifecycle endpoints (`/-/healthy`, `/-/ready`, `/-/reload`),
//! the daemon's `/metrics`, the Prometheus HTTP API v1 and push ingest.
//!
//! `router(state)` builds the whole API as a value, so tests drive it with
//! `oneshot` and no socket. Handlers only translate HTTP to calls on the store
//! and the daemon; they hold no state of their own.

pub mod alertmanager;
mod error;
pub mod export;
pub mod history;
pub mod prometheus;
pub mod query;
pub mod rules;
pub mod silences;
pub mod status;
pub mod targets;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

pub use error::{ApiError, ErrorType};
pub use rules::{NoRules, RuleSource};
pub use status::RuntimeStatus;
pub use targets::{NoTargets, TargetSource};

use crate::storage::Storage;

/// Prometheus's success envelope, fields in Prometheus's order (`json!` would
/// sort them): `{"status":"success","data":...}`.
#[derive(serde::Serialize)]
pub struct Success<T> {
    status: &'static str,
    data: T,
}

/// Wraps `data` in the success envelope.
pub fn success<T: serde::Serialize>(data: T) -> axum::Json<Success<T>> {
    axum::Json(Success {
        status: "success",
        data,
    })
}

/// A request to reload the config, answered with the outcome.
/// Serializes an `f64` as Go's `encoding/json` does: integral values without
/// a fraction (`1`, not `1.0`), others in the shortest form. (Non-finite
/// values cannot occur in the fields this is used for; they become `0`.)
pub fn go_json_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if !v.is_finite() {
        return s.serialize_i64(0);
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub storage: Storage,
    /// Set once the store has recovered; `/-/ready` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    pub registry: Arc<Registry>,
    /// Sends reload requests to the daemon's reload loop.
    pub reload: mpsc::Sender<ReloadRequest>,
    /// Largest request body accepted, in bytes.
    pub max_request_body: usize,
    /// When set, write endpoints require `Authorization: Bearer <token>`.
    pub write_token: Option<Arc<str>>,
    /// Counters of the ingest endpoints.
    pub ingest_metrics: crate::ingest::IngestMetrics,
    /// Targets and metric metadata (the scrape manager).
    pub targets: Arc<dyn TargetSource>,
    /// Flags, start time and the loaded config, for `/api/v1/status/*`.
    pub status: Arc<RuntimeStatus>,
    pub rules: Arc<dyn RuleSource>,
    /// Silences, status and receivers of the Alertmanager API v2.
    pub alertmanager: Arc<silences::AlertmanagerApi>,
    /// The in-process Alertmanager, for `/api/v2/alerts*`.
    pub notify: Arc<crate::notify::Router>,
    /// The notification outbox, for `/api/v1/alerts/history`; `None`
    /// answers 503 there.
    pub delivery: Option<Arc<crate::notify::deliver::Deliverer>>,
    /// The LLM usage service (`/api/v1/usage`, `/api/v1/events`); `None`
    /// answers 503 there.
    pub llm: Option<Arc<crate::llm::UsageService>>,
    /// Host metrics appended to `/metrics` (`collectors.host.expose_on_metrics`).
    pub host_metrics: crate::collect::host::Exposer,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.max_request_body;
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/metrics", get(metrics))
        .merge(prometheus::routes())
        .merge(query::routes())
        .merge(targets::routes())
        .merge(rules::routes())
        .merge(status::routes())
        .merge(export::routes())
        .merge(silences::routes())
        .merge(crate::ingest::routes())
        .merge(alertmanager::routes())
        .merge(history::routes())
        .merge(crate::llm::api::routes())
        .merge(crate::otlp::routes())
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "bellwether is Healthy.\n"
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "bellwether is Ready.\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the store is still recovering.\n",
        )
            .into_response()
    }
}

async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = check_write_token(&state, &headers) {
        return e.into_response();
    }
    let (tx, rx) = oneshot::channel();
    if state.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => (StatusCode::OK, "config reloaded\n").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = crate::telemetry::render(&state.registry);
    if let Some(host) = state.host_metrics.get() {
        // Collected afresh, as node_exporter does per scrape (a few ms of
        // file reads, so off the async threads).
        match tokio::task::spawn_blocking(move || host.render()).await {
            Ok(text) => body.push_str(&text),
            Err(e) => tracing::warn!(error = %e, "host collection for /metrics failed"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Refuses a write request without the configured bearer token.
pub fn check_write_token(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.write_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::unauthorized(
            "this endpoint requires `Authorization: Bearer <web.write_token>`",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An `AppState` over `storage` for handler tests: ready, no write token, a
/// fresh registry, a reload channel nobody listens on, no targets, and the
/// embedded default config as the loaded one.
#[cfg(test)]
pub fn test_state(storage: Storage) -> AppState {
    let (reload, _) = mpsc::channel(1);
    AppState {
        storage,
        ready: Arc::new(AtomicBool::new(true)),
        registry: Arc::new(Registry::default()),
        reload,
        max_request_body: 32 * 1024 * 1024,
        write_token: None,
        ingest_metrics: crate::ingest::IngestMetrics::default(),
        targets: Arc::new(NoTargets),
        status: Arc::new(RuntimeStatus::new(
            Default::default(),
            "15d".to_string(),
            crate::config::DEFAULT_CONFIG,
        )),
        rules: Arc::new(NoRules),
        alertmanager: Arc::new(silences::AlertmanagerApi::new(
            Arc::new(crate::notify::silences::Silences::in_memory(
                crate::notify::silences::DEFAULT_RETENTION_MS,
            )),
            silences::NotifyView::default(),
        )),
        notify: test_router(),
        llm: None,
        host_metrics: Default::default(),
        delivery: None,
    }
}

/// An in-process Alertmanager on the default notification config, with no
/// silences, logging its notifications; its task is not running.
#[cfg(test)]
pub fn test_router() -> Arc<crate::notify::Router> {
    let config = crate::notify::config::check_section(Default::default(), None, None)
        .expect("the default notification config loads");
    crate::notify::Router::new(
        &config,
        Arc::new(crate::notify::types::NoSilences),
        Arc::new(crate::notify::LogDelivery),
        crate::notify::alerts::Clock::System,
    )
}
