//! The host collectors' output: metric families in the Prometheus text
//! format 0.0.4, as node_exporter's client library writes them (families
//! sorted by name, samples by label values, label names sorted, HELP escaped).
//!
//! Collectors add samples with [`Exposition::add`]; the family's HELP and
//! TYPE are given with every sample (they are `&'static str` or cheap) and
//! the first one wins, as one family has one description.

use std::fmt::Write;

/// A metric family's type, as the text format names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    /// (label pairs, value); label names are `&'static str`, values owned.
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Metric families being collected.
#[derive(Default)]
pub struct Exposition {
    families: Vec<Family>,
    /// Index of the family last added to, so runs of samples of one family
    /// (the usual order) find it without a search.
    last: usize,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Adds one sample to the family `name`, creating the family with `help`
    /// and `kind` if it is new.
    pub fn add(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) {
        let index = match self.families.get(self.last) {
            Some(f) if f.name == name => self.last,
            _ => match self.families.iter().position(|f| f.name == name) {
                Some(i) => i,
                None => {
                    self.families.push(Family {
                        name: name.to_string(),
                        help: help.to_string(),
                        kind,
                        samples: Vec::new(),
                    });
                    self.families.len() - 1
                }
            },
        };
        self.last = index;
        self.families[index].samples.push((labels, value));
    }

    /// Number of samples added so far.
    pub fn len(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.families.iter().all(|f| f.samples.is_empty())
    }

    /// Writes the families in the text format. A family that received the
    /// same label set twice keeps the first sample (client_golang would refuse
    /// the whole scrape; one bad mount line must not hide every metric).
    pub fn render(mut self, out: &mut String) {
        self.families.sort_by(|a, b| a.name.cmp(&b.name));
        for family in &mut self.families {
            if family.samples.is_empty() {
                continue;
            }
            for (labels, _) in &mut family.samples {
                labels.sort_by(|a, b| a.0.cmp(b.0));
            }
            // Stable: among equal label sets the first added stays first.
            family.samples.sort_by(|a, b| a.0.cmp(&b.0));
            family
                .samples
                .dedup_by(|later, earlier| later.0 == earlier.0);
            write_family_header(out, &family.name, &family.help, family.kind.as_str());
            for (labels, value) in &family.samples {
                write_sample(out, &family.name, labels, *value);
            }
        }
    }
}

/// `# HELP` and `# TYPE` lines of one family (text format 0.0.4); shared
/// with the probe module's renderer.
pub(crate) fn write_family_header(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// One sample line: `name{label="value",...} value`.
pub(crate) fn write_sample<N: AsRef<str>>(
    out: &mut String,
    name: &str,
    labels: &[(N, String)],
    value: f64,
) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label.as_ref());
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Rust's shortest round-trip form; integers print without a fraction.
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_escaped_and_deduplicated() {
        let mut e = Exposition::new();
        e.add("b_total", "B.", Kind::Counter, vec![("x", "2".into())], 2.0);
        e.add(
            "a",
            "Help with \\ and\nnewline",
            Kind::Gauge,
            vec![("z", "q\"\n\\".into()), ("m", "1".into())],
            0.5,
        );
        e.add("b_total", "B.", Kind::Counter, vec![("x", "1".into())], 1.0);
        e.add("b_total", "B.", Kind::Counter, vec![("x", "1".into())], 9.0);
        e.add("c", "C.", Kind::Untyped, vec![], f64::NAN);
        assert_eq!(e.len(), 5);
        let mut out = String::new();
        e.render(&mut out);
        assert_eq!(
            out,
            "# HELP a Help with \\\\ and\\nnewline\n# TYPE a gauge\na{m=\"1\",z=\"q\\\"\\n\\\\\"} 0.5\n\
             # HELP b_total B.\n# TYPE b_total counter\nb_total{x=\"1\"} 1\nb_total{x=\"2\"} 2\n\
             # HELP c C.\n# TYPE c untyped\nc NaN\n"
        );
    }
}
