use super::*;
use crate::notify::config::load_str;

fn tree(text: &str) -> RouteTree {
    RouteTree::new(&load_str(text, "t.yml", None).unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

const TREE: &str = "route:
  receiver: root
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['severity=\"critical\"']
      receiver: pager
      continue: true
      repeat_interval: 1h
      routes:
        - matchers: ['team=~\"db|web\"']
          group_by: ['...']
    - matchers: ['severity=~\"critical|warning\"']
      receiver: chat
      group_by: []
time_intervals:
  - name: sunday
    time_intervals: [{weekdays: [sunday]}]
receivers: [{name: root}, {name: pager}, {name: chat}]
";

#[test]
fn depth_first_with_continue_and_inheritance() {
    let t = tree(TREE);
    assert_eq!(
        t.receivers_for(&labels(&[("severity", "critical")])),
        ["pager", "chat"]
    );
    assert_eq!(
        t.receivers_for(&labels(&[("severity", "warning")])),
        ["chat"]
    );
    assert_eq!(t.receivers_for(&labels(&[("severity", "info")])), ["root"]);
    let routes = t.routes_for(&labels(&[("severity", "critical"), ("team", "db")]));
    let child = routes[0];
    assert_eq!(child.opts.receiver, "pager");
    assert!(child.opts.group_by_all);
    assert_eq!(child.opts.group_wait, Duration::from_secs(10));
    assert_eq!(child.opts.repeat_interval, Duration::from_secs(3600));
    assert_eq!(child.opts.group_interval, DEFAULT_GROUP_INTERVAL);
    assert_eq!(child.key(), "{}/{severity=\"critical\"}/{team=~\"db|web\"}");
    // An empty group_by inherits the parent's.
    assert_eq!(
        routes[1].opts.group_by.iter().collect::<Vec<_>>(),
        ["alertname"]
    );
    let alert = labels(&[
        ("alertname", "Down"),
        ("severity", "critical"),
        ("team", "db"),
    ]);
    assert_eq!(
        routes[1].group_key(&alert),
        "{}/{severity=~\"critical|warning\"}:{alertname=\"Down\"}"
    );
    assert_eq!(child.group_labels(&alert).len(), 3);
}

#[test]
fn time_intervals_mute_and_activate_routes() {
    let t = tree(
        "route:
  receiver: r
  routes:
    - receiver: r
      mute_time_intervals: [sunday]
    - receiver: r
      active_time_intervals: [sunday]
time_intervals:
  - name: sunday
    time_intervals: [{weekdays: [sunday]}]
receivers: [{name: r}]
",
    );
    let sunday = crate::notify::timeinterval::days_from_civil(2026, 11, 22) * 86400 + 3600;
    let monday = sunday + 86400;
    let (muted, active) = (&t.root.routes[0], &t.root.routes[1]);
    assert!(t.is_muted(muted, sunday) && !t.is_muted(muted, monday));
    assert!(!t.is_muted(active, sunday) && t.is_muted(active, monday));
    assert!(!t.is_muted(&t.root, sunday));
}
