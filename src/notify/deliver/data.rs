//! What an outbox entry carries (a [`Payload`]: one flush of one group,
//! renderable again after a restart) and Alertmanager's template data built
//! from it ([`TemplateData`], template/template.go's `Data`), which is also
//! the body of the webhook message.
//!
//! JSON written to receivers is Go's `encoding/json` output byte for byte:
//! map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`…,
//! `\b` and `\f` as `\u0008`/`\u000c`, times in RFC 3339 with nanoseconds
//! trimmed (`0001-01-01T00:00:00Z` for an unset time).

use std::collections::BTreeMap;
use std::io;

use serde::{Deserialize, Serialize};

use crate::model::{Labels, Timestamp};
use crate::notify::types::{Fingerprint, Notification};

/// One alert of a stored notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayloadAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Unix ms.
    pub starts_at: Timestamp,
    /// Unix ms; 0 = unset.
    pub ends_at: Timestamp,
    pub generator_url: String,
    /// Resolved at the flush.
    pub resolved: bool,
}

impl PayloadAlert {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&Labels::new(self.labels.iter()))
    }
}

/// One flush of one group for one integration, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub receiver: String,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    /// What the integration sends (resolved alerts left out when it does
    /// not `send_resolved`).
    pub alerts: Vec<PayloadAlert>,
    /// The flush time (Unix ms).
    pub now: Timestamp,
}

fn to_map(labels: &Labels) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

impl Payload {
    /// The payload of `n` with every alert (`send_resolved`) or only the
    /// firing ones.
    pub fn from_notification(n: &Notification, send_resolved: bool) -> Payload {
        let alerts = n
            .alerts
            .iter()
            .map(|a| PayloadAlert {
                labels: to_map(&a.labels),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                generator_url: a.generator_url.clone(),
                resolved: a.resolved_at(n.now),
            })
            .filter(|a| send_resolved || !a.resolved)
            .collect();
        Payload {
            receiver: n.receiver.clone(),
            group_key: n.group_key.clone(),
            group_labels: to_map(&n.group_labels),
            alerts,
            now: n.now,
        }
    }
}

/// Alertmanager's `template.Alert`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TemplateAlert {
    pub status: &'static str,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", serialize_with = "go_time_ser")]
    pub starts_at: Timestamp,
    #[serde(rename = "endsAt", serialize_with = "go_time_ser")]
    pub ends_at: Timestamp,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Alertmanager's `template.Data`, in its JSON field order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TemplateData {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<TemplateAlert>,
    #[serde(rename = "groupLabels")]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels")]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations")]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
}

impl TemplateData {
    /// Alertmanager's `Template.Data`: the receiver name regexp-quoted (as
    /// Alertmanager does), status `firing` if any alert fires, common
    /// labels and annotations of all alerts.
    pub fn new(payload: &Payload, alerts: &[PayloadAlert], external_url: &str) -> TemplateData {
        let status = |resolved: bool| if resolved { "resolved" } else { "firing" };
        let mut common_labels = BTreeMap::new();
        let mut common_annotations = BTreeMap::new();
        if let Some((first, rest)) = alerts.split_first() {
            common_labels = first.labels.clone();
            common_annotations = first.annotations.clone();
            for a in rest {
                common_labels.retain(|k, v| a.labels.get(k) == Some(v));
                common_annotations.retain(|k, v| a.annotations.get(k) == Some(v));
            }
        }
        TemplateData {
            receiver: quote_meta(&payload.receiver),
            status: status(alerts.iter().all(|a| a.resolved)),
            alerts: alerts
                .iter()
                .map(|a| TemplateAlert {
                    status: status(a.resolved),
                    labels: a.labels.clone(),
                    annotations: a.annotations.clone(),
                    starts_at: a.starts_at,
                    ends_at: a.ends_at,
                    generator_url: a.generator_url.clone(),
                    fingerprint: a.fingerprint().to_string(),
                })
                .collect(),
            group_labels: payload.group_labels.clone(),
            common_labels,
            common_annotations,
            external_url: external_url.to_string(),
        }
    }
}

impl TemplateData {
    /// The value templates see (`.Receiver`, `.Alerts`, …).
    pub fn to_template_value(&self) -> crate::template::AmData {
        use std::sync::Arc;
        let time = |ms: Timestamp| {
            if ms == 0 {
                crate::template::GO_ZERO_TIME_MS
            } else {
                ms
            }
        };
        crate::template::AmData {
            receiver: Arc::from(self.receiver.as_str()),
            status: Arc::from(self.status),
            alerts: Arc::new(
                self.alerts
                    .iter()
                    .map(|a| {
                        Arc::new(crate::template::AmAlert {
                            status: Arc::from(a.status),
                            labels: Arc::new(a.labels.clone()),
                            annotations: Arc::new(a.annotations.clone()),
                            starts_at: time(a.starts_at),
                            ends_at: time(a.ends_at),
                            generator_url: Arc::from(a.generator_url.as_str()),
                            fingerprint: Arc::from(a.fingerprint.as_str()),
                        })
                    })
                    .collect(),
            ),
            group_labels: Arc::new(self.group_labels.clone()),
            common_labels: Arc::new(self.common_labels.clone()),
            common_annotations: Arc::new(self.common_annotations.clone()),
            external_url: Arc::from(self.external_url.as_str()),
        }
    }
}

/// Alertmanager's `TruncateInRunes`: at most `n` characters, the last one
/// replaced by `…` when cut.
pub fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s.to_string(), false);
    }
    if n <= 3 {
        return (s.chars().take(n).collect(), true);
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    (out, true)
}

/// Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go's `time.Time` JSON form (RFC 3339, nanoseconds with trailing zeros
/// trimmed) of a UTC time in Unix ms; 0 is Go's zero time.
pub fn go_time(ms: Timestamp) -> String {
    if ms == 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = crate::model::civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if millis != 0 {
        out.push('.');
        out.push_str(format!("{millis:03}").trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn go_time_ser<S: serde::Serializer>(ms: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&go_time(*ms))
}

/// serde_json formatter writing strings as Go's `encoding/json` does.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        use serde_json::ser::CharEscape;
        let s: String = match escape {
            CharEscape::Quote => "\\\"".into(),
            CharEscape::ReverseSolidus => "\\\\".into(),
            CharEscape::LineFeed => "\\n".into(),
            CharEscape::CarriageReturn => "\\r".into(),
            CharEscape::Tab => "\\t".into(),
            CharEscape::Backspace => "\\u0008".into(),
            CharEscape::FormFeed => "\\u000c".into(),
            CharEscape::AsciiControl(b) => format!("\\u{b:04x}"),
            _ => "".into(),
        };
        writer.write_all(s.as_bytes())
    }
}

/// `json.NewEncoder(w).Encode(value)`: Go's JSON plus a newline.
pub fn go_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serializing our own structs of strings and maps cannot fail.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_like_encoding_json() {
        let v = serde_json::json!({"b": "<a&b>\u{8}\u{c}\u{1}\u{2028}é\n", "a": 1});
        assert_eq!(
            String::from_utf8(go_json(&v)).unwrap(),
            "{\"a\":1,\"b\":\"\\u003ca\\u0026b\\u003e\\u0008\\u000c\\u0001\\u2028é\\n\"}\n"
        );
    }

    #[test]
    fn go_times() {
        assert_eq!(go_time(0), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
        assert_eq!(go_time(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn receiver_is_regexp_quoted() {
        assert_eq!(quote_meta("team.db (eu)"), "team\\.db \\(eu\\)");
    }
}
