//! OTLP/HTTP end to end: the real OpenTelemetry Python SDK
//! (opentelemetry-sdk + opentelemetry-exporter-otlp-proto-http, installed by
//! scripts/test.sh into a venv) exports GenAI metrics and spans to the real
//! binary; the series are read back through `/api/v1/query` and the cost
//! through `/api/v1/usage/summary`. Then a hand-written OTLP/JSON request and
//! the error answers (wrong content type, corrupt gzip, gzip bomb, bad spans),
//! and the OTLP-only listener of `web.otlp_listen_address`.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::llm_usage::wait_value;
use crate::util::{client, free_port, metric_value, wait_for, TestDaemon};

const CONFIG: &str = "\
web:
  write_token: s3cret
  max_request_body: 1048576
llm:
  interval: 1s
  flush_interval: 200ms
";

const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

/// The venv's python: `BELLWETHER_OTEL_PYTHON`, else scripts/test.sh's venv.
fn python() -> PathBuf {
    std::env::var_os("BELLWETHER_OTEL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/bellwether-test-venv/bin/python"))
}

const SDK_SCRIPT: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind

base = sys.argv[1]
headers = {"Authorization": "Bearer s3cret"}
resource = Resource.create({"service.name": "support-bot", "service.instance.id": "pod-7"})

reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=base + "/v1/metrics", headers=headers), export_interval_millis=600000)
meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
meter = meter_provider.get_meter("genai-test")
tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
# An older instrumentation: gen_ai.system and token type "prompt".
tokens.record(1000, {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.token.type": "prompt", "gen_ai.operation.name": "chat"})
tokens.record(200, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.token.type": "output", "gen_ai.operation.name": "chat"})
duration.record(1.5, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat"})
meter_provider.force_flush()
meter_provider.shutdown()

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=base + "/v1/traces", headers=headers)))
tracer = tracer_provider.get_tracer("genai-test")
with tracer.start_as_current_span("invoke_agent planner", attributes={"gen_ai.agent.name": "planner"}):
    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
        "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
        "gen_ai.agent.name": "planner", "user.id": "alice", "session.id": "s-1"}):
        pass
tracer_provider.shutdown()
print("exported")
"#;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn python_sdk_genai_metrics_and_spans() {
    let daemon = TestDaemon::start(CONFIG);
    let out = Command::new(python())
        .args(["-c", SDK_SCRIPT, &daemon.url("")])
        .output()
        .unwrap_or_else(|e| panic!("running {:?} (scripts/test.sh installs it): {e}", python()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("exported"),
        "the SDK script failed: {stderr}\n{}",
        daemon.log()
    );
    // The SDK logs failed exports instead of failing.
    assert!(!stderr.contains("Failed to export"), "{stderr}");

    // Metrics, translated; the deprecated gen_ai.system and "prompt" read as the current names.
    wait_value(
        &daemon,
        r#"gen_ai_client_token_usage_sum{job="support-bot",instance="pod-7",gen_ai_provider_name="openai",gen_ai_token_type="input"}"#,
        1000.0,
    );
    wait_value(
        &daemon,
        r#"gen_ai_client_token_usage_count{gen_ai_token_type="output",gen_ai_request_model="gpt-4o"}"#,
        1.0,
    );
    wait_value(
        &daemon,
        r#"gen_ai_client_operation_duration_seconds_bucket{le="+Inf",gen_ai_operation_name="chat"}"#,
        1.0,
    );
    wait_value(&daemon, r#"count(target_info{job="support-bot"})"#, 1.0);

    // The span with usage, priced once: the metrics do not feed llm_* (no double count).
    wait_value(
        &daemon,
        r#"llm_tokens_total{provider="openai",model="gpt-4o",type="input"}"#,
        1000.0,
    );
    wait_value(
        &daemon,
        r#"llm_tokens_total{provider="openai",model="gpt-4o",type="output"}"#,
        200.0,
    );
    wait_value(
        &daemon,
        r#"sum(llm_requests_total{model="gpt-4o",status="ok"})"#,
        1.0,
    );
    let ok = wait_for(Duration::from_secs(10), || {
        daemon.get_json("/api/v1/usage/summary?window=1h", 200)["data"]["requests"] == 1
    });
    assert!(ok, "{}", daemon.log());
    let summary = daemon.get_json("/api/v1/usage/summary?window=1h", 200);
    // gpt-4o list price: 1000 × $2.50/M + 200 × $10/M = $0.0045.
    assert_eq!(summary["data"]["cost_micro_usd"], 4_500, "{summary}");
    assert_eq!(summary["data"]["users"], 1, "{summary}");
}

#[test]
fn json_requests_and_bad_input() {
    let daemon = TestDaemon::start(CONFIG);
    let post = |path: &str, ct: &str, body: Vec<u8>, extra: &[(&str, &str)]| {
        let mut headers = vec![AUTH];
        headers.extend_from_slice(extra);
        daemon.post(path, ct, body, &headers)
    };
    let spans = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bot"}}]},
      "scopeSpans":[{"spans":[
       {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat","kind":3,
        "startTimeUnixNano":"1","endTimeUnixNano":"1000000001","unknownField":{"x":1},
        "attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
          {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
          {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1000"}},
          {"key":"gen_ai.usage.output_tokens","value":{"intValue":200}}]},
       {"name":"negative","attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
          {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
          {"key":"gen_ai.usage.input_tokens","value":{"intValue":"-5"}}]},
       {"name":"wrong type","attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
          {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
          {"key":"gen_ai.usage.input_tokens","value":{"stringValue":"lots"}}]},
       {"name":"unknown provider","attributes":[{"key":"gen_ai.provider.name","value":{"stringValue":"acme-llm"}},
          {"key":"gen_ai.request.model","value":{"stringValue":"acme-1"}},
          {"key":"gen_ai.usage.input_tokens","value":{"intValue":"10"}},
          {"key":"gen_ai.usage.output_tokens","value":{"intValue":"1"}}]}]}]}]}"#;
    let (status, body) = post(
        "/v1/traces",
        "application/json",
        spans.as_bytes().to_vec(),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "2", "{answer}");
    let message = answer["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap_or("");
    assert!(message.contains("must not be negative"), "{message}");
    // The good span and the unknown provider's (unpriced) are kept.
    wait_value(
        &daemon,
        r#"llm_tokens_total{model="gpt-4o",type="input"}"#,
        1000.0,
    );
    wait_value(
        &daemon,
        r#"sum(llm_unpriced_requests_total{model="acme-1"})"#,
        1.0,
    );

    // Gzip JSON metrics: a delta sum refused with partial_success, the gauge kept.
    let metrics = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
      {"name":"queue.depth","gauge":{"dataPoints":[{"asInt":"7"}]}},
      {"name":"jobs","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"asInt":"1"}]}}]}]}]}"#;
    let (status, body) = post(
        "/v1/metrics",
        "application/json",
        gzip(metrics.as_bytes()),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""rejectedDataPoints":"1""#), "{body}");
    wait_value(&daemon, "queue_depth", 7.0);

    // Wrong content type: 415. Corrupt gzip, bad JSON: 400 with a google.rpc.Status.
    let (status, _) = post("/v1/metrics", "text/plain", b"x".to_vec(), &[]);
    assert_eq!(status, 415);
    let (status, body) = post(
        "/v1/metrics",
        "application/json",
        b"\x1f\x8b\x08\x00garbage".to_vec(),
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 400, "{body}");
    let status_body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status_body["code"], 3, "{body}");
    let (status, _) = post(
        "/v1/traces",
        "application/json",
        b"{\"resourceSpans\":".to_vec(),
        &[],
    );
    assert_eq!(status, 400);
    let (status, _) = post(
        "/v1/traces",
        "application/x-protobuf",
        b"\xff\xff\xff\xff".to_vec(),
        &[],
    );
    assert_eq!(status, 400);
    // A gzip bomb: 20 MB of zeros in ~20 kB, over the 1 MiB cap once inflated.
    let bomb = gzip(&vec![0u8; 20 << 20]);
    let (status, body) = post(
        "/v1/metrics",
        "application/x-protobuf",
        bomb,
        &[("Content-Encoding", "gzip")],
    );
    assert_eq!(status, 413, "{body}");
    // The write token applies.
    let (status, _) = daemon.post("/v1/metrics", "application/json", b"{}".to_vec(), &[]);
    assert_eq!(status, 401);

    let (_, exposition) = daemon.get("/metrics");
    let count = |labels: &str| {
        metric_value(
            &exposition,
            &format!("bellwether_otlp_requests_total{{{labels}}}"),
        )
    };
    assert_eq!(
        count(r#"signal="metrics",outcome="unsupported_media_type""#),
        Some(1.0)
    );
    assert_eq!(count(r#"signal="metrics",outcome="malformed""#), Some(1.0));
    assert_eq!(count(r#"signal="metrics",outcome="too_large""#), Some(1.0));
    assert_eq!(count(r#"signal="traces",outcome="partial""#), Some(1.0));
    assert_eq!(
        metric_value(
            &exposition,
            r#"bellwether_otlp_rejected_total{signal="traces"}"#
        ),
        Some(2.0)
    );
}

/// `web.otlp_listen_address`: a second port that serves the OTLP receiver
/// (same token and limits) and nothing else; the series it receives are
/// queried on the main port.
#[test]
fn separate_otlp_listener() {
    let otlp_port = free_port();
    // CONFIG's `web:` section is its first; the key goes into it.
    let config = CONFIG.replacen(
        "web:\n",
        &format!("web:\n  otlp_listen_address: 127.0.0.1:{otlp_port}\n"),
        1,
    );
    let daemon = TestDaemon::start(&config);
    let otlp = format!("http://127.0.0.1:{otlp_port}");
    let post = |path: &str, body: Vec<u8>, headers: &[(&str, &str)]| {
        daemon.post_to(&format!("{otlp}{path}"), "application/json", body, headers)
    };
    let gauge = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
      {"name":"otlp.port.check","gauge":{"dataPoints":[{"asDouble":4318}]}}]}]}]}"#;
    let (status, body) = post("/v1/metrics", gauge.to_vec(), &[AUTH]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "{}");
    wait_value(&daemon, "otlp_port_check", 4318.0);
    // Spans become usage there too.
    let spans = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"chat","attributes":[
      {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
      {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
      {"key":"gen_ai.usage.input_tokens","value":{"intValue":"1000000"}},
      {"key":"gen_ai.usage.output_tokens","value":{"intValue":"0"}}]}]}]}]}"#;
    let (status, body) = post("/v1/traces", spans.to_vec(), &[AUTH]);
    assert_eq!(status, 200, "{body}");
    wait_value(&daemon, r#"llm_cost_usd_total{model="gpt-4o"}"#, 2.5);

    // The same token, size cap and answers as on the main port.
    let (status, _) = post("/v1/metrics", gauge.to_vec(), &[]);
    assert_eq!(status, 401);
    let (status, _) = post("/v1/metrics", vec![b' '; 2 << 20], &[AUTH]);
    assert_eq!(status, 413);
    let (status, body) = post("/v1/metrics", b"[]".to_vec(), &[AUTH]);
    assert_eq!(status, 400, "{body}");

    // Nothing else is served there.
    let get = |path: &str| {
        client()
            .get(format!("{otlp}{path}"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("GET {otlp}{path}: {e}"))
    };
    assert_eq!(get("/api/v1/query?query=otlp_port_check"), 404);
    assert_eq!(get("/metrics"), 404);
    assert_eq!(get("/v1/metrics"), 405);
    // The main port still serves OTLP.
    let (status, body) = daemon.post("/v1/metrics", "application/json", gauge.to_vec(), &[AUTH]);
    assert_eq!(status, 200, "{body}");
}

/// An OTLP address that cannot be bound refuses the start, naming the key.
#[test]
fn otlp_listener_that_cannot_bind_refuses_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let taken_port = taken.local_addr().expect("local address").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bellwether.yml");
    std::fs::write(
        &config,
        format!("web:\n  otlp_listen_address: 127.0.0.1:{taken_port}\n"),
    )
    .expect("writing the config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting bellwether");
    let exited = wait_for(Duration::from_secs(30), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
        panic!("bellwether started although its OTLP port was taken");
    }
    let output = child.wait_with_output().expect("its output");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{taken_port} (web.otlp_listen_address)"
        )) && stderr.contains("in use"),
        "{stderr}"
    );
    // Nothing was created: the bind comes before the store is opened.
    assert!(!dir.path().join("data").exists());
    drop(taken);
}
