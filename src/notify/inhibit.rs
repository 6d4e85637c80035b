//! Inhibition (Alertmanager 0.25's inhibit/inhibit.go): an alert matching
//! a rule's target matchers is muted while an alert matching its source
//! matchers, with the same values of the `equal` labels, is firing. An alert
//! that matches both sides of a rule is not muted by a source that also
//! matches both sides (so such an alert cannot mute itself).
//!
//! Each rule keeps the alerts of the store that match its source side
//! (fed by the dispatcher with every stored alert, as Alertmanager's
//! per-rule cache is); resolved ones are skipped and dropped by `gc`.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use crate::model::{Labels, Timestamp};

use super::config::InhibitRule;
use super::marker::Marker;
use super::types::{Alert, Fingerprint};

pub struct Inhibitor {
    rules: Vec<(InhibitRule, RwLock<BTreeMap<Fingerprint, Alert>>)>,
}

impl Inhibitor {
    pub fn new(rules: &[InhibitRule]) -> Inhibitor {
        Inhibitor {
            rules: rules
                .iter()
                .map(|r| (r.clone(), RwLock::new(BTreeMap::new())))
                .collect(),
        }
    }

    /// Takes note of a stored alert.
    pub fn observe(&self, alert: &Alert) {
        for (rule, sources) in &self.rules {
            if rule.source.matches(&alert.labels) {
                sources.write().insert(alert.fingerprint(), alert.clone());
            }
        }
    }

    /// Forgets the source alerts resolved at `now`.
    pub fn gc(&self, now: Timestamp) {
        for (_, sources) in &self.rules {
            sources.write().retain(|_, a| !a.resolved_at(now));
        }
    }

    /// The firing alert that inhibits `labels` at `now`, if any: the first
    /// rule (in config order) that applies, and within it the source with
    /// the lowest fingerprint (Alertmanager takes whichever its map yields
    /// first).
    pub fn inhibited_by(&self, labels: &Labels, now: Timestamp) -> Option<Fingerprint> {
        for (rule, sources) in &self.rules {
            if !rule.target.matches(labels) {
                continue;
            }
            let two_sided = rule.source.matches(labels);
            let sources = sources.read();
            let found = sources.values().find(|source| {
                !source.resolved_at(now)
                    && rule.mutes(&source.labels, labels)
                    && !(two_sided && rule.target.matches(&source.labels))
            });
            if let Some(source) = found {
                return Some(source.fingerprint());
            }
        }
        None
    }

    /// Whether `labels` is inhibited, recorded in the marker (as
    /// Alertmanager's `Inhibitor.Mutes`).
    pub fn mutes(&self, labels: &Labels, now: Timestamp, marker: &Marker) -> bool {
        let fp = Fingerprint::of(labels);
        match self.inhibited_by(labels, now) {
            Some(by) => {
                marker.set_inhibited(fp, vec![by.to_string()]);
                true
            }
            None => {
                marker.set_inhibited(fp, Vec::new());
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::matchers::{parse_matcher, Matchers};
    use crate::notify::types::AlertState;

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source: Matchers::sorted(vec![parse_matcher(source).unwrap()]),
            target: Matchers::sorted(vec![parse_matcher(target).unwrap()]),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn alert(pairs: &[(&str, &str)], ends_at: Timestamp) -> Alert {
        Alert {
            labels: Labels::new(pairs.iter().copied()),
            annotations: BTreeMap::new(),
            starts_at: 1,
            ends_at,
            generator_url: String::new(),
            updated_at: 1,
            timeout: false,
        }
    }

    #[test]
    fn critical_mutes_warning_with_equal_labels_while_firing() {
        let ih = Inhibitor::new(&[rule(
            "severity=critical",
            "severity=warning",
            &["alertname"],
        )]);
        let crit = alert(&[("alertname", "Down"), ("severity", "critical")], 100);
        ih.observe(&crit);
        let warn = Labels::new([("alertname", "Down"), ("severity", "warning")]);
        let other = Labels::new([("alertname", "Up"), ("severity", "warning")]);
        let marker = Marker::default();
        assert!(ih.mutes(&warn, 50, &marker));
        let status = marker.status(Fingerprint::of(&warn));
        assert_eq!(status.state, AlertState::Suppressed);
        assert_eq!(status.inhibited_by, vec![crit.fingerprint().to_string()]);
        assert!(!ih.mutes(&other, 50, &marker));
        assert_eq!(
            marker.status(Fingerprint::of(&other)).state,
            AlertState::Active
        );
        // Once the source resolves, the target is free.
        assert!(!ih.mutes(&warn, 100, &marker));
        ih.gc(100);
        assert!(ih.inhibited_by(&warn, 0).is_none());
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_mute_itself() {
        let ih = Inhibitor::new(&[rule("team=~.+", "team=~.+", &["alertname"])]);
        let a = alert(&[("alertname", "X"), ("team", "a")], 100);
        ih.observe(&a);
        assert!(ih.inhibited_by(&a.labels, 50).is_none());
        // A target matching only the target side is muted.
        let ih = Inhibitor::new(&[rule("team=a", "team=~.+", &["alertname"])]);
        ih.observe(&a);
        let b = Labels::new([("alertname", "X"), ("team", "b")]);
        assert_eq!(ih.inhibited_by(&b, 50), Some(a.fingerprint()));
    }
}
