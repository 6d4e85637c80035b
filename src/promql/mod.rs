//! PromQL: parsing (with the `promql-parser` crate) and evaluation of
//! instant and range queries over the store, with Prometheus 2.42's
//! semantics — the reference every answer is compared against.
//!
//! - `mod.rs` (this file): the public entry points ([`parse`], [`Engine`]),
//!   options and limits, and the error type with Prometheus's wording.
//! - `eval.rs`: expression dispatch, selectors, lookback and staleness,
//!   `offset`/`@`, subqueries, binary operators and vector matching.
//! - `aggregate.rs`: aggregation operators.
//! - `functions.rs`: functions.
//! - `value.rs`: result types and label-set helpers.
//!
//! The engine only reads the store through `Storage::querier(..).select(..)`;
//! it must not know how the store keeps samples. It does not write anything.
//! HTTP concerns (parameters, JSON) live in `api/query.rs`.

mod aggregate;
mod errors;
mod eval;
mod functions;
mod gomath;
mod value;

#[cfg(test)]
mod tests;

use std::sync::Once;
use std::time::{Duration, Instant};

use promql_parser::parser::ast::Expr;
use promql_parser::parser::value::ValueType;

pub(crate) use eval::selector_matchers;
pub use functions::{format_go_float, go_exponent, shortest_decimal, PROMETHEUS_2_42_FUNCTIONS};
pub use value::{InstantSample, Point, RangeSeries, Value};

use crate::model::Timestamp;
use crate::storage::Storage;

/// Prometheus's default `--query.lookback-delta`.
pub const DEFAULT_LOOKBACK_DELTA: Duration = Duration::from_secs(5 * 60);
/// Prometheus's default `--query.max-samples`.
pub const DEFAULT_MAX_SAMPLES: usize = 50_000_000;
/// Prometheus's default `--query.timeout`.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);
/// The step of a subquery written without one (`x[5m:]`): Prometheus uses the
/// global evaluation interval, 1 m by default.
pub const DEFAULT_SUBQUERY_STEP: Duration = Duration::from_secs(60);
/// The most points a range query may return per series (checked by the API,
/// as Prometheus's API checks it).
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Limits and defaults of query evaluation.
///
/// TODO: these are constants until the config grows a `query:` section
/// (see docs/promql.md); Prometheus takes them from command-line flags.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample.
    pub lookback_delta_ms: i64,
    /// Samples a query may hold at once before it fails.
    pub max_samples: usize,
    /// Longest evaluation; a request's `timeout` parameter can only shorten it.
    pub timeout: Duration,
    /// Step of subqueries written without one.
    pub no_step_subquery_interval_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: DEFAULT_LOOKBACK_DELTA.as_millis() as i64,
            max_samples: DEFAULT_MAX_SAMPLES,
            timeout: DEFAULT_QUERY_TIMEOUT,
            no_step_subquery_interval_ms: DEFAULT_SUBQUERY_STEP.as_millis() as i64,
        }
    }
}

/// Why a query failed, worded as Prometheus words it. The API maps
/// `Timeout` to `timeout` (503), `BadQuery` to `bad_data` (400), `Storage`
/// to `internal` (500) and the rest to `execution` (422).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    #[error("query timed out in expression evaluation")]
    Timeout,
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("{0}")]
    Execution(String),
    /// Something Prometheus refuses before evaluating (wrong result type for
    /// a range query, a construct Prometheus 2.42 does not have).
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    Storage(String),
}

static REGISTER_EXTRA_FUNCTIONS: Once = Once::new();

/// Parses a query the way Prometheus 2.42 does: the crate's parser, plus
/// `holt_winters` (which the crate knows only by its Prometheus 3 name), minus
/// what Prometheus 2.42 does not have (later functions, `limitk`, `or` in
/// matchers, fill modifiers). Errors read `<line>:<col>: parse error: ...`
/// where the position is known.
pub fn parse(query: &str) -> Result<Expr, String> {
    REGISTER_EXTRA_FUNCTIONS.call_once(|| {
        use promql_parser::parser::function::{register_extra_functions, Function};
        // Ignored on failure: then the parser already knows the name.
        let _ = register_extra_functions(vec![Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        )]);
    });
    let expr = parse_unchecked(query).map_err(|e| parse_error_text(query, &e))?;
    check_prometheus_2_42(&expr, query)?;
    Ok(expr)
}

/// The crate's parser, with its panics turned into errors. promql-parser 0.11
/// panics on durations written as out-of-range numbers (`up[1e400]`,
/// `up offset Inf`, found by fuzzing); query text comes from the network, so
/// a panic there must be a `bad_data` answer, never a dropped connection.
pub fn parse_unchecked(text: &str) -> Result<Expr, String> {
    std::panic::catch_unwind(|| promql_parser::parser::parse(text)).unwrap_or_else(|_| {
        Err("parse error: a duration or number in the query is out of range".to_string())
    })
}

/// The crate's messages carry no position; Prometheus's start with one.
fn parse_error_text(query: &str, message: &str) -> String {
    // The crate's grammar error names nothing; when the query would parse
    // with one more operand, the input ended early, which Prometheus
    // reports at the end.
    if message == "invalid promql query" && parse_unchecked(&format!("{query} 0")).is_ok() {
        return errors::parse_error_text(query, "unexpected end of input");
    }
    errors::parse_error_text(query, message)
}

/// Refuses what the crate parses but Prometheus 2.42 does not.
fn check_prometheus_2_42(expr: &Expr, query: &str) -> Result<(), String> {
    let position = |needle: &str| errors::position(query, query.find(needle).unwrap_or(0));
    match expr {
        Expr::Call(c) => {
            if !PROMETHEUS_2_42_FUNCTIONS.contains(&c.func.name) {
                return Err(format!(
                    "{}: parse error: unknown function with name {}",
                    position(c.func.name),
                    crate::api::prometheus::go_quote(c.func.name)
                ));
            }
            c.args
                .args
                .iter()
                .try_for_each(|a| check_prometheus_2_42(a, query))
        }
        Expr::Aggregate(a) => {
            use promql_parser::parser::token::{T_LIMITK, T_LIMIT_RATIO};
            if matches!(a.op.id(), T_LIMITK | T_LIMIT_RATIO) {
                let name = a.op.to_string();
                return Err(format!(
                    "{}: parse error: unknown function with name {}",
                    position(&name),
                    crate::api::prometheus::go_quote(&name)
                ));
            }
            if let Some(p) = &a.param {
                check_prometheus_2_42(p, query)?;
            }
            check_prometheus_2_42(&a.expr, query)
        }
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(format!(
                        "{}: parse error: unexpected identifier \"fill\"",
                        position("fill")
                    ));
                }
            }
            check_prometheus_2_42(&b.lhs, query)?;
            check_prometheus_2_42(&b.rhs, query)
        }
        Expr::VectorSelector(vs) if !vs.matchers.or_matchers.is_empty() => Err(format!(
            "{}: parse error: unexpected identifier \"or\" in label matching, expected string",
            position(" or ")
        )),
        Expr::MatrixSelector(ms) if !ms.vs.matchers.or_matchers.is_empty() => Err(format!(
            "{}: parse error: unexpected identifier \"or\" in label matching, expected string",
            position(" or ")
        )),
        Expr::Unary(u) => check_prometheus_2_42(&u.expr, query),
        Expr::Paren(p) => check_prometheus_2_42(&p.expr, query),
        Expr::Subquery(s) => check_prometheus_2_42(&s.expr, query),
        Expr::Extension(_) => Err("1:1: parse error: unsupported expression".to_string()),
        _ => Ok(()),
    }
}

/// Evaluates parsed queries against the store.
#[derive(Clone)]
pub struct Engine {
    storage: Storage,
    options: EngineOptions,
}

impl Engine {
    pub fn new(storage: Storage, options: EngineOptions) -> Engine {
        Engine { storage, options }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn deadline(&self, timeout: Option<Duration>) -> Instant {
        let timeout = timeout.map_or(self.options.timeout, |t| t.min(self.options.timeout));
        Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + DEFAULT_QUERY_TIMEOUT)
    }

    /// An instant query at `t` (milliseconds). Blocks on the store: call it
    /// from a blocking thread.
    pub fn instant_query(
        &self,
        expr: &Expr,
        t: Timestamp,
        timeout: Option<Duration>,
    ) -> Result<Value, EvalError> {
        let deadline = self.deadline(timeout);
        let mut ev = eval::Evaluator::new(&self.storage, &self.options, expr, t, t, deadline);
        ev.instant(expr, t)
    }

    /// A range query over `[start, end]` every `step` milliseconds; the
    /// result is a matrix sorted by label set.
    pub fn range_query(
        &self,
        expr: &Expr,
        start: Timestamp,
        end: Timestamp,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<Value, EvalError> {
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                let documented = match other {
                    ValueType::Matrix => "range vector",
                    ValueType::String => "string",
                    ValueType::Vector => "instant vector",
                    ValueType::Scalar => "scalar",
                };
                return Err(EvalError::BadQuery(format!(
                    "invalid expression type {documented:?} for range query, must be Scalar or instant Vector"
                )));
            }
        }
        if step <= 0 {
            return Err(EvalError::BadQuery(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .to_string(),
            ));
        }
        let deadline = self.deadline(timeout);
        let mut ev = eval::Evaluator::new(&self.storage, &self.options, expr, start, end, deadline);
        ev.range(expr, start, end, step)
    }
}
