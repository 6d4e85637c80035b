//! The email receiver: one message per notification over SMTP (lettre),
//! built as Alertmanager 0.25 builds it (notify/email): headers from
//! templates (`Subject` defaults to `email.default.subject`, `To` and
//! `From` to the config's), a `multipart/alternative` body with the
//! `text` part (if configured) and the `html` part (default
//! `email.default.html`); TLS per `require_tls` (STARTTLS) or implicit TLS
//! on port 465; PLAIN or LOGIN authentication when a username is set.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::data::{Payload, TemplateData};
use super::http::{FailReason, Outcome};
use super::Sent;
use crate::notify::config::EmailConfig;
use crate::template::NotifyTemplates;

pub const DEFAULT_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;
pub const DEFAULT_HTML: &str = r#"{{ template "email.default.html" . }}"#;

pub struct Email {
    pub config: EmailConfig,
    pub timeout: Duration,
}

/// A rendered message and its envelope addresses.
pub struct Rendered {
    pub from: Address,
    pub to: Vec<Address>,
    pub message: lettre::Message,
}

fn failed(error: String) -> Outcome {
    Outcome::Failed {
        error,
        reason: FailReason::Other,
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII names.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

fn mailboxes(what: &str, text: &str) -> Result<Mailboxes, String> {
    text.parse::<Mailboxes>()
        .map_err(|e| format!("parse {what:?} addresses {text:?}: {e}"))
}

impl Email {
    /// The message (headers and bodies templated), or the first error.
    pub fn render(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> Result<Rendered, String> {
        let c = &self.config;
        let data = TemplateData::new(payload, &payload.alerts, external_url).to_template_value();
        let text = |t: &str| templates.execute_text(t, &data);
        let from_text = text(&c.from).map_err(|e| format!("execute 'from' template: {e}"))?;
        let to_text = text(&c.to).map_err(|e| format!("execute 'to' template: {e}"))?;
        let from = mailboxes("from", &from_text)?;
        let from: Vec<_> = from.into_iter().collect();
        if from.len() != 1 {
            return Err(format!(
                "must be exactly one 'from' address (got: {})",
                from.len()
            ));
        }
        let to: Vec<Address> = mailboxes("to", &to_text)?
            .into_iter()
            .map(|m| m.email)
            .collect();

        // Headers: the configured ones, then Subject/To/From defaults.
        let mut headers: Vec<(String, String)> = c
            .headers
            .iter()
            .map(|(k, v)| (canonical(k), v.clone()))
            .collect();
        for (name, default) in [
            ("Subject", DEFAULT_SUBJECT),
            ("To", c.to.as_str()),
            ("From", c.from.as_str()),
        ] {
            if !headers.iter().any(|(k, _)| k == name) {
                headers.push((name.to_string(), default.to_string()));
            }
        }
        let mut builder = lettre::Message::builder();
        for (name, template) in &headers {
            let value =
                text(template).map_err(|e| format!("execute {name:?} header template: {e}"))?;
            builder = match name.as_str() {
                "Subject" => builder.subject(value),
                "From" => {
                    let mut b = builder;
                    for m in mailboxes("From header", &value)? {
                        b = b.from(m);
                    }
                    b
                }
                "To" => {
                    let mut b = builder;
                    for m in mailboxes("To header", &value)? {
                        b = b.to(m);
                    }
                    b
                }
                _ => {
                    let header = HeaderName::new_from_ascii(name.clone())
                        .map_err(|e| format!("header name {name:?}: {e}"))?;
                    builder.raw_header(HeaderValue::new(header, value))
                }
            };
        }
        let mut body = MultiPart::alternative().build();
        if let Some(t) = c.text.as_deref().filter(|t| !t.is_empty()) {
            let plain = text(t).map_err(|e| format!("execute text template: {e}"))?;
            body = body.singlepart(SinglePart::plain(plain));
        }
        let html_template = c.html.as_deref().unwrap_or(DEFAULT_HTML);
        if !html_template.is_empty() {
            let html = templates
                .execute_html(html_template, &data)
                .map_err(|e| format!("execute html template: {e}"))?;
            body = body.singlepart(SinglePart::html(html));
        }
        let message = builder
            .date_now()
            .multipart(body)
            .map_err(|e| format!("building the message: {e}"))?;
        Ok(Rendered {
            from: from[0].email.clone(),
            to,
            message,
        })
    }

    fn password(&self) -> Result<String, String> {
        let c = &self.config;
        if !c.auth_password.0.is_empty() {
            return Ok(c.auth_password.0.clone());
        }
        if c.auth_password_file.is_empty() {
            return Ok(String::new());
        }
        std::fs::read_to_string(&c.auth_password_file)
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                format!(
                    "auth_password_file: cannot read {}: {e}",
                    c.auth_password_file
                )
            })
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(host.to_string());
        if let Some(tls) = &self.config.tls_config {
            if let Some(name) = &tls.server_name {
                builder = TlsParameters::builder(name.clone());
            }
            if let Some(ca) = &tls.ca_file {
                let pem = std::fs::read(ca)
                    .map_err(|e| format!("tls_config.ca_file: cannot read {ca}: {e}"))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("tls_config.ca_file: {ca}: {e}"))?;
                builder = builder.add_root_certificate(cert);
            }
            if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
                let read = |p: &str| {
                    std::fs::read(p).map_err(|e| format!("tls_config: cannot read {p}: {e}"))
                };
                let identity = Identity::from_pem(&read(cert)?, &read(key)?)
                    .map_err(|e| format!("tls_config: {cert} and {key}: {e}"))?;
                builder = builder.identify_with(identity);
            }
            builder = builder.dangerous_accept_invalid_certs(tls.insecure_skip_verify);
        }
        builder
            .build_rustls()
            .map_err(|e| format!("TLS settings: {e}"))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let c = &self.config;
        let (host, port) = c
            .smarthost
            .rsplit_once(':')
            .ok_or_else(|| format!("smarthost {:?} has no port", c.smarthost))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .map_err(|_| format!("smarthost {:?}: bad port", c.smarthost))?;
        let tls = if port == 465 {
            Tls::Wrapper(self.tls_parameters(host)?)
        } else if c.require_tls.unwrap_or(true) {
            Tls::Required(self.tls_parameters(host)?)
        } else {
            Tls::None
        };
        let hello = if c.hello.is_empty() {
            "localhost".to_string()
        } else {
            c.hello.clone()
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(self.timeout));
        if !c.auth_username.is_empty() {
            builder = builder
                .credentials(Credentials::new(c.auth_username.clone(), self.password()?))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(builder.build())
    }

    pub async fn notify(
        &self,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> (Sent, Outcome) {
        let target = format!("smtp://{}", self.config.smarthost);
        let rendered = match self.render(payload, templates, external_url) {
            Ok(r) => r,
            Err(e) => return (Sent::new(&target, b""), failed(e)),
        };
        let bytes = rendered.message.formatted();
        let sent = Sent::new(&target, &bytes);
        let transport = match self.transport() {
            Ok(t) => t,
            Err(e) => return (sent, failed(e)),
        };
        let envelope = match lettre::address::Envelope::new(Some(rendered.from), rendered.to) {
            Ok(e) => e,
            Err(e) => return (sent, failed(format!("envelope: {e}"))),
        };
        let outcome = match transport.send_raw(&envelope, &bytes).await {
            Ok(response) => Outcome::Delivered {
                answer: response.message().collect::<Vec<_>>().join(" "),
            },
            // A permanent SMTP refusal (5xx) will not change on retry.
            Err(e) if e.is_permanent() => Outcome::Failed {
                error: e.to_string(),
                reason: FailReason::ClientError,
            },
            Err(e) => Outcome::Retry {
                error: e.to_string(),
                after: None,
                reason: if e.is_transient() {
                    FailReason::ServerError
                } else {
                    FailReason::Other
                },
            },
        };
        (sent, outcome)
    }
}
