//! The dispatcher on tokio's paused clock: every timer of dispatch.go.

use std::collections::BTreeMap;

use super::*;
use crate::notify::config::load_str;
use crate::notify::matchers::{parse_matchers, Matchers};

/// 2023-11-14T22:13:20Z, a Tuesday.
const BASE: Timestamp = 1_700_000_000_000;
const DAY: Timestamp = 86_400_000;

/// The notifications handed over, and the size of each round.
#[derive(Default)]
struct Recorder(Mutex<Vec<Notification>>, Mutex<Vec<usize>>);

impl Delivery for Recorder {
    fn notify(&self, n: Notification) {
        self.0.lock().push(n);
    }

    fn notify_all(&self, batch: Vec<Notification>) {
        self.1.lock().push(batch.len());
        for n in batch {
            self.notify(n);
        }
    }
}

impl Recorder {
    fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Silences by matchers, always active.
#[derive(Default)]
struct Silences(Mutex<Vec<(String, Matchers)>>);

impl Silencer for Silences {
    fn silenced_by(&self, labels: &Labels, _now: Timestamp) -> Vec<String> {
        let mut ids: Vec<String> = self
            .0
            .lock()
            .iter()
            .filter(|(_, m)| m.matches(labels))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

const CONFIG: &str = "route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['team=\"muted\"']
      receiver: muted
      mute_time_intervals: [always]
    - matchers: ['team=\"night\"']
      receiver: night
      active_time_intervals: [night]
inhibit_rules:
  - source_matchers: ['severity=\"critical\"']
    target_matchers: ['severity=\"warning\"']
    equal: [alertname]
time_intervals:
  - name: always
    time_intervals: [{times: [{start_time: '00:00', end_time: '24:00'}]}]
  - name: night
    time_intervals: [{times: [{start_time: '02:00', end_time: '04:00'}]}]
receivers: [{name: default}, {name: muted}, {name: night}]
";

struct Harness {
    router: Arc<Router>,
    sent: Arc<Recorder>,
    silences: Arc<Silences>,
}

fn start(config: &str) -> Harness {
    let sent = Arc::new(Recorder::default());
    let silences = Arc::new(Silences::default());
    let config = load_str(config, "t.yml", None).unwrap();
    let router = Router::new(&config, silences.clone(), sent.clone(), Clock::tokio(BASE));
    tokio::spawn(router.clone().run());
    Harness {
        router,
        sent,
        silences,
    }
}

fn alert(pairs: &[(&str, &str)], starts_at: Timestamp, ends_at: Timestamp) -> Alert {
    Alert {
        labels: Labels::new(pairs.iter().copied()),
        annotations: BTreeMap::new(),
        starts_at,
        ends_at,
        generator_url: String::new(),
        updated_at: 0,
        timeout: false,
    }
}

async fn advance(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

fn names(n: &Notification) -> Vec<String> {
    n.alerts
        .iter()
        .map(|a| a.labels.get("instance").unwrap_or("").to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn first_flush_after_group_wait_then_every_group_interval() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "A"), ("instance", "1")],
        now,
        now + DAY,
    )]);
    advance(29).await;
    assert!(h.sent.take().is_empty(), "nothing before group_wait");
    advance(2).await;
    let sent = h.sent.take();
    assert_eq!(sent.len(), 1);
    let n = &sent[0];
    assert_eq!(n.receiver, "default");
    assert_eq!(n.group_key, "{}:{alertname=\"A\"}");
    assert_eq!(n.group_labels, Labels::new([("alertname", "A")]));
    assert_eq!(
        (n.repeat_interval, n.group_interval),
        (Duration::from_secs(4 * 3600), Duration::from_secs(300))
    );
    // A firing alert is handed over without its end (as Alertmanager).
    assert_eq!(n.alerts[0].ends_at, 0);

    // A second alert in the flushed group waits for the group_interval tick.
    advance(60).await;
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "A"), ("instance", "2")],
        now,
        now + DAY,
    )]);
    advance(200).await;
    assert!(h.sent.take().is_empty(), "not before group_interval");
    advance(40).await;
    let sent = h.sent.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(names(&sent[0]), ["1", "2"]);
    // The group flushes every group_interval (dedup is the delivery's).
    advance(300).await;
    assert_eq!(h.sent.take().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_alert_older_than_group_wait_flushes_at_once() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "Old")],
        now - 60_000,
        now + DAY,
    )]);
    advance(1).await;
    assert_eq!(h.sent.take().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn resolved_alerts_are_sent_then_leave_the_group() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    h.router.receive(vec![
        alert(&[("alertname", "A"), ("instance", "1")], now, now + DAY),
        alert(&[("alertname", "A"), ("instance", "2")], now, now + DAY),
    ]);
    advance(31).await;
    assert_eq!(names(&h.sent.take()[0]), ["1", "2"]);
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "A"), ("instance", "2")],
        now - 31_000,
        now,
    )]);
    advance(300).await;
    let sent = h.sent.take();
    assert_eq!(sent.len(), 1);
    let resolved: Vec<_> = sent[0]
        .alerts
        .iter()
        .filter(|a| a.resolved_at(sent[0].now))
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].labels.get("instance"), Some("2"));
    assert_eq!(resolved[0].ends_at, now);
    // It left the group after that flush.
    advance(300).await;
    assert_eq!(names(&h.sent.take()[0]), ["1"]);
    // Resolve the last one: one resolved notification, then the group is
    // empty and dropped within 30 s.
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "A"), ("instance", "1")],
        now - 1_000,
        now,
    )]);
    assert_eq!(h.router.metrics.groups.get(), 1);
    advance(300).await;
    assert_eq!(h.sent.take().len(), 1);
    advance(300).await;
    assert!(h.sent.take().is_empty());
    assert_eq!(h.router.metrics.groups.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn inhibited_alerts_are_not_sent_and_marked() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    let crit = alert(
        &[("alertname", "Down"), ("severity", "critical")],
        now,
        now + DAY,
    );
    let warn = alert(
        &[
            ("alertname", "Down"),
            ("severity", "warning"),
            ("instance", "w"),
        ],
        now,
        now + DAY,
    );
    let other = alert(
        &[("alertname", "Down2"), ("severity", "warning")],
        now,
        now + DAY,
    );
    h.router
        .receive(vec![crit.clone(), warn.clone(), other.clone()]);
    advance(31).await;
    let sent = h.sent.take();
    let mut keys: Vec<_> = sent
        .iter()
        .map(|n| (n.group_key.clone(), n.alerts.len()))
        .collect();
    keys.sort();
    // The Down group holds both; only the critical one is sent.
    assert_eq!(
        keys,
        [
            ("{}:{alertname=\"Down\"}".to_string(), 1),
            ("{}:{alertname=\"Down2\"}".to_string(), 1)
        ]
    );
    let status = h.router.marker.status(warn.fingerprint());
    assert_eq!(status.state, AlertState::Suppressed);
    assert_eq!(status.inhibited_by, vec![crit.fingerprint().to_string()]);
    assert_eq!(
        h.router.marker.status(other.fingerprint()).state,
        AlertState::Active
    );
    // When the critical alert resolves, the warning is sent again.
    let now = h.router.now_ms();
    h.router.receive(vec![alert(
        &[("alertname", "Down"), ("severity", "critical")],
        now - 1_000,
        now,
    )]);
    advance(300).await;
    let down: Vec<_> = h
        .sent
        .take()
        .into_iter()
        .filter(|n| n.group_key.ends_with("{alertname=\"Down\"}"))
        .collect();
    assert_eq!(
        down[0].alerts.len(),
        2,
        "the resolved critical and the warning"
    );
    assert_eq!(
        h.router.marker.status(warn.fingerprint()).state,
        AlertState::Active
    );
}

#[tokio::test(start_paused = true)]
async fn time_intervals_mute_their_routes() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    // 22:13 UTC: inside `always`, outside `night`.
    h.router.receive(vec![
        alert(&[("alertname", "M"), ("team", "muted")], now, now + DAY),
        alert(&[("alertname", "N"), ("team", "night")], now, now + DAY),
    ]);
    advance(31).await;
    assert!(h.sent.take().is_empty());
    // Muting by time does not touch the marker's silences.
    let fp = alert(&[("alertname", "M"), ("team", "muted")], 0, 0).fingerprint();
    assert_eq!(h.router.marker.status(fp).state, AlertState::Active);
    // 02:00 UTC the next day (13,600 s later) is inside `night`: the
    // group's first flush after that sends.
    advance(13_600 - 31).await;
    assert!(h.sent.take().is_empty());
    advance(300).await;
    let sent = h.sent.take();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|n| n.receiver == "night"));
}

#[tokio::test(start_paused = true)]
async fn silenced_alerts_are_not_sent_and_marked() {
    let h = start(CONFIG);
    h.silences.0.lock().push((
        "sil-1".into(),
        Matchers::sorted(parse_matchers("instance=\"a\"").unwrap()),
    ));
    let now = h.router.now_ms();
    let a = alert(&[("alertname", "S"), ("instance", "a")], now, now + DAY);
    let b = alert(&[("alertname", "S"), ("instance", "b")], now, now + DAY);
    h.router.receive(vec![a.clone(), b.clone()]);
    advance(31).await;
    let sent = h.sent.take();
    assert_eq!(names(&sent[0]), ["b"]);
    let status = h.router.marker.status(a.fingerprint());
    assert_eq!(
        (status.state, status.silenced_by),
        (AlertState::Suppressed, vec!["sil-1".to_string()])
    );
    // Expire the silence: the next flush carries both.
    h.silences.0.lock().clear();
    advance(300).await;
    assert_eq!(names(&h.sent.take()[0]), ["a", "b"]);
    assert_eq!(
        h.router.marker.status(a.fingerprint()).state,
        AlertState::Active
    );
}

#[tokio::test(start_paused = true)]
async fn reload_rebuilds_the_groups_from_the_store() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    h.router.receive(vec![
        alert(&[("alertname", "R"), ("instance", "1")], now, now + DAY),
        alert(&[("alertname", "R"), ("instance", "2")], now, now + DAY),
    ]);
    advance(31).await;
    assert_eq!(h.sent.take().len(), 1);
    let regrouped = CONFIG.replace("group_by: [alertname]", "group_by: [instance]");
    h.router
        .apply_config(&load_str(&regrouped, "t.yml", None).unwrap());
    // The alerts started more than group_wait ago: the new groups flush at once.
    advance(1).await;
    let mut keys: Vec<_> = h.sent.take().into_iter().map(|n| n.group_key).collect();
    keys.sort();
    assert_eq!(keys, ["{}:{instance=\"1\"}", "{}:{instance=\"2\"}"]);
    assert_eq!(h.router.metrics.groups.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn groups_view_is_sorted_as_alertmanager() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    h.router.receive(vec![
        alert(&[("alertname", "B"), ("instance", "2")], now, now + DAY),
        alert(&[("alertname", "B"), ("instance", "1")], now, now + DAY),
        alert(&[("alertname", "A"), ("job", "z")], now, now + DAY),
    ]);
    advance(1).await;
    let (groups, receivers) = h.router.alert_groups(&|_| true, &mut |_| true);
    let labels: Vec<_> = groups
        .iter()
        .map(|g| g.labels.get("alertname").unwrap())
        .collect();
    assert_eq!(labels, ["A", "B"]);
    assert_eq!(
        groups[1]
            .alerts
            .iter()
            .map(|a| a.labels.get("instance").unwrap())
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(receivers.len(), 3);
}

#[test]
fn label_set_order_is_prometheus_before() {
    let a = Labels::new([("a", "1")]);
    let b = Labels::new([("a", "1"), ("b", "0")]);
    let c = Labels::new([("a", "2")]);
    let d = Labels::new([("b", "0")]);
    assert!(label_set_before(&a, &b));
    assert!(label_set_before(&a, &c));
    assert!(!label_set_before(&c, &a));
    // {a="1"} vs {b="0"}: name `a` is missing from the second, so it is after.
    assert!(!label_set_before(&a, &d));
    assert!(label_set_before(&d, &a));
}

#[tokio::test(start_paused = true)]
async fn groups_due_together_are_handed_over_in_one_round() {
    let h = start(CONFIG);
    let now = h.router.now_ms();
    let names = ["A", "B", "C"];
    h.router.receive(
        names
            .iter()
            .map(|n| alert(&[("alertname", n)], now, now + DAY))
            .collect(),
    );
    advance(10).await;
    h.router
        .receive(vec![alert(&[("alertname", "D")], now, now + DAY)]);
    advance(21).await;
    assert_eq!(h.sent.take().len(), 3);
    advance(10).await;
    assert_eq!(h.sent.take().len(), 1);
    assert_eq!(*h.sent.1.lock(), [3, 1]);
}
