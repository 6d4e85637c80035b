//! The store's tables in `data_dir/bellwether.db` and every SQL statement the
//! store runs.
//!
//! Schema (other parts of bellwether add their own tables to the same file;
//! the store touches only these):
//!
//! ```sql
//! series       (ref INTEGER PRIMARY KEY, labels BLOB)           -- label set, see encoding.rs
//! chunks       (series_ref, min_t, max_t, data BLOB,
//!               PRIMARY KEY (series_ref, min_t)) WITHOUT ROWID  -- sealed Gorilla chunks
//! chunks_max_t (index on chunks(max_t))                         -- for age retention
//! head_chunks  (series_ref PRIMARY KEY, min_t, max_t, data)     -- open-chunk snapshots of the last checkpoint
//! storage_meta (key TEXT PRIMARY KEY, value INTEGER)            -- schema_version, wal_segment, next_ref
//! ```
//!
//! `storage_meta` is prefixed because a bare `meta` would invite other modules
//! to share it. The connection runs `journal_mode=WAL` and `synchronous=NORMAL`;
//! the checkpoint transaction switches to `FULL` because the WAL segments it
//! replaces are deleted right after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::Timestamp;

use super::head::SealedChunk;
use super::index::SeriesRef;
use super::StorageError;

pub const DB_FILE: &str = "bellwether.db";
const SCHEMA_VERSION: i64 = 1;

pub const META_WAL_SEGMENT: &str = "wal_segment";
pub const META_NEXT_REF: &str = "next_ref";

/// A sealed chunk on its way to the `chunks` table.
#[derive(Clone)]
pub struct PersistChunk {
    pub series_ref: SeriesRef,
    pub chunk: Arc<SealedChunk>,
}

/// Everything one checkpoint transaction writes.
pub struct Checkpoint {
    /// Series not yet in the `series` table: ref and encoded labels.
    pub series: Vec<(SeriesRef, Vec<u8>)>,
    /// Sealed chunks still only in memory.
    pub chunks: Vec<PersistChunk>,
    /// Snapshots of the open chunks: ref, min_t, max_t, bytes.
    pub head_chunks: Vec<(SeriesRef, Timestamp, Timestamp, Vec<u8>)>,
    /// The first WAL segment not covered by this checkpoint.
    pub wal_segment: u64,
    pub next_ref: SeriesRef,
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StorageError + '_ {
    move |source| StorageError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens a connection with the store's pragmas and creates missing tables.
pub fn open(path: &Path) -> Result<Connection, StorageError> {
    let err = sqlite_err(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(&err)?;
    // auto_vacuum only takes effect on a new database, so set it before any table.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS series (ref INTEGER PRIMARY KEY, labels BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS chunks (
             series_ref INTEGER NOT NULL, min_t INTEGER NOT NULL, max_t INTEGER NOT NULL,
             data BLOB NOT NULL, PRIMARY KEY (series_ref, min_t)) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS chunks_max_t ON chunks (max_t);
         CREATE TABLE IF NOT EXISTS head_chunks (
             series_ref INTEGER PRIMARY KEY, min_t INTEGER NOT NULL, max_t INTEGER NOT NULL,
             data BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS storage_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    )
    .map_err(&err)?;
    let version: Option<i64> = meta_get(&conn, path, "schema_version")?;
    match version {
        None => meta_set(&conn, path, "schema_version", SCHEMA_VERSION)?,
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(StorageError::Corrupt {
                what: path.display().to_string(),
                detail: format!(
                    "storage schema version {other} is not {SCHEMA_VERSION}; \
                     this build cannot read it (use the bellwether that wrote it)"
                ),
            })
        }
    }
    Ok(conn)
}

pub fn meta_get(conn: &Connection, path: &Path, key: &str) -> Result<Option<i64>, StorageError> {
    conn.query_row(
        "SELECT value FROM storage_meta WHERE key = ?1",
        [key],
        |row| row.get(0),
    )
    .optional()
    .map_err(sqlite_err(path))
}

fn meta_set(conn: &Connection, path: &Path, key: &str, value: i64) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO storage_meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .map(|_| ())
    .map_err(sqlite_err(path))
}

fn insert_chunks(tx: &Connection, chunks: &[PersistChunk]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO chunks (series_ref, min_t, max_t, data) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for c in chunks {
        stmt.execute(params![
            c.series_ref as i64,
            c.chunk.min_t,
            c.chunk.max_t,
            &c.chunk.data[..]
        ])?;
    }
    Ok(())
}

fn insert_series(tx: &Connection, series: &[(SeriesRef, Vec<u8>)]) -> rusqlite::Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT OR REPLACE INTO series (ref, labels) VALUES (?1, ?2)")?;
    for (series_ref, labels) in series {
        stmt.execute(params![*series_ref as i64, labels])?;
    }
    Ok(())
}

/// Writes a batch of sealed chunks (and the series rows they need) in one transaction.
pub fn write_chunks(
    conn: &mut Connection,
    path: &Path,
    series: &[(SeriesRef, Vec<u8>)],
    chunks: &[PersistChunk],
) -> Result<(), StorageError> {
    let err = sqlite_err(path);
    let tx = conn.transaction().map_err(&err)?;
    insert_series(&tx, series).map_err(&err)?;
    insert_chunks(&tx, chunks).map_err(&err)?;
    tx.commit().map_err(&err)
}

/// The checkpoint transaction: series, chunks, open-chunk snapshots and the
/// WAL position, all or nothing, with a full sync.
pub fn write_checkpoint(
    conn: &mut Connection,
    path: &Path,
    cp: &Checkpoint,
) -> Result<(), StorageError> {
    let err = sqlite_err(path);
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(&err)?;
    let result = (|| {
        let tx = conn.transaction().map_err(&err)?;
        insert_series(&tx, &cp.series).map_err(&err)?;
        insert_chunks(&tx, &cp.chunks).map_err(&err)?;
        tx.execute("DELETE FROM head_chunks", []).map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO head_chunks (series_ref, min_t, max_t, data) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(&err)?;
            for (series_ref, min_t, max_t, data) in &cp.head_chunks {
                stmt.execute(params![*series_ref as i64, min_t, max_t, data])
                    .map_err(&err)?;
            }
        }
        meta_set(&tx, path, META_WAL_SEGMENT, cp.wal_segment as i64)?;
        meta_set(&tx, path, META_NEXT_REF, cp.next_ref as i64)?;
        tx.commit().map_err(&err)
    })();
    conn.execute_batch("PRAGMA synchronous = NORMAL")
        .map_err(&err)?;
    result
}

/// Every `series` row; rows whose labels do not decode come back as `Err(ref)`.
pub fn load_series(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(SeriesRef, Option<crate::model::Labels>)>, StorageError> {
    let err = sqlite_err(path);
    let mut stmt = conn
        .prepare("SELECT ref, labels FROM series ORDER BY ref")
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |row| {
            let series_ref: i64 = row.get(0)?;
            let labels: Vec<u8> = row.get(1)?;
            Ok((series_ref as SeriesRef, labels))
        })
        .map_err(&err)?;
    let mut out = Vec::new();
    for row in rows {
        let (series_ref, bytes) = row.map_err(&err)?;
        let mut d = super::encoding::Decoder::new(&bytes);
        let labels = d.labels().filter(|_| d.is_empty());
        out.push((series_ref, labels));
    }
    Ok(out)
}

/// The newest persisted chunk of one series, and where its oldest begins.
pub struct LastChunk {
    pub series_ref: SeriesRef,
    /// `min_t` of the series' oldest chunk: a lower bound of its samples.
    pub first_min_t: Timestamp,
    pub min_t: Timestamp,
    pub data: Vec<u8>,
}

/// The newest persisted chunk of every series, with the start of its oldest
/// (both from one pass over the chunk keys).
pub fn load_last_chunks(conn: &Connection, path: &Path) -> Result<Vec<LastChunk>, StorageError> {
    let err = sqlite_err(path);
    let mut stmt = conn
        .prepare(
            "SELECT c.series_ref, l.f, c.min_t, c.data FROM chunks c
             JOIN (SELECT series_ref, MIN(min_t) AS f, MAX(min_t) AS m FROM chunks
                   GROUP BY series_ref) l
               ON c.series_ref = l.series_ref AND c.min_t = l.m",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |row| {
            Ok(LastChunk {
                series_ref: row.get::<_, i64>(0)? as SeriesRef,
                first_min_t: row.get(1)?,
                min_t: row.get(2)?,
                data: row.get(3)?,
            })
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
}

/// The open-chunk snapshots of the last checkpoint: ref, min_t, bytes.
pub fn load_head_chunks(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<(SeriesRef, Timestamp, Vec<u8>)>, StorageError> {
    chunk_rows(
        conn,
        path,
        "SELECT series_ref, min_t, data FROM head_chunks",
    )
}

/// Runs a query whose rows are `(series_ref, min_t, data)`.
fn chunk_rows(
    conn: &Connection,
    path: &Path,
    sql: &str,
) -> Result<Vec<(SeriesRef, Timestamp, Vec<u8>)>, StorageError> {
    let err = sqlite_err(path);
    let mut stmt = conn.prepare(sql).map_err(&err)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)? as SeriesRef,
                row.get::<_, i64>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
}

/// The largest series ref in the `chunks` table (to never reuse a ref).
pub fn max_chunk_ref(conn: &Connection, path: &Path) -> Result<Option<SeriesRef>, StorageError> {
    conn.query_row("SELECT MAX(series_ref) FROM chunks", [], |row| {
        row.get::<_, Option<i64>>(0)
    })
    .map(|r| r.map(|r| r as SeriesRef))
    .map_err(sqlite_err(path))
}

/// Deletes chunks whose newest sample is older than `cutoff`; returns how many.
pub fn delete_chunks_before(
    conn: &Connection,
    path: &Path,
    cutoff: Timestamp,
) -> Result<usize, StorageError> {
    conn.execute("DELETE FROM chunks WHERE max_t < ?1", [cutoff])
        .map_err(sqlite_err(path))
}

/// Deletes the `n` chunks with the oldest `max_t`; returns their keys
/// (series ref, min_t).
pub fn delete_oldest_chunks(
    conn: &Connection,
    path: &Path,
    n: usize,
) -> Result<Vec<(SeriesRef, Timestamp)>, StorageError> {
    let err = sqlite_err(path);
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM chunks WHERE (series_ref, min_t) IN
               (SELECT series_ref, min_t FROM chunks ORDER BY max_t LIMIT ?1)
             RETURNING series_ref, min_t",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map([n as i64], |row| {
            Ok((row.get::<_, i64>(0)? as SeriesRef, row.get::<_, i64>(1)?))
        })
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
}

/// Refs in the `series` table with no chunk left.
pub fn series_without_chunks(
    conn: &Connection,
    path: &Path,
) -> Result<Vec<SeriesRef>, StorageError> {
    let err = sqlite_err(path);
    let mut stmt = conn
        .prepare(
            "SELECT ref FROM series s
             WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.series_ref = s.ref)",
        )
        .map_err(&err)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, i64>(0).map(|r| r as SeriesRef))
        .map_err(&err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)
}

/// Deletes series rows (and their head-chunk snapshots) and records `next_ref`.
pub fn delete_series(
    conn: &mut Connection,
    path: &Path,
    refs: &[SeriesRef],
    next_ref: SeriesRef,
) -> Result<(), StorageError> {
    let err = sqlite_err(path);
    let tx = conn.transaction().map_err(&err)?;
    {
        let mut del = tx
            .prepare_cached("DELETE FROM series WHERE ref = ?1")
            .map_err(&err)?;
        let mut del_head = tx
            .prepare_cached("DELETE FROM head_chunks WHERE series_ref = ?1")
            .map_err(&err)?;
        for &r in refs {
            del.execute([r as i64]).map_err(&err)?;
            del_head.execute([r as i64]).map_err(&err)?;
        }
    }
    meta_set(&tx, path, META_NEXT_REF, next_ref as i64)?;
    tx.commit().map_err(&err)
}

/// Bytes the database really uses (pages minus free pages).
pub fn used_bytes(conn: &Connection, path: &Path) -> Result<u64, StorageError> {
    let err = sqlite_err(path);
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(&err)?;
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .map_err(&err)?;
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(&err)?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Gives free pages back to the file system after deletions.
pub fn reclaim(conn: &Connection, path: &Path) -> Result<(), StorageError> {
    conn.execute_batch("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(sqlite_err(path))
}

/// Persisted chunks of one series overlapping a query: (min_t, bytes), oldest first.
pub type SeriesChunks = Vec<(Timestamp, Vec<u8>)>;

/// Read-only connections for queries, opened on demand and reused.
pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub fn new(path: PathBuf) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Chunks of `series_ref` overlapping `[mint, maxt]`, as (min_t, bytes).
    pub fn chunks(
        &self,
        requests: &[SeriesRef],
        mint: Timestamp,
        maxt: Timestamp,
    ) -> Result<Vec<SeriesChunks>, StorageError> {
        let err = sqlite_err(&self.path);
        let conn = match self.idle.lock().pop() {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(&err)?;
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(&err)?;
                conn
            }
        };
        let result = (|| {
            // One read transaction: every series sees the same snapshot.
            conn.execute_batch("BEGIN").map_err(&err)?;
            // `min_t >= ?4`: no chunk spans more than MAX_CHUNK_SPAN_MS, so
            // one ending at or after `mint` begins at or after `?4`; the
            // bound turns a scan of the series' whole history into a range
            // read of the primary key (an instant query read every chunk
            // row of every series before).
            let mut stmt = conn
                .prepare_cached(
                    "SELECT min_t, data FROM chunks
                     WHERE series_ref = ?1 AND min_t >= ?4 AND min_t <= ?3 AND max_t >= ?2
                     ORDER BY min_t",
                )
                .map_err(&err)?;
            let earliest_start = mint.saturating_sub(super::chunk::MAX_CHUNK_SPAN_MS);
            let mut out = Vec::with_capacity(requests.len());
            for &r in requests {
                let rows = stmt
                    .query_map(params![r as i64, mint, maxt, earliest_start], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
                    })
                    .map_err(&err)?;
                out.push(rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&err)?);
            }
            Ok(out)
        })();
        let _ = conn.execute_batch("COMMIT");
        self.idle.lock().push(conn);
        result
    }
}
