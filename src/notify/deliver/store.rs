//! The delivery store: the notification log (`notify_log`, Alertmanager's
//! nflog) and the outbox (`notify_outbox`), two tables of the data
//! directory's `bellwether.db` on their own connection, so that marking an
//! entry delivered and logging it in the nflog is one transaction.
//!
//! Two connections: one writes (behind a mutex), one reads (the worker's
//! due scans, the notification log before an attempt, the history), so a
//! large write never holds up a read (WAL mode). Writes that need not block
//! their caller go through [`DeliveryStore::submit`]: a writer thread
//! commits whatever has been submitted meanwhile in one transaction (group
//! commit), each job in its own savepoint, and reports each job's result
//! only after the commit.
//!
//! This file owns the SQL; the decisions (dedup, retry) are the caller's.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

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

/// Which due entries [`DeliveryStore::due_keys`] reads.
#[derive(Clone, Copy, Debug)]
pub enum DueScope<'a> {
    /// Due for an attempt or past expiry, of one receiver.
    Receiver(&'a str),
    /// Past expiry, any receiver.
    Expired,
    /// Due for an attempt, of receivers other than these (no longer
    /// configured).
    NotIn(&'a [String]),
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

/// What a job's caller hears after the commit: the job's result, or the
/// commit's error.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job of the writer thread: runs in its savepoint, says whether it
/// succeeded (else its savepoint is rolled back) and what to reply.
/// Called with the transaction, or with the error that kept it from starting.
type Job = Box<dyn FnOnce(Result<&Tx<'_>, &str>) -> (bool, Reply) + Send>;

/// The most jobs committed in one transaction.
const MAX_GROUP_COMMIT: usize = 4096;

pub struct DeliveryStore {
    conn: Arc<Mutex<Connection>>,
    reader: Mutex<Connection>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
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
    /// The notification's tier for the history's retention
    /// ([`notification_severity`]).
    pub severity: &'a str,
}

/// What one delivery attempt got: `delivered`, `retry` or `failed`, and the
/// receiver's answer or the error.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub at: Timestamp,
    pub outcome: &'static str,
    pub answer: String,
}

/// The longest answer or error kept per attempt, in bytes.
const MAX_ANSWER: usize = 1024;

/// One notification of the history: its outbox entry, tier, end time and
/// attempts, oldest attempt first.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    pub entry: OutboxEntry,
    pub severity: String,
    pub finished: Option<Timestamp>,
    pub attempts: Vec<Attempt>,
}

/// The SQL side of a history query (label matchers are the caller's).
#[derive(Clone, Debug, Default)]
pub struct HistoryQuery {
    /// Flush time range, Unix ms, inclusive.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub receiver: Option<String>,
    pub severity: Option<String>,
    pub state: Option<String>,
}

/// The tier a notification is kept by: the most severe `severity` label
/// among its alerts (critical, then error, warning, info, then any other
/// value in byte order), or `""` when none has one.
pub fn notification_severity<'a>(severities: impl Iterator<Item = &'a str>) -> String {
    fn rank(s: &str) -> usize {
        match s {
            "critical" => 0,
            "error" => 1,
            "warning" => 2,
            "info" => 3,
            _ => 4,
        }
    }
    severities
        .filter(|s| !s.is_empty())
        .min_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)))
        .unwrap_or("")
        .to_string()
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
             CREATE TABLE IF NOT EXISTS notify_attempts (
                 outbox_id INTEGER NOT NULL,
                 at INTEGER NOT NULL,
                 outcome TEXT NOT NULL,
                 answer TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS notify_attempts_entry ON notify_attempts (outbox_id);
             CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (state, next_attempt);
             CREATE INDEX IF NOT EXISTS notify_outbox_receiver_due
                 ON notify_outbox (receiver, state, next_attempt);
             CREATE INDEX IF NOT EXISTS notify_outbox_expiry ON notify_outbox (state, expires);
             CREATE INDEX IF NOT EXISTS notify_outbox_group
                 ON notify_outbox (receiver, integration, idx, group_key, state);",
        )
        .map_err(err)?;
        // Outboxes written before the history existed have no severity.
        let has_severity = conn
            .prepare("SELECT 1 FROM pragma_table_info('notify_outbox') WHERE name = 'severity'")
            .and_then(|mut s| s.exists([]))
            .map_err(err)?;
        if !has_severity {
            conn.execute_batch(
                "ALTER TABLE notify_outbox ADD COLUMN severity TEXT NOT NULL DEFAULT ''",
            )
            .map_err(err)?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS notify_outbox_created ON notify_outbox (created)",
        )
        .map_err(err)?;
        let reader = Connection::open(&path).map_err(err)?;
        reader.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, queue) = mpsc::channel::<Job>();
        let writing = Arc::clone(&conn);
        let writer = std::thread::Builder::new()
            .name("notify-store".into())
            .spawn(move || write_jobs(&writing, &queue))
            .map_err(|e| format!("notification store: starting its writer thread: {e}"))?;
        Ok(DeliveryStore {
            conn,
            reader: Mutex::new(reader),
            jobs: Mutex::new(Some(jobs)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Runs `work` on the writer thread in a transaction shared with the
    /// other jobs submitted meanwhile (its own savepoint: a failing job
    /// rolls back only itself), then calls `done` with its result once the
    /// transaction is committed — or with the commit's error. Never blocks
    /// on SQLite; `done` runs on the writer thread and must be quick.
    pub fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
        done: impl FnOnce(Result<T, String>) + Send + 'static,
    ) {
        let job: Job = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => work(tx).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                done(match commit {
                    Ok(()) => result,
                    Err(e) => Err(e),
                })
            });
            (ok, reply)
        });
        let sent = match self.jobs.lock().as_ref() {
            Some(jobs) => jobs.send(job).map_err(|mpsc::SendError(job)| job),
            None => Err(job),
        };
        if let Err(job) = sent {
            // The writer is gone (the store is closing): write here.
            commit_jobs(&self.conn, vec![job]);
        }
    }

    /// Waits until every job submitted before is committed.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            |_| Ok(()),
            move |_| {
                let _ = tx.send(());
            },
        );
        let _ = rx.recv();
    }

    /// The nflog entry of a group and integration, unless expired at `now`.
    pub fn log_entry(
        &self,
        key: &IntegrationKey,
        group_key: &str,
        now: Timestamp,
    ) -> Res<Option<LogEntry>> {
        let conn = self.reader.lock();
        log_entry(&conn, key, group_key, now).map_err(|e| e.to_string())
    }

    /// Runs `f` in one transaction.
    pub fn transaction<T>(&self, f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>) -> Res<T> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let out = f(&Tx(&tx)).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Pending entries due at `now` in `scope`, oldest due first, as
    /// (id, integration, group key): cheap rows, read on every wake of the
    /// worker; the full entry is read only when an attempt starts.
    pub fn due_keys(
        &self,
        now: Timestamp,
        scope: DueScope<'_>,
        limit: usize,
    ) -> Res<Vec<(i64, IntegrationKey, String)>> {
        let conn = self.reader.lock();
        let e = |e: rusqlite::Error| e.to_string();
        let mut args: Vec<rusqlite::types::Value> = vec![now.into(), (limit as i64).into()];
        let order = match scope {
            DueScope::Expired => "expires, id",
            _ => "next_attempt, id",
        };
        let filter = match scope {
            DueScope::Receiver(r) => {
                args.push(r.to_string().into());
                "(next_attempt <= ?1 OR expires <= ?1) AND receiver = ?3".to_string()
            }
            DueScope::Expired => "expires <= ?1".to_string(),
            DueScope::NotIn(names) => {
                let mut marks = Vec::new();
                for n in names {
                    args.push(n.clone().into());
                    marks.push(format!("?{}", args.len()));
                }
                format!(
                    "next_attempt <= ?1 AND receiver NOT IN ({})",
                    marks.join(",")
                )
            }
        };
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT id, receiver, integration, idx, group_key FROM notify_outbox
                 WHERE state = 'pending' AND {filter}
                 ORDER BY {order} LIMIT ?2"
            ))
            .map_err(e)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get(0)?,
                    IntegrationKey {
                        receiver: r.get(1)?,
                        integration: r.get(2)?,
                        index: r.get::<_, i64>(3)? as usize,
                    },
                    r.get(4)?,
                ))
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// When the next pending entry becomes due after `now` (its attempt or
    /// its expiry): two index lookups.
    pub fn next_due_after(&self, now: Timestamp) -> Res<Option<Timestamp>> {
        let conn = self.reader.lock();
        let (attempt, expiry) = conn
            .prepare_cached(
                "SELECT
                     (SELECT MIN(next_attempt) FROM notify_outbox
                      WHERE state = 'pending' AND next_attempt > ?1),
                     (SELECT MIN(expires) FROM notify_outbox
                      WHERE state = 'pending' AND expires > ?1)",
            )
            .and_then(|mut s| {
                s.query_row([now], |r| {
                    Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
                })
            })
            .map_err(|e| e.to_string())?;
        Ok(match (attempt, expiry) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        })
    }

    /// An entry by id.
    pub fn entry(&self, id: i64) -> Res<Option<OutboxEntry>> {
        let conn = self.reader.lock();
        conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM notify_outbox WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([id], read_entry).optional())
        .map_err(|e| e.to_string())
    }

    /// The entries among `ids` still pending, in the order of `ids`: one
    /// read for a scan's worth of entries.
    pub fn pending_entries(&self, ids: &[i64]) -> Res<Vec<OutboxEntry>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.reader.lock();
        let marks = vec!["?"; ids.len()].join(",");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM notify_outbox WHERE state = 'pending' AND id IN ({marks})"
            ))
            .map_err(|e| e.to_string())?;
        let mut found: HashMap<i64, OutboxEntry> = stmt
            .query_map(rusqlite::params_from_iter(ids), read_entry)
            .map_err(|e| e.to_string())?
            .map(|r| r.map(|e| (e.id, e)))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// Every entry, oldest first (tests and inspection).
    pub fn entries(&self) -> Res<Vec<OutboxEntry>> {
        let conn = self.reader.lock();
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
        let conn = self.reader.lock();
        conn.query_row(
            "SELECT COUNT(*), MIN(created) FROM notify_outbox WHERE state = 'pending'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| e.to_string())
    }

    /// Deletes finished outbox entries (the notification history) older
    /// than their tier's retention — `history` for the severities it names,
    /// `other` for the rest — with their attempts, and expired nflog
    /// entries; returns how many rows went.
    pub fn prune(
        &self,
        now: Timestamp,
        history: &[(String, Duration)],
        other: Duration,
    ) -> Res<usize> {
        let conn = self.conn.lock();
        let e = |e: rusqlite::Error| e.to_string();
        let cutoff = |d: &Duration| now.saturating_sub(d.as_millis() as i64);
        let mut removed = 0;
        for (severity, retention) in history {
            removed += conn
                .execute(
                    "DELETE FROM notify_outbox WHERE state != 'pending' AND severity = ?1
                     AND COALESCE(finished, created) < ?2",
                    params![severity, cutoff(retention)],
                )
                .map_err(e)?;
        }
        let named = history
            .iter()
            .map(|(s, _)| format!("'{}'", s.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",");
        let others = if named.is_empty() {
            String::new()
        } else {
            format!(" AND severity NOT IN ({named})")
        };
        removed += conn
            .execute(
                &format!(
                    "DELETE FROM notify_outbox WHERE state != 'pending'{others}
                     AND COALESCE(finished, created) < ?1"
                ),
                [cutoff(&other)],
            )
            .map_err(e)?;
        removed += conn
            .execute(
                "DELETE FROM notify_attempts WHERE NOT EXISTS
                 (SELECT 1 FROM notify_outbox o WHERE o.id = notify_attempts.outbox_id)",
                [],
            )
            .map_err(e)?;
        removed += conn
            .execute("DELETE FROM notify_log WHERE expires <= ?1", [now])
            .map_err(e)?;
        Ok(removed)
    }

    /// History entries matching `q`, newest first, for which `keep` holds,
    /// at most `limit`.
    pub fn history(
        &self,
        q: &HistoryQuery,
        limit: usize,
        mut keep: impl FnMut(&OutboxEntry) -> bool,
    ) -> Res<Vec<HistoryEntry>> {
        let conn = self.reader.lock();
        let e = |e: rusqlite::Error| e.to_string();
        let mut sql = format!(
            "SELECT {ENTRY_COLUMNS}, severity, finished FROM notify_outbox \
             WHERE created >= ?1 AND created <= ?2"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![
            q.start.unwrap_or(i64::MIN).into(),
            q.end.unwrap_or(i64::MAX).into(),
        ];
        for (column, value) in [
            ("receiver", &q.receiver),
            ("severity", &q.severity),
            ("state", &q.state),
        ] {
            if let Some(v) = value {
                args.push(v.clone().into());
                sql.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        sql.push_str(" ORDER BY id DESC");
        let mut stmt = conn.prepare(&sql).map_err(e)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(e)?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(row) = rows.next().map_err(e)? else {
                break;
            };
            let entry = read_entry(row).map_err(e)?;
            if !keep(&entry) {
                continue;
            }
            out.push(HistoryEntry {
                entry,
                severity: row.get(15).map_err(e)?,
                finished: row.get(16).map_err(e)?,
                attempts: Vec::new(),
            });
        }
        drop(rows);
        drop(stmt);
        let mut attempts = conn
            .prepare_cached(
                "SELECT at, outcome, answer FROM notify_attempts WHERE outbox_id = ?1 ORDER BY rowid",
            )
            .map_err(e)?;
        for h in &mut out {
            h.attempts = attempts
                .query_map([h.entry.id], |r| {
                    let outcome: String = r.get(1)?;
                    Ok(Attempt {
                        at: r.get(0)?,
                        outcome: match outcome.as_str() {
                            "delivered" => "delivered",
                            "retry" => "retry",
                            _ => "failed",
                        },
                        answer: r.get(2)?,
                    })
                })
                .map_err(e)?
                .collect::<Result<_, _>>()
                .map_err(e)?;
        }
        Ok(out)
    }
}

impl Drop for DeliveryStore {
    /// Commits what was submitted, then ends the writer thread.
    fn drop(&mut self) {
        self.jobs.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: takes the jobs waiting (at least one, at most
/// [`MAX_GROUP_COMMIT`]) and commits them together, until the store closes.
fn write_jobs(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP_COMMIT {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        commit_jobs(conn, jobs);
    }
}

fn commit_jobs(conn: &Mutex<Connection>, jobs: Vec<Job>) {
    let mut replies = Vec::with_capacity(jobs.len());
    let mut conn = conn.lock();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = e.to_string();
            for job in jobs {
                job(Err(&e)).1(Err(e.clone()));
            }
            return;
        }
    };
    for job in jobs {
        let t = Tx(&tx);
        if let Err(e) = t.0.execute_batch("SAVEPOINT job") {
            let e = e.to_string();
            job(Err(&e)).1(Err(e));
            continue;
        }
        let (ok, reply) = job(Ok(&t));
        let end = if ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        match t.0.execute_batch(end) {
            Ok(()) => replies.push(reply),
            Err(e) => reply(Err(e.to_string())),
        }
    }
    let commit = tx.commit().map_err(|e| e.to_string());
    drop(conn);
    for reply in replies {
        reply(commit.clone());
    }
}

fn log_entry(
    conn: &Connection,
    key: &IntegrationKey,
    group_key: &str,
    now: Timestamp,
) -> rusqlite::Result<Option<LogEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT firing, resolved, timestamp FROM notify_log
         WHERE receiver = ?1 AND integration = ?2 AND idx = ?3 AND group_key = ?4 AND expires > ?5",
    )?;
    stmt.query_row(
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
    /// One statement, prepared once per connection.
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.0.prepare_cached(sql)?.execute(p)
    }

    /// Runs `f` in a savepoint: if it fails, what it wrote is rolled back
    /// and the rest of the transaction stands.
    pub fn isolated<T>(&self, f: impl FnOnce(&Self) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        self.0.execute_batch("SAVEPOINT one")?;
        match f(self) {
            Ok(v) => {
                self.0.execute_batch("RELEASE one")?;
                Ok(v)
            }
            Err(e) => {
                self.0.execute_batch("ROLLBACK TO one; RELEASE one")?;
                Err(e)
            }
        }
    }

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
        self.exec(
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
        self.exec(
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
        self.exec(
            "INSERT INTO notify_outbox
             (receiver, integration, idx, group_key, payload, firing, resolved, repeat_ms,
              created, attempts, next_attempt, expires, state, severity)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?9, ?10, 'pending', ?11)",
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
                e.expires,
                e.severity
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
        self.exec(
            &format!(
                "UPDATE notify_outbox SET state = ?2, attempts = attempts + ?3, last_error = ?4,
                 finished = ?5 WHERE id = ?1{guard}"
            ),
            params![id, state.as_str(), i64::from(attempted), error, now],
        )?;
        Ok(())
    }

    /// Records what an attempt of an entry got (the history's answers).
    pub fn attempted(
        &self,
        id: i64,
        at: Timestamp,
        outcome: &str,
        answer: &str,
    ) -> rusqlite::Result<()> {
        self.exec(
            "INSERT INTO notify_attempts (outbox_id, at, outcome, answer) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                at,
                outcome,
                super::http::cut_at_char(answer, MAX_ANSWER)
            ],
        )?;
        Ok(())
    }

    /// Schedules another attempt of a pending entry.
    pub fn retry(&self, id: i64, next: Timestamp, error: &str) -> rusqlite::Result<()> {
        self.exec(
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
                        severity: "critical",
                    })?;
                    tx.log(&key(), "g", &firing, &resolved, 900, Duration::from_secs(1))
                })
                .unwrap();
        }
        let store = DeliveryStore::open(dir.path()).unwrap();
        let keys = store.due_keys(1000, DueScope::Receiver("r"), 10).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(store
            .due_keys(1000, DueScope::Receiver("other"), 10)
            .unwrap()
            .is_empty());
        assert!(store
            .due_keys(1000, DueScope::Expired, 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            store.due_keys(5000, DueScope::Expired, 10).unwrap().len(),
            1
        );
        assert!(store
            .due_keys(1000, DueScope::NotIn(&["r".to_string()]), 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .due_keys(1000, DueScope::NotIn(&[]), 10)
                .unwrap()
                .len(),
            1
        );
        let due = [store.entry(keys[0].0).unwrap().unwrap()];
        assert_eq!(due[0].firing, firing);
        assert_eq!(due[0].resolved, resolved);
        assert_eq!(due[0].state, EntryState::Pending);
        let entry = store.log_entry(&key(), "g", 1000).unwrap().unwrap();
        assert_eq!(entry.firing, firing);
        assert_eq!(entry.timestamp, 900);
        // Expired nflog entries are not returned, then pruned.
        assert!(store.log_entry(&key(), "g", 1900).unwrap().is_none());
        assert_eq!(store.prune(1900, &[], Duration::from_secs(1)).unwrap(), 1);
    }

    fn insert(store: &DeliveryStore, group: &str, severity: &str, now: Timestamp) -> i64 {
        let set = FingerprintSet::new();
        store
            .transaction(|tx| {
                tx.insert(&NewEntry {
                    key: &key(),
                    group_key: group,
                    payload: "{}",
                    firing: &set,
                    resolved: &set,
                    repeat_interval: Duration::from_secs(60),
                    now,
                    expires: now + 3_600_000,
                    severity,
                })
            })
            .unwrap()
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn pending_entries_keep_the_order_asked_and_skip_finished_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let a = insert(&store, "a", "", 1_000);
        let b = insert(&store, "b", "", 1_000);
        let c = insert(&store, "c", "", 1_000);
        store
            .transaction(|tx| tx.finish(b, EntryState::Delivered, true, "", 2_000))
            .unwrap();
        let ids: Vec<i64> = store
            .pending_entries(&[c, b, a, 999])
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, [c, a]);
        assert!(store.pending_entries(&[]).unwrap().is_empty());
    }

    #[test]
    fn history_keeps_attempts_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let a = insert(&store, "a", "critical", 1_000);
        let b = insert(&store, "b", "warning", 2_000);
        store
            .transaction(|tx| {
                tx.attempted(a, 1_100, "retry", "server error 500: busy")?;
                tx.retry(a, 1_200, "server error 500: busy")?;
                tx.attempted(a, 1_300, "delivered", "ok")?;
                tx.finish(a, EntryState::Delivered, true, "", 1_300)?;
                tx.attempted(b, 2_100, "failed", &"x".repeat(5000))?;
                tx.finish(b, EntryState::Failed, true, "refused", 2_100)
            })
            .unwrap();
        let all = store
            .history(&HistoryQuery::default(), 10, |_| true)
            .unwrap();
        assert_eq!(all.iter().map(|h| h.entry.id).collect::<Vec<_>>(), [b, a]);
        let first = &all[1];
        assert_eq!(first.severity, "critical");
        assert_eq!(first.finished, Some(1_300));
        assert_eq!(
            first.attempts,
            [
                Attempt {
                    at: 1_100,
                    outcome: "retry",
                    answer: "server error 500: busy".into()
                },
                Attempt {
                    at: 1_300,
                    outcome: "delivered",
                    answer: "ok".into()
                },
            ]
        );
        assert_eq!(all[0].attempts[0].answer.len(), MAX_ANSWER);
        let q = |q: HistoryQuery| {
            store
                .history(&q, 10, |_| true)
                .unwrap()
                .iter()
                .map(|h| h.entry.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(HistoryQuery {
                severity: Some("warning".into()),
                ..Default::default()
            }),
            [b]
        );
        assert_eq!(
            q(HistoryQuery {
                state: Some("delivered".into()),
                ..Default::default()
            }),
            [a]
        );
        assert_eq!(
            q(HistoryQuery {
                start: Some(1_500),
                ..Default::default()
            }),
            [b]
        );
        assert_eq!(
            q(HistoryQuery {
                end: Some(1_500),
                ..Default::default()
            }),
            [a]
        );
        assert!(q(HistoryQuery {
            receiver: Some("other".into()),
            ..Default::default()
        })
        .is_empty());
        // `keep` and `limit` apply together: the first kept entry only.
        let kept = store
            .history(&HistoryQuery::default(), 1, |e| e.id == a)
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].entry.id, a);
    }

    #[test]
    fn history_is_pruned_per_severity() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let ids: Vec<i64> = ["critical", "warning", "info", "", "page"]
            .iter()
            .map(|s| insert(&store, s, s, 0))
            .collect();
        let pending = insert(&store, "p", "info", 0);
        store
            .transaction(|tx| {
                for id in &ids {
                    tx.attempted(*id, 0, "delivered", "ok")?;
                    tx.finish(*id, EntryState::Delivered, true, "", 0)?;
                }
                Ok(())
            })
            .unwrap();
        let tiers = [
            ("critical".to_string(), Duration::from_secs(90 * 86_400)),
            ("warning".to_string(), Duration::from_secs(30 * 86_400)),
            ("info".to_string(), Duration::from_secs(7 * 86_400)),
        ];
        let other = Duration::from_secs(14 * 86_400);
        let left = || {
            store
                .history(&HistoryQuery::default(), 100, |_| true)
                .unwrap()
                .iter()
                .map(|h| h.severity.clone())
                .collect::<Vec<_>>()
        };
        store.prune(7 * DAY, &tiers, other).unwrap();
        assert_eq!(left(), ["info", "page", "", "info", "warning", "critical"]);
        store.prune(7 * DAY + 1, &tiers, other).unwrap();
        // The pending entry stays whatever its age; the finished info one goes.
        assert_eq!(left(), ["info", "page", "", "warning", "critical"]);
        store.prune(14 * DAY + 1, &tiers, other).unwrap();
        assert_eq!(left(), ["info", "warning", "critical"]);
        store.prune(30 * DAY + 1, &tiers, other).unwrap();
        assert_eq!(left(), ["info", "critical"]);
        store.prune(90 * DAY + 1, &tiers, other).unwrap();
        assert_eq!(left(), ["info"]);
        assert_eq!(
            store.entry(pending).unwrap().unwrap().state,
            EntryState::Pending
        );
        let attempts: i64 = store
            .conn
            .lock()
            .query_row("SELECT COUNT(*) FROM notify_attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(attempts, 0, "attempts of pruned entries go with them");
    }

    #[test]
    fn severity_tier_is_the_most_severe() {
        assert_eq!(
            notification_severity(["info", "critical", "warning"].into_iter()),
            "critical"
        );
        assert_eq!(notification_severity(["page", "info"].into_iter()), "info");
        assert_eq!(notification_severity(["zz", "page"].into_iter()), "page");
        assert_eq!(notification_severity(["", ""].into_iter()), "");
        assert_eq!(notification_severity(std::iter::empty()), "");
    }

    #[test]
    fn an_outbox_without_severity_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("bellwether.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE notify_outbox (
                     id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL,
                     integration TEXT NOT NULL, idx INTEGER NOT NULL, group_key TEXT NOT NULL,
                     payload TEXT NOT NULL, firing TEXT NOT NULL, resolved TEXT NOT NULL,
                     repeat_ms INTEGER NOT NULL, created INTEGER NOT NULL,
                     attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL,
                     expires INTEGER NOT NULL, state TEXT NOT NULL, last_error TEXT,
                     finished INTEGER);
                 INSERT INTO notify_outbox (receiver, integration, idx, group_key, payload,
                     firing, resolved, repeat_ms, created, next_attempt, expires, state)
                 VALUES ('r', 'webhook', 0, 'old', '{}', '', '', 0, 5, 5, 10, 'pending');",
            )
            .unwrap();
        }
        let store = DeliveryStore::open(dir.path()).unwrap();
        let old = store
            .history(&HistoryQuery::default(), 10, |_| true)
            .unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].severity, "");
        insert(&store, "new", "critical", 6);
        assert_eq!(
            store
                .history(&HistoryQuery::default(), 10, |_| true)
                .unwrap()
                .len(),
            2
        );
    }

    /// Jobs submitted together share a transaction, each in its savepoint:
    /// a failing job rolls back only its own writes, and each job hears
    /// its result only once the transaction is committed.
    #[test]
    fn submitted_jobs_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let db = dir.path().join("bellwether.db");
        let (tx, rx) = mpsc::channel();
        for (i, fails) in [(0, false), (1, true), (2, false)] {
            let tx = tx.clone();
            let db = db.clone();
            store.submit(
                move |t| {
                    let set = FingerprintSet::new();
                    let id = t.insert(&NewEntry {
                        key: &key(),
                        group_key: &format!("g{i}"),
                        payload: "{}",
                        firing: &set,
                        resolved: &set,
                        repeat_interval: Duration::from_secs(60),
                        now: 1,
                        expires: 2,
                        severity: "",
                    })?;
                    if fails {
                        return Err(rusqlite::Error::QueryReturnedNoRows);
                    }
                    Ok(id)
                },
                move |result: Result<i64, String>| {
                    // Committed already: another connection sees it.
                    let conn = Connection::open(&db).unwrap();
                    let visible: i64 = conn
                        .query_row(
                            "SELECT COUNT(*) FROM notify_outbox WHERE group_key = ?1",
                            [format!("g{i}")],
                            |r| r.get(0),
                        )
                        .unwrap();
                    tx.send((i, result.is_ok(), visible)).unwrap();
                },
            );
        }
        let mut results: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        results.sort();
        assert_eq!(results, [(0, true, 1), (1, false, 0), (2, true, 1)]);
        let groups: Vec<String> = store
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.group_key)
            .collect();
        assert_eq!(groups, ["g0", "g2"]);
    }

    #[test]
    fn jobs_submitted_before_closing_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = DeliveryStore::open(dir.path()).unwrap();
            for i in 0..100 {
                store.submit(
                    move |t| {
                        t.log(
                            &key(),
                            &format!("g{i}"),
                            &FingerprintSet::new(),
                            &FingerprintSet::new(),
                            1,
                            Duration::from_secs(10),
                        )
                    },
                    |_| {},
                );
            }
        }
        let store = DeliveryStore::open(dir.path()).unwrap();
        for i in 0..100 {
            assert!(store
                .log_entry(&key(), &format!("g{i}"), 2)
                .unwrap()
                .is_some());
        }
    }
}
