//! The alerts part of Alertmanager 0.25's API v2 (api/v2/api.go,
//! openapi.yaml): `GET|POST /api/v2/alerts` and `GET /api/v2/alerts/groups`,
//! with its JSON (field order, `2006-01-02T15:04:05.000Z` times), its
//! parameters and its error answers. Handlers translate HTTP to calls on
//! the [`Router`](crate::notify::Router); they decide nothing themselves.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::Value;

use super::prometheus::Params;
use super::AppState;
use crate::model::{Labels, Timestamp};
use crate::notify::dispatch::Active;
use crate::notify::matchers::{parse_matcher, MatchType, Matcher};
use crate::notify::types::{Alert, AlertStatus, Fingerprint};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
}

/// Alertmanager's `GettableAlert`, fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert {
    annotations: BTreeMap<String, String>,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<ReceiverName>,
    starts_at: String,
    status: Status,
    updated_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    generator_url: String,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    inhibited_by: Vec<String>,
    silenced_by: Vec<String>,
    state: &'static str,
}

#[derive(Serialize)]
struct ReceiverName {
    name: String,
}

#[derive(Serialize)]
struct AlertGroup {
    alerts: Vec<GettableAlert>,
    labels: BTreeMap<String, String>,
    receiver: ReceiverName,
}

fn label_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn gettable(alert: &Alert, status: AlertStatus, receivers: Vec<String>) -> GettableAlert {
    GettableAlert {
        annotations: alert.annotations.clone(),
        ends_at: strfmt_time(alert.ends_at),
        fingerprint: alert.fingerprint().to_string(),
        receivers: receivers
            .into_iter()
            .map(|name| ReceiverName { name })
            .collect(),
        starts_at: strfmt_time(alert.starts_at),
        status: Status {
            inhibited_by: status.inhibited_by,
            silenced_by: status.silenced_by,
            state: status.state.as_str(),
        },
        updated_at: strfmt_time(alert.updated_at),
        generator_url: alert.generator_url.clone(),
        labels: label_map(&alert.labels),
    }
}

/// A time as go-openapi's `strfmt.DateTime` prints it
/// (`2006-01-02T15:04:05.000Z07:00`), in UTC; 0 is Go's zero time.
pub fn strfmt_time(ms: Timestamp) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00.000Z".to_string();
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::model::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// A JSON answer with the trailing newline of Go's encoder.
fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    body.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// go-swagger's error body for parameters it refuses itself
/// (`{"code":…,"message":…}`, no newline).
fn swagger_error(status: StatusCode, code: u16, message: String) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error the handler itself gives: the message as a JSON string.
fn handler_error(status: StatusCode, message: String) -> Response {
    json_response(status, &message)
}

/// A refused GET parameter (the handler's answer: a JSON string).
struct ParamError(String);

impl IntoResponse for ParamError {
    fn into_response(self) -> Response {
        handler_error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// The filter parameters common to both GET endpoints.
struct Filter {
    matchers: Vec<Matcher>,
    receiver: Option<regex::Regex>,
    silenced: bool,
    inhibited: bool,
    active: bool,
}

/// go-openapi's `swag.ConvertBool` as go-swagger applies it: an absent or
/// empty parameter takes the default (true); a value is true when it is
/// one of swag's true words, and false otherwise (never an error).
fn parse_bool(name: &str, params: &Params) -> bool {
    match params.all(name).first() {
        None | Some(&"") => true,
        Some(v) => matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "ok" | "y" | "on" | "selected" | "checked" | "t" | "enabled"
        ),
    }
}

fn parse_filter(params: &Params) -> Result<Filter, ParamError> {
    let silenced = parse_bool("silenced", params);
    let inhibited = parse_bool("inhibited", params);
    let active = parse_bool("active", params);
    // `unprocessed` (GET /api/v2/alerts) is accepted and, as in
    // Alertmanager 0.25, has no effect.
    let mut matchers = Vec::new();
    for text in params.all("filter") {
        matchers.push(parse_matcher(text).map_err(ParamError)?);
    }
    let receiver = match params.all("receiver").first() {
        Some(re) => Some(
            regex::Regex::new(&format!("^(?:{re})$"))
                .map_err(|e| ParamError(format!("failed to parse receiver param: {e}")))?,
        ),
        None => None,
    };
    Ok(Filter {
        matchers,
        receiver,
        silenced,
        inhibited,
        active,
    })
}

/// Alertmanager's `matchFilterLabels`: a matcher with an empty value on
/// a label the alert has (for `!=`, `!~`) or lacks (for `=`, `=~`) passes.
pub(crate) fn filter_matches(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| {
        let value = labels.get(&m.name);
        let negative = matches!(m.kind, MatchType::NotEqual | MatchType::NotRegexp);
        if m.value.is_empty() && (value.is_some() == negative) {
            return true;
        }
        m.matches(value.unwrap_or(""))
    })
}

/// Alertmanager's `alertFilter`: expired alerts are not shown; the alert's
/// inhibition and silences are decided anew, then the flags and matchers
/// apply.
fn keep(
    state: &AppState,
    active: &Active,
    filter: &Filter,
    alert: &Alert,
    now: Timestamp,
    statuses: &mut HashMap<Fingerprint, AlertStatus>,
) -> bool {
    if alert.ends_at != 0 && alert.ends_at < now {
        return false;
    }
    let status = state.notify.refresh_status(&alert.labels, active);
    let shown = (filter.active || status.state != crate::notify::types::AlertState::Active)
        && (filter.silenced || status.silenced_by.is_empty())
        && (filter.inhibited || status.inhibited_by.is_empty())
        && filter_matches(&filter.matchers, &alert.labels);
    statuses.insert(alert.fingerprint(), status);
    shown
}

/// The `filter`, `receiver`, `active`, ... query of an alerts or groups
/// request, or the error response for it.
async fn request_filter(request: Request) -> Result<Filter, Response> {
    let params = Params::from_request(request)
        .await
        .map_err(|e| e.into_response())?;
    parse_filter(&params).map_err(|e| e.into_response())
}

async fn get_alerts(State(state): State<AppState>, request: Request) -> Response {
    let filter = match request_filter(request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let router = &state.notify;
    let active = router.active();
    let now = router.now_ms();
    let mut statuses = HashMap::new();
    let mut shown = Vec::new();
    for alert in router.store.list() {
        let receivers = active.receivers_for(&alert.labels);
        if let Some(re) = &filter.receiver {
            if !receivers.iter().any(|r| re.is_match(r)) {
                continue;
            }
        }
        if !keep(&state, &active, &filter, &alert, now, &mut statuses) {
            continue;
        }
        let status = statuses
            .remove(&alert.fingerprint())
            .unwrap_or_else(|| router.marker.status(alert.fingerprint()));
        shown.push(gettable(&alert, status, receivers));
    }
    // `store.list()` is in fingerprint order already, which is the API's.
    json_response(StatusCode::OK, &shown)
}

async fn get_groups(State(state): State<AppState>, request: Request) -> Response {
    let filter = match request_filter(request).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let router = &state.notify;
    let active = router.active();
    let now = router.now_ms();
    let mut statuses = HashMap::new();
    let receiver_ok = |name: &str| filter.receiver.as_ref().is_none_or(|re| re.is_match(name));
    let (groups, receivers) = router.alert_groups(&receiver_ok, &mut |alert| {
        keep(&state, &active, &filter, alert, now, &mut statuses)
    });
    let out: Vec<AlertGroup> = groups
        .into_iter()
        .map(|group| AlertGroup {
            alerts: group
                .alerts
                .iter()
                .map(|a| {
                    let fp = a.fingerprint();
                    gettable(
                        a,
                        router.marker.status(fp),
                        receivers.get(&fp).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
            labels: label_map(&group.labels),
            receiver: ReceiverName {
                name: group.receiver,
            },
        })
        .collect();
    json_response(StatusCode::OK, &out)
}

async fn post_alerts(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = super::check_write_token(&state, &headers) {
        return e.into_response();
    }
    let alerts = match parse_postable_alerts(&body) {
        Ok(alerts) => alerts,
        Err(e) => return e.into_response(),
    };
    let errors = state.notify.receive(alerts);
    if errors.is_empty() {
        return StatusCode::OK.into_response();
    }
    let message = errors.join("; ");
    tracing::warn!(error = %message, "POST /api/v2/alerts: invalid alerts refused");
    handler_error(StatusCode::BAD_REQUEST, message)
}

/// Why a `POST /api/v2/alerts` body was refused before its alerts were
/// looked at (go-swagger's own answers).
#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// 400 `{"code":400,…}`: not JSON of the right shape.
    Parse(String),
    /// 422 `{"code":602,…}`: a required field is missing.
    Required(String),
    /// 422 `{"code":601,…}`: a field is not of its format.
    Format(String),
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        match self {
            BodyError::Parse(m) => swagger_error(
                StatusCode::BAD_REQUEST,
                400,
                format!("parsing alerts body from \"\" failed, because {m}"),
            ),
            BodyError::Required(m) => swagger_error(StatusCode::UNPROCESSABLE_ENTITY, 602, m),
            BodyError::Format(m) => swagger_error(StatusCode::UNPROCESSABLE_ENTITY, 601, m),
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a `PostableAlerts` body as go-swagger does: an array of objects
/// with `labels` (required), `annotations`, `startsAt`, `endsAt` and
/// `generatorURL` (a URI); other fields are ignored. Times are
/// go-openapi's `strfmt.DateTime`.
pub fn parse_postable_alerts(body: &[u8]) -> Result<Vec<Alert>, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Required("alerts in body is required".into()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::Parse(e.to_string()))?;
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(BodyError::Parse(format!(
                "json: cannot unmarshal {} into Go value of type models.PostableAlerts",
                json_kind(&other)
            )))
        }
    };
    // Type errors are found by unmarshalling, before any validation.
    let mut parsed = Vec::with_capacity(items.len());
    for item in &items {
        parsed.push(parse_one(item)?);
    }
    for (i, (alert, has_labels, _)) in parsed.iter().enumerate() {
        if !has_labels {
            return Err(BodyError::Required(format!(
                "{i}.labels in body is required"
            )));
        }
        if !valid_uri(&alert.generator_url) {
            return Err(BodyError::Format(format!(
                "{i}.generatorURL in body must be of type uri: {:?}",
                alert.generator_url
            )));
        }
    }
    Ok(parsed.into_iter().map(|(a, _, _)| a).collect())
}

fn parse_one(item: &Value) -> Result<(Alert, bool, ()), BodyError> {
    let mut alert = Alert {
        labels: Labels::empty(),
        annotations: BTreeMap::new(),
        starts_at: 0,
        ends_at: 0,
        generator_url: String::new(),
        updated_at: 0,
        timeout: false,
    };
    let object = match item {
        Value::Object(o) => o,
        Value::Null => return Ok((alert, false, ())),
        other => {
            return Err(BodyError::Parse(format!(
                "json: cannot unmarshal {} into Go value of type models.PostableAlert",
                json_kind(other)
            )))
        }
    };
    let mut has_labels = false;
    for (key, value) in object {
        // Go's encoding/json matches field names case-insensitively.
        match key.to_ascii_lowercase().as_str() {
            "labels" => {
                if !value.is_null() {
                    has_labels = true;
                }
                alert.labels = Labels::new(string_map(value, "Alert.labels")?);
            }
            "annotations" => {
                alert.annotations = string_map(value, "PostableAlert.annotations")?;
            }
            "startsat" => alert.starts_at = time_field(value, "PostableAlert.startsAt")?,
            "endsat" => alert.ends_at = time_field(value, "PostableAlert.endsAt")?,
            "generatorurl" => match value {
                Value::String(s) => alert.generator_url = s.clone(),
                Value::Null => {}
                other => {
                    return Err(BodyError::Parse(format!(
                        "json: cannot unmarshal {} into Go struct field Alert.generatorURL of type strfmt.URI",
                        json_kind(other)
                    )))
                }
            },
            _ => {}
        }
    }
    Ok((alert, has_labels, ()))
}

fn string_map(value: &Value, field: &str) -> Result<BTreeMap<String, String>, BodyError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(o) => o
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(BodyError::Parse(format!(
                    "json: cannot unmarshal {} into Go struct field {field} of type string",
                    json_kind(other)
                ))),
            })
            .collect(),
        other => Err(BodyError::Parse(format!(
            "json: cannot unmarshal {} into Go struct field {field} of type models.LabelSet",
            json_kind(other)
        ))),
    }
}

fn time_field(value: &Value, field: &str) -> Result<Timestamp, BodyError> {
    match value {
        Value::Null => Ok(0),
        Value::String(s) => parse_datetime(s).ok_or_else(|| {
            BodyError::Parse(format!(
                "parsing time {s:?} as \"2006-01-02 15:04:05\": cannot parse {s:?} as \"2006\""
            ))
        }),
        other => Err(BodyError::Parse(format!(
            "json: cannot unmarshal {} into Go struct field {field} of type string",
            json_kind(other)
        ))),
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix ms: what Go
/// clients (amtool) send for a time they leave unset.
const GO_ZERO_TIME_MS: Timestamp = -62_135_596_800_000;

/// go-openapi's `strfmt.ParseDateTime` (v0.21): RFC 3339 with any
/// fraction, or without a zone (UTC), or without seconds, or with a space
/// for the `T`. Empty and Go's zero time are "not set" (0).
pub fn parse_datetime(s: &str) -> Option<Timestamp> {
    parse_datetime_inner(s).map(|t| if t == GO_ZERO_TIME_MS { 0 } else { t })
}

fn parse_datetime_inner(s: &str) -> Option<Timestamp> {
    if s.is_empty() {
        return Some(0);
    }
    let rfc = super::prometheus::parse_rfc3339;
    if let Some(t) = rfc(s) {
        return Some(t);
    }
    let b = s.as_bytes();
    let has_zone = |s: &str| {
        s.ends_with('Z') || {
            let n = s.len();
            n > 6 && matches!(s.as_bytes()[n - 6], b'+' | b'-') && s.as_bytes()[n - 3] == b':'
        }
    };
    // `2006-01-02 15:04:05` (UTC).
    if b.len() >= 19 && b[10] == b' ' && !has_zone(s) {
        return rfc(&format!("{}T{}Z", &s[..10], &s[11..]));
    }
    if b.len() < 11 || b[10] != b'T' {
        return None;
    }
    // `2006-01-02T15:04` and `2006-01-02T15:04Z`.
    if b.len() == 16 {
        return rfc(&format!("{s}:00Z"));
    }
    if b.len() == 17 && b[16] == b'Z' {
        return rfc(&format!("{}:00Z", &s[..16]));
    }
    // `2006-01-02T15:04:05` (UTC).
    if !has_zone(s) {
        return rfc(&format!("{s}Z"));
    }
    None
}

/// go-openapi's `IsURI` is Go's `url.Parse` succeeding: refused are a
/// missing scheme before a colon, control characters and bad escapes.
fn valid_uri(s: &str) -> bool {
    if s.starts_with(':') || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
#[path = "alertmanager_tests.rs"]
mod tests;
