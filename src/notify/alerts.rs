//! The alert store (Alertmanager 0.25's provider/mem): the latest version of
//! every alert the router received, keyed by fingerprint, from the rule
//! engine and from `POST /api/v2/alerts` alike.
//!
//! An update of a known alert is merged into it as `types.Alert.Merge` does
//! when the two overlap in time; subscribers (the dispatcher) get every
//! stored version, and a new subscriber first gets every alert held. Resolved
//! alerts are forgotten by [`AlertStore::gc`] (every `alerts.gc-interval`,
//! 30 minutes, as Alertmanager), which also clears their marker entries.
//!
//! It decides nothing about routing or muting.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::model::{Labels, Timestamp};

use super::marker::Marker;
use super::types::{Alert, Fingerprint};
use super::NotifyAlert;

/// How often resolved alerts are forgotten (Alertmanager's `--alerts.gc-interval`).
pub const GC_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// The wall clock the router reads. Tests run on tokio's paused time, so
/// their wall clock is derived from it.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    System,
    /// `base_ms` at `base`, then advancing with `tokio::time::Instant`.
    Tokio {
        base_ms: Timestamp,
        base: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that starts at `base_ms` now and follows tokio's time.
    pub fn tokio(base_ms: Timestamp) -> Clock {
        Clock::Tokio {
            base_ms,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn now_ms(&self) -> Timestamp {
        match self {
            Clock::System => crate::model::now_millis(),
            Clock::Tokio { base_ms, base } => base_ms + base.elapsed().as_millis() as Timestamp,
        }
    }
}

/// The store. Cheap to share (`Arc`).
pub struct AlertStore {
    inner: Mutex<Inner>,
    marker: Arc<Marker>,
}

#[derive(Default)]
struct Inner {
    alerts: HashMap<Fingerprint, Alert>,
    subscribers: Vec<mpsc::UnboundedSender<Alert>>,
}

impl AlertStore {
    pub fn new(marker: Arc<Marker>) -> AlertStore {
        AlertStore {
            inner: Mutex::new(Inner::default()),
            marker,
        }
    }

    /// Stores alerts that passed intake, merging each into the version held
    /// when their times overlap, and tells the subscribers.
    pub fn put(&self, alerts: Vec<Alert>, now: Timestamp) {
        let mut inner = self.inner.lock();
        for mut alert in alerts {
            let fp = alert.fingerprint();
            if let Some(old) = inner.alerts.get(&fp) {
                let overlaps = (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at);
                if overlaps {
                    alert = merge(old, &alert, now);
                }
            }
            inner.alerts.insert(fp, alert.clone());
            inner.subscribers.retain(|s| s.send(alert.clone()).is_ok());
        }
    }

    pub fn get(&self, fp: Fingerprint) -> Option<Alert> {
        self.inner.lock().alerts.get(&fp).cloned()
    }

    /// Every alert held, resolved ones included, by fingerprint.
    pub fn list(&self) -> Vec<Alert> {
        let inner = self.inner.lock();
        let sorted: BTreeMap<_, _> = inner.alerts.iter().collect();
        sorted.into_values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A channel that first yields every alert held, then every alert
    /// stored from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Alert> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.inner.lock();
        let sorted: BTreeMap<_, _> = inner.alerts.iter().collect();
        for alert in sorted.into_values() {
            let _ = tx.send(alert.clone());
        }
        inner.subscribers.push(tx);
        rx
    }

    /// Forgets the alerts resolved at `now` and their marker entries;
    /// returns them.
    pub fn gc(&self, now: Timestamp) -> Vec<Alert> {
        let mut inner = self.inner.lock();
        let resolved: Vec<Fingerprint> = inner
            .alerts
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, _)| *fp)
            .collect();
        let mut removed = Vec::with_capacity(resolved.len());
        for fp in resolved {
            if let Some(alert) = inner.alerts.remove(&fp) {
                self.marker.delete(fp);
                removed.push(alert);
            }
        }
        inner.subscribers.retain(|s| !s.is_closed());
        removed
    }

    /// Calls `f` on every alert held (under the store's lock: keep it short).
    pub fn for_each(&self, mut f: impl FnMut(&Alert)) {
        for alert in self.inner.lock().alerts.values() {
            f(alert);
        }
    }
}

/// Alertmanager's `types.Alert.Merge`: the newer update wins, keeping the
/// earlier start, and the later end unless the update resolves it earlier
/// or the older end was only a resolve timeout.
pub fn merge(old: &Alert, new: &Alert, now: Timestamp) -> Alert {
    if new.updated_at < old.updated_at {
        return merge(new, old, now);
    }
    let mut res = new.clone();
    if old.starts_at < new.starts_at {
        res.starts_at = old.starts_at;
    }
    if new.resolved_at(now) {
        if old.resolved_at(now) && old.ends_at > new.ends_at {
            res.ends_at = old.ends_at;
        }
    } else if old.ends_at > new.ends_at && !old.timeout {
        res.ends_at = old.ends_at;
    }
    res
}

/// What the API and the rule engine's channel do to an alert before it is
/// stored (Alertmanager's postAlertsHandler): labels with empty values
/// dropped (annotations keep theirs), a
/// missing `startsAt` set to `endsAt` or now, a missing `endsAt` set to now
/// + `resolve_timeout` with `timeout` marked.
pub fn complete(alert: &mut Alert, now: Timestamp, resolve_timeout: Duration) {
    alert.updated_at = now;
    if alert.starts_at == 0 {
        alert.starts_at = if alert.ends_at == 0 {
            now
        } else {
            alert.ends_at
        };
    }
    if alert.ends_at == 0 {
        alert.timeout = true;
        alert.ends_at = now + resolve_timeout.as_millis() as Timestamp;
    }
    if alert.labels.iter().any(|l| l.value.is_empty()) {
        alert.labels = Labels::from_sorted(
            alert
                .labels
                .iter()
                .filter(|l| !l.value.is_empty())
                .cloned()
                .collect(),
        );
    }
}

/// Prometheus's `model.Alert.Validate`, with its messages. Names are
/// checked in sorted order (Go's map order is random, so which of several
/// bad names Alertmanager reports varies).
pub fn validate(alert: &Alert) -> Result<(), String> {
    if alert.starts_at == 0 {
        return Err("start time missing".into());
    }
    if alert.ends_at != 0 && alert.ends_at < alert.starts_at {
        return Err("start time must be before end time".into());
    }
    if let Some(l) = alert.labels.iter().find(|l| !valid_label_name(&l.name)) {
        return Err(format!(
            "invalid label set: invalid name {}",
            super::route::go_quote(&l.name)
        ));
    }
    if alert.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    if let Some(name) = alert.annotations.keys().find(|n| !valid_label_name(n)) {
        return Err(format!(
            "invalid annotations: invalid name {}",
            super::route::go_quote(name)
        ));
    }
    Ok(())
}

/// Prometheus's `LabelName.IsValid` (the legacy charset).
pub fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (b.is_ascii_digit() && i > 0))
}

/// An alert from the rule engine as the router holds it: Prometheus sends
/// `endsAt` always (the resolution or a validity horizon), so it never
/// times out.
pub fn from_rule_alert(alert: NotifyAlert) -> Alert {
    Alert {
        labels: alert.labels,
        annotations: alert.annotations.into_iter().collect(),
        starts_at: alert.starts_at,
        ends_at: alert.ends_at,
        generator_url: alert.generator_url,
        updated_at: 0,
        timeout: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, starts: Timestamp, ends: Timestamp, updated: Timestamp) -> Alert {
        Alert {
            labels: Labels::new([("alertname", name)]),
            annotations: BTreeMap::new(),
            starts_at: starts,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: updated,
            timeout: false,
        }
    }

    #[test]
    fn merge_keeps_earliest_start_and_latest_end_as_alertmanager() {
        let now = 10_000;
        let old = alert("A", 1_000, 20_000, 5_000);
        let new = alert("A", 2_000, 15_000, 6_000);
        let m = merge(&old, &new, now);
        assert_eq!(
            (m.starts_at, m.ends_at, m.updated_at),
            (1_000, 20_000, 6_000)
        );
        // A resolution wins over a later validity horizon.
        let resolved = alert("A", 2_000, 9_000, 7_000);
        let m = merge(&old, &resolved, now);
        assert_eq!(m.ends_at, 9_000);
        // A timed-out end does not extend.
        let mut timed = old.clone();
        timed.timeout = true;
        let m = merge(&timed, &new, now);
        assert_eq!(m.ends_at, 15_000);
        // Arguments in either order give the same result.
        assert_eq!(merge(&new, &old, now), merge(&old, &new, now));
    }

    #[test]
    fn put_merges_only_overlapping_updates() {
        let store = AlertStore::new(Arc::new(Marker::default()));
        store.put(vec![alert("A", 1_000, 20_000, 5_000)], 6_000);
        // Starts inside the old one: merged, start kept.
        store.put(vec![alert("A", 3_000, 30_000, 6_000)], 6_000);
        let a = store.list().remove(0);
        assert_eq!((a.starts_at, a.ends_at), (1_000, 30_000));
        // A new occurrence after the old one ended replaces it.
        store.put(vec![alert("A", 40_000, 50_000, 41_000)], 41_000);
        let a = store.list().remove(0);
        assert_eq!((a.starts_at, a.ends_at), (40_000, 50_000));
    }

    #[test]
    fn subscribers_get_held_alerts_then_updates_and_gc_forgets_resolved() {
        let marker = Arc::new(Marker::default());
        let store = AlertStore::new(marker.clone());
        store.put(vec![alert("A", 1_000, 5_000, 1_000)], 1_000);
        let mut rx = store.subscribe();
        store.put(vec![alert("B", 1_000, 50_000, 1_000)], 1_000);
        assert_eq!(rx.try_recv().unwrap().labels.get("alertname"), Some("A"));
        assert_eq!(rx.try_recv().unwrap().labels.get("alertname"), Some("B"));
        marker.set_inhibited(alert("A", 0, 0, 0).fingerprint(), vec![]);
        let removed = store.gc(6_000);
        assert_eq!(removed.len(), 1);
        assert_eq!(store.len(), 1);
        assert_eq!(
            marker.status(alert("A", 0, 0, 0).fingerprint()).state,
            super::super::types::AlertState::Unprocessed
        );
    }

    #[test]
    fn intake_defaults_and_validation_as_alertmanager() {
        let mut a = alert("A", 0, 0, 0);
        complete(&mut a, 1_000, Duration::from_secs(300));
        assert_eq!((a.starts_at, a.ends_at, a.timeout), (1_000, 301_000, true));
        let mut b = alert("B", 0, 7_000, 0);
        complete(&mut b, 1_000, Duration::from_secs(300));
        assert_eq!((b.starts_at, b.ends_at, b.timeout), (7_000, 7_000, false));
        assert!(validate(&a).is_ok());
        let mut bad = alert("A", 5, 4, 0);
        assert_eq!(
            validate(&bad).unwrap_err(),
            "start time must be before end time"
        );
        bad.ends_at = 6;
        bad.labels = Labels::new([("bad-name", "v")]);
        assert_eq!(
            validate(&bad).unwrap_err(),
            "invalid label set: invalid name \"bad-name\""
        );
        bad.labels = Labels::empty();
        assert_eq!(
            validate(&bad).unwrap_err(),
            "at least one label pair required"
        );
        let mut c = alert("A", 1, 2, 0);
        c.annotations.insert("1x".into(), "y".into());
        assert_eq!(
            validate(&c).unwrap_err(),
            "invalid annotations: invalid name \"1x\""
        );
        let mut d = alert("A", 1, 2, 0);
        d.labels = Labels::new([("a", ""), ("b", "x")]);
        complete(&mut d, 1, Duration::ZERO);
        assert_eq!(d.labels.len(), 1);
    }
}
