//! Byte-level helpers shared by the WAL and the `series` table: LEB128 varints
//! and the label-set encoding. Decoders never panic; they return `None` on
//! truncated or invalid input and leave naming the file to the caller.

use crate::model::{Label, Labels};

pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over untrusted bytes.
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Some(v);
            }
        }
        None
    }

    pub fn varint(&mut self) -> Option<i64> {
        let z = self.uvarint()?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub fn u64_le(&mut self) -> Option<u64> {
        let bytes = self.bytes(8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.uvarint()?).ok()?;
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes).ok().map(str::to_string)
    }

    /// A label set as written by [`put_labels`]; `None` unless it is canonical
    /// (sorted, unique names, non-empty values).
    pub fn labels(&mut self) -> Option<Labels> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        // Every label needs at least two bytes: bound the allocation by the input.
        let mut labels = Vec::with_capacity(n.min(self.buf.len() / 2));
        for _ in 0..n {
            let name = self.string()?;
            let value = self.string()?;
            if value.is_empty() {
                return None;
            }
            if let Some(prev) = labels.last() {
                let prev: &Label = prev;
                if prev.name >= name {
                    return None;
                }
            }
            labels.push(Label { name, value });
        }
        Some(Labels::from_sorted(labels))
    }
}

pub fn put_labels(buf: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(buf, labels.len() as u64);
    for l in labels {
        put_uvarint(buf, l.name.len() as u64);
        buf.extend_from_slice(l.name.as_bytes());
        put_uvarint(buf, l.value.len() as u64);
        buf.extend_from_slice(l.value.as_bytes());
    }
}

pub fn encode_labels(labels: &Labels) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    put_labels(&mut buf, labels);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_labels_round_trip() {
        let mut buf = Vec::new();
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 300] {
            put_varint(&mut buf, v);
        }
        let labels = Labels::new([("__name__", "up"), ("job", "node")]);
        put_labels(&mut buf, &labels);
        let mut d = Decoder::new(&buf);
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 300] {
            assert_eq!(d.varint(), Some(v));
        }
        assert_eq!(d.labels(), Some(labels));
        assert!(d.is_empty());
    }

    #[test]
    fn unsorted_or_empty_labels_are_refused() {
        let mut buf = Vec::new();
        put_uvarint(&mut buf, 2);
        for s in ["b", "1", "a", "2"] {
            put_uvarint(&mut buf, s.len() as u64);
            buf.extend_from_slice(s.as_bytes());
        }
        assert_eq!(Decoder::new(&buf).labels(), None);
        assert_eq!(Decoder::new(&[0xff; 11]).uvarint(), None);
    }
}
