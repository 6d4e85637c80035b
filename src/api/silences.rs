//! Alertmanager API v2's silence, status and receiver endpoints, with
//! Alertmanager 0.25's JSON (api/v2/openapi.yaml, api/v2/api.go), status
//! codes and error texts, so `amtool` works against bellwether:
//!
//! - `GET /api/v2/silences[?filter=…]`, `POST /api/v2/silences`,
//!   `GET /api/v2/silence/{id}`, `DELETE /api/v2/silence/{id}`;
//! - `GET /api/v2/status`, `GET /api/v2/receivers`.
//!
//! bellwether's extension: a silence may carry `timeIntervals` (a list of
//! alertmanager.yml time intervals) and then mutes only inside them (see
//! docs/notify.md). Alertmanager's clients ignore the unknown field.
//!
//! Handlers translate HTTP to [`Silences`] calls; the semantics live in
//! src/notify/silences.rs.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::RwLock;
use serde::{Deserialize, Deserializer, Serialize};

use super::{check_write_token, AppState};
use crate::model::{now_millis, Timestamp};
use crate::notify::matchers::parse_matcher;
use crate::notify::silences::{
    Schedule, Silence, SilenceError, SilenceInput, SilenceMatcher, SilenceState, Silences,
};

/// What the Alertmanager API v2 endpoints of this file need: the silence
/// store and, for `/status` and `/receivers`, the loaded notify config.
pub struct AlertmanagerApi {
    pub silences: Arc<Silences>,
    started: SystemTime,
    notify: RwLock<NotifyView>,
}

/// The parts of the notify config the API shows.
#[derive(Clone, Debug, Default)]
pub struct NotifyView {
    /// `config.original` of `/api/v2/status`: the alertmanager.yml in force,
    /// secrets masked.
    pub original: String,
    /// Receiver names, in config order.
    pub receivers: Vec<String>,
}

impl NotifyView {
    /// What the API shows of the loaded config: the alertmanager.yml named
    /// by `notify.config_file`, or the inline `notify` section of
    /// `config_text`, masked; empty when the embedded default route is used.
    pub fn from_config(config: &crate::config::Config, config_text: &str) -> NotifyView {
        let Some(notify) = &config.notify_config else {
            return NotifyView::default();
        };
        let original = match (&config.notify.config_file, &config.notify.route) {
            (Some(_), _) => std::fs::read_to_string(&notify.origin)
                .map(|text| crate::config::masked_yaml(&text))
                .unwrap_or_default(),
            (None, Some(_)) => crate::config::masked_yaml_section(config_text, "notify"),
            // The default route is in force: show it (Alertmanager's
            // clients need a route) with the receivers' names.
            (None, None) => {
                let mut out = String::from(
                    "# bellwether's default route (the notify section has no route)\nroute:\n",
                );
                write_route(&notify.route, 2, &mut out);
                out.push_str("receivers:\n");
                for receiver in &notify.receivers {
                    out.push_str(&format!("- name: {}\n", yaml_quote(&receiver.name)));
                }
                out
            }
        };
        NotifyView {
            original,
            receivers: notify.receivers.iter().map(|r| r.name.clone()).collect(),
        }
    }
}

/// A route's keys as YAML at `indent` (what the default route sets).
fn write_route(route: &crate::notify::config::RouteConfig, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    out.push_str(&format!("{pad}receiver: {}\n", yaml_quote(&route.receiver)));
    if let Some(group_by) = &route.group_by {
        out.push_str(&format!("{pad}group_by:\n"));
        for label in group_by {
            out.push_str(&format!("{pad}- {}\n", yaml_quote(label)));
        }
    }
    let matchers = route.all_matchers();
    if !matchers.is_empty() {
        out.push_str(&format!("{pad}matchers:\n"));
        for m in &matchers.0 {
            out.push_str(&format!("{pad}- {}\n", yaml_quote(&m.to_string())));
        }
    }
    if route.continue_matching {
        out.push_str(&format!("{pad}continue: true\n"));
    }
    if !route.routes.is_empty() {
        out.push_str(&format!("{pad}routes:\n"));
        for child in &route.routes {
            let mut item = String::new();
            write_route(child, indent + 2, &mut item);
            // The first line follows the dash.
            out.push_str(&format!("{pad}- {}", &item[indent + 2..]));
        }
    }
}

/// A single-quoted YAML scalar.
fn yaml_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl AlertmanagerApi {
    pub fn new(silences: Arc<Silences>, notify: NotifyView) -> AlertmanagerApi {
        AlertmanagerApi {
            silences,
            started: SystemTime::now(),
            notify: RwLock::new(notify),
        }
    }

    /// A reload loaded a new notify config.
    pub fn config_loaded(&self, notify: NotifyView) {
        *self.notify.write() = notify;
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v2/silences",
            get(list_silences)
                .post(post_silence)
                .fallback(|m: Method| not_allowed(m, "GET,POST")),
        )
        .route(
            "/api/v2/silence/{id}",
            get(get_silence)
                .delete(delete_silence)
                .fallback(|m: Method| not_allowed(m, "DELETE,GET")),
        )
        .route(
            "/api/v2/status",
            get(status).fallback(|m: Method| not_allowed(m, "GET")),
        )
        .route(
            "/api/v2/receivers",
            get(receivers).fallback(|m: Method| not_allowed(m, "GET")),
        )
}

/// Alertmanager's 405: the allowed methods in `Allow` and in the message.
async fn not_allowed(method: Method, allowed: &'static str) -> Response {
    let mut response = openapi_error(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        format!("method {method} is not allowed, but [{allowed}] are"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, axum::http::HeaderValue::from_static(allowed));
    response
}

/// A JSON answer with Alertmanager's content type.
/// (Handlers' answers, like Go's `json.Encoder`, end in a newline.)
fn json(status: StatusCode, body: &impl Serialize) -> Response {
    json_bytes(status, body, true)
}

fn json_bytes(status: StatusCode, body: &impl Serialize, newline: bool) -> Response {
    match serde_json::to_vec(body) {
        Ok(mut bytes) => {
            if newline {
                bytes.push(b'\n');
            }
            (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

/// Alertmanager's handler errors: the message as a JSON string.
fn message(status: StatusCode, text: impl Into<String>) -> Response {
    json(status, &text.into())
}

/// A refusal of the input, boxed (a `Response` is large).
fn refuse_openapi(status: StatusCode, code: u16, text: impl Into<String>) -> Box<Response> {
    Box::new(openapi_error(status, code, text))
}

fn refuse_message(status: StatusCode, text: impl Into<String>) -> Box<Response> {
    Box::new(message(status, text))
}

/// The OpenAPI layer's errors: `{"code":…,"message":…}`, no newline.
fn openapi_error(status: StatusCode, code: u16, text: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Body {
        code: u16,
        message: String,
    }
    json_bytes(
        status,
        &Body {
            code,
            message: text.into(),
        },
        false,
    )
}

// ---- output -------------------------------------------------------------

/// A silence as `GET` shows it (`gettableSilence`), fields in
/// Alertmanager's order.
#[derive(Serialize)]
pub struct GettableSilence<'a> {
    id: &'a str,
    status: StatusBody,
    #[serde(rename = "updatedAt")]
    updated_at: String,
    comment: &'a str,
    #[serde(rename = "createdBy")]
    created_by: &'a str,
    #[serde(rename = "endsAt")]
    ends_at: String,
    matchers: Vec<MatcherBody<'a>>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "timeIntervals", skip_serializing_if = "Option::is_none")]
    time_intervals: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct StatusBody {
    state: &'static str,
}

#[derive(Serialize)]
struct MatcherBody<'a> {
    #[serde(rename = "isEqual")]
    is_equal: bool,
    #[serde(rename = "isRegex")]
    is_regex: bool,
    name: &'a str,
    value: &'a str,
}

impl<'a> GettableSilence<'a> {
    pub fn new(s: &'a Silence, now: Timestamp) -> GettableSilence<'a> {
        GettableSilence {
            id: &s.id,
            status: StatusBody {
                state: s.state(now).as_str(),
            },
            updated_at: format_time(s.updated_at),
            comment: &s.comment,
            created_by: &s.created_by,
            ends_at: format_time(s.ends_at),
            matchers: s
                .matchers
                .iter()
                .map(|m| MatcherBody {
                    is_equal: m.is_equal,
                    is_regex: m.is_regex,
                    name: &m.name,
                    value: &m.value,
                })
                .collect(),
            starts_at: format_time(s.starts_at),
            time_intervals: s.schedule.as_ref().map(Schedule::spec),
        }
    }
}

/// A silence's JSON as `GET /api/v2/silence/{id}` answers it (no newline).
pub fn render_silence(silence: &Silence, now: Timestamp) -> String {
    serde_json::to_string(&GettableSilence::new(silence, now))
        .expect("a silence serializes: strings and numbers only")
}

/// A time as go-openapi's `strfmt.DateTime` prints it: RFC 3339 with
/// milliseconds, in UTC (`2024-06-02T02:00:00.000Z`).
pub fn format_time(t: Timestamp) -> String {
    let (secs, ms) = (t.div_euclid(1000), t.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::model::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---- input --------------------------------------------------------------

/// A `postableSilence` as sent; every field optional here so that missing
/// ones are reported in Alertmanager's order and words.
#[derive(Deserialize, Default)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    comment: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<DateTime>,
    matchers: Option<Vec<PostableMatcher>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<DateTime>,
    /// Absent: `None`; `null`: `Some(None)`.
    #[serde(rename = "timeIntervals", default, deserialize_with = "present")]
    time_intervals: Option<Option<serde_json::Value>>,
}

#[derive(Deserialize)]
struct PostableMatcher {
    #[serde(rename = "isEqual")]
    is_equal: Option<bool>,
    #[serde(rename = "isRegex")]
    is_regex: Option<bool>,
    name: Option<String>,
    value: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

/// A `date-time` string, in Unix ms.
struct DateTime(Timestamp);

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_date_time(&text).map(DateTime).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "parsing time {}: not an RFC 3339 date-time such as \"2006-01-02T15:04:05Z\"",
                super::prometheus::go_quote(&text)
            ))
        })
    }
}

/// The date-times go-openapi's `strfmt.DateTime` reads: RFC 3339 with any
/// fraction and a `Z`, `±hh:mm` or `±hhmm` zone, the same without a zone
/// (UTC) or without seconds, or with a space for the `T`; `""` is the Unix
/// epoch. Fractions below a millisecond are dropped.
pub fn parse_date_time(text: &str) -> Option<Timestamp> {
    if text.is_empty() {
        return Some(0);
    }
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (hour, minute) = (num(11, 2)?, num(14, 2)?);
    if b.get(13) != Some(&b':') {
        return None;
    }
    let mut at = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(at) == Some(&b':') {
        second = num(17, 2)?;
        at = 19;
        if matches!(b.get(at), Some(b'.' | b',')) {
            let start = at + 1;
            let mut end = start;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start {
                return None;
            }
            for (i, &c) in b[start..end].iter().take(3).enumerate() {
                millis += i64::from(c - b'0') * 10i64.pow(2 - i as u32);
            }
            at = end;
        }
    }
    let offset = match &b[at..] {
        [] => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [_, _, b':', _, _] => (num(at + 1, 2)?, num(at + 4, 2)?),
                [_, _, _, _] => (num(at + 1, 2)?, num(at + 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = h * 3600 + m * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > crate::notify::timeinterval::days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = crate::notify::timeinterval::days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1000 + millis)
}

/// A `POST /api/v2/silences` body with a JSON content type, parsed as the
/// handler parses it; a refusal as its status code. For the fuzz target.
pub fn parse_post_body(body: &[u8]) -> Result<SilenceInput, u16> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    parse_postable(&headers, body).map_err(|refused| refused.status().as_u16())
}

/// A parsed `POST` body, or the answer refusing it.
fn parse_postable(headers: &HeaderMap, body: &[u8]) -> Result<SilenceInput, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        let shown = if media.is_empty() {
            "application/octet-stream"
        } else {
            media
        };
        return Err(refuse_openapi(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            415,
            format!(
                "unsupported media type {}, only [application/json] are allowed",
                super::prometheus::go_quote(shown)
            ),
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse_openapi(
            StatusCode::UNPROCESSABLE_ENTITY,
            602,
            "silence in body is required",
        ));
    }
    let parse_failed = |e: &dyn std::fmt::Display| {
        refuse_openapi(
            StatusCode::BAD_REQUEST,
            400,
            format!("parsing silence body from \"\" failed, because {e}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| parse_failed(&e))?;
    let raw: PostableSilence = match value {
        serde_json::Value::Null => PostableSilence::default(),
        serde_json::Value::Object(_) => {
            serde_json::from_value(value).map_err(|e| parse_failed(&e))?
        }
        other => {
            let kind = match other {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(parse_failed(&format!(
                "json: cannot unmarshal {kind} into a silence object"
            )));
        }
    };
    let required = |field: &str| {
        refuse_openapi(
            StatusCode::UNPROCESSABLE_ENTITY,
            602,
            format!("{field} in body is required"),
        )
    };
    // The order in which Alertmanager's generated validation reports them.
    let comment = raw.comment.ok_or_else(|| required("comment"))?;
    let created_by = raw.created_by.ok_or_else(|| required("createdBy"))?;
    let ends_at = raw.ends_at.ok_or_else(|| required("endsAt"))?.0;
    let posted = raw.matchers.ok_or_else(|| required("matchers"))?;
    if posted.is_empty() {
        return Err(refuse_openapi(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items",
        ));
    }
    let mut matchers = Vec::with_capacity(posted.len());
    for (i, m) in posted.into_iter().enumerate() {
        let is_regex = m
            .is_regex
            .ok_or_else(|| required(&format!("matchers.{i}.isRegex")))?;
        let name = m
            .name
            .ok_or_else(|| required(&format!("matchers.{i}.name")))?;
        let value = m
            .value
            .ok_or_else(|| required(&format!("matchers.{i}.value")))?;
        matchers.push(SilenceMatcher {
            name,
            value,
            is_regex,
            is_equal: m.is_equal.unwrap_or(true),
        });
    }
    let starts_at = raw.starts_at.ok_or_else(|| required("startsAt"))?.0;
    let schedule = match raw.time_intervals {
        None => None,
        Some(None) => Some(None),
        Some(Some(serde_json::Value::Array(items))) if items.is_empty() => Some(None),
        Some(Some(spec)) => Some(Some(Schedule::parse(&spec).map_err(|e| {
            refuse_message(
                StatusCode::BAD_REQUEST,
                format!("failed to convert API silence to internal silence: {e}"),
            )
        })?)),
    };
    Ok(SilenceInput {
        id: raw.id.unwrap_or_default(),
        matchers,
        starts_at,
        ends_at,
        created_by,
        comment,
        schedule,
    })
}

// ---- handlers -------------------------------------------------------------

/// Alertmanager's order: active (soonest end first), pending (soonest start
/// first), expired (latest end first).
fn sort_for_display(silences: &mut [Silence], now: Timestamp) {
    silences.sort_by(|a, b| {
        let (sa, sb) = (a.state(now), b.state(now));
        sa.cmp(&sb).then_with(|| match sa {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
}

async fn list_silences(State(state): State<AppState>, uri: Uri) -> Response {
    let pairs = match Query::<Vec<(String, String)>>::try_from_uri(&uri) {
        Ok(Query(pairs)) => pairs,
        Err(e) => return openapi_error(StatusCode::BAD_REQUEST, 400, e.body_text()),
    };
    let mut filters = Vec::new();
    for (_, text) in pairs.iter().filter(|(k, _)| k == "filter") {
        match parse_matcher(text) {
            Ok(m) => filters.push(m),
            Err(e) => return message(StatusCode::BAD_REQUEST, e),
        }
    }
    let now = now_millis();
    let mut silences: Vec<Silence> = state
        .alertmanager
        .silences
        .list()
        .into_iter()
        .filter(|s| {
            // Each filter must be one of the silence's matchers, exactly.
            filters.iter().all(|f| {
                s.matchers
                    .iter()
                    .any(|m| m.name == f.name && m.value == f.value && m.kind() == f.kind)
            })
        })
        .collect();
    sort_for_display(&mut silences, now);
    let body: Vec<GettableSilence> = silences
        .iter()
        .map(|s| GettableSilence::new(s, now))
        .collect();
    json(StatusCode::OK, &body)
}

/// go-openapi's `uuid` format: 32 hex digits, dashes optional at 8-4-4-4-12.
fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    for (n, group) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if n > 0 && b.get(i) == Some(&b'-') {
            i += 1;
        }
        for _ in 0..group {
            if !b.get(i).is_some_and(u8::is_ascii_hexdigit) {
                return false;
            }
            i += 1;
        }
    }
    i == b.len()
}

fn check_uuid(id: &str) -> Result<(), Box<Response>> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(refuse_openapi(
            StatusCode::UNPROCESSABLE_ENTITY,
            601,
            format!(
                "silenceID in path must be of type uuid: {}",
                super::prometheus::go_quote(id)
            ),
        ))
    }
}

async fn get_silence(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if let Err(refused) = check_uuid(&id) {
        return *refused;
    }
    match state.alertmanager.silences.get(&id) {
        Some(s) => json(StatusCode::OK, &GettableSilence::new(&s, now_millis())),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = check_write_token(&state, &headers) {
        return e.into_response();
    }
    if let Err(refused) = check_uuid(&id) {
        return *refused;
    }
    let store = state.alertmanager.silences.clone();
    let outcome = tokio::task::spawn_blocking(move || store.expire(&id, now_millis())).await;
    match outcome {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        // Alertmanager answers 500 here, also for an unknown ID.
        Ok(Err(e)) => message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

async fn post_silence(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = check_write_token(&state, &headers) {
        return e.into_response();
    }
    let input = match parse_postable(&headers, &body) {
        Ok(input) => input,
        Err(refused) => return *refused,
    };
    if input.starts_at >= input.ends_at {
        return message(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        );
    }
    let now = now_millis();
    if input.ends_at < now {
        return message(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        );
    }
    let store = state.alertmanager.silences.clone();
    let outcome = tokio::task::spawn_blocking(move || store.set(input, now)).await;
    #[derive(Serialize)]
    struct Created {
        #[serde(rename = "silenceID")]
        silence_id: String,
    }
    match outcome {
        Ok(Ok(id)) => json(StatusCode::OK, &Created { silence_id: id }),
        Ok(Err(e @ SilenceError::NotFound)) => message(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e @ SilenceError::Invalid(_))) => message(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e @ SilenceError::Storage(_))) => {
            message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

async fn status(State(state): State<AppState>) -> Response {
    let notify = state.alertmanager.notify.read().clone();
    let started = state
        .alertmanager
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Timestamp)
        .unwrap_or(0);
    // Field order as Alertmanager prints it.
    #[derive(Serialize)]
    struct Status {
        cluster: Cluster,
        config: ConfigBody,
        uptime: String,
        #[serde(rename = "versionInfo")]
        version_info: VersionInfo,
    }
    #[derive(Serialize)]
    struct Cluster {
        peers: [(); 0],
        status: &'static str,
    }
    #[derive(Serialize)]
    struct ConfigBody {
        original: String,
    }
    #[derive(Serialize)]
    struct VersionInfo {
        branch: &'static str,
        #[serde(rename = "buildDate")]
        build_date: &'static str,
        #[serde(rename = "buildUser")]
        build_user: &'static str,
        #[serde(rename = "goVersion")]
        go_version: &'static str,
        revision: &'static str,
        version: &'static str,
    }
    json(
        StatusCode::OK,
        &Status {
            cluster: Cluster {
                peers: [],
                status: "disabled",
            },
            config: ConfigBody {
                original: notify.original,
            },
            uptime: format_time(started),
            // `version` is the Alertmanager API level bellwether answers to:
            // amtool warns on every command when it differs from its own.
            // bellwether's own version is the `revision`.
            version_info: VersionInfo {
                branch: "bellwether",
                build_date: "",
                build_user: "",
                go_version: "",
                revision: concat!("bellwether-", env!("CARGO_PKG_VERSION")),
                version: "0.25.0",
            },
        },
    )
}

async fn receivers(State(state): State<AppState>) -> Response {
    #[derive(Serialize)]
    struct Receiver {
        name: String,
    }
    let names: Vec<Receiver> = state
        .alertmanager
        .notify
        .read()
        .receivers
        .iter()
        .map(|name| Receiver { name: name.clone() })
        .collect();
    json(StatusCode::OK, &names)
}

#[cfg(test)]
#[path = "silences_tests.rs"]
mod tests;
