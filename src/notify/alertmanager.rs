//! Forwarding alerts to external Alertmanagers (`alerting.alertmanagers`),
//! as Prometheus's notifier does: a bounded queue per Alertmanager set
//! (oldest alerts dropped and counted when full), batches of up to 64 alerts
//! POSTed as JSON to `/api/v2/alerts` of every Alertmanager of the set. A
//! failed send is counted and not retried: firing alerts are re-sent by the
//! rules every resend delay, as in Prometheus.
//!
//! Alertmanagers come from `static_configs`, relabelled by `relabel_configs`
//! (`__address__`, `__scheme__`, `__alerts_path__`). `file_sd_configs` for
//! Alertmanagers is not supported yet: refused with a warning at load.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::Notify;

use crate::collect::scrape::scrape_loop::Auth;
use crate::config::AlertmanagerConfig;
use crate::model::Labels;

use super::NotifyAlert;

/// Prometheus's `--alertmanager.notification-queue-capacity` default.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Prometheus's `maxBatchSize`.
pub const MAX_BATCH: usize = 64;

type AmLabel = Vec<(String, String)>;

fn am_label(url: &str) -> AmLabel {
    vec![("alertmanager".to_string(), url.to_string())]
}

#[derive(Clone, Default)]
pub struct AlertmanagerMetrics {
    pub sent: Family<AmLabel, Counter>,
    pub errors: Family<AmLabel, Counter>,
    pub dropped: Counter,
    pub queue_length: Gauge,
}

impl AlertmanagerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_notifications_sent",
            "Alerts sent to an external Alertmanager, by Alertmanager URL",
            self.sent.clone(),
        );
        registry.register(
            "bellwether_notifications_errors",
            "Alerts whose send to an external Alertmanager failed, by Alertmanager URL",
            self.errors.clone(),
        );
        registry.register(
            "bellwether_notifications_dropped",
            "Alerts dropped because an Alertmanager queue was full",
            self.dropped.clone(),
        );
        registry.register(
            "bellwether_notifications_queue_length",
            "Alerts waiting to be sent to external Alertmanagers",
            self.queue_length.clone(),
        );
    }
}

/// The Alertmanagers of one `alertmanagers` entry, with their queue.
pub struct AlertmanagerSet {
    name: String,
    urls: Vec<String>,
    client: reqwest::Client,
    auth: Auth,
    timeout: Duration,
    queue: Mutex<VecDeque<NotifyAlert>>,
    wake: Notify,
    stopped: std::sync::atomic::AtomicBool,
    metrics: AlertmanagerMetrics,
}

impl AlertmanagerSet {
    /// Builds the set and starts its sender task.
    pub fn start(
        name: String,
        config: &AlertmanagerConfig,
        metrics: AlertmanagerMetrics,
    ) -> Result<Arc<AlertmanagerSet>, String> {
        if !config.file_sd_configs.is_empty() {
            tracing::warn!(
                set = %name,
                "alerting.alertmanagers[].file_sd_configs is not supported yet; only static_configs are used"
            );
        }
        let client =
            crate::collect::scrape::build_http_client(config.tls_config.as_ref(), true, &name)?;
        let set = Arc::new(AlertmanagerSet {
            urls: alertmanager_urls(config),
            name,
            client,
            auth: Auth::from_parts(config.basic_auth.as_ref(), config.authorization.as_ref()),
            timeout: config.send_timeout(),
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            metrics,
        });
        tokio::spawn(set.clone().run());
        Ok(set)
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Queues alerts; when the queue is full the oldest are dropped.
    pub fn enqueue(&self, alerts: &[NotifyAlert]) {
        let mut queue = self.queue.lock();
        for alert in alerts {
            if queue.len() >= QUEUE_CAPACITY {
                queue.pop_front();
                self.metrics.dropped.inc();
            }
            queue.push_back(alert.clone());
        }
        self.metrics.queue_length.set(queue.len() as i64);
        drop(queue);
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>) {
        loop {
            if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            let batch: Vec<NotifyAlert> = {
                let mut queue = self.queue.lock();
                let n = queue.len().min(MAX_BATCH);
                let batch = queue.drain(..n).collect();
                self.metrics.queue_length.set(queue.len() as i64);
                batch
            };
            if batch.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let body = match serde_json::to_vec(
                &batch.iter().map(PostableAlert::from).collect::<Vec<_>>(),
            ) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "encoding alerts for Alertmanager failed");
                    continue;
                }
            };
            // Every Alertmanager of the set gets the batch, concurrently.
            let mut sends = tokio::task::JoinSet::new();
            for url in self.urls.clone() {
                let set = self.clone();
                let body = body.clone();
                let count = batch.len();
                sends.spawn(async move { set.send(&url, body, count).await });
            }
            while sends.join_next().await.is_some() {}
        }
    }

    async fn send(&self, url: &str, body: Vec<u8>, count: usize) {
        let started = Instant::now();
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::USER_AGENT,
                concat!("bellwether/", env!("CARGO_PKG_VERSION")),
            )
            .timeout(self.timeout)
            .body(body);
        let result = match self.auth.apply(request) {
            Ok(request) => request
                .send()
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    if r.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("bad response status {}", r.status()))
                    }
                }),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                self.metrics
                    .sent
                    .get_or_create(&am_label(url))
                    .inc_by(count as u64);
            }
            Err(e) => {
                self.metrics
                    .errors
                    .get_or_create(&am_label(url))
                    .inc_by(count as u64);
                tracing::warn!(set = %self.name, alertmanager = url, error = %e, alerts = count, elapsed = ?started.elapsed(), "sending alerts to Alertmanager failed");
            }
        }
    }
}

/// The alerts URLs of an `alertmanagers` entry: every static target,
/// relabelled, as `scheme://address/path_prefix/api/v2/alerts`.
fn alertmanager_urls(config: &AlertmanagerConfig) -> Vec<String> {
    let mut urls = Vec::new();
    let prefix = config.path_prefix.trim_end_matches('/');
    for group in &config.static_configs {
        for target in &group.targets {
            let mut labels = Labels::new(
                group
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain([
                        ("__address__", target.as_str()),
                        ("__scheme__", config.scheme.as_str()),
                        ("__alerts_path__", &format!("{prefix}/api/v2/alerts")),
                    ]),
            );
            if !config.relabel_configs.is_empty() {
                match crate::collect::scrape::relabel::process(&labels, &config.relabel_configs) {
                    Some(l) => labels = l,
                    None => continue,
                }
            }
            let (Some(address), Some(scheme), Some(path)) = (
                labels.get("__address__"),
                labels.get("__scheme__"),
                labels.get("__alerts_path__"),
            ) else {
                continue;
            };
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            urls.push(format!("{scheme}://{address}{path}"));
        }
    }
    urls
}

/// Alertmanager API v2's `postableAlert`.
#[derive(Serialize)]
struct PostableAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
}

impl From<&NotifyAlert> for PostableAlert {
    fn from(a: &NotifyAlert) -> PostableAlert {
        PostableAlert {
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
            annotations: a.annotations.iter().cloned().collect(),
            starts_at: crate::api::status::format_millis(a.starts_at),
            ends_at: crate::api::status::format_millis(a.ends_at),
            generator_url: a.generator_url.clone(),
        }
    }
}
