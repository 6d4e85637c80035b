//! The rule engine in the real daemon: alerts through their lifecycle, alert
//! state across SIGKILL, forwarding to Debian's real Alertmanager (read back
//! with amtool), refused rule files at start and on reload, and
//! `check rules` against `promtool check rules`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{free_port, reference_program, wait_for, Alertmanager, TestDaemon};

/// A dead target (port 1) gives `up == 0` from the first scrape on.
fn config(extra: &str) -> String {
    format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels: {{cluster: test}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: dead
    static_configs: [{{targets: ["127.0.0.1:1"]}}]
{extra}
"#
    )
}

fn alerts(daemon: &TestDaemon) -> Vec<serde_json::Value> {
    daemon.get_json("/api/v1/alerts", 200)["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn alert_state(daemon: &TestDaemon, name: &str) -> Option<(String, String)> {
    alerts(daemon)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == name)
        .map(|a| {
            (
                a["state"].as_str().unwrap_or_default().to_string(),
                a["activeAt"].as_str().unwrap_or_default().to_string(),
            )
        })
}

const LIFECYCLE_RULES: &str = r#"
groups:
  - name: lifecycle
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: TargetDown
        expr: up == 0
        for: 3s
        labels: {severity: critical}
        annotations: {summary: "target down"}
"#;

#[test]
fn alerts_go_pending_then_firing_and_are_written_as_series() {
    let daemon = TestDaemon::start_with_files(&config(""), &[("rules.yml", LIFECYCLE_RULES)]);
    assert!(
        wait_for(Duration::from_secs(20), || alert_state(
            &daemon,
            "TargetDown"
        )
        .is_some_and(|(s, _)| s == "pending")),
        "never pending:\n{}",
        daemon.log()
    );
    assert!(
        wait_for(Duration::from_secs(20), || alert_state(
            &daemon,
            "TargetDown"
        )
        .is_some_and(|(s, _)| s == "firing")),
        "never firing:\n{}",
        daemon.log()
    );
    let alerts = daemon.get_json("/api/v1/query?query=ALERTS", 200);
    let result = &alerts["data"]["result"][0]["metric"];
    assert_eq!(result["alertname"], "TargetDown");
    assert_eq!(result["alertstate"], "firing");
    assert_eq!(result["severity"], "critical");
    assert_eq!(result["instance"], "127.0.0.1:1");
    let recorded = daemon.get_json("/api/v1/query?query=job:up:sum", 200);
    assert_eq!(recorded["data"]["result"][0]["value"][1], "0");
    let rules = daemon.get_json("/api/v1/rules", 200);
    let group = &rules["data"]["groups"][0];
    assert_eq!(group["name"], "lifecycle");
    assert_eq!(group["rules"][0]["type"], "recording");
    assert_eq!(group["rules"][1]["type"], "alerting");
    assert_eq!(group["rules"][1]["state"], "firing");
    assert_eq!(group["rules"][1]["duration"], 3.0);
    assert_eq!(group["rules"][1]["health"], "ok");
    assert!(daemon
        .self_metric("bellwether_rule_group_iterations_total")
        .is_some());
    // SIGTERM ends the rule tasks and the alert dispatcher: a clean, prompt exit.
    let mut daemon = daemon;
    daemon.stop();
}

/// An alert 12 s into a 20 s `for` fires about 8 s after a SIGKILL and
/// restart — not 20 s after it (issue: the `for` clock survives restarts).
#[test]
fn the_for_clock_survives_sigkill() {
    let rules = r#"
groups:
  - name: restart
    rules:
      - alert: SlowBurn
        expr: up == 0
        for: 20s
        labels: {severity: warning}
"#;
    let mut daemon = TestDaemon::start_with_files(&config(""), &[("rules.yml", rules)]);
    assert!(
        wait_for(Duration::from_secs(20), || alert_state(&daemon, "SlowBurn")
            .is_some()),
        "never pending:\n{}",
        daemon.log()
    );
    let (state, active_at) = alert_state(&daemon, "SlowBurn").expect("pending alert");
    assert_eq!(state, "pending");
    std::thread::sleep(Duration::from_secs(12));
    daemon.kill9();
    daemon.spawn();
    let restarted = Instant::now();
    // Right after the restart, the same alert with the same clock.
    assert!(
        wait_for(Duration::from_secs(10), || alert_state(&daemon, "SlowBurn")
            .is_some()),
        "alert not back after restart:\n{}",
        daemon.log()
    );
    let (_, restored_active_at) = alert_state(&daemon, "SlowBurn").expect("restored alert");
    assert_eq!(
        restored_active_at, active_at,
        "activeAt must survive the restart"
    );
    assert!(
        wait_for(Duration::from_secs(30), || alert_state(&daemon, "SlowBurn")
            .is_some_and(|(s, _)| s == "firing")),
        "never firing after restart:\n{}",
        daemon.log()
    );
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(16),
        "fired {took:?} after the restart; a 20s `for` restarted from zero would take 20s"
    );
    assert!(
        daemon.log().contains("alert state restored"),
        "{}",
        daemon.log()
    );
}

/// `keep_firing_for` survives a restart too (Prometheus loses it,
/// prometheus/prometheus#13957): the condition clears, the daemon is killed
/// while the alert is kept firing, and after the restart it is still firing
/// with its `keepFiringSince`.
#[test]
fn keep_firing_for_survives_sigkill() {
    // The alert's condition is a file_sd target that is removed to clear it.
    let targets = r#"[{"targets": ["127.0.0.1:1"], "labels": {"job": "flappy"}}]"#;
    let cfg = r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: flappy
    file_sd_configs: [{files: [targets.json], refresh_interval: 1s}]
"#;
    let rules = r#"
groups:
  - name: keep
    rules:
      - alert: Flappy
        expr: up{job="flappy"} == 0
        keep_firing_for: 10m
"#;
    let mut daemon =
        TestDaemon::start_with_files(cfg, &[("rules.yml", rules), ("targets.json", targets)]);
    assert!(
        wait_for(Duration::from_secs(20), || alert_state(&daemon, "Flappy")
            .is_some_and(|(s, _)| s == "firing")),
        "never firing:\n{}",
        daemon.log()
    );
    std::fs::write(daemon.dir.path().join("targets.json"), "[]").expect("clearing targets");
    assert!(
        wait_for(Duration::from_secs(30), || kept(&daemon).is_some()),
        "never kept firing:\n{}",
        daemon.log()
    );
    let since = kept(&daemon).expect("keepFiringSince");
    daemon.kill9();
    daemon.spawn();
    assert!(
        wait_for(Duration::from_secs(10), || kept(&daemon).is_some()),
        "keep_firing_for state lost across the restart:\n{}",
        daemon.log()
    );
    assert_eq!(kept(&daemon).expect("keepFiringSince"), since);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        alert_state(&daemon, "Flappy").map(|(s, _)| s).as_deref(),
        Some("firing")
    );
}

/// The `keepFiringSince` of the Flappy alert, if it is being kept firing.
fn kept(daemon: &TestDaemon) -> Option<String> {
    alerts(daemon)
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "Flappy")
        .and_then(|a| a["keepFiringSince"].as_str().map(str::to_string))
}

impl crate::util::Alertmanager {
    /// `amtool alert query` as JSON: the alerts Alertmanager holds.
    fn amtool_alerts(&self) -> Vec<serde_json::Value> {
        let output = Command::new(reference_program("amtool"))
            .arg(format!("--alertmanager.url=http://127.0.0.1:{}", self.port))
            .args(["alert", "query", "-o", "json"])
            .output()
            .expect("running amtool");
        serde_json::from_slice::<Vec<serde_json::Value>>(&output.stdout).unwrap_or_default()
    }
}

#[test]
fn firing_alerts_reach_a_real_alertmanager() {
    let am = Alertmanager::start(
        "route: {receiver: none, group_wait: 1s}\nreceivers: [{name: none}]\n",
        &[],
    );
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - static_configs: [{{targets: [\"127.0.0.1:{}\"]}}]\n",
        am.port
    );
    let daemon = TestDaemon::start_with_files(&config(&extra), &[("rules.yml", LIFECYCLE_RULES)]);
    let mut seen = Vec::new();
    let arrived = wait_for(Duration::from_secs(30), || {
        seen = am.amtool_alerts();
        !seen.is_empty()
    });
    assert!(arrived, "no alert reached Alertmanager:\n{}", daemon.log());
    let alert = &seen[0];
    assert_eq!(alert["labels"]["alertname"], "TargetDown");
    assert_eq!(alert["labels"]["severity"], "critical");
    // External labels are added on the way out, as Prometheus does.
    assert_eq!(alert["labels"]["cluster"], "test");
    assert_eq!(alert["annotations"]["summary"], "target down");
    assert_eq!(alert["status"]["state"], "active");
    let generator = alert["generatorURL"].as_str().unwrap_or_default();
    assert!(
        generator.contains("/graph?g0.expr=up+%3D%3D+0&g0.tab=1"),
        "{generator}"
    );
    assert!(
        daemon
            .self_metric("bellwether_notifications_sent_total")
            .unwrap_or(0.0)
            >= 1.0
    );
    let mut daemon = daemon;
    daemon.stop();
}

#[test]
fn a_bad_rule_file_is_refused_at_start_and_on_reload() {
    let bad = "groups:\n  - name: g\n    rules:\n      - alert: Broken\n        expr: sum(up\n";
    // At start: the daemon exits with the file, line and rule in the error.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.yml"), bad).expect("rules");
    std::fs::write(dir.path().join("cfg.yml"), config("")).expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .arg("--config")
        .arg(dir.path().join("cfg.yml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .output()
        .expect("running bellwether");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "rules.yml:5:15: group \"g\", rule 1, \"Broken\": could not parse expression"
        ),
        "{stderr}"
    );

    // On reload: refused, the old rules keep running.
    let daemon = TestDaemon::start_with_files(&config(""), &[("rules.yml", LIFECYCLE_RULES)]);
    std::fs::write(daemon.dir.path().join("rules.yml"), bad).expect("rules");
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("Broken"), "{body}");
    assert_eq!(
        daemon.self_metric("bellwether_config_last_reload_successful"),
        Some(0.0)
    );
    let rules = daemon.get_json("/api/v1/rules", 200);
    assert_eq!(rules["data"]["groups"][0]["name"], "lifecycle");
}

/// `bellwether check rules` and `promtool check rules` agree on the exit
/// code for every file of a small corpus of good, broken and linted files.
#[test]
fn check_rules_agrees_with_promtool() {
    let corpus: &[(&str, &str)] = &[
        ("good", LIFECYCLE_RULES),
        ("syntax", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n"),
        ("both", "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n"),
        ("neither", "groups:\n  - name: g\n    rules:\n      - expr: up\n"),
        ("no_expr", "groups:\n  - name: g\n    rules:\n      - alert: A\n"),
        ("bad_record", "groups:\n  - name: g\n    rules:\n      - record: a-b\n        expr: up\n"),
        ("record_for", "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n        for: 1m\n"),
        ("record_annotations", "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n        annotations: {x: y}\n"),
        ("bad_label", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: {\"a-b\": c}\n"),
        ("name_label", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels: {__name__: c}\n"),
        ("dup_group", "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n"),
        ("empty_group_name", "groups:\n  - name: \"\"\n    rules: []\n"),
        ("unknown_key", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fro: 1m\n"),
        ("bad_duration", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: 5x\n"),
        ("duplicates", "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n      - record: a\n        expr: up\n"),
        ("empty", ""),
        ("not_yaml", "groups: [\n"),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut agree = 0;
    for (name, text) in corpus {
        let path = dir.path().join(format!("{name}.yml"));
        std::fs::write(&path, text).expect("writing a rule file");
        for lint_fatal in [false, true] {
            let flag: &[&str] = if lint_fatal { &["--lint-fatal"] } else { &[] };
            let promtool = Command::new(reference_program("promtool"))
                .args(["check", "rules"])
                .args(flag)
                .arg(&path)
                .output()
                .expect("running promtool");
            let ours = Command::new(env!("CARGO_BIN_EXE_bellwether"))
                .args(["check", "rules"])
                .args(flag)
                .arg(&path)
                .output()
                .expect("running bellwether");
            assert_eq!(
                ours.status.code(),
                promtool.status.code(),
                "{name} (lint_fatal={lint_fatal}): promtool said {}, we said {}",
                String::from_utf8_lossy(&promtool.stderr),
                String::from_utf8_lossy(&ours.stderr)
            );
            agree += 1;
        }
    }
    println!(
        "check rules: {agree}/{} verdicts agree with promtool",
        corpus.len() * 2
    );
}

/// The same rule file, the same (dead) target: Debian's Prometheus and
/// bellwether must show the same rules (keys, queries as printed back,
/// labels, annotations, state) and the same alerts (labels, annotations,
/// state, value) in `/api/v1/rules` and `/api/v1/alerts`.
#[test]
fn rules_and_alerts_apis_match_prometheus() {
    let rules = r#"
groups:
  - name: compare
    rules:
      - record: job:up:sum
        expr: sum   by(job)(up)
      - alert: TargetDown
        expr: up{job="dead"} == 0
        for: 2s
        labels: {severity: critical, team: "{{ $labels.job }}"}
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})"
          runbook: "https://runbooks/{{ $labels.job | toUpper }}"
      - alert: NeverFires
        expr: up > 1
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.yml"), rules).expect("rules");
    let prometheus_config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n  - job_name: dead\n    static_configs: [{{targets: [\"127.0.0.1:1\"]}}]\n",
        dir.path().join("rules.yml").display()
    );
    let prometheus = crate::util::Prometheus::start(&prometheus_config, &[]);
    let daemon = TestDaemon::start_with_files(&config(""), &[("rules.yml", rules)]);
    let firing = |alerts: &serde_json::Value| {
        alerts["data"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
    };
    assert!(
        wait_for(Duration::from_secs(30), || firing(
            &prometheus.get_json("/api/v1/alerts")
        ) && firing(
            &daemon.get_json("/api/v1/alerts", 200)
        )),
        "both should fire:\n{}",
        daemon.log()
    );
    // Alerts: identical apart from activeAt.
    let strip = |mut v: serde_json::Value| {
        for a in v["data"]["alerts"].as_array_mut().expect("alerts") {
            a.as_object_mut().expect("alert").remove("activeAt");
        }
        v
    };
    let theirs = strip(prometheus.get_json("/api/v1/alerts"));
    let ours = strip(daemon.get_json("/api/v1/alerts", 200));
    let mut theirs_alerts = theirs["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut ours_alerts = ours["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Prometheus adds external labels only when sending; neither shows them here.
    theirs_alerts.sort_by_key(|a| a["labels"].to_string());
    ours_alerts.sort_by_key(|a| a["labels"].to_string());
    assert_eq!(ours_alerts, theirs_alerts);

    // Rules: same keys and the same static fields; times and durations differ.
    let theirs = prometheus.get_json("/api/v1/rules");
    let ours = daemon.get_json("/api/v1/rules", 200);
    let t_group = &theirs["data"]["groups"][0];
    let o_group = &ours["data"]["groups"][0];
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(o_group), keys(t_group));
    assert_eq!(o_group["name"], t_group["name"]);
    assert_eq!(o_group["interval"], t_group["interval"]);
    let t_rules = t_group["rules"].as_array().expect("rules");
    let o_rules = o_group["rules"].as_array().expect("rules");
    assert_eq!(o_rules.len(), t_rules.len());
    for (o, t) in o_rules.iter().zip(t_rules) {
        assert_eq!(keys(o), keys(t), "rule {}", t["name"]);
        for field in [
            "name",
            "query",
            "type",
            "labels",
            "annotations",
            "health",
            "state",
            "duration",
            "keepFiringFor",
        ] {
            assert_eq!(o[field], t[field], "rule {} field {field}", t["name"]);
        }
    }
}

/// On its embedded default config the daemon evaluates the default rules
/// compiled in from rules/ (out-of-the-box alerting, docs/rules.md).
#[test]
fn the_default_config_evaluates_the_default_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bellwether");
    let url = format!("http://127.0.0.1:{port}/api/v1/rules");
    let mut groups = Vec::new();
    let loaded = wait_for(Duration::from_secs(30), || {
        let Ok(response) = crate::util::client().get(&url).send() else {
            return false;
        };
        let body: serde_json::Value =
            serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or_default();
        groups = body["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        !groups.is_empty()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(loaded, "no rule groups on the default config");
    let files: Vec<&str> = groups.iter().filter_map(|g| g["file"].as_str()).collect();
    assert_eq!(
        files,
        [
            "<embedded>/rules/recording.yml",
            "<embedded>/rules/critical.yml",
            "<embedded>/rules/warning.yml",
            "<embedded>/rules/info.yml",
            "<embedded>/rules/business.yml"
        ]
    );
}
