//! The dispatcher (Alertmanager 0.25's dispatch/dispatch.go and the
//! notification stages before the receivers): every stored alert is routed
//! by the route tree into aggregation groups — one per route and values of
//! the route's `group_by` labels — and each group is flushed on its own
//! timer: first `group_wait` after the group was created (at once if an
//! alert's `startsAt` is already older than `group_wait`), then every
//! `group_interval`. A flush drops the alerts muted by inhibition, by the
//! route's time intervals and by silences (recording the marker), and hands
//! what is left to the [`Delivery`] as one [`Notification`]; then the
//! resolved alerts that did not change meanwhile leave the group. The
//! flushes due at the same time are handed over together, on a blocking
//! thread (the delivery writes them to disk). Empty
//! groups are dropped every 30 s. A config change rebuilds every group from
//! the store, as Alertmanager's reload does.
//!
//! Whether a flush is new enough to send (repeat_interval, send_resolved)
//! is the delivery's decision; this module never talks to a receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::model::{Labels, Timestamp};

use super::alerts::{self, AlertStore, Clock, GC_INTERVAL};
use super::config::NotifyConfig;
use super::inhibit::Inhibitor;
use super::marker::Marker;
use super::route::{RouteNode, RouteTree};
use super::types::{Alert, AlertState, AlertStatus, Delivery, Fingerprint, Notification, Silencer};

/// How often empty aggregation groups are dropped (as Alertmanager).
const CLEANUP_INTERVAL: Duration = Duration::from_secs(30);

/// What a notification config gives the router; replaced as a whole.
pub struct Active {
    pub tree: RouteTree,
    pub inhibitor: Inhibitor,
    pub resolve_timeout: Duration,
    /// Route node address → depth-first index (the tree is never moved
    /// while this `Active` lives: it is only reached through an `Arc`).
    index: HashMap<usize, usize>,
}

impl Active {
    pub fn new(config: &NotifyConfig) -> Arc<Active> {
        let mut active = Arc::new(Active {
            tree: RouteTree::new(config),
            inhibitor: Inhibitor::new(&config.inhibit_rules),
            resolve_timeout: config.global.resolve_timeout.as_duration(),
            index: HashMap::new(),
        });
        let mut index = HashMap::new();
        let mut i = 0;
        active.tree.root.walk(&mut |node| {
            index.insert(node as *const RouteNode as usize, i);
            i += 1;
        });
        if let Some(a) = Arc::get_mut(&mut active) {
            a.index = index;
        }
        active
    }

    fn index_of(&self, node: &RouteNode) -> usize {
        self.index
            .get(&(node as *const RouteNode as usize))
            .copied()
            .unwrap_or(0)
    }

    fn node(&self, index: usize) -> &RouteNode {
        let mut found = &self.tree.root;
        let mut i = 0;
        self.tree.root.walk(&mut |node| {
            if i == index {
                found = node;
            }
            i += 1;
        });
        found
    }

    /// The receivers of the routes an alert takes, in tree order.
    pub fn receivers_for(&self, labels: &Labels) -> Vec<String> {
        self.tree
            .receivers_for(labels)
            .into_iter()
            .map(str::to_string)
            .collect()
    }
}

struct AggrGroup {
    route: usize,
    labels: Labels,
    key: String,
    alerts: HashMap<Fingerprint, Alert>,
    next: Instant,
    has_flushed: bool,
}

/// One aggregation group as `GET /api/v2/alerts/groups` shows it.
pub struct GroupView {
    pub labels: Labels,
    pub receiver: String,
    pub alerts: Vec<Alert>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

/// The router's own metrics (Alertmanager's, renamed `bellwether_alertmanager_*`).
#[derive(Clone, Default)]
pub struct RouterMetrics {
    pub received: Family<StatusLabel, Counter>,
    pub invalid: Counter,
    pub groups: Gauge,
    pub notifications: Counter,
}

/// The alert store, the marker, the groups and the task that drives them;
/// shared by the alert channel, the API and the daemon.
pub struct Router {
    pub store: Arc<AlertStore>,
    pub marker: Arc<Marker>,
    silencer: Arc<dyn Silencer>,
    delivery: Arc<dyn Delivery>,
    clock: Clock,
    config: watch::Sender<Arc<Active>>,
    groups: Mutex<HashMap<(usize, Fingerprint), AggrGroup>>,
    stop: Notify,
    pub metrics: RouterMetrics,
}

impl Router {
    pub fn new(
        config: &NotifyConfig,
        silencer: Arc<dyn Silencer>,
        delivery: Arc<dyn Delivery>,
        clock: Clock,
    ) -> Arc<Router> {
        let marker = Arc::new(Marker::default());
        let (config, _) = watch::channel(Active::new(config));
        Arc::new(Router {
            store: Arc::new(AlertStore::new(marker.clone())),
            marker,
            silencer,
            delivery,
            clock,
            config,
            groups: Mutex::new(HashMap::new()),
            stop: Notify::new(),
            metrics: RouterMetrics::default(),
        })
    }

    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "bellwether_alertmanager_alerts_received",
            "Alerts received (from the rule engine and POST /api/v2/alerts), by status",
            self.metrics.received.clone(),
        );
        registry.register(
            "bellwether_alertmanager_alerts_invalid",
            "Alerts refused by POST /api/v2/alerts as invalid",
            self.metrics.invalid.clone(),
        );
        registry.register(
            "bellwether_alertmanager_dispatcher_aggregation_groups",
            "Aggregation groups held by the dispatcher",
            self.metrics.groups.clone(),
        );
        registry.register(
            "bellwether_alertmanager_flushes_notified",
            "Flushes of aggregation groups handed to delivery (after muting)",
            self.metrics.notifications.clone(),
        );
        registry.register_collector(Box::new(AlertsByState(self.clone())));
    }

    pub fn now_ms(&self) -> Timestamp {
        self.clock.now_ms()
    }

    /// The config in force.
    pub fn active(&self) -> Arc<Active> {
        self.config.borrow().clone()
    }

    /// Applies a notification config; the dispatcher rebuilds its groups.
    pub fn apply_config(&self, config: &NotifyConfig) {
        let active = Active::new(config);
        self.store.for_each(|a| active.inhibitor.observe(a));
        self.config.send_replace(active);
    }

    /// Takes alerts in as `POST /api/v2/alerts` does: completes their
    /// times, counts them, stores the valid ones, and returns the
    /// validation errors of the others.
    pub fn receive(&self, mut batch: Vec<Alert>) -> Vec<String> {
        let now = self.now_ms();
        let resolve_timeout = self.active().resolve_timeout;
        for alert in &mut batch {
            alerts::complete(alert, now, resolve_timeout);
            let status = if alert.ends_at > now {
                "firing"
            } else {
                "resolved"
            };
            self.metrics
                .received
                .get_or_create(&StatusLabel { status })
                .inc();
        }
        let mut errors = Vec::new();
        let mut valid = Vec::with_capacity(batch.len());
        for alert in batch {
            match alerts::validate(&alert) {
                Ok(()) => valid.push(alert),
                Err(e) => {
                    self.metrics.invalid.inc();
                    errors.push(e);
                }
            }
        }
        self.store.put(valid, now);
        errors
    }

    /// Re-decides an alert's inhibition and silences and returns its status
    /// (what Alertmanager's API does before filtering each alert).
    pub fn refresh_status(&self, labels: &Labels, active: &Active) -> AlertStatus {
        let now = self.now_ms();
        let fp = Fingerprint::of(labels);
        active.inhibitor.mutes(labels, now, &self.marker);
        self.marker
            .set_silenced(fp, self.silencer.silenced_by(labels, now));
        self.marker.status(fp)
    }

    /// The aggregation groups whose route's receiver passes `receiver`, with
    /// their alerts that pass `keep`, in Alertmanager's order; and for each
    /// alert shown, the receivers of the groups it is shown in.
    pub fn alert_groups(
        &self,
        receiver: &dyn Fn(&str) -> bool,
        keep: &mut dyn FnMut(&Alert) -> bool,
    ) -> (Vec<GroupView>, HashMap<Fingerprint, Vec<String>>) {
        let active = self.active();
        let mut views = Vec::new();
        let mut receivers: HashMap<Fingerprint, Vec<String>> = HashMap::new();
        let groups = self.groups.lock();
        for group in groups.values() {
            let name = &active.node(group.route).opts.receiver;
            if !receiver(name) {
                continue;
            }
            let mut shown: Vec<Alert> =
                group.alerts.values().filter(|a| keep(a)).cloned().collect();
            if shown.is_empty() {
                continue;
            }
            for a in &shown {
                receivers
                    .entry(a.fingerprint())
                    .or_default()
                    .push(name.clone());
            }
            sort_alerts(&mut shown);
            views.push(GroupView {
                labels: group.labels.clone(),
                receiver: name.clone(),
                alerts: shown,
            });
        }
        views.sort_by(|a, b| {
            if a.labels == b.labels {
                a.receiver.cmp(&b.receiver)
            } else if label_set_before(&a.labels, &b.labels) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        for list in receivers.values_mut() {
            list.sort();
        }
        (views, receivers)
    }

    /// Ends [`Router::run`].
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// The dispatcher: consumes the store's updates and runs the group
    /// timers until [`Router::stop`].
    pub async fn run(self: Arc<Self>) {
        let mut config = self.config.subscribe();
        let mut updates = self.store.subscribe();
        let start = Instant::now();
        let mut cleanup = tokio::time::interval_at(start + CLEANUP_INTERVAL, CLEANUP_INTERVAL);
        let mut gc = tokio::time::interval_at(start + GC_INTERVAL, GC_INTERVAL);
        loop {
            let next = self
                .groups
                .lock()
                .values()
                .map(|g| g.next)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                _ = self.stop.notified() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    config.borrow_and_update();
                    // As Alertmanager's reload: the old groups go (without a
                    // last flush) and the store's alerts are grouped anew.
                    let mut groups = self.groups.lock();
                    self.metrics.groups.set(0);
                    groups.clear();
                    drop(groups);
                    updates = self.store.subscribe();
                }
                alert = updates.recv() => match alert {
                    Some(alert) => self.process(alert),
                    None => break,
                },
                _ = tokio::time::sleep_until(next) => {
                    let batch = self.flush_due();
                    self.hand_over(batch).await;
                }
                _ = cleanup.tick() => {
                    let mut groups = self.groups.lock();
                    groups.retain(|_, g| !g.alerts.is_empty());
                    self.metrics.groups.set(groups.len() as i64);
                }
                _ = gc.tick() => {
                    let now = self.now_ms();
                    self.store.gc(now);
                    self.active().inhibitor.gc(now);
                }
            }
        }
    }

    fn process(&self, alert: Alert) {
        let active = self.active();
        active.inhibitor.observe(&alert);
        let (now, now_ms) = (Instant::now(), self.now_ms());
        let fp = alert.fingerprint();
        let mut groups = self.groups.lock();
        for route in active.tree.routes_for(&alert.labels) {
            let labels = route.group_labels(&alert.labels);
            let key = (active.index_of(route), Fingerprint::of(&labels));
            let group = groups.entry(key).or_insert_with(|| {
                self.metrics.groups.inc();
                AggrGroup {
                    route: key.0,
                    key: route.group_key(&alert.labels),
                    labels,
                    alerts: HashMap::new(),
                    next: now + route.opts.group_wait,
                    has_flushed: false,
                }
            });
            let wait_ms = route.opts.group_wait.as_millis() as Timestamp;
            if !group.has_flushed && alert.starts_at + wait_ms < now_ms {
                group.next = now;
            }
            group.alerts.insert(fp, alert.clone());
        }
    }

    /// Flushes the groups that are due; returns their notifications.
    fn flush_due(&self) -> Vec<Notification> {
        let active = self.active();
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let mut batch = Vec::new();
        for group in groups.values_mut() {
            if group.next > now {
                continue;
            }
            let route = active.node(group.route);
            group.next = now + route.opts.group_interval;
            group.has_flushed = true;
            batch.extend(self.flush(group, route, &active));
        }
        batch
    }

    /// Hands a round's notifications to the delivery, which writes them to
    /// disk: on a blocking thread, and waited for, so the next round starts
    /// after this one is recorded.
    async fn hand_over(&self, batch: Vec<Notification>) {
        if batch.is_empty() {
            return;
        }
        let delivery = Arc::clone(&self.delivery);
        if let Err(e) = tokio::task::spawn_blocking(move || delivery.notify_all(batch)).await {
            tracing::error!(error = %e, "handing notifications to delivery failed");
        }
    }

    fn flush(
        &self,
        group: &mut AggrGroup,
        route: &RouteNode,
        active: &Active,
    ) -> Option<Notification> {
        if group.alerts.is_empty() {
            return None;
        }
        let now = self.now_ms();
        let mut alerts: Vec<Alert> = group
            .alerts
            .values()
            .map(|a| {
                let mut a = a.clone();
                if !a.resolved_at(now) {
                    a.ends_at = 0;
                }
                a
            })
            .collect();
        sort_alerts(&mut alerts);

        // The stages of Alertmanager's pipeline, in its order: inhibition,
        // active and mute time intervals, silences. A stage that leaves
        // nothing ends the flush (and the later stages mark nothing).
        let mut passed: Vec<Alert> = alerts
            .iter()
            .filter(|a| !active.inhibitor.mutes(&a.labels, now, &self.marker))
            .cloned()
            .collect();
        if !passed.is_empty() && active.tree.is_muted(route, now.div_euclid(1000)) {
            tracing::debug!(group = %group.key, "notifications not sent: the route is muted at this time");
            passed.clear();
        }
        passed.retain(|a| {
            let by = self.silencer.silenced_by(&a.labels, now);
            let silenced = !by.is_empty();
            self.marker.set_silenced(a.fingerprint(), by);
            !silenced
        });
        let notification = (!passed.is_empty()).then(|| {
            self.metrics.notifications.inc();
            Notification {
                receiver: route.opts.receiver.clone(),
                group_key: group.key.clone(),
                group_labels: group.labels.clone(),
                alerts: passed,
                now,
                repeat_interval: route.opts.repeat_interval,
                group_interval: route.opts.group_interval,
            }
        });
        // Handing over always succeeds (the delivery keeps it), so resolved
        // alerts that were not updated since leave the group.
        for a in &alerts {
            if !a.resolved_at(now) {
                continue;
            }
            let fp = a.fingerprint();
            if group
                .alerts
                .get(&fp)
                .is_some_and(|held| held.updated_at == a.updated_at)
            {
                group.alerts.remove(&fp);
            }
        }
        notification
    }

    /// Non-resolved alerts of the store by their marker state.
    fn count_by_state(&self) -> [(AlertState, usize); 3] {
        let now = self.now_ms();
        let mut counts = [
            (AlertState::Active, 0),
            (AlertState::Suppressed, 0),
            (AlertState::Unprocessed, 0),
        ];
        self.store.for_each(|a| {
            if a.resolved_at(now) {
                return;
            }
            let state = self.marker.status(a.fingerprint()).state;
            for (s, n) in counts.iter_mut() {
                if *s == state {
                    *n += 1;
                }
            }
        });
        counts
    }
}

/// `bellwether_alertmanager_alerts{state}`, computed at scrape time.
struct AlertsByState(Arc<Router>);

impl std::fmt::Debug for AlertsByState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertsByState")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

impl Collector for AlertsByState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.0.count_by_state();
        let mut metric = encoder.encode_descriptor(
            "bellwether_alertmanager_alerts",
            "Alerts held by the router and not resolved, by state",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, n) in counts {
            let label = StateLabel {
                state: state.as_str(),
            };
            ConstGauge::new(n as i64).encode(metric.encode_family(&label)?)?;
        }
        Ok(())
    }
}

/// Prometheus's `LabelSet.Before`: fewer labels first, then by the values
/// of the sorted union of names (a missing name sorts first).
pub fn label_set_before(a: &Labels, b: &Labels) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    let mut names: Vec<&str> = a.iter().chain(b.iter()).map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    for name in names {
        let Some(av) = a.get(name) else { return true };
        let Some(bv) = b.get(name) else { return false };
        if av != bv {
            return av < bv;
        }
    }
    false
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance` (an alert
/// without the label after those with it), then by label set.
pub fn sort_alerts(alerts: &mut [Alert]) {
    alerts.sort_by(|x, y| {
        for name in ["job", "instance"] {
            match (x.labels.get(name), y.labels.get(name)) {
                (None, None) => continue,
                (None, Some(_)) => return std::cmp::Ordering::Greater,
                (Some(_), None) => return std::cmp::Ordering::Less,
                (Some(a), Some(b)) if a != b => return a.cmp(b),
                _ => {}
            }
        }
        if label_set_before(&x.labels, &y.labels) {
            std::cmp::Ordering::Less
        } else if label_set_before(&y.labels, &x.labels) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// Writes each notification to the log and nothing else (for tests of the
/// router without the outbox).
pub struct LogDelivery;

impl Delivery for LogDelivery {
    fn notify(&self, n: Notification) {
        let resolved = n.alerts.iter().filter(|a| a.resolved_at(n.now)).count();
        tracing::info!(
            receiver = %n.receiver,
            group_key = %n.group_key,
            firing = n.alerts.len() - resolved,
            resolved,
            "notification"
        );
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
