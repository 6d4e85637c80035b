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

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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

/// Queued entries beyond this many stay in the outbox only; the worker
/// reads them when their receiver's queue has drained.
const QUEUE_LIMIT: usize = 20_000;
/// Due entries read from the outbox per receiver and scan.
const SCAN_BATCH: usize = 256;
/// The longest the worker goes without scanning the outbox.
const SCAN_EVERY_MS: Timestamp = 1000;

/// The worker's memory of the outbox: entries waiting for a slot of their
/// receiver — handed over by [`Deliverer::record_all`] as they are written,
/// or read by a scan of the outbox (retries, a previous run's entries, a
/// queue that overflowed) — and the entries in flight. An entry is queued or
/// in flight from the moment it is held until its attempt's outcome is
/// committed, so no scan can start it a second time.
#[derive(Default)]
struct Sched {
    /// Receiver → queued entry ids, oldest first (ids no longer in `queued`
    /// are skipped).
    ready: HashMap<String, VecDeque<i64>>,
    queued: HashMap<i64, OutboxEntry>,
    /// (integration, group key) → its queued entry.
    queued_groups: HashMap<(IntegrationKey, String), i64>,
    flying: HashSet<i64>,
    /// (integration, group key) of the entries in flight: at most one
    /// attempt per group and integration.
    flying_groups: HashSet<(IntegrationKey, String)>,
    /// Receivers that may have due entries in the outbox that are not held.
    backlog: HashSet<String>,
    /// Scan every receiver at the next round.
    rescan: bool,
    /// Recordings between their write and their hand-over, and a count of
    /// recordings started: a scan that overlaps one discards what it read
    /// (the entries it saw may be handed over behind it).
    recording: usize,
    generation: u64,
}

impl Sched {
    fn held(&self, id: i64) -> bool {
        self.queued.contains_key(&id) || self.flying.contains(&id)
    }

    /// Queues an entry unless it is held or the queue is full.
    fn enqueue(&mut self, entry: OutboxEntry) {
        if self.held(entry.id) {
            return;
        }
        if self.queued.len() >= QUEUE_LIMIT {
            self.backlog.insert(entry.key.receiver.clone());
            return;
        }
        self.queued_groups
            .insert((entry.key.clone(), entry.group_key.clone()), entry.id);
        self.ready
            .entry(entry.key.receiver.clone())
            .or_default()
            .push_back(entry.id);
        self.queued.insert(entry.id, entry);
    }

    /// Takes a queued entry out of the queue (it goes in flight or ends).
    fn unqueue(&mut self, id: i64) -> Option<OutboxEntry> {
        let entry = self.queued.remove(&id)?;
        let group = (entry.key.clone(), entry.group_key.clone());
        if self.queued_groups.get(&group) == Some(&id) {
            self.queued_groups.remove(&group);
        }
        Some(entry)
    }

    /// Drops the queued entry of a group (superseded in the outbox).
    fn unqueue_group(&mut self, key: &IntegrationKey, group_key: &str) {
        if let Some(id) = self
            .queued_groups
            .get(&(key.clone(), group_key.to_string()))
            .copied()
        {
            self.unqueue(id);
        }
    }

    fn queue_is_empty(&self, receiver: &str) -> bool {
        self.ready.get(receiver).is_none_or(|ids| ids.is_empty())
    }

    /// The oldest queued entry of `receiver` whose group has no attempt in
    /// flight, taken out of the queue and put in flight.
    fn next(&mut self, receiver: &str) -> Option<OutboxEntry> {
        let ids = self.ready.get_mut(receiver)?;
        let mut i = 0;
        while i < ids.len() {
            let id = ids[i];
            let Some(entry) = self.queued.get(&id) else {
                ids.remove(i);
                continue;
            };
            if self
                .flying_groups
                .contains(&(entry.key.clone(), entry.group_key.clone()))
            {
                i += 1;
                continue;
            }
            ids.remove(i);
            let entry = self.unqueue(id)?;
            self.fly(&entry);
            return Some(entry);
        }
        None
    }

    fn fly(&mut self, entry: &OutboxEntry) {
        self.flying.insert(entry.id);
        self.flying_groups
            .insert((entry.key.clone(), entry.group_key.clone()));
    }

    /// An entry's outcome is committed.
    fn land(&mut self, entry: &OutboxEntry) {
        self.flying.remove(&entry.id);
        self.flying_groups
            .remove(&(entry.key.clone(), entry.group_key.clone()));
    }

    fn flying_of(&self, receiver: &str) -> usize {
        self.flying_groups
            .iter()
            .filter(|(k, _)| k.receiver == receiver)
            .count()
    }
}

/// One integration's part of a flush, ready to be written.
struct Prepared<'a> {
    n: &'a Notification,
    built: &'a BuiltIntegration,
    firing: Arc<FingerprintSet>,
    resolved: Arc<FingerprintSet>,
    severity: Arc<str>,
    /// The payload as JSON; `None` when it has no alerts (only resolved
    /// ones and no `send_resolved`).
    json: Option<String>,
    expires: Timestamp,
    log_expiry: Duration,
}

/// The [`Delivery`] of the daemon: nflog, outbox and worker.
pub struct Deliverer {
    store: DeliveryStore,
    active: RwLock<Arc<Active>>,
    metrics: DeliveryMetrics,
    wake: Notify,
    stopping: AtomicBool,
    sched: Mutex<Sched>,
    /// When the worker scans the outbox next (Unix ms): the next retry or
    /// expiry, at most [`SCAN_EVERY_MS`] away.
    next_scan: AtomicI64,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Tests: attempts do not record their outcome (a crash between the
    /// receiver's answer and the commit).
    #[cfg(test)]
    forget_outcomes: AtomicBool,
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
            sched: Mutex::new(Sched {
                rescan: true,
                ..Sched::default()
            }),
            next_scan: AtomicI64::new(0),
            limits: Mutex::new(HashMap::new()),
            #[cfg(test)]
            forget_outcomes: AtomicBool::new(false),
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
        // The queues are rebuilt from the outbox under the new receivers.
        let mut sched = self.sched.lock();
        sched.ready.clear();
        sched.queued.clear();
        sched.queued_groups.clear();
        sched.rescan = true;
        drop(sched);
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
        if !self.active.read().receivers.contains_key(&n.receiver) {
            return Err(format!("unknown receiver {:?}", n.receiver));
        }
        self.record_all(std::slice::from_ref(n))
    }

    /// Records the flushes of one round of the dispatcher in one
    /// transaction: for each integration of each notification's receiver,
    /// dedup against the nflog, older undelivered entries of the group
    /// superseded, the new entry written. Only once that transaction is
    /// committed are the new entries handed to the worker's queue. A
    /// notification that cannot be recorded (unknown receiver, SQL error in
    /// its own savepoint) is logged and does not hold up the others.
    /// Returns the ids of the entries written. Blocks on SQLite: call it
    /// off the async threads.
    pub fn record_all(&self, batch: &[Notification]) -> Result<Vec<i64>, String> {
        let active = self.active.read().clone();
        let settings = &active.settings;
        let mut prepared: Vec<Prepared<'_>> = Vec::new();
        for n in batch {
            let Some(integrations) = active.receivers.get(&n.receiver) else {
                tracing::error!(
                    receiver = %n.receiver,
                    group_key = %n.group_key,
                    "recording a notification in the outbox failed: unknown receiver"
                );
                continue;
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
            let (firing, resolved) = (Arc::new(firing), Arc::new(resolved));
            let severity: Arc<str> =
                notification_severity(n.alerts.iter().filter_map(|a| a.labels.get("severity")))
                    .into();
            for built in integrations {
                let payload = Payload::from_notification(n, built.send_resolved);
                let json = if payload.alerts.is_empty() {
                    None
                } else {
                    Some(serde_json::to_string(&payload).map_err(|e| e.to_string())?)
                };
                prepared.push(Prepared {
                    n,
                    built,
                    firing: Arc::clone(&firing),
                    resolved: Arc::clone(&resolved),
                    severity: Arc::clone(&severity),
                    json,
                    expires: n.now + settings.expiry.0.max(n.group_interval).as_millis() as i64,
                    log_expiry: log_expiry(settings.retention.0, n.repeat_interval),
                });
            }
        }
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        {
            let mut sched = self.sched.lock();
            sched.recording += 1;
            sched.generation += 1;
        }
        let written = self.store.transaction(|tx| {
            Ok(prepared
                .iter()
                .map(|p| tx.isolated(|tx| write_prepared(tx, p)))
                .collect::<Vec<_>>())
        });
        let mut sched = self.sched.lock();
        sched.recording -= 1;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                drop(sched);
                return Err(e);
            }
        };
        let mut ids = Vec::new();
        let mut superseded = 0;
        let mut next_expiry = i64::MAX;
        for (p, result) in prepared.into_iter().zip(written) {
            let key = &p.built.key;
            match result {
                Err(e) => tracing::error!(
                    receiver = %p.n.receiver,
                    group_key = %p.n.group_key,
                    error = %e,
                    "recording a notification in the outbox failed"
                ),
                Ok((count, id)) => {
                    superseded += count;
                    if count > 0 {
                        sched.unqueue_group(key, &p.n.group_key);
                    }
                    let (Some(id), Some(json)) = (id, p.json) else {
                        continue;
                    };
                    ids.push(id);
                    next_expiry = next_expiry.min(p.expires);
                    sched.enqueue(OutboxEntry {
                        id,
                        key: key.clone(),
                        group_key: p.n.group_key.clone(),
                        payload: json,
                        firing: (*p.firing).clone(),
                        resolved: (*p.resolved).clone(),
                        repeat_interval: p.n.repeat_interval,
                        created: p.n.now,
                        attempts: 0,
                        next_attempt: p.n.now,
                        expires: p.expires,
                        state: EntryState::Pending,
                        last_error: String::new(),
                    });
                }
            }
        }
        drop(sched);
        self.next_scan.fetch_min(next_expiry, Ordering::SeqCst);
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
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                let me = Arc::clone(&self);
                let pruned = tokio::task::spawn_blocking(move || {
                    let history = me.active.read().history.clone();
                    me.store.prune(
                        now_millis(),
                        &history.per_severity(),
                        history.default_retention.0,
                    )
                })
                .await;
                if let Ok(Err(e)) = pruned {
                    tracing::warn!(error = %e, "pruning the notification store failed");
                }
            }
            let now = now_millis();
            let orphans = last_orphans.elapsed() >= Duration::from_secs(1);
            if orphans {
                last_orphans = Instant::now();
            }
            let timed = now >= self.next_scan.load(Ordering::SeqCst)
                || std::mem::take(&mut self.sched.lock().rescan);
            if timed {
                self.next_scan.store(i64::MAX, Ordering::SeqCst);
            }
            if let Err(e) = self.start_due(now, timed, orphans) {
                tracing::error!(error = %e, "reading the outbox failed");
                self.sched.lock().rescan = true;
            }
            if timed {
                let next = match self.store.next_due_after(now) {
                    Ok(Some(t)) => t.min(now + SCAN_EVERY_MS),
                    _ => now + SCAN_EVERY_MS,
                };
                self.next_scan.fetch_min(next, Ordering::SeqCst);
            }
            // The gauges count every pending row: once a second, not on
            // every completion.
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = Instant::now();
                self.update_gauges(now);
            }
            // Completions and new entries wake the loop; otherwise it sleeps
            // until the next retry or expiry, at most 1 s.
            let wait = (self.next_scan.load(Ordering::SeqCst) - now_millis()).clamp(1, 1000);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
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

    /// Reads due entries of the outbox that are not held, unless a
    /// recording overlaps the read (then `None`, and the next round scans
    /// again). Each entry is read after it was found not held and kept only
    /// if still pending, so an attempt that ended meanwhile is not repeated.
    fn scan(
        &self,
        now: Timestamp,
        scope: DueScope<'_>,
        limit: usize,
    ) -> Result<Option<Vec<OutboxEntry>>, String> {
        let generation = {
            let sched = self.sched.lock();
            if sched.recording > 0 {
                drop(sched);
                self.sched.lock().rescan = true;
                return Ok(None);
            }
            sched.generation
        };
        let keys = self.store.due_keys(now, scope, limit)?;
        let fresh: Vec<i64> = {
            let sched = self.sched.lock();
            keys.iter()
                .map(|(id, _, _)| *id)
                .filter(|id| !sched.held(*id))
                .collect()
        };
        let mut entries = self.store.pending_entries(&fresh)?;
        let mut sched = self.sched.lock();
        if sched.recording > 0 || sched.generation != generation {
            sched.rescan = true;
            return Ok(None);
        }
        if keys.len() >= limit {
            if let DueScope::Receiver(r) = scope {
                sched.backlog.insert(r.to_string());
            }
        }
        entries.retain(|e| !sched.held(e.id));
        Ok(Some(entries))
    }

    /// Starts what is due: with `timed`, expiries first; then, per
    /// receiver, as many queued entries as it has free slots (so a receiver
    /// with a backlog or one that hangs never holds up another), reading
    /// due entries from the outbox first when its queue is empty and the
    /// round is `timed` or it has a backlog; then, with `orphans`, the
    /// entries of receivers no longer configured (they fail at once; that
    /// query reads every due row, so the caller asks for it once a second).
    fn start_due(
        self: &Arc<Self>,
        now: Timestamp,
        timed: bool,
        orphans: bool,
    ) -> Result<(), String> {
        if timed {
            let flying = self.sched.lock().flying.len();
            if let Some(expired) = self.scan(now, DueScope::Expired, 256 + flying)? {
                for entry in expired {
                    self.sched.lock().fly(&entry);
                    self.spawn_expire(entry, now);
                }
            }
            // Queued entries past their expiry (their attempt is not due
            // before it any more).
            let late: Vec<OutboxEntry> = {
                let mut sched = self.sched.lock();
                let ids: Vec<i64> = sched
                    .queued
                    .values()
                    .filter(|e| e.expires <= now)
                    .map(|e| e.id)
                    .collect();
                ids.into_iter()
                    .filter_map(|id| {
                        let entry = sched.unqueue(id)?;
                        sched.fly(&entry);
                        Some(entry)
                    })
                    .collect()
            };
            for entry in late {
                self.spawn_expire(entry, now);
            }
        }
        let names: Vec<String> = self.active.read().receivers.keys().cloned().collect();
        for name in &names {
            let semaphore = self.semaphore(name);
            if semaphore.available_permits() == 0 {
                if timed {
                    self.sched.lock().backlog.insert(name.clone());
                }
                continue;
            }
            let scan = {
                let mut sched = self.sched.lock();
                if !sched.queue_is_empty(name) {
                    if timed {
                        sched.backlog.insert(name.clone());
                    }
                    false
                } else {
                    sched.backlog.remove(name) || timed
                }
            };
            if scan {
                let flying = self.sched.lock().flying_of(name);
                let scope = DueScope::Receiver(name);
                if let Some(found) = self.scan(now, scope, SCAN_BATCH + flying)? {
                    let mut sched = self.sched.lock();
                    for entry in found {
                        sched.enqueue(entry);
                    }
                }
            }
            loop {
                let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() else {
                    break;
                };
                let Some(entry) = self.sched.lock().next(name) else {
                    break;
                };
                self.start_attempt(entry, Some(permit));
            }
        }
        if orphans {
            if let Some(found) = self.scan(now, DueScope::NotIn(&names), 256)? {
                for entry in found {
                    let mut sched = self.sched.lock();
                    if sched
                        .flying_groups
                        .contains(&(entry.key.clone(), entry.group_key.clone()))
                    {
                        continue;
                    }
                    sched.fly(&entry);
                    drop(sched);
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

    /// Runs one attempt of `entry` (already in flight) on its own task,
    /// holding `permit` (the receiver's slot) until the receiver answered;
    /// the entry lands when the outcome is committed.
    fn start_attempt(
        self: &Arc<Self>,
        entry: OutboxEntry,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            me.attempt(&entry, permit).await;
            me.sched.lock().land(&entry);
            me.wake.notify_one();
        });
    }

    /// Runs `work` in the writer's next group commit and waits for it.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&store::Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.submit(work, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .unwrap_or_else(|_| Err("the notification store closed".to_string()))
    }

    /// Expires `entry` (already in flight) on its own task.
    fn spawn_expire(self: &Arc<Self>, entry: OutboxEntry, now: Timestamp) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            me.expire(&entry, now).await;
            me.sched.lock().land(&entry);
            me.wake.notify_one();
        });
    }

    async fn expire(&self, entry: &OutboxEntry, now: Timestamp) {
        let (id, error) = (entry.id, entry.last_error.clone());
        let result = self
            .write(move |tx| tx.finish(id, EntryState::Expired, false, &error, now))
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "outbox update failed");
            return;
        }
        self.report_expired(entry);
    }

    fn report_expired(&self, entry: &OutboxEntry) {
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
    async fn attempt(
        &self,
        entry: &OutboxEntry,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) {
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
            )
            .await;
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
            let id = entry.id;
            let _ = self
                .write(move |tx| {
                    tx.finish(id, EntryState::Superseded, false, "already delivered", now)
                })
                .await;
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
                )
                .await;
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
        // The receiver's slot is free; the group stays in flight until the
        // outcome is committed.
        drop(permit);
        self.wake.notify_one();
        self.metrics
            .latency
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        self.metrics.requests.get_or_create(&label).inc();
        #[cfg(test)]
        if self.forget_outcomes.load(Ordering::SeqCst) {
            // As if the process died before the commit: the entry stays
            // pending and in flight.
            std::future::pending::<()>().await;
        }
        let now = now_millis();
        let id = entry.id;
        match outcome {
            Outcome::Delivered { answer } => {
                let log_expiry = log_expiry(active.settings.retention.0, entry.repeat_interval);
                let (key, group_key) = (entry.key.clone(), entry.group_key.clone());
                let (firing, resolved) = (entry.firing.clone(), entry.resolved.clone());
                let result = self
                    .write(move |tx| {
                        tx.attempted(id, now, "delivered", &answer)?;
                        tx.finish(id, EntryState::Delivered, true, "", now)?;
                        tx.log(&key, &group_key, &firing, &resolved, now, log_expiry)
                    })
                    .await;
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
                reason: _,
            } => {
                self.metrics.requests_failed.get_or_create(&label).inc();
                let delay = after.unwrap_or_else(|| backoff(entry.attempts + 1, entry.id));
                let next = now + delay.as_millis() as i64;
                let expires = next >= entry.expires;
                let message = error.clone();
                let result = self
                    .write(move |tx| {
                        tx.attempted(id, now, "retry", &message)?;
                        tx.retry(id, next, &message)?;
                        if expires {
                            tx.finish(id, EntryState::Expired, false, &message, now)?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "outbox update failed");
                    return;
                }
                if expires {
                    let mut e = entry.clone();
                    e.attempts += 1;
                    e.last_error = error;
                    self.report_expired(&e);
                    return;
                }
                self.next_scan.fetch_min(next, Ordering::SeqCst);
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
                self.fail(entry, &error, reason, true, now).await;
            }
        }
    }

    async fn fail(
        &self,
        entry: &OutboxEntry,
        error: &str,
        reason: FailReason,
        attempted: bool,
        now: Timestamp,
    ) {
        let (id, message) = (entry.id, error.to_string());
        if let Err(e) = self
            .write(move |tx| {
                if attempted {
                    tx.attempted(id, now, "failed", &message)?;
                }
                tx.finish(id, EntryState::Failed, attempted, &message, now)
            })
            .await
        {
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

/// Writes one integration's part of a flush: returns how many undelivered
/// entries of its group it superseded and the new entry's id, if one was
/// needed.
fn write_prepared(tx: &store::Tx<'_>, p: &Prepared<'_>) -> rusqlite::Result<(usize, Option<i64>)> {
    let (n, key) = (p.n, &p.built.key);
    let last = tx.log_entry(key, &n.group_key, n.now)?;
    let superseded = tx.supersede(key, &n.group_key, n.now)?;
    if !needs_update(
        last.as_ref(),
        &p.firing,
        &p.resolved,
        p.built.send_resolved,
        n.repeat_interval,
        n.now,
    ) {
        return Ok((superseded, None));
    }
    let Some(json) = &p.json else {
        // Only resolved alerts and no send_resolved: nothing to send, but
        // the log must forget the firing ones (Alertmanager's RetryStage
        // passes, SetNotifiesStage logs).
        tx.log(
            key,
            &n.group_key,
            &p.firing,
            &p.resolved,
            n.now,
            p.log_expiry,
        )?;
        return Ok((superseded, None));
    };
    let id = tx.insert(&NewEntry {
        key,
        group_key: &n.group_key,
        payload: json,
        firing: &p.firing,
        resolved: &p.resolved,
        repeat_interval: n.repeat_interval,
        now: n.now,
        expires: p.expires,
        severity: &p.severity,
    })?;
    Ok((superseded, Some(id)))
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
        self.notify_all(vec![notification]);
    }

    fn notify_all(&self, batch: Vec<Notification>) {
        if let Err(e) = self.record_all(&batch) {
            tracing::error!(
                notifications = batch.len(),
                error = %e,
                "recording notifications in the outbox failed"
            );
        }
    }
}
