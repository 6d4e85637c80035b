//! The Gorilla chunk codec: one chunk holds up to [`MAX_SAMPLES_PER_CHUNK`]
//! samples of one series, timestamps as delta-of-delta and values as XOR of
//! consecutive IEEE-754 bit patterns (Pelkonen et al., "Gorilla", VLDB 2015).
//!
//! This module owns the byte format of a chunk and nothing else: it knows no
//! series, files or locks. The format is what the `chunks` and `head_chunks`
//! tables store, so changing it needs a schema version bump.
//!
//! Layout: a 2-byte big-endian sample count, then a bit stream:
//! - sample 0: timestamp as a zigzag LEB128 varint, value as 64 raw bits;
//! - sample 1: timestamp delta as a zigzag varint, value XOR-encoded;
//! - sample n ≥ 2: delta-of-delta in buckets `0` (0), `10`+7 bits, `110`+14 bits,
//!   `1110`+20 bits, `1111`+64 bits; value XOR-encoded.
//!
//! The 7-bit bucket (±64 ms) is narrower than Prometheus's 14-bit one because
//! scrape jitter of a few milliseconds is the common case: 9 bits per
//! timestamp instead of 16. Timestamp arithmetic wraps, so any `i64` sequence
//! (including negative or huge deltas) round-trips; values round-trip bit for
//! bit, so every NaN payload, including the staleness marker, survives.
//!
//! Written by hand rather than taken from a crate: the crates that exist either
//! do not keep NaN payloads, cannot resume an open chunk, or encode seconds.

use crate::model::{Sample, Timestamp};

/// A chunk is cut when it holds this many samples (as in Prometheus).
pub const MAX_SAMPLES_PER_CHUNK: usize = 120;

/// After how many samples an encoder records a [`ResumePoint`]: half a full
/// chunk, so a reader of a window in a chunk's second half decodes at most
/// half of it.
const RESUME_POINT_AT: u16 = (MAX_SAMPLES_PER_CHUNK / 2) as u16;

/// The decoder's state after the first [`RESUME_POINT_AT`] samples of a chunk:
/// a reader that needs only samples after [`ResumePoint::t`] starts here
/// instead of decoding the chunk from its start (Gorilla chunks cannot
/// otherwise be entered in the middle). 32 bytes, kept with in-memory chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    t: Timestamp,
    delta: i64,
    v: u64,
    /// Bits after the header that hold the samples before this point.
    bit_pos: u32,
    decoded: u16,
    leading: u8,
    trailing: u8,
}

impl ResumePoint {
    /// Time of the last sample before the resume point.
    pub fn t(&self) -> Timestamp {
        self.t
    }
}

/// A chunk is also cut when its samples span more than this many milliseconds.
pub const MAX_CHUNK_SPAN_MS: i64 = 2 * 3600 * 1000;

const HEADER_LEN: usize = 2;

/// Why a chunk's bytes could not be decoded.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk is shorter than its 2-byte header")]
    MissingHeader,
    #[error("chunk ends after {decoded} of {expected} samples")]
    Truncated { decoded: usize, expected: usize },
    #[error("chunk varint is longer than 10 bytes")]
    BadVarint,
}

/// Appends bits most-significant first into a byte vector.
#[derive(Clone, Debug)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Free bits in the last byte (0 = the next bit needs a new byte).
    free: u8,
}

impl BitWriter {
    fn write_bit(&mut self, bit: bool) {
        self.write_bits(bit as u64, 1);
    }

    /// Writes the low `n` bits of `value` (n ≤ 64), most significant first.
    fn write_bits(&mut self, value: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                // Grow by 32 bytes, not by doubling: an open chunk lives in
                // memory for its series' whole chunk span, and doubling would
                // leave up to half its allocation unused on every series.
                if self.bytes.len() == self.bytes.capacity() {
                    self.bytes.reserve_exact(32);
                }
                self.bytes.push(0);
                self.free = 8;
            }
            let take = self.free.min(n);
            let chunk = (value >> (n - take)) & ((1u64 << take) - 1);
            let last = self.bytes.last_mut().expect("a byte was pushed above");
            *last |= (chunk as u8) << (self.free - take);
            self.free -= take;
            n -= take;
        }
    }

    fn write_varint(&mut self, value: i64) {
        let mut z = ((value << 1) ^ (value >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                self.write_bits(byte as u64, 8);
                return;
            }
            self.write_bits((byte | 0x80) as u64, 8);
        }
    }
}

/// Reads bits most-significant first; every read returns `None` past the end.
///
/// Reads take up to 64 bits at once from a big-endian word loaded at the
/// current byte, instead of a byte at a time: decoding is most of an instant
/// query's cost.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits; never past `bytes.len() * 8`.
    pos: usize,
}

impl BitReader<'_> {
    /// Bits left to read.
    fn remaining(&self) -> usize {
        self.bytes.len() * 8 - self.pos
    }

    /// The 64 bits from the current position on, zeros past the end.
    #[inline]
    fn peek(&self) -> u64 {
        let i = self.pos / 8;
        let offset = (self.pos % 8) as u32;
        let word = match self.bytes.get(i..i + 8) {
            Some(b) => u64::from_be_bytes(b.try_into().expect("a slice of 8 bytes")),
            None => {
                let mut buf = [0u8; 8];
                let rest = self.bytes.get(i..).unwrap_or(&[]);
                buf[..rest.len()].copy_from_slice(rest);
                u64::from_be_bytes(buf)
            }
        };
        if offset == 0 {
            word
        } else {
            let next = self.bytes.get(i + 8).copied().unwrap_or(0) as u64;
            (word << offset) | (next >> (8 - offset))
        }
    }

    /// Moves past `n` bits if there are that many.
    #[inline]
    fn skip(&mut self, n: usize) -> Option<()> {
        if n > self.remaining() {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// The next `n` (≤ 64) bits as the low bits of the result.
    #[inline]
    fn read_bits(&mut self, n: u8) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        let n = n.min(64) as u32;
        let value = self.peek() >> (64 - n);
        self.skip(n as usize)?;
        Some(value)
    }

    fn read_varint(&mut self) -> Result<Option<i64>, ChunkError> {
        let mut z = 0u64;
        for i in 0..10 {
            let Some(byte) = self.read_bits(8) else {
                return Ok(None);
            };
            z |= (byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(Some(((z >> 1) as i64) ^ -((z & 1) as i64)));
            }
        }
        Err(ChunkError::BadVarint)
    }
}

/// An open chunk that samples are appended to. Holds the encoder state so it
/// can keep appending; [`ChunkEncoder::bytes`] is always a decodable chunk.
#[derive(Clone, Debug)]
pub struct ChunkEncoder {
    bits: BitWriter,
    count: u16,
    min_t: Timestamp,
    last_t: Timestamp,
    last_delta: i64,
    last_v: u64,
    /// Leading/trailing zero window of the previous XOR; `leading == u8::MAX` = none yet.
    leading: u8,
    trailing: u8,
    resume_point: Option<ResumePoint>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        ChunkEncoder::new()
    }
}

impl ChunkEncoder {
    pub fn new() -> ChunkEncoder {
        ChunkEncoder {
            bits: BitWriter {
                bytes: vec![0; HEADER_LEN],
                free: 0,
            },
            count: 0,
            min_t: 0,
            last_t: 0,
            last_delta: 0,
            last_v: 0,
            leading: u8::MAX,
            trailing: 0,
            resume_point: None,
        }
    }

    /// Rebuilds an encoder from a chunk's bytes (a `head_chunks` row) so it can
    /// keep appending. Re-encodes, so the result is canonical.
    pub fn from_bytes(bytes: &[u8]) -> Result<ChunkEncoder, ChunkError> {
        let mut enc = ChunkEncoder::new();
        for sample in decode(bytes)? {
            enc.append(sample.t, sample.v);
        }
        Ok(enc)
    }

    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Time of the first sample (meaningless when empty).
    pub fn min_t(&self) -> Timestamp {
        self.min_t
    }

    /// Time of the last sample (meaningless when empty).
    pub fn max_t(&self) -> Timestamp {
        self.last_t
    }

    /// Whether the next sample at `t` must go to a new chunk.
    pub fn is_full_for(&self, t: Timestamp) -> bool {
        self.count as usize >= MAX_SAMPLES_PER_CHUNK
            || (self.count > 0 && t.wrapping_sub(self.min_t) > MAX_CHUNK_SPAN_MS)
    }

    /// The encoded chunk, header included.
    pub fn bytes(&self) -> &[u8] {
        &self.bits.bytes
    }

    /// Heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.bits.bytes.capacity()
    }

    /// The decoder state half-way through the chunk, once it has that many samples.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        self.resume_point
    }

    /// Consumes the encoder, returning the chunk bytes with spare capacity freed.
    pub fn into_bytes(self) -> Box<[u8]> {
        self.bits.bytes.into_boxed_slice()
    }

    /// Appends one sample. The caller keeps timestamps increasing and respects
    /// [`ChunkEncoder::is_full_for`]; the codec itself accepts any sequence of up
    /// to `u16::MAX` samples.
    pub fn append(&mut self, t: Timestamp, v: f64) {
        let v = v.to_bits();
        match self.count {
            0 => {
                self.bits.write_varint(t);
                self.bits.write_bits(v, 64);
                self.min_t = t;
            }
            1 => {
                let delta = t.wrapping_sub(self.last_t);
                self.bits.write_varint(delta);
                self.write_value(v);
                self.last_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.last_t);
                let dod = delta.wrapping_sub(self.last_delta);
                self.write_dod(dod);
                self.write_value(v);
                self.last_delta = delta;
            }
        }
        self.last_t = t;
        self.last_v = v;
        self.count = self.count.wrapping_add(1);
        self.bits.bytes[..HEADER_LEN].copy_from_slice(&self.count.to_be_bytes());
        if self.count == RESUME_POINT_AT {
            let (leading, trailing) = match self.leading {
                // No window written yet: what the decoder starts with.
                u8::MAX => (0, 0),
                leading => (leading, self.trailing),
            };
            let bits = (self.bits.bytes.len() - HEADER_LEN) * 8 - self.bits.free as usize;
            self.resume_point = Some(ResumePoint {
                t,
                delta: self.last_delta,
                v,
                bit_pos: bits as u32,
                decoded: self.count,
                leading,
                trailing,
            });
        }
    }

    fn write_dod(&mut self, dod: i64) {
        let fits = |bits: u32| {
            let half = 1i64 << (bits - 1);
            (-half..half).contains(&dod)
        };
        let w = &mut self.bits;
        if dod == 0 {
            w.write_bit(false);
        } else if fits(7) {
            w.write_bits(0b10, 2);
            w.write_bits(dod as u64 & 0x7f, 7);
        } else if fits(14) {
            w.write_bits(0b110, 3);
            w.write_bits(dod as u64 & 0x3fff, 14);
        } else if fits(20) {
            w.write_bits(0b1110, 4);
            w.write_bits(dod as u64 & 0xf_ffff, 20);
        } else {
            w.write_bits(0b1111, 4);
            w.write_bits(dod as u64, 64);
        }
    }

    fn write_value(&mut self, v: u64) {
        let xor = v ^ self.last_v;
        if xor == 0 {
            self.bits.write_bit(false);
            return;
        }
        self.bits.write_bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != u8::MAX && leading >= self.leading && trailing >= self.trailing {
            // Fits in the previous window: reuse it.
            self.bits.write_bit(false);
            let sig = 64 - self.leading - self.trailing;
            self.bits.write_bits(xor >> self.trailing, sig);
        } else {
            self.bits.write_bit(true);
            let sig = 64 - leading - trailing;
            self.bits.write_bits(leading as u64, 5);
            // 64 significant bits is stored as 0: it cannot otherwise occur.
            self.bits.write_bits((sig & 63) as u64, 6);
            self.bits.write_bits(xor >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }
}

/// The number of samples a chunk says it holds (0 when it has no header).
pub fn sample_count(bytes: &[u8]) -> usize {
    match bytes {
        [a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
        _ => 0,
    }
}

/// Decodes a whole chunk.
pub fn decode(bytes: &[u8]) -> Result<Vec<Sample>, ChunkError> {
    let iter = ChunkIter::new(bytes)?;
    let mut out = Vec::with_capacity(iter.expected);
    for sample in iter {
        out.push(sample?);
    }
    Ok(out)
}

/// The resume point of a stored chunk (its encoder records the same one);
/// `None` for a chunk with fewer samples or that does not decode.
pub fn resume_point_of(bytes: &[u8]) -> Option<ResumePoint> {
    let mut iter = ChunkIter::new(bytes).ok()?;
    for _ in 0..RESUME_POINT_AT {
        iter.next()?.ok()?;
    }
    Some(ResumePoint {
        t: iter.t,
        delta: iter.delta,
        v: iter.v,
        bit_pos: u32::try_from(iter.reader.pos).ok()?,
        decoded: RESUME_POINT_AT,
        leading: iter.leading,
        trailing: iter.trailing,
    })
}

/// Iterates over a chunk's samples; yields an error (once) on truncated bytes.
pub struct ChunkIter<'a> {
    reader: BitReader<'a>,
    expected: usize,
    decoded: usize,
    t: Timestamp,
    delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    failed: bool,
}

impl<'a> ChunkIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<ChunkIter<'a>, ChunkError> {
        if bytes.len() < HEADER_LEN {
            return Err(ChunkError::MissingHeader);
        }
        Ok(ChunkIter {
            reader: BitReader {
                bytes: &bytes[HEADER_LEN..],
                pos: 0,
            },
            expected: sample_count(bytes),
            decoded: 0,
            t: 0,
            delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            failed: false,
        })
    }

    /// Iterates over the samples after `resume_point` (taken from this chunk's
    /// encoder); from the start when the point does not fit the bytes.
    pub fn resume(
        bytes: &'a [u8],
        resume_point: &ResumePoint,
    ) -> Result<ChunkIter<'a>, ChunkError> {
        let mut iter = ChunkIter::new(bytes)?;
        let bit_pos = resume_point.bit_pos as usize;
        if bit_pos > iter.reader.bytes.len() * 8 || resume_point.decoded as usize > iter.expected {
            return Ok(iter);
        }
        iter.reader.pos = bit_pos;
        iter.decoded = resume_point.decoded as usize;
        iter.t = resume_point.t;
        iter.delta = resume_point.delta;
        iter.v = resume_point.v;
        iter.leading = resume_point.leading;
        iter.trailing = resume_point.trailing;
        Ok(iter)
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, ChunkError> {
        let truncated = ChunkError::Truncated {
            decoded: self.decoded,
            expected: self.expected,
        };
        match self.decoded {
            0 => {
                self.t = self.reader.read_varint()?.ok_or(truncated.clone())?;
                self.v = self.reader.read_bits(64).ok_or(truncated)?;
            }
            1 => {
                self.delta = self.reader.read_varint()?.ok_or(truncated.clone())?;
                self.t = self.t.wrapping_add(self.delta);
                self.read_value().ok_or(truncated)?;
            }
            _ => {
                let dod = self.read_dod().ok_or(truncated.clone())?;
                self.delta = self.delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.delta);
                self.read_value().ok_or(truncated)?;
            }
        }
        self.decoded += 1;
        Ok(Some(Sample {
            t: self.t,
            v: f64::from_bits(self.v),
        }))
    }

    fn read_dod(&mut self) -> Option<i64> {
        let r = &mut self.reader;
        // The prefix: up to four 1 bits, ended by a 0 unless all four are 1.
        let ones = (!r.peek()).leading_zeros().min(4);
        r.skip(if ones == 4 { 4 } else { ones as usize + 1 })?;
        let bits: u8 = match ones {
            0 => return Some(0),
            1 => 7,
            2 => 14,
            3 => 20,
            _ => 64,
        };
        let raw = r.read_bits(bits)?;
        if bits == 64 {
            return Some(raw as i64);
        }
        // Sign-extend from `bits` bits.
        let shift = 64 - bits as u32;
        Some(((raw << shift) as i64) >> shift)
    }

    fn read_value(&mut self) -> Option<()> {
        let r = &mut self.reader;
        let head = r.peek();
        if head >> 63 == 0 {
            // Same value as before.
            return r.skip(1);
        }
        if (head >> 62) & 1 == 1 {
            // A new window: 5 bits of leading zeros, 6 of significant bits.
            r.skip(13)?;
            self.leading = ((head >> 57) & 0x1f) as u8;
            let sig = match ((head >> 51) & 0x3f) as u8 {
                0 => 64,
                n => n,
            };
            // A corrupt window could claim more than 64 bits: clamp, never overflow.
            self.trailing = 64u8.saturating_sub(self.leading.saturating_add(sig));
        } else {
            r.skip(2)?;
        }
        let sig = 64u8.saturating_sub(self.leading + self.trailing);
        let bits = r.read_bits(sig)?;
        let xor = if self.trailing >= 64 {
            0
        } else {
            bits << self.trailing
        };
        self.v ^= xor;
        Some(())
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<Sample, ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.decoded >= self.expected {
            return None;
        }
        match self.next_sample() {
            Ok(sample) => sample.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{stale_nan, STALE_NAN_BITS};
    use proptest::prelude::*;

    fn round_trip(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        let mut enc = ChunkEncoder::new();
        for &(t, v) in samples {
            enc.append(t, v);
        }
        assert_eq!(sample_count(enc.bytes()), samples.len());
        decode(enc.bytes())
            .expect("own chunk decodes")
            .into_iter()
            .map(|s| (s.t, s.v.to_bits()))
            .collect()
    }

    fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
        samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn special_values_round_trip_bit_for_bit() {
        let samples = [
            (1_000, 1.0),
            (2_000, f64::NAN),
            (3_000, stale_nan()),
            (4_000, f64::INFINITY),
            (5_000, f64::NEG_INFINITY),
            (6_000, -0.0),
            (7_000, 0.0),
            (8_000, f64::MAX),
            (9_000, f64::MIN_POSITIVE),
            (10_000, f64::from_bits(0x7ff8_dead_beef_0001)),
            (11_000, stale_nan()),
        ];
        let out = round_trip(&samples);
        assert_eq!(out, bits(&samples));
        assert_eq!(out[2].1, STALE_NAN_BITS);
        assert_eq!(out[10].1, STALE_NAN_BITS);
    }

    #[test]
    fn negative_huge_and_irregular_deltas_round_trip() {
        let samples = [
            (i64::MIN, 1.0),
            (i64::MAX, 2.0),
            (-5, 3.0),
            (-5, 3.0),
            (1_700_000_000_000, 4.0),
            (1_700_000_000_015, 4.0),
            (1_700_000_000_030, 4.5),
            (1_700_000_015_031, 5.0),
            (1_700_000_015_031, 5.0),
            (1_700_100_000_000, 6.0),
            (0, -1e300),
        ];
        assert_eq!(round_trip(&samples), bits(&samples));
    }

    #[test]
    fn regular_scrapes_compress_well() {
        let mut enc = ChunkEncoder::new();
        let mut v = 1000.0;
        for i in 0..120 {
            v += 15.0;
            enc.append(1_700_000_000_000 + i * 15_000, v);
        }
        // Constant intervals and small integer steps: well under 3 bytes a sample.
        assert!(enc.bytes().len() < 120 * 3, "{} bytes", enc.bytes().len());
        assert!(enc.is_full_for(1_800_000_000_000));
    }

    #[test]
    fn span_limit_cuts_chunks() {
        let mut enc = ChunkEncoder::new();
        enc.append(0, 1.0);
        assert!(!enc.is_full_for(MAX_CHUNK_SPAN_MS));
        assert!(enc.is_full_for(MAX_CHUNK_SPAN_MS + 1));
    }

    #[test]
    fn resumed_encoder_continues_identically() {
        let mut enc = ChunkEncoder::new();
        for i in 0..50 {
            enc.append(i * 1000 + (i % 3), i as f64 * 0.1);
        }
        let mut resumed = ChunkEncoder::from_bytes(enc.bytes()).expect("decodes");
        for i in 50..100 {
            enc.append(i * 1000, i as f64);
            resumed.append(i * 1000, i as f64);
        }
        assert_eq!(enc.bytes(), resumed.bytes());
        assert_eq!(resumed.min_t(), 0);
        assert_eq!(resumed.max_t(), 99_000);
    }

    #[test]
    fn resuming_at_the_resume_point_yields_the_rest_of_the_chunk() {
        let mut enc = ChunkEncoder::new();
        let mut v = 1.0f64;
        for i in 0..MAX_SAMPLES_PER_CHUNK as i64 {
            assert_eq!(enc.resume_point().is_some(), i >= RESUME_POINT_AT as i64);
            // Irregular times and values: every dod and XOR-window case.
            v = if i % 7 == 0 { v } else { v * 1.37 + i as f64 };
            enc.append(i * 15_000 + (i * i) % 11, v);
        }
        let all = decode(enc.bytes()).expect("decodes");
        let resume_point = enc.resume_point().expect("recorded half-way");
        assert_eq!(resume_point_of(enc.bytes()), Some(resume_point));
        assert_eq!(resume_point.t(), all[RESUME_POINT_AT as usize - 1].t);
        let rest: Vec<Sample> = ChunkIter::resume(enc.bytes(), &resume_point)
            .expect("header")
            .collect::<Result<_, _>>()
            .expect("decodes");
        assert_eq!(rest, all[RESUME_POINT_AT as usize..]);
    }

    #[test]
    fn truncated_and_empty_chunks_are_errors_not_panics() {
        assert_eq!(decode(&[]), Err(ChunkError::MissingHeader));
        let mut enc = ChunkEncoder::new();
        for i in 0..10 {
            enc.append(i * 1000, i as f64 * 1.5);
        }
        let bytes = enc.bytes();
        let err = decode(&bytes[..bytes.len() - 3]).expect_err("truncated");
        assert!(matches!(err, ChunkError::Truncated { expected: 10, .. }));
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(
            samples in proptest::collection::vec((any::<i64>(), any::<u64>()), 0..200)
        ) {
            let samples: Vec<(i64, f64)> =
                samples.into_iter().map(|(t, v)| (t, f64::from_bits(v))).collect();
            prop_assert_eq!(round_trip(&samples), bits(&samples));
            // Resuming at the resume point yields exactly the samples after it.
            let mut enc = ChunkEncoder::new();
            for &(t, v) in &samples {
                enc.append(t, v);
            }
            prop_assert_eq!(resume_point_of(enc.bytes()), enc.resume_point());
            if let Some(resume_point) = enc.resume_point() {
                let rest: Vec<(i64, u64)> = ChunkIter::resume(enc.bytes(), &resume_point)
                    .expect("header")
                    .map(|s| s.map(|s| (s.t, s.v.to_bits())))
                    .collect::<Result<_, _>>()
                    .expect("decodes");
                prop_assert_eq!(rest, bits(&samples)[RESUME_POINT_AT as usize..].to_vec());
            }
        }

        #[test]
        fn scrape_like_sequences_round_trip(
            start in 0i64..2_000_000_000_000,
            jitter in proptest::collection::vec(-100i64..100, 1..120),
            values in proptest::collection::vec(-1e6f64..1e6, 120),
        ) {
            let samples: Vec<(i64, f64)> = jitter
                .iter()
                .enumerate()
                .map(|(i, j)| (start + i as i64 * 15_000 + j, values[i]))
                .collect();
            prop_assert_eq!(round_trip(&samples), bits(&samples));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
            let _ = ChunkEncoder::from_bytes(&bytes);
        }
    }
}
