//! The values a PromQL expression evaluates to at one evaluation time, and
//! the label-set helpers the evaluator shares (dropping `__name__`, match
//! signatures, Go's way of printing a label set in error messages).

use crate::model::{Label, Labels, Timestamp, METRIC_NAME};

/// One element of an instant vector. `t` is the evaluation time, except for a
/// sample read straight from a vector selector, where it is the stored
/// sample's own timestamp (which `timestamp()` reports).
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub t: Timestamp,
    pub v: f64,
}

/// One point of a range vector or of a range-query result series: the
/// store's own sample type, so a window of stored samples is a range-vector
/// window without copying.
pub type Point = crate::model::Sample;

/// A series of a range vector: labels and points in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
}

/// What an expression evaluates to at one evaluation time (or, for a range
/// query, the assembled matrix).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar { t: Timestamp, v: f64 },
    String { t: Timestamp, v: String },
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The `resultType` Prometheus's API reports for this value.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }

    /// The type's name as Prometheus's error messages spell it
    /// (`parser.DocumentedType`).
    pub fn documented_type(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
        }
    }
}

/// `labels` without `__name__`.
pub fn drop_metric_name(labels: &Labels) -> Labels {
    if labels.metric_name().is_none() {
        return labels.clone();
    }
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != METRIC_NAME)
        .cloned()
        .collect();
    Labels::from_sorted(kept)
}

/// Only the labels named in `names`.
pub fn keep_labels(labels: &Labels, names: &[String]) -> Labels {
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| names.contains(&l.name))
        .cloned()
        .collect();
    Labels::from_sorted(kept)
}

/// All labels except those named in `names`.
pub fn drop_labels(labels: &Labels, names: &[String]) -> Labels {
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| !names.contains(&l.name))
        .cloned()
        .collect();
    Labels::from_sorted(kept)
}

/// The key two series must share to match: with `on`, the values of the named
/// labels; otherwise every label but the named ones and `__name__`.
pub fn signature(labels: &Labels, on: bool, names: &[String]) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    signature_into(labels, on, names, &mut key);
    key
}

/// [`signature`] into a reused buffer (cleared first), so hot loops look
/// groups up without allocating.
pub fn signature_into(labels: &Labels, on: bool, names: &[String], key: &mut Vec<u8>) {
    key.clear();
    for l in labels.iter() {
        let listed = names.contains(&l.name);
        let include = if on {
            listed
        } else {
            !listed && l.name != METRIC_NAME
        };
        if include {
            key.extend_from_slice(l.name.as_bytes());
            key.push(0xfe);
            key.extend_from_slice(l.value.as_bytes());
            key.push(0xff);
        }
    }
}

/// A fast hasher for the evaluator's per-step maps (label sets and
/// signatures of one query; SipHash's flooding resistance buys nothing here
/// and cost a tenth of a range query's time).
pub type FastHash = foldhash::fast::RandomState;

/// A label set as Go's `labels.Labels.String()` prints it:
/// `{__name__="up", job="node"}`; Prometheus's error texts embed this form.
pub fn go_labels_string(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={}", l.name, crate::api::prometheus::go_quote(&l.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Whether two elements of the vector share a label set.
pub fn has_duplicate_labelsets(vector: &[InstantSample]) -> bool {
    if vector.len() < 2 {
        return false;
    }
    let mut seen =
        std::collections::HashSet::with_capacity_and_hasher(vector.len(), FastHash::default());
    vector.iter().any(|s| !seen.insert(&s.labels))
}
