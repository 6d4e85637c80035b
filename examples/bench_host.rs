//! CPU time and memory of full host collections (every collector, rendered
//! as node_exporter's text), for scripts/bench-host-vs-node-exporter.sh.
//!
//! Usage: bench_host [COLLECTIONS=200]
//! Prints one line of `key=value` pairs: the process CPU time (user+system,
//! from /proc/self/stat) spent in the timed collections, per collection, the
//! wall time per collection, the bytes of one collection, and VmRSS/VmHWM.

use std::time::Instant;

use bellwether::collect::host::{HostCollector, HostMetrics, HostSettings};
use bellwether::config::HostConfig;

/// user + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 after `)`.
    (ticks(11) + ticks(12)) / 100.0
}

fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let config = HostConfig {
        enabled: true,
        ..HostConfig::default()
    };
    let settings = match HostSettings::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench_host: {e}");
            std::process::exit(1);
        }
    };
    let collector = HostCollector::new(settings, HostMetrics::default());
    let bytes = collector.render().len(); // warm-up
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(collector.render());
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    // The floor any parser sits on: reading the same files and statfs(2) of
    // the root, without parsing or rendering. Total minus floor bounds what a
    // faster parser (the procfs crate or any other) could save.
    let files = [
        "/proc/stat",
        "/proc/meminfo",
        "/proc/loadavg",
        "/proc/1/mounts",
        "/proc/diskstats",
        "/proc/net/dev",
        "/proc/pressure/cpu",
        "/proc/pressure/io",
        "/proc/pressure/memory",
        "/proc/vmstat",
    ];
    let floor_before = cpu_seconds();
    for _ in 0..n {
        for f in files {
            std::hint::black_box(std::fs::read_to_string(f).ok());
        }
        std::hint::black_box(rustix::fs::statfs("/").ok());
    }
    let floor = cpu_seconds() - floor_before;
    println!(
        "collections={n} cpu_seconds={cpu:.3} cpu_ms_per_collection={:.3} read_only_cpu_ms={:.3} wall_ms_per_collection={:.3} bytes={bytes} rss_kb={} hwm_kb={}",
        cpu * 1000.0 / n as f64,
        floor * 1000.0 / n as f64,
        wall * 1000.0 / n as f64,
        status_kb("VmRSS:"),
        status_kb("VmHWM:"),
    );
}
