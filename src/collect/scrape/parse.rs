//! Exposition parsers: the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//!
//! This file owns turning a scrape body into entries (metadata and series). It
//! knows nothing about targets, relabeling or storage; [`super::scrape_loop`]
//! drives it. It is `pub` so the fuzz crate (`fuzz/`) can call it.
//!
//! Why hand-written: DESIGN.md asks for the crate the field trusts, but no
//! maintained Rust crate parses both text 0.0.4 and OpenMetrics 1.0 (with
//! exemplars and the mandatory `# EOF`) with Prometheus's exact escaping and
//! validation rules, and does so without allocating per sample. The grammar
//! below follows Prometheus 2.42's lexers (`model/textparse/promlex.l` and
//! `openmetricslex.l`) token for token, including their quirks:
//!
//! * text format: blank lines, `#` comments, tabs/spaces between tokens, a
//!   free trailing comma in `{}`, missing commas between labels, raw newlines
//!   inside label values, integer millisecond timestamps, a NUL byte at the
//!   start of a line ends the input, the last line needs no newline;
//! * OpenMetrics: single spaces only, no blank lines or free comments,
//!   timestamps in (fractional) seconds, exemplars `# {..} value [ts]` only on
//!   `_total`/`_bucket` series, `# EOF` required and nothing after it;
//! * both: values as Go's `strconv.ParseFloat` reads them minus `p`/`P`/`_`
//!   (Prometheus's "pre-Go 1.13 float formats"), so `NaN`, `+Inf`, `-inf`,
//!   `1e3`, `.5` are accepted and `1e400` (out of range) is refused; NaN is
//!   canonicalised so it can never collide with the staleness marker; label
//!   escapes `\\`, `\"`, `\n` (any other `\x` is kept verbatim); label values
//!   and HELP text must be UTF-8.
//!
//! On top of Prometheus, a repeated label name in one series is refused here
//! (Prometheus refuses it later, at append time, with the same effect: the
//! scrape fails), and every error names its line.
//!
//! Prometheus 2.42 ingests OpenMetrics `_created` series as ordinary series
//! (`foo_created`); so does this parser.

use std::borrow::Cow;
use std::fmt;

use crate::model::{Label, Labels, METRIC_NAME};

/// The bit pattern Prometheus stores for a scraped NaN (`value.NormalNaN`).
const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// Which exposition format a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain`), also the fallback for any
    /// unknown or missing content type, as in Prometheus.
    Text,
    /// OpenMetrics 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// Picks the parser from a response `Content-Type` the way Prometheus 2.42
    /// does (`textparse.New`): only the media type counts, compared
    /// case-insensitively; anything but OpenMetrics is read as text 0.0.4.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let Some(ct) = content_type else {
            return Format::Text;
        };
        let media_type = ct.split(';').next().unwrap_or("").trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// A metric family type from a `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    /// The name Prometheus's metadata API reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// One parsed entry. Series labels are read with [`Parser::labels`].
#[derive(Debug, PartialEq)]
pub enum Entry<'a> {
    Help { metric: &'a str, text: Cow<'a, str> },
    Type { metric: &'a str, kind: MetricType },
    Unit { metric: &'a str, unit: &'a str },
    Comment,
    Series(SeriesEntry<'a>),
}

/// One sample line.
#[derive(Debug, PartialEq)]
pub struct SeriesEntry<'a> {
    /// The raw bytes of the metric name and label block: stable across scrapes
    /// for the same series, so the scrape loop uses it as its cache key.
    pub series: &'a [u8],
    pub value: f64,
    /// Milliseconds since the epoch, if the line carried a timestamp.
    pub timestamp: Option<i64>,
    /// Whether an exemplar followed the sample (parsed, validated, ignored).
    pub has_exemplar: bool,
}

/// A parse error: the 1-based line it occurred on and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Tokens named in error messages, as Prometheus names them.
#[derive(Clone, Copy)]
enum Tok {
    Eof,
    Linebreak,
    Invalid,
    BraceOpen,
    BraceClose,
    Comma,
    Equal,
    LabelName,
    LabelValue,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tok::Eof => "end of input",
            Tok::Linebreak => "end of line",
            Tok::Invalid => "an invalid character",
            Tok::BraceOpen => "'{'",
            Tok::BraceClose => "'}'",
            Tok::Comma => "','",
            Tok::Equal => "'='",
            Tok::LabelName => "a label name",
            Tok::LabelValue => "a quoted label value",
        })
    }
}

/// Byte offsets of one label of the current series: name and raw (escaped,
/// unquoted) value.
#[derive(Clone, Copy, Debug)]
struct LabelSpan {
    name: (usize, usize),
    value: (usize, usize),
}

/// A pull parser over one scrape body. Call [`Parser::next_entry`] until it
/// returns `Ok(None)`; after an error the parser is done.
pub struct Parser<'a> {
    input: &'a [u8],
    format: Format,
    pos: usize,
    line: usize,
    done: bool,
    /// The current series: metric name span and label spans (reused buffers).
    name: (usize, usize),
    label_spans: Vec<LabelSpan>,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
fn is_metric_start(b: u8) -> bool {
    is_name_start(b) || b == b':'
}
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
fn is_metric_char(b: u8) -> bool {
    is_name_char(b) || b == b':'
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Parser<'a> {
        Parser {
            input,
            format,
            pos: 0,
            line: 1,
            done: false,
            name: (0, 0),
            label_spans: Vec::new(),
        }
    }

    /// The byte at `i`. The text format reads as if the body ended with a
    /// newline (Prometheus appends one), so index `len` is `\n` there.
    fn at(&self, i: usize) -> Option<u8> {
        match self.input.get(i) {
            Some(&b) => Some(b),
            None if i == self.input.len() && self.format == Format::Text => Some(b'\n'),
            None => None,
        }
    }

    fn cur(&self) -> Option<u8> {
        self.at(self.pos)
    }

    fn error<T>(&mut self, message: impl Into<String>) -> Result<T, ParseError> {
        self.done = true;
        Err(ParseError {
            line: self.line,
            message: message.into(),
        })
    }

    fn str_at(&self, (start, end): (usize, usize)) -> &'a str {
        // Spans handed to this function cover ASCII names or UTF-8-checked text.
        std::str::from_utf8(&self.input[start..end]).unwrap_or("")
    }

    /// Skips `[ \t]*` (text format only; OpenMetrics has no free whitespace).
    fn skip_blanks(&mut self) {
        if self.format == Format::Text {
            while matches!(self.cur(), Some(b' ' | b'\t')) {
                self.pos += 1;
            }
        }
    }

    /// Classifies the next token without consuming it, for error messages.
    fn describe_next(&self) -> Tok {
        match self.cur() {
            None => Tok::Eof,
            Some(b'\n') => Tok::Linebreak,
            Some(b'{') => Tok::BraceOpen,
            Some(b'}') => Tok::BraceClose,
            Some(b',') => Tok::Comma,
            Some(b'=') => Tok::Equal,
            Some(b'"') => Tok::LabelValue,
            Some(b) if is_name_start(b) => Tok::LabelName,
            _ => Tok::Invalid,
        }
    }

    fn scan_while(&mut self, pred: impl Fn(u8) -> bool) -> (usize, usize) {
        let start = self.pos;
        while self.input.get(self.pos).is_some_and(|&b| pred(b)) {
            self.pos += 1;
        }
        (start, self.pos)
    }

    /// Returns the next entry, `Ok(None)` at the end of a valid body.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        match self.format {
            Format::Text => self.next_text(),
            Format::OpenMetrics => self.next_openmetrics(),
        }
    }

    // ---------------------------------------------------------------- text 0.0.4

    fn next_text(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        loop {
            self.skip_blanks();
            match self.cur() {
                None | Some(0) => {
                    self.done = true;
                    return Ok(None);
                }
                Some(b'\n') => {
                    self.pos += 1;
                    self.line += 1;
                }
                Some(b'#') => return self.text_comment_or_meta().map(Some),
                Some(b) if is_metric_start(b) => return self.text_series().map(Some),
                Some(b) => {
                    let shown = char::from(b);
                    return self.error(format!(
                        "{shown:?} is not a valid start token (expected a metric name, `#` or a newline)"
                    ));
                }
            }
        }
    }

    /// Consumes to (not past) the end of the line.
    fn rest_of_line(&mut self) -> (usize, usize) {
        let start = self.pos;
        while !matches!(self.cur(), Some(b'\n') | None) {
            self.pos += 1;
        }
        (start, self.pos.min(self.input.len()))
    }

    /// Consumes the newline ending an entry (text: the virtual final one too).
    fn end_line(&mut self) {
        if self.cur() == Some(b'\n') {
            self.pos += 1;
            self.line += 1;
        }
    }

    fn text_comment_or_meta(&mut self) -> Result<Entry<'a>, ParseError> {
        self.pos += 1; // '#'
        let after_hash = self.pos;
        self.skip_blanks();
        let keyword = if self.pos > after_hash {
            let rest = &self.input[self.pos.min(self.input.len())..];
            ["HELP", "TYPE"].into_iter().find(|k| {
                rest.starts_with(k.as_bytes())
                    && matches!(self.at(self.pos + 4), Some(b' ' | b'\t'))
            })
        } else {
            None
        };
        let Some(keyword) = keyword else {
            self.rest_of_line();
            self.end_line();
            return Ok(Entry::Comment);
        };
        self.pos += 4;
        self.skip_blanks();
        let name = self.scan_metric_name();
        if name.0 == name.1 {
            let got = self.describe_next();
            return self.error(format!("expected metric name after {keyword}, got {got}"));
        }
        let rest = self.rest_of_line();
        let raw = &self.input[rest.0..rest.1];
        // Prometheus's lexer yields the rest of the line including the
        // separator and drops its first byte; an all-blank rest is no text.
        let text: &[u8] = if raw.iter().all(|&b| b == b' ' || b == b'\t') || raw.len() <= 1 {
            b""
        } else {
            &raw[1..]
        };
        let metric = self.str_at(name);
        let entry = self.meta_entry(keyword, metric, text)?;
        self.end_line();
        Ok(entry)
    }

    fn scan_metric_name(&mut self) -> (usize, usize) {
        match self.input.get(self.pos) {
            Some(&b) if is_metric_start(b) => self.scan_while(is_metric_char),
            _ => (self.pos, self.pos),
        }
    }

    /// Builds a HELP/TYPE/UNIT entry from its metric and text (both formats).
    fn meta_entry(
        &mut self,
        keyword: &str,
        metric: &'a str,
        text: &'a [u8],
    ) -> Result<Entry<'a>, ParseError> {
        match keyword {
            "HELP" => {
                let Ok(text) = std::str::from_utf8(text) else {
                    return self.error(format!("HELP text of {metric} is not valid UTF-8"));
                };
                Ok(Entry::Help {
                    metric,
                    text: unescape(text, false),
                })
            }
            "TYPE" => {
                let s = std::str::from_utf8(text).unwrap_or("\u{fffd}");
                let kind = match (s, self.format) {
                    ("counter", _) => MetricType::Counter,
                    ("gauge", _) => MetricType::Gauge,
                    ("histogram", _) => MetricType::Histogram,
                    ("summary", _) => MetricType::Summary,
                    ("untyped", Format::Text) | ("unknown", Format::OpenMetrics) => {
                        MetricType::Unknown
                    }
                    ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
                    ("info", Format::OpenMetrics) => MetricType::Info,
                    ("stateset", Format::OpenMetrics) => MetricType::StateSet,
                    _ => {
                        let allowed = match self.format {
                            Format::Text => "counter, gauge, histogram, summary, untyped",
                            Format::OpenMetrics => "counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown",
                        };
                        return self.error(format!(
                            "invalid metric type {s:?} for {metric} (expected one of {allowed})"
                        ));
                    }
                };
                Ok(Entry::Type { metric, kind })
            }
            _ => {
                let Ok(unit) = std::str::from_utf8(text) else {
                    return self.error(format!("UNIT of {metric} is not valid UTF-8"));
                };
                let is_suffix = metric.len() > unit.len()
                    && metric.ends_with(unit)
                    && metric.as_bytes()[metric.len() - unit.len() - 1] == b'_';
                if !unit.is_empty() && !is_suffix {
                    return self.error(format!(
                        "unit {unit:?} is not a suffix of metric {metric:?} (the name must end in _{unit})"
                    ));
                }
                Ok(Entry::Unit { metric, unit })
            }
        }
    }

    fn text_series(&mut self) -> Result<Entry<'a>, ParseError> {
        let start = self.pos;
        self.name = self.scan_while(is_metric_char);
        self.label_spans.clear();
        let mut series_end = self.pos;
        self.skip_blanks();
        if self.cur() == Some(b'{') {
            self.pos += 1;
            self.text_labels()?;
            series_end = self.pos;
            self.skip_blanks();
        }
        let series = &self.input[start..series_end];
        let value_span = self.scan_while(|b| !matches!(b, b'{' | b' ' | b'\t' | b'\n'));
        if value_span.0 == value_span.1 {
            let got = self.describe_next();
            return self.error(format!("expected value after metric, got {got}"));
        }
        let value = self.parse_value(value_span)?;
        self.skip_blanks();
        let timestamp = match self.cur() {
            Some(b'\n') => None,
            Some(b) if b.is_ascii_digit() => {
                let span = self.scan_while(|b| b.is_ascii_digit());
                let digits = self.str_at(span);
                let Ok(ts) = digits.parse::<i64>() else {
                    return self.error(format!("timestamp {digits} is out of range"));
                };
                self.skip_blanks();
                if self.cur() != Some(b'\n') {
                    let got = self.describe_next();
                    return self.error(format!("expected next entry after timestamp, got {got}"));
                }
                Some(ts)
            }
            _ => {
                let got = self.describe_next();
                return self.error(format!("expected timestamp or new record, got {got}"));
            }
        };
        self.check_duplicate_labels()?;
        self.end_line();
        Ok(Entry::Series(SeriesEntry {
            series,
            value,
            timestamp,
            has_exemplar: false,
        }))
    }

    /// Label block of the text format, after `{`: Prometheus tolerates a
    /// trailing comma and even a missing comma between labels.
    fn text_labels(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            match self.cur() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b) if is_name_start(b) => {}
                _ => {
                    let got = self.describe_next();
                    return self.error(format!("expected label name, got {got}"));
                }
            }
            let name = self.scan_while(is_name_char);
            self.skip_blanks();
            if self.cur() != Some(b'=') {
                let got = self.describe_next();
                return self.error(format!(
                    "expected equal after label name {}, got {got}",
                    self.str_at(name)
                ));
            }
            self.pos += 1;
            self.skip_blanks();
            let value = self.quoted_value(true)?;
            self.label_spans.push(LabelSpan { name, value });
            self.skip_blanks();
            if self.cur() == Some(b',') {
                self.pos += 1;
            }
        }
    }

    /// A `"..."` label value; returns the span inside the quotes. Raw newlines
    /// are allowed in the text format only; `\` escapes any byte but a newline.
    fn quoted_value(&mut self, allow_newline: bool) -> Result<(usize, usize), ParseError> {
        if self.input.get(self.pos) != Some(&b'"') {
            let got = self.describe_next();
            return self.error(format!("expected label value, got {got}"));
        }
        self.pos += 1;
        let start = self.pos;
        let mut newlines = 0;
        loop {
            match self.input.get(self.pos) {
                None => {
                    return self.error("unterminated label value (missing closing quote)");
                }
                Some(b'"') => break,
                Some(b'\\') => match self.input.get(self.pos + 1) {
                    Some(b'\n') | None => {
                        return self.error("invalid escape at end of line in label value");
                    }
                    Some(_) => self.pos += 2,
                },
                Some(b'\n') if allow_newline => {
                    newlines += 1;
                    self.pos += 1;
                }
                Some(b'\n') => {
                    return self.error("unterminated label value (newline before closing quote)");
                }
                Some(_) => self.pos += 1,
            }
        }
        let span = (start, self.pos);
        self.pos += 1;
        self.line += newlines;
        if std::str::from_utf8(&self.input[span.0..span.1]).is_err() {
            return self.error("invalid UTF-8 label value");
        }
        Ok(span)
    }

    fn check_duplicate_labels(&mut self) -> Result<(), ParseError> {
        let spans = &self.label_spans;
        let name_of = |s: &LabelSpan| &self.input[s.name.0..s.name.1];
        let mut duplicate = None;
        if spans.len() <= 16 {
            'outer: for (i, a) in spans.iter().enumerate() {
                for b in &spans[i + 1..] {
                    if name_of(a) == name_of(b) {
                        duplicate = Some(a.name);
                        break 'outer;
                    }
                }
            }
        } else {
            let mut names: Vec<_> = spans.iter().map(|s| (name_of(s), s.name)).collect();
            names.sort_unstable_by(|a, b| a.0.cmp(b.0));
            duplicate = names.windows(2).find(|w| w[0].0 == w[1].0).map(|w| w[0].1);
        }
        if let Some(span) = duplicate {
            let name = self.str_at(span);
            return self.error(format!("label name {name:?} is not unique in this series"));
        }
        if spans.iter().any(|s| name_of(s) == METRIC_NAME.as_bytes()) {
            return self.error("label name \"__name__\" is not allowed inside {} (the metric name is written before the braces)");
        }
        Ok(())
    }

    fn parse_value(&mut self, span: (usize, usize)) -> Result<f64, ParseError> {
        let raw = &self.input[span.0..span.1];
        match parse_go_float(raw) {
            Ok(v) if v.is_nan() => Ok(f64::from_bits(NORMAL_NAN_BITS)),
            Ok(v) => Ok(v),
            Err(why) => {
                let shown = String::from_utf8_lossy(raw);
                self.error(format!("invalid value {shown:?}: {why}"))
            }
        }
    }

    // ---------------------------------------------------------------- OpenMetrics 1.0

    fn next_openmetrics(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return self.error("data does not end with # EOF");
        }
        if rest.starts_with(b"# EOF") {
            let mut end = self.pos + 5;
            if self.input.get(end) == Some(&b'\n') {
                end += 1;
            }
            if end != self.input.len() {
                return self.error("unexpected data after # EOF");
            }
            self.pos = end;
            self.done = true;
            return Ok(None);
        }
        for keyword in ["HELP", "TYPE", "UNIT"] {
            if rest.starts_with(b"# ")
                && rest[2..].starts_with(keyword.as_bytes())
                && rest.get(6) == Some(&b' ')
            {
                self.pos += 7;
                return self.openmetrics_meta(keyword).map(Some);
            }
        }
        match rest[0] {
            b if is_metric_start(b) => self.openmetrics_series().map(Some),
            b'#' => self.error(
                "invalid comment: OpenMetrics allows only `# HELP`, `# TYPE`, `# UNIT` and `# EOF`",
            ),
            b'\n' => self.error("blank lines are not allowed in OpenMetrics"),
            b => {
                let shown = char::from(b);
                self.error(format!("{shown:?} is not a valid start token"))
            }
        }
    }

    fn openmetrics_meta(&mut self, keyword: &'static str) -> Result<Entry<'a>, ParseError> {
        let name = self.scan_metric_name();
        if name.0 == name.1 {
            return self.error(format!("expected metric name after {keyword}"));
        }
        // `{S}{C}*\n`: one space, the text, and a newline are all required.
        if self.input.get(self.pos) != Some(&b' ') {
            return self.error(format!(
                "expected text in {keyword} (a space after the metric name, then the text, then a newline)"
            ));
        }
        self.pos += 1;
        let text_start = self.pos;
        let Some(len) = self.input[self.pos..].iter().position(|&b| b == b'\n') else {
            return self.error(format!("expected text in {keyword}: missing newline"));
        };
        let text = &self.input[text_start..text_start + len];
        self.pos = text_start + len;
        let metric = self.str_at(name);
        let entry = self.meta_entry(keyword, metric, text)?;
        self.end_line();
        Ok(entry)
    }

    fn openmetrics_series(&mut self) -> Result<Entry<'a>, ParseError> {
        let start = self.pos;
        self.name = self.scan_while(is_metric_char);
        self.label_spans.clear();
        if self.input.get(self.pos) == Some(&b'{') {
            self.pos += 1;
            let mut spans = std::mem::take(&mut self.label_spans);
            let result = self.openmetrics_labels(&mut spans);
            self.label_spans = spans;
            result?;
        }
        let series = &self.input[start..self.pos];
        let value = self.openmetrics_number("metric")?;
        let value = self.parse_value(value)?;
        let mut timestamp = None;
        let mut has_exemplar = false;
        match self.input.get(self.pos) {
            None => return self.error("data does not end with # EOF"),
            Some(b'\n') => {}
            Some(b' ') if self.input[self.pos..].starts_with(b" # {") => {
                self.openmetrics_exemplar()?;
                has_exemplar = true;
            }
            Some(b' ') => {
                let span = self.openmetrics_number("value")?;
                timestamp = Some(self.openmetrics_timestamp(span, "timestamp")?);
                match self.input.get(self.pos) {
                    Some(b'\n') => {}
                    Some(b' ') if self.input[self.pos..].starts_with(b" # {") => {
                        self.openmetrics_exemplar()?;
                        has_exemplar = true;
                    }
                    None => return self.error("data does not end with # EOF"),
                    _ => return self.error("expected next entry after timestamp"),
                }
            }
            Some(_) => return self.error("expected timestamp or # symbol after the value"),
        }
        self.check_duplicate_labels()?;
        self.end_line();
        Ok(Entry::Series(SeriesEntry {
            series,
            value,
            timestamp,
            has_exemplar,
        }))
    }

    /// `{S}[^ \n]+`: exactly one space then a non-empty token.
    fn openmetrics_number(&mut self, after: &str) -> Result<(usize, usize), ParseError> {
        if self.input.get(self.pos) != Some(&b' ') {
            return self.error(format!(
                "expected value after {after} (one space, then the value)"
            ));
        }
        self.pos += 1;
        let span = self.scan_while(|b| b != b' ' && b != b'\n');
        if span.0 == span.1 {
            return self.error(format!("expected value after {after}"));
        }
        Ok(span)
    }

    /// A timestamp in seconds (with an optional fraction), in milliseconds.
    fn openmetrics_timestamp(
        &mut self,
        span: (usize, usize),
        what: &str,
    ) -> Result<i64, ParseError> {
        let raw = &self.input[span.0..span.1];
        match parse_go_float(raw) {
            Ok(ts) if ts.is_finite() => Ok((ts * 1000.0) as i64),
            Ok(_) => self.error(format!("invalid {what}: must be finite")),
            Err(why) => {
                let shown = String::from_utf8_lossy(raw);
                self.error(format!("invalid {what} {shown:?}: {why}"))
            }
        }
    }

    /// Label block of OpenMetrics, after `{`: commas only between labels.
    fn openmetrics_labels(&mut self, spans: &mut Vec<LabelSpan>) -> Result<(), ParseError> {
        let mut first = true;
        loop {
            match self.input.get(self.pos) {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b',') if !first => {
                    self.pos += 1;
                    if !self.input.get(self.pos).is_some_and(|&b| is_name_start(b)) {
                        let got = self.describe_next();
                        return self.error(format!("expected label name after comma, got {got}"));
                    }
                }
                Some(&b) if first && is_name_start(b) => {}
                _ => {
                    let got = self.describe_next();
                    let expected = if first {
                        "label name or right brace"
                    } else {
                        "comma or right brace"
                    };
                    return self.error(format!("expected {expected}, got {got}"));
                }
            }
            first = false;
            let name = self.scan_while(is_name_char);
            if self.input.get(self.pos) != Some(&b'=') {
                let got = self.describe_next();
                return self.error(format!("expected equal, got {got}"));
            }
            self.pos += 1;
            let value = self.quoted_value(false)?;
            spans.push(LabelSpan { name, value });
        }
    }

    fn openmetrics_exemplar(&mut self) -> Result<(), ParseError> {
        let name = &self.input[self.name.0..self.name.1];
        if !(name.ends_with(b"_total") || name.ends_with(b"_bucket")) {
            let shown = String::from_utf8_lossy(name).into_owned();
            return self.error(format!(
                "metric name {shown} does not support exemplars (only _total and _bucket series do)"
            ));
        }
        self.pos += 4; // " # {"
        let mut exemplar_spans = Vec::new();
        self.openmetrics_labels(&mut exemplar_spans)?;
        let value = self.openmetrics_number("exemplar labels")?;
        self.parse_value(value)?;
        match self.input.get(self.pos) {
            None => self.error("data does not end with # EOF"),
            Some(b'\n') => Ok(()),
            Some(b' ') => {
                let span = self.openmetrics_number("exemplar value")?;
                self.openmetrics_timestamp(span, "exemplar timestamp")?;
                match self.input.get(self.pos) {
                    Some(b'\n') => Ok(()),
                    None => self.error("data does not end with # EOF"),
                    _ => self.error("expected next entry after exemplar timestamp"),
                }
            }
            Some(_) => self.error("expected timestamp or comment after the exemplar value"),
        }
    }

    // ---------------------------------------------------------------- accessors

    /// The metric name of the last series entry.
    pub fn metric_name(&self) -> &'a str {
        self.str_at(self.name)
    }

    /// The labels of the last series entry, `__name__` included, unescaped.
    pub fn labels(&self) -> Labels {
        let mut labels = Vec::with_capacity(self.label_spans.len() + 1);
        labels.push(Label::new(METRIC_NAME, self.metric_name()));
        for span in &self.label_spans {
            let value = unescape(self.str_at(span.value), true);
            labels.push(Label::new(self.str_at(span.name), value.into_owned()));
        }
        Labels::new(labels.into_iter().map(|l| (l.name, l.value)))
    }
}

/// Undoes label-value escapes (`\\`, `\"`, `\n`) or HELP escapes (`\\`, `\n`);
/// any other backslash sequence is kept as written, as Prometheus does.
fn unescape(s: &str, quotes: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => {
                out.push('\\');
                chars.next();
            }
            Some('n') => {
                out.push('\n');
                chars.next();
            }
            Some('"') if quotes => {
                out.push('"');
                chars.next();
            }
            _ => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Parses a float as Go's `strconv.ParseFloat(s, 64)` does, refusing `p`, `P`
/// and `_` as Prometheus does. Out-of-range values are an error, as in Go.
pub fn parse_go_float(raw: &[u8]) -> Result<f64, &'static str> {
    if raw.iter().any(|b| matches!(b, b'p' | b'P' | b'_')) {
        return Err("unsupported character in float");
    }
    let Ok(s) = std::str::from_utf8(raw) else {
        return Err("invalid syntax");
    };
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::from_bits(NORMAL_NAN_BITS));
    }
    // Decimal only (hex floats need a `p` exponent, refused above).
    let bytes = unsigned.as_bytes();
    let well_formed = !bytes.is_empty()
        && (bytes[0].is_ascii_digit() || bytes[0] == b'.')
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !well_formed {
        return Err("invalid syntax");
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err("value out of range"),
        Ok(v) => Ok(v),
        Err(_) => Err("invalid syntax"),
    }
}

/// Parses a whole body, collecting every series. Used by tests and the fuzz
/// target; the scrape loop drives [`Parser`] itself to avoid building labels
/// for series it has cached.
pub fn parse_all(
    input: &[u8],
    format: Format,
) -> Result<Vec<(Labels, f64, Option<i64>)>, ParseError> {
    let mut parser = Parser::new(input, format);
    let mut out = Vec::new();
    while let Some(entry) = parser.next_entry()? {
        if let Entry::Series(s) = entry {
            out.push((parser.labels(), s.value, s.timestamp));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(input: &str) -> Result<Vec<(Labels, f64, Option<i64>)>, ParseError> {
        parse_all(input.as_bytes(), Format::Text)
    }
    fn om(input: &str) -> Result<Vec<(Labels, f64, Option<i64>)>, ParseError> {
        parse_all(input.as_bytes(), Format::OpenMetrics)
    }
    fn err_text(input: &[u8], format: Format) -> String {
        match parse_all(input, format) {
            Ok(v) => panic!("expected an error, parsed {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn content_type_picks_the_parser() {
        use Format::*;
        assert_eq!(Format::from_content_type(None), Text);
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4")),
            Text
        );
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some("Application/OpenMetrics-Text")),
            OpenMetrics
        );
        assert_eq!(Format::from_content_type(Some("garbage;;")), Text);
    }

    #[test]
    fn text_format_full_example() {
        let input = "# HELP http_requests_total The total number of HTTP requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
\n\
# Escaping in label values:\n\
msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
metric_without_timestamp_and_labels 12.47\n\
something_weird{problem=\"division by zero\"} +Inf 3982045\n";
        let got = text(input).unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[0].0.to_string(),
            r#"http_requests_total{code="200", method="post"}"#
        );
        assert_eq!(got[0].2, Some(1395066363000));
        assert_eq!(got[2].0.get("path"), Some(r"C:\DIR\FILE.TXT"));
        assert_eq!(
            got[2].0.get("error"),
            Some("Cannot find file:\n\"FILE.TXT\"")
        );
        assert_eq!(got[3].2, None);
        assert_eq!(got[4].1, f64::INFINITY);
        assert_eq!(got[4].2, Some(3982045));
    }

    #[test]
    fn text_format_quirks_match_prometheus() {
        // Trailing comma, missing comma, blanks around tokens, tabs, no final newline.
        let got = text("a{x=\"1\",} 1\nb{x=\"1\" y=\"2\"} 2\n  c { x = \"1\" }\t3\nd 4").unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].0.get("y"), Some("2"));
        // Raw newline inside a label value is allowed in the text format.
        let got = text("a{x=\"line1\nline2\"} 1\n").unwrap();
        assert_eq!(got[0].0.get("x"), Some("line1\nline2"));
        // Unknown escapes stay verbatim.
        let got = text("a{x=\"\\t\\\\n\"} 1\n").unwrap();
        assert_eq!(got[0].0.get("x"), Some("\\t\\n"));
        // NUL at the start of a line ends the input.
        assert_eq!(text("a 1\n\0garbage{{{").unwrap().len(), 1);
        // `#` comments of any shape, HELP/TYPE without separator are comments.
        assert_eq!(
            text("#comment\n# HELPx\n#\n# TYPE\na 1\n").unwrap().len(),
            1
        );
    }

    #[test]
    fn values_follow_go_parse_float() {
        for (s, want) in [
            ("NaN", f64::NAN),
            ("nan", f64::NAN),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("1.", 1.0),
            ("-0", -0.0),
            ("1E-2", 0.01),
        ] {
            let v = parse_go_float(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(v == want || (v.is_nan() && want.is_nan()), "{s} -> {v}");
        }
        for s in [
            "0x1p3", "1_000", "+NaN", "1e400", "", ".", "e5", "1,5", "Infinit", "0x10", "１",
        ] {
            assert!(
                parse_go_float(s.as_bytes()).is_err(),
                "{s:?} should be refused"
            );
        }
        let got = text("a NaN\n").unwrap();
        assert_eq!(
            got[0].1.to_bits(),
            NORMAL_NAN_BITS,
            "NaN is canonical, never a stale marker"
        );
    }

    #[test]
    fn text_errors_name_the_line_and_problem() {
        use Format::Text;
        assert_eq!(
            err_text(b"a 1\nb\n", Text),
            "line 2: expected value after metric, got end of line"
        );
        assert!(
            err_text(b"a 1\nb{x=\"1\"} abc\n", Text).starts_with("line 2: invalid value \"abc\"")
        );
        // Prometheus 2.42's text grammar has no negative timestamps.
        assert!(err_text(b"a 1 -5\n", Text).contains("expected timestamp or new record"));
        assert!(err_text(b"a 1 5 6\n", Text).contains("expected next entry after timestamp"));
        assert!(err_text(b"a 1 99999999999999999999\n", Text).contains("out of range"));
        assert!(err_text(b"# TYPE a counterx\n", Text).contains("invalid metric type \"counterx\""));
        assert!(err_text(b"# HELP 1a x\n", Text).contains("expected metric name after HELP"));
        assert!(err_text(b"a{x=\"1\",x=\"2\"} 1\n", Text).contains("\"x\" is not unique"));
        assert!(err_text(b"a{x=\"\xff\"} 1\n", Text).contains("invalid UTF-8 label value"));
        assert!(err_text(b"# HELP a \xff\n", Text).contains("not valid UTF-8"));
        assert!(err_text(b"a{x=\"1} 1\n", Text).contains("unterminated"));
        assert!(err_text(b"a{,} 1\n", Text).contains("expected label name"));
        assert!(err_text(b"1a 1\n", Text).starts_with("line 1: '1' is not a valid start token"));
        // Line numbers count newlines inside label values.
        assert!(err_text(b"a{x=\"1\n2\"} 1\nb\n", Text).starts_with("line 3:"));
    }

    #[test]
    fn help_and_type_metadata() {
        let mut p = Parser::new(
            b"# HELP a  two\\nlines \\\\ \\x\n# TYPE a gauge\n# HELP b\n",
            Format::Text,
        );
        assert_eq!(
            p.next_entry().unwrap(),
            Some(Entry::Help {
                metric: "a",
                text: Cow::Owned(" two\nlines \\ \\x".to_string())
            })
        );
        assert_eq!(
            p.next_entry().unwrap(),
            Some(Entry::Type {
                metric: "a",
                kind: MetricType::Gauge
            })
        );
        assert_eq!(
            p.next_entry().unwrap(),
            Some(Entry::Help {
                metric: "b",
                text: Cow::Borrowed("")
            })
        );
        assert_eq!(p.next_entry().unwrap(), None);
    }

    #[test]
    fn openmetrics_full_example() {
        let input = "# TYPE foo histogram\n\
# HELP foo Some help\n\
# UNIT foo_seconds seconds\n\
foo_bucket{le=\"0.1\"} 8 # {trace_id=\"abc\"} 0.05 1520879607.789\n\
foo_bucket{le=\"+Inf\"} 17 1520879607.789 # {} 1\n\
foo_count 17\n\
foo_sum 324789.3\n\
foo_created 1520430000.123\n\
bar_total{a=\"b\\\"c\"} 1.5e3 1000\n\
# EOF\n";
        let got = om(input).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[1].2, Some(1520879607789));
        assert_eq!(got[4].0.metric_name(), Some("foo_created"));
        assert_eq!(got[5].0.get("a"), Some("b\"c"));
        assert_eq!(got[5].2, Some(1_000_000));
        // `# EOF` without a final newline is fine.
        assert_eq!(om("a 1\n# EOF").unwrap().len(), 1);
    }

    #[test]
    fn openmetrics_errors() {
        use Format::OpenMetrics as OM;
        assert!(err_text(b"a 1\n", OM).starts_with("line 2: data does not end with # EOF"));
        assert!(err_text(b"", OM).contains("does not end with # EOF"));
        assert!(
            err_text(b"a 1\n# EOF\nb 2\n", OM).starts_with("line 2: unexpected data after # EOF")
        );
        assert!(err_text(b"a 1\n# EOF\n\n", OM).contains("unexpected data after # EOF"));
        assert!(err_text(b"a 1\n\n# EOF\n", OM).contains("blank lines"));
        assert!(err_text(b"# random comment\n# EOF\n", OM).contains("invalid comment"));
        assert!(err_text(b"a{x=\"1\",} 1\n# EOF\n", OM).contains("expected label name after comma"));
        assert!(err_text(b"a  1\n# EOF\n", OM).contains("expected value after metric"));
        assert!(err_text(b"a 1 # {x=\"y\"} 1\n# EOF\n", OM).contains("does not support exemplars"));
        assert!(err_text(b"a_total 1 NaN\n# EOF\n", OM).contains("must be finite"));
        assert!(err_text(b"# TYPE a untyped\n# EOF\n", OM).contains("invalid metric type"));
        assert!(err_text(b"# UNIT a_bytes seconds\n# EOF\n", OM).contains("not a suffix"));
        assert!(err_text(b"# HELP a\n# EOF\n", OM).contains("expected text in HELP"));
        assert!(err_text(b"a{x=\"1\nb\"} 1\n# EOF\n", OM).contains("newline before closing quote"));
        assert!(
            err_text(b"a_total 1 # {x=\"y\"} 1 2 3\n# EOF\n", OM).contains("exemplar timestamp")
        );
    }

    #[test]
    fn huge_lines_are_parsed_or_refused_without_panicking() {
        let long_value = "x".repeat(1 << 20);
        let input = format!("a{{l=\"{long_value}\"}} 1\n");
        assert_eq!(
            text(&input).unwrap()[0].0.get("l").map(str::len),
            Some(1 << 20)
        );
        let garbage = "{".repeat(1 << 20);
        assert!(text(&garbage).is_err());
        let many_labels: String = (0..2000).map(|i| format!("l{i}=\"v\",")).collect();
        let input = format!("a{{{many_labels}}} 1\n");
        assert_eq!(text(&input).unwrap()[0].0.len(), 2001);
        let dup = format!("a{{{many_labels}l5=\"x\"}} 1\n");
        assert!(text(&dup).unwrap_err().to_string().contains("not unique"));
    }

    #[test]
    fn duplicate_series_are_both_returned() {
        // Not a parse error: the store reports the duplicate sample.
        assert_eq!(text("a 1\na 2\n").unwrap().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            for format in [Format::Text, Format::OpenMetrics] {
                let _ = parse_all(&bytes, format);
            }
        }

        #[test]
        fn never_panics_on_exposition_like_text(s in "[a-z_{}=\",# \\\\\n0-9.+eEINFaT\t]{0,200}") {
            for format in [Format::Text, Format::OpenMetrics] {
                let _ = parse_all(s.as_bytes(), format);
            }
        }
    }
}
