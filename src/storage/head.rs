//! The head: every series' recent samples in memory, and the rules a sample
//! must pass to be appended.
//!
//! Per series the head keeps one open Gorilla chunk, the sealed chunks not yet
//! confirmed in SQLite, and the newest sample (for out-of-order and duplicate
//! checks). It does no I/O: the engine logs to the WAL and hands sealed chunks
//! to the writer thread; the writer tells the head when a chunk is persisted so
//! its memory can go.

use std::sync::Arc;

use crate::model::{Labels, Timestamp};

use super::chunk::ChunkEncoder;
use super::db::PersistChunk;
use super::index::{Index, IntMap, SeriesRef};

/// A full chunk, immutable, shared between the head and the writer thread.
#[derive(Debug)]
pub struct SealedChunk {
    pub min_t: Timestamp,
    pub max_t: Timestamp,
    pub data: Box<[u8]>,
}

/// What happened to one sample offered to a series.
#[derive(Debug, PartialEq, Eq)]
pub enum AppendResult {
    Appended,
    OutOfOrder,
    Duplicate,
    /// Same timestamp and same value bits as the newest sample: nothing to do.
    Unchanged,
}

/// Answer of [`MemSeries::in_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InRange {
    Yes,
    No,
    Unknown,
}

/// One series in the head.
pub struct MemSeries {
    pub open: ChunkEncoder,
    /// Sealed chunks not yet confirmed in SQLite, oldest first.
    pub sealed: Vec<Arc<SealedChunk>>,
    /// Newest sample: time and value bits.
    pub last: Option<(Timestamp, u64)>,
    /// Whether the series' row is known to be in the `series` table.
    pub in_db: bool,
}

impl MemSeries {
    fn new(in_db: bool) -> MemSeries {
        MemSeries {
            open: ChunkEncoder::new(),
            sealed: Vec::new(),
            last: None,
            in_db,
        }
    }

    /// Appends if `t` is newer than the newest sample; cuts the open chunk when
    /// full and returns the sealed chunk through `sealed_out`.
    pub fn append(
        &mut self,
        t: Timestamp,
        v: f64,
        sealed_out: &mut Option<Arc<SealedChunk>>,
    ) -> AppendResult {
        let bits = v.to_bits();
        if let Some((last_t, last_v)) = self.last {
            if t < last_t {
                return AppendResult::OutOfOrder;
            }
            if t == last_t {
                return if bits == last_v {
                    AppendResult::Unchanged
                } else {
                    AppendResult::Duplicate
                };
            }
        }
        if self.open.is_full_for(t) {
            let full = std::mem::take(&mut self.open);
            let chunk = Arc::new(SealedChunk {
                min_t: full.min_t(),
                max_t: full.max_t(),
                data: full.into_bytes(),
            });
            self.sealed.push(chunk.clone());
            *sealed_out = Some(chunk);
        }
        self.open.append(t, v);
        self.last = Some((t, bits));
        AppendResult::Appended
    }

    /// Whether the series has a sample in `[mint, maxt]`, decided from what
    /// memory holds without decoding: `Yes` when the newest sample or a
    /// chunk's first or last sample lies in range, `No` when no chunk in
    /// memory or in SQLite can hold one, `Unknown` when a chunk spans the
    /// range (it may have a gap there) or older chunks are only in SQLite.
    pub fn in_range(&self, mint: Timestamp, maxt: Timestamp) -> InRange {
        // Nothing at or after `mint` was ever appended.
        if self.last.is_none_or(|(t, _)| t < mint) {
            return InRange::No;
        }
        let inside = |t: Timestamp| mint <= t && t <= maxt;
        let open = (!self.open.is_empty()).then(|| (self.open.min_t(), self.open.max_t()));
        let chunks = || self.sealed.iter().map(|c| (c.min_t, c.max_t)).chain(open);
        if self.last.is_some_and(|(t, _)| inside(t))
            || chunks().any(|(lo, hi)| inside(lo) || inside(hi))
        {
            return InRange::Yes;
        }
        // Persisted chunks are all older than the oldest in memory.
        let from_db = self.in_db && self.memory_min_t().is_none_or(|t| t > mint);
        if from_db || chunks().any(|(lo, hi)| lo <= maxt && hi >= mint) {
            InRange::Unknown
        } else {
            InRange::No
        }
    }

    /// Whether any samples of this series are held in memory.
    pub fn has_memory_data(&self) -> bool {
        !self.open.is_empty() || !self.sealed.is_empty()
    }

    /// Oldest timestamp held in memory, if any.
    pub fn memory_min_t(&self) -> Option<Timestamp> {
        self.sealed
            .first()
            .map(|c| c.min_t)
            .or((!self.open.is_empty()).then(|| self.open.min_t()))
    }
}

/// Series identity, index and per-series chunks.
#[derive(Default)]
pub struct Head {
    pub index: Index,
    pub series: IntMap<SeriesRef, MemSeries>,
    pub next_ref: SeriesRef,
    /// Sealed chunks waiting to be sent to the writer thread, oldest first.
    pub to_persist: Vec<PersistChunk>,
}

impl Head {
    /// Creates a series with a new ref.
    pub fn create_series(&mut self, labels: &Labels, hash: u64) -> SeriesRef {
        let series_ref = self.next_ref;
        self.index.insert(series_ref, labels, hash);
        self.series.insert(series_ref, MemSeries::new(false));
        self.next_ref += 1;
        series_ref
    }

    /// Adds a series under a known ref (recovery).
    pub fn add_series(&mut self, series_ref: SeriesRef, labels: &Labels, in_db: bool) {
        self.index
            .insert(series_ref, labels, super::index::label_hash(labels));
        self.series.insert(series_ref, MemSeries::new(in_db));
        self.next_ref = self.next_ref.max(series_ref + 1);
    }

    pub fn remove_series(&mut self, series_ref: SeriesRef) {
        self.index.remove(series_ref);
        self.series.remove(&series_ref);
    }

    /// Appends to an existing series, queueing a sealed chunk for the writer.
    pub fn append(&mut self, series_ref: SeriesRef, t: Timestamp, v: f64) -> Option<AppendResult> {
        let series = self.series.get_mut(&series_ref)?;
        let mut sealed = None;
        let result = series.append(t, v, &mut sealed);
        if let Some(chunk) = sealed {
            self.to_persist.push(PersistChunk { series_ref, chunk });
        }
        Some(result)
    }

    /// Drops in-memory chunks whose newest sample is older than `cutoff`.
    pub fn drop_before(&mut self, cutoff: Timestamp) {
        for series in self.series.values_mut() {
            series.sealed.retain(|c| c.max_t >= cutoff);
            if !series.open.is_empty() && series.open.max_t() < cutoff {
                series.open = ChunkEncoder::new();
            }
        }
        self.to_persist.retain(|p| p.chunk.max_t >= cutoff);
    }

    /// Forgets sealed chunks the writer confirmed in SQLite, and marks series rows written.
    pub fn confirm(&mut self, chunks: &[PersistChunk], series: &[SeriesRef]) {
        for p in chunks {
            if let Some(s) = self.series.get_mut(&p.series_ref) {
                s.sealed.retain(|c| !Arc::ptr_eq(c, &p.chunk));
            }
        }
        for r in series {
            if let Some(s) = self.series.get_mut(r) {
                s.in_db = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;

    #[test]
    fn append_rules() {
        let mut s = MemSeries::new(false);
        let mut sealed = None;
        assert_eq!(s.append(10, 1.0, &mut sealed), AppendResult::Appended);
        assert_eq!(s.append(9, 1.0, &mut sealed), AppendResult::OutOfOrder);
        assert_eq!(s.append(10, 1.0, &mut sealed), AppendResult::Unchanged);
        assert_eq!(s.append(10, 2.0, &mut sealed), AppendResult::Duplicate);
        assert_eq!(
            s.append(11, stale_nan(), &mut sealed),
            AppendResult::Appended
        );
        assert_eq!(
            s.append(11, stale_nan(), &mut sealed),
            AppendResult::Unchanged
        );
        assert_eq!(s.append(11, f64::NAN, &mut sealed), AppendResult::Duplicate);
        assert_eq!(s.open.len(), 2);
        assert!(sealed.is_none());
    }

    #[test]
    fn chunks_are_cut_at_120_samples_and_two_hours() {
        let mut head = Head::default();
        let l = Labels::new([("__name__", "x")]);
        let r = head.create_series(&l, super::super::index::label_hash(&l));
        for i in 0..121 {
            assert_eq!(
                head.append(r, i * 1000, i as f64),
                Some(AppendResult::Appended)
            );
        }
        assert_eq!(head.to_persist.len(), 1);
        assert_eq!(head.to_persist[0].chunk.min_t, 0);
        assert_eq!(head.to_persist[0].chunk.max_t, 119_000);
        // A gap of more than 2h cuts the open chunk (1 sample) early.
        head.append(r, 121_000 + 2 * 3600 * 1000 + 1, 0.0);
        assert_eq!(head.to_persist.len(), 2);
        assert_eq!(head.series[&r].sealed.len(), 2);
        let persisted = head.to_persist.clone();
        head.confirm(&persisted, &[r]);
        assert!(head.series[&r].sealed.is_empty());
        assert!(head.series[&r].in_db);
        assert_eq!(head.append(99, 0, 0.0), None);
    }
}
