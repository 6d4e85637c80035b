//! Differential PromQL test: the real Prometheus 2.42 (Debian's package) and
//! the real bellwether binary get the same generated data set over
//! remote_write (counters with resets, gauges, a classic histogram, a series
//! that goes stale and comes back, a gap, info-style series), then answer the
//! same corpus of queries as instant queries at several times and as range
//! queries. Answers must agree: status, errorType, resultType, label sets and
//! timestamps exactly; values as identical strings (bit-identical floats: the
//! engine follows Prometheus's operation order and Go's `math` algorithms,
//! see `src/promql/gomath.rs`); NaN = NaN. Instant vectors are
//! compared as sets (Prometheus's order comes from Go map iteration for many
//! operators) except under `sort`/`sort_desc`, where the value order must
//! agree. Parse errors must agree on status and errorType only: the message
//! comes from a different parser.
//!
//! Both get the data over remote_write rather than `promtool tsdb
//! create-blocks-from openmetrics`, because OpenMetrics text cannot carry
//! staleness markers; a separate test checks the promtool path.

use std::process::Command;

use bellwether::ingest::remote_write::decode::encode_write_request;
use bellwether::ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use serde_json::Value;

use crate::util::{client, reference_program, Prometheus, TestDaemon};

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 240;

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The generated data set: series and their samples from `base` on, every 15 s.
fn dataset(base: i64) -> Vec<TimeSeries> {
    let t = |i: i64| base + i * STEP_MS;
    let mut out = Vec::new();
    let mut push = |pairs: &[(&str, &str)], samples: Vec<Sample>| {
        out.push(TimeSeries {
            labels: labels(pairs),
            samples,
            ..Default::default()
        })
    };
    // Counters with resets.
    let mut idx = 0;
    for instance in ["a", "b"] {
        for method in ["get", "post"] {
            for code in ["200", "500"] {
                idx += 1;
                let mut v = 0.0;
                let samples = (0..SAMPLES)
                    .map(|i| {
                        v += (idx * 3 + (i * 7 + idx) % 11) as f64 * 0.5;
                        if (instance == "a" && i == 100) || (code == "500" && i == 180) {
                            v = (i % 5) as f64;
                        }
                        Sample {
                            value: v,
                            timestamp: t(i),
                        }
                    })
                    .collect();
                push(
                    &[
                        ("__name__", "demo_requests_total"),
                        ("instance", instance),
                        ("job", "api"),
                        ("method", method),
                        ("code", code),
                    ],
                    samples,
                );
            }
        }
    }
    // Gauges.
    for (k, instance) in ["a", "b"].iter().enumerate() {
        let samples = (0..SAMPLES)
            .map(|i| Sample {
                value: 1e9 + 1e8 * ((i as f64) / 10.0 + k as f64).sin() + (k as f64) * 1e7,
                timestamp: t(i),
            })
            .collect();
        push(
            &[
                ("__name__", "demo_memory_bytes"),
                ("instance", instance),
                ("job", "node"),
            ],
            samples,
        );
    }
    for (k, room) in ["kitchen", "hall", "attic"].iter().enumerate() {
        let samples = (0..SAMPLES)
            .map(|i| Sample {
                value: if *room == "attic" && i % 50 == 7 {
                    f64::NAN
                } else {
                    -5.0 + ((i * (k as i64 + 3)) % 40) as f64 * 0.75
                },
                timestamp: t(i),
            })
            .collect();
        push(
            &[("__name__", "demo_temperature_celsius"), ("room", room)],
            samples,
        );
    }
    // A CPU-like counter (seconds per mode) and a gauge that runs out.
    for (k, instance) in ["a", "b"].iter().enumerate() {
        let (mut idle, mut user) = (0.0f64, 0.0f64);
        let mut idle_samples = Vec::new();
        let mut user_samples = Vec::new();
        for i in 0..SAMPLES {
            let frac = if k == 0 {
                0.05 + 0.02 * (i % 5) as f64
            } else {
                0.5 + 0.1 * ((i / 20) % 3) as f64
            };
            idle += 15.0 * frac;
            user += 15.0 * (1.0 - frac);
            idle_samples.push(Sample {
                value: idle,
                timestamp: t(i),
            });
            user_samples.push(Sample {
                value: user,
                timestamp: t(i),
            });
        }
        for (mode, samples) in [("idle", idle_samples), ("user", user_samples)] {
            push(
                &[
                    ("__name__", "demo_cpu_seconds_total"),
                    ("instance", instance),
                    ("job", "node"),
                    ("mode", mode),
                ],
                samples,
            );
        }
        let samples = (0..SAMPLES)
            .map(|i| Sample {
                value: if k == 0 {
                    5e9 - (i as f64) * 2e7
                } else {
                    8e9 + (i as f64) * 1e6
                },
                timestamp: t(i),
            })
            .collect();
        push(
            &[
                ("__name__", "demo_disk_free_bytes"),
                ("instance", instance),
                ("job", "node"),
            ],
            samples,
        );
    }
    // A classic histogram.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
    for (k, instance) in ["a", "b"].iter().enumerate() {
        let mut counts = [0.0f64; 6];
        let mut sum = 0.0;
        let mut bucket_samples: Vec<Vec<Sample>> = vec![Vec::new(); 6];
        let mut count_samples = Vec::new();
        let mut sum_samples = Vec::new();
        for i in 0..SAMPLES {
            for _ in 0..(3 + (i + k as i64) % 4) {
                let obs = ((i * 37 + k as i64 * 11) % 100) as f64 / 90.0;
                sum += obs;
                for (b, bound) in [0.05, 0.1, 0.25, 0.5, 1.0, f64::INFINITY]
                    .iter()
                    .enumerate()
                {
                    if obs <= *bound {
                        counts[b] += 1.0;
                    }
                }
            }
            for b in 0..6 {
                bucket_samples[b].push(Sample {
                    value: counts[b],
                    timestamp: t(i),
                });
            }
            count_samples.push(Sample {
                value: counts[5],
                timestamp: t(i),
            });
            sum_samples.push(Sample {
                value: sum,
                timestamp: t(i),
            });
        }
        for (b, samples) in bucket_samples.into_iter().enumerate() {
            push(
                &[
                    ("__name__", "demo_latency_seconds_bucket"),
                    ("instance", instance),
                    ("job", "api"),
                    ("le", bounds[b]),
                ],
                samples,
            );
        }
        push(
            &[
                ("__name__", "demo_latency_seconds_count"),
                ("instance", instance),
                ("job", "api"),
            ],
            count_samples,
        );
        push(
            &[
                ("__name__", "demo_latency_seconds_sum"),
                ("instance", instance),
                ("job", "api"),
            ],
            sum_samples,
        );
    }
    // A series that goes stale (staleness marker) and comes back.
    let stale = f64::from_bits(bellwether::model::STALE_NAN_BITS);
    let flappy = (40..122)
        .map(|i| Sample {
            value: if i == 121 { stale } else { (i % 13) as f64 },
            timestamp: t(i),
        })
        .chain((200..SAMPLES).map(|i| Sample {
            value: (i % 9) as f64,
            timestamp: t(i),
        }))
        .collect();
    push(&[("__name__", "demo_flappy"), ("instance", "c")], flappy);
    // A gap without a marker, longer than the lookback.
    let gap = (0..SAMPLES)
        .filter(|i| !(60..100).contains(i))
        .map(|i| Sample {
            value: i as f64,
            timestamp: t(i),
        })
        .collect();
    push(&[("__name__", "demo_gap"), ("instance", "d")], gap);
    // Info-style series for joins.
    for (instance, version) in [("a", "1.0"), ("b", "2.0")] {
        let samples = (0..SAMPLES)
            .map(|i| Sample {
                value: 1.0,
                timestamp: t(i),
            })
            .collect();
        push(
            &[
                ("__name__", "demo_build_info"),
                ("instance", instance),
                ("version", version),
            ],
            samples,
        );
    }
    out
}

/// The query corpus: every function family, operator and modifier.
const QUERIES: &[&str] = &[
    // Selectors, lookback, staleness, offset, @.
    "demo_requests_total",
    "demo_requests_total{method=\"get\"}",
    "demo_requests_total{code=~\"5..\",instance!=\"b\"}",
    "{__name__=~\"demo_(memory|gap).*\"}",
    "demo_flappy",
    "demo_gap",
    "demo_memory_bytes offset 5m",
    "demo_memory_bytes offset -2m",
    "demo_memory_bytes @ end()",
    "demo_memory_bytes @ start()",
    "demo_temperature_celsius",
    "demo_requests_total[2m]",
    "demo_flappy[5m]",
    "demo_requests_total[1m] offset 10m",
    // Literals and scalars.
    "1",
    "-2.5",
    "\"hello\"",
    "time()",
    "pi()",
    "2 ^ 3 ^ 2",
    "1 + 2 * 3 - 4 / 8 % 3",
    "5 > bool 3",
    "scalar(demo_memory_bytes{instance=\"a\"})",
    "scalar(demo_memory_bytes)",
    "vector(42)",
    "vector(time())",
    "-demo_memory_bytes",
    // Rates and counters.
    "rate(demo_requests_total[5m])",
    "rate(demo_requests_total[1m])",
    "irate(demo_requests_total[5m])",
    "increase(demo_requests_total[10m])",
    "delta(demo_memory_bytes[5m])",
    "idelta(demo_memory_bytes[5m])",
    "resets(demo_requests_total[30m])",
    "changes(demo_temperature_celsius[10m])",
    "rate(demo_requests_total[5m] offset 7m)",
    "rate(demo_requests_total[5m] @ end())",
    "deriv(demo_memory_bytes[10m])",
    "predict_linear(demo_memory_bytes[10m], 3600)",
    "holt_winters(demo_memory_bytes[10m], 0.5, 0.5)",
    "holt_winters(demo_memory_bytes[10m], 1.5, 0.5)",
    // *_over_time.
    "avg_over_time(demo_temperature_celsius[5m])",
    "min_over_time(demo_temperature_celsius[15m])",
    "max_over_time(demo_temperature_celsius[15m])",
    "sum_over_time(demo_temperature_celsius[5m])",
    "count_over_time(demo_flappy[5m])",
    "last_over_time(demo_flappy[10m])",
    "present_over_time(demo_gap[3m])",
    "quantile_over_time(0.9, demo_temperature_celsius[10m])",
    "quantile_over_time(1.5, demo_memory_bytes[10m])",
    "stddev_over_time(demo_memory_bytes[10m])",
    "stdvar_over_time(demo_temperature_celsius[10m])",
    "absent_over_time(demo_gap[2m])",
    "absent_over_time(nonexistent{job=\"x\"}[5m])",
    // Subqueries.
    "max_over_time(rate(demo_requests_total[2m])[10m:1m])",
    "avg_over_time(demo_memory_bytes[10m:])",
    "rate(demo_requests_total[5m:30s])",
    "demo_memory_bytes[5m:1m]",
    "min_over_time(sum(demo_memory_bytes)[15m:2m] offset 3m)",
    "max_over_time(deriv(demo_memory_bytes[5m])[20m:1m] @ end())",
    // Aggregations.
    "sum(demo_requests_total)",
    "sum by (instance) (rate(demo_requests_total[5m]))",
    "sum without (method, code) (demo_requests_total)",
    "avg by (job) (demo_memory_bytes)",
    "min(demo_temperature_celsius)",
    "max by (room) (demo_temperature_celsius)",
    "count(demo_requests_total)",
    "count by (code) (demo_requests_total)",
    "group by (instance) (demo_requests_total)",
    "stddev(demo_memory_bytes)",
    "stdvar by (job) (demo_requests_total)",
    "topk(3, demo_requests_total)",
    "bottomk(2, demo_requests_total)",
    "topk by (instance) (1, demo_requests_total)",
    "topk(0, demo_requests_total)",
    "quantile(0.5, demo_requests_total)",
    "quantile by (instance) (0.9, rate(demo_requests_total[5m]))",
    "count_values(\"value\", demo_gap)",
    "count_values by (instance) (\"v\", demo_build_info)",
    "sum(demo_temperature_celsius)",
    "avg(demo_temperature_celsius)",
    "sum by (__name__) ({__name__=~\"demo_latency_seconds_(sum|count)\"})",
    // Binary operators and vector matching.
    "demo_requests_total * 2",
    "2 - demo_memory_bytes",
    "demo_requests_total > 100",
    "demo_requests_total > bool 100",
    "100 < demo_requests_total",
    "demo_memory_bytes % 7",
    "demo_memory_bytes / on(instance) group_left demo_build_info",
    "demo_memory_bytes * on(instance) group_left(version) demo_build_info",
    "demo_build_info * on(instance) group_right(version) demo_memory_bytes",
    "demo_latency_seconds_sum / demo_latency_seconds_count",
    "rate(demo_latency_seconds_sum[5m]) / rate(demo_latency_seconds_count[5m])",
    "demo_requests_total / ignoring(code) demo_requests_total",
    "demo_requests_total / ignoring(code) group_left sum without (code) (demo_requests_total)",
    "demo_requests_total == on(instance, method, code, job) demo_requests_total",
    "demo_memory_bytes and demo_build_info",
    "demo_memory_bytes and on(instance) demo_build_info",
    "demo_memory_bytes or demo_temperature_celsius",
    "demo_requests_total unless demo_requests_total{code=\"500\"}",
    "demo_requests_total unless on(method) demo_requests_total{method=\"get\"}",
    "demo_memory_bytes atan2 demo_memory_bytes",
    "demo_memory_bytes + on() group_left vector(1)",
    // Many-to-many and duplicate errors.
    "demo_requests_total + on(instance) demo_memory_bytes",
    "demo_memory_bytes + on(job) demo_build_info",
    "demo_memory_bytes * on(instance) group_left demo_requests_total",
    "sum by (code) (demo_requests_total) + on() group_left count(demo_requests_total)",
    // Histograms.
    "histogram_quantile(0.9, rate(demo_latency_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(demo_latency_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (le, instance) (rate(demo_latency_seconds_bucket[10m])))",
    "histogram_quantile(0, demo_latency_seconds_bucket)",
    "histogram_quantile(1, demo_latency_seconds_bucket)",
    "histogram_quantile(1.5, demo_latency_seconds_bucket)",
    "histogram_quantile(0.5, demo_latency_seconds_bucket{le!=\"+Inf\"})",
    "histogram_count(demo_memory_bytes)",
    // Labels.
    "label_replace(demo_memory_bytes, \"host\", \"h-$1\", \"instance\", \"(.*)\")",
    "label_replace(demo_memory_bytes, \"instance\", \"\", \"instance\", \"a\")",
    "label_replace(demo_memory_bytes, \"x\", \"$1\", \"instance\", \"(\")",
    "label_replace(demo_memory_bytes, \"1x\", \"y\", \"instance\", \".*\")",
    "label_replace(demo_memory_bytes, \"instance\", \"same\", \"instance\", \".*\")",
    "label_join(demo_requests_total, \"combo\", \"-\", \"instance\", \"method\", \"code\")",
    "label_join(demo_memory_bytes, \"job\", \",\")",
    "sort(demo_memory_bytes)",
    "sort_desc(rate(demo_requests_total[5m]))",
    "sort(demo_temperature_celsius)",
    "absent(demo_memory_bytes)",
    "absent(nonexistent{job=\"x\", instance=~\"y\"})",
    "absent(sum(nonexistent))",
    "timestamp(demo_gap)",
    "timestamp(demo_memory_bytes offset 1m)",
    "timestamp(sum(demo_memory_bytes))",
    // Math and dates.
    "abs(-demo_memory_bytes)",
    "ceil(demo_temperature_celsius / 3)",
    "floor(demo_temperature_celsius / 3)",
    "round(demo_temperature_celsius / 3)",
    "round(demo_temperature_celsius, 0.5)",
    "exp(demo_temperature_celsius / 10)",
    "ln(demo_memory_bytes)",
    "log2(demo_memory_bytes)",
    "log10(demo_memory_bytes)",
    "sqrt(demo_temperature_celsius)",
    "sgn(demo_temperature_celsius)",
    "clamp(demo_temperature_celsius, 0, 10)",
    "clamp(demo_temperature_celsius, 10, 0)",
    "clamp_min(demo_temperature_celsius, 2)",
    "clamp_max(demo_temperature_celsius, 2)",
    "sin(demo_temperature_celsius)",
    "cos(demo_temperature_celsius)",
    "tan(demo_temperature_celsius)",
    "asin(demo_temperature_celsius / 100)",
    "acos(demo_temperature_celsius / 100)",
    "atan(demo_temperature_celsius)",
    "sinh(demo_temperature_celsius / 10)",
    "cosh(demo_temperature_celsius / 10)",
    "tanh(demo_temperature_celsius)",
    "asinh(demo_temperature_celsius)",
    "acosh(demo_memory_bytes)",
    "atanh(demo_temperature_celsius / 100)",
    "deg(demo_temperature_celsius)",
    "rad(demo_temperature_celsius)",
    "day_of_month()",
    "day_of_week()",
    "day_of_year()",
    "days_in_month()",
    "hour()",
    "minute()",
    "month()",
    "year()",
    "hour(demo_gap * 1000)",
    "year(vector(1e9))",
    "days_in_month(vector(5097600))",
    // Alerting-style expressions.
    "sum(rate(demo_requests_total{code=~\"5..\"}[5m])) / sum(rate(demo_requests_total[5m])) > 0.01",
    "avg_over_time(demo_memory_bytes[5m]) > 1e9",
    "predict_linear(demo_memory_bytes[30m], 4 * 3600) < 0",
    "absent(up{job=\"api\"}) == 1",
    // More edges.
    "demo_requests_total offset 1h",
    "rate(demo_flappy[5m])",
    "irate(demo_gap[10m])",
    "delta(demo_requests_total[3m])",
    "sum(rate(demo_requests_total[5m])) by (method)",
    "topk(2, rate(demo_requests_total[5m]))",
    "bottomk by (code) (1, rate(demo_requests_total[5m]))",
    "count(count by (instance) (demo_requests_total))",
    "demo_memory_bytes > on(instance) group_left demo_build_info",
    "demo_requests_total{instance=\"a\"} - ignoring(instance) demo_requests_total{instance=\"b\"}",
    "label_replace(rate(demo_requests_total[5m]), \"method\", \"x\", \"\", \"\")",
    "changes(demo_flappy[30m])",
    "resets(demo_gap[30m])",
    "quantile(-1, demo_memory_bytes)",
    "quantile(0.25, demo_temperature_celsius)",
    "sum(demo_requests_total) / count(demo_requests_total)",
    "max_over_time(demo_flappy[1m:15s])",
    "timestamp(demo_flappy)",
    "absent(demo_flappy)",
    "stddev by (instance) (rate(demo_requests_total[5m]))",
    "vector(1) and on() demo_gap",
    "scalar(sum(demo_gap)) * demo_memory_bytes",
    "histogram_quantile(0.9, sum by (le) (demo_latency_seconds_bucket))",
    "sum by (le) (rate(demo_latency_seconds_bucket[5m]))",
    "increase(demo_latency_seconds_count[1h])",
    "rate(demo_requests_total[30s])",
    "demo_temperature_celsius == demo_temperature_celsius",
    "demo_temperature_celsius != bool 0",
    "group(demo_requests_total)",
    "count_values(\"code\", demo_requests_total)",
    "sort_desc(demo_temperature_celsius)",
    "min_over_time(demo_temperature_celsius[1h])",
    "sum_over_time(rate(demo_requests_total[1m])[5m:])",
    "predict_linear(demo_requests_total[5m] offset 5m, 600)",
    "deriv(demo_gap[20m])",
    "{job=\"api\"}",
    "rate({job=\"api\"}[5m])",
    "demo_memory_bytes unless on() vector(1)",
    "demo_memory_bytes or on() vector(0)",
    "avg without (instance) (demo_memory_bytes)",
    "max without () (demo_memory_bytes)",
    "sum by () (demo_memory_bytes)",
    "topk(1, demo_temperature_celsius)",
    "bottomk(1, demo_temperature_celsius)",
    "max(demo_temperature_celsius{room=\"attic\"})",
    "demo_memory_bytes / 0",
    "-demo_memory_bytes % 3",
    "demo_memory_bytes ^ 0.5",
    "demo_temperature_celsius ^ 1.37",
    "demo_memory_bytes ^ -2.25",
    "(demo_temperature_celsius / 7) ^ 3",
    "demo_temperature_celsius atan2 3",
    "-3 atan2 demo_temperature_celsius",
    "exp(demo_temperature_celsius)",
    "ln(demo_temperature_celsius)",
    "log2(demo_temperature_celsius)",
    "log10(demo_temperature_celsius / 1e-8)",
    "sin(demo_memory_bytes)",
    "cos(demo_memory_bytes * 3)",
    "tan(demo_memory_bytes)",
    "tanh(demo_temperature_celsius / 20)",
    "2 ^ 0.3",
    "exp(vector(2.5))",
    "1e-7 * 3",
    "(demo_memory_bytes)",
    "last_over_time(demo_memory_bytes[1m] @ start())",
    "demo_gap offset 10m",
    "count_over_time(demo_gap[15m])",
    "absent_over_time(demo_flappy[1m])",
    "present_over_time(demo_flappy[1m])",
    "sum(rate(demo_requests_total[5m])) without (code, method)",
    "histogram_quantile(0.75, rate(demo_latency_seconds_bucket{instance=\"a\"}[1m]))",
    "demo_build_info * on(instance) group_left(version) demo_memory_bytes",
    "demo_memory_bytes * on(instance) group_right demo_build_info",
    "round(-demo_temperature_celsius)",
    "clamp(demo_memory_bytes, -Inf, +Inf)",
    "sum(demo_memory_bytes) by (job) > bool sum(demo_memory_bytes)",
    // Errors.
    "rate(demo_memory_bytes)",
    "demo_memory_bytes[5m] + 1",
    "unknown_fn(demo_memory_bytes)",
    "mad_over_time(demo_memory_bytes[5m])",
    "topk(1e30, demo_memory_bytes)",
    // label_replace / label_join.
    "label_replace(demo_requests_total, \"status_class\", \"${1}xx\", \"code\", \"(.).*\")",
    "label_replace(demo_requests_total, \"code\", \"$2\", \"code\", \"(5)(.*)\")",
    "label_replace(demo_memory_bytes, \"__name__\", \"renamed\", \"instance\", \".*\")",
    "label_replace(demo_memory_bytes, \"inst\", \"$1$1\", \"instance\", \"(a|b)\")",
    "label_replace(demo_memory_bytes, \"x\", \"y\", \"nonexistent\", \"\")",
    "label_replace(demo_requests_total, \"instance\", \"x\", \"instance\", \".*\")",
    "label_replace(label_replace(demo_memory_bytes, \"a\", \"1\", \"\", \"\"), \"a\", \"\", \"\", \"\")",
    "label_join(demo_requests_total, \"instance\", \"\", \"code\")",
    "label_join(demo_memory_bytes, \"combo\", \"/\", \"job\", \"nonexistent\", \"instance\")",
    "label_join(rate(demo_requests_total[5m]), \"__name__\", \"_\", \"method\")",
    "label_join(demo_requests_total, \"dup\", \"-\", \"instance\", \"instance\")",
    "sort(label_replace(demo_memory_bytes, \"x\", \"y\", \"\", \"\"))",
    // bool comparisons on scalars and vectors.
    "demo_temperature_celsius > bool 10",
    "1 == bool 1",
    "2 <= bool 1",
    "NaN == bool NaN",
    "scalar(demo_memory_bytes{instance=\"a\"}) > bool 1e9",
    "demo_temperature_celsius == bool 4",
    "demo_temperature_celsius != demo_temperature_celsius",
    "demo_memory_bytes > bool on(instance) group_left demo_build_info",
    "demo_requests_total{code=\"500\"} < bool ignoring(code) demo_requests_total{code=\"200\"}",
    "max by (instance) (demo_requests_total) == bool on(instance) min by (instance) (demo_requests_total)",
    // on() / ignoring() with group_left / group_right and extra labels.
    "rate(demo_requests_total[5m]) * on(instance) group_left(version) demo_build_info",
    "demo_requests_total / ignoring(method, code) group_left(version) demo_build_info",
    "sum by (instance, job) (demo_requests_total) * on(instance) group_left(version) demo_build_info",
    "demo_latency_seconds_bucket / on(instance, job) group_left demo_latency_seconds_count",
    "demo_memory_bytes - on(instance) group_right(job) demo_build_info",
    "demo_build_info + on(instance) group_left(job) demo_memory_bytes",
    "sum(demo_requests_total) by (instance) / on(instance) group_left sum(demo_requests_total) by (instance, code)",
    "demo_memory_bytes / on(instance) (demo_memory_bytes offset 5m) - 1",
    // unless / or corner cases.
    "demo_memory_bytes unless demo_memory_bytes",
    "demo_gap or demo_flappy",
    "demo_flappy unless demo_gap",
    "demo_requests_total or on(instance) demo_memory_bytes",
    "vector(1) or vector(2)",
    "demo_memory_bytes and ignoring(job) demo_build_info",
    "(demo_requests_total or demo_requests_total) unless on(code) demo_requests_total{code=\"200\"}",
    "demo_temperature_celsius > 0 or demo_temperature_celsius < 0",
    // topk / bottomk with grouping.
    "topk by (method) (2, rate(demo_requests_total[5m]))",
    "bottomk by (instance, code) (1, demo_requests_total)",
    "topk without (room) (1, demo_temperature_celsius)",
    "topk(scalar(count(demo_build_info)), demo_memory_bytes)",
    // quantile, including phi out of range.
    "quantile(1.5, demo_temperature_celsius)",
    "quantile by (job) (2, demo_memory_bytes)",
    "quantile(NaN, demo_memory_bytes)",
    "quantile(0, demo_requests_total)",
    "quantile(1, rate(demo_requests_total[5m]))",
    // count_values with label collisions.
    "count_values(\"instance\", demo_memory_bytes)",
    "count_values by (instance) (\"instance\", demo_build_info)",
    "count_values(\"le\", demo_latency_seconds_bucket)",
    "count_values without (room) (\"room\", demo_temperature_celsius)",
    // absent with label matchers.
    "absent(demo_memory_bytes{instance=\"zzz\", job=\"node\"})",
    "absent(nonexistent{job=\"x\", job=\"y\"})",
    "absent(nonexistent{__name__=\"nonexistent\", a!=\"b\", c=\"d\"})",
    "absent(rate(nonexistent{job=\"x\"}[5m]))",
    "absent_over_time(nonexistent{job=\"x\", job!=\"y\"}[5m])",
    // changes / resets over gaps and staleness.
    "changes(demo_gap[20m])",
    "resets(demo_flappy[1h])",
    "changes(demo_requests_total[1h])",
    "resets(demo_temperature_celsius[30m])",
    "changes(demo_flappy[10m:1m])",
    // @ start() / end() in range queries, negative offsets.
    "rate(demo_requests_total[5m] @ start())",
    "demo_requests_total @ start() - demo_requests_total",
    "sum(demo_memory_bytes @ end()) by (job)",
    "max_over_time(demo_temperature_celsius[10m] @ start())",
    "demo_gap @ start() offset 5m",
    "rate(demo_requests_total[5m] offset -5m)",
    "demo_gap offset -10m",
    "sum_over_time(demo_temperature_celsius[5m] offset -1m)",
    "demo_memory_bytes offset -1h",
    // Nested subqueries.
    "max_over_time(avg_over_time(demo_memory_bytes[5m:1m])[15m:3m])",
    "min_over_time(rate(demo_requests_total[5m:1m])[10m:2m])",
    "avg_over_time(max_over_time(demo_temperature_celsius[5m])[10m:30s] offset 2m)",
    "rate(sum(rate(demo_requests_total[2m]))[10m:1m])",
    "quantile_over_time(0.5, deriv(demo_memory_bytes[5m:1m])[10m:1m])",
    // More functions and operators.
    "sgn(-demo_temperature_celsius)",
    "clamp_min(demo_memory_bytes, 1.05e9)",
    "clamp_max(rate(demo_requests_total[5m]), 1)",
    "scalar(vector(3)) + scalar(vector(4))",
    "vector(scalar(demo_gap))",
    "holt_winters(demo_temperature_celsius[15m], 0.1, 0.9)",
    "stddev_over_time(demo_temperature_celsius[1h])",
    "irate(demo_requests_total[1m])",
    "increase(demo_requests_total[5m] offset 10m)",
    "delta(demo_temperature_celsius[10m])",
    "idelta(demo_requests_total[2m])",
    "deriv(demo_temperature_celsius[5m])",
    "histogram_quantile(0.95, sum by (le, job) (rate(demo_latency_seconds_bucket[5m])))",
    "histogram_quantile(-0.5, demo_latency_seconds_bucket)",
    "last_over_time(demo_gap[30m])",
    "minute(timestamp(demo_memory_bytes))",
    "days_in_month(timestamp(demo_gap))",
    "-(demo_requests_total)",
    "+demo_memory_bytes",
    "sum(rate(demo_requests_total[5m])) * 60",
    "count by (room) (demo_temperature_celsius > 5)",
    "avg(demo_temperature_celsius) without (room)",
    "group without (code) (demo_requests_total)",
    "stdvar(demo_temperature_celsius)",
    "rate(demo_cpu_seconds_total[5m])",
    "sum without (mode) (rate(demo_cpu_seconds_total[5m]))",
    // Typical alerting expressions.
    "up == 0",
    "absent(up{job=\"node\"})",
    "avg_over_time(up[5m]) < 0.9",
    "rate(demo_requests_total{code=~\"5..\"}[5m]) / rate(demo_requests_total[5m]) > 0.05",
    "sum by (instance) (rate(demo_requests_total{code=~\"5..\"}[5m])) / sum by (instance) (rate(demo_requests_total[5m])) > 0.05",
    "histogram_quantile(0.95, sum by (le) (rate(demo_latency_seconds_bucket[5m]))) > 2",
    "histogram_quantile(0.95, sum by (le) (rate(demo_latency_seconds_bucket[5m]))) > 0.5",
    "(1 - avg by (instance) (rate(demo_cpu_seconds_total{mode=\"idle\"}[5m]))) > 0.8",
    "predict_linear(demo_disk_free_bytes[1h], 4*3600) < 0",
    "predict_linear(demo_memory_bytes[1h], 4 * 3600) < 0",
    "demo_disk_free_bytes / 1e9 < 4",
];

/// Syntactically wrong queries: both must answer 400 `bad_data` (checked
/// explicitly, in addition to the comparison every query gets).
const SYNTAX_ERRORS: &[&str] = &[
    "sum(",
    "demo_memory_bytes{",
    "rate(demo_requests_total[5m)",
    "sum by (instance demo_memory_bytes",
    "1 +",
    "demo_memory_bytes offset",
    "demo_requests_total[5x]",
    "label_replace(demo_memory_bytes, \"a\")",
    "demo_memory_bytes and 1",
    "{}",
    "foo bar",
    "sum(demo_memory_bytes) by",
    "\"unterminated",
    "demo_memory_bytes @ foo()",
    "rate(demo_requests_total[5m:1m:1m])",
    "rate(demo_requests_total)",
    "round(demo_memory_bytes, \"a\")",
    "count_values(1, demo_memory_bytes)",
    "quantile(\"a\", demo_memory_bytes)",
    "histogram_quantile(0.5)",
    "-\"a\"",
    "sum(demo_memory_bytes) +\n",
    "demo_memory_bytes[5m",
    "nosuchfunction(demo_memory_bytes)",
];

/// Syntax errors whose message is worded differently from Prometheus's (the
/// crate's grammar errors name no token; docs/promql-compatibility.md). For
/// every other syntax error the text must be identical, position included.
const PARSE_ERRORS_WORDED_DIFFERENTLY: &[&str] = &[
    "rate(demo_requests_total[5m)",
    "sum by (instance demo_memory_bytes",
    "demo_requests_total[5x]",
    "foo bar",
    "sum(demo_memory_bytes) by",
    "demo_memory_bytes @ foo()",
    "rate(demo_requests_total[5m:1m:1m])",
];

/// Queries known to answer differently from Prometheus, with why (each is
/// listed in docs/promql-compatibility.md). The test reports them and checks
/// that they still differ, so that a fix is noticed and the entry removed.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

/// A query evaluated by both, answered as (HTTP status, JSON).
fn ask(get: &dyn Fn(&str) -> (u16, String), path: &str) -> (u16, Value) {
    let (status, body) = get(path);
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

fn encode(q: &str) -> String {
    let mut out = String::new();
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Values that were compared (and were equal as strings).
static EXACT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Queries whose values may differ in the last bits, with why. Empty: every
/// value must be the same string. Add a query here only with a reason why
/// exactness is impossible, and document it in docs/promql.md.
const TOLERATED_QUERIES: &[(&str, &str)] = &[];

/// Values of `TOLERATED_QUERIES` that agreed only within 1e-9 relative, per
/// query: (count, first differing pair as Prometheus's vs ours).
static TOLERATED: std::sync::Mutex<std::collections::BTreeMap<String, (usize, String)>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// How two JSON sample values compare.
#[derive(PartialEq)]
enum Agreement {
    /// Identical strings (NaN as "NaN" either way).
    Exact,
    /// Different strings within 1e-9 relative.
    Close,
    Differ,
}

fn agreement(a: &Value, b: &Value) -> Agreement {
    if a == b {
        return Agreement::Exact;
    }
    let (Some(a), Some(b)) = (a.as_str(), b.as_str()) else {
        return Agreement::Differ;
    };
    let (Ok(x), Ok(y)) = (parse_value(a), parse_value(b)) else {
        return Agreement::Differ;
    };
    if x == y || ((x - y).abs() <= 1e-9 * x.abs().max(y.abs())) {
        Agreement::Close
    } else {
        Agreement::Differ
    }
}

/// Compares two sample values exactly (within 1e-9 only for the queries in
/// `TOLERATED_QUERIES`) and counts the outcome.
fn values_agree(query: &str, a: &Value, b: &Value) -> bool {
    match agreement(a, b) {
        Agreement::Exact => {
            EXACT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            true
        }
        Agreement::Close if TOLERATED_QUERIES.iter().any(|(q, _)| *q == query) => {
            let mut tolerated = TOLERATED.lock().unwrap();
            let entry = tolerated
                .entry(query.to_string())
                .or_insert_with(|| (0, format!("{a} vs {b}")));
            entry.0 += 1;
            true
        }
        Agreement::Close | Agreement::Differ => false,
    }
}

fn parse_value(s: &str) -> Result<f64, std::num::ParseFloatError> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse(),
    }
}

fn points_agree(query: &str, a: &Value, b: &Value) -> bool {
    a[0] == b[0] && values_agree(query, &a[1], &b[1])
}

/// The "found duplicate series for the match group" error with the group
/// and the list of duplicates left out; `None` for other errors. In range
/// queries Prometheus 2.42 assembles each step's operands from a Go map
/// (`rangeEval`), so which group it reports first and the order of the
/// duplicates in its message change from run to run (observed: the same query
/// named `{instance="a"}` with 200 before 500 in one run, `{instance="b"}`
/// with 500 before 200 in the next).
fn duplicate_series_error(error: &Value) -> Option<String> {
    let text = error.as_str()?;
    let marker = "found duplicate series for the match group ";
    let group_start = text.find(marker)? + marker.len();
    let group_end = group_start + text[group_start..].find("} on the ")? + 1;
    let list_start = text.find("operation: [")? + "operation: ".len();
    let list_end = list_start + text[list_start..].find("];")? + 1;
    DUPLICATE_ORDER_NORMALIZED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(format!(
        "{}<group>{}<duplicates>{}",
        &text[..group_start],
        &text[group_end..list_start],
        &text[list_end..]
    ))
}

/// How many error texts differed and were compared with `duplicate_series_error` (counted once per side).
static DUPLICATE_ORDER_NORMALIZED: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Compares two answers; `None` when they agree, else why not.
fn compare(query: &str, prom: &(u16, Value), ours: &(u16, Value)) -> Option<String> {
    if prom.0 != ours.0 {
        return Some(format!("status {} vs {}", prom.0, ours.0));
    }
    let (p, o) = (&prom.1, &ours.1);
    if p["status"] != o["status"] || p["errorType"] != o["errorType"] {
        return Some(format!("{p} vs {o}"));
    }
    if p["status"] == "error" {
        // Parse errors come from a different parser: their text must agree
        // except for the syntax errors listed as worded differently.
        let parse_error = p["error"]
            .as_str()
            .is_some_and(|e| e.contains("parse error"));
        if parse_error
            && p["error"] != o["error"]
            && !PARSE_ERRORS_WORDED_DIFFERENTLY.contains(&query)
        {
            return Some(format!(
                "parse error text: {} vs {}",
                p["error"], o["error"]
            ));
        }
        if !parse_error
            && p["error"] != o["error"]
            && duplicate_series_error(&p["error"]) != duplicate_series_error(&o["error"])
        {
            return Some(format!("error text: {} vs {}", p["error"], o["error"]));
        }
        return None;
    }
    let (pd, od) = (&p["data"], &o["data"]);
    if pd["resultType"] != od["resultType"] {
        return Some(format!(
            "resultType {} vs {}",
            pd["resultType"], od["resultType"]
        ));
    }
    match pd["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            (!points_agree(query, &pd["result"], &od["result"])).then(|| format!("{pd} vs {od}"))
        }
        _ => {
            let key = |v: &Value| v["metric"].to_string();
            let mut pr: Vec<Value> = pd["result"].as_array().cloned().unwrap_or_default();
            let mut or: Vec<Value> = od["result"].as_array().cloned().unwrap_or_default();
            if pr.len() != or.len() {
                return Some(format!("{} vs {} series: {pd} vs {od}", pr.len(), or.len()));
            }
            if query.starts_with("sort") {
                for (a, b) in pr.iter().zip(&or) {
                    if agreement(&a["value"][1], &b["value"][1]) == Agreement::Differ {
                        return Some(format!("sort order: {pd} vs {od}"));
                    }
                }
            }
            pr.sort_by_key(key);
            or.sort_by_key(key);
            for (a, b) in pr.iter().zip(&or) {
                if a["metric"] != b["metric"] {
                    return Some(format!("metric {} vs {}", a["metric"], b["metric"]));
                }
                if a.get("value").is_some() && !points_agree(query, &a["value"], &b["value"]) {
                    return Some(format!(
                        "{} value {} vs {}",
                        a["metric"], a["value"], b["value"]
                    ));
                }
                if let Some(pv) = a.get("values").and_then(Value::as_array) {
                    let ov = b["values"].as_array().cloned().unwrap_or_default();
                    if pv.len() != ov.len() {
                        return Some(format!(
                            "{} has {} vs {} points: {} vs {}",
                            a["metric"],
                            pv.len(),
                            ov.len(),
                            a["values"],
                            b["values"]
                        ));
                    }
                    for (x, y) in pv.iter().zip(&ov) {
                        if !points_agree(query, x, y) {
                            return Some(format!("{} point {x} vs {y}", a["metric"]));
                        }
                    }
                }
            }
            None
        }
    }
}

#[test]
fn promql_answers_match_prometheus() {
    let now = bellwether::model::now_millis();
    let base = (now - 3_660_000) / 60_000 * 60_000;
    let end = base + (SAMPLES - 1) * STEP_MS;
    let body = encode_write_request(&WriteRequest {
        timeseries: dataset(base),
        ..Default::default()
    });

    let prometheus = Prometheus::start(
        "global:\n  evaluation_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    );
    let daemon = TestDaemon::start("storage:\n  wal_flush_interval: 1s\n");
    for url in [prometheus.url("/api/v1/write"), daemon.url("/api/v1/write")] {
        let response = client()
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(
            response.status().is_success(),
            "POST {url}: {} {}",
            response.status(),
            response.text().unwrap_or_default()
        );
    }

    let prom_get = |path: &str| -> (u16, String) { prometheus.get(path) };
    let our_get = |path: &str| -> (u16, String) { daemon.get(path) };

    let secs = |ms: i64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let instant_times = [
        base + 20 * 60_000,
        base + 31 * 60_000 + 7_500,
        base + 45 * 60_000,
        end,
        base - 60_000,
    ];
    let ranges = [
        (base, end, "60"),
        (base + 300_000, base + 2_400_000, "37s"),
        (base + 600_000, base + 900_000, "1m30s"),
    ];

    let corpus: Vec<&str> = QUERIES.iter().chain(SYNTAX_ERRORS).copied().collect();
    let distinct: std::collections::BTreeSet<&str> = corpus.iter().copied().collect();
    assert_eq!(distinct.len(), corpus.len(), "the corpus has duplicates");
    for (query, _) in KNOWN_DIFFERENCES {
        assert!(
            distinct.contains(query),
            "known difference not in corpus: {query}"
        );
    }

    let mut compared = 0;
    let mut failures = Vec::new();
    let mut disagreeing_queries = std::collections::BTreeSet::new();
    // Known differences: (query, answers that differed, first difference).
    let mut known: Vec<(&str, usize, String)> = Vec::new();
    for query in &corpus {
        let known_difference = KNOWN_DIFFERENCES.iter().any(|(q, _)| q == query);
        let mut known_differing = (0, String::new());
        let syntax_error = SYNTAX_ERRORS.contains(query);
        let q = encode(query);
        let mut paths: Vec<String> = instant_times
            .iter()
            .map(|t| format!("/api/v1/query?query={q}&time={}", secs(*t)))
            .collect();
        paths.extend(ranges.iter().map(|(s, e, step)| {
            format!(
                "/api/v1/query_range?query={q}&start={}&end={}&step={step}",
                secs(*s),
                secs(*e)
            )
        }));
        for path in paths {
            let prom = ask(&prom_get, &path);
            let ours = ask(&our_get, &path);
            if syntax_error {
                for (who, answer) in [("prometheus", &prom), ("bellwether", &ours)] {
                    if answer.0 != 400 || answer.1["errorType"] != "bad_data" {
                        failures.push(format!(
                            "{query}  [{path}]\n    {who} did not answer 400 bad_data: {} {}",
                            answer.0, answer.1
                        ));
                    }
                }
            }
            let difference = compare(query, &prom, &ours);
            if known_difference {
                if let Some(why) = difference {
                    if known_differing.0 == 0 {
                        known_differing.1 = why;
                    }
                    known_differing.0 += 1;
                }
                continue;
            }
            compared += 1;
            if let Some(why) = difference {
                disagreeing_queries.insert(*query);
                failures.push(format!("{query}  [{path}]\n    {why}"));
            }
        }
        if known_difference {
            known.push((query, known_differing.0, known_differing.1));
        }
    }
    // API validation errors.
    let validation = [
        format!(
            "/api/v1/query_range?query=1&start={}&end={}&step=0",
            secs(base),
            secs(end)
        ),
        format!(
            "/api/v1/query_range?query=1&start={}&end={}&step=0.1",
            secs(base),
            secs(end)
        ),
        format!(
            "/api/v1/query_range?query=1&start={}&end={}&step=60",
            secs(end),
            secs(base)
        ),
        "/api/v1/query_range?query=1&start=abc&end=1&step=60".to_string(),
        "/api/v1/query_range?query=1&start=1&end=2&step=xyz".to_string(),
        "/api/v1/query?query=1&time=notatime".to_string(),
        "/api/v1/query?query=1&timeout=bad".to_string(),
        format!("/api/v1/query?query={}&time={}", encode("1e-7"), secs(end)),
        format!(
            "/api/v1/query?query={}&time={}",
            encode("1e21 * 3"),
            secs(end)
        ),
        format!("/api/v1/query?query={}&time={}", encode("2^70"), secs(end)),
    ];
    for path in &validation {
        let prom = ask(&prom_get, path);
        let ours = ask(&our_get, path);
        compared += 1;
        if let Some(why) = compare("", &prom, &ours) {
            failures.push(format!("[{path}]\n    {why}"));
        }
    }
    let tolerated = TOLERATED.lock().unwrap().clone();
    for (query, (count, example)) in &tolerated {
        println!(
            "within 1e-9 only: {count:4} values  {query}   e.g. {example} (prometheus vs ours)"
        );
    }
    println!(
        "duplicate-series errors that differed only in the group named and the order of duplicates (nondeterministic in Prometheus): {}",
        DUPLICATE_ORDER_NORMALIZED.load(std::sync::atomic::Ordering::Relaxed) / 2
    );
    for (query, count, example) in &known {
        let why = KNOWN_DIFFERENCES
            .iter()
            .find(|(q, _)| q == query)
            .map_or("", |(_, why)| why);
        println!("known difference: {count} answers differ  {query}  ({why}) e.g. {example}");
    }
    println!(
        "promql differential: {} of {} queries agree in every answer ({} syntax errors, {} known differences); {} of {compared} answers agree with Prometheus; {} values compared exactly (identical strings), {} agreed only within 1e-9 relative ({} tolerated queries)",
        corpus.len() - KNOWN_DIFFERENCES.len() - disagreeing_queries.len(),
        corpus.len(),
        SYNTAX_ERRORS.len(),
        KNOWN_DIFFERENCES.len(),
        compared - failures.len(),
        EXACT.load(std::sync::atomic::Ordering::Relaxed),
        tolerated.values().map(|(n, _)| n).sum::<usize>(),
        tolerated.len(),
    );
    let fixed: Vec<&str> = known
        .iter()
        .filter(|(_, count, _)| *count == 0)
        .map(|(q, _, _)| *q)
        .collect();
    assert!(
        fixed.is_empty(),
        "known differences that now agree (remove them from KNOWN_DIFFERENCES and the docs): {fixed:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} answers differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs Debian's `promtool query ...` with `args`; (exit success, stdout, stderr).
fn promtool(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(reference_program("promtool"))
        .arg("query")
        .args(args)
        .output()
        .expect("running promtool");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Lines of promtool's output, sorted (the order of an instant vector's series
/// is not part of the contract).
fn sorted_lines(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A real client, not ours: Debian's `promtool query instant` and `promtool
/// query range` (Prometheus 2.42) against bellwether, on data written over
/// remote_write.
#[test]
fn promtool_queries_bellwether() {
    let now = bellwether::model::now_millis();
    let base = (now - 1_800_000) / 60_000 * 60_000;
    let series = |instance: &str, factor: f64| TimeSeries {
        labels: labels(&[
            ("__name__", "promtool_demo"),
            ("instance", instance),
            ("job", "api"),
        ]),
        samples: (0..100)
            .map(|i| Sample {
                value: i as f64 * factor,
                timestamp: base + i * STEP_MS,
            })
            .collect(),
        ..Default::default()
    };
    let body = encode_write_request(&WriteRequest {
        timeseries: vec![series("a", 1.0), series("b", 10.0)],
        ..Default::default()
    });
    let daemon = TestDaemon::start("storage:\n  wal_flush_interval: 1s\n");
    let response = client()
        .post(daemon.url("/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .expect("remote_write to bellwether");
    assert!(response.status().is_success(), "{}", response.status());

    let url = daemon.base_url.clone();
    // Sample 40 is at base + 600 s: a = 40, b = 400.
    let t = (base + 40 * STEP_MS) / 1000;
    let time = format!("--time={t}");

    let (ok, out, err) = promtool(&["instant", &time, &url, "promtool_demo"]);
    assert!(ok, "promtool failed: {err}\n{}", daemon.log());
    assert_eq!(
        sorted_lines(&out),
        vec![
            format!("promtool_demo{{instance=\"a\", job=\"api\"}} => 40 @[{t}]"),
            format!("promtool_demo{{instance=\"b\", job=\"api\"}} => 400 @[{t}]"),
        ],
        "promtool output:\n{out}"
    );

    let (ok, out, err) = promtool(&[
        "instant",
        &time,
        &url,
        "sum by (job) (rate(promtool_demo[1m]))",
    ]);
    assert!(ok, "promtool failed: {err}");
    let expected_rate = 11.0 / 15.0;
    assert_eq!(
        out.trim(),
        format!("{{job=\"api\"}} => {expected_rate} @[{t}]"),
        "promtool output:\n{out}"
    );

    let (ok, out, err) = promtool(&["instant", &time, &url, "scalar(sum(promtool_demo)) * 2"]);
    assert!(ok, "promtool failed: {err}");
    assert_eq!(
        out.trim(),
        format!("scalar: 880 @[{t}]"),
        "promtool output:\n{out}"
    );

    // Range: samples 40, 44, 48 (every 60 s) summed over a and b.
    let (start, end) = (t.to_string(), (t + 120).to_string());
    let (ok, out, err) = promtool(&[
        "range",
        &format!("--start={start}"),
        &format!("--end={end}"),
        "--step=60s",
        &url,
        "sum(promtool_demo)",
    ]);
    assert!(ok, "promtool failed: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "{} =>".to_string(),
            format!("440 @[{t}]"),
            format!("484 @[{}]", t + 60),
            format!("528 @[{}]", t + 120),
        ],
        "promtool output:\n{out}"
    );
    let (ok, out, err) = promtool(&[
        "range",
        &format!("--start={start}"),
        &format!("--end={end}"),
        "--step=1m",
        &url,
        "promtool_demo{instance=\"b\"} / 10",
    ]);
    assert!(ok, "promtool failed: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "{instance=\"b\", job=\"api\"} =>".to_string(),
            format!("40 @[{t}]"),
            format!("44 @[{}]", t + 60),
            format!("48 @[{}]", t + 120),
        ],
        "promtool output:\n{out}"
    );

    // Bad queries: non-zero exit and the bad_data error.
    let (ok, out, err) = promtool(&["instant", &url, "sum(promtool_demo"]);
    assert!(!ok, "promtool accepted a bad query: {out}");
    assert!(
        err.contains("bad_data") && err.contains("parse error"),
        "promtool stderr: {err}"
    );
    let (ok, out, err) = promtool(&[
        "range",
        &format!("--start={start}"),
        &format!("--end={end}"),
        "--step=60s",
        &url,
        "rate(promtool_demo[5m)",
    ]);
    assert!(!ok, "promtool accepted a bad query: {out}");
    assert!(
        err.contains("bad_data") && err.contains("parse error"),
        "promtool stderr: {err}"
    );
    println!(
        "promtool query instant/range against bellwether: 5 queries and 2 bad queries as expected"
    );
}
