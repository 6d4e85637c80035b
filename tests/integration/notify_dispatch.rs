//! The in-process Alertmanager against the real one: the same alerts POSTed
//! to bellwether and to Debian's Alertmanager 0.25 must read back the same
//! through `/api/v2/alerts` and `/api/v2/alerts/groups` and through
//! `amtool`; Debian's Prometheus must be able to deliver to bellwether as
//! to an Alertmanager; and a rule firing inside bellwether must show in its
//! own API and be notified after `group_wait`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::{at, client, reference_program, wait_for, Alertmanager, Prometheus, TestDaemon};

/// The routing config both sides load (bellwether under `notify:`).
const AM_CONFIG: &str = r#"route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: [alertname, instance]
      continue: true
    - matchers: ['team=~"db|web"']
      receiver: team
      group_by: ['...']
    - matchers: ['service="api"']
      receiver: api
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
receivers:
  - name: default
  - name: pager
  - name: team
  - name: api
"#;

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect::<String>()
}

fn bellwether() -> TestDaemon {
    TestDaemon::start(&format!("notify:\n{}", indent(AM_CONFIG)))
}

/// AM_CONFIG with a `log` integration on every receiver (bellwether's own
/// type, which Alertmanager refuses), so each notification is logged.
fn logging_config() -> String {
    let mut text = AM_CONFIG.to_string();
    for name in ["default", "pager", "team", "api"] {
        text = text.replace(
            &format!("  - name: {name}\n"),
            &format!("  - name: {name}\n    log_configs: [{{}}]\n"),
        );
    }
    indent(&text)
}

fn post(port: u16, body: &str) -> (u16, String) {
    let response = client()
        .post(format!("http://127.0.0.1:{port}/api/v2/alerts"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("POST /api/v2/alerts");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

fn get(port: u16, path: &str) -> (u16, String) {
    let response = client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

/// The body without `updatedAt` values (the receipt times differ).
fn without_updated_at(body: &str) -> String {
    let re = regex::Regex::new(r#""updatedAt":"[^"]*""#).expect("static regex");
    re.replace_all(body, r#""updatedAt":"""#).into_owned()
}

/// Several routes, `continue`, `group_by` of one, two and all labels, an
/// inhibited alert (by one source only: with several, Alertmanager names
/// whichever its map yields first), an expired one, one without `endsAt` (resolve
/// timeout) and one without `startsAt`.
fn alert_set(end: &str) -> String {
    let start = at(-600);
    format!(
        r#"[
 {{"labels":{{"alertname":"Down","severity":"critical","instance":"a","job":"node"}},"annotations":{{"summary":"a is down"}},"startsAt":"{start}","endsAt":"{end}","generatorURL":"http://prom/graph?g0.expr=up"}},
 {{"labels":{{"alertname":"Unreachable","severity":"critical","instance":"b","job":"node"}},"startsAt":"{start}","endsAt":"{end}"}},
 {{"labels":{{"alertname":"Down","severity":"warning","instance":"c","team":"db"}},"startsAt":"{start}","endsAt":"{end}"}},
 {{"labels":{{"alertname":"Slow","severity":"warning","team":"web","instance":"d"}},"annotations":{{"runbook":"http://x"}},"startsAt":"{start}","endsAt":"{end}"}},
 {{"labels":{{"alertname":"Errors","service":"api"}},"startsAt":"{start}","endsAt":"{end}"}},
 {{"labels":{{"alertname":"Errors","service":"api","zone":"eu"}},"startsAt":"{start}"}},
 {{"labels":{{"alertname":"Gone","service":"api"}},"startsAt":"{start}","endsAt":"{past}"}},
 {{"labels":{{"alertname":"NoStart","empty":""}},"endsAt":"{end}"}}
]"#,
        past = at(-60)
    )
}

#[test]
fn api_v2_alerts_and_groups_match_alertmanager() {
    let am = Alertmanager::start(AM_CONFIG, &[]);
    let mut bw = bellwether();
    let end = at(3600);
    let body = alert_set(&end);
    // The one alert posted without `endsAt` ends at its receipt time + the
    // resolve timeout; receipt times differ between the two servers.
    let ends_re = regex::Regex::new(r#""endsAt":"([^"]*)""#).expect("static regex");
    let normal = |body: &str| {
        let body = without_updated_at(body);
        ends_re
            .replace_all(&body, |c: &regex::Captures| {
                if c[1] == end {
                    c[0].to_string()
                } else {
                    r#""endsAt":"receipt + resolve_timeout""#.to_string()
                }
            })
            .into_owned()
    };
    assert_eq!(post(am.port, &body), (200, String::new()));
    assert_eq!(post(bw.port, &body), (200, String::new()));
    // Both dispatchers have grouped everything once the groups are stable.
    let groups_of = |port| {
        serde_json::from_str::<Vec<Value>>(&get(port, "/api/v2/alerts/groups").1)
            .map(|g| g.len())
            .unwrap_or(0)
    };
    // pager ×2, team ×2 (all labels), api, default; the expired alert's
    // group shows nothing, so it is not listed.
    assert!(wait_for(Duration::from_secs(10), || groups_of(am.port)
        == 6
        && groups_of(bw.port) == 6));
    let queries = [
        "/api/v2/alerts",
        "/api/v2/alerts?inhibited=false",
        "/api/v2/alerts?active=false",
        "/api/v2/alerts?silenced=false&inhibited=false&active=true",
        "/api/v2/alerts?receiver=team",
        "/api/v2/alerts?receiver=pag.*",
        "/api/v2/alerts?filter=alertname%3D%22Down%22",
        "/api/v2/alerts?filter=alertname%3D~%22D.*%7CE.*%22&filter=instance!%3Da",
        "/api/v2/alerts?filter=zone%3D%22%22",
        "/api/v2/alerts?filter=zone!~%22%22",
        "/api/v2/alerts?unprocessed=false",
        "/api/v2/alerts/groups",
        "/api/v2/alerts/groups?receiver=pager",
        "/api/v2/alerts/groups?inhibited=false",
        "/api/v2/alerts/groups?active=false",
        "/api/v2/alerts/groups?filter=severity%3Dwarning",
        // swag's booleans: words it does not know are false.
        "/api/v2/alerts?active=maybe",
        "/api/v2/alerts?inhibited=0&active=",
        // Refused parameters.
        "/api/v2/alerts?filter=9x",
        "/api/v2/alerts/groups?silenced=nope",
    ];
    for query in queries {
        let (am_status, am_body) = get(am.port, query);
        let (bw_status, bw_body) = get(bw.port, query);
        assert_eq!(bw_status, am_status, "{query}: {bw_body}");
        assert_eq!(normal(&bw_body), normal(&am_body), "{query}");
    }
    // The updatedAt fields are there and are receipt times.
    let shown: Vec<Value> = serde_json::from_str(&get(bw.port, "/api/v2/alerts").1).expect("JSON");
    assert_eq!(shown.len(), 7);
    assert!(shown
        .iter()
        .all(|a| a["updatedAt"].as_str().is_some_and(|t| t.ends_with('Z'))));
    bw.stop();
}

#[test]
fn post_errors_match_alertmanager() {
    let am = Alertmanager::start(AM_CONFIG, &[]);
    let mut bw = bellwether();
    let bodies = [
        r#"[{"labels":{"alertname":"X","bad-name":"v"}}]"#,
        r#"[{"labels":{}}]"#,
        r#"[{"labels":{"a":""}}]"#,
        r#"[{"annotations":{"a":"b"}}]"#,
        r#"[{"labels":null}]"#,
        r#"[{"labels":{"a":"b"},"startsAt":"2020-01-02T00:00:00Z","endsAt":"2020-01-01T00:00:00Z"}]"#,
        r#"[{"labels":{"a":"b"},"annotations":{"1x":"y"}}]"#,
        r#"[{"labels":{"x":"b"}},{"labels":{"9":"b"}},{"labels":{}}]"#,
        r#"{"labels":{"a":"b"}}"#,
        r#"[{"labels":{"a":1}}]"#,
        r#"[{"labels":{"a":"b"},"generatorURL":"::not a url"}]"#,
        r#"[{"labels":{"a":"b"},"extra":1}]"#,
        "[]",
        "null",
        "",
    ];
    for body in bodies {
        let want = post(am.port, body);
        let got = post(bw.port, body);
        assert_eq!(got, want, "POST {body}");
    }
    // Malformed JSON: same status and prefix (the parser's own words differ).
    let (status, text) = post(bw.port, "nonsense");
    assert_eq!(status, 400);
    assert!(
        text.starts_with(
            r#"{"code":400,"message":"parsing alerts body from \"\" failed, because "#
        ),
        "{text}"
    );
    assert_eq!(
        bw.self_metric("bellwether_alertmanager_alerts_invalid_total"),
        Some(7.0)
    );
    bw.stop();
}

fn amtool(port: u16, args: &[&str]) -> (bool, String) {
    let output = Command::new(reference_program("amtool"))
        .arg(format!("--alertmanager.url=http://127.0.0.1:{port}"))
        .args(args)
        .output()
        .expect("running amtool");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn amtool_adds_and_queries_alerts_as_on_alertmanager() {
    let am = Alertmanager::start(AM_CONFIG, &[]);
    let mut bw = bellwether();
    let (start, end) = (at(-600), at(3600));
    let adds: [&[&str]; 4] = [
        &[
            "alert",
            "add",
            "Down",
            "severity=critical",
            "instance=a",
            "--annotation=summary=a down",
        ],
        &[
            "alert",
            "add",
            "Down",
            "severity=warning",
            "instance=c",
            "team=db",
        ],
        &[
            "alert",
            "add",
            "alertname=Slow",
            "team=web",
            "--annotation=summary=slow",
        ],
        &[
            "alert",
            "add",
            "Errors",
            "service=api",
            "--generator-url=http://prom/graph",
        ],
    ];
    for port in [am.port, bw.port] {
        for args in adds {
            let mut args = args.to_vec();
            let s = format!("--start={start}");
            let e = format!("--end={end}");
            args.push(&s);
            args.push(&e);
            let (ok, out) = amtool(port, &args);
            assert!(ok, "amtool {args:?} on {port}: {out}");
        }
    }
    let queries: [&[&str]; 9] = [
        &["alert", "query"],
        &["alert", "query", "-o", "json"],
        &["alert", "query", "-o", "extended"],
        &["alert", "query", "-i"],
        &["alert", "query", "-i", "-o", "json", "severity=warning"],
        &["alert", "query", "Down"],
        &["alert", "query", "alertname=~\"D.*|S.*\"", "-o", "extended"],
        &["alert", "query", "--receiver=team", "-i"],
        &["alert", "query", "-a", "-i", "-s", "-o", "extended"],
    ];
    for args in queries {
        let (am_ok, am_out) = amtool(am.port, args);
        let (bw_ok, bw_out) = amtool(bw.port, args);
        assert!(am_ok && bw_ok, "amtool {args:?}: {bw_out}");
        assert_eq!(
            without_updated_at(&bw_out),
            without_updated_at(&am_out),
            "amtool {args:?}"
        );
    }
    // amtool without --end sends Go's zero time: "no end" (resolve_timeout).
    for port in [am.port, bw.port] {
        let s = format!("--start={start}");
        let (ok, out) = amtool(port, &["alert", "add", "NoEnd", "x=y", &s]);
        assert!(ok, "{out}");
    }
    let (_, out) = amtool(bw.port, &["alert", "query", "-o", "json", "NoEnd"]);
    let shown: Vec<Value> = serde_json::from_str(&out).expect("amtool JSON");
    assert_eq!(shown.len(), 1, "{out}");
    assert_eq!(shown[0]["status"]["state"], "active");
    bw.stop();
}

#[test]
fn prometheus_delivers_alerts_to_bellwether() {
    let mut bw = TestDaemon::start(&format!("notify:\n{}", logging_config()));
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1)\n        labels: {severity: critical, instance: prom}\n        annotations: {summary: from prometheus}\n",
    )
    .expect("rules.yml");
    let prometheus = Prometheus::start(
        &format!(
            "global: {{evaluation_interval: 1s}}\nrule_files: [{}]\nalerting:\n  alertmanagers:\n    - static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            rules.display(),
            bw.port
        ),
        // The first evaluation comes before the Alertmanager is discovered
        // (that send is dropped); resend every second, not every minute.
        &["--rules.alert.resend-delay=1s"],
    );
    let mut shown = Vec::new();
    let arrived = wait_for(Duration::from_secs(30), || {
        shown = serde_json::from_str::<Vec<Value>>(&get(bw.port, "/api/v2/alerts").1)
            .unwrap_or_default();
        !shown.is_empty()
    });
    assert!(
        arrived,
        "no alert from Prometheus:\n{}\n{}",
        prometheus.log(),
        bw.log()
    );
    let alert = &shown[0];
    assert_eq!(alert["labels"]["alertname"], "AlwaysOn");
    assert_eq!(alert["annotations"]["summary"], "from prometheus");
    assert_eq!(alert["receivers"][0]["name"], "pager");
    assert_eq!(alert["status"]["state"], "active");
    assert!(alert["generatorURL"]
        .as_str()
        .is_some_and(|u| u.contains("/graph?g0.expr=vector%281%29")));
    // Prometheus sends an end a few resend periods ahead, never "no end".
    assert_ne!(alert["endsAt"], "0001-01-01T00:00:00.000Z");
    // It is routed and notified after group_wait (1 s).
    assert!(
        wait_for(Duration::from_secs(10), || strip_ansi(&bw.log()).contains(
            r#"group_key={}/{severity="critical"}:{alertname="AlwaysOn", instance="prom"}"#
        )),
        "{}",
        bw.log()
    );
    assert!(
        bw.self_metric(r#"bellwether_alertmanager_alerts_received_total{status="firing"}"#)
            .unwrap_or(0.0)
            >= 1.0
    );
    drop(prometheus);
    bw.stop();
}

#[test]
fn a_rule_firing_in_bellwether_is_shown_and_notified() {
    let config = format!(
        "global:\n  evaluation_interval: 1s\n  external_labels: {{cluster: test}}\nrule_files: [rules.yml]\nnotify:\n{}",
        logging_config()
    );
    let mut bw = TestDaemon::start_with_files(
        &config,
        &[(
            "rules.yml",
            "groups:\n  - name: g\n    rules:\n      - alert: Inside\n        expr: vector(1)\n        labels: {team: db}\n        annotations: {summary: inside}\n",
        )],
    );
    let mut shown = Vec::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            shown = serde_json::from_str::<Vec<Value>>(&get(bw.port, "/api/v2/alerts").1)
                .unwrap_or_default();
            !shown.is_empty()
        }),
        "{}",
        bw.log()
    );
    assert_eq!(shown[0]["labels"]["alertname"], "Inside");
    // External labels are added before the router, as for Alertmanagers.
    assert_eq!(shown[0]["labels"]["cluster"], "test");
    assert_eq!(shown[0]["receivers"][0]["name"], "team");
    let (_, groups) = get(bw.port, "/api/v2/alerts/groups");
    let groups: Vec<Value> = serde_json::from_str(&groups).expect("JSON");
    assert_eq!(groups[0]["receiver"]["name"], "team");
    assert_eq!(groups[0]["labels"]["alertname"], "Inside");
    let key = r#"receiver=team group_key={}/{team=~"db|web"}:{alertname="Inside", cluster="test", team="db"} firing=1 resolved=0"#;
    assert!(
        wait_for(Duration::from_secs(10), || strip_ansi(&bw.log())
            .contains(key)),
        "{}",
        bw.log()
    );
    assert_eq!(
        bw.self_metric("bellwether_alertmanager_dispatcher_aggregation_groups"),
        Some(1.0)
    );
    bw.stop();
}

fn strip_ansi(text: &str) -> String {
    let re = regex::Regex::new("\x1b\\[[0-9;]*m").expect("static regex");
    re.replace_all(text, "").into_owned()
}
