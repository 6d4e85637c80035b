//! The marker: what the router last decided about each alert (Alertmanager
//! 0.25's `types.MemMarker`). The inhibition and silence steps write it,
//! the API reads it. An alert with no entry is `unprocessed`.
//!
//! It owns no alerts: the store deletes an alert's entry when it forgets the
//! alert.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::types::{AlertState, AlertStatus, Fingerprint};

#[derive(Default)]
pub struct Marker {
    statuses: RwLock<HashMap<Fingerprint, AlertStatus>>,
}

fn state_of(status: &AlertStatus) -> AlertState {
    if status.silenced_by.is_empty() && status.inhibited_by.is_empty() {
        AlertState::Active
    } else {
        AlertState::Suppressed
    }
}

impl Marker {
    /// Records the inhibiting alerts (none: not inhibited); the state
    /// becomes `suppressed` if it is inhibited or silenced, else `active`.
    pub fn set_inhibited(&self, fp: Fingerprint, by: Vec<String>) {
        let mut statuses = self.statuses.write();
        let status = statuses.entry(fp).or_insert_with(unprocessed);
        status.inhibited_by = by;
        status.state = state_of(status);
    }

    /// Records the silences muting the alert (none: not silenced).
    pub fn set_silenced(&self, fp: Fingerprint, by: Vec<String>) {
        let mut statuses = self.statuses.write();
        let status = statuses.entry(fp).or_insert_with(unprocessed);
        status.silenced_by = by;
        status.state = state_of(status);
    }

    pub fn status(&self, fp: Fingerprint) -> AlertStatus {
        self.statuses
            .read()
            .get(&fp)
            .cloned()
            .unwrap_or_else(unprocessed)
    }

    pub fn delete(&self, fp: Fingerprint) {
        self.statuses.write().remove(&fp);
    }

    /// How many marked alerts are in `state`.
    pub fn count(&self, state: AlertState) -> usize {
        self.statuses
            .read()
            .values()
            .filter(|s| s.state == state)
            .count()
    }
}

fn unprocessed() -> AlertStatus {
    AlertStatus {
        state: AlertState::Unprocessed,
        silenced_by: Vec::new(),
        inhibited_by: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_silences_and_inhibitions() {
        let m = Marker::default();
        let fp = Fingerprint(1);
        assert_eq!(m.status(fp).state, AlertState::Unprocessed);
        m.set_inhibited(fp, vec![]);
        assert_eq!(m.status(fp).state, AlertState::Active);
        m.set_silenced(fp, vec!["s1".into()]);
        assert_eq!(m.status(fp).state, AlertState::Suppressed);
        m.set_inhibited(fp, vec!["0000000000000002".into()]);
        m.set_silenced(fp, vec![]);
        let status = m.status(fp);
        assert_eq!(status.state, AlertState::Suppressed);
        assert_eq!(status.inhibited_by, vec!["0000000000000002".to_string()]);
        m.set_inhibited(fp, vec![]);
        assert_eq!(m.status(fp).state, AlertState::Active);
        assert_eq!(m.count(AlertState::Active), 1);
        m.delete(fp);
        assert_eq!(m.status(fp).state, AlertState::Unprocessed);
    }
}
