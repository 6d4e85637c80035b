//! `GET|POST /api/v1/query`, `/api/v1/query_range` and `/api/v1/format_query`:
//! PromQL over HTTP with Prometheus 2.42's parameters, validation messages,
//! result JSON (`web/api/v1/api.go`, `util/jsonutil`) and error statuses.
//!
//! This file translates HTTP to [`crate::promql::Engine`] calls and results
//! to JSON; it holds no query semantics. Evaluation reads the store, which
//! blocks, so it runs on a blocking thread.

use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::prometheus::{go_quote, parse_time, Params};
use super::{ApiError, AppState, ErrorType};
use crate::model::{now_millis, Labels, Timestamp};
use crate::promql::{self, Engine, EngineOptions, EvalError, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/format_query", get(format_query).post(format_query))
}

fn engine(state: &AppState) -> Engine {
    Engine::new(state.storage.clone(), EngineOptions::default())
}

async fn query(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let params = Params::from_request(request).await?;
    let t = match params.get("time") {
        "" => now_millis(),
        value => parse_time(value).map_err(|e| {
            ApiError::bad_data(format!(
                "invalid parameter \"time\": Invalid time value for 'time': {e}"
            ))
        })?,
    };
    let timeout = timeout_param(&params)?;
    let expr = promql::parse(params.get("query"))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    let engine = engine(&state);
    let value = tokio::task::spawn_blocking(move || engine.instant_query(&expr, t, timeout))
        .await
        .map_err(ApiError::internal)?
        .map_err(eval_error)?;
    Ok(json_response(success_body(&value)))
}

async fn query_range(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let params = Params::from_request(request).await?;
    let start = parse_time(params.get("start"))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?;
    let end = parse_time(params.get("end"))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step_ns = parse_duration_ns(params.get("step"))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if step_ns <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Go: end.Sub(start)/step, both in nanoseconds, integer division.
    let span_ns = i128::from(end - start) * 1_000_000;
    if span_ns / i128::from(step_ns) > i128::from(promql::MAX_POINTS_PER_SERIES) {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = timeout_param(&params)?;
    let expr = promql::parse(params.get("query")).map_err(ApiError::bad_data)?;
    let step_ms = (step_ns / 1_000_000).max(1);
    let engine = engine(&state);
    let value = tokio::task::spawn_blocking(move || {
        engine.range_query(&expr, start, end, step_ms, timeout)
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(eval_error)?;
    Ok(json_response(success_body(&value)))
}

async fn format_query(request: Request) -> Result<Response, ApiError> {
    let params = Params::from_request(request).await?;
    let expr = promql::parse(params.get("query"))
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    let mut body = String::from(r#"{"status":"success","data":"#);
    body.push_str(&json_string(&expr.prettify()));
    body.push('}');
    Ok(json_response(body))
}

fn timeout_param(params: &Params) -> Result<Option<Duration>, ApiError> {
    match params.get("timeout") {
        "" => Ok(None),
        value => {
            let ns = parse_duration_ns(value)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?;
            // A zero or negative timeout expires at once, as Go's context does.
            Ok(Some(Duration::from_nanos(u64::try_from(ns).unwrap_or(0))))
        }
    }
}

fn eval_error(e: EvalError) -> ApiError {
    match e {
        EvalError::Timeout => ApiError::new(ErrorType::Timeout, e.to_string()),
        EvalError::BadQuery(m) => ApiError::bad_data(m),
        EvalError::Storage(m) => ApiError::internal(m),
        other => ApiError::new(ErrorType::Execution, other.to_string()),
    }
}

/// Prometheus's `parseDuration`: float seconds, else a Prometheus duration
/// (`1h30m`, `15s`, `100ms`); in nanoseconds.
pub fn parse_duration_ns(s: &str) -> Result<i64, String> {
    if let Ok(seconds) = s.parse::<f64>() {
        if !s.contains(['i', 'I', 'n', 'N']) {
            let ns = seconds * 1e9;
            if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
                return Err(format!(
                    "cannot parse {} to a valid duration. It overflows int64",
                    go_quote(s)
                ));
            }
            return Ok(ns as i64);
        }
    }
    parse_prometheus_duration_ms(s)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or_else(|| format!("cannot parse {} to a valid duration", go_quote(s)))
}

/// `model.ParseDuration`: units y w d h m s ms, each at most once, in that order.
fn parse_prometheus_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" before "m": take the longest unit that matches here.
        let (i, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        rest = &rest[unit.len()..];
        next_unit = i + 1;
        total = total.checked_add(n.checked_mul(*ms)?)?;
    }
    Some(total)
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `{"status":"success","data":{"resultType":...,"result":...}}`.
pub fn success_body(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"{"status":"success","data":{"resultType":""#);
    out.push_str(value.result_type());
    out.push_str(r#"","result":"#);
    match value {
        Value::Scalar { t, v } => {
            // `promql.Scalar.MarshalJSON`: always `'f'` form, unlike samples.
            out.push('[');
            write_timestamp(&mut out, *t);
            out.push_str(",\"");
            out.push_str(&format_scalar_value(*v));
            out.push_str("\"]");
        }
        Value::String { t, v } => {
            out.push('[');
            write_timestamp(&mut out, *t);
            out.push(',');
            out.push_str(&json_string(v));
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, &s.labels);
                out.push_str(r#","values":["#);
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push_str("}}");
    out
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(&l.name));
        out.push(':');
        out.push_str(&json_string(&l.value));
    }
    out.push('}');
}

fn write_point(out: &mut String, t: Timestamp, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_sample_value(v));
    out.push_str("\"]");
}

/// `jsonutil.MarshalTimestamp`: seconds with up to three decimals, no trailing-zero trimming
/// beyond dropping a zero fraction.
fn write_timestamp(out: &mut String, t: Timestamp) {
    let (sign, abs) = if t < 0 {
        ("-", t.unsigned_abs())
    } else {
        ("", t as u64)
    };
    let _ = write!(out, "{sign}{}", abs / 1000);
    let fraction = abs % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// `jsonutil.MarshalValue`: Go's shortest `'f'` form, or `'e'` form below
/// 1e-6 and from 1e21 on; `NaN`, `+Inf`, `-Inf`.
pub fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        promql::go_exponent(v)
    } else {
        promql::shortest_decimal(v)
    }
}

/// `promql.Scalar.MarshalJSON`: `strconv.FormatFloat(v, 'f', -1, 64)`, so
/// Go's shortest digits in fixed notation at every magnitude (`1e-07` is
/// `0.0000001`); `NaN`, `+Inf`, `-Inf`.
pub fn format_scalar_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    promql::shortest_decimal(v)
}

/// A JSON string as Go's encoder writes it (HTML characters escaped).
fn json_string(s: &str) -> String {
    let encoded = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
    if !encoded.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return encoded;
    }
    encoded
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_timestamps_are_formatted_like_prometheus() {
        assert_eq!(format_sample_value(1e6), "1000000");
        assert_eq!(format_sample_value(1e21), "1e+21");
        assert_eq!(format_sample_value(1.5e-7), "1.5e-07");
        assert_eq!(format_sample_value(-0.5), "-0.5");
        assert_eq!(format_scalar_value(1e-7), "0.0000001");
        assert_eq!(format_scalar_value(3e21), "3000000000000000000000");
        assert_eq!(format_scalar_value(f64::INFINITY), "+Inf");
        // Go picks the 17-digit string closest to the binary value.
        assert_eq!(
            format_sample_value(3.3306045532226562),
            "3.3306045532226562"
        );
        assert_eq!(format_sample_value(f64::NEG_INFINITY), "-Inf");
        let mut s = String::new();
        write_timestamp(&mut s, 1_500);
        s.push(' ');
        write_timestamp(&mut s, 1_000);
        s.push(' ');
        write_timestamp(&mut s, -1_005);
        assert_eq!(s, "1.500 1 -1.005");
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration_ns("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration_ns("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("100ms"), Ok(100_000_000));
        assert_eq!(parse_duration_ns("1h5m"), Ok(3_900_000_000_000));
        assert!(parse_duration_ns("5s1m").is_err());
        assert!(parse_duration_ns("").is_err());
        assert!(parse_duration_ns("abc").is_err());
    }
}
