//! A rule group: rules evaluated in order, on one interval, each seeing the
//! results the rules before it wrote at the same timestamp (Prometheus's
//! `Group.Eval`).
//!
//! The group remembers which series each rule wrote last time, so a series
//! a rule stops producing gets a staleness marker, as Prometheus writes one;
//! series of rules removed by a reload are marked stale at the next
//! evaluation.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::model::{now_millis, stale_nan, Labels, Timestamp};

use super::{Alert, EvalContext, Rule, RuleHealth, RuleStatus};

pub struct Group {
    name: String,
    file: String,
    interval: Duration,
    limit: usize,
    query_offset: Duration,
    rules: Vec<Rule>,
    runtime: Mutex<GroupRuntime>,
}

#[derive(Default)]
struct GroupRuntime {
    /// Per rule: the series it wrote at its last successful evaluation.
    previous: Vec<HashSet<Labels>>,
    /// Series of rules that no longer exist, to mark stale.
    stale: Vec<Labels>,
    /// Wall-clock start of the last evaluation (Unix ms).
    last_evaluation: Option<Timestamp>,
    evaluation_duration: Duration,
    /// The evaluation timestamp of the last evaluation.
    last_eval_ts: Option<Timestamp>,
}

/// What one evaluation of a group did.
#[derive(Debug, Default)]
pub struct GroupEvalOutcome {
    /// Alerts due to be sent (firing ones every resend delay, resolutions
    /// once), each with its rule's query (for the generator URL).
    pub alerts: Vec<(String, Alert)>,
    /// Samples the rules produced (Prometheus's `rule_group_last_evaluation_samples`).
    pub samples: usize,
    /// Rules whose evaluation failed.
    pub failed_rules: usize,
}

impl Group {
    pub fn new(
        name: String,
        file: String,
        interval: Duration,
        limit: usize,
        query_offset: Duration,
        rules: Vec<Rule>,
    ) -> Group {
        let runtime = GroupRuntime {
            previous: rules.iter().map(|_| HashSet::new()).collect(),
            ..GroupRuntime::default()
        };
        Group {
            name,
            file,
            interval: if interval.is_zero() {
                Duration::from_secs(60)
            } else {
                interval
            },
            limit,
            query_offset,
            rules,
            runtime: Mutex::new(runtime),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// Prometheus's group key, `FILE;NAME`: unique per running group, and
    /// the `rule_group` label of the group metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn query_offset(&self) -> Duration {
        self.query_offset
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn last_evaluation(&self) -> Option<Timestamp> {
        self.runtime.lock().last_evaluation
    }

    pub fn evaluation_duration(&self) -> Duration {
        self.runtime.lock().evaluation_duration
    }

    pub fn last_eval_ts(&self) -> Option<Timestamp> {
        self.runtime.lock().last_eval_ts
    }

    /// The first evaluation slot at or before `now` (Unix ms): slots are
    /// `interval` apart with an offset derived from the group key, so groups
    /// spread over the interval and a group keeps its slots across restarts
    /// (Prometheus's `EvalTimestamp`; the hash differs from Prometheus's).
    pub fn eval_timestamp(&self, now: Timestamp) -> Timestamp {
        let interval = self.interval.as_millis().max(1) as i64;
        let mut hash = crate::collect::scrape::target::Fnv64::new();
        hash.write(self.name.as_bytes());
        hash.write(&[0xff]);
        hash.write(self.file.as_bytes());
        let offset = (hash.finish() % interval as u64) as i64;
        let adjusted = now - offset;
        adjusted - adjusted.rem_euclid(interval) + offset
    }

    /// Evaluates every rule at `ts`, writing their results (at `ts` minus the
    /// query offset) and staleness markers to the store. Blocks on the store
    /// and the engine: run it on a blocking thread.
    pub fn eval(
        &self,
        ts: Timestamp,
        ctx: &EvalContext,
        resend_delay: Duration,
    ) -> GroupEvalOutcome {
        let group_start = Instant::now();
        let wall_start = now_millis();
        let query_ts = ts - self.query_offset.as_millis() as i64;
        let mut outcome = GroupEvalOutcome::default();
        for (i, rule) in self.rules.iter().enumerate() {
            let started = Instant::now();
            let started_wall = now_millis();
            let result = match rule {
                Rule::Recording(r) => r.eval(query_ts, ctx, self.limit),
                Rule::Alerting(a) => a.eval(ts, query_ts, ctx, self.limit).inspect(|_| {
                    let due = a.alerts_to_send(ts, resend_delay, self.interval);
                    outcome
                        .alerts
                        .extend(due.into_iter().map(|alert| (a.query().to_string(), alert)));
                }),
            };
            let mut status = RuleStatus {
                health: RuleHealth::Ok,
                last_error: None,
                last_evaluation: Some(started_wall),
                evaluation_duration: Duration::ZERO,
            };
            match result {
                Ok(samples) => {
                    outcome.samples += samples.len();
                    if let Err(e) = self.write(i, query_ts, samples, ctx) {
                        status.health = RuleHealth::Err;
                        status.last_error = Some(e);
                        outcome.failed_rules += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %self.key(), rule = rule.name(), index = i, error = %e, "evaluating rule failed");
                    status.health = RuleHealth::Err;
                    status.last_error = Some(e);
                    outcome.failed_rules += 1;
                }
            }
            status.evaluation_duration = started.elapsed();
            rule.set_status(status);
        }
        self.write_stale_of_removed(query_ts, ctx);
        let mut runtime = self.runtime.lock();
        runtime.last_evaluation = Some(wall_start);
        runtime.evaluation_duration = group_start.elapsed();
        runtime.last_eval_ts = Some(ts);
        outcome
    }

    /// Appends one rule's samples and a staleness marker for each series it
    /// wrote last time but not now, in one commit.
    fn write(
        &self,
        rule_index: usize,
        t: Timestamp,
        samples: Vec<(Labels, f64)>,
        ctx: &EvalContext,
    ) -> Result<(), String> {
        let mut appender = ctx.storage.appender();
        let mut returned = HashSet::with_capacity(samples.len());
        for (labels, v) in samples {
            appender.add(labels.clone(), t, v);
            returned.insert(labels);
        }
        let mut runtime = self.runtime.lock();
        if let Some(previous) = runtime.previous.get(rule_index) {
            for labels in previous {
                if !returned.contains(labels) {
                    appender.add(labels.clone(), t, stale_nan());
                }
            }
        }
        let committed = appender.commit();
        match committed {
            Ok(outcome) => {
                if outcome.out_of_order + outcome.duplicate + outcome.too_old > 0 {
                    tracing::debug!(group = %self.key(), rule_index, ?outcome, "some rule results were not stored");
                }
                if let Some(slot) = runtime.previous.get_mut(rule_index) {
                    *slot = returned;
                }
                Ok(())
            }
            Err(e) => Err(format!("storing rule results: {e}")),
        }
    }

    fn write_stale_of_removed(&self, t: Timestamp, ctx: &EvalContext) {
        let stale = std::mem::take(&mut self.runtime.lock().stale);
        if stale.is_empty() {
            return;
        }
        let mut appender = ctx.storage.appender();
        for labels in stale {
            appender.add(labels, t, stale_nan());
        }
        if let Err(e) = appender.commit() {
            tracing::warn!(group = %self.key(), error = %e, "writing staleness markers for removed rules failed");
        }
    }

    /// Takes over the state of the group this one replaces on reload
    /// (Prometheus's `CopyState`): rules are matched by name and labels, in
    /// order among duplicates; the series of unmatched old rules are marked
    /// stale at this group's next evaluation.
    pub fn copy_state_from(&self, old: &Group) {
        let mut old_runtime = old.runtime.lock();
        let mut new_runtime = self.runtime.lock();
        new_runtime.last_evaluation = old_runtime.last_evaluation;
        new_runtime.evaluation_duration = old_runtime.evaluation_duration;
        new_runtime.last_eval_ts = old_runtime.last_eval_ts;
        let mut taken = vec![false; old.rules.len()];
        for (i, rule) in self.rules.iter().enumerate() {
            let identity = rule.identity();
            let Some(j) =
                (0..old.rules.len()).find(|&j| !taken[j] && old.rules[j].identity() == identity)
            else {
                continue;
            };
            taken[j] = true;
            new_runtime.previous[i] = std::mem::take(&mut old_runtime.previous[j]);
            if let (Rule::Alerting(new), Rule::Alerting(old)) = (rule, &old.rules[j]) {
                new.restore(old.alerts());
            }
            rule.set_status(old.rules[j].status());
        }
        let mut stale = std::mem::take(&mut old_runtime.stale);
        for (j, was_taken) in taken.into_iter().enumerate() {
            if !was_taken {
                stale.extend(old_runtime.previous[j].drain());
            }
        }
        new_runtime.stale = stale;
    }

    /// Every series this group wrote at its last evaluation: what must be
    /// marked stale when the group is removed.
    pub fn written_series(&self) -> Vec<Labels> {
        let runtime = self.runtime.lock();
        runtime
            .previous
            .iter()
            .flatten()
            .chain(runtime.stale.iter())
            .cloned()
            .collect()
    }

    /// The alerting rules of the group.
    pub fn alerting_rules(&self) -> impl Iterator<Item = &super::AlertingRule> {
        self.rules.iter().filter_map(|r| match r {
            Rule::Alerting(a) => Some(a),
            Rule::Recording(_) => None,
        })
    }
}
