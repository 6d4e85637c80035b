//! Storage benchmarks: appends into the head in scrape-sized batches, and the
//! chunk codec. Run with
//! `cargo bench --bench storage -- --measurement-time 5 --warm-up-time 1`.

#[path = "../examples/common/storage_workload.rs"]
#[allow(dead_code)]
mod workload;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use bellwether::model::now_millis;
use bellwether::storage::{ChunkEncoder, ChunkIter, Storage, StorageOptions};

const SERIES: usize = 10_000;
const TARGET: usize = 100;

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(StorageOptions::new(dir.path())).expect("open");
    let mut rng = workload::Rng(42);
    let mut series = workload::series(SERIES, &mut rng);
    let start = now_millis() - 24 * 3600 * 1000;
    let mut scrape = 0i64;
    // One untimed scrape creates every series, so the by-ref bench has refs
    // even when a filter skips the first bench.
    let mut app = storage.appender();
    for s in series.iter_mut() {
        let v = s.step(&mut rng);
        app.add(s.labels.clone(), start - 60_000, v);
    }
    app.commit().expect("commit");
    let mut group = c.benchmark_group("storage_append");
    group.throughput(Throughput::Elements(SERIES as u64));
    // One iteration = one scrape of every series, committed per target of 100 series.
    group.bench_function("10k_series_scrape_batches_of_100", |b| {
        b.iter(|| {
            let t = workload::scrape_time(start, scrape, &mut rng);
            scrape += 1;
            for target in series.chunks_mut(TARGET) {
                let mut app = storage.appender();
                for s in target.iter_mut() {
                    let v = s.step(&mut rng);
                    app.add(s.labels.clone(), t, v);
                }
                let outcome = app.commit().expect("commit");
                assert_eq!(outcome.appended, TARGET);
            }
        })
    });
    // The scraper's fast path: refs cached after the first scrape.
    let refs: Vec<_> = series
        .iter()
        .map(|s| {
            storage
                .series_ref(&s.labels)
                .expect("series created by the first scrape")
        })
        .collect();
    group.bench_function("10k_series_scrape_batches_of_100_by_ref", |b| {
        b.iter(|| {
            let t = workload::scrape_time(start, scrape, &mut rng);
            scrape += 1;
            for (target, target_refs) in series.chunks_mut(TARGET).zip(refs.chunks(TARGET)) {
                let mut app = storage.appender();
                for (s, &r) in target.iter_mut().zip(target_refs) {
                    let v = s.step(&mut rng);
                    app.add_ref(r, t, v);
                }
                let outcome = app.commit().expect("commit");
                assert_eq!(outcome.appended, TARGET);
            }
        })
    });
    group.finish();
    storage.close().expect("close");
}

fn chunk_codec(c: &mut Criterion) {
    let mut rng = workload::Rng(7);
    let mut series = workload::series(10, &mut rng);
    let samples: Vec<(i64, f64)> = (0..120)
        .map(|i| {
            (
                workload::scrape_time(1_700_000_000_000, i, &mut rng),
                series[0].step(&mut rng),
            )
        })
        .collect();
    let mut group = c.benchmark_group("storage_chunk");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut enc = ChunkEncoder::new();
            for &(t, v) in &samples {
                enc.append(t, v);
            }
            enc
        })
    });
    let mut enc = ChunkEncoder::new();
    for &(t, v) in &samples {
        enc.append(t, v);
    }
    let bytes = enc.bytes().to_vec();
    group.bench_function("decode_120", |b| {
        b.iter_batched(
            || (),
            |_| {
                ChunkIter::new(&bytes)
                    .expect("header")
                    .filter_map(Result::ok)
                    .count()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, append, chunk_codec);
criterion_main!(benches);
