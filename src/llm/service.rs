//! The running LLM usage service: prices accepted records, adds them to the
//! counters and queues their ledger rows (one lock per request, no I/O), and
//! a writer thread that every `llm.flush_interval` writes the queued rows and
//! the counters to `llm.db` in one transaction, and every `llm.interval`
//! appends the counters to the store as samples.
//!
//! The samples appended are always counters that were saved first, so a
//! crash never makes a counter go backwards in the store: after a restart the
//! counters continue from the saved values. (A crash loses the usage accepted
//! in the last flush interval, from both the counters and the ledger.)

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::model::{Labels, Timestamp};
use crate::storage::Storage;

use super::budget::{BudgetConfig, Budgets, Spend};
use super::config::LlmConfig;
use super::counters::{Bounds, Counters, UsageKey};
use super::ledger::{GroupBy, Ledger, LedgerRow};
use super::pricing::{femto_to_micro, usd_to_femto, PriceTable, Tokens};
use super::record::{Event, RecordError, UsageRecord};

/// Most ledger rows waiting for the writer; past it, `POST /api/v1/usage`
/// answers 503 until the writer catches up.
pub const MAX_PENDING_ROWS: usize = 1_000_000;
/// Most sessions tracked as open at once; further new sessions are not counted.
pub const MAX_SESSIONS: usize = 100_000;
/// How often old ledger rows are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    endpoint: &'static str,
    outcome: &'static str,
}

/// The service's own counters (in `/metrics`).
#[derive(Clone, Default)]
pub struct LlmMetrics {
    records: Family<OutcomeLabel, Counter>,
    events: Family<OutcomeLabel, Counter>,
    requests: Family<RequestLabel, Counter>,
    ledger_rows_written: Counter,
    ledger_write_errors: Counter,
    pending_rows: Gauge,
}

impl LlmMetrics {
    fn register(&self, registry: &mut Registry) {
        for outcome in ["accepted", "refused"] {
            let _ = self.records.get_or_create(&OutcomeLabel { outcome });
            let _ = self.events.get_or_create(&OutcomeLabel { outcome });
        }
        registry.register(
            "bellwether_llm_usage_records",
            "Usage records received on POST /api/v1/usage, by outcome (accepted, refused)",
            self.records.clone(),
        );
        registry.register(
            "bellwether_llm_events",
            "Events received on POST /api/v1/events, by outcome (accepted, refused)",
            self.events.clone(),
        );
        registry.register(
            "bellwether_llm_api_requests",
            "Requests to the usage and events endpoints, by endpoint and outcome (success, partial, refused, malformed, unauthorized, overloaded)",
            self.requests.clone(),
        );
        registry.register(
            "bellwether_llm_ledger_rows_written",
            "Rows written to the usage ledger",
            self.ledger_rows_written.clone(),
        );
        registry.register(
            "bellwether_llm_ledger_write_errors",
            "Failed ledger writes (the rows are kept and retried)",
            self.ledger_write_errors.clone(),
        );
        registry.register(
            "bellwether_llm_ledger_pending_rows",
            "Accepted usage rows waiting for the ledger writer",
            self.pending_rows.clone(),
        );
    }

    pub fn record_outcomes(&self, accepted: usize, refused: usize) {
        self.records
            .get_or_create(&OutcomeLabel {
                outcome: "accepted",
            })
            .inc_by(accepted as u64);
        self.records
            .get_or_create(&OutcomeLabel { outcome: "refused" })
            .inc_by(refused as u64);
    }

    pub fn event_outcomes(&self, accepted: usize, refused: usize) {
        self.events
            .get_or_create(&OutcomeLabel {
                outcome: "accepted",
            })
            .inc_by(accepted as u64);
        self.events
            .get_or_create(&OutcomeLabel { outcome: "refused" })
            .inc_by(refused as u64);
    }

    pub fn request(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabel { endpoint, outcome })
            .inc();
    }
}

/// Settings that a reload changes.
#[derive(Clone, Debug)]
struct Settings {
    interval: Duration,
    flush_interval: Duration,
    retention_ms: i64,
    session_timeout_ms: i64,
    user_floor: u64,
    org_floor: u64,
    max_subjects: usize,
    budgets: Vec<BudgetConfig>,
}

impl Settings {
    fn from(config: &LlmConfig) -> Settings {
        Settings {
            interval: config.interval.as_duration(),
            flush_interval: config.flush_interval.as_duration(),
            retention_ms: config.ledger_retention.as_millis(),
            session_timeout_ms: config.session_timeout.as_millis(),
            user_floor: config.rate_limit_user_floor,
            org_floor: config.rate_limit_org_floor,
            max_subjects: config.rate_limit_max_subjects,
            budgets: config.budgets.clone(),
        }
    }
}

struct State {
    counters: Counters,
    bounds: Bounds,
    pending: Vec<LedgerRow>,
    /// Counters changed since they were last saved.
    dirty: bool,
    pricing: Arc<PriceTable>,
    /// (canonical provider → model → entry index): lookups are cached, since
    /// prefix and regex rules would otherwise be tried on every record.
    memo: HashMap<String, HashMap<String, Option<usize>>>,
}

/// Most (provider, model) pairs remembered before the memo is cleared.
const MEMO_MAX: usize = 10_000;

struct Inner {
    storage: Storage,
    ledger: Ledger,
    state: Mutex<State>,
    settings: RwLock<Settings>,
    metrics: LlmMetrics,
    /// `job` and `instance` of every series.
    base_labels: Vec<(String, String)>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// The budgets and their spend; `None` until built from the ledger by
    /// the writer (`budget.rs`).
    budgets: Mutex<Option<Budgets>>,
    /// Budget series appended last, to mark those of removed budgets stale.
    budget_exported: Mutex<HashSet<Labels>>,
}

/// Why accepted usage could not be queued.
#[derive(Debug, thiserror::Error)]
#[error("the usage ledger writer is {0} rows behind; retry later")]
pub struct Overloaded(pub usize);

pub struct UsageService {
    inner: Arc<Inner>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl UsageService {
    /// Opens the ledger in `data_dir`, restores the saved counters and starts
    /// the writer thread. `instance` is the `instance` label of the series.
    pub fn start(
        storage: Storage,
        data_dir: &Path,
        config: &LlmConfig,
        instance: &str,
        registry: &mut Registry,
    ) -> Result<UsageService, String> {
        let ledger = Ledger::open(data_dir)?;
        let mut bounds = Bounds::new(config.max_orgs, config.max_teams, config.max_label_values);
        let counters = match ledger.load_counters()? {
            None => Counters::default(),
            Some(text) => Counters::from_json(&text, &mut bounds).unwrap_or_else(|e| {
                // Counters saved by a future version, or damaged: start from 0
                // (rate() and increase() treat it as a counter reset).
                tracing::warn!(error = %e, "the saved LLM usage counters do not decode; they start from 0");
                Counters::default()
            }),
        };
        let metrics = LlmMetrics::default();
        metrics.register(registry);
        let inner = Arc::new(Inner {
            storage,
            ledger,
            state: Mutex::new(State {
                counters,
                bounds,
                pending: Vec::new(),
                dirty: false,
                pricing: config.price_table(),
                memo: HashMap::new(),
            }),
            settings: RwLock::new(Settings::from(config)),
            metrics,
            base_labels: vec![
                ("job".to_string(), "bellwether".to_string()),
                ("instance".to_string(), instance.to_string()),
            ],
            stop: Mutex::new(false),
            wake: Condvar::new(),
            budgets: Mutex::new(None),
            budget_exported: Mutex::new(HashSet::new()),
        });
        let thread_inner = inner.clone();
        let writer = std::thread::Builder::new()
            .name("llm-writer".into())
            .spawn(move || thread_inner.run_writer())
            .map_err(|e| format!("starting the LLM ledger writer: {e}"))?;
        Ok(UsageService {
            inner,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Applies a reloaded config: pricing, label bounds, intervals.
    pub fn apply_config(&self, config: &LlmConfig) {
        *self.inner.settings.write() = Settings::from(config);
        let mut state = self.inner.state.lock();
        state.pricing = config.price_table();
        state.memo.clear();
        state
            .bounds
            .set_limits(config.max_orgs, config.max_teams, config.max_label_values);
    }

    pub fn metrics(&self) -> &LlmMetrics {
        &self.inner.metrics
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// Ledger retention in milliseconds (the longest window worth querying).
    pub fn retention_ms(&self) -> i64 {
        self.inner.settings.read().retention_ms
    }

    /// Prices and counts accepted records; records whose counts are
    /// inconsistent once normalised from the provider's convention are
    /// refused into `errors`. Returns how many were accepted.
    pub fn ingest_usage(
        &self,
        records: Vec<(usize, UsageRecord)>,
        now: Timestamp,
        errors: &mut Vec<RecordError>,
    ) -> Result<usize, Overloaded> {
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        if state.pending.len() >= MAX_PENDING_ROWS {
            return Err(Overloaded(state.pending.len()));
        }
        let mut accepted = 0;
        state.pending.reserve(records.len());
        for (index, r) in records {
            let provider = state.pricing.canonical_provider(&r.provider);
            let mut tokens = Tokens {
                input: r.input_tokens,
                output: r.output_tokens,
                cache_read: r.cache_read_tokens,
                cache_write: r.cache_write_tokens,
                cache_write_1h: r.cache_write_1h_tokens,
                reasoning: r.reasoning_tokens,
            };
            if r.provider_counting {
                tokens = tokens.from_provider_convention(state.pricing.cache_in_input(&provider));
                if tokens.cache_read.saturating_add(tokens.cache_write) > tokens.input {
                    errors.push(RecordError {
                        index,
                        field: "cache_read_tokens".into(),
                        error: format!(
                            "cache_read_tokens + cache_write_tokens ({}) exceed input_tokens ({}), and provider {provider:?} counts cached tokens inside input",
                            tokens.cache_read.saturating_add(tokens.cache_write),
                            tokens.input
                        ),
                    });
                    continue;
                }
            }
            let t = r.timestamp.unwrap_or(now);
            let reported = r.cost_usd.and_then(usd_to_femto);
            let femto = match reported {
                Some(f) => Some(f),
                None => {
                    let entry = lookup(state, &provider, &r.model);
                    entry
                        .and_then(|i| state.pricing.models[i].price_at(t))
                        .map(|price| price.rates_for(tokens.input).cost(&tokens))
                }
            };
            let status = r.status.clone().unwrap_or_else(|| "ok".to_string());
            let bounds = &mut state.bounds;
            let key = UsageKey {
                provider: bounds.provider.admit(&provider),
                model: bounds.model.admit(&r.model),
                org: bounds.org.admit(r.org.as_deref().unwrap_or("")),
                team: bounds.team.admit(r.team.as_deref().unwrap_or("")),
                status: bounds.status.admit(&status),
            };
            state.counters.add_request(
                key,
                [
                    tokens.input,
                    tokens.output,
                    tokens.cache_read,
                    tokens.cache_write,
                    tokens.reasoning,
                ],
                femto,
                r.duration_seconds,
            );
            if let Some(session) = &r.session {
                touch_session(&mut state.counters, session, now);
            }
            state.pending.push(LedgerRow {
                t,
                provider,
                model: r.model,
                input_tokens: tokens.input,
                output_tokens: tokens.output,
                cache_read_tokens: tokens.cache_read,
                cache_write_tokens: tokens.cache_write,
                reasoning_tokens: tokens.reasoning,
                cost_micro_usd: femto.map(femto_to_micro),
                cost_reported: reported.is_some(),
                duration_seconds: r.duration_seconds,
                status,
                user: r.user,
                org: r.org,
                team: r.team,
                agent: r.agent,
                workflow: r.workflow,
                session: r.session,
            });
            accepted += 1;
        }
        state.dirty |= accepted > 0;
        self.inner
            .metrics
            .pending_rows
            .set(state.pending.len() as i64);
        Ok(accepted)
    }

    /// Counts accepted events.
    pub fn ingest_events(&self, events: Vec<(usize, Event)>, now: Timestamp) {
        let mut guard = self.inner.state.lock();
        let state = &mut *guard;
        for (_, event) in events {
            match event {
                Event::AgentInvocation { agent, status } => {
                    let key = (
                        state.bounds.agent.admit(&agent),
                        state.bounds.status.admit(&status),
                    );
                    *state.counters.agents.entry(key).or_insert(0) += 1;
                }
                Event::WorkflowCompletion { workflow, status } => {
                    let key = (
                        state.bounds.workflow.admit(&workflow),
                        state.bounds.status.admit(&status),
                    );
                    *state.counters.workflows.entry(key).or_insert(0) += 1;
                }
                Event::SessionStart { session } => {
                    touch_session(&mut state.counters, &session, now)
                }
                Event::SessionEnd { session } => {
                    state.counters.sessions.remove(&session);
                }
            }
        }
        state.dirty = true;
    }

    /// Writes what is queued, appends the counters to the store one last
    /// time and stops the writer thread.
    pub fn shutdown(&self) {
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!("the LLM ledger writer panicked");
            }
        }
    }

    /// Runs one writer step now (tests and benchmarks): writes the queue and
    /// appends the counters to the store.
    pub fn flush_now(&self) {
        self.inner
            .step(crate::model::now_millis(), true, &mut HashSet::new());
    }
}

impl Drop for UsageService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lookup(state: &mut State, provider: &str, model: &str) -> Option<usize> {
    if let Some(hit) = state.memo.get(provider).and_then(|m| m.get(model)) {
        return *hit;
    }
    let found = state.pricing.lookup_index(provider, model);
    if state.memo.values().map(HashMap::len).sum::<usize>() >= MEMO_MAX {
        state.memo.clear();
    }
    state
        .memo
        .entry(provider.to_string())
        .or_default()
        .insert(model.to_string(), found);
    found
}

fn touch_session(counters: &mut Counters, session: &str, now: Timestamp) {
    if let Some(last) = counters.sessions.get_mut(session) {
        *last = now;
    } else if counters.sessions.len() < MAX_SESSIONS {
        counters.sessions.insert(session.to_string(), now);
    }
}

impl Inner {
    fn run_writer(self: Arc<Self>) {
        let mut last_append = Instant::now();
        let mut last_retention: Option<Instant> = None;
        let mut rate_exported: HashSet<Labels> = HashSet::new();
        loop {
            let (flush_interval, interval, retention_ms) = {
                let s = self.settings.read();
                (s.flush_interval, s.interval, s.retention_ms)
            };
            let stopping = {
                let mut stop = self.stop.lock();
                if !*stop {
                    self.wake.wait_for(&mut stop, flush_interval);
                }
                *stop
            };
            let now = crate::model::now_millis();
            let append = stopping || last_append.elapsed() >= interval;
            if self.step(now, append, &mut rate_exported) && append {
                last_append = Instant::now();
            }
            if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
                last_retention = Some(Instant::now());
                // Rows a budget's current period still needs are kept.
                let needed = self
                    .budgets
                    .lock()
                    .as_ref()
                    .and_then(|b| b.oldest_needed(now));
                let cutoff = needed.map_or(now - retention_ms, |n| n.min(now - retention_ms));
                match self.ledger.delete_before(cutoff) {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(rows = n, "deleted LLM ledger rows past retention"),
                    Err(e) => tracing::warn!(error = %e, "deleting old LLM ledger rows failed"),
                }
            }
            if stopping {
                return;
            }
        }
    }

    /// Saves the queue and the counters; with `append`, then appends the
    /// saved counters to the store. Returns false if the save failed.
    fn step(&self, now: Timestamp, append: bool, rate_exported: &mut HashSet<Labels>) -> bool {
        let session_timeout = self.settings.read().session_timeout_ms;
        let (rows, counters_json, samples) = {
            let mut state = self.state.lock();
            let open = state.counters.sessions.len();
            state.counters.expire_sessions(now - session_timeout);
            if state.counters.sessions.len() != open {
                state.dirty = true;
            }
            let rows = std::mem::take(&mut state.pending);
            let json = state.dirty.then(|| state.counters.to_json());
            state.dirty = false;
            let base: Vec<(&str, &str)> = self
                .base_labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let samples = append.then(|| state.counters.samples(&base));
            self.metrics.pending_rows.set(0);
            (rows, json, samples)
        };
        if !rows.is_empty() || counters_json.is_some() {
            if let Err(e) = self.ledger.write(&rows, counters_json.as_deref()) {
                tracing::error!(error = %e, rows = rows.len(), "writing the LLM usage ledger failed; retrying");
                self.metrics.ledger_write_errors.inc();
                let mut state = self.state.lock();
                let newer = std::mem::replace(&mut state.pending, rows);
                state.pending.extend(newer);
                state.dirty = true;
                return false;
            }
            self.metrics.ledger_rows_written.inc_by(rows.len() as u64);
        }
        self.update_budgets(now, &rows);
        let Some(mut samples) = samples else {
            return true;
        };
        samples.extend(self.rate_limit_samples(now, rate_exported));
        samples.extend(self.budget_samples(now));
        let mut appender = self.storage.appender();
        for (labels, value) in samples {
            appender.add(labels, now, value);
        }
        if let Err(e) = appender.commit() {
            tracing::error!(error = %e, "appending the LLM usage series to the store failed");
        }
        true
    }

    /// Adds the rows just saved to the budgets, or (re)builds the budgets from
    /// the ledger when they are not built yet or a reload changed them (the
    /// ledger then already holds `rows`).
    fn update_budgets(&self, now: Timestamp, rows: &[LedgerRow]) {
        let configs = self.settings.read().budgets.clone();
        let mut guard = self.budgets.lock();
        match guard.as_mut() {
            Some(budgets) if budgets.configs() == configs.as_slice() => {
                for r in rows {
                    budgets.add(Spend {
                        t: r.t,
                        org: r.org.as_deref(),
                        team: r.team.as_deref(),
                        user: r.user.as_deref(),
                        micro_usd: r.cost_micro_usd.unwrap_or(0),
                    });
                }
                budgets.prune(now);
            }
            _ => match Budgets::from_ledger(&configs, &self.ledger, now) {
                Ok(budgets) => *guard = Some(budgets),
                // Not built: tried again at the next step.
                Err(e) => {
                    tracing::error!(error = %e, "reading the LLM ledger for the budgets failed")
                }
            },
        }
    }

    /// The budget gauges (`budget.rs`), and staleness markers for the series
    /// of budgets removed since the last append.
    fn budget_samples(&self, now: Timestamp) -> Vec<(Labels, f64)> {
        let values = match self.budgets.lock().as_ref() {
            Some(b) => b.evaluate(now),
            None => return Vec::new(),
        };
        let mut samples = super::budget::samples(&values, &self.base_labels);
        let current: HashSet<Labels> = samples.iter().map(|(l, _)| l.clone()).collect();
        let mut exported = self.budget_exported.lock();
        for gone in exported.difference(&current) {
            samples.push((gone.clone(), crate::model::stale_nan()));
        }
        *exported = current;
        samples
    }

    /// `llm_rate_limit_requests{scope, subject, window="1h"}` for the subjects
    /// at or over the export floor, and staleness markers for those that
    /// dropped below it since the last append.
    fn rate_limit_samples(
        &self,
        now: Timestamp,
        exported: &mut HashSet<Labels>,
    ) -> Vec<(Labels, f64)> {
        let s = self.settings.read().clone();
        let mut samples = Vec::new();
        let mut current = HashSet::new();
        for (scope, by, floor) in [
            ("user", GroupBy::User, s.user_floor),
            ("org", GroupBy::Org, s.org_floor),
        ] {
            let counts =
                match self
                    .ledger
                    .request_counts(by, now - 3_600_000, floor.max(1), s.max_subjects)
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "counting requests per {scope} failed");
                        continue;
                    }
                };
            for (subject, n) in counts {
                let labels = Labels::new(
                    self.base_labels
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .chain([
                            (
                                "__name__".to_string(),
                                "llm_rate_limit_requests".to_string(),
                            ),
                            ("scope".to_string(), scope.to_string()),
                            ("subject".to_string(), subject),
                            ("window".to_string(), "1h".to_string()),
                        ]),
                );
                current.insert(labels.clone());
                samples.push((labels, n as f64));
            }
        }
        for gone in exported.difference(&current) {
            samples.push((gone.clone(), crate::model::stale_nan()));
        }
        *exported = current;
        samples
    }
}
