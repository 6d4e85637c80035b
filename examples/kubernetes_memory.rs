//! Heap bytes the Kubernetes collector keeps per pod, and the cost of one
//! pod-metrics render and one discovery pass, for realistic pods (labels,
//! annotations incl. a 1 KB last-applied-configuration, two containers, one
//! with two ports). Run: `cargo run --release --example kubernetes_memory`.
//! Memory is the RSS growth while 10,000 pods arrive one watch event at a
//! time (so no large temporary body inflates it), divided per pod.
//! Numbers are recorded in docs/kubernetes.md.

use std::sync::Arc;
use std::time::Instant;

use bellwether::collect::kubernetes::api::{parse_pod_list, parse_watch_event, WatchEvent};
use bellwether::collect::kubernetes::config::{KubernetesSdConfig, NamespaceFilter, Role};
use bellwether::collect::kubernetes::{discovery, metrics, PodSnapshot};

/// Resident set size in bytes, from /proc/self/statm (pages of 4 KiB).
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn pod_json(i: usize) -> String {
    let applied = "x".repeat(1024);
    format!(
        r#"{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"web-5f9c8d7b6-{i:05}","namespace":"shop","uid":"0f8e3c2a-1b4d-4e5f-8a9b-{i:012}","resourceVersion":"{i}","creationTimestamp":"2026-11-22T09:00:00Z","labels":{{"app.kubernetes.io/name":"web","app.kubernetes.io/instance":"web-prod","pod-template-hash":"5f9c8d7b6","team":"checkout"}},"annotations":{{"prometheus.io/scrape":"true","prometheus.io/port":"9102","prometheus.io/path":"/metrics","kubectl.kubernetes.io/last-applied-configuration":"{applied}"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-5f9c8d7b6","uid":"a","controller":true,"blockOwnerDeletion":true}}],"managedFields":[{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-11-22T09:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{}}}}}}]}},"spec":{{"nodeName":"node-1","containers":[{{"name":"web","image":"registry.example/web:1.4.2","ports":[{{"name":"http","containerPort":8080,"protocol":"TCP"}},{{"name":"metrics","containerPort":9102,"protocol":"TCP"}}],"resources":{{"requests":{{"cpu":"100m"}}}}}},{{"name":"envoy","image":"envoyproxy/envoy:v1.28"}}]}},"status":{{"phase":"Running","hostIP":"10.0.0.5","podIP":"10.1.{}.{}","conditions":[{{"type":"Ready","status":"True"}},{{"type":"ContainersReady","status":"True"}}],"containerStatuses":[{{"name":"web","ready":true,"restartCount":1,"containerID":"containerd://{i:064}"}},{{"name":"envoy","ready":true,"restartCount":0,"containerID":"containerd://e{i:063}"}}]}}}}"#,
        i / 256,
        i % 256
    )
}

fn main() {
    let n = 10_000usize;
    let before = rss();
    let mut pods = PodSnapshot::new();
    let started = Instant::now();
    for i in 0..n {
        let line = format!(r#"{{"type":"ADDED","object":{}}}"#, pod_json(i));
        if let Ok(WatchEvent::Added(pod)) = parse_watch_event(line.as_bytes()) {
            pods.insert(pod.key(), Arc::new(pod));
        }
    }
    let per_event = started.elapsed() / n as u32;
    let kept = rss() - before;
    println!(
        "{n} pods: {} bytes of RSS per pod kept ({} KB per 100 pods); {per_event:?} per ADDED event parsed (debug build unless --release)",
        kept / n as i64,
        kept / 1024 / (n as i64 / 100)
    );
    let hundred: PodSnapshot = pods
        .iter()
        .take(100)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let started = Instant::now();
    let text = metrics::render(&hundred);
    println!(
        "100 pods: render {:?} ({} lines)",
        started.elapsed(),
        text.lines().count()
    );
    let sd = KubernetesSdConfig {
        role: Role::Pod,
        namespaces: NamespaceFilter::default(),
    };
    let started = Instant::now();
    let groups = discovery::target_groups(&hundred, &sd);
    println!(
        "100 pods: discovery {:?} ({} targets)",
        started.elapsed(),
        groups.len()
    );
    let body = format!(
        r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"1"}},"items":[{}]}}"#,
        (0..100).map(pod_json).collect::<Vec<_>>().join(",")
    );
    let started = Instant::now();
    let list = parse_pod_list(body.as_bytes()).map(|l| l.items.len());
    println!(
        "100-pod list ({} KB): parsed in {:?} ({list:?})",
        body.len() / 1024,
        started.elapsed()
    );
}
