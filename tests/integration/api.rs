//! The HTTP API of the real binary: push with remote_write (write token
//! configured), read back through the metadata endpoints by GET and form POST,
//! and the receiver's counters on `/metrics`.

use bellwether::ingest::remote_write::proto;
use prost::Message;

use crate::util::{metric_value, TestDaemon};

const CONFIG: &str = "
global:
  scrape_interval: 1m
web:
  write_token: integration-token
";

/// One series to push: its labels and one sample (timestamp in ms, value).
type PushedSeries<'a> = (&'a [(&'a str, &'a str)], i64, f64);

fn write_body(series: &[PushedSeries]) -> Vec<u8> {
    let request = proto::WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, t, v)| proto::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| proto::Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: vec![proto::Sample {
                    value: *v,
                    timestamp: *t,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("compressing")
}

#[test]
fn remote_write_then_metadata_endpoints_over_http() {
    let mut daemon = TestDaemon::start(CONFIG);
    // A minute ago: inside the retention window the store enforces on append.
    let t = bellwether::model::now_millis() - 60_000;
    let body = write_body(&[
        (&[("__name__", "api_test_total"), ("env", "prod")], t, 1.0),
        (&[("__name__", "api_test_total"), ("env", "dev")], t, 2.0),
        (&[("__name__", "other_metric"), ("env", "prod")], t, 3.0),
    ]);
    let headers = [
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Write-Version", "0.1.0"),
    ];

    let (status, answer) = daemon.post(
        "/api/v1/write",
        "application/x-protobuf",
        body.clone(),
        &headers,
    );
    assert_eq!(status, 401, "{answer}");

    let mut with_token = headers.to_vec();
    with_token.push(("Authorization", "Bearer integration-token"));
    let (status, answer) =
        daemon.post("/api/v1/write", "application/x-protobuf", body, &with_token);
    assert_eq!(status, 204, "{answer}");

    let (status, answer) = daemon.post(
        "/api/v1/write",
        "application/x-protobuf",
        b"not snappy".to_vec(),
        &with_token,
    );
    assert_eq!(status, 400);
    assert!(answer.starts_with("snappy: corrupt input"), "{answer}");

    let (start, end) = (t / 1000 - 5, t / 1000 + 5);
    let series = daemon.get_json(
        &format!("/api/v1/series?match[]=api_test_total&start={start}&end={end}"),
        200,
    );
    assert_eq!(
        series,
        serde_json::json!({"status": "success", "data": [
            {"__name__": "api_test_total", "env": "dev"},
            {"__name__": "api_test_total", "env": "prod"},
        ]})
    );
    let (status, answer) = daemon.post(
        "/api/v1/labels",
        "application/x-www-form-urlencoded",
        b"match%5B%5D=%7Benv%3D%22prod%22%7D".to_vec(),
        &[],
    );
    assert_eq!(
        (status, answer.as_str()),
        (200, r#"{"status":"success","data":["__name__","env"]}"#)
    );
    let values = daemon.get_json(
        "/api/v1/label/__name__/values?match[]=%7Benv%3D%22prod%22%7D",
        200,
    );
    assert_eq!(
        values["data"],
        serde_json::json!(["api_test_total", "other_metric"])
    );
    let (status, answer) = daemon.get("/api/v1/series");
    assert_eq!(
        (status, answer.as_str()),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#
        )
    );

    let (_, metrics) = daemon.get("/metrics");
    for (name, want) in [
        (
            "bellwether_remote_write_requests_total{outcome=\"success\"}",
            1.0,
        ),
        (
            "bellwether_remote_write_requests_total{outcome=\"unauthorized\"}",
            1.0,
        ),
        (
            "bellwether_remote_write_requests_total{outcome=\"malformed\"}",
            1.0,
        ),
        ("bellwether_remote_write_samples_received_total", 3.0),
    ] {
        assert_eq!(
            metric_value(&metrics, name),
            Some(want),
            "{name} in:\n{metrics}"
        );
    }
    daemon.stop();
}
