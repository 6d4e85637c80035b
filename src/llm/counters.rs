//! The usage counters behind the `llm_*`, `agent_*`, `workflow_*` and
//! `user_sessions_active` series: kept in memory, aggregated per label
//! combination, turned into samples on an interval, and saved (as one JSON
//! document) with every ledger write so that they do not reset on restart.
//!
//! Every label value a client chooses is bounded: the first `max` distinct
//! values of a label are kept, later ones are counted under `other`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::{Labels, Timestamp};

use super::pricing::FEMTO_PER_USD;

/// `gen_ai.client.operation.duration`'s explicit bucket boundaries from the
/// OpenTelemetry GenAI semantic conventions, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// The `type` label values of `llm_tokens_total`, in the order of
/// [`UsageTotals::tokens`].
pub const TOKEN_TYPES: [&str; 5] = ["input", "output", "cache_read", "cache_write", "reasoning"];

/// The label value that stands for every value past a label's bound.
pub const OTHER: &str = "other";

/// The labels one request is counted under (already bounded). An empty
/// string is an absent label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsageKey {
    pub provider: String,
    pub model: String,
    pub org: String,
    pub team: String,
    pub status: String,
}

/// Totals of one [`UsageKey`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// By [`TOKEN_TYPES`].
    pub tokens: [u64; 5],
    pub requests: u64,
    /// Requests that had a price (from the table or reported).
    pub priced: u64,
    pub unpriced: u64,
    pub cost_femto: u128,
    /// Cumulative is computed at exposition; these are per-bucket counts
    /// (a duration lands in the first bucket whose bound it does not exceed,
    /// or in none when over the last, counting only in `_count`).
    pub duration_buckets: [u64; 14],
    pub duration_count: u64,
    pub duration_sum_nanos: u128,
}

/// A label whose values are bounded.
#[derive(Debug, Default)]
pub struct Bounded {
    pub max: usize,
    values: HashSet<String>,
}

impl Bounded {
    pub fn new(max: usize) -> Bounded {
        Bounded {
            max,
            values: HashSet::new(),
        }
    }

    /// `value` if it is known or there is room for it, else `other`.
    /// The empty string (label absent) is always admitted.
    pub fn admit(&mut self, value: &str) -> String {
        if value.is_empty() || self.values.contains(value) {
            return value.to_string();
        }
        if self.values.len() < self.max {
            self.values.insert(value.to_string());
            return value.to_string();
        }
        OTHER.to_string()
    }

    fn remember(&mut self, value: &str) {
        if !value.is_empty() && value != OTHER {
            self.values.insert(value.to_string());
        }
    }
}

/// The bounds of every client-chosen label.
#[derive(Debug, Default)]
pub struct Bounds {
    pub provider: Bounded,
    pub model: Bounded,
    pub org: Bounded,
    pub team: Bounded,
    pub status: Bounded,
    pub agent: Bounded,
    pub workflow: Bounded,
}

impl Bounds {
    pub fn new(max_orgs: usize, max_teams: usize, max_values: usize) -> Bounds {
        Bounds {
            provider: Bounded::new(max_values),
            model: Bounded::new(max_values),
            org: Bounded::new(max_orgs),
            team: Bounded::new(max_teams),
            status: Bounded::new(max_values),
            agent: Bounded::new(max_values),
            workflow: Bounded::new(max_values),
        }
    }

    /// New limits; values already admitted stay (their series exist).
    pub fn set_limits(&mut self, max_orgs: usize, max_teams: usize, max_values: usize) {
        self.org.max = max_orgs;
        self.team.max = max_teams;
        for b in [
            &mut self.provider,
            &mut self.model,
            &mut self.status,
            &mut self.agent,
            &mut self.workflow,
        ] {
            b.max = max_values;
        }
    }
}

/// All counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub usage: HashMap<UsageKey, UsageTotals>,
    /// (agent, status) → invocations.
    pub agents: HashMap<(String, String), u64>,
    /// (workflow, status) → completions.
    pub workflows: HashMap<(String, String), u64>,
    /// Open sessions → last time seen (ms).
    pub sessions: HashMap<String, Timestamp>,
}

/// The saved form of [`Counters`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    usage: Vec<(UsageKey, UsageTotals)>,
    agents: Vec<(String, String, u64)>,
    workflows: Vec<(String, String, u64)>,
    sessions: Vec<(String, Timestamp)>,
}

impl Counters {
    /// One request under `key`: its tokens, its cost (`None`: unpriced) and
    /// its duration if known.
    pub fn add_request(
        &mut self,
        key: UsageKey,
        tokens: [u64; 5],
        cost_femto: Option<u128>,
        duration_seconds: Option<f64>,
    ) {
        let totals = self.usage.entry(key).or_default();
        for (total, n) in totals.tokens.iter_mut().zip(tokens) {
            *total = total.saturating_add(n);
        }
        totals.requests += 1;
        match cost_femto {
            Some(femto) => {
                totals.priced += 1;
                totals.cost_femto = totals.cost_femto.saturating_add(femto);
            }
            None => totals.unpriced += 1,
        }
        if let Some(d) = duration_seconds {
            if let Some(i) = DURATION_BUCKETS.iter().position(|b| d <= *b) {
                totals.duration_buckets[i] += 1;
            }
            totals.duration_count += 1;
            totals.duration_sum_nanos += (d * 1e9).round() as u128;
        }
    }

    /// Forgets sessions idle since before `cutoff`.
    pub fn expire_sessions(&mut self, cutoff: Timestamp) {
        self.sessions.retain(|_, last| *last >= cutoff);
    }

    pub fn to_json(&self) -> String {
        let mut saved = Saved {
            usage: self
                .usage
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            agents: self
                .agents
                .iter()
                .map(|((a, s), n)| (a.clone(), s.clone(), *n))
                .collect(),
            workflows: self
                .workflows
                .iter()
                .map(|((w, s), n)| (w.clone(), s.clone(), *n))
                .collect(),
            sessions: self.sessions.iter().map(|(s, t)| (s.clone(), *t)).collect(),
        };
        saved.usage.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::to_string(&saved).expect("counters serialize to JSON")
    }

    /// Restores saved counters and teaches `bounds` the label values they use.
    pub fn from_json(text: &str, bounds: &mut Bounds) -> Result<Counters, String> {
        let saved: Saved = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut counters = Counters::default();
        for (key, totals) in saved.usage {
            bounds.provider.remember(&key.provider);
            bounds.model.remember(&key.model);
            bounds.org.remember(&key.org);
            bounds.team.remember(&key.team);
            bounds.status.remember(&key.status);
            counters.usage.insert(key, totals);
        }
        for (agent, status, n) in saved.agents {
            bounds.agent.remember(&agent);
            bounds.status.remember(&status);
            counters.agents.insert((agent, status), n);
        }
        for (workflow, status, n) in saved.workflows {
            bounds.workflow.remember(&workflow);
            bounds.status.remember(&status);
            counters.workflows.insert((workflow, status), n);
        }
        counters.sessions = saved.sessions.into_iter().collect();
        Ok(counters)
    }

    /// Every series' current value, each labelled with `base` (job, instance)
    /// and its own labels. Series of the same name and labels from several
    /// keys are summed.
    pub fn samples(&self, base: &[(&str, &str)]) -> Vec<(Labels, f64)> {
        let mut out: BTreeMap<Vec<(&'static str, String)>, f64> = BTreeMap::new();
        let mut add = |name: &'static str, labels: &[(&'static str, &str)], v: f64| {
            let mut key: Vec<(&'static str, String)> = vec![("__name__", name.to_string())];
            key.extend(labels.iter().map(|(n, v)| (*n, v.to_string())));
            *out.entry(key).or_insert(0.0) += v;
        };
        let mut costs: BTreeMap<(&str, &str, &str, &str), u128> = BTreeMap::new();
        let mut durations: BTreeMap<(&str, &str), ([u64; 14], u64, u128)> = BTreeMap::new();
        for (k, t) in &self.usage {
            let pm = [
                ("provider", k.provider.as_str()),
                ("model", k.model.as_str()),
            ];
            for (ty, n) in TOKEN_TYPES.iter().zip(t.tokens) {
                add("llm_tokens_total", &[pm[0], pm[1], ("type", ty)], n as f64);
            }
            add(
                "llm_requests_total",
                &[pm[0], pm[1], ("status", &k.status)],
                t.requests as f64,
            );
            if t.unpriced > 0 {
                add("llm_unpriced_requests_total", &pm, t.unpriced as f64);
            }
            if t.priced > 0 {
                *costs
                    .entry((&k.provider, &k.model, &k.org, &k.team))
                    .or_insert(0) += t.cost_femto;
            }
            if t.duration_count > 0 {
                let d = durations.entry((&k.provider, &k.model)).or_default();
                for (a, b) in d.0.iter_mut().zip(t.duration_buckets) {
                    *a += b;
                }
                d.1 += t.duration_count;
                d.2 += t.duration_sum_nanos;
            }
        }
        // Summed in femto-dollars first, so the float is rounded once.
        for ((provider, model, org, team), femto) in costs {
            add(
                "llm_cost_usd_total",
                &[
                    ("provider", provider),
                    ("model", model),
                    ("org", org),
                    ("team", team),
                ],
                femto as f64 / FEMTO_PER_USD as f64,
            );
        }
        for ((provider, model), (buckets, count, sum)) in durations {
            let pm = [("provider", provider), ("model", model)];
            let mut cumulative = 0;
            for (bound, n) in DURATION_BUCKETS.iter().zip(buckets) {
                cumulative += n;
                let le = format_bound(*bound);
                add(
                    "llm_request_duration_seconds_bucket",
                    &[pm[0], pm[1], ("le", &le)],
                    cumulative as f64,
                );
            }
            add(
                "llm_request_duration_seconds_bucket",
                &[pm[0], pm[1], ("le", "+Inf")],
                count as f64,
            );
            add("llm_request_duration_seconds_count", &pm, count as f64);
            add("llm_request_duration_seconds_sum", &pm, sum as f64 / 1e9);
        }
        for ((agent, status), n) in &self.agents {
            add(
                "agent_invocations_total",
                &[("agent", agent), ("status", status)],
                *n as f64,
            );
        }
        for ((workflow, status), n) in &self.workflows {
            add(
                "workflow_completions_total",
                &[("workflow", workflow), ("status", status)],
                *n as f64,
            );
        }
        add("user_sessions_active", &[], self.sessions.len() as f64);
        out.into_iter()
            .map(|(pairs, v)| {
                let labels = Labels::new(
                    base.iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .chain(pairs.into_iter().map(|(n, v)| (n.to_string(), v))),
                );
                (labels, v)
            })
            .collect()
    }
}

/// A bucket bound as Prometheus's Go client writes `le`: `0.01`, `5.12`, `10.24`.
fn format_bound(b: f64) -> String {
    format!("{b}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(org: &str) -> UsageKey {
        UsageKey {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            org: org.into(),
            team: String::new(),
            status: "ok".into(),
        }
    }

    fn value(samples: &[(Labels, f64)], name: &str, want: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|(l, _)| {
                l.metric_name() == Some(name) && want.iter().all(|(n, v)| l.get(n) == Some(*v))
            })
            .map(|(_, v)| *v)
    }

    #[test]
    fn series_sum_over_the_labels_they_do_not_have() {
        let mut c = Counters::default();
        c.add_request(
            key("acme"),
            [10, 5, 2, 0, 1],
            Some(1_500_000_000_000_000),
            Some(0.05),
        );
        c.add_request(key("globex"), [1, 1, 0, 0, 0], None, Some(100.0));
        let s = c.samples(&[("job", "bellwether"), ("instance", "h:1")]);
        let get = |name, want: &[(&str, &str)]| value(&s, name, want);
        assert_eq!(get("llm_tokens_total", &[("type", "input")]), Some(11.0));
        assert_eq!(get("llm_tokens_total", &[("type", "reasoning")]), Some(1.0));
        assert_eq!(get("llm_requests_total", &[("status", "ok")]), Some(2.0));
        assert_eq!(get("llm_cost_usd_total", &[("org", "acme")]), Some(1.5));
        // An unpriced request adds no cost series (not $0) and counts as unpriced.
        assert_eq!(get("llm_cost_usd_total", &[("org", "globex")]), None);
        assert_eq!(
            get("llm_unpriced_requests_total", &[("model", "gpt-4o")]),
            Some(1.0)
        );
        assert_eq!(
            get("llm_request_duration_seconds_bucket", &[("le", "0.08")]),
            Some(1.0)
        );
        assert_eq!(
            get("llm_request_duration_seconds_bucket", &[("le", "81.92")]),
            Some(1.0)
        );
        assert_eq!(
            get("llm_request_duration_seconds_bucket", &[("le", "+Inf")]),
            Some(2.0)
        );
        assert_eq!(get("llm_request_duration_seconds_sum", &[]), Some(100.05));
        assert_eq!(
            get("user_sessions_active", &[("job", "bellwether")]),
            Some(0.0)
        );
        // An absent label (empty team) is not written.
        assert!(s.iter().all(|(l, _)| l.get("team").is_none()));
    }

    #[test]
    fn bounded_labels_fall_back_to_other() {
        let mut b = Bounded::new(2);
        assert_eq!(b.admit("a"), "a");
        assert_eq!(b.admit("b"), "b");
        assert_eq!(b.admit("c"), OTHER);
        assert_eq!(b.admit("a"), "a");
        assert_eq!(b.admit(""), "");
    }

    #[test]
    fn counters_round_trip_through_json() {
        let mut c = Counters::default();
        c.add_request(
            key("acme"),
            [10, 5, 2, 0, 1],
            Some(u128::from(u64::MAX) * 3),
            None,
        );
        c.agents.insert(("planner".into(), "ok".into()), 3);
        c.sessions.insert("s1".into(), 42);
        let mut bounds = Bounds::new(1, 1, 10);
        let back = Counters::from_json(&c.to_json(), &mut bounds).expect("restored");
        assert_eq!(back.usage, c.usage);
        assert_eq!(back.agents, c.agents);
        assert_eq!(back.sessions, c.sessions);
        // The restored org takes the only org slot.
        assert_eq!(bounds.org.admit("globex"), OTHER);
        assert_eq!(bounds.org.admit("acme"), "acme");
    }
}
