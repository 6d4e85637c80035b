//! `GET /api/v1/rules` and `GET /api/v1/alerts`, answered as Prometheus 2.42
//! answers them (Grafana's rule and alert views read these).
//!
//! The handlers read a [`RuleSource`]: the rule manager in the daemon, or
//! [`NoRules`] where there is none.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::prometheus::{go_quote, Params};
use super::{success, ApiError, AppState};
use crate::model::Timestamp;
use crate::rules::{Alert, Group, Rule, RuleManager};

/// Where the rule views come from.
pub trait RuleSource: Send + Sync {
    fn groups(&self) -> Vec<Arc<Group>>;
}

impl RuleSource for RuleManager {
    fn groups(&self) -> Vec<Arc<Group>> {
        RuleManager::groups(self)
    }
}

/// No rule engine: empty lists.
pub struct NoRules;

impl RuleSource for NoRules {
    fn groups(&self) -> Vec<Arc<Group>> {
        Vec::new()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
}

#[derive(Serialize)]
struct RuleDiscovery {
    groups: Vec<RuleGroupView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleGroupView {
    name: String,
    file: String,
    rules: Vec<RuleView>,
    #[serde(serialize_with = "super::go_json_float")]
    interval: f64,
    limit: usize,
    #[serde(serialize_with = "super::go_json_float")]
    evaluation_time: f64,
    last_evaluation: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum RuleView {
    Alerting(AlertingRuleView),
    Recording(RecordingRuleView),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertingRuleView {
    state: &'static str,
    name: String,
    query: String,
    #[serde(serialize_with = "super::go_json_float")]
    duration: f64,
    #[serde(serialize_with = "super::go_json_float")]
    keep_firing_for: f64,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    alerts: Vec<AlertView>,
    health: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    last_error: String,
    #[serde(serialize_with = "super::go_json_float")]
    evaluation_time: f64,
    last_evaluation: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordingRuleView {
    name: String,
    query: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    health: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    last_error: String,
    #[serde(serialize_with = "super::go_json_float")]
    evaluation_time: f64,
    last_evaluation: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertView {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: &'static str,
    active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_since: Option<String>,
    value: String,
}

#[derive(Serialize)]
struct AlertDiscovery {
    alerts: Vec<AlertView>,
}

async fn rules(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let params = Params::from_request(request).await?;
    let kind = params.get("type").to_lowercase();
    if !matches!(kind.as_str(), "" | "alert" | "record") {
        return Err(ApiError::bad_data(format!(
            "invalid parameter \"type\": not supported value {}",
            go_quote(&kind)
        )));
    }
    let alerts_wanted = kind != "record";
    let recording_wanted = kind != "alert";
    let groups = state
        .rules
        .groups()
        .iter()
        .map(|g| RuleGroupView {
            name: g.name().to_string(),
            file: g.file().to_string(),
            rules: g
                .rules()
                .iter()
                .filter_map(|r| match r {
                    Rule::Alerting(a) if alerts_wanted => {
                        let status = a.status();
                        Some(RuleView::Alerting(AlertingRuleView {
                            state: a.max_state().as_str(),
                            name: a.name().to_string(),
                            query: a.query().to_string(),
                            duration: a.hold().as_secs_f64(),
                            keep_firing_for: a.keep_firing_for().as_secs_f64(),
                            labels: a.labels().iter().cloned().collect(),
                            annotations: a.annotations().iter().cloned().collect(),
                            alerts: a.active_alerts().iter().map(alert_view).collect(),
                            health: status.health.as_str(),
                            last_error: status.last_error.unwrap_or_default(),
                            evaluation_time: status.evaluation_duration.as_secs_f64(),
                            last_evaluation: go_time(status.last_evaluation),
                            kind: "alerting",
                        }))
                    }
                    Rule::Recording(rec) if recording_wanted => {
                        let status = rec.status();
                        Some(RuleView::Recording(RecordingRuleView {
                            name: rec.name().to_string(),
                            query: rec.query().to_string(),
                            labels: rec.labels().iter().cloned().collect(),
                            health: status.health.as_str(),
                            last_error: status.last_error.unwrap_or_default(),
                            evaluation_time: status.evaluation_duration.as_secs_f64(),
                            last_evaluation: go_time(status.last_evaluation),
                            kind: "recording",
                        }))
                    }
                    _ => None,
                })
                .collect(),
            interval: g.interval().as_secs_f64(),
            limit: g.limit(),
            evaluation_time: g.evaluation_duration().as_secs_f64(),
            last_evaluation: go_time(g.last_evaluation()),
        })
        .collect();
    Ok(success(RuleDiscovery { groups }).into_response())
}

async fn alerts(State(state): State<AppState>) -> Response {
    let alerts = state
        .rules
        .groups()
        .iter()
        .flat_map(|g| {
            g.alerting_rules()
                .flat_map(|a| a.active_alerts())
                .collect::<Vec<_>>()
        })
        .map(|a| alert_view(&a))
        .collect();
    success(AlertDiscovery { alerts }).into_response()
}

fn alert_view(a: &Alert) -> AlertView {
    AlertView {
        labels: a
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
        annotations: a.annotations.iter().cloned().collect(),
        state: a.state.as_str(),
        active_at: go_time(Some(a.active_at)),
        keep_firing_since: a.keep_firing_since.map(|t| go_time(Some(t))),
        value: go_float_e(a.value),
    }
}

/// Unix ms as Go marshals a `time.Time`; `None` is Go's zero time.
fn go_time(t: Option<Timestamp>) -> String {
    match t {
        Some(ms) if ms >= 0 => super::status::format_millis(ms),
        _ => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        crate::promql::go_exponent(v)
    }
}
