//! OTLP metrics throughput in process: decode an `ExportMetricsServiceRequest`
//! (protobuf), translate it (src/otlp/metrics.rs) and commit its samples to a
//! real store in a temporary directory, as `POST /v1/metrics` does after the
//! HTTP layer. Prints data points per CPU-second of this process (the machine
//! is shared, so wall time would mislead).
//!
//! `cargo run --release --example bench_otlp -- [points_per_request] [requests]`
//!
//! With `--http URL PID [CLIENTS]` it POSTs the same requests to a running
//! daemon's `/v1/metrics` instead (scripts/bench-ingest-http.sh) and prints
//! points per CPU-second of the daemon (pid PID), HTTP layer included.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

#[path = "common/post_bodies.rs"]
mod post_bodies;

use bellwether::otlp::metrics::translate;
use bellwether::storage::{Storage, StorageOptions};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One request: `points` cumulative sum points over 10 metrics, each point a
/// series of the resource `service.instance.id` = `instance`.
fn request(points: usize, instance: usize, t_ms: u64, value: f64) -> Vec<u8> {
    let per_metric = points / 10;
    let metrics = (0..10)
        .map(|m| Metric {
            name: format!("app.requests.{m}"),
            unit: "{request}".into(),
            data: Some(metric::Data::Sum(Sum {
                aggregation_temporality: 2,
                is_monotonic: true,
                data_points: (0..per_metric)
                    .map(|i| NumberDataPoint {
                        attributes: vec![
                            kv("http.route", &format!("/api/{i}")),
                            kv("http.method", "GET"),
                        ],
                        time_unix_nano: t_ms * 1_000_000,
                        value: Some(number_data_point::Value::AsDouble(value)),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "bench"),
                    kv("service.instance.id", &format!("i-{instance}")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn cpu_seconds() -> f64 {
    post_bodies::cpu_of("/proc/self/stat").as_secs_f64()
}

fn main() {
    let args = post_bodies::numbers();
    let points = args.first().copied().unwrap_or(10_000);
    let requests = args.get(1).copied().unwrap_or(100);
    if let Some((url, pid, clients)) = post_bodies::http_args() {
        // Client c sends bodies c, c + clients, … (post_all's split), so
        // each client writes its own series (instance c) in time order:
        // concurrent requests never reach a series out of order.
        let clients = clients.max(1);
        let start_ms = bellwether::model::now_millis() as u64 - 3_600_000;
        let bodies: Vec<Vec<u8>> = (0..requests)
            .map(|r| {
                let step = (r / clients) as u64;
                request(points, r % clients, start_ms + step * 15_000, step as f64)
            })
            .collect();
        let run = post_bodies::post_all(&url, pid, "application/x-protobuf", &bodies, clients);
        let how = format!("{requests} requests of {points}, {clients} clients");
        run.report(&url, "data points", points * requests, &how);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(StorageOptions::new(dir.path())).expect("open store");
    let start_ms = bellwether::model::now_millis() as u64 - 3_600_000;
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|r| request(points, 1, start_ms + r as u64 * 15_000, r as f64))
        .collect();
    let cpu0 = cpu_seconds();
    let wall = std::time::Instant::now();
    let mut stored = 0;
    for body in &bodies {
        let req = ExportMetricsServiceRequest::decode(body.as_slice()).expect("decode");
        let t = translate(&req, 0);
        let mut appender = storage.appender();
        for (labels, ts, v) in t.samples {
            appender.add(labels, ts, v);
        }
        stored += appender.commit().expect("commit").appended;
    }
    let cpu = cpu_seconds() - cpu0;
    let total = points * requests;
    println!(
        "{total} data points ({requests} requests of {points}), {stored} samples stored: {:.2} CPU-s, {:.2} s wall, {:.0} points per CPU-second",
        cpu,
        wall.elapsed().as_secs_f64(),
        total as f64 / cpu.max(0.01)
    );
}
