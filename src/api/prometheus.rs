//! The Prometheus HTTP API v1: metadata endpoints over the store
//! (`series`, `labels`, `label/<name>/values`) and `status/buildinfo`.
//!
//! Parameters, defaults, JSON shapes, status codes and error texts follow
//! Prometheus 2.42's `web/api/v1/api.go`, so Grafana and other clients see no
//! difference. Handlers translate HTTP to `Querier` calls and nothing else.

use crate::model::{days_from_civil, days_in_month};
use std::collections::BTreeSet;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, Method};
use axum::routing::get;
use axum::{Form, Json, Router};
use serde_json::{Map, Value};

use super::{success, ApiError, AppState, Success};
use crate::model::{is_valid_label_name, Labels, Matcher, Timestamp};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        // GET only, as in Prometheus 2.42.
        .route("/api/v1/label/{name}/values", get(label_values))
}

async fn buildinfo() -> Json<Success<BuildInfo>> {
    success(BuildInfo {
        version: crate::VERSION,
        revision: option_env!("BELLWETHER_GIT_REVISION").unwrap_or("unknown"),
        branch: "",
        build_user: "",
        build_date: "",
        go_version: "",
    })
}

/// Prometheus's buildinfo fields, in its order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildInfo {
    version: &'static str,
    revision: &'static str,
    branch: &'static str,
    build_user: &'static str,
    build_date: &'static str,
    go_version: &'static str,
}

/// `GET|POST /api/v1/series`: label sets of the series matching any `match[]`
/// with samples in `[start, end]`, deduplicated and sorted.
async fn series(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Success<Vec<Value>>>, ApiError> {
    let params = Params::from_request(request).await?;
    let (matcher_sets, start, end) = params.required_matcher_sets()?;

    let querier = state.storage.querier(start, end);
    let mut found: BTreeSet<Labels> = BTreeSet::new();
    for matchers in &matcher_sets {
        found.extend(querier.series(matchers)?);
    }
    let data: Vec<Value> = found.iter().map(labels_json).collect();
    Ok(success(data))
}

/// `GET|POST /api/v1/labels`: sorted label names, of all series or of those
/// matching any `match[]`.
async fn label_names(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Success<BTreeSet<String>>>, ApiError> {
    let params = Params::from_request(request).await?;
    let (start, end) = params.time_range()?;
    let matcher_sets = parse_matcher_sets(&params.all("match[]")).map_err(ApiError::bad_data)?;

    let querier = state.storage.querier(start, end);
    let names: BTreeSet<String> = if matcher_sets.is_empty() {
        querier.label_names(&[])?.into_iter().collect()
    } else {
        let mut names = BTreeSet::new();
        for matchers in &matcher_sets {
            names.extend(querier.label_names(matchers)?);
        }
        names
    };
    Ok(success(names))
}

/// `GET /api/v1/label/<name>/values`: sorted values of one label, of all
/// series or of those matching any `match[]`.
async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Json<Success<BTreeSet<String>>>, ApiError> {
    if !is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!(
            "invalid label name: {}",
            go_quote(&name)
        )));
    }
    let params = Params::from_request(request).await?;
    let (start, end) = params.time_range()?;
    let matcher_sets = parse_matcher_sets(&params.all("match[]")).map_err(ApiError::bad_data)?;

    let querier = state.storage.querier(start, end);
    let values: BTreeSet<String> = if matcher_sets.is_empty() {
        querier.label_values(&name, &[])?.into_iter().collect()
    } else {
        let mut values = BTreeSet::new();
        for matchers in &matcher_sets {
            values.extend(querier.label_values(&name, matchers)?);
        }
        values
    };
    Ok(success(values))
}

/// A series' labels as Prometheus writes them: an object of name → value.
fn labels_json(labels: &Labels) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .map(|l| (l.name.clone(), Value::String(l.value.clone())))
        .collect();
    Value::Object(map)
}

/// Request parameters the way Go's `r.Form` holds them: for a form-encoded
/// POST the body's values first, then the URL query's.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub async fn from_request(request: Request) -> Result<Params, ApiError> {
        let mut pairs = Vec::new();
        let query = Query::<Vec<(String, String)>>::try_from_uri(request.uri())
            .map_err(|e| {
                ApiError::bad_data(format!("error parsing form values: {}", e.body_text()))
            })?
            .0;
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if request.method() == Method::POST && is_form {
            let Form(body) = Form::<Vec<(String, String)>>::from_request(request, &())
                .await
                .map_err(|e| {
                    ApiError::bad_data(format!("error parsing form values: {}", e.body_text()))
                })?;
            pairs.extend(body);
        }
        pairs.extend(query);
        Ok(Params { pairs })
    }

    /// The first value of `name`, like Go's `r.FormValue` (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The required `match[]` selectors and the time range, as `/api/v1/series`
    /// reads them (Prometheus's wording for each error).
    pub fn required_matcher_sets(
        &self,
    ) -> Result<(Vec<Vec<Matcher>>, Timestamp, Timestamp), ApiError> {
        let selectors = self.all("match[]");
        if selectors.is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let (start, end) = self.time_range()?;
        let matcher_sets = parse_matcher_sets(&selectors)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
        Ok((matcher_sets, start, end))
    }

    /// `start` and `end` in milliseconds, defaulting to Prometheus's
    /// `minTime`/`maxTime`. Like Prometheus 2.42's metadata endpoints, an
    /// `end` before `start` is not an error: it selects nothing.
    pub fn time_range(&self) -> Result<(Timestamp, Timestamp), ApiError> {
        Ok((
            self.time("start", MIN_TIME_MS)?,
            self.time("end", MAX_TIME_MS)?,
        ))
    }

    fn time(&self, name: &str, default: Timestamp) -> Result<Timestamp, ApiError> {
        let value = self.get(name);
        if value.is_empty() {
            return Ok(default);
        }
        parse_time(value).map_err(|e| {
            ApiError::bad_data(format!(
                "invalid parameter {}: Invalid time value for '{name}': {e}",
                go_quote(name)
            ))
        })
    }
}

/// Prometheus's `minTime` (`time.Unix(math.MinInt64/1000+62135596801, 0)`) in
/// milliseconds: the default `start`.
pub const MIN_TIME_MS: Timestamp = -9_223_309_901_257_974_000;
/// Prometheus's `maxTime` (`time.Unix(math.MaxInt64/1000-62135596801, 999999999)`)
/// in milliseconds: the default `end`.
pub const MAX_TIME_MS: Timestamp = 9_223_309_901_257_974_999;
/// `minTime` and `maxTime` formatted as RFC 3339, as clients built on
/// client_golang (and Grafana) send them; Go's parser cannot read these years.
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a time parameter as Prometheus does: Unix seconds with an optional
/// fraction (rounded to milliseconds), else RFC 3339 with optional fractional
/// seconds and a `Z` or `±hh:mm` offset, else the formatted `minTime`/`maxTime`.
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<f64>() {
        if t.is_finite() {
            return Ok(unix_seconds_to_millis(t));
        }
    }
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    match s {
        MIN_TIME_FORMATTED => Ok(MIN_TIME_MS),
        MAX_TIME_FORMATTED => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {} to a valid timestamp", go_quote(s))),
    }
}

/// Go's `time.Unix(int64(s), int64(round(frac*1000)/1000*1e9))` followed by
/// `timestamp.FromTime`, step by step so rounding agrees with Prometheus.
fn unix_seconds_to_millis(t: f64) -> Timestamp {
    let secs = t.trunc();
    let frac = ((t - secs) * 1000.0).round() / 1000.0;
    let nanos = (frac * 1e9) as i64;
    (secs as i64)
        .saturating_mul(1000)
        .saturating_add(nanos.div_euclid(1_000_000))
}

/// RFC 3339 as Go's `time.Parse(time.RFC3339Nano, s)` reads it: a four-digit
/// year, `T`, optional fraction (`.` or `,`, digits past nine ignored), and `Z`
/// or a `±hh:mm` offset. Returns milliseconds since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let expect = |at: usize, c: u8| b.get(at) == Some(&c);
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(at, c)| expect(at, c)) {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if matches!(b.get(at), Some(b'.') | Some(b',')) {
        let start = at + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        for (i, &c) in b[start..end].iter().take(9).enumerate() {
            nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
        }
        at = end;
    }
    let offset_seconds = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && expect(at + 3, b':') => {
            let hours = digits(at + 1, 2)?;
            let minutes = digits(at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    Some(seconds * 1000 + nanos / 1_000_000)
}

/// Parses `match[]` selectors into matcher sets, as Prometheus's
/// `parseMatchersParam`: each must be a plain series selector (`up`,
/// `{job="x"}`, `up{mode!="idle"}`), and each must have a matcher that does
/// not match the empty string, so a typo cannot select every series.
pub fn parse_matcher_sets(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::with_capacity(selectors.len());
    for selector in selectors {
        sets.push(parse_selector(selector)?);
    }
    for set in &sets {
        if set.iter().all(Matcher::matches_empty) {
            return Err("match[] must contain at least one non-empty matcher".to_string());
        }
    }
    Ok(sets)
}

/// What promql-parser says about a selector whose matchers all match "".
/// Prometheus's selector parser accepts those and `parseMatchersParam` refuses
/// them after parsing every selector, with its own wording.
const PARSER_EMPTY_MATCHERS: &str = "vector selector must contain at least one non-empty matcher";

/// Refuses, before promql-parser sees it, any text with a duration in it: a
/// `[range]` or `[range:step]`, or an `offset` modifier. A series selector has
/// neither, and promql-parser 0.11 panics (`Duration::from_secs_f64`) on a
/// duration written as a number too large, infinite or NaN (`up[1e400]`,
/// `up offset Inf`). Found by the `api_params` fuzz target.
fn refuse_durations(selector: &str) -> Result<(), String> {
    let bytes = selector.as_bytes();
    let mut quote: Option<u8> = None;
    let mut braces = 0usize;
    let mut tokens = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' && q != b'`' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' | b'\'' | b'`' => quote = Some(b),
            b'{' => braces += 1,
            b'}' => {
                braces = braces.saturating_sub(1);
                if braces == 0 {
                    tokens += 1;
                }
            }
            b'[' => {
                return Err(format!(
                    "parse error: {selector:?} is not a series selector: a range or subquery `[...]` is not allowed in match[]"
                ))
            }
            _ if b.is_ascii_alphanumeric() || b == b'_' || b == b':' => {
                let start = i;
                while bytes
                    .get(i + 1)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
                {
                    i += 1;
                }
                if braces == 0 && tokens > 0 && bytes[start..=i].eq_ignore_ascii_case(b"offset") {
                    return Err(format!(
                        "parse error: {selector:?}: a series selector in match[] takes no offset or @ modifier"
                    ));
                }
                if braces == 0 {
                    tokens += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn parse_selector(selector: &str) -> Result<Vec<Matcher>, String> {
    use promql_parser::parser::Expr;

    refuse_durations(selector)?;
    let expr = match crate::promql::parse_unchecked(selector) {
        Ok(expr) => expr,
        // Checked by the caller with Prometheus's wording, once all parsed.
        Err(e) if e.contains(PARSER_EMPTY_MATCHERS) => return Ok(Vec::new()),
        Err(e) => return Err(format!("parse error: {e}")),
    };
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "parse error: {selector:?} is not a series selector; expected a metric name and/or label matchers such as up or {{job=\"node\"}}"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!(
            "parse error: {selector:?}: a series selector in match[] takes no offset or @ modifier"
        ));
    }
    // One conversion from the parser's matchers to the store's, shared with
    // the query engine.
    crate::promql::selector_matchers(&vs).map_err(|e| format!("parse error: {selector:?}: {e}"))
}

/// Quotes a string like Go's `%q`, so error texts read as Prometheus's do.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_round_to_milliseconds_like_prometheus() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1.5"), Ok(1500));
        assert_eq!(parse_time("1.1234"), Ok(1123));
        assert_eq!(parse_time("1.9999"), Ok(2000));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("1e3"), Ok(1_000_000));
        assert_eq!(parse_time("1700000000.123"), Ok(1_700_000_000_123));
    }

    #[test]
    fn rfc3339_times_with_fractions_and_offsets() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.5+01:00"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(
            parse_time("2023-11-14T21:13:20-01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(parse_time("1969-12-31T23:59:59.9Z"), Ok(-100));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn prometheus_min_and_max_time_are_accepted_formatted() {
        assert_eq!(parse_time(MIN_TIME_FORMATTED), Ok(MIN_TIME_MS));
        assert_eq!(parse_time(MAX_TIME_FORMATTED), Ok(MAX_TIME_MS));
    }

    #[test]
    fn bad_times_are_refused_with_prometheus_wording() {
        for bad in [
            "abc",
            "2023-02-30T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-11-14T24:00:00Z",
            "NaN",
            "Inf",
            "",
        ] {
            assert_eq!(
                parse_time(bad),
                Err(format!(
                    "cannot parse {} to a valid timestamp",
                    go_quote(bad)
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn selectors_become_matchers() {
        let sets = parse_matcher_sets(&["up", r#"{__name__=~"node_.*",mode!="idle"}"#]).unwrap();
        assert_eq!(sets[0].len(), 1);
        assert_eq!(sets[0][0].to_string(), r#"__name__="up""#);
        assert_eq!(sets[1].len(), 2);
        assert!(sets[1][0].matches("node_cpu"));
        assert!(!sets[1][0].matches("xnode_cpu"));
    }

    #[test]
    fn all_empty_matchers_are_refused_after_parsing_all() {
        for selector in ["{}", r#"{job=""}"#, r#"{job=~".*"}"#] {
            assert_eq!(
                parse_matcher_sets(&["up", selector]).unwrap_err(),
                "match[] must contain at least one non-empty matcher",
                "{selector}"
            );
        }
        // A parse error in a later selector wins, as in Prometheus.
        let err = parse_matcher_sets(&["{}", "up{"]).unwrap_err();
        assert!(err.starts_with("parse error"), "{err}");
    }

    #[test]
    fn non_selectors_are_refused() {
        for bad in ["sum(up)", "up[5m]", "up offset 5m", "1", "up{"] {
            assert!(parse_matcher_sets(&[bad]).is_err(), "{bad}");
        }
    }

    /// promql-parser 0.11 panics converting a numeric duration that is too
    /// large, infinite or NaN; such selectors must be refused, not reach it.
    /// The first input is the fuzzer's crash, shortened.
    #[test]
    fn regression_fuzz_numeric_duration_overflow() {
        let huge = format!("2[4][4]+72[4{}]", "1".repeat(120));
        for bad in [
            huge.as_str(),
            "up[1e400]",
            "up[Inf]",
            "up[NaN]",
            "up[5m:1e400]",
            "up offset 1e400",
            "up OFFSET Inf",
            r#"{job="a"} offset NaN"#,
            "sum(up offset 1e300)",
        ] {
            let err = parse_matcher_sets(&[bad]).expect_err(bad);
            assert!(err.starts_with("parse error"), "{bad}: {err}");
        }
        // Brackets and the word offset inside label values, and a label or
        // metric named offset, are still selectors.
        let sets = parse_matcher_sets(&[
            r#"up{path="/a[1]",q='offset 5m',r=`x[`}"#,
            r#"{offset="1"}"#,
            "offset",
        ])
        .expect("valid selectors");
        assert_eq!(sets.len(), 3);
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }
}

/// The endpoints driven through `router(state).oneshot(..)`, answers compared
/// byte for byte with what Prometheus 2.42 answers for the same data (the
/// error texts were checked against a running Prometheus 2.42).
#[cfg(test)]
mod http_tests {
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    use crate::model::Labels;
    use crate::storage::{Storage, StorageOptions};

    struct Fixture {
        _dir: tempfile::TempDir,
        storage: Storage,
    }

    /// Three series: two `up` targets and one `node_cpu_seconds_total`, samples at 10s and 20s.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(StorageOptions::for_epoch_fixtures(dir.path()))
            .expect("opening the store");
        let mut app = storage.appender();
        for (labels, t) in [
            (
                Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a:9100")]),
                10_000,
            ),
            (
                Labels::new([("__name__", "up"), ("job", "prom"), ("instance", "b:9090")]),
                20_000,
            ),
            (
                Labels::new([
                    ("__name__", "node_cpu_seconds_total"),
                    ("job", "node"),
                    ("mode", "idle"),
                ]),
                20_000,
            ),
        ] {
            app.add(labels, t, 1.0);
        }
        app.commit().expect("commit");
        Fixture { _dir: dir, storage }
    }

    async fn send(fixture: &Fixture, request: Request<Body>) -> (StatusCode, String) {
        let router = crate::api::router(crate::api::test_state(fixture.storage.clone()));
        let response = router.oneshot(request).await.expect("router answers");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_string());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("reading the body");
        let body = String::from_utf8(body.to_vec()).expect("UTF-8 body");
        if status != StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(content_type.as_deref(), Some("application/json"), "{body}");
        }
        (status, body)
    }

    async fn get(fixture: &Fixture, uri: &str) -> (StatusCode, String) {
        let request = Request::get(uri).body(Body::empty()).expect("request");
        send(fixture, request).await
    }

    async fn post_form(fixture: &Fixture, uri: &str, form: &str) -> (StatusCode, String) {
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .expect("request");
        send(fixture, request).await
    }

    const BAD_DATA: StatusCode = StatusCode::BAD_REQUEST;

    fn bad_data(message: &str) -> String {
        format!(
            r#"{{"status":"error","errorType":"bad_data","error":{}}}"#,
            serde_json::Value::String(message.to_string())
        )
    }

    #[tokio::test]
    async fn series_union_is_deduplicated_and_sorted() {
        let f = fixture();
        let (status, body) = get(
            &f,
            "/api/v1/series?match[]=up&match[]=%7Bjob%3D%22node%22%7D&match[]=up%7Bjob%3D%22node%22%7D",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            concat!(
                r#"{"status":"success","data":["#,
                r#"{"__name__":"node_cpu_seconds_total","job":"node","mode":"idle"},"#,
                r#"{"__name__":"up","instance":"a:9100","job":"node"},"#,
                r#"{"__name__":"up","instance":"b:9090","job":"prom"}]}"#
            )
        );
    }

    #[tokio::test]
    async fn series_regex_and_negative_matchers() {
        let f = fixture();
        let (status, body) = get(
            &f,
            "/api/v1/series?match[]=%7B__name__%3D~%22node_.*%22%2Cmode!%3D%22user%22%7D",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":[{"__name__":"node_cpu_seconds_total","job":"node","mode":"idle"}]}"#
        );
    }

    #[tokio::test]
    async fn series_time_range_and_empty_results() {
        let f = fixture();
        // Only the `up` of job node has a sample at or before 15s.
        let (_, body) = get(&f, "/api/v1/series?match[]=up&end=15").await;
        assert_eq!(
            body,
            r#"{"status":"success","data":[{"__name__":"up","instance":"a:9100","job":"node"}]}"#
        );
        let (_, body) = get(
            &f,
            "/api/v1/series?match[]=up&start=1970-01-01T00:00:15Z&end=1970-01-01T01:00:20%2B01:00",
        )
        .await;
        assert_eq!(
            body,
            r#"{"status":"success","data":[{"__name__":"up","instance":"b:9090","job":"prom"}]}"#
        );
        // end before start selects nothing, as in Prometheus 2.42 (no error).
        let (status, body) = get(&f, "/api/v1/series?match[]=up&start=30&end=5").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"status":"success","data":[]}"#);
        let (_, body) = get(&f, "/api/v1/series?match[]=nothing_here").await;
        assert_eq!(body, r#"{"status":"success","data":[]}"#);
        // Grafana's formatted minTime/maxTime.
        let (status, body) = get(
            &f,
            "/api/v1/series?match[]=up&start=-292273086-05-16T16:47:06Z&end=292277025-08-18T07:12:54.999999999Z",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("b:9090") && body.contains("a:9100"), "{body}");
    }

    #[tokio::test]
    async fn series_by_form_post() {
        let f = fixture();
        let (status, body) = post_form(
            &f,
            "/api/v1/series",
            "match%5B%5D=%7Bjob%3D%22prom%22%7D&start=0&end=100",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":[{"__name__":"up","instance":"b:9090","job":"prom"}]}"#
        );
    }

    #[tokio::test]
    async fn series_errors_are_prometheus_errors() {
        let f = fixture();
        let cases = [
            ("/api/v1/series", "no match[] parameter provided".to_string()),
            (
                "/api/v1/series?match[]=up&start=abc",
                r#"invalid parameter "start": Invalid time value for 'start': cannot parse "abc" to a valid timestamp"#.to_string(),
            ),
            (
                "/api/v1/series?match[]=up&end=2023-11-14T22:13:20.5",
                r#"invalid parameter "end": Invalid time value for 'end': cannot parse "2023-11-14T22:13:20.5" to a valid timestamp"#.to_string(),
            ),
            (
                "/api/v1/series?match[]=%7B%7D",
                r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#.to_string(),
            ),
            (
                "/api/v1/series?match[]=up&match[]=%7Bjob%3D~%22.*%22%7D",
                r#"invalid parameter "match[]": match[] must contain at least one non-empty matcher"#.to_string(),
            ),
        ];
        for (uri, message) in cases {
            let (status, body) = get(&f, uri).await;
            assert_eq!(status, BAD_DATA, "{uri}");
            assert_eq!(body, bad_data(&message), "{uri}");
        }
        // Parse errors: same shape and prefix; the parser's own wording differs from Go's.
        let (status, body) = get(&f, "/api/v1/series?match[]=sum(up)").await;
        assert_eq!(status, BAD_DATA);
        assert!(
            body.starts_with(r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"match[]\": parse error: "#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn label_names_all_and_matched() {
        let f = fixture();
        let (status, body) = get(&f, "/api/v1/labels").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":["__name__","instance","job","mode"]}"#
        );
        let (_, body) = get(&f, "/api/v1/labels?match[]=up").await;
        assert_eq!(
            body,
            r#"{"status":"success","data":["__name__","instance","job"]}"#
        );
        let (_, body) = post_form(&f, "/api/v1/labels", "match[]=nothing").await;
        assert_eq!(body, r#"{"status":"success","data":[]}"#);
        // No prefix on labels' match[] errors, as in Prometheus.
        let (status, body) = get(&f, "/api/v1/labels?match[]=%7B%7D").await;
        assert_eq!(status, BAD_DATA);
        assert_eq!(
            body,
            bad_data("match[] must contain at least one non-empty matcher")
        );
        let (_, body) = get(&f, "/api/v1/labels?start=x").await;
        assert_eq!(
            body,
            bad_data(
                r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#
            )
        );
    }

    #[tokio::test]
    async fn label_values_all_and_matched() {
        let f = fixture();
        let (status, body) = get(&f, "/api/v1/label/__name__/values").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":["node_cpu_seconds_total","up"]}"#
        );
        let (_, body) = get(
            &f,
            "/api/v1/label/instance/values?match[]=up%7Bjob%3D%22prom%22%7D&match[]=up%7Bjob%3D%22node%22%7D",
        )
        .await;
        assert_eq!(body, r#"{"status":"success","data":["a:9100","b:9090"]}"#);
        let (_, body) = get(&f, "/api/v1/label/nonexistent/values").await;
        assert_eq!(body, r#"{"status":"success","data":[]}"#);
        let (status, body) = get(&f, "/api/v1/label/1a/values").await;
        assert_eq!(status, BAD_DATA);
        assert_eq!(body, bad_data(r#"invalid label name: "1a""#));
        let (_, body) = get(&f, "/api/v1/label/job/values?end=x").await;
        assert_eq!(
            body,
            bad_data(
                r#"invalid parameter "end": Invalid time value for 'end': cannot parse "x" to a valid timestamp"#
            )
        );
    }

    #[tokio::test]
    async fn label_values_is_get_only_like_prometheus() {
        let f = fixture();
        let request = Request::post("/api/v1/label/job/values")
            .body(Body::empty())
            .expect("request");
        let (status, _) = send(&f, request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
