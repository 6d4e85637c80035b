//! The rule engine's own metrics (`bellwether_rule_*`), documented in
//! docs/metrics.md. Group series carry `rule_group="FILE;NAME"`, as
//! Prometheus's `prometheus_rule_group_*` do.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::gauge::Gauge as FloatGauge;
use prometheus_client::registry::Registry;

type GroupLabel = Vec<(String, String)>;

pub fn group_label(key: &str) -> GroupLabel {
    vec![("rule_group".to_string(), key.to_string())]
}

#[derive(Clone, Default)]
pub struct RuleMetrics {
    pub iterations: Family<GroupLabel, Counter>,
    pub iterations_missed: Family<GroupLabel, Counter>,
    pub evaluations: Family<GroupLabel, Counter>,
    pub evaluation_failures: Family<GroupLabel, Counter>,
    pub last_duration_seconds: Family<GroupLabel, FloatGauge<f64, std::sync::atomic::AtomicU64>>,
    pub last_evaluation_timestamp_seconds:
        Family<GroupLabel, FloatGauge<f64, std::sync::atomic::AtomicU64>>,
    pub last_evaluation_samples: Family<GroupLabel, Gauge>,
    pub interval_seconds: Family<GroupLabel, FloatGauge<f64, std::sync::atomic::AtomicU64>>,
    pub rules: Family<GroupLabel, Gauge>,
    pub template_errors: Counter,
    pub state_errors: Counter,
    pub restored_alerts: Counter,
}

impl RuleMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_rule_group_iterations",
            "Scheduled evaluations of a rule group, missed ones included",
            self.iterations.clone(),
        );
        registry.register(
            "bellwether_rule_group_iterations_missed",
            "Evaluations of a rule group skipped because the previous one took longer than the interval",
            self.iterations_missed.clone(),
        );
        registry.register(
            "bellwether_rule_evaluations",
            "Rule evaluations, by group",
            self.evaluations.clone(),
        );
        registry.register(
            "bellwether_rule_evaluation_failures",
            "Rule evaluations that failed (query error, limit, duplicate label sets, store error), by group",
            self.evaluation_failures.clone(),
        );
        registry.register(
            "bellwether_rule_group_last_duration_seconds",
            "How long the last evaluation of a rule group took",
            self.last_duration_seconds.clone(),
        );
        registry.register(
            "bellwether_rule_group_last_evaluation_timestamp_seconds",
            "Evaluation timestamp of the last evaluation of a rule group (Unix seconds)",
            self.last_evaluation_timestamp_seconds.clone(),
        );
        registry.register(
            "bellwether_rule_group_last_evaluation_samples",
            "Samples the rules of a group returned at its last evaluation",
            self.last_evaluation_samples.clone(),
        );
        registry.register(
            "bellwether_rule_group_interval_seconds",
            "Evaluation interval of a rule group",
            self.interval_seconds.clone(),
        );
        registry.register(
            "bellwether_rule_group_rules",
            "Rules in a rule group",
            self.rules.clone(),
        );
        registry.register(
            "bellwether_rule_template_errors",
            "Alert label or annotation templates that failed to expand (the text shows <error expanding template: ...>)",
            self.template_errors.clone(),
        );
        registry.register(
            "bellwether_rule_alert_state_errors",
            "Failures reading or writing persisted alert state",
            self.state_errors.clone(),
        );
        registry.register(
            "bellwether_rule_alerts_restored",
            "Alert instances restored from persisted state at start",
            self.restored_alerts.clone(),
        );
    }

    /// Drops the series of a group that is no longer configured.
    pub fn remove_group(&self, key: &str) {
        let label = group_label(key);
        self.iterations.remove(&label);
        self.iterations_missed.remove(&label);
        self.evaluations.remove(&label);
        self.evaluation_failures.remove(&label);
        self.last_duration_seconds.remove(&label);
        self.last_evaluation_timestamp_seconds.remove(&label);
        self.last_evaluation_samples.remove(&label);
        self.interval_seconds.remove(&label);
        self.rules.remove(&label);
    }
}
