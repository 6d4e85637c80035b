//! Targets: from discovered target groups (static_configs, file_sd) to the
//! label set and URL of one scrape target, as Prometheus 2.42 builds them
//! (`scrape/target.go`: `PopulateLabels`, `Target.URL`, `Target.offset`).
//!
//! This file owns the effective per-job settings ([`JobSettings`], global
//! defaults applied), target label building and relabeling into a URL, and the
//! start-offset spread. It does no I/O.
//!
//! Order of label building, exactly as Prometheus:
//! 1. the discovered labels (`__address__` and the group's `labels`, the
//!    target's own `__address__` winning; file_sd adds `__meta_filepath`);
//! 2. `job`, `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`,
//!    `__scheme__` when not already set, then `__param_<name>` (first value);
//! 3. `relabel_configs` (a drop drops the target);
//! 4. a missing port is filled from the scheme (80/443), the address checked,
//!    interval and timeout re-read from the (possibly relabeled) labels;
//! 5. `__meta_*` labels deleted, `instance` defaulted to `__address__`;
//! 6. the public target labels are those not starting with `__`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::values::{format_duration, parse_duration};
use crate::config::{GlobalConfig, RelabelConfig, ScrapeConfig};
use crate::model::Labels;

use super::relabel;

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";

/// Per-scrape limits; 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
    pub target_limit: u64,
}

/// A job's settings with the `global` defaults applied.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub job_name: String,
    pub interval: Duration,
    /// Never more than `interval`.
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub limits: Limits,
}

impl JobSettings {
    /// Resolves the job against `global` as Prometheus does: the interval
    /// defaults to the global one; an unset timeout is the global timeout, but
    /// at most the interval. (A timeout above the interval is a config error in
    /// Prometheus; should one get here it is capped at the interval.)
    pub fn new(global: &GlobalConfig, job: &ScrapeConfig) -> JobSettings {
        let interval = job
            .scrape_interval
            .map(|d| d.as_duration())
            .unwrap_or(global.scrape_interval.as_duration());
        let timeout = match job.scrape_timeout {
            Some(t) => t.as_duration(),
            None => global.scrape_timeout.as_duration(),
        }
        .min(interval);
        JobSettings {
            job_name: job.job_name.clone(),
            interval,
            timeout,
            metrics_path: job.metrics_path.clone(),
            scheme: job.scheme.clone(),
            params: job.params.clone(),
            honor_labels: job.honor_labels,
            honor_timestamps: job.honor_timestamps,
            track_timestamps_staleness: job.track_timestamps_staleness,
            relabel_configs: job.relabel_configs.clone(),
            metric_relabel_configs: job.metric_relabel_configs.clone(),
            limits: Limits {
                sample_limit: job.sample_limit.unwrap_or(global.sample_limit),
                label_limit: job.label_limit.unwrap_or(global.label_limit),
                label_name_length_limit: job
                    .label_name_length_limit
                    .unwrap_or(global.label_name_length_limit),
                label_value_length_limit: job
                    .label_value_length_limit
                    .unwrap_or(global.label_value_length_limit),
                body_size_limit: job
                    .body_size_limit
                    .map(|b| b.0)
                    .unwrap_or(global.body_size_limit.0),
                target_limit: job.target_limit.unwrap_or(global.target_limit),
            },
        }
    }
}

/// A group of targets sharing labels, as discovery produces them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Where the group came from (`static/0`, `path/to/file.yml:2`), for logs.
    pub source: String,
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// One scrape target after relabeling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The labels before relabeling (discovered ones plus the job's defaults),
    /// as `/api/v1/targets` shows them.
    pub discovered_labels: Labels,
    /// All labels kept after relabeling (internal `__` labels included, `__meta_*` removed).
    pub internal_labels: Labels,
    /// The labels attached to every scraped series (no `__` prefix).
    pub labels: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Target {
    /// Prometheus's target hash (labels and URL), for identity and the start offset.
    pub fn hash(&self) -> u64 {
        let mut h = Fnv64::new();
        for l in &self.internal_labels {
            h.write(l.name.as_bytes());
            h.write(&[0xff]);
            h.write(l.value.as_bytes());
            h.write(&[0xff]);
        }
        h.write(self.url.as_bytes());
        h.finish()
    }

    /// How long to wait before the first scrape so that the targets of a job
    /// spread over the interval, pinned to wall-clock time as Prometheus does
    /// (`(hash ^ seed) mod interval`, relative to the next interval boundary).
    pub fn offset(&self, now_nanos: u128, jitter_seed: u64) -> Duration {
        let interval = self.interval.as_nanos().max(1);
        let base = interval - now_nanos % interval;
        let offset = u128::from(self.hash() ^ jitter_seed) % interval;
        let mut next = base + offset;
        if next > interval {
            next -= interval;
        }
        Duration::from_nanos(next as u64)
    }

    pub fn job(&self) -> &str {
        self.labels.get("job").unwrap_or("")
    }

    pub fn instance(&self) -> &str {
        self.labels.get("instance").unwrap_or("")
    }
}

/// Why a discovered target could not become a scrape target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target has no __address__ label after relabeling (check relabel_configs)")]
    NoAddress,
    #[error(
        "invalid scheme {0:?} for an address without a port: use http or https, or give a port"
    )]
    InvalidScheme(String),
    #[error("{0:?} is not a valid hostname: __address__ must be host:port without a path")]
    InvalidAddress(String),
    #[error("error parsing scrape interval {0:?}: {1}")]
    BadInterval(String, String),
    #[error("error parsing scrape timeout {0:?}: {1}")]
    BadTimeout(String, String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({0:?} > {1:?})")]
    TimeoutAboveInterval(String, String),
    #[error("target URL {0:?} is invalid: {1}")]
    InvalidUrl(String, String),
}

/// The labels one target of `group` is discovered with.
pub fn discovered_labels(group: &TargetGroup, address: &str) -> Labels {
    let mut pairs: Vec<(&str, &str)> = group
        .labels
        .iter()
        .filter(|(name, _)| name.as_str() != ADDRESS_LABEL)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.push((ADDRESS_LABEL, address));
    Labels::new(pairs)
}

/// The discovered labels with the job's defaults (`job`, scrape interval and
/// timeout, metrics path, scheme, first `params`) where they are missing or
/// empty: what relabeling starts from, and what Prometheus shows as a
/// target's `discoveredLabels`.
pub fn with_defaults(discovered: &Labels, job: &JobSettings) -> Labels {
    let mut labels = discovered.clone();
    let interval = format_duration(job.interval);
    let timeout = format_duration(job.timeout);
    for (name, value) in [
        ("job", job.job_name.as_str()),
        (SCRAPE_INTERVAL_LABEL, &interval),
        (SCRAPE_TIMEOUT_LABEL, &timeout),
        (METRICS_PATH_LABEL, &job.metrics_path),
        (SCHEME_LABEL, &job.scheme),
    ] {
        if labels.get(name).unwrap_or("").is_empty() {
            labels.set(name, value);
        }
    }
    for (name, values) in &job.params {
        if let Some(first) = values.first() {
            labels.set(&format!("{PARAM_LABEL_PREFIX}{name}"), first);
        }
    }
    labels
}

/// Builds the target for one set of discovered labels. `Ok(None)` means
/// relabeling dropped it.
pub fn populate(discovered: &Labels, job: &JobSettings) -> Result<Option<Target>, TargetError> {
    let labels = with_defaults(discovered, job);
    let discovered_with_defaults = labels.clone();
    let Some(mut labels) = relabel::process(&labels, &job.relabel_configs) else {
        return Ok(None);
    };
    let discovered_labels = discovered_with_defaults;
    let mut address = labels.get(ADDRESS_LABEL).unwrap_or("").to_string();
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if needs_port(&address) {
        match labels.get(SCHEME_LABEL).unwrap_or("") {
            "http" | "" => address.push_str(":80"),
            "https" => address.push_str(":443"),
            _ => return Err(TargetError::InvalidScheme(job.scheme.clone())),
        }
        labels.set(ADDRESS_LABEL, &address);
    }
    if address.contains('/') {
        return Err(TargetError::InvalidAddress(address));
    }
    let interval_text = labels.get(SCRAPE_INTERVAL_LABEL).unwrap_or("").to_string();
    let interval = parse_duration(&interval_text)
        .map_err(|e| TargetError::BadInterval(interval_text.clone(), e))?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = labels.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("").to_string();
    let timeout = parse_duration(&timeout_text)
        .map_err(|e| TargetError::BadTimeout(timeout_text.clone(), e))?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval(
            timeout_text,
            interval_text,
        ));
    }
    let meta: Vec<String> = labels
        .iter()
        .filter(|l| l.name.starts_with(META_LABEL_PREFIX))
        .map(|l| l.name.clone())
        .collect();
    for name in meta {
        labels.remove(&name);
    }
    if labels.get("instance").unwrap_or("").is_empty() {
        labels.set("instance", &address);
    }
    let url = target_url(&labels, &job.params)?;
    let public = Labels::from_sorted(
        labels
            .iter()
            .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
            .cloned()
            .collect(),
    );
    Ok(Some(Target {
        discovered_labels,
        internal_labels: labels,
        labels: public,
        url,
        interval,
        timeout,
    }))
}

/// Go's `net.SplitHostPort` succeeds on `s`.
fn splits_host_port(s: &str) -> bool {
    let Some(colon) = s.rfind(':') else {
        return false;
    };
    let host = if let Some(rest) = s.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        // `]` must be followed directly by the last colon.
        if end + 2 != colon {
            return false;
        }
        &rest[..end]
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return false;
        }
        host
    };
    !(host.contains('[') || host.contains(']') || s[colon + 1..].contains(']'))
}

/// Prometheus 2.42's `addPort`: no port yet, and adding one makes it valid.
fn needs_port(address: &str) -> bool {
    !splits_host_port(address) && splits_host_port(&format!("{address}:1234"))
}

/// The scrape URL: scheme, address, metrics path and the query parameters of
/// the job, each overridden by a `__param_<name>` label (Go's `url.Values`
/// encoding: keys sorted, query-escaped).
fn target_url(
    labels: &Labels,
    params: &BTreeMap<String, Vec<String>>,
) -> Result<String, TargetError> {
    let mut query: BTreeMap<String, Vec<String>> = params.clone();
    for l in labels {
        if let Some(name) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
            match query.get_mut(name) {
                Some(values) if !values.is_empty() => values[0] = l.value.clone(),
                _ => {
                    query.insert(name.to_string(), vec![l.value.clone()]);
                }
            }
        }
    }
    let mut url = format!(
        "{}://{}{}",
        labels.get(SCHEME_LABEL).unwrap_or(""),
        labels.get(ADDRESS_LABEL).unwrap_or(""),
        labels.get(METRICS_PATH_LABEL).unwrap_or("")
    );
    let mut first = true;
    for (name, values) in &query {
        for value in values {
            url.push(if first { '?' } else { '&' });
            first = false;
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(value));
        }
    }
    // Validated here, kept as built (a parsed URL would drop default ports,
    // which Prometheus shows).
    match reqwest::Url::parse(&url) {
        Ok(_) => Ok(url),
        Err(e) => Err(TargetError::InvalidUrl(url, e.to_string())),
    }
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// FNV-1a, 64 bit: a stable hash for the start offset (the same in every run).
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::RelabelRegex;
    use crate::config::RelabelAction;

    fn job() -> JobSettings {
        JobSettings {
            job_name: "node".into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::new(),
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            relabel_configs: vec![],
            metric_relabel_configs: vec![],
            limits: Limits::default(),
        }
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> TargetGroup {
        TargetGroup {
            source: "test".into(),
            targets: targets.iter().map(|s| s.to_string()).collect(),
            labels: labels
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn static_target_gets_job_instance_and_url() {
        let g = group(&["localhost:9100"], &[("env", "prod")]);
        let t = populate(&discovered_labels(&g, "localhost:9100"), &job())
            .unwrap()
            .unwrap();
        assert_eq!(
            t.labels.to_string(),
            r#"{env="prod", instance="localhost:9100", job="node"}"#
        );
        assert_eq!(t.url, "http://localhost:9100/metrics");
        assert_eq!(t.internal_labels.get(SCRAPE_INTERVAL_LABEL), Some("15s"));
        assert_eq!(t.interval, Duration::from_secs(15));
    }

    #[test]
    fn missing_port_is_filled_from_the_scheme() {
        let mut j = job();
        let t = populate(&discovered_labels(&group(&[], &[]), "example.org"), &j)
            .unwrap()
            .unwrap();
        assert_eq!(t.instance(), "example.org:80");
        j.scheme = "https".into();
        let t = populate(&discovered_labels(&group(&[], &[]), "[::1]"), &j)
            .unwrap()
            .unwrap();
        assert_eq!(t.instance(), "[::1]:443");
        assert_eq!(t.url, "https://[::1]:443/metrics");
        // Unbracketed IPv6 cannot take a port: left alone.
        assert!(!needs_port("::1"));
    }

    #[test]
    fn params_become_labels_and_query() {
        let mut j = job();
        j.params
            .insert("module".into(), vec!["http 2xx".into(), "b".into()]);
        j.params.insert("a".into(), vec!["1".into()]);
        let t = populate(&discovered_labels(&group(&[], &[]), "h:1"), &j)
            .unwrap()
            .unwrap();
        assert_eq!(t.internal_labels.get("__param_module"), Some("http 2xx"));
        assert_eq!(t.url, "http://h:1/metrics?a=1&module=http+2xx&module=b");
    }

    #[test]
    fn relabeling_rewrites_address_and_drops_meta() {
        let mut j = job();
        j.relabel_configs = vec![
            RelabelConfig {
                source_labels: vec!["__address__".into()],
                separator: ";".into(),
                target_label: Some("__param_target".into()),
                regex: RelabelRegex::default(),
                modulus: None,
                replacement: "$1".into(),
                action: RelabelAction::Replace,
            },
            RelabelConfig {
                source_labels: vec![],
                separator: ";".into(),
                target_label: Some("__address__".into()),
                regex: RelabelRegex::default(),
                modulus: None,
                replacement: "blackbox:9115".into(),
                action: RelabelAction::Replace,
            },
        ];
        let g = group(&[], &[("__meta_filepath", "/x.yml")]);
        let t = populate(&discovered_labels(&g, "https://example.org"), &j)
            .unwrap()
            .unwrap();
        assert_eq!(
            t.url,
            "http://blackbox:9115/metrics?target=https%3A%2F%2Fexample.org"
        );
        assert_eq!(t.internal_labels.get("__meta_filepath"), None);
        assert_eq!(t.instance(), "blackbox:9115");
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        let j = job();
        assert_eq!(
            populate(&discovered_labels(&group(&[], &[]), "h:1/path"), &j),
            Err(TargetError::InvalidAddress("h:1/path".into()))
        );
        let g = group(&[], &[("__scrape_timeout__", "1m")]);
        assert!(matches!(
            populate(&discovered_labels(&g, "h:1"), &j),
            Err(TargetError::TimeoutAboveInterval(..))
        ));
        let mut drop = job();
        drop.relabel_configs = vec![RelabelConfig {
            source_labels: vec!["__address__".into()],
            separator: ";".into(),
            target_label: None,
            regex: RelabelRegex::new("h:.*").unwrap(),
            modulus: None,
            replacement: "$1".into(),
            action: RelabelAction::Drop,
        }];
        assert_eq!(
            populate(&discovered_labels(&group(&[], &[]), "h:1"), &drop),
            Ok(None)
        );
    }

    #[test]
    fn timeout_defaults_and_caps() {
        let global = GlobalConfig {
            scrape_timeout: crate::config::values::PromDuration::from_secs(10),
            ..GlobalConfig::default()
        };
        let job: ScrapeConfig = serde_json::from_value(serde_json::json!({
            "job_name": "j", "scrape_interval": "5s"
        }))
        .unwrap();
        let s = JobSettings::new(&global, &job);
        assert_eq!(
            (s.interval, s.timeout),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
    }

    #[test]
    fn offsets_spread_within_the_interval() {
        let g = group(&[], &[]);
        let a = populate(&discovered_labels(&g, "a:1"), &job())
            .unwrap()
            .unwrap();
        let b = populate(&discovered_labels(&g, "b:1"), &job())
            .unwrap()
            .unwrap();
        let now = 1_700_000_000_123_456_789u128;
        for t in [&a, &b] {
            assert!(t.offset(now, 7) <= t.interval);
        }
        assert_ne!(a.offset(now, 7), b.offset(now, 7));
        // Pinned to wall-clock time: a later call lands on the same phase.
        let later = now + 3 * a.interval.as_nanos();
        assert_eq!(a.offset(now, 7), a.offset(later, 7));
    }
}
