//! The PagerDuty receiver: Events API v2 (`routing_key`: `trigger` or
//! `resolve` with `dedup_key` = SHA-256 of the group key) and the v1 generic
//! events API (`service_key`, `incident_key`), as Alertmanager 0.25 builds
//! them (notify/pagerduty): summary/description cut to 1024 characters,
//! severity `error` by default, `source` defaulting to `client`, the default
//! `details` (firing, resolved, num_firing, num_resolved) unless replaced,
//! and custom details dropped when the event exceeds 512 kB.

use std::collections::BTreeMap;

use serde::Serialize;

use super::data::{go_json, truncate_runes, Payload, TemplateData};
use super::http::{FailReason, HttpTarget, Outcome};
use super::slack::Expander;
use super::webhook::hex;
use super::Sent;
use crate::notify::config::{PagerdutyConfig, DEFAULT_PAGERDUTY_URL};
use crate::template::NotifyTemplates;

/// PagerDuty's generic events API v1 endpoint (used with `service_key`).
pub const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";
const MAX_EVENT_BYTES: usize = 512_000;
const MAX_SUMMARY_RUNES: usize = 1024;

#[derive(Serialize)]
struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    routing_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    service_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dedup_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    incident_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    event_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    event_action: String,
    payload: Option<EventPayload>,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<Image>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
}

#[derive(Serialize)]
struct EventPayload {
    summary: String,
    source: String,
    severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    timestamp: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    custom_details: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Link {
    href: String,
    text: String,
}

#[derive(Serialize)]
struct Image {
    src: String,
    alt: String,
    href: String,
}

/// Alertmanager's default `details`.
const DEFAULT_DETAILS: [(&str, &str); 4] = [
    (
        "firing",
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
    ),
    (
        "resolved",
        r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
    ),
    ("num_firing", r#"{{ .Alerts.Firing | len }}"#),
    ("num_resolved", r#"{{ .Alerts.Resolved | len }}"#),
];

/// SHA-256 of the group key in hex (Alertmanager's `Key.Hash`).
pub fn dedup_key(group_key: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, group_key.as_bytes()).as_ref())
}

pub struct PagerDuty {
    pub config: PagerdutyConfig,
    pub http: HttpTarget,
}

fn read_key(inline: &str, file: &str, what: &str) -> Result<String, String> {
    if !inline.is_empty() {
        return Ok(inline.to_string());
    }
    std::fs::read_to_string(file)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("failed to read {what} from file {file}: {e}"))
}

impl PagerDuty {
    fn is_v1(&self) -> bool {
        !self.config.service_key.0.is_empty() || !self.config.service_key_file.is_empty()
    }

    /// Where the event goes: `url` for v2; for v1 the v1 endpoint unless
    /// `url` was changed from the v2 default.
    pub fn url(&self) -> &str {
        if self.is_v1() && (self.config.url.is_empty() || self.config.url == DEFAULT_PAGERDUTY_URL)
        {
            V1_URL
        } else {
            &self.config.url
        }
    }

    /// The event body, or the first template or key error.
    pub fn body(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> Result<Vec<u8>, String> {
        let c = &self.config;
        let data = TemplateData::new(payload, &payload.alerts, external_url);
        let event = if data.status == "resolved" {
            "resolve"
        } else {
            "trigger"
        };
        let mut t = Expander::new(templates, &data);
        let mut details = BTreeMap::new();
        for (k, v) in &c.details {
            let value = t.text(v);
            if let Some(e) = t.error.take() {
                return Err(format!("{k:?}: failed to template {v:?}: {e}"));
            }
            details.insert(k.clone(), value);
        }
        for (k, v) in DEFAULT_DETAILS {
            if !c.details.contains_key(k) {
                let value = t.text(v);
                if let Some(e) = t.error.take() {
                    return Err(format!("{k:?}: failed to template {v:?}: {e}"));
                }
                details.insert(k.to_string(), value);
            }
        }
        let client_text = c
            .client
            .clone()
            .unwrap_or_else(|| r#"{{ template "pagerduty.default.client" . }}"#.into());
        let client_url_text = c
            .client_url
            .clone()
            .unwrap_or_else(|| r#"{{ template "pagerduty.default.clientURL" . }}"#.into());
        let description_text = c
            .description
            .clone()
            .unwrap_or_else(|| r#"{{ template "pagerduty.default.description" .}}"#.into());
        let key = dedup_key(&payload.group_key);
        let mut message = if self.is_v1() {
            let (description, _) = truncate_runes(&t.text(&description_text), MAX_SUMMARY_RUNES);
            let service_key = read_key(c.service_key.expose(), &c.service_key_file, "service key")?;
            let mut m = Message {
                routing_key: String::new(),
                service_key: t.text(&service_key),
                dedup_key: String::new(),
                incident_key: key,
                event_type: event.into(),
                description,
                event_action: String::new(),
                payload: None,
                client: String::new(),
                client_url: String::new(),
                details,
                images: Vec::new(),
                links: Vec::new(),
            };
            if event == "trigger" {
                m.client = t.text(&client_text);
                m.client_url = t.text(&client_url_text);
            }
            m
        } else {
            let (summary, _) = truncate_runes(&t.text(&description_text), MAX_SUMMARY_RUNES);
            let routing_key = read_key(c.routing_key.expose(), &c.routing_key_file, "routing key")?;
            // `source` defaults to the client template (Alertmanager's config default).
            let source_text = match &c.source {
                Some(s) if !s.is_empty() => s.clone(),
                _ => client_text.clone(),
            };
            let severity_text = match &c.severity {
                Some(s) if !s.is_empty() => s.clone(),
                _ => "error".to_string(),
            };
            let mut m = Message {
                client: t.text(&client_text),
                client_url: t.text(&client_url_text),
                routing_key: t.text(&routing_key),
                service_key: String::new(),
                event_action: event.into(),
                dedup_key: key,
                incident_key: String::new(),
                event_type: String::new(),
                description: String::new(),
                images: Vec::new(),
                links: Vec::new(),
                details: BTreeMap::new(),
                payload: Some(EventPayload {
                    summary,
                    source: t.text(&source_text),
                    severity: t.text(&severity_text),
                    timestamp: String::new(),
                    custom_details: details,
                    class: t.text(c.class.as_deref().unwrap_or("")),
                    component: t.text(c.component.as_deref().unwrap_or("")),
                    group: t.text(c.group.as_deref().unwrap_or("")),
                }),
            };
            for image in &c.images {
                let image = Image {
                    src: t.text(&image.src),
                    alt: t.text(&image.alt),
                    href: t.text(&image.href),
                };
                if !image.src.is_empty() {
                    m.images.push(image);
                }
            }
            for link in &c.links {
                let link = Link {
                    href: t.text(&link.href),
                    text: t.text(&link.text),
                };
                if !link.href.is_empty() {
                    m.links.push(link);
                }
            }
            m
        };
        if let Some(e) = t.error {
            let version = if self.is_v1() { "v1" } else { "v2" };
            return Err(format!(
                "failed to template PagerDuty {version} message: {e}"
            ));
        }
        if self.is_v1() && message.service_key.is_empty() {
            return Err("service key cannot be empty".into());
        }
        if !self.is_v1() && message.routing_key.is_empty() {
            return Err("routing key cannot be empty".into());
        }
        let mut body = go_json(&message);
        if body.len() > MAX_EVENT_BYTES {
            let note = BTreeMap::from([(
                "error".to_string(),
                "Custom details have been removed because the original event exceeds the maximum size of 512kB".to_string(),
            )]);
            tracing::warn!(
                size = body.len(),
                limit = MAX_EVENT_BYTES,
                "PagerDuty event too large: custom details removed"
            );
            match &mut message.payload {
                Some(p) => p.custom_details = note,
                None => message.details = note,
            }
            body = go_json(&message);
        }
        Ok(body)
    }

    pub async fn notify(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> (Sent, Outcome) {
        let url = self.url().to_string();
        let body = match self.body(payload, templates, external_url) {
            Ok(b) => b,
            Err(error) => {
                return (
                    Sent::new(&url, b""),
                    Outcome::Failed {
                        error,
                        reason: FailReason::Other,
                    },
                )
            }
        };
        let sent = Sent::new(&url, &body);
        // v1 answers 403 when throttled (Alertmanager retries it).
        let retry: &[u16] = if self.is_v1() { &[403] } else { &[] };
        let outcome = self
            .http
            .post(&url, "application/json", &[], body, retry)
            .await;
        (sent, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_key_is_sha256_of_group_key() {
        assert_eq!(
            dedup_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
