use super::*;
use axum::body::Body;
use tower::ServiceExt;

#[test]
fn times_print_as_strfmt_date_time() {
    assert_eq!(strfmt_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    assert_eq!(strfmt_time(1_577_836_800_000), "2020-01-01T00:00:00.000Z");
    assert_eq!(strfmt_time(0), "0001-01-01T00:00:00.000Z");
}

#[test]
fn times_parse_as_strfmt_date_time() {
    let t = 1_577_836_800_000;
    for s in [
        "2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00.000Z",
        "2020-01-01T02:00:00.000000+02:00",
        "2020-01-01T00:00:00",
        "2020-01-01T00:00",
        "2020-01-01T00:00Z",
        "2020-01-01 00:00:00",
    ] {
        assert_eq!(parse_datetime(s), Some(t), "{s}");
    }
    assert_eq!(
        parse_datetime("2020-01-01T00:00:00.123456789Z"),
        Some(t + 123)
    );
    for s in [
        "yesterday",
        "2020-01-01",
        "2020-01-01 00:00:00Z",
        "2020-13-01T00:00:00Z",
    ] {
        assert_eq!(parse_datetime(s), None, "{s}");
    }
}

#[test]
fn bodies_are_refused_as_go_swagger_does() {
    let err = |b: &str| parse_postable_alerts(b.as_bytes()).unwrap_err();
    assert_eq!(
        err(""),
        BodyError::Required("alerts in body is required".into())
    );
    assert_eq!(
        err(r#"[{"annotations":{"a":"b"}}]"#),
        BodyError::Required("0.labels in body is required".into())
    );
    assert_eq!(
        err(r#"[{"labels":{"a":"b"}},{"labels":null}]"#),
        BodyError::Required("1.labels in body is required".into())
    );
    assert_eq!(
        err(r#"{"labels":{"a":"b"}}"#),
        BodyError::Parse(
            "json: cannot unmarshal object into Go value of type models.PostableAlerts".into()
        )
    );
    assert_eq!(
        err(r#"[{"labels":{"a":1}}]"#),
        BodyError::Parse(
            "json: cannot unmarshal number into Go struct field Alert.labels of type string".into()
        )
    );
    assert_eq!(
        err(r#"[{"labels":{"a":"b"},"generatorURL":"::not a url"}]"#),
        BodyError::Format("0.generatorURL in body must be of type uri: \"::not a url\"".into())
    );
    assert!(matches!(err("nonsense"), BodyError::Parse(_)));
    assert!(parse_postable_alerts(b"null").unwrap().is_empty());
    assert!(parse_postable_alerts(b"[]").unwrap().is_empty());
    let ok = parse_postable_alerts(
        br#"[{"labels":{"a":"b"},"extra":1,"startsAt":"2020-01-01T00:00:00Z","generatorURL":"http://x/graph?g0.expr=up"}]"#,
    )
    .unwrap();
    assert_eq!(ok[0].starts_at, 1_577_836_800_000);
    assert_eq!(ok[0].labels.get("a"), Some("b"));
}

#[test]
fn filter_matchers_follow_alertmanager_empty_value_rules() {
    let labels = Labels::new([("a", "1")]);
    let m = |s: &str| vec![parse_matcher(s).unwrap()];
    assert!(filter_matches(&m("a=1"), &labels));
    assert!(!filter_matches(&m("a=2"), &labels));
    assert!(filter_matches(&m("b=\"\""), &labels));
    assert!(!filter_matches(&m("a=\"\""), &labels));
    assert!(filter_matches(&m("a!=\"\""), &labels));
    assert!(!filter_matches(&m("b!=\"\""), &labels));
    assert!(filter_matches(&m("a=~\"1|2\""), &labels));
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn post_then_get_alerts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = crate::storage::Storage::open(crate::storage::StorageOptions::new(dir.path()))
        .expect("opening the store");
    let state = crate::api::test_state(storage);
    let app = crate::api::router(state);
    let (status, body) = call(
        &app,
        "POST",
        "/api/v2/alerts",
        r#"[{"labels":{"alertname":"Down","severity":"critical"},"annotations":{"summary":"x"},"startsAt":"2020-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","generatorURL":"http://g/x"},{"labels":{"bad-name":"v"}}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "\"invalid label set: invalid name \\\"bad-name\\\"\"\n"
    );
    let (status, body) = call(
        &app,
        "GET",
        "/api/v2/alerts?filter=severity%3D%22critical%22",
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let fp = Fingerprint::of(&Labels::new([
        ("alertname", "Down"),
        ("severity", "critical"),
    ]));
    let expected_start = format!(
        r#"[{{"annotations":{{"summary":"x"}},"endsAt":"2099-01-01T00:00:00.000Z","fingerprint":"{fp}","receivers":[{{"name":"log"}}],"startsAt":"2020-01-01T00:00:00.000Z","status":{{"inhibitedBy":[],"silencedBy":[],"state":"active"}},"updatedAt":""#
    );
    assert!(body.starts_with(&expected_start), "{body}");
    assert!(
        body.ends_with(
            r#","generatorURL":"http://g/x","labels":{"alertname":"Down","severity":"critical"}}]
"#
        ),
        "{body}"
    );
    let (_, body) = call(&app, "GET", "/api/v2/alerts?filter=severity%3Dwarning", "").await;
    assert_eq!(body, "[]\n");
    // swag's booleans: unknown words are false, never an error.
    let (status, body) = call(&app, "GET", "/api/v2/alerts?active=maybe", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]\n"));
    let (status, body) = call(&app, "GET", "/api/v2/alerts?active=maybe&inhibited=", "").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]\n"));
    let (status, body) = call(&app, "GET", "/api/v2/alerts?filter=9x", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "\"bad matcher format: 9x\"\n")
    );
}

proptest::proptest! {
    /// Any body is answered: parsed alerts or a refusal, never a panic; an
    /// accepted alert's times print.
    #[test]
    fn post_body_parser_never_panics(
        body in "[\\[\\]{}\":, a-zA-Z0-9_.+-]{0,120}",
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
    ) {
        for input in [body.as_bytes(), &bytes[..]] {
            if let Ok(alerts) = parse_postable_alerts(input) {
                for mut alert in alerts {
                    crate::notify::alerts::complete(&mut alert, 1, std::time::Duration::from_secs(300));
                    let _ = crate::notify::alerts::validate(&alert);
                    let _ = (strfmt_time(alert.starts_at), strfmt_time(alert.ends_at));
                }
            }
        }
    }

    /// Every time strfmt_time prints parses back to itself.
    #[test]
    fn printed_times_parse_back(ms in -62_135_596_799_999i64..253_402_300_799_999) {
        proptest::prop_assume!(ms != 0);
        proptest::prop_assert_eq!(parse_datetime(&strfmt_time(ms)), Some(ms));
    }
}
