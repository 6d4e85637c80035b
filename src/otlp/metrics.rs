//! OTLP metrics → Prometheus samples, with the semantics of Prometheus's own
//! OTLP receiver (its `otlptranslator`, with metric-name suffixes on):
//!
//! - names: every run of characters outside `[a-zA-Z0-9]` becomes one `_`;
//!   the unit is appended as a word (`s` → `seconds`, `By` → `bytes`, …;
//!   `{annotations}` dropped; `a/b` → `a_per_b`) unless the name already has
//!   it; monotonic cumulative sums get `_total`; gauges with unit `1` get
//!   `_ratio`; a leading digit gets a `_` prefix.
//! - label names: characters outside `[a-zA-Z0-9_]` become `_`; a leading
//!   digit gets `key_`, a single leading `_` gets `key`; attributes that map to
//!   the same name have their values joined with `;`.
//! - resource: `job` is `service.namespace/service.name` (or `service.name`),
//!   `instance` is `service.instance.id`; the other resource attributes become
//!   one `target_info` series with the same `job`/`instance`.
//! - gauges and cumulative sums as samples; non-monotonic sums as gauges;
//!   explicit-bucket histograms as classic `_bucket{le}`, `_sum`, `_count`;
//!   summaries as `{quantile}`, `_sum`, `_count`; a point flagged
//!   "no recorded value" becomes a staleness marker.
//! - refused with `partial_success` (counted, the rest of the request kept):
//!   delta and unspecified temporality (Prometheus's default too: bellwether
//!   does not keep per-series state to turn deltas into cumulative values),
//!   exponential histograms (bellwether stores float samples only, as for
//!   remote_write's native histograms), histogram points whose bucket counts
//!   do not match their bounds, number points without a value.
//!
//! GenAI conventions: the deprecated `gen_ai.system` attribute is also given
//! as `gen_ai_provider_name` when the point has no `gen_ai.provider.name`,
//! and the old `gen_ai.token.type` values `prompt`/`completion` are read as
//! `input`/`output`, so queries need only the current names.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Metric};

use crate::model::{stale_nan, Labels, Timestamp};

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;
const TEMPORALITY_CUMULATIVE: i32 = 2;
/// Most refusal messages kept per request (the count is always complete).
const MAX_MESSAGES: usize = 5;

/// The samples of one request and what was refused.
#[derive(Debug, Default)]
pub struct Translated {
    pub samples: Vec<(Labels, Timestamp, f64)>,
    /// Data points in the request.
    pub points: usize,
    /// Data points refused (not stored).
    pub rejected: usize,
    /// The first few reasons, for `partial_success.error_message`.
    pub messages: Vec<String>,
}

impl Translated {
    fn reject(&mut self, n: usize, message: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message());
        }
    }
}

/// Translates a whole request; `now` stands in for points without a time.
pub fn translate(request: &ExportMetricsServiceRequest, now: Timestamp) -> Translated {
    let mut out = Translated::default();
    for rm in &request.resource_metrics {
        let resource_attrs = super::resource_attributes(&rm.resource);
        let target = target_labels(resource_attrs);
        let first_sample = out.samples.len();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                translate_metric(m, &target, now, &mut out);
            }
        }
        // target_info: the resource's other attributes, at the newest point's time.
        let info: Vec<&KeyValue> = resource_attrs
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .collect();
        if !info.is_empty() && out.samples.len() > first_sample {
            let t = out.samples[first_sample..]
                .iter()
                .map(|s| s.1)
                .max()
                .unwrap_or(now);
            let mut pairs = target.clone();
            add_attributes(&mut pairs, info.into_iter());
            pairs.push(("__name__".into(), "target_info".into()));
            out.samples.push((finish_labels(pairs), t, 1.0));
        }
    }
    out
}

/// `job` and `instance` from the resource.
fn target_labels(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let get = |key: &str| {
        attrs
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| value_string(kv.value.as_ref()))
            .filter(|v| !v.is_empty())
    };
    let mut labels = Vec::new();
    if let Some(name) = get("service.name") {
        let job = match get("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        labels.push(("job".to_string(), job));
    }
    if let Some(instance) = get("service.instance.id") {
        labels.push(("instance".to_string(), instance));
    }
    labels
}

fn translate_metric(m: &Metric, target: &[(String, String)], now: Timestamp, out: &mut Translated) {
    let Some(data) = &m.data else {
        return;
    };
    match data {
        metric::Data::Gauge(g) => {
            let name = metric_name(&m.name, &m.unit, Kind::Gauge);
            for p in &g.data_points {
                number_point(&name, &m.name, p, target, now, out);
            }
        }
        metric::Data::Sum(s) => {
            if refuse_non_cumulative(m, s.aggregation_temporality, s.data_points.len(), out) {
                return;
            }
            let kind = if s.is_monotonic {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            let name = metric_name(&m.name, &m.unit, kind);
            for p in &s.data_points {
                number_point(&name, &m.name, p, target, now, out);
            }
        }
        metric::Data::Histogram(h) => {
            if refuse_non_cumulative(m, h.aggregation_temporality, h.data_points.len(), out) {
                return;
            }
            out.points += h.data_points.len();
            let base = metric_name(&m.name, &m.unit, Kind::Histogram);
            for p in &h.data_points {
                let buckets = p.bucket_counts.len();
                if buckets != 0 && buckets != p.explicit_bounds.len() + 1 {
                    out.reject(1, || {
                        format!(
                            "metric {:?}: a histogram point has {buckets} bucket counts for {} bounds (must be bounds + 1)",
                            m.name,
                            p.explicit_bounds.len()
                        )
                    });
                    continue;
                }
                let t = timestamp(p.time_unix_nano, now);
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let value = |v: f64| if stale { stale_nan() } else { v };
                let labels = point_labels(target, &p.attributes, &m.name);
                let mut cumulative: u64 = 0;
                for (i, bound) in p.explicit_bounds.iter().enumerate() {
                    cumulative =
                        cumulative.saturating_add(p.bucket_counts.get(i).copied().unwrap_or(0));
                    let mut l = labels.clone();
                    l.push(("le".into(), format_le(*bound)));
                    push(
                        out,
                        &format!("{base}_bucket"),
                        l,
                        t,
                        value(cumulative as f64),
                    );
                }
                let mut l = labels.clone();
                l.push(("le".into(), "+Inf".into()));
                push(out, &format!("{base}_bucket"), l, t, value(p.count as f64));
                if let Some(sum) = p.sum {
                    push(out, &format!("{base}_sum"), labels.clone(), t, value(sum));
                }
                push(
                    out,
                    &format!("{base}_count"),
                    labels,
                    t,
                    value(p.count as f64),
                );
            }
        }
        metric::Data::ExponentialHistogram(h) => {
            out.points += h.data_points.len();
            out.reject(h.data_points.len(), || {
                format!(
                    "metric {:?}: exponential histograms are not stored (configure the exporter for explicit-bucket histograms)",
                    m.name
                )
            });
        }
        metric::Data::Summary(s) => {
            out.points += s.data_points.len();
            let base = metric_name(&m.name, &m.unit, Kind::Summary);
            for p in &s.data_points {
                let t = timestamp(p.time_unix_nano, now);
                let stale = p.flags & NO_RECORDED_VALUE != 0;
                let value = |v: f64| if stale { stale_nan() } else { v };
                let labels = point_labels(target, &p.attributes, &m.name);
                for q in &p.quantile_values {
                    let mut l = labels.clone();
                    l.push(("quantile".into(), format_le(q.quantile)));
                    push(out, &base, l, t, value(q.value));
                }
                push(out, &format!("{base}_sum"), labels.clone(), t, value(p.sum));
                push(
                    out,
                    &format!("{base}_count"),
                    labels,
                    t,
                    value(p.count as f64),
                );
            }
        }
    }
}

/// Counts and refuses the `points` of a sum or histogram whose temporality
/// is not cumulative (delta is not converted); `true` when refused.
fn refuse_non_cumulative(
    m: &Metric,
    temporality: i32,
    points: usize,
    out: &mut Translated,
) -> bool {
    if temporality == TEMPORALITY_CUMULATIVE {
        return false;
    }
    let what = if temporality == 1 {
        "delta"
    } else {
        "unspecified"
    };
    out.points += points;
    out.reject(points, || {
        format!(
            "metric {:?}: {what} temporality is not supported (send cumulative)",
            m.name
        )
    });
    true
}

fn number_point(
    name: &str,
    otel_name: &str,
    p: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint,
    target: &[(String, String)],
    now: Timestamp,
    out: &mut Translated,
) {
    out.points += 1;
    let v = if p.flags & NO_RECORDED_VALUE != 0 {
        stale_nan()
    } else {
        match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None => {
                out.reject(1, || {
                    format!("metric {otel_name:?}: a data point has no value")
                });
                return;
            }
        }
    };
    let labels = point_labels(target, &p.attributes, otel_name);
    push(out, name, labels, timestamp(p.time_unix_nano, now), v);
}

fn push(out: &mut Translated, name: &str, mut pairs: Vec<(String, String)>, t: Timestamp, v: f64) {
    pairs.push(("__name__".into(), name.to_string()));
    out.samples.push((finish_labels(pairs), t, v));
}

/// The labels of one point: the target's, then the point's attributes.
fn point_labels(
    target: &[(String, String)],
    attrs: &[KeyValue],
    otel_name: &str,
) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = target.to_vec();
    add_attributes(&mut pairs, attrs.iter());
    if otel_name.starts_with("gen_ai.") {
        genai_compat(&mut pairs);
    }
    pairs
}

/// Reads the GenAI conventions' deprecated names as the current ones.
fn genai_compat(pairs: &mut Vec<(String, String)>) {
    let has = |pairs: &[(String, String)], k: &str| pairs.iter().any(|(n, _)| n == k);
    if !has(pairs, "gen_ai_provider_name") {
        if let Some(system) = pairs
            .iter()
            .find(|(n, _)| n == "gen_ai_system")
            .map(|p| p.1.clone())
        {
            pairs.push(("gen_ai_provider_name".into(), system));
        }
    }
    for (n, v) in pairs.iter_mut() {
        if n == "gen_ai_token_type" {
            match v.as_str() {
                "prompt" => *v = "input".into(),
                "completion" => *v = "output".into(),
                _ => {}
            }
        }
    }
}

fn add_attributes<'a>(
    pairs: &mut Vec<(String, String)>,
    attrs: impl Iterator<Item = &'a KeyValue>,
) {
    for kv in attrs {
        let name = label_name(&kv.key);
        if name.is_empty() {
            continue;
        }
        let value = value_string(kv.value.as_ref());
        // A point attribute named like a target label replaces it (as the
        // translator lets point attributes win).
        if let Some(existing) = pairs.iter_mut().find(|(n, _)| *n == name) {
            if name == "job" || name == "instance" {
                existing.1 = value;
            } else {
                existing.1.push(';');
                existing.1.push_str(&value);
            }
            continue;
        }
        pairs.push((name, value));
    }
}

fn finish_labels(pairs: Vec<(String, String)>) -> Labels {
    Labels::new(pairs.into_iter().filter(|(_, v)| !v.is_empty()))
}

fn timestamp(nanos: u64, now: Timestamp) -> Timestamp {
    if nanos == 0 {
        now
    } else {
        (nanos / 1_000_000).min(i64::MAX as u64) as i64
    }
}

/// `le` and `quantile` values: the shortest decimal that reads back.
fn format_le(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// An attribute value as a label value.
pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format!("{d}"),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => {
            let parts: Vec<String> = a.values.iter().map(|v| value_string(Some(v))).collect();
            format!("[{}]", parts.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let parts: Vec<String> = kv
                .values
                .iter()
                .map(|kv| format!("{}={}", kv.key, value_string(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        // Profiles' string-table references: no table here.
        Some(any_value::Value::StringValueStrindex(i)) => i.to_string(),
    }
}

/// An attribute key as a Prometheus label name; empty for an empty key.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert_str(0, "key_");
    } else if s.starts_with('_') && !s.starts_with("__") {
        s.insert_str(0, "key");
    }
    s
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

/// The Prometheus name of an OTLP metric (before `_bucket`/`_sum`/`_count`).
pub fn metric_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if kind == Kind::Counter {
        words.retain(|w| w != "total");
    }
    let (main, per) = unit_words(unit);
    if let Some(main) = main {
        if !words.contains(&main) {
            words.push(main);
        }
    }
    if let Some(per) = per {
        let already = words.windows(2).any(|w| w[0] == "per" && w[1] == per);
        if !already {
            words.push("per".into());
            words.push(per);
        }
    }
    if kind == Kind::Counter {
        words.push("total".into());
    }
    if kind == Kind::Gauge && unit == "1" && words.last().map(String::as_str) != Some("ratio") {
        words.push("ratio".into());
    }
    let mut out = words.join("_");
    if out.is_empty() {
        return "_".into();
    }
    if out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    out
}

/// The unit as name words: `(main, per)`.
fn unit_words(unit: &str) -> (Option<String>, Option<String>) {
    // `{request}`-style annotations carry no unit.
    let mut cleaned = String::with_capacity(unit.len());
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    let cleaned = cleaned.trim();
    let (main, per) = match cleaned.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (cleaned, None),
    };
    let main = match main {
        "" | "1" => None,
        u => Some(main_unit(u)),
    };
    let per = per.filter(|p| !p.is_empty()).map(per_unit);
    (
        main.filter(|w| !w.is_empty()),
        per.filter(|w| !w.is_empty()),
    )
}

fn main_unit(u: &str) -> String {
    let word = match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        other => return clean_word(other),
    };
    word.to_string()
}

fn per_unit(u: &str) -> String {
    let word = match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return clean_word(other),
    };
    word.to_string()
}

fn clean_word(u: &str) -> String {
    u.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}
