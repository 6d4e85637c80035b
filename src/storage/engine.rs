//! The engine behind [`super::Storage`]: recovery, the commit path, the
//! writer and maintenance threads, checkpoints, retention and queries.
//!
//! Threads and locks:
//! - `head` (one `RwLock`) guards the index, the series' chunks and the WAL
//!   writer. A commit holds it for writing while it validates, logs and
//!   appends; queries hold it for reading only while copying what they need.
//! - The writer thread owns the only writing SQLite connection. It receives,
//!   in order, chunk batches, checkpoints and retention runs. Order matters:
//!   recovery trusts that a persisted chunk implies every older chunk of its
//!   series is persisted or still in the WAL, so after a failed batch the
//!   writer skips batches until a checkpoint (which rewrites every unconfirmed
//!   chunk in one transaction) succeeds.
//! - The maintenance thread fsyncs the WAL every `wal_flush_interval`, hands
//!   sealed chunks to the writer every second, checkpoints every
//!   [`CHECKPOINT_INTERVAL`] and runs retention every [`RETENTION_INTERVAL`].
//!
//! Checkpoint protocol (crash-safe at every step):
//! 1. Under the head lock: start WAL segment N, snapshot the series not yet
//!    in `series`, every unconfirmed sealed chunk and every open chunk.
//! 2. The writer writes all of it, `head_chunks` replaced, and `wal_segment = N`
//!    in one transaction with `synchronous=FULL`.
//! 3. Only then are WAL segments below N deleted.
//!
//! Recovery: load `series`; the newest persisted chunk of each series gives
//! its newest sample; a `head_chunks` row whose `min_t` is not newer than that
//! chunk's was superseded by it and is dropped, otherwise it becomes the open
//! chunk; then WAL segments ≥ N are replayed, skipping samples not newer than
//! a series' newest (replay is idempotent). A torn or corrupt record ends its
//! segment: the file is truncated there, counted and logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rusqlite::Connection;

use crate::model::{now_millis, Labels, Matcher, Sample, Timestamp};

use super::chunk::{self, ChunkEncoder, ChunkError, ChunkIter, ResumePoint};
use super::db::{self, Checkpoint, PersistChunk, ReadPool};
use super::encoding::encode_labels;
use super::head::{AppendResult, Head, InRange, SealedChunk};
use super::index::{label_hash, SeriesRef};
use super::metrics::Metrics;
use super::wal::{self, Record, RecordBuilder, RecordReader, Wal, WalSample};
use super::{
    AppendOutcome, HeadStats, Series, SeriesId, StorageError, StorageOptions, StorageStats,
};

/// How often the head is checkpointed into SQLite and the WAL truncated.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// How often retention runs.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// How often queued sealed chunks are handed to the writer.
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);
/// A commit hands queued chunks to the writer itself past this many.
const PERSIST_BATCH: usize = 4096;
/// Size retention deletes this many chunks per round before measuring again.
const SIZE_RETENTION_STEP: usize = 1000;

/// Everything the head lock guards.
struct HeadState {
    head: Head,
    wal: Wal,
    record: RecordBuilder,
    closed: bool,
}

enum WriterMsg {
    Chunks {
        series: Vec<(SeriesRef, Vec<u8>)>,
        chunks: Vec<PersistChunk>,
    },
    Checkpoint(Checkpoint, SyncSender<Result<(), StorageError>>),
    Retention(SyncSender<Result<(), StorageError>>),
    Barrier(SyncSender<()>),
    Shutdown,
}

/// Which samples [`Engine::select`] returns with each series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// None: only the label sets (unsorted).
    Labels,
    /// Every sample in range.
    All,
    /// Only the newest sample in range: what an instant-vector selector
    /// evaluated at one time reads. Decodes one chunk per series instead of
    /// every chunk in the lookback window.
    Newest,
}

pub struct Engine {
    options: StorageOptions,
    db_path: PathBuf,
    wal_dir: PathBuf,
    state: RwLock<HeadState>,
    writer: Sender<WriterMsg>,
    reads: ReadPool,
    pub metrics: Metrics,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Holds an exclusive lock on `data_dir/lock` until `close()` (or the
    /// engine is dropped), so a second process cannot open the same store.
    dir_lock: Mutex<Option<std::fs::File>>,
    /// What recovery replayed, for `/api/v1/status/walreplay`.
    pub wal_replay: WalReplay,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the exclusive lock on `data_dir/lock` (released by the OS when the
/// process dies, so a crash never leaves a stale lock behind).
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, StorageError> {
    let path = data_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(StorageError::Io { path, source }),
    }
}

fn retention_ms(options: &StorageOptions) -> i64 {
    i64::try_from(options.retention.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    pub fn open(options: StorageOptions) -> Result<Arc<Engine>, StorageError> {
        let wal_dir = options.data_dir.join("wal");
        std::fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
        let dir_lock = lock_data_dir(&options.data_dir)?;
        let db_path = options.data_dir.join(db::DB_FILE);
        let conn = db::open(&db_path)?;
        let metrics = Metrics::default();
        let min_valid = now_millis().saturating_sub(retention_ms(&options));
        let (head, wal, wal_replay) = recover(&conn, &db_path, &wal_dir, &metrics, min_valid)?;
        metrics.active_series.set(head.index.len() as i64);
        let (tx, rx) = mpsc::channel();
        let engine = Arc::new(Engine {
            reads: ReadPool::new(db_path.clone()),
            options,
            db_path,
            wal_dir,
            state: RwLock::new(HeadState {
                head,
                wal,
                record: RecordBuilder::default(),
                closed: false,
            }),
            writer: tx,
            metrics,
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            dir_lock: Mutex::new(Some(dir_lock)),
            wal_replay,
        });
        let writer = {
            let for_thread = Arc::clone(&engine);
            std::thread::Builder::new()
                .name("storage-writer".into())
                .spawn(move || for_thread.writer_loop(conn, rx))
                .map_err(io_err(&engine.db_path))?
        };
        let maintenance = {
            let for_thread = Arc::clone(&engine);
            std::thread::Builder::new()
                .name("storage-maintenance".into())
                .spawn(move || for_thread.maintenance_loop())
                .map_err(io_err(&engine.db_path))?
        };
        engine.threads.lock().extend([writer, maintenance]);
        Ok(engine)
    }

    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    pub fn stats(&self) -> StorageStats {
        let n = self.state.read().head.index.len();
        StorageStats {
            active_series: n,
            total_series: n,
        }
    }

    pub fn head_stats(&self) -> HeadStats {
        let state = self.state.read();
        let mut stats = HeadStats {
            num_series: state.head.series.len(),
            chunk_count: 0,
            min_time: Timestamp::MAX,
            max_time: Timestamp::MIN,
        };
        for series in state.head.series.values() {
            if !series.open.is_empty() {
                stats.chunk_count += 1;
                stats.min_time = stats.min_time.min(series.open.min_t());
                stats.max_time = stats.max_time.max(series.open.max_t());
            }
            for chunk in &series.sealed {
                stats.chunk_count += 1;
                stats.min_time = stats.min_time.min(chunk.min_t);
                stats.max_time = stats.max_time.max(chunk.max_t);
            }
        }
        stats
    }

    pub fn series_ref(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = super::index::label_hash(labels);
        self.state.read().head.index.lookup(labels, hash)
    }

    /// Validates, logs and appends one batch. See [`super::Appender::commit`].
    pub fn commit(&self, pending: Vec<(SeriesId, Sample)>) -> Result<AppendOutcome, StorageError> {
        let mut outcome = AppendOutcome::default();
        if pending.is_empty() {
            return Ok(outcome);
        }
        let min_valid = now_millis().saturating_sub(retention_ms(&self.options));
        let max_series = self.options.max_series;
        // Hash outside the lock: it is the most expensive part of a lookup.
        let hashes: Vec<u64> = pending
            .iter()
            .map(|(id, _)| match id {
                SeriesId::Labels(labels) => super::index::label_hash(labels),
                SeriesId::Ref(_) => 0,
            })
            .collect();
        let mut guard = self.state.write();
        let st = &mut *guard;
        if st.closed {
            return Err(StorageError::Closed);
        }

        // Pass 1: resolve or create series; log new series before their samples.
        let mut refs: Vec<Option<SeriesRef>> = Vec::with_capacity(pending.len());
        let mut created: Vec<(SeriesRef, &Labels)> = Vec::new();
        for (i, (id, sample)) in pending.iter().enumerate() {
            if sample.t < min_valid {
                outcome.too_old += 1;
                refs.push(None);
                continue;
            }
            let labels = match id {
                SeriesId::Ref(r) => {
                    if st.head.series.contains_key(r) {
                        refs.push(Some(*r));
                    } else {
                        outcome.unknown_ref += 1;
                        refs.push(None);
                    }
                    continue;
                }
                SeriesId::Labels(labels) => labels,
            };
            let series_ref = match st.head.index.lookup(labels, hashes[i]) {
                Some(r) => r,
                None if max_series > 0 && st.head.index.len() >= max_series => {
                    outcome.series_limit += 1;
                    refs.push(None);
                    continue;
                }
                None => {
                    let r = st.head.create_series(labels, hashes[i]);
                    created.push((r, labels));
                    r
                }
            };
            refs.push(Some(series_ref));
        }
        if !created.is_empty() {
            st.record
                .series(created.iter().map(|&(r, labels)| (r, labels)));
            match st.wal.append(st.record.payload()) {
                Ok(n) => {
                    self.metrics.wal_bytes_written.inc_by(n as u64);
                }
                Err(e) => {
                    for &(r, _) in &created {
                        st.head.remove_series(r);
                    }
                    return Err(StorageError::Io {
                        path: st.wal.path(),
                        source: e,
                    });
                }
            }
        }

        // Pass 2: append to the head and build the samples record.
        st.record.begin_samples();
        let mut base: Option<(SeriesRef, Timestamp)> = None;
        let mut logged = 0usize;
        for ((_, sample), series_ref) in pending.iter().zip(&refs) {
            let Some(series_ref) = *series_ref else {
                continue;
            };
            match st.head.append(series_ref, sample.t, sample.v) {
                Some(AppendResult::Appended) => {
                    let base = *base.get_or_insert((series_ref, sample.t));
                    st.record.push_sample(
                        base,
                        WalSample {
                            series_ref,
                            t: sample.t,
                            v: sample.v,
                        },
                    );
                    logged += 1;
                }
                Some(AppendResult::OutOfOrder) => outcome.out_of_order += 1,
                Some(AppendResult::Duplicate) => outcome.duplicate += 1,
                Some(AppendResult::Unchanged) | None => {}
            }
        }
        outcome.appended = logged;
        outcome.series_added = created.len();
        if let Some(base) = base {
            st.record.finish_samples(logged, base);
            match st.wal.append(st.record.payload()) {
                Ok(n) => {
                    self.metrics.wal_bytes_written.inc_by(n as u64);
                }
                // The samples are in memory but not durable; the caller sees the error.
                Err(e) => {
                    return Err(StorageError::Io {
                        path: st.wal.path(),
                        source: e,
                    })
                }
            }
        }
        if st.head.to_persist.len() >= PERSIST_BATCH {
            self.send_persist_batch(&mut st.head);
        }
        let active = st.head.index.len();
        drop(guard);

        let m = &self.metrics;
        m.samples_appended.inc_by(outcome.appended as u64);
        m.series_created.inc_by(outcome.series_added as u64);
        m.active_series.set(active as i64);
        m.refused("out_of_order", outcome.out_of_order);
        m.refused("duplicate", outcome.duplicate);
        m.refused("too_old", outcome.too_old);
        m.refused("series_limit", outcome.series_limit);
        m.refused("unknown_ref", outcome.unknown_ref);
        Ok(outcome)
    }

    /// Sends the queued sealed chunks to the writer. Called under the head
    /// lock so batches reach the writer in the order they were sealed.
    fn send_persist_batch(&self, head: &mut Head) {
        if head.to_persist.is_empty() {
            return;
        }
        let chunks = std::mem::take(&mut head.to_persist);
        let mut series: Vec<(SeriesRef, Vec<u8>)> = Vec::new();
        for c in &chunks {
            let needs_row = head.series.get(&c.series_ref).is_some_and(|s| !s.in_db);
            if needs_row && series.last().map(|s| s.0) != Some(c.series_ref) {
                if let Some(labels) = head.index.labels_of(c.series_ref) {
                    series.push((c.series_ref, encode_labels(&labels)));
                }
            }
        }
        series.sort_by_key(|s| s.0);
        series.dedup_by_key(|s| s.0);
        // A send only fails once the writer is gone (shutdown); the chunks
        // stay in memory and in the WAL.
        let _ = self.writer.send(WriterMsg::Chunks { series, chunks });
    }

    /// Hands queued chunks to the writer and waits until it has written them.
    pub fn flush(&self) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut st = self.state.write();
            if st.closed {
                return Err(StorageError::Closed);
            }
            self.send_persist_batch(&mut st.head);
            self.writer
                .send(WriterMsg::Barrier(tx))
                .map_err(|_| StorageError::Closed)?;
        }
        rx.recv().map_err(|_| StorageError::Closed)
    }

    /// Runs the checkpoint protocol (see the module docs).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let segment = {
            let mut guard = self.state.write();
            let st = &mut *guard;
            if st.closed {
                return Err(StorageError::Closed);
            }
            let segment = st.wal.rotate().map_err(io_err(&self.wal_dir))?;
            let head = &mut st.head;
            let mut cp = Checkpoint {
                series: Vec::new(),
                chunks: Vec::new(),
                head_chunks: Vec::new(),
                wal_segment: segment,
                next_ref: head.next_ref,
            };
            for (&series_ref, series) in &head.series {
                if !series.in_db {
                    if let Some(labels) = head.index.labels_of(series_ref) {
                        cp.series.push((series_ref, encode_labels(&labels)));
                    }
                }
                cp.chunks
                    .extend(series.sealed.iter().map(|chunk| PersistChunk {
                        series_ref,
                        chunk: chunk.clone(),
                    }));
                if !series.open.is_empty() {
                    cp.head_chunks.push((
                        series_ref,
                        series.open.min_t(),
                        series.open.max_t(),
                        series.open.bytes().to_vec(),
                    ));
                }
            }
            // Everything queued is in the checkpoint.
            head.to_persist.clear();
            self.writer
                .send(WriterMsg::Checkpoint(cp, tx))
                .map_err(|_| StorageError::Closed)?;
            segment
        };
        rx.recv().map_err(|_| StorageError::Closed)??;
        for (n, path) in wal::list_segments(&self.wal_dir).map_err(io_err(&self.wal_dir))? {
            if n < segment {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        self.metrics.checkpoints.inc();
        Ok(())
    }

    /// Runs retention now and waits for it.
    pub fn run_retention(&self) -> Result<(), StorageError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.writer
            .send(WriterMsg::Retention(tx))
            .map_err(|_| StorageError::Closed)?;
        rx.recv().map_err(|_| StorageError::Closed)?
    }

    /// fsyncs the WAL: handles are taken under the lock, synced outside it.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        let files = {
            let mut st = self.state.write();
            st.wal.files_to_sync().map_err(io_err(&self.wal_dir))?
        };
        let start = Instant::now();
        for f in files {
            f.sync_all().map_err(io_err(&self.wal_dir))?;
        }
        self.metrics
            .wal_fsync_duration
            .observe(start.elapsed().as_secs_f64());
        Ok(())
    }

    /// Final checkpoint, threads stopped, WAL synced; later calls fail with `Closed`.
    pub fn close(&self) -> Result<(), StorageError> {
        if self.state.read().closed {
            return Ok(());
        }
        let checkpoint = self.checkpoint();
        self.stop_threads();
        let synced = self.sync_wal();
        self.state.write().closed = true;
        // Nothing writes after this point: another process may take the store.
        self.dir_lock.lock().take();
        checkpoint.and(synced)
    }

    /// Stops and joins the background threads without a checkpoint (also
    /// what dropping the last handle does: equivalent to a crash on disk).
    pub fn stop_threads(&self) {
        *self.stop.lock() = true;
        self.stop_cv.notify_all();
        let _ = self.writer.send(WriterMsg::Shutdown);
        let threads: Vec<_> = std::mem::take(&mut *self.threads.lock());
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a storage thread panicked");
            }
        }
    }

    fn writer_loop(&self, mut conn: Connection, rx: Receiver<WriterMsg>) {
        // After a failed batch, later batches are skipped until a checkpoint succeeds.
        let mut failed = false;
        let mut deferred: Option<WriterMsg> = None;
        loop {
            let msg = match deferred.take() {
                Some(m) => m,
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                },
            };
            match msg {
                WriterMsg::Chunks {
                    mut series,
                    mut chunks,
                } => {
                    // Gather what else is queued into the same transaction.
                    while chunks.len() < 64 * PERSIST_BATCH {
                        match rx.try_recv() {
                            Ok(WriterMsg::Chunks {
                                series: s,
                                chunks: c,
                            }) => {
                                series.extend(s);
                                chunks.extend(c);
                            }
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if failed {
                        continue;
                    }
                    let start = Instant::now();
                    match db::write_chunks(&mut conn, &self.db_path, &series, &chunks) {
                        Ok(()) => {
                            self.observe_batch(start);
                            self.metrics.chunks_persisted.inc_by(chunks.len() as u64);
                            let refs: Vec<SeriesRef> = series.iter().map(|s| s.0).collect();
                            self.state.write().head.confirm(&chunks, &refs);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, chunks = chunks.len(),
                                "writing chunks to SQLite failed; they stay in memory and the WAL until the next checkpoint");
                            failed = true;
                        }
                    }
                }
                WriterMsg::Checkpoint(cp, reply) => {
                    let start = Instant::now();
                    let result = db::write_checkpoint(&mut conn, &self.db_path, &cp);
                    if result.is_ok() {
                        self.observe_batch(start);
                        failed = false;
                        self.metrics.chunks_persisted.inc_by(cp.chunks.len() as u64);
                        let refs: Vec<SeriesRef> = cp.series.iter().map(|s| s.0).collect();
                        self.state.write().head.confirm(&cp.chunks, &refs);
                    }
                    let _ = reply.send(result);
                }
                WriterMsg::Retention(reply) => {
                    let _ = reply.send(self.retention(&mut conn));
                }
                WriterMsg::Barrier(reply) => {
                    let _ = reply.send(());
                }
                WriterMsg::Shutdown => return,
            }
        }
    }

    fn observe_batch(&self, start: Instant) {
        self.metrics
            .sqlite_batch_duration
            .observe(start.elapsed().as_secs_f64());
    }

    /// Age and size retention; runs on the writer thread so it never races a
    /// chunk batch.
    fn retention(&self, conn: &mut Connection) -> Result<(), StorageError> {
        let cutoff = now_millis().saturating_sub(retention_ms(&self.options));
        let mut deleted = db::delete_chunks_before(conn, &self.db_path, cutoff)?;
        self.state.write().head.drop_before(cutoff);
        if let Some(limit) = self.options.retention_size {
            loop {
                let used = db::used_bytes(conn, &self.db_path)? + self.wal_bytes();
                if used <= limit {
                    break;
                }
                let keys = db::delete_oldest_chunks(conn, &self.db_path, SIZE_RETENTION_STEP)?;
                if keys.is_empty() {
                    break;
                }
                deleted += keys.len();
                self.state.write().head.forget_recent(&keys);
            }
        }
        // Series with no data left leave the index and the `series` table.
        let without_chunks = db::series_without_chunks(conn, &self.db_path)?;
        let (removed, next_ref) = {
            let mut st = self.state.write();
            let head = &mut st.head;
            let mut candidates: Vec<SeriesRef> = without_chunks;
            candidates.extend(
                head.series
                    .iter()
                    .filter(|(_, s)| !s.in_db && !s.has_memory_data())
                    .map(|(&r, _)| r),
            );
            let mut removed = Vec::new();
            for r in candidates {
                if head.series.get(&r).is_some_and(|s| !s.has_memory_data()) {
                    head.remove_series(r);
                    removed.push(r);
                } else if !head.series.contains_key(&r) {
                    // A row with no series in the head (labels that did not decode).
                    removed.push(r);
                }
            }
            self.metrics.active_series.set(head.index.len() as i64);
            (removed, head.next_ref)
        };
        if !removed.is_empty() {
            db::delete_series(conn, &self.db_path, &removed, next_ref)?;
        }
        if deleted > 0 {
            db::reclaim(conn, &self.db_path)?;
        }
        self.metrics.deleted("chunk", deleted);
        self.metrics.deleted("series", removed.len());
        self.metrics.disk_bytes.set(self.disk_bytes() as i64);
        Ok(())
    }

    fn wal_bytes(&self) -> u64 {
        wal::list_segments(&self.wal_dir)
            .map(|segments| {
                segments
                    .iter()
                    .filter_map(|(_, p)| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Database, its SQLite WAL and the WAL segments, in bytes.
    pub fn disk_bytes(&self) -> u64 {
        let db_files: u64 = ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut p = self.db_path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(PathBuf::from(p)).ok()
            })
            .map(|m| m.len())
            .sum();
        db_files + self.wal_bytes()
    }

    fn maintenance_loop(&self) {
        let tick = self
            .options
            .wal_flush_interval
            .clamp(Duration::from_millis(10), PERSIST_INTERVAL);
        let now = Instant::now();
        let (mut next_sync, mut next_persist) = (now, now);
        let mut next_checkpoint = now + CHECKPOINT_INTERVAL;
        let mut next_retention = now + Duration::from_secs(5);
        loop {
            {
                let mut stop = self.stop.lock();
                if !*stop {
                    self.stop_cv.wait_for(&mut stop, tick);
                }
                if *stop {
                    return;
                }
            }
            let now = Instant::now();
            if now >= next_sync {
                next_sync = now + self.options.wal_flush_interval;
                if let Err(e) = self.sync_wal() {
                    tracing::error!(error = %e, "WAL fsync failed");
                }
            }
            if now >= next_persist {
                next_persist = now + PERSIST_INTERVAL;
                let mut st = self.state.write();
                self.send_persist_batch(&mut st.head);
            }
            if now >= next_checkpoint {
                next_checkpoint = now + CHECKPOINT_INTERVAL;
                if let Err(e) = self.checkpoint() {
                    tracing::error!(error = %e, "storage checkpoint failed; the WAL is kept");
                }
            }
            if now >= next_retention {
                next_retention = now + RETENTION_INTERVAL;
                if let Err(e) = self.run_retention() {
                    tracing::error!(error = %e, "storage retention failed");
                }
            }
        }
    }

    /// Series matching `matchers` with ≥ 1 sample in `[mint, maxt]`, sorted by
    /// labels (except for [`Want::Labels`], whose callers sort or collect into
    /// sets), with the samples `want` asks for.
    pub fn select(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
        want: Want,
    ) -> Result<Vec<Series>, StorageError> {
        let with_samples = want != Want::Labels;
        let newest_only = want == Want::Newest;
        struct Plan {
            series_ref: SeriesRef,
            labels: Labels,
            memory: Vec<(Timestamp, ChunkBytes)>,
            from_db: bool,
        }
        /// A chunk's bytes: sealed chunks are shared, not copied; the open
        /// chunk (still growing under the lock) is copied, with its
        /// checkpoint; chunks from SQLite have none.
        enum ChunkBytes {
            Sealed(Arc<SealedChunk>),
            /// With the time of its last sample when known (not for chunks
            /// from SQLite, read by their start time only).
            Copied(Arc<[u8]>, Option<ResumePoint>, Option<Timestamp>),
        }
        impl ChunkBytes {
            fn bytes(&self) -> &[u8] {
                match self {
                    ChunkBytes::Sealed(c) => &c.data,
                    ChunkBytes::Copied(b, _, _) => b,
                }
            }
            /// About how many of the chunk's samples lie in `[mint, maxt]`,
            /// from where the window falls in the chunk's time span (every
            /// sample when the span is unknown): the sample vector is sized
            /// by this, not by whole chunks, so a short window makes a small
            /// allocation.
            fn estimate(&self, min_t: Timestamp, mint: Timestamp, maxt: Timestamp) -> usize {
                let n = chunk::sample_count(self.bytes());
                let max_t = match self {
                    ChunkBytes::Sealed(c) => Some(c.max_t),
                    ChunkBytes::Copied(_, _, max_t) => *max_t,
                };
                let Some(max_t) = max_t.filter(|&t| t > min_t) else {
                    return n;
                };
                let (lo, hi) = (min_t.max(mint), max_t.min(maxt));
                if hi < lo {
                    return 0;
                }
                let share = (hi - lo) as f64 / (max_t - min_t) as f64;
                ((share * n as f64).ceil() as usize + 1).min(n)
            }
            /// An iterator over the samples from `mint` on: from the
            /// checkpoint when every sample before it is older than `mint`.
            fn iter_from(&self, mint: Timestamp) -> Result<ChunkIter<'_>, ChunkError> {
                let checkpoint = match self {
                    ChunkBytes::Sealed(c) => c.resume_point,
                    ChunkBytes::Copied(_, c, _) => *c,
                };
                match checkpoint.filter(|c| c.t() < mint) {
                    Some(c) => ChunkIter::resume(self.bytes(), &c),
                    None => ChunkIter::new(self.bytes()),
                }
            }
        }
        if mint > maxt {
            return Ok(Vec::new());
        }
        let mut plans = Vec::new();
        // Without samples, a series whose newest sample or an in-memory
        // chunk's first or last sample lies in range is known to qualify
        // without decoding or reading anything (the metadata endpoints'
        // common case: a recent range).
        let mut known: Vec<Series> = Vec::new();
        {
            let st = self.state.read();
            let head = &st.head;
            for series_ref in head.index.select(matchers) {
                let Some(series) = head.series.get(&series_ref) else {
                    continue;
                };
                match series.in_range(mint, maxt) {
                    InRange::No => continue,
                    InRange::Yes if !with_samples => {
                        if let Some(labels) = head.index.labels_of(series_ref) {
                            known.push(Series {
                                labels,
                                samples: Vec::new(),
                            });
                        }
                        continue;
                    }
                    InRange::Yes | InRange::Unknown => {}
                }
                let mut memory: Vec<(Timestamp, ChunkBytes)> = series
                    .recent
                    .iter()
                    .chain(&series.sealed)
                    .filter(|c| c.min_t <= maxt && c.max_t >= mint)
                    .map(|c| (c.min_t, ChunkBytes::Sealed(c.clone())))
                    .collect();
                if !series.open.is_empty()
                    && series.open.min_t() <= maxt
                    && series.open.max_t() >= mint
                {
                    memory.push((
                        series.open.min_t(),
                        ChunkBytes::Copied(
                            Arc::from(series.open.bytes()),
                            series.open.resume_point(),
                            Some(series.open.max_t()),
                        ),
                    ));
                }
                // Persisted chunks not cached in memory are older than any that are.
                let mut from_db = series.in_db && series.memory_min_t().is_none_or(|t| t > mint);
                if newest_only {
                    // Chunks do not overlap in time: the newest sample up to
                    // `maxt` is in the newest chunk that starts by `maxt`, and
                    // if that sample is older than `mint` so is every other.
                    if let Some(newest) = memory.iter().map(|(t, _)| *t).max() {
                        memory.retain(|(t, _)| *t == newest);
                        from_db = false;
                    }
                }
                if memory.is_empty() && !from_db {
                    continue;
                }
                let Some(labels) = head.index.labels_of(series_ref) else {
                    continue;
                };
                plans.push(Plan {
                    series_ref,
                    labels,
                    memory,
                    from_db,
                });
            }
        }
        let db_refs: Vec<SeriesRef> = plans
            .iter()
            .filter(|p| p.from_db)
            .map(|p| p.series_ref)
            .collect();
        let mut db_chunks: HashMap<SeriesRef, Vec<(Timestamp, Vec<u8>)>> = if db_refs.is_empty() {
            HashMap::new()
        } else {
            db_refs
                .iter()
                .copied()
                .zip(self.reads.chunks(&db_refs, mint, maxt)?)
                .collect()
        };
        let mut out = known;
        for plan in plans {
            // Keyed by min_t: a chunk both persisted and still in memory counts once.
            let mut chunks = plan.memory;
            if let Some(stored) = db_chunks.remove(&plan.series_ref) {
                chunks.extend(
                    stored.into_iter().map(|(min_t, data)| {
                        (min_t, ChunkBytes::Copied(Arc::from(data), None, None))
                    }),
                );
            }
            // By start time; a chunk both persisted and still in memory counts once.
            chunks.sort_by_key(|(min_t, _)| *min_t);
            chunks.dedup_by_key(|(min_t, _)| *min_t);
            if newest_only && chunks.len() > 1 {
                // From SQLite: only the newest chunk can hold the answer.
                chunks.drain(..chunks.len() - 1);
            }
            // About the samples in range: one small allocation, rarely regrown.
            let capacity = if with_samples {
                chunks
                    .iter()
                    .map(|(min_t, c)| c.estimate(*min_t, mint, maxt))
                    .sum()
            } else {
                1
            };
            let mut samples = Vec::with_capacity(capacity);
            'chunks: for (min_t, data) in &chunks {
                let iter = match data.iter_from(mint) {
                    Ok(iter) => iter,
                    Err(e) => {
                        warn_corrupt_chunk(&plan.labels, *min_t, &e);
                        continue;
                    }
                };
                for sample in iter {
                    let sample = match sample {
                        Ok(s) => s,
                        Err(e) => {
                            warn_corrupt_chunk(&plan.labels, *min_t, &e);
                            break;
                        }
                    };
                    if sample.t > maxt {
                        break 'chunks;
                    }
                    let newer = samples.last().is_none_or(|l: &Sample| sample.t > l.t);
                    if sample.t >= mint && newer {
                        samples.push(sample);
                        if !with_samples {
                            break 'chunks;
                        }
                    }
                }
            }
            if newest_only && samples.len() > 1 {
                samples.drain(..samples.len() - 1);
            }
            if !samples.is_empty() {
                if !with_samples {
                    samples.clear();
                }
                out.push(Series {
                    labels: plan.labels,
                    samples,
                });
            }
        }
        if with_samples {
            // Label sets are unique, so an unstable sort gives the same order
            // without the stable sort's scratch buffer.
            out.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        }
        Ok(out)
    }

    /// Sorted label names (`name` `None`) or values of label `name` over the
    /// series matching `matchers` that have a sample in `[mint, maxt]`.
    ///
    /// Answered from the postings: per name (or value), series are checked
    /// only until one qualifies, from chunk bounds in memory. Only when some
    /// name or value is left undecided by that (a chunk spanning the range,
    /// or data only in SQLite) does it fall back to selecting the series.
    pub fn label_index(
        &self,
        mint: Timestamp,
        maxt: Timestamp,
        matchers: &[Matcher],
        name: Option<&str>,
    ) -> Result<Vec<String>, StorageError> {
        if mint > maxt {
            return Ok(Vec::new());
        }
        let mut found: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut undecided = false;
        {
            let st = self.state.read();
            let head = &st.head;
            let candidates: Option<Vec<SeriesRef>> =
                (!matchers.is_empty()).then(|| head.index.select(matchers));
            if candidates.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Vec::new());
            }
            // The best answer over some postings lists: Yes as soon as one
            // candidate series qualifies.
            let decide = |lists: &mut dyn Iterator<Item = &[SeriesRef]>| -> InRange {
                let mut answer = InRange::No;
                for list in lists {
                    for r in list {
                        if candidates
                            .as_ref()
                            .is_some_and(|c| c.binary_search(r).is_err())
                        {
                            continue;
                        }
                        match head.series.get(r).map(|s| s.in_range(mint, maxt)) {
                            Some(InRange::Yes) => return InRange::Yes,
                            Some(InRange::Unknown) => answer = InRange::Unknown,
                            _ => {}
                        }
                    }
                }
                answer
            };
            let mut record = |key: &str, answer: InRange| match answer {
                InRange::Yes => {
                    found.insert(key.to_string());
                }
                InRange::Unknown => undecided = true,
                InRange::No => {}
            };
            match name {
                None => {
                    for (label, mut lists) in head.index.postings() {
                        record(label, decide(&mut lists));
                    }
                }
                Some(name) => {
                    for (value, list) in head.index.values_of(name) {
                        record(value, decide(&mut std::iter::once(list)));
                    }
                }
            }
        }
        if undecided {
            let series = self.select(mint, maxt, matchers, Want::Labels)?;
            found.clear();
            for s in &series {
                match name {
                    None => found.extend(s.labels.iter().map(|l| l.name.to_string())),
                    Some(name) => found.extend(s.labels.get(name).map(str::to_string)),
                }
            }
        }
        Ok(found.into_iter().collect())
    }
}

fn warn_corrupt_chunk(labels: &Labels, min_t: Timestamp, e: &chunk::ChunkError) {
    tracing::warn!(series = %labels, min_t, error = %e, "skipping corrupt chunk");
}

/// Rebuilds the head from SQLite and the WAL (see the module docs).
fn recover(
    conn: &Connection,
    db_path: &Path,
    wal_dir: &Path,
    metrics: &Metrics,
    min_valid: Timestamp,
) -> Result<(Head, Wal, WalReplay), StorageError> {
    let mut head = Head::default();
    for (series_ref, labels) in db::load_series(conn, db_path)? {
        match labels {
            Some(labels) if head.index.lookup(&labels, label_hash(&labels)).is_none() => {
                head.add_series(series_ref, &labels, true)
            }
            Some(_) => tracing::warn!(series_ref, "duplicate label set in the series table"),
            None => tracing::warn!(
                series_ref,
                path = %db_path.display(),
                "series row with undecodable labels; its data is skipped"
            ),
        }
        head.next_ref = head.next_ref.max(series_ref + 1);
    }
    if let Some(r) = db::max_chunk_ref(conn, db_path)? {
        head.next_ref = head.next_ref.max(r + 1);
    }
    if let Some(r) = db::meta_get(conn, db_path, db::META_NEXT_REF)? {
        head.next_ref = head.next_ref.max(r as SeriesRef);
    }
    let mut last_persisted_min_t: HashMap<SeriesRef, Timestamp> = HashMap::new();
    for last in db::load_last_chunks(conn, db_path)? {
        let (series_ref, min_t, data) = (last.series_ref, last.min_t, last.data);
        last_persisted_min_t.insert(series_ref, min_t);
        let Some(series) = head.series.get_mut(&series_ref) else {
            continue;
        };
        series.first_t = Some(last.first_min_t);
        match chunk::decode(&data) {
            Ok(samples) => {
                if let Some(newest) = samples.last() {
                    series.last = Some((newest.t, newest.v.to_bits()));
                    // The read cache starts with the newest persisted chunk.
                    series.recent = vec![Arc::new(SealedChunk {
                        min_t,
                        max_t: newest.t,
                        resume_point: chunk::resume_point_of(&data),
                        data: data.into_boxed_slice(),
                    })];
                }
            }
            Err(e) => tracing::warn!(series_ref, min_t, error = %e, "corrupt chunk in SQLite"),
        }
    }
    for (series_ref, min_t, data) in db::load_head_chunks(conn, db_path)? {
        let Some(series) = head.series.get_mut(&series_ref) else {
            continue;
        };
        if last_persisted_min_t
            .get(&series_ref)
            .is_some_and(|&persisted| persisted >= min_t)
        {
            continue; // superseded by a chunk sealed and persisted after the checkpoint
        }
        match ChunkEncoder::from_bytes(&data) {
            Ok(open) if !open.is_empty() => {
                series.last = Some((open.max_t(), last_value_bits(&data)));
                series.first_t = Some(series.first_t.map_or(min_t, |t| t.min(min_t)));
                series.open = open;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(series_ref, min_t, error = %e, "corrupt head chunk in SQLite"),
        }
    }

    let first_segment = db::meta_get(conn, db_path, db::META_WAL_SEGMENT)?.unwrap_or(0) as u64;
    let segments = wal::list_segments(wal_dir).map_err(io_err(wal_dir))?;
    let mut aliases: HashMap<SeriesRef, SeriesRef> = HashMap::new();
    let mut next_segment = first_segment;
    let mut replayed: Option<(u64, u64)> = None;
    for (n, path) in segments {
        next_segment = next_segment.max(n + 1);
        if n < first_segment {
            // Covered by the checkpoint; left over from a crash before deletion.
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        replayed = Some(replayed.map_or((n, n), |(lo, _)| (lo, n)));
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        for record in RecordReader::new(&bytes) {
            match record {
                Ok(Record::Series(list)) => {
                    for (series_ref, labels) in list {
                        head.next_ref = head.next_ref.max(series_ref + 1);
                        if head.series.contains_key(&series_ref) {
                            continue;
                        }
                        match head.index.lookup(&labels, label_hash(&labels)) {
                            Some(existing) => {
                                aliases.insert(series_ref, existing);
                            }
                            None => head.add_series(series_ref, &labels, false),
                        }
                    }
                }
                Ok(Record::Samples(samples)) => {
                    for s in samples {
                        let series_ref =
                            aliases.get(&s.series_ref).copied().unwrap_or(s.series_ref);
                        let newer = head
                            .series
                            .get(&series_ref)
                            .is_some_and(|ms| ms.last.is_none_or(|(t, _)| s.t > t));
                        if newer && s.t >= min_valid {
                            head.append(series_ref, s.t, s.v);
                        }
                    }
                }
                Err(corruption) => {
                    tracing::warn!(
                        path = %path.display(),
                        offset = corruption.offset,
                        reason = corruption.reason,
                        "corrupt WAL record; truncating the segment there"
                    );
                    metrics.wal_corruptions.inc();
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    file.set_len(corruption.offset as u64)
                        .map_err(io_err(&path))?;
                    file.sync_all().map_err(io_err(&path))?;
                }
            }
        }
    }
    let wal = Wal::create(wal_dir, next_segment).map_err(io_err(wal_dir))?;
    let (min, max) = replayed.unwrap_or((first_segment, first_segment));
    Ok((
        head,
        wal,
        WalReplay {
            min,
            max,
            current: max,
        },
    ))
}

/// The WAL segments replayed at open (Prometheus's `WALReplayStatus`): the
/// first and last, and the one being read — the last once open returns,
/// since the API is served only after recovery. With nothing to replay all
/// three are the checkpoint's segment number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WalReplay {
    pub min: u64,
    pub max: u64,
    pub current: u64,
}

fn last_value_bits(chunk_bytes: &[u8]) -> u64 {
    chunk::decode(chunk_bytes)
        .ok()
        .and_then(|s| s.last().map(|s| s.v.to_bits()))
        .unwrap_or(0)
}
