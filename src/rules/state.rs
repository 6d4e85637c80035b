//! Alert state that survives a restart: every alert instance's state and
//! clocks, kept in the `alert_state` table of the data directory's
//! `bellwether.db` (its own connection; the store's tables are not touched).
//!
//! The manager writes a group's instances after an evaluation that changed
//! any of them (one transaction), and a heartbeat (`rule_group_state`) at
//! most every [`HEARTBEAT_MS`]; at start it reads them back and restores
//! them if the group last ran within the outage tolerance. Writes are
//! committed before the next evaluation starts, so a SIGKILL loses at most
//! the transitions of the evaluation in flight.

use std::collections::BTreeMap;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::{Labels, Timestamp};

use super::{Alert, AlertState};

/// Longest gap between two heartbeats of a running group.
pub const HEARTBEAT_MS: i64 = 30_000;

pub struct AlertStateStore {
    conn: Mutex<Connection>,
}

/// A group's saved state: when it last evaluated, and its alerts by rule identity.
pub struct SavedGroup {
    pub last_eval: Timestamp,
    pub alerts: Vec<(String, Alert)>,
}

impl AlertStateStore {
    /// Opens (creating if needed) the tables in `data_dir/bellwether.db`.
    pub fn open(data_dir: &Path) -> Result<AlertStateStore, String> {
        let path = data_dir.join("bellwether.db");
        let err = |e: rusqlite::Error| format!("alert state in {}: {e}", path.display());
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS alert_state (
                 group_key TEXT NOT NULL,
                 rule TEXT NOT NULL,
                 labels TEXT NOT NULL,
                 state TEXT NOT NULL,
                 active_at INTEGER NOT NULL,
                 fired_at INTEGER,
                 resolved_at INTEGER,
                 keep_firing_since INTEGER,
                 value REAL NOT NULL,
                 annotations TEXT NOT NULL,
                 PRIMARY KEY (group_key, rule, labels)
             );
             CREATE TABLE IF NOT EXISTS rule_group_state (
                 group_key TEXT PRIMARY KEY,
                 last_eval INTEGER NOT NULL
             );",
        )
        .map_err(err)?;
        Ok(AlertStateStore {
            conn: Mutex::new(conn),
        })
    }

    /// The saved state of a group, if it ever ran.
    pub fn load(&self, group_key: &str) -> Result<Option<SavedGroup>, String> {
        let conn = self.conn.lock();
        let last_eval: Option<i64> = conn
            .query_row(
                "SELECT last_eval FROM rule_group_state WHERE group_key = ?1",
                [group_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let Some(last_eval) = last_eval else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare(
                "SELECT rule, labels, state, active_at, fired_at, resolved_at, keep_firing_since, value, annotations
                 FROM alert_state WHERE group_key = ?1",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([group_key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, f64>(7)?,
                    r.get::<_, String>(8)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut alerts = Vec::new();
        for row in rows {
            let (
                rule,
                labels,
                state,
                active_at,
                fired_at,
                resolved_at,
                keep_firing_since,
                value,
                annotations,
            ) = row.map_err(|e| e.to_string())?;
            // A row that does not decode (written by a future version, or
            // damaged) is skipped: losing one alert's clock is better than
            // refusing to start.
            let (Ok(labels), Ok(annotations), Some(state)) = (
                serde_json::from_str::<BTreeMap<String, String>>(&labels),
                serde_json::from_str::<Vec<(String, String)>>(&annotations),
                AlertState::parse(&state),
            ) else {
                tracing::warn!(
                    group = group_key,
                    rule,
                    "skipping an undecodable saved alert"
                );
                continue;
            };
            alerts.push((
                rule,
                Alert {
                    labels: Labels::new(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                    annotations,
                    state,
                    value,
                    active_at,
                    fired_at,
                    resolved_at,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since,
                },
            ));
        }
        Ok(Some(SavedGroup { last_eval, alerts }))
    }

    /// Replaces a group's saved alerts and heartbeat in one transaction.
    pub fn save(
        &self,
        group_key: &str,
        last_eval: Timestamp,
        alerts: &[(String, Alert)],
    ) -> Result<(), String> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute("DELETE FROM alert_state WHERE group_key = ?1", [group_key])
            .map_err(|e| e.to_string())?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT OR REPLACE INTO alert_state
                     (group_key, rule, labels, state, active_at, fired_at, resolved_at, keep_firing_since, value, annotations)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(|e| e.to_string())?;
            for (rule, alert) in alerts {
                let labels: BTreeMap<&str, &str> = alert
                    .labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect();
                insert
                    .execute(params![
                        group_key,
                        rule,
                        serde_json::to_string(&labels).unwrap_or_default(),
                        alert.state.as_str(),
                        alert.active_at,
                        alert.fired_at,
                        alert.resolved_at,
                        alert.keep_firing_since,
                        alert.value,
                        serde_json::to_string(&alert.annotations).unwrap_or_default(),
                    ])
                    .map_err(|e| e.to_string())?;
            }
        }
        upsert_heartbeat(&tx, group_key, last_eval)?;
        tx.commit().map_err(|e| e.to_string())
    }

    /// Records that the group evaluated at `last_eval`, alerts unchanged.
    pub fn heartbeat(&self, group_key: &str, last_eval: Timestamp) -> Result<(), String> {
        let conn = self.conn.lock();
        upsert_heartbeat(&conn, group_key, last_eval)
    }

    /// Forgets a group that is no longer configured.
    pub fn remove(&self, group_key: &str) -> Result<(), String> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute("DELETE FROM alert_state WHERE group_key = ?1", [group_key])
            .map_err(|e| e.to_string())?;
        tx.execute(
            "DELETE FROM rule_group_state WHERE group_key = ?1",
            [group_key],
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }
}

fn upsert_heartbeat(
    conn: &Connection,
    group_key: &str,
    last_eval: Timestamp,
) -> Result<(), String> {
    conn.execute(
        "INSERT INTO rule_group_state (group_key, last_eval) VALUES (?1, ?2)
         ON CONFLICT(group_key) DO UPDATE SET last_eval = excluded.last_eval",
        params![group_key, last_eval],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// What of an alert is saved: enough to tell whether a save is needed.
pub fn digest(alerts: &[(String, Alert)]) -> u64 {
    let mut hash = crate::collect::scrape::target::Fnv64::new();
    for (rule, a) in alerts {
        hash.write(rule.as_bytes());
        hash.write(a.labels.to_string().as_bytes());
        hash.write(a.state.as_str().as_bytes());
        for t in [
            Some(a.active_at),
            a.fired_at,
            a.resolved_at,
            a.keep_firing_since,
        ] {
            hash.write(&t.unwrap_or(i64::MIN).to_le_bytes());
        }
        for (k, v) in &a.annotations {
            hash.write(k.as_bytes());
            hash.write(v.as_bytes());
        }
    }
    hash.finish()
}
