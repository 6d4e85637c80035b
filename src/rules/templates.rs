//! The bridge from alerting rules to the template language
//! (`crate::template`): Prometheus's template data for an alert, the
//! `query` function evaluated at the rule's evaluation time, and the
//! `<error expanding template: …>` text of a failed expansion.

use std::collections::BTreeMap;

use crate::model::Timestamp;
use crate::template::{self, AlertTemplateData, QueryFunc, QuerySample};

use super::EvalContext;

/// `query` in templates: an instant query at the evaluation time.
struct EngineQuery<'a> {
    ctx: &'a EvalContext,
    ts: Timestamp,
}

impl QueryFunc for EngineQuery<'_> {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let parsed = crate::promql::parse(expr)?;
        let samples = self.ctx.query_vector(&parsed, self.ts)?;
        Ok(samples
            .into_iter()
            .map(|(labels, value)| QuerySample {
                labels: labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                value,
            })
            .collect())
    }
}

impl EvalContext {
    /// Expands one label or annotation template of alert `alert_name` for a
    /// result sample; a failure becomes Prometheus's
    /// `<error expanding template: …>` text and is counted.
    pub(crate) fn expand_alert_template(
        &self,
        alert_name: &str,
        text: &str,
        labels: &BTreeMap<String, String>,
        value: f64,
        ts: Timestamp,
    ) -> String {
        // Templates without actions are the common case: skip the engine.
        if !text.contains("{{") {
            return text.to_string();
        }
        let data = AlertTemplateData {
            labels,
            external_labels: &self.external_labels,
            external_url: &self.external_url,
            value,
        };
        let query = EngineQuery { ctx: self, ts };
        match template::expand_alert_template(alert_name, text, &data, ts, &query) {
            Ok(expanded) => expanded,
            Err(e) => {
                self.template_errors.inc();
                tracing::warn!(alert = alert_name, error = %e, "expanding alert template failed");
                format!("<error expanding template: {e}>")
            }
        }
    }
}
