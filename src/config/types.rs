//! The typed configuration. Field docs here are the user docs: keep
//! docs/configuration.md in step with them.
//!
//! `global`, `scrape_configs`, `rule_files` and `alerting` take prometheus.yml's
//! syntax unchanged; `storage` and `web` are bellwether's own.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::values::{PromDuration, RelabelRegex, Secret};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Globs of Prometheus rule files (evaluated by the rule engine).
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub alerting: AlertingConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub web: WebConfig,
    // Sections of later releases. They are accepted by the parser only so that
    // validation can refuse them with a message that says they are not
    // implemented yet, instead of "unknown key".
    pub collectors: Option<serde_json::Value>,
    pub probes: Option<serde_json::Value>,
    pub llm: Option<serde_json::Value>,
    pub logs: Option<serde_json::Value>,
    pub export: Option<serde_json::Value>,
    pub notify: Option<serde_json::Value>,
    pub remote_write: Option<serde_json::Value>,
    pub remote_read: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval of every job. Default 1m (Prometheus's default).
    pub scrape_interval: PromDuration,
    /// Default scrape timeout. Default 10s; must not exceed the interval.
    pub scrape_timeout: PromDuration,
    /// Default rule evaluation interval. Default 1m.
    pub evaluation_interval: PromDuration,
    /// Labels added to every alert and to forwarded samples.
    pub external_labels: BTreeMap<String, String>,
    /// Default per-scrape limits (0 = none), overridable per job.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
    /// Largest uncompressed scrape body in bytes (0 = none). Prometheus's syntax is
    /// a size such as `10MB`; see [`super::values::parse_size`].
    pub body_size_limit: super::values::ByteSize,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: PromDuration::from_secs(60),
            scrape_timeout: PromDuration::from_secs(10),
            evaluation_interval: PromDuration::from_secs(60),
            external_labels: BTreeMap::new(),
            sample_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            target_limit: 0,
            body_size_limit: super::values::ByteSize(0),
        }
    }
}

/// One scrape job, in prometheus.yml's `scrape_config` syntax.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// Defaults to `global.scrape_interval`.
    pub scrape_interval: Option<PromDuration>,
    /// Defaults to `global.scrape_timeout` (capped at the interval).
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters sent with every scrape.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    /// Legacy form of `authorization: {credentials: ...}`.
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<String>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Per-scrape limits; absent means the `global` value.
    pub sample_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub body_size_limit: Option<super::values::ByteSize>,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}
fn default_scheme() -> String {
    "http".to_string()
}
fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
    pub password_file: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// Default `Bearer`.
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<String>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths or globs (`*` in the last path element) of JSON or YAML target files.
    pub files: Vec<String>,
    /// How often the files are re-read. Default 5m; changes are also picked up by
    /// a modification-time check every few seconds.
    #[serde(default = "default_file_sd_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_file_sd_refresh() -> PromDuration {
    PromDuration::from_secs(300)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

/// One relabeling step, in Prometheus's `relabel_config` syntax and defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Default `;`.
    #[serde(default = "default_separator")]
    pub separator: String,
    pub target_label: Option<String>,
    /// Default `(.*)`, anchored at both ends.
    #[serde(default)]
    pub regex: RelabelRegex,
    pub modulus: Option<u64>,
    /// Default `$1`.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: RelabelAction,
}

fn default_separator() -> String {
    ";".to_string()
}
fn default_replacement() -> String {
    "$1".to_string()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default)]
    pub path_prefix: String,
    pub timeout: Option<PromDuration>,
    /// Only `v2` is supported (as in Prometheus 2.42+ defaults).
    pub api_version: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub tls_config: Option<TlsConfig>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

/// bellwether's own: the embedded time-series store.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Samples older than this are deleted. Default 15d.
    pub retention: PromDuration,
    /// Optional cap on the bytes on disk (e.g. `10GB`); oldest data goes first.
    pub retention_size: Option<super::values::ByteSize>,
    /// Cap on active series across all sources (0 = unlimited). Default 1000000.
    pub max_series: u64,
    /// How often the write-ahead log is fsynced; a crash loses at most this much. Default 1s.
    pub wal_flush_interval: PromDuration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            retention: PromDuration::from_secs(15 * 24 * 3600),
            retention_size: None,
            max_series: 1_000_000,
            wal_flush_interval: PromDuration::from_secs(1),
        }
    }
}

/// bellwether's own: the HTTP server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address the HTTP API listens on. Default 127.0.0.1:9471. `--listen` overrides it.
    pub listen_address: String,
    /// Largest request body accepted (remote_write, reload). Default 32MB.
    pub max_request_body: super::values::ByteSize,
    /// Bearer token required on write endpoints (`/api/v1/write`, `/-/reload`). Default none.
    pub write_token: Option<Secret>,
    /// File holding the write token (alternative to `write_token`).
    pub write_token_file: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: "127.0.0.1:9471".to_string(),
            max_request_body: super::values::ByteSize(32 * 1024 * 1024),
            write_token: None,
            write_token_file: None,
        }
    }
}
