//! The template functions: Go's text/template builtins and Prometheus 2.42's
//! function map (template/template.go), each with its Go signature so that
//! argument errors read as Go's.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::gofmt::{format_float, format_float_v, go_quote, sprint, sprintf, sprintln};
use super::value::{SampleValue, Value};
use super::QueryFunc;

/// Which function map a template sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Prometheus 2.42's alert templates.
    Prometheus,
    /// Alertmanager 0.25's notification templates (template.DefaultFuncs).
    Alertmanager,
}

/// What the functions may reach besides their arguments.
pub struct Context<'a> {
    pub query: &'a dyn QueryFunc,
    pub external_url: &'a str,
    pub dialect: Dialect,
    /// Escape every action's output for HTML text (what html/template does
    /// in text context), except `safeHtml` values.
    pub escape_html: bool,
}

/// html/template's escaping of text: `"` `&` `'` `+` `<` `>` and NUL.
pub fn html_text_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A parameter's Go type, for text/template's argument checks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param {
    /// No type check (the receiver of a field chain).
    Untyped,
    /// `interface {}`
    Any,
    /// `reflect.Value` (the builtins)
    Reflect,
    /// `string`
    Str,
    /// `*template.sample`
    Sample,
    /// `template.queryResult`
    QueryResult,
    /// `[]string`
    StrSlice,
}

impl Param {
    pub fn go_type(self) -> &'static str {
        match self {
            Param::Untyped | Param::Any => "interface {}",
            Param::Reflect => "reflect.Value",
            Param::Str => "string",
            Param::Sample => "*template.sample",
            Param::QueryResult => "template.queryResult",
            Param::StrSlice => "[]string",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Builtin {
    And,
    Or,
}

pub struct Signature {
    pub params: &'static [Param],
    pub variadic: Option<Param>,
    pub builtin: Option<Builtin>,
}

const fn sig(params: &'static [Param], variadic: Option<Param>) -> Signature {
    Signature {
        params,
        variadic,
        builtin: None,
    }
}

use Param::{Any, QueryResult, Reflect, Sample, Str, StrSlice};

/// Every function a template of `dialect` can call, with its Go signature;
/// `None` for unknown names.
pub fn signature(name: &str, dialect: Dialect) -> Option<Signature> {
    if dialect == Dialect::Alertmanager {
        return match name {
            "toUpper" | "toLower" | "title" | "safeHtml" => Some(sig(&[Str], None)),
            "join" => Some(sig(&[Str, StrSlice], None)),
            "match" => Some(sig(&[Str, Str], None)),
            "reReplaceAll" => Some(sig(&[Str, Str, Str], None)),
            "stringSlice" => Some(sig(&[], Some(Str))),
            "and" | "or" | "not" | "len" | "index" | "slice" | "call" | "eq" | "ne" | "lt"
            | "le" | "gt" | "ge" | "html" | "js" | "urlquery" | "print" | "println" | "printf" => {
                signature(name, Dialect::Prometheus)
            }
            _ => None,
        };
    }
    Some(match name {
        // text/template builtins
        "and" => Signature {
            params: &[Reflect],
            variadic: Some(Reflect),
            builtin: Some(Builtin::And),
        },
        "or" => Signature {
            params: &[Reflect],
            variadic: Some(Reflect),
            builtin: Some(Builtin::Or),
        },
        "not" | "len" => sig(&[Reflect], None),
        "index" | "slice" | "call" | "eq" => sig(&[Reflect], Some(Reflect)),
        "ne" | "lt" | "le" | "gt" | "ge" => sig(&[Reflect, Reflect], None),
        "html" | "js" | "urlquery" | "print" | "println" => sig(&[], Some(Any)),
        "printf" => sig(&[Str], Some(Any)),
        // Prometheus
        "query" => sig(&[Str], None),
        "first" => sig(&[QueryResult], None),
        "label" => sig(&[Str, Sample], None),
        "value" | "strvalue" => sig(&[Sample], None),
        "args" => sig(&[], Some(Any)),
        "reReplaceAll" => sig(&[Str, Str, Str], None),
        "safeHtml" | "title" | "toUpper" | "toLower" | "graphLink" | "tableLink" | "stripPort"
        | "stripDomain" | "parseDuration" => sig(&[Str], None),
        "match" => sig(&[Str, Str], None),
        "sortByLabel" => sig(&[Str, QueryResult], None),
        "humanize" | "humanize1024" | "humanizeDuration" | "humanizePercentage"
        | "humanizeTimestamp" | "toTime" => sig(&[Any], None),
        "pathPrefix" | "externalURL" => sig(&[], None),
        _ => return None,
    })
}

/// Is `name` a function templates may call (the parser's check)?
pub fn is_defined(name: &str, dialect: Dialect) -> bool {
    signature(name, dialect).is_some()
}

const NIL_DEREF: &str = "runtime error: invalid memory address or nil pointer dereference";

fn string_arg(args: &[Value], i: usize) -> &str {
    match args.get(i) {
        Some(Value::String(s)) => s,
        _ => "",
    }
}

fn sample_arg(args: &[Value], i: usize) -> Result<&SampleValue, String> {
    match args.get(i) {
        Some(Value::Sample(s)) => Ok(s),
        _ => Err(NIL_DEREF.to_string()),
    }
}

/// Calls a function whose arguments already passed the type checks.
/// Err is the function's own error (the caller adds `error calling NAME:`).
pub fn call(name: &str, args: &[Value], ctx: &Context<'_>) -> Result<Value, String> {
    let s = |i: usize| string_arg(args, i);
    Ok(match name {
        "not" => Value::Bool(!args.first().is_some_and(Value::truth)),
        "len" => Value::Int(length(args.first().unwrap_or(&Value::Nil))?),
        "index" => index(args)?,
        "slice" => slice(args)?,
        "call" => {
            return Err(match args.first() {
                None | Some(Value::Nil) => "call of nil".to_string(),
                Some(v) => format!("non-function of type {}", v.type_name()),
            })
        }
        "eq" => {
            let (first, rest) = args
                .split_first()
                .ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            let mut truth = false;
            for other in rest {
                if eq(first, other)? {
                    truth = true;
                    break;
                }
            }
            Value::Bool(truth)
        }
        "ne" => Value::Bool(!eq(&args[0], &args[1])?),
        "lt" => Value::Bool(lt(&args[0], &args[1])?),
        "le" => Value::Bool(lt(&args[0], &args[1])? || eq(&args[0], &args[1])?),
        "gt" => Value::Bool(!(lt(&args[0], &args[1])? || eq(&args[0], &args[1])?)),
        "ge" => Value::Bool(!lt(&args[0], &args[1])?),
        "html" => Value::String(gotmpl::html_escape(&eval_args(args)).into()),
        "js" => Value::String(gotmpl::js_escape(&eval_args(args)).into()),
        "urlquery" => Value::String(query_escape(&eval_args(args)).into()),
        "print" => Value::String(sprint(args).into()),
        "println" => Value::String(sprintln(args).into()),
        "printf" => Value::String(sprintf(s(0), &args[1..]).into()),

        "query" => {
            let samples = ctx.query.query(s(0))?;
            Value::QueryResult(Arc::new(
                samples
                    .into_iter()
                    .map(|q| {
                        Arc::new(SampleValue {
                            labels: Arc::new(q.labels),
                            value: q.value,
                        })
                    })
                    .collect(),
            ))
        }
        "first" => match args.first() {
            Some(Value::QueryResult(v)) if !v.is_empty() => Value::Sample(Arc::clone(&v[0])),
            _ => return Err("first() called on vector with no elements".into()),
        },
        "label" => {
            let sample = sample_arg(args, 1)?;
            Value::str(sample.labels.get(s(0)).map_or("", String::as_str))
        }
        "value" => Value::Float(sample_arg(args, 0)?.value),
        "strvalue" => {
            let sample = sample_arg(args, 0)?;
            Value::str(sample.labels.get("__value__").map_or("", String::as_str))
        }
        "args" => Value::Args(Arc::new(
            args.iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a.clone()))
                .collect::<BTreeMap<_, _>>(),
        )),
        "reReplaceAll" => {
            // Go's regexp.MustCompile panics; text/template turns the panic into this error.
            let re = compile_regex(s(0))
                .map_err(|e| format!("regexp: Compile({}): {e}", backquote(s(0))))?;
            Value::String(re.replace_all(s(2), s(1)).into_owned().into())
        }
        "safeHtml" => Value::Html(s(0).into()),
        "match" => Value::Bool(compile_regex(s(0))?.is_match(s(1))),
        "title" if ctx.dialect == Dialect::Alertmanager => Value::String(title_cased(s(0)).into()),
        "title" => Value::String(title(s(0)).into()),
        "join" => match args.get(1) {
            Some(Value::Strings(items)) => Value::String(items.join(s(0)).into()),
            _ => Value::str(""),
        },
        "stringSlice" => Value::Strings(Arc::new(
            args.iter()
                .map(|a| match a {
                    Value::String(s) => s.to_string(),
                    _ => String::new(),
                })
                .collect(),
        )),
        "toUpper" => Value::String(map_runes(s(0), char::to_uppercase).into()),
        "toLower" => Value::String(map_runes(s(0), char::to_lowercase).into()),
        "graphLink" => {
            Value::String(format!("/graph?g0.expr={}&g0.tab=0", query_escape(s(0))).into())
        }
        "tableLink" => {
            Value::String(format!("/graph?g0.expr={}&g0.tab=1", query_escape(s(0))).into())
        }
        "sortByLabel" => {
            let label = s(0);
            match args.get(1) {
                Some(Value::QueryResult(v)) => {
                    let mut sorted: Vec<Arc<SampleValue>> = v.as_ref().clone();
                    // sort.Stable, comparing the label's value ("" when absent).
                    sorted.sort_by(|a, b| {
                        let va = a.labels.get(label).map_or("", String::as_str);
                        let vb = b.labels.get(label).map_or("", String::as_str);
                        va.cmp(vb)
                    });
                    Value::QueryResult(Arc::new(sorted))
                }
                _ => Value::QueryResult(Arc::new(Vec::new())),
            }
        }
        "stripPort" => Value::str(match split_host_port(s(0)) {
            Some((host, _)) => host,
            None => s(0),
        }),
        "stripDomain" => Value::String(strip_domain(s(0)).into()),
        "humanize" => Value::String(humanize(to_float(&args[0])?).into()),
        "humanize1024" => Value::String(humanize1024(to_float(&args[0])?).into()),
        "humanizeDuration" => Value::String(humanize_duration(to_float(&args[0])?).into()),
        "humanizePercentage" => Value::String(
            format!(
                "{}%",
                format_float(to_float(&args[0])? * 100.0, 'g', Some(4))
            )
            .into(),
        ),
        "humanizeTimestamp" => {
            let v = to_float(&args[0])?;
            if v.is_nan() || v.is_infinite() {
                Value::String(format_float(v, 'g', Some(4)).into())
            } else {
                Value::String(super::value::time_string(float_to_time(v)?).into())
            }
        }
        "toTime" => {
            let v = to_float(&args[0])?;
            if v.is_nan() || v.is_infinite() {
                return Err("value is NaN or Inf".into());
            }
            Value::Time(float_to_time(v)?)
        }
        // Prometheus dereferences its *url.URL here; with no URL (promtool's
        // unit tests pass nil) that is Go's nil-pointer panic.
        "pathPrefix" | "externalURL" if ctx.external_url.is_empty() => return Err(NIL_DEREF.into()),
        "pathPrefix" => Value::String(url_path(ctx.external_url).into()),
        "externalURL" => Value::str(ctx.external_url),
        "parseDuration" => {
            let d = s(0);
            match crate::config::values::parse_duration(d) {
                Ok(dur) => Value::Float(dur.as_nanos() as f64 / 1e9),
                Err(_) if d.is_empty() => return Err("empty duration string".into()),
                Err(e) if e.starts_with("duration out of range") => {
                    return Err("duration out of range".into())
                }
                Err(_) => return Err(format!("not a valid duration string: {}", go_quote(d))),
            }
        }
        other => return Err(format!("{} is not a defined function", go_quote(other))),
    })
}

/// Methods of `*time.Time` that take no arguments (what `toTime` users
/// call); `None` for other names.
pub fn time_method(ms: i64, name: &str) -> Option<Value> {
    let secs = ms.div_euclid(1000);
    Some(match name {
        "Unix" => Value::Int(secs),
        "UnixMilli" => Value::Int(ms),
        "UnixMicro" => Value::Int(ms.saturating_mul(1000)),
        "UnixNano" => Value::Int(ms.saturating_mul(1_000_000)),
        "UTC" | "Local" => Value::Time(ms),
        "String" => Value::String(super::value::time_string(ms).into()),
        "Year" => Value::Int(crate::model::civil_from_days(secs.div_euclid(86_400)).0),
        "Day" => Value::Int(crate::model::civil_from_days(secs.div_euclid(86_400)).2),
        "Hour" => Value::Int(secs.rem_euclid(86_400) / 3600),
        "Minute" => Value::Int(secs.rem_euclid(3600) / 60),
        "Second" => Value::Int(secs.rem_euclid(60)),
        "Nanosecond" => Value::Int(ms.rem_euclid(1000) * 1_000_000),
        "YearDay" => {
            let days = secs.div_euclid(86_400);
            let (year, _, _) = crate::model::civil_from_days(days);
            let mut start = days;
            while crate::model::civil_from_days(start - 1).0 == year {
                start -= 1;
            }
            Value::Int(days - start + 1)
        }
        _ => return None,
    })
}

/// text/template's evalArgs: one string argument as is, otherwise Sprint.
fn eval_args(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.to_string(),
        _ => sprint(args),
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn url_path(url: &str) -> String {
    // url.URL.Path of an absolute URL: after scheme://host, before ? or #.
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => return url.split(['?', '#']).next().unwrap_or("").to_string(),
    };
    match rest.find('/') {
        Some(i) => rest[i..].split(['?', '#']).next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|e| format!("error parsing regexp: {}", go_regex_error(pattern, &e)))
}

/// Go's `regexp/syntax` wording for the common pattern mistakes (the
/// kinds Go shares with Rust's parser); other errors keep Rust's text.
fn go_regex_error(pattern: &str, fallback: &regex::Error) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) else {
        return fallback.to_string();
    };
    let span = e.span();
    let fragment = pattern
        .get(span.start.offset..span.end.offset)
        .unwrap_or("");
    let (code, expr) = match e.kind() {
        K::GroupUnclosed => ("missing closing )", pattern),
        K::GroupUnopened => ("unexpected )", pattern),
        K::ClassUnclosed => (
            "missing closing ]",
            pattern.get(span.start.offset..).unwrap_or(""),
        ),
        K::RepetitionMissing => ("missing argument to repetition operator", fragment),
        K::EscapeUnrecognized => ("invalid escape sequence", fragment),
        K::EscapeUnexpectedEof => ("trailing backslash at end of expression", ""),
        K::ClassRangeInvalid => ("invalid character class range", fragment),
        K::RepetitionCountInvalid | K::RepetitionCountUnclosed | K::RepetitionCountDecimalEmpty => {
            ("invalid repeat count", fragment)
        }
        K::GroupNameInvalid
        | K::GroupNameEmpty
        | K::GroupNameUnexpectedEof
        | K::GroupNameDuplicate { .. } => ("invalid named capture", fragment),
        _ => return fallback.to_string(),
    };
    format!("{code}: {}", backquote(expr))
}

/// Go's `regexp` quoting of a pattern in messages (backquoted when possible).
fn backquote(s: &str) -> String {
    if s.contains('`') || s.chars().any(|c| c.is_control() && c != '\t') {
        go_quote(s)
    } else {
        format!("`{s}`")
    }
}

/// Go's rune-wise case mapping: a rune whose mapping is several runes
/// (like ß upper-cased) stays as it is.
fn map_runes<I: Iterator<Item = char>>(s: &str, f: fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            let mut mapped = f(c);
            match (mapped.next(), mapped.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

/// Go's (deprecated) `strings.Title`.
fn title(s: &str) -> String {
    let is_separator = |r: char| -> bool {
        if r.is_ascii() {
            return !(r.is_ascii_alphanumeric() || r == '_');
        }
        if r.is_alphabetic() || r.is_numeric() {
            return false;
        }
        r.is_whitespace()
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) {
                let mut up = c.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(m), None) => m,
                    _ => c,
                }
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// `cases.Title(language.AmericanEnglish).String` (Alertmanager's
/// `title`): each word's first letter upper-cased, the rest lower-cased; an
/// apostrophe inside a word does not start a new one.
fn title_cased(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    let mut prev = ' ';
    for c in s.chars() {
        let letter = c.is_alphanumeric();
        if letter {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = in_word && (c == '\'' || c == '’') && prev.is_alphanumeric();
        }
        prev = c;
    }
    out
}

/// Go's `net.SplitHostPort`; `None` where Go returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

fn strip_domain(hostport: &str) -> String {
    let (host, port) = split_host_port(hostport).unwrap_or((hostport, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hostport.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Prometheus's convertToFloat.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal and special forms.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    let body = s.trim_start_matches(['+', '-']);
    let special = body.eq_ignore_ascii_case("inf")
        || body.eq_ignore_ascii_case("infinity")
        || body.eq_ignore_ascii_case("nan");
    if s.len() - body.len() > 1
        || (!special
            && !body
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
    {
        return Err(syntax());
    }
    if body.eq_ignore_ascii_case("nan") && s.len() != body.len() {
        return Err(syntax());
    }
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        ));
    }
    Ok(v)
}

fn float_to_time(v: f64) -> Result<i64, String> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float_v(v)
        ));
    }
    Ok((ns as i64) / 1_000_000)
}

fn g4(v: f64) -> String {
    format_float(v, 'g', Some(4))
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

// ---- builtins over reflect-like values ----

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    String,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::String(_) | Value::Html(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Byte(b) => i64::from(*b),
        _ => 0,
    }
}

fn as_str(v: &Value) -> &str {
    match v {
        Value::String(s) | Value::Html(s) => s,
        _ => "",
    }
}

fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(as_i64(a) == as_i64(b)),
            _ if *a != Value::Nil && *b != Value::Nil => {
                Err("incompatible types for comparison".into())
            }
            _ => Ok(false),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::Nil, Value::Nil) => true,
        _ if k1 == Kind::Int || k1 == Kind::Uint => as_i64(a) == as_i64(b),
        _ if k1 == Kind::String => as_str(a) == as_str(b),
        (Value::Sample(x), Value::Sample(y)) => Arc::ptr_eq(x, y),
        (Value::Time(x), Value::Time(y)) => x == y,
        _ if a.type_name() != b.type_name() => {
            return Err("incompatible types for comparison".into())
        }
        _ => {
            return Err(format!(
                "non-comparable type {}: {}",
                a.go_value_string(),
                a.type_name()
            ))
        }
    })
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) | (Kind::Uint, Kind::Int) => Ok(as_i64(a) < as_i64(b)),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match (a, b) {
        (Value::Bool(_), _) => return Err("invalid type for comparison".into()),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y) == Some(Ordering::Less),
        _ if k1 == Kind::String => as_str(a) < as_str(b),
        _ => as_i64(a) < as_i64(b),
    })
}

/// The type `len` and `index` report: Go dereferences pointers first.
fn indirect_type_name(v: &Value) -> String {
    match v {
        Value::Sample(_) => "template.sample".into(),
        Value::Time(_) => "time.Time".into(),
        other => other.type_name(),
    }
}

fn length(v: &Value) -> Result<i64, String> {
    Ok(match v {
        Value::String(s) | Value::Html(s) => s.len() as i64,
        Value::Labels(m) => m.len() as i64,
        Value::Args(m) => m.len() as i64,
        Value::QueryResult(q) => q.len() as i64,
        Value::Kv(m) => m.len() as i64,
        Value::Pairs(p) => p.len() as i64,
        Value::Strings(v) => v.len() as i64,
        Value::Alerts(v) => v.len() as i64,
        other => return Err(format!("len of type {}", indirect_type_name(other))),
    })
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Byte(b) => i64::from(*b),
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ))
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn map_key(index: &Value) -> Result<&str, String> {
    match index {
        Value::String(s) => Ok(s),
        Value::Nil => Err("value is nil; should be of type string".into()),
        other => Err(format!(
            "value has type {}; should be string",
            other.type_name()
        )),
    }
}

fn index(args: &[Value]) -> Result<Value, String> {
    let mut item = args.first().cloned().unwrap_or(Value::Nil);
    if item == Value::Nil {
        return Err("index of untyped nil".into());
    }
    for idx in &args[1..] {
        item = match &item {
            Value::String(s) | Value::Html(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Byte(*b),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::QueryResult(q) => {
                let x = index_arg(idx, q.len())?;
                match q.get(x) {
                    Some(s) => Value::Sample(Arc::clone(s)),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Labels(m) | Value::Kv(m) => {
                Value::str(m.get(map_key(idx)?).map_or("", String::as_str))
            }
            Value::Strings(v) => {
                let x = index_arg(idx, v.len())?;
                match v.get(x) {
                    Some(s) => Value::str(s),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Alerts(v) => {
                let x = index_arg(idx, v.len())?;
                match v.get(x) {
                    Some(a) => Value::AmAlert(Arc::clone(a)),
                    None => return Err(format!("index out of range: {x}")),
                }
            }
            Value::Args(m) => m.get(map_key(idx)?).cloned().unwrap_or(Value::Nil),
            Value::Nil => return Err("index of nil pointer".into()),
            other => {
                return Err(format!(
                    "can't index item of type {}",
                    indirect_type_name(other)
                ))
            }
        };
    }
    Ok(item)
}

fn slice(args: &[Value]) -> Result<Value, String> {
    let item = args.first().cloned().unwrap_or(Value::Nil);
    let indexes = &args[1..];
    if item == Value::Nil {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match &item {
        Value::String(s) | Value::Html(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::QueryResult(q) => q.len(),
        other => {
            return Err(format!(
                "can't slice item of type {}",
                indirect_type_name(other)
            ))
        }
    };
    let mut idx = [0, len, len];
    for (i, index) in indexes.iter().enumerate() {
        idx[i] = index_arg(index, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match &item {
        Value::String(s) => Value::String(
            String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]])
                .into_owned()
                .into(),
        ),
        Value::Html(s) => Value::Html(
            String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]])
                .into_owned()
                .into(),
        ),
        Value::QueryResult(q) => Value::QueryResult(Arc::new(q[idx[0]..idx[1]].to_vec())),
        _ => Value::Nil,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_family() {
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.000123), "123u");
        assert_eq!(humanize(-1500.0), "-1.5k");
        assert_eq!(humanize1024(1024.0 * 1024.0), "1Mi");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_duration(0.5), "500ms");
        assert_eq!(humanize_duration(59.0), "59s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86400.0 * 3.0 + 1.0), "3d 0h 0m 1s");
        assert_eq!(humanize_duration(-90.0), "-1m 30s");
        assert_eq!(humanize_duration(0.0), "0s");
    }

    #[test]
    fn host_port_helpers() {
        assert_eq!(split_host_port("h:9"), Some(("h", "9")));
        assert_eq!(split_host_port("[::1]:9"), Some(("::1", "9")));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(strip_domain("a.b.c:80"), "a:80");
        assert_eq!(strip_domain("10.0.0.1:80"), "10.0.0.1:80");
        assert_eq!(strip_domain("a.b.c"), "a");
        assert_eq!(title("hello wORLD-foo_bar"), "Hello WORLD-Foo_bar");
        assert_eq!(query_escape("a b/c"), "a+b%2Fc");
    }
}
