//! The silence store: Alertmanager 0.25's silences (silence/silence.go) —
//! matchers, a start and an end, who and why — plus bellwether's scheduled
//! silences, which mute only inside `time_intervals` windows.
//!
//! Semantics follow Alertmanager's `Silences`:
//!
//! - A silence is *pending* before `starts_at`, *active* until `ends_at`,
//!   then *expired*. A scheduled silence inside its range but outside every
//!   window is shown as pending (it mutes nothing until the next window).
//! - [`Silences::set`] edits a silence in place only when nothing it already
//!   silenced changes (same matchers and schedule; an active one keeps its
//!   start and does not end in the past; a pending one does not start in
//!   the past). Any other change expires the old silence and creates a new
//!   one with a new ID, whose start is moved to now if it lies in the past.
//!   An expired silence is never changed: "updating" it creates a new one.
//! - Expiring sets the end to now (and the start too, for a pending one).
//! - Expired silences stay visible for the retention (Alertmanager's
//!   `--data.retention`, 120h) after their end, then garbage collection
//!   removes them.
//!
//! Every change is written through to the `silences` table of the data
//! directory's `bellwether.db` before it is applied in memory, so silences
//! survive a restart or a SIGKILL; the table is read back at start.
//!
//! This module owns the silences and their table; it knows nothing of the
//! HTTP API (src/api/silences.rs) or of the dispatcher, which only sees the
//! [`Silencer`] trait.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::matchers::{anchored, MatchType};
use super::timeinterval::TimeInterval;
use super::types::{Fingerprint, Silencer};
use crate::model::{Labels, Timestamp};

/// Alertmanager's default `--data.retention`: how long an expired silence
/// is kept (and shown) after its end.
pub const DEFAULT_RETENTION_MS: i64 = 120 * 3600 * 1000;

/// How often expired silences past their retention are removed
/// (Alertmanager's default `--data.maintenance-interval`).
pub const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Most label sets whose matching silences are remembered between changes.
const MATCH_CACHE_LIMIT: usize = 65_536;

/// A silence's state at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

/// One matcher of a silence, as the API carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl SilenceMatcher {
    pub fn kind(&self) -> MatchType {
        match (self.is_equal, self.is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (false, true) => MatchType::NotRegexp,
        }
    }
}

/// The maintenance windows of a scheduled silence: the JSON as given (kept
/// to show it back) and the intervals it parses to.
#[derive(Clone, Debug)]
pub struct Schedule {
    spec: serde_json::Value,
    intervals: Vec<TimeInterval>,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.spec == other.spec
    }
}

impl Schedule {
    /// Parses a list of time intervals in alertmanager.yml's shape
    /// (`times`, `weekdays`, `days_of_month`, `months`, `years`,
    /// `location`). Days, months and years may be JSON numbers or strings.
    pub fn parse(spec: &serde_json::Value) -> Result<Schedule, String> {
        let mut spec = spec.clone();
        if let serde_json::Value::Array(items) = &mut spec {
            for item in items.iter_mut() {
                let serde_json::Value::Object(fields) = item else {
                    continue;
                };
                for key in ["days_of_month", "months", "years"] {
                    if let Some(serde_json::Value::Array(values)) = fields.get_mut(key) {
                        for value in values.iter_mut() {
                            if let serde_json::Value::Number(n) = value {
                                *value = serde_json::Value::String(n.to_string());
                            }
                        }
                    }
                }
            }
        }
        let intervals: Vec<TimeInterval> =
            serde_json::from_value(spec.clone()).map_err(|e| format!("timeIntervals: {e}"))?;
        Ok(Schedule { spec, intervals })
    }

    /// The windows as given (normalised: numbers written as strings).
    pub fn spec(&self) -> &serde_json::Value {
        &self.spec
    }

    /// Whether `now` (Unix ms) is inside a window. No windows: never.
    pub fn contains(&self, now: Timestamp) -> bool {
        let secs = now.div_euclid(1000);
        self.intervals.iter().any(|i| i.contains(secs))
    }
}

/// A silence.
#[derive(Clone, Debug)]
pub struct Silence {
    /// A UUID (version 4), lowercase.
    pub id: String,
    /// In the order given (Alertmanager keeps them so).
    pub matchers: Vec<SilenceMatcher>,
    /// Unix ms.
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub updated_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    /// Scheduled silence: mutes only inside these windows.
    pub schedule: Option<Schedule>,
}

impl Silence {
    /// Alertmanager's state from the start and end alone.
    pub fn range_state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// The state shown and used for muting: a scheduled silence in its
    /// range but outside every window is pending.
    pub fn state(&self, now: Timestamp) -> SilenceState {
        match (self.range_state(now), &self.schedule) {
            (SilenceState::Active, Some(schedule)) if !schedule.contains(now) => {
                SilenceState::Pending
            }
            (state, _) => state,
        }
    }
}

/// What a client asks [`Silences::set`] to store.
#[derive(Clone, Debug)]
pub struct SilenceInput {
    /// Empty: create. Otherwise the silence to update.
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    /// `None`: not given (an update keeps the previous schedule, so clients
    /// that do not know the field, such as amtool, do not drop it);
    /// `Some(None)`: no schedule.
    pub schedule: Option<Option<Schedule>>,
}

/// Why a change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SilenceError {
    /// No silence has this ID (Alertmanager: "silence not found").
    NotFound,
    /// The silence is invalid; the text is Alertmanager's reason.
    Invalid(String),
    /// The change could not be written to the database.
    Storage(String),
}

impl std::fmt::Display for SilenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SilenceError::NotFound => f.write_str("silence not found"),
            SilenceError::Invalid(reason) => write!(f, "silence invalid: {reason}"),
            SilenceError::Storage(e) => write!(f, "writing the silence: {e}"),
        }
    }
}

/// A stored silence with its compiled matchers.
#[derive(Debug)]
struct Entry {
    silence: Silence,
    compiled: Vec<super::matchers::Matcher>,
}

impl Entry {
    fn matches(&self, labels: &Labels) -> bool {
        self.compiled
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
    }
}

/// Remembers, per label set, which silences match it; valid while the
/// store's version is unchanged (silences' matchers never change in place,
/// so only additions and removals invalidate it).
#[derive(Default)]
struct MatchCache {
    version: u64,
    by_fingerprint: HashMap<Fingerprint, Vec<Arc<Entry>>>,
}

/// The store's counters.
#[derive(Clone, Default)]
struct SilenceMetrics {
    queries: Counter,
    gc_removed: Counter,
    write_errors: Counter,
}

/// The silence store (see the module docs). Share it as
/// `Arc<Silences>`; it is the dispatcher's [`Silencer`].
pub struct Silences {
    by_id: RwLock<HashMap<String, Arc<Entry>>>,
    /// Bumped on every addition or removal.
    version: AtomicU64,
    cache: Mutex<MatchCache>,
    db: Mutex<Connection>,
    retention_ms: i64,
    metrics: SilenceMetrics,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS silences (
     id TEXT PRIMARY KEY,
     body TEXT NOT NULL,
     expires_at INTEGER NOT NULL
 );";

/// A silence as one row's `body` (JSON).
#[derive(Serialize, Deserialize)]
struct Row {
    matchers: Vec<SilenceMatcher>,
    starts_at: Timestamp,
    ends_at: Timestamp,
    updated_at: Timestamp,
    created_by: String,
    comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_intervals: Option<serde_json::Value>,
}

impl Silences {
    /// Opens (creating if needed) the `silences` table of
    /// `data_dir/bellwether.db` and loads the silences still within their
    /// retention at `now`.
    pub fn open(data_dir: &Path, retention_ms: i64, now: Timestamp) -> Result<Silences, String> {
        let path = data_dir.join("bellwether.db");
        let err = |e: rusqlite::Error| format!("silences in {}: {e}", path.display());
        let conn = Connection::open(&path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        // FULL: an acknowledged silence survives a power loss too (writes are rare).
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(err)?;
        Silences::with_connection(conn, retention_ms, now)
            .map_err(|e| format!("silences in {}: {e}", path.display()))
    }

    /// A store in memory only (tests).
    pub fn in_memory(retention_ms: i64) -> Silences {
        let conn = Connection::open_in_memory().expect("an in-memory SQLite database opens");
        Silences::with_connection(conn, retention_ms, 0).expect("an empty in-memory table loads")
    }

    fn with_connection(
        conn: Connection,
        retention_ms: i64,
        now: Timestamp,
    ) -> Result<Silences, String> {
        conn.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
        conn.execute("DELETE FROM silences WHERE expires_at <= ?1", [now])
            .map_err(|e| e.to_string())?;
        let mut by_id = HashMap::new();
        {
            let mut stmt = conn
                .prepare("SELECT id, body FROM silences")
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(|e| e.to_string())?;
            for row in rows {
                let (id, body) = row.map_err(|e| e.to_string())?;
                // A row that does not decode (damaged, or from a later
                // version) is skipped with a warning rather than refusing
                // to start.
                match decode_row(&id, &body) {
                    Ok(entry) => {
                        by_id.insert(id, Arc::new(entry));
                    }
                    Err(e) => {
                        tracing::warn!(silence = %id, error = %e, "skipping a stored silence that does not decode")
                    }
                }
            }
        }
        Ok(Silences {
            by_id: RwLock::new(by_id),
            version: AtomicU64::new(1),
            cache: Mutex::new(MatchCache::default()),
            db: Mutex::new(conn),
            retention_ms,
            metrics: SilenceMetrics::default(),
        })
    }

    /// Registers `bellwether_silences{state}` and the store's counters.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "bellwether_silences_queries",
            "Silence lookups for alerts (calls of the dispatcher's silencer)",
            self.metrics.queries.clone(),
        );
        registry.register(
            "bellwether_silences_gc_removed",
            "Expired silences removed after their retention",
            self.metrics.gc_removed.clone(),
        );
        registry.register(
            "bellwether_silences_write_errors",
            "Silence changes refused because they could not be written to the database",
            self.metrics.write_errors.clone(),
        );
        registry.register_collector(Box::new(StateCollector(Arc::downgrade(self))));
    }

    /// Creates or updates a silence with Alertmanager's rules (module docs);
    /// returns its ID, which is new unless the silence was edited in place.
    pub fn set(&self, input: SilenceInput, now: Timestamp) -> Result<String, SilenceError> {
        let mut by_id = self.by_id.write();
        let prev = if input.id.is_empty() {
            None
        } else {
            Some(
                by_id
                    .get(&input.id)
                    .cloned()
                    .ok_or(SilenceError::NotFound)?,
            )
        };
        let schedule = match input.schedule {
            Some(schedule) => schedule,
            None => prev.as_ref().and_then(|p| p.silence.schedule.clone()),
        };
        let mut silence = Silence {
            id: String::new(),
            matchers: input.matchers,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            updated_at: now,
            created_by: input.created_by,
            comment: input.comment,
            schedule,
        };
        let mut writes = Vec::new();
        match &prev {
            Some(prev) if can_update(&prev.silence, &silence, now) => {
                silence.id = prev.silence.id.clone();
            }
            _ => {
                silence.id = new_uuid().map_err(SilenceError::Storage)?;
                silence.starts_at = silence.starts_at.max(now);
            }
        }
        // Checked before anything changes: a refused update leaves the old
        // silence as it was (Alertmanager expires it first).
        let compiled = validate(&silence).map_err(SilenceError::Invalid)?;
        if let Some(prev) = &prev {
            if prev.silence.id != silence.id
                && prev.silence.range_state(now) != SilenceState::Expired
            {
                writes.push(expired(prev, now));
            }
        }
        let id = silence.id.clone();
        writes.push(Entry { silence, compiled });
        self.write(&mut by_id, writes)?;
        Ok(id)
    }

    /// Expires a silence now; an expired one is left as it is.
    pub fn expire(&self, id: &str, now: Timestamp) -> Result<(), SilenceError> {
        let mut by_id = self.by_id.write();
        let entry = by_id.get(id).cloned().ok_or(SilenceError::NotFound)?;
        if entry.silence.range_state(now) == SilenceState::Expired {
            return Ok(());
        }
        let update = expired(&entry, now);
        self.write(&mut by_id, vec![update])
    }

    /// Writes entries through to the database, then to memory.
    fn write(
        &self,
        by_id: &mut HashMap<String, Arc<Entry>>,
        entries: Vec<Entry>,
    ) -> Result<(), SilenceError> {
        let result = (|| -> Result<(), String> {
            let mut db = self.db.lock();
            let tx = db.transaction().map_err(|e| e.to_string())?;
            for entry in &entries {
                let s = &entry.silence;
                let body = serde_json::to_string(&Row {
                    matchers: s.matchers.clone(),
                    starts_at: s.starts_at,
                    ends_at: s.ends_at,
                    updated_at: s.updated_at,
                    created_by: s.created_by.clone(),
                    comment: s.comment.clone(),
                    time_intervals: s.schedule.as_ref().map(|sc| sc.spec.clone()),
                })
                .map_err(|e| e.to_string())?;
                tx.execute(
                    "INSERT INTO silences (id, body, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
                    params![s.id, body, s.ends_at.saturating_add(self.retention_ms)],
                )
                .map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })();
        if let Err(e) = result {
            self.metrics.write_errors.inc();
            tracing::error!(error = %e, "a silence change could not be written to the database; refused");
            return Err(SilenceError::Storage(e));
        }
        for entry in entries {
            by_id.insert(entry.silence.id.clone(), Arc::new(entry));
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// One silence by ID.
    pub fn get(&self, id: &str) -> Option<Silence> {
        self.by_id.read().get(id).map(|e| e.silence.clone())
    }

    /// Every silence (in no particular order).
    pub fn list(&self) -> Vec<Silence> {
        self.by_id
            .read()
            .values()
            .map(|e| e.silence.clone())
            .collect()
    }

    /// How many silences are in each state at `now`: (active, pending, expired).
    pub fn count_states(&self, now: Timestamp) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for entry in self.by_id.read().values() {
            match entry.silence.state(now) {
                SilenceState::Active => counts.0 += 1,
                SilenceState::Pending => counts.1 += 1,
                SilenceState::Expired => counts.2 += 1,
            }
        }
        counts
    }

    /// Removes the silences whose retention ended by `now`; returns how many.
    pub fn gc(&self, now: Timestamp) -> Result<usize, String> {
        let mut by_id = self.by_id.write();
        let doomed: Vec<String> = by_id
            .values()
            .filter(|e| e.silence.ends_at.saturating_add(self.retention_ms) <= now)
            .map(|e| e.silence.id.clone())
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        self.db
            .lock()
            .execute("DELETE FROM silences WHERE expires_at <= ?1", [now])
            .map_err(|e| format!("removing expired silences: {e}"))?;
        for id in &doomed {
            by_id.remove(id);
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        self.metrics.gc_removed.inc_by(doomed.len() as u64);
        Ok(doomed.len())
    }

    /// Runs [`Silences::gc`] every [`MAINTENANCE_INTERVAL`] until the task
    /// is dropped.
    pub async fn run_maintenance(self: Arc<Self>) {
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = self.clone();
            let outcome =
                tokio::task::spawn_blocking(move || store.gc(crate::model::now_millis())).await;
            match outcome {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::debug!(removed = n, "expired silences removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "silence garbage collection failed"),
                Err(e) => tracing::warn!(error = %e, "silence garbage collection panicked"),
            }
        }
    }

    /// The silences matching `labels` in any state, from the cache.
    fn matching(&self, labels: &Labels) -> Vec<Arc<Entry>> {
        let fingerprint = Fingerprint::of(labels);
        let version = self.version.load(Ordering::Acquire);
        {
            let mut cache = self.cache.lock();
            if cache.version != version {
                cache.by_fingerprint.clear();
                cache.version = version;
            } else if let Some(hit) = cache.by_fingerprint.get(&fingerprint) {
                return hit.clone();
            }
        }
        let found: Vec<Arc<Entry>> = self
            .by_id
            .read()
            .values()
            .filter(|e| e.matches(labels))
            .cloned()
            .collect();
        let mut cache = self.cache.lock();
        if cache.version == version {
            if cache.by_fingerprint.len() >= MATCH_CACHE_LIMIT {
                cache.by_fingerprint.clear();
            }
            cache.by_fingerprint.insert(fingerprint, found.clone());
        }
        found
    }
}

impl Silencer for Silences {
    fn silenced_by(&self, labels: &Labels, now: Timestamp) -> Vec<String> {
        self.metrics.queries.inc();
        let mut ids: Vec<String> = self
            .matching(labels)
            .iter()
            .filter(|e| e.silence.state(now) == SilenceState::Active)
            .map(|e| e.silence.id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Alertmanager's `canUpdate`: whether `new` may replace `old` in place.
fn can_update(old: &Silence, new: &Silence, now: Timestamp) -> bool {
    if old.matchers != new.matchers || old.schedule != new.schedule {
        return false;
    }
    match old.range_state(now) {
        // Compared in whole seconds, as Alertmanager does.
        SilenceState::Active => {
            new.starts_at.div_euclid(1000) == old.starts_at.div_euclid(1000) && new.ends_at >= now
        }
        SilenceState::Pending => new.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// The entry expired at `now` (same matchers, already compiled).
fn expired(entry: &Entry, now: Timestamp) -> Entry {
    let mut s = entry.silence.clone();
    if s.range_state(now) == SilenceState::Pending {
        s.starts_at = now;
    }
    s.ends_at = now;
    s.updated_at = now;
    Entry {
        silence: s,
        compiled: entry.compiled.clone(),
    }
}

fn compile(matchers: &[SilenceMatcher]) -> Result<Vec<super::matchers::Matcher>, String> {
    matchers
        .iter()
        .map(|m| super::matchers::Matcher::new(m.kind(), &m.name, &m.value))
        .collect()
}

/// Alertmanager's `validateSilence`, with its messages; returns the
/// compiled matchers.
pub fn validate(silence: &Silence) -> Result<Vec<super::matchers::Matcher>, String> {
    if silence.matchers.is_empty() {
        return Err("at least one matcher required".into());
    }
    let mut all_match_empty = true;
    for (i, m) in silence.matchers.iter().enumerate() {
        validate_matcher(m).map_err(|e| format!("invalid label matcher {i}: {e}"))?;
        all_match_empty &= match m.kind() {
            MatchType::Equal => m.value.is_empty(),
            MatchType::Regexp => anchored(&m.value).is_ok_and(|re| re.is_match("")),
            _ => false,
        };
    }
    if all_match_empty {
        return Err("at least one matcher must not match the empty string".into());
    }
    if silence.ends_at < silence.starts_at {
        return Err("end time must not be before start time".into());
    }
    compile(&silence.matchers)
}

fn validate_matcher(m: &SilenceMatcher) -> Result<(), String> {
    let mut chars = m.name.chars();
    let valid_name = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "invalid label name {}",
            crate::api::prometheus::go_quote(&m.name)
        ));
    }
    if m.is_regex {
        // Unanchored, as Alertmanager checks it (`a)|(b` compiles anchored
        // as `^(?:a)|(b)$` but is not a regular expression on its own).
        regex::Regex::new(&m.value).map_err(|e| {
            format!(
                "invalid regular expression {}: {}",
                crate::api::prometheus::go_quote(&m.value),
                regex_error_line(&e)
            )
        })?;
        anchored(&m.value)?;
    }
    Ok(())
}

/// The last line of a regex error (the crate's errors span several lines).
fn regex_error_line(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("syntax error")
            .trim()
            .trim_start_matches("error: ")
            .to_string(),
        other => other.to_string(),
    }
}

fn decode_row(id: &str, body: &str) -> Result<Entry, String> {
    let row: Row = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let schedule = row
        .time_intervals
        .as_ref()
        .map(Schedule::parse)
        .transpose()?;
    let silence = Silence {
        id: id.to_string(),
        matchers: row.matchers,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        updated_at: row.updated_at,
        created_by: row.created_by,
        comment: row.comment,
        schedule,
    };
    let compiled = compile(&silence.matchers)?;
    Ok(Entry { silence, compiled })
}

/// A random (version 4) UUID from the kernel's random source.
fn new_uuid() -> Result<String, String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("generating a silence ID from /dev/urandom: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// `bellwether_silences{state}`, counted at each scrape.
#[derive(Debug)]
struct StateCollector(Weak<Silences>);

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.0.upgrade() else {
            return Ok(());
        };
        let (active, pending, expired) = store.count_states(crate::model::now_millis());
        let mut family = encoder.encode_descriptor(
            "bellwether_silences",
            "Silences by state.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (state, count) in [
            ("active", active),
            ("expired", expired),
            ("pending", pending),
        ] {
            let labels = [("state", state)];
            let gauge = ConstGauge::new(count as i64);
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Silences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silences")
            .field("silences", &self.by_id.read().len())
            .finish()
    }
}

#[cfg(test)]
#[path = "silences_tests.rs"]
mod tests;
