//! `kubernetes_sd_configs` with `role: pod`: the pods of this node as
//! target groups with Prometheus 2.42's `__meta_kubernetes_pod_*` labels
//! (discovery/kubernetes/pod.go), for the scrape manager to relabel and
//! scrape like any other discovered targets.
//!
//! Pure: pods in, target groups out. As in Prometheus, a pod without an IP
//! has no targets, every container port is one target (`<pod IP>:<port>`),
//! and a container without ports is one target at the bare pod IP (a
//! relabeling must add the port, e.g. from `prometheus.io/port`).

use std::collections::BTreeMap;

use super::api::{Container, ContainerStatus, Pod};
use super::config::KubernetesSdConfig;
use super::PodSnapshot;
use crate::collect::scrape::target::TargetGroup;

const PREFIX: &str = "__meta_kubernetes_";

/// The target groups of `pods` that `sd` selects, in pod-key order.
pub fn target_groups(pods: &PodSnapshot, sd: &KubernetesSdConfig) -> Vec<TargetGroup> {
    let names = &sd.namespaces.names;
    pods.values()
        .filter(|pod| names.is_empty() || names.contains(&pod.metadata.namespace))
        .flat_map(|pod| pod_groups(pod))
        .collect()
}

/// Turns a label or annotation name into a label-name suffix, as
/// Prometheus's `strutil.SanitizeLabelName`: every character outside
/// `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The labels every target of a pod shares.
fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let meta = &pod.metadata;
    let mut labels = BTreeMap::new();
    let mut put = |name: &str, value: &str| {
        labels.insert(format!("{PREFIX}{name}"), value.to_string());
    };
    put("namespace", &meta.namespace);
    put("pod_name", &meta.name);
    put("pod_ip", &pod.status.pod_ip);
    put("pod_ready", &pod.ready());
    put("pod_phase", &pod.status.phase);
    put("pod_node_name", &pod.spec.node_name);
    put("pod_host_ip", &pod.status.host_ip);
    put("pod_uid", &meta.uid);
    if let Some(controller) = pod.controller() {
        if !controller.kind.is_empty() {
            put("pod_controller_kind", &controller.kind);
        }
        if !controller.name.is_empty() {
            put("pod_controller_name", &controller.name);
        }
    }
    for (key, value) in &meta.labels {
        let name = sanitize_label_name(key);
        put(&format!("pod_label_{name}"), value);
        put(&format!("pod_labelpresent_{name}"), "true");
    }
    for (key, value) in &meta.annotations {
        let name = sanitize_label_name(key);
        put(&format!("pod_annotation_{name}"), value);
        put(&format!("pod_annotationpresent_{name}"), "true");
    }
    labels
}

/// One group per target, each carrying the pod's labels and its own
/// container labels (a [`TargetGroup`] shares labels across its targets).
fn pod_groups(pod: &Pod) -> Vec<TargetGroup> {
    if pod.status.pod_ip.is_empty() {
        return Vec::new();
    }
    let shared = pod_labels(pod);
    let source = format!("pod/{}/{}", pod.metadata.namespace, pod.metadata.name);
    let host = if pod.status.pod_ip.contains(':') {
        format!("[{}]", pod.status.pod_ip)
    } else {
        pod.status.pod_ip.clone()
    };
    let containers = pod
        .spec
        .containers
        .iter()
        .map(|c| (c, false, &pod.status.container_statuses))
        .chain(
            pod.spec
                .init_containers
                .iter()
                .map(|c| (c, true, &pod.status.init_container_statuses)),
        );
    let mut groups = Vec::new();
    for (container, is_init, statuses) in containers {
        let mut labels = shared.clone();
        container_labels(&mut labels, container, is_init, statuses);
        if container.ports.is_empty() {
            groups.push(TargetGroup {
                source: source.clone(),
                targets: vec![pod.status.pod_ip.clone()],
                labels,
            });
            continue;
        }
        for port in &container.ports {
            let mut labels = labels.clone();
            let number = port.container_port.to_string();
            labels.insert(format!("{PREFIX}pod_container_port_number"), number.clone());
            labels.insert(
                format!("{PREFIX}pod_container_port_name"),
                port.name.clone(),
            );
            labels.insert(
                format!("{PREFIX}pod_container_port_protocol"),
                port.protocol.clone(),
            );
            groups.push(TargetGroup {
                source: source.clone(),
                targets: vec![format!("{host}:{number}")],
                labels,
            });
        }
    }
    groups
}

fn container_labels(
    labels: &mut BTreeMap<String, String>,
    container: &Container,
    is_init: bool,
    statuses: &[ContainerStatus],
) {
    let id = statuses
        .iter()
        .find(|s| s.name == container.name)
        .map(|s| s.container_id.clone())
        .unwrap_or_default();
    labels.insert(
        format!("{PREFIX}pod_container_name"),
        container.name.clone(),
    );
    labels.insert(format!("{PREFIX}pod_container_id"), id);
    labels.insert(
        format!("{PREFIX}pod_container_image"),
        container.image.clone(),
    );
    labels.insert(format!("{PREFIX}pod_container_init"), is_init.to_string());
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::collect::kubernetes::api::parse_pod_list;

    /// A pod snapshot from PodList JSON (shared by the collector's tests).
    pub(crate) fn snapshot(json: &str) -> PodSnapshot {
        parse_pod_list(json.as_bytes())
            .expect("list")
            .items
            .into_iter()
            .map(|p| (p.key(), Arc::new(p)))
            .collect()
    }

    fn sd(names: &[&str]) -> KubernetesSdConfig {
        serde_json::from_value(serde_json::json!({"role": "pod", "namespaces": {"names": names}}))
            .expect("sd")
    }

    const LIST: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"100"},"items":[
      {"metadata":{"name":"web-1","namespace":"shop","uid":"u1","labels":{"app.kubernetes.io/name":"web"},"annotations":{"prometheus.io/scrape":"true","prometheus.io/port":"9102"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-5f","controller":true},{"kind":"Other","name":"x"}]},
       "spec":{"nodeName":"node-1","containers":[{"name":"web","image":"web:1","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"},{"name":"metrics","containerPort":9102,"protocol":"TCP"}]},{"name":"sidecar","image":"envoy:1"}],"initContainers":[{"name":"migrate","image":"web:1"}]},
       "status":{"phase":"Running","podIP":"10.1.0.7","hostIP":"10.0.0.5","conditions":[{"type":"Ready","status":"False"}],"containerStatuses":[{"name":"web","containerID":"containerd://aa","restartCount":2}]}},
      {"metadata":{"name":"pending","namespace":"kube-system","uid":"u2"},"spec":{"nodeName":"node-1","containers":[{"name":"c"}]},"status":{"phase":"Pending"}}
    ]}"#;

    #[test]
    fn one_target_per_container_port_with_prometheus_labels() {
        let groups = target_groups(&snapshot(LIST), &sd(&[]));
        let targets: Vec<&str> = groups.iter().map(|g| g.targets[0].as_str()).collect();
        // The pending pod has no IP, so no targets.
        assert_eq!(
            targets,
            ["10.1.0.7:8080", "10.1.0.7:9102", "10.1.0.7", "10.1.0.7"]
        );
        let first = &groups[0].labels;
        let get = |name: &str| {
            first
                .get(&format!("__meta_kubernetes_{name}"))
                .map(String::as_str)
        };
        assert_eq!(get("namespace"), Some("shop"));
        assert_eq!(get("pod_name"), Some("web-1"));
        assert_eq!(get("pod_uid"), Some("u1"));
        assert_eq!(get("pod_ip"), Some("10.1.0.7"));
        assert_eq!(get("pod_host_ip"), Some("10.0.0.5"));
        assert_eq!(get("pod_node_name"), Some("node-1"));
        assert_eq!(get("pod_phase"), Some("Running"));
        assert_eq!(get("pod_ready"), Some("false"));
        assert_eq!(get("pod_controller_kind"), Some("ReplicaSet"));
        assert_eq!(get("pod_controller_name"), Some("web-5f"));
        assert_eq!(get("pod_label_app_kubernetes_io_name"), Some("web"));
        assert_eq!(get("pod_labelpresent_app_kubernetes_io_name"), Some("true"));
        assert_eq!(get("pod_annotation_prometheus_io_scrape"), Some("true"));
        assert_eq!(
            get("pod_annotationpresent_prometheus_io_port"),
            Some("true")
        );
        assert_eq!(get("pod_container_name"), Some("web"));
        assert_eq!(get("pod_container_id"), Some("containerd://aa"));
        assert_eq!(get("pod_container_port_name"), Some("http"));
        assert_eq!(get("pod_container_port_number"), Some("8080"));
        assert_eq!(get("pod_container_port_protocol"), Some("TCP"));
        assert_eq!(get("pod_container_init"), Some("false"));
        let init = &groups[3].labels;
        assert_eq!(init["__meta_kubernetes_pod_container_name"], "migrate");
        assert_eq!(init["__meta_kubernetes_pod_container_init"], "true");
        assert!(!init.contains_key("__meta_kubernetes_pod_container_port_number"));
    }

    #[test]
    fn namespace_filter() {
        assert!(target_groups(&snapshot(LIST), &sd(&["kube-system"])).is_empty());
        assert_eq!(target_groups(&snapshot(LIST), &sd(&["shop"])).len(), 4);
    }

    #[test]
    fn sanitizes_like_prometheus() {
        assert_eq!(
            sanitize_label_name("prometheus.io/scrape"),
            "prometheus_io_scrape"
        );
        assert_eq!(sanitize_label_name("a-b_c9"), "a_b_c9");
    }
}
