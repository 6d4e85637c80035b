//! `GET /api/v1/alerts/history` on the real daemon: alerts posted to the
//! Alertmanager API are routed to two webhook receivers on 127.0.0.1, one
//! that answers 500 once and then 200, one that refuses with 400; the
//! history shows each notification with its alerts and every answer, its
//! filters select them, and it survives a restart.

use std::time::Duration;

use serde_json::Value;

use crate::notify_delivery::Recorder;
use crate::util::{wait_for, TestDaemon};

fn config(pager: &str, chat: &str) -> String {
    format!(
        r#"
notify:
  route:
    receiver: chat
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
    routes:
      - matchers: ['severity="critical"']
        receiver: pager
  receivers:
    - name: pager
      webhook_configs: [{{url: "{pager}", send_resolved: true}}]
    - name: chat
      webhook_configs: [{{url: "{chat}"}}]
  history:
    retention: {{critical: 180d}}
"#
    )
}

fn history(daemon: &TestDaemon, query: &str) -> Vec<Value> {
    let body = daemon.get_json(&format!("/api/v1/alerts/history?{query}"), 200);
    assert_eq!(body["status"], "success", "{body}");
    body["data"].as_array().cloned().expect("data is an array")
}

fn ids(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect()
}

#[test]
fn history_shows_who_was_told_what_and_their_answers() {
    let hooks = Recorder::start();
    hooks.script("/pager", &[(500, "pager is busy")]);
    hooks.script("/chat", &[(400, "channel_not_found")]);
    let mut daemon = TestDaemon::start(&config(&hooks.url("/pager"), &hooks.url("/chat")));
    let alerts = r#"[
      {"labels":{"alertname":"NodeDown","severity":"critical","instance":"db-1"},
       "annotations":{"summary":"db-1 is down"}},
      {"labels":{"alertname":"DiskFull","severity":"warning","instance":"web-1"}}
    ]"#;
    let (status, body) = daemon.post("/api/v2/alerts", "application/json", alerts.into(), &[]);
    assert_eq!(status, 200, "{body}");

    // The pager's first attempt gets 500 (retried after about 1 s), the
    // second 200; the chat's only attempt gets 400 (not retried).
    let settled = wait_for(Duration::from_secs(30), || {
        let all = history(&daemon, "");
        all.len() == 2
            && all
                .iter()
                .all(|e| e["state"] == "delivered" || e["state"] == "failed")
    });
    assert!(
        settled,
        "history: {:?}\n{}",
        history(&daemon, ""),
        daemon.log()
    );
    assert_eq!(hooks.at("/pager").len(), 2, "one retry, then delivered");
    assert_eq!(hooks.at("/chat").len(), 1, "a 400 is not retried");

    let pager = history(&daemon, "receiver=pager");
    assert_eq!(pager.len(), 1, "{pager:?}");
    let p = &pager[0];
    assert_eq!(p["integration"], "webhook");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["status"], "firing");
    assert_eq!(p["state"], "delivered");
    assert_eq!(p["groupLabels"]["alertname"], "NodeDown");
    assert_eq!(p["alerts"][0]["labels"]["instance"], "db-1");
    assert_eq!(p["alerts"][0]["annotations"]["summary"], "db-1 is down");
    assert_eq!(p["alerts"][0]["status"], "firing");
    let attempts = p["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2, "{p}");
    assert_eq!(attempts[0]["outcome"], "retry");
    let first = attempts[0]["answer"].as_str().expect("answer");
    assert!(
        first.contains("500") && first.contains("pager is busy"),
        "{first}"
    );
    assert_eq!(attempts[1]["outcome"], "delivered");
    assert!(p["finishedAt"].is_string());

    let chat = history(&daemon, "state=failed");
    assert_eq!(chat.len(), 1, "{chat:?}");
    assert_eq!(chat[0]["receiver"], "chat");
    assert_eq!(chat[0]["severity"], "warning");
    let answer = chat[0]["attempts"][0]["answer"].as_str().expect("answer");
    assert!(
        answer.contains("400") && answer.contains("channel_not_found"),
        "{answer}"
    );

    // Filters.
    let all = history(&daemon, "");
    assert_eq!(ids(&history(&daemon, "severity=critical")), ids(&pager));
    assert_eq!(
        ids(&history(&daemon, "filter=alertname%3D%22DiskFull%22")),
        ids(&chat)
    );
    assert_eq!(
        ids(&history(
            &daemon,
            "filter=instance%3D~%22db.%2A%22&filter=severity%21%3D%22info%22"
        )),
        ids(&pager)
    );
    assert_eq!(history(&daemon, "limit=1").len(), 1);
    assert!(
        history(&daemon, "start=4102444800").is_empty(),
        "nothing after 2100"
    );
    assert_eq!(ids(&history(&daemon, "end=4102444800")), ids(&all));
    assert!(history(&daemon, "receiver=nobody").is_empty());
    for (query, names) in [
        ("state=sent", "\"state\""),
        ("limit=0", "\"limit\""),
        ("filter=%7B", "\"filter\""),
        ("start=yesterday", "\"start\""),
        ("start=200&end=100", "\"end\""),
    ] {
        let body = daemon.get_json(&format!("/api/v1/alerts/history?{query}"), 400);
        assert_eq!(body["errorType"], "bad_data", "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").contains(names),
            "{query}: {body}"
        );
    }

    // The history is in bellwether.db: a restart keeps it.
    daemon.stop();
    daemon.spawn();
    assert_eq!(ids(&history(&daemon, "")), ids(&all));
    assert_eq!(
        history(&daemon, "receiver=pager")[0]["attempts"],
        p["attempts"]
    );
}
