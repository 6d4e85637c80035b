//! Aggregation operators (`sum avg min max count group stddev stdvar topk
//! bottomk quantile count_values`, with `by`/`without`), following Prometheus
//! 2.42's `aggregation()`: groups in order of first appearance, plain (not
//! compensated) summation for `sum`, an incremental mean for `avg`, Welford
//! for `stddev`/`stdvar`, and Go's binary heap for `topk`/`bottomk` so that
//! ties keep the same elements.

use std::cmp::Ordering;
use std::collections::HashMap;

use promql_parser::parser::ast::{AggregateExpr, LabelModifier};
use promql_parser::parser::token::*;

use super::eval::{check_unique, type_error, unwrap_parens, Evaluator};
use super::functions::{format_go_float, quantile};
use super::value::{drop_labels, keep_labels, signature_into, FastHash, InstantSample, Value};
use super::EvalError;
use crate::model::{is_valid_label_name, Labels, Timestamp, METRIC_NAME};

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: usize,
    /// `topk`, `bottomk` and `quantile` keep their elements.
    heap: Vec<InstantSample>,
}

impl Evaluator<'_> {
    pub(crate) fn aggregate(
        &mut self,
        a: &AggregateExpr,
        t: Timestamp,
    ) -> Result<Value, EvalError> {
        let op = a.op.id();
        let (without, mut grouping) = match &a.modifier {
            Some(LabelModifier::Include(ls)) => (false, ls.labels.clone()),
            Some(LabelModifier::Exclude(ls)) => (true, ls.labels.clone()),
            None => (false, Vec::new()),
        };
        let mut k = 0i64;
        let mut q = 0.0;
        let mut value_label = String::new();
        match op {
            T_TOPK | T_BOTTOMK | T_QUANTILE => {
                let param = a
                    .param
                    .as_deref()
                    .ok_or_else(|| EvalError::BadQuery("aggregation parameter missing".into()))?;
                let p = self.scalar_arg(param, t)?;
                if op == T_QUANTILE {
                    q = p;
                } else {
                    // Go's `convertibleToInt64`; NaN fails both comparisons.
                    if !(-9.223_372_036_854_775e18..=9.223_372_036_854_775e18).contains(&p) {
                        return Err(EvalError::Execution(format!(
                            "Scalar value {} overflows int64",
                            format_go_value(p)
                        )));
                    }
                    k = p as i64;
                }
            }
            T_COUNT_VALUES => {
                let param = a
                    .param
                    .as_deref()
                    .ok_or_else(|| EvalError::BadQuery("aggregation parameter missing".into()))?;
                value_label = match unwrap_parens(param) {
                    promql_parser::parser::Expr::StringLiteral(s) => s.val.clone(),
                    _ => match self.eval(param, t)? {
                        Value::String { v, .. } => v,
                        other => return Err(type_error("count_values parameter", &other)),
                    },
                };
                if !is_valid_label_name(&value_label) {
                    return Err(EvalError::Execution(format!(
                        "invalid label name {}",
                        crate::api::prometheus::go_quote(&value_label)
                    )));
                }
                if !without {
                    grouping.push(value_label.clone());
                }
            }
            T_SUM | T_AVG | T_COUNT | T_MIN | T_MAX | T_GROUP | T_STDDEV | T_STDVAR => {}
            _ => {
                return Err(EvalError::BadQuery(format!(
                    "aggregation {} is not supported by Prometheus 2.42",
                    a.op
                )))
            }
        }
        let input = self.vector_arg(&a.expr, t)?;
        if (op == T_TOPK || op == T_BOTTOMK) && k < 1 {
            return Ok(Value::Vector(Vec::new()));
        }

        let mut index: HashMap<Vec<u8>, usize, FastHash> = HashMap::default();
        let mut groups: Vec<Group> = Vec::new();
        let mut key = Vec::with_capacity(64);
        for mut s in input {
            if op == T_COUNT_VALUES {
                s.labels.set(&value_label, &format_go_float(s.v));
            }
            signature_into(&s.labels, !without, &grouping, &mut key);
            let Some(&gi) = index.get(key.as_slice()) else {
                let labels = if without {
                    let mut dropped = grouping.clone();
                    dropped.push(METRIC_NAME.to_string());
                    drop_labels(&s.labels, &dropped)
                } else {
                    keep_labels(&s.labels, &grouping)
                };
                let mut group = Group {
                    labels,
                    value: s.v,
                    mean: s.v,
                    count: 1,
                    heap: Vec::new(),
                };
                match op {
                    T_STDDEV | T_STDVAR => group.value = 0.0,
                    T_GROUP => group.value = 1.0,
                    _ => {}
                }
                if matches!(op, T_TOPK | T_BOTTOMK | T_QUANTILE) {
                    group.heap.push(s);
                }
                index.insert(key.clone(), groups.len());
                groups.push(group);
                continue;
            };
            let group = &mut groups[gi];
            match op {
                T_SUM => group.value += s.v,
                T_AVG => {
                    group.count += 1;
                    let n = group.count as f64;
                    let skip = group.mean.is_infinite()
                        && ((s.v.is_infinite() && (group.mean > 0.0) == (s.v > 0.0))
                            || (!s.v.is_infinite() && !s.v.is_nan()));
                    if !skip {
                        group.mean += s.v / n - group.mean / n;
                    }
                }
                T_GROUP => {}
                T_MAX if group.value < s.v || group.value.is_nan() => group.value = s.v,
                T_MIN if group.value > s.v || group.value.is_nan() => group.value = s.v,
                T_COUNT | T_COUNT_VALUES => group.count += 1,
                T_STDDEV | T_STDVAR => {
                    group.count += 1;
                    let delta = s.v - group.mean;
                    group.mean += delta / group.count as f64;
                    group.value += delta * (s.v - group.mean);
                }
                T_TOPK => heap_offer(&mut group.heap, s, k as usize, topk_less),
                T_BOTTOMK => heap_offer(&mut group.heap, s, k as usize, bottomk_less),
                T_QUANTILE => group.heap.push(s),
                _ => {}
            }
        }

        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let value = match op {
                T_AVG => group.mean,
                T_COUNT | T_COUNT_VALUES => group.count as f64,
                T_STDVAR => group.value / group.count as f64,
                T_STDDEV => (group.value / group.count as f64).sqrt(),
                T_QUANTILE => {
                    let values: Vec<f64> = group.heap.iter().map(|s| s.v).collect();
                    quantile(q, values)
                }
                T_TOPK | T_BOTTOMK => {
                    let mut heap = group.heap;
                    let less = if op == T_TOPK {
                        topk_less
                    } else {
                        bottomk_less
                    };
                    // `sort.Sort(sort.Reverse(heap))`: greatest by `less` first.
                    heap.sort_by(|a, b| total(less, b, a));
                    for s in heap {
                        out.push(InstantSample {
                            labels: s.labels,
                            t,
                            v: s.v,
                        });
                    }
                    continue;
                }
                _ => group.value,
            };
            out.push(InstantSample {
                labels: group.labels,
                t,
                v: value,
            });
        }
        check_unique(out)
    }
}

/// Go's `%v` for a float64 in an error message (`1e+20`, `NaN`, `+Inf`).
fn format_go_value(v: f64) -> String {
    super::functions::format_go_g(v)
}

/// `vectorByValueHeap.Less`: NaN sorts first, then ascending.
fn topk_less(a: &InstantSample, b: &InstantSample) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// `vectorByReverseValueHeap.Less`: NaN sorts first, then descending.
fn bottomk_less(a: &InstantSample, b: &InstantSample) -> bool {
    a.v.is_nan() || a.v > b.v
}

/// A total order from a Go `Less`, so Rust's sort never sees an inconsistent comparator.
fn total(
    less: fn(&InstantSample, &InstantSample) -> bool,
    a: &InstantSample,
    b: &InstantSample,
) -> Ordering {
    match (a.v.is_nan(), b.v.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ if less(a, b) => Ordering::Less,
        _ if less(b, a) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// The `topk`/`bottomk` step of Prometheus's aggregation on a Go
/// `container/heap` ordered by `less` (the root is the element to evict).
fn heap_offer(
    heap: &mut Vec<InstantSample>,
    s: InstantSample,
    k: usize,
    less: fn(&InstantSample, &InstantSample) -> bool,
) {
    if heap.len() < k || less(&heap[0], &s) || heap[0].v.is_nan() {
        if heap.len() == k {
            if k == 1 {
                heap[0] = s;
                return;
            }
            // heap.Pop: move the root to the end, restore, drop it.
            let n = heap.len() - 1;
            heap.swap(0, n);
            heap_down(heap, 0, n, less);
            heap.pop();
        }
        heap.push(s);
        let mut j = heap.len() - 1;
        while j > 0 {
            let i = (j - 1) / 2;
            if !less(&heap[j], &heap[i]) {
                break;
            }
            heap.swap(i, j);
            j = i;
        }
    }
}

fn heap_down(
    heap: &mut [InstantSample],
    mut i: usize,
    n: usize,
    less: fn(&InstantSample, &InstantSample) -> bool,
) {
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(&heap[j2], &heap[j1]) {
            j = j2;
        }
        if !less(&heap[j], &heap[i]) {
            break;
        }
        heap.swap(i, j);
        i = j;
    }
}
