//! Value types of the config that users write in Prometheus's syntax:
//! durations (`1h30m`), sizes (`512MB`), anchored regexes and secrets.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as Prometheus writes it: `[0-9]+(ms|s|m|h|d|w|y)` units
/// in decreasing order, e.g. `15s`, `1h30m`, `2d`. `0` alone is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub const fn from_secs(s: u64) -> PromDuration {
        PromDuration(Duration::from_secs(s))
    }
    pub fn as_duration(&self) -> Duration {
        self.0
    }
    pub fn as_millis(&self) -> i64 {
        self.0.as_millis() as i64
    }
}

/// Parses Prometheus's duration syntax.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    // Units in the order Prometheus requires them, with their length in ms.
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("m", 60 * 1000),
        ("s", 1000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration string: {s:?} (expected e.g. 15s, 5m, 1h30m)");
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = None::<usize>;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let unit = if rest.starts_with("ms") {
            6
        } else {
            UNITS
                .iter()
                .position(|(u, _)| *u != "ms" && rest.starts_with(u))
                .ok_or_else(bad)?
        };
        if last_unit.is_some_and(|l| l >= unit) {
            return Err(bad());
        }
        last_unit = Some(unit);
        rest = &rest[UNITS[unit].0.len()..];
        total = n
            .checked_mul(UNITS[unit].1)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
    }
    Ok(Duration::from_millis(total))
}

/// Formats a duration the way Prometheus prints one (`1h30m`, `15s`, `0s`).
/// Years and weeks are used only when they divide the whole duration, so 15
/// days print as `15d` (not `2w1d`), as Prometheus 2.42 shows its retention.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, len, exact) in [
        ("y", 365 * 24 * 3600 * 1000u64, true),
        ("w", 7 * 24 * 3600 * 1000, true),
        ("d", 24 * 3600 * 1000, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && !ms.is_multiple_of(len) {
            continue;
        }
        if ms >= len {
            out.push_str(&format!("{}{}", ms / len, unit));
            ms %= len;
        }
    }
    out
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Deserializes a string through `parse`. The parse runs inside the
/// deserializer's call (in a visitor), so a format that tracks positions can
/// attribute a parse error to the value rather than to its parent.
pub(crate) fn deserialize_parsed<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct ParseVisitor<F> {
        expecting: &'static str,
        parse: F,
    }
    impl<T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'_> for ParseVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(ParseVisitor { expecting, parse })
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a duration such as 15s or 1h30m", |s| {
            parse_duration(s).map(PromDuration)
        })
    }
}

/// A byte size in Prometheus's units syntax: `0`, `512B`, `10KB`, `64MB`, `1GB`, `1TB`
/// (powers of 1024, as Prometheus's `units.Base2Bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    let bad = || format!("not a valid size: {s:?} (expected e.g. 512MB, 10GB)");
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = s[..digits].parse().map_err(|_| bad())?;
    let mult: u64 = match &s[digits..] {
        "" | "B" => 1,
        "KB" | "KiB" | "K" => 1 << 10,
        "MB" | "MiB" | "M" => 1 << 20,
        "GB" | "GiB" | "G" => 1 << 30,
        "TB" | "TiB" | "T" => 1 << 40,
        "PB" | "PiB" | "P" => 1 << 50,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size out of range: {s:?}"))
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl serde::de::Visitor<'_> for SizeVisitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 512MB or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_size(s).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

/// A relabeling regex: anchored at both ends as Prometheus does (`^(?:regex)$`,
/// so `.` does not match a newline, as in Go); default `(.*)`.
#[derive(Clone)]
pub struct RelabelRegex {
    pub source: String,
    pub regex: regex::Regex,
}

impl RelabelRegex {
    pub fn new(source: &str) -> Result<RelabelRegex, regex::Error> {
        Ok(RelabelRegex {
            source: source.to_string(),
            regex: regex::Regex::new(&format!("^(?:{source})$"))?,
        })
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new("(.*)").expect("the default regex compiles")
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelabelRegex({:?})", self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a regular expression", |s| {
            RelabelRegex::new(s).map_err(|e| describe_regex_error(s, &e))
        })
    }
}

/// One line saying what is wrong with a regex and where, e.g.
/// ``invalid regex `(foo`: unclosed group at position 1`` (1-based character
/// position in the regex as written). The `regex` crate's own text spans
/// several lines, which would break the one-error-per-line output.
pub fn describe_regex_error(source: &str, err: &regex::Error) -> String {
    let located = match regex_syntax::Parser::new().parse(source) {
        Err(regex_syntax::Error::Parse(e)) => Some((e.kind().to_string(), e.span().start)),
        Err(regex_syntax::Error::Translate(e)) => Some((e.kind().to_string(), e.span().start)),
        _ => None,
    };
    match located {
        Some((what, at)) if at.line == 1 => {
            format!("invalid regex `{source}`: {what} at position {}", at.column)
        }
        Some((what, at)) => format!(
            "invalid regex `{source}`: {what} at line {} position {}",
            at.line, at.column
        ),
        // Not a syntax error (e.g. the compiled regex is too big).
        None => format!(
            "invalid regex `{source}`: {}",
            err.to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// A secret string: never printed by `Debug` or in logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse_duration("1m500ms").unwrap(),
            Duration::from_millis(60_500)
        );
        assert_eq!(
            parse_duration("2d").unwrap(),
            Duration::from_secs(2 * 86400)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "15", "s", "1.5s", "30m1h", "1s1s", "-1s", "1x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations_format_like_prometheus() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(15 * 86400)), "15d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86400)), "2w");
        assert_eq!(format_duration(Duration::from_secs(365 * 86400)), "1y");
        assert_eq!(format_duration(Duration::from_secs(366 * 86400)), "366d");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn sizes_parse_in_base_two() {
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("10XB").is_err());
    }

    #[test]
    fn relabel_regex_is_anchored() {
        let r = RelabelRegex::new("a|b").unwrap();
        assert!(r.regex.is_match("a"));
        assert!(!r.regex.is_match("ab"));
        // Go's `.` does not match a newline, and Prometheus doesn't set `s`.
        assert!(!RelabelRegex::new("a.b").unwrap().regex.is_match("a\nb"));
    }

    #[test]
    fn regex_errors_fit_on_one_line() {
        let err = RelabelRegex::new("(foo").unwrap_err();
        assert_eq!(
            describe_regex_error("(foo", &err),
            "invalid regex `(foo`: unclosed group at position 1"
        );
        let err = RelabelRegex::new("a{2,1}").unwrap_err();
        assert!(!describe_regex_error("a{2,1}", &err).contains('\n'));
    }
}
