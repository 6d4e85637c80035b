//! Notification delivery: what happens to a flushed group
//! ([`Notification`]) on its way to the receivers.
//!
//! For every integration of the receiver (`webhook_configs[0]`,
//! `log_configs[0]`, …), [`Deliverer::notify`]:
//!
//! 1. asks the notification log (nflog) whether the receiver needs to hear
//!    about this flush — Alertmanager's `DedupStage`: something new fired,
//!    something it was told about resolved, or `repeat_interval` passed;
//! 2. if so, writes an outbox entry (the [`data::Payload`]) in the same
//!    SQLite transaction that marks any older undelivered entry of the same
//!    group and integration superseded (the newer flush carries the newer
//!    state); if not, it only supersedes;
//! 3. wakes the worker, which attempts due entries, retries with backoff and
//!    jitter, and on delivery marks the entry delivered and writes the nflog
//!    entry in one transaction (Alertmanager's `SetNotifiesStage`: the log
//!    records what was delivered, when).
//!
//! Before an attempt the worker asks the nflog again, so an entry whose
//! content an earlier entry already delivered is superseded, not sent: at
//! most one attempt per group and integration is in flight. A crash between
//! a receiver's 2xx and the commit sends that one notification again after
//! the restart (at least once); nothing pending is lost, since entries are
//! written before they are attempted and resumed after a restart.
//!
//! This module must not group, inhibit or silence (the dispatcher does) and
//! must not reach into the rule engine.

pub mod data;
pub mod email;
pub mod http;
pub mod pagerduty;
pub mod slack;
pub mod store;
pub mod webhook;

/// bellwether's default notification templates (same names and output as
/// Alertmanager 0.25's).
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, Semaphore};

use crate::model::{now_millis, Timestamp};
use crate::notify::config::{DeliverySettings, HistorySettings, NotifyConfig, Receiver};
use crate::notify::types::{Delivery, Notification};
use crate::template::NotifyTemplates;

use data::Payload;
use http::{FailReason, HttpTarget, Outcome};
use store::{
    notification_severity, DeliveryStore, DueScope, EntryState, FingerprintSet, IntegrationKey,
    LogEntry, NewEntry, OutboxEntry,
};

/// Attempts in flight at once per receiver (a receiver that hangs holds
/// only its own slots; each attempt is bounded by `delivery.timeout`).
pub const PER_RECEIVER_CONCURRENCY: usize = 32;
/// First retry delay; doubles per attempt up to [`MAX_BACKOFF`], ±50 % jitter.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often finished outbox entries and expired nflog entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// What an attempt sent: where, and the body (for `notify test` and logs).
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    pub target: String,
    pub body: String,
}

impl Sent {
    pub fn new(target: &str, body: &[u8]) -> Sent {
        Sent {
            target: target.to_string(),
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// One configured integration of a receiver.
pub enum Integration {
    Webhook(Box<webhook::Webhook>),
    Slack(Box<slack::Slack>),
    PagerDuty(Box<pagerduty::PagerDuty>),
    Email(Box<email::Email>),
    /// bellwether's `log_configs`: the notification goes to the daemon log.
    Log,
}

impl Integration {
    /// Delivers once; never panics on the payload.
    pub async fn notify(
        &self,
        key: &IntegrationKey,
        payload: &Payload,
        templates: &NotifyTemplates,
        external_url: &str,
    ) -> (Sent, Outcome) {
        match self {
            Integration::Webhook(w) => w.notify(payload, external_url).await,
            Integration::Slack(s) => s.notify(payload, templates, external_url).await,
            Integration::PagerDuty(p) => p.notify(payload, templates, external_url).await,
            Integration::Email(e) => e.notify(payload, templates, external_url).await,
            Integration::Log => {
                let firing = payload.alerts.iter().filter(|a| !a.resolved).count();
                let resolved = payload.alerts.len() - firing;
                let alerts: Vec<String> = payload
                    .alerts
                    .iter()
                    .map(|a| {
                        let labels: Vec<String> =
                            a.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                        format!(
                            "{{{}}} {}",
                            labels.join(", "),
                            if a.resolved { "resolved" } else { "firing" }
                        )
                    })
                    .collect();
                let text = alerts.join("; ");
                tracing::info!(
                    receiver = %key.receiver,
                    group_key = %payload.group_key,
                    firing,
                    resolved,
                    alerts = %text,
                    "notification"
                );
                (
                    Sent {
                        target: "log".into(),
                        body: text,
                    },
                    Outcome::Delivered {
                        answer: String::new(),
                    },
                )
            }
        }
    }
}

/// A receiver's integrations, built from its config.
struct BuiltIntegration {
    key: IntegrationKey,
    send_resolved: bool,
    integration: Arc<Integration>,
}

fn build_receiver(r: &Receiver, timeout: Duration) -> Result<Vec<BuiltIntegration>, String> {
    let mut out = Vec::new();
    let key = |kind: &str, index: usize| IntegrationKey {
        receiver: r.name.clone(),
        integration: kind.to_string(),
        index,
    };
    for (i, c) in r.webhook_configs.iter().enumerate() {
        let owner = format!("receiver {} webhook_configs[{i}]", r.name);
        out.push(BuiltIntegration {
            key: key("webhook", i),
            send_resolved: c.send_resolved,
            integration: Arc::new(Integration::Webhook(Box::new(webhook::Webhook {
                config: c.clone(),
                http: HttpTarget::new(c.http_config.as_ref(), timeout, &owner)
                    .map_err(|e| format!("{owner}: {e}"))?,
            }))),
        });
    }
    for (i, c) in r.slack_configs.iter().enumerate() {
        let owner = format!("receiver {} slack_configs[{i}]", r.name);
        out.push(BuiltIntegration {
            key: key("slack", i),
            send_resolved: c.send_resolved,
            integration: Arc::new(Integration::Slack(Box::new(slack::Slack {
                config: c.clone(),
                http: HttpTarget::new(c.http_config.as_ref(), timeout, &owner)
                    .map_err(|e| format!("{owner}: {e}"))?,
            }))),
        });
    }
    for (i, c) in r.pagerduty_configs.iter().enumerate() {
        let owner = format!("receiver {} pagerduty_configs[{i}]", r.name);
        out.push(BuiltIntegration {
            key: key("pagerduty", i),
            send_resolved: c.send_resolved,
            integration: Arc::new(Integration::PagerDuty(Box::new(pagerduty::PagerDuty {
                config: c.clone(),
                http: HttpTarget::new(c.http_config.as_ref(), timeout, &owner)
                    .map_err(|e| format!("{owner}: {e}"))?,
            }))),
        });
    }
    for (i, c) in r.email_configs.iter().enumerate() {
        out.push(BuiltIntegration {
            key: key("email", i),
            send_resolved: c.send_resolved,
            integration: Arc::new(Integration::Email(Box::new(email::Email {
                config: c.clone(),
                timeout,
            }))),
        });
    }
    for (i, c) in r.log_configs.iter().enumerate() {
        out.push(BuiltIntegration {
            key: key("log", i),
            send_resolved: c.send_resolved,
            integration: Arc::new(Integration::Log),
        });
    }
    Ok(out)
}

/// Alertmanager's `DedupStage.needsUpdate`: whether a flush with these
/// firing and resolved alerts must be sent, given the last delivered one.
pub fn needs_update(
    last: Option<&LogEntry>,
    firing: &FingerprintSet,
    resolved: &FingerprintSet,
    send_resolved: bool,
    repeat_interval: Duration,
    now: Timestamp,
) -> bool {
    let Some(last) = last else {
        // Never notified: only if something fires.
        return !firing.is_empty();
    };
    if !firing.is_subset(&last.firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: tell it (even without send_resolved, so the log
        // forgets the firing alerts) unless it never heard of any.
        return !last.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&last.resolved) {
        return true;
    }
    last.timestamp < now - repeat_interval.as_millis() as i64
}

type HistogramMaker = fn() -> Histogram;

#[derive(Clone)]
struct DeliveryMetrics {
    notifications: Family<Vec<(String, String)>, Counter>,
    failed: Family<Vec<(String, String)>, Counter>,
    requests: Family<Vec<(String, String)>, Counter>,
    requests_failed: Family<Vec<(String, String)>, Counter>,
    latency: Family<Vec<(String, String)>, Histogram, HistogramMaker>,
    superseded: Counter,
    pending: Gauge,
    oldest_pending: Gauge<f64, std::sync::atomic::AtomicU64>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 12))
}

impl DeliveryMetrics {
    fn new() -> DeliveryMetrics {
        DeliveryMetrics {
            latency: Family::new_with_constructor(latency_histogram),
            notifications: Default::default(),
            failed: Default::default(),
            requests: Default::default(),
            requests_failed: Default::default(),
            superseded: Default::default(),
            pending: Default::default(),
            oldest_pending: Default::default(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_notify_notifications",
            "Notifications attempted, by integration (Alertmanager's alertmanager_notifications_total)",
            self.notifications.clone(),
        );
        registry.register(
            "bellwether_notify_notifications_failed",
            "Notifications that ended undelivered, by integration and reason (clientError, serverError, other, expired)",
            self.failed.clone(),
        );
        registry.register(
            "bellwether_notify_requests",
            "Delivery attempts (requests to receivers), by integration",
            self.requests.clone(),
        );
        registry.register(
            "bellwether_notify_requests_failed",
            "Delivery attempts that failed, by integration",
            self.requests_failed.clone(),
        );
        registry.register(
            "bellwether_notify_notification_latency_seconds",
            "Duration of delivery attempts, by integration",
            self.latency.clone(),
        );
        registry.register(
            "bellwether_notify_superseded",
            "Undelivered outbox entries replaced by a newer flush of the same group, or found already delivered",
            self.superseded.clone(),
        );
        registry.register(
            "bellwether_notify_outbox_pending",
            "Outbox entries waiting for delivery",
            self.pending.clone(),
        );
        registry.register(
            "bellwether_notify_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered outbox entry (0 when none)",
            self.oldest_pending.clone(),
        );
    }
}

fn integration_label(key: &IntegrationKey) -> Vec<(String, String)> {
    vec![("integration".to_string(), key.integration.clone())]
}

/// The config the deliverer runs with; replaced on reload.
struct Active {
    receivers: HashMap<String, Vec<BuiltIntegration>>,
    templates: Arc<NotifyTemplates>,
    external_url: String,
    settings: DeliverySettings,
    history: HistorySettings,
}

/// The [`Delivery`] of the daemon: nflog, outbox and worker.
pub struct Deliverer {
    store: DeliveryStore,
    active: RwLock<Arc<Active>>,
    metrics: DeliveryMetrics,
    wake: Notify,
    stopping: AtomicBool,
    /// (integration, group key) pairs with an attempt in flight.
    in_flight: Mutex<HashSet<(IntegrationKey, String)>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Deliverer {
    /// Opens the store in `data_dir/bellwether.db` and builds the
    /// receivers of `config`; `external_url` is the template data's
    /// `ExternalURL`. Metrics are registered in `registry`. Start the worker
    /// with [`Deliverer::spawn`].
    pub fn open(
        data_dir: &Path,
        config: &NotifyConfig,
        external_url: &str,
        registry: &mut Registry,
    ) -> Result<Arc<Deliverer>, String> {
        let store = DeliveryStore::open(data_dir)?;
        let metrics = DeliveryMetrics::new();
        metrics.register(registry);
        let deliverer = Deliverer {
            store,
            active: RwLock::new(Arc::new(Active {
                receivers: HashMap::new(),
                templates: Arc::clone(&config.notify_templates),
                external_url: String::new(),
                settings: DeliverySettings::default(),
                history: HistorySettings::default(),
            })),
            metrics,
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            in_flight: Mutex::new(HashSet::new()),
            limits: Mutex::new(HashMap::new()),
        };
        deliverer.apply_config(config, external_url)?;
        Ok(Arc::new(deliverer))
    }

    /// Replaces the receivers (on reload). Pending entries of receivers
    /// that no longer exist fail at their next attempt, logged.
    pub fn apply_config(&self, config: &NotifyConfig, external_url: &str) -> Result<(), String> {
        let settings = config.delivery.clone();
        let mut receivers = HashMap::new();
        for r in &config.receivers {
            receivers.insert(r.name.clone(), build_receiver(r, settings.timeout.0)?);
        }
        *self.active.write() = Arc::new(Active {
            receivers,
            templates: Arc::clone(&config.notify_templates),
            external_url: external_url.trim_end_matches('/').to_string(),
            settings,
            history: config.history.clone(),
        });
        self.wake.notify_one();
        Ok(())
    }

    /// The store (tests and inspection).
    pub fn store(&self) -> &DeliveryStore {
        &self.store
    }

    /// Records a flush: dedup against the nflog, outbox entries written.
    /// Returns the ids of the entries written.
    pub fn record(&self, n: &Notification) -> Result<Vec<i64>, String> {
        let active = self.active.read().clone();
        let Some(integrations) = active.receivers.get(&n.receiver) else {
            return Err(format!("unknown receiver {:?}", n.receiver));
        };
        let mut firing = FingerprintSet::new();
        let mut resolved = FingerprintSet::new();
        for a in &n.alerts {
            if a.resolved_at(n.now) {
                resolved.insert(a.fingerprint().0);
            } else {
                firing.insert(a.fingerprint().0);
            }
        }
        let settings = &active.settings;
        let severity =
            notification_severity(n.alerts.iter().filter_map(|a| a.labels.get("severity")));
        let mut ids = Vec::new();
        let mut superseded = 0;
        for built in integrations {
            let key = &built.key;
            let payload = Payload::from_notification(n, built.send_resolved);
            let json = serde_json::to_string(&payload).map_err(|e| e.to_string())?;
            let expires = n.now + settings.expiry.0.max(n.group_interval).as_millis() as i64;
            let log_expiry = log_expiry(settings.retention.0, n.repeat_interval);
            let id = self.store.transaction(|tx| {
                let last = tx.log_entry(key, &n.group_key, n.now)?;
                superseded += tx.supersede(key, &n.group_key, n.now)?;
                if !needs_update(
                    last.as_ref(),
                    &firing,
                    &resolved,
                    built.send_resolved,
                    n.repeat_interval,
                    n.now,
                ) {
                    return Ok(None);
                }
                if payload.alerts.is_empty() {
                    // Only resolved alerts and no send_resolved: nothing to
                    // send, but the log must forget the firing ones
                    // (Alertmanager's RetryStage passes, SetNotifiesStage logs).
                    tx.log(key, &n.group_key, &firing, &resolved, n.now, log_expiry)?;
                    return Ok(None);
                }
                tx.insert(&NewEntry {
                    key,
                    group_key: &n.group_key,
                    payload: &json,
                    firing: &firing,
                    resolved: &resolved,
                    repeat_interval: n.repeat_interval,
                    now: n.now,
                    expires,
                    severity: &severity,
                })
                .map(Some)
            })?;
            ids.extend(id);
        }
        self.metrics.superseded.inc_by(superseded as u64);
        self.wake.notify_one();
        Ok(ids)
    }

    /// Stops the worker after the attempts in flight.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Starts the worker.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move { me.run().await })
    }

    async fn run(self: Arc<Self>) {
        let mut last_prune = Instant::now() - PRUNE_EVERY;
        let mut last_gauges = Instant::now() - Duration::from_secs(1);
        let mut last_orphans = last_gauges;
        while !self.stopping.load(Ordering::SeqCst) {
            let now = now_millis();
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                let history = self.active.read().history.clone();
                if let Err(e) =
                    self.store
                        .prune(now, &history.per_severity(), history.default_retention.0)
                {
                    tracing::warn!(error = %e, "pruning the notification store failed");
                }
            }
            let orphans = last_orphans.elapsed() >= Duration::from_secs(1);
            if orphans {
                last_orphans = Instant::now();
            }
            if let Err(e) = self.start_due(now, orphans) {
                tracing::error!(error = %e, "reading the outbox failed");
            }
            // The gauges count every pending row: once a second, not on
            // every completion.
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = Instant::now();
                self.update_gauges(now);
            }
            // Entries already due are in flight (their completion wakes the
            // loop); otherwise sleep until the next one is due, at most 1 s.
            let wait = match self.store.next_due() {
                Ok(Some(next)) if next > now_millis() => {
                    Duration::from_millis((next - now_millis()).clamp(10, 1000) as u64)
                }
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn update_gauges(&self, now: Timestamp) {
        if let Ok((count, oldest)) = self.store.pending_stats() {
            self.metrics.pending.set(count);
            self.metrics
                .oldest_pending
                .set(oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
        }
    }

    /// Starts what is due: expiries first, then, per receiver, as many
    /// attempts as it has free slots (so a receiver with a backlog or one
    /// that hangs never hides another's due entries), then, with `orphans`,
    /// the entries of receivers no longer configured (they fail at once;
    /// that query reads every due row, so the caller asks for it once a
    /// second). Only cheap key rows are read; an entry is loaded when its
    /// attempt starts.
    fn start_due(self: &Arc<Self>, now: Timestamp, orphans: bool) -> Result<(), String> {
        let in_flight = |key: &IntegrationKey, group: &str| {
            self.in_flight
                .lock()
                .contains(&(key.clone(), group.to_string()))
        };
        let flying = self.in_flight.lock().len();
        for (id, key, group) in self.store.due_keys(now, DueScope::Expired, 256 + flying)? {
            // Expiry wins over an attempt that is due at the same time.
            if !in_flight(&key, &group) {
                if let Some(entry) = self.store.entry(id)? {
                    self.expire(&entry, now);
                }
            }
        }
        let names: Vec<String> = self.active.read().receivers.keys().cloned().collect();
        for name in &names {
            let semaphore = self.semaphore(name);
            let free = semaphore.available_permits();
            if free == 0 {
                continue;
            }
            let mut started = 0;
            let scope = DueScope::Receiver(name);
            for (id, key, group) in self.store.due_keys(now, scope, free + flying)? {
                if started == free {
                    break;
                }
                if in_flight(&key, &group) {
                    continue;
                }
                let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() else {
                    break;
                };
                if let Some(entry) = self.store.entry(id)? {
                    self.start_attempt(entry, Some(permit));
                    started += 1;
                }
            }
        }
        if !orphans {
            return Ok(());
        }
        for (id, key, group) in self.store.due_keys(now, DueScope::NotIn(&names), 256)? {
            if !in_flight(&key, &group) {
                if let Some(entry) = self.store.entry(id)? {
                    self.start_attempt(entry, None);
                }
            }
        }
        Ok(())
    }

    fn semaphore(&self, receiver: &str) -> Arc<Semaphore> {
        Arc::clone(
            self.limits
                .lock()
                .entry(receiver.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_RECEIVER_CONCURRENCY))),
        )
    }

    /// Runs one attempt of `entry` on its own task, holding `permit` (the
    /// receiver's slot) until it ends.
    fn start_attempt(
        self: &Arc<Self>,
        entry: OutboxEntry,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let flight = (entry.key.clone(), entry.group_key.clone());
        if !self.in_flight.lock().insert(flight.clone()) {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            me.attempt(&entry).await;
            drop(permit);
            me.in_flight.lock().remove(&flight);
            me.wake.notify_one();
        });
    }

    fn expire(&self, entry: &OutboxEntry, now: Timestamp) {
        let result = self.store.transaction(|tx| {
            tx.finish(entry.id, EntryState::Expired, false, &entry.last_error, now)
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "outbox update failed");
            return;
        }
        let mut labels = integration_label(&entry.key);
        labels.push(("reason".into(), "expired".into()));
        self.metrics.failed.get_or_create(&labels).inc();
        tracing::error!(
            integration = %entry.key,
            group_key = %entry.group_key,
            attempts = entry.attempts,
            created = entry.created,
            last_error = %entry.last_error,
            "notification expired undelivered"
        );
    }

    /// One attempt of one entry, and its bookkeeping.
    async fn attempt(&self, entry: &OutboxEntry) {
        let now = now_millis();
        let active = self.active.read().clone();
        // Already delivered by an earlier entry with the same content?
        let last = match self.store.log_entry(&entry.key, &entry.group_key, now) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "reading the notification log failed");
                return;
            }
        };
        let built = active
            .receivers
            .get(&entry.key.receiver)
            .and_then(|list| list.iter().find(|b| b.key == entry.key));
        let Some(built) = built else {
            self.fail(
                entry,
                "the receiver or integration is no longer configured",
                FailReason::Other,
                false,
                now,
            );
            return;
        };
        if !needs_update(
            last.as_ref(),
            &entry.firing,
            &entry.resolved,
            built.send_resolved,
            entry.repeat_interval,
            entry.created,
        ) {
            let _ = self.store.transaction(|tx| {
                tx.finish(
                    entry.id,
                    EntryState::Superseded,
                    false,
                    "already delivered",
                    now,
                )
            });
            self.metrics.superseded.inc();
            return;
        }
        let payload: Payload = match serde_json::from_str(&entry.payload) {
            Ok(p) => p,
            Err(e) => {
                self.fail(
                    entry,
                    &format!("unreadable outbox payload: {e}"),
                    FailReason::Other,
                    false,
                    now,
                );
                return;
            }
        };
        let label = integration_label(&entry.key);
        if entry.attempts == 0 {
            self.metrics.notifications.get_or_create(&label).inc();
        }
        let started = Instant::now();
        let (_sent, outcome) = built
            .integration
            .notify(
                &entry.key,
                &payload,
                &active.templates,
                &active.external_url,
            )
            .await;
        self.metrics
            .latency
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        self.metrics.requests.get_or_create(&label).inc();
        let now = now_millis();
        match outcome {
            Outcome::Delivered { answer } => {
                let log_expiry = log_expiry(active.settings.retention.0, entry.repeat_interval);
                let result = self.store.transaction(|tx| {
                    tx.attempted(entry.id, now, "delivered", &answer)?;
                    tx.finish(entry.id, EntryState::Delivered, true, "", now)?;
                    tx.log(
                        &entry.key,
                        &entry.group_key,
                        &entry.firing,
                        &entry.resolved,
                        now,
                        log_expiry,
                    )
                });
                if let Err(e) = result {
                    tracing::error!(error = %e, integration = %entry.key, "recording a delivery failed");
                }
                let level_info = entry.attempts > 0;
                if level_info {
                    tracing::info!(integration = %entry.key, group_key = %entry.group_key, attempts = entry.attempts + 1, "notify success");
                } else {
                    tracing::debug!(integration = %entry.key, group_key = %entry.group_key, "notify success");
                }
            }
            Outcome::Retry {
                error,
                after,
                reason,
            } => {
                self.metrics.requests_failed.get_or_create(&label).inc();
                let delay = after.unwrap_or_else(|| backoff(entry.attempts + 1, entry.id));
                let next = now + delay.as_millis() as i64;
                if next >= entry.expires {
                    let _ = self.store.transaction(|tx| {
                        tx.attempted(entry.id, now, "retry", &error)?;
                        tx.retry(entry.id, next, &error)
                    });
                    let mut e = entry.clone();
                    e.attempts += 1;
                    e.last_error = error;
                    let _ = reason;
                    self.expire(&e, now);
                    return;
                }
                if let Err(e) = self.store.transaction(|tx| {
                    tx.attempted(entry.id, now, "retry", &error)?;
                    tx.retry(entry.id, next, &error)
                }) {
                    tracing::error!(error = %e, "outbox update failed");
                }
                tracing::warn!(
                    integration = %entry.key,
                    group_key = %entry.group_key,
                    attempts = entry.attempts + 1,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %error,
                    "notify attempt failed, will retry"
                );
            }
            Outcome::Failed { error, reason } => {
                self.metrics.requests_failed.get_or_create(&label).inc();
                self.fail(entry, &error, reason, true, now);
            }
        }
    }

    fn fail(
        &self,
        entry: &OutboxEntry,
        error: &str,
        reason: FailReason,
        attempted: bool,
        now: Timestamp,
    ) {
        if let Err(e) = self.store.transaction(|tx| {
            if attempted {
                tx.attempted(entry.id, now, "failed", error)?;
            }
            tx.finish(entry.id, EntryState::Failed, attempted, error, now)
        }) {
            tracing::error!(error = %e, "outbox update failed");
        }
        let mut labels = integration_label(&entry.key);
        labels.push(("reason".into(), reason.as_str().into()));
        self.metrics.failed.get_or_create(&labels).inc();
        tracing::error!(
            integration = %entry.key,
            group_key = %entry.group_key,
            error = %error,
            "notification failed, not retried"
        );
    }
}

/// Delivers `n` to every integration of its receiver now, without the
/// notification log or the outbox (`bellwether notify test`).
pub async fn deliver_now(
    config: &NotifyConfig,
    external_url: &str,
    n: &Notification,
) -> Result<Vec<(IntegrationKey, Sent, Outcome)>, String> {
    let Some(receiver) = config.receiver(&n.receiver) else {
        return Err(format!("unknown receiver {:?}", n.receiver));
    };
    let external_url = external_url.trim_end_matches('/');
    let mut out = Vec::new();
    for built in build_receiver(receiver, config.delivery.timeout.0)? {
        let payload = Payload::from_notification(n, built.send_resolved);
        if payload.alerts.is_empty() {
            continue;
        }
        let (sent, outcome) = built
            .integration
            .notify(&built.key, &payload, &config.notify_templates, external_url)
            .await;
        out.push((built.key.clone(), sent, outcome));
    }
    Ok(out)
}

/// nflog entries live `min(retention, 2 × repeat_interval)` (Alertmanager 0.25).
fn log_expiry(retention: Duration, repeat_interval: Duration) -> Duration {
    let twice = repeat_interval * 2;
    if !twice.is_zero() && retention > twice {
        twice
    } else {
        retention
    }
}

/// Exponential backoff with ±50 % jitter for attempt `n` (1 = first retry).
pub fn backoff(n: u32, salt: i64) -> Duration {
    let base = INITIAL_BACKOFF
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(salt);
    h.write_u32(n);
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + unit)
}

impl Delivery for Deliverer {
    fn notify(&self, notification: Notification) {
        if let Err(e) = self.record(&notification) {
            tracing::error!(
                receiver = %notification.receiver,
                group_key = %notification.group_key,
                error = %e,
                "recording a notification in the outbox failed"
            );
        }
    }
}
