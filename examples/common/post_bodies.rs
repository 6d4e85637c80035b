//! The HTTP side of the ingest benchmarks (bench_otlp, bench_llm_usage):
//! POSTs prepared bodies to a running daemon, one request at a time from
//! `clients` threads, and reads the daemon's own CPU time from
//! /proc/<pid>/stat around the run, so the figure is the server's cost per
//! item, not the client's. Included with `#[path]`.

use std::time::{Duration, Instant};

/// CPU time (user + system) of process `pid` so far.
pub fn process_cpu(pid: u32) -> Duration {
    cpu_of(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) from a `stat` file of /proc (a process's or
/// `/proc/thread-self/stat`).
pub fn cpu_of(stat_file: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the file, 12 and 13 here
    // (the kernel's clock tick is 100 Hz on Linux).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// What one run measured.
pub struct HttpRun {
    pub wall: Duration,
    pub server_cpu: Duration,
    pub failures: usize,
}

impl HttpRun {
    /// One line: `total` items (`what`) sent as `how`, per daemon CPU-second
    /// and per second of wall clock.
    pub fn report(&self, url: &str, what: &str, total: usize, how: &str) {
        println!(
            "HTTP {url}: {total} {what} ({how}), {} failed: {:.2} s wall, daemon {:.2} CPU-s, {:.0} {what} per daemon CPU-second, {:.0} {what}/s wall",
            self.failures,
            self.wall.as_secs_f64(),
            self.server_cpu.as_secs_f64(),
            total as f64 / self.server_cpu.as_secs_f64().max(0.01),
            total as f64 / self.wall.as_secs_f64()
        );
    }
}

/// POSTs every body to `url` with `content_type`, spread over `clients`
/// threads; an answer other than 2xx counts as a failure (the first is
/// printed).
pub fn post_all(
    url: &str,
    pid: u32,
    content_type: &str,
    bodies: &[Vec<u8>],
    clients: usize,
) -> HttpRun {
    let clients = clients.max(1);
    let cpu0 = process_cpu(pid);
    let start = Instant::now();
    let failures: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(60))
                        .build()
                        .expect("HTTP client");
                    let mut failures = 0;
                    for body in bodies.iter().skip(c).step_by(clients) {
                        let answer = client
                            .post(url)
                            .header("Content-Type", content_type)
                            .body(body.clone())
                            .send();
                        match answer {
                            Ok(r) if r.status().is_success() => {}
                            Ok(r) => {
                                if failures == 0 {
                                    eprintln!(
                                        "{url}: HTTP {}: {}",
                                        r.status(),
                                        r.text().unwrap_or_default()
                                    );
                                }
                                failures += 1;
                            }
                            Err(e) => {
                                if failures == 0 {
                                    eprintln!("{url}: {e}");
                                }
                                failures += 1;
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(1)).sum()
    });
    let wall = start.elapsed();
    // Work the daemon finishes after answering (the LLM ledger writer, WAL
    // flushes) belongs to the load too: wait until its CPU time stops
    // growing (two equal readings 300 ms apart, at most 30 s).
    let mut last = process_cpu(pid);
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(300));
        let now = process_cpu(pid);
        if now == last {
            break;
        }
        last = now;
    }
    HttpRun {
        wall,
        server_cpu: last - cpu0,
        failures,
    }
}

/// `--http URL PID [CLIENTS]` among the arguments, if present.
pub fn http_args() -> Option<(String, u32, usize)> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--http")?;
    let url = args.get(at + 1)?.clone();
    let pid = args.get(at + 2)?.parse().ok()?;
    let clients = args.get(at + 3).and_then(|c| c.parse().ok()).unwrap_or(2);
    Some((url, pid, clients))
}

/// The numeric arguments before `--http`.
pub fn numbers() -> Vec<usize> {
    std::env::args()
        .skip(1)
        .take_while(|a| a != "--http")
        .filter_map(|a| a.parse().ok())
        .collect()
}
