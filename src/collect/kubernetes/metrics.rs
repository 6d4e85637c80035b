//! What the Kubernetes collector reports: the pod metrics stored as the
//! `collectors.kubernetes.job_name` job (rendered from the watched pods on
//! every interval, with kube-state-metrics' names where one exists), and the
//! watch's health on bellwether's own `/metrics` (docs/metrics.md).

use std::collections::BTreeMap;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::PodSnapshot;
use crate::collect::host::exposition::{Exposition, Kind};

/// The phases kube-state-metrics reports for every pod (one series each, 1
/// for the pod's phase), so `sum by (phase)` works without absent series.
pub const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

/// The watch's health, on `/metrics`. Registered once.
#[derive(Clone, Default)]
pub struct KubernetesMetrics {
    pub relists: Counter,
    pub watch_restarts: Counter,
    pub events: Family<Vec<(String, String)>, Counter>,
    pub last_sync: Gauge<f64, AtomicU64>,
    pub pods: Gauge,
}

impl KubernetesMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_kubernetes_relists",
            "Successful pod lists after the first, each forced by a 410 Gone (the watch's resource version expired)",
            self.relists.clone(),
        );
        registry.register(
            "bellwether_kubernetes_watch_restarts",
            "Pod watch requests that ended (server timeout, connection lost, error) and were re-opened",
            self.watch_restarts.clone(),
        );
        registry.register(
            "bellwether_kubernetes_watch_events",
            "Pod watch events received, by type (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)",
            self.events.clone(),
        );
        registry.register(
            "bellwether_kubernetes_last_sync_timestamp_seconds",
            "When the pod state last agreed with the API server (a list, a watch event or bookmark), Unix seconds",
            self.last_sync.clone(),
        );
        registry.register(
            "bellwether_kubernetes_pods_watched",
            "Pods of this node the collector currently knows",
            self.pods.clone(),
        );
    }

    pub fn count_event(&self, kind: &str) {
        self.events
            .get_or_create(&vec![("type".to_string(), kind.to_string())])
            .inc();
    }
}

/// One collection of the pod metrics from `pods`.
pub fn render(pods: &PodSnapshot) -> String {
    let mut out = Exposition::new();
    let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for pod in pods.values() {
        let meta = &pod.metadata;
        let pod_labels = || {
            vec![
                ("namespace", meta.namespace.clone()),
                ("pod", meta.name.clone()),
                ("uid", meta.uid.clone()),
            ]
        };
        let controller = pod.controller();
        let mut info = pod_labels();
        info.extend([
            ("node", pod.spec.node_name.clone()),
            ("pod_ip", pod.status.pod_ip.clone()),
            ("host_ip", pod.status.host_ip.clone()),
            (
                "created_by_kind",
                controller.map(|c| c.kind.clone()).unwrap_or_default(),
            ),
            (
                "created_by_name",
                controller.map(|c| c.name.clone()).unwrap_or_default(),
            ),
        ]);
        out.add(
            "kube_pod_info",
            "Information about pod (kube-state-metrics' name and labels).",
            Kind::Gauge,
            info,
            1.0,
        );
        let phase = if pod.status.phase.is_empty() {
            "Unknown"
        } else {
            pod.status.phase.as_str()
        };
        for candidate in PHASES {
            let mut labels = pod_labels();
            labels.push(("phase", candidate.to_string()));
            out.add(
                "kube_pod_status_phase",
                "The pods current phase (kube-state-metrics' name and labels).",
                Kind::Gauge,
                labels,
                if candidate == phase { 1.0 } else { 0.0 },
            );
        }
        *counts.entry((meta.namespace.as_str(), phase)).or_default() += 1;
        let statuses = [
            (&pod.status.container_statuses, "kube_pod_container"),
            (
                &pod.status.init_container_statuses,
                "kube_pod_init_container",
            ),
        ];
        for (list, prefix) in statuses {
            for status in list {
                let container = || {
                    let mut labels = pod_labels();
                    labels.push(("container", status.name.clone()));
                    labels
                };
                out.add(
                    &format!("{prefix}_status_restarts_total"),
                    if prefix == "kube_pod_container" {
                        "The number of container restarts per container (kube-state-metrics' name)."
                    } else {
                        "The number of restarts for the init container (kube-state-metrics' name)."
                    },
                    Kind::Counter,
                    container(),
                    status.restart_count as f64,
                );
                out.add(
                    &format!("{prefix}_status_ready"),
                    if prefix == "kube_pod_container" {
                        "Describes whether the containers readiness check succeeded (kube-state-metrics' name)."
                    } else {
                        "Describes whether the init containers readiness check succeeded (kube-state-metrics' name)."
                    },
                    Kind::Gauge,
                    container(),
                    if status.ready { 1.0 } else { 0.0 },
                );
            }
        }
    }
    for ((namespace, phase), count) in counts {
        out.add(
            "bellwether_kubernetes_pods",
            "Pods on this node, by namespace and phase.",
            Kind::Gauge,
            vec![
                ("namespace", namespace.to_string()),
                ("phase", phase.to_string()),
            ],
            count as f64,
        );
    }
    let mut text = String::with_capacity(256 * pods.len() + 256);
    out.render(&mut text);
    text
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn renders_counts_phases_and_restarts() {
        let pods = crate::collect::kubernetes::discovery::tests::snapshot(
            r#"{"items":[
              {"metadata":{"name":"a","namespace":"shop","uid":"1"},"status":{"phase":"Running","containerStatuses":[{"name":"web","restartCount":4,"ready":true}],"initContainerStatuses":[{"name":"migrate","restartCount":1,"ready":false}]}},
              {"metadata":{"name":"b","namespace":"shop","uid":"2"},"status":{"phase":"Running"}},
              {"metadata":{"name":"c","namespace":"ops","uid":"3"},"status":{}}]}"#,
        );
        let text = render(&pods);
        for line in [
            "bellwether_kubernetes_pods{namespace=\"shop\",phase=\"Running\"} 2",
            "bellwether_kubernetes_pods{namespace=\"ops\",phase=\"Unknown\"} 1",
            "kube_pod_container_status_restarts_total{container=\"web\",namespace=\"shop\",pod=\"a\",uid=\"1\"} 4",
            "kube_pod_container_status_ready{container=\"web\",namespace=\"shop\",pod=\"a\",uid=\"1\"} 1",
            "kube_pod_init_container_status_restarts_total{container=\"migrate\",namespace=\"shop\",pod=\"a\",uid=\"1\"} 1",
            "kube_pod_init_container_status_ready{container=\"migrate\",namespace=\"shop\",pod=\"a\",uid=\"1\"} 0",
            "# TYPE kube_pod_init_container_status_restarts_total counter",
            "kube_pod_status_phase{namespace=\"shop\",phase=\"Running\",pod=\"b\",uid=\"2\"} 1",
            "kube_pod_status_phase{namespace=\"shop\",phase=\"Failed\",pod=\"b\",uid=\"2\"} 0",
            "# TYPE kube_pod_container_status_restarts_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // The text parses with the scrape parser.
        use crate::collect::scrape::parse::{parse_all, Format};
        let parsed = parse_all(text.as_bytes(), Format::Text).expect("parses");
        // 3 pod infos, 15 phases, 2 + 2 container series, 2 counts.
        assert_eq!(parsed.len(), 3 + 15 + 2 + 2 + 2);
    }
}
