//! Alertmanager's label matchers: the `matchers: ['severity="critical"']`
//! syntax of routes and inhibit rules (Alertmanager 0.25's pkg/labels), the
//! legacy `match`/`match_re` maps, and `amtool`'s `name=value` label
//! arguments. A label the alert does not have matches as the empty string.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use crate::model::Labels;

/// The four operators, ordered as Alertmanager orders them when it sorts
/// matchers (`=`, `!=`, `=~`, `!~`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

/// One matcher. Regular expressions are anchored (`^(?:…)$`).
#[derive(Clone, Debug)]
pub struct Matcher {
    pub kind: MatchType,
    pub name: String,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Matcher) -> bool {
        self.kind == other.kind && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Matcher, String> {
        let re = match kind {
            MatchType::Regexp | MatchType::NotRegexp => Some(anchored(value)?),
            _ => None,
        };
        Ok(Matcher {
            kind,
            name: name.to_string(),
            value: value.to_string(),
            re,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match (self.kind, &self.re) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regexp, Some(re)) => re.is_match(value),
            (MatchType::NotRegexp, Some(re)) => !re.is_match(value),
            // `new` always compiles the regex of a regex matcher.
            (_, None) => false,
        }
    }

    /// Alertmanager's sort order: name, then value, then operator.
    fn sort_key(&self) -> (&str, &str, MatchType) {
        (&self.name, &self.value, self.kind)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let escaped = self
            .value
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('"', "\\\"");
        write!(f, "{}{}\"{}\"", self.name, self.kind.as_str(), escaped)
    }
}

/// Compiles `^(?:value)$`, with a message naming the expression on error.
pub fn anchored(value: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{value})$"))
        .map_err(|e| crate::config::values::describe_regex_error(value, &e))
}

/// A sorted list of matchers; all must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn sorted(mut matchers: Vec<Matcher>) -> Matchers {
        matchers.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        Matchers(matchers)
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// Go's `\s` is ASCII whitespace; spelled out so Unicode spaces don't count.
static MATCHER_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\t\n\x0C\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\x0C\r ]*(=~|=|!=|!~)[\t\n\x0C\r ]*((?s).*?)[\t\n\x0C\r ]*$")
        .expect("static regex")
});

/// Parses one line of a `matchers` list: one matcher or several separated by
/// commas (outside double quotes), optionally in braces.
pub fn parse_matchers(line: &str) -> Result<Vec<Matcher>, String> {
    let s = line.strip_prefix('{').unwrap_or(line);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !quoted => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    quoted = !quoted;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\u{b}');
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

/// Parses `name<op>value` where the value may be double-quoted with `\"`,
/// `\\` and `\n` escapes.
pub fn parse_matcher(text: &str) -> Result<Matcher, String> {
    let caps = MATCHER_RE
        .captures(text)
        .ok_or_else(|| format!("bad matcher format: {text}"))?;
    let (name, op, raw) = (&caps[1], &caps[2], &caps[3]);
    let kind = match op {
        "=" => MatchType::Equal,
        "!=" => MatchType::NotEqual,
        "=~" => MatchType::Regexp,
        _ => MatchType::NotRegexp,
    };
    let (body, mut expect_quote) = match raw.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    let unescaped_quote = || format!("matcher value contains unescaped double quote: {raw}");
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if i + 1 < body.len() => escaped = true,
            '"' => {
                if !expect_quote || i + 1 < body.len() {
                    return Err(unescaped_quote());
                }
                expect_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(unescaped_quote());
    }
    Matcher::new(kind, name, &value)
}

/// One entry of a `matchers` list, which may hold several matchers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatcherLine(pub Vec<Matcher>);

impl<'de> Deserialize<'de> for MatcherLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::values::deserialize_parsed(
            d,
            "a matcher such as `severity=\"critical\"`",
            |s| parse_matchers(s).map(MatcherLine),
        )
    }
}

/// A `match_re` value: an anchored regular expression, kept with its source.
#[derive(Clone, Debug)]
pub struct AnchoredRegex {
    pub source: String,
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::values::deserialize_parsed(d, "a regular expression", |s| {
            anchored(s).map(|_| AnchoredRegex {
                source: s.to_string(),
            })
        })
    }
}

/// Parses amtool-style label arguments (`name=value`, value optionally quoted).
pub fn parse_label_args(args: &[String]) -> Result<Labels, String> {
    let mut pairs = std::collections::BTreeMap::new();
    for arg in args {
        let m = parse_matcher(arg)?;
        if m.kind != MatchType::Equal {
            return Err(format!(
                "labels must be specified as key=value pairs: {arg}"
            ));
        }
        pairs.insert(m.name, m.value);
    }
    Ok(Labels::new(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Matcher {
        parse_matcher(s).unwrap()
    }

    #[test]
    fn parses_alertmanager_matcher_syntax() {
        let m = one(r#"severity="critical""#);
        assert_eq!(
            (m.kind, m.name.as_str(), m.value.as_str()),
            (MatchType::Equal, "severity", "critical")
        );
        let m = one(r#" job =~ "a|b" "#);
        assert_eq!((m.kind, m.value.as_str()), (MatchType::Regexp, "a|b"));
        assert!(m.matches("a") && m.matches("b") && !m.matches("ab"));
        let m = one("env!=prod");
        assert_eq!((m.kind, m.value.as_str()), (MatchType::NotEqual, "prod"));
        let m = one(r#"msg="say \"hi\"\nnow\x""#);
        assert_eq!(m.value, "say \"hi\"\nnow\\x");
        assert_eq!(m.to_string(), r#"msg="say \"hi\"\nnow\\x""#);
        assert!(parse_matcher("9job=x").is_err());
        assert!(parse_matcher(r#"a="b"c""#).is_err());
        assert!(parse_matcher(r#"a="b"#).is_err());
        assert!(parse_matcher("a=~(").is_err());
    }

    #[test]
    fn splits_lines_on_commas_outside_quotes() {
        let ms = parse_matchers(r#"{a="x,y", b!~"z.*"}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].value, "x,y");
        assert_eq!(ms[1].kind, MatchType::NotRegexp);
        assert!(parse_matchers("").unwrap().is_empty());
    }

    #[test]
    fn missing_labels_match_as_empty() {
        let ms = Matchers::sorted(vec![one("team!=ops"), one(r#"env=~"|dev""#)]);
        assert!(ms.matches(&Labels::new([("x", "y")])));
        assert!(!ms.matches(&Labels::new([("team", "ops")])));
        assert_eq!(ms.to_string(), r#"{env=~"|dev",team!="ops"}"#);
    }

    #[test]
    fn label_args_must_be_equalities() {
        let labels = parse_label_args(&["a=b".into(), r#"c="d e""#.into()]).unwrap();
        assert_eq!(labels.get("c"), Some("d e"));
        assert!(parse_label_args(&["a!=b".into()]).is_err());
    }
}
