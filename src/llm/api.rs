//! HTTP endpoints of the LLM usage service: `POST /api/v1/usage`,
//! `POST /api/v1/events`, `GET /api/v1/usage/top`, `GET /api/v1/usage/summary`.
//!
//! The write endpoints take the same bearer token (`web.write_token`) and
//! body limit (`web.max_request_body`) as remote_write. Their answer follows
//! OTLP's partial success: 200 with the counts of accepted and refused
//! records and why each refused one was refused; 400 when nothing could be
//! accepted (a body that is not a JSON array, or every record bad).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::{success, ApiError, AppState};
use crate::model::now_millis;

use super::ledger::{GroupBy, OrderBy};
use super::record::{parse_events, parse_usage, RecordError};
use super::service::UsageService;

/// Most refusals listed in one answer (the counts are always complete).
pub const MAX_LISTED_ERRORS: usize = 100;
/// Bodies larger than this are parsed on a blocking thread.
const INLINE_BODY: usize = 256 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/usage", post(usage))
        .route("/api/v1/events", post(events))
        .route("/api/v1/usage/top", get(top))
        .route("/api/v1/usage/summary", get(summary))
}

fn service(state: &AppState) -> Result<Arc<UsageService>, ApiError> {
    state.llm.clone().ok_or_else(|| {
        ApiError::new(
            crate::api::ErrorType::Unavailable,
            "the LLM usage service is not running",
        )
    })
}

/// The body of a write answer.
#[derive(serde::Serialize)]
struct WriteResult {
    accepted: usize,
    rejected: usize,
    errors: Vec<RecordError>,
}

#[derive(serde::Serialize)]
struct ErrorBody {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'static str,
    error: String,
    data: WriteResult,
}

fn write_answer(accepted: usize, mut errors: Vec<RecordError>) -> Response {
    let rejected = errors.len();
    errors.sort_by_key(|e| e.index);
    errors.truncate(MAX_LISTED_ERRORS);
    let data = WriteResult {
        accepted,
        rejected,
        errors,
    };
    if accepted == 0 && rejected > 0 {
        let first: Vec<String> = data.errors.iter().take(3).map(|e| e.to_string()).collect();
        let error = format!(
            "all {rejected} records refused: {}{}",
            first.join("; "),
            if rejected > 3 { "; …" } else { "" }
        );
        return (
            StatusCode::BAD_REQUEST,
            Json(ErrorBody {
                status: "error",
                error_type: "bad_data",
                error,
                data,
            }),
        )
            .into_response();
    }
    success(data).into_response()
}

async fn usage(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let service = match service(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let metrics = service.metrics().clone();
    if let Err(e) = crate::api::check_write_token(&state, &headers) {
        metrics.request("usage", "unauthorized");
        return e.into_response();
    }
    let work = move || {
        let now = now_millis();
        let parsed = parse_usage(&body, now)?;
        let mut errors = parsed.errors;
        let accepted = service.ingest_usage(parsed.records, now, &mut errors);
        Ok::<_, super::record::BodyError>((accepted, errors))
    };
    let result = if body_is_large(&headers) {
        match tokio::task::spawn_blocking(work).await {
            Ok(r) => r,
            Err(e) => return ApiError::internal(e).into_response(),
        }
    } else {
        work()
    };
    match result {
        Err(e) => {
            metrics.request("usage", "malformed");
            ApiError::bad_data(e.to_string()).into_response()
        }
        Ok((Err(overloaded), errors)) => {
            metrics.request("usage", "overloaded");
            metrics.record_outcomes(0, errors.len());
            let mut response =
                ApiError::new(crate::api::ErrorType::Unavailable, overloaded.to_string())
                    .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        Ok((Ok(accepted), errors)) => {
            metrics.record_outcomes(accepted, errors.len());
            metrics.request("usage", outcome(accepted, errors.len()));
            write_answer(accepted, errors)
        }
    }
}

fn outcome(accepted: usize, refused: usize) -> &'static str {
    match (accepted, refused) {
        (_, 0) => "success",
        (0, _) => "refused",
        _ => "partial",
    }
}

fn body_is_large(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > INLINE_BODY)
}

async fn events(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let service = match service(&state) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let metrics = service.metrics().clone();
    if let Err(e) = crate::api::check_write_token(&state, &headers) {
        metrics.request("events", "unauthorized");
        return e.into_response();
    }
    let now = now_millis();
    match parse_events(&body, now) {
        Err(e) => {
            metrics.request("events", "malformed");
            ApiError::bad_data(e.to_string()).into_response()
        }
        Ok(parsed) => {
            let accepted = parsed.records.len();
            metrics.event_outcomes(accepted, parsed.errors.len());
            metrics.request("events", outcome(accepted, parsed.errors.len()));
            service.ingest_events(parsed.records, now);
            write_answer(accepted, parsed.errors)
        }
    }
}

#[derive(serde::Deserialize)]
struct TopParams {
    by: Option<String>,
    window: Option<String>,
    limit: Option<String>,
    order: Option<String>,
}

#[derive(serde::Serialize)]
struct TopData {
    by: &'static str,
    window: String,
    order: &'static str,
    result: Vec<super::ledger::Group>,
}

/// Parses `window` (a Prometheus duration, default 1h) into milliseconds,
/// no longer than the ledger's retention.
fn window_ms(window: Option<&str>, retention_ms: i64) -> Result<(String, i64), ApiError> {
    let text = window.unwrap_or("1h");
    let d = crate::config::values::parse_duration(text)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"window\": {e}")))?;
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"window\": must be greater than 0",
        ));
    }
    Ok((text.to_string(), ms.min(retention_ms)))
}

async fn top(
    State(state): State<AppState>,
    Query(params): Query<TopParams>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let by_text = params.by.as_deref().unwrap_or("user");
    let by = GroupBy::parse(by_text).ok_or_else(|| {
        let names: Vec<&str> = GroupBy::ALL.iter().map(|g| g.column()).collect();
        ApiError::bad_data(format!(
            "invalid parameter \"by\": {by_text:?} is not one of {}",
            names.join(", ")
        ))
    })?;
    let order_text = params.order.as_deref().unwrap_or("cost");
    let order = OrderBy::parse(order_text).ok_or_else(|| {
        ApiError::bad_data(format!(
            "invalid parameter \"order\": {order_text:?} is not one of cost, requests, tokens"
        ))
    })?;
    let limit = match params.limit.as_deref() {
        None => 10,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": {text:?} is not a whole number from 1 to 1000"
                )))
            }
        },
    };
    let (window, ms) = window_ms(params.window.as_deref(), service.retention_ms())?;
    let since = now_millis() - ms;
    let order_name = match order {
        OrderBy::Cost => "cost",
        OrderBy::Requests => "requests",
        OrderBy::Tokens => "tokens",
    };
    let result = tokio::task::spawn_blocking(move || service.ledger().top(by, since, order, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(success(TopData {
        by: by.column(),
        window,
        order: order_name,
        result,
    })
    .into_response())
}

#[derive(serde::Deserialize)]
struct SummaryParams {
    window: Option<String>,
}

#[derive(serde::Serialize)]
struct SummaryData {
    window: String,
    #[serde(flatten)]
    totals: super::ledger::Totals,
    users: u64,
    orgs: u64,
    teams: u64,
    sessions: u64,
}

async fn summary(
    State(state): State<AppState>,
    Query(params): Query<SummaryParams>,
) -> Result<Response, ApiError> {
    let service = service(&state)?;
    let (window, ms) = window_ms(params.window.as_deref(), service.retention_ms())?;
    let since = now_millis() - ms;
    let (totals, [users, orgs, teams, sessions]) =
        tokio::task::spawn_blocking(move || service.ledger().summary(since))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(success(SummaryData {
        window,
        totals,
        users,
        orgs,
        teams,
        sessions,
    })
    .into_response())
}
