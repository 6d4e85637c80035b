//! Scraping, end to end: a tiny exposition server in the test process, the
//! real daemon (or the library's `ScrapeManager` over a real store, where the
//! test must read raw samples such as stale markers), and Debian's real
//! node_exporter.
//!
//! Series are checked through `/api/v1/series` and `/api/v1/export`, and the
//! daemon's own `bellwether_scrape_*` counters.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bellwether::collect::scrape::ScrapeManager;
use bellwether::model::{is_stale_nan, Labels, Matcher};
use bellwether::storage::{Storage, StorageOptions};

use crate::util::{free_port, reference_program, wait_for, TestDaemon};

const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// What the exposition server answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// A one-thread HTTP server on 127.0.0.1 that answers every request with
/// the current [`Reply`] and remembers the last request's headers.
struct ExpositionServer {
    port: u16,
    reply: Arc<Mutex<Reply>>,
    last_request: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
}

impl ExpositionServer {
    fn start(content_type: &str, body: &str) -> ExpositionServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the exposition server");
        let port = listener.local_addr().expect("local addr").port();
        let reply = Arc::new(Mutex::new(Reply {
            status: 200,
            content_type: content_type.to_string(),
            body: body.to_string(),
        }));
        let last_request = Arc::new(Mutex::new(String::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (r, l, n) = (reply.clone(), last_request.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => request.extend_from_slice(&buf[..k]),
                    }
                }
                *l.lock().unwrap() = String::from_utf8_lossy(&request).into_owned();
                n.fetch_add(1, Ordering::SeqCst);
                let reply = r.lock().unwrap().clone();
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.status,
                    reply.content_type,
                    reply.body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(reply.body.as_bytes());
            }
        });
        ExpositionServer {
            port,
            reply,
            last_request,
            requests,
        }
    }

    fn set_body(&self, body: &str) {
        self.reply.lock().unwrap().body = body.to_string();
    }

    fn set_status(&self, status: u16) {
        self.reply.lock().unwrap().status = status;
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The value of `name{...}` in an exposition whose labels include all of `want`.
fn labeled_value(exposition: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        want.iter()
            .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.split_whitespace().next()?.parse().ok())?
    })
}

fn self_value(daemon: &TestDaemon, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    labeled_value(&daemon.get("/metrics").1, name, want)
}

/// `/api/v1/series?match[]=...` as Prometheus answers it.
fn api_series(daemon: &TestDaemon, selector: &str) -> Vec<serde_json::Value> {
    let path = format!("/api/v1/series?match[]={}", urlencode(selector));
    let json = daemon.get_json(&path, 200);
    assert_eq!(json["status"], "success", "{json}");
    json["data"].as_array().cloned().unwrap_or_default()
}

/// The newest stored value of each series matching `selector`, from the raw
/// samples of `/api/v1/export`.
fn last_values(daemon: &TestDaemon, selector: &str) -> Vec<f64> {
    let path = format!("/api/v1/export?match[]={}", urlencode(selector));
    let json = daemon.get_json(&path, 200);
    json["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["values"].as_array()?.last()?[1].as_str()?.parse().ok())
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const APP_BODY: &str = "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{method=\"get\"} 7\napp_temperature 21.5\n";

fn app_config(server: &ExpositionServer) -> String {
    format!(
        "
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['{}']
        labels:
          env: test
",
        server.address()
    )
}

#[test]
fn daemon_scrapes_a_target_and_reports_up_and_failures() {
    let server = ExpositionServer::start("text/plain; version=0.0.4", APP_BODY);
    let daemon = TestDaemon::start(&app_config(&server));
    let app = [("job", "app")];
    assert!(
        wait_for(Duration::from_secs(15), || self_value(
            &daemon,
            "bellwether_scrape_scrapes_total",
            &app
        )
        .is_some_and(|n| n >= 2.0)),
        "the daemon did not scrape the target twice:\n{}",
        daemon.log()
    );
    assert_eq!(
        self_value(&daemon, "bellwether_scrape_targets", &app),
        Some(1.0)
    );
    assert_eq!(
        self_value(&daemon, "bellwether_scrape_scrapes_failed_total", &app),
        None
    );
    assert!(
        self_value(&daemon, "bellwether_scrape_samples_scraped_total", &app).unwrap_or(0.0) >= 4.0
    );
    assert!(server.requests.load(Ordering::SeqCst) >= 2);
    let request = server.last_request.lock().unwrap().clone();
    assert!(request.starts_with("GET /metrics HTTP/1.1"), "{request}");
    assert!(
        request.contains(&format!("accept: {ACCEPT}"))
            || request.contains(&format!("Accept: {ACCEPT}")),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("x-prometheus-scrape-timeout-seconds: 1"),
        "{request}"
    );

    let instance = server.address();
    let series = api_series(&daemon, "app_requests_total");
    assert_eq!(series.len(), 1, "{series:?}");
    let s = &series[0];
    assert_eq!(s["__name__"], "app_requests_total");
    assert_eq!(s["job"], "app");
    assert_eq!(s["instance"], instance.as_str());
    assert_eq!(s["env"], "test");
    assert_eq!(s["method"], "get");
    let up = api_series(&daemon, "up{job=\"app\"}");
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["env"], "test");
    assert_eq!(last_values(&daemon, "up{job=\"app\"}"), vec![1.0]);

    // A body the parser refuses fails the whole scrape (up = 0).
    server.set_body("app_requests_total{method=\"get\"} 7\nbroken line\n");
    assert!(
        wait_for(Duration::from_secs(10), || self_value(
            &daemon,
            "bellwether_scrape_scrapes_failed_total",
            &[("job", "app"), ("reason", "parse")]
        )
        .is_some_and(|n| n >= 1.0)),
        "no parse failure counted:\n{}",
        daemon.log()
    );
    assert!(
        self_value(&daemon, "bellwether_scrape_parse_errors_total", &app).is_some_and(|n| n >= 1.0)
    );
    // The failed scrape wrote up = 0 (its stale markers are checked in-process below).
    assert!(
        wait_for(Duration::from_secs(10), || last_values(
            &daemon,
            "up{job=\"app\"}"
        ) == vec![0.0]),
        "up did not drop to 0 after a parse failure"
    );
}

#[test]
fn daemon_follows_file_sd_changes() {
    let server = ExpositionServer::start("text/plain", APP_BODY);
    let dir = tempfile::tempdir().unwrap();
    let targets = dir.path().join("targets.json");
    std::fs::write(
        &targets,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"team": "a"}}}}]"#,
            server.address()
        ),
    )
    .unwrap();
    let config = format!(
        "
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: files
    file_sd_configs:
      - files: ['{}/*.json']
",
        dir.path().display()
    );
    let daemon = TestDaemon::start(&config);
    let files = [("job", "files")];
    assert!(
        wait_for(Duration::from_secs(15), || self_value(
            &daemon,
            "bellwether_scrape_scrapes_total",
            &files
        )
        .is_some()),
        "{}",
        daemon.log()
    );
    assert_eq!(
        self_value(&daemon, "bellwether_scrape_targets", &files),
        Some(1.0)
    );
    let series = api_series(&daemon, "app_temperature");
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["team"], "a");
    assert!(series[0].get("__meta_filepath").is_none());
    // A broken file keeps the last good targets and is counted.
    std::fs::write(&targets, "[{broken").unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || daemon
            .self_metric("bellwether_scrape_file_sd_read_errors_total")
            .is_some_and(|n| n >= 1.0)),
        "{}",
        daemon.log()
    );
    assert_eq!(
        self_value(&daemon, "bellwether_scrape_targets", &files),
        Some(1.0)
    );
    // An empty list removes the target (picked up by the 5 s mtime poll).
    std::fs::write(&targets, "[]").unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || self_value(
            &daemon,
            "bellwether_scrape_targets",
            &files
        ) == Some(0.0)),
        "{}",
        daemon.log()
    );
}

/// Runs a `ScrapeManager` over a real store inside this process, so the test
/// can read raw samples (stale markers) that the HTTP API does not return.
struct InProcess {
    runtime: tokio::runtime::Runtime,
    storage: Storage,
    manager: ScrapeManager,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start(config_yaml: &str) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(StorageOptions::new(dir.path())).expect("opening the store");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        let manager = ScrapeManager::new(storage.clone(), &mut registry);
        let this = InProcess {
            runtime,
            storage,
            manager,
            _dir: dir,
        };
        this.apply(config_yaml);
        this
    }

    fn apply(&self, config_yaml: &str) {
        let config = bellwether::config::load_str(config_yaml, "test.yml").expect("valid config");
        let _guard = self.runtime.enter();
        self.manager.apply_config(&config);
    }

    /// The samples of every series matching `name` (and `labels`).
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(Labels, Vec<f64>)> {
        let mut matchers = vec![Matcher::equal("__name__", name)];
        matchers.extend(labels.iter().map(|(k, v)| Matcher::equal(k, v)));
        self.storage
            .querier(0, i64::MAX)
            .select(&matchers)
            .expect("select")
            .into_iter()
            .map(|s| (s.labels, s.samples.iter().map(|s| s.v).collect()))
            .collect()
    }

    fn last_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name, labels)
            .first()
            .and_then(|(_, v)| v.last().copied())
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.runtime.block_on(self.manager.shutdown());
    }
}

#[test]
fn series_end_with_stale_markers_when_they_disappear_fail_or_the_target_goes() {
    let server = ExpositionServer::start("text/plain; version=0.0.4", "a 1\nb{x=\"y\"} 2\n");
    let config = app_config(&server);
    let scrape = InProcess::start(&config);
    assert!(
        wait_for(Duration::from_secs(10), || scrape
            .last_value("b", &[])
            .is_some()),
        "b was never scraped"
    );
    let (labels, _) = &scrape.samples("b", &[])[0];
    assert_eq!(
        labels.to_string(),
        format!(
            r#"b{{env="test", instance="{}", job="app", x="y"}}"#,
            server.address()
        )
    );
    assert_eq!(scrape.last_value("up", &[("job", "app")]), Some(1.0));
    assert_eq!(scrape.last_value("scrape_samples_scraped", &[]), Some(2.0));

    // b disappears: its series ends with a stale marker; a goes on.
    server.set_body("a 1\n");
    assert!(
        wait_for(Duration::from_secs(10), || scrape
            .last_value("b", &[])
            .is_some_and(is_stale_nan)),
        "b did not get a stale marker"
    );
    assert_eq!(scrape.last_value("a", &[]), Some(1.0));

    // The target fails: up = 0 and everything scraped goes stale.
    server.set_status(500);
    assert!(
        wait_for(Duration::from_secs(10), || scrape.last_value("up", &[])
            == Some(0.0)),
        "up did not drop to 0"
    );
    assert!(scrape.last_value("a", &[]).is_some_and(is_stale_nan));
    assert_eq!(scrape.last_value("scrape_samples_scraped", &[]), Some(0.0));

    // Back, then the job is removed: after about two intervals every series,
    // the report series included, ends.
    server.set_status(200);
    assert!(wait_for(Duration::from_secs(10), || scrape
        .last_value("up", &[])
        == Some(1.0)));
    scrape.apply("scrape_configs: []\n");
    assert!(
        wait_for(Duration::from_secs(10), || scrape
            .last_value("up", &[])
            .is_some_and(is_stale_nan)
            && scrape.last_value("a", &[]).is_some_and(is_stale_nan)),
        "removed target's series were not marked stale"
    );
}

#[test]
fn openmetrics_targets_are_parsed_as_openmetrics() {
    let body = "# TYPE jobs counter\n# HELP jobs Jobs run.\njobs_total{kind=\"x\"} 3 # {trace_id=\"abc\"} 1.0 1700000000.5\njobs_created{kind=\"x\"} 1700000000\n# EOF\n";
    let server = ExpositionServer::start(
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body,
    );
    let scrape = InProcess::start(&app_config(&server));
    assert!(
        wait_for(Duration::from_secs(10), || scrape
            .last_value("jobs_total", &[])
            == Some(3.0)),
        "the OpenMetrics body was not ingested"
    );
    // Prometheus 2.42 ingests _created as its own series.
    assert_eq!(
        scrape.last_value("jobs_created", &[]),
        Some(1_700_000_000.0)
    );
    let metadata = scrape.manager.metadata();
    assert_eq!(metadata["jobs"][0].kind, "counter");
    assert_eq!(metadata["jobs"][0].help, "Jobs run.");
    // Without `# EOF` the scrape fails.
    server.set_body("jobs_total{kind=\"x\"} 4\n");
    assert!(
        wait_for(Duration::from_secs(10), || scrape.last_value("up", &[])
            == Some(0.0)),
        "a body without # EOF must fail the scrape"
    );
}

/// Debian's node_exporter on a free port, killed on drop.
struct NodeExporter {
    child: Child,
    address: String,
}

impl NodeExporter {
    fn start() -> NodeExporter {
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new(reference_program("prometheus-node-exporter"))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus-node-exporter");
        let url = format!("http://{address}/metrics");
        assert!(
            wait_for(Duration::from_secs(15), || crate::util::client()
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())),
            "node_exporter did not come up on {address}"
        );
        NodeExporter { child, address }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn scrapes_the_real_node_exporter() {
    let exporter = NodeExporter::start();
    let config = format!(
        "
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{}']
",
        exporter.address
    );
    let daemon = TestDaemon::start(&config);
    let node = [("job", "node")];
    assert!(
        wait_for(Duration::from_secs(20), || self_value(
            &daemon,
            "bellwether_scrape_scrapes_total",
            &node
        )
        .is_some_and(|n| n >= 2.0)),
        "{}",
        daemon.log()
    );
    assert_eq!(
        self_value(&daemon, "bellwether_scrape_scrapes_failed_total", &node),
        None,
        "node_exporter scrapes failed:\n{}",
        daemon.log()
    );
    assert!(
        self_value(&daemon, "bellwether_scrape_samples_scraped_total", &node).unwrap_or(0.0)
            > 100.0
    );
    let series = api_series(&daemon, "node_cpu_seconds_total");
    assert!(
        series
            .iter()
            .any(|s| s["mode"] == "idle" && s["cpu"] == "0"),
        "{series:?}"
    );

    // The same exporter through the library, checking series directly.
    let scrape = InProcess::start(&config);
    assert!(
        wait_for(Duration::from_secs(15), || !scrape
            .samples("node_cpu_seconds_total", &[("mode", "idle")])
            .is_empty()),
        "node_cpu_seconds_total was not scraped"
    );
    for name in [
        "node_load1",
        "node_memory_MemAvailable_bytes",
        "node_filesystem_avail_bytes",
    ] {
        assert!(!scrape.samples(name, &[]).is_empty(), "{name} missing");
    }
    let cpu = scrape.samples("node_cpu_seconds_total", &[("mode", "idle"), ("cpu", "0")]);
    assert_eq!(cpu[0].0.get("instance"), Some(exporter.address.as_str()));
    assert_eq!(scrape.last_value("up", &[("job", "node")]), Some(1.0));
    // Metadata is recorded after the scrape's samples are committed: wait
    // for it rather than race the loop.
    assert!(
        wait_for(Duration::from_secs(15), || scrape
            .manager
            .metadata()
            .contains_key("node_cpu_seconds_total")),
        "no metadata for node_cpu_seconds_total"
    );
}

#[test]
fn reloads_keep_unchanged_loops_and_hand_over_changed_ones_without_stale_markers() {
    let server = ExpositionServer::start("text/plain", "a 1\n");
    let config = app_config(&server);
    let scrape = InProcess::start(&config);
    let count = |scrape: &InProcess| scrape.samples("a", &[]).first().map_or(0, |(_, v)| v.len());
    assert!(wait_for(Duration::from_secs(10), || count(&scrape) >= 1));

    // The same config again: the loop keeps running.
    scrape.apply(&config);
    let before = count(&scrape);
    assert!(wait_for(Duration::from_secs(10), || count(&scrape) >= before + 2));

    // A changed job (a limit; the target's labels and URL stay the same):
    // a new loop takes over the old loop's staleness state.
    scrape.apply(&config.replace("- job_name: app", "- job_name: app\n    sample_limit: 1000"));
    let before = count(&scrape);
    assert!(wait_for(Duration::from_secs(10), || count(&scrape) >= before + 3));

    let (_, values) = &scrape.samples("a", &[])[0];
    assert!(
        values.iter().all(|v| *v == 1.0),
        "no stale markers across reloads: {values:?}"
    );
    let (_, up) = &scrape.samples("up", &[])[0];
    assert!(up.iter().all(|v| *v == 1.0), "{up:?}");
}

/// `droppedTargets` of `/api/v1/targets`: targets relabeling dropped, with
/// their discovered labels, exactly as Debian's Prometheus 2.42 lists them
/// for the same scrape config (and filtered by `state` and `scrapePool`).
#[test]
fn dropped_targets_match_prometheus() {
    let scrape = r#"
scrape_configs:
  - job_name: mixed
    scrape_interval: 1h
    static_configs:
      - targets: ['127.0.0.1:1', '127.0.0.1:2']
        labels: {env: prod}
      - targets: ['127.0.0.1:3']
        labels: {env: dev}
    relabel_configs:
      - source_labels: [env, __address__]
        regex: 'prod;.*:1'
        action: keep
"#;
    let prometheus = crate::util::Prometheus::start(scrape, &[]);
    let daemon = TestDaemon::start(scrape);
    let dropped = |body: serde_json::Value| body["data"]["droppedTargets"].clone();
    let path = "/api/v1/targets?state=dropped&scrapePool=mixed";
    let mut theirs = serde_json::Value::Null;
    // Prometheus applies discovered targets a few seconds after start.
    let listed = wait_for(Duration::from_secs(30), || {
        theirs = dropped(prometheus.get_json(path));
        theirs.as_array().is_some_and(|a| a.len() == 2)
    });
    assert!(listed, "prometheus: {theirs}");
    let mut ours = dropped(daemon.get_json(path, 200));
    let key = |v: &serde_json::Value| v["discoveredLabels"]["__address__"].to_string();
    for list in [&mut theirs, &mut ours] {
        if let Some(a) = list.as_array_mut() {
            a.sort_by_key(key);
        }
    }
    assert_eq!(ours, theirs);
    // `state=active` leaves them out; another pool has none.
    let active = daemon.get_json("/api/v1/targets?state=active&scrapePool=mixed", 200);
    assert_eq!(active["data"]["droppedTargets"], serde_json::json!([]));
    assert_eq!(
        active["data"]["activeTargets"].as_array().map(Vec::len),
        Some(1)
    );
    let other = daemon.get_json("/api/v1/targets?scrapePool=node", 200);
    assert_eq!(other["data"]["droppedTargets"], serde_json::json!([]));
}
