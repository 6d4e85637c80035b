//! The head: every series' recent samples in memory, and the rules a sample
//! must pass to be appended.
//!
//! Per series the head keeps one open Gorilla chunk, the sealed chunks not yet
//! confirmed in SQLite, and the newest sample (for out-of-order and duplicate
//! checks). It does no I/O: the engine logs to the WAL and hands sealed chunks
//! to the writer thread; the writer tells the head when a chunk is persisted so
//! its memory can go — except the newest persisted chunks, kept as a read
//! cache ([`MemSeries::recent`]) so queries near the newest sample (every
//! instant query and alert rule) need no SQLite read.

use std::sync::Arc;

use crate::model::{Labels, Timestamp};

use super::chunk::{ChunkEncoder, ResumePoint};
use super::db::PersistChunk;
use super::index::{Index, IntMap, SeriesRef};

/// Persisted chunks stay in [`MemSeries::recent`] while they hold samples
/// from the last this many milliseconds before the series' newest sample:
/// the 5 m lookback plus a 5 m range, what instant queries and alert rules
/// read.
pub const RECENT_WINDOW_MS: i64 = 10 * 60 * 1000;
/// At most this many persisted chunks per series stay in memory (a series
/// scraped every second fills a chunk in 2 minutes).
pub const MAX_RECENT_CHUNKS: usize = 4;

/// A full chunk, immutable, shared between the head and the writer thread.
#[derive(Debug)]
pub struct SealedChunk {
    pub min_t: Timestamp,
    pub max_t: Timestamp,
    pub data: Box<[u8]>,
    /// Where a reader can enter the chunk half-way (none for chunks read
    /// back from SQLite).
    pub resume_point: Option<ResumePoint>,
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
    /// The newest chunks already in SQLite, oldest first, all older than
    /// `sealed`: a read cache, never written again (see
    /// [`MemSeries::keep_recent`]).
    pub recent: Vec<Arc<SealedChunk>>,
    /// Newest sample: time and value bits.
    pub last: Option<(Timestamp, u64)>,
    /// Time of the series' oldest sample (a lower bound: retention may have
    /// deleted it since), from SQLite at recovery or from the first append;
    /// `None` while the series has none. Lets [`MemSeries::in_range`] answer
    /// `No` for a range that ends before the series began without reading
    /// SQLite.
    pub first_t: Option<Timestamp>,
    /// Whether the series' row is known to be in the `series` table.
    pub in_db: bool,
}

impl MemSeries {
    fn new(in_db: bool) -> MemSeries {
        MemSeries {
            open: ChunkEncoder::new(),
            sealed: Vec::new(),
            recent: Vec::new(),
            last: None,
            first_t: None,
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
        // With no newest sample and no first time from SQLite, nothing of
        // this series is stored anywhere.
        if self.last.is_none() && self.first_t.is_none() {
            self.first_t = Some(t);
        }
        if self.open.is_full_for(t) {
            let full = std::mem::take(&mut self.open);
            let chunk = Arc::new(SealedChunk {
                min_t: full.min_t(),
                max_t: full.max_t(),
                resume_point: full.resume_point(),
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
        // Nothing at or after `mint` was ever appended, or nothing up to `maxt`.
        if self.last.is_none_or(|(t, _)| t < mint) || self.first_t.is_some_and(|t| t > maxt) {
            return InRange::No;
        }
        let inside = |t: Timestamp| mint <= t && t <= maxt;
        let open = (!self.open.is_empty()).then(|| (self.open.min_t(), self.open.max_t()));
        let chunks = || {
            self.recent
                .iter()
                .chain(&self.sealed)
                .map(|c| (c.min_t, c.max_t))
                .chain(open)
        };
        if self.last.is_some_and(|(t, _)| inside(t))
            || chunks().any(|(lo, hi)| inside(lo) || inside(hi))
        {
            return InRange::Yes;
        }
        // Persisted chunks not cached in memory are older than any that are.
        let from_db = self.in_db && self.memory_min_t().is_none_or(|t| t > mint);
        if from_db || chunks().any(|(lo, hi)| lo <= maxt && hi >= mint) {
            InRange::Unknown
        } else {
            InRange::No
        }
    }

    /// Whether samples not yet in SQLite are held in memory (the open
    /// chunk or unconfirmed sealed chunks; the `recent` cache does not count).
    pub fn has_memory_data(&self) -> bool {
        !self.open.is_empty() || !self.sealed.is_empty()
    }

    /// Oldest timestamp held in memory (cache included), if any. Every
    /// persisted chunk not in `recent` is older.
    pub fn memory_min_t(&self) -> Option<Timestamp> {
        self.recent
            .first()
            .or(self.sealed.first())
            .map(|c| c.min_t)
            .or((!self.open.is_empty()).then(|| self.open.min_t()))
    }

    /// Adds a chunk just confirmed in SQLite to the `recent` cache and drops
    /// the oldest cached chunks no longer needed: a cached chunk goes once
    /// the newer ones in memory reach back [`RECENT_WINDOW_MS`] before the
    /// newest sample, or beyond [`MAX_RECENT_CHUNKS`]. The newest persisted
    /// chunk always stays (the open chunk may hold a single sample).
    pub fn keep_recent(&mut self, chunk: Arc<SealedChunk>) {
        if self.recent.last().is_some_and(|c| c.min_t >= chunk.min_t) {
            return; // already cached (recovery) or older than the cache
        }
        self.recent.push(chunk);
        let newest = self.last.map_or(Timestamp::MIN, |(t, _)| t);
        let horizon = newest.saturating_sub(RECENT_WINDOW_MS);
        while self.recent.len() > 1 {
            let covered = self.recent[1].min_t <= horizon;
            if covered || self.recent.len() > MAX_RECENT_CHUNKS {
                self.recent.remove(0);
            } else {
                break;
            }
        }
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
            series.recent.retain(|c| c.max_t >= cutoff);
            if !series.open.is_empty() && series.open.max_t() < cutoff {
                series.open = ChunkEncoder::new();
            }
        }
        self.to_persist.retain(|p| p.chunk.max_t >= cutoff);
    }

    /// Drops cached chunks that retention deleted from SQLite (by key).
    pub fn forget_recent(&mut self, deleted: &[(SeriesRef, Timestamp)]) {
        for (series_ref, min_t) in deleted {
            if let Some(s) = self.series.get_mut(series_ref) {
                s.recent.retain(|c| c.min_t != *min_t);
            }
        }
    }

    /// Moves sealed chunks the writer confirmed in SQLite to the `recent`
    /// cache (which keeps only the newest), and marks series rows written.
    pub fn confirm(&mut self, chunks: &[PersistChunk], series: &[SeriesRef]) {
        for p in chunks {
            if let Some(s) = self.series.get_mut(&p.series_ref) {
                let before = s.sealed.len();
                s.sealed.retain(|c| !Arc::ptr_eq(c, &p.chunk));
                if s.sealed.len() < before {
                    s.keep_recent(p.chunk.clone());
                }
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
        // The newest persisted chunk stays as a read cache.
        let recent: Vec<i64> = head.series[&r].recent.iter().map(|c| c.min_t).collect();
        assert_eq!(recent, vec![120_000]);
        assert_eq!(head.series[&r].memory_min_t(), Some(120_000));
        assert_eq!(head.append(99, 0, 0.0), None);
    }

    #[test]
    fn recent_cache_keeps_the_last_ten_minutes_and_at_most_four_chunks() {
        let mut head = Head::default();
        let l = Labels::new([("__name__", "x")]);
        let r = head.create_series(&l, super::super::index::label_hash(&l));
        let confirm_all = |head: &mut Head| {
            let persisted = std::mem::take(&mut head.to_persist);
            head.confirm(&persisted, &[r]);
        };
        let cached =
            |head: &Head| -> Vec<i64> { head.series[&r].recent.iter().map(|c| c.min_t).collect() };
        // Every 15 s: a chunk spans 30 minutes, so one cached chunk covers
        // the window; older ones go.
        for i in 0..481 {
            head.append(r, i * 15_000, 1.0);
        }
        confirm_all(&mut head);
        assert_eq!(cached(&head), vec![3 * 1_800_000]);
        // Every second: a chunk spans 2 minutes; the cap of 4 applies.
        let start = 481 * 15_000;
        for i in 0..(120 * 8 + 1) {
            head.append(r, start + i * 1000, 1.0);
        }
        confirm_all(&mut head);
        // The open chunk already held the sample at `start - 15 s`, so chunk
        // k begins at `start - 1 s + k * 120 s`.
        let expected: Vec<i64> = (4..8).map(|k| start - 1000 + k * 120_000).collect();
        assert_eq!(cached(&head), expected);
        // Retention drops cached chunks too.
        head.forget_recent(&[(r, expected[0])]);
        assert_eq!(cached(&head), expected[1..].to_vec());
        head.drop_before(expected[2]);
        assert_eq!(cached(&head), expected[2..].to_vec());
    }

    #[test]
    fn a_series_created_here_is_not_in_a_range_before_its_first_sample() {
        let mut s = MemSeries::new(false);
        let mut sealed = None;
        s.append(1000, 1.0, &mut sealed);
        s.append(2000, 1.0, &mut sealed);
        s.in_db = true;
        assert_eq!(s.in_range(0, 999), InRange::No);
        assert_eq!(s.in_range(0, 1000), InRange::Yes);
        // Unknown first sample (older data may be in SQLite): undecided.
        s.first_t = None;
        assert_eq!(s.in_range(0, 999), InRange::Unknown);
    }
}
