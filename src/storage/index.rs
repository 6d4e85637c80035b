//! Series identity and the inverted index: label set → series ref, and label
//! name → value → sorted postings (series refs), with label strings interned.
//!
//! This module owns which series exist and how matchers select them. It holds
//! no samples and does no I/O; the head keeps it under its lock.
//!
//! Matchers are answered from postings, never by scanning every series when a
//! matcher that cannot match the empty string exists (Prometheus's
//! `PostingsForMatchers`): matchers that need the label present are unions of
//! the postings of their matching values, intersected; matchers that also
//! accept the empty string (absent label) subtract the series whose value they
//! reject.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::model::{Label, Labels, Matcher};

/// The identity of a series inside the store: assigned once, increasing,
/// never reused within one data directory.
pub type SeriesRef = u64;

/// A hasher for keys that are already integers (refs, label-set hashes): one
/// multiply instead of SipHash.
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }
}

/// The hash the index files a label set under: a word-at-a-time multiply
/// hash over names and values, several times faster than `Labels::hash64`'s
/// SipHash on the append path. Collisions are resolved by comparing labels.
pub fn label_hash(labels: &Labels) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = labels.len() as u64;
    let mut mix = |bytes: &[u8]| {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("chunks_exact yields 8 bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = words.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        // The length separates "ab"+"c" from "a"+"bc".
        h = (h.rotate_left(5) ^ u64::from_le_bytes(tail) ^ ((bytes.len() as u64) << 56))
            .wrapping_mul(K);
    };
    for l in labels {
        mix(l.name.as_bytes());
        mix(l.value.as_bytes());
    }
    h ^ (h >> 29)
}

pub type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

type Sym = u32;

/// Reference-counted string interning: each distinct label name or value is
/// stored once, and series hold 4-byte symbols.
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, Sym>,
    strings: Vec<(Arc<str>, u32)>,
    free: Vec<Sym>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            self.strings[id as usize].1 += 1;
            return id;
        }
        let arc: Arc<str> = Arc::from(s);
        let id = match self.free.pop() {
            Some(id) => {
                self.strings[id as usize] = (arc.clone(), 1);
                id
            }
            None => {
                self.strings.push((arc.clone(), 1));
                (self.strings.len() - 1) as Sym
            }
        };
        self.ids.insert(arc, id);
        id
    }

    fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    fn get(&self, id: Sym) -> &str {
        &self.strings[id as usize].0
    }

    fn release(&mut self, id: Sym) {
        let entry = &mut self.strings[id as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            let s = std::mem::replace(&mut entry.0, Arc::from(""));
            self.ids.remove(&s);
            self.free.push(id);
        }
    }
}

/// The index of every series in the head.
#[derive(Default)]
pub struct Index {
    interner: Interner,
    labels: IntMap<SeriesRef, Box<[(Sym, Sym)]>>,
    /// Label-set hash → ref; a second series with the same hash goes to `collisions`.
    by_hash: IntMap<u64, SeriesRef>,
    collisions: IntMap<u64, Vec<SeriesRef>>,
    /// name → value → sorted refs.
    postings: IntMap<Sym, IntMap<Sym, Vec<SeriesRef>>>,
    all: Vec<SeriesRef>,
}

impl Index {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The ref of `labels`, if the series exists.
    /// `hash` is [`label_hash`] of `labels`, computed by the caller (outside locks).
    pub fn lookup(&self, labels: &Labels, hash: u64) -> Option<SeriesRef> {
        let primary = *self.by_hash.get(&hash)?;
        if self.same(primary, labels) {
            return Some(primary);
        }
        self.collisions
            .get(&hash)?
            .iter()
            .copied()
            .find(|&r| self.same(r, labels))
    }

    fn same(&self, series_ref: SeriesRef, labels: &Labels) -> bool {
        let Some(syms) = self.labels.get(&series_ref) else {
            return false;
        };
        syms.len() == labels.len()
            && syms.iter().zip(labels.iter()).all(|(&(n, v), l)| {
                self.interner.get(n) == l.name && self.interner.get(v) == l.value
            })
    }

    /// Adds a series under `series_ref`, which must be new and greater than
    /// every ref added before (postings stay sorted by pushing).
    pub fn insert(&mut self, series_ref: SeriesRef, labels: &Labels, hash: u64) {
        debug_assert!(!self.labels.contains_key(&series_ref));
        let syms: Box<[(Sym, Sym)]> = labels
            .iter()
            .map(|l| {
                (
                    self.interner.intern(&l.name),
                    self.interner.intern(&l.value),
                )
            })
            .collect();
        for &(n, v) in syms.iter() {
            insert_sorted(
                self.postings.entry(n).or_default().entry(v).or_default(),
                series_ref,
            );
        }
        insert_sorted(&mut self.all, series_ref);
        self.labels.insert(series_ref, syms);
        if let Some(&existing) = self.by_hash.get(&hash) {
            if existing != series_ref {
                self.collisions.entry(hash).or_default().push(series_ref);
            }
        } else {
            self.by_hash.insert(hash, series_ref);
        }
    }

    /// Removes a series (retention, or a rolled-back commit).
    pub fn remove(&mut self, series_ref: SeriesRef) {
        let Some(labels) = self.labels_of(series_ref) else {
            return;
        };
        let Some(syms) = self.labels.remove(&series_ref) else {
            return;
        };
        for &(n, v) in syms.iter() {
            if let Some(values) = self.postings.get_mut(&n) {
                if let Some(list) = values.get_mut(&v) {
                    if let Ok(i) = list.binary_search(&series_ref) {
                        list.remove(i);
                    }
                    if list.is_empty() {
                        values.remove(&v);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(&n);
                }
            }
            self.interner.release(n);
            self.interner.release(v);
        }
        if let Ok(i) = self.all.binary_search(&series_ref) {
            self.all.remove(i);
        }
        let hash = label_hash(&labels);
        if self.by_hash.get(&hash) == Some(&series_ref) {
            self.by_hash.remove(&hash);
            if let Some(list) = self.collisions.get_mut(&hash) {
                if let Some(promoted) = list.pop() {
                    self.by_hash.insert(hash, promoted);
                }
                if list.is_empty() {
                    self.collisions.remove(&hash);
                }
            }
        } else if let Some(list) = self.collisions.get_mut(&hash) {
            list.retain(|&r| r != series_ref);
            if list.is_empty() {
                self.collisions.remove(&hash);
            }
        }
    }

    pub fn labels_of(&self, series_ref: SeriesRef) -> Option<Labels> {
        let syms = self.labels.get(&series_ref)?;
        Some(Labels::from_sorted(
            syms.iter()
                .map(|&(n, v)| Label::new(self.interner.get(n), self.interner.get(v)))
                .collect(),
        ))
    }

    /// Every label name with the sorted postings of each of its values, in
    /// no particular order.
    pub fn postings(
        &self,
    ) -> impl Iterator<Item = (&str, impl Iterator<Item = &[SeriesRef]> + '_)> + '_ {
        self.postings.iter().map(|(&n, values)| {
            (
                self.interner.get(n),
                values.values().map(|list| list.as_slice()),
            )
        })
    }

    /// The values of label `name` with their sorted postings, in no
    /// particular order.
    pub fn values_of<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = (&'a str, &'a [SeriesRef])> + 'a {
        self.interner
            .lookup(name)
            .and_then(|n| self.postings.get(&n))
            .into_iter()
            .flat_map(move |values| {
                values
                    .iter()
                    .map(move |(&v, list)| (self.interner.get(v), list.as_slice()))
            })
    }

    /// Union of the postings of the values of `name` that `accept` says yes to.
    fn union_where(&self, name: &str, accept: impl Fn(&str) -> bool) -> Vec<SeriesRef> {
        let Some(values) = self
            .interner
            .lookup(name)
            .and_then(|n| self.postings.get(&n))
        else {
            return Vec::new();
        };
        let lists: Vec<&[SeriesRef]> = values
            .iter()
            .filter(|(&v, _)| accept(self.interner.get(v)))
            .map(|(_, list)| list.as_slice())
            .collect();
        merge(&lists)
    }

    /// Postings of series whose `name` label is present and accepted by `m`.
    fn present_matching(&self, m: &Matcher) -> Vec<SeriesRef> {
        if m.op == crate::model::MatchOp::Equal {
            return self
                .interner
                .lookup(&m.name)
                .zip(self.interner.lookup(&m.value))
                .and_then(|(n, v)| self.postings.get(&n)?.get(&v))
                .cloned()
                .unwrap_or_default();
        }
        self.union_where(&m.name, |v| m.matches(v))
    }

    /// Sorted refs of the series matching every matcher (all series when empty).
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let (need_present, accept_absent): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        let mut result: Option<Vec<SeriesRef>> = None;
        for m in need_present {
            let list = self.present_matching(m);
            result = Some(match result {
                None => list,
                Some(acc) => intersect(&acc, &list),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for m in accept_absent {
            // The matcher accepts absence: drop only series whose value it rejects.
            let rejected = self.union_where(&m.name, |v| !m.matches(v));
            if !rejected.is_empty() {
                result = subtract(&result, &rejected);
            }
        }
        result
    }
}

fn insert_sorted(list: &mut Vec<SeriesRef>, r: SeriesRef) {
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(i) = list.binary_search(&r) {
                list.insert(i, r);
            }
        }
        _ => list.push(r),
    }
}

/// Sorted union of sorted lists.
fn merge(lists: &[&[SeriesRef]]) -> Vec<SeriesRef> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<SeriesRef> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut j = 0;
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MatchOp;

    fn index() -> Index {
        let mut idx = Index::default();
        let sets = [
            vec![("__name__", "up"), ("job", "node"), ("instance", "a")],
            vec![("__name__", "up"), ("job", "node"), ("instance", "b")],
            vec![("__name__", "up"), ("job", "prom"), ("instance", "a")],
            vec![("__name__", "cpu"), ("instance", "a"), ("mode", "idle")],
            vec![("__name__", "cpu"), ("instance", "a"), ("mode", "user")],
        ];
        for (i, set) in sets.into_iter().enumerate() {
            let l = Labels::new(set);
            idx.insert(i as SeriesRef + 1, &l, label_hash(&l));
        }
        idx
    }

    fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
        Matcher::new(op, name, value).expect("valid regex")
    }

    #[test]
    fn each_matcher_type_selects_from_postings() {
        let idx = index();
        assert_eq!(idx.select(&[]), vec![1, 2, 3, 4, 5]);
        assert_eq!(idx.select(&[m(MatchOp::Equal, "job", "node")]), vec![1, 2]);
        assert_eq!(
            idx.select(&[
                m(MatchOp::Equal, "__name__", "up"),
                m(MatchOp::NotEqual, "job", "node")
            ]),
            vec![3]
        );
        assert_eq!(
            idx.select(&[m(MatchOp::Regex, "job", "no.*|prom")]),
            vec![1, 2, 3]
        );
        assert_eq!(
            idx.select(&[
                m(MatchOp::Equal, "instance", "a"),
                m(MatchOp::NotRegex, "mode", "idle")
            ]),
            vec![1, 3, 5]
        );
        assert_eq!(
            idx.select(&[m(MatchOp::Equal, "job", "nope")]),
            Vec::<u64>::new()
        );
        assert_eq!(
            idx.select(&[m(MatchOp::Equal, "nolabel", "x")]),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn empty_string_matching_means_label_absent() {
        let idx = index();
        // job="" selects the series without a job label.
        assert_eq!(idx.select(&[m(MatchOp::Equal, "job", "")]), vec![4, 5]);
        // job!="" selects the series with one.
        assert_eq!(
            idx.select(&[m(MatchOp::NotEqual, "job", "")]),
            vec![1, 2, 3]
        );
        // mode=~"idle|" matches idle and absent.
        assert_eq!(
            idx.select(&[m(MatchOp::Regex, "mode", "idle|")]),
            vec![1, 2, 3, 4]
        );
        // x=~".*" matches everything, x=~".+" nothing (no series has x).
        assert_eq!(
            idx.select(&[m(MatchOp::Regex, "x", ".*")]),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            idx.select(&[m(MatchOp::Regex, "x", ".+")]),
            Vec::<u64>::new()
        );
        // x!="" on a name no series has: nothing.
        assert_eq!(
            idx.select(&[m(MatchOp::NotEqual, "x", "")]),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn lookup_remove_and_interning() {
        let mut idx = index();
        let l2 = Labels::new([("__name__", "up"), ("job", "node"), ("instance", "b")]);
        assert_eq!(idx.lookup(&l2, label_hash(&l2)), Some(2));
        assert_eq!(idx.labels_of(2), Some(l2.clone()));
        idx.remove(2);
        assert_eq!(idx.lookup(&l2, label_hash(&l2)), None);
        assert_eq!(idx.select(&[m(MatchOp::Equal, "job", "node")]), vec![1]);
        assert_eq!(
            idx.select(&[m(MatchOp::Equal, "instance", "b")]),
            Vec::<u64>::new()
        );
        // "b" was only used by series 2: released from the interner.
        assert_eq!(idx.interner.lookup("b"), None);
        assert_eq!(idx.len(), 4);
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_labels() {
        let mut idx = Index::default();
        let a = Labels::new([("__name__", "a")]);
        let b = Labels::new([("__name__", "b")]);
        // Force both under one hash.
        idx.insert(1, &a, 7);
        idx.insert(2, &b, 7);
        assert_eq!(idx.lookup(&a, 7), Some(1));
        assert_eq!(idx.lookup(&b, 7), Some(2));
        assert_ne!(label_hash(&a), label_hash(&b));
        let ab = Labels::new([("ab", "c")]);
        let a_bc = Labels::new([("a", "bc")]);
        assert_ne!(label_hash(&ab), label_hash(&a_bc));
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(subtract(&[1, 3, 5, 7], &[3, 4, 5]), vec![1, 7]);
        assert_eq!(merge(&[&[1, 5], &[2, 5, 9]]), vec![1, 2, 5, 9]);
    }
}
