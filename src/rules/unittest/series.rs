//! The series-description notation of promtool's unit tests and of
//! Prometheus's PromQL test scripts: `metric{label="value"} 0+10x5 _ stale`.
//!
//! Two entry points, mirroring the two functions of Prometheus's PromQL parser
//! that promtool calls: [`parse_series_desc`] reads one `input_series` line
//! (a metric and its expanding value notation) and [`parse_metric`] reads the
//! `labels` of an expected sample (a metric alone). [`load_input_series`]
//! builds promtool's whole `load <interval>` block from a test's
//! `input_series` and reads it back line by line, as promtool does, so the
//! odd corners (a later series with the same labels replacing an earlier one,
//! an empty line ending the block) come out the same.
//!
//! The grammar is small and differs from a PromQL selector (only `=`, an empty
//! `{}` is allowed, some keywords are metric names, octal numbers, `x`
//! repetitions), so it is read here by hand rather than through
//! promql-parser's expression grammar; label values are unquoted with
//! promql-parser's Go-compatible `unquote_string`.

use std::fmt;

use crate::model::{stale_nan, Labels, Timestamp};

/// A label set as the parser produced it: sorted by name, duplicates and
/// empty values kept (Prometheus's `labels.New` keeps both, and promtool
/// compares expected labels in that form).
pub type RawLabels = Vec<(String, String)>;

/// The most values one series description may expand to. Prometheus has no
/// limit (it allocates them all); this keeps `1x99999999999` from exhausting
/// memory and is far beyond any test that finishes in reasonable time.
pub const MAX_VALUES_PER_SERIES: u64 = 10_000_000;

/// A syntax error, positioned like Prometheus's: `line:column: parse error: ...`
/// with the column a 1-based byte offset into the parsed text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: parse error: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Keywords of PromQL's lexer (matched case-insensitively). Those accepted as
/// a metric name by the series grammar are marked `true`.
const KEYWORDS: &[(&str, bool)] = &[
    ("and", true),
    ("or", true),
    ("unless", true),
    ("atan2", false),
    ("sum", true),
    ("avg", true),
    ("count", true),
    ("min", true),
    ("max", true),
    ("group", true),
    ("stddev", true),
    ("stdvar", true),
    ("topk", true),
    ("bottomk", true),
    ("count_values", true),
    ("quantile", true),
    ("offset", true),
    ("by", true),
    ("without", true),
    ("on", false),
    ("ignoring", false),
    ("group_left", false),
    ("group_right", false),
    ("bool", false),
    ("start", true),
    ("end", true),
];

fn keyword(word: &str) -> Option<bool> {
    let lower = word.to_ascii_lowercase();
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == lower)
        .map(|(_, metric_ok)| *metric_ok)
}

/// `inf` and `nan` (any case) are numbers to PromQL's lexer.
fn is_special_number(word: &str) -> bool {
    word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan")
}

fn is_alpha(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: u8) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// A token of the value sequence.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Space,
    Add,
    Sub,
    Times,
    Blank,
    Number(String),
    /// An identifier or keyword (only `stale` is valid).
    Word(String),
    Eof,
}

impl Tok {
    /// How Prometheus's parser names the token in "unexpected ..." messages.
    fn describe(&self) -> String {
        match self {
            Tok::Space => "\" \"".to_string(),
            Tok::Add => "\"+\"".to_string(),
            Tok::Sub => "\"-\"".to_string(),
            Tok::Times => "\"x\"".to_string(),
            Tok::Blank => "\"_\"".to_string(),
            Tok::Number(n) => format!("number {n:?}"),
            Tok::Word(w) if keyword(w).is_some() => w.to_ascii_lowercase(),
            Tok::Word(w) => format!("identifier {w:?}"),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

/// Reads series descriptions and metrics; `series_desc` selects the lexer
/// mode promtool's input lines use (values may follow the metric).
struct Parser<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        Parser {
            input,
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: 1,
            column: pos + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn word(&mut self, allow_colon: bool) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| is_alnum(c) || (allow_colon && c == b':'))
        {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// `metric_identifier? label_set?`. Returns the labels; the position is
    /// left after the metric. `series_desc` decides whether a space may follow
    /// the name before the braces (only in a plain metric).
    fn metric(&mut self, series_desc: bool) -> Result<RawLabels, ParseError> {
        self.skip_spaces();
        let mut name = None;
        match self.peek() {
            Some(c) if is_alpha(c) || c == b':' => {
                let start = self.pos;
                let word = self.word(true);
                if is_special_number(word) {
                    return Err(self.error_at(
                        start,
                        format!("unexpected number {word:?}, expected metric name or label set"),
                    ));
                }
                if keyword(word) == Some(false) {
                    return Err(self.error_at(
                        start,
                        format!(
                            "unexpected {}, expected metric name or label set",
                            word.to_ascii_lowercase()
                        ),
                    ));
                }
                name = Some(word.to_string());
                if !series_desc {
                    self.skip_spaces();
                }
            }
            _ => {}
        }
        let mut labels = Vec::new();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            labels = self.label_set()?;
        } else if name.is_none() {
            // An empty metric: valid only when nothing follows.
            if !series_desc {
                self.skip_spaces();
            }
            if let Some(c) = self.peek() {
                return Err(self.error_at(
                    self.pos,
                    format!(
                        "unexpected {:?}, expected metric name or label set",
                        c as char
                    ),
                ));
            }
        }
        if let Some(name) = name {
            labels.retain(|(n, _)| n != "__name__");
            labels.push(("__name__".to_string(), name));
        }
        // Go's labels.New sorts by name (duplicates stay, in no defined order
        // among themselves; a stable sort keeps them as written).
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(labels)
    }

    /// The inside of `{...}`, the opening brace already consumed.
    fn label_set(&mut self) -> Result<RawLabels, ParseError> {
        let mut labels = Vec::new();
        let mut after_comma = false;
        loop {
            self.skip_spaces();
            let start = self.pos;
            match self.peek() {
                None => return Err(self.error_at(start, "unexpected end of input inside braces")),
                // `{}` and a trailing comma are both allowed (`{,}` is not:
                // a comma only follows a label).
                Some(b'}') if labels.is_empty() || after_comma => {
                    self.pos += 1;
                    return Ok(labels);
                }
                Some(c) if is_alpha(c) => {}
                Some(c) => {
                    return Err(self.error_at(
                        start,
                        format!(
                            "unexpected character inside braces: {:?}, expected a label name",
                            c as char
                        ),
                    ))
                }
            }
            let name = self.word(false).to_string();
            self.skip_spaces();
            let op_at = self.pos;
            match (self.peek(), self.bytes.get(self.pos + 1).copied()) {
                (Some(b'='), Some(b'~')) => {
                    return Err(
                        self.error_at(op_at, "unexpected <op:=~> in label set, expected \"=\"")
                    )
                }
                (Some(b'='), _) => self.pos += 1,
                (Some(b'!'), Some(b'=')) => {
                    return Err(
                        self.error_at(op_at, "unexpected <op:!=> in label set, expected \"=\"")
                    )
                }
                (Some(b'!'), Some(b'~')) => {
                    return Err(
                        self.error_at(op_at, "unexpected <op:!~> in label set, expected \"=\"")
                    )
                }
                _ => {
                    return Err(
                        self.error_at(op_at, "unexpected token in label set, expected \"=\"")
                    )
                }
            }
            self.skip_spaces();
            let value = self.string()?;
            labels.push((name, value));
            self.skip_spaces();
            let sep_at = self.pos;
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    after_comma = true;
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(labels);
                }
                None => return Err(self.error_at(sep_at, "unexpected end of input inside braces")),
                Some(_) => {
                    return Err(self.error_at(
                        sep_at,
                        "unexpected token in label set, expected \",\" or \"}\"",
                    ))
                }
            }
        }
    }

    /// A quoted string (`"..."`, `'...'` or a raw `` `...` ``), unquoted.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.error_at(start, "unexpected token in label set, expected string")),
        };
        self.pos += 1;
        loop {
            match self.peek() {
                None => {
                    let what = if quote == b'`' {
                        "unterminated raw string"
                    } else {
                        "unterminated quoted string"
                    };
                    return Err(self.error_at(start, what));
                }
                Some(b'\n') if quote != b'`' => {
                    return Err(self.error_at(start, "unterminated quoted string"))
                }
                Some(b'\\') if quote != b'`' => {
                    // Skip the escaped byte; the unquoting below validates it.
                    self.pos += 2;
                    if self.pos > self.bytes.len() {
                        return Err(self.error_at(start, "escape sequence not terminated"));
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        // Every byte skipped above is ASCII or part of a char whose boundary
        // the closing quote (ASCII) re-establishes, so this slice is valid.
        let raw = self
            .input
            .get(start..self.pos)
            .ok_or_else(|| self.error_at(start, "invalid UTF-8 in quoted string"))?;
        promql_parser::util::unquote_string(raw)
            .map_err(|e| self.error_at(start, format!("error unquoting string {raw:?}: {e}")))
    }

    /// The next token of the value sequence and its start position.
    fn value_token(&mut self) -> Result<(Tok, usize), ParseError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, start));
        };
        let tok = match c {
            c if is_space(c) => {
                self.skip_spaces();
                Tok::Space
            }
            b'+' => {
                self.pos += 1;
                Tok::Add
            }
            b'-' => {
                self.pos += 1;
                Tok::Sub
            }
            b'x' => {
                self.pos += 1;
                Tok::Times
            }
            b'_' => {
                self.pos += 1;
                Tok::Blank
            }
            c if c.is_ascii_digit()
                || (c == b'.' && self.bytes.get(self.pos + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                self.scan_number()?
            }
            c if is_alpha(c) => {
                let word = self.word(true);
                if is_special_number(word) {
                    Tok::Number(word.to_string())
                } else {
                    Tok::Word(word.to_string())
                }
            }
            _ => {
                let shown = self.input[start..].chars().next().unwrap_or('?');
                return Err(self.error_at(
                    start,
                    format!("unexpected character in series sequence: {shown:?}"),
                ));
            }
        };
        Ok((tok, start))
    }

    /// Digits, an optional fraction and exponent; then only `x` or a
    /// non-alphanumeric may follow (hexadecimal is not read in series values).
    fn scan_number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Parser<'_>| {
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
        };
        digits(self);
        if self.peek() == Some(b'.') {
            self.pos += 1;
            digits(self);
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            digits(self);
        }
        match self.peek() {
            Some(b'x') => {}
            Some(c) if is_alnum(c) => {
                self.pos += 1;
                return Err(self.error_at(
                    start,
                    format!("bad number syntax: {:?}", &self.input[start..self.pos]),
                ));
            }
            _ => {}
        }
        Ok(Tok::Number(self.input[start..self.pos].to_string()))
    }

    /// `(SPACE item?)*` after the metric: the expanded values, `None` for `_`.
    fn values(&mut self) -> Result<Vec<Option<f64>>, ParseError> {
        let mut out: Vec<Option<f64>> = Vec::new();
        loop {
            let (tok, at) = self.value_token()?;
            match tok {
                Tok::Eof => return Ok(out),
                Tok::Space => {}
                other => {
                    return Err(self.error_at(
                        at,
                        format!("unexpected {} in series values", other.describe()),
                    ))
                }
            }
            let (tok, at) = self.value_token()?;
            match tok {
                Tok::Eof => return Ok(out),
                Tok::Blank => {
                    let save = self.pos;
                    let (next, _) = self.value_token()?;
                    if next == Tok::Times {
                        let n = self.repetitions()?;
                        check_total(out.len() as u64, n, || self.error_at(at, too_many()))?;
                        out.extend(std::iter::repeat_n(None, n as usize));
                    } else {
                        self.pos = save;
                        out.push(None);
                    }
                }
                tok => {
                    let first = self.series_value(tok, at)?;
                    let save = self.pos;
                    let (next, next_at) = self.value_token()?;
                    match next {
                        Tok::Times => {
                            let n = self.repetitions()?;
                            check_total(out.len() as u64, n + 1, || self.error_at(at, too_many()))?;
                            out.extend(std::iter::repeat_n(Some(first), n as usize + 1));
                        }
                        Tok::Add | Tok::Sub => {
                            let (num, num_at) = self.value_token()?;
                            let Tok::Number(text) = num else {
                                return Err(self.error_at(
                                    num_at,
                                    format!("unexpected {} in series values", num.describe()),
                                ));
                            };
                            let mut step = self.number(&text, num_at)?;
                            if next == Tok::Sub {
                                step = -step;
                            }
                            let (times, times_at) = self.value_token()?;
                            if times != Tok::Times {
                                return Err(self.error_at(
                                    times_at,
                                    format!("unexpected {} in series values", times.describe()),
                                ));
                            }
                            let n = self.repetitions()?;
                            check_total(out.len() as u64, n + 1, || self.error_at(at, too_many()))?;
                            let mut v = first;
                            for _ in 0..=n {
                                out.push(Some(v));
                                v += step;
                            }
                        }
                        Tok::Eof | Tok::Space => {
                            self.pos = save;
                            out.push(Some(first));
                        }
                        other => {
                            return Err(self.error_at(
                                next_at,
                                format!("unexpected {} in series values", other.describe()),
                            ))
                        }
                    }
                }
            }
        }
    }

    /// `stale`, a number, or `+number` / `-number`.
    fn series_value(&mut self, tok: Tok, at: usize) -> Result<f64, ParseError> {
        match tok {
            Tok::Number(text) => self.number(&text, at),
            Tok::Word(w) if w == "stale" => Ok(stale_nan()),
            Tok::Add | Tok::Sub => {
                let (num, num_at) = self.value_token()?;
                let Tok::Number(text) = num else {
                    return Err(self.error_at(
                        num_at,
                        format!("unexpected {} in series values", num.describe()),
                    ));
                };
                let v = self.number(&text, num_at)?;
                Ok(if tok == Tok::Sub { -v } else { v })
            }
            other => Err(self.error_at(
                at,
                format!(
                    "unexpected {} in series values, expected number or \"stale\"",
                    other.describe()
                ),
            )),
        }
    }

    /// The count after `x`: a plain unsigned decimal.
    fn repetitions(&mut self) -> Result<u64, ParseError> {
        let (tok, at) = self.value_token()?;
        let Tok::Number(text) = tok else {
            return Err(self.error_at(
                at,
                format!("unexpected {} in series values", tok.describe()),
            ));
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error_at(
                at,
                format!(
                    "invalid repetition in series values: strconv.ParseUint: parsing {text:?}: invalid syntax"
                ),
            ));
        }
        text.parse::<u64>().map_err(|_| {
            self.error_at(
                at,
                format!(
                    "invalid repetition in series values: strconv.ParseUint: parsing {text:?}: value out of range"
                ),
            )
        })
    }

    fn number(&self, text: &str, at: usize) -> Result<f64, ParseError> {
        parse_number(text).map_err(|e| self.error_at(at, format!("error parsing number: {e}")))
    }
}

fn too_many() -> String {
    format!("a series description expands to more than {MAX_VALUES_PER_SERIES} values")
}

fn check_total(have: u64, adding: u64, err: impl FnOnce() -> ParseError) -> Result<(), ParseError> {
    match have.checked_add(adding) {
        Some(total) if total <= MAX_VALUES_PER_SERIES => Ok(()),
        _ => Err(err()),
    }
}

/// A number token as PromQL reads it: first as an integer with Go's base
/// prefixes (so `010` is octal 8), else as a float; `Inf` and `NaN` in any
/// case; an out-of-range float is an error, as in Go.
pub fn parse_number(text: &str) -> Result<f64, String> {
    if let Some(i) = parse_go_int_base0(text) {
        return Ok(i as f64);
    }
    if is_special_number(text) {
        return Ok(if text.eq_ignore_ascii_case("inf") {
            f64::INFINITY
        } else {
            f64::NAN
        });
    }
    let valid_syntax = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    match text.parse::<f64>() {
        Ok(v) if valid_syntax && v.is_infinite() => Err(format!(
            "strconv.ParseFloat: parsing {text:?}: value out of range"
        )),
        Ok(v) if valid_syntax => Ok(v),
        _ => Err(format!(
            "strconv.ParseFloat: parsing {text:?}: invalid syntax"
        )),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` for the unsigned digit strings the lexer
/// produces: a leading `0` means octal.
fn parse_go_int_base0(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        i64::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse::<i64>().ok()
    }
}

/// Parses one `input_series` line: a metric, then values in expanding
/// notation. `None` stands for an omitted sample (`_`).
pub fn parse_series_desc(input: &str) -> Result<(RawLabels, Vec<Option<f64>>), ParseError> {
    let mut p = Parser::new(input);
    let labels = p.metric(true)?;
    let values = p.values()?;
    Ok((labels, values))
}

/// Parses the `labels` of an expected sample: a metric name and/or `{...}`,
/// or nothing at all (the empty label set).
pub fn parse_metric(input: &str) -> Result<RawLabels, ParseError> {
    let mut p = Parser::new(input);
    let labels = p.metric(false)?;
    p.skip_spaces();
    if let Some(c) = p.peek() {
        let shown = input[p.pos..].chars().next().unwrap_or(c as char);
        return Err(p.error_at(p.pos, format!("unexpected {shown:?} after the metric")));
    }
    Ok(labels)
}

/// One input series, ready to append: its labels and its samples in time
/// order (omitted values already left out).
#[derive(Debug, Clone, PartialEq)]
pub struct InputSeries {
    pub labels: Labels,
    pub samples: Vec<(Timestamp, f64)>,
}

/// Builds the samples of a test's `input_series` as promtool does: the pairs
/// are written as a `load <interval>` block, one `series values` line each,
/// and read back line by line (trimmed; `#` lines and an empty line end the
/// block). Sample `i` of a series is at `i * interval_ms`; a later series with
/// the same labels replaces an earlier one.
pub fn load_input_series<'a>(
    interval_ms: i64,
    series: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<InputSeries>, ParseError> {
    let mut text = String::new();
    for (selector, values) in series {
        text.push_str(&format!("  {selector} {values}\n"));
    }
    let mut out: Vec<InputSeries> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            // An empty (or comment) line ends the load block; promtool ignores
            // whatever follows it.
            break;
        }
        let (raw, values) = parse_series_desc(line)?;
        let labels = Labels::new(raw);
        let samples = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| ((i as i64).saturating_mul(interval_ms), v)))
            .collect();
        let series = InputSeries { labels, samples };
        match out.iter_mut().find(|s| s.labels == series.labels) {
            Some(existing) => *existing = series,
            None => out.push(series),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::is_stale_nan;

    fn values(desc: &str) -> Vec<Option<f64>> {
        match parse_series_desc(desc) {
            Ok((_, v)) => v,
            Err(e) => panic!("{desc:?}: {e}"),
        }
    }

    fn some(vs: &[f64]) -> Vec<Option<f64>> {
        vs.iter().map(|v| Some(*v)).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> RawLabels {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expanding_notation_as_documented() {
        assert_eq!(values("m -2+4x3"), some(&[-2.0, 2.0, 6.0, 10.0]));
        assert_eq!(values("m 1-2x4"), some(&[1.0, -1.0, -3.0, -5.0, -7.0]));
        assert_eq!(values("m 1x4"), some(&[1.0; 5]));
        assert_eq!(
            values("m 1 _x3 stale")[..4],
            [Some(1.0), None, None, None][..]
        );
        assert!(values("m 1 _x3 stale")[4].is_some_and(is_stale_nan));
        assert_eq!(values("m 0+10x2"), some(&[0.0, 10.0, 20.0]));
        assert_eq!(values("m 1x0"), some(&[1.0]));
        assert_eq!(values("m _x0 1"), some(&[1.0]));
        assert_eq!(values("m _ 1 _"), vec![None, Some(1.0), None]);
    }

    #[test]
    fn number_forms() {
        assert_eq!(
            values("m 1.5 -0.5 +3 .5 1. 1e3 1E-2 2e+1"),
            some(&[1.5, -0.5, 3.0, 0.5, 1.0, 1000.0, 0.01, 20.0])
        );
        // A leading zero is octal (Go's ParseInt with base 0), unless it is not valid octal.
        assert_eq!(
            values("m 010 08 0 00 010.5"),
            some(&[8.0, 8.0, 0.0, 0.0, 10.5])
        );
        let v = values("m Inf -Inf +inf NaN nan INF");
        assert_eq!(v[0], Some(f64::INFINITY));
        assert_eq!(v[1], Some(f64::NEG_INFINITY));
        assert_eq!(v[2], Some(f64::INFINITY));
        assert!(v[3].is_some_and(|v| v.is_nan() && !is_stale_nan(v)));
        assert!(v[4].is_some_and(f64::is_nan));
        assert_eq!(v[5], Some(f64::INFINITY));
        assert_eq!(values("m 1.5+0.25x2"), some(&[1.5, 1.75, 2.0]));
        assert_eq!(values("m 1e2-1e1x2"), some(&[100.0, 90.0, 80.0]));
        assert_eq!(
            values("m -Inf+1x1"),
            some(&[f64::NEG_INFINITY, f64::NEG_INFINITY])
        );
        // A step needs a repetition count.
        assert!(parse_series_desc("m 1+Inf").is_err());
        // Repetition counts are decimal even with a leading zero.
        assert_eq!(values("m 1x03"), some(&[1.0; 4]));
        // A huge integer falls back to float parsing.
        assert_eq!(values("m 99999999999999999999"), some(&[1e20]));
    }

    #[test]
    fn stale_markers() {
        let v = values("m stale 1 stale");
        assert!(v[0].is_some_and(is_stale_nan));
        assert_eq!(v[1], Some(1.0));
        assert!(v[2].is_some_and(is_stale_nan));
        // `stalex2` is one word, not stale repeated.
        assert!(parse_series_desc("m stalex2").is_err());
        assert!(parse_series_desc("m stale x2").is_err());
    }

    #[test]
    fn metric_forms() {
        let (l, v) = parse_series_desc(r#"up{job="a", instance='b:1',} 1"#).unwrap();
        assert_eq!(
            l,
            labels(&[("__name__", "up"), ("instance", "b:1"), ("job", "a")])
        );
        assert_eq!(v, some(&[1.0]));
        let (l, _) = parse_series_desc("ns:metric:rate5m 1").unwrap();
        assert_eq!(l, labels(&[("__name__", "ns:metric:rate5m")]));
        let (l, _) = parse_series_desc(r#"{__name__="up", a="x"} 1"#).unwrap();
        assert_eq!(l, labels(&[("__name__", "up"), ("a", "x")]));
        // A metric name wins over __name__ in the braces.
        let (l, _) = parse_series_desc(r#"up{__name__="down"} 1"#).unwrap();
        assert_eq!(l, labels(&[("__name__", "up")]));
        // Escapes and raw strings.
        let (l, _) = parse_series_desc(r#"m{a="x\"y\n", b=`c\d`} 1"#).unwrap();
        assert_eq!(
            l,
            labels(&[("__name__", "m"), ("a", "x\"y\n"), ("b", "c\\d")])
        );
        // Keywords are metric names, except those the grammar leaves out.
        assert!(parse_series_desc("sum 1").is_ok());
        assert!(parse_series_desc("by{a=\"b\"} 1").is_ok());
        assert!(parse_series_desc("on 1").is_err());
        assert!(parse_series_desc("bool 1").is_err());
        assert!(parse_series_desc("Inf 1").is_err());
        // Keywords are plain label names inside braces.
        assert!(parse_series_desc("m{on=\"x\", by=\"y\"} 1").is_ok());
        // Only equality in a series description.
        for bad in [
            r#"m{a=~"x"} 1"#,
            r#"m{a!="x"} 1"#,
            r#"m{a!~"x"} 1"#,
            r#"m{a} 1"#,
            r#"m{,} 1"#,
        ] {
            assert!(parse_series_desc(bad).is_err(), "{bad}");
        }
        // The empty label set.
        assert_eq!(parse_series_desc("{} 1").unwrap().0, labels(&[]));
        assert_eq!(
            parse_series_desc("m").unwrap(),
            (labels(&[("__name__", "m")]), vec![])
        );
    }

    #[test]
    fn syntax_errors_are_positioned() {
        let e = parse_series_desc(r#"up{instance="b"} 1+2 3"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:21: parse error: unexpected \" \" in series values"
        );
        let e = parse_series_desc(r#"up{instance="b"} 1 stale _x2 1e400"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:30: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range"
        );
        let e = parse_series_desc(r#"up{instance=~"b"} 1"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:12: parse error: unexpected <op:=~> in label set, expected \"=\""
        );
        let e = parse_series_desc(r#"up{instance="b"} 1x3.5"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:20: parse error: invalid repetition in series values: strconv.ParseUint: parsing \"3.5\": invalid syntax"
        );
        let e = parse_series_desc(r#"up{instance="b"} 1 foo"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "1:20: parse error: unexpected identifier \"foo\" in series values, expected number or \"stale\""
        );
    }

    #[test]
    fn invalid_value_sequences() {
        for bad in [
            "m 1+2",
            "m 1x",
            "m 1x-3",
            "m 1+-2x3",
            "m _+1x2",
            "m 1 x3",
            "m 0x1F",
            "m 1_000",
            "m 1e",
            "m stale:x",
            "m sum",
            "m infinity",
            "m 1,2",
            "m{a=\"b\"}1",
            "m 1 2x1e2",
            "m 1x2x3",
            "m -_",
            "m 1.2.3",
            "m 1 {a=\"b\"}",
            "m 1x18446744073709551616",
            "m{a=\"b",
            "m{a=\"\\q\"} 1",
            "m 1x99999999999",
        ] {
            assert!(parse_series_desc(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn metrics_of_expected_samples() {
        assert_eq!(parse_metric("").unwrap(), labels(&[]));
        assert_eq!(parse_metric("{}").unwrap(), labels(&[]));
        assert_eq!(parse_metric("  ").unwrap(), labels(&[]));
        // In a plain metric, a space may separate the name from the braces.
        assert_eq!(
            parse_metric(r#"up {job="a"}"#).unwrap(),
            labels(&[("__name__", "up"), ("job", "a")])
        );
        // Empty values and repeated names are kept as written.
        assert_eq!(
            parse_metric(r#"{b="", a="1"}"#).unwrap(),
            labels(&[("a", "1"), ("b", "")])
        );
        assert!(parse_metric(r#"up{job="a""#).is_err());
        assert!(parse_metric("up 1").is_err());
        assert!(parse_metric("up{} x").is_err());
        assert!(parse_metric("1").is_err());
    }

    #[test]
    fn load_block_like_promtool() {
        let series = load_input_series(
            60_000,
            [
                ("up{a=\"1\"}", "1 _ 3"),
                ("other", "5"),
                ("{__name__=\"up\", a=\"1\"}", "7 8"),
            ],
        )
        .unwrap();
        // The third line has the same labels as the first and replaces it.
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].samples, vec![(0, 7.0), (60_000, 8.0)]);
        assert_eq!(series[1].samples, vec![(0, 5.0)]);
        // An empty line (an empty series and values) ends the block.
        let series = load_input_series(1000, [("a", "1"), ("", ""), ("b", "2")]).unwrap();
        assert_eq!(series.len(), 1);
        // Values spanning lines: the second line is parsed as a series of its own.
        assert!(load_input_series(1000, [("a", "1\n2")]).is_err());
        assert_eq!(
            load_input_series(1000, [("a", "1 2\n")]).unwrap()[0].samples,
            vec![(0, 1.0), (1000, 2.0)]
        );
        // Empty values in the series description are dropped from the stored labels.
        let series = load_input_series(1000, [("a{b=\"\"}", "1")]).unwrap();
        assert_eq!(series[0].labels, Labels::new([("__name__", "a")]));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_on_any_text(s in ".{0,80}") {
                let _ = parse_series_desc(&s);
                let _ = parse_metric(&s);
                let _ = load_input_series(1000, [(s.as_str(), s.as_str())]);
            }

            #[test]
            fn never_panics_on_notation_like_text(s in "[a-z{}=\"', _x+\\-.0-9eEINaf:`\\\\]{0,60}") {
                let _ = parse_series_desc(&s);
                let _ = parse_metric(&s);
            }

            #[test]
            fn expansion_has_the_documented_length(
                start in -1000i64..1000, step in -100i64..100, n in 0u64..50, blanks in 0u64..5,
            ) {
                let desc = format!("m {start}{}{}x{n} _x{blanks}", if step < 0 { "-" } else { "+" }, step.abs());
                let (_, vals) = parse_series_desc(&desc).unwrap();
                prop_assert_eq!(vals.len() as u64, n + 1 + blanks);
                for (i, v) in vals.iter().take(n as usize + 1).enumerate() {
                    prop_assert_eq!(*v, Some((start + step * i as i64) as f64));
                }
            }
        }
    }
}
