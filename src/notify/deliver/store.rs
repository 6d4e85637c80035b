//! The delivery store: the notification log (`notify_log`, Alertmanager's
//! nflog) and the outbox (`notify_outbox`), two tables of the data
//! directory's `bellwether.db` on their own connection, so that marking an
//! entry delivered and logging it in the nflog is one transaction.
//!
//! This file owns the SQL; the decisions (dedup, retry) are the caller's.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::Timestamp;

/// Which integration of which receiver (Alertmanager's `nflogpb.Receiver`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IntegrationKey {
    pub receiver: String,
    /// `webhook`, `slack`, `pagerduty`, `email` or `log`.
    pub integration: String,
    /// Index among the receiver's configs of that type.
    pub index: usize,
}

impl std::fmt::Display for IntegrationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}[{}]", self.receiver, self.integration, self.index)
    }
}

/// A set of alert fingerprints.
pub type FingerprintSet = BTreeSet<u64>;

/// The last delivered notification of a group to an integration.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub firing: FingerprintSet,
    pub resolved: FingerprintSet,
    /// When it was delivered (Unix ms).
    pub timestamp: Timestamp,
}

/// Where an outbox entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// Waiting for its (next) attempt.
    Pending,
    Delivered,
    /// Refused by the receiver (a 4xx other than 429) or not sendable.
    Failed,
    /// Not delivered before its expiry.
    Expired,
    /// Replaced by a newer flush of the same group and integration, or found
    /// already delivered by the notification log when its turn came.
    Superseded,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Delivered => "delivered",
            EntryState::Failed => "failed",
            EntryState::Expired => "expired",
            EntryState::Superseded => "superseded",
        }
    }

    fn parse(s: &str) -> EntryState {
        match s {
            "delivered" => EntryState::Delivered,
            "failed" => EntryState::Failed,
            "expired" => EntryState::Expired,
            "superseded" => EntryState::Superseded,
            _ => EntryState::Pending,
        }
    }
}

/// One outbox row.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: i64,
    pub key: IntegrationKey,
    pub group_key: String,
    /// The [`super::data::Payload`] as JSON.
    pub payload: String,
    /// The group's firing and resolved alerts at the flush (for the nflog).
    pub firing: FingerprintSet,
    pub resolved: FingerprintSet,
    pub repeat_interval: Duration,
    pub created: Timestamp,
    pub attempts: u32,
    pub next_attempt: Timestamp,
    pub expires: Timestamp,
    pub state: EntryState,
    pub last_error: String,
}

pub struct DeliveryStore {
    conn: Mutex<Connection>,
}

type Res<T> = Result<T, String>;

fn encode_set(set: &FingerprintSet) -> String {
    set.iter()
        .map(|f| format!("{f:016x}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_set(text: &str) -> FingerprintSet {
    text.split(',')
        .filter_map(|s| u64::from_str_radix(s, 16).ok())
        .collect()
}

const ENTRY_COLUMNS: &str =
    "id, receiver, integration, idx, group_key, payload, firing, resolved, \
     repeat_ms, created, attempts, next_attempt, expires, state, last_error";

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        key: IntegrationKey {
            receiver: r.get(1)?,
            integration: r.get(2)?,
            index: r.get::<_, i64>(3)? as usize,
        },
        group_key: r.get(4)?,
        payload: r.get(5)?,
        firing: decode_set(&r.get::<_, String>(6)?),
        resolved: decode_set(&r.get::<_, String>(7)?),
        repeat_interval: Duration::from_millis(r.get::<_, i64>(8)?.max(0) as u64),
        created: r.get(9)?,
        attempts: r.get::<_, i64>(10)? as u32,
        next_attempt: r.get(11)?,
        expires: r.get(12)?,
        state: EntryState::parse(&r.get::<_, String>(13)?),
        last_error: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
    })
}

/// A new entry to write.
pub struct NewEntry<'a> {
    pub key: &'a IntegrationKey,
    pub group_key: &'a str,
    pub payload: &'a str,
    pub firing: &'a FingerprintSet,
    pub resolved: &'a FingerprintSet,
    pub repeat_interval: Duration,
    pub now: Timestamp,
    pub expires: Timestamp,
}

impl DeliveryStore {
    /// Opens (creating if needed) the tables in `data_dir/bellwether.db`.
    pub fn open(data_dir: &Path) -> Res<DeliveryStore> {
        let path = data_dir.join("bellwether.db");
        let err = |e: rusqlite::Error| format!("notification store in {}: {e}", path.display());
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS notify_log (
                 receiver TEXT NOT NULL,
                 integration TEXT NOT NULL,
                 idx INTEGER NOT NULL,
                 group_key TEXT NOT NULL,
                 firing TEXT NOT NULL,
                 resolved TEXT NOT NULL,
                 timestamp INTEGER NOT NULL,
                 expires INTEGER NOT NULL,
                 PRIMARY KEY (receiver, integration, idx, group_key)
             );
             CREATE TABLE IF NOT EXISTS notify_outbox (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 receiver TEXT NOT NULL,
                 integration TEXT NOT NULL,
                 idx INTEGER NOT NULL,
                 group_key TEXT NOT NULL,
                 payload TEXT NOT NULL,
                 firing TEXT NOT NULL,
                 resolved TEXT NOT NULL,
                 repeat_ms INTEGER NOT NULL,
                 created INTEGER NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 next_attempt INTEGER NOT NULL,
                 expires INTEGER NOT NULL,
                 state TEXT NOT NULL,
                 last_error TEXT,
                 finished INTEGER
             );
             CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_attempt);
             CREATE INDEX IF NOT EXISTS notify_outbox_group
                 ON notify_outbox (receiver, integration, idx, group_key, state);",
        )
        .map_err(err)?;
        Ok(DeliveryStore {
            conn: Mutex::new(conn),
        })
    }

    /// The nflog entry of a group and integration, unless expired at `now`.
    pub fn log_entry(
        &self,
        key: &IntegrationKey,
        group_key: &str,
        now: Timestamp,
    ) -> Res<Option<LogEntry>> {
        let conn = self.conn.lock();
        log_entry(&conn, key, group_key, now).map_err(|e| e.to_string())
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&self, f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>) -> Res<T> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        let out = f(&Tx(&tx)).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Pending entries due at `now`, oldest first.
    pub fn due(&self, now: Timestamp, limit: usize) -> Res<Vec<OutboxEntry>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM notify_outbox
                 WHERE state = 'pending' AND (next_attempt <= ?1 OR expires <= ?1)
                 ORDER BY next_attempt, id LIMIT ?2"
            ))
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params![now, limit as i64], read_entry)
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// When the next pending entry is due (its attempt or its expiry).
    pub fn next_due(&self) -> Res<Option<Timestamp>> {
        let conn = self.conn.lock();
        conn.query_row(
            "SELECT MIN(MIN(next_attempt, expires)) FROM notify_outbox WHERE state = 'pending'",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .map_err(|e| e.to_string())
    }

    /// An entry by id.
    pub fn entry(&self, id: i64) -> Res<Option<OutboxEntry>> {
        let conn = self.conn.lock();
        conn.query_row(
            &format!("SELECT {ENTRY_COLUMNS} FROM notify_outbox WHERE id = ?1"),
            [id],
            read_entry,
        )
        .optional()
        .map_err(|e| e.to_string())
    }

    /// Every entry, oldest first (tests and inspection).
    pub fn entries(&self) -> Res<Vec<OutboxEntry>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM notify_outbox ORDER BY id"
            ))
            .map_err(|e| e.to_string())?;
        let rows = stmt.query_map([], read_entry).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Number of pending entries and the creation time of the oldest.
    pub fn pending_stats(&self) -> Res<(i64, Option<Timestamp>)> {
        let conn = self.conn.lock();
        conn.query_row(
            "SELECT COUNT(*), MIN(created) FROM notify_outbox WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| e.to_string())
    }

    /// Deletes finished outbox entries older than `retention` and expired
    /// nflog entries; returns how many rows went.
    pub fn prune(&self, now: Timestamp, retention: Duration) -> Res<usize> {
        let conn = self.conn.lock();
        let cutoff = now - retention.as_millis() as i64;
        let outbox = conn
            .execute(
                "DELETE FROM notify_outbox WHERE state != 'pending' AND COALESCE(finished, created) < ?1",
                [cutoff],
            )
            .map_err(|e| e.to_string())?;
        let log = conn
            .execute("DELETE FROM notify_log WHERE expires <= ?1", [now])
            .map_err(|e| e.to_string())?;
        Ok(outbox + log)
    }
}

fn log_entry(
    conn: &Connection,
    key: &IntegrationKey,
    group_key: &str,
    now: Timestamp,
) -> rusqlite::Result<Option<LogEntry>> {
    conn.query_row(
        "SELECT firing, resolved, timestamp FROM notify_log
         WHERE receiver = ?1 AND integration = ?2 AND idx = ?3 AND group_key = ?4 AND expires > ?5",
        params![
            key.receiver,
            key.integration,
            key.index as i64,
            group_key,
            now
        ],
        |r| {
            Ok(LogEntry {
                firing: decode_set(&r.get::<_, String>(0)?),
                resolved: decode_set(&r.get::<_, String>(1)?),
                timestamp: r.get(2)?,
            })
        },
    )
    .optional()
}

/// The operations of one transaction.
pub struct Tx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx<'_> {
    pub fn log_entry(
        &self,
        key: &IntegrationKey,
        group_key: &str,
        now: Timestamp,
    ) -> rusqlite::Result<Option<LogEntry>> {
        log_entry(self.0, key, group_key, now)
    }

    /// Records a delivered notification in the nflog (Alertmanager's
    /// `Log`): it expires after `expires_after`.
    pub fn log(
        &self,
        key: &IntegrationKey,
        group_key: &str,
        firing: &FingerprintSet,
        resolved: &FingerprintSet,
        now: Timestamp,
        expires_after: Duration,
    ) -> rusqlite::Result<()> {
        self.0.execute(
            "INSERT OR REPLACE INTO notify_log
             (receiver, integration, idx, group_key, firing, resolved, timestamp, expires)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                key.receiver,
                key.integration,
                key.index as i64,
                group_key,
                encode_set(firing),
                encode_set(resolved),
                now,
                now + expires_after.as_millis() as i64
            ],
        )?;
        Ok(())
    }

    /// Marks the pending entries of a group and integration superseded;
    /// returns how many.
    pub fn supersede(
        &self,
        key: &IntegrationKey,
        group_key: &str,
        now: Timestamp,
    ) -> rusqlite::Result<usize> {
        self.0.execute(
            "UPDATE notify_outbox SET state = 'superseded', finished = ?5
             WHERE receiver = ?1 AND integration = ?2 AND idx = ?3 AND group_key = ?4
               AND state = 'pending'",
            params![
                key.receiver,
                key.integration,
                key.index as i64,
                group_key,
                now
            ],
        )
    }

    /// Writes a new pending entry, due at once; returns its id.
    pub fn insert(&self, e: &NewEntry<'_>) -> rusqlite::Result<i64> {
        self.0.execute(
            "INSERT INTO notify_outbox
             (receiver, integration, idx, group_key, payload, firing, resolved, repeat_ms,
              created, attempts, next_attempt, expires, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?9, ?10, 'pending')",
            params![
                e.key.receiver,
                e.key.integration,
                e.key.index as i64,
                e.group_key,
                e.payload,
                encode_set(e.firing),
                encode_set(e.resolved),
                e.repeat_interval.as_millis() as i64,
                e.now,
                e.expires
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// Ends an entry in `state` after an attempt (or without one). An entry
    /// superseded meanwhile keeps that state unless it was delivered.
    pub fn finish(
        &self,
        id: i64,
        state: EntryState,
        attempted: bool,
        error: &str,
        now: Timestamp,
    ) -> rusqlite::Result<()> {
        let guard = if state == EntryState::Delivered {
            ""
        } else {
            " AND state = 'pending'"
        };
        self.0.execute(
            &format!(
                "UPDATE notify_outbox SET state = ?2, attempts = attempts + ?3, last_error = ?4,
                 finished = ?5 WHERE id = ?1{guard}"
            ),
            params![id, state.as_str(), i64::from(attempted), error, now],
        )?;
        Ok(())
    }

    /// Schedules another attempt of a pending entry.
    pub fn retry(&self, id: i64, next: Timestamp, error: &str) -> rusqlite::Result<()> {
        self.0.execute(
            "UPDATE notify_outbox SET attempts = attempts + 1, next_attempt = ?2, last_error = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, next, error],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IntegrationKey {
        IntegrationKey {
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
        }
    }

    #[test]
    fn outbox_and_log_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let firing: FingerprintSet = [1, 2].into();
        let resolved: FingerprintSet = [3].into();
        {
            let store = DeliveryStore::open(dir.path()).unwrap();
            store
                .transaction(|tx| {
                    tx.insert(&NewEntry {
                        key: &key(),
                        group_key: "g",
                        payload: "{}",
                        firing: &firing,
                        resolved: &resolved,
                        repeat_interval: Duration::from_secs(60),
                        now: 1000,
                        expires: 5000,
                    })?;
                    tx.log(&key(), "g", &firing, &resolved, 900, Duration::from_secs(1))
                })
                .unwrap();
        }
        let store = DeliveryStore::open(dir.path()).unwrap();
        let due = store.due(1000, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].firing, firing);
        assert_eq!(due[0].resolved, resolved);
        assert_eq!(due[0].state, EntryState::Pending);
        let entry = store.log_entry(&key(), "g", 1000).unwrap().unwrap();
        assert_eq!(entry.firing, firing);
        assert_eq!(entry.timestamp, 900);
        // Expired nflog entries are not returned, then pruned.
        assert!(store.log_entry(&key(), "g", 1900).unwrap().is_none());
        assert_eq!(store.prune(1900, Duration::from_secs(1)).unwrap(), 1);
    }
}
