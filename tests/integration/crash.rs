//! Crash safety: samples acknowledged by remote_write survive SIGKILL.
//!
//! A writer thread streams remote_write batches (each series gets 10 samples a
//! batch, so chunks of 120 samples seal and go to SQLite every dozen batches);
//! the daemon is killed with SIGKILL mid-stream, restarted on the same data
//! directory, and every sample of every acknowledged batch must be read back
//! exactly, through `/api/v1/export`. Three kill/restart cycles at different
//! moments make it likely that at least one kill lands while a sealed-chunk
//! transaction or a checkpoint is in flight; the last cycle waits until the
//! store reports persisted chunks before killing.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bellwether::ingest::remote_write::decode::encode_write_request;
use bellwether::ingest::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};

use crate::util::{client, wait_for, TestDaemon};

const SERIES: usize = 40;
const SAMPLES_PER_BATCH: i64 = 10;

/// The value written for sample `n` of series `s`: distinct per sample.
fn value(series: usize, n: i64) -> f64 {
    n as f64 * 1.5 + series as f64 / 1000.0
}

fn batch(base_t: i64, batch_no: i64) -> Vec<u8> {
    let timeseries = (0..SERIES)
        .map(|s| TimeSeries {
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: "crash_test_value".into(),
                },
                Label {
                    name: "job".into(),
                    value: "crash".into(),
                },
                Label {
                    name: "series".into(),
                    value: format!("{s:03}"),
                },
            ],
            samples: (0..SAMPLES_PER_BATCH)
                .map(|j| {
                    let n = batch_no * SAMPLES_PER_BATCH + j;
                    Sample {
                        value: value(s, n),
                        timestamp: base_t + n,
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    encode_write_request(&WriteRequest {
        timeseries,
        ..Default::default()
    })
}

/// Streams batches until the daemon stops answering; returns the number of the
/// first batch that was not acknowledged.
fn stream_until_killed(
    url: String,
    base_t: i64,
    first_batch: i64,
    acked: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
) -> i64 {
    let http = client();
    let mut n = first_batch;
    while !stop.load(Ordering::Relaxed) {
        let body = batch(base_t, n);
        let sent = http
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .body(body)
            .send();
        match sent {
            Ok(resp) if resp.status().as_u16() == 204 => {
                acked.store(n, Ordering::SeqCst);
                n += 1;
            }
            Ok(resp) => panic!("remote_write answered {}: {:?}", resp.status(), resp.text()),
            Err(_) => break,
        }
    }
    n
}

/// Reads back every series, checks samples 0..=last_acked of each, and returns
/// how many batches are stored (the unacknowledged one may have landed too:
/// a batch is one commit, so it is there whole or not at all).
fn verify(daemon: &TestDaemon, base_t: i64, last_acked_batch: i64) -> i64 {
    let start = base_t as f64 / 1000.0 - 1.0;
    let v = daemon.get_json(
        &format!("/api/v1/export?match[]=crash_test_value&start={start}"),
        200,
    );
    let result = v["data"]["result"].as_array().expect("a result array");
    assert_eq!(result.len(), SERIES, "every series survives the crash");
    let want_samples = (last_acked_batch + 1) * SAMPLES_PER_BATCH;
    let stored = result[0]["values"].as_array().map_or(0, |v| v.len() as i64);
    assert_eq!(stored % SAMPLES_PER_BATCH, 0, "a batch landed partially");
    for (s, series) in result.iter().enumerate() {
        assert_eq!(series["metric"]["series"], format!("{s:03}"));
        let values = series["values"].as_array().expect("values");
        assert!(
            values.len() as i64 >= want_samples,
            "series {s}: {} samples after restart, {want_samples} were acknowledged\n{}",
            values.len(),
            daemon.log()
        );
        for (n, pair) in values.iter().enumerate().take(want_samples as usize) {
            let t = (pair[0].as_f64().expect("timestamp") * 1000.0).round() as i64;
            let got: f64 = pair[1]
                .as_str()
                .expect("value string")
                .parse()
                .expect("a number");
            assert_eq!(t, base_t + n as i64, "series {s} sample {n}: timestamp");
            assert_eq!(got, value(s, n as i64), "series {s} sample {n}: value");
        }
        assert_eq!(
            values.len() as i64,
            stored,
            "series {s}: same batches as series 0"
        );
    }
    stored / SAMPLES_PER_BATCH
}

#[test]
fn acknowledged_samples_survive_sigkill_mid_stream() {
    let mut daemon = TestDaemon::start("storage:\n  wal_flush_interval: 1s\n");
    let url = daemon.url("/api/v1/write");
    // Timestamps 1 ms apart from an hour ago: well inside retention.
    let base_t = bellwether::model::now_millis() - 3_600_000;
    let mut next_batch = 0;
    for (cycle, run_for) in [
        Duration::from_millis(700),
        Duration::from_millis(1900),
        Duration::ZERO,
    ]
    .into_iter()
    .enumerate()
    {
        let acked = Arc::new(AtomicI64::new(next_batch - 1));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (url, acked, stop) = (url.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || stream_until_killed(url, base_t, next_batch, acked, stop))
        };
        if run_for.is_zero() {
            // Kill only once this run has acknowledged batches and sealed chunks
            // have reached SQLite, so the kill lands while the chunk writer is busy.
            let persisted = |d: &TestDaemon| {
                d.self_metric("bellwether_storage_chunks_persisted_total")
                    .unwrap_or(0.0)
            };
            let before = persisted(&daemon);
            assert!(
                wait_for(Duration::from_secs(30), || {
                    acked.load(Ordering::SeqCst) >= next_batch && persisted(&daemon) > before
                }),
                "no chunk was persisted to SQLite during the stream:\n{}",
                daemon.log()
            );
        } else {
            std::thread::sleep(run_for);
        }
        daemon.kill9();
        let first_unacked = writer.join().expect("writer thread");
        stop.store(true, Ordering::Relaxed);
        let last_acked = acked.load(Ordering::SeqCst);
        assert!(
            last_acked >= next_batch,
            "cycle {cycle}: no batch was acknowledged before the kill"
        );

        daemon.spawn();
        next_batch = verify(&daemon, base_t, last_acked);
        assert!(
            next_batch <= first_unacked + 1,
            "more batches than were sent"
        );
    }
    daemon.stop();
}
