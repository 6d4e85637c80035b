//! The embedded time-series store.
//!
//! Owns series identity, the inverted index, the in-memory head, the write-ahead
//! log, sealed chunks in SQLite and retention. Everything else writes through an
//! [`Appender`] and reads through a [`Querier`]; nothing outside this module
//! touches the files under the data directory's `wal/` or the `series`,
//! `chunks`, `head_chunks` and `storage_meta` tables of `bellwether.db`.
//!
//! Files, one role each:
//! - `chunk.rs`: the Gorilla chunk codec;
//! - `index.rs`: label set → series ref, postings, matcher evaluation;
//! - `head.rs`: per-series open and unpersisted chunks, the append rules;
//! - `wal.rs`: WAL segments and record format;
//! - `db.rs`: the SQLite schema and statements;
//! - `engine.rs`: recovery, commit, checkpoint, retention, queries, threads;
//! - `metrics.rs`: the `bellwether_storage_*` metrics;
//! - `reference.rs` (tests only): the naive model the engine is checked against.

mod chunk;
mod db;
mod encoding;
mod engine;
pub use engine::{WalReplay, Want};
mod head;
mod index;
mod metrics;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Labels, Matcher, Sample, Timestamp};

pub use chunk::{ChunkEncoder, ChunkError, ChunkIter, MAX_SAMPLES_PER_CHUNK};
pub use index::SeriesRef;

/// Options of the store, from the config's `storage` section and the CLI.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Directory holding `wal/` and `bellwether.db`.
    pub data_dir: PathBuf,
    /// Samples older than this are deleted (`storage.retention`, default 15d).
    pub retention: Duration,
    /// Optional cap on the on-disk size; oldest chunks go first (`storage.retention_size`).
    pub retention_size: Option<u64>,
    /// Global cap on active (in-head) series (`storage.max_series`, 0 = unlimited).
    pub max_series: usize,
    /// How often the WAL is fsynced (`storage.wal_flush_interval`, default 1s).
    pub wal_flush_interval: Duration,
}

impl StorageOptions {
    /// Options for tests whose fixtures use timestamps near the epoch: the
    /// retention window is a century, so nothing is refused as too old.
    #[cfg(test)]
    pub(crate) fn for_epoch_fixtures(data_dir: impl AsRef<Path>) -> StorageOptions {
        let mut options = StorageOptions::new(data_dir);
        options.retention = Duration::from_secs(100 * 365 * 86400);
        options
    }

    pub fn new(data_dir: impl AsRef<Path>) -> StorageOptions {
        StorageOptions {
            data_dir: data_dir.as_ref().to_path_buf(),
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_size: None,
            max_series: 0,
            wal_flush_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SQLite database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("the data directory is in use by another process (lock held on {path}); stop it or choose another --data-dir")]
    Locked { path: PathBuf },
    #[error("the store is shut down")]
    Closed,
}

/// What happened to the samples of one committed batch. Refused samples are
/// counted here by reason and in the store's metrics; the rest of the batch is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Samples stored.
    pub appended: usize,
    /// Series created by this batch.
    pub series_added: usize,
    /// Older than the newest sample of their series.
    pub out_of_order: usize,
    /// Same timestamp as the newest sample of their series, different value.
    /// (Same timestamp and same value is a silent no-op, as in Prometheus.)
    pub duplicate: usize,
    /// Older than the retention window.
    pub too_old: usize,
    /// New series refused because `storage.max_series` is reached.
    pub series_limit: usize,
    /// Samples added with [`Appender::add_ref`] whose series no longer exists
    /// (deleted by retention): look the series up again, or add by labels.
    pub unknown_ref: usize,
}

/// A series and its samples within the queried range, in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Counts the daemon exposes about the store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageStats {
    pub active_series: usize,
    pub total_series: usize,
}

/// What the in-memory head holds: series, chunks not yet in SQLite (open and
/// sealed) and the time span of their samples, for `/api/v1/status/tsdb`.
/// An empty head has `min_time = i64::MAX` and `max_time = i64::MIN`, as in Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadStats {
    pub num_series: usize,
    pub chunk_count: usize,
    pub min_time: Timestamp,
    pub max_time: Timestamp,
}

/// The store. Cheap to clone; all clones share one engine. When the last
/// clone is dropped the background threads stop without a checkpoint (on
/// disk that is the same as a crash, which recovery handles); call
/// [`Storage::close`] for an orderly shutdown.
#[derive(Clone)]
pub struct Storage {
    handle: Arc<Handle>,
}

/// Stops the engine's threads when the last `Storage` clone goes away.
struct Handle {
    engine: Arc<engine::Engine>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.engine.stop_threads();
    }
}

impl Storage {
    /// Opens (and recovers) the store under `options.data_dir`: loads the
    /// series, persisted chunk metadata and the last checkpoint's open chunks
    /// from SQLite, then replays the WAL written since.
    pub fn open(options: StorageOptions) -> Result<Storage, StorageError> {
        Ok(Storage {
            handle: Arc::new(Handle {
                engine: engine::Engine::open(options)?,
            }),
        })
    }

    fn engine(&self) -> &engine::Engine {
        &self.handle.engine
    }

    pub fn options(&self) -> &StorageOptions {
        self.engine().options()
    }

    /// A batch writer; nothing is visible or durable until [`Appender::commit`].
    pub fn appender(&self) -> Appender {
        Appender {
            storage: self.clone(),
            pending: Vec::new(),
        }
    }

    /// A reader over samples with `mint <= t <= maxt` (milliseconds, inclusive).
    pub fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Querier {
        Querier {
            storage: self.clone(),
            mint,
            maxt,
        }
    }

    /// Registers the store's metrics (see `metrics.rs` for the list) with the
    /// daemon's registry.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.engine().metrics.register(registry);
    }

    pub fn stats(&self) -> StorageStats {
        self.engine().stats()
    }

    /// The WAL segments replayed when the store opened.
    pub fn wal_replay(&self) -> WalReplay {
        self.engine().wal_replay
    }

    /// Counts over the in-memory head (one pass under the read lock).
    pub fn head_stats(&self) -> HeadStats {
        self.engine().head_stats()
    }

    /// The ref of an existing series, for [`Appender::add_ref`]. A scraper
    /// caches it per exposition line so later scrapes skip label hashing.
    pub fn series_ref(&self, labels: &Labels) -> Option<SeriesRef> {
        self.engine().series_ref(labels)
    }

    /// Writes every sealed chunk waiting in memory to SQLite and waits for it.
    /// The background threads do this every second; tests and tools call it to
    /// observe a settled state.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.engine().flush()
    }

    /// Runs a checkpoint now (normally every 5 minutes and on close): persists
    /// series, sealed chunks and open-chunk snapshots in one SQLite
    /// transaction, then deletes the WAL segments it covers.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.engine().checkpoint()
    }

    /// Runs age and size retention now (normally every minute).
    pub fn run_retention(&self) -> Result<(), StorageError> {
        self.engine().run_retention()
    }

    /// Bytes on disk: the database, its SQLite WAL and the WAL segments.
    pub fn disk_bytes(&self) -> u64 {
        self.engine().disk_bytes()
    }

    /// Stops the background threads, writes a final checkpoint and fsyncs the
    /// WAL; call once before exit. Later appends and queries fail with
    /// [`StorageError::Closed`].
    pub fn close(&self) -> Result<(), StorageError> {
        self.engine().close()
    }
}

/// Buffers samples for one atomic commit (one WAL record, one lock acquisition).
pub struct Appender {
    storage: Storage,
    pending: Vec<(SeriesId, Sample)>,
}

/// How a pending sample names its series.
pub(crate) enum SeriesId {
    Labels(Labels),
    Ref(SeriesRef),
}

impl Appender {
    /// Adds one sample to the batch. `labels` must be a valid, canonical label set.
    pub fn add(&mut self, labels: Labels, t: Timestamp, v: f64) {
        self.pending
            .push((SeriesId::Labels(labels), Sample { t, v }));
    }

    /// Adds one sample to a series known by its ref ([`Storage::series_ref`]):
    /// the fast path, no label hashing. A ref whose series was deleted since is
    /// counted in [`AppendOutcome::unknown_ref`].
    pub fn add_ref(&mut self, series_ref: SeriesRef, t: Timestamp, v: f64) {
        self.pending
            .push((SeriesId::Ref(series_ref), Sample { t, v }));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Makes the batch visible and durable: the batch is written to the WAL
    /// (write(2), fsynced within `wal_flush_interval`) before this returns.
    /// Refused samples are counted in the outcome, never abort the batch.
    /// On an I/O error, accepted samples may be visible but not durable.
    pub fn commit(self) -> Result<AppendOutcome, StorageError> {
        self.storage.engine().commit(self.pending)
    }
}

/// Reads the store over one time range.
pub struct Querier {
    storage: Storage,
    mint: Timestamp,
    maxt: Timestamp,
}

impl Querier {
    /// Series matching every matcher that have at least one sample in range,
    /// sorted by label set, each with its samples in range.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        self.storage
            .engine()
            .select(self.mint, self.maxt, matchers, Want::All)
    }

    /// As [`Querier::select`], with only each series' newest sample in range.
    pub fn select_newest(&self, matchers: &[Matcher]) -> Result<Vec<Series>, StorageError> {
        self.storage
            .engine()
            .select(self.mint, self.maxt, matchers, Want::Newest)
    }

    /// Label sets of the series `select` would return, without their samples.
    pub fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        let mut labels = self.series_unsorted(matchers)?;
        labels.sort_unstable();
        Ok(labels)
    }

    fn series_unsorted(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        Ok(self
            .storage
            .engine()
            .select(self.mint, self.maxt, matchers, Want::Labels)?
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    /// Sorted label names of the series matching all matchers (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.storage
            .engine()
            .label_index(self.mint, self.maxt, matchers, None)
    }

    /// Sorted values of label `name` over the series matching all matchers.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        self.storage
            .engine()
            .label_index(self.mint, self.maxt, matchers, Some(name))
    }
}
