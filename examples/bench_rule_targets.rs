//! Synthetic targets and a rule file for the rule-evaluation benchmark
//! (scripts/bench-rules-vs-prometheus.sh, docs/benchmarks.md).
//!
//! `serve` mode: `--targets N` listeners on consecutive ports from `--base-port`,
//! each exposing `--series S` series (S/200 counter families
//! `bench_http_requests_F_total` and as many gauge families `bench_queue_depth_F`,
//! 100 series each, labelled `code`, `method`, `handler`).
//!
//! `rules` mode (`--write-rules FILE`): writes `--groups G` groups of
//! `--rules-per-group R` alerting rules over those series and prints on stdout
//! the number of alerts (pending + firing) they must produce once the `[5m]`
//! windows are full.
//!
//! The values are built so that every alert is stable: a gauge's value is
//! `level * 100 + noise` with `level` a fixed per-series digit and noise below
//! 10, and gauge thresholds sit at `L * 100 + 50`; a counter grows at a fixed
//! per-series rate (10, 1 or 0.2/2 per second for code 200, 404, 500, times a
//! per-series factor 1..=7), and rate thresholds sit halfway between the rates.
//!
//! Usage:
//!   cargo run --release --example bench_rule_targets -- --targets 20 --series 5000 --base-port 19200
//!   cargo run --release --example bench_rule_targets -- --write-rules rules.yml --targets 20 --series 5000 --base-port 19200

#[path = "common/exposition_server.rs"]
mod exposition_server;

use std::fmt::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Instant;

/// Targets are grouped into this many jobs (`bench-0` ..), consecutive ports per job.
pub const JOBS: u16 = 4;

struct Args {
    targets: u16,
    series: usize,
    base_port: u16,
    write_rules: Option<String>,
    groups: usize,
    rules_per_group: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        targets: 20,
        series: 5000,
        base_port: 19200,
        write_rules: None,
        groups: 10,
        rules_per_group: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value; see the module docs"))?;
        let num = |what: &str| -> Result<usize, String> {
            value
                .parse()
                .map_err(|_| format!("{flag} takes {what}, not {value:?}"))
        };
        match flag.as_str() {
            "--targets" => args.targets = num("a number")? as u16,
            "--series" => args.series = num("a number")?,
            "--base-port" => args.base_port = num("a port")? as u16,
            "--groups" => args.groups = num("a number")?,
            "--rules-per-group" => args.rules_per_group = num("a number")?,
            "--write-rules" => args.write_rules = Some(value),
            other => return Err(format!("unknown flag {other}; see the module docs")),
        }
    }
    if args.series < 200 || args.targets == 0 || !args.targets.is_multiple_of(JOBS) {
        return Err(format!(
            "need --series >= 200 and --targets a positive multiple of {JOBS}"
        ));
    }
    Ok(args)
}

/// A small deterministic PRNG (xorshift) so runs are comparable.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn seed(target: u16, family: usize, kind: u64, i: usize) -> u64 {
    let mut s = (target as u64) << 40 | (family as u64) << 20 | kind << 16 | i as u64 | 1;
    next_rand(&mut s);
    next_rand(&mut s)
}

/// The fixed digit 0..=9 of gauge series `i` of family `family` on `target`.
fn gauge_level(target: u16, family: usize, i: usize) -> u64 {
    seed(target, family, 1, i) % 10
}

const CODES: [&str; 3] = ["200", "404", "500"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Per-second rate of counter series `i` of family `family`.
fn counter_rate(family: usize, i: usize) -> f64 {
    let factor = 1.0 + (i % 7) as f64;
    let base = match i % 3 {
        0 => 10.0,
        1 => 1.0,
        // Odd families have a 500 share of ~15 %, even ones of ~2 %.
        _ if family % 2 == 1 => 2.0,
        _ => 0.2,
    };
    base * factor
}

fn series_labels(i: usize) -> String {
    format!(
        "code=\"{}\",method=\"{}\",handler=\"/api/v1/h{}\"",
        CODES[i % 3],
        METHODS[(i / 3) % 4],
        i / 12
    )
}

/// One scrape of target `target`, `elapsed_s` seconds after start, `second` the wall-clock second.
fn render(target: u16, families: usize, elapsed_s: u64, second: u64) -> String {
    let mut out = String::with_capacity(families * 200 * 90);
    for f in 0..families {
        let name = format!("bench_http_requests_{f}_total");
        let _ = writeln!(
            out,
            "# HELP {name} Synthetic requests.\n# TYPE {name} counter"
        );
        for i in 0..100 {
            let value = counter_rate(f, i) * elapsed_s as f64;
            let _ = writeln!(out, "{name}{{{}}} {value}", series_labels(i));
        }
        let name = format!("bench_queue_depth_{f}");
        let _ = writeln!(
            out,
            "# HELP {name} Synthetic queue depth.\n# TYPE {name} gauge"
        );
        for i in 0..100 {
            let mut noise = seed(target, f, 2, i) ^ (second / 5);
            let value = gauge_level(target, f, i) * 100 + next_rand(&mut noise) % 10;
            let _ = writeln!(out, "{name}{{{}}} {value}", series_labels(i));
        }
    }
    out
}

fn instance(args: &Args, target: u16) -> String {
    format!("127.0.0.1:{}", args.base_port + target)
}

/// Writes the rule file; returns the number of alerts it must produce.
fn write_rules(args: &Args, path: &str) -> Result<usize, String> {
    let families = args.series / 200;
    let per_job = args.targets / JOBS;
    let mut out = String::from("groups:\n");
    let mut expected = 0usize;
    for g in 0..args.groups {
        let _ = writeln!(out, "  - name: bench-{g}\n    interval: 15s\n    rules:");
        for r in 0..args.rules_per_group {
            let k = g * args.rules_per_group + r;
            let fam = (k * 7 + k / 25) % families;
            let target = ((k * 13 + k / 100) % args.targets as usize) as u16;
            let inst = instance(args, target);
            let (expr, count) = match k % 10 {
                // Threshold on a gauge: 100 series, 10-20 % above.
                0..=3 => {
                    let level = 7 + (k / 10) as u64 % 2;
                    let n = (0..100)
                        .filter(|&i| gauge_level(target, fam, i) > level)
                        .count();
                    (
                        format!("bench_queue_depth_{fam}{{instance=\"{inst}\"}} > {level}50"),
                        n,
                    )
                }
                // Per-series rate: 100 series.
                4..=6 => {
                    let threshold = if k % 20 < 10 { 45.0 } else { 25.0 };
                    let n = (0..100)
                        .filter(|&i| counter_rate(fam, i) > threshold)
                        .count();
                    (
                        format!(
                            "rate(bench_http_requests_{fam}_total{{instance=\"{inst}\"}}[5m]) > {threshold}"
                        ),
                        n,
                    )
                }
                // Error ratio per job over every target: one result per job.
                7 | 8 => {
                    let threshold = if k % 20 < 10 { 0.05 } else { 0.1 };
                    let n = if fam % 2 == 1 { JOBS as usize } else { 0 };
                    (
                        format!(
                            "sum by (job) (rate(bench_http_requests_{fam}_total{{code=\"500\"}}[5m])) / sum by (job) (rate(bench_http_requests_{fam}_total[5m])) > {threshold}"
                        ),
                        n,
                    )
                }
                // absent(): of a job's series (present) or of a metric nobody exports.
                _ => {
                    if (k / 10).is_multiple_of(2) {
                        let job = target / per_job;
                        (
                            format!(
                                "absent(bench_http_requests_{fam}_total{{job=\"bench-{job}\"}})"
                            ),
                            0,
                        )
                    } else {
                        (format!("absent(bench_missing_metric_{k})"), 1)
                    }
                }
            };
            expected += count;
            let _ = writeln!(out, "      - alert: BenchAlert{k}\n        expr: '{expr}'");
            match k % 4 {
                0 => out.push_str("        for: 1m\n"),
                1 => out.push_str("        for: 30m\n"),
                _ => {}
            }
            let _ = writeln!(
                out,
                "        labels:\n          severity: {}\n        annotations:\n          summary: 'value {{{{ $value }}}} on {{{{ $labels.instance }}}}'",
                if k.is_multiple_of(3) { "page" } else { "ticket" }
            );
        }
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {path}: {e}"))?;
    Ok(expected)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench_rule_targets: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &args.write_rules {
        return match write_rules(&args, path) {
            Ok(expected) => {
                println!("{expected}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench_rule_targets: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let families = args.series / 200;
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.targets {
        let port = args.base_port + t;
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench_rule_targets: cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        handles.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    exposition_server::serve(stream, |second| {
                        render(t, families, start.elapsed().as_secs(), second)
                    })
                });
            }
        }));
    }
    eprintln!(
        "serving {} targets x {} series on 127.0.0.1:{}..{}",
        args.targets,
        families * 200,
        args.base_port,
        args.base_port + args.targets - 1
    );
    for h in handles {
        let _ = h.join();
    }
    ExitCode::SUCCESS
}
