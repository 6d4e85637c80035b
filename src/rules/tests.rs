//! Unit tests of the rule engine against Prometheus 2.42's semantics, on a
//! real store in a temp directory. (`tests/integration/rules.rs` runs the
//! daemon; `bellwether test rules` is checked against promtool there too.)

use std::time::Duration;

use super::*;
use crate::model::{is_stale_nan, Labels, Matcher};
use crate::promql::EngineOptions;
use crate::storage::StorageOptions;

struct Fixture {
    ctx: EvalContext,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage =
        Storage::open(StorageOptions::for_epoch_fixtures(dir.path())).expect("open store");
    let ctx = EvalContext {
        engine: Engine::new(storage.clone(), EngineOptions::default()),
        storage,
        external_labels: BTreeMap::new(),
        external_url: "http://bellwether:9471".to_string(),
        template_errors: Default::default(),
    };
    Fixture { ctx, _dir: dir }
}

const S: i64 = 1000;

fn series(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut labels = Labels::new(pairs.iter().copied());
    labels.set("__name__", name);
    labels
}

/// Writes `values[i]` at `i * step` (None = no sample).
fn write(f: &Fixture, labels: &Labels, step: i64, values: &[Option<f64>]) {
    let mut app = f.ctx.storage.appender();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            app.add(labels.clone(), i as i64 * step, *v);
        }
    }
    app.commit().expect("commit");
}

fn group(text: &str) -> Group {
    let mut groups = parse_rule_file(text, "test.yml", &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e:?}"))
        .groups;
    groups.remove(0)
}

fn alerting(g: &Group, i: usize) -> &AlertingRule {
    match &g.rules()[i] {
        Rule::Alerting(a) => a,
        Rule::Recording(_) => panic!("rule {i} is not an alerting rule"),
    }
}

/// Samples of series matching `name` (and `extra` matchers) at exactly `t`.
fn samples_at(f: &Fixture, name: &str, t: i64) -> Vec<(Labels, f64)> {
    let q = f.ctx.storage.querier(t, t);
    q.select(&[Matcher::equal("__name__", name)])
        .expect("select")
        .into_iter()
        .filter_map(|s| {
            s.samples
                .iter()
                .find(|x| x.t == t)
                .map(|x| (s.labels.clone(), x.v))
        })
        .collect()
}

const DOWN: &str = r#"
groups:
  - name: g
    interval: 15s
    rules:
      - alert: Down
        expr: up == 0
        for: 30s
        labels: {severity: page}
        annotations: {summary: down}
"#;

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let f = fixture();
    let up = series("up", &[("instance", "a"), ("job", "j")]);
    // 0 for 0..=60s, then 1.
    let values: Vec<Option<f64>> = (0..12)
        .map(|i| Some(if i <= 4 { 0.0 } else { 1.0 }))
        .collect();
    write(&f, &up, 15 * S, &values);
    let g = group(DOWN);
    let rule = alerting(&g, 0);
    let delay = Duration::from_secs(60);

    let out = g.eval(0, &f.ctx, delay);
    assert_eq!(out.failed_rules, 0);
    let alerts = rule.active_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, AlertState::Pending);
    assert_eq!(alerts[0].active_at, 0);
    assert_eq!(
        alerts[0].labels,
        Labels::new([
            ("alertname", "Down"),
            ("instance", "a"),
            ("job", "j"),
            ("severity", "page")
        ])
    );
    assert!(out.alerts.is_empty(), "pending alerts are not sent");
    let written = samples_at(&f, "ALERTS", 0);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0.get("alertstate"), Some("pending"));
    assert_eq!(samples_at(&f, "ALERTS_FOR_STATE", 0)[0].1, 0.0);

    g.eval(15 * S, &f.ctx, delay);
    assert_eq!(rule.active_alerts()[0].state, AlertState::Pending);
    let out = g.eval(30 * S, &f.ctx, delay);
    let a = &rule.active_alerts()[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.fired_at, Some(30 * S));
    assert_eq!(out.alerts.len(), 1, "a newly firing alert is sent");
    assert_eq!(out.alerts[0].0, "up == 0");
    assert_eq!(out.alerts[0].1.valid_until, Some(30 * S + 4 * 60 * S));
    assert_eq!(
        samples_at(&f, "ALERTS", 30 * S)[0].0.get("alertstate"),
        Some("firing")
    );

    // Still firing at 45s: not re-sent within the resend delay.
    assert!(g.eval(45 * S, &f.ctx, delay).alerts.is_empty());
    // 1 from 75s on: resolved, sent once as resolved, no more ALERTS.
    g.eval(60 * S, &f.ctx, delay);
    let out = g.eval(75 * S, &f.ctx, delay);
    assert!(rule.active_alerts().is_empty());
    let all = rule.alerts();
    assert_eq!(all[0].state, AlertState::Inactive);
    assert_eq!(all[0].resolved_at, Some(75 * S));
    assert_eq!(out.alerts.len(), 1);
    assert_eq!(out.alerts[0].1.resolved_at, Some(75 * S));
    assert!(samples_at(&f, "ALERTS", 75 * S)
        .iter()
        .all(|(_, v)| is_stale_nan(*v)));
    assert!(g.eval(90 * S, &f.ctx, delay).alerts.is_empty());
    // Kept (and shown as resolved) for 15 minutes after resolution, then forgotten.
    g.eval(75 * S + 15 * 60 * S, &f.ctx, delay);
    assert_eq!(rule.alerts().len(), 1);
    g.eval(90 * S + 15 * 60 * S, &f.ctx, delay);
    assert!(rule.alerts().is_empty());
}

#[test]
fn firing_alerts_are_resent_every_resend_delay() {
    let f = fixture();
    let up = series("up", &[("job", "j")]);
    write(&f, &up, 15 * S, &[Some(0.0); 20]);
    let g = group(DOWN.replace("for: 30s", "for: 0s").as_str());
    let delay = Duration::from_secs(60);
    let sent: Vec<i64> = (0..12)
        .filter(|i| !g.eval(i * 15 * S, &f.ctx, delay).alerts.is_empty())
        .map(|i| i * 15 * S)
        .collect();
    // First at 0 (no `for`), then whenever last_sent + 60s < now.
    assert_eq!(sent, vec![0, 75 * S, 150 * S]);
}

#[test]
fn keep_firing_for_holds_a_cleared_alert() {
    let f = fixture();
    let up = series("up", &[("job", "j")]);
    // 0 at 0 and 15s, then 1: the condition clears at 30s.
    let values: Vec<Option<f64>> = (0..10)
        .map(|i| Some(if i < 2 { 0.0 } else { 1.0 }))
        .collect();
    write(&f, &up, 15 * S, &values);
    let g = group(
        r#"
groups:
  - name: g
    interval: 15s
    rules:
      - alert: Down
        expr: up == 0
        keep_firing_for: 30s
"#,
    );
    let rule = alerting(&g, 0);
    let d = Duration::from_secs(60);
    g.eval(0, &f.ctx, d);
    assert_eq!(rule.active_alerts()[0].state, AlertState::Firing);
    g.eval(15 * S, &f.ctx, d);
    g.eval(30 * S, &f.ctx, d); // cleared: kept firing since 30s
    let a = &rule.active_alerts()[0];
    assert_eq!(a.state, AlertState::Firing);
    assert_eq!(a.keep_firing_since, Some(30 * S));
    assert_eq!(samples_at(&f, "ALERTS", 30 * S).len(), 1);
    g.eval(45 * S, &f.ctx, d);
    assert_eq!(rule.active_alerts()[0].state, AlertState::Firing);
    g.eval(60 * S, &f.ctx, d); // 30s since: resolved
    assert!(rule.active_alerts().is_empty());
    assert_eq!(rule.alerts()[0].resolved_at, Some(60 * S));
}

#[test]
fn recording_rules_write_relabelled_series_and_mark_vanished_ones_stale() {
    let f = fixture();
    let a = series("x", &[("job", "a")]);
    let b = series("x", &[("job", "b")]);
    write(&f, &a, 15 * S, &[Some(1.0), Some(2.0), Some(3.0)]);
    write(
        &f,
        &b,
        15 * S,
        &[
            Some(5.0),
            Some(f64::from_bits(crate::model::STALE_NAN_BITS)),
        ],
    );
    let g = group(
        r#"
groups:
  - name: g
    interval: 15s
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
        labels: {team: infra}
      - record: all:x:sum
        expr: sum(job:x:sum)
"#,
    );
    let d = Duration::from_secs(60);
    g.eval(0, &f.ctx, d);
    let mut got = samples_at(&f, "job:x:sum", 0);
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        vec![
            (
                Labels::new([("__name__", "job:x:sum"), ("job", "a"), ("team", "infra")]),
                1.0
            ),
            (
                Labels::new([("__name__", "job:x:sum"), ("job", "b"), ("team", "infra")]),
                5.0
            ),
        ]
    );
    // The second rule sees the first rule's output at the same timestamp.
    assert_eq!(samples_at(&f, "all:x:sum", 0)[0].1, 6.0);
    // job="b" went stale at 15s: its recorded series gets a staleness marker.
    g.eval(15 * S, &f.ctx, d);
    let at_15 = samples_at(&f, "job:x:sum", 15 * S);
    let b_out = at_15
        .iter()
        .find(|(l, _)| l.get("job") == Some("b"))
        .expect("a marker for job b");
    assert!(is_stale_nan(b_out.1));
}

#[test]
fn duplicate_label_sets_and_limits_fail_the_rule() {
    let f = fixture();
    write(&f, &series("x", &[("job", "a")]), 15 * S, &[Some(1.0)]);
    write(&f, &series("x", &[("job", "b")]), 15 * S, &[Some(1.0)]);
    let g = group(
        r#"
groups:
  - name: g
    limit: 1
    rules:
      - record: r
        expr: x
      - record: dropped_job
        expr: x
        labels: {job: ""}
"#,
    );
    let out = g.eval(0, &f.ctx, Duration::from_secs(60));
    assert_eq!(out.failed_rules, 2);
    let statuses: Vec<String> = g
        .rules()
        .iter()
        .map(|r| r.status().last_error.unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        vec![
            "exceeded limit of 1 with 2 series".to_string(),
            "vector contains metrics with the same labelset after applying rule labels".to_string()
        ]
    );
    assert_eq!(g.rules()[0].health(), RuleHealth::Err);
}

#[test]
fn rule_file_errors_locate_themselves() {
    let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n      - record: 'a b'\n        expr: up\n        for: 1m\n";
    let errors = parse_rule_file(text, "r.yml", &LoadOptions::default())
        .err()
        .expect("refused");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0]
        .starts_with("r.yml:5:15: group \"g\", rule 1, \"A\": could not parse expression: "));
    assert_eq!(
        errors[1],
        "r.yml:6:17: group \"g\", rule 2, \"a b\": invalid field 'for' in recording rule"
    );
    assert_eq!(
        errors[2],
        "r.yml:6:17: group \"g\", rule 2, \"a b\": invalid recording rule name: a b"
    );
}

#[test]
fn groups_take_the_default_interval_and_their_own_settings() {
    let options = LoadOptions {
        default_interval: Duration::from_secs(20),
    };
    let text = "groups:\n  - name: a\n    rules: []\n  - name: b\n    interval: 5s\n    query_offset: 1m\n    limit: 7\n    rules: []\n";
    let groups = parse_rule_file(text, "f.yml", &options)
        .expect("valid")
        .groups;
    assert_eq!(groups[0].interval(), Duration::from_secs(20));
    assert_eq!(groups[1].interval(), Duration::from_secs(5));
    assert_eq!(groups[1].query_offset(), Duration::from_secs(60));
    assert_eq!(groups[1].limit(), 7);
    assert_eq!(groups[1].key(), "f.yml;b");
}

#[test]
fn eval_slots_are_aligned_and_stable() {
    let g = group(DOWN);
    let interval = 15 * S;
    let t = 1_700_000_000_123;
    let slot = g.eval_timestamp(t);
    assert!(slot <= t && t - slot < interval);
    assert_eq!(g.eval_timestamp(slot + interval), slot + interval);
    assert_eq!(group(DOWN).eval_timestamp(t), slot, "same group, same slot");
}

#[test]
fn query_offset_shifts_the_query_and_the_written_samples() {
    let f = fixture();
    write(
        &f,
        &series("x", &[]),
        60 * S,
        &[Some(1.0), Some(2.0), Some(3.0)],
    );
    let g = group("groups:\n  - name: g\n    query_offset: 1m\n    rules:\n      - record: y\n        expr: x\n");
    g.eval(120 * S, &f.ctx, Duration::from_secs(60));
    assert_eq!(samples_at(&f, "y", 60 * S)[0].1, 2.0);
}

#[test]
fn alert_state_round_trips_through_sqlite_and_restores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = AlertStateStore::open(dir.path()).expect("open");
    assert!(store.load("f;g").expect("load").is_none());
    let alert = Alert {
        labels: Labels::new([("alertname", "A"), ("x", "1")]),
        annotations: vec![("summary".into(), "s".into())],
        state: AlertState::Firing,
        value: 3.5,
        active_at: 1000,
        fired_at: Some(2000),
        resolved_at: None,
        last_sent_at: Some(2000),
        valid_until: Some(9000),
        keep_firing_since: Some(3000),
    };
    store
        .save("f;g", 5000, &[("A{}".to_string(), alert.clone())])
        .expect("save");
    let saved = store.load("f;g").expect("load").expect("saved");
    assert_eq!(saved.last_eval, 5000);
    let (rule, restored) = &saved.alerts[0];
    assert_eq!(rule, "A{}");
    assert_eq!(
        restored,
        &Alert {
            last_sent_at: None,
            valid_until: None,
            ..alert
        }
    );
    store.remove("f;g").expect("remove");
    assert!(store.load("f;g").expect("load").is_none());
}

#[test]
fn a_reloaded_group_keeps_its_alerts() {
    let f = fixture();
    write(&f, &series("up", &[("job", "j")]), 15 * S, &[Some(0.0); 4]);
    let old = group(DOWN);
    old.eval(0, &f.ctx, Duration::from_secs(60));
    let new = group(DOWN);
    new.copy_state_from(&old);
    new.eval(30 * S, &f.ctx, Duration::from_secs(60));
    let a = &alerting(&new, 0).active_alerts()[0];
    assert_eq!(a.active_at, 0, "the for clock carried over");
    assert_eq!(a.state, AlertState::Firing);
}

/// Unchanged alerts are not rewritten, but the group's heartbeat still
/// advances every 30 s (the restore's outage check reads it); a regression:
/// the heartbeat clock used to move without writing, so it never advanced.
#[test]
fn unchanged_alert_state_writes_a_heartbeat_every_30s() {
    let f = fixture();
    write(&f, &series("up", &[("job", "j")]), 15 * S, &[Some(0.0); 8]);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = AlertStateStore::open(dir.path()).expect("open");
    let g = group(DOWN);
    let mut persisted = super::manager::Persisted::default();
    let last_eval =
        |store: &AlertStateStore| store.load(&g.key()).expect("load").map(|s| s.last_eval);
    for i in 0..6 {
        let ts = i * 15 * S;
        g.eval(ts, &f.ctx, Duration::from_secs(60));
        persisted.save(&store, &g, ts).expect("save");
        // 0s: new pending alert, saved. 15s: unchanged, 15s since: nothing.
        // 30s: firing, saved. 45s: nothing. 60s: unchanged, 30s since: heartbeat.
        let expected = [0, 0, 30 * S, 30 * S, 60 * S, 60 * S][i as usize];
        assert_eq!(
            last_eval(&store),
            Some(expected),
            "after the evaluation at {ts}"
        );
    }
}
