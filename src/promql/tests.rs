//! Unit tests of the evaluator, one group per family, with expected values
//! computed by hand from Prometheus 2.42's definitions. The differential test
//! in tests/integration/promql.rs checks the same families against the real
//! Prometheus.

use std::time::Duration;

use proptest::prelude::*;

use super::functions::{bucket_quantile, extrapolated_rate, quantile};
use super::*;
use crate::model::{stale_nan, Labels};
use crate::storage::StorageOptions;

const MIN: i64 = 60_000;

/// A store with `series` (labels, samples every minute from t=0).
/// Label pairs and the values written one minute apart from t=0.
type TestSeries<'a> = (&'a [(&'a str, &'a str)], &'a [f64]);

fn engine_with(series: &[TestSeries]) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(StorageOptions::for_epoch_fixtures(dir.path())).expect("store");
    let mut app = storage.appender();
    for (labels, values) in series {
        for (i, v) in values.iter().enumerate() {
            app.add(Labels::new(labels.iter().copied()), i as i64 * MIN, *v);
        }
    }
    app.commit().expect("commit");
    (Engine::new(storage, EngineOptions::default()), dir)
}

fn instant(engine: &Engine, query: &str, t: i64) -> Result<Value, EvalError> {
    let expr = parse(query).map_err(EvalError::BadQuery)?;
    engine.instant_query(&expr, t, None)
}

/// The instant vector's `(labels, value)` pairs, sorted by labels.
fn vector(engine: &Engine, query: &str, t: i64) -> Vec<(String, f64)> {
    match instant(engine, query, t) {
        Ok(Value::Vector(v)) => {
            let mut out: Vec<(String, f64)> =
                v.into_iter().map(|s| (s.labels.to_string(), s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{query}: expected a vector, got {other:?}"),
    }
}

fn scalar(engine: &Engine, query: &str, t: i64) -> f64 {
    match instant(engine, query, t) {
        Ok(Value::Scalar { v, .. }) => v,
        other => panic!("{query}: expected a scalar, got {other:?}"),
    }
}

fn counters() -> (Engine, tempfile::TempDir) {
    engine_with(&[
        (
            &[("__name__", "c"), ("job", "a")],
            &[0.0, 10.0, 20.0, 5.0, 15.0, 25.0],
        ),
        (
            &[("__name__", "c"), ("job", "b")],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ),
    ])
}

#[test]
fn selectors_use_lookback_and_stop_at_staleness_markers() {
    let (engine, _dir) = engine_with(&[
        (&[("__name__", "g")], &[1.0, 2.0, stale_nan()]),
        (&[("__name__", "h")], &[7.0]),
    ]);
    assert_eq!(
        vector(&engine, "g", MIN + 30_000),
        vec![("g{}".into(), 2.0)]
    );
    // The marker at 2 min ends `g` at once; `h` is found until 5 min after its sample.
    assert_eq!(vector(&engine, "g", 2 * MIN), vec![]);
    assert_eq!(vector(&engine, "h", 5 * MIN), vec![("h{}".into(), 7.0)]);
    assert_eq!(vector(&engine, "h", 5 * MIN + 1), vec![]);
    assert_eq!(
        vector(&engine, "g offset 1m", 2 * MIN),
        vec![("g{}".into(), 2.0)]
    );
    assert_eq!(
        vector(&engine, "h @ 0", 100 * MIN),
        vec![("h{}".into(), 7.0)]
    );
}

#[test]
fn rate_extrapolates_and_corrects_counter_resets() {
    let (engine, _dir) = counters();
    // job=a over [0, 5m]: 0,10,20,5,15,25 → increase 25 + reset correction 20 = 45;
    // samples cover the whole window, so no extrapolation.
    let got = vector(&engine, "increase(c[5m])", 5 * MIN);
    assert_eq!(got[0], ("{job=\"a\"}".into(), 45.0));
    let got = vector(&engine, "rate(c[5m])", 5 * MIN);
    // Prometheus divides the factor, then multiplies: 45 × (1/300), not 45/300.
    assert_eq!(got[0], ("{job=\"a\"}".into(), 45.0 * (1.0 / 300.0)));
    // Window [1.5m, 5.5m] holds samples at 2..5m (20,5,15,25): increase 5 + 20 = 25
    // over 180 s; 30 s to each edge is under 1.1×60 s, so extrapolate to 240 s.
    let got = vector(&engine, "increase(c[4m])", 5 * MIN + 30_000);
    assert!((got[0].1 - 25.0 * 240.0 / 180.0).abs() < 1e-9, "{got:?}");
    // delta does not correct resets.
    let got = vector(&engine, "delta(c[5m])", 5 * MIN);
    assert_eq!(got[0].1, 25.0);
    // irate after a reset uses the last value.
    let got = vector(&engine, "irate(c[5m])", 3 * MIN);
    assert_eq!(got[0].1, 5.0 / 60.0);
    assert_eq!(vector(&engine, "idelta(c[5m])", 3 * MIN)[0].1, -15.0);
    assert_eq!(vector(&engine, "resets(c[5m])", 5 * MIN)[0].1, 1.0);
    assert_eq!(vector(&engine, "changes(c[5m])", 5 * MIN)[1].1, 5.0);
}

#[test]
fn extrapolation_stops_at_zero_for_counters() {
    let points = [Point { t: 60_000, v: 1.0 }, Point { t: 120_000, v: 3.0 }];
    // 60 s to the window start, but the counter would reach zero 30 s before its
    // first sample: extrapolate 30 s back and 0 s forward → 2 × 90/60.
    let got = extrapolated_rate(&points, 0, 120_000, 120_000, true, false);
    assert_eq!(got, Some(3.0));
}

#[test]
fn over_time_functions() {
    let (engine, _dir) = counters();
    let at = 5 * MIN;
    assert_eq!(
        vector(&engine, "sum_over_time(c{job=\"b\"}[2m])", at)[0].1,
        15.0
    );
    assert_eq!(
        vector(&engine, "avg_over_time(c{job=\"b\"}[2m])", at)[0].1,
        5.0
    );
    assert_eq!(vector(&engine, "min_over_time(c[5m])", at)[0].1, 0.0);
    assert_eq!(vector(&engine, "max_over_time(c[5m])", at)[0].1, 25.0);
    assert_eq!(vector(&engine, "count_over_time(c[5m])", at)[0].1, 6.0);
    assert_eq!(
        vector(&engine, "last_over_time(c{job=\"b\"}[5m])", at),
        vec![("c{job=\"b\"}".into(), 6.0)]
    );
    assert_eq!(
        vector(&engine, "stdvar_over_time(c{job=\"b\"}[2m])", at)[0].1,
        2.0 / 3.0
    );
    assert_eq!(
        vector(&engine, "quantile_over_time(0.5, c{job=\"b\"}[5m])", at)[0].1,
        3.5
    );
    assert_eq!(vector(&engine, "absent_over_time(c[5m])", at), vec![]);
    assert_eq!(
        vector(&engine, "absent_over_time(nope{x=\"1\"}[5m])", at),
        vec![("{x=\"1\"}".into(), 1.0)]
    );
    assert_eq!(
        vector(&engine, "deriv(c{job=\"b\"}[5m])", at)[0].1,
        1.0 / 60.0
    );
    // Slope 1/60 per second, value 6 at 5 min: 10 minutes ahead → 16.
    let predicted = vector(&engine, "predict_linear(c{job=\"b\"}[5m], 600)", at)[0].1;
    assert!((predicted - 16.0).abs() < 1e-9, "{predicted}");
}

#[test]
fn aggregations_group_by_and_without() {
    let (engine, _dir) = counters();
    let at = 5 * MIN;
    assert_eq!(vector(&engine, "sum(c)", at), vec![("{}".into(), 31.0)]);
    assert_eq!(vector(&engine, "avg(c)", at)[0].1, 15.5);
    assert_eq!(vector(&engine, "count by (job) (c)", at).len(), 2);
    assert_eq!(
        vector(&engine, "max without (job) (c)", at),
        vec![("{}".into(), 25.0)]
    );
    assert_eq!(vector(&engine, "stddev(c)", at)[0].1, 9.5);
    assert_eq!(
        vector(&engine, "topk(1, c)", at),
        vec![("c{job=\"a\"}".into(), 25.0)]
    );
    assert_eq!(
        vector(&engine, "bottomk(1, c)", at),
        vec![("c{job=\"b\"}".into(), 6.0)]
    );
    assert_eq!(vector(&engine, "quantile(0.5, c)", at)[0].1, 15.5);
    assert_eq!(
        vector(&engine, "count_values(\"v\", c)", at),
        vec![("{v=\"25\"}".into(), 1.0), ("{v=\"6\"}".into(), 1.0)]
    );
    assert_eq!(
        instant(&engine, "topk(1e30, c)", at),
        Err(EvalError::Execution(
            "Scalar value 1e+30 overflows int64".into()
        ))
    );
}

#[test]
fn binary_operators_and_matching() {
    let (engine, _dir) = engine_with(&[
        (&[("__name__", "m"), ("i", "a"), ("x", "1")], &[10.0]),
        (&[("__name__", "m"), ("i", "b"), ("x", "1")], &[20.0]),
        (&[("__name__", "info"), ("i", "a"), ("v", "1.0")], &[1.0]),
        (&[("__name__", "info"), ("i", "a"), ("v", "2.0")], &[1.0]),
    ]);
    assert_eq!(scalar(&engine, "2 ^ 3 ^ 2", 0), 512.0);
    assert_eq!(
        vector(&engine, "m > 15", 0),
        vec![("m{i=\"b\", x=\"1\"}".into(), 20.0)]
    );
    assert_eq!(
        vector(&engine, "m > bool 15", 0),
        vec![
            ("{i=\"a\", x=\"1\"}".into(), 0.0),
            ("{i=\"b\", x=\"1\"}".into(), 1.0)
        ]
    );
    assert_eq!(
        vector(&engine, "m * on(i) group_left(v) info{v=\"1.0\"}", 0),
        vec![("{i=\"a\", v=\"1.0\", x=\"1\"}".into(), 10.0)]
    );
    assert_eq!(vector(&engine, "m and on(i) info", 0).len(), 1);
    assert_eq!(vector(&engine, "m unless on(i) info", 0).len(), 1);
    assert_eq!(vector(&engine, "m or info", 0).len(), 4);
    let err = instant(&engine, "m * on(i) info", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {i=\"a\"} on the right hand-side of the operation: \
         [{__name__=\"info\", i=\"a\", v=\"2.0\"}, {__name__=\"info\", i=\"a\", v=\"1.0\"}];\
         many-to-many matching not allowed: matching labels must be unique on one side"
    );
    let err = instant(&engine, "info * on(i) m", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
}

#[test]
fn histogram_quantile_interpolates_and_fixes_buckets() {
    let b = |v: &[(f64, f64)]| v.to_vec();
    // 100 observations, 50 ≤ 1, 80 ≤ 2: the median is the top of the first bucket.
    let buckets = b(&[(1.0, 50.0), (2.0, 80.0), (f64::INFINITY, 100.0)]);
    assert_eq!(bucket_quantile(0.5, buckets.clone()), 1.0);
    // 0.65 → rank 65: 15 of 30 into (1, 2].
    assert_eq!(bucket_quantile(0.65, buckets.clone()), 1.5);
    // Beyond the last finite bucket: its upper bound.
    assert_eq!(bucket_quantile(0.95, buckets.clone()), 2.0);
    // No +Inf bucket: NaN. Non-monotonic counts are raised.
    assert!(bucket_quantile(0.5, b(&[(1.0, 1.0)])).is_nan());
    let fixed = b(&[(1.0, 50.0), (2.0, 40.0), (f64::INFINITY, 100.0)]);
    assert_eq!(bucket_quantile(0.5, fixed), 1.0);
    assert_eq!(bucket_quantile(-1.0, buckets.clone()), f64::NEG_INFINITY);
    assert_eq!(bucket_quantile(2.0, buckets), f64::INFINITY);
    assert_eq!(quantile(0.5, vec![3.0, 1.0, 2.0, 4.0]), 2.5);
}

#[test]
fn label_functions_and_errors() {
    let (engine, _dir) = counters();
    assert_eq!(
        vector(
            &engine,
            "label_replace(c, \"dst\", \"x-$1\", \"job\", \"(a)\")",
            0
        ),
        vec![
            ("c{dst=\"x-a\", job=\"a\"}".into(), 0.0),
            ("c{job=\"b\"}".into(), 1.0)
        ]
    );
    assert_eq!(
        vector(&engine, "label_join(c, \"j\", \"-\", \"job\", \"job\")", 0)[0].0,
        "c{j=\"a-a\", job=\"a\"}"
    );
    assert_eq!(
        instant(&engine, "label_replace(c, \"d\", \"\", \"job\", \"(\")", 0)
            .unwrap_err()
            .to_string(),
        "invalid regular expression in label_replace(): ("
    );
    assert_eq!(
        instant(
            &engine,
            "label_replace(c, \"job\", \"same\", \"job\", \".*\")",
            0
        )
        .unwrap_err()
        .to_string(),
        "vector cannot contain metrics with the same labelset"
    );
    assert_eq!(
        vector(&engine, "absent(nope{a=\"1\", b=~\"x\"})", 0),
        vec![("{a=\"1\"}".into(), 1.0)]
    );
}

#[test]
fn math_date_and_scalar_functions() {
    let (engine, _dir) = counters();
    assert_eq!(scalar(&engine, "time()", 90_000), 90.0);
    assert_eq!(scalar(&engine, "pi()", 0), std::f64::consts::PI);
    assert_eq!(scalar(&engine, "scalar(c{job=\"a\"})", 0), 0.0);
    assert!(scalar(&engine, "scalar(c)", 0).is_nan());
    // 2001-09-09T01:46:40Z.
    let date = |f: &str| vector(&engine, &format!("{f}(vector(1e9))"), 0)[0].1;
    assert_eq!(date("year"), 2001.0);
    assert_eq!(date("month"), 9.0);
    assert_eq!(date("day_of_month"), 9.0);
    assert_eq!(date("day_of_week"), 0.0);
    assert_eq!(date("day_of_year"), 252.0);
    assert_eq!(date("days_in_month"), 30.0);
    assert_eq!(date("hour"), 1.0);
    assert_eq!(date("minute"), 46.0);
    assert_eq!(vector(&engine, "round(vector(2.5))", 0)[0].1, 3.0);
    assert_eq!(vector(&engine, "round(vector(-2.5))", 0)[0].1, -2.0);
    assert_eq!(vector(&engine, "clamp(c, 3, 4)", 5 * MIN)[1].1, 4.0);
    assert_eq!(vector(&engine, "sgn(-c)", 5 * MIN)[0].1, -1.0);
}

#[test]
fn subqueries_and_range_queries() {
    let (engine, _dir) = counters();
    // Inner steps at 0,1,2,3 min; max of c{job="b"} over them = 4.
    assert_eq!(
        vector(&engine, "max_over_time(c{job=\"b\"}[3m:1m])", 3 * MIN)[0].1,
        4.0
    );
    let expr = parse("c{job=\"b\"} * 2").expect("parses");
    let Ok(Value::Matrix(m)) = engine.range_query(&expr, 0, 2 * MIN, MIN, None) else {
        panic!("range query failed");
    };
    let values: Vec<f64> = m[0].points.iter().map(|p| p.v).collect();
    assert_eq!(values, vec![2.0, 4.0, 6.0]);
    let expr = parse("c[5m]").expect("parses");
    assert_eq!(
        engine.range_query(&expr, 0, MIN, MIN, None).unwrap_err().to_string(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
}

#[test]
fn limits_stop_queries() {
    let (engine, _dir) = counters();
    let tight = Engine::new(
        engine.storage.clone(),
        EngineOptions {
            max_samples: 3,
            ..EngineOptions::default()
        },
    );
    let expr = parse("c[5m]").expect("parses");
    assert_eq!(
        tight.instant_query(&expr, 5 * MIN, None),
        Err(EvalError::TooManySamples)
    );
    let expr = parse("max_over_time(c[5m:1s])").expect("parses");
    assert_eq!(
        engine.instant_query(&expr, 5 * MIN, Some(Duration::ZERO)),
        Err(EvalError::Timeout)
    );
}

#[test]
fn prometheus_2_42_refuses_later_functions() {
    assert!(parse("holt_winters(x[5m], 0.5, 0.5)").is_ok());
    let err = parse("mad_over_time(x[5m])").unwrap_err();
    assert_eq!(
        err,
        "1:1: parse error: unknown function with name \"mad_over_time\""
    );
    assert!(parse("limitk(1, x)").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No query string, however odd, panics the parser or the evaluator.
    #[test]
    fn random_queries_never_panic(query in "[a-z_(){}\\[\\]\"=~!,.0-9:@ +*/^%<>-]{0,40}") {
        let (engine, _dir) = counters();
        if let Ok(expr) = parse(&query) {
            let _ = engine.instant_query(&expr, 5 * MIN, Some(Duration::from_secs(2)));
            let _ = engine.range_query(&expr, 0, 5 * MIN, MIN, Some(Duration::from_secs(2)));
        }
    }

    /// Fragments of real queries recombined: these get past the parser far more often.
    #[test]
    fn recombined_queries_never_panic(parts in proptest::collection::vec(prop::sample::select(vec![
        "c", "c[5m]", "rate(", "sum by (job) (", ")", " + ", " / on(job) ", " and ", "topk(2, ",
        "histogram_quantile(0.5, ", "[3m:1m]", " offset 1m", " @ 60", "label_replace(", ", \"a\"",
        "scalar(", "vector(1)", "-", "1", "absent(", "count_values(\"v\", ", " > bool ", "quantile(0.3, ",
        "holt_winters(", ", 0.5", "predict_linear(", "timestamp(",
    ]), 1..8)) {
        let query: String = parts.concat();
        let (engine, _dir) = counters();
        if let Ok(expr) = parse(&query) {
            let _ = engine.instant_query(&expr, 5 * MIN, Some(Duration::from_secs(2)));
            let _ = engine.range_query(&expr, 0, 5 * MIN, MIN, Some(Duration::from_secs(2)));
        }
    }
}

/// promql-parser panics on out-of-range numeric durations (found by fuzzing
/// `match[]`); the query path must answer with a parse error instead.
#[test]
fn regression_fuzz_out_of_range_durations_are_parse_errors() {
    for bad in [
        "up[1e400]",
        "up offset Inf",
        "rate(up[NaN])",
        "up[1e30s]",
        "sum_over_time(up[1y] offset -1e300)",
        "up[5m:1e400]",
    ] {
        let err = parse(bad).expect_err(bad);
        assert!(err.contains("parse error"), "{bad}: {err}");
    }
}

/// A subquery with a tiny step over a long range must hit the sample limit
/// while it runs, not allocate every point first.
#[test]
fn huge_subqueries_stop_at_the_sample_limit() {
    let (engine, _dir) = counters();
    // 3.15e10 steps: with the check only at the end this test would not finish.
    let tight = Engine::new(
        engine.storage.clone(),
        EngineOptions {
            max_samples: 10_000,
            ..EngineOptions::default()
        },
    );
    let expr = parse("count_over_time(vector(1)[1y:1ms])").expect("parses");
    assert_eq!(
        tight.instant_query(&expr, 3_600_000, None),
        Err(EvalError::TooManySamples)
    );
}
