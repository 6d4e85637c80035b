//! The write-ahead log under `data_dir/wal/`: what makes a committed batch
//! survive a crash before its samples reach SQLite.
//!
//! This module owns the segment files and the record format. It knows nothing
//! of the head or SQLite: the engine decides what to log and when a segment may
//! be deleted (after a checkpoint that covers it).
//!
//! Segments are files named by a zero-padded sequence number (`0000000042`).
//! A new segment is started on every open, when the current one passes
//! [`SEGMENT_MAX_BYTES`], and at every checkpoint. Each record is framed as
//!
//! ```text
//! [payload length: u32 LE][CRC32 (IEEE) of payload: u32 LE][payload]
//! ```
//!
//! and the payload's first byte is its kind:
//! - `1` series: uvarint count, then per series uvarint ref + label set
//!   (uvarint count, then uvarint-length-prefixed name and value per label);
//! - `2` samples: uvarint count, uvarint base ref, varint base t, then per
//!   sample varint (ref − base ref), varint (t − base t), value as u64 LE bits.
//!
//! A record is written with one write(2) before `commit` returns, so a killed
//! process loses nothing acknowledged; fsync runs on a timer. Replay stops a
//! segment at the first record that is short or fails its CRC (a torn tail),
//! and the engine truncates the file there.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::{Labels, Timestamp};

use super::encoding::{put_labels, put_uvarint, put_varint, Decoder};
use super::index::SeriesRef;

/// A segment is closed and a new one started past this size.
pub const SEGMENT_MAX_BYTES: u64 = 64 << 20;

/// Records claiming more than this are treated as corruption, not allocated.
const MAX_RECORD_BYTES: usize = 256 << 20;

const HEADER_BYTES: usize = 8;
const KIND_SERIES: u8 = 1;
const KIND_SAMPLES: u8 = 2;
/// A samples record whose body (everything after the kind byte) is
/// snappy-compressed, as Prometheus compresses its WAL: the raw 8-byte values
/// and small varints of a scrape compress to roughly half.
const KIND_SAMPLES_SNAPPY: u8 = 3;

/// One decoded WAL record.
#[derive(Debug, PartialEq)]
pub enum Record {
    Series(Vec<(SeriesRef, Labels)>),
    Samples(Vec<WalSample>),
}

#[derive(Clone, Copy, Debug)]
pub struct WalSample {
    pub series_ref: SeriesRef,
    pub t: Timestamp,
    pub v: f64,
}

impl PartialEq for WalSample {
    fn eq(&self, other: &Self) -> bool {
        self.series_ref == other.series_ref
            && self.t == other.t
            && self.v.to_bits() == other.v.to_bits()
    }
}

/// Where and why reading a segment stopped early.
#[derive(Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Byte offset of the first bad record: everything before it is good.
    pub offset: usize,
    pub reason: &'static str,
}

/// Builds record payloads; reused across commits so encoding does not allocate.
#[derive(Default)]
pub struct RecordBuilder {
    buf: Vec<u8>,
}

impl RecordBuilder {
    /// Encodes a series record into the builder's buffer and returns it.
    pub fn series<'a>(&mut self, series: impl ExactSizeIterator<Item = (SeriesRef, &'a Labels)>) {
        self.buf.clear();
        self.buf.push(KIND_SERIES);
        put_uvarint(&mut self.buf, series.len() as u64);
        for (series_ref, labels) in series {
            put_uvarint(&mut self.buf, series_ref);
            put_labels(&mut self.buf, labels);
        }
    }

    /// Starts a samples record; call [`RecordBuilder::push_sample`] for each sample.
    pub fn begin_samples(&mut self) {
        self.buf.clear();
        self.buf.push(KIND_SAMPLES);
        // Count, base ref and base t are patched in by `finish_samples`.
    }

    pub fn push_sample(&mut self, base: (SeriesRef, Timestamp), sample: WalSample) {
        put_varint(
            &mut self.buf,
            (sample.series_ref as i64).wrapping_sub(base.0 as i64),
        );
        put_varint(&mut self.buf, sample.t.wrapping_sub(base.1));
        self.buf
            .extend_from_slice(&sample.v.to_bits().to_le_bytes());
    }

    /// Writes the samples header (count and bases) in front of the pushed
    /// samples, then compresses the record body with snappy when that helps.
    pub fn finish_samples(&mut self, count: usize, base: (SeriesRef, Timestamp)) {
        let mut head = Vec::with_capacity(24);
        head.push(KIND_SAMPLES);
        put_uvarint(&mut head, count as u64);
        put_uvarint(&mut head, base.0);
        put_varint(&mut head, base.1);
        self.buf.splice(0..1, head);
        if self.buf.len() > 64 {
            let body = &self.buf[1..];
            let mut compressed = vec![0u8; 1 + snap::raw::max_compress_len(body.len())];
            compressed[0] = KIND_SAMPLES_SNAPPY;
            if let Ok(n) = snap::raw::Encoder::new().compress(body, &mut compressed[1..]) {
                if n + 1 < self.buf.len() {
                    compressed.truncate(n + 1);
                    self.buf = compressed;
                }
            }
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf
    }
}

/// Decodes one record payload; `None` if it is not a well-formed record.
pub fn decode_record(payload: &[u8]) -> Option<Record> {
    let (&kind, rest) = payload.split_first()?;
    if kind == KIND_SAMPLES_SNAPPY {
        // The claimed size is checked before allocating: a corrupt header must
        // not make recovery allocate gigabytes.
        let len = snap::raw::decompress_len(rest).ok()?;
        if len > MAX_RECORD_BYTES {
            return None;
        }
        let mut plain = Vec::with_capacity(len + 1);
        plain.push(KIND_SAMPLES);
        plain.extend(snap::raw::Decoder::new().decompress_vec(rest).ok()?);
        return decode_record(&plain);
    }
    let mut d = Decoder::new(rest);
    let count = usize::try_from(d.uvarint()?).ok()?;
    let record = match kind {
        KIND_SERIES => {
            let mut series = Vec::with_capacity(count.min(rest.len()));
            for _ in 0..count {
                let series_ref = d.uvarint()?;
                series.push((series_ref, d.labels()?));
            }
            Record::Series(series)
        }
        KIND_SAMPLES => {
            let base_ref = d.uvarint()?;
            let base_t = d.varint()?;
            // Each sample takes at least 10 bytes: bound the allocation by the input.
            let mut samples = Vec::with_capacity(count.min(rest.len() / 10));
            for _ in 0..count {
                let series_ref = (base_ref as i64).wrapping_add(d.varint()?) as u64;
                let t = base_t.wrapping_add(d.varint()?);
                let v = f64::from_bits(d.u64_le()?);
                samples.push(WalSample { series_ref, t, v });
            }
            Record::Samples(samples)
        }
        _ => return None,
    };
    d.is_empty().then_some(record)
}

/// Iterates over the framed records of a segment's bytes. Yields payloads
/// until the end or the first corruption, which it yields once and stops.
pub struct RecordReader<'a> {
    buf: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> RecordReader<'a> {
    pub fn new(buf: &'a [u8]) -> RecordReader<'a> {
        RecordReader {
            buf,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for RecordReader<'a> {
    type Item = Result<Record, Corruption>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset == self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.offset..];
        let fail = |reason| {
            Some(Err(Corruption {
                offset: self.offset,
                reason,
            }))
        };
        self.done = true;
        if rest.len() < HEADER_BYTES {
            return fail("record header cut short");
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len == 0 || len > MAX_RECORD_BYTES {
            return fail("record length out of range");
        }
        let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len) else {
            return fail("record payload cut short");
        };
        if crc32fast::hash(payload) != crc {
            return fail("record checksum mismatch");
        }
        let Some(record) = decode_record(payload) else {
            return fail("record payload malformed");
        };
        self.done = false;
        self.offset += HEADER_BYTES + len;
        Some(Ok(record))
    }
}

/// The segment being appended to, plus older segments not yet fsynced.
pub struct Wal {
    dir: PathBuf,
    segment: u64,
    file: File,
    size: u64,
    unsynced: Vec<File>,
    frame: Vec<u8>,
}

pub fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:010}"))
}

/// The segment files in `dir`, sorted by number; other files are ignored.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 10 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u64>() {
                out.push((n, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Wal {
    /// Starts a new segment numbered `segment` in `dir`.
    pub fn create(dir: &Path, segment: u64) -> std::io::Result<Wal> {
        let file = open_segment(dir, segment)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment,
            file,
            size: 0,
            unsynced: Vec::new(),
            frame: Vec::new(),
        })
    }

    pub fn path(&self) -> PathBuf {
        segment_path(&self.dir, self.segment)
    }

    /// Frames and writes one record with a single write(2); returns bytes written.
    /// On a failed write the segment is cut back so no torn record stays in
    /// front of later ones.
    pub fn append(&mut self, payload: &[u8]) -> std::io::Result<usize> {
        self.frame.clear();
        self.frame
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.frame
            .extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.frame.extend_from_slice(payload);
        if let Err(e) = self.file.write_all(&self.frame) {
            if self.file.set_len(self.size).is_err() {
                // Could not cut the torn record off: continue in a fresh segment.
                let _ = self.rotate();
            }
            return Err(e);
        }
        self.size += self.frame.len() as u64;
        if self.size >= SEGMENT_MAX_BYTES {
            self.rotate()?;
        }
        Ok(self.frame.len())
    }

    /// Closes the current segment (to be fsynced later) and starts the next one.
    /// Returns the new segment's number.
    pub fn rotate(&mut self) -> std::io::Result<u64> {
        let next = open_segment(&self.dir, self.segment + 1)?;
        let old = std::mem::replace(&mut self.file, next);
        self.unsynced.push(old);
        self.segment += 1;
        self.size = 0;
        Ok(self.segment)
    }

    /// Handles to fsync outside the head lock: the current segment and the
    /// closed segments not yet synced.
    pub fn files_to_sync(&mut self) -> std::io::Result<Vec<File>> {
        let mut files = std::mem::take(&mut self.unsynced);
        files.push(self.file.try_clone()?);
        Ok(files)
    }
}

fn open_segment(dir: &Path, segment: u64) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, segment))?;
    // Make the new file's directory entry durable too.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::stale_nan;
    use proptest::prelude::*;

    #[test]
    fn scrape_sized_sample_records_are_snappy_compressed_and_round_trip() {
        // One scrape: 500 series at one timestamp, counters that share high bytes.
        let samples: Vec<WalSample> = (0..500u64)
            .map(|i| WalSample {
                series_ref: 1000 + i,
                t: 1_700_000_000_000,
                v: 1_000_000.0 + (i * 7) as f64,
            })
            .collect();
        let payload = samples_record(&samples);
        assert_eq!(payload[0], KIND_SAMPLES_SNAPPY);
        // Uncompressed, each sample takes 10 bytes (two 1-byte varints and the value).
        assert!(
            payload.len() < samples.len() * 10 * 9 / 10,
            "{} bytes",
            payload.len()
        );
        assert_eq!(decode_record(&payload), Some(Record::Samples(samples)));
    }

    #[test]
    fn corrupt_snappy_record_is_refused_not_panicked_on() {
        let samples: Vec<WalSample> = (0..100u64)
            .map(|i| WalSample {
                series_ref: i,
                t: 5,
                v: i as f64,
            })
            .collect();
        let mut payload = samples_record(&samples);
        assert_eq!(payload[0], KIND_SAMPLES_SNAPPY);
        // A header claiming a huge decompressed size, and garbage after it.
        payload.truncate(1);
        payload.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
        assert_eq!(decode_record(&payload), None);
    }

    fn samples_record(samples: &[WalSample]) -> Vec<u8> {
        let mut b = RecordBuilder::default();
        let base = (samples[0].series_ref, samples[0].t);
        b.begin_samples();
        for s in samples {
            b.push_sample(base, *s);
        }
        b.finish_samples(samples.len(), base);
        b.payload().to_vec()
    }

    fn write_records(dir: &Path) -> (Vec<Record>, PathBuf) {
        let labels = Labels::new([("__name__", "up"), ("job", "node")]);
        let samples = vec![
            WalSample {
                series_ref: 7,
                t: 1000,
                v: 1.5,
            },
            WalSample {
                series_ref: 3,
                t: -20,
                v: stale_nan(),
            },
        ];
        let mut wal = Wal::create(dir, 1).expect("create");
        let mut b = RecordBuilder::default();
        b.series([(7u64, &labels)].into_iter());
        wal.append(b.payload()).expect("append");
        wal.append(&samples_record(&samples)).expect("append");
        let path = wal.path();
        (
            vec![Record::Series(vec![(7, labels)]), Record::Samples(samples)],
            path,
        )
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (expected, path) = write_records(dir.path());
        let bytes = std::fs::read(&path).expect("read");
        let got: Vec<Record> = RecordReader::new(&bytes)
            .map(|r| r.expect("intact"))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(
            list_segments(dir.path()).expect("list"),
            vec![(1, path.clone())]
        );
    }

    #[test]
    fn torn_tail_stops_at_last_good_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (expected, path) = write_records(dir.path());
        let bytes = std::fs::read(&path).expect("read");
        let first_len =
            HEADER_BYTES + u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        for cut in first_len + 1..bytes.len() {
            let results: Vec<_> = RecordReader::new(&bytes[..cut]).collect();
            assert_eq!(results.len(), 2, "cut at {cut}");
            assert_eq!(results[0].as_ref().expect("first intact"), &expected[0]);
            let err = results[1].as_ref().expect_err("torn");
            assert_eq!(err.offset, first_len);
        }
        // A flipped bit in the second record is caught by the CRC.
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x10;
        let err = RecordReader::new(&flipped)
            .nth(1)
            .expect("second")
            .expect_err("corrupt");
        assert_eq!(err.reason, "record checksum mismatch");
    }

    #[test]
    fn rotate_starts_next_segment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut wal = Wal::create(dir.path(), 5).expect("create");
        assert_eq!(wal.rotate().expect("rotate"), 6);
        wal.append(&samples_record(&[WalSample {
            series_ref: 1,
            t: 1,
            v: 1.0,
        }]))
        .expect("append");
        let segments: Vec<u64> = list_segments(dir.path())
            .expect("list")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(segments, vec![5, 6]);
        assert_eq!(wal.files_to_sync().expect("dup").len(), 2);
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut n = 0;
            for r in RecordReader::new(&bytes) {
                n += 1;
                if let Err(c) = r {
                    prop_assert!(c.offset <= bytes.len());
                }
            }
            prop_assert!(n <= bytes.len() / HEADER_BYTES + 1);
            let _ = decode_record(&bytes);
        }

        #[test]
        fn framed_garbage_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 1..256)) {
            // Valid frame and CRC around a random payload: exercises the payload decoder.
            let mut bytes = (payload.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            bytes.extend_from_slice(&payload);
            let results: Vec<_> = RecordReader::new(&bytes).collect();
            prop_assert_eq!(results.len(), 1);
        }
    }
}
