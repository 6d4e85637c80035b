//! Comparing what the rules produced with what a test expects, and the
//! failure text, laid out as promtool 2.42 lays it out so a report reads the
//! same whichever tool printed it.
//!
//! promtool compares exactly (Go's `reflect.DeepEqual`): label sets as
//! written (an expected label with an empty value never matches), values with
//! `==` (so an expected NaN never matches, and `-0` matches `0`), both sides
//! sorted first.

use std::cmp::Ordering;

use super::series::RawLabels;
use crate::api::prometheus::go_quote;
use crate::model::Labels;

/// A firing alert as the comparison sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertView {
    pub labels: RawLabels,
    pub annotations: RawLabels,
}

/// A sample of a query result or of an expectation.
#[derive(Debug, Clone)]
pub struct SampleView {
    pub labels: RawLabels,
    pub value: f64,
}

/// A stored label set in the comparison's form.
pub fn raw_labels(labels: &Labels) -> RawLabels {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// A map (expected labels or annotations) as a sorted label list.
pub fn raw_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> RawLabels {
    let mut out: RawLabels = pairs
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Prometheus's `labels.Compare`: label by label, name then value; a prefix first.
pub fn compare_labels(a: &RawLabels, b: &RawLabels) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let o = x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1));
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Go's `labels.Labels.String()`: `{__name__="up", job="a"}`.
pub fn go_labels(labels: &RawLabels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(n, v)| format!("{n}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`: `1E+00`, `1.5E-07`, `NaN`, `+Inf`.
pub fn format_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let s = format!("{v:E}");
    let Some((mantissa, exp)) = s.split_once('E') else {
        return s;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    let pad = if digits.len() < 2 { "0" } else { "" };
    format!("{mantissa}E{sign}{pad}{digits}")
}

/// Go's `time.Duration.String()` for a whole number of milliseconds:
/// `0s`, `500ms`, `1m0s`, `1h2m3.5s`.
pub fn go_time_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{sign}{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1000 % 60;
    let frac = ms % 1000;
    let secs = if frac == 0 {
        format!("{seconds}s")
    } else {
        let f = format!("{frac:03}");
        format!("{seconds}.{}s", f.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{secs}")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{secs}")
    } else {
        format!("{sign}{secs}")
    }
}

/// Prefixes every line but the first with `indent` (promtool's `indentLines`).
fn indent_lines(lines: &str, indent: &str) -> String {
    lines
        .split('\n')
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

fn sort_alerts(alerts: &mut [AlertView]) {
    alerts.sort_by(|a, b| {
        compare_labels(&a.labels, &b.labels)
            .then_with(|| compare_labels(&a.annotations, &b.annotations))
    });
}

fn alerts_string(alerts: &[AlertView]) -> String {
    if alerts.is_empty() {
        return "[]".to_string();
    }
    let mut s = String::from("[");
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let one = format!(
            "\nLabels:{}\nAnnotations:{}",
            go_labels(&a.labels),
            go_labels(&a.annotations)
        );
        s.push_str(&format!("\n{i}:{}", indent_lines(&one, "  ")));
    }
    s.push_str("\n]");
    s
}

/// Compares the firing alerts of one `alert_rule_test` with its expectation.
/// `expected` already carries `alertname`. Returns promtool's failure text.
pub fn compare_alerts(
    test_name: &str,
    alertname: &str,
    eval_time: &str,
    mut expected: Vec<AlertView>,
    mut got: Vec<AlertView>,
) -> Option<String> {
    sort_alerts(&mut expected);
    sort_alerts(&mut got);
    if expected == got {
        return None;
    }
    let name = if test_name.is_empty() {
        String::new()
    } else {
        format!("    name: {test_name},\n")
    };
    let indent = "            ";
    Some(format!(
        "{name}    alertname: {alertname}, time: {eval_time}, \n        exp:{}, \n        got:{}",
        indent_lines(&alerts_string(&expected), indent),
        indent_lines(&alerts_string(&got), indent)
    ))
}

fn samples_string(samples: &[SampleView]) -> String {
    if samples.is_empty() {
        return "nil".to_string();
    }
    samples
        .iter()
        .map(|s| format!("{} {}", go_labels(&s.labels), format_float_e(s.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares a query's result with a `promql_expr_test`'s `exp_samples`.
pub fn compare_samples(
    expr: &str,
    eval_time: &str,
    mut expected: Vec<SampleView>,
    mut got: Vec<SampleView>,
) -> Option<String> {
    expected.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
    got.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
    let equal = expected.len() == got.len()
        && expected
            .iter()
            .zip(got.iter())
            .all(|(e, g)| e.labels == g.labels && e.value == g.value);
    if equal {
        return None;
    }
    Some(format!(
        "    expr: {}, time: {eval_time},\n        exp: {}\n        got: {}",
        go_quote(expr),
        samples_string(&expected),
        samples_string(&got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawLabels {
        raw_from_pairs(pairs.iter().copied())
    }

    #[test]
    fn floats_print_like_go_format_e() {
        assert_eq!(format_float_e(1.0), "1E+00");
        assert_eq!(format_float_e(0.0), "0E+00");
        assert_eq!(format_float_e(-0.0), "-0E+00");
        assert_eq!(format_float_e(1e-7), "1E-07");
        assert_eq!(format_float_e(1.0000000001), "1.0000000001E+00");
        assert_eq!(format_float_e(123456.0), "1.23456E+05");
        assert_eq!(format_float_e(1e300), "1E+300");
        assert_eq!(format_float_e(f64::NAN), "NaN");
        assert_eq!(format_float_e(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn durations_print_like_go_time_duration() {
        assert_eq!(go_time_duration(0), "0s");
        assert_eq!(go_time_duration(500), "500ms");
        assert_eq!(go_time_duration(60_000), "1m0s");
        assert_eq!(go_time_duration(90_500), "1m30.5s");
        assert_eq!(go_time_duration(3_600_000), "1h0m0s");
        assert_eq!(go_time_duration(30_000), "30s");
    }

    #[test]
    fn alert_failures_read_like_promtool() {
        let exp = vec![AlertView {
            labels: raw(&[("alertname", "Down"), ("instance", "b")]),
            annotations: raw(&[("summary", "b down")]),
        }];
        let got = vec![
            AlertView {
                labels: raw(&[("alertname", "Down"), ("instance", "b")]),
                annotations: raw(&[("summary", "b down")]),
            },
            AlertView {
                labels: raw(&[("alertname", "Down"), ("instance", "a")]),
                annotations: raw(&[("summary", "a down")]),
            },
        ];
        let text = compare_alerts("mytest", "Down", "3m", exp.clone(), got.clone()).unwrap();
        assert_eq!(
            text,
            r#"    name: mytest,
    alertname: Down, time: 3m, 
        exp:[
            0:
              Labels:{alertname="Down", instance="b"}
              Annotations:{summary="b down"}
            ], 
        got:[
            0:
              Labels:{alertname="Down", instance="a"}
              Annotations:{summary="a down"},
            1:
              Labels:{alertname="Down", instance="b"}
              Annotations:{summary="b down"}
            ]"#
        );
        // Order does not matter.
        let mut reversed = got.clone();
        reversed.reverse();
        assert!(compare_alerts("", "Down", "3m", got, reversed).is_none());
        assert_eq!(
            compare_alerts("", "Down", "0s", vec![], exp).unwrap(),
            "    alertname: Down, time: 0s, \n        exp:[], \n        got:[\n            0:\n              Labels:{alertname=\"Down\", instance=\"b\"}\n              Annotations:{summary=\"b down\"}\n            ]"
        );
    }

    #[test]
    fn an_expected_empty_label_never_matches() {
        let exp = vec![AlertView {
            labels: raw(&[("alertname", "A"), ("extra", "")]),
            annotations: raw(&[]),
        }];
        let got = vec![AlertView {
            labels: raw(&[("alertname", "A")]),
            annotations: raw(&[]),
        }];
        assert!(compare_alerts("", "A", "1m", exp, got).is_some());
    }

    #[test]
    fn samples_compare_exactly() {
        let s = |l: &[(&str, &str)], v: f64| SampleView {
            labels: raw(l),
            value: v,
        };
        assert!(compare_samples(
            "up",
            "1m",
            vec![s(&[("a", "1")], 1.0)],
            vec![s(&[("a", "1")], 1.0)]
        )
        .is_none());
        assert!(compare_samples("up", "1m", vec![s(&[], -0.0)], vec![s(&[], 0.0)]).is_none());
        // No epsilon, and NaN never equals NaN (reflect.DeepEqual).
        let text = compare_samples(
            "up*1.0000000001",
            "1m",
            vec![s(&[("instance", "a")], 1.0)],
            vec![s(&[("instance", "a")], 1.0000000001)],
        )
        .unwrap();
        assert_eq!(
            text,
            "    expr: \"up*1.0000000001\", time: 1m,\n        exp: {instance=\"a\"} 1E+00\n        got: {instance=\"a\"} 1.0000000001E+00"
        );
        assert!(
            compare_samples("x", "0s", vec![s(&[], f64::NAN)], vec![s(&[], f64::NAN)]).is_some()
        );
        assert_eq!(
            compare_samples("x", "0s", vec![], vec![s(&[], 1.0)]).unwrap(),
            "    expr: \"x\", time: 0s,\n        exp: nil\n        got: {} 1E+00"
        );
        // Order does not matter.
        assert!(compare_samples(
            "x",
            "0s",
            vec![s(&[("a", "2")], 2.0), s(&[("a", "1")], 1.0)],
            vec![s(&[("a", "1")], 1.0), s(&[("a", "2")], 2.0)]
        )
        .is_none());
    }
}
