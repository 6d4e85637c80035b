//! `/api/v1/status/{config,flags,runtimeinfo,tsdb}` and
//! `/api/v1/query_exemplars`, in Prometheus 2.42's shapes.
//!
//! [`RuntimeStatus`] is what the daemon tells the API about itself (flags,
//! start time, the loaded config); the daemon updates it on every reload.
//! The TSDB statistics are computed from the store's public API on request.
//! Rules and alerts answer empty lists: the rule engine is not implemented
//! yet. Exemplars are not stored, so a valid exemplar query finds none.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::RwLock;
use promql_parser::parser::Expr;

use super::prometheus::{Params, MAX_TIME_MS, MIN_TIME_MS};
use super::{success, ApiError, AppState, Success};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        // GET only, as in Prometheus 2.42.
        .route("/api/v1/status/config", get(config))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/status/runtimeinfo", get(runtime_info))
        .route("/api/v1/status/tsdb", get(tsdb))
        .route("/api/v1/status/walreplay", get(wal_replay))
}

/// `GET /api/v1/status/walreplay`: Prometheus's `{min, max, current}` WAL
/// segment numbers of the replay at start (finished by the time the API
/// answers).
async fn wal_replay(State(state): State<AppState>) -> Json<Success<crate::storage::WalReplay>> {
    success(state.storage.wal_replay())
}

/// What the daemon reports about itself through the status endpoints.
pub struct RuntimeStatus {
    start_time: SystemTime,
    cwd: String,
    /// The command-line flags, by long name without dashes.
    flags: BTreeMap<String, String>,
    /// `storage.retention`, and `storage.retention_size` if set, as Prometheus words it.
    storage_retention: String,
    config: RwLock<ConfigState>,
}

struct ConfigState {
    /// The loaded config, re-emitted with secrets masked.
    yaml: String,
    reload_success: bool,
    last_config_time: SystemTime,
}

impl RuntimeStatus {
    /// Status of a daemon starting now with the config `text` loaded.
    pub fn new(
        flags: BTreeMap<String, String>,
        storage_retention: String,
        config_text: &str,
    ) -> RuntimeStatus {
        let now = SystemTime::now();
        RuntimeStatus {
            start_time: now,
            cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|e| format!("<error retrieving current working directory: {e}>")),
            flags,
            storage_retention,
            config: RwLock::new(ConfigState {
                yaml: crate::config::masked_yaml(config_text),
                reload_success: true,
                last_config_time: now,
            }),
        }
    }

    /// A reload succeeded with this config text.
    pub fn config_loaded(&self, config_text: &str) {
        let yaml = crate::config::masked_yaml(config_text);
        let mut config = self.config.write();
        config.yaml = yaml;
        config.reload_success = true;
        config.last_config_time = SystemTime::now();
    }

    /// A reload was refused; the previous config stays in force (and shown).
    pub fn config_refused(&self) {
        self.config.write().reload_success = false;
    }
}

/// Prometheus's `storageRetention`: `15d`, `512MiB`, or `15d or 512MiB`.
pub fn describe_retention(retention: std::time::Duration, size: Option<u64>) -> String {
    let mut out = String::new();
    if !retention.is_zero() {
        out.push_str(&crate::config::values::format_duration(retention));
    }
    if let Some(bytes) = size.filter(|b| *b > 0) {
        if !out.is_empty() {
            out.push_str(" or ");
        }
        out.push_str(&format_base2_bytes(bytes));
    }
    out
}

/// Go's `units.Base2Bytes.String()`: `512MiB`, `1GiB512MiB`, `100B`.
fn format_base2_bytes(mut bytes: u64) -> String {
    const UNITS: [(&str, u64); 7] = [
        ("EiB", 1 << 60),
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("B", 1),
    ];
    let mut out = String::new();
    for (suffix, size) in UNITS {
        if bytes >= size {
            out.push_str(&format!("{}{suffix}", bytes / size));
            bytes %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0B");
    }
    out
}

/// `GET|POST /api/v1/query_exemplars`: parameters checked as Prometheus
/// checks them (start, end, their order, the query); bellwether stores no
/// exemplars, so the answer is `[]`. A query without series selectors
/// answers 204 No Content, as Prometheus does.
async fn query_exemplars(request: Request) -> Result<Response, ApiError> {
    let params = Params::from_request(request).await?;
    let (start, end) = params.time_range()?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start timestamp",
        ));
    }
    let expr = crate::promql::parse(params.get("query")).map_err(ApiError::bad_data)?;
    if !has_selector(&expr) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(success(Vec::<()>::new()).into_response())
}

fn has_selector(expr: &Expr) -> bool {
    match expr {
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::Aggregate(a) => has_selector(&a.expr) || a.param.as_deref().is_some_and(has_selector),
        Expr::Unary(u) => has_selector(&u.expr),
        Expr::Binary(b) => has_selector(&b.lhs) || has_selector(&b.rhs),
        Expr::Paren(p) => has_selector(&p.expr),
        Expr::Subquery(s) => has_selector(&s.expr),
        Expr::Call(c) => c.args.args.iter().any(|a| has_selector(a)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// `GET /api/v1/status/config`: `{"yaml": "..."}`, secrets as `<secret>`.
/// Written by hand so that `<`, `>` and `&` are escaped as Go's JSON encoder
/// escapes them (`\u003csecret\u003e`), byte for byte like Prometheus.
async fn config(State(state): State<AppState>) -> Response {
    let yaml = state.status.config.read().yaml.clone();
    let quoted = serde_json::Value::String(yaml)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let body = format!(r#"{{"status":"success","data":{{"yaml":{quoted}}}}}"#);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// `GET /api/v1/status/flags`: the command-line flags as a string map.
async fn flags(State(state): State<AppState>) -> Json<Success<BTreeMap<String, String>>> {
    success(state.status.flags.clone())
}

/// Prometheus's `RuntimeInfo`, fields in its order. The Go runtime fields map
/// to their nearest tokio equivalents (see docs/api.md).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    reload_config_success: bool,
    last_config_time: String,
    corruption_count: i64,
    goroutine_count: usize,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOGC")]
    gogc: &'static str,
    #[serde(rename = "GODEBUG")]
    godebug: &'static str,
    storage_retention: String,
}

/// `GET /api/v1/status/runtimeinfo`.
async fn runtime_info(State(state): State<AppState>) -> Json<Success<RuntimeInfo>> {
    let status = &state.status;
    let (reload_success, last_config_time) = {
        let config = status.config.read();
        (config.reload_success, config.last_config_time)
    };
    let (tasks, workers) = match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            let metrics = handle.metrics();
            (metrics.num_alive_tasks(), metrics.num_workers())
        }
        Err(_) => (0, 0),
    };
    success(RuntimeInfo {
        start_time: format_time(status.start_time),
        cwd: status.cwd.clone(),
        reload_config_success: reload_success,
        // Prometheus keeps this in whole seconds.
        last_config_time: format_time(truncate_to_seconds(last_config_time)),
        corruption_count: 0,
        goroutine_count: tasks,
        gomaxprocs: workers,
        gogc: "",
        godebug: "",
        storage_retention: status.storage_retention.clone(),
    })
}

/// Prometheus's `TSDBStatus`, fields in its order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TsdbStatus {
    head_stats: HeadStatsJson,
    series_count_by_metric_name: Vec<Stat>,
    label_value_count_by_label_name: Vec<Stat>,
    memory_in_bytes_by_label_name: Vec<Stat>,
    series_count_by_label_value_pair: Vec<Stat>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HeadStatsJson {
    num_series: usize,
    num_label_pairs: usize,
    chunk_count: usize,
    min_time: i64,
    max_time: i64,
}

#[derive(serde::Serialize, Debug, PartialEq, Eq)]
struct Stat {
    name: String,
    value: u64,
}

/// How many entries each cardinality list holds, as in Prometheus.
const TOP: usize = 10;

/// `GET /api/v1/status/tsdb`: head statistics and the top-10 cardinality
/// lists, computed from the label sets of all series that have samples.
async fn tsdb(State(state): State<AppState>) -> Result<Json<Success<TsdbStatus>>, ApiError> {
    let storage = state.storage.clone();
    let status = tokio::task::spawn_blocking(move || -> Result<TsdbStatus, ApiError> {
        let head = storage.head_stats();
        let series = storage.querier(MIN_TIME_MS, MAX_TIME_MS).series(&[])?;
        let cardinality = Cardinality::of(series.iter());
        Ok(TsdbStatus {
            head_stats: HeadStatsJson {
                num_series: head.num_series,
                num_label_pairs: cardinality.num_label_pairs,
                chunk_count: head.chunk_count,
                min_time: head.min_time,
                max_time: head.max_time,
            },
            series_count_by_metric_name: cardinality.series_by_metric_name,
            label_value_count_by_label_name: cardinality.values_by_label_name,
            memory_in_bytes_by_label_name: cardinality.bytes_by_label_name,
            series_count_by_label_value_pair: cardinality.series_by_pair,
        })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(success(status))
}

/// Prometheus's postings statistics over a set of series.
#[derive(Debug, PartialEq, Eq)]
struct Cardinality {
    num_label_pairs: usize,
    series_by_metric_name: Vec<Stat>,
    values_by_label_name: Vec<Stat>,
    /// Sum of the byte lengths of each label's distinct values.
    bytes_by_label_name: Vec<Stat>,
    series_by_pair: Vec<Stat>,
}

impl Cardinality {
    fn of<'a>(series: impl Iterator<Item = &'a crate::model::Labels>) -> Cardinality {
        // label name → value → series count
        let mut postings: HashMap<&str, HashMap<&str, u64>> = HashMap::new();
        for labels in series {
            for label in labels.iter() {
                *postings
                    .entry(label.name.as_str())
                    .or_default()
                    .entry(label.value.as_str())
                    .or_default() += 1;
            }
        }
        let mut by_metric = Vec::new();
        let mut by_name = Vec::new();
        let mut bytes = Vec::new();
        let mut by_pair = Vec::new();
        let mut num_label_pairs = 0;
        for (name, values) in &postings {
            num_label_pairs += values.len();
            let mut size = 0u64;
            for (value, count) in values {
                if *name == crate::model::METRIC_NAME {
                    by_metric.push(stat(value.to_string(), *count));
                }
                by_pair.push(stat(format!("{name}={value}"), *count));
                size += value.len() as u64;
            }
            bytes.push(stat(name.to_string(), size));
            by_name.push(stat(name.to_string(), values.len() as u64));
        }
        Cardinality {
            num_label_pairs,
            series_by_metric_name: top(by_metric),
            values_by_label_name: top(by_name),
            bytes_by_label_name: top(bytes),
            series_by_pair: top(by_pair),
        }
    }
}

fn stat(name: String, value: u64) -> Stat {
    Stat { name, value }
}

/// The `TOP` largest, largest first; ties by name so answers are stable
/// (Prometheus leaves ties in map order).
fn top(mut stats: Vec<Stat>) -> Vec<Stat> {
    stats.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
    stats.truncate(TOP);
    stats
}

fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// Unix milliseconds as Go marshals a `time.Time` (RFC 3339, UTC); times
/// before 1970 as the epoch.
pub fn format_millis(t: crate::model::Timestamp) -> String {
    format_time(UNIX_EPOCH + std::time::Duration::from_millis(t.max(0) as u64))
}

/// A time as Go's `time.Time` marshals to JSON in UTC (RFC 3339 with
/// nanoseconds, trailing zeros dropped): `2023-11-14T22:13:20.5Z`.
/// Times before 1970 are shown as the epoch.
pub fn format_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let nanos = since.subsec_nanos();
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::model::civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use std::time::Duration;

    #[test]
    fn times_format_like_go() {
        let at = |ms: u64| format_time(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000_500), "2023-11-14T22:13:20.5Z");
        assert_eq!(at(1_709_164_800_123), "2024-02-29T00:00:00.123Z");
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_nanos(1_795_312_435_217_111_363)),
            "2026-11-22T01:53:55.217111363Z"
        );
    }

    #[test]
    fn retention_is_described_like_prometheus() {
        let day = Duration::from_secs(86_400);
        assert_eq!(describe_retention(15 * day, None), "15d");
        assert_eq!(
            describe_retention(15 * day, Some(512 << 20)),
            "15d or 512MiB"
        );
        assert_eq!(
            describe_retention(Duration::ZERO, Some((1 << 30) + (512 << 20))),
            "1GiB512MiB"
        );
    }

    #[test]
    fn cardinality_counts_like_prometheus_postings_stats() {
        let series = [
            Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a")]),
            Labels::new([("__name__", "up"), ("job", "prom"), ("instance", "b")]),
            Labels::new([("__name__", "cpu"), ("job", "node"), ("mode", "idle")]),
        ];
        let c = Cardinality::of(series.iter());
        let stats = |pairs: &[(&str, u64)]| -> Vec<Stat> {
            pairs.iter().map(|(n, v)| stat(n.to_string(), *v)).collect()
        };
        // __name__={up,cpu} job={node,prom} instance={a,b} mode={idle}
        assert_eq!(c.num_label_pairs, 7);
        assert_eq!(c.series_by_metric_name, stats(&[("up", 2), ("cpu", 1)]));
        assert_eq!(
            c.values_by_label_name,
            stats(&[("__name__", 2), ("instance", 2), ("job", 2), ("mode", 1)])
        );
        assert_eq!(
            c.bytes_by_label_name,
            stats(&[("job", 8), ("__name__", 5), ("mode", 4), ("instance", 2)])
        );
        assert_eq!(
            c.series_by_pair,
            stats(&[
                ("__name__=up", 2),
                ("job=node", 2),
                ("__name__=cpu", 1),
                ("instance=a", 1),
                ("instance=b", 1),
                ("job=prom", 1),
                ("mode=idle", 1),
            ])
        );
    }
}
