//! Engine-level tests: recovery after a crash (drop without close), torn WAL
//! tails, checkpoints, retention, the series limit, metrics, and the model
//! test that checks the engine against the naive `reference` store.

use std::time::Duration;

use proptest::prelude::*;

use super::reference::Reference;
use super::*;
use crate::model::{now_millis, stale_nan, MatchOp, Matcher, Sample, STALE_NAN_BITS};

fn labels(name: &str, job: &str, extra: Option<(&str, &str)>) -> Labels {
    let mut pairs = vec![("__name__", name), ("job", job), ("instance", "host:9100")];
    pairs.extend(extra);
    Labels::new(pairs)
}

fn open(dir: &std::path::Path) -> Storage {
    Storage::open(StorageOptions::new(dir)).expect("open store")
}

/// Appends `scrapes` scrapes of `series` series, 15 s apart, ending near now.
/// Returns what the store must hold.
fn append_scrapes(
    storage: &Storage,
    reference: &mut Reference,
    series: usize,
    scrapes: std::ops::Range<i64>,
    start: i64,
) {
    for scrape in scrapes {
        let t = start + scrape * 15_000;
        let mut app = storage.appender();
        let mut batch = Vec::new();
        for s in 0..series {
            let l = labels(
                "node_cpu_seconds_total",
                "node",
                Some(("cpu", &s.to_string())),
            );
            let v = if scrape % 50 == 49 {
                stale_nan()
            } else {
                (scrape * 7 + s as i64) as f64 * 0.25
            };
            app.add(l.clone(), t, v);
            batch.push((l, Sample { t, v }));
        }
        let outcome = app.commit().expect("commit");
        assert_eq!(outcome, reference.commit(&batch, i64::MIN, 0));
        assert_eq!(outcome.appended, series);
    }
}

fn assert_same(storage: &Storage, reference: &Reference) {
    let all = storage
        .querier(i64::MIN, i64::MAX)
        .select(&[])
        .expect("select");
    let expected = reference.select(i64::MIN, i64::MAX, &[]);
    assert_eq!(all.len(), expected.len());
    assert_eq!(all, expected);
}

fn start_time() -> i64 {
    now_millis() - 3 * 3600 * 1000
}

#[test]
fn acknowledged_samples_survive_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time();
    {
        let storage = open(dir.path());
        append_scrapes(&storage, &mut reference, 20, 0..300, start);
        // Dropped without close: the WAL (and whatever the writer persisted) is all there is.
    }
    let storage = open(dir.path());
    assert_eq!(storage.stats().active_series, 20);
    assert_same(&storage, &reference);
    let total: usize = reference.series.values().map(Vec::len).sum();
    assert_eq!(total, 20 * 300);
    // Appending after recovery continues the same series: no out-of-order at the seam.
    append_scrapes(&storage, &mut reference, 20, 300..310, start);
    drop(storage);
    let storage = open(dir.path());
    assert_same(&storage, &reference);
    storage.close().expect("close");
}

#[test]
fn wal_replay_reports_the_segments_read_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time();
    let fresh = open(dir.path());
    let first = fresh.wal_replay();
    assert_eq!((first.min, first.max, first.current), (0, 0, 0));
    append_scrapes(&fresh, &mut reference, 5, 0..20, start);
    drop(fresh);
    // Each open replays what is there, then starts a new segment.
    let again = open(dir.path());
    let replay = again.wal_replay();
    assert_eq!((replay.min, replay.max, replay.current), (0, 0, 0));
    append_scrapes(&again, &mut reference, 5, 20..40, start);
    drop(again);
    let second = open(dir.path());
    let replay = second.wal_replay();
    assert_eq!((replay.min, replay.max, replay.current), (0, 1, 1));
    assert_same(&second, &reference);
    second.close().expect("close");
    // A clean close checkpoints: only the newest segment is left to read.
    let third = open(dir.path());
    let replay = third.wal_replay();
    assert_eq!(replay.min, replay.max);
    assert_eq!(replay.current, replay.max);
    assert!(replay.max >= 2, "{replay:?}");
}

#[test]
fn checkpoint_then_more_appends_then_crash_recovers_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time();
    {
        let storage = open(dir.path());
        append_scrapes(&storage, &mut reference, 10, 0..50, start);
        storage.checkpoint().expect("checkpoint");
        // The open chunks (50 samples) are now in head_chunks; these appends
        // seal them (at 120) and the flush persists them, superseding the snapshot.
        append_scrapes(&storage, &mut reference, 10, 50..200, start);
        storage.flush().expect("flush");
        append_scrapes(&storage, &mut reference, 10, 200..230, start);
    }
    let storage = open(dir.path());
    assert_same(&storage, &reference);
    // And once more through a clean close and a checkpoint-only recovery.
    storage.close().expect("close");
    let wal_files = std::fs::read_dir(dir.path().join("wal"))
        .expect("wal dir")
        .count();
    assert_eq!(wal_files, 1, "the checkpoint on close truncates the WAL");
    let storage = open(dir.path());
    assert_same(&storage, &reference);
}

#[test]
fn wal_left_behind_by_a_crash_after_checkpoint_is_not_replayed_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time();
    let wal_dir = dir.path().join("wal");
    {
        let storage = open(dir.path());
        append_scrapes(&storage, &mut reference, 5, 0..130, start);
        let saved: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&wal_dir)
            .expect("wal dir")
            .map(|e| {
                let p = e.expect("entry").path();
                let bytes = std::fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect();
        storage.checkpoint().expect("checkpoint");
        // Simulate a crash between the checkpoint commit and the segment deletion.
        for (p, bytes) in saved {
            std::fs::write(p, bytes).expect("restore");
        }
    }
    let storage = open(dir.path());
    assert_same(&storage, &reference);
}

#[test]
fn torn_wal_tail_is_truncated_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time();
    {
        let storage = open(dir.path());
        append_scrapes(&storage, &mut reference, 3, 0..10, start);
    }
    let wal_dir = dir.path().join("wal");
    let (_, last) = wal::list_segments(&wal_dir)
        .expect("list")
        .pop()
        .expect("a segment");
    let good_len = std::fs::metadata(&last).expect("meta").len();
    let mut bytes = std::fs::read(&last).expect("read");
    // A torn record: a plausible header and half a payload, then garbage.
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 2, 9, 9]);
    std::fs::write(&last, &bytes).expect("write");
    let storage = open(dir.path());
    assert_eq!(storage.handle.engine.metrics.wal_corruptions.get(), 1);
    assert_eq!(std::fs::metadata(&last).expect("meta").len(), good_len);
    assert_same(&storage, &reference);

    // Pure garbage segments never panic either.
    drop(storage);
    std::fs::write(wal_dir.join("0000000999"), [0xffu8; 100]).expect("write");
    let storage = open(dir.path());
    assert_same(&storage, &reference);
}

#[test]
fn retention_deletes_old_chunks_and_empty_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = 24 * 3600 * 1000;
    let old_start = now_millis() - 5 * day;
    {
        let mut options = StorageOptions::new(dir.path());
        options.retention = Duration::from_secs(10 * 24 * 3600);
        let storage = Storage::open(options).expect("open");
        let mut reference = Reference::default();
        append_scrapes(&storage, &mut reference, 4, 0..250, old_start);
        let mut app = storage.appender();
        app.add(labels("up", "recent", None), now_millis(), 1.0);
        assert_eq!(app.commit().expect("commit").appended, 1);
        storage.close().expect("close");
    }
    let mut options = StorageOptions::new(dir.path());
    options.retention = Duration::from_secs(24 * 3600);
    let storage = Storage::open(options).expect("reopen");
    assert_eq!(storage.stats().active_series, 5);
    storage.run_retention().expect("retention");
    let left = storage
        .querier(i64::MIN, i64::MAX)
        .select(&[])
        .expect("select");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].labels.get("job"), Some("recent"));
    assert_eq!(storage.stats().active_series, 1);
    let deleted = |kind| {
        storage
            .handle
            .engine
            .metrics
            .retention_deletions
            .get_or_create(&metrics::KindLabels { kind })
            .get()
    };
    // 250 samples per series: two sealed chunks each.
    assert_eq!(deleted("chunk"), 8);
    assert_eq!(deleted("series"), 4);
    // Too old to append now.
    let mut app = storage.appender();
    app.add(labels("up", "x", None), old_start, 1.0);
    let outcome = app.commit().expect("commit");
    assert_eq!(outcome.too_old, 1);
    assert_eq!(outcome.appended, 0);
    storage.close().expect("close");
    // The deleted series stay deleted after a restart.
    let storage = open(dir.path());
    assert_eq!(storage.stats().active_series, 1);
}

#[test]
fn size_retention_deletes_oldest_chunks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut reference = Reference::default();
    let start = start_time() - 24 * 3600 * 1000;
    {
        let storage = open(dir.path());
        append_scrapes(&storage, &mut reference, 50, 0..500, start);
        storage.close().expect("close");
    }
    let mut options = StorageOptions::new(dir.path());
    options.retention_size = Some(1);
    let storage = Storage::open(options).expect("reopen");
    storage.run_retention().expect("retention");
    let left = storage
        .querier(i64::MIN, i64::MAX)
        .select(&[])
        .expect("select");
    // Every persisted chunk is gone; the open chunks (in head_chunks) remain.
    assert_eq!(left.len(), 50);
    for s in &left {
        assert!(
            s.samples.len() < MAX_SAMPLES_PER_CHUNK + 1,
            "{}",
            s.samples.len()
        );
        assert_eq!(s.samples.last().map(|x| x.t), Some(start + 499 * 15_000));
    }
}

#[test]
fn series_limit_refuses_new_series_but_keeps_the_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = StorageOptions::new(dir.path());
    options.max_series = 2;
    let storage = Storage::open(options).expect("open");
    let t = now_millis();
    let mut app = storage.appender();
    app.add(labels("a", "j", None), t, 1.0);
    app.add(labels("b", "j", None), t, 1.0);
    app.add(labels("c", "j", None), t, 1.0);
    app.add(labels("a", "j", None), t + 1, 2.0);
    app.add(labels("a", "j", None), t, 5.0);
    app.add(labels("a", "j", None), t + 1, 3.0);
    app.add(labels("a", "j", None), t + 1, 2.0);
    let outcome = app.commit().expect("commit");
    assert_eq!(
        outcome,
        AppendOutcome {
            appended: 3,
            series_added: 2,
            out_of_order: 1,
            duplicate: 1,
            too_old: 0,
            series_limit: 1,
            unknown_ref: 0,
        }
    );
    // The ref fast path: known refs append, unknown ones are counted.
    let a = storage
        .series_ref(&labels("a", "j", None))
        .expect("series a exists");
    assert_eq!(storage.series_ref(&labels("c", "j", None)), None);
    let mut app = storage.appender();
    app.add_ref(a, t + 2, 4.0);
    app.add_ref(a + 1000, t + 2, 4.0);
    let outcome = app.commit().expect("commit");
    assert_eq!((outcome.appended, outcome.unknown_ref), (1, 1));
    let got = storage
        .querier(t + 2, t + 2)
        .select(&[Matcher::equal("__name__", "a")])
        .expect("select");
    assert_eq!(got[0].samples, vec![Sample { t: t + 2, v: 4.0 }]);
    let mut registry = prometheus_client::registry::Registry::default();
    storage.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    assert!(text.contains(r#"bellwether_storage_samples_refused_total{reason="series_limit"} 1"#));
    assert!(text.contains("bellwether_storage_samples_appended_total 4"));
    assert!(text.contains("bellwether_storage_active_series 2"));
    assert!(text.contains("# HELP bellwether_storage_wal_fsync_duration_seconds"));
}

#[test]
fn stale_markers_and_nans_come_back_bit_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = now_millis();
    {
        let storage = open(dir.path());
        let mut app = storage.appender();
        app.add(labels("x", "j", None), t, stale_nan());
        app.add(labels("x", "j", None), t + 1, f64::NAN);
        app.add(labels("x", "j", None), t + 2, f64::NEG_INFINITY);
        app.commit().expect("commit");
    }
    let storage = open(dir.path());
    let got = storage.querier(t, t + 2).select(&[]).expect("select");
    let bits: Vec<u64> = got[0].samples.iter().map(|s| s.v.to_bits()).collect();
    assert_eq!(
        bits,
        vec![
            STALE_NAN_BITS,
            f64::NAN.to_bits(),
            f64::NEG_INFINITY.to_bits()
        ]
    );
    storage.close().expect("close");
    assert!(matches!(
        storage.appender().commit(),
        Ok(AppendOutcome { appended: 0, .. })
    ));
    let mut app = storage.appender();
    app.add(labels("x", "j", None), t + 3, 1.0);
    assert!(matches!(app.commit(), Err(StorageError::Closed)));
}

// ---- the model test ----

#[derive(Clone, Debug)]
enum Op {
    /// (series index, time step, value kind)
    Append(Vec<(usize, i64, u8)>),
    Query(usize, i64, i64),
    Flush,
    Checkpoint,
    /// Reopen; `true` closes first, `false` simulates a crash.
    Reopen(bool),
}

fn pool() -> Vec<Labels> {
    vec![
        labels("up", "a", None),
        labels("up", "b", None),
        labels("cpu", "a", Some(("mode", "idle"))),
        labels("cpu", "a", Some(("mode", "user"))),
        labels("cpu", "b", Some(("mode", "idle"))),
        labels("mem", "c", Some(("device", "sda"))),
    ]
}

fn matcher_sets() -> Vec<Vec<Matcher>> {
    let m = |op, n, v| Matcher::new(op, n, v).expect("valid regex");
    vec![
        vec![],
        vec![m(MatchOp::Equal, "__name__", "up")],
        vec![m(MatchOp::Regex, "job", "a|")],
        vec![m(MatchOp::NotEqual, "job", "b")],
        vec![m(MatchOp::Equal, "mode", "")],
        vec![m(MatchOp::NotRegex, "mode", "idle")],
        vec![
            m(MatchOp::Regex, "__name__", ".+"),
            m(MatchOp::Equal, "job", "a"),
        ],
        vec![m(MatchOp::Equal, "device", "nope")],
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0usize..6, -3i64..13, 0u8..6), 1..80).prop_map(Op::Append),
        2 => (0usize..8, 0i64..400, 0i64..400).prop_map(|(m, a, b)| Op::Query(m, a, b)),
        1 => Just(Op::Flush),
        1 => Just(Op::Checkpoint),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn model_options(dir: &std::path::Path) -> StorageOptions {
    let mut options = StorageOptions::new(dir);
    // Timestamps in the test are small: keep everything inside retention.
    options.retention = Duration::from_secs(200 * 365 * 24 * 3600);
    options.max_series = 5;
    options
}

fn check_queries(storage: &Storage, reference: &Reference, m: usize, mint: i64, maxt: i64) {
    let matchers = &matcher_sets()[m];
    let q = storage.querier(mint, maxt);
    assert_eq!(
        q.select(matchers).expect("select"),
        reference.select(mint, maxt, matchers)
    );
    let newest: Vec<Series> = reference
        .select(mint, maxt, matchers)
        .into_iter()
        .map(|mut s| {
            s.samples.drain(..s.samples.len() - 1);
            s
        })
        .collect();
    assert_eq!(q.select_newest(matchers).expect("select_newest"), newest);
    let series: Vec<Labels> = reference
        .select(mint, maxt, matchers)
        .into_iter()
        .map(|s| s.labels)
        .collect();
    assert_eq!(q.series(matchers).expect("series"), series);
    assert_eq!(
        q.label_names(matchers).expect("names"),
        reference.label_names(mint, maxt, matchers)
    );
    assert_eq!(
        q.label_values("job", matchers).expect("values"),
        reference.label_values("job", mint, maxt, matchers)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = pool();
        let mut storage = Some(Storage::open(model_options(dir.path())).expect("open"));
        let mut reference = Reference::default();
        // Per-series clock in steps of 1 s; step 12 jumps 3 h (cuts a chunk on span).
        let mut clock = [0i64; 6];
        for op in ops {
            let s = storage.as_ref().expect("open store");
            match op {
                Op::Append(samples) => {
                    let mut app = s.appender();
                    let mut batch = Vec::new();
                    for (i, step, kind) in samples {
                        let t = match step {
                            12 => clock[i] + 3 * 3600 * 1000,
                            step => clock[i] + step * 1000,
                        };
                        clock[i] = clock[i].max(t);
                        let v = match kind {
                            0 => 1.0,
                            1 => f64::NAN,
                            2 => stale_nan(),
                            3 => t as f64 / 7.0,
                            4 => f64::INFINITY,
                            _ => (t % 5) as f64,
                        };
                        app.add(pool[i].clone(), t, v);
                        batch.push((pool[i].clone(), Sample { t, v }));
                    }
                    let outcome = app.commit().expect("commit");
                    prop_assert_eq!(outcome, reference.commit(&batch, i64::MIN, 5));
                }
                Op::Query(m, a, b) => {
                    // Ranges in seconds over the first 400 s, plus everything.
                    check_queries(s, &reference, m, a * 1000, (a + b) * 1000);
                    check_queries(s, &reference, m, i64::MIN, i64::MAX);
                }
                Op::Flush => s.flush().expect("flush"),
                Op::Checkpoint => s.checkpoint().expect("checkpoint"),
                Op::Reopen(clean) => {
                    let old = storage.take().expect("open store");
                    if clean {
                        old.close().expect("close");
                    }
                    drop(old);
                    storage = Some(Storage::open(model_options(dir.path())).expect("reopen"));
                }
            }
        }
        let s = storage.as_ref().expect("open store");
        for m in 0..matcher_sets().len() {
            check_queries(s, &reference, m, i64::MIN, i64::MAX);
        }
        prop_assert_eq!(s.stats().active_series, reference.series.len());
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = open(dir.path());
    match Storage::open(StorageOptions::new(dir.path())) {
        Err(StorageError::Locked { path }) => assert_eq!(path, dir.path().join("lock")),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("two stores opened the same directory"),
    }
    first.close().expect("close");
    let second = open(dir.path());
    second.close().expect("close");
}
