//! The values a Prometheus alert template handles, each carrying the Go type
//! it has in Prometheus, because text/template's behaviour depends on it: a
//! missing key of a `map[string]string` reads as `""` under
//! `missingkey=zero`, argument type errors name Go types, and `%v` prints
//! each type its own way.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gofmt::format_float_v;

/// One sample of a `query` result: Prometheus's `*template.sample`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleValue {
    pub labels: Arc<BTreeMap<String, String>>,
    pub value: f64,
}

/// The alert template data: Prometheus's anonymous struct with `Labels`,
/// `ExternalLabels`, `ExternalURL` and `Value`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataValue {
    pub labels: Arc<BTreeMap<String, String>>,
    pub external_labels: Arc<BTreeMap<String, String>>,
    pub external_url: Arc<str>,
    pub value: f64,
}

/// Alertmanager's `template.Alert`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmAlert {
    pub status: Arc<str>,
    pub labels: Arc<BTreeMap<String, String>>,
    pub annotations: Arc<BTreeMap<String, String>>,
    /// Unix ms ([`GO_ZERO_TIME_MS`] for an unset time).
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: Arc<str>,
    pub fingerprint: Arc<str>,
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix ms.
pub const GO_ZERO_TIME_MS: i64 = -62_135_596_800_000;

/// Alertmanager's `template.Data`.
#[derive(Debug, Clone, PartialEq)]
pub struct AmData {
    pub receiver: Arc<str>,
    pub status: Arc<str>,
    pub alerts: Arc<Vec<Arc<AmAlert>>>,
    pub group_labels: Arc<BTreeMap<String, String>>,
    pub common_labels: Arc<BTreeMap<String, String>>,
    pub common_annotations: Arc<BTreeMap<String, String>>,
    pub external_url: Arc<str>,
}

/// A template value with its Go type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Go's invalid `reflect.Value` (no value; the untyped `nil`).
    Nil,
    Bool(bool),
    /// `int` (number literals, `len`).
    Int(i64),
    /// `uint8` (`index` of a string).
    Byte(u8),
    /// `float64`.
    Float(f64),
    /// `string`.
    String(Arc<str>),
    /// `html/template.HTML`, what `safeHtml` returns.
    Html(Arc<str>),
    /// `map[string]string`: `$labels`, `$externalLabels`, a sample's `Labels`.
    Labels(Arc<BTreeMap<String, String>>),
    /// `map[string]interface {}`: what `args` returns.
    Args(Arc<BTreeMap<String, Value>>),
    /// The top-level data struct.
    Data(Arc<DataValue>),
    /// `*template.sample`.
    Sample(Arc<SampleValue>),
    /// `template.queryResult` (`[]*sample`).
    QueryResult(Arc<Vec<Arc<SampleValue>>>),
    /// `*time.Time` in UTC, as Unix milliseconds (`toTime` goes through
    /// Prometheus's millisecond `model.Time`).
    Time(i64),
    /// Alertmanager's `template.KV` (a `map[string]string` with methods).
    Kv(Arc<BTreeMap<String, String>>),
    /// Alertmanager's `template.Pairs`.
    Pairs(Arc<Vec<(String, String)>>),
    /// Alertmanager's `template.Pair`.
    Pair(Arc<(String, String)>),
    /// `[]string`.
    Strings(Arc<Vec<String>>),
    /// Alertmanager's `template.Alerts`.
    Alerts(Arc<Vec<Arc<AmAlert>>>),
    /// Alertmanager's `template.Alert`.
    AmAlert(Arc<AmAlert>),
    /// Alertmanager's `*template.Data`.
    AmData(Arc<AmData>),
}

pub const DATA_TYPE_NAME: &str =
    "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }";

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Arc::from(s))
    }

    /// The Go type's name as `%T` and reflect errors print it.
    pub fn type_name(&self) -> String {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Byte(_) => "uint8",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::Labels(_) => "map[string]string",
            Value::Args(_) => "map[string]interface {}",
            Value::Data(_) => DATA_TYPE_NAME,
            Value::Sample(_) => "*template.sample",
            Value::QueryResult(_) => "template.queryResult",
            Value::Time(_) => "*time.Time",
            Value::Kv(_) => "template.KV",
            Value::Pairs(_) => "template.Pairs",
            Value::Pair(_) => "template.Pair",
            Value::Strings(_) => "[]string",
            Value::Alerts(_) => "template.Alerts",
            Value::AmAlert(_) => "template.Alert",
            Value::AmData(_) => "*template.Data",
        }
        .to_string()
    }

    /// text/template's truth (an invalid value is false).
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Byte(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) | Value::Html(s) => !s.is_empty(),
            Value::Labels(m) => !m.is_empty(),
            Value::Args(m) => !m.is_empty(),
            Value::QueryResult(v) => !v.is_empty(),
            Value::Kv(m) => !m.is_empty(),
            Value::Pairs(v) => !v.is_empty(),
            Value::Strings(v) => !v.is_empty(),
            Value::Alerts(v) => !v.is_empty(),
            Value::Data(_)
            | Value::Sample(_)
            | Value::Time(_)
            | Value::Pair(_)
            | Value::AmAlert(_)
            | Value::AmData(_) => true,
        }
    }

    /// `fmt.Sprint` of the value (`%v`), as a pipeline result prints it
    /// after text/template dereferences a pointer.
    pub fn go_display(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            Value::Sample(s) => sample_struct(s),
            Value::Time(ms) => time_string(*ms),
            _ => self.go_value_string(),
        }
    }

    /// `%v` of the value as an operand of `fmt` (pointers print as `&{…}`,
    /// pointers nested in containers as addresses).
    pub fn go_value_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Byte(n) => n.to_string(),
            Value::Float(f) => format_float_v(*f),
            Value::String(s) | Value::Html(s) => s.to_string(),
            Value::Labels(m) => labels_map(m),
            Value::Args(m) => {
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.nested_string()))
                    .collect();
                format!("map[{}]", items.join(" "))
            }
            Value::Data(d) => format!(
                "{{{} {} {} {}}}",
                labels_map(&d.labels),
                labels_map(&d.external_labels),
                d.external_url,
                format_float_v(d.value)
            ),
            Value::Sample(s) => format!("&{}", sample_struct(s)),
            Value::QueryResult(v) => {
                let items: Vec<String> = (0..v.len()).map(fake_pointer).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Time(ms) => time_string(*ms),
            Value::Kv(m) => labels_map(m),
            Value::Pairs(v) => {
                let items: Vec<String> = v.iter().map(|(k, v)| format!("{{{k} {v}}}")).collect();
                format!("[{}]", items.join(" "))
            }
            Value::Pair(p) => format!("{{{} {}}}", p.0, p.1),
            Value::Strings(v) => format!("[{}]", v.join(" ")),
            Value::Alerts(v) => {
                let items: Vec<String> = v.iter().map(|a| alert_struct(a)).collect();
                format!("[{}]", items.join(" "))
            }
            Value::AmAlert(a) => alert_struct(a),
            Value::AmData(d) => {
                let alerts: Vec<String> = d.alerts.iter().map(|a| alert_struct(a)).collect();
                format!(
                    "&{{{} {} [{}] {} {} {} {}}}",
                    d.receiver,
                    d.status,
                    alerts.join(" "),
                    labels_map(&d.group_labels),
                    labels_map(&d.common_labels),
                    labels_map(&d.common_annotations),
                    d.external_url
                )
            }
        }
    }

    /// `%v` of a value inside a container: Go prints nested pointers as
    /// addresses (deterministic stand-ins here).
    fn nested_string(&self) -> String {
        match self {
            Value::Sample(_) | Value::Time(_) => fake_pointer(0),
            _ => self.go_value_string(),
        }
    }
}

/// Go prints pointers inside containers as heap addresses, which differ on
/// every run; bellwether prints a fixed stand-in of the same shape.
fn fake_pointer(i: usize) -> String {
    format!("0xc{:09x}", 0x10000 + i * 0x30)
}

fn labels_map(m: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", items.join(" "))
}

fn alert_struct(a: &AmAlert) -> String {
    format!(
        "{{{} {} {} {} {} {} {}}}",
        a.status,
        labels_map(&a.labels),
        labels_map(&a.annotations),
        time_string(a.starts_at),
        time_string(a.ends_at),
        a.generator_url,
        a.fingerprint
    )
}

fn sample_struct(s: &SampleValue) -> String {
    format!("{{{} {}}}", labels_map(&s.labels), format_float_v(s.value))
}

/// Go's `time.Time.String()` of a UTC time given in Unix milliseconds:
/// `2006-01-02 15:04:05.999999999 +0000 UTC` (fraction without trailing zeros).
pub fn time_string(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::model::civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if millis != 0 {
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_strings_are_gos() {
        assert_eq!(time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            time_string(1_234_567_890_120),
            "2009-02-13 23:31:30.12 +0000 UTC"
        );
        assert_eq!(time_string(-1), "1969-12-31 23:59:59.999 +0000 UTC");
    }
}
