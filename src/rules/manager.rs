//! Runs rule groups: one tokio task per group, each evaluating on its own
//! interval-aligned slots (a slow group delays only itself and counts the
//! slots it missed), persisting alert state and sending alerts into the
//! notification channel. Reloads swap groups, carrying state over.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::model::{now_millis, Timestamp};
use crate::notify::{AlertSender, NotifyAlert};
use crate::promql::Engine;
use crate::storage::Storage;

use super::metrics::{group_label, RuleMetrics};
use super::state::{digest, AlertStateStore, HEARTBEAT_MS};
use super::{Alert, EvalContext, Group};

/// Prometheus's `--rules.alert.resend-delay` default.
pub const DEFAULT_RESEND_DELAY: Duration = Duration::from_secs(60);
/// Prometheus's `--rules.alert.for-outage-tolerance` default.
pub const DEFAULT_OUTAGE_TOLERANCE: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// How often a firing alert is re-sent.
    pub resend_delay: Duration,
    /// Alert state saved longer ago than this is not restored at start.
    pub outage_tolerance: Duration,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions {
            resend_delay: DEFAULT_RESEND_DELAY,
            outage_tolerance: DEFAULT_OUTAGE_TOLERANCE,
        }
    }
}

struct Running {
    group: Arc<Group>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct RuleManager {
    engine: Engine,
    storage: Storage,
    context: RwLock<Arc<EvalContext>>,
    options: ManagerOptions,
    metrics: RuleMetrics,
    state: Option<Arc<AlertStateStore>>,
    /// Taken (dropped) at shutdown, which closes the channel so its consumer ends.
    alerts: parking_lot::Mutex<Option<AlertSender>>,
    running: tokio::sync::Mutex<Vec<Running>>,
    /// The groups as the API sees them, in file and name order.
    view: RwLock<Vec<Arc<Group>>>,
    /// Group keys restored from saved state in this process (each only once).
    restored: parking_lot::Mutex<HashSet<String>>,
}

impl RuleManager {
    /// `state` is where alert state persists (`None`: not persisted).
    pub fn new(
        engine: Engine,
        storage: Storage,
        options: ManagerOptions,
        state: Option<AlertStateStore>,
        alerts: AlertSender,
        registry: &mut Registry,
    ) -> Arc<RuleManager> {
        let metrics = RuleMetrics::default();
        metrics.register(registry);
        let context = EvalContext {
            engine: engine.clone(),
            storage: storage.clone(),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            template_errors: metrics.template_errors.clone(),
        };
        Arc::new(RuleManager {
            engine,
            storage,
            context: RwLock::new(Arc::new(context)),
            options,
            metrics,
            state: state.map(Arc::new),
            alerts: parking_lot::Mutex::new(Some(alerts)),
            running: tokio::sync::Mutex::new(Vec::new()),
            view: RwLock::new(Vec::new()),
            restored: parking_lot::Mutex::new(HashSet::new()),
        })
    }

    /// The running groups, for the API.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.view.read().clone()
    }

    /// Replaces the running groups with `groups` (already loaded and checked,
    /// so this cannot fail): groups that continue keep their alerts and
    /// staleness bookkeeping, new ones restore saved alert state, removed
    /// ones have their series marked stale.
    pub async fn update(
        self: &Arc<Self>,
        groups: Vec<Group>,
        external_labels: BTreeMap<String, String>,
        external_url: String,
    ) {
        *self.context.write() = Arc::new(EvalContext {
            engine: self.engine.clone(),
            storage: self.storage.clone(),
            external_labels,
            external_url,
            template_errors: self.metrics.template_errors.clone(),
        });
        let mut running = self.running.lock().await;
        let old: Vec<Running> = std::mem::take(&mut *running);
        // Stop every old task first: no two evaluations of a group overlap.
        let mut old_groups = BTreeMap::new();
        for r in &old {
            let _ = r.stop.send(true);
        }
        for r in old {
            let _ = r.task.await;
            old_groups.insert(r.group.key(), r.group);
        }
        let new_keys: HashSet<String> = groups.iter().map(|g| g.key()).collect();
        let mut started = Vec::new();
        for group in groups {
            let key = group.key();
            match old_groups.get(&key) {
                Some(old) => group.copy_state_from(old),
                None => self.restore(&group).await,
            }
            let group = Arc::new(group);
            self.metrics
                .interval_seconds
                .get_or_create(&group_label(&key))
                .set(group.interval().as_secs_f64());
            self.metrics
                .rules
                .get_or_create(&group_label(&key))
                .set(group.rules().len() as i64);
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(self.clone().run_group(group.clone(), stop_rx));
            started.push(Running { group, stop, task });
        }
        for (key, old) in old_groups {
            if new_keys.contains(&key) {
                continue;
            }
            self.retire(&key, &old).await;
        }
        *self.view.write() = started.iter().map(|r| r.group.clone()).collect();
        *running = started;
    }

    /// Stops every group (alert state is already saved after each
    /// evaluation) and closes the alert channel: its consumer sees the end
    /// once it has taken the alerts already sent.
    pub async fn shutdown(&self) {
        let mut running = self.running.lock().await;
        for r in running.iter() {
            let _ = r.stop.send(true);
        }
        for r in running.drain(..) {
            let _ = r.task.await;
        }
        self.alerts.lock().take();
    }

    /// A group that is no longer configured: its series go stale now and its
    /// saved state is forgotten.
    async fn retire(&self, key: &str, group: &Arc<Group>) {
        let series = group.written_series();
        let storage = self.storage.clone();
        let now = now_millis();
        let state_removed = self.state.as_ref().map(|_| key.to_string());
        let result = tokio::task::spawn_blocking(move || {
            let mut appender = storage.appender();
            for labels in series {
                appender.add(labels, now, crate::model::stale_nan());
            }
            appender.commit().map(|_| ()).map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = result.map_err(|e| e.to_string()) {
            tracing::warn!(group = key, error = %e, "marking the series of a removed group stale failed");
        }
        if let (Some(store), Some(key)) = (&self.state, state_removed) {
            if let Err(e) = store.remove(&key) {
                self.metrics.state_errors.inc();
                tracing::warn!(group = %key, error = %e, "forgetting the saved alert state of a removed group failed");
            }
        }
        self.metrics.remove_group(key);
    }

    /// Puts back the alert state a group saved before this process started,
    /// if it is recent enough (once per group key per process).
    async fn restore(&self, group: &Group) {
        let Some(store) = &self.state else { return };
        let key = group.key();
        if !self.restored.lock().insert(key.clone()) {
            return;
        }
        let saved = match store.load(&key) {
            Ok(Some(saved)) => saved,
            Ok(None) => return,
            Err(e) => {
                self.metrics.state_errors.inc();
                tracing::warn!(group = %key, error = %e, "reading saved alert state failed; alerts start from inactive");
                return;
            }
        };
        let age = now_millis() - saved.last_eval;
        if age > self.options.outage_tolerance.as_millis() as i64 {
            tracing::info!(group = %key, down_for_seconds = age / 1000, "saved alert state is older than the outage tolerance; not restored");
            return;
        }
        let mut by_rule: BTreeMap<String, Vec<Alert>> = BTreeMap::new();
        for (rule, alert) in saved.alerts {
            by_rule.entry(rule).or_default().push(alert);
        }
        let mut count = 0;
        for rule in group.rules() {
            if let super::Rule::Alerting(a) = rule {
                if let Some(alerts) = by_rule.remove(&rule.identity()) {
                    count += alerts.len();
                    a.restore(alerts);
                }
            }
        }
        if count > 0 {
            self.metrics.restored_alerts.inc_by(count as u64);
            tracing::info!(group = %key, alerts = count, "alert state restored");
        }
    }

    async fn run_group(self: Arc<Self>, group: Arc<Group>, mut stop: watch::Receiver<bool>) {
        let key = group.key();
        let label = group_label(&key);
        let interval = group.interval().as_millis().max(1) as i64;
        let mut ts = group.eval_timestamp(now_millis()) + interval;
        let mut persisted = Persisted::default();
        loop {
            let wait = ts - now_millis();
            if wait > 0 {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                    _ = stop.changed() => return,
                }
            }
            if *stop.borrow() {
                return;
            }
            let behind = now_millis() - ts;
            if behind >= interval {
                let missed = behind / interval;
                self.metrics
                    .iterations_missed
                    .get_or_create(&label)
                    .inc_by(missed as u64);
                self.metrics
                    .iterations
                    .get_or_create(&label)
                    .inc_by(missed as u64);
                ts += missed * interval;
            }
            self.metrics.iterations.get_or_create(&label).inc();

            let context = self.context.read().clone();
            let resend_delay = self.options.resend_delay;
            let evaluated = group.clone();
            let store = self.state.clone();
            let mut saved = persisted;
            // Evaluation and the SQLite write of its alert state both block:
            // one trip to the blocking pool.
            let outcome = match tokio::task::spawn_blocking(move || {
                let outcome = evaluated.eval(ts, &context, resend_delay);
                let saved_state = store.map(|store| saved.save(&store, &evaluated, ts));
                (outcome, saved, saved_state)
            })
            .await
            {
                Ok((outcome, now_saved, saved_state)) => {
                    persisted = now_saved;
                    if let Some(Err(e)) = saved_state {
                        self.metrics.state_errors.inc();
                        tracing::warn!(group = %key, error = %e, "saving alert state failed");
                    }
                    outcome
                }
                Err(e) => {
                    tracing::error!(group = %key, error = %e, "rule group evaluation panicked");
                    ts += interval;
                    continue;
                }
            };
            let rules = group.rules().len() as u64;
            self.metrics.evaluations.get_or_create(&label).inc_by(rules);
            self.metrics
                .evaluation_failures
                .get_or_create(&label)
                .inc_by(outcome.failed_rules as u64);
            self.metrics
                .last_duration_seconds
                .get_or_create(&label)
                .set(group.evaluation_duration().as_secs_f64());
            self.metrics
                .last_evaluation_timestamp_seconds
                .get_or_create(&label)
                .set(ts as f64 / 1000.0);
            self.metrics
                .last_evaluation_samples
                .get_or_create(&label)
                .set(outcome.samples as i64);

            if !outcome.alerts.is_empty() {
                let external_url = self.context.read().external_url.clone();
                let batch = outcome
                    .alerts
                    .iter()
                    .map(|(query, alert)| to_notify_alert(query, alert, &external_url))
                    .collect();
                if let Some(alerts) = self.alerts.lock().as_ref() {
                    let _ = alerts.send(batch);
                }
            }
            ts += interval;
        }
    }
}

/// What a group last wrote to the alert state store.
#[derive(Clone, Copy, Default)]
pub(super) struct Persisted {
    /// Digest of the alerts last saved.
    digest: Option<u64>,
    /// Evaluation timestamp last written (alerts or heartbeat).
    written_at: Option<Timestamp>,
}

impl Persisted {
    /// Saves the group's alerts if they changed since the last save, else a
    /// heartbeat if the last write is older than [`HEARTBEAT_MS`].
    pub(super) fn save(
        &mut self,
        store: &AlertStateStore,
        group: &Group,
        ts: Timestamp,
    ) -> Result<(), String> {
        let alerts: Vec<(String, Alert)> = group
            .rules()
            .iter()
            .filter_map(|r| match r {
                super::Rule::Alerting(a) => Some((r.identity(), a.alerts())),
                super::Rule::Recording(_) => None,
            })
            .flat_map(|(id, alerts)| alerts.into_iter().map(move |a| (id.clone(), a)))
            .collect();
        let d = digest(&alerts);
        if self.digest != Some(d) {
            store.save(&group.key(), ts, &alerts)?;
            self.digest = Some(d);
        } else if self.written_at.is_none_or(|w| ts - w >= HEARTBEAT_MS) {
            store.heartbeat(&group.key(), ts)?;
        } else {
            return Ok(());
        }
        self.written_at = Some(ts);
        Ok(())
    }
}

fn to_notify_alert(query: &str, alert: &Alert, external_url: &str) -> NotifyAlert {
    NotifyAlert {
        labels: alert.labels.clone(),
        annotations: alert.annotations.clone(),
        starts_at: alert.fired_at.unwrap_or(alert.active_at),
        ends_at: alert
            .resolved_at
            .or(alert.valid_until)
            .unwrap_or(alert.active_at),
        resolved: alert.resolved_at.is_some(),
        generator_url: format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            crate::collect::scrape::target::query_escape(query)
        ),
    }
}
