//! The receiver driven through `router(state).oneshot(..)`: bodies built with
//! the same prost messages a sender would encode, answers checked to the byte.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use prometheus_client::registry::Registry;
use prost::Message;
use tower::ServiceExt;

use super::proto;
use crate::api::AppState;
use crate::storage::{Storage, StorageOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage =
        Storage::open(StorageOptions::for_epoch_fixtures(dir.path())).expect("opening the store");
    let mut state = crate::api::test_state(storage);
    let mut registry = Registry::default();
    state.ingest_metrics.register(&mut registry);
    state.registry = Arc::new(registry);
    Fixture { _dir: dir, state }
}

fn label(name: &str, value: &str) -> proto::Label {
    proto::Label {
        name: name.to_string(),
        value: value.to_string(),
    }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> proto::TimeSeries {
    proto::TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| proto::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn encode(timeseries: Vec<proto::TimeSeries>) -> Vec<u8> {
    let request = proto::WriteRequest {
        timeseries,
        metadata: vec![],
    };
    snappy(&request.encode_to_vec())
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("compressing")
}

/// A request as Prometheus 2.42's remote_write sender makes it.
fn write_request() -> axum::http::request::Builder {
    Request::post("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
}

async fn send(fixture: &Fixture, request: Request<Body>) -> (StatusCode, String) {
    let response = crate::api::router(fixture.state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("reading the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn write(fixture: &Fixture, body: Vec<u8>) -> (StatusCode, String) {
    let request = write_request().body(Body::from(body)).expect("request");
    send(fixture, request).await
}

async fn get(fixture: &Fixture, uri: &str) -> String {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let (status, body) = send(fixture, request).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    body
}

fn stored(fixture: &Fixture, metric: &str) -> Vec<(i64, f64)> {
    let querier = fixture.state.storage.querier(i64::MIN, i64::MAX);
    querier
        .select(&[crate::model::Matcher::equal("__name__", metric)])
        .expect("select")
        .into_iter()
        .flat_map(|s| s.samples)
        .map(|s| (s.t, s.v))
        .collect()
}

#[tokio::test]
async fn valid_request_is_stored_and_readable_through_the_api() {
    let f = fixture();
    let (status, body) = write(
        &f,
        encode(vec![
            // Unsorted labels and an empty value, as a careless sender sends them.
            series(
                &[
                    ("job", "app"),
                    ("__name__", "http_requests_total"),
                    ("zone", ""),
                ],
                &[(1000, 1.0), (2000, 2.0)],
            ),
            series(&[("__name__", "up"), ("job", "app")], &[(1000, 1.0)]),
        ]),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    assert_eq!(
        get(&f, "/api/v1/series?match[]=%7Bjob%3D%22app%22%7D").await,
        r#"{"status":"success","data":[{"__name__":"http_requests_total","job":"app"},{"__name__":"up","job":"app"}]}"#
    );
    assert_eq!(
        stored(&f, "http_requests_total"),
        vec![(1000, 1.0), (2000, 2.0)]
    );
}

#[tokio::test]
async fn bad_snappy_is_400_with_the_problem_named() {
    let f = fixture();
    let (status, body) = write(&f, b"garbage".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("snappy: corrupt input"), "{body}");
    assert!(
        body.ends_with("(the body must be a snappy block-compressed protobuf WriteRequest)\n"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_protobuf_is_400_with_the_problem_named() {
    let f = fixture();
    // Field 1 (timeseries), length-delimited, claiming 100 bytes that are not there.
    let (status, body) = write(&f, snappy(&[0x0a, 100, 1, 2, 3])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.starts_with("decoding the protobuf WriteRequest: failed to decode Protobuf message"),
        "{body}"
    );
}

#[tokio::test]
async fn answers_are_text_plain_like_go_http_error() {
    let f = fixture();
    let request = write_request()
        .body(Body::from("garbage"))
        .expect("request");
    let response = crate::api::router(f.state.clone())
        .oneshot(request)
        .await
        .expect("router answers");
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"text/plain; charset=utf-8"[..])
    );
    assert_eq!(
        response
            .headers()
            .get("x-content-type-options")
            .map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
}

#[tokio::test]
async fn invalid_labels_refuse_their_series_and_keep_the_rest() {
    let f = fixture();
    let (status, body) = write(
        &f,
        encode(vec![
            series(&[("__name__", "good"), ("job", "a")], &[(1000, 1.0)]),
            series(
                &[("__name__", "bad"), ("1job", "a")],
                &[(1000, 1.0), (2000, 1.0)],
            ),
            series(
                &[("__name__", "dup"), ("job", "a"), ("job", "b")],
                &[(1000, 1.0)],
            ),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "invalid label name: 1job in series {\"__name__\"=\"bad\", \"1job\"=\"a\"} \
         (2 series with 3 samples refused for their labels); 1 of 4 samples stored\n"
    );
    assert_eq!(stored(&f, "good"), vec![(1000, 1.0)]);
    assert!(stored(&f, "bad").is_empty() && stored(&f, "dup").is_empty());
}

#[tokio::test]
async fn out_of_order_samples_are_400_and_the_rest_of_the_batch_is_kept() {
    let f = fixture();
    let a = [("__name__", "a")];
    let (status, _) = write(&f, encode(vec![series(&a, &[(2000, 2.0)])])).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = write(
        &f,
        encode(vec![
            series(&a, &[(1000, 1.0), (2000, 2.0), (2000, 9.0), (3000, 3.0)]),
            series(&[("__name__", "b")], &[(1000, 1.0)]),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "out of order sample: 1 samples older than the newest sample of their series; \
         duplicate sample for timestamp: 1 samples with the timestamp of the newest sample \
         of their series but another value; 2 of 5 samples stored\n"
    );
    assert_eq!(stored(&f, "a"), vec![(2000, 2.0), (3000, 3.0)]);
    assert_eq!(stored(&f, "b"), vec![(1000, 1.0)]);

    let metrics = crate::telemetry::render(&f.state.registry);
    for line in [
        "bellwether_remote_write_samples_refused_total{reason=\"out_of_order\"} 1",
        "bellwether_remote_write_samples_refused_total{reason=\"duplicate\"} 1",
        "bellwether_remote_write_samples_received_total 6",
        "bellwether_remote_write_requests_total{outcome=\"success\"} 1",
        "bellwether_remote_write_requests_total{outcome=\"partially_refused\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
}

#[tokio::test]
async fn resent_samples_are_silently_accepted() {
    let f = fixture();
    let body = encode(vec![series(&[("__name__", "a")], &[(1000, 1.0)])]);
    assert_eq!(write(&f, body.clone()).await.0, StatusCode::NO_CONTENT);
    assert_eq!(write(&f, body).await.0, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn native_histograms_are_refused_and_counted_floats_kept() {
    let f = fixture();
    let mut with_histogram = series(&[("__name__", "h")], &[]);
    with_histogram.histograms = vec![proto::Histogram { timestamp: 1000 }];
    let (status, body) = write(
        &f,
        encode(vec![
            with_histogram,
            series(&[("__name__", "f")], &[(1000, 1.0)]),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "native histograms are not supported: 1 histogram samples refused; 1 of 2 samples stored\n"
    );
    assert_eq!(stored(&f, "f"), vec![(1000, 1.0)]);
}

#[tokio::test]
async fn write_token_is_enforced() {
    let mut f = fixture();
    f.state.write_token = Some(Arc::from("s3cret"));
    let body = encode(vec![series(&[("__name__", "a")], &[(1000, 1.0)])]);

    let (status, answer) = write(&f, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer,
        r#"{"status":"error","errorType":"unauthorized","error":"this endpoint requires `Authorization: Bearer <web.write_token>`"}"#
    );
    assert!(stored(&f, "a").is_empty());

    let wrong = write_request()
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::from(body.clone()))
        .expect("request");
    assert_eq!(send(&f, wrong).await.0, StatusCode::UNAUTHORIZED);

    let right = write_request()
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(body))
        .expect("request");
    assert_eq!(send(&f, right).await.0, StatusCode::NO_CONTENT);
    assert_eq!(stored(&f, "a"), vec![(1000, 1.0)]);
}

#[tokio::test]
async fn remote_write_2_is_refused_with_415() {
    let f = fixture();
    let body = encode(vec![series(&[("__name__", "a")], &[(1000, 1.0)])]);
    let request = Request::post("/api/v1/write")
        .header(
            header::CONTENT_TYPE,
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        )
        .header(header::CONTENT_ENCODING, "snappy")
        .body(Body::from(body))
        .expect("request");
    let (status, answer) = send(&f, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer,
        "unsupported remote_write message \"io.prometheus.write.v2.Request\" in Content-Type: \
         this receiver speaks remote_write 1.0 (application/x-protobuf, proto=prometheus.WriteRequest)\n"
    );
}

#[tokio::test]
async fn non_snappy_encoding_is_named_when_the_body_does_not_decode() {
    let f = fixture();
    let request = Request::post("/api/v1/write")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(&b"\x1f\x8b\x08\x00"[..]))
        .expect("request");
    let (status, answer) = send(&f, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer.ends_with(
            "(the request says Content-Encoding: gzip; remote_write bodies must be snappy)\n"
        ),
        "{answer}"
    );
}

#[tokio::test]
async fn headers_are_not_required_like_prometheus_2_42() {
    let f = fixture();
    let body = encode(vec![series(&[("__name__", "a")], &[(1000, 1.0)])]);
    let request = Request::post("/api/v1/write")
        .body(Body::from(body))
        .expect("request");
    assert_eq!(send(&f, request).await.0, StatusCode::NO_CONTENT);
}
