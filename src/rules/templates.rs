//! The bridge from alerting rules to the template language (`crate::template`):
//! Prometheus's template data for an alert and the `query` function.
//!
//! TEMPORARY: until `crate::template` lands, templates are passed through
//! unexpanded. Replaced in the same session; see the rule-engine commit log.

use std::collections::BTreeMap;

use crate::model::Timestamp;

use super::EvalContext;

/// Checks that a label or annotation template parses.
pub(crate) fn check(_alert_name: &str, _text: &str) -> Result<(), String> {
    Ok(())
}

impl EvalContext {
    /// Expands one label or annotation template of alert `alert_name` for a
    /// result sample; a failure becomes Prometheus's
    /// `<error expanding template: …>` text and is counted.
    pub(crate) fn expand_alert_template(
        &self,
        _alert_name: &str,
        text: &str,
        _labels: &BTreeMap<String, String>,
        _value: f64,
        _ts: Timestamp,
    ) -> String {
        text.to_string()
    }
}
