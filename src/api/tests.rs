//! Handler tests for the targets, metadata, status, rules/alerts and exemplar
//! endpoints, and the requests Grafana's Prometheus data source sends, all
//! through `router(state).oneshot(..)`. Expected bodies are exact: the shapes
//! were taken from a running Prometheus 2.42 (Debian's package).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use super::{AppState, RuntimeStatus, TargetSource};
use crate::collect::scrape::scrape_loop::{MetricMetadata, TargetStatus};
use crate::collect::scrape::TargetInfo;
use crate::model::Labels;
use crate::storage::{Storage, StorageOptions};

/// Two targets of job `node` (one up, one never scraped) and one of `prom`
/// (down); metadata where `up` was seen with two different helps.
struct FakeTargets;

fn meta(metric: &str, kind: &str, help: &str) -> MetricMetadata {
    MetricMetadata {
        metric: metric.to_string(),
        kind: kind.to_string(),
        help: help.to_string(),
        unit: String::new(),
    }
}

impl TargetSource for FakeTargets {
    fn targets(&self) -> Vec<TargetInfo> {
        let target = |job: &str, address: &str, status: TargetStatus| TargetInfo {
            job: job.to_string(),
            discovered_labels: Labels::new([
                ("__address__", address),
                ("__metrics_path__", "/metrics"),
                ("__scheme__", "http"),
                ("__scrape_interval__", "15s"),
                ("__scrape_timeout__", "10s"),
                ("job", job),
            ]),
            labels: Labels::new([("instance", address), ("job", job)]),
            scrape_url: format!("http://{address}/metrics"),
            scrape_interval: Duration::from_secs(15),
            scrape_timeout: Duration::from_secs(10),
            status,
        };
        vec![
            target(
                "node",
                "a:9100",
                TargetStatus {
                    health: Some(true),
                    last_error: None,
                    last_scrape_ms: Some(1_700_000_000_123),
                    last_duration: Some(Duration::from_micros(3_804)),
                    metadata: Vec::new(),
                },
            ),
            target("node", "b:9100", TargetStatus::default()),
            target(
                "prom",
                "c:9090",
                TargetStatus {
                    health: Some(false),
                    last_error: Some("connection refused".to_string()),
                    last_scrape_ms: Some(1_700_000_000_000),
                    last_duration: Some(Duration::from_millis(2)),
                    metadata: Vec::new(),
                },
            ),
        ]
    }

    fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        let mut out = BTreeMap::new();
        out.insert(
            "node_cpu_seconds_total".to_string(),
            vec![meta(
                "node_cpu_seconds_total",
                "counter",
                "Seconds the CPUs spent in each mode.",
            )],
        );
        out.insert(
            "up".to_string(),
            vec![
                meta("up", "gauge", "Target health."),
                meta("up", "gauge", "Was the scrape <ok>?"),
            ],
        );
        out
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
}

/// `up` of two targets and `node_cpu_seconds_total`, samples at
/// 1700000000 s and 1700000015 s; fake targets; a config with a secret.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage =
        Storage::open(StorageOptions::for_epoch_fixtures(dir.path())).expect("opening the store");
    let mut app = storage.appender();
    for labels in [
        Labels::new([("__name__", "up"), ("job", "node"), ("instance", "a:9100")]),
        Labels::new([("__name__", "up"), ("job", "prom"), ("instance", "c:9090")]),
        Labels::new([
            ("__name__", "node_cpu_seconds_total"),
            ("job", "node"),
            ("mode", "idle"),
        ]),
    ] {
        app.add(labels.clone(), 1_700_000_000_000, 1.0);
        app.add(labels, 1_700_000_015_000, 1.0);
    }
    app.commit().expect("commit");
    let mut state = super::test_state(storage);
    state.targets = Arc::new(FakeTargets);
    let flags = [
        ("config", "/etc/bellwether.yml"),
        ("data-dir", "/var/lib/bw"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    state.status = Arc::new(RuntimeStatus::new(
        flags,
        "15d or 512MiB".to_string(),
        "scrape_configs:\n  - job_name: node\n    basic_auth: {username: u, password: hunter2}\n    static_configs:\n      - targets: [a:9100]\n",
    ));
    Fixture { _dir: dir, state }
}

async fn send(f: &Fixture, request: Request<Body>) -> (StatusCode, String) {
    let response = super::router(f.state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("reading the body");
    (
        status,
        String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    )
}

async fn get(f: &Fixture, uri: &str) -> (StatusCode, String) {
    send(f, Request::get(uri).body(Body::empty()).expect("request")).await
}

async fn post_form(f: &Fixture, uri: &str, form: &str) -> (StatusCode, String) {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request");
    send(f, request).await
}

fn bad_data(message: &str) -> String {
    format!(
        r#"{{"status":"error","errorType":"bad_data","error":{}}}"#,
        serde_json::Value::String(message.to_string())
    )
}

const TARGET_A: &str = r#"{"discoveredLabels":{"__address__":"a:9100","__metrics_path__":"/metrics","__scheme__":"http","__scrape_interval__":"15s","__scrape_timeout__":"10s","job":"node"},"labels":{"instance":"a:9100","job":"node"},"scrapePool":"node","scrapeUrl":"http://a:9100/metrics","globalUrl":"http://a:9100/metrics","lastError":"","lastScrape":"2023-11-14T22:13:20.123Z","lastScrapeDuration":0.003804,"health":"up","scrapeInterval":"15s","scrapeTimeout":"10s"}"#;
const TARGET_B: &str = r#"{"discoveredLabels":{"__address__":"b:9100","__metrics_path__":"/metrics","__scheme__":"http","__scrape_interval__":"15s","__scrape_timeout__":"10s","job":"node"},"labels":{"instance":"b:9100","job":"node"},"scrapePool":"node","scrapeUrl":"http://b:9100/metrics","globalUrl":"http://b:9100/metrics","lastError":"","lastScrape":"0001-01-01T00:00:00Z","lastScrapeDuration":0,"health":"unknown","scrapeInterval":"15s","scrapeTimeout":"10s"}"#;
const TARGET_C: &str = r#"{"discoveredLabels":{"__address__":"c:9090","__metrics_path__":"/metrics","__scheme__":"http","__scrape_interval__":"15s","__scrape_timeout__":"10s","job":"prom"},"labels":{"instance":"c:9090","job":"prom"},"scrapePool":"prom","scrapeUrl":"http://c:9090/metrics","globalUrl":"http://c:9090/metrics","lastError":"connection refused","lastScrape":"2023-11-14T22:13:20Z","lastScrapeDuration":0.002,"health":"down","scrapeInterval":"15s","scrapeTimeout":"10s"}"#;

#[tokio::test]
async fn targets_in_prometheus_shape() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/targets").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"activeTargets":[{TARGET_A},{TARGET_B},{TARGET_C}],"droppedTargets":[]}}}}"#
        )
    );
    let (_, body) = get(&f, "/api/v1/targets?state=Active&scrapePool=prom").await;
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"activeTargets":[{TARGET_C}],"droppedTargets":[]}}}}"#
        )
    );
    for state in ["dropped", "nonsense"] {
        let (status, body) = get(&f, &format!("/api/v1/targets?state={state}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            r#"{"status":"success","data":{"activeTargets":[],"droppedTargets":[]}}"#
        );
    }
}

#[tokio::test]
async fn metadata_merged_limited_and_filtered() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        concat!(
            r#"{"status":"success","data":{"#,
            r#""node_cpu_seconds_total":[{"type":"counter","help":"Seconds the CPUs spent in each mode.","unit":""}],"#,
            r#""up":[{"type":"gauge","help":"Target health.","unit":""},{"type":"gauge","help":"Was the scrape <ok>?","unit":""}]}}"#
        )
    );
    let (_, body) = get(&f, "/api/v1/metadata?metric=up&limit=5").await;
    assert!(
        body.starts_with(r#"{"status":"success","data":{"up":[{"type":"gauge""#),
        "{body}"
    );
    let (_, body) = get(&f, "/api/v1/metadata?limit=1").await;
    assert!(
        body.contains("node_cpu_seconds_total") && !body.contains(r#""up""#),
        "{body}"
    );
    for (uri, expected) in [
        (
            "/api/v1/metadata?limit=0",
            r#"{"status":"success","data":{}}"#,
        ),
        (
            "/api/v1/metadata?metric=nope",
            r#"{"status":"success","data":{}}"#,
        ),
    ] {
        assert_eq!(get(&f, uri).await.1, expected, "{uri}");
    }
    let (_, body) = get(&f, "/api/v1/metadata?limit=-1").await;
    assert!(body.contains(r#""up""#), "{body}");
    let (status, body) = get(&f, "/api/v1/metadata?limit=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, bad_data("limit must be a number"));
}

#[tokio::test]
async fn exemplars_are_validated_then_empty() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/query_exemplars?query=up&start=1&end=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    let (status, body) = post_form(&f, "/api/v1/query_exemplars", "query=rate(up%5B5m%5D)").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
    // No selector: Prometheus answers 204 with no body.
    let (status, body) = get(&f, "/api/v1/query_exemplars?query=1").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, "");
    for (uri, message) in [
        (
            "/api/v1/query_exemplars",
            "1:1: parse error: no expression found in input",
        ),
        (
            "/api/v1/query_exemplars?query=up&start=5&end=1",
            "end timestamp must not be before start timestamp",
        ),
        (
            "/api/v1/query_exemplars?query=up&start=x",
            r#"invalid parameter "start": Invalid time value for 'start': cannot parse "x" to a valid timestamp"#,
        ),
    ] {
        let (status, body) = get(&f, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body, bad_data(message), "{uri}");
    }
    let (status, body) = get(&f, "/api/v1/query_exemplars?query=up(").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("parse error"), "{body}");
}

#[tokio::test]
async fn config_is_shown_with_secrets_masked() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/status/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"yaml":"scrape_configs:\n- job_name: node\n  basic_auth:\n    username: u\n    password: \u003csecret\u003e\n  static_configs:\n  - targets:\n    - a:9100\n"}}"#
    );
    // A reload replaces it; a refused reload keeps it and is reported.
    f.state
        .status
        .config_loaded("global:\n  scrape_interval: 5s\n");
    let (_, body) = get(&f, "/api/v1/status/config").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"yaml":"global:\n  scrape_interval: 5s\n"}}"#
    );
    f.state.status.config_refused();
    let (_, body) = get(&f, "/api/v1/status/runtimeinfo").await;
    assert!(body.contains(r#""reloadConfigSuccess":false"#), "{body}");
}

#[tokio::test]
async fn flags_and_runtime_info() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/status/flags").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"config":"/etc/bellwether.yml","data-dir":"/var/lib/bw"}}"#
    );
    let (status, body) = get(&f, "/api/v1/status/runtimeinfo").await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let data = &value["data"];
    // Prometheus's field order.
    let positions: Vec<Option<usize>> = [
        "status",
        "data",
        "startTime",
        "CWD",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOGC",
        "GODEBUG",
        "storageRetention",
    ]
    .iter()
    .map(|key| body.find(&format!("\"{key}\":")))
    .collect();
    assert!(positions.iter().all(Option::is_some), "{body}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");
    assert_eq!(data["reloadConfigSuccess"], true);
    assert_eq!(data["corruptionCount"], 0);
    assert_eq!(data["storageRetention"], "15d or 512MiB");
    assert_eq!(data["GOGC"], "");
    assert!(
        data["startTime"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert!(
        data["lastConfigTime"]
            .as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "whole seconds: {body}"
    );
    assert!(
        data["GOMAXPROCS"].as_u64().is_some_and(|n| n >= 1),
        "{body}"
    );
}

#[tokio::test]
async fn wal_replay_status_has_prometheus_shape() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/status/walreplay").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        r#"{"status":"success","data":{"min":0,"max":0,"current":0}}"#
    );
}

#[tokio::test]
async fn tsdb_status_from_the_store() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v1/status/tsdb").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        concat!(
            r#"{"status":"success","data":{"#,
            r#""headStats":{"numSeries":3,"numLabelPairs":7,"chunkCount":3,"minTime":1700000000000,"maxTime":1700000015000},"#,
            r#""seriesCountByMetricName":[{"name":"up","value":2},{"name":"node_cpu_seconds_total","value":1}],"#,
            r#""labelValueCountByLabelName":[{"name":"__name__","value":2},{"name":"instance","value":2},{"name":"job","value":2},{"name":"mode","value":1}],"#,
            r#""memoryInBytesByLabelName":[{"name":"__name__","value":24},{"name":"instance","value":12},{"name":"job","value":8},{"name":"mode","value":4}],"#,
            r#""seriesCountByLabelValuePair":[{"name":"__name__=up","value":2},{"name":"job=node","value":2},{"name":"__name__=node_cpu_seconds_total","value":1},{"name":"instance=a:9100","value":1},{"name":"instance=c:9090","value":1},{"name":"job=prom","value":1},{"name":"mode=idle","value":1}]}}"#
        )
    );
}

#[tokio::test]
async fn tsdb_status_of_an_empty_store_is_prometheus_empty_head() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(StorageOptions::new(dir.path())).expect("opening the store");
    let f = Fixture {
        _dir: dir,
        state: super::test_state(storage),
    };
    let (_, body) = get(&f, "/api/v1/status/tsdb").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"headStats":{"numSeries":0,"numLabelPairs":0,"chunkCount":0,"minTime":9223372036854775807,"maxTime":-9223372036854775808},"seriesCountByMetricName":[],"labelValueCountByLabelName":[],"memoryInBytesByLabelName":[],"seriesCountByLabelValuePair":[]}}"#
    );
}

#[tokio::test]
async fn rules_and_alerts_are_empty_without_rule_files() {
    let f = fixture();
    for (uri, expected) in [
        (
            "/api/v1/rules",
            r#"{"status":"success","data":{"groups":[]}}"#,
        ),
        (
            "/api/v1/rules?type=ALERT",
            r#"{"status":"success","data":{"groups":[]}}"#,
        ),
        (
            "/api/v1/rules?type=record",
            r#"{"status":"success","data":{"groups":[]}}"#,
        ),
        (
            "/api/v1/alerts",
            r#"{"status":"success","data":{"alerts":[]}}"#,
        ),
    ] {
        let (status, body) = get(&f, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(body, expected, "{uri}");
    }
    let (status, body) = get(&f, "/api/v1/rules?type=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        bad_data(r#"invalid parameter "type": not supported value "x""#)
    );
}

#[tokio::test]
async fn status_endpoints_are_get_only_like_prometheus() {
    let f = fixture();
    for uri in [
        "/api/v1/metadata",
        "/api/v1/targets",
        "/api/v1/status/config",
        "/api/v1/status/flags",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/tsdb",
        "/api/v1/rules",
        "/api/v1/alerts",
    ] {
        let (status, _) = post_form(&f, uri, "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
    }
}

/// What Grafana's Prometheus data source sends: "Save & test" (an instant
/// `1+1`, GET or form POST depending on the data source's HTTP method), the
/// metric browser (labels, `__name__` values, series with `match[]`, all with
/// start/end in Unix seconds), metadata for the query editor's hints, and
/// buildinfo for feature detection.
#[tokio::test]
async fn grafana_data_source_requests() {
    let f = fixture();
    let range = "start=1699999900&end=1700000100";

    // Save & test.
    let expected =
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}}"#;
    let (status, body) = get(&f, "/api/v1/query?query=1%2B1&time=1700000000").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
    let (status, body) = post_form(&f, "/api/v1/query", "query=1%2B1&time=1700000000").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));

    // Metric browser: label names.
    let expected = r#"{"status":"success","data":["__name__","instance","job","mode"]}"#;
    let (status, body) = get(&f, &format!("/api/v1/labels?{range}")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
    let (status, body) = post_form(&f, "/api/v1/labels", range).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));

    // Metric names (GET only in Prometheus 2.42, so Grafana uses GET).
    let (status, body) = get(&f, &format!("/api/v1/label/__name__/values?{range}")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            r#"{"status":"success","data":["node_cpu_seconds_total","up"]}"#
        )
    );

    // Series of a chosen metric, with a label filter.
    let expected =
        r#"{"status":"success","data":[{"__name__":"up","instance":"a:9100","job":"node"}]}"#;
    let selector = "match%5B%5D=up%7Bjob%3D%22node%22%7D";
    let (status, body) = get(&f, &format!("/api/v1/series?{selector}&{range}")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
    let (status, body) = post_form(&f, "/api/v1/series", &format!("{selector}&{range}")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, expected));

    // Metadata for the query editor.
    let (status, body) = get(&f, "/api/v1/metadata").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.starts_with(
            r#"{"status":"success","data":{"node_cpu_seconds_total":[{"type":"counter","#
        ),
        "{body}"
    );

    // Feature detection.
    let (status, body) = get(&f, "/api/v1/status/buildinfo").await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(value["status"], "success");
    assert_eq!(value["data"]["version"], crate::VERSION);
    assert!(
        body.starts_with(r#"{"status":"success","data":{"version":"#),
        "{body}"
    );
}
