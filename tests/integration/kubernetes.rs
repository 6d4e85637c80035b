//! The Kubernetes collector against a local HTTPS API server started here:
//! a certificate made by `openssl` (trusted by the daemon through
//! `collectors.kubernetes.ca_file`), a v1 PodList for the list request and
//! a scripted watch stream (ADDED/MODIFIED/DELETED events, a bad line, an
//! `ERROR` event with code 410). Pod metrics are read through the query
//! API; an annotated pod (IP 127.0.0.1) is scraped from a /metrics served
//! here and its samples carry relabelled `__meta_kubernetes_pod_*` labels.

use crate::probes::{make_certificate, tls_server_config};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{metric_value, wait_for, TestDaemon};

const NODE: &str = "node-1";

/// The fake API server's state, shared with the test.
#[derive(Default)]
struct ApiState {
    /// Every request: (path and query, Authorization header).
    requests: Vec<(String, String)>,
    /// The PodList JSON answered to a list.
    list: String,
    /// Lines for the open watch to send; `CLOSE` ends the stream.
    watch_lines: VecDeque<String>,
    /// Answer the next watch with HTTP 410 instead of a stream.
    watch_gone: bool,
}

fn start_api_server(config: Arc<rustls::ServerConfig>, state: Arc<Mutex<ApiState>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            let state = state.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, config, state);
            });
        }
    });
    port
}

fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: Arc<Mutex<ApiState>>,
) -> std::io::Result<()> {
    let connection = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_string();
            }
        }
    }
    drop(reader);
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let is_watch = target.contains("watch=1");
    let list = {
        let mut s = state.lock().expect("state");
        s.requests.push((target.clone(), authorization));
        if is_watch && s.watch_gone {
            s.watch_gone = false;
            None
        } else {
            Some(s.list.clone())
        }
    };
    let Some(list) = list else {
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version","reason":"Expired","code":410}"#;
        write!(tls, "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
        return tls.flush();
    };
    if !is_watch {
        write!(tls, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{list}", list.len())?;
        return tls.flush();
    }
    write!(tls, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
    tls.flush()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let line = state.lock().expect("state").watch_lines.pop_front();
        match line {
            Some(line) if line == "CLOSE" => break,
            Some(line) => {
                let data = format!("{line}\n");
                write!(tls, "{:x}\r\n{data}\r\n", data.len())?;
                tls.flush()?;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    write!(tls, "0\r\n\r\n")?;
    tls.flush()
}

/// The annotated pod's /metrics, plain HTTP on 127.0.0.1.
fn start_metrics_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let (status, body) = if head.starts_with("GET /custom/metrics ") {
                (
                    "200 OK",
                    "# TYPE app_requests_total counter\napp_requests_total{code=\"200\"} 42\n",
                )
            } else {
                ("404 Not Found", "not here\n")
            };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

/// A v1 Pod as the API server returns it (trimmed of managedFields).
fn pod(
    name: &str,
    namespace: &str,
    rv: u32,
    phase: &str,
    restarts: u32,
    metrics_port: Option<u16>,
) -> serde_json::Value {
    let annotations = match metrics_port {
        Some(port) => serde_json::json!({
            "prometheus.io/scrape": "true",
            "prometheus.io/port": port.to_string(),
            "prometheus.io/path": "/custom/metrics",
            "kubectl.kubernetes.io/default-container": "app",
        }),
        None => serde_json::json!({}),
    };
    let ports = match metrics_port {
        Some(port) => {
            serde_json::json!([{"name": "metrics", "containerPort": port, "protocol": "TCP"}])
        }
        None => serde_json::json!([]),
    };
    serde_json::json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": namespace, "uid": format!("uid-{name}"),
            "resourceVersion": rv.to_string(), "creationTimestamp": "2026-11-22T09:00:00Z",
            "labels": {"app.kubernetes.io/name": name.split('-').next().unwrap_or(name), "pod-template-hash": "5d8f7c"},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-rs"), "uid": "rs", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "nodeName": NODE, "restartPolicy": "Always", "serviceAccountName": "default",
            "containers": [{"name": "app", "image": "registry.example/app:1.4.2", "ports": ports, "resources": {}}]
        },
        "status": {
            "phase": phase, "hostIP": "10.0.0.5", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "qosClass": "BestEffort", "startTime": "2026-11-22T09:00:01Z",
            "conditions": [{"type": "Ready", "status": if phase == "Running" { "True" } else { "False" }, "lastTransitionTime": "2026-11-22T09:00:05Z"}],
            "containerStatuses": [{"name": "app", "ready": phase == "Running", "restartCount": restarts, "image": "registry.example/app:1.4.2", "imageID": "sha256:ab", "containerID": format!("containerd://{name}"), "started": true, "state": {"running": {"startedAt": "2026-11-22T09:00:04Z"}}}]
        }
    })
}

fn pod_list(rv: u32, pods: Vec<serde_json::Value>) -> String {
    serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}, "items": pods}).to_string()
}

fn event(kind: &str, object: serde_json::Value) -> String {
    serde_json::json!({"type": kind, "object": object}).to_string()
}

fn query(daemon: &TestDaemon, expr: &str) -> Vec<(serde_json::Value, f64)> {
    let url = format!("/api/v1/query?query={}", urlencode(expr));
    let body = daemon.get_json(&url, 200);
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (r["metric"].clone(), value)
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn value(daemon: &TestDaemon, expr: &str) -> Option<f64> {
    query(daemon, expr).first().map(|(_, v)| *v)
}

fn self_metric_labelled(daemon: &TestDaemon, name: &str) -> f64 {
    let (_, body) = daemon.get("/metrics");
    metric_value(&body, name).unwrap_or(0.0)
}

/// A fake API server answering a list of `pods` (given the annotated pod's
/// metrics port) at resource version `rv`, its TLS certificate, a token file
/// and the annotated pod's /metrics server.
struct Fixture {
    _dir: tempfile::TempDir,
    cert: std::path::PathBuf,
    token: std::path::PathBuf,
    metrics_port: u16,
    state: Arc<Mutex<ApiState>>,
    api_port: u16,
}

impl Fixture {
    fn start(token_text: &str, rv: u32, pods: impl Fn(u16) -> Vec<serde_json::Value>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = make_certificate(dir.path(), "apiserver", 2);
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{token_text}\n")).expect("token");
        let metrics_port = start_metrics_server();
        let state = Arc::new(Mutex::new(ApiState {
            list: pod_list(rv, pods(metrics_port)),
            ..ApiState::default()
        }));
        let api_port = start_api_server(tls_server_config(&cert, &key), state.clone());
        Fixture {
            _dir: dir,
            cert,
            token,
            metrics_port,
            state,
            api_port,
        }
    }
}

impl Fixture {
    /// A config whose Kubernetes collector talks to this fixture every
    /// second, followed by `more` (keys of `collectors.kubernetes` indented
    /// by 4, then other top-level sections).
    fn config(&self, more: &str) -> String {
        format!(
            "global:\n  scrape_interval: 1s\ncollectors:\n  kubernetes:\n    enabled: true\n    api_server: https://127.0.0.1:{}\n    token_file: {}\n    ca_file: {}\n    node_name: {NODE}\n    interval: 1s\n{more}",
            self.api_port,
            self.token.display(),
            self.cert.display(),
        )
    }
}

/// Waits until the annotated pod `web-7d4b9` of namespace `shop` has been
/// scraped by the `kubernetes-pods` job on `metrics_port`, checks the sample
/// and its relabelled labels, and returns them.
fn annotated_pod_sample(daemon: &TestDaemon, metrics_port: u16) -> serde_json::Value {
    let selector = r#"app_requests_total{job="kubernetes-pods"}"#;
    assert!(
        wait_for(Duration::from_secs(20), || !query(daemon, selector)
            .is_empty()),
        "annotated pod never scraped: {}\n{}",
        daemon.get("/api/v1/targets").1,
        daemon.log()
    );
    let (labels, v) = query(daemon, selector).remove(0);
    assert_eq!(v, 42.0);
    assert_eq!(labels["namespace"], "shop");
    assert_eq!(labels["pod"], "web-7d4b9");
    assert_eq!(labels["app_kubernetes_io_name"], "web");
    assert_eq!(labels["instance"], format!("127.0.0.1:{metrics_port}"));
    labels
}

#[test]
fn pods_of_the_node_are_listed_watched_and_scraped() {
    let f = Fixture::start("token-one", 1000, |metrics_port| {
        vec![
            pod("web-7d4b9", "shop", 990, "Running", 0, Some(metrics_port)),
            pod("worker-6c9f", "shop", 991, "Running", 2, None),
            pod("backup-29118", "batch", 992, "Succeeded", 0, None),
        ]
    });
    let (token, metrics_port, state) = (&f.token, f.metrics_port, f.state.clone());
    let config = f.config(
        r#"    request_timeout: 5s
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]
        regex: (.+)
        target_label: __metrics_path__
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        regex: ([^:]+)(?::\d+)?;(\d+)
        replacement: $1:$2
        target_label: __address__
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_controller_kind]
        target_label: controller_kind
"#,
    );
    let daemon = TestDaemon::start(&config);

    // List: pod metrics with the right values.
    assert!(
        wait_for(Duration::from_secs(20), || value(
            &daemon,
            r#"bellwether_kubernetes_pods{namespace="shop",phase="Running"}"#
        ) == Some(2.0)),
        "pod counts never appeared: {:?}\n{}",
        query(&daemon, "bellwether_kubernetes_pods"),
        daemon.log()
    );
    assert_eq!(
        value(
            &daemon,
            r#"bellwether_kubernetes_pods{namespace="batch",phase="Succeeded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &daemon,
            r#"kube_pod_container_status_restarts_total{namespace="shop",pod="worker-6c9f",container="app"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&daemon, r#"sum(kube_pod_status_phase{phase="Running"})"#),
        Some(2.0)
    );
    assert_eq!(
        value(&daemon, r#"up{job="kubernetes",instance="node-1"}"#),
        Some(1.0)
    );

    // The request the server saw: the node's field selector and the token.
    {
        let s = state.lock().expect("state");
        let (target, auth) = &s.requests[0];
        assert!(
            target.starts_with("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"),
            "{target}"
        );
        assert_eq!(auth, "Bearer token-one");
        assert!(
            s.requests.iter().any(|(t, _)| t.contains("watch=1")
                && t.contains("resourceVersion=1000")
                && t.contains("allowWatchBookmarks=true")),
            "{:?}",
            s.requests
        );
    }

    // The annotated pod is scraped, with relabelled discovery labels.
    let labels = annotated_pod_sample(&daemon, metrics_port);
    assert_eq!(labels["controller_kind"], "ReplicaSet");
    // Only the annotated pod is a target.
    let targets = daemon.get_json("/api/v1/targets", 200);
    let pods_targets: Vec<&serde_json::Value> = targets["data"]["activeTargets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| t["labels"]["job"] == "kubernetes-pods")
        .collect();
    assert_eq!(pods_targets.len(), 1, "{targets}");
    assert_eq!(
        pods_targets[0]["discoveredLabels"]["__meta_kubernetes_pod_uid"],
        "uid-web-7d4b9"
    );

    // MODIFIED: the restart count follows; time from event to query.
    let sent = Instant::now();
    state.lock().expect("state").watch_lines.push_back(event(
        "MODIFIED",
        pod("worker-6c9f", "shop", 1001, "Running", 5, None),
    ));
    assert!(
        wait_for(Duration::from_secs(10), || value(
            &daemon,
            r#"kube_pod_container_status_restarts_total{pod="worker-6c9f"}"#
        ) == Some(5.0)),
        "MODIFIED not applied\n{}",
        daemon.log()
    );
    eprintln!("watch event to queryable metric: {:?}", sent.elapsed());

    // A bad line is counted, not fatal; the next event still applies.
    let errors_before = self_metric_labelled(
        &daemon,
        r#"bellwether_collector_errors_total{collector="kubernetes"}"#,
    );
    state.lock().expect("state").watch_lines.extend([
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":".to_string(),
        "not json at all".to_string(),
        event("ADDED", pod("cron-1", "batch", 1002, "Pending", 0, None)),
    ]);
    assert!(
        wait_for(Duration::from_secs(10), || value(
            &daemon,
            r#"bellwether_kubernetes_pods{namespace="batch",phase="Pending"}"#
        ) == Some(1.0)),
        "ADDED after bad lines not applied\n{}",
        daemon.log()
    );
    let errors_after = self_metric_labelled(
        &daemon,
        r#"bellwether_collector_errors_total{collector="kubernetes"}"#,
    );
    assert_eq!(
        errors_after - errors_before,
        2.0,
        "{}",
        daemon.get("/metrics").1
    );

    // DELETED removes the pod's target.
    state.lock().expect("state").watch_lines.push_back(event(
        "DELETED",
        pod("web-7d4b9", "shop", 1003, "Running", 0, Some(metrics_port)),
    ));
    assert!(
        wait_for(Duration::from_secs(10), || {
            let t = daemon.get_json("/api/v1/targets", 200);
            !t["data"]["activeTargets"]
                .as_array()
                .expect("targets")
                .iter()
                .any(|t| t["labels"]["job"] == "kubernetes-pods")
        }),
        "target of the deleted pod still active\n{}",
        daemon.log()
    );
    assert!(wait_for(Duration::from_secs(10), || value(
        &daemon,
        r#"bellwether_kubernetes_pods{namespace="shop",phase="Running"}"#
    ) == Some(1.0)));

    // A 410 ERROR event forces a re-list, with the token read again; the
    // next watch then answers 410 Gone by status, forcing another.
    std::fs::write(token, "token-two\n").expect("token");
    assert_eq!(
        self_metric_labelled(&daemon, "bellwether_kubernetes_relists_total"),
        0.0
    );
    {
        let mut s = state.lock().expect("state");
        s.list = pod_list(
            2000,
            vec![pod("worker-6c9f", "shop", 1999, "Running", 7, None)],
        );
        s.watch_gone = true;
        s.watch_lines.push_back(event(
            "ERROR",
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version: 1003 (1500)", "reason": "Expired", "code": 410}),
        ));
    }
    assert!(
        wait_for(Duration::from_secs(10), || self_metric_labelled(
            &daemon,
            "bellwether_kubernetes_relists_total"
        ) >= 2.0),
        "no re-list after 410: {:?}\n{}",
        state.lock().expect("state").requests,
        daemon.log()
    );
    assert!(wait_for(Duration::from_secs(10), || value(
        &daemon,
        r#"kube_pod_container_status_restarts_total{pod="worker-6c9f"}"#
    ) == Some(7.0)));
    {
        let s = state.lock().expect("state");
        let lists: Vec<&(String, String)> = s
            .requests
            .iter()
            .filter(|(t, _)| !t.contains("watch=1"))
            .collect();
        assert!(lists.len() >= 3, "{:?}", s.requests);
        assert_eq!(lists.last().expect("list").1, "Bearer token-two");
    }
    // The re-list dropped the pods that are gone.
    assert!(wait_for(Duration::from_secs(10), || value(
        &daemon,
        r#"count(kube_pod_info)"#
    ) == Some(1.0)));
    assert!(daemon.log().contains("410"), "{}", daemon.log());
}

/// With no scrape job of its own, the built-in `kubernetes-pods` job
/// (`collectors.kubernetes.pods_job`) scrapes the pod annotated
/// `prometheus.io/scrape: "true"` on its `prometheus.io/port` and `path`.
#[test]
fn annotated_pods_are_scraped_by_the_built_in_job() {
    let f = Fixture::start("token", 10, |metrics_port| {
        vec![
            pod("web-7d4b9", "shop", 9, "Running", 0, Some(metrics_port)),
            pod("worker-6c9f", "shop", 8, "Running", 1, None),
        ]
    });
    let metrics_port = f.metrics_port;
    let config = f.config("");
    let daemon = TestDaemon::start(&config);
    annotated_pod_sample(&daemon, metrics_port);
    // The unannotated pod is dropped, and shows as such.
    let targets = daemon.get_json("/api/v1/targets", 200);
    let dropped = targets["data"]["droppedTargets"]
        .as_array()
        .expect("dropped")
        .iter()
        .filter(|t| t["discoveredLabels"]["__meta_kubernetes_pod_name"] == "worker-6c9f")
        .count();
    assert_eq!(dropped, 1, "{targets}");
    // Container metrics carry the pod's uid, as kube-state-metrics v2.
    assert!(
        wait_for(Duration::from_secs(10), || value(
            &daemon,
            r#"kube_pod_container_status_restarts_total{pod="worker-6c9f",uid="uid-worker-6c9f",container="app"}"#
        ) == Some(1.0)),
        "{:?}",
        query(&daemon, "kube_pod_container_status_restarts_total")
    );
}
