//! Records per second through the `POST /api/v1/usage` ingest path on one
//! thread: the handler's work (JSON parse and checks, pricing, counters,
//! queueing the ledger row), then, separately, the ledger writer's batched
//! SQLite inserts (which run on their own thread, off the request path).
//!
//!     cargo run --release --example bench_llm_usage [RECORDS_PER_BODY] [BODIES]
//!
//! With `--http URL PID [CLIENTS]` it POSTs the same bodies to a running
//! daemon's `/api/v1/usage` instead (scripts/bench-ingest-http.sh) and
//! prints records per CPU-second of the daemon (pid PID), HTTP layer and
//! ledger writer included.
//!
//! Defaults: bodies of 1,000 records, 200 bodies (200,000 records). The
//! records mix 8 models of 4 providers (one unpriced), 50 orgs, 5,000 users,
//! cached and reasoning tokens, durations and sessions.

use std::time::Instant;

#[path = "common/post_bodies.rs"]
mod post_bodies;

use bellwether::llm::config::LlmConfig;
use bellwether::llm::record::parse_usage;
use bellwether::llm::UsageService;
use bellwether::storage::{Storage, StorageOptions};

const MODELS: [(&str, &str); 8] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5-20251001"),
    ("gcp.gemini", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("openai", "gpt-9-preview"),
];

fn body(records: usize, seed: usize) -> Vec<u8> {
    let mut out = String::from("[");
    for i in 0..records {
        let n = seed * records + i;
        let (provider, model) = MODELS[n % MODELS.len()];
        let input = 500 + (n * 7919) % 20_000;
        let cached = input / 3;
        let output = 50 + (n * 104_729) % 2_000;
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"provider":"{provider}","model":"{model}","input_tokens":{input},"output_tokens":{output},"cache_read_tokens":{cached},"reasoning_tokens":{},"duration_seconds":{}.{:03},"status":"ok","user":"user-{}","org":"org-{}","team":"team-{}","agent":"agent-{}","session":"sess-{}"}}"#,
            output / 4,
            n % 20,
            n % 1000,
            n % 5000,
            n % 50,
            n % 10,
            n % 7,
            n % 20_000
        ));
    }
    out.push(']');
    out.into_bytes()
}

/// CPU time of this thread so far (user + system), from
/// /proc/thread-self/stat in clock ticks of 10 ms: the machine the benchmark
/// runs on may be shared, and CPU time is what "records/s on one core" means.
/// CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    post_bodies::cpu_of("/proc/thread-self/stat")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = post_bodies::numbers();
    let per_body = args.first().copied().unwrap_or(1_000);
    let bodies = args.get(1).copied().unwrap_or(200);
    if let Some((url, pid, clients)) = post_bodies::http_args() {
        let payloads: Vec<Vec<u8>> = (0..bodies).map(|i| body(per_body, i)).collect();
        let run = post_bodies::post_all(&url, pid, "application/json", &payloads, clients);
        let how = format!("{bodies} bodies of {per_body}, {clients} clients");
        run.report(&url, "records", per_body * bodies, &how);
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let storage = Storage::open(StorageOptions::new(dir.path().join("store")))?;
    let mut config = LlmConfig::default();
    // The writer must not run during the timed part: one flush at the end.
    config.flush_interval = bellwether::config::values::PromDuration::from_secs(3600);
    config.interval = config.flush_interval;
    let mut registry = prometheus_client::registry::Registry::default();
    let service = UsageService::start(
        storage.clone(),
        dir.path(),
        &config,
        "bench:0",
        &mut registry,
    )?;
    let payloads: Vec<Vec<u8>> = (0..bodies).map(|i| body(per_body, i)).collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();

    let start = Instant::now();
    let cpu = thread_cpu();
    let mut parsed_only = 0;
    for p in &payloads {
        parsed_only += parse_usage(p, bellwether::model::now_millis())?
            .records
            .len();
    }
    let parse_time = start.elapsed();
    let parse_cpu = thread_cpu() - cpu;

    let start = Instant::now();
    let cpu = thread_cpu();
    let mut accepted = 0;
    for p in &payloads {
        let now = bellwether::model::now_millis();
        let parsed = parse_usage(p, now)?;
        let mut errors = parsed.errors;
        accepted += service.ingest_usage(parsed.records, now, &mut errors)?;
        assert!(errors.is_empty(), "{errors:?}");
    }
    let ingest_time = start.elapsed();
    let ingest_cpu = thread_cpu() - cpu;

    let start = Instant::now();
    let cpu = thread_cpu();
    service.flush_now();
    let write_time = start.elapsed();
    let write_cpu = thread_cpu() - cpu;
    service.shutdown();

    let rate = |n: usize, d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!(
        "{accepted} records in {bodies} bodies of {per_body} ({:.1} MB, {:.0} bytes/record)",
        bytes as f64 / 1e6,
        bytes as f64 / accepted as f64
    );
    println!(
        "                                              wall clock        CPU time of the thread"
    );
    println!(
        "parse only:                                   {:>9.0}/s        {:>9.0}/s",
        rate(parsed_only, parse_time),
        rate(parsed_only, parse_cpu)
    );
    println!(
        "request path (parse + price + count + queue): {:>9.0}/s        {:>9.0}/s",
        rate(accepted, ingest_time),
        rate(accepted, ingest_cpu)
    );
    println!(
        "ledger writer (SQLite, one transaction):      {:>9.0}/s        {:>9.0}/s",
        rate(accepted, write_time),
        rate(accepted, write_cpu)
    );
    Ok(())
}
