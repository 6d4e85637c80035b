//! `GET /api/v1/alerts/history`: who was told what, when, and what they
//! answered — the notifications of the outbox (src/notify/deliver/store.rs),
//! kept after delivery by the tier of their alerts' severity
//! (`notify.history`), each with its alerts and every attempt's answer.
//! Alertmanager keeps no such history (prometheus/alertmanager#77, #1976).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::alertmanager::filter_matches;
use super::prometheus::{parse_time, Params};
use super::{success, ApiError, AppState};
use crate::model::{Labels, Timestamp};
use crate::notify::deliver::data::{go_time, Payload};
use crate::notify::deliver::store::{HistoryEntry, HistoryQuery};
use crate::notify::matchers::{parse_matcher, Matcher};

/// Entries answered when `limit` is not given, and the most a request gets.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// The outbox states an entry ends in (and `pending`).
const STATES: [&str; 5] = ["pending", "delivered", "failed", "expired", "superseded"];

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/alerts/history", get(history).post(history))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptView {
    time: String,
    /// `delivered`, `retry` (a retryable failure) or `failed`.
    outcome: &'static str,
    /// The receiver's answer (delivered) or the error, at most 1 KiB.
    answer: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertView {
    fingerprint: String,
    /// `firing` or `resolved` at the flush.
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    id: i64,
    receiver: String,
    integration: String,
    integration_index: usize,
    group_key: String,
    group_labels: BTreeMap<String, String>,
    /// The tier the entry is kept by (`""` when no alert has a severity).
    severity: String,
    /// `firing` when any alert fires, else `resolved` (the webhook's status).
    status: &'static str,
    /// `pending`, `delivered`, `failed`, `expired` or `superseded`.
    state: &'static str,
    /// The flush that produced the notification.
    created_at: String,
    finished_at: Option<String>,
    attempts: Vec<AttemptView>,
    alerts: Vec<AlertView>,
}

struct HistoryRequest {
    query: HistoryQuery,
    matchers: Vec<Matcher>,
    limit: usize,
}

fn parse(params: &Params) -> Result<HistoryRequest, ApiError> {
    let time = |name: &str| -> Result<Option<Timestamp>, ApiError> {
        match params.get(name) {
            "" => Ok(None),
            text => parse_time(text)
                .map(Some)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    };
    let text = |name: &str| match params.get(name) {
        "" => None,
        v => Some(v.to_string()),
    };
    let state = text("state");
    if let Some(s) = &state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"state\": {s:?} is not one of {}",
                STATES.join(", ")
            )));
        }
    }
    let limit = match params.get("limit") {
        "" => DEFAULT_LIMIT,
        v => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {v:?} is not a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let mut matchers = Vec::new();
    for f in params.all("filter") {
        matchers.push(
            parse_matcher(f)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"filter\": {e}")))?,
        );
    }
    let query = HistoryQuery {
        start: time("start")?,
        end: time("end")?,
        receiver: text("receiver"),
        severity: text("severity"),
        state,
    };
    if let (Some(s), Some(e)) = (query.start, query.end) {
        if e < s {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
    }
    Ok(HistoryRequest {
        query,
        matchers,
        limit,
    })
}

fn view(h: HistoryEntry, payload: Payload) -> EntryView {
    let e = h.entry;
    let firing = payload.alerts.iter().any(|a| !a.resolved);
    EntryView {
        id: e.id,
        receiver: e.key.receiver,
        integration: e.key.integration,
        integration_index: e.key.index,
        group_key: e.group_key,
        group_labels: payload.group_labels,
        severity: h.severity,
        status: if firing { "firing" } else { "resolved" },
        state: e.state.as_str(),
        created_at: go_time(e.created),
        finished_at: h.finished.map(go_time),
        attempts: h
            .attempts
            .into_iter()
            .map(|a| AttemptView {
                time: go_time(a.at),
                outcome: a.outcome,
                answer: a.answer,
            })
            .collect(),
        alerts: payload
            .alerts
            .into_iter()
            .map(|a| AlertView {
                fingerprint: a.fingerprint().to_string(),
                status: if a.resolved { "resolved" } else { "firing" },
                starts_at: go_time(a.starts_at),
                ends_at: go_time(a.ends_at),
                labels: a.labels,
                annotations: a.annotations,
            })
            .collect(),
    }
}

async fn history(State(state): State<AppState>, request: Request) -> Response {
    let params = match Params::from_request(request).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let req = match parse(&params) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(delivery) = state.delivery.clone() else {
        return ApiError::new(
            super::error::ErrorType::Unavailable,
            "the notification history is not available: no delivery store in this process",
        )
        .into_response();
    };
    let answer = tokio::task::spawn_blocking(move || query(&delivery, req)).await;
    match answer {
        Ok(Ok(entries)) => success(entries).into_response(),
        Ok(Err(e)) => ApiError::internal(e).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn query(
    delivery: &Arc<crate::notify::deliver::Deliverer>,
    req: HistoryRequest,
) -> Result<Vec<EntryView>, String> {
    // Each kept entry's payload is decoded once: by the filter, then moved
    // into the view.
    let mut payloads: Vec<Payload> = Vec::new();
    let entries = delivery.store().history(&req.query, req.limit, |entry| {
        let Ok(payload) = serde_json::from_str::<Payload>(&entry.payload) else {
            // An unreadable payload is shown (with no alerts) unless
            // label filters ask for alerts.
            if req.matchers.is_empty() {
                payloads.push(Payload {
                    receiver: entry.key.receiver.clone(),
                    group_key: entry.group_key.clone(),
                    group_labels: BTreeMap::new(),
                    alerts: Vec::new(),
                    now: entry.created,
                });
                return true;
            }
            return false;
        };
        let keep = req.matchers.is_empty()
            || payload
                .alerts
                .iter()
                .any(|a| filter_matches(&req.matchers, &Labels::new(a.labels.iter())));
        if keep {
            payloads.push(payload);
        }
        keep
    })?;
    Ok(entries
        .into_iter()
        .zip(payloads)
        .map(|(h, p)| view(h, p))
        .collect())
}
