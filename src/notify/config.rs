//! The `notify` section: an alertmanager.yml (`global`, `route`,
//! `inhibit_rules`, `receivers`, `templates`, `time_intervals`,
//! `mute_time_intervals`) written inline or named by `config_file`, checked
//! as Alertmanager 0.25 checks it (config/config.go, config/notifiers.go),
//! with every problem reported at once and located.
//!
//! Receiver types: `pagerduty_configs`, `slack_configs`, `email_configs`,
//! `webhook_configs` and bellwether's `log_configs`; Alertmanager's other
//! types are refused by name. Field docs here are the user docs: keep
//! docs/configuration.md and docs/notify.md in step with them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::config::values::{PromDuration, Secret};
use crate::config::yaml::{join_key, Finding, Kind, Node, Pos};
use crate::config::{Authorization, BasicAuth, TlsConfig};

use super::matchers::{AnchoredRegex, MatchType, Matcher, MatcherLine, Matchers};
use super::timeinterval::TimeInterval;

/// Alertmanager's default PagerDuty Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// bellwether's `notify` section (see module docs).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// An alertmanager.yml to read instead of the inline keys (relative to
    /// the config file's directory). Excludes every other key of the section.
    pub config_file: Option<String>,
    pub global: Option<AmGlobal>,
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    /// bellwether's own: the outbox and notification log. Allowed next to
    /// `config_file`.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// bellwether's own: retention of the notification history. Allowed
    /// next to `config_file`.
    #[serde(default)]
    pub history: HistorySettings,
}

/// bellwether's own `notify.delivery` settings (not part of alertmanager.yml).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// How long delivered, failed, expired and superseded outbox entries
    /// and notification-log entries are kept (Alertmanager's
    /// `--data.retention`). Default 120h.
    pub retention: PromDuration,
    /// An undelivered notification is given up (counted and logged) this
    /// long after its flush, or after the route's `group_interval` if that
    /// is longer. Default 1h.
    pub expiry: PromDuration,
    /// Timeout of one delivery attempt (HTTP request or SMTP session).
    /// Default 30s.
    pub timeout: PromDuration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retention: PromDuration::from_secs(120 * 3600),
            expiry: PromDuration::from_secs(3600),
            timeout: PromDuration::from_secs(30),
        }
    }
}

/// bellwether's own `notify.history` settings: how long a finished
/// notification (the history of `GET /api/v1/alerts/history`) is kept, by
/// the tier of its alerts' `severity` label.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySettings {
    /// Per-severity retention; entries override the built-in critical 90d,
    /// warning 30d, info 7d and add other severities.
    pub retention: BTreeMap<String, PromDuration>,
    /// Retention of notifications whose alerts have another severity or
    /// none. Default 7d.
    pub default_retention: PromDuration,
}

/// Built-in history retention per severity.
pub const DEFAULT_HISTORY_RETENTION: [(&str, u64); 3] = [
    ("critical", 90 * 86_400),
    ("warning", 30 * 86_400),
    ("info", 7 * 86_400),
];

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            retention: BTreeMap::new(),
            default_retention: PromDuration::from_secs(7 * 86_400),
        }
    }
}

impl HistorySettings {
    /// The retention of every named severity: the built-in ones with the
    /// configured entries over them.
    pub fn per_severity(&self) -> Vec<(String, std::time::Duration)> {
        let mut all: BTreeMap<String, std::time::Duration> = DEFAULT_HISTORY_RETENTION
            .iter()
            .map(|(s, secs)| (s.to_string(), std::time::Duration::from_secs(*secs)))
            .collect();
        for (severity, d) in &self.retention {
            all.insert(severity.clone(), d.0);
        }
        all.into_iter().collect()
    }
}

/// A whole alertmanager.yml, as read from `config_file`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmFile {
    pub global: Option<AmGlobal>,
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
}

/// The checked notification config the router runs with: global defaults
/// applied to every receiver, `route` always present, inhibit matchers
/// compiled. `time_intervals` holds both `time_intervals` and
/// `mute_time_intervals`.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    pub global: AmGlobal,
    pub route: RouteConfig,
    pub inhibit_rules: Vec<InhibitRule>,
    pub receivers: Vec<Receiver>,
    pub templates: Vec<String>,
    pub time_intervals: BTreeMap<String, Vec<TimeInterval>>,
    /// Where it came from: `notify` (inline), the file, or the default.
    pub origin: String,
    /// `notify.delivery` of bellwether's config (defaults for a bare
    /// alertmanager.yml).
    pub delivery: DeliverySettings,
    /// `notify.history` of bellwether's config.
    pub history: HistorySettings,
    /// bellwether's default templates plus the `templates` files, parsed.
    pub notify_templates: std::sync::Arc<crate::template::NotifyTemplates>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmGlobal {
    /// After this long without an update an alert without `endsAt` is resolved. Default 5m.
    pub resolve_timeout: PromDuration,
    /// HTTP client settings of every HTTP receiver without its own `http_config`.
    pub http_config: Option<HttpConfig>,
    pub smtp_from: String,
    /// Default `localhost`.
    pub smtp_hello: String,
    pub smtp_smarthost: String,
    pub smtp_auth_username: String,
    pub smtp_auth_password: Secret,
    pub smtp_auth_password_file: String,
    pub smtp_auth_secret: Secret,
    pub smtp_auth_identity: String,
    /// Default true.
    pub smtp_require_tls: bool,
    pub slack_api_url: Option<Secret>,
    pub slack_api_url_file: String,
    /// Default `https://events.pagerduty.com/v2/enqueue`.
    pub pagerduty_url: String,
    // Defaults of Alertmanager's receiver types bellwether does not support:
    // accepted so an alertmanager.yml loads unchanged, not used.
    pub opsgenie_api_url: Option<String>,
    pub opsgenie_api_key: Option<Secret>,
    pub opsgenie_api_key_file: Option<String>,
    pub wechat_api_url: Option<String>,
    pub wechat_api_secret: Option<Secret>,
    pub wechat_api_corp_id: Option<String>,
    pub victorops_api_url: Option<String>,
    pub victorops_api_key: Option<Secret>,
    pub victorops_api_key_file: Option<String>,
    pub telegram_api_url: Option<String>,
    pub webex_api_url: Option<String>,
}

impl Default for AmGlobal {
    fn default() -> Self {
        AmGlobal {
            resolve_timeout: PromDuration::from_secs(300),
            http_config: None,
            smtp_from: String::new(),
            smtp_hello: "localhost".into(),
            smtp_smarthost: String::new(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_auth_identity: String::new(),
            smtp_require_tls: true,
            slack_api_url: None,
            slack_api_url_file: String::new(),
            pagerduty_url: DEFAULT_PAGERDUTY_URL.into(),
            opsgenie_api_url: None,
            opsgenie_api_key: None,
            opsgenie_api_key_file: None,
            wechat_api_url: None,
            wechat_api_secret: None,
            wechat_api_corp_id: None,
            victorops_api_url: None,
            victorops_api_key: None,
            victorops_api_key_file: None,
            telegram_api_url: None,
            webex_api_url: None,
        }
    }
}

/// A receiver's `http_config` (Prometheus common HTTP client settings).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    /// Default true.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Default true.
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

fn yes() -> bool {
    true
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// One node of the routing tree, as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Receiver of alerts this route matches; inherited when empty. Required at the root.
    #[serde(default)]
    pub receiver: String,
    /// Labels that group alerts; `['...']` groups by all labels. Inherited when absent.
    pub group_by: Option<Vec<String>>,
    /// Legacy equality matchers.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Legacy regex matchers (anchored).
    #[serde(default)]
    pub match_re: BTreeMap<String, AnchoredRegex>,
    #[serde(default)]
    pub matchers: Vec<MatcherLine>,
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Keep matching the following sibling routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    pub group_wait: Option<PromDuration>,
    pub group_interval: Option<PromDuration>,
    pub repeat_interval: Option<PromDuration>,
}

impl RouteConfig {
    /// Every matcher of this route (legacy and new style), sorted as
    /// Alertmanager sorts them.
    pub fn all_matchers(&self) -> Matchers {
        let mut all = Vec::new();
        for (name, value) in &self.match_eq {
            if let Ok(m) = Matcher::new(MatchType::Equal, name, value) {
                all.push(m);
            }
        }
        for (name, re) in &self.match_re {
            if let Ok(m) = Matcher::new(MatchType::Regexp, name, &re.source) {
                all.push(m);
            }
        }
        for line in &self.matchers {
            all.extend(line.0.iter().cloned());
        }
        Matchers::sorted(all)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, AnchoredRegex>,
    #[serde(default)]
    pub source_matchers: Vec<MatcherLine>,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, AnchoredRegex>,
    #[serde(default)]
    pub target_matchers: Vec<MatcherLine>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// A checked inhibit rule: alerts matching `target` are muted while an alert
/// matching `source` fires with the same values of the `equal` labels.
#[derive(Clone, Debug)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Whether the firing alert `source` mutes `target` under this rule: the
    /// source matches `source`, the target matches `target`, and both have
    /// the same values of the `equal` labels (a missing label is `""`). The
    /// inhibitor's other conditions (the source is firing, an alert that
    /// matches both sides does not mute itself) are for its caller.
    pub fn mutes(&self, source: &crate::model::Labels, target: &crate::model::Labels) -> bool {
        self.target.matches(target)
            && self.source.matches(source)
            && self
                .equal
                .iter()
                .all(|l| source.get(l).unwrap_or("") == target.get(l).unwrap_or(""))
    }
}

fn compile(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, AnchoredRegex>,
    lines: &[MatcherLine],
) -> Matchers {
    let route = RouteConfig {
        match_eq: eq.clone(),
        match_re: re.clone(),
        matchers: lines.to_vec(),
        ..Default::default()
    };
    route.all_matchers()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

/// A receiver: a name and its notification configs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// bellwether's own: write each notification to the daemon's log.
    #[serde(default)]
    pub log_configs: Vec<LogConfig>,
    // Alertmanager's other receiver types: read only to be refused by name.
    pub opsgenie_configs: Option<IgnoredAny>,
    pub victorops_configs: Option<IgnoredAny>,
    pub wechat_configs: Option<IgnoredAny>,
    pub pushover_configs: Option<IgnoredAny>,
    pub sns_configs: Option<IgnoredAny>,
    pub telegram_configs: Option<IgnoredAny>,
    pub discord_configs: Option<IgnoredAny>,
    pub webex_configs: Option<IgnoredAny>,
    pub msteams_configs: Option<IgnoredAny>,
}

const UNSUPPORTED_RECEIVERS: [&str; 9] = [
    "opsgenie_configs",
    "victorops_configs",
    "wechat_configs",
    "pushover_configs",
    "sns_configs",
    "telegram_configs",
    "discord_configs",
    "webex_configs",
    "msteams_configs",
];

impl Receiver {
    fn unsupported(&self) -> Vec<&'static str> {
        let present = [
            self.opsgenie_configs.is_some(),
            self.victorops_configs.is_some(),
            self.wechat_configs.is_some(),
            self.pushover_configs.is_some(),
            self.sns_configs.is_some(),
            self.telegram_configs.is_some(),
            self.discord_configs.is_some(),
            self.webex_configs.is_some(),
            self.msteams_configs.is_some(),
        ];
        UNSUPPORTED_RECEIVERS
            .iter()
            .zip(present)
            .filter(|(_, p)| *p)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether the receiver has at least one notification config.
    pub fn is_configured(&self) -> bool {
        !(self.pagerduty_configs.is_empty()
            && self.slack_configs.is_empty()
            && self.email_configs.is_empty()
            && self.webhook_configs.is_empty()
            && self.log_configs.is_empty())
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyLink {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyImage {
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub alt: String,
    #[serde(default)]
    pub href: String,
}

/// `pagerduty_configs` entry. Templated strings left unset take
/// Alertmanager's default templates (applied by the receiver).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    /// Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Events API v1 integration key.
    #[serde(default)]
    pub service_key: Secret,
    #[serde(default)]
    pub service_key_file: String,
    /// Events API v2 routing key.
    #[serde(default)]
    pub routing_key: Secret,
    #[serde(default)]
    pub routing_key_file: String,
    /// Default `global.pagerduty_url`.
    #[serde(default)]
    pub url: String,
    pub client: Option<String>,
    pub client_url: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    #[serde(default)]
    pub images: Vec<PagerdutyImage>,
    #[serde(default)]
    pub links: Vec<PagerdutyLink>,
    pub source: Option<String>,
    pub severity: Option<String>,
    pub class: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfirmation {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub ok_text: String,
    #[serde(default)]
    pub dismiss_text: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackAction {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub style: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    pub confirm: Option<SlackConfirmation>,
}

/// `slack_configs` entry (incoming webhook).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Default `global.slack_api_url`.
    pub api_url: Option<Secret>,
    /// Default `global.slack_api_url_file`.
    #[serde(default)]
    pub api_url_file: String,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub color: Option<String>,
    pub title: Option<String>,
    pub title_link: Option<String>,
    pub pretext: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    pub footer: Option<String>,
    pub fallback: Option<String>,
    pub callback_id: Option<String>,
    pub icon_emoji: Option<String>,
    pub icon_url: Option<String>,
    pub image_url: Option<String>,
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default)]
    pub mrkdwn_in: Vec<String>,
    #[serde(default)]
    pub actions: Vec<SlackAction>,
}

/// `email_configs` entry. Unset SMTP settings come from `global.smtp_*`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Default false.
    #[serde(default)]
    pub send_resolved: bool,
    /// Recipients, comma-separated. Required.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub hello: String,
    #[serde(default)]
    pub smarthost: String,
    #[serde(default)]
    pub auth_username: String,
    #[serde(default)]
    pub auth_password: Secret,
    #[serde(default)]
    pub auth_password_file: String,
    #[serde(default)]
    pub auth_secret: Secret,
    #[serde(default)]
    pub auth_identity: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub require_tls: Option<bool>,
    pub tls_config: Option<TlsConfig>,
}

/// `webhook_configs` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    pub http_config: Option<HttpConfig>,
    /// Required, http or https.
    #[serde(default)]
    pub url: String,
    /// Most alerts per message (0 = all). Default 0.
    #[serde(default)]
    pub max_alerts: u64,
    /// bellwether's own: sign every request with HMAC-SHA256 (headers
    /// `X-Bellwether-Timestamp` and `X-Bellwether-Signature`). Default none.
    pub hmac_secret: Option<Secret>,
    /// File holding the HMAC secret (read at every send; trailing newline
    /// ignored). Excludes `hmac_secret`.
    pub hmac_secret_file: Option<String>,
}

/// `log_configs` entry (bellwether's own): the notification is written to
/// the daemon's log.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Default true.
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            send_resolved: true,
        }
    }
}

// ---------------------------------------------------------------------------
// Loading and checking.

/// A step of a key path.
#[derive(Clone, Debug)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

/// Collects findings, locating them in the tree (if there is one).
struct Checker<'a> {
    root: Option<&'a Node>,
    prefix: String,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let (path, pos) = self.locate(path);
        self.findings.push(Finding {
            pos,
            path,
            message: message.into(),
        });
    }

    fn locate(&self, path: &KeyPath) -> (String, Option<Pos>) {
        let push = |text: &mut String, seg: &Seg| match seg {
            Seg::Key(k) => *text = join_key(text, k),
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        };
        let Some(mut node) = self.root else {
            let mut text = self.prefix.clone();
            for seg in &path.0 {
                push(&mut text, seg);
            }
            return (text, None);
        };
        for (i, seg) in path.0.iter().enumerate() {
            let next = match (seg, &node.kind) {
                (Seg::Key(k), Kind::Map(entries)) => {
                    entries.iter().find(|e| &e.key == k).map(|e| &e.value)
                }
                (Seg::Index(n), Kind::Seq(items)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => {
                    let mut text = node.path.clone();
                    for seg in &path.0[i..] {
                        push(&mut text, seg);
                    }
                    return (text, Some(node.pos));
                }
            }
        }
        (node.path.clone(), Some(node.pos))
    }
}

fn valid_label_name(name: &str) -> bool {
    crate::config::is_valid_label_name(name)
}

/// Checks an http(s) URL as Alertmanager's `URL` type does.
fn check_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("unsupported scheme {:?} for URL", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("missing host for URL".into());
    }
    Ok(())
}

fn check_host_port(text: &str) -> Result<(), String> {
    match text.rsplit_once(':') {
        None => Err(format!("address {text}: missing port in address")),
        Some((_, "")) => Err(format!("address {text:?}: port cannot be empty")),
        Some(_) => Ok(()),
    }
}

/// The parts of an alertmanager.yml, whichever way they were written.
pub(crate) struct Parts {
    pub global: Option<AmGlobal>,
    pub route: Option<RouteConfig>,
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    pub receivers: Vec<Receiver>,
    pub templates: Vec<String>,
    pub time_intervals: Vec<NamedTimeInterval>,
    pub mute_time_intervals: Vec<NamedTimeInterval>,
}

impl From<AmFile> for Parts {
    fn from(f: AmFile) -> Parts {
        Parts {
            global: f.global,
            route: f.route,
            inhibit_rules: f.inhibit_rules,
            receivers: f.receivers,
            templates: f.templates,
            time_intervals: f.time_intervals,
            mute_time_intervals: f.mute_time_intervals,
        }
    }
}

/// The route used when the inline section has none: everything to `log`
/// (with `continue`, so every notification is logged), then
/// `severity="critical"` to `pagerduty`, `"warning"` to `slack` and
/// `"info"` to `email`, each only if a receiver of that name is defined
/// with at least one notification config.
pub fn default_route(receivers: &[Receiver]) -> RouteConfig {
    let defined = |name: &str| {
        receivers
            .iter()
            .any(|r| r.name == name && r.is_configured())
    };
    let mut routes = vec![RouteConfig {
        receiver: "log".into(),
        continue_matching: true,
        ..Default::default()
    }];
    for (severity, receiver) in [
        ("critical", "pagerduty"),
        ("warning", "slack"),
        ("info", "email"),
    ] {
        if defined(receiver) {
            let matcher = Matcher::new(MatchType::Equal, "severity", severity)
                .map(|m| vec![MatcherLine(vec![m])])
                .unwrap_or_default();
            routes.push(RouteConfig {
                receiver: receiver.into(),
                matchers: matcher,
                ..Default::default()
            });
        }
    }
    RouteConfig {
        receiver: "log".into(),
        group_by: Some(vec!["alertname".into()]),
        routes,
        ..Default::default()
    }
}

/// Checks the parts and builds the config. `root` is the tree they were
/// read from (the `notify` node or the file's root); `allow_default_route`
/// says the route may be left out (inline sections only).
pub(crate) fn check(
    mut parts: Parts,
    root: Option<&Node>,
    base_dir: Option<&Path>,
    allow_default_route: bool,
    origin: &str,
) -> Result<NotifyConfig, Vec<Finding>> {
    let mut cx = Checker {
        root,
        prefix: String::new(),
        findings: Vec::new(),
    };
    let top = KeyPath::default();
    let mut global = parts.global.take().unwrap_or_default();

    if global.slack_api_url.is_some() && !global.slack_api_url_file.is_empty() {
        cx.error(
            &top.key("global"),
            "at most one of slack_api_url & slack_api_url_file must be configured",
        );
    }
    if !global.smtp_auth_password.0.is_empty() && !global.smtp_auth_password_file.is_empty() {
        cx.error(
            &top.key("global"),
            "at most one of smtp_auth_password & smtp_auth_password_file must be configured",
        );
    }
    if let Some(url) = &global.slack_api_url {
        if let Err(e) = check_url(url.expose()) {
            cx.error(&top.key("global").key("slack_api_url"), e);
        }
    }
    if let Err(e) = check_url(&global.pagerduty_url) {
        cx.error(&top.key("global").key("pagerduty_url"), e);
    }
    if !global.smtp_smarthost.is_empty() {
        if let Err(e) = check_host_port(&global.smtp_smarthost) {
            cx.error(&top.key("global").key("smtp_smarthost"), e);
        }
    }

    // Receivers.
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, r) in parts.receivers.iter_mut().enumerate() {
        let at = top.key("receivers").index(i);
        if r.name.is_empty() {
            cx.error(&at, "missing name in receiver");
        } else if let Some(first) = names.get(&r.name) {
            cx.error(
                &at.key("name"),
                format!(
                    "notification config name {:?} is not unique (also receivers[{first}])",
                    r.name
                ),
            );
        } else {
            names.insert(r.name.clone(), i);
        }
        for kind in r.unsupported() {
            cx.error(
                &at.key(kind),
                format!(
                    "receiver type `{kind}` is not supported by bellwether (supported: pagerduty_configs, slack_configs, email_configs, webhook_configs, log_configs)"
                ),
            );
        }
        check_receiver(&mut cx, &at, r, &global);
    }

    // Time intervals.
    let mut intervals: BTreeMap<String, Vec<TimeInterval>> = BTreeMap::new();
    for (key, list, what) in [
        (
            "mute_time_intervals",
            &parts.mute_time_intervals,
            "mute time interval",
        ),
        ("time_intervals", &parts.time_intervals, "time interval"),
    ] {
        for (i, ti) in list.iter().enumerate() {
            let at = top.key(key).index(i);
            if ti.name.is_empty() {
                cx.error(&at, format!("missing name in {what}"));
            } else if intervals.contains_key(&ti.name) {
                cx.error(
                    &at.key("name"),
                    format!("{what} {:?} is not unique", ti.name),
                );
            } else {
                intervals.insert(ti.name.clone(), ti.time_intervals.clone());
            }
        }
    }

    // Inhibit rules.
    let mut inhibit_rules = Vec::new();
    for (i, rule) in parts.inhibit_rules.iter().enumerate() {
        let at = top.key("inhibit_rules").index(i);
        for (key, map) in [
            ("source_match", &rule.source_match),
            ("target_match", &rule.target_match),
        ] {
            for name in map.keys() {
                if !valid_label_name(name) {
                    cx.error(&at.key(key), format!("invalid label name {name:?}"));
                }
            }
        }
        for (key, map) in [
            ("source_match_re", &rule.source_match_re),
            ("target_match_re", &rule.target_match_re),
        ] {
            for name in map.keys() {
                if !valid_label_name(name) {
                    cx.error(&at.key(key), format!("invalid label name {name:?}"));
                }
            }
        }
        for (j, name) in rule.equal.iter().enumerate() {
            if !valid_label_name(name) {
                cx.error(
                    &at.key("equal").index(j),
                    format!("invalid label name {name:?}"),
                );
            }
        }
        inhibit_rules.push(InhibitRule {
            source: compile(
                &rule.source_match,
                &rule.source_match_re,
                &rule.source_matchers,
            ),
            target: compile(
                &rule.target_match,
                &rule.target_match_re,
                &rule.target_matchers,
            ),
            equal: rule.equal.clone(),
        });
    }

    // The route.
    let route = match parts.route.take() {
        Some(route) => {
            let at = top.key("route");
            if route.receiver.is_empty() {
                cx.error(&at, "root route must specify a default receiver");
            }
            if !route.all_matchers().is_empty() {
                cx.error(&at, "root route must not have any matchers");
            }
            if !route.mute_time_intervals.is_empty() {
                cx.error(&at, "root route must not have any mute time intervals");
            }
            if !route.active_time_intervals.is_empty() {
                cx.error(&at, "root route must not have any active time intervals");
            }
            if route.continue_matching {
                cx.error(&at, "cannot have continue in root route");
            }
            route
        }
        None if allow_default_route => {
            if !parts.receivers.iter().any(|r| r.name == "log") {
                parts.receivers.push(Receiver {
                    name: "log".into(),
                    log_configs: vec![LogConfig::default()],
                    ..Default::default()
                });
                names.insert("log".into(), parts.receivers.len() - 1);
            }
            default_route(&parts.receivers)
        }
        None => {
            cx.error(&top, "no route provided in config");
            RouteConfig::default()
        }
    };
    check_route(&mut cx, &top.key("route"), &route, &names, &intervals);

    let templates: Vec<String> = parts
        .templates
        .iter()
        .map(|t| match base_dir {
            Some(dir) if Path::new(t).is_relative() => {
                PathBuf::from(dir).join(t).display().to_string()
            }
            _ => t.clone(),
        })
        .collect();

    let notify_templates = load_templates(&mut cx, &top, &templates);

    if !cx.findings.is_empty() {
        return Err(cx.findings);
    }
    // Inherit the global defaults.
    global.http_config.get_or_insert_with(HttpConfig::default);
    for r in &mut parts.receivers {
        apply_global(r, &global);
    }
    Ok(NotifyConfig {
        global,
        route,
        inhibit_rules,
        receivers: parts.receivers,
        templates,
        time_intervals: intervals,
        origin: origin.to_string(),
        delivery: DeliverySettings::default(),
        history: HistorySettings::default(),
        notify_templates,
    })
}

/// Reads the `templates` globs (a glob matching nothing is fine, as in
/// Alertmanager) after bellwether's default templates and parses them.
fn load_templates(
    cx: &mut Checker<'_>,
    top: &KeyPath,
    globs: &[String],
) -> std::sync::Arc<crate::template::NotifyTemplates> {
    let mut files = vec![(
        "default.tmpl".to_string(),
        crate::notify::deliver::DEFAULT_TEMPLATES.to_string(),
    )];
    for (i, pattern) in globs.iter().enumerate() {
        let at = top.key("templates").index(i);
        let paths = match glob::glob(pattern) {
            Ok(p) => p,
            Err(e) => {
                cx.error(&at, format!("invalid template glob {pattern:?}: {e}"));
                continue;
            }
        };
        for path in paths {
            let read = path
                .map_err(|e| e.to_string())
                .and_then(|p| match std::fs::read_to_string(&p) {
                    Ok(text) => Ok((p.display().to_string(), text)),
                    Err(e) => Err(format!("cannot read template file {}: {e}", p.display())),
                });
            match read {
                Ok(file) => {
                    // Checked one by one so an error names its file.
                    if let Err(e) =
                        crate::template::NotifyTemplates::new(std::slice::from_ref(&file))
                    {
                        cx.error(&at, e);
                    }
                    files.push(file);
                }
                Err(e) => cx.error(&at, e),
            }
        }
    }
    match crate::template::NotifyTemplates::new(&files) {
        Ok(t) => std::sync::Arc::new(t),
        Err(e) => {
            cx.error(&top.key("templates"), e);
            std::sync::Arc::new(
                crate::template::NotifyTemplates::new(&[]).expect("no templates parse"),
            )
        }
    }
}

fn check_receiver(cx: &mut Checker<'_>, at: &KeyPath, r: &Receiver, global: &AmGlobal) {
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        let at = at.key("pagerduty_configs").index(i);
        if c.routing_key.0.is_empty()
            && c.service_key.0.is_empty()
            && c.routing_key_file.is_empty()
            && c.service_key_file.is_empty()
        {
            cx.error(&at, "missing service or routing key in PagerDuty config");
        }
        if !c.routing_key.0.is_empty() && !c.routing_key_file.is_empty() {
            cx.error(
                &at,
                "at most one of routing_key & routing_key_file must be configured",
            );
        }
        if !c.service_key.0.is_empty() && !c.service_key_file.is_empty() {
            cx.error(
                &at,
                "at most one of service_key & service_key_file must be configured",
            );
        }
        if !c.url.is_empty() {
            if let Err(e) = check_url(&c.url) {
                cx.error(&at.key("url"), e);
            }
        } else if global.pagerduty_url.is_empty() {
            cx.error(&at, "no global PagerDuty URL set");
        }
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        let at = at.key("slack_configs").index(i);
        if c.api_url.is_some() && !c.api_url_file.is_empty() {
            cx.error(
                &at,
                "at most one of api_url & api_url_file must be configured",
            );
        }
        if let Some(url) = &c.api_url {
            if let Err(e) = check_url(url.expose()) {
                cx.error(&at.key("api_url"), e);
            }
        } else if c.api_url_file.is_empty()
            && global.slack_api_url.is_none()
            && global.slack_api_url_file.is_empty()
        {
            cx.error(
                &at,
                "no global Slack API URL set either inline or in a file",
            );
        }
        for (j, f) in c.fields.iter().enumerate() {
            if f.title.is_empty() {
                cx.error(
                    &at.key("fields").index(j),
                    "missing title in Slack field configuration",
                );
            }
            if f.value.is_empty() {
                cx.error(
                    &at.key("fields").index(j),
                    "missing value in Slack field configuration",
                );
            }
        }
        for (j, a) in c.actions.iter().enumerate() {
            let at = at.key("actions").index(j);
            if a.kind.is_empty() {
                cx.error(&at, "missing type in Slack action configuration");
            }
            if a.text.is_empty() {
                cx.error(&at, "missing text in Slack action configuration");
            }
            if a.url.is_empty() && a.name.is_empty() {
                cx.error(&at, "missing name or url in Slack action configuration");
            }
            if a.confirm.as_ref().is_some_and(|c| c.text.is_empty()) {
                cx.error(
                    &at.key("confirm"),
                    "missing text in Slack confirmation configuration",
                );
            }
        }
    }
    for (i, c) in r.email_configs.iter().enumerate() {
        let at = at.key("email_configs").index(i);
        if c.to.is_empty() {
            cx.error(&at, "missing to address in email config");
        }
        let mut seen = HashSet::new();
        for name in c.headers.keys() {
            let canonical = canonical_header(name);
            if !seen.insert(canonical.clone()) {
                cx.error(
                    &at.key("headers"),
                    format!("duplicate header {canonical:?} in email config"),
                );
            }
        }
        if c.smarthost.is_empty() && global.smtp_smarthost.is_empty() {
            cx.error(&at, "no global SMTP smarthost set");
        } else if !c.smarthost.is_empty() {
            if let Err(e) = check_host_port(&c.smarthost) {
                cx.error(&at.key("smarthost"), e);
            }
        }
        if c.from.is_empty() && global.smtp_from.is_empty() {
            cx.error(&at, "no global SMTP from set");
        }
    }
    for (i, c) in r.webhook_configs.iter().enumerate() {
        let at = at.key("webhook_configs").index(i);
        if c.url.is_empty() {
            cx.error(&at, "missing URL in webhook config");
        } else if let Err(e) = check_url(&c.url) {
            cx.error(&at.key("url"), e);
        }
        if c.hmac_secret.is_some() && c.hmac_secret_file.is_some() {
            cx.error(
                &at,
                "at most one of hmac_secret & hmac_secret_file must be configured",
            );
        }
        if c.hmac_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            cx.error(&at.key("hmac_secret"), "hmac_secret must not be empty");
        }
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII names.
fn canonical_header(name: &str) -> String {
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

fn apply_global(r: &mut Receiver, g: &AmGlobal) {
    for c in &mut r.pagerduty_configs {
        if c.url.is_empty() {
            c.url = g.pagerduty_url.clone();
        }
        if c.http_config.is_none() {
            c.http_config = g.http_config.clone();
        }
    }
    for c in &mut r.slack_configs {
        if c.api_url.is_none() && c.api_url_file.is_empty() {
            c.api_url = g.slack_api_url.clone();
            c.api_url_file = g.slack_api_url_file.clone();
        }
        if c.http_config.is_none() {
            c.http_config = g.http_config.clone();
        }
    }
    for c in &mut r.webhook_configs {
        if c.http_config.is_none() {
            c.http_config = g.http_config.clone();
        }
    }
    for c in &mut r.email_configs {
        let fill = |field: &mut String, value: &str| {
            if field.is_empty() {
                *field = value.to_string();
            }
        };
        fill(&mut c.from, &g.smtp_from);
        fill(&mut c.hello, &g.smtp_hello);
        fill(&mut c.smarthost, &g.smtp_smarthost);
        fill(&mut c.auth_username, &g.smtp_auth_username);
        fill(&mut c.auth_password_file, &g.smtp_auth_password_file);
        fill(&mut c.auth_identity, &g.smtp_auth_identity);
        if c.auth_password.0.is_empty() {
            c.auth_password = g.smtp_auth_password.clone();
        }
        if c.auth_secret.0.is_empty() {
            c.auth_secret = g.smtp_auth_secret.clone();
        }
        c.require_tls.get_or_insert(g.smtp_require_tls);
    }
}

fn check_route(
    cx: &mut Checker<'_>,
    at: &KeyPath,
    route: &RouteConfig,
    receivers: &HashMap<String, usize>,
    intervals: &BTreeMap<String, Vec<TimeInterval>>,
) {
    if !route.receiver.is_empty() && !receivers.contains_key(&route.receiver) {
        cx.error(
            &at.key("receiver"),
            format!("undefined receiver {:?} used in route", route.receiver),
        );
    }
    for name in route.match_eq.keys().chain(route.match_re.keys()) {
        if !valid_label_name(name) {
            let key = if route.match_eq.contains_key(name) {
                "match"
            } else {
                "match_re"
            };
            cx.error(&at.key(key), format!("invalid label name {name:?}"));
        }
    }
    if let Some(group_by) = &route.group_by {
        let mut all = false;
        let mut labels = HashSet::new();
        for (i, l) in group_by.iter().enumerate() {
            if l == "..." {
                all = true;
            } else if !valid_label_name(l) {
                cx.error(
                    &at.key("group_by").index(i),
                    format!("invalid label name {l:?} in group_by list"),
                );
            } else if !labels.insert(l.as_str()) {
                cx.error(
                    &at.key("group_by").index(i),
                    format!("duplicated label {l:?} in group_by"),
                );
            }
        }
        if all && group_by.len() > 1 {
            cx.error(
                &at.key("group_by"),
                "cannot have wildcard group_by (`...`) and other other labels at the same time",
            );
        }
    }
    if route.group_interval.is_some_and(|d| d.0.is_zero()) {
        cx.error(&at.key("group_interval"), "group_interval cannot be zero");
    }
    if route.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        cx.error(&at.key("repeat_interval"), "repeat_interval cannot be zero");
    }
    for (key, names) in [
        ("mute_time_intervals", &route.mute_time_intervals),
        ("active_time_intervals", &route.active_time_intervals),
    ] {
        for (i, name) in names.iter().enumerate() {
            if !intervals.contains_key(name) {
                cx.error(
                    &at.key(key).index(i),
                    format!("undefined time interval {name:?} used in route"),
                );
            }
        }
    }
    for (i, child) in route.routes.iter().enumerate() {
        check_route(cx, &at.key("routes").index(i), child, receivers, intervals);
    }
}

/// Checks the inline section (or the file it names) of bellwether's config.
/// `node` is the `notify` node; findings of a `config_file` are rendered
/// with that file's name and reported at `notify.config_file`.
pub(crate) fn check_section(
    section: NotifySection,
    node: Option<&Node>,
    base_dir: Option<&Path>,
) -> Result<NotifyConfig, Vec<Finding>> {
    let delivery = section.delivery.clone();
    let history = section.history.clone();
    let mut bad_delivery = Vec::new();
    // A zero duration at `notify.<keys>` is refused, positioned at its key.
    let mut refuse_zero = |value: PromDuration, keys: &[&str], message: String| {
        if value.0.is_zero() {
            bad_delivery.push(Finding {
                pos: node
                    .and_then(|n| keys.iter().try_fold(n, |n, key| n.get(key)))
                    .map(|n| n.pos),
                path: format!("notify.{}", keys.join(".")),
                message,
            });
        }
    };
    for (key, value) in [
        ("retention", delivery.retention),
        ("expiry", delivery.expiry),
        ("timeout", delivery.timeout),
    ] {
        refuse_zero(
            value,
            &["delivery", key],
            format!("{key} must be greater than 0"),
        );
    }
    refuse_zero(
        history.default_retention,
        &["history", "default_retention"],
        "default_retention must be greater than 0".into(),
    );
    for (severity, d) in &history.retention {
        refuse_zero(
            *d,
            &["history", "retention", severity],
            format!("the retention of severity {severity:?} must be greater than 0"),
        );
    }
    if !bad_delivery.is_empty() {
        return Err(bad_delivery);
    }
    let with_delivery = |r: Result<NotifyConfig, Vec<Finding>>| {
        r.map(|mut c| {
            c.delivery = delivery.clone();
            c.history = history.clone();
            c
        })
    };
    let Some(file) = section.config_file.clone() else {
        let parts = Parts {
            global: section.global,
            route: section.route,
            inhibit_rules: section.inhibit_rules,
            receivers: section.receivers,
            templates: section.templates,
            time_intervals: section.time_intervals,
            mute_time_intervals: section.mute_time_intervals,
        };
        return with_delivery(check(parts, node, base_dir, true, "notify"));
    };
    let at_file = |message: String| Finding {
        pos: node.and_then(|n| n.get("config_file")).map(|n| n.pos),
        path: "notify.config_file".into(),
        message,
    };
    if let Some(Kind::Map(entries)) = node.map(|n| &n.kind) {
        if let Some(other) = entries
            .iter()
            .find(|e| !matches!(e.key.as_str(), "config_file" | "delivery" | "history"))
        {
            return Err(vec![Finding {
                pos: Some(other.key_pos),
                path: join_key(
                    &node.map(|n| n.path.clone()).unwrap_or_default(),
                    &other.key,
                ),
                message: "`config_file` and inline alertmanager.yml keys exclude each other".into(),
            }]);
        }
    }
    let path = match base_dir {
        Some(dir) if Path::new(&file).is_relative() => dir.join(&file),
        _ => PathBuf::from(&file),
    };
    with_delivery(load_file(&path).map_err(|errors| errors.into_iter().map(at_file).collect()))
}

/// Reads and checks an alertmanager.yml; errors are rendered
/// `file:line:col: key.path: message`.
pub fn load_file(path: &Path) -> Result<NotifyConfig, Vec<String>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{origin}: cannot read alertmanager config: {e}")])?;
    load_str(
        &text,
        &origin,
        path.parent().filter(|p| !p.as_os_str().is_empty()),
    )
}

/// Parses and checks alertmanager.yml text; `origin` names it in errors.
pub fn load_str(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
) -> Result<NotifyConfig, Vec<String>> {
    let (parsed, mut findings) = crate::config::parse_document::<AmFile>(text);
    let render = |mut findings: Vec<Finding>| {
        findings.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
        findings.dedup();
        findings
            .iter()
            .map(|f| f.render(origin))
            .collect::<Vec<_>>()
    };
    let Some((file, root)) = parsed else {
        if findings.is_empty() {
            findings.push(Finding {
                pos: None,
                path: String::new(),
                message: "no route provided in config".into(),
            });
        }
        return Err(render(findings));
    };
    match check(file.into(), Some(&root), base_dir, false, origin) {
        Ok(config) if findings.is_empty() => Ok(config),
        Ok(_) => Err(render(findings)),
        Err(more) => {
            findings.extend(more);
            Err(render(findings))
        }
    }
}

impl NotifyConfig {
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
