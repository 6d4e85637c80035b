//! The usage ledger: one row per accepted request in `llm.db` in the data
//! directory (its own SQLite file, so its writes never wait on the store's),
//! plus the saved counters. Rows are written in batches by the LLM writer
//! thread, never on the request path; queries read through their own
//! connection (WAL mode lets them run beside the writer).

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::Timestamp;

/// One accepted request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedgerRow {
    /// The request's time (its `timestamp`, else when it was received), ms.
    pub t: Timestamp,
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    /// Rounded to the nearest micro-dollar, halves up; `None`: unpriced.
    pub cost_micro_usd: Option<i64>,
    /// The cost came from the caller's `cost_usd`, not the table.
    pub cost_reported: bool,
    pub duration_seconds: Option<f64>,
    pub status: String,
    pub user: Option<String>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub workflow: Option<String>,
    pub session: Option<String>,
}

/// What `top` groups by: a ledger column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    User,
    Org,
    Team,
    Model,
    Provider,
    Agent,
    Workflow,
    Session,
}

impl GroupBy {
    pub const ALL: [GroupBy; 8] = [
        GroupBy::User,
        GroupBy::Org,
        GroupBy::Team,
        GroupBy::Model,
        GroupBy::Provider,
        GroupBy::Agent,
        GroupBy::Workflow,
        GroupBy::Session,
    ];

    pub fn column(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Org => "org",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Provider => "provider",
            GroupBy::Agent => "agent",
            GroupBy::Workflow => "workflow",
            GroupBy::Session => "session",
        }
    }

    pub fn parse(text: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.column() == text)
    }
}

/// How `top` orders its groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderBy {
    Cost,
    Requests,
    Tokens,
}

impl OrderBy {
    pub fn parse(text: &str) -> Option<OrderBy> {
        match text {
            "cost" => Some(OrderBy::Cost),
            "requests" => Some(OrderBy::Requests),
            "tokens" => Some(OrderBy::Tokens),
            _ => None,
        }
    }

    fn sql(self) -> &'static str {
        match self {
            OrderBy::Cost => "cost DESC, requests DESC",
            OrderBy::Requests => "requests DESC, cost DESC",
            OrderBy::Tokens => "input + output DESC, cost DESC",
        }
    }
}

/// Totals of a set of rows.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub unpriced_requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    /// Sum of the rows' micro-dollars (unpriced rows add nothing).
    pub cost_micro_usd: i64,
    /// `cost_micro_usd` in dollars.
    pub cost_usd: f64,
}

/// One group of `top`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Group {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

const TOTALS_SQL: &str =
    "COUNT(*) AS requests, SUM(cost_micro IS NULL), SUM(input) AS input, SUM(output) AS output,
     SUM(cache_read), SUM(cache_write), SUM(reasoning), COALESCE(SUM(cost_micro), 0) AS cost";

fn totals_from(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Totals> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(row.get::<_, Option<i64>>(first + i)?.unwrap_or(0).max(0) as u64)
    };
    let cost: i64 = row.get(first + 7)?;
    Ok(Totals {
        requests: n(0)?,
        unpriced_requests: n(1)?,
        input_tokens: n(2)?,
        output_tokens: n(3)?,
        cache_read_tokens: n(4)?,
        cache_write_tokens: n(5)?,
        reasoning_tokens: n(6)?,
        cost_micro_usd: cost,
        cost_usd: cost as f64 / 1e6,
    })
}

pub struct Ledger {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl Ledger {
    /// Opens (creating if needed) `data_dir/llm.db`.
    pub fn open(data_dir: &Path) -> Result<Ledger, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
        let path = data_dir.join("llm.db");
        let err = |e: rusqlite::Error| format!("LLM ledger {}: {e}", path.display());
        let writer = Connection::open(&path).map_err(err)?;
        writer
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS llm_usage (
                     t INTEGER NOT NULL,
                     provider TEXT NOT NULL,
                     model TEXT NOT NULL,
                     input INTEGER NOT NULL,
                     output INTEGER NOT NULL,
                     cache_read INTEGER NOT NULL,
                     cache_write INTEGER NOT NULL,
                     reasoning INTEGER NOT NULL,
                     cost_micro INTEGER,
                     cost_reported INTEGER NOT NULL,
                     duration REAL,
                     status TEXT NOT NULL,
                     user TEXT,
                     org TEXT,
                     team TEXT,
                     agent TEXT,
                     workflow TEXT,
                     session TEXT
                 );
                 CREATE INDEX IF NOT EXISTS llm_usage_t ON llm_usage (t);
                 CREATE TABLE IF NOT EXISTS llm_counters (
                     id INTEGER PRIMARY KEY CHECK (id = 1),
                     saved_at INTEGER NOT NULL,
                     counters TEXT NOT NULL
                 );",
            )
            .map_err(err)?;
        let reader = Connection::open(&path).map_err(err)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        Ok(Ledger {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn err(&self, e: rusqlite::Error) -> String {
        format!("LLM ledger {}: {e}", self.path.display())
    }

    /// The counters saved last, if any.
    pub fn load_counters(&self) -> Result<Option<String>, String> {
        self.reader
            .lock()
            .query_row("SELECT counters FROM llm_counters WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Writes `rows` and (when given) the counters in one transaction, so
    /// that after a crash the ledger and the counters agree.
    pub fn write(&self, rows: &[LedgerRow], counters: Option<&str>) -> Result<(), String> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO llm_usage (t, provider, model, input, output, cache_read, cache_write,
                         reasoning, cost_micro, cost_reported, duration, status, user, org, team, agent,
                         workflow, session)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .map_err(|e| self.err(e))?;
            let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            for r in rows {
                insert
                    .execute(params![
                        r.t,
                        r.provider,
                        r.model,
                        int(r.input_tokens),
                        int(r.output_tokens),
                        int(r.cache_read_tokens),
                        int(r.cache_write_tokens),
                        int(r.reasoning_tokens),
                        r.cost_micro_usd,
                        r.cost_reported,
                        r.duration_seconds,
                        r.status,
                        r.user,
                        r.org,
                        r.team,
                        r.agent,
                        r.workflow,
                        r.session,
                    ])
                    .map_err(|e| self.err(e))?;
            }
            if let Some(counters) = counters {
                tx.execute(
                    "INSERT INTO llm_counters (id, saved_at, counters) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, counters = excluded.counters",
                    params![crate::model::now_millis(), counters],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Deletes rows older than `cutoff`; returns how many.
    pub fn delete_before(&self, cutoff: Timestamp) -> Result<usize, String> {
        self.writer
            .lock()
            .execute("DELETE FROM llm_usage WHERE t < ?1", [cutoff])
            .map_err(|e| self.err(e))
    }

    /// The `limit` groups with the highest `order` among rows with `t >= since`
    /// and a value for `by` (rows without one are left out).
    pub fn top(
        &self,
        by: GroupBy,
        since: Timestamp,
        order: OrderBy,
        limit: usize,
    ) -> Result<Vec<Group>, String> {
        let column = by.column();
        let sql = format!(
            "SELECT {column}, {TOTALS_SQL} FROM llm_usage
             WHERE t >= ?1 AND {column} IS NOT NULL
             GROUP BY {column} ORDER BY {} LIMIT ?2",
            order.sql()
        );
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![since, limit as i64], |row| {
                Ok(Group {
                    key: row.get(0)?,
                    totals: totals_from(row, 1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Totals of the rows with `t >= since`, and the number of distinct users,
    /// orgs, teams and sessions among them.
    pub fn summary(&self, since: Timestamp) -> Result<(Totals, [u64; 4]), String> {
        let sql = format!(
            "SELECT {TOTALS_SQL}, COUNT(DISTINCT user), COUNT(DISTINCT org), COUNT(DISTINCT team),
                    COUNT(DISTINCT session)
             FROM llm_usage WHERE t >= ?1"
        );
        let conn = self.reader.lock();
        conn.query_row(&sql, [since], |row| {
            let distinct =
                |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
            Ok((
                totals_from(row, 0)?,
                [distinct(8)?, distinct(9)?, distinct(10)?, distinct(11)?],
            ))
        })
        .map_err(|e| self.err(e))
    }

    /// The earliest row's time.
    pub fn earliest(&self) -> Result<Option<Timestamp>, String> {
        self.reader
            .lock()
            .query_row("SELECT MIN(t) FROM llm_usage", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The priced cost of the rows with `t >= since`, in micro-dollars,
    /// summed per `bucket_ms` bucket (its start time) and, with `column`
    /// (`org`, `team` or `user`), per value of that column among `subjects`
    /// (for rebuilding the budgets). Unpriced rows add nothing.
    pub fn spend_by(
        &self,
        column: Option<&'static str>,
        subjects: &[&str],
        since: Timestamp,
        bucket_ms: i64,
    ) -> Result<Vec<(Timestamp, Option<String>, i64)>, String> {
        let bucket = "(t - (t % ?2 + ?2) % ?2)";
        let sql = match column {
            None => format!(
                "SELECT {bucket} AS b, NULL, SUM(cost_micro) FROM llm_usage
                 WHERE t >= ?1 AND cost_micro IS NOT NULL GROUP BY b"
            ),
            Some(c @ ("org" | "team" | "user")) => format!(
                "SELECT {bucket} AS b, {c}, SUM(cost_micro) FROM llm_usage
                 WHERE t >= ?1 AND cost_micro IS NOT NULL
                   AND {c} IN (SELECT value FROM json_each(?3))
                 GROUP BY b, {c}"
            ),
            Some(c) => return Err(format!("no budget column {c:?}")),
        };
        let names = serde_json::to_string(subjects).map_err(|e| e.to_string())?;
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let bind: &[&dyn rusqlite::ToSql] = if column.is_some() {
            &[&since, &bucket_ms, &names]
        } else {
            &[&since, &bucket_ms]
        };
        let rows = stmt
            .query_map(bind, |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Subjects (`user` or `org`) with at least `floor` requests since `since`,
    /// the `limit` largest first.
    pub fn request_counts(
        &self,
        by: GroupBy,
        since: Timestamp,
        floor: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String> {
        let column = by.column();
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM llm_usage WHERE t >= ?1 AND {column} IS NOT NULL
             GROUP BY {column} HAVING n >= ?2 ORDER BY n DESC, {column} LIMIT ?3"
        );
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![
                    since,
                    i64::try_from(floor).unwrap_or(i64::MAX),
                    limit as i64
                ],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: Timestamp, user: &str, cost: Option<i64>) -> LedgerRow {
        LedgerRow {
            t,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            input_tokens: 100,
            output_tokens: 10,
            cost_micro_usd: cost,
            status: "ok".into(),
            user: Some(user.into()),
            org: Some("acme".into()),
            ..LedgerRow::default()
        }
    }

    #[test]
    fn top_summary_and_retention() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Ledger::open(dir.path()).expect("opened");
        ledger
            .write(
                &[
                    row(1_000, "alice", Some(5)),
                    row(2_000, "bob", Some(50)),
                    row(3_000, "bob", None),
                    row(4_000, "carol", Some(1)),
                ],
                Some("{}"),
            )
            .expect("written");
        let top = ledger
            .top(GroupBy::User, 1_500, OrderBy::Cost, 10)
            .expect("top");
        let keys: Vec<&str> = top.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["bob", "carol"]);
        assert_eq!(top[0].totals.requests, 2);
        assert_eq!(top[0].totals.unpriced_requests, 1);
        assert_eq!(top[0].totals.cost_micro_usd, 50);
        let (totals, distinct) = ledger.summary(0).expect("summary");
        assert_eq!(totals.requests, 4);
        assert_eq!(totals.cost_micro_usd, 56);
        assert_eq!(distinct, [3, 1, 0, 0]);
        assert_eq!(
            ledger
                .request_counts(GroupBy::User, 0, 2, 10)
                .expect("counts"),
            [("bob".to_string(), 2)]
        );
        assert_eq!(ledger.delete_before(2_500).expect("deleted"), 2);
        assert_eq!(ledger.summary(0).expect("summary").0.requests, 2);
        assert_eq!(
            ledger.load_counters().expect("loaded").as_deref(),
            Some("{}")
        );
        // Reopening keeps everything.
        drop(ledger);
        let ledger = Ledger::open(dir.path()).expect("reopened");
        assert_eq!(ledger.summary(0).expect("summary").0.requests, 2);
    }
}
