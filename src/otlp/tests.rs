use std::io::Write;

use axum::http::{header, HeaderMap, HeaderValue};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};

use super::metrics::{label_name, metric_name, translate, Kind};
use super::traces::usage_records;
use super::*;
use crate::model::{is_stale_nan, Labels};

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}

fn i(k: &str, v: i64) -> KeyValue {
    kv(k, any_value::Value::IntValue(v))
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            s("service.name", "chat"),
            s("service.namespace", "shop"),
            s("service.instance.id", "pod-1"),
            s("host.name", "node-a"),
        ],
        ..Default::default()
    })
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn number(v: f64, t_ms: u64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn find<'a>(
    samples: &'a [(Labels, i64, f64)],
    want: &[(&str, &str)],
) -> Vec<&'a (Labels, i64, f64)> {
    samples
        .iter()
        .filter(|(l, _, _)| want.iter().all(|(k, v)| l.get(k) == Some(*v)))
        .collect()
}

#[test]
fn names_follow_prometheus_translation() {
    for (name, unit, kind, want) in [
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            "http_server_request_duration_seconds",
        ),
        (
            "system.network.io",
            "By",
            Kind::Counter,
            "system_network_io_bytes_total",
        ),
        ("requests.total", "1", Kind::Counter, "requests_total"),
        ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
        (
            "gen_ai.client.token.usage",
            "{token}",
            Kind::Histogram,
            "gen_ai_client_token_usage",
        ),
        (
            "gen_ai.client.operation.duration",
            "s",
            Kind::Histogram,
            "gen_ai_client_operation_duration_seconds",
        ),
        (
            "queue.latency_seconds",
            "s",
            Kind::Gauge,
            "queue_latency_seconds",
        ),
        (
            "throughput",
            "By/s",
            Kind::Gauge,
            "throughput_bytes_per_second",
        ),
        ("2xx.count", "", Kind::Counter, "_2xx_count_total"),
        ("weird--name..x", "", Kind::Gauge, "weird_name_x"),
    ] {
        assert_eq!(metric_name(name, unit, kind), want, "{name} {unit}");
    }
    for (attribute, want) in [
        ("http.response.status_code", "http_response_status_code"),
        ("2fa", "key_2fa"),
        ("_private", "key_private"),
        ("__reserved", "__reserved"),
    ] {
        assert_eq!(label_name(attribute), want);
    }
}

#[test]
fn gauges_sums_and_resource_labels() {
    let req = request(vec![
        metric(
            "queue.size",
            "{item}",
            metric::Data::Gauge(Gauge {
                data_points: vec![number(3.0, 1_000, vec![s("queue.name", "a")])],
            }),
        ),
        metric(
            "http.requests",
            "",
            metric::Data::Sum(Sum {
                data_points: vec![number(7.0, 2_000, vec![i("http.status_code", 200)])],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        ),
        metric(
            "delta.things",
            "",
            metric::Data::Sum(Sum {
                data_points: vec![number(1.0, 2_000, vec![]), number(1.0, 3_000, vec![])],
                aggregation_temporality: 1,
                is_monotonic: true,
            }),
        ),
    ]);
    let t = translate(&req, 99);
    assert_eq!(t.points, 4);
    assert_eq!(t.rejected, 2);
    assert!(
        t.messages[0].contains("delta temporality"),
        "{:?}",
        t.messages
    );
    let q = find(
        &t.samples,
        &[
            ("__name__", "queue_size"),
            ("queue_name", "a"),
            ("job", "shop/chat"),
            ("instance", "pod-1"),
        ],
    );
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].1, q[0].2), (1_000, 3.0));
    let c = find(
        &t.samples,
        &[
            ("__name__", "http_requests_total"),
            ("http_status_code", "200"),
        ],
    );
    assert_eq!(c.len(), 1);
    let info = find(
        &t.samples,
        &[
            ("__name__", "target_info"),
            ("host_name", "node-a"),
            ("job", "shop/chat"),
        ],
    );
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].1, 2_000,
        "target_info takes the newest point's time"
    );
    assert!(find(&t.samples, &[("__name__", "delta_things_total")]).is_empty());
}

#[test]
fn histograms_become_classic_buckets_and_exponential_are_refused() {
    let req = request(vec![
        metric(
            "gen_ai.client.token.usage",
            "{token}",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![
                        s("gen_ai.system", "openai"),
                        s("gen_ai.token.type", "prompt"),
                    ],
                    time_unix_nano: 5_000_000_000,
                    count: 3,
                    sum: Some(600.0),
                    bucket_counts: vec![1, 2, 0],
                    explicit_bounds: vec![100.0, 1000.0],
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "bad.hist",
            "",
            metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 1,
                    bucket_counts: vec![1],
                    explicit_bounds: vec![1.0, 2.0],
                    flags: 0,
                    ..Default::default()
                }],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "exp.hist",
            "s",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint::default()],
                aggregation_temporality: 2,
            }),
        ),
    ]);
    let t = translate(&req, 0);
    assert_eq!(t.points, 3);
    assert_eq!(t.rejected, 2);
    let base = [
        ("gen_ai_provider_name", "openai"),
        ("gen_ai_token_type", "input"),
    ];
    let bucket = |le: &str| {
        let mut want = base.to_vec();
        want.push(("__name__", "gen_ai_client_token_usage_bucket"));
        want.push(("le", le));
        let f = find(&t.samples, &want);
        assert_eq!(f.len(), 1, "le={le}");
        f[0].2
    };
    assert_eq!(bucket("100"), 1.0);
    assert_eq!(bucket("1000"), 3.0);
    assert_eq!(bucket("+Inf"), 3.0);
    let sum = find(&t.samples, &[("__name__", "gen_ai_client_token_usage_sum")]);
    assert_eq!((sum[0].1, sum[0].2), (5_000, 600.0));
    assert_eq!(
        find(
            &t.samples,
            &[("__name__", "gen_ai_client_token_usage_count")]
        )[0]
        .2,
        3.0
    );
    assert!(
        t.messages.iter().any(|m| m.contains("exponential")),
        "{:?}",
        t.messages
    );
    assert!(
        t.messages.iter().any(|m| m.contains("bucket counts")),
        "{:?}",
        t.messages
    );
}

#[test]
fn no_recorded_value_is_a_stale_marker() {
    let mut p = number(1.0, 1_000, vec![]);
    p.flags = 1;
    let t = translate(
        &request(vec![metric(
            "g",
            "",
            metric::Data::Gauge(Gauge {
                data_points: vec![p],
            }),
        )]),
        0,
    );
    assert!(is_stale_nan(find(&t.samples, &[("__name__", "g")])[0].2));
}

fn span(name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        name: name.into(),
        start_time_unix_nano: 1_000_000_000_000,
        end_time_unix_nano: 1_002_500_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", "agent"), s("user.id", "u-resource")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn genai_spans_become_usage_records() {
    let mut failed = span(
        "chat claude",
        vec![
            s("gen_ai.system", "anthropic"),
            s("gen_ai.request.model", "claude-sonnet-4"),
            i("gen_ai.usage.prompt_tokens", 10),
            i("gen_ai.usage.completion_tokens", 2),
        ],
    );
    failed.status = Some(Status {
        code: status::StatusCode::Error as i32,
        ..Default::default()
    });
    let req = traces(vec![
        span(
            "chat gpt-4o",
            vec![
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "gpt-4o"),
                s("gen_ai.response.model", "gpt-4o-2024-08-06"),
                i("gen_ai.usage.input_tokens", 1000),
                i("gen_ai.usage.output_tokens", 200),
                i("gen_ai.usage.cache_read.input_tokens", 400),
                i("gen_ai.usage.reasoning.output_tokens", 50),
                s("gen_ai.agent.name", "planner"),
                s("session.id", "s1"),
            ],
        ),
        span("GET /", vec![s("http.method", "GET")]),
        failed,
        span(
            "negative",
            vec![
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "m"),
                i("gen_ai.usage.input_tokens", -5),
            ],
        ),
        span(
            "wrong type",
            vec![
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "m"),
                kv(
                    "gen_ai.usage.output_tokens",
                    any_value::Value::BoolValue(true),
                ),
            ],
        ),
        span(
            "no model",
            vec![
                s("gen_ai.provider.name", "openai"),
                i("gen_ai.usage.input_tokens", 5),
            ],
        ),
        span(
            "cache over input",
            vec![
                s("gen_ai.provider.name", "openai"),
                s("gen_ai.request.model", "m"),
                i("gen_ai.usage.input_tokens", 5),
                i("gen_ai.usage.cache_read.input_tokens", 6),
            ],
        ),
    ]);
    let u = usage_records(&req, 2_000_000);
    assert_eq!(u.spans, 7);
    assert_eq!(u.records.len(), 2);
    let (idx, r) = &u.records[0];
    assert_eq!(*idx, 0);
    assert_eq!(
        (r.provider.as_str(), r.model.as_str()),
        ("openai", "gpt-4o-2024-08-06")
    );
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.reasoning_tokens
        ),
        (1000, 200, 400, 50)
    );
    assert_eq!(r.agent.as_deref(), Some("planner"));
    assert_eq!(r.session.as_deref(), Some("s1"));
    assert_eq!(
        r.user.as_deref(),
        Some("u-resource"),
        "attributes fall back to the resource"
    );
    assert_eq!(r.duration_seconds, Some(2.5));
    assert_eq!(r.timestamp, Some(1_002_500));
    assert_eq!(r.status.as_deref(), Some("ok"));
    let (idx, r) = &u.records[1];
    assert_eq!(*idx, 2);
    assert_eq!(
        (r.provider.as_str(), r.input_tokens, r.output_tokens),
        ("anthropic", 10, 2)
    );
    assert_eq!(r.status.as_deref(), Some("error"));
    let fields: Vec<(usize, &str)> = u
        .errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        vec![
            (3, "gen_ai.usage.input_tokens"),
            (4, "gen_ai.usage.output_tokens"),
            (5, "gen_ai.request.model"),
            (6, "gen_ai.usage.cache_read.input_tokens"),
        ]
    );
    assert!(
        u.errors[0].error.contains("negative"),
        "{}",
        u.errors[0].error
    );
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
    }
    h
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn content_types_and_gzip_limits() {
    assert_eq!(
        encoding(&headers(&[(
            header::CONTENT_TYPE,
            "application/x-protobuf"
        )])),
        Some(Encoding::Protobuf)
    );
    assert_eq!(
        encoding(&headers(&[(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8"
        )])),
        Some(Encoding::Json)
    );
    assert_eq!(
        encoding(&headers(&[(header::CONTENT_TYPE, "text/plain")])),
        None
    );
    assert_eq!(encoding(&HeaderMap::new()), None);

    let h = headers(&[(header::CONTENT_ENCODING, "gzip")]);
    assert_eq!(content_encoding(&h), Some("gzip"));
    let gz = Some("gzip");
    assert_eq!(&*decompress(gz, &gzip(b"hello"), 5).unwrap(), b"hello");
    assert!(matches!(
        decompress(None, b"plain", 100),
        Ok(std::borrow::Cow::Borrowed(b"plain"))
    ));
    // A bomb: 10 MB of zeros compress to ~10 kB; inflation stops at the cap.
    let bomb = gzip(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 100_000);
    assert_eq!(
        decompress(gz, &bomb, 1 << 20),
        Err(BodyError::TooLarge(1 << 20))
    );
    assert!(matches!(
        decompress(gz, b"not gzip at all", 100),
        Err(BodyError::Corrupt(_))
    ));
    let mut truncated = gzip(b"hello world, hello world");
    truncated.truncate(truncated.len() - 6);
    assert!(matches!(
        decompress(gz, &truncated, 100),
        Err(BodyError::Corrupt(_))
    ));
    assert!(matches!(
        decompress(Some("br"), b"x", 100),
        Err(BodyError::UnsupportedEncoding(_))
    ));
}

#[test]
fn otlp_json_mapping() {
    // lowerCamelCase, int64 as strings and numbers, hex ids, unknown fields.
    let body = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeMetrics":[{"scope":{"name":"x"},"metrics":[
        {"name":"a.count","unit":"1","futureField":1,"sum":{"aggregationTemporality":2,"isMonotonic":true,
          "dataPoints":[{"asInt":"42","timeUnixNano":"1700000000000000000","attributes":[{"key":"k","value":{"intValue":"7"}}]}]}},
        {"name":"b","gauge":{"dataPoints":[{"asDouble":1.5,"timeUnixNano":1700000000000000000}]}},
        {"name":"h","unit":"s","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":2.0,
          "bucketCounts":["1","2"],"explicitBounds":[0.5],"timeUnixNano":"1700000000000000000"}]}}
      ]}]}]}"#;
    let req: ExportMetricsServiceRequest = decode(body.as_bytes(), Encoding::Json).unwrap();
    let t = translate(&req, 0);
    assert_eq!(t.rejected, 0, "{:?}", t.messages);
    let a = find(
        &t.samples,
        &[("__name__", "a_count_total"), ("k", "7"), ("job", "svc")],
    );
    assert_eq!((a[0].1, a[0].2), (1_700_000_000_000, 42.0));
    assert_eq!(find(&t.samples, &[("__name__", "b")])[0].2, 1.5);
    assert_eq!(
        find(
            &t.samples,
            &[("__name__", "h_seconds_bucket"), ("le", "0.5")]
        )[0]
        .2,
        1.0
    );

    let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
      "spanId":"eee19b7ec3c1b174","name":"chat","kind":3,"startTimeUnixNano":"1700000000000000000",
      "endTimeUnixNano":"1700000001000000000","status":{"code":2},
      "attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
        {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
        {"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}},
        {"key":"gen_ai.usage.output_tokens","value":{"intValue":3}}]}]}]}]}"#;
    let req: ExportTraceServiceRequest = decode(spans.as_bytes(), Encoding::Json).unwrap();
    let u = usage_records(&req, 1_800_000_000_000);
    assert_eq!(u.records.len(), 1);
    assert_eq!(
        (u.records[0].1.input_tokens, u.records[0].1.output_tokens),
        (12, 3)
    );
    assert_eq!(u.records[0].1.status.as_deref(), Some("error"));

    for bad in [&b"{"[..], b"[]", br#"{"resourceMetrics":"x"}"#] {
        assert!(decode::<ExportMetricsServiceRequest>(bad, Encoding::Json).is_err());
    }
    assert!(decode::<ExportMetricsServiceRequest>(b"\xff\xff\xff", Encoding::Protobuf).is_err());
}
