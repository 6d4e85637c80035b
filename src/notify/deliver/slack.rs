//! The Slack receiver: an incoming-webhook message with one attachment,
//! exactly as Alertmanager 0.25 builds it (notify/slack): every text field
//! templated, the defaults from the default templates, the title cut to
//! 1024 characters, `mrkdwn_in` defaulting to fallback, pretext and text.

use serde::Serialize;

use super::data::{go_json, truncate_runes, Payload, TemplateData};
use super::http::{FailReason, HttpTarget, Outcome};
use super::Sent;
use crate::notify::config::SlackConfig;
use crate::template::{AmData, NotifyTemplates};

const MAX_TITLE_RUNES: usize = 1024;

#[derive(Serialize)]
struct Request {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    attachments: Vec<Attachment>,
}

#[derive(Serialize)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<Action>,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mrkdwn_in: Vec<String>,
}

#[derive(Serialize)]
struct Field {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    short: bool,
}

#[derive(Serialize)]
struct Action {
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<Confirm>,
}

#[derive(Serialize)]
struct Confirm {
    #[serde(skip_serializing_if = "String::is_empty")]
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ok_text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dismiss_text: String,
}

/// Executes templates, keeping the first error (Alertmanager's `TmplText`).
pub struct Expander<'a> {
    templates: &'a NotifyTemplates,
    data: AmData,
    pub error: Option<String>,
}

impl<'a> Expander<'a> {
    pub fn new(templates: &'a NotifyTemplates, data: &TemplateData) -> Expander<'a> {
        Expander {
            templates,
            data: data.to_template_value(),
            error: None,
        }
    }

    pub fn text(&mut self, text: &str) -> String {
        if self.error.is_some() {
            return String::new();
        }
        match self.templates.execute_text(text, &self.data) {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                String::new()
            }
        }
    }

    /// A field with a default template.
    pub fn or(&mut self, value: &Option<String>, default: &str) -> String {
        let text = value.as_deref().unwrap_or(default).to_string();
        self.text(&text)
    }
}

pub struct Slack {
    pub config: SlackConfig,
    pub http: HttpTarget,
}

impl Slack {
    /// The message body, or the first template error.
    pub fn body(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> Result<Vec<u8>, String> {
        let c = &self.config;
        let data = TemplateData::new(payload, &payload.alerts, external_url);
        let mut t = Expander::new(templates, &data);
        let (title, _) = truncate_runes(
            &t.or(&c.title, r#"{{ template "slack.default.title" . }}"#),
            MAX_TITLE_RUNES,
        );
        let mut attachment = Attachment {
            title,
            title_link: t.or(
                &c.title_link,
                r#"{{ template "slack.default.titlelink" . }}"#,
            ),
            pretext: t.or(&c.pretext, r#"{{ template "slack.default.pretext" . }}"#),
            text: t.or(&c.text, r#"{{ template "slack.default.text" . }}"#),
            fallback: t.or(&c.fallback, r#"{{ template "slack.default.fallback" . }}"#),
            callback_id: t.or(
                &c.callback_id,
                r#"{{ template "slack.default.callbackid" . }}"#,
            ),
            image_url: t.or(&c.image_url, ""),
            thumb_url: t.or(&c.thumb_url, ""),
            footer: t.or(&c.footer, r#"{{ template "slack.default.footer" . }}"#),
            color: t.or(
                &c.color,
                r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#,
            ),
            mrkdwn_in: if c.mrkdwn_in.is_empty() {
                vec!["fallback".into(), "pretext".into(), "text".into()]
            } else {
                c.mrkdwn_in.clone()
            },
            fields: Vec::new(),
            actions: Vec::new(),
        };
        for f in &c.fields {
            attachment.fields.push(Field {
                title: t.text(&f.title),
                value: t.text(&f.value),
                short: f.short.unwrap_or(c.short_fields),
            });
        }
        for a in &c.actions {
            // As Alertmanager's config does: a link button (`url`) carries no
            // message-action fields, a message action (`name`) no URL.
            let link = !a.url.is_empty();
            attachment.actions.push(Action {
                kind: t.text(&a.kind),
                text: t.text(&a.text),
                url: if link { t.text(&a.url) } else { String::new() },
                style: t.text(&a.style),
                name: if link { String::new() } else { t.text(&a.name) },
                value: if link {
                    String::new()
                } else {
                    t.text(&a.value)
                },
                confirm: a.confirm.as_ref().filter(|_| !link).map(|cf| Confirm {
                    title: t.text(&cf.title),
                    text: t.text(&cf.text),
                    ok_text: t.text(&cf.ok_text),
                    dismiss_text: t.text(&cf.dismiss_text),
                }),
            });
        }
        let request = Request {
            channel: t.or(&c.channel, ""),
            username: t.or(&c.username, r#"{{ template "slack.default.username" . }}"#),
            icon_emoji: t.or(
                &c.icon_emoji,
                r#"{{ template "slack.default.iconemoji" . }}"#,
            ),
            icon_url: t.or(&c.icon_url, r#"{{ template "slack.default.iconurl" . }}"#),
            link_names: c.link_names,
            attachments: vec![attachment],
        };
        if let Some(e) = t.error {
            return Err(e);
        }
        Ok(go_json(&request))
    }

    fn url(&self) -> Result<String, String> {
        if let Some(url) = &self.config.api_url {
            return Ok(url.expose().to_string());
        }
        std::fs::read_to_string(&self.config.api_url_file)
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                format!(
                    "api_url_file: cannot read {}: {e}",
                    self.config.api_url_file
                )
            })
    }

    pub async fn notify(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> (Sent, Outcome) {
        let failed = |target: &str, error: String| {
            (
                Sent::new(target, b""),
                Outcome::Failed {
                    error,
                    reason: FailReason::Other,
                },
            )
        };
        let body = match self.body(payload, templates, external_url) {
            Ok(b) => b,
            Err(e) => return failed("slack", e),
        };
        let url = match self.url() {
            Ok(u) => u,
            Err(e) => return failed("slack", e),
        };
        // The URL carries the webhook's secret: shown without its path.
        let shown = redact_url(&url);
        let sent = Sent::new(&shown, &body);
        let outcome = self
            .http
            .post(&url, "application/json", &[], body, &[])
            .await;
        (sent, redact_outcome(outcome, &url, &shown))
    }
}

/// Replaces a secret URL in an outcome's error text.
pub fn redact_outcome(outcome: Outcome, url: &str, shown: &str) -> Outcome {
    match outcome {
        Outcome::Retry {
            error,
            after,
            reason,
        } => Outcome::Retry {
            error: error.replace(url, shown),
            after,
            reason,
        },
        Outcome::Failed { error, reason } => Outcome::Failed {
            error: error.replace(url, shown),
            reason,
        },
        other => other,
    }
}

/// `scheme://host/<redacted>`: Slack webhook URLs are secrets.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/<redacted>",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<redacted>".into(),
    }
}
