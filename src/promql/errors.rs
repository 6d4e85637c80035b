//! Parse errors worded and positioned as Prometheus 2.42 words them.
//!
//! promql-parser's messages carry no position, and some are worded
//! differently (`'rate'` for `"rate"`, `matrix` for `range vector`). Grafana
//! and promtool show the text to the user, so the common classes are
//! rewritten here: errors at the end of the input are positioned there
//! (where Prometheus's lexer reports them), function-call errors at the call
//! or at its first argument, and the type names follow Prometheus. A message
//! this file does not know keeps the crate's wording at `1:1`.

/// `<line>:<col>: parse error: <message>` for the crate's `message` about
/// `query`.
pub fn parse_error_text(query: &str, message: &str) -> String {
    let message = message.strip_prefix("parse error: ").unwrap_or(message);
    let (at, text) = reword(query, message);
    format!("{}: parse error: {text}", position(query, at))
}

/// The byte offset Prometheus reports and its wording of `message`.
fn reword(query: &str, message: &str) -> (usize, String) {
    let end = query.len();
    // Errors raised when the input ends early: Prometheus positions them at
    // the end of the input.
    match message {
        "unclosed left parenthesis" | "unexpected end of input" => {
            return (end, message.to_string())
        }
        "unexpected end of input inside braces" => return (end, message.to_string()),
        "unexpected end of input inside brackets" => {
            return (end, "unclosed left bracket".to_string())
        }
        "unexpected end of input in offset, expected duration" => {
            return (end, message.to_string())
        }
        _ => {}
    }
    if let Some(rest) = message.strip_prefix("unterminated quoted string") {
        let quote = rest.trim().chars().next().unwrap_or('"');
        let at = query.rfind(quote).unwrap_or(0);
        return (at, "unterminated quoted string".to_string());
    }
    // `expected type matrix in call to function 'rate', got vector`: at the
    // call's first argument.
    if let Some(rest) = message.strip_prefix("expected type ") {
        if let Some((want, rest)) = rest.split_once(" in call to function '") {
            if let Some((name, got)) = rest.split_once("', got ") {
                let at = argument_of_type(query, name, got.trim()).unwrap_or(0);
                return (
                    at,
                    format!(
                        "expected type {} in call to function \"{name}\", got {}",
                        type_name(want),
                        type_name(got)
                    ),
                );
            }
        }
    }
    // `expected type scalar in aggregation expression, got string`: the
    // crate's wording for a wrong aggregation parameter too, which
    // Prometheus calls a parameter and positions at it.
    if let Some(rest) = message.strip_prefix("expected type ") {
        if let Some((want, got)) = rest.split_once(" in aggregation expression, got ") {
            let parameter = match want {
                "scalar" => Some(&["topk", "bottomk", "quantile"][..]),
                "string" => Some(&["count_values"][..]),
                _ => None,
            };
            let (what, at) = match parameter {
                Some(names) => (
                    "aggregation parameter",
                    names
                        .iter()
                        .filter_map(|name| first_argument(query, name))
                        .min()
                        .unwrap_or(0),
                ),
                None => ("aggregation expression", 0),
            };
            return (
                at,
                format!(
                    "expected type {} in {what}, got {}",
                    type_name(want),
                    type_name(got)
                ),
            );
        }
    }
    // `expected 2 argument(s) in call to 'histogram_quantile', got 1`: at
    // the call.
    if let Some((head, rest)) = message.split_once(" in call to '") {
        if let Some((name, tail)) = rest.split_once('\'') {
            let at = call(query, name).unwrap_or(0);
            return (at, format!("{head} in call to \"{name}\"{tail}"));
        }
    }
    if let Some(name) = message
        .strip_prefix("unknown function with name '")
        .and_then(|r| r.strip_suffix('\''))
    {
        let at = call(query, name).unwrap_or(0);
        return (at, format!("unknown function with name \"{name}\""));
    }
    // `metric name must not be set twice: 'up' or 'up'`: at the selector.
    if let Some((first, second)) = message
        .strip_prefix("metric name must not be set twice: '")
        .and_then(|r| r.strip_suffix('\''))
        .and_then(|r| r.split_once("' or '"))
    {
        let at = name_followed_by(query, first, '{').unwrap_or(0);
        return (
            at,
            format!("metric name must not be set twice: \"{first}\" or \"{second}\""),
        );
    }
    if let Some((op, tail)) = message
        .strip_prefix("set operator '")
        .and_then(|r| r.split_once('\''))
    {
        return (0, format!("set operator \"{op}\"{tail}"));
    }
    if let Some(got) = message.strip_prefix(
        "unary expression only allowed on expressions of type scalar or vector, got: ",
    ) {
        return (
            0,
            format!(
                "unary expression only allowed on expressions of type scalar or instant vector, got \"{}\"",
                type_name(got)
            ),
        );
    }
    (0, message.to_string())
}

/// Prometheus's name of a value type.
fn type_name(crate_name: &str) -> &str {
    match crate_name.trim() {
        "matrix" => "range vector",
        "vector" => "instant vector",
        other => other,
    }
}

/// Where `name(` starts in `query`, outside quoted strings.
fn call(query: &str, name: &str) -> Option<usize> {
    name_followed_by(query, name, '(')
}

/// Where `name` followed by `next` (spaces between allowed) starts in
/// `query`, outside quoted strings.
fn name_followed_by(query: &str, name: &str, next: char) -> Option<usize> {
    let bytes = query.as_bytes();
    let mut quotes = Quotes::new(query);
    let mut from = 0;
    while let Some(found) = query[from..].find(name) {
        let at = from + found;
        let before_ok = at == 0 || !is_ident(bytes[at - 1]);
        let after = query[at + name.len()..].trim_start();
        if !quotes.inside(at) && before_ok && after.starts_with(next) {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

/// Where the first argument of `name(...)` starts.
fn first_argument(query: &str, name: &str) -> Option<usize> {
    let at = call(query, name)?;
    let open = at + query[at..].find('(')? + 1;
    let skipped = query[open..].len() - query[open..].trim_start().len();
    Some(open + skipped)
}

/// Where the first argument of `name(...)` of type `got` (the crate's type
/// name) starts: the argument the type error is about.
fn argument_of_type(query: &str, name: &str, got: &str) -> Option<usize> {
    let first = first_argument(query, name)?;
    let mut start = first;
    let mut depth = 0usize;
    let mut arguments = Vec::new();
    let mut quotes = Quotes::new(query);
    for (i, &b) in query.as_bytes().iter().enumerate().skip(first) {
        if quotes.inside(i) {
            continue;
        }
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => {
                arguments.push((start, i));
                break;
            }
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                arguments.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    arguments
        .into_iter()
        .find(|&(from, to)| {
            crate::promql::parse_unchecked(&query[from..to])
                .is_ok_and(|e| e.value_type().to_string() == got)
        })
        .map(|(from, to)| from + (query[from..to].len() - query[from..to].trim_start().len()))
        .or(Some(first))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// Walks a query once, answering whether increasing byte offsets lie inside
/// a quoted string (linear in the query, whatever the number of questions).
struct Quotes<'a> {
    bytes: &'a [u8],
    next: usize,
    quote: Option<u8>,
    escaped: bool,
}

impl<'a> Quotes<'a> {
    fn new(query: &'a str) -> Quotes<'a> {
        Quotes {
            bytes: query.as_bytes(),
            next: 0,
            quote: None,
            escaped: false,
        }
    }

    /// Whether `at` (not less than the previous question's) is quoted.
    fn inside(&mut self, at: usize) -> bool {
        while self.next < at.min(self.bytes.len()) {
            let b = self.bytes[self.next];
            match self.quote {
                Some(_) if self.escaped => self.escaped = false,
                Some(q) if q != b'`' && b == b'\\' => self.escaped = true,
                Some(q) if b == q => self.quote = None,
                Some(_) => {}
                None if matches!(b, b'"' | b'\'' | b'`') => self.quote = Some(b),
                None => {}
            }
            self.next += 1;
        }
        self.quote.is_some()
    }
}

/// `line:column` of byte offset `at` (1-based; the column counts bytes, as
/// Prometheus's does).
pub fn position(query: &str, at: usize) -> String {
    let at = at.min(query.len());
    let before = &query.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each query with the error Prometheus 2.42 answered for it (recorded
    /// from Debian's prometheus 2.42.0 on 2026-11-22; the integration test
    /// `promql::parse_errors_match_prometheus` asks the real one again).
    #[test]
    fn prometheus_wording_and_positions() {
        for (query, want) in PROMETHEUS_PARSE_ERRORS {
            let got = match crate::promql::parse(query) {
                Ok(_) => panic!("{query:?} parsed"),
                Err(e) => e,
            };
            assert_eq!(&got, want, "{query:?}");
        }
    }

    pub(crate) const PROMETHEUS_PARSE_ERRORS: &[(&str, &str)] = &[
        ("sum(up", "1:7: parse error: unclosed left parenthesis"),
        ("  sum(up", "1:9: parse error: unclosed left parenthesis"),
        ("rate(up[5m]", "1:12: parse error: unclosed left parenthesis"),
        ("up{", "1:4: parse error: unexpected end of input inside braces"),
        (
            "up{job=\"a\"",
            "1:11: parse error: unexpected end of input inside braces",
        ),
        ("up[5m", "1:6: parse error: unclosed left bracket"),
        (
            "up offset",
            "1:10: parse error: unexpected end of input in offset, expected duration",
        ),
        (
            "rate(up)",
            "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        (
            "rate(1)",
            "1:6: parse error: expected type range vector in call to function \"rate\", got scalar",
        ),
        (
            "histogram_quantile(0.9)",
            "1:1: parse error: expected 2 argument(s) in call to \"histogram_quantile\", got 1",
        ),
        (
            "abs(1, 2)",
            "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2",
        ),
        (
            "nosuchfn(up)",
            "1:1: parse error: unknown function with name \"nosuchfn\"",
        ),
        (
            "1 and 2",
            "1:1: parse error: set operator \"and\" not allowed in binary scalar expression",
        ),
        (
            "-\"a\"",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
        ),
        ("\"unterminated", "1:1: parse error: unterminated quoted string"),
        ("up +", "1:5: parse error: unexpected end of input"),
        ("up\n+\n", "3:1: parse error: unexpected end of input"),
        (
            "{}",
            "1:1: parse error: vector selector must contain at least one non-empty matcher",
        ),
        (
            "round(up, \"a\")",
            "1:11: parse error: expected type scalar in call to function \"round\", got string",
        ),
        (
            "count_values(1, up)",
            "1:14: parse error: expected type string in aggregation parameter, got scalar",
        ),
        (
            "quantile(\"a\", up)",
            "1:10: parse error: expected type scalar in aggregation parameter, got string",
        ),
        (
            "absent(nonexistent{__name__=\"nonexistent\", a!=\"b\"})",
            "1:8: parse error: metric name must not be set twice: \"nonexistent\" or \"nonexistent\"",
        ),
        (
            "topk(up)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
        ),
        (
            "x[5m] + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
    ];

    proptest::proptest! {
        /// Query text comes from the network: rewording an error never
        /// panics, whatever the bytes (multi-byte characters next to
        /// function names, quotes, unbalanced brackets).
        #[test]
        fn rewording_never_panics(query in "(rate|sum|abs|count_values|topk|[(){}\\[\\],\"'`:= ]|é|x|1|5m|\n){0,24}") {
            if let Err(e) = crate::promql::parse(&query) {
                // Always Prometheus's shape: `<line>:<col>: parse error: <what>`.
                let (position, rest) = e.split_once(": parse error: ").unwrap_or(("", ""));
                let (line, col) = position.split_once(':').unwrap_or(("", ""));
                proptest::prop_assert!(
                    line.parse::<usize>().is_ok_and(|l| l >= 1)
                        && col.parse::<usize>().is_ok_and(|c| c >= 1)
                        && !rest.is_empty(),
                    "{:?}: {}", query, e
                );
            }
        }
    }

    #[test]
    fn positions_count_lines_and_bytes() {
        assert_eq!(position("up\n+\n", 5), "3:1");
        assert_eq!(position("ab", 0), "1:1");
        assert_eq!(position("ab", 9), "1:3");
        assert!(Quotes::new("a{x=\"rate(\"}").inside(6));
        assert_eq!(call("x{a=\"rate(\"} + rate (y)", "rate"), Some(15));
    }
}
