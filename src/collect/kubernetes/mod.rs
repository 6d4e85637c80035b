//! Kubernetes: the pods of this node, for a bellwether running in a
//! DaemonSet pod (docs/kubernetes.md).
//!
//! Files, one role each:
//! * `mod.rs` (this file): [`Kubernetes`], the running collector (its
//!   watcher task and the pod snapshot channel), the pod-metrics job
//!   ([`Kubernetes::metrics_job`], served through [`LocalTarget`]) and the
//!   `kubernetes_sd_configs` discovery task ([`run_discovery`]);
//! * [`config`]: the `collectors.kubernetes` section and `kubernetes_sd_configs`;
//! * [`api`]: the v1 Pod, PodList and watch-event types (serde, fuzzed);
//! * [`watch`]: list → watch → re-list against the API server;
//! * [`discovery`]: pods → target groups with `__meta_kubernetes_pod_*` labels;
//! * [`metrics`]: the pod metrics and the watch-health self metrics.
//!
//! The API is spoken with reqwest (already the scrape client) and serde,
//! not kube-rs/k8s-openapi: the collector needs one list and one watch of
//! one resource, and those crates would add minutes to a 2-core build and
//! megabytes to the binary for types bellwether does not read.
//!
//! Nothing here writes to the store: the scrape manager runs the pod
//! metrics as a job through the scrape loop (staleness, `up`, targets API),
//! and relabels and scrapes the discovered pods like file_sd targets.

pub mod api;
pub mod config;
pub mod discovery;
pub mod metrics;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::task::JoinHandle;

use self::api::Pod;
use self::config::{KubernetesSdConfig, Settings};
use self::metrics::KubernetesMetrics;
use self::watch::{SyncStatus, Watcher};
use crate::collect::scrape::scrape_loop::LocalTarget;
use crate::collect::scrape::target::TargetGroup;
use crate::config::{Config, ScrapeConfig};

/// The pods of this node by `<namespace>/<name>`, as last seen.
pub type PodSnapshot = BTreeMap<String, Arc<Pod>>;

/// The running collector: one watcher task, shared by the pod metrics and
/// every `kubernetes_sd_configs`. Dropping it stops the watcher.
pub struct Kubernetes {
    pub settings: Settings,
    pods: tokio::sync::watch::Receiver<Arc<PodSnapshot>>,
    status: Arc<Mutex<SyncStatus>>,
    task: JoinHandle<()>,
}

impl Drop for Kubernetes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubernetes {
    /// Resolves `collectors.kubernetes` against the process environment:
    /// `Ok(None)` when it is off.
    pub fn settings(config: &Config) -> Result<Option<Settings>, String> {
        config
            .collectors
            .kubernetes
            .resolve(&|name| std::env::var(name).ok(), &|path| {
                std::path::Path::new(path).exists()
            })
    }

    /// Starts the watcher. Must be called inside the tokio runtime.
    pub fn start(
        settings: Settings,
        metrics: KubernetesMetrics,
        errors: Family<Vec<(String, String)>, Counter>,
    ) -> Kubernetes {
        let (publish, pods) = tokio::sync::watch::channel(Arc::new(PodSnapshot::new()));
        let status = Arc::new(Mutex::new(SyncStatus::default()));
        tracing::info!(api_server = %settings.api_server, node = %settings.node_name, "watching the pods of this node");
        let watcher = Watcher {
            settings: settings.clone(),
            metrics,
            errors,
            publish,
            status: status.clone(),
        };
        let task = tokio::spawn(watcher.run());
        Kubernetes {
            settings,
            pods,
            status,
            task,
        }
    }

    /// The job that stores the pod metrics: `collectors.kubernetes.job_name`
    /// with one target, `instance` = the node name, on `interval`.
    pub fn metrics_job(
        &self,
        config: &Config,
    ) -> Result<(ScrapeConfig, Arc<dyn LocalTarget>), String> {
        let section = &config.collectors.kubernetes;
        let interval = section
            .interval
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(config.global.scrape_interval.0);
        let timeout = config.global.scrape_timeout.0.min(interval);
        let job = serde_json::json!({
            "job_name": section.job_name,
            "scrape_interval": crate::config::values::format_duration(interval),
            "scrape_timeout": crate::config::values::format_duration(timeout),
            "static_configs": [{"targets": ["localhost"], "labels": {"instance": self.settings.node_name}}],
        });
        let job: ScrapeConfig = serde_json::from_value(job)
            .map_err(|e| format!("building the Kubernetes collector's job: {e}"))?;
        let target = PodMetricsTarget {
            url: format!(
                "{}/api/v1/pods?fieldSelector=spec.nodeName={}",
                self.settings.api_server, self.settings.node_name
            ),
            pods: self.pods.clone(),
            status: self.status.clone(),
        };
        Ok((job, Arc::new(target)))
    }

    /// The built-in job scraping the pods annotated `prometheus.io/scrape:
    /// "true"` (`collectors.kubernetes.pods_job`), or `None` when it is off
    /// or a scrape job of that name replaces it.
    pub fn pods_job(&self, config: &Config) -> Option<Result<ScrapeConfig, String>> {
        let name = &config.collectors.kubernetes.pods_job;
        if name.is_empty() || config.scrape_configs.iter().any(|j| &j.job_name == name) {
            return None;
        }
        Some(annotated_pods_job(
            name,
            config.global.scrape_interval.0,
            config.global.scrape_timeout.0,
        ))
    }

    /// The current pods and a receiver that sees every later change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<PodSnapshot>> {
        self.pods.clone()
    }
}

/// A `kubernetes_sd_configs` job with the relabeling of Prometheus's example
/// configuration for the `prometheus.io/*` pod annotations: keep pods with
/// `scrape: "true"`, take `scheme`, `path` and `port` from the annotations,
/// copy the pod's labels, and add `namespace` and `pod`.
pub fn annotated_pods_job(
    name: &str,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<ScrapeConfig, String> {
    let job = serde_json::json!({
        "job_name": name,
        "scrape_interval": crate::config::values::format_duration(interval),
        "scrape_timeout": crate::config::values::format_duration(timeout.min(interval)),
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
             "action": "keep", "regex": "true"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scheme"],
             "regex": "(https?)", "target_label": "__scheme__"},
            {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
             "regex": "(.+)", "target_label": "__metrics_path__"},
            {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
             "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$1:$2",
             "target_label": "__address__"},
            {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    });
    serde_json::from_value(job).map_err(|e| format!("building the annotated-pods job: {e}"))
}

/// The pod metrics as a target the scrape loop runs in-process.
struct PodMetricsTarget {
    url: String,
    pods: tokio::sync::watch::Receiver<Arc<PodSnapshot>>,
    status: Arc<Mutex<SyncStatus>>,
}

impl LocalTarget for PodMetricsTarget {
    /// Fails (so `up` is 0) until the first list has succeeded: zero pods
    /// would otherwise look like an empty node. After that the last known
    /// state is served even while the watch reconnects
    /// (`bellwether_kubernetes_last_sync_timestamp_seconds` says how old).
    fn scrape(&self) -> Result<Vec<u8>, String> {
        {
            let status = self.status.lock();
            if !status.synced {
                return Err(match &status.last_error {
                    Some(e) => format!("no pod list from the Kubernetes API yet: {e}"),
                    None => "no pod list from the Kubernetes API yet".to_string(),
                });
            }
        }
        let pods = self.pods.borrow().clone();
        Ok(metrics::render(&pods).into_bytes())
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

/// Feeds one `kubernetes_sd_configs` entry: computes its target groups on
/// every pod change and calls `on_change` when they differ from the last
/// ones (a restart count going up does not touch the scrape loops). Ends
/// with `shutdown` or when the watcher is gone.
pub async fn run_discovery(
    mut pods: tokio::sync::watch::Receiver<Arc<PodSnapshot>>,
    sd: KubernetesSdConfig,
    mut last: Vec<TargetGroup>,
    on_change: Arc<dyn Fn(Vec<TargetGroup>) + Send + Sync>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = pods.changed() => {
                if changed.is_err() {
                    return;
                }
                let snapshot = pods.borrow_and_update().clone();
                let groups = discovery::target_groups(&snapshot, &sd);
                if groups != last {
                    last.clone_from(&groups);
                    on_change(groups);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_metrics_fail_until_the_first_list() {
        let (_publish, pods) = tokio::sync::watch::channel(Arc::new(PodSnapshot::new()));
        let status = Arc::new(Mutex::new(SyncStatus {
            synced: false,
            last_error: Some("listing pods: HTTP 403 Forbidden".to_string()),
        }));
        let target = PodMetricsTarget {
            url: String::new(),
            pods,
            status: status.clone(),
        };
        let error = target.scrape().unwrap_err();
        assert!(error.contains("403"), "{error}");
        status.lock().synced = true;
        assert_eq!(target.scrape(), Ok(Vec::new()));
    }

    #[test]
    fn the_built_in_job_follows_the_prometheus_io_annotations() {
        use crate::collect::scrape::target::{discovered_labels, populate, JobSettings};
        let pods = crate::collect::kubernetes::discovery::tests::snapshot(
            r#"{"items":[
              {"metadata":{"name":"web-1","namespace":"shop","uid":"u1","labels":{"app":"web"},
                "annotations":{"prometheus.io/scrape":"true","prometheus.io/port":"9102","prometheus.io/path":"/stats","prometheus.io/scheme":"https"}},
               "spec":{"nodeName":"n","containers":[{"name":"web","ports":[{"containerPort":8080},{"containerPort":9102}]}]},
               "status":{"phase":"Running","podIP":"10.1.0.7"}},
              {"metadata":{"name":"db-1","namespace":"shop","uid":"u2"},
               "spec":{"nodeName":"n","containers":[{"name":"db","ports":[{"containerPort":5432}]}]},
               "status":{"phase":"Running","podIP":"10.1.0.8"}}]}"#,
        );
        let job = annotated_pods_job(
            "kubernetes-pods",
            std::time::Duration::from_secs(15),
            std::time::Duration::from_secs(10),
        )
        .expect("job");
        let settings = JobSettings::new(&crate::config::GlobalConfig::default(), &job);
        let sd = &job.kubernetes_sd_configs[0];
        let mut urls = Vec::new();
        for group in discovery::target_groups(&pods, sd) {
            for address in &group.targets {
                let discovered = discovered_labels(&group, address);
                if let Some(target) = populate(&discovered, &settings).expect("valid") {
                    assert_eq!(target.labels.get("namespace"), Some("shop"));
                    assert_eq!(target.labels.get("pod"), Some("web-1"));
                    assert_eq!(target.labels.get("app"), Some("web"));
                    assert_eq!(target.labels.get("job"), Some("kubernetes-pods"));
                    urls.push(target.url);
                }
            }
        }
        // Both container ports are rewritten to the annotated port; the
        // unannotated pod is not a target.
        assert_eq!(
            urls,
            ["https://10.1.0.7:9102/stats", "https://10.1.0.7:9102/stats"]
        );
    }
}
