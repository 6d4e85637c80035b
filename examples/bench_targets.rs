//! Serves synthetic Prometheus targets for the side-by-side benchmark
//! (scripts/bench-vs-prometheus.sh): `--targets N` listeners on consecutive
//! ports from `--base-port`, each exposing `--series S` series in the text
//! format, with values that move like real ones (counters increase with jitter,
//! gauges random-walk), so that compression sees a realistic mix.
//!
//! Usage: cargo run --release --example bench_targets -- --targets 20 --series 5000 --base-port 19100

#[path = "common/exposition_server.rs"]
mod exposition_server;

use std::net::TcpListener;

struct Args {
    targets: u16,
    series: usize,
    base_port: u16,
}

fn parse_args() -> Args {
    let mut args = Args {
        targets: 20,
        series: 5000,
        base_port: 19100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--targets" => args.targets = value.parse().expect("--targets takes a number"),
            "--series" => args.series = value.parse().expect("--series takes a number"),
            "--base-port" => args.base_port = value.parse().expect("--base-port takes a port"),
            other => panic!("unknown flag {other}; see the module docs"),
        }
    }
    args
}

/// A small deterministic PRNG (xorshift) so runs are comparable.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Renders one scrape of target `target` at time `now_s` (whole seconds drive the values).
fn render(target: u16, series: usize, now_s: u64) -> String {
    let mut out = String::with_capacity(series * 90);
    let families = series.div_ceil(100);
    let mut written = 0;
    for family in 0..families {
        let is_counter = family % 2 == 0;
        let name = if is_counter {
            format!("bench_requests_{family}_total")
        } else {
            format!("bench_queue_depth_{family}")
        };
        out.push_str(&format!(
            "# HELP {name} Synthetic series for the storage benchmark.\n# TYPE {name} {}\n",
            if is_counter { "counter" } else { "gauge" }
        ));
        for i in 0..100 {
            if written == series {
                break;
            }
            written += 1;
            let mut seed = (target as u64) << 40 | (family as u64) << 20 | i as u64 | 1;
            let _ = next_rand(&mut seed);
            let base = seed % 1000;
            let value = if is_counter {
                // Increases by a per-series rate with a little noise each second.
                let rate = 1 + base % 50;
                let mut noise_seed = seed ^ now_s;
                (now_s % 100_000) * rate + next_rand(&mut noise_seed) % rate
            } else {
                let mut noise_seed = seed ^ (now_s / 5);
                base + next_rand(&mut noise_seed) % 20
            };
            out.push_str(&format!(
                "{name}{{instance_id=\"{target}\",shard=\"{}\",code=\"{}\",path=\"/api/v{}/items\"}} {value}\n",
                i % 10,
                [200, 404, 500][i % 3],
                i / 10
            ));
        }
    }
    out
}

fn main() {
    let args = parse_args();
    let mut handles = Vec::new();
    for t in 0..args.targets {
        let port = args.base_port + t;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}"));
        let series = args.series;
        handles.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    exposition_server::serve(stream, |now_s| render(t, series, now_s))
                });
            }
        }));
    }
    eprintln!(
        "serving {} targets x {} series on 127.0.0.1:{}..{}",
        args.targets,
        args.series,
        args.base_port,
        args.base_port + args.targets - 1
    );
    for h in handles {
        let _ = h.join();
    }
}
