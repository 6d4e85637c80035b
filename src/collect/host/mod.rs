//! Linux host metrics with node_exporter 1.5's names, HELP strings, types
//! and labels, read straight from /proc and /sys (docs/collectors.md).
//!
//! Files, one role each:
//! * `mod.rs` (this file): [`HostCollector`] (the settings, running the
//!   enabled collectors, `node_scrape_collector_*`), its place in the scrape
//!   manager ([`host_job`], [`LocalTarget`]) and on `/metrics` ([`Exposer`]);
//! * [`collectors`]: one method per node_exporter collector;
//! * [`parse`]: the file parsers (pure, fuzzed);
//! * [`exposition`]: the text format writer;
//! * [`zone`]: the local time zone's abbreviation and offset.
//!
//! The collector does not write to the store itself: the scrape manager
//! runs it as the one target of a job (`collectors.host.job_name`), so its
//! samples take the scrape loop's append path — series cache, staleness
//! markers for series that disappear (an unmounted file system), `up` and the
//! other report series, `/api/v1/targets` and metadata.

pub mod collectors;
pub mod exposition;
pub mod parse;
pub mod zone;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use regex::Regex;

use self::exposition::{Exposition, Kind};
use self::parse::CpuTimes;
use crate::collect::scrape::scrape_loop::LocalTarget;
use crate::config::{Config, HostConfig, ScrapeConfig};

/// The collectors, by node_exporter's names, in the order they run.
pub const COLLECTOR_NAMES: [&str; 11] = [
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "time",
    "uname",
    "vmstat",
];

/// Why a collector produced nothing (or not everything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectError {
    /// A file is missing (reported as a failure unless the collector turns
    /// it into [`CollectError::NoData`]).
    NotFound(String),
    /// The kernel does not provide this data (e.g. no PSI): success 0, but
    /// not counted as an error nor logged above debug.
    NoData(String),
    /// Unreadable or malformed input: success 0, counted and logged.
    Failed(String),
}

impl CollectError {
    fn message(&self) -> &str {
        match self {
            CollectError::NotFound(m) | CollectError::NoData(m) | CollectError::Failed(m) => m,
        }
    }
}

/// The validated `collectors.host` settings.
pub struct HostSettings {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
    /// Names from [`COLLECTOR_NAMES`] that run.
    pub enabled: Vec<&'static str>,
    pub cpu_guest: bool,
    pub mount_points_exclude: Regex,
    pub fs_types_exclude: Regex,
    pub diskstats_device_exclude: Regex,
    pub netdev_device_exclude: Option<Regex>,
    pub vmstat_fields: Regex,
}

impl HostSettings {
    /// From the config section (validated by the config loader; a bad
    /// regex here is still an error, not a panic).
    pub fn from_config(config: &HostConfig) -> Result<HostSettings, String> {
        let compile = |key: &str, pattern: &str| {
            Regex::new(pattern).map_err(|e| format!("collectors.host.{key}: {e}"))
        };
        Ok(HostSettings {
            procfs: PathBuf::from(&config.procfs),
            sysfs: PathBuf::from(&config.sysfs),
            rootfs: PathBuf::from(&config.rootfs),
            udev_data: PathBuf::from(&config.udev_data),
            enabled: COLLECTOR_NAMES
                .into_iter()
                .filter(|name| !config.disable.iter().any(|d| d == name))
                .collect(),
            cpu_guest: config.cpu_guest,
            mount_points_exclude: compile(
                "filesystem_mount_points_exclude",
                &config.filesystem_mount_points_exclude,
            )?,
            fs_types_exclude: compile(
                "filesystem_fs_types_exclude",
                &config.filesystem_fs_types_exclude,
            )?,
            diskstats_device_exclude: compile(
                "diskstats_device_exclude",
                &config.diskstats_device_exclude,
            )?,
            netdev_device_exclude: if config.netdev_device_exclude.is_empty() {
                None
            } else {
                Some(compile(
                    "netdev_device_exclude",
                    &config.netdev_device_exclude,
                )?)
            },
            vmstat_fields: compile("vmstat_fields", &config.vmstat_fields)?,
        })
    }
}

/// `bellwether_collector_errors_total{collector}`, registered once.
#[derive(Clone, Default)]
pub struct HostMetrics {
    pub errors: Family<Vec<(String, String)>, Counter>,
}

impl HostMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_collector_errors",
            "Collector failures, by collector: host collector runs that failed (node_scrape_collector_success 0 for a reason other than absent kernel support); for kubernetes, failed API requests and bad watch events",
            self.errors.clone(),
        );
    }
}

/// Runs the enabled collectors. Shared by the scrape loop and `/metrics`.
pub struct HostCollector {
    pub settings: HostSettings,
    /// Per-CPU high-water marks (see `collectors::cpu`).
    cpu_last: Mutex<Vec<(u32, CpuTimes)>>,
    /// Mount points whose statfs(2) has not returned yet.
    statfs_in_flight: Mutex<Vec<String>>,
    /// The last error message per collector, to log each change once.
    last_errors: Mutex<Vec<(&'static str, String)>>,
    metrics: HostMetrics,
}

impl HostCollector {
    pub fn new(settings: HostSettings, metrics: HostMetrics) -> HostCollector {
        HostCollector {
            settings,
            cpu_last: Mutex::new(Vec::new()),
            statfs_in_flight: Mutex::new(Vec::new()),
            last_errors: Mutex::new(Vec::new()),
            metrics,
        }
    }

    /// One collection of every enabled collector, with node_exporter's
    /// `node_scrape_collector_duration_seconds` and `..._success`.
    pub fn collect(&self) -> Exposition {
        let mut out = Exposition::new();
        for &name in &self.settings.enabled {
            let started = Instant::now();
            let result = match name {
                "cpu" => self.cpu(&mut out),
                "diskstats" => self.diskstats(&mut out),
                "filesystem" => self.filesystem(&mut out),
                "loadavg" => self.loadavg(&mut out),
                "meminfo" => self.meminfo(&mut out),
                "netdev" => self.netdev(&mut out),
                "pressure" => self.pressure(&mut out),
                "stat" => self.stat(&mut out),
                "time" => self.time(&mut out),
                "uname" => self.uname(&mut out),
                "vmstat" => self.vmstat(&mut out),
                _ => Ok(()),
            };
            let elapsed = started.elapsed().as_secs_f64();
            self.note_result(name, &result);
            let collector = || vec![("collector", name.to_string())];
            out.add(
                "node_scrape_collector_duration_seconds",
                "node_exporter: Duration of a collector scrape.",
                Kind::Gauge,
                collector(),
                elapsed,
            );
            out.add(
                "node_scrape_collector_success",
                "node_exporter: Whether a collector succeeded.",
                Kind::Gauge,
                collector(),
                if result.is_ok() { 1.0 } else { 0.0 },
            );
        }
        out
    }

    /// One collection as exposition text (format 0.0.4).
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(64 * 1024);
        self.collect().render(&mut text);
        text
    }

    /// Counts a failure and logs a collector's error when it changes (and
    /// its recovery), so a broken file is one log line, not one per interval.
    fn note_result(&self, name: &'static str, result: &Result<(), CollectError>) {
        let mut last = self.last_errors.lock();
        let previous = last.iter().position(|(n, _)| *n == name);
        match result {
            Ok(()) => {
                if let Some(i) = previous {
                    last.remove(i);
                    tracing::info!(collector = name, "host collector recovered");
                }
            }
            Err(e) => {
                if !matches!(e, CollectError::NoData(_)) {
                    self.metrics
                        .errors
                        .get_or_create(&vec![("collector".to_string(), name.to_string())])
                        .inc();
                }
                let message = e.message();
                let changed = previous.is_none_or(|i| last[i].1 != message);
                if changed {
                    match e {
                        CollectError::NoData(_) => {
                            tracing::debug!(collector = name, reason = %message, "host collector has no data")
                        }
                        _ => {
                            tracing::warn!(collector = name, error = %message, "host collector failed (logged again only when the error changes)")
                        }
                    }
                    match previous {
                        Some(i) => last[i].1 = message.to_string(),
                        None => last.push((name, message.to_string())),
                    }
                }
            }
        }
    }
}

impl LocalTarget for HostCollector {
    fn scrape(&self) -> Result<Vec<u8>, String> {
        Ok(self.render().into_bytes())
    }

    fn url(&self) -> String {
        format!("host://{}", self.settings.procfs.display())
    }
}

/// The host name for the default `instance` label: uname's nodename, as
/// node_exporter's `node_uname_info{nodename}` shows it.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The scrape job that runs the host collector, when `collectors.host` is
/// enabled: a job named `job_name` with one target labelled
/// `instance=<instance or host name>`, on `interval`. The scrape manager
/// runs it through [`LocalTarget`] instead of HTTP.
pub fn host_job(
    config: &Config,
    metrics: &HostMetrics,
) -> Option<Result<(ScrapeConfig, Arc<HostCollector>), String>> {
    let host = &config.collectors.host;
    if !host.enabled {
        return None;
    }
    Some(host_job_inner(config, host, metrics))
}

fn host_job_inner(
    config: &Config,
    host: &HostConfig,
    metrics: &HostMetrics,
) -> Result<(ScrapeConfig, Arc<HostCollector>), String> {
    let settings = HostSettings::from_config(host)?;
    let interval = host
        .interval
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(config.global.scrape_interval.0);
    let timeout = config.global.scrape_timeout.0.min(interval);
    let instance = host.instance.clone().unwrap_or_else(host_name);
    let job = serde_json::json!({
        "job_name": host.job_name,
        "scrape_interval": crate::config::values::format_duration(interval),
        "scrape_timeout": crate::config::values::format_duration(timeout),
        // The address is never contacted; `instance` is set explicitly so
        // that no port is added to it.
        "static_configs": [{"targets": ["localhost"], "labels": {"instance": instance}}],
    });
    let job: ScrapeConfig = serde_json::from_value(job)
        .map_err(|e| format!("building the host collector's job: {e}"))?;
    Ok((job, Arc::new(HostCollector::new(settings, metrics.clone()))))
}

/// What `/metrics` appends when `collectors.host.expose_on_metrics` is on:
/// the collector of the current config, set by the scrape manager.
#[derive(Clone, Default)]
pub struct Exposer {
    current: Arc<Mutex<Option<Arc<HostCollector>>>>,
}

impl Exposer {
    pub fn set(&self, collector: Option<Arc<HostCollector>>) {
        *self.current.lock() = collector;
    }

    /// The collector to render, if host metrics go on `/metrics`.
    pub fn get(&self) -> Option<Arc<HostCollector>> {
        self.current.lock().clone()
    }
}

#[cfg(test)]
mod tests;
