//! Feeds arbitrary bytes to the Kubernetes collector's API parsers
//! (src/collect/kubernetes/api.rs): each line as a watch event, the whole
//! input as a PodList; accepted pods go through discovery and the pod
//! metrics renderer. None may panic; the rendered metrics must parse.
//!
//! Run: `scripts/fuzz.sh 600 kubernetes_watch` (see docs/fuzzing.md).

#![no_main]

use std::sync::Arc;

use bellwether::collect::kubernetes::api::{parse_pod_list, parse_watch_event, WatchEvent};
use bellwether::collect::kubernetes::config::{KubernetesSdConfig, NamespaceFilter, Role};
use bellwether::collect::kubernetes::{discovery, metrics, PodSnapshot};
use bellwether::collect::scrape::parse::{parse_all, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pods = PodSnapshot::new();
    if let Ok(list) = parse_pod_list(data) {
        for pod in list.items {
            pods.insert(pod.key(), Arc::new(pod));
        }
    }
    for line in data.split(|&b| b == b'\n') {
        match parse_watch_event(line) {
            Ok(WatchEvent::Added(pod)) | Ok(WatchEvent::Modified(pod)) => {
                pods.insert(pod.key(), Arc::new(pod));
            }
            Ok(WatchEvent::Deleted(pod)) => {
                pods.remove(&pod.key());
            }
            _ => {}
        }
    }
    let sd = KubernetesSdConfig {
        role: Role::Pod,
        namespaces: NamespaceFilter::default(),
    };
    for group in discovery::target_groups(&pods, &sd) {
        assert_eq!(group.targets.len(), 1);
        assert!(group.labels.keys().all(|k| k.starts_with("__meta_kubernetes_")));
    }
    let text = metrics::render(&pods);
    assert!(parse_all(text.as_bytes(), Format::Text).is_ok(), "{text}");
});
