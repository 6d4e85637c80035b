//! The whole alert path in one daemon: a rule fires, the router groups the
//! alert, the outbox delivers a webhook — and a notification the receiver
//! could not take survives a SIGKILL of the daemon.

use std::net::TcpListener;
use std::time::Duration;

use crate::notify_delivery::Recorder;
use crate::util::{at, free_port, wait_for, TestDaemon};

fn config(hook_port: u16) -> String {
    format!(
        r#"
global:
  evaluation_interval: 1s
rule_files: [rules.yml]
notify:
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
  receivers:
    - name: hook
      webhook_configs:
        - url: http://127.0.0.1:{hook_port}/hook
          send_resolved: true
"#
    )
}

const FIRING_RULES: &str = r#"
groups:
  - name: e2e
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        labels:
          severity: warning
        annotations:
          summary: always on
"#;

fn pending(daemon: &TestDaemon) -> f64 {
    daemon
        .self_metric("bellwether_notify_outbox_pending")
        .unwrap_or(0.0)
}

#[test]
fn undelivered_notification_survives_a_crash_and_is_delivered_after_restart() {
    // Nothing listens on the webhook's port yet: every attempt is refused.
    let hook_port = free_port();
    let mut daemon =
        TestDaemon::start_with_files(&config(hook_port), &[("rules.yml", FIRING_RULES)]);
    assert!(
        wait_for(Duration::from_secs(20), || pending(&daemon) >= 1.0),
        "no notification waited in the outbox:\n{}",
        daemon.log()
    );
    daemon.kill9();

    // The rule is gone after the restart, so only the outbox can deliver.
    std::fs::write(daemon.dir.path().join("rules.yml"), "groups: []\n").expect("rules");
    let recorder = Recorder::start_on(
        TcpListener::bind(("127.0.0.1", hook_port)).expect("binding the webhook port"),
    );
    daemon.spawn();
    assert!(
        wait_for(Duration::from_secs(30), || !recorder.at("/hook").is_empty()),
        "the notification recorded before the crash was not delivered:\n{}",
        daemon.log()
    );
    let delivered = recorder.at("/hook");
    let message: serde_json::Value =
        serde_json::from_slice(&delivered[0].body).expect("webhook JSON");
    assert_eq!(message["version"], "4");
    assert_eq!(message["receiver"], "hook");
    assert_eq!(message["status"], "firing");
    assert_eq!(message["groupLabels"]["alertname"], "AlwaysOn");
    assert_eq!(message["alerts"][0]["labels"]["severity"], "warning");
    assert_eq!(message["alerts"][0]["annotations"]["summary"], "always on");
    assert_eq!(message["groupKey"], "{}:{alertname=\"AlwaysOn\"}");
    assert!(
        wait_for(Duration::from_secs(5), || pending(&daemon) == 0.0),
        "the outbox still has pending entries after delivery"
    );
    // Delivered once, not once per attempt or per restart.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(recorder.at("/hook").len(), 1, "delivered more than once");
}

#[test]
fn rule_alert_is_grouped_delivered_and_silenced() {
    let recorder = Recorder::start();
    let mut daemon =
        TestDaemon::start_with_files(&config(recorder.port), &[("rules.yml", FIRING_RULES)]);
    assert!(
        wait_for(Duration::from_secs(20), || !recorder.at("/hook").is_empty()),
        "no webhook after the rule fired:\n{}",
        daemon.log()
    );
    let first: serde_json::Value =
        serde_json::from_slice(&recorder.at("/hook")[0].body).expect("webhook JSON");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["alerts"][0]["labels"]["alertname"], "AlwaysOn");
    // Nothing new: group_interval flushes are deduplicated by the notification log.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        recorder.at("/hook").len(),
        1,
        "repeated before repeat_interval"
    );

    // A silence shows in the API v2 and mutes the alert.
    let now = at(0);
    let body = format!(
        r#"{{"matchers":[{{"name":"alertname","value":"AlwaysOn","isRegex":false}}],
            "startsAt":"{now}","endsAt":"2099-01-01T00:00:00Z","createdBy":"e2e","comment":"test"}}"#
    );
    let (status, answer) = daemon.post(
        "/api/v2/silences",
        "application/json",
        body.into_bytes(),
        &[],
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        wait_for(Duration::from_secs(10), || {
            let alerts = daemon.get_json("/api/v2/alerts?silenced=true", 200);
            alerts[0]["status"]["state"] == "suppressed"
        }),
        "alert not shown as silenced:\n{}",
        daemon.log()
    );
    daemon.stop();
}
