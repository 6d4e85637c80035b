//! The embedded time-series store.
//!
//! Owns series identity, the inverted index, the in-memory head, the write-ahead
//! log, sealed chunks in SQLite and retention. Everything else writes through an
//! [`Appender`] and reads through a [`Querier`]; nothing outside this module
//! touches the files under the data directory's `wal/` or the `chunks`/`series`
//! tables.
//!
//! SKELETON NOTE: this file currently holds the public API with a naive,
//! in-memory, non-durable implementation so other modules can be built against
//! it. The real engine replaces the internals and keeps the API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::model::{Labels, Matcher, Sample, Timestamp};

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

/// The store. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<RwLock<Naive>>,
    options: Arc<StorageOptions>,
}

#[derive(Default)]
struct Naive {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl Storage {
    /// Opens (and recovers) the store under `options.data_dir`.
    pub fn open(options: StorageOptions) -> Result<Storage, StorageError> {
        std::fs::create_dir_all(&options.data_dir).map_err(|source| StorageError::Io {
            path: options.data_dir.clone(),
            source,
        })?;
        Ok(Storage {
            inner: Arc::new(RwLock::new(Naive::default())),
            options: Arc::new(options),
        })
    }

    pub fn options(&self) -> &StorageOptions {
        &self.options
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

    /// Registers the store's metrics (samples appended, active series, WAL and
    /// SQLite latencies, refused samples by reason) with the daemon's registry.
    pub fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}

    pub fn stats(&self) -> StorageStats {
        let n = self.inner.read().series.len();
        StorageStats {
            active_series: n,
            total_series: n,
        }
    }

    /// Flushes the WAL and persists what can be persisted; call once before exit.
    pub fn close(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Buffers samples for one atomic commit (one WAL record, one lock acquisition).
pub struct Appender {
    storage: Storage,
    pending: Vec<(Labels, Sample)>,
}

impl Appender {
    /// Adds one sample to the batch. `labels` must be a valid, canonical label set.
    pub fn add(&mut self, labels: Labels, t: Timestamp, v: f64) {
        self.pending.push((labels, Sample { t, v }));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Makes the batch visible and durable (written to the WAL before this returns).
    pub fn commit(self) -> Result<AppendOutcome, StorageError> {
        let mut outcome = AppendOutcome::default();
        let mut inner = self.storage.inner.write();
        for (labels, sample) in self.pending {
            let max_series = self.storage.options.max_series;
            let known = inner.series.contains_key(&labels);
            if !known && max_series > 0 && inner.series.len() >= max_series {
                outcome.series_limit += 1;
                continue;
            }
            let samples = inner.series.entry(labels).or_default();
            if !known {
                outcome.series_added += 1;
            }
            match samples.last() {
                Some(last) if sample.t < last.t => outcome.out_of_order += 1,
                Some(last) if sample.t == last.t => {
                    if last.v.to_bits() != sample.v.to_bits() {
                        outcome.duplicate += 1;
                    }
                }
                _ => {
                    samples.push(sample);
                    outcome.appended += 1;
                }
            }
        }
        Ok(outcome)
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
        let inner = self.storage.inner.read();
        let mut out = Vec::new();
        for (labels, samples) in &inner.series {
            if !matchers.iter().all(|m| m.matches_labels(labels)) {
                continue;
            }
            let in_range: Vec<Sample> = samples
                .iter()
                .filter(|s| s.t >= self.mint && s.t <= self.maxt)
                .copied()
                .collect();
            if !in_range.is_empty() {
                out.push(Series {
                    labels: labels.clone(),
                    samples: in_range,
                });
            }
        }
        Ok(out)
    }

    /// Label sets of the series `select` would return, without their samples.
    pub fn series(&self, matchers: &[Matcher]) -> Result<Vec<Labels>, StorageError> {
        Ok(self
            .select(matchers)?
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    /// Sorted label names of the series matching all matchers (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        for labels in self.series(matchers)? {
            names.extend(labels.iter().map(|l| l.name.clone()));
        }
        Ok(names.into_iter().collect())
    }

    /// Sorted values of label `name` over the series matching all matchers.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        for labels in self.series(matchers)? {
            if let Some(v) = labels.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }
}
