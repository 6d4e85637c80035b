//! Types every part of bellwether shares: label sets, samples, matchers.
//!
//! This module owns the vocabulary only. It must not know about storage layout,
//! HTTP or configuration; anything here is cheap to construct in a test.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// The name of the label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// The bit pattern Prometheus writes as a staleness marker: a NaN that no
/// arithmetic produces. It must survive storage bit for bit, so compare with
/// [`is_stale_nan`], never with `==`.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is the staleness marker (and not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Milliseconds since the Unix epoch, the timestamp unit of every sample.
pub type Timestamp = i64;

/// The current wall-clock time in milliseconds since the epoch.
pub fn now_millis() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since.as_millis() as Timestamp
}

/// The `(year, month, day)` of a day count since 1970-01-01 (Howard
/// Hinnant's algorithm), for the API's time formatting and PromQL's date functions.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in `month` (1–12) of `year`, Gregorian leap years.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One label: a name and a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, kept sorted by name with unique names and no empty values
/// (an empty value means "label absent", as in Prometheus).
///
/// The labels sit behind an `Arc`: a label set is cloned on every hot path
/// (scrape caches, staleness bookkeeping, appends, query results), and a clone
/// must cost a reference count, not one allocation per label. Mutation copies
/// on write.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Labels(Arc<Vec<Label>>);

impl Labels {
    pub fn empty() -> Labels {
        Labels::default()
    }

    /// Builds a label set from any pairs: sorts them, drops empty values and
    /// keeps the last value of a repeated name. Use [`Labels::from_sorted`]
    /// when the input is already known to be canonical.
    pub fn new<I, N, V>(pairs: I) -> Labels
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut labels: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        // Stable sort keeps insertion order among equal names; the dedup below keeps the last.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(labels.len());
        for l in labels {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(Arc::new(out))
    }

    /// Wraps labels that are already sorted by name, unique and non-empty.
    pub fn from_sorted(labels: Vec<Label>) -> Labels {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(Arc::new(labels))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                Arc::make_mut(&mut self.0).remove(i);
            }
            Ok(i) if self.0[i].value == value => {}
            Ok(i) => Arc::make_mut(&mut self.0)[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => Arc::make_mut(&mut self.0).insert(i, Label::new(name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// The labels as an owned vector (copied only if the set is shared).
    pub fn into_vec(self) -> Vec<Label> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }

    /// A 64-bit hash of the label set, stable within one process run.
    pub fn hash64(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
}

impl Ord for Labels {
    /// Prometheus's order for label sets: label by label, name then value;
    /// a prefix sorts first.
    fn cmp(&self, other: &Self) -> Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let o = a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value));
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    /// `name{a="1", b="2"}` like Prometheus prints a series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name().unwrap_or("");
        f.write_str(name)?;
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One sample: a timestamp in milliseconds and a float value.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub t: Timestamp,
    pub v: f64,
}

impl PartialEq for Sample {
    /// Bitwise on the value, so NaNs (and staleness markers) compare equal to themselves.
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

/// Whether `name` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// How a [`Matcher`] compares a label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// A label matcher as in a PromQL selector. A missing label matches as the
/// empty string, as in Prometheus.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex for `Regex`/`NotRegex`.
    regex: Option<regex::Regex>,
}

impl Matcher {
    /// Builds a matcher; for regex matchers the pattern is anchored at both
    /// ends as Prometheus does (`^(?s:pattern)$`).
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<Matcher, regex::Error> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(regex::Regex::new(&format!("^(?s:{value})$"))?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher::new(MatchOp::Equal, name, value).expect("equality matchers have no regex")
    }

    /// Whether the matcher accepts `value` (use `""` for an absent label).
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == value,
            MatchOp::NotEqual => self.value != value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts the empty string, i.e. series without the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a label set satisfies this matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_sorted_deduplicated_and_drop_empty_values() {
        let l = Labels::new([("b", "2"), ("a", "1"), ("c", ""), ("a", "3")]);
        let names: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, vec![("a", "3"), ("b", "2")]);
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::new([("a", "1"), ("c", "3")]);
        l.set("b", "2");
        assert_eq!(l.to_string(), r#"{a="1", b="2", c="3"}"#);
        l.remove("a");
        l.set("c", "");
        assert_eq!(l.to_string(), r#"{b="2"}"#);
    }

    #[test]
    fn stale_nan_is_distinct_from_other_nans() {
        assert!(is_stale_nan(stale_nan()));
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn regex_matchers_are_anchored_and_match_empty_for_absent_labels() {
        let m = Matcher::new(MatchOp::Regex, "job", "node|prom").unwrap();
        assert!(m.matches("node"));
        assert!(!m.matches("node_exporter"));
        let absent = Matcher::new(MatchOp::Regex, "x", ".*").unwrap();
        assert!(absent.matches_labels(&Labels::empty()));
    }

    #[test]
    fn label_set_order_is_prometheus_order() {
        let a = Labels::new([("__name__", "a"), ("x", "1")]);
        let b = Labels::new([("__name__", "a"), ("x", "2")]);
        let c = Labels::new([("__name__", "a")]);
        assert!(c < a && a < b);
    }

    #[test]
    fn names_are_validated() {
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a:b"));
        assert!(is_valid_metric_name("a:b_c"));
        assert!(!is_valid_metric_name(""));
    }
}
