//! The typed configuration. Field docs here are the user docs: keep
//! docs/configuration.md in step with them.
//!
//! `global`, `scrape_configs`, `rule_files` and `alerting` take prometheus.yml's
//! syntax unchanged; `storage` and `web` are bellwether's own.
//!
//! After [`super::load_file`] the derived defaults are filled in as Prometheus
//! does: every `ScrapeConfig` has `scrape_interval` and `scrape_timeout` set,
//! `bearer_token`/`bearer_token_file` are also folded into `authorization`,
//! every alertmanager has `timeout` and `api_version`, and relative file paths
//! are relative to the config file's directory.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::values::{ByteSize, PromDuration, RelabelRegex, Secret};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Defaults for every scrape job and rule group (prometheus.yml `global`).
    #[serde(default)]
    pub global: GlobalConfig,
    /// The scrape jobs (prometheus.yml `scrape_configs`). Default none.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Paths or globs (`*` only in the last path element) of Prometheus rule
    /// files, evaluated by the rule engine. Default none.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Where alerts are sent and how they are relabeled (prometheus.yml `alerting`).
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// bellwether's own: the embedded time-series store.
    #[serde(default)]
    pub storage: StorageConfig,
    /// bellwether's own: the HTTP server.
    #[serde(default)]
    pub web: WebConfig,
    /// bellwether's own: how the rule engine sends and restores alerts.
    #[serde(default)]
    pub rules: RulesConfig,
    /// bellwether's own: collectors that run inside the daemon (`host`:
    /// node_exporter-compatible host metrics, see docs/collectors.md).
    #[serde(default)]
    pub collectors: CollectorsConfig,
    // Sections of later releases. They are accepted by the parser only so that
    // validation can refuse them with a message that says they are not
    // implemented yet, instead of "unknown key".
    /// bellwether's own: LLM usage, pricing and the usage ledger (docs/llm.md).
    #[serde(default)]
    pub llm: crate::llm::config::LlmConfig,
    pub logs: Option<serde_json::Value>,
    pub export: Option<serde_json::Value>,
    /// bellwether's own: health probes (HTTP, TCP, PostgreSQL) with
    /// blackbox_exporter's metrics (see docs/probes.md). Default none.
    #[serde(default)]
    pub probes: crate::collect::probe::config::ProbesSection,
    /// bellwether's own: alert routing and receivers, an alertmanager.yml
    /// inline or named by `config_file` (see docs/notify.md). Default: the
    /// built-in route (everything to the `log` receiver, severities to
    /// `pagerduty`/`slack`/`email` when receivers of those names exist).
    #[serde(default)]
    pub notify: crate::notify::config::NotifySection,
    /// The checked `notify` section, filled in by the loader.
    #[serde(skip)]
    pub notify_config: Option<crate::notify::config::NotifyConfig>,
    pub remote_write: Option<serde_json::Value>,
    pub remote_read: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// Default scrape interval of every job. Default 1m; `0` means the default.
    pub scrape_interval: PromDuration,
    /// Default scrape timeout. Default 10s, capped at `scrape_interval` when not
    /// written; a written value greater than `scrape_interval` is an error.
    pub scrape_timeout: PromDuration,
    /// Default rule evaluation interval. Default 1m; `0` means the default.
    pub evaluation_interval: PromDuration,
    /// Labels added to every alert and to forwarded samples. Default none.
    /// Names must match `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub external_labels: BTreeMap<String, String>,
    /// Most samples a scrape may return before it fails (0 = no limit). Default 0.
    pub sample_limit: u64,
    /// Most labels a sample may have (0 = no limit). Default 0.
    pub label_limit: u64,
    /// Longest label name accepted, in bytes (0 = no limit). Default 0.
    pub label_name_length_limit: u64,
    /// Longest label value accepted, in bytes (0 = no limit). Default 0.
    pub label_value_length_limit: u64,
    /// Most targets a job may have after relabeling (0 = no limit). Default 0.
    pub target_limit: u64,
    /// Largest uncompressed scrape body (0 = no limit), a size such as `10MB`
    /// (powers of 1024; see [`super::values::parse_size`]). Default 0.
    pub body_size_limit: ByteSize,
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
            body_size_limit: ByteSize(0),
        }
    }
}

/// One scrape job, in prometheus.yml's `scrape_config` syntax.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Name of the job: the `job` label of its series. Required, non-empty,
    /// unique across `scrape_configs`.
    pub job_name: String,
    /// How often targets are scraped. Default `global.scrape_interval`
    /// (filled in by the loader; see [`ScrapeConfig::interval`]).
    pub scrape_interval: Option<PromDuration>,
    /// How long a scrape may take. Default `global.scrape_timeout`, capped at
    /// this job's `scrape_interval` (filled in by the loader; see
    /// [`ScrapeConfig::timeout`]). Greater than `scrape_interval` is an error.
    pub scrape_timeout: Option<PromDuration>,
    /// HTTP path of the metrics on each target. Default `/metrics`.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`. Default `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters sent with every scrape. Default none.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// On a clash between a scraped label and a target label, keep the
    /// scraped one (true) or rename it to `exported_<name>` (false). Default false.
    #[serde(default)]
    pub honor_labels: bool,
    /// Keep timestamps present in the scraped data. Default true.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Write staleness markers for series with explicit timestamps. Default false.
    #[serde(default)]
    pub track_timestamps_staleness: bool,
    /// HTTP basic authentication. Excludes `authorization` and `bearer_token*`.
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header. After loading it also holds a `bearer_token`/
    /// `bearer_token_file` given in the legacy form.
    pub authorization: Option<Authorization>,
    /// Legacy form of `authorization: {credentials: ...}`.
    pub bearer_token: Option<Secret>,
    /// Legacy form of `authorization: {credentials_file: ...}`. Must be readable.
    pub bearer_token_file: Option<String>,
    /// TLS settings for `https` scrapes.
    pub tls_config: Option<TlsConfig>,
    /// Follow HTTP redirects. Default true.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Allow HTTP/2 (over TLS). Default true.
    #[serde(default = "default_true")]
    pub enable_http2: bool,
    /// Targets listed in the config.
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Targets read from JSON or YAML files, re-read when they change.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// The pods of this node (`role: pod` only), from `collectors.kubernetes`.
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<crate::collect::kubernetes::config::KubernetesSdConfig>,
    /// Relabeling applied to targets before scraping.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling applied to scraped samples before they are stored.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Per-job limits; absent means the `global` value (see [`ScrapeConfig::limits`]).
    pub sample_limit: Option<u64>,
    /// See `global.label_limit`.
    pub label_limit: Option<u64>,
    /// See `global.label_name_length_limit`.
    pub label_name_length_limit: Option<u64>,
    /// See `global.label_value_length_limit`.
    pub label_value_length_limit: Option<u64>,
    /// See `global.target_limit`.
    pub target_limit: Option<u64>,
    /// See `global.body_size_limit`.
    pub body_size_limit: Option<ByteSize>,
}

/// The limits a scrape job runs with: its own, else `global`'s. 0 = no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeLimits {
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub target_limit: u64,
    /// In bytes.
    pub body_size_limit: u64,
}

impl ScrapeConfig {
    /// The effective scrape interval: this job's, else `global.scrape_interval`.
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_interval {
            Some(d) if !d.0.is_zero() => d.0,
            _ => global.scrape_interval.0,
        }
    }

    /// The effective scrape timeout, as Prometheus computes it: this job's,
    /// else `global.scrape_timeout` capped at [`Self::interval`].
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_timeout {
            Some(d) if !d.0.is_zero() => d.0,
            _ => global.scrape_timeout.0.min(self.interval(global)),
        }
    }

    /// The effective limits: each of this job's, else `global`'s.
    pub fn limits(&self, global: &GlobalConfig) -> ScrapeLimits {
        ScrapeLimits {
            sample_limit: self.sample_limit.unwrap_or(global.sample_limit),
            label_limit: self.label_limit.unwrap_or(global.label_limit),
            label_name_length_limit: self
                .label_name_length_limit
                .unwrap_or(global.label_name_length_limit),
            label_value_length_limit: self
                .label_value_length_limit
                .unwrap_or(global.label_value_length_limit),
            target_limit: self.target_limit.unwrap_or(global.target_limit),
            body_size_limit: self.body_size_limit.unwrap_or(global.body_size_limit).0,
        }
    }
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
    /// Required.
    pub username: String,
    /// Excludes `password_file`.
    pub password: Option<Secret>,
    /// File whose content is the password; must be readable when the config loads.
    pub password_file: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme of the `Authorization` header (YAML key `type`). Default
    /// `Bearer`; `Basic` is refused (use `basic_auth`).
    #[serde(rename = "type", default = "default_auth_type")]
    pub kind: String,
    /// Excludes `credentials_file`.
    pub credentials: Option<Secret>,
    /// File whose content is the credentials; must be readable when the config loads.
    pub credentials_file: Option<String>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) to verify the server with. Default: the system roots.
    pub ca_file: Option<String>,
    /// Client certificate; needs `key_file`.
    pub cert_file: Option<String>,
    /// Client key; needs `cert_file`.
    pub key_file: Option<String>,
    /// Server name to verify (SNI). Default: the target's host.
    pub server_name: Option<String>,
    /// Skip verification of the server's certificate. Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses (no scheme, no path; without a port the scheme's
    /// default, 80 or 443, applies).
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every target of this group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths or globs (`*` in the last path element) of JSON or YAML target
    /// files, ending in `.json`, `.yml` or `.yaml`. Required, non-empty. The
    /// files need not exist yet.
    pub files: Vec<String>,
    /// How often the files are re-read. Default 5m; changes are also picked up by
    /// a modification-time check every few seconds.
    #[serde(default = "default_file_sd_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_file_sd_refresh() -> PromDuration {
    PromDuration::from_secs(300)
}

/// A relabeling action; written in lowercase (any case is accepted, as in Prometheus).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// Labels whose values are joined with `separator` and matched. Default none.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source label values. Default `;`.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Label written by replace, hashmod, lowercase, uppercase; compared by
    /// keepequal/dropequal. `${1}`-style templates allowed for replace.
    pub target_label: Option<String>,
    /// RE2-syntax regex, anchored at both ends. Default `(.*)`.
    #[serde(default)]
    pub regex: RelabelRegex,
    /// Modulus of the hash, required (non-zero) for hashmod.
    pub modulus: Option<u64>,
    /// Replacement for replace and labelmap, with `$1`/`${name}` templates. Default `$1`.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// What to do. Default `replace`.
    #[serde(default)]
    pub action: RelabelAction,
}

impl RelabelAction {
    /// All actions, in the order the docs list them.
    pub const ALL: [RelabelAction; 11] = [
        RelabelAction::Replace,
        RelabelAction::Keep,
        RelabelAction::Drop,
        RelabelAction::KeepEqual,
        RelabelAction::DropEqual,
        RelabelAction::HashMod,
        RelabelAction::LabelMap,
        RelabelAction::LabelDrop,
        RelabelAction::LabelKeep,
        RelabelAction::Lowercase,
        RelabelAction::Uppercase,
    ];

    /// The name as written in the config (`keepequal`, `hashmod`, ...).
    pub fn name(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::KeepEqual => "keepequal",
            RelabelAction::DropEqual => "dropequal",
            RelabelAction::HashMod => "hashmod",
            RelabelAction::LabelMap => "labelmap",
            RelabelAction::LabelDrop => "labeldrop",
            RelabelAction::LabelKeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for RelabelAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for RelabelAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::values::deserialize_parsed(d, "a relabel action", |written| {
            let lower = written.to_ascii_lowercase();
            if let Some(action) = RelabelAction::ALL.into_iter().find(|a| a.name() == lower) {
                return Ok(action);
            }
            let names: Vec<&str> = RelabelAction::ALL.iter().map(|a| a.name()).collect();
            let hint = match super::keys::did_you_mean(&lower, &names) {
                Some(name) => format!("did you mean `{name}`?"),
                None => format!("expected one of {}", names.join(", ")),
            };
            Err(format!("unknown relabel action `{written}`; {hint}"))
        })
    }
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
    /// Relabeling applied to every alert before it is sent.
    #[serde(default)]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// External Alertmanagers to send alerts to. Default none.
    #[serde(default)]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// `http` or `https`. Default `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Prefix of the Alertmanager API path. Default empty.
    #[serde(default)]
    pub path_prefix: String,
    /// Timeout of one send. Default 10s (filled in by the loader).
    pub timeout: Option<PromDuration>,
    /// Only `v2` is supported (Prometheus's default). Default `v2` (filled in
    /// by the loader).
    pub api_version: Option<String>,
    /// As in a scrape config.
    pub basic_auth: Option<BasicAuth>,
    /// As in a scrape config.
    pub authorization: Option<Authorization>,
    /// As in a scrape config.
    pub tls_config: Option<TlsConfig>,
    /// Alertmanager addresses (`host:port`).
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// Alertmanager addresses from files.
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Relabeling of the discovered Alertmanagers.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
}

impl AlertmanagerConfig {
    /// The effective send timeout (default 10s, as Prometheus).
    pub fn send_timeout(&self) -> Duration {
        match self.timeout {
            Some(d) if !d.0.is_zero() => d.0,
            _ => super::validate::DEFAULT_ALERTMANAGER_TIMEOUT,
        }
    }
}

/// bellwether's own: the embedded time-series store.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Samples older than this are deleted. Default 15d; must be greater than 0.
    pub retention: PromDuration,
    /// Optional cap on the bytes on disk (e.g. `10GB`); oldest data goes first.
    /// Default none.
    pub retention_size: Option<ByteSize>,
    /// Cap on active series across all sources (0 = unlimited). Default 1000000.
    pub max_series: u64,
    /// How often the write-ahead log is fsynced; a crash loses at most this
    /// much. Default 1s; must be greater than 0.
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
    /// Address the HTTP API listens on, `host:port` (`:port` for all
    /// interfaces). Default 127.0.0.1:9471. `--listen` overrides it.
    pub listen_address: String,
    /// Largest request body accepted (remote_write, reload). Default 32MB.
    pub max_request_body: ByteSize,
    /// Bearer token required on write endpoints (`/api/v1/write`, `/-/reload`).
    /// Default none. Excludes `write_token_file`.
    pub write_token: Option<Secret>,
    /// File holding the write token (alternative to `write_token`); must be
    /// readable when the config loads.
    pub write_token_file: Option<String>,
    /// The URL users reach bellwether at (Prometheus's `--web.external-url`),
    /// for `$externalURL` in templates and alerts' generator URLs. Default
    /// `http://<listen address>`.
    pub external_url: Option<String>,
    /// A second address, `host:port`, that serves only the OTLP/HTTP
    /// receiver (`POST /v1/metrics`, `/v1/traces`), e.g. `0.0.0.0:4318`,
    /// OTLP's default port. Default none: OTLP is served on the main port
    /// only. Read at start.
    pub otlp_listen_address: Option<String>,
}

/// bellwether's own: the rule engine (Prometheus's `--rules.*` flags).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// How often a firing alert is sent again. Default 1m.
    pub resend_delay: PromDuration,
    /// Alert state saved before a restart is restored only if the daemon
    /// was down for less than this. Default 1h.
    pub outage_tolerance: PromDuration,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            resend_delay: PromDuration::from_secs(60),
            outage_tolerance: PromDuration::from_secs(3600),
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: "127.0.0.1:9471".to_string(),
            max_request_body: ByteSize(32 * 1024 * 1024),
            write_token: None,
            write_token_file: None,
            external_url: None,
            otlp_listen_address: None,
        }
    }
}

/// bellwether's own: collectors that run inside the daemon.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// Linux host metrics with node_exporter 1.5's names (docs/collectors.md).
    pub host: HostConfig,
    /// The pods of this node from the Kubernetes API (docs/kubernetes.md).
    pub kubernetes: crate::collect::kubernetes::config::KubernetesConfig,
}

/// The host collector (src/collect/host): node_exporter's collectors, read
/// from /proc and /sys, stored like a scrape of one target.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Collect host metrics. Default false (the embedded default config sets true).
    pub enabled: bool,
    /// How often. Default `global.scrape_interval`.
    pub interval: Option<PromDuration>,
    /// The `job` label of the stored series. Default `node`; must not be the
    /// `job_name` of a scrape job.
    pub job_name: String,
    /// The `instance` label of the stored series. Default the host name.
    pub instance: Option<String>,
    /// Also serve the host metrics on bellwether's own `/metrics` (collected
    /// afresh per request), for a Prometheus that scraped node_exporter. Default false.
    pub expose_on_metrics: bool,
    /// Collectors to turn off (node_exporter's `--no-collector.<name>`):
    /// any of cpu, diskstats, filesystem, loadavg, meminfo, netdev, pressure,
    /// stat, time, uname, vmstat. Default none.
    pub disable: Vec<String>,
    /// Export `node_cpu_guest_seconds_total` (`--collector.cpu.guest`). Default true.
    pub cpu_guest: bool,
    /// Mount points to skip (`--collector.filesystem.mount-points-exclude`),
    /// an unanchored regular expression. Default node_exporter 1.5's.
    pub filesystem_mount_points_exclude: String,
    /// File system types to skip (`--collector.filesystem.fs-types-exclude`).
    /// Default node_exporter 1.5's.
    pub filesystem_fs_types_exclude: String,
    /// Block devices to skip (`--collector.diskstats.device-exclude`).
    /// Default node_exporter 1.5's (partitions, ram, loop, fd).
    pub diskstats_device_exclude: String,
    /// Network devices to skip (`--collector.netdev.device-exclude`); empty
    /// skips none. Default empty (node_exporter 1.5's default).
    pub netdev_device_exclude: String,
    /// /proc/vmstat fields to export (`--collector.vmstat.fields`). Default
    /// node_exporter 1.5's.
    pub vmstat_fields: String,
    /// Where procfs is mounted (`--path.procfs`). Default /proc.
    pub procfs: String,
    /// Where sysfs is mounted (`--path.sysfs`). Default /sys.
    pub sysfs: String,
    /// Where the host's root file system is mounted (`--path.rootfs`), for a
    /// containerised bellwether. Default /.
    pub rootfs: String,
    /// The udev database (`--path.udev.data`). Default /run/udev/data.
    pub udev_data: String,
}

/// node_exporter 1.5's default exclusions and field selection.
pub const HOST_DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const HOST_DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
pub const HOST_DEFAULT_DISKSTATS_DEVICE_EXCLUDE: &str =
    "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";
pub const HOST_DEFAULT_VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: false,
            interval: None,
            job_name: "node".to_string(),
            instance: None,
            expose_on_metrics: false,
            disable: Vec::new(),
            cpu_guest: true,
            filesystem_mount_points_exclude: HOST_DEFAULT_MOUNT_POINTS_EXCLUDE.to_string(),
            filesystem_fs_types_exclude: HOST_DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            diskstats_device_exclude: HOST_DEFAULT_DISKSTATS_DEVICE_EXCLUDE.to_string(),
            netdev_device_exclude: String::new(),
            vmstat_fields: HOST_DEFAULT_VMSTAT_FIELDS.to_string(),
            procfs: "/proc".to_string(),
            sysfs: "/sys".to_string(),
            rootfs: "/".to_string(),
            udev_data: "/run/udev/data".to_string(),
        }
    }
}
