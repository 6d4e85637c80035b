//! Handler tests through `router(state).oneshot(..)`. Status codes and error
//! bodies are those a running Alertmanager 0.25 (Debian's package) gave for
//! the same requests; tests/integration/silences.rs compares the two live.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use proptest::prelude::*;
use tower::ServiceExt;

use super::*;
use crate::storage::{Storage, StorageOptions};

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(StorageOptions::new(dir.path())).expect("opening the store");
    let mut state = super::super::test_state(storage);
    state.alertmanager = Arc::new(AlertmanagerApi::new(
        state.alertmanager.silences.clone(),
        NotifyView {
            original: "route:\n  receiver: a\n".into(),
            receivers: vec!["a".into(), "b".into()],
        },
    ));
    Fixture { _dir: dir, state }
}

async fn call(f: &Fixture, request: Request<Body>) -> (StatusCode, String) {
    let response = super::super::router(f.state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get(f: &Fixture, uri: &str) -> (StatusCode, String) {
    call(f, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(f: &Fixture, body: &str) -> (StatusCode, String) {
    call(
        f,
        Request::post("/api/v2/silences")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn silence_json(extra: &str, matchers: &str, starts: &str, ends: &str) -> String {
    format!(
        r#"{{{extra}"matchers":{matchers},"startsAt":"{starts}","endsAt":"{ends}","createdBy":"me","comment":"why"}}"#
    )
}

fn in_hours(h: i64) -> String {
    format_time(now_millis() + h * 3_600_000)
}

const ONE: &str = r#"[{"name":"job","value":"api","isRegex":false}]"#;

#[tokio::test]
async fn create_get_list_expire() {
    let f = fixture();
    let (status, body) = post(&f, &silence_json("", ONE, &in_hours(-1), &in_hours(2))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(is_uuid(&id));
    let (status, body) = get(&f, &format!("/api/v2/silence/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let s = f.state.alertmanager.silences.get(&id).unwrap();
    assert_eq!(
        body,
        format!(
            r#"{{"id":"{id}","status":{{"state":"active"}},"updatedAt":"{u}","comment":"why","createdBy":"me","endsAt":"{e}","matchers":[{{"isEqual":true,"isRegex":false,"name":"job","value":"api"}}],"startsAt":"{u}"}}{nl}"#,
            nl = "\n",
            u = format_time(s.updated_at),
            e = format_time(s.ends_at),
        )
    );
    let (_, list) = get(&f, "/api/v2/silences?filter=job%3Dapi").await;
    assert!(list.contains(&id));
    let (_, list) = get(&f, "/api/v2/silences?filter=job%3D~api").await;
    assert_eq!(
        list, "[]\n",
        "a filter must be one of the silence's matchers exactly"
    );
    let (status, body) = call(
        &f,
        Request::delete(format!("/api/v2/silence/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
    let (_, body) = get(&f, &format!("/api/v2/silence/{id}")).await;
    assert!(body.contains(r#""state":"expired""#));
}

#[tokio::test]
async fn refusals_match_alertmanager() {
    let f = fixture();
    let (now, later) = (in_hours(0), in_hours(1));
    let cases: Vec<(String, u16, &str)> = vec![
        (
            silence_json("", "[]", &now, &later),
            422,
            r#"{"code":612,"message":"matchers in body should have at least 1 items"}"#,
        ),
        (
            format!(r#"{{"startsAt":"{now}","endsAt":"{later}","createdBy":"a","comment":"c"}}"#),
            422,
            r#"{"code":602,"message":"matchers in body is required"}"#,
        ),
        (
            silence_json(
                "",
                r#"[{"name":"a","value":"","isRegex":false}]"#,
                &now,
                &later,
            ),
            400,
            "\"silence invalid: at least one matcher must not match the empty string\"\n",
        ),
        (
            silence_json(
                "",
                r#"[{"name":"1a","value":"x","isRegex":false}]"#,
                &now,
                &later,
            ),
            400,
            "\"silence invalid: invalid label matcher 0: invalid label name \\\"1a\\\"\"\n",
        ),
        (
            silence_json("", ONE, &later, &now),
            400,
            "\"Failed to create silence: start time must be before end time\"\n",
        ),
        (
            silence_json("", ONE, "2020-01-01T00:00:00Z", &in_hours(-1)),
            400,
            "\"Failed to create silence: end time can't be in the past\"\n",
        ),
        (
            silence_json(
                r#""id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","#,
                ONE,
                &now,
                &later,
            ),
            404,
            "\"silence not found\"\n",
        ),
        (
            "null".to_string(),
            422,
            r#"{"code":602,"message":"comment in body is required"}"#,
        ),
        (
            String::new(),
            422,
            r#"{"code":602,"message":"silence in body is required"}"#,
        ),
        (
            silence_json("", r#"[{"name":"a","value":"x"}]"#, &now, &later),
            422,
            r#"{"code":602,"message":"matchers.0.isRegex in body is required"}"#,
        ),
    ];
    for (body, want_status, want_body) in cases {
        let (status, got) = post(&f, &body).await;
        assert_eq!(
            (status.as_u16(), got.as_str()),
            (want_status, want_body),
            "{body}"
        );
    }
    let (status, got) = post(&f, r#"{"matchers":"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(got
        .starts_with(r#"{"code":400,"message":"parsing silence body from \"\" failed, because "#));
    let (status, got) = post(
        &f,
        &silence_json(
            "",
            r#"[{"name":"a","value":"(","isRegex":true}]"#,
            &now,
            &later,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        got.starts_with(
            r#""silence invalid: invalid label matcher 0: invalid regular expression \"(\": "#
        ),
        "{got}"
    );
    let (status, got) = get(&f, "/api/v2/silence/xyz").await;
    assert_eq!(
        (status.as_u16(), got.as_str()),
        (
            422,
            r#"{"code":601,"message":"silenceID in path must be of type uuid: \"xyz\""}"#
        )
    );
    let (status, got) = get(&f, "/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee").await;
    assert_eq!((status.as_u16(), got.as_str()), (404, ""));
    let (status, got) = call(
        &f,
        Request::delete("/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), got.as_str()),
        (500, "\"silence not found\"\n")
    );
    let (status, got) = get(&f, "/api/v2/silences?filter=foo").await;
    assert_eq!(
        (status.as_u16(), got.as_str()),
        (400, "\"bad matcher format: foo\"\n")
    );
    let (status, _) = call(
        &f,
        Request::post("/api/v2/silences")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(status.as_u16(), 415);
    assert!(f.state.alertmanager.silences.list().is_empty());
}

#[tokio::test]
async fn write_endpoints_need_the_token() {
    let mut f = fixture();
    f.state.write_token = Some(Arc::from("s3cret"));
    let body = silence_json("", ONE, &in_hours(0), &in_hours(1));
    let (status, _) = post(&f, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &f,
        Request::post("/api/v2/silences")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, "Bearer s3cret")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &f,
        Request::delete("/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Reads stay open.
    assert_eq!(get(&f, "/api/v2/silences").await.0, StatusCode::OK);
}

#[tokio::test]
async fn listing_is_sorted_as_alertmanager_sorts() {
    let f = fixture();
    let m = |v: &str| format!(r#"[{{"name":"n","value":"{v}","isRegex":false}}]"#);
    let mut ids = Vec::new();
    for (v, s, e) in [("a", 0, 3), ("b", 0, 2), ("c", 2, 3), ("d", 1, 3)] {
        let (_, body) = post(&f, &silence_json("", &m(v), &in_hours(s), &in_hours(e))).await;
        ids.push(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["silenceID"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, list) = get(&f, "/api/v2/silences").await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    let order: Vec<&str> = list
        .iter()
        .map(|s| s["matchers"][0]["value"].as_str().unwrap())
        .collect();
    // Active by end (b before a), then pending by start (d before c).
    assert_eq!(order, ["b", "a", "d", "c"]);
}

#[tokio::test]
async fn scheduled_silence_round_trips_and_survives_an_amtool_style_update() {
    let f = fixture();
    let intervals = r#"[{"weekdays":["sunday"],"times":[{"start_time":"02:00","end_time":"04:00"}],"years":[2020,"2021:2099"]}]"#;
    let body = silence_json(
        &format!(r#""timeIntervals":{intervals},"#),
        ONE,
        &in_hours(0),
        &in_hours(24 * 30),
    );
    let (status, got) = post(&f, &body).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let id = serde_json::from_str::<serde_json::Value>(&got).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, got) = get(&f, &format!("/api/v2/silence/{id}")).await;
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(
        v["timeIntervals"],
        serde_json::json!([{"weekdays":["sunday"],"times":[{"start_time":"02:00","end_time":"04:00"}],"years":["2020","2021:2099"]}])
    );
    // amtool's `silence update` posts the silence back without the field.
    let mut update = v.clone();
    let obj = update.as_object_mut().unwrap();
    obj.remove("timeIntervals");
    obj.remove("status");
    obj.remove("updatedAt");
    obj.insert("comment".into(), "longer".into());
    let (status, got) = post(&f, &update.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert!(got.contains(&id), "edited in place: {got}");
    assert!(f
        .state
        .alertmanager
        .silences
        .get(&id)
        .unwrap()
        .schedule
        .is_some());
    let (status, got) = post(
        &f,
        &silence_json(
            r#""timeIntervals":[{"weekdays":["funday"]}],"#,
            ONE,
            &in_hours(0),
            &in_hours(1),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(got.contains("funday is not a valid weekday"), "{got}");
}

#[tokio::test]
async fn status_and_receivers() {
    let f = fixture();
    let (status, body) = get(&f, "/api/v2/receivers").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "[{\"name\":\"a\"},{\"name\":\"b\"}]\n")
    );
    let (_, body) = get(&f, "/api/v2/status").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body.starts_with(r#"{"cluster":{"peers":[],"status":"disabled"},"config":{"original":"route:\n  receiver: a\n"},"uptime":""#), "{body}");
    assert_eq!(v["versionInfo"]["version"], "0.25.0");
}

#[test]
fn date_times_as_go_openapi_reads_them() {
    let t = |s: &str| parse_date_time(s);
    assert_eq!(t("2024-06-02T02:00:00Z"), Some(1_717_293_600_000));
    assert_eq!(t("2024-06-02T02:00:00.123456789Z"), Some(1_717_293_600_123));
    assert_eq!(t("2024-06-02T04:00:00+02:00"), Some(1_717_293_600_000));
    assert_eq!(t("2024-06-02T04:00:00+0200"), Some(1_717_293_600_000));
    assert_eq!(t("2024-06-02T02:00:00"), Some(1_717_293_600_000));
    assert_eq!(t("2024-06-02 02:00:00"), Some(1_717_293_600_000));
    assert_eq!(t("2024-06-02T02:00Z"), Some(1_717_293_600_000));
    assert_eq!(t(""), Some(0));
    for bad in [
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-06-02T02:00:00+2",
        "2024-06-02T25:00:00Z",
        "2024-06-02T02:00:00.Z",
    ] {
        assert_eq!(t(bad), None, "{bad}");
    }
    assert_eq!(format_time(1_717_293_600_000), "2024-06-02T02:00:00.000Z");
    assert_eq!(format_time(1_717_293_600_007), "2024-06-02T02:00:00.007Z");
}

proptest! {
    /// Any body: an answer, never a panic; an accepted one is stored and
    /// shows up in the listing.
    #[test]
    fn post_body_parser_never_panics(body in prop_oneof![
        ".{0,200}",
        Just(silence_json("", ONE, "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z")),
        (".{0,40}", ".{0,40}", any::<bool>(), any::<bool>()).prop_map(|(n, v, r, e)| silence_json(
            "",
            &serde_json::json!([{"name": n, "value": v, "isRegex": r, "isEqual": e}]).to_string(),
            "2020-01-01T00:00:00Z",
            "2999-01-01T00:00:00Z",
        )),
        prop::collection::vec(".{0,20}", 0..4).prop_map(|days| silence_json(
            &format!(r#""timeIntervals":[{{"weekdays":{},"days_of_month":{}}}],"#,
                serde_json::json!(days), serde_json::json!(days)),
            ONE, "2020-01-01T00:00:00Z", "2999-01-01T00:00:00Z",
        )),
    ]) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        if let Ok(input) = parse_postable(&headers, body.as_bytes()) {
            let store = Silences::in_memory(1000);
            if let Ok(id) = store.set(input, 1_700_000_000_000) {
                let s = store.get(&id).unwrap();
                prop_assert!(!s.matchers.is_empty());
                let _ = serde_json::to_string(&GettableSilence::new(&s, 1_700_000_000_000)).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let mut f = fixture();
    f.state.max_request_body = 64;
    let body = silence_json("", ONE, &in_hours(0), &in_hours(1));
    assert!(body.len() > 64);
    let (status, _) = post(&f, &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(f.state.alertmanager.silences.list().is_empty());
}
