//! Where alerts go once the rule engine has decided to send them.
//!
//! Alerts arrive through one channel ([`AlertSender`]) from the rule
//! manager. The [`Dispatcher`] at its other end does what Prometheus's
//! notifier does — adds the external labels, applies
//! `alerting.alert_relabel_configs`, and forwards to the Alertmanagers of
//! `alerting.alertmanagers` (API v2, `alertmanager.rs`) — writes every
//! alert to the daemon's log, and hands the alerts to the in-process
//! Alertmanager, the [`Router`] (`alerts.rs` store, `dispatch.rs` groups and
//! timers, `inhibit.rs`, `marker.rs`), which `POST /api/v2/alerts` feeds too.
//!
//! This module must not reach back into the rule engine.

pub mod alertmanager;
pub mod alerts;
pub mod config;
pub mod deliver;
pub mod dispatch;
pub mod inhibit;
pub mod marker;
pub mod matchers;
pub mod route;
pub mod silences;
pub mod timeinterval;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;

use crate::config::{Config, RelabelConfig};
use crate::model::{Labels, Timestamp};

pub use alertmanager::{AlertmanagerMetrics, AlertmanagerSet};
pub use dispatch::{LogDelivery, Router};

/// An alert as it leaves the rule engine: Prometheus's notifier alert.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyAlert {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    /// When the alert started firing (Unix ms).
    pub starts_at: Timestamp,
    /// When it resolved, or until when it is valid if no update follows.
    pub ends_at: Timestamp,
    /// Whether `ends_at` is a resolution (true) or a validity horizon.
    pub resolved: bool,
    /// Link back to the expression (`/graph?g0.expr=…&g0.tab=1`).
    pub generator_url: String,
}

/// The one way alerts leave the rule engine.
pub type AlertSender = mpsc::UnboundedSender<Vec<NotifyAlert>>;
pub type AlertReceiver = mpsc::UnboundedReceiver<Vec<NotifyAlert>>;

pub fn channel() -> (AlertSender, AlertReceiver) {
    mpsc::unbounded_channel()
}

/// What the dispatcher applies to every alert; replaced on reload.
struct DispatchConfig {
    external_labels: BTreeMap<String, String>,
    relabel: Vec<RelabelConfig>,
    alertmanagers: Vec<Arc<AlertmanagerSet>>,
}

/// The consumer of the alert channel.
pub struct Dispatcher {
    config: RwLock<Arc<DispatchConfig>>,
    metrics: AlertmanagerMetrics,
    router: Arc<Router>,
}

/// The notification config of a loaded config (the default route when it
/// has no `notify` section).
pub fn notify_config_of(config: &Config) -> Option<config::NotifyConfig> {
    match &config.notify_config {
        Some(c) => Some(c.clone()),
        None => config::check_section(Default::default(), None, None).ok(),
    }
}

impl Dispatcher {
    /// `router` receives every alert after relabelling; its task
    /// ([`Router::run`]) is the caller's to spawn.
    pub fn new(registry: &mut Registry, router: Arc<Router>) -> Arc<Dispatcher> {
        let metrics = AlertmanagerMetrics::default();
        metrics.register(registry);
        Arc::new(Dispatcher {
            router,
            config: RwLock::new(Arc::new(DispatchConfig {
                external_labels: BTreeMap::new(),
                relabel: Vec::new(),
                alertmanagers: Vec::new(),
            })),
            metrics,
        })
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }

    /// Applies the `alerting` section, the external labels and the
    /// notification config. Queues of the Alertmanagers being replaced are
    /// dropped (their alerts are re-sent by the rules within the resend
    /// delay).
    pub fn apply_config(&self, config: &Config) -> Result<(), String> {
        if let Some(notify) = notify_config_of(config) {
            self.router.apply_config(&notify);
        }
        let mut sets = Vec::new();
        for (i, am) in config.alerting.alertmanagers.iter().enumerate() {
            sets.push(AlertmanagerSet::start(
                format!("config-{i}"),
                am,
                self.metrics.clone(),
            )?);
        }
        let old = std::mem::replace(
            &mut *self.config.write(),
            Arc::new(DispatchConfig {
                external_labels: config.global.external_labels.clone(),
                relabel: config.alerting.alert_relabel_configs.clone(),
                alertmanagers: sets,
            }),
        );
        for set in &old.alertmanagers {
            set.stop();
        }
        Ok(())
    }

    /// Consumes the channel until every sender is gone.
    pub async fn run(self: Arc<Self>, mut alerts: AlertReceiver) {
        while let Some(batch) = alerts.recv().await {
            self.dispatch(batch);
        }
        for set in &self.config.read().alertmanagers {
            set.stop();
        }
        self.router.stop();
    }

    fn dispatch(&self, batch: Vec<NotifyAlert>) {
        let config = self.config.read().clone();
        let mut out = Vec::with_capacity(batch.len());
        for mut alert in batch {
            for (name, value) in &config.external_labels {
                if alert.labels.get(name).is_none() {
                    alert.labels.set(name, value);
                }
            }
            if !config.relabel.is_empty() {
                match crate::collect::scrape::relabel::process(&alert.labels, &config.relabel) {
                    Some(labels) if !labels.is_empty() => alert.labels = labels,
                    _ => continue,
                }
            }
            tracing::info!(
                alert = %alert.labels,
                status = if alert.resolved { "resolved" } else { "firing" },
                "alert"
            );
            out.push(alert);
        }
        if out.is_empty() {
            return;
        }
        for set in &config.alertmanagers {
            set.enqueue(&out);
        }
        let refused = self
            .router
            .receive(out.into_iter().map(alerts::from_rule_alert).collect());
        for error in refused {
            tracing::warn!(%error, "alert from the rule engine refused by the router");
        }
    }
}
