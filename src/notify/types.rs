//! What the router's parts hand each other: the alert store and the API
//! give [`Alert`]s to the dispatcher, the dispatcher asks a [`Silencer`]
//! which alerts are silenced and gives each flushed group to a [`Delivery`]
//! as a [`Notification`].
//!
//! These are Alertmanager 0.25's types (types/types.go, notify/notify.go)
//! with times in Unix milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::model::{Labels, Timestamp};

/// An alert inside the router (Alertmanager's `types.Alert`).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (Unix ms).
    pub starts_at: Timestamp,
    /// When it resolved or will resolve without an update (Unix ms); 0 when
    /// not set.
    pub ends_at: Timestamp,
    pub generator_url: String,
    /// When the store last received it (Unix ms).
    pub updated_at: Timestamp,
    /// `ends_at` was not sent but set from `global.resolve_timeout`.
    pub timeout: bool,
}

impl Alert {
    /// Alertmanager's fingerprint of the label set (the `fingerprint` of API v2).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.labels)
    }

    /// Whether the alert is resolved at `now` (Unix ms).
    pub fn resolved_at(&self, now: Timestamp) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }
}

/// A label set's fingerprint as Prometheus's `model.LabelSet.Fingerprint`
/// computes it: FNV-1a 64 over the labels sorted by name, each name and
/// value followed by the byte 0xff. Printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    pub fn of(labels: &Labels) -> Fingerprint {
        const OFFSET: u64 = 0xcbf29ce484222325;
        const PRIME: u64 = 0x100000001b3;
        if labels.is_empty() {
            return Fingerprint(OFFSET);
        }
        let mut hash = OFFSET;
        let mut mix = |bytes: &[u8]| {
            for &b in bytes {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(PRIME);
            }
        };
        // Labels are kept sorted by name.
        for label in labels.iter() {
            mix(label.name.as_bytes());
            mix(&[0xff]);
            mix(label.value.as_bytes());
            mix(&[0xff]);
        }
        Fingerprint(hash)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Where an alert stands (Alertmanager's `types.AlertState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Unprocessed,
    Active,
    Suppressed,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Unprocessed => "unprocessed",
            AlertState::Active => "active",
            AlertState::Suppressed => "suppressed",
        }
    }
}

/// An alert's marker (Alertmanager's `types.AlertStatus`), as API v2 shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertStatus {
    pub state: AlertState,
    /// IDs of the silences muting it.
    pub silenced_by: Vec<String>,
    /// Fingerprints of the alerts inhibiting it.
    pub inhibited_by: Vec<String>,
}

/// One flush of one aggregation group for one receiver (what Alertmanager's
/// notification pipeline receives, after inhibition, time intervals and
/// silences removed the muted alerts).
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The receiver's name (a receiver of the loaded `NotifyConfig`).
    pub receiver: String,
    /// Alertmanager's group key: `{route key}:{group labels}`.
    pub group_key: String,
    pub group_labels: Labels,
    /// Firing and resolved alerts of the group, in Alertmanager's order
    /// (by labels); resolved means `resolved_at(now)`.
    pub alerts: Vec<Alert>,
    /// When the group was flushed (Unix ms).
    pub now: Timestamp,
    /// The route's `repeat_interval` (for the notification log's dedup).
    pub repeat_interval: Duration,
    /// The route's `group_interval` (Alertmanager bounds a flush's retries by it).
    pub group_interval: Duration,
}

/// Takes flushed groups to the receivers: records each notification (the
/// outbox) and returns; the sending happens elsewhere. May block on the
/// disk: the dispatcher calls it off the async threads.
pub trait Delivery: Send + Sync {
    fn notify(&self, notification: Notification);

    /// The flushes of one dispatcher round (the delivery may record them
    /// together, e.g. in one transaction).
    fn notify_all(&self, batch: Vec<Notification>) {
        for n in batch {
            self.notify(n);
        }
    }
}

/// Answers which silences mute a label set.
pub trait Silencer: Send + Sync {
    /// IDs of the silences active at `now` (Unix ms) whose matchers match
    /// `labels`, sorted.
    fn silenced_by(&self, labels: &Labels, now: Timestamp) -> Vec<String>;
}

/// No silences (until a store is attached).
pub struct NoSilences;

impl Silencer for NoSilences {
    fn silenced_by(&self, _labels: &Labels, _now: Timestamp) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_prometheus_model() {
        // An empty set hashes to FNV-1a's offset basis; the integration
        // tests compare fingerprints with Alertmanager's own.
        let empty = Labels::empty();
        assert_eq!(Fingerprint::of(&empty).to_string(), "cbf29ce484222325");
        let labels = Labels::new([("alertname", "Foo")]);
        let fp = Fingerprint::of(&labels);
        assert_eq!(fp.to_string().len(), 16);
        assert_ne!(fp, Fingerprint::of(&Labels::new([("alertname", "Bar")])));
    }
}
