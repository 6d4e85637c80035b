//! The rule engine: Prometheus rule files, evaluated on their groups'
//! intervals, with the alert state machine and its persistence.
//!
//! This module owns rule files (`file.rs`), recording and alerting rules
//! (`recording.rs`, `alerting.rs`), groups and their evaluation cycle
//! (`group.rs`), the scheduler that runs groups concurrently and reloads
//! them (`manager.rs`), alert state that survives restarts (`state.rs`),
//! the bridge to the template language (`templates.rs`), the
//! `bellwether_rule_*` metrics (`metrics.rs`), and the runner of promtool's
//! rule unit-test files behind `bellwether test rules` (`unittest/`).
//!
//! Rules read the store only through the PromQL [`Engine`] and write their
//! results through an `Appender`, like any source. Alerts leave through one
//! channel ([`crate::notify::AlertSender`]); nothing here knows about
//! receivers. The HTTP views (`/api/v1/rules`, `/api/v1/alerts`) live in
//! `api/rules.rs` and read [`RuleManager::groups`].
//!
//! For driving rules by hand (`bellwether test rules`), a [`Group`] can be
//! evaluated at any timestamp with [`Group::eval`] and an [`EvalContext`].

mod alerting;
mod file;
mod group;
mod manager;
mod metrics;
mod recording;
mod state;
mod templates;
pub mod unittest;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use promql_parser::parser::ast::Expr;

pub use alerting::{Alert, AlertState, AlertingRule, ALERTS_FOR_STATE_METRIC, ALERTS_METRIC};
pub use file::{expand_patterns, load_file, load_files, parse_rule_file, CheckedFile, LoadOptions};
pub use group::{Group, GroupEvalOutcome};
pub use manager::{ManagerOptions, RuleManager};
pub use recording::RecordingRule;
pub use state::AlertStateStore;

use crate::model::{Labels, Timestamp};
use crate::promql::{Engine, Value};
use crate::storage::Storage;

/// The default rules shipped in rules/ (file name, text), compiled into the
/// binary: the daemon evaluates them when it runs on its embedded default
/// config, so a bare `bellwether` alerts on the three tiers out of the box.
pub const DEFAULT_RULES: [(&str, &str); 5] = [
    (
        "rules/recording.yml",
        include_str!("../../rules/recording.yml"),
    ),
    (
        "rules/critical.yml",
        include_str!("../../rules/critical.yml"),
    ),
    ("rules/warning.yml", include_str!("../../rules/warning.yml")),
    ("rules/info.yml", include_str!("../../rules/info.yml")),
    (
        "rules/business.yml",
        include_str!("../../rules/business.yml"),
    ),
];

/// Compiles [`DEFAULT_RULES`]; origins read `<embedded>/rules/NAME.yml`.
pub fn default_groups(options: &LoadOptions) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    for (name, text) in DEFAULT_RULES {
        groups.extend(parse_rule_file(text, &format!("<embedded>/{name}"), options)?.groups);
    }
    Ok(groups)
}

/// A rule of a group.
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    /// The recorded metric's or the alert's name.
    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => r.name(),
            Rule::Alerting(r) => r.name(),
        }
    }

    /// The rule's `labels:` as written (templates unexpanded for alerts).
    pub fn rule_labels(&self) -> Labels {
        let labels = match self {
            Rule::Recording(r) => r.labels(),
            Rule::Alerting(r) => r.labels(),
        };
        Labels::new(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn query(&self) -> &str {
        match self {
            Rule::Recording(r) => r.query(),
            Rule::Alerting(r) => r.query(),
        }
    }

    pub fn status(&self) -> RuleStatus {
        match self {
            Rule::Recording(r) => r.status(),
            Rule::Alerting(r) => r.status(),
        }
    }

    fn set_status(&self, status: RuleStatus) {
        match self {
            Rule::Recording(r) => r.set_status(status),
            Rule::Alerting(r) => r.set_status(status),
        }
    }

    pub fn health(&self) -> RuleHealth {
        self.status().health
    }

    /// Name and labels: how a rule is recognised across a reload or a
    /// restart (Prometheus's `nameAndLabels`).
    pub fn identity(&self) -> String {
        format!("{}{}", self.name(), self.rule_labels())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuleHealth {
    #[default]
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    /// As `/api/v1/rules` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleHealth::Unknown => "unknown",
            RuleHealth::Ok => "ok",
            RuleHealth::Err => "err",
        }
    }
}

/// The outcome of a rule's last evaluation.
#[derive(Clone, Debug, Default)]
pub struct RuleStatus {
    pub health: RuleHealth,
    pub last_error: Option<String>,
    /// Wall-clock start of the last evaluation (Unix ms).
    pub last_evaluation: Option<Timestamp>,
    pub evaluation_duration: Duration,
}

/// What rules need to evaluate: the engine over the store they write to,
/// and what templates see of the outside.
#[derive(Clone)]
pub struct EvalContext {
    pub engine: Engine,
    pub storage: Storage,
    /// `global.external_labels`, for `$externalLabels` in templates.
    pub external_labels: BTreeMap<String, String>,
    /// The URL bellwether is reached at, for `$externalURL` and generator URLs.
    pub external_url: String,
    /// Counts template expansions that failed (`bellwether_rule_template_errors_total`).
    pub template_errors: prometheus_client::metrics::counter::Counter,
}

impl EvalContext {
    /// Prometheus's `EngineQueryFunc`: an instant query whose result must be
    /// a vector (or a scalar, which becomes one sample without labels).
    pub fn query_vector(&self, expr: &Expr, ts: Timestamp) -> Result<Vec<(Labels, f64)>, String> {
        match self.engine.instant_query(expr, ts, None) {
            Ok(Value::Vector(samples)) => {
                Ok(samples.into_iter().map(|s| (s.labels, s.v)).collect())
            }
            Ok(Value::Scalar { v, .. }) => Ok(vec![(Labels::empty(), v)]),
            Ok(_) => Err("rule result is not a vector or scalar".to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
}
