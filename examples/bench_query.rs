//! Query-latency benchmark against Prometheus (scripts/bench-query-vs-prometheus.sh).
//!
//! `load`: generates one data set and sends the identical remote_write
//! requests to every `--url` (bellwether and Prometheus): `--series` counters
//! `bench_requests_total{job,instance,handler}` and a classic histogram
//! `bench_latency_seconds{job,instance}` with 10 buckets + `+Inf` over
//! `--combos` label combinations, every `--interval` seconds for `--hours`,
//! ending at the current minute (so Prometheus's head accepts it: samples
//! are sent oldest first, one time slice of every series per request).
//!
//! `run`: times a fixed set of queries and metadata requests (the panels and
//! metric-browser requests of a Grafana dashboard) `--runs` times against
//! each server after `--warmup` untimed runs, alternating the servers so
//! machine load hits both alike; checks that both answer the same (same
//! result type, same label sets, values within 1e-6 relative) so the two
//! cannot be doing different work; prints a Markdown table of median and
//! p90 latency and the ratios.
//!
//! Usage:
//!   bench_query load --url http://127.0.0.1:19471/api/v1/write --url http://127.0.0.1:19090/api/v1/write
//!   bench_query run --bellwether http://127.0.0.1:19471 --prometheus http://127.0.0.1:19090 --time <end unix s>

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bellwether::ingest::remote_write::decode::encode_write_request;
use bellwether::ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use serde_json::Value;

const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];
const BOUNDS: [f64; 11] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    f64::INFINITY,
];
const JOBS: usize = 10;

/// A small deterministic PRNG (xorshift) so every run sends the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn flag_values(args: &[String], name: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match flag_values(args, name).last() {
        Some(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} {v}: not a valid value")),
        None => default,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

struct Counter {
    labels: Vec<Label>,
    value: f64,
    per_second: f64,
    rng: Rng,
}

struct Histogram {
    job: String,
    instance: String,
    counts: [f64; 11],
    sum: f64,
    /// Scale of this combination's latencies (seconds).
    scale: f64,
    rng: Rng,
}

fn load(args: &[String]) {
    let urls = flag_values(args, "--url");
    assert!(!urls.is_empty(), "load needs at least one --url");
    let series: usize = flag(args, "--series", 10_000);
    let combos: usize = flag(args, "--combos", 300);
    let hours: i64 = flag(args, "--hours", 24);
    let interval_s: i64 = flag(args, "--interval", 60);
    let per_request: i64 = flag(args, "--steps-per-request", 20);
    let end: i64 = flag(args, "--end", 0);
    let interval_ms = interval_s * 1000;
    let end = if end > 0 {
        end * 1000
    } else {
        bellwether::model::now_millis() / interval_ms * interval_ms
    };
    let steps = hours * 3600 / interval_s;
    let start = end - steps * interval_ms;

    let handlers = 20;
    let instances = series.div_ceil(JOBS * handlers).max(1);
    let mut counters: Vec<Counter> = (0..series)
        .map(|i| {
            let job = format!("job-{}", i % JOBS);
            let instance = format!("host-{}", (i / JOBS) % instances);
            let handler = format!("/api/h{}", i / (JOBS * instances));
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
            let per_second = 0.5 + 20.0 * rng.unit();
            Counter {
                labels: labels(&[
                    ("__name__", "bench_requests_total"),
                    ("handler", &handler),
                    ("instance", &instance),
                    ("job", &job),
                ]),
                value: (rng.next() % 10_000) as f64,
                per_second,
                rng,
            }
        })
        .collect();
    let mut histograms: Vec<Histogram> = (0..combos)
        .map(|i| {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1));
            Histogram {
                job: format!("job-{}", i % JOBS),
                instance: format!("host-{}", i / JOBS),
                counts: [0.0; 11],
                sum: 0.0,
                scale: 0.01 + 0.5 * rng.unit(),
                rng,
            }
        })
        .collect();

    eprintln!(
        "loading {} counter series and {} histogram series, {} samples each, {}..{} (unix ms) into {}",
        series,
        combos * (BUCKETS.len() + 2),
        steps + 1,
        start,
        end,
        urls.join(", ")
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("HTTP client");
    let began = Instant::now();
    let mut step = 0i64;
    let mut samples_sent = 0usize;
    while step <= steps {
        let last = (step + per_request - 1).min(steps);
        let times: Vec<i64> = (step..=last).map(|s| start + s * interval_ms).collect();
        let mut timeseries = Vec::with_capacity(counters.len() + combos * 13);
        for c in &mut counters {
            let samples = times
                .iter()
                .map(|&t| {
                    // About one reset per series per day.
                    if c.rng.next() % 1440 == 0 {
                        c.value = 0.0;
                    }
                    c.value +=
                        (c.per_second * interval_s as f64 * (0.8 + 0.4 * c.rng.unit())).round();
                    Sample {
                        value: c.value,
                        timestamp: t,
                    }
                })
                .collect();
            timeseries.push(TimeSeries {
                labels: c.labels.clone(),
                samples,
                ..Default::default()
            });
        }
        for h in &mut histograms {
            let mut buckets: Vec<Vec<Sample>> =
                (0..11).map(|_| Vec::with_capacity(times.len())).collect();
            let mut sums = Vec::with_capacity(times.len());
            let mut counts = Vec::with_capacity(times.len());
            for &t in &times {
                let observations = 20 + h.rng.next() % 80;
                for _ in 0..observations {
                    // Exponential-ish latencies around the combination's scale.
                    let obs = -h.scale * (1.0 - h.rng.unit()).ln();
                    h.sum += obs;
                    for (b, bound) in BOUNDS.iter().enumerate() {
                        if obs <= *bound {
                            h.counts[b] += 1.0;
                        }
                    }
                }
                for (b, samples) in buckets.iter_mut().enumerate() {
                    samples.push(Sample {
                        value: h.counts[b],
                        timestamp: t,
                    });
                }
                sums.push(Sample {
                    value: h.sum,
                    timestamp: t,
                });
                counts.push(Sample {
                    value: h.counts[10],
                    timestamp: t,
                });
            }
            for (b, samples) in buckets.into_iter().enumerate() {
                timeseries.push(TimeSeries {
                    labels: labels(&[
                        ("__name__", "bench_latency_seconds_bucket"),
                        ("instance", &h.instance),
                        ("job", &h.job),
                        ("le", BUCKETS[b]),
                    ]),
                    samples,
                    ..Default::default()
                });
            }
            for (name, samples) in [
                ("bench_latency_seconds_sum", sums),
                ("bench_latency_seconds_count", counts),
            ] {
                timeseries.push(TimeSeries {
                    labels: labels(&[
                        ("__name__", name),
                        ("instance", &h.instance),
                        ("job", &h.job),
                    ]),
                    samples,
                    ..Default::default()
                });
            }
        }
        samples_sent += timeseries.iter().map(|s| s.samples.len()).sum::<usize>();
        let body = encode_write_request(&WriteRequest {
            timeseries,
            ..Default::default()
        });
        std::thread::scope(|scope| {
            for url in &urls {
                let (client, body) = (&client, body.clone());
                scope.spawn(move || {
                    let response = client
                        .post(url)
                        .header("Content-Type", "application/x-protobuf")
                        .header("Content-Encoding", "snappy")
                        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                        .body(body)
                        .send()
                        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
                    let status = response.status();
                    if !status.is_success() {
                        panic!(
                            "POST {url}: {status} {}",
                            response.text().unwrap_or_default()
                        );
                    }
                });
            }
        });
        step = last + 1;
    }
    eprintln!(
        "sent {samples_sent} samples to each server in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    // The end time, for `run --time`.
    println!("{}", end / 1000);
}

/// One timed request: a name for the table and the path (with query string).
struct Case {
    name: String,
    path: String,
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn cases(end: i64) -> Vec<Case> {
    let day = end - 86_400;
    let hour = end - 3_600;
    let instant = |q: &str| Case {
        name: format!("instant `{q}`"),
        path: format!("/api/v1/query?query={}&time={end}", encode(q)),
    };
    let range = |q: &str, start: i64, step: &str, label: &str| Case {
        name: format!("range {label} `{q}`"),
        path: format!(
            "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            encode(q)
        ),
    };
    let meta = |name: &str, path: String| Case {
        name: name.to_string(),
        path,
    };
    vec![
        instant("rate(bench_requests_total[5m])"),
        instant("sum by (job) (rate(bench_requests_total[5m]))"),
        instant("histogram_quantile(0.95, sum by (le) (rate(bench_latency_seconds_bucket[5m])))"),
        instant("topk(10, rate(bench_requests_total[5m]))"),
        instant("sum(bench_requests_total)"),
        range(
            "sum by (job) (rate(bench_requests_total[5m]))",
            day,
            "60",
            "24h/60s",
        ),
        range(
            "histogram_quantile(0.95, sum by (le, job) (rate(bench_latency_seconds_bucket[5m])))",
            day,
            "60",
            "24h/60s",
        ),
        range(
            "sum by (instance) (rate(bench_requests_total{job=\"job-3\"}[5m]))",
            hour,
            "15",
            "1h/15s",
        ),
        meta(
            "`/api/v1/labels` (1h)",
            format!("/api/v1/labels?start={hour}&end={end}"),
        ),
        meta(
            "`/api/v1/label/__name__/values` (1h)",
            format!("/api/v1/label/__name__/values?start={hour}&end={end}"),
        ),
        meta(
            "`/api/v1/label/job/values?match[]=bench_requests_total` (1h)",
            format!(
                "/api/v1/label/job/values?match%5B%5D=bench_requests_total&start={hour}&end={end}"
            ),
        ),
        meta(
            "`/api/v1/series?match[]=bench_requests_total{job=\"job-3\"}` (1h)",
            format!(
                "/api/v1/series?match%5B%5D={}&start={hour}&end={end}",
                encode("bench_requests_total{job=\"job-3\"}")
            ),
        ),
    ]
}

/// GET `base + path`; the status, the body and the wall time including the
/// whole body.
fn timed_get(client: &reqwest::blocking::Client, url: &str) -> (u16, Vec<u8>, Duration) {
    let began = Instant::now();
    let response = client
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .unwrap_or_else(|e| panic!("reading {url}: {e}"))
        .to_vec();
    (status, body, began.elapsed())
}

/// A canonical form of an answer: label set → values, and the result type.
fn canonical(body: &[u8]) -> Result<(String, BTreeMap<String, Vec<f64>>), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!("not a success: {v}"));
    }
    let data = &v["data"];
    let mut out = BTreeMap::new();
    let value = |s: &Value| -> f64 {
        s.as_str()
            .and_then(|s| match s {
                "NaN" => Some(f64::NAN),
                "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            })
            .unwrap_or(f64::NAN)
    };
    let kind = match data.get("resultType").and_then(Value::as_str) {
        Some(kind) => {
            for s in data["result"].as_array().cloned().unwrap_or_default() {
                let key = s["metric"].to_string();
                let values: Vec<f64> = match kind {
                    "vector" => vec![value(&s["value"][1])],
                    _ => s["values"]
                        .as_array()
                        .map(|vs| vs.iter().map(|p| value(&p[1])).collect())
                        .unwrap_or_default(),
                };
                out.insert(key, values);
            }
            kind.to_string()
        }
        None => {
            for item in data.as_array().cloned().unwrap_or_default() {
                out.insert(item.to_string(), Vec::new());
            }
            "list".to_string()
        }
    };
    Ok((kind, out))
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan())
        || a == b
        || (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
        || (a - b).abs() < 1e-12
}

/// Why two answers differ, if they do.
fn compare(prom: &[u8], ours: &[u8]) -> Option<String> {
    let (pk, p) = match canonical(prom) {
        Ok(c) => c,
        Err(e) => return Some(format!("prometheus: {e}")),
    };
    let (ok, o) = match canonical(ours) {
        Ok(c) => c,
        Err(e) => return Some(format!("bellwether: {e}")),
    };
    if pk != ok {
        return Some(format!("result type {pk} vs {ok}"));
    }
    if p.len() != o.len() {
        return Some(format!("{} series vs {}", p.len(), o.len()));
    }
    let mut differing = 0;
    let mut example = String::new();
    for (key, pv) in &p {
        let Some(ov) = o.get(key) else {
            return Some(format!("series {key} missing in bellwether's answer"));
        };
        if pv.len() != ov.len() || pv.iter().zip(ov).any(|(a, b)| !close(*a, *b)) {
            differing += 1;
            if example.is_empty() {
                example = format!(
                    "{key}: {:?} vs {:?}",
                    &pv[..pv.len().min(3)],
                    &ov[..ov.len().min(3)]
                );
            }
        }
    }
    (differing > 0).then(|| format!("{differing} series differ in value, e.g. {example}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn run(args: &[String]) {
    let ours = flag_values(args, "--bellwether")
        .pop()
        .expect("run needs --bellwether URL");
    let prom = flag_values(args, "--prometheus")
        .pop()
        .expect("run needs --prometheus URL");
    let end: i64 = flag(args, "--time", 0);
    assert!(end > 0, "run needs --time (unix seconds of the data's end)");
    let runs: usize = flag(args, "--runs", 20);
    let warmup: usize = flag(args, "--warmup", 2);
    let only = flag_values(args, "--only");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .expect("HTTP client");

    println!("| request | result | Prometheus median / p90 (ms) | bellwether median / p90 (ms) | bellwether / Prometheus, median | p90 |");
    println!("|---|---|---|---|---|---|");
    let mut disagreements = 0;
    let mut worst: f64 = 0.0;
    for case in cases(end) {
        if !only.is_empty() && !only.iter().any(|o| case.name.contains(o.as_str())) {
            continue;
        }
        let (p_url, o_url) = (
            format!("{prom}{}", case.path),
            format!("{ours}{}", case.path),
        );
        let (ps, pb, _) = timed_get(&client, &p_url);
        let (os, ob, _) = timed_get(&client, &o_url);
        let agreement = if ps != os {
            Some(format!("status {ps} vs {os}"))
        } else {
            compare(&pb, &ob)
        };
        let size = canonical(&pb)
            .map(|(kind, m)| {
                let points: usize = m.values().map(Vec::len).sum();
                match kind.as_str() {
                    "list" => format!("{} items", m.len()),
                    "matrix" => format!("{} series, {points} points", m.len()),
                    _ => format!("{} series", m.len()),
                }
            })
            .unwrap_or_else(|e| e);
        if let Some(why) = &agreement {
            disagreements += 1;
            eprintln!("DISAGREE {}: {why}", case.name);
        }
        for _ in 0..warmup {
            timed_get(&client, &p_url);
            timed_get(&client, &o_url);
        }
        let (mut pt, mut ot) = (Vec::new(), Vec::new());
        for i in 0..runs {
            // Alternate which goes first.
            let order: [(&str, &mut Vec<f64>); 2] = if i % 2 == 0 {
                [(&p_url, &mut pt), (&o_url, &mut ot)]
            } else {
                [(&o_url, &mut ot), (&p_url, &mut pt)]
            };
            for (url, times) in order {
                let (status, _, took) = timed_get(&client, url);
                assert_eq!(status, ps, "{url} changed status between runs");
                times.push(took.as_secs_f64() * 1000.0);
            }
        }
        pt.sort_by(f64::total_cmp);
        ot.sort_by(f64::total_cmp);
        let (pm, p9, om, o9) = (
            percentile(&pt, 0.5),
            percentile(&pt, 0.9),
            percentile(&ot, 0.5),
            percentile(&ot, 0.9),
        );
        worst = worst.max(om / pm);
        let flag = if agreement.is_some() {
            " **(answers differ)**"
        } else {
            ""
        };
        println!(
            "| {}{flag} | {size} | {pm:.1} / {p9:.1} | {om:.1} / {o9:.1} | **{:.2}** | {:.2} |",
            case.name.replace('|', "\\|"),
            om / pm,
            o9 / p9
        );
    }
    eprintln!("worst median ratio {worst:.2}; {disagreements} requests answered differently");
    if disagreements > 0 {
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("load") => load(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => {
            eprintln!("usage: bench_query load --url URL [--url URL] ... | bench_query run --bellwether URL --prometheus URL --time END; see the module docs");
            std::process::exit(2);
        }
    }
}
