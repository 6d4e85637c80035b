//! Silences through the Alertmanager API v2, driven by Debian's real
//! `amtool` (0.25), side by side with Debian's Alertmanager 0.25: the same
//! commands on both must print the same silences, and the same bad requests
//! must get the same status and error text. Also: silences survive a
//! SIGKILL of bellwether.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::util::{client, reference_program, Alertmanager, TestDaemon};

const NOTIFY_CONFIG: &str = "notify:
  route:
    receiver: team
    routes:
      - matchers: ['severity=\"critical\"']
        receiver: pager
  receivers:
    - name: team
    - name: pager
";

/// The alertmanager.yml equivalent of [`NOTIFY_CONFIG`].
const AM_CONFIG: &str = "route:
  receiver: team
  routes:
    - matchers: ['severity=\"critical\"']
      receiver: pager
receivers:
  - name: team
  - name: pager
";

/// Runs amtool against `url`; returns (success, stdout, stderr).
fn amtool(url: &str, args: &[&str]) -> (bool, String, String) {
    amtool_stdin(url, args, None)
}

fn amtool_stdin(url: &str, args: &[&str], stdin: Option<&Path>) -> (bool, String, String) {
    let mut command = Command::new(reference_program("amtool"));
    command
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = stdin {
        command.stdin(std::fs::File::open(path).expect("opening amtool's input"));
    }
    let out = command.output().expect("running amtool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// amtool, asserting success; returns stdout.
fn ok(url: &str, args: &[&str]) -> String {
    let (success, stdout, stderr) = amtool(url, args);
    assert!(success, "amtool {args:?} failed: {stderr}");
    assert!(
        !stderr.contains("Warning"),
        "amtool {args:?} warned: {stderr}"
    );
    stdout
}

fn daemon() -> TestDaemon {
    TestDaemon::start(&format!(
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n{NOTIFY_CONFIG}"
    ))
}

/// Silences of `amtool silence query -o json` without what differs between
/// two servers (IDs and times), in the order printed.
fn comparable(json: &str) -> Vec<Value> {
    let list: Vec<Value> = serde_json::from_str(json).expect("amtool -o json prints JSON");
    list.into_iter()
        .map(|mut s| {
            let o = s.as_object_mut().expect("a silence is an object");
            assert!(o.remove("id").is_some(), "id missing");
            // Times differ between the two runs; their format must not.
            for key in ["updatedAt", "startsAt", "endsAt"] {
                let time = o[key].as_str().expect("a time is a string");
                let shape: String = time
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c })
                    .collect();
                o.insert(key.into(), Value::String(shape));
            }
            s
        })
        .collect()
}

/// The same amtool session on a server; returns what to compare.
fn session(url: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let first = ok(
        url,
        &[
            "silence",
            "add",
            "alertname=Disk",
            "instance=~\"db-[0-9]+\"",
            "env!=staging",
            "--duration=2h",
            "--comment=disk replacement",
            "--author=ops",
        ],
    );
    let first = first.trim().to_string();
    assert_eq!(first.len(), 36, "a UUID: {first}");
    let second = ok(
        url,
        &[
            "silence",
            "add",
            "Backup",
            "job!~\"web|api\"",
            "--duration=30m",
            "--comment=nightly",
            "--author=cron",
        ],
    )
    .trim()
    .to_string();
    // A pending one.
    let start = "2099-01-01T00:00:00Z";
    ok(
        url,
        &[
            "silence",
            "add",
            "team=db",
            "--start",
            start,
            "--end",
            "2099-01-01T04:00:00Z",
            "--comment=future",
        ],
    );
    seen.push(
        serde_json::to_string(&comparable(&ok(url, &["silence", "query", "-o", "json"]))).unwrap(),
    );
    // Filters.
    seen.push(
        serde_json::to_string(&comparable(&ok(
            url,
            &["silence", "query", "-o", "json", "alertname=Disk"],
        )))
        .unwrap(),
    );
    seen.push(
        serde_json::to_string(&comparable(&ok(
            url,
            &["silence", "query", "-o", "json", "Backup"],
        )))
        .unwrap(),
    );
    let quiet = ok(url, &["silence", "query", "-q", "env!=staging"]);
    assert_eq!(quiet.trim(), first);
    // The simple table: same columns, IDs and end times aside.
    let table = ok(url, &["silence", "query"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("alertname=\"Disk\" instance=~\"db-[0-9]+\" env!=\"staging\""),
        "{table}"
    );
    seen.push(
        table
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split("  ").filter(|c| !c.trim().is_empty()).collect();
                // ID, matchers, ends at, created by, comment: drop ID and time.
                cols.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != 0 && *i != 2)
                    .map(|(_, c)| c.trim())
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    // Update: a new comment and duration edit the active silence in place.
    let updated = ok(
        url,
        &[
            "silence",
            "update",
            &first,
            "--comment=disk swap",
            "--duration=3h",
            "-o",
            "json",
        ],
    );
    assert!(updated.contains(&first), "edited in place: {updated}");
    let after = ok(url, &["silence", "query", "-o", "json", "alertname=Disk"]);
    assert!(
        after.contains("disk swap") && after.contains(&first),
        "{after}"
    );
    // A pending silence's end moves in place.
    let pending = ok(url, &["silence", "query", "-q", "team=db"])
        .trim()
        .to_string();
    let moved = ok(
        url,
        &[
            "silence",
            "update",
            &pending,
            "--end",
            "2099-01-01T06:00:00Z",
            "-o",
            "json",
        ],
    );
    assert!(moved.contains(&pending), "edited in place: {moved}");
    // Moving an active silence's start replaces it: a new ID, the old one expired.
    let replaced = ok(
        url,
        &[
            "silence",
            "update",
            &first,
            "--start",
            "2098-01-01T00:00:00Z",
            "--end",
            "2098-01-02T00:00:00Z",
            "-o",
            "json",
        ],
    );
    assert!(!replaced.contains(&first), "replaced: {replaced}");
    seen.push(serde_json::to_string(&comparable(&replaced)).unwrap());
    // Expire one.
    ok(url, &["silence", "expire", &second]);
    let expired = ok(url, &["silence", "query", "--expired", "-o", "json"]);
    assert!(expired.contains(&second), "{expired}");
    seen.push(serde_json::to_string(&comparable(&expired)).unwrap());
    seen.push(
        serde_json::to_string(&comparable(&ok(url, &["silence", "query", "-o", "json"]))).unwrap(),
    );
    // Export, expire everything, import: new silences with the same content.
    let dir = tempfile::tempdir().expect("temp dir");
    let export = dir.path().join("export.json");
    std::fs::write(&export, ok(url, &["silence", "query", "-o", "json"])).expect("export");
    let ids = ok(url, &["silence", "query", "-q"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let mut expire = vec!["silence", "expire"];
    expire.extend(ids.iter().copied());
    ok(url, &expire);
    assert_eq!(ok(url, &["silence", "query", "-q"]).trim(), "");
    let (success, stdout, stderr) = amtool_stdin(url, &["silence", "import"], Some(&export));
    assert!(success, "import: {stderr}");
    let imported: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(imported.len(), ids.len(), "{stdout}");
    for id in &imported {
        assert!(!ids.contains(id), "an expired silence is not reused: {id}");
    }
    seen.push(
        serde_json::to_string(&comparable(&ok(url, &["silence", "query", "-o", "json"]))).unwrap(),
    );
    // Receivers and routes from the config, over the API.
    let routes = ok(url, &["config", "routes", "show"]);
    assert!(
        routes.contains("receiver: team") && routes.contains("receiver: pager"),
        "{routes}"
    );
    seen.push(routes);
    seen.push(ok(url, &["config", "routes", "test", "severity=critical"]));
    seen
}

#[test]
fn amtool_silences_against_bellwether_match_alertmanager() {
    let bellwether = daemon();
    let am = Alertmanager::start(AM_CONFIG, &[]);
    let ours = session(&bellwether.base_url);
    let theirs = session(&am.url());
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a, b,
            "step {i} differs:\nbellwether: {a}\nalertmanager: {b}"
        );
    }
    // The raw listing byte for byte (field order, time format, trailing
    // newline), IDs and digits aside.
    let raw = |base: &str| {
        let body = client()
            .get(format!("{base}/api/v2/silences"))
            .send()
            .and_then(|r| r.text())
            .expect("GET /api/v2/silences");
        let list: Vec<Value> = serde_json::from_str(&body).expect("JSON");
        let mut body = body.clone();
        for s in &list {
            body = body.replace(s["id"].as_str().expect("id"), "ID");
        }
        body.chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect::<String>()
    };
    assert_eq!(raw(&bellwether.base_url), raw(&am.url()));
    // `config show` prints the config each was given.
    let shown = ok(&bellwether.base_url, &["config", "show"]);
    assert!(shown.contains("receiver: team"), "{shown}");
    assert!(ok(&bellwether.base_url, &["config", "show", "-o", "json"])
        .contains("\"status\":\"disabled\""));
}

/// Sends the same request to both servers; returns both (status, body).
fn both(
    bellwether: &str,
    am: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> [(u16, String); 2] {
    [bellwether, am].map(|base| {
        let mut request =
            client().request(method.parse().expect("method"), format!("{base}{path}"));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().expect("request");
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    })
}

#[test]
fn bad_silences_get_alertmanagers_answers() {
    let bellwether = daemon();
    let am = Alertmanager::start(AM_CONFIG, &[]);
    let fmt = |ms: i64| {
        let secs = ms / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date of a day count (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (start, end, past) = (fmt(now), fmt(now + 3_600_000), fmt(now - 3_600_000));
    let body = |matchers: &str, start: &str, end: &str| {
        format!(
            r#"{{"matchers":{matchers},"startsAt":"{start}","endsAt":"{end}","createdBy":"a","comment":"c"}}"#
        )
    };
    let one = r#"[{"name":"a","value":"x","isRegex":false}]"#;
    let cases: Vec<(&str, String, String, bool)> = vec![
        // (method, path, body, exact text)
        (
            "POST",
            "/api/v2/silences".into(),
            body("[]", &start, &end),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            format!(r#"{{"startsAt":"{start}","endsAt":"{end}","createdBy":"a","comment":"c"}}"#),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(r#"[{"name":"a","value":"","isRegex":false}]"#, &start, &end),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(
                r#"[{"name":"a","value":".*","isRegex":true},{"name":"b","value":"","isRegex":false}]"#,
                &start,
                &end,
            ),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(
                r#"[{"name":"1a","value":"x","isRegex":false}]"#,
                &start,
                &end,
            ),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(r#"[{"name":"a","value":"(","isRegex":true}]"#, &start, &end),
            false,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(one, &end, &start),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(one, &past, &past),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(one, "2020-01-01T00:00:00Z", &past),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            format!(r#"{{"matchers":{one},"startsAt":"{start}","endsAt":"{end}","comment":"c"}}"#),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            format!(
                r#"{{"matchers":[{{"name":"a","value":"x"}}],"startsAt":"{start}","endsAt":"{end}","createdBy":"a","comment":"c"}}"#
            ),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            format!(
                r#"{{"id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","matchers":{one},"startsAt":"{start}","endsAt":"{end}","createdBy":"a","comment":"c"}}"#
            ),
            true,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            format!(
                r#"{{"id":"xyz","matchers":{one},"startsAt":"{start}","endsAt":"{end}","createdBy":"a","comment":"c"}}"#
            ),
            true,
        ),
        ("POST", "/api/v2/silences".into(), "null".into(), true),
        ("POST", "/api/v2/silences".into(), String::new(), true),
        (
            "POST",
            "/api/v2/silences".into(),
            r#"{"matchers":"#.into(),
            false,
        ),
        (
            "POST",
            "/api/v2/silences".into(),
            body(one, "yesterday", &end),
            false,
        ),
        ("GET", "/api/v2/silence/xyz".into(), String::new(), true),
        (
            "GET",
            "/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            String::new(),
            true,
        ),
        (
            "DELETE",
            "/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            String::new(),
            true,
        ),
        ("DELETE", "/api/v2/silence/xyz".into(), String::new(), true),
        (
            "GET",
            "/api/v2/silences?filter=foo".into(),
            String::new(),
            true,
        ),
        (
            "GET",
            "/api/v2/silences?filter=a%3D%22x".into(),
            String::new(),
            true,
        ),
        ("GET", "/api/v2/receivers".into(), String::new(), true),
        ("PUT", "/api/v2/silences".into(), String::new(), true),
        (
            "POST",
            "/api/v2/silence/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
            String::new(),
            true,
        ),
        ("DELETE", "/api/v2/receivers".into(), String::new(), true),
        ("POST", "/api/v2/status".into(), String::new(), true),
    ];
    let mut agree = 0;
    for (method, path, payload, exact) in &cases {
        let payload = (*method == "POST").then_some(payload.as_str());
        let [ours, theirs] = both(&bellwether.base_url, &am.url(), method, path, payload);
        assert_eq!(
            ours.0, theirs.0,
            "{method} {path} {payload:?}: status {ours:?} vs Alertmanager's {theirs:?}"
        );
        if *exact {
            // Alertmanager lists allowed methods in map order, which varies.
            let methods = |s: &str| {
                s.replace("[GET,DELETE]", "[DELETE,GET]")
                    .replace("[POST,GET]", "[GET,POST]")
            };
            assert_eq!(
                methods(&ours.1),
                methods(&theirs.1),
                "{method} {path} {payload:?}: body"
            );
        } else {
            // Same shape and prefix; the parser's own words follow.
            let prefix = |s: &str| {
                s.split(": ")
                    .next()
                    .unwrap_or("")
                    .split(" because ")
                    .next()
                    .unwrap_or("")
                    .to_string()
            };
            assert_eq!(
                prefix(&ours.1),
                prefix(&theirs.1),
                "{method} {path} {payload:?}: {} vs {}",
                ours.1,
                theirs.1
            );
        }
        agree += 1;
    }
    assert_eq!(agree, cases.len());
    // Nothing was stored by the refusals.
    assert_eq!(
        ok(&bellwether.base_url, &["silence", "query", "-q"]).trim(),
        ""
    );
}

#[test]
fn silences_survive_sigkill() {
    let mut bellwether = daemon();
    let url = bellwether.base_url.clone();
    let kept = ok(
        &url,
        &[
            "silence",
            "add",
            "alertname=Kept",
            "--comment=c",
            "--duration=1h",
        ],
    );
    let gone = ok(
        &url,
        &[
            "silence",
            "add",
            "alertname=Expired",
            "--comment=c",
            "--duration=1h",
        ],
    );
    ok(&url, &["silence", "expire", gone.trim()]);
    let before = ok(&url, &["silence", "query", "-o", "json", "--expired"])
        + &ok(&url, &["silence", "query", "-o", "json"]);
    bellwether.kill9();
    bellwether.spawn();
    let after = ok(&url, &["silence", "query", "-o", "json", "--expired"])
        + &ok(&url, &["silence", "query", "-o", "json"]);
    assert_eq!(before, after);
    assert!(after.contains(kept.trim()) && after.contains(gone.trim()));
    let metrics = bellwether.get("/metrics").1;
    assert!(
        metrics.contains("bellwether_silences{state=\"active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("bellwether_silences{state=\"expired\"} 1"),
        "{metrics}"
    );
    // A reload keeps them too.
    bellwether.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(ok(&url, &["silence", "query", "-q"]).contains(kept.trim()));
}

#[test]
fn amtool_lists_scheduled_silences() {
    let bellwether = daemon();
    let body = r#"{"matchers":[{"name":"job","value":"db","isRegex":false}],"startsAt":"2024-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"ops","comment":"maintenance","timeIntervals":[{"weekdays":["sunday"],"times":[{"start_time":"02:00","end_time":"04:00"}],"location":"UTC"}]}"#;
    let (status, answer) =
        bellwether.post("/api/v2/silences", "application/json", body.into(), &[]);
    assert_eq!(status, 200, "{answer}");
    let id: Value = serde_json::from_str(&answer).unwrap();
    let id = id["silenceID"].as_str().unwrap();
    let listed = ok(&bellwether.base_url, &["silence", "query"]);
    assert!(
        listed.contains(id) && listed.contains("maintenance"),
        "{listed}"
    );
    // amtool's update keeps the schedule it does not know about.
    ok(
        &bellwether.base_url,
        &["silence", "update", id, "--comment=sunday maintenance"],
    );
    let shown = bellwether.get_json(&format!("/api/v2/silence/{id}"), 200);
    assert_eq!(shown["comment"], "sunday maintenance");
    assert_eq!(shown["timeIntervals"][0]["weekdays"][0], "sunday");
}

#[test]
fn amtool_check_config_accepts_the_notify_section_as_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, AM_CONFIG).unwrap();
    let out = Command::new(reference_program("amtool"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("amtool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn amtool_routes_with_the_default_route() {
    let bellwether = TestDaemon::start(
        "global:\n  scrape_interval: 1h\nscrape_configs: []\nnotify:\n  receivers:\n    - name: pagerduty\n      pagerduty_configs:\n        - routing_key: not-shown-key\n",
    );
    let url = &bellwether.base_url;
    assert_eq!(
        ok(url, &["config", "routes", "test", "severity=critical"]),
        "log,pagerduty\n"
    );
    assert_eq!(
        ok(url, &["config", "routes", "test", "severity=info"]),
        "log\n"
    );
    let shown = ok(url, &["config", "show"]);
    assert!(
        shown.contains("default route") && !shown.contains("not-shown-key"),
        "{shown}"
    );
    assert_eq!(
        bellwether.get("/api/v2/receivers").1,
        "[{\"name\":\"pagerduty\"},{\"name\":\"log\"}]\n"
    );
}

#[test]
fn a_reload_updates_receivers_and_keeps_silences() {
    let bellwether = daemon();
    let url = &bellwether.base_url;
    let id = ok(url, &["silence", "add", "alertname=Kept", "--comment=c"]);
    assert_eq!(
        bellwether.get("/api/v2/receivers").1,
        "[{\"name\":\"team\"},{\"name\":\"pager\"}]\n"
    );
    let config = format!(
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n{NOTIFY_CONFIG}    - name: chat\n"
    );
    std::fs::write(bellwether.config_path(), config).expect("rewriting the config");
    let (status, body) = bellwether.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        bellwether.get("/api/v2/receivers").1,
        "[{\"name\":\"team\"},{\"name\":\"pager\"},{\"name\":\"chat\"}]\n"
    );
    assert!(ok(url, &["config", "show"]).contains("name: chat"));
    assert_eq!(ok(url, &["silence", "query", "-q"]), id);
}
