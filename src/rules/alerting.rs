//! Alerting rules: the alert state machine, as Prometheus 2.42's
//! `rules/alerting.go` runs it.
//!
//! Every evaluation the expression's result becomes a set of alert
//! instances, one per label set. A new instance is *pending*; once it has
//! been returned for `for` it is *firing*; when it stops being returned it is
//! *inactive* (resolved) — unless it was firing and `keep_firing_for` keeps
//! it firing a while longer. Resolved instances are kept 15 minutes so the
//! resolution is sent, then forgotten. Pending and firing instances are
//! written as `ALERTS` and `ALERTS_FOR_STATE` series.
//!
//! Unlike Prometheus, the instances survive a restart with their clocks
//! (`active_at`, `keep_firing_since`, …): the rule manager persists them (see
//! `state.rs`) and hands them back through [`AlertingRule::restore`] before
//! the first evaluation, so `ALERTS` is written from the first evaluation on.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use promql_parser::parser::ast::Expr;

use crate::model::{Labels, Timestamp, METRIC_NAME};

use super::{EvalContext, RuleStatus};

/// Name of the series of pending and firing alerts.
pub const ALERTS_METRIC: &str = "ALERTS";
/// Name of the series holding each alert's `active_at` (Unix seconds).
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";
const ALERT_NAME_LABEL: &str = "alertname";
const ALERT_STATE_LABEL: &str = "alertstate";
/// How long a resolved alert is kept (and re-sent as resolved).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }

    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "inactive" => Some(AlertState::Inactive),
            "pending" => Some(AlertState::Pending),
            "firing" => Some(AlertState::Firing),
            _ => None,
        }
    }
}

/// One alert instance. Times are Unix milliseconds; `None` is Go's zero time.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The alert's identity: the result's labels without `__name__`, the
    /// rule's (expanded) labels, and `alertname`.
    pub labels: Labels,
    /// Expanded annotations, sorted by name.
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    /// The expression's value for this instance at the last evaluation.
    pub value: f64,
    pub active_at: Timestamp,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub last_sent_at: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub keep_firing_since: Option<Timestamp>,
}

impl Alert {
    /// Prometheus's `needsSending`: firing alerts every `resend_delay`,
    /// resolutions once as soon as they happen.
    fn needs_sending(&self, ts: Timestamp, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at.unwrap_or(i64::MIN) > self.last_sent_at.unwrap_or(i64::MIN) {
            return true;
        }
        match self.last_sent_at {
            None => true,
            Some(sent) => sent + resend_delay_ms < ts,
        }
    }
}

struct AlertingState {
    /// Current instances by label set.
    active: BTreeMap<Labels, Alert>,
    status: RuleStatus,
}

pub struct AlertingRule {
    name: String,
    expr: Expr,
    /// The expression as Prometheus prints it back (`/api/v1/rules`' `query`).
    query: String,
    hold: Duration,
    keep_firing_for: Duration,
    /// Label and annotation templates, sorted by name.
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    state: Mutex<AlertingState>,
}

impl AlertingRule {
    pub fn new(
        name: String,
        expr: Expr,
        hold: Duration,
        keep_firing_for: Duration,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    ) -> AlertingRule {
        AlertingRule {
            query: expr.to_string(),
            name,
            expr,
            hold,
            keep_firing_for,
            labels,
            annotations,
            state: Mutex::new(AlertingState {
                active: BTreeMap::new(),
                status: RuleStatus::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn hold(&self) -> Duration {
        self.hold
    }

    pub fn keep_firing_for(&self) -> Duration {
        self.keep_firing_for
    }

    /// The rule's label templates, unexpanded.
    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    pub fn annotations(&self) -> &[(String, String)] {
        &self.annotations
    }

    pub fn status(&self) -> RuleStatus {
        self.state.lock().status.clone()
    }

    pub(super) fn set_status(&self, status: RuleStatus) {
        self.state.lock().status = status;
    }

    /// Every instance, resolved ones included, in label-set order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.state.lock().active.values().cloned().collect()
    }

    /// Pending and firing instances (Prometheus's `ActiveAlerts`).
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.state
            .lock()
            .active
            .values()
            .filter(|a| a.resolved_at.is_none())
            .cloned()
            .collect()
    }

    /// The highest state of any instance.
    pub fn max_state(&self) -> AlertState {
        self.state
            .lock()
            .active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Puts back instances saved before a restart (or taken from the rule
    /// this one replaces on reload). Existing instances with the same labels
    /// are kept.
    pub fn restore(&self, alerts: impl IntoIterator<Item = Alert>) {
        let mut state = self.state.lock();
        for alert in alerts {
            state.active.entry(alert.labels.clone()).or_insert(alert);
        }
    }

    /// One evaluation at `ts`, querying at `query_ts` (`ts` minus the group's
    /// query offset). Returns the `ALERTS`/`ALERTS_FOR_STATE` samples to
    /// write at `query_ts`.
    pub fn eval(
        &self,
        ts: Timestamp,
        query_ts: Timestamp,
        ctx: &EvalContext,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let result = ctx.query_vector(&self.expr, query_ts)?;
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (sample_labels, value) in result {
            let data_labels: BTreeMap<String, String> = sample_labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let expand =
                |text: &str| ctx.expand_alert_template(&self.name, text, &data_labels, value, ts);
            let mut labels = sample_labels.clone();
            labels.remove(METRIC_NAME);
            for (name, text) in &self.labels {
                labels.set(name, &expand(text));
            }
            labels.set(ALERT_NAME_LABEL, &self.name);
            let annotations = self
                .annotations
                .iter()
                .map(|(name, text)| (name.clone(), expand(text)))
                .collect();
            if fresh.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .to_string(),
                );
            }
            fresh.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }

        let mut state = self.state.lock();
        let hold_ms = self.hold.as_millis() as i64;
        let keep_ms = self.keep_firing_for.as_millis() as i64;
        let returned: std::collections::HashSet<Labels> = fresh.keys().cloned().collect();
        for (labels, alert) in fresh {
            match state.active.get_mut(&labels) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = alert.value;
                    existing.annotations = alert.annotations;
                }
                _ => {
                    state.active.insert(labels, alert);
                }
            }
        }

        let mut samples = Vec::new();
        let mut active_count = 0usize;
        state.active.retain(|labels, alert| {
            if !returned.contains(labels) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep_ms > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_ms;
                }
                // A pending alert that disappeared is forgotten; a resolved one
                // after its retention.
                let forget = alert.state == AlertState::Pending
                    || alert
                        .resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS);
                if alert.state != AlertState::Inactive && !keep_firing {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                }
                if forget {
                    return false;
                }
                if !keep_firing {
                    return true;
                }
            } else {
                alert.keep_firing_since = None;
            }
            active_count += 1;
            if alert.state == AlertState::Pending && ts - alert.active_at >= hold_ms {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
            }
            samples.push((self.alerts_series(alert), 1.0));
            samples.push((
                self.for_state_series(alert),
                (alert.active_at.div_euclid(1000)) as f64,
            ));
            true
        });
        if limit > 0 && active_count > limit {
            state.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_count} alerts"
            ));
        }
        Ok(samples)
    }

    /// The `ALERTS` series of an instance: rule labels, then the alert's
    /// labels over them, `__name__`, `alertname` and `alertstate`.
    fn alerts_series(&self, alert: &Alert) -> Labels {
        let mut labels = self.series_base(alert);
        labels.set(METRIC_NAME, ALERTS_METRIC);
        labels.set(ALERT_STATE_LABEL, alert.state.as_str());
        labels
    }

    fn for_state_series(&self, alert: &Alert) -> Labels {
        let mut labels = self.series_base(alert);
        labels.set(METRIC_NAME, ALERTS_FOR_STATE_METRIC);
        labels
    }

    fn series_base(&self, alert: &Alert) -> Labels {
        let mut labels = Labels::new(self.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        for l in alert.labels.iter() {
            labels.set(&l.name, &l.value);
        }
        labels.set(ALERT_NAME_LABEL, &self.name);
        labels
    }

    /// Prometheus's `sendAlerts`: the instances due to be sent at `ts`,
    /// marked as sent, with `valid_until` four resend periods ahead.
    pub fn alerts_to_send(
        &self,
        ts: Timestamp,
        resend_delay: Duration,
        interval: Duration,
    ) -> Vec<Alert> {
        let resend_ms = resend_delay.as_millis() as i64;
        let delta = resend_delay.max(interval).as_millis() as i64;
        let mut state = self.state.lock();
        let mut out = Vec::new();
        for alert in state.active.values_mut() {
            if alert.needs_sending(ts, resend_ms) {
                alert.last_sent_at = Some(ts);
                alert.valid_until = Some(ts + 4 * delta);
                out.push(alert.clone());
            }
        }
        out
    }
}
