//! Measures the store's footprint on a node_exporter-like workload: memory
//! per active series (VmRSS delta) and bytes per sample on disk.
//!
//! `cargo run --release --example storage_footprint -- [series] [scrapes]`
//! (defaults: 100000 series, 240 scrapes at 15 s).

#[path = "common/storage_workload.rs"]
mod workload;

use std::time::Instant;

use bellwether::model::now_millis;
use bellwether::storage::{Storage, StorageOptions};

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let scrapes: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(240);
    let dir = tempfile::tempdir()?;
    let mut rng = workload::Rng(0x9E37_79B9_7F4A_7C15);
    let mut series = workload::series(n, &mut rng);
    let storage = Storage::open(StorageOptions::new(dir.path()))?;
    let rss_before = vm_rss_kib();
    let start_t = now_millis() - scrapes * 15_000;
    let started = Instant::now();
    for i in 0..scrapes {
        let t = workload::scrape_time(start_t, i, &mut rng);
        // One commit per target of ~100 series, as the scraper does.
        for target in series.chunks_mut(100) {
            let mut app = storage.appender();
            for s in target.iter_mut() {
                let v = s.step(&mut rng);
                app.add(s.labels.clone(), t, v);
            }
            app.commit()?;
        }
    }
    let elapsed = started.elapsed();
    storage.flush()?;
    let rss_after = vm_rss_kib();
    let samples = n as u64 * scrapes as u64;
    println!(
        "appended {samples} samples of {n} series in {:.2}s: {:.0} samples/s",
        elapsed.as_secs_f64(),
        samples as f64 / elapsed.as_secs_f64()
    );
    println!(
        "memory: VmRSS {rss_before} KiB -> {rss_after} KiB: {:.0} bytes/series",
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64
    );
    println!(
        "disk before close (db + SQLite WAL + WAL segments): {} bytes",
        storage.disk_bytes()
    );
    storage.close()?;
    let storage = Storage::open(StorageOptions::new(dir.path()))?;
    storage.close()?;
    let db = rusqlite::Connection::open(dir.path().join("bellwether.db"))?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;")?;
    let (chunks, blob_bytes): (i64, i64) = db.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM chunks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (head, head_bytes): (i64, i64) = db.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM head_chunks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    drop(db);
    let disk = std::fs::metadata(dir.path().join("bellwether.db"))?.len();
    println!(
        "chunks: {chunks} sealed ({blob_bytes} blob bytes), {head} open ({head_bytes} blob bytes): \
         {:.2} blob bytes/sample",
        (blob_bytes + head_bytes) as f64 / samples as f64
    );
    println!(
        "disk after close + VACUUM: {disk} bytes = {:.2} bytes/sample (incl. series, index and SQLite overhead)",
        disk as f64 / samples as f64
    );
    Ok(())
}
