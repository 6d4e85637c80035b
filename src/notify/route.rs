//! The routing tree, as Alertmanager 0.25's dispatch/route.go builds and
//! walks it: depth-first, a matching child stops the walk of its siblings
//! unless it has `continue`, a route with no matching child matches itself;
//! `receiver`, `group_by`, `group_wait`, `group_interval` and
//! `repeat_interval` are inherited from the parent, and the time intervals
//! attached to a route decide whether it notifies at a given time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::model::Labels;

use super::config::{NotifyConfig, RouteConfig};
use super::matchers::Matchers;
use super::timeinterval::TimeInterval;

/// Alertmanager's defaults at the root.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// What a route does with the alerts it matches (after inheritance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    /// `group_by: ['...']`: group by every label.
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RouteNode {
    pub opts: RouteOpts,
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub routes: Vec<RouteNode>,
    key: String,
}

impl RouteNode {
    /// Builds the node for `config` under `parent`'s options.
    pub fn new(config: &RouteConfig, parent: Option<&RouteNode>) -> RouteNode {
        let mut opts = match parent {
            Some(p) => p.opts.clone(),
            None => RouteOpts {
                receiver: String::new(),
                group_by: BTreeSet::new(),
                group_by_all: false,
                group_wait: DEFAULT_GROUP_WAIT,
                group_interval: DEFAULT_GROUP_INTERVAL,
                repeat_interval: DEFAULT_REPEAT_INTERVAL,
                mute_time_intervals: Vec::new(),
                active_time_intervals: Vec::new(),
            },
        };
        if !config.receiver.is_empty() {
            opts.receiver = config.receiver.clone();
        }
        if let Some(group_by) = &config.group_by {
            let labels: BTreeSet<String> =
                group_by.iter().filter(|l| *l != "...").cloned().collect();
            if !labels.is_empty() {
                // Like Alertmanager: a list of labels replaces the parent's
                // grouping; `...` alone switches to all labels; an empty
                // list inherits.
                opts.group_by = labels;
                opts.group_by_all = false;
            } else if group_by.iter().any(|l| l == "...") {
                opts.group_by_all = true;
            }
        }
        if let Some(d) = config.group_wait {
            opts.group_wait = d.0;
        }
        if let Some(d) = config.group_interval {
            opts.group_interval = d.0;
        }
        if let Some(d) = config.repeat_interval {
            opts.repeat_interval = d.0;
        }
        // Time intervals are the route's own, never inherited (as in 0.25).
        opts.mute_time_intervals = config.mute_time_intervals.clone();
        opts.active_time_intervals = config.active_time_intervals.clone();
        let matchers = config.all_matchers();
        let key = match parent {
            Some(p) => format!("{}/{}", p.key, matchers),
            None => matchers.to_string(),
        };
        let mut node = RouteNode {
            opts,
            matchers,
            continue_matching: config.continue_matching,
            routes: Vec::new(),
            key,
        };
        node.routes = config
            .routes
            .iter()
            .map(|c| RouteNode::new(c, Some(&node)))
            .collect();
        node
    }

    /// The routes an alert with these labels goes to, in tree order.
    pub fn routes_for(&self, labels: &Labels) -> Vec<&RouteNode> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let matched = child.routes_for(labels);
            let stop = !matched.is_empty() && !child.continue_matching;
            all.extend(matched);
            if stop {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// Alertmanager's route key: the matchers of the path from the root,
    /// `{}/{severity="critical"}`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The labels of `labels` this route groups by.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        let kept = labels
            .iter()
            .filter(|l| self.opts.group_by_all || self.opts.group_by.contains(&l.name))
            .map(|l| (l.name.clone(), l.value.clone()));
        Labels::new(kept.collect::<BTreeMap<_, _>>())
    }

    /// The aggregation group's key: `route key:{label="value", …}` as
    /// Alertmanager writes it.
    pub fn group_key(&self, labels: &Labels) -> String {
        let group = self.group_labels(labels);
        let inner: Vec<String> = group
            .iter()
            .map(|l| format!("{}={}", l.name, go_quote(&l.value)))
            .collect();
        format!("{}:{{{}}}", self.key, inner.join(", "))
    }

    /// Every node, depth first.
    pub fn walk<'a>(&'a self, visit: &mut dyn FnMut(&'a RouteNode)) {
        visit(self);
        for child in &self.routes {
            child.walk(visit);
        }
    }
}

/// Go's `%q` as the router uses it (group keys, validation messages).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The routing tree of a notification config, with its time intervals.
#[derive(Clone, Debug)]
pub struct RouteTree {
    pub root: RouteNode,
    intervals: BTreeMap<String, Vec<TimeInterval>>,
}

impl RouteTree {
    pub fn new(config: &NotifyConfig) -> RouteTree {
        RouteTree {
            root: RouteNode::new(&config.route, None),
            intervals: config.time_intervals.clone(),
        }
    }

    pub fn routes_for(&self, labels: &Labels) -> Vec<&RouteNode> {
        self.root.routes_for(labels)
    }

    /// The receivers an alert goes to, in tree order (as `amtool config
    /// routes test` prints them).
    pub fn receivers_for(&self, labels: &Labels) -> Vec<&str> {
        self.routes_for(labels)
            .into_iter()
            .map(|r| r.opts.receiver.as_str())
            .collect()
    }

    fn in_any(&self, names: &[String], unix_secs: i64) -> bool {
        names.iter().any(|n| {
            self.intervals
                .get(n)
                .is_some_and(|list| list.iter().any(|ti| ti.contains(unix_secs)))
        })
    }

    /// Whether the route's notifications are held back at this instant: it
    /// is inside one of its `mute_time_intervals`, or it has
    /// `active_time_intervals` and is inside none of them.
    pub fn is_muted(&self, route: &RouteNode, unix_secs: i64) -> bool {
        if self.in_any(&route.opts.mute_time_intervals, unix_secs) {
            return true;
        }
        !route.opts.active_time_intervals.is_empty()
            && !self.in_any(&route.opts.active_time_intervals, unix_secs)
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
