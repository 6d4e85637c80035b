//! PromQL functions, as Prometheus 2.42's `promql/functions.go` and
//! `promql/quantile.go` compute them: range-vector functions (`rate`,
//! `*_over_time`, `deriv`, `holt_winters`, ...) per series over the points of
//! one window, and instant-vector functions per element.
//!
//! Only float samples exist in bellwether's store, so the native-histogram
//! functions (`histogram_count`, `histogram_sum`, `histogram_fraction`)
//! return empty vectors, exactly as Prometheus does for float series.

use crate::model::days_in_month;
use promql_parser::parser::ast::Call;
use promql_parser::parser::Expr;

use std::borrow::Cow;
use std::rc::Rc;

use super::eval::{check_unique, duration_ms, type_error, unwrap_parens, Evaluator, SeriesMeta};
use super::gomath;
use super::value::{drop_metric_name, InstantSample, Point, RangeSeries, Value};
use super::EvalError;
use crate::model::{is_valid_label_name, Labels, MatchOp, Timestamp, METRIC_NAME};
use crate::storage::Series;

/// The functions Prometheus 2.42 knows. The parser knows later ones too;
/// those are refused as Prometheus 2.42 refuses them, as unknown.
pub const PROMETHEUS_2_42_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "ln",
    "log10",
    "log2",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

impl Evaluator<'_> {
    pub(crate) fn call(&mut self, call: &Call, t: Timestamp) -> Result<Value, EvalError> {
        let name = call.func.name;
        let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
        let arg = |i: usize| -> Result<&Expr, EvalError> {
            args.get(i).copied().ok_or_else(|| {
                EvalError::BadQuery(format!("missing argument {} of {name}()", i + 1))
            })
        };
        match name {
            "time" => {
                return Ok(Value::Scalar {
                    t,
                    v: t as f64 / 1000.0,
                })
            }
            "pi" => {
                return Ok(Value::Scalar {
                    t,
                    v: std::f64::consts::PI,
                })
            }
            "timestamp" => {
                // A selector's samples carry their own time; anything else
                // was computed at the evaluation time.
                let input = match arg(0)? {
                    Expr::VectorSelector(vs) => self.vector_selector(vs, t)?,
                    other => self
                        .vector_arg(other, t)?
                        .into_iter()
                        .map(|s| InstantSample { t, ..s })
                        .collect(),
                };
                let out = input
                    .into_iter()
                    .map(|s| InstantSample {
                        labels: drop_metric_name(&s.labels),
                        t,
                        v: s.t as f64 / 1000.0,
                    })
                    .collect();
                return check_unique(out);
            }
            _ => {}
        }
        if let Some(matrix_index) = args
            .iter()
            .position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_)))
        {
            return self.call_range_function(name, &args, matrix_index, t);
        }
        self.call_instant_function(name, &args, t)
    }

    /// A function with a range-vector argument, applied per series.
    fn call_range_function(
        &mut self,
        name: &str,
        args: &[&Expr],
        matrix_index: usize,
        t: Timestamp,
    ) -> Result<Value, EvalError> {
        let mut scalars = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != matrix_index {
                scalars.push(self.scalar_arg(a, t)?);
            }
        }
        // A matrix selector's windows are sliced out of the series read once
        // per query (no range vector is built per step); a subquery's points
        // are computed per step.
        let (end, range_ms) = match args[matrix_index] {
            Expr::MatrixSelector(ms) => (
                self.reference_time(&ms.vs.at, &ms.vs.offset, t),
                duration_ms(&ms.range),
            ),
            Expr::Subquery(sq) => (
                self.reference_time(&sq.at, &sq.offset, t),
                duration_ms(&sq.range),
            ),
            _ => unreachable!("matrix_index points at a matrix selector or subquery"),
        };
        let (range_start, range_end) = (end.saturating_sub(range_ms), end);
        let input = match args[matrix_index] {
            Expr::MatrixSelector(ms) => {
                let (series, meta) = self.matrix_series(&ms.vs, range_start, range_end)?;
                RangeInput::Stored(series, meta)
            }
            Expr::Subquery(sq) => RangeInput::Computed(self.subquery(sq, t)?),
            _ => unreachable!("matrix_index points at a matrix selector or subquery"),
        };
        let windows = input.windows(range_start, range_end);
        if name == "absent_over_time" {
            if windows.iter().any(|w| !w.1.is_empty()) {
                return Ok(Value::Vector(Vec::new()));
            }
            return Ok(Value::Vector(vec![InstantSample {
                labels: absent_labels(args[matrix_index]),
                t,
                v: 1.0,
            }]));
        }
        if let RangeInput::Stored(..) = input {
            // A subquery has counted its points already.
            let total: usize = windows.iter().map(|w| w.1.len()).sum();
            self.check_samples(total)?;
        }
        // Prometheus checks the factors per series, so a window without
        // samples never fails.
        if name == "holt_winters" && windows.iter().any(|w| !w.1.is_empty()) {
            let (sf, tf) = (scalars.first().copied(), scalars.get(1).copied());
            let (Some(sf), Some(tf)) = (sf, tf) else {
                return Err(EvalError::BadQuery(
                    "holt_winters needs three arguments".into(),
                ));
            };
            if sf <= 0.0 || sf >= 1.0 {
                return Err(EvalError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                    go_percent_f(sf)
                )));
            }
            if tf <= 0.0 || tf >= 1.0 {
                return Err(EvalError::Execution(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                    go_percent_f(tf)
                )));
            }
        }
        let scalar = |i: usize| scalars.get(i).copied().unwrap_or(f64::NAN);
        let mut out = Vec::with_capacity(windows.len());
        for (i, p) in &windows {
            let p: &[Point] = p;
            if p.is_empty() {
                continue;
            }
            let value = match name {
                "rate" => extrapolated_rate(p, range_start, range_end, range_ms, true, true),
                "increase" => extrapolated_rate(p, range_start, range_end, range_ms, true, false),
                "delta" => extrapolated_rate(p, range_start, range_end, range_ms, false, false),
                "irate" => instant_value(p, true),
                "idelta" => instant_value(p, false),
                "avg_over_time" => Some(avg_over_time(p)),
                "count_over_time" => Some(p.len() as f64),
                "last_over_time" => p.last().map(|x| x.v),
                "max_over_time" => {
                    Some(
                        p.iter()
                            .fold(p[0].v, |m, x| if x.v > m || m.is_nan() { x.v } else { m }),
                    )
                }
                "min_over_time" => {
                    Some(
                        p.iter()
                            .fold(p[0].v, |m, x| if x.v < m || m.is_nan() { x.v } else { m }),
                    )
                }
                "sum_over_time" => Some(kahan_sum(p.iter().map(|x| x.v))),
                "quantile_over_time" => Some(quantile(scalar(0), p.iter().map(|x| x.v).collect())),
                "stddev_over_time" => Some(stdvar_over_time(p).sqrt()),
                "stdvar_over_time" => Some(stdvar_over_time(p)),
                "present_over_time" => Some(1.0),
                "changes" => Some(changes(p)),
                "resets" => Some(resets(p)),
                "deriv" => (p.len() >= 2).then(|| linear_regression(p, p[0].t).0),
                "predict_linear" => (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, t);
                    slope * scalar(0) + intercept
                }),
                "holt_winters" => holt_winters(p, scalar(0), scalar(1)),
                other => {
                    return Err(EvalError::BadQuery(format!(
                        "unknown function with name {}",
                        crate::api::prometheus::go_quote(other)
                    )))
                }
            };
            if let Some(v) = value {
                let labels = if name == "last_over_time" {
                    input.labels(*i)
                } else {
                    input.dropped_labels(*i)
                };
                out.push(InstantSample { labels, t, v });
            }
        }
        if name != "last_over_time" && input.dropped_unique() {
            return Ok(Value::Vector(out));
        }
        check_unique(out)
    }

    /// Functions over instant vectors and scalars, evaluated per element.
    fn call_instant_function(
        &mut self,
        name: &str,
        args: &[&Expr],
        t: Timestamp,
    ) -> Result<Value, EvalError> {
        let arg = |i: usize| -> Result<&Expr, EvalError> {
            args.get(i).copied().ok_or_else(|| {
                EvalError::BadQuery(format!("missing argument {} of {name}()", i + 1))
            })
        };
        let math: Option<fn(f64) -> f64> = match name {
            "abs" => Some(f64::abs),
            "ceil" => Some(f64::ceil),
            "floor" => Some(f64::floor),
            "exp" => Some(gomath::exp),
            "sqrt" => Some(f64::sqrt),
            "ln" => Some(gomath::log),
            "log2" => Some(gomath::log2),
            "log10" => Some(gomath::log10),
            "sin" => Some(gomath::sin),
            "cos" => Some(gomath::cos),
            "tan" => Some(gomath::tan),
            "asin" => Some(gomath::asin),
            "acos" => Some(gomath::acos),
            "atan" => Some(gomath::atan),
            "sinh" => Some(gomath::sinh),
            "cosh" => Some(gomath::cosh),
            "tanh" => Some(gomath::tanh),
            "asinh" => Some(gomath::asinh),
            "acosh" => Some(gomath::acosh),
            "atanh" => Some(gomath::atanh),
            "rad" => Some(|v| v * std::f64::consts::PI / 180.0),
            "deg" => Some(|v| v * 180.0 / std::f64::consts::PI),
            "sgn" => Some(|v: f64| {
                if v < 0.0 {
                    -1.0
                } else if v > 0.0 {
                    1.0
                } else {
                    v
                }
            }),
            _ => None,
        };
        if let Some(f) = math {
            let input = self.vector_arg(arg(0)?, t)?;
            return check_unique(map_values(input, t, f));
        }
        let date: Option<fn(&Civil) -> f64> = match name {
            "day_of_month" => Some(|c| c.day as f64),
            "day_of_week" => Some(|c| c.weekday as f64),
            "day_of_year" => Some(|c| c.yearday as f64),
            "days_in_month" => Some(|c| days_in_month(c.year, c.month) as f64),
            "hour" => Some(|c| c.hour as f64),
            "minute" => Some(|c| c.minute as f64),
            "month" => Some(|c| c.month as f64),
            "year" => Some(|c| c.year as f64),
            _ => None,
        };
        if let Some(f) = date {
            if args.is_empty() {
                let civil = Civil::from_unix(t.div_euclid(1000));
                return Ok(Value::Vector(vec![InstantSample {
                    labels: Labels::empty(),
                    t,
                    v: f(&civil),
                }]));
            }
            let input = self.vector_arg(arg(0)?, t)?;
            return check_unique(map_values(input, t, |v| {
                f(&Civil::from_unix(go_float_to_int64(v)))
            }));
        }
        match name {
            "clamp" => {
                let input = self.vector_arg(arg(0)?, t)?;
                let min = self.scalar_arg(arg(1)?, t)?;
                let max = self.scalar_arg(arg(2)?, t)?;
                if max < min {
                    return Ok(Value::Vector(Vec::new()));
                }
                check_unique(map_values(input, t, |v| go_max(min, go_min(max, v))))
            }
            "clamp_max" => {
                let input = self.vector_arg(arg(0)?, t)?;
                let max = self.scalar_arg(arg(1)?, t)?;
                check_unique(map_values(input, t, |v| go_min(max, v)))
            }
            "clamp_min" => {
                let input = self.vector_arg(arg(0)?, t)?;
                let min = self.scalar_arg(arg(1)?, t)?;
                check_unique(map_values(input, t, |v| go_max(min, v)))
            }
            "round" => {
                let input = self.vector_arg(arg(0)?, t)?;
                let to_nearest = match args.get(1) {
                    Some(a) => self.scalar_arg(a, t)?,
                    None => 1.0,
                };
                let inverse = 1.0 / to_nearest;
                check_unique(map_values(input, t, |v| {
                    (v * inverse + 0.5).floor() / inverse
                }))
            }
            "scalar" => {
                let input = self.vector_arg(arg(0)?, t)?;
                let v = if input.len() == 1 {
                    input[0].v
                } else {
                    f64::NAN
                };
                Ok(Value::Scalar { t, v })
            }
            "vector" => {
                let v = self.scalar_arg(arg(0)?, t)?;
                Ok(Value::Vector(vec![InstantSample {
                    labels: Labels::empty(),
                    t,
                    v,
                }]))
            }
            "sort" | "sort_desc" => {
                let mut input = self.vector_arg(arg(0)?, t)?;
                // Go sorts with a NaN-first `Less`; keep NaN first in both directions.
                let desc = name == "sort_desc";
                input.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if desc => b.v.total_cmp(&a.v),
                    _ => a.v.total_cmp(&b.v),
                });
                Ok(Value::Vector(input))
            }
            "absent" => {
                let input = self.vector_arg(arg(0)?, t)?;
                if !input.is_empty() {
                    return Ok(Value::Vector(Vec::new()));
                }
                Ok(Value::Vector(vec![InstantSample {
                    labels: absent_labels(arg(0)?),
                    t,
                    v: 1.0,
                }]))
            }
            "label_replace" => {
                let dst = self.string_arg(arg(1)?, t)?;
                let replacement = self.string_arg(arg(2)?, t)?;
                let src = self.string_arg(arg(3)?, t)?;
                let pattern = self.string_arg(arg(4)?, t)?;
                let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
                    EvalError::Execution(format!(
                        "invalid regular expression in label_replace(): {pattern}"
                    ))
                })?;
                if !is_valid_label_name(&dst) {
                    return Err(EvalError::Execution(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let input = self.vector_arg(arg(0)?, t)?;
                let mut out = Vec::with_capacity(input.len());
                for s in input {
                    let source = s.labels.get(&src).unwrap_or("").to_string();
                    let mut labels = s.labels;
                    if let Some(caps) = regex.captures(&source) {
                        let mut value = String::new();
                        caps.expand(&replacement, &mut value);
                        labels.set(&dst, &value);
                    }
                    out.push(InstantSample { labels, t, v: s.v });
                }
                check_unique(out)
            }
            "label_join" => {
                let dst = self.string_arg(arg(1)?, t)?;
                let separator = self.string_arg(arg(2)?, t)?;
                let mut sources = Vec::new();
                for a in args.iter().skip(3) {
                    let src = self.string_arg(a, t)?;
                    if !is_valid_label_name(&src) {
                        return Err(EvalError::Execution(format!(
                            "invalid source label name in label_join(): {src}"
                        )));
                    }
                    sources.push(src);
                }
                if !is_valid_label_name(&dst) {
                    return Err(EvalError::Execution(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let input = self.vector_arg(arg(0)?, t)?;
                let mut out = Vec::with_capacity(input.len());
                for s in input {
                    let joined: Vec<&str> = sources
                        .iter()
                        .map(|n| s.labels.get(n).unwrap_or(""))
                        .collect();
                    let joined = joined.join(&separator);
                    let mut labels = s.labels.clone();
                    labels.set(&dst, &joined);
                    out.push(InstantSample { labels, t, v: s.v });
                }
                check_unique(out)
            }
            "histogram_quantile" => {
                let q = self.scalar_arg(arg(0)?, t)?;
                let input = self.vector_arg(arg(1)?, t)?;
                check_unique(histogram_quantile(q, input, t))
            }
            "histogram_count" | "histogram_sum" => {
                self.vector_arg(arg(0)?, t)?;
                Ok(Value::Vector(Vec::new()))
            }
            "histogram_fraction" => {
                self.vector_arg(arg(2)?, t)?;
                Ok(Value::Vector(Vec::new()))
            }
            other => Err(EvalError::BadQuery(format!(
                "unknown function with name {}",
                crate::api::prometheus::go_quote(other)
            ))),
        }
    }

    fn string_arg(&mut self, expr: &Expr, t: Timestamp) -> Result<String, EvalError> {
        match self.eval(expr, t)? {
            Value::String { v, .. } => Ok(v),
            other => Err(type_error("string argument", &other)),
        }
    }
}

fn map_values(
    input: Vec<InstantSample>,
    t: Timestamp,
    f: impl Fn(f64) -> f64,
) -> Vec<InstantSample> {
    input
        .into_iter()
        .map(|s| InstantSample {
            labels: drop_metric_name(&s.labels),
            t,
            v: f(s.v),
        })
        .collect()
}

/// Go's `math.Max`: NaN wins, then +Inf.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins, then -Inf.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// Go's `int64(f)` on amd64: out-of-range and NaN give `math.MinInt64`.
fn go_float_to_int64(v: f64) -> i64 {
    if v.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        i64::MIN
    } else {
        v as i64
    }
}

/// The labels `absent()`/`absent_over_time()` give their result: the
/// equality matchers of a selector argument, minus names matched otherwise.
fn absent_labels(arg: &Expr) -> Labels {
    let vs = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let Ok(matchers) = super::eval::selector_matchers(vs) else {
        return Labels::empty();
    };
    let mut labels = Labels::empty();
    let mut emptied = Vec::new();
    for m in matchers.iter().filter(|m| m.name != METRIC_NAME) {
        if m.op == MatchOp::Equal && labels.get(&m.name).is_none() {
            labels.set(&m.name, &m.value);
        } else {
            emptied.push(m.name.clone());
        }
    }
    for name in emptied {
        labels.remove(&name);
    }
    labels
}

/// The range-vector argument of a range function at one step: a matrix
/// selector's stored series (windows borrowed from them), or a subquery's
/// computed series.
enum RangeInput {
    Stored(Rc<Vec<Series>>, Rc<SeriesMeta>),
    Computed(Vec<RangeSeries>),
}

impl RangeInput {
    /// Each series' index and its points in `[start, end]` (without
    /// staleness markers), in series order.
    fn windows(&self, start: Timestamp, end: Timestamp) -> Vec<(usize, Cow<'_, [Point]>)> {
        match self {
            RangeInput::Stored(series, meta) => meta.windows(series, start, end),
            RangeInput::Computed(series) => series
                .iter()
                .enumerate()
                .map(|(i, s)| (i, Cow::Borrowed(s.points.as_slice())))
                .collect(),
        }
    }

    fn labels(&self, i: usize) -> Labels {
        match self {
            RangeInput::Stored(series, _) => series[i].labels.clone(),
            RangeInput::Computed(series) => series[i].labels.clone(),
        }
    }

    fn dropped_labels(&self, i: usize) -> Labels {
        match self {
            RangeInput::Stored(_, meta) => meta.dropped[i].clone(),
            RangeInput::Computed(series) => drop_metric_name(&series[i].labels),
        }
    }

    /// Whether outputs labelled by `dropped_labels` can never collide.
    fn dropped_unique(&self) -> bool {
        match self {
            RangeInput::Stored(_, meta) => meta.dropped_unique,
            RangeInput::Computed(_) => false,
        }
    }
}

/// `rate`, `increase` and `delta`: the change over the window, corrected for
/// counter resets and extrapolated towards the window's edges.
pub fn extrapolated_rate(
    points: &[Point],
    range_start: Timestamp,
    range_end: Timestamp,
    range_ms: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut duration_to_start = (first.t - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_between = sampled_interval / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two points.
pub fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let previous = points[points.len() - 2];
    let mut result = if is_rate && last.v < previous.v {
        last.v
    } else {
        last.v - previous.v
    };
    let interval = last.t - previous.t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Kahan-Babuska summation step (Go's `kahanSumInc`).
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for v in values {
        (sum, c) = kahan_inc(v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

fn avg_over_time(points: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for p in points {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + c
    }
}

fn stdvar_over_time(points: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn changes(points: &[Point]) -> f64 {
    let mut n = 0;
    for w in points.windows(2) {
        let (prev, cur) = (w[0].v, w[1].v);
        if cur != prev && !(cur.is_nan() && prev.is_nan()) {
            n += 1;
        }
    }
    n as f64
}

fn resets(points: &[Point]) -> f64 {
    points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64
}

/// Least-squares slope and intercept (at `intercept_time`), Go's `linearRegression`.
pub fn linear_regression(points: &[Point], intercept_time: Timestamp) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].v;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Double exponential smoothing as Prometheus 2.42's `holt_winters`.
fn holt_winters(points: &[Point], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let trend = |i: usize, s0: f64, s1: f64, b: f64| {
        if i == 0 {
            b
        } else {
            tf * (s1 - s0) + (1.0 - tf) * b
        }
    };
    let mut s0 = 0.0;
    let mut s1 = points[0].v;
    let mut b = points[1].v - points[0].v;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.v;
        b = trend(i - 1, s0, s1, b);
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// The φ-quantile of `values` (Go's `quantile`), interpolating between ranks.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn nan_first(a: &f64, b: &f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    }
}

/// `histogram_quantile` over classic buckets: group the `le` series by their
/// other labels (name included), then interpolate within the bucket.
fn histogram_quantile(q: f64, input: Vec<InstantSample>, t: Timestamp) -> Vec<InstantSample> {
    let mut index: std::collections::HashMap<Labels, usize> = Default::default();
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    for s in input {
        let Some(upper) = s.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let mut key = s.labels.clone();
        key.remove("le");
        let i = *index.entry(key).or_insert_with(|| {
            let mut labels = drop_metric_name(&s.labels);
            labels.remove("le");
            groups.push((labels, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((upper, s.v));
    }
    groups
        .into_iter()
        .map(|(labels, buckets)| InstantSample {
            labels,
            t,
            v: bucket_quantile(q, buckets),
        })
        .collect()
}

/// Go's `strconv.ParseFloat` for the forms an `le` label takes.
fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
        return None;
    }
    s.parse().ok()
}

/// Go's `bucketQuantile`.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| nan_first(&a.0, &b.0));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    let mut buckets = merged;
    // Ensure monotonic counts.
    let mut max = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    // sort.Search over all but the +Inf bucket.
    let b = buckets[..buckets.len() - 1]
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// A UTC calendar date and time of day.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    weekday: i64,
    yearday: i64,
}

impl Civil {
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = crate::model::civil_from_days(days);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let before: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yearday = before[(month - 1) as usize] + day + i64::from(leap && month > 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            weekday: (days + 4).rem_euclid(7),
            yearday,
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: what `count_values` writes.
pub fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        shortest_decimal(v)
    }
}

/// The shortest decimal that reads back as `v`, without exponent. Where 17
/// significant digits are needed several strings read back; Go picks the one
/// closest to the exact binary value, Rust's `Display` not always, so those
/// are re-rounded exactly (`{:.16e}` rounds correctly).
pub fn shortest_decimal(v: f64) -> String {
    let shortest = format!("{v}");
    let significant = shortest
        .trim_start_matches(['-', '0', '.'])
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    if significant < 17 {
        return shortest;
    }
    let sci = format!("{v:.16e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return shortest;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return shortest;
    };
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let point = exp + 1; // digits before the decimal point
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-point) as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.push_str(&"0".repeat(point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    match out.parse::<f64>() {
        Ok(back) if back == v => out,
        _ => shortest,
    }
}

/// Go's `%f` (six decimals), as Prometheus's holt_winters messages use.
fn go_percent_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

/// Go's `%v`/`%g` for a float64: shortest representation, exponent form for
/// exponents below -4 or at least 21, as `strconv.FormatFloat(v, 'g', -1, 64)`
/// with Go's `%v` threshold.
pub fn format_go_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        go_exponent(v)
    } else {
        format!("{v}")
    }
}

/// Rust's `{:e}` (`1e-7`) in Go's spelling (`1e-07`).
pub fn go_exponent(v: f64) -> String {
    let s = format!("{v:e}");
    let Some((mantissa, exp)) = s.split_once('e') else {
        return s;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let digits = if digits.len() < 2 {
        format!("0{digits}")
    } else {
        digits.to_string()
    };
    format!("{mantissa}e{sign}{digits}")
}
