//! Recording rules: the expression's result, renamed to the rule's name and
//! relabelled with its labels, written back to the store.

use parking_lot::Mutex;
use promql_parser::parser::ast::Expr;

use crate::model::{Labels, Timestamp, METRIC_NAME};

use super::{EvalContext, RuleStatus};

pub struct RecordingRule {
    name: String,
    expr: Expr,
    query: String,
    /// Sorted by name; an empty value removes the label from results.
    labels: Vec<(String, String)>,
    status: Mutex<RuleStatus>,
}

impl RecordingRule {
    pub fn new(name: String, expr: Expr, labels: Vec<(String, String)>) -> RecordingRule {
        RecordingRule {
            query: expr.to_string(),
            name,
            expr,
            labels,
            status: Mutex::new(RuleStatus::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    pub fn status(&self) -> RuleStatus {
        self.status.lock().clone()
    }

    pub(super) fn set_status(&self, status: RuleStatus) {
        *self.status.lock() = status;
    }

    /// One evaluation at `query_ts`: the samples to write there. As in
    /// Prometheus, a rule label with an empty value removes the label, and
    /// two results with the same labels after relabelling are an error.
    pub fn eval(
        &self,
        query_ts: Timestamp,
        ctx: &EvalContext,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let result = ctx.query_vector(&self.expr, query_ts)?;
        let mut out: Vec<(Labels, f64)> = Vec::with_capacity(result.len());
        for (mut labels, value) in result {
            labels.set(METRIC_NAME, &self.name);
            for (name, value) in &self.labels {
                labels.set(name, value);
            }
            out.push((labels, value));
        }
        let mut sorted: Vec<&Labels> = out.iter().map(|(l, _)| l).collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels"
                    .to_string(),
            );
        }
        if limit > 0 && out.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }
}
