//! The evaluator: walks a parsed expression at one evaluation time and
//! returns its [`Value`]; range queries evaluate the expression once per step.
//!
//! Prometheus 2.42's engine is itself step-by-step (`rangeEval` builds one
//! input vector per step and calls the operator on it), so evaluating the
//! whole tree per step gives the same answers. What it must not do is read
//! the store per step: before evaluating, [`plan_windows`] computes the time
//! range every selector needs over the whole query (lookback, ranges,
//! offsets, `@`, subqueries), and each selector reads the store once.
//!
//! This file owns expression dispatch, selectors, subqueries, the limits
//! (timeout, samples) and the vector-matching operators; functions live in
//! `functions.rs`, aggregations in `aggregate.rs`.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::ast::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, SubqueryExpr, VectorMatchCardinality,
    VectorSelector,
};
use promql_parser::parser::token::*;

use super::value::{
    drop_labels, drop_metric_name, go_labels_string, has_duplicate_labelsets, keep_labels,
    signature, FastHash, InstantSample, Point, RangeSeries, Value,
};
use super::{EngineOptions, EvalError};
use crate::model::{is_stale_nan, Labels, MatchOp, Matcher, Timestamp, METRIC_NAME};
use crate::storage::{Series, Storage};

/// The time range of raw samples one selector node needs, keyed by the node's address.
type Windows = HashMap<usize, (Timestamp, Timestamp)>;

/// The series read for one selector node and the window they cover.
/// Series read for a selector: the window read, whether only each series'
/// newest sample was read, and the series.
type CachedSeries = ((Timestamp, Timestamp), bool, Rc<Vec<Series>>);

/// Facts about one selector's series that a range function needs at every
/// step, computed once per read instead of once per step and series.
pub(crate) struct SeriesMeta {
    /// Each series' labels without `__name__` (what most functions return).
    pub(crate) dropped: Vec<Labels>,
    /// Whether the series holds a staleness marker in the read window; only
    /// then must a window be copied to leave the markers out.
    pub(crate) has_stale: Vec<bool>,
    /// Whether the `dropped` label sets are all distinct, so no step's
    /// output can hold two elements with one label set.
    pub(crate) dropped_unique: bool,
    /// Per series, where the previous window began and ended, and that
    /// window's `[start, end]`: steps move forward, so the next window is
    /// found by walking on from there, not by binary search over the whole
    /// series (random reads over hundreds of megabytes of samples were three
    /// quarters of a 24 h range query's time).
    cursors: std::cell::RefCell<Vec<(usize, usize)>>,
    last_window: std::cell::Cell<(Timestamp, Timestamp)>,
}

impl SeriesMeta {
    /// Each series' index and its samples in `[start, end]` without
    /// staleness markers, in series order.
    pub(crate) fn windows<'s>(
        &self,
        series: &'s [Series],
        start: Timestamp,
        end: Timestamp,
    ) -> Vec<(usize, std::borrow::Cow<'s, [Point]>)> {
        let mut cursors = self.cursors.borrow_mut();
        let (last_start, last_end) = self.last_window.get();
        let forward = start >= last_start && end >= last_end;
        self.last_window.set((start, end));
        let mut out = Vec::with_capacity(series.len());
        for (i, s) in series.iter().enumerate() {
            let samples = &s.samples[..];
            let (from, to) = if forward {
                let (from, to) = cursors[i];
                let from = advance(samples, from, |x| x.t < start);
                (from, advance(samples, to.max(from), |x| x.t <= end))
            } else {
                let from = samples.partition_point(|x| x.t < start);
                (from, samples.partition_point(|x| x.t <= end).max(from))
            };
            cursors[i] = (from, to);
            out.push((i, without_stale(&samples[from..to], self.has_stale[i])));
        }
        out
    }
}

/// The first index at or after `pos` where `before` is false: a short walk,
/// then a binary search over the rest.
fn advance(samples: &[Point], mut pos: usize, before: impl Fn(&Point) -> bool) -> usize {
    for _ in 0..16 {
        match samples.get(pos) {
            Some(x) if before(x) => pos += 1,
            _ => return pos,
        }
    }
    pos + samples[pos..].partition_point(before)
}

pub(crate) struct Evaluator<'a> {
    storage: &'a Storage,
    pub(crate) options: &'a EngineOptions,
    /// The query's start and end: what `@ start()` and `@ end()` mean.
    query_start: Timestamp,
    query_end: Timestamp,
    deadline: Instant,
    windows: Windows,
    /// Series read for each selector node, with the window read.
    cache: HashMap<usize, CachedSeries>,
    /// [`SeriesMeta`] of the series in `cache`, for matrix selectors.
    meta: HashMap<usize, (Rc<Vec<Series>>, Rc<SeriesMeta>)>,
    /// Samples held for the current step; checked against `max_samples`.
    step_samples: usize,
    /// Samples held across steps (the range query's result so far).
    kept_samples: usize,
}

/// Milliseconds of a `std::time::Duration`, saturating.
pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> Timestamp {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Strips any number of parentheses.
pub(crate) fn unwrap_parens(mut expr: &Expr) -> &Expr {
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    expr
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        storage: &'a Storage,
        options: &'a EngineOptions,
        expr: &Expr,
        start: Timestamp,
        end: Timestamp,
        deadline: Instant,
    ) -> Evaluator<'a> {
        let mut ev = Evaluator {
            storage,
            options,
            query_start: start,
            query_end: end,
            deadline,
            windows: Windows::new(),
            cache: HashMap::new(),
            meta: HashMap::new(),
            step_samples: 0,
            kept_samples: 0,
        };
        let mut windows = Windows::new();
        ev.plan_windows(expr, (start, end), &mut windows);
        ev.windows = windows;
        ev
    }

    /// Evaluates `expr` as an instant query at `t`.
    pub(crate) fn instant(&mut self, expr: &Expr, t: Timestamp) -> Result<Value, EvalError> {
        self.step_samples = 0;
        Ok(match self.eval(expr, t)? {
            Value::Vector(mut v) => {
                for s in &mut v {
                    s.t = t;
                }
                Value::Vector(v)
            }
            other => other,
        })
    }

    /// Evaluates `expr` at every step of `[start, end]` and assembles the
    /// matrix, sorted by label set as Prometheus sorts range results.
    pub(crate) fn range(
        &mut self,
        expr: &Expr,
        start: Timestamp,
        end: Timestamp,
        step: i64,
    ) -> Result<Value, EvalError> {
        let mut index: HashMap<Labels, usize, FastHash> = HashMap::default();
        let mut series: Vec<RangeSeries> = Vec::new();
        let mut t = start;
        while t <= end {
            self.check_deadline()?;
            self.step_samples = 0;
            let samples: Vec<(Labels, f64)> = match self.eval(expr, t)? {
                Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
                Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
                other => {
                    return Err(EvalError::BadQuery(format!(
                        "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                        other.documented_type()
                    )))
                }
            };
            self.kept_samples += samples.len();
            self.check_samples(0)?;
            for (labels, v) in samples {
                let i = match index.get(&labels) {
                    Some(&i) => i,
                    None => {
                        index.insert(labels.clone(), series.len());
                        series.push(RangeSeries {
                            labels,
                            points: Vec::new(),
                        });
                        series.len() - 1
                    }
                };
                series[i].points.push(Point { t, v });
            }
            t = match t.checked_add(step) {
                Some(next) => next,
                None => break,
            };
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(series))
    }

    pub(crate) fn check_deadline(&self) -> Result<(), EvalError> {
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout);
        }
        Ok(())
    }

    /// Counts `more` samples held now, failing past the limit.
    pub(crate) fn check_samples(&mut self, more: usize) -> Result<(), EvalError> {
        self.step_samples += more;
        if self.step_samples + self.kept_samples > self.options.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }

    /// The time a selector or subquery with these modifiers reads at, when evaluated at `t`.
    pub(crate) fn reference_time(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        t: Timestamp,
    ) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.query_start,
            Some(AtModifier::End) => self.query_end,
            Some(AtModifier::At(time)) => system_time_ms(time),
        };
        base.saturating_sub(offset_ms(offset))
    }

    /// Records, for every selector in `expr`, the raw-sample window it needs
    /// when `expr` is evaluated at every time in `eval_window`.
    fn plan_windows(&self, expr: &Expr, eval_window: (i64, i64), out: &mut Windows) {
        let mut add = |key: usize, window: (i64, i64)| {
            let w = out.entry(key).or_insert(window);
            w.0 = w.0.min(window.0);
            w.1 = w.1.max(window.1);
        };
        match expr {
            Expr::VectorSelector(vs) => {
                let (from, to) = self.shifted(&vs.at, &vs.offset, eval_window);
                add(
                    vs as *const _ as usize,
                    (from.saturating_sub(self.options.lookback_delta_ms), to),
                );
            }
            Expr::MatrixSelector(ms) => {
                let (from, to) = self.shifted(&ms.vs.at, &ms.vs.offset, eval_window);
                add(
                    &ms.vs as *const _ as usize,
                    (from.saturating_sub(duration_ms(&ms.range)), to),
                );
            }
            Expr::Subquery(sq) => {
                let (from, to) = self.shifted(&sq.at, &sq.offset, eval_window);
                self.plan_windows(
                    &sq.expr,
                    (from.saturating_sub(duration_ms(&sq.range)), to),
                    out,
                );
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.plan_windows(p, eval_window, out);
                }
                self.plan_windows(&a.expr, eval_window, out);
            }
            Expr::Unary(u) => self.plan_windows(&u.expr, eval_window, out),
            Expr::Binary(b) => {
                self.plan_windows(&b.lhs, eval_window, out);
                self.plan_windows(&b.rhs, eval_window, out);
            }
            Expr::Paren(p) => self.plan_windows(&p.expr, eval_window, out),
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.plan_windows(a, eval_window, out);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn shifted(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        w: (i64, i64),
    ) -> (i64, i64) {
        (
            self.reference_time(at, offset, w.0),
            self.reference_time(at, offset, w.1),
        )
    }

    /// The series a selector matches with samples in `[mint, maxt]` (or the
    /// planned, wider window), read from the store once per query. With
    /// `newest` (an instant-vector selector), when the plan reads this
    /// selector at no other time, only each series' newest sample is read:
    /// one chunk decoded per series instead of the whole lookback window.
    fn series_for(
        &mut self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
        newest: bool,
    ) -> Result<Rc<Vec<Series>>, EvalError> {
        let key = vs as *const _ as usize;
        if let Some((w, newest_only, series)) = self.cache.get(&key) {
            let covered = if *newest_only {
                *w == (mint, maxt) && newest
            } else {
                w.0 <= mint && maxt <= w.1
            };
            if covered {
                return Ok(series.clone());
            }
        }
        let planned = self.windows.get(&key).copied().unwrap_or((mint, maxt));
        let window = (planned.0.min(mint), planned.1.max(maxt));
        let newest = newest && window == (mint, maxt);
        let matchers = selector_matchers(vs)?;
        let querier = self.storage.querier(window.0, window.1);
        let series = if newest {
            querier.select_newest(&matchers)
        } else {
            querier.select(&matchers)
        }
        .map_err(|e| EvalError::Storage(e.to_string()))?;
        let series = Rc::new(series);
        self.cache.insert(key, (window, newest, series.clone()));
        Ok(series)
    }

    pub(crate) fn eval(&mut self, expr: &Expr, t: Timestamp) -> Result<Value, EvalError> {
        self.check_deadline()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar { t, v: n.val }),
            Expr::StringLiteral(s) => Ok(Value::String {
                t,
                v: s.val.clone(),
            }),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar { t, v } => Ok(Value::Scalar { t, v: -v }),
                Value::Vector(vector) => {
                    let out: Vec<InstantSample> = vector
                        .into_iter()
                        .map(|s| InstantSample {
                            labels: drop_metric_name(&s.labels),
                            t,
                            v: -s.v,
                        })
                        .collect();
                    check_unique(out)
                }
                other => Err(type_error("unary expression", &other)),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.vector_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => {
                let end = self.reference_time(&ms.vs.at, &ms.vs.offset, t);
                let start = end.saturating_sub(duration_ms(&ms.range));
                Ok(Value::Matrix(self.matrix_selector(&ms.vs, start, end)?))
            }
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?)),
            Expr::Aggregate(a) => self.aggregate(a, t),
            Expr::Binary(b) => self.binary(b, t),
            Expr::Call(c) => self.call(c, t),
            Expr::Extension(_) => Err(EvalError::BadQuery(
                "extension expressions are not supported".to_string(),
            )),
        }
    }

    /// An instant-vector selector at `t`: per series, the newest sample in
    /// `[ref - lookback, ref]`, unless that sample is a staleness marker.
    /// Samples keep their own timestamp (for `timestamp()`).
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        t: Timestamp,
    ) -> Result<Vec<InstantSample>, EvalError> {
        let reference = self.reference_time(&vs.at, &vs.offset, t);
        let mint = reference.saturating_sub(self.options.lookback_delta_ms);
        let series = self.series_for(vs, mint, reference, true)?;
        let mut out = Vec::new();
        for s in series.iter() {
            let end = s.samples.partition_point(|x| x.t <= reference);
            let Some(sample) = end.checked_sub(1).map(|i| s.samples[i]) else {
                continue;
            };
            if sample.t < mint || is_stale_nan(sample.v) {
                continue;
            }
            out.push(InstantSample {
                labels: s.labels.clone(),
                t: sample.t,
                v: sample.v,
            });
        }
        self.check_samples(out.len())?;
        Ok(out)
    }

    /// The series of a matrix selector read for a window containing
    /// `[start, end]`, with their [`SeriesMeta`]. Range functions slice each
    /// series' window out of these with [`window`] instead of building a
    /// range vector per step.
    pub(crate) fn matrix_series(
        &mut self,
        vs: &VectorSelector,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<(Rc<Vec<Series>>, Rc<SeriesMeta>), EvalError> {
        let series = self.series_for(vs, start, end, false)?;
        let key = vs as *const _ as usize;
        if let Some((read, meta)) = self.meta.get(&key) {
            if Rc::ptr_eq(read, &series) {
                return Ok((series, meta.clone()));
            }
        }
        let dropped: Vec<Labels> = series.iter().map(|s| drop_metric_name(&s.labels)).collect();
        let mut seen =
            std::collections::HashSet::with_capacity_and_hasher(dropped.len(), FastHash::default());
        let dropped_unique = dropped.iter().all(|l| seen.insert(l));
        let meta = Rc::new(SeriesMeta {
            cursors: std::cell::RefCell::new(vec![(0, 0); series.len()]),
            last_window: std::cell::Cell::new((Timestamp::MIN, Timestamp::MIN)),
            has_stale: series
                .iter()
                .map(|s| s.samples.iter().any(|x| is_stale_nan(x.v)))
                .collect(),
            dropped,
            dropped_unique,
        });
        self.meta.insert(key, (series.clone(), meta.clone()));
        Ok((series, meta))
    }

    /// The raw samples of every matching series in `[start, end]`, without
    /// staleness markers; series with no sample there are left out.
    pub(crate) fn matrix_selector(
        &mut self,
        vs: &VectorSelector,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let series = self.series_for(vs, start, end, false)?;
        let mut out = Vec::new();
        let mut total = 0;
        for s in series.iter() {
            let points = window(&s.samples, start, end, true).into_owned();
            if !points.is_empty() {
                total += points.len();
                out.push(RangeSeries {
                    labels: s.labels.clone(),
                    points,
                });
            }
        }
        self.check_samples(total)?;
        Ok(out)
    }

    /// A subquery at `t`: the inner expression evaluated at every multiple of
    /// the step in `[ref - range, ref]`.
    pub(crate) fn subquery(
        &mut self,
        sq: &SubqueryExpr,
        t: Timestamp,
    ) -> Result<Vec<RangeSeries>, EvalError> {
        let end = self.reference_time(&sq.at, &sq.offset, t);
        let start = end.saturating_sub(duration_ms(&sq.range));
        let step = match &sq.step {
            Some(d) => duration_ms(d),
            None => self.options.no_step_subquery_interval_ms,
        }
        .max(1);
        // The first multiple of `step` at or after `start` (ceiling, also for negatives).
        let mut inner_t = start.div_euclid(step) * step;
        if inner_t < start {
            inner_t += step;
        }
        let saved = self.step_samples;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut series: Vec<RangeSeries> = Vec::new();
        let mut total = 0;
        while inner_t <= end {
            self.check_deadline()?;
            let samples: Vec<(Labels, f64)> = match self.eval(&sq.expr, inner_t)? {
                Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
                Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
                other => return Err(type_error("subquery", &other)),
            };
            total += samples.len();
            // Fail as soon as the subquery holds too many points, not after it
            // has built them all: `vector(1)[1y:1ms]` would exhaust memory first.
            if saved + total + self.kept_samples > self.options.max_samples {
                return Err(EvalError::TooManySamples);
            }
            for (labels, v) in samples {
                let i = *index.entry(labels.clone()).or_insert_with(|| {
                    series.push(RangeSeries {
                        labels,
                        points: Vec::new(),
                    });
                    series.len() - 1
                });
                series[i].points.push(Point { t: inner_t, v });
            }
            inner_t += step;
        }
        self.step_samples = saved;
        self.check_samples(total)?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series)
    }

    /// Evaluates an argument that must be a scalar.
    pub(crate) fn scalar_arg(&mut self, expr: &Expr, t: Timestamp) -> Result<f64, EvalError> {
        match self.eval(expr, t)? {
            Value::Scalar { v, .. } => Ok(v),
            other => Err(type_error("scalar argument", &other)),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub(crate) fn vector_arg(
        &mut self,
        expr: &Expr,
        t: Timestamp,
    ) -> Result<Vec<InstantSample>, EvalError> {
        match self.eval(expr, t)? {
            Value::Vector(v) => Ok(v),
            other => Err(type_error("instant vector argument", &other)),
        }
    }

    fn binary(&mut self, b: &BinaryExpr, t: Timestamp) -> Result<Value, EvalError> {
        let op = b.op.id();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (Value::Scalar { v: l, .. }, Value::Scalar { v: r, .. }) => Ok(Value::Scalar {
                t,
                v: scalar_binop(op, l, r)?,
            }),
            (Value::Vector(l), Value::Scalar { v: r, .. }) => {
                check_unique(vector_scalar_binop(op, l, r, false, return_bool, t)?)
            }
            (Value::Scalar { v: l, .. }, Value::Vector(r)) => {
                check_unique(vector_scalar_binop(op, r, l, true, return_bool, t)?)
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                    Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                    None => (false, Vec::new()),
                };
                let out = match op {
                    T_LAND | T_LOR | T_LUNLESS => set_binop(op, l, r, on, &names),
                    _ => {
                        let card = b
                            .modifier
                            .as_ref()
                            .map(|m| m.card.clone())
                            .unwrap_or(VectorMatchCardinality::OneToOne);
                        vector_binop(op, l, r, on, &names, &card, return_bool, t)?
                    }
                };
                check_unique(out)
            }
            (l, r) => Err(EvalError::Execution(format!(
                "binary operator between {} and {} is not supported",
                l.documented_type(),
                r.documented_type()
            ))),
        }
    }
}

/// The samples of one series in `[start, end]` without staleness markers:
/// borrowed from the series unless it `may_hold_stale` markers and this
/// window holds one.
pub(crate) fn window(
    samples: &[Point],
    start: Timestamp,
    end: Timestamp,
    may_hold_stale: bool,
) -> std::borrow::Cow<'_, [Point]> {
    let from = samples.partition_point(|x| x.t < start);
    let to = samples.partition_point(|x| x.t <= end).max(from);
    without_stale(&samples[from..to], may_hold_stale)
}

/// `slice` without staleness markers; borrowed unless it `may_hold_stale`
/// markers and does.
fn without_stale(slice: &[Point], may_hold_stale: bool) -> std::borrow::Cow<'_, [Point]> {
    if may_hold_stale && slice.iter().any(|x| is_stale_nan(x.v)) {
        std::borrow::Cow::Owned(
            slice
                .iter()
                .filter(|x| !is_stale_nan(x.v))
                .copied()
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(slice)
    }
}

/// Fails with Prometheus's message when two elements share a label set.
pub(crate) fn check_unique(vector: Vec<InstantSample>) -> Result<Value, EvalError> {
    if has_duplicate_labelsets(&vector) {
        return Err(EvalError::Execution(
            "vector cannot contain metrics with the same labelset".to_string(),
        ));
    }
    Ok(Value::Vector(vector))
}

pub(crate) fn type_error(context: &str, got: &Value) -> EvalError {
    EvalError::Execution(format!(
        "unexpected {} for {context}",
        got.documented_type()
    ))
}

/// The store matchers of a selector. The parser has already anchored and
/// checked regexes; a regex the store's engine refuses is reported.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>, EvalError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(EvalError::BadQuery(
            "`or` between label matchers is not supported by Prometheus 2.42".to_string(),
        ));
    }
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        let (op, pattern) = match &m.op {
            ParserOp::Equal => (MatchOp::Equal, m.value.clone()),
            ParserOp::NotEqual => (MatchOp::NotEqual, m.value.clone()),
            ParserOp::Re(re) => (MatchOp::Regex, unanchor(re.as_str(), &m.value)),
            ParserOp::NotRe(re) => (MatchOp::NotRegex, unanchor(re.as_str(), &m.value)),
        };
        let matcher = Matcher::new(op, &m.name, &pattern).map_err(|e| {
            EvalError::BadQuery(format!(
                "invalid regular expression {:?} for label {}: {e}",
                m.value, m.name
            ))
        })?;
        out.push(matcher);
    }
    Ok(out)
}

/// The parser's regex is `^(?:pattern)$` with Go-only syntax escaped; the
/// store's matcher anchors again, so take the inner pattern.
fn unanchor(anchored: &str, raw: &str) -> String {
    anchored
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(raw)
        .to_string()
}

fn btos(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Go's `math.Mod`: the remainder with the sign of `x` (Rust's `%` on f64 is the same).
fn go_mod(x: f64, y: f64) -> f64 {
    x % y
}

/// Go's `math.Pow`, which differs from libm's `pow` in the last bit for
/// many non-integer exponents.
fn pow(x: f64, y: f64) -> f64 {
    super::gomath::pow(x, y)
}

pub(crate) fn scalar_binop(op: u16, l: f64, r: f64) -> Result<f64, EvalError> {
    Ok(match op {
        T_ADD => l + r,
        T_SUB => l - r,
        T_MUL => l * r,
        T_DIV => l / r,
        T_POW => pow(l, r),
        T_MOD => go_mod(l, r),
        T_EQLC => btos(l == r),
        T_NEQ => btos(l != r),
        T_GTR => btos(l > r),
        T_LSS => btos(l < r),
        T_GTE => btos(l >= r),
        T_LTE => btos(l <= r),
        T_ATAN2 => super::gomath::atan2(l, r),
        _ => {
            return Err(EvalError::Execution(
                "operator not allowed for Scalar operations".to_string(),
            ))
        }
    })
}

/// Prometheus's `vectorElemBinop` for floats: the value and whether to keep the element.
fn elem_binop(op: u16, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (scalar_binop(op, l, r)?, true),
    })
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name; comparisons keep it (unless `bool`).
/// Prometheus 2.42 keeps it for `atan2` too (`shouldDropMetricName`).
fn drops_metric_name(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD)
}

fn vector_scalar_binop(
    op: u16,
    vector: Vec<InstantSample>,
    scalar: f64,
    swap: bool,
    return_bool: bool,
    t: Timestamp,
) -> Result<Vec<InstantSample>, EvalError> {
    let mut out = Vec::with_capacity(vector.len());
    for s in vector {
        let (l, r) = if swap { (scalar, s.v) } else { (s.v, scalar) };
        let (mut value, mut keep) = elem_binop(op, l, r)?;
        if is_comparison(op) && swap {
            value = r;
        }
        if return_bool {
            value = btos(keep);
            keep = true;
        }
        if keep {
            let labels = if drops_metric_name(op) || return_bool {
                drop_metric_name(&s.labels)
            } else {
                s.labels
            };
            out.push(InstantSample {
                labels,
                t,
                v: value,
            });
        }
    }
    Ok(out)
}

fn set_binop(
    op: u16,
    lhs: Vec<InstantSample>,
    rhs: Vec<InstantSample>,
    on: bool,
    names: &[String],
) -> Vec<InstantSample> {
    use std::collections::HashSet;
    match op {
        T_LAND => {
            if lhs.is_empty() || rhs.is_empty() {
                return Vec::new();
            }
            let right: HashSet<Vec<u8>> = rhs
                .iter()
                .map(|s| signature(&s.labels, on, names))
                .collect();
            lhs.into_iter()
                .filter(|s| right.contains(&signature(&s.labels, on, names)))
                .collect()
        }
        T_LOR => {
            if lhs.is_empty() {
                return rhs;
            }
            if rhs.is_empty() {
                return lhs;
            }
            let left: HashSet<Vec<u8>> = lhs
                .iter()
                .map(|s| signature(&s.labels, on, names))
                .collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, on, names))),
            );
            out
        }
        _ => {
            if lhs.is_empty() || rhs.is_empty() {
                return lhs;
            }
            let right: HashSet<Vec<u8>> = rhs
                .iter()
                .map(|s| signature(&s.labels, on, names))
                .collect();
            lhs.into_iter()
                .filter(|s| !right.contains(&signature(&s.labels, on, names)))
                .collect()
        }
    }
}

/// Arithmetic and comparison between two vectors, with Prometheus's matching
/// rules and error messages.
#[allow(clippy::too_many_arguments)]
fn vector_binop(
    op: u16,
    lhs: Vec<InstantSample>,
    rhs: Vec<InstantSample>,
    on: bool,
    names: &[String],
    card: &VectorMatchCardinality,
    return_bool: bool,
    t: Timestamp,
) -> Result<Vec<InstantSample>, EvalError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let one_to_many = matches!(card, VectorMatchCardinality::OneToMany(_));
    let include: Vec<String> = match card {
        VectorMatchCardinality::ManyToOne(ls) | VectorMatchCardinality::OneToMany(ls) => {
            ls.labels.clone()
        }
        _ => Vec::new(),
    };
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };

    // The "one" side must have unique signatures.
    let mut one_by_sig: HashMap<Vec<u8>, &InstantSample> = HashMap::with_capacity(one.len());
    for s in &one {
        let sig = signature(&s.labels, on, names);
        if let Some(dupl) = one_by_sig.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let matched = if on {
                keep_labels(&s.labels, names)
            } else {
                let mut dropped = names.to_vec();
                dropped.push(METRIC_NAME.to_string());
                drop_labels(&s.labels, &dropped)
            };
            return Err(EvalError::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels_string(&matched),
                go_labels_string(&s.labels),
                go_labels_string(&dupl.labels),
            )));
        }
        one_by_sig.insert(sig, s);
    }

    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let mut matched: HashMap<Vec<u8>, std::collections::HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ls in &many {
        let sig = signature(&ls.labels, on, names);
        let Some(rs) = one_by_sig.get(&sig) else {
            continue;
        };
        let (l, r) = if one_to_many {
            (rs.v, ls.v)
        } else {
            (ls.v, rs.v)
        };
        let (mut value, keep) = elem_binop(op, l, r)?;
        if return_bool {
            value = btos(keep);
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.labels, &rs.labels, op, on, names, one_to_one, &include);
        if return_bool {
            metric = drop_metric_name(&metric);
        }
        if one_to_one {
            if matched.contains_key(&sig) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .to_string(),
                ));
            }
            matched.insert(sig, Default::default());
        } else {
            let inserted = matched.entry(sig).or_default();
            if !inserted.insert(metric.clone()) {
                return Err(EvalError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .to_string(),
                ));
            }
        }
        out.push(InstantSample {
            labels: metric,
            t,
            v: value,
        });
    }
    Ok(out)
}

/// The labels of a vector/vector result element (Prometheus's `resultMetric`).
#[allow(clippy::too_many_arguments)]
fn result_metric(
    lhs: &Labels,
    rhs: &Labels,
    op: u16,
    on: bool,
    names: &[String],
    one_to_one: bool,
    include: &[String],
) -> Labels {
    let mut out = if drops_metric_name(op) {
        drop_metric_name(lhs)
    } else {
        lhs.clone()
    };
    if one_to_one {
        out = if on {
            keep_labels(&out, names)
        } else {
            drop_labels(&out, names)
        };
    }
    for name in include {
        match rhs.get(name) {
            Some(v) => out.set(name, v),
            None => out.remove(name),
        }
    }
    out
}
