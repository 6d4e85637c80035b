//! The scrape loop of one target: fetch, parse, label, limit, append, report,
//! and the staleness bookkeeping, following Prometheus 2.42's
//! `scrape/scrape.go` (`scrapeAndReport`, `append`, `report`,
//! `endOfRunStaleness`).
//!
//! This file owns one target's HTTP scrape, its series cache and staleness
//! state ([`LoopState`]), and the task that runs it on a timer. It must not
//! decide which targets exist (that is [`super::ScrapeManager`]'s job) and it
//! reaches the store only through one `Appender` commit per scrape.
//!
//! Staleness, as Prometheus: the loop remembers the series (labels after
//! relabeling) it wrote without an explicit timestamp in its last scrape.
//! After a successful scrape, each remembered series absent from it gets a
//! stale NaN at the new scrape's timestamp; after a failed scrape (HTTP error,
//! parse error, a limit) every remembered series does, and nothing scraped is
//! kept. The report series (`up`, ...) are written either way, in the same
//! commit. When the target goes away, the loop waits until the next scrape
//! would have happened, plus one more interval and 10 % (so a recreated loop
//! can take over), then writes stale NaNs for all its series and its report
//! series at the time of that first missed scrape.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};

use super::metrics::{job_labels, job_reason_labels, ScrapeMetrics};
use super::parse::{Entry, Format, MetricType, ParseError, Parser};
use super::relabel;
use super::target::{JobSettings, Limits, Target};
use crate::config::{BasicAuth, ScrapeConfig};
use crate::model::{
    is_valid_label_name, is_valid_metric_name, now_millis, stale_nan, Label, Labels, Timestamp,
    METRIC_NAME,
};
use crate::storage::{SeriesRef, Storage};

/// The `Accept` header Prometheus 2.42 sends.
pub const ACCEPT_HEADER: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Samples more than this far in the future are refused (Prometheus's `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// Report series written for every scrape.
pub const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Why a scrape failed (reported as up = 0).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScrapeError {
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },
    #[error(
        "GET {url}: timed out after {timeout:?} (raise scrape_timeout or make the target faster)"
    )]
    Timeout { url: String, timeout: Duration },
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded: the body is larger than body_size_limit ({0} bytes)")]
    BodySizeLimit(u64),
    #[error("parsing the scrape body ({format:?}): {error}")]
    Parse { format: Format, error: ParseError },
    #[error("sample_limit exceeded: {count} samples after metric relabeling, limit {limit}")]
    SampleLimit { count: u64, limit: u64 },
    #[error("{0}")]
    LabelLimit(String),
    #[error("{0}")]
    InvalidSeries(String),
    #[error("reading {what} from {path}: {message}")]
    CredentialsFile {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("{0}")]
    Forced(String),
    #[error("{0}")]
    Local(String),
}

impl ScrapeError {
    /// The `reason` label of `bellwether_scrape_scrapes_failed_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeError::Http { .. } | ScrapeError::Status(_) => "http",
            ScrapeError::Timeout { .. } => "timeout",
            ScrapeError::BodySizeLimit(_) => "body_size_limit",
            ScrapeError::Parse { .. } => "parse",
            ScrapeError::SampleLimit { .. } => "sample_limit",
            ScrapeError::LabelLimit(_) => "label_limit",
            ScrapeError::InvalidSeries(_) => "invalid_series",
            ScrapeError::CredentialsFile { .. } => "credentials",
            ScrapeError::Forced(_) => "target_limit",
            ScrapeError::Local(_) => "local",
        }
    }
}

/// HELP/TYPE/UNIT of one metric family, as last scraped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricMetadata {
    pub metric: String,
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// One cached series of this target: its final labels, or `None` when
/// metric relabeling drops it.
struct CacheEntry {
    labels: Option<Labels>,
    /// `labels.hash64()`, the key of the staleness maps.
    labels_hash: u64,
    /// The store's ref for `labels`, once a commit has created or found the
    /// series: later scrapes append by ref and skip the index lookup.
    series_ref: Option<SeriesRef>,
    last_iteration: u64,
}

/// The state a loop keeps between scrapes; handed to the replacement loop
/// when a reload changes the job but keeps the target.
#[derive(Default)]
pub struct LoopState {
    /// Raw series text (name and label block) → final labels.
    cache: HashMap<Box<[u8]>, CacheEntry>,
    iteration: u64,
    cache_size_after_success: usize,
    /// Series written (without explicit timestamps) by the last scrape.
    /// Keyed by the label set's 64-bit hash (computed once per cached series),
    /// as Prometheus keys its staleness maps: hashing whole label sets twice
    /// per sample was the scrape loop's largest cost.
    previous: HashMap<u64, Labels>,
    /// Whether any scrape has been reported (end-of-run staleness needs one).
    reported: bool,
}

/// What the loop needs to label and limit samples.
pub struct AppendOptions<'a> {
    pub target_labels: &'a Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel_configs: &'a [crate::config::RelabelConfig],
    pub limits: Limits,
}

/// Counts of one scrape's append, for the report series and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendCounts {
    /// Samples parsed (`scrape_samples_scraped`).
    pub total: u64,
    /// Samples after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub added: u64,
    /// Series new to this target (`scrape_series_added`).
    pub series_added: u64,
    /// Samples refused for a timestamp more than 10 minutes ahead.
    pub out_of_bounds: u64,
}

/// The result of [`LoopState::append`]: samples to write (scraped samples and
/// stale markers), counts, metadata and the error that failed the scrape.
pub struct AppendBatch {
    /// Labels, timestamp, value, and the store's ref when the cache knows it.
    pub samples: Vec<(Labels, Timestamp, f64, Option<SeriesRef>)>,
    pub counts: AppendCounts,
    pub metadata: Vec<MetricMetadata>,
    pub error: Option<ScrapeError>,
}

impl LoopState {
    /// Turns one scrape into samples. `body` is `None` for a failed scrape.
    /// On any error, nothing scraped is kept and every series of the last
    /// successful scrape is marked stale at `t`.
    pub fn append(
        &mut self,
        body: Option<(&[u8], Format)>,
        t: Timestamp,
        now: Timestamp,
        opts: &AppendOptions<'_>,
    ) -> AppendBatch {
        self.iteration += 1;
        let iteration = self.iteration;
        let mut samples = Vec::new();
        let mut counts = AppendCounts::default();
        let mut current: HashMap<u64, Labels> = HashMap::with_capacity(self.previous.len());
        let mut metadata: HashMap<String, MetricMetadata> = HashMap::new();
        let mut error = None;
        let mut limited = 0u64;
        let limits = opts.limits;

        if let Some((body, format)) = body {
            let mut parser = Parser::new(body, format);
            loop {
                let entry = match parser.next_entry() {
                    Ok(Some(entry)) => entry,
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(ScrapeError::Parse { format, error: e });
                        break;
                    }
                };
                let series = match entry {
                    Entry::Series(s) => s,
                    Entry::Help { metric, text } => {
                        meta_for(&mut metadata, metric).help = text.into_owned();
                        continue;
                    }
                    Entry::Type { metric, kind } => {
                        meta_for(&mut metadata, metric).kind = kind.as_str().to_string();
                        continue;
                    }
                    Entry::Unit { metric, unit } => {
                        meta_for(&mut metadata, metric).unit = unit.to_string();
                        continue;
                    }
                    Entry::Comment => continue,
                };
                counts.total += 1;
                let explicit_ts = if opts.honor_timestamps {
                    series.timestamp
                } else {
                    None
                };
                let sample_t = explicit_ts.unwrap_or(t);
                let (labels, labels_hash, series_ref, is_new) =
                    match self.cache.get_mut(series.series) {
                        Some(entry) => {
                            entry.last_iteration = iteration;
                            match &entry.labels {
                                Some(labels) => {
                                    (labels.clone(), entry.labels_hash, entry.series_ref, false)
                                }
                                None => continue,
                            }
                        }
                        None => {
                            let exposed = parser.labels();
                            let mutated = mutate_sample_labels(
                                exposed,
                                opts.target_labels,
                                opts.honor_labels,
                                opts.metric_relabel_configs,
                            );
                            if let Some(labels) = &mutated {
                                if let Err(e) = check_series(labels, &limits) {
                                    error = Some(e);
                                    break;
                                }
                            }
                            let labels_hash = mutated.as_ref().map_or(0, Labels::hash64);
                            self.cache.insert(
                                series.series.into(),
                                CacheEntry {
                                    labels: mutated.clone(),
                                    labels_hash,
                                    series_ref: None,
                                    last_iteration: iteration,
                                },
                            );
                            match mutated {
                                Some(labels) => (labels, labels_hash, None, true),
                                None => continue,
                            }
                        }
                    };
                counts.added += 1;
                if limits.sample_limit > 0 {
                    limited += 1;
                    if limited > limits.sample_limit {
                        // Keep parsing so scrape_samples_scraped is complete.
                        continue;
                    }
                }
                if sample_t > now + MAX_AHEAD_MS {
                    counts.out_of_bounds += 1;
                    continue;
                }
                if explicit_ts.is_none() || opts.track_timestamps_staleness {
                    current.insert(labels_hash, labels.clone());
                }
                if is_new {
                    counts.series_added += 1;
                }
                samples.push((labels, sample_t, series.value, series_ref));
            }
            if error.is_none() && limits.sample_limit > 0 && limited > limits.sample_limit {
                error = Some(ScrapeError::SampleLimit {
                    count: limited,
                    limit: limits.sample_limit,
                });
            }
        }

        let succeeded = body.is_some() && error.is_none();
        let stale: Vec<Labels> = if succeeded {
            let stale = self
                .previous
                .iter()
                .filter(|(hash, _)| !current.contains_key(*hash))
                .map(|(_, labels)| labels.clone())
                .collect();
            self.previous = current;
            // Forget cache entries not seen in this scrape (series churn).
            self.cache.retain(|_, e| e.last_iteration == iteration);
            self.cache_size_after_success = self.cache.len();
            stale
        } else {
            samples.clear();
            // A cache that keeps growing over failed scrapes is flushed, as
            // Prometheus does, so varying labels cannot grow it forever.
            if self.cache.len() > self.cache_size_after_success * 2 + 1000 {
                self.cache.retain(|_, e| e.last_iteration == iteration);
            }
            std::mem::take(&mut self.previous).into_values().collect()
        };
        for labels in stale {
            samples.push((labels, t, stale_nan(), None));
        }
        let mut metadata: Vec<MetricMetadata> = metadata.into_values().collect();
        metadata.sort();
        AppendBatch {
            samples,
            counts,
            metadata,
            error,
        }
    }

    /// Remembers the store's refs of cached series that have none yet (those
    /// first appended by the last commit), so the next scrape appends by ref.
    /// After a commit that saw unknown refs (series deleted by retention in
    /// the meantime), every ref is forgotten and looked up again.
    pub fn learn_series_refs(&mut self, storage: &Storage, saw_unknown_refs: bool) {
        for entry in self.cache.values_mut() {
            if saw_unknown_refs {
                entry.series_ref = None;
            }
            if entry.series_ref.is_none() {
                if let Some(labels) = &entry.labels {
                    entry.series_ref = storage.series_ref(labels);
                }
            }
        }
    }

    /// Stale markers for everything this loop wrote, for a target that went away.
    pub fn end_of_run(
        &mut self,
        t: Timestamp,
        target_labels: &Labels,
    ) -> Vec<(Labels, Timestamp, f64, Option<SeriesRef>)> {
        let mut samples: Vec<_> = std::mem::take(&mut self.previous)
            .into_values()
            .map(|labels| (labels, t, stale_nan(), None))
            .collect();
        if self.reported {
            for name in REPORT_SERIES {
                samples.push((report_labels(target_labels, name), t, stale_nan(), None));
            }
        }
        samples
    }
}

fn meta_for<'m>(
    metadata: &'m mut HashMap<String, MetricMetadata>,
    metric: &str,
) -> &'m mut MetricMetadata {
    metadata
        .entry(metric.to_string())
        .or_insert_with(|| MetricMetadata {
            metric: metric.to_string(),
            kind: MetricType::Unknown.as_str().to_string(),
            help: String::new(),
            unit: String::new(),
        })
}

/// Adds the target's labels to an exposed series (`honor_labels` decides
/// conflicts: keep the exposed value, or rename it `exported_<name>`), then
/// applies `metric_relabel_configs`. `None` means dropped.
pub fn mutate_sample_labels(
    exposed: Labels,
    target_labels: &Labels,
    honor_labels: bool,
    metric_relabel_configs: &[crate::config::RelabelConfig],
) -> Option<Labels> {
    let mut labels = exposed.clone();
    if honor_labels {
        for l in target_labels {
            if exposed.get(&l.name).is_none() {
                labels.set(&l.name, &l.value);
            }
        }
    } else {
        let mut conflicts: Vec<Label> = Vec::new();
        for l in target_labels {
            if let Some(existing) = exposed.get(&l.name) {
                conflicts.push(Label::new(l.name.clone(), existing));
            }
            labels.set(&l.name, &l.value);
        }
        if !conflicts.is_empty() {
            // Shortest names first, each prefixed with `exported_` until the
            // name is free among exposed, target and already-renamed labels.
            conflicts.sort_by_key(|l| l.name.len());
            for i in 0..conflicts.len() {
                let mut name = conflicts[i].name.clone();
                loop {
                    name = format!("exported_{name}");
                    let taken = exposed.get(&name).is_some()
                        || target_labels.get(&name).is_some()
                        || conflicts[..i].iter().any(|c| c.name == name);
                    if !taken {
                        break;
                    }
                }
                conflicts[i].name = name;
            }
            for c in conflicts {
                labels.set(&c.name, &c.value);
            }
        }
    }
    if metric_relabel_configs.is_empty() {
        Some(labels)
    } else {
        relabel::process(&labels, metric_relabel_configs).filter(|l| !l.is_empty())
    }
}

/// The checks Prometheus makes on a new series before appending it: a metric
/// name, valid names, and the label limits. Any failure fails the scrape.
fn check_series(labels: &Labels, limits: &Limits) -> Result<(), ScrapeError> {
    let Some(metric) = labels.metric_name() else {
        return Err(ScrapeError::InvalidSeries(format!(
            "missing metric name (__name__ label) in {labels} after metric relabeling"
        )));
    };
    let metric: String = metric.chars().take(50).collect();
    if !is_valid_metric_name(labels.metric_name().unwrap_or(""))
        || labels.iter().any(|l| !is_valid_label_name(&l.name))
    {
        return Err(ScrapeError::InvalidSeries(format!(
            "invalid metric name or label names: {labels}"
        )));
    }
    if limits.label_limit > 0 && labels.len() as u64 > limits.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            labels.len(),
            limits.label_limit
        )));
    }
    for l in labels {
        if limits.label_name_length_limit > 0
            && l.name.len() as u64 > limits.label_name_length_limit
        {
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {:.50}, length: {}, limit: {})",
                l.name,
                l.name.len(),
                limits.label_name_length_limit
            )));
        }
        if limits.label_value_length_limit > 0
            && l.value.len() as u64 > limits.label_value_length_limit
        {
            let value: String = l.value.chars().take(50).collect();
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {metric}, label name: {:.50}, value: {value:?}, length: {}, limit: {})",
                l.name,
                l.value.len(),
                limits.label_value_length_limit
            )));
        }
    }
    Ok(())
}

/// Writes one scrape's (or probe's) samples and `extra` series in one
/// `Appender` commit, then teaches `state` the refs of series it appended
/// by labels, so the next commit appends by ref. The append path of every
/// loop that feeds the store like a scrape (scrape loops, probe loops).
pub fn commit_batch(
    storage: &Storage,
    state: &mut LoopState,
    samples: Vec<(Labels, Timestamp, f64, Option<SeriesRef>)>,
    extra: Vec<(Labels, Timestamp, f64)>,
) -> Result<crate::storage::AppendOutcome, crate::storage::StorageError> {
    let mut appender = storage.appender();
    let needs_refs = samples.iter().any(|s| s.3.is_none());
    for (labels, ts, v, series_ref) in samples {
        match series_ref {
            Some(series_ref) => appender.add_ref(series_ref, ts, v),
            None => appender.add(labels, ts, v),
        }
    }
    for (labels, ts, v) in extra {
        appender.add(labels, ts, v);
    }
    let outcome = appender.commit()?;
    if needs_refs || outcome.unknown_ref > 0 {
        state.learn_series_refs(storage, outcome.unknown_ref > 0);
    }
    Ok(outcome)
}

/// For a stopped loop: waits for when the next run would have been and
/// returns its time, then one more interval and 10 %, so that a recreated loop
/// has written newer samples (stale markers then fall out of order and are
/// ignored by the store). `None` when shutdown came first.
pub(crate) async fn stale_marker_time(
    ticker: &mut tokio::time::Interval,
    shutdown: &mut watch::Receiver<bool>,
    interval: Duration,
) -> Option<Timestamp> {
    let stale_time;
    tokio::select! {
        _ = shutdown.changed() => return None,
        _ = ticker.tick() => stale_time = now_millis(),
    }
    tokio::select! {
        _ = shutdown.changed() => return None,
        _ = ticker.tick() => {}
    }
    tokio::select! {
        _ = shutdown.changed() => return None,
        _ = tokio::time::sleep(interval / 10) => {}
    }
    Some(stale_time)
}

/// Labels of a report series: the target's labels and the name.
pub fn report_labels(target_labels: &Labels, name: &str) -> Labels {
    let mut labels = target_labels.clone();
    labels.set(METRIC_NAME, name);
    labels
}

// ------------------------------------------------------------------ HTTP

/// How requests of one job authenticate. Files are read at every scrape, so
/// rotated credentials take effect without a reload (as in Prometheus).
#[derive(Clone, Debug, Default)]
pub struct Auth {
    basic: Option<BasicAuth>,
    /// (type, inline credentials, credentials file)
    authorization: Option<(String, Option<String>, Option<String>)>,
}

impl Auth {
    pub fn from_config(job: &ScrapeConfig) -> Auth {
        let authorization = if let Some(a) = &job.authorization {
            Some((
                a.kind.clone(),
                a.credentials.as_ref().map(|s| s.expose().to_string()),
                a.credentials_file.clone(),
            ))
        } else if job.bearer_token.is_some() || job.bearer_token_file.is_some() {
            Some((
                "Bearer".to_string(),
                job.bearer_token.as_ref().map(|s| s.expose().to_string()),
                job.bearer_token_file.clone(),
            ))
        } else {
            None
        };
        Auth {
            basic: job.basic_auth.clone(),
            authorization,
        }
    }

    /// The credentials of an `alertmanagers` entry (same keys, no bearer_token).
    pub fn from_parts(
        basic: Option<&BasicAuth>,
        authorization: Option<&crate::config::Authorization>,
    ) -> Auth {
        Auth {
            basic: basic.cloned(),
            authorization: authorization.map(|a| {
                (
                    a.kind.clone(),
                    a.credentials.as_ref().map(|s| s.expose().to_string()),
                    a.credentials_file.clone(),
                )
            }),
        }
    }

    pub(crate) fn apply(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ScrapeError> {
        let read = |what: &'static str, path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| ScrapeError::CredentialsFile {
                    what,
                    path: path.to_string(),
                    message: e.to_string(),
                })
        };
        if let Some(basic) = &self.basic {
            let password = match (&basic.password, &basic.password_file) {
                (Some(p), _) => p.expose().to_string(),
                (None, Some(file)) => read("basic_auth.password_file", file)?,
                (None, None) => String::new(),
            };
            request = request.basic_auth(&basic.username, Some(password));
        }
        if let Some((kind, inline, file)) = &self.authorization {
            let credentials = match (inline, file) {
                (Some(c), _) => c.clone(),
                (None, Some(file)) => read("authorization.credentials_file", file)?,
                (None, None) => String::new(),
            };
            request = request.header(
                reqwest::header::AUTHORIZATION,
                format!("{kind} {credentials}"),
            );
        }
        Ok(request)
    }
}

/// A target produced inside the daemon instead of fetched over HTTP (the
/// host collector): the loop calls [`LocalTarget::scrape`] on a blocking
/// thread, within the scrape timeout, and treats the text it returns like a
/// scraped body (format 0.0.4).
pub trait LocalTarget: Send + Sync + 'static {
    fn scrape(&self) -> Result<Vec<u8>, String>;
    /// What `/api/v1/targets` shows as the scrape URL.
    fn url(&self) -> String;
}

/// Everything a loop needs that does not change while it runs.
pub struct LoopContext {
    /// Set for a target served in-process; `None` for HTTP targets.
    pub local: Option<Arc<dyn LocalTarget>>,
    pub target: Target,
    pub settings: Arc<JobSettings>,
    pub client: reqwest::Client,
    pub auth: Arc<Auth>,
    pub storage: Storage,
    pub metrics: ScrapeMetrics,
    /// Set by the manager, e.g. when `target_limit` is exceeded: every scrape
    /// fails with this error without contacting the target.
    pub forced_error: Arc<Mutex<Option<String>>>,
    pub status: Arc<Mutex<TargetStatus>>,
    pub jitter_seed: u64,
}

/// What the manager can show about a target.
#[derive(Clone, Debug, Default)]
pub struct TargetStatus {
    pub health: Option<bool>,
    pub last_error: Option<String>,
    pub last_scrape_ms: Option<Timestamp>,
    pub last_duration: Option<Duration>,
    pub metadata: Vec<MetricMetadata>,
}

async fn fetch(ctx: &LoopContext) -> Result<(Vec<u8>, Option<String>), ScrapeError> {
    let url = &ctx.target.url;
    let timeout = ctx.target.timeout;
    let http_error = |e: reqwest::Error| {
        if e.is_timeout() {
            ScrapeError::Timeout {
                url: url.clone(),
                timeout,
            }
        } else {
            ScrapeError::Http {
                url: url.clone(),
                message: error_chain(&e),
            }
        }
    };
    let request = ctx
        .client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
        .header(
            reqwest::header::USER_AGENT,
            concat!("bellwether/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        )
        .timeout(timeout);
    let request = ctx.auth.apply(request)?;
    let work = async {
        let mut response = request.send().await.map_err(http_error)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ScrapeError::Status(response.status().to_string()));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = ctx.settings.limits.body_size_limit;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_error)? {
            if limit > 0 && (body.len() + chunk.len()) as u64 > limit {
                return Err(ScrapeError::BodySizeLimit(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, content_type))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(ScrapeError::Timeout {
            url: url.clone(),
            timeout,
        }),
    }
}

async fn fetch_local(
    local: Arc<dyn LocalTarget>,
    ctx: &LoopContext,
) -> Result<(Vec<u8>, Option<String>), ScrapeError> {
    let timeout = ctx.target.timeout;
    let work = tokio::task::spawn_blocking(move || local.scrape());
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(Ok(body))) => Ok((body, Some("text/plain; version=0.0.4".to_string()))),
        Ok(Ok(Err(message))) => Err(ScrapeError::Local(message)),
        Ok(Err(join)) => Err(ScrapeError::Local(format!("collector task failed: {join}"))),
        Err(_) => Err(ScrapeError::Timeout {
            url: ctx.target.url.clone(),
            timeout,
        }),
    }
}

/// The error and its sources, e.g. "error sending request: connection refused"
/// (reqwest's top error says little); used by every HTTP client of the daemon.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

// ------------------------------------------------------------------ the task

/// How the manager ends a loop.
pub enum Command {
    /// The target is gone: write end-of-run stale markers, then exit.
    Stop,
    /// The job changed but the target stays: hand the state to the new loop.
    Handover(oneshot::Sender<LoopState>),
}

/// Where a new loop gets its state from.
pub enum InitialState {
    Fresh,
    /// From the loop it replaces (it keeps the staleness bookkeeping).
    From(oneshot::Receiver<LoopState>),
}

/// Rate limit for the debug log of out-of-order/duplicate samples.
const APPEND_LOG_EVERY: Duration = Duration::from_secs(60);

pub struct ScrapeLoop {
    ctx: LoopContext,
    state: LoopState,
    last_append_log: Option<Instant>,
    /// Timestamp of the previous scrape, for [`aligned_timestamp`].
    last_scrape_t: Option<Timestamp>,
}

/// How far a scrape's start may drift from its schedule and still be stored at
/// the scheduled time (as Prometheus's `--scrape.timestamp-tolerance`, 2 ms).
const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// The timestamp to store for a scrape that started at `now`: the previous
/// one plus the interval when `now` is within [`TIMESTAMP_TOLERANCE_MS`] of
/// it. Scheduler jitter of a millisecond or two would otherwise cost every
/// sample ~9 bits of delta-of-delta in its chunk instead of 1.
fn aligned_timestamp(now: Timestamp, previous: Option<Timestamp>, interval_ms: i64) -> Timestamp {
    match previous {
        Some(prev) if (now - (prev + interval_ms)).abs() <= TIMESTAMP_TOLERANCE_MS => {
            prev + interval_ms
        }
        _ => now,
    }
}

impl ScrapeLoop {
    pub async fn run(
        ctx: LoopContext,
        initial: InitialState,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let state = match initial {
            InitialState::Fresh => LoopState::default(),
            InitialState::From(rx) => {
                // The series cache holds labels computed with the old job
                // config; the staleness set stays (changed labels then go
                // stale on the next scrape, which is right).
                let mut state = rx.await.unwrap_or_default();
                state.cache.clear();
                state
            }
        };
        let mut this = ScrapeLoop {
            ctx,
            state,
            last_append_log: None,
            last_scrape_t: None,
        };
        let interval = this.ctx.target.interval;
        let now_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let offset = this.ctx.target.offset(now_nanos, this.ctx.jitter_seed);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                command = commands.recv() => return this.finish(command, &mut ticker, &mut shutdown).await,
                _ = ticker.tick() => {}
            }
            // The scrape itself is cancelled by a command, as Prometheus
            // cancels the scrape context when a loop is stopped.
            let started = Instant::now();
            let t = aligned_timestamp(
                now_millis(),
                this.last_scrape_t,
                interval.as_millis() as i64,
            );
            this.last_scrape_t = Some(t);
            let fetched = tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                command = commands.recv() => return this.finish(command, &mut ticker, &mut shutdown).await,
                fetched = this.fetch_unless_forced() => fetched,
            };
            this.scrape_done(fetched, t, started);
        }
    }

    async fn fetch_unless_forced(&self) -> Result<(Vec<u8>, Option<String>), ScrapeError> {
        let forced = self.ctx.forced_error.lock().clone();
        match (forced, &self.ctx.local) {
            (Some(message), _) => Err(ScrapeError::Forced(message)),
            (None, Some(local)) => fetch_local(local.clone(), &self.ctx).await,
            (None, None) => fetch(&self.ctx).await,
        }
    }

    async fn finish(
        mut self,
        command: Option<Command>,
        ticker: &mut tokio::time::Interval,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        match command {
            Some(Command::Handover(tx)) => {
                let _ = tx.send(self.state);
            }
            Some(Command::Stop) | None => {
                if !self.state.reported {
                    return;
                }
                // Wait for when the next scrape would have been and record its
                // time; wait one more interval and 10 % so that a recreated
                // loop has written newer samples (our markers then fall out of
                // order and are ignored by the store).
                let Some(stale_time) =
                    stale_marker_time(ticker, shutdown, self.ctx.target.interval).await
                else {
                    return;
                };
                let samples = self.state.end_of_run(stale_time, &self.ctx.target.labels);
                let mut appender = self.ctx.storage.appender();
                for (labels, t, v, _) in samples {
                    appender.add(labels, t, v);
                }
                if let Err(error) = appender.commit() {
                    tracing::warn!(target_url = %self.ctx.target.url, error = %error, "writing stale markers for a removed target failed");
                }
            }
        }
    }

    fn scrape_done(
        &mut self,
        fetched: Result<(Vec<u8>, Option<String>), ScrapeError>,
        t: Timestamp,
        started: Instant,
    ) {
        let ctx = &self.ctx;
        let settings = &ctx.settings;
        let job = settings.job_name.as_str();
        let opts = AppendOptions {
            target_labels: &ctx.target.labels,
            honor_labels: settings.honor_labels,
            honor_timestamps: settings.honor_timestamps,
            track_timestamps_staleness: settings.track_timestamps_staleness,
            metric_relabel_configs: &settings.metric_relabel_configs,
            limits: settings.limits,
        };
        let (batch, mut error) = match &fetched {
            Ok((body, content_type)) => {
                let format = Format::from_content_type(content_type.as_deref());
                let batch = self
                    .state
                    .append(Some((body, format)), t, now_millis(), &opts);
                let error = batch.error.clone();
                (batch, error)
            }
            Err(e) => (
                self.state.append(None, t, now_millis(), &opts),
                Some(e.clone()),
            ),
        };
        let duration = started.elapsed();
        let counts = batch.counts;
        let report = [
            if error.is_none() { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            counts.total as f64,
            counts.added as f64,
            counts.series_added as f64,
        ];
        let report = REPORT_SERIES
            .iter()
            .zip(report)
            .map(|(name, value)| (report_labels(&ctx.target.labels, name), t, value))
            .collect();
        self.state.reported = true;
        match commit_batch(&ctx.storage, &mut self.state, batch.samples, report) {
            Ok(outcome) => {
                let refused = [
                    ("out_of_order", outcome.out_of_order),
                    ("duplicate", outcome.duplicate),
                    ("too_old", outcome.too_old),
                    ("series_limit", outcome.series_limit),
                    ("out_of_bounds", counts.out_of_bounds as usize),
                ];
                let mut any = false;
                for (reason, n) in refused {
                    if n > 0 {
                        any = true;
                        ctx.metrics
                            .samples_refused
                            .get_or_create(&job_reason_labels(job, reason))
                            .inc_by(n as u64);
                    }
                }
                let log_due = self
                    .last_append_log
                    .is_none_or(|at| at.elapsed() >= APPEND_LOG_EVERY);
                if any && log_due {
                    self.last_append_log = Some(Instant::now());
                    tracing::debug!(
                        job,
                        target_url = %ctx.target.url,
                        out_of_order = outcome.out_of_order,
                        duplicate = outcome.duplicate,
                        too_old = outcome.too_old,
                        series_limit = outcome.series_limit,
                        out_of_bounds = counts.out_of_bounds,
                        "store refused some scraped samples (logged at most once a minute per target)"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(job, target_url = %ctx.target.url, error = %e, "scrape commit failed");
                if error.is_none() {
                    error = Some(ScrapeError::InvalidSeries(format!("commit failed: {e}")));
                }
            }
        }

        let metrics = &ctx.metrics;
        metrics.scrapes.get_or_create(&job_labels(job)).inc();
        metrics
            .samples_scraped
            .get_or_create(&job_labels(job))
            .inc_by(counts.total);
        metrics
            .duration
            .get_or_create(&job_labels(job))
            .observe(duration.as_secs_f64());
        if let Some(e) = &error {
            metrics
                .scrapes_failed
                .get_or_create(&job_reason_labels(job, e.reason()))
                .inc();
            match e {
                ScrapeError::Parse { .. } => {
                    metrics.parse_errors.get_or_create(&job_labels(job)).inc();
                }
                ScrapeError::SampleLimit { count, .. } => {
                    metrics
                        .samples_refused
                        .get_or_create(&job_reason_labels(job, "sample_limit"))
                        .inc_by(*count);
                }
                ScrapeError::LabelLimit(_) => {
                    metrics
                        .samples_refused
                        .get_or_create(&job_reason_labels(job, "label_limit"))
                        .inc_by(counts.total);
                }
                _ => {}
            }
            tracing::debug!(job, target_url = %ctx.target.url, error = %e, "scrape failed");
        }
        let mut status = ctx.status.lock();
        status.health = Some(error.is_none());
        status.last_error = error.map(|e| e.to_string());
        status.last_scrape_ms = Some(t);
        status.last_duration = Some(duration);
        if fetched.is_ok() && status.last_error.is_none() {
            status.metadata = batch.metadata;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::RelabelRegex;
    use crate::config::{RelabelAction, RelabelConfig};
    use crate::model::is_stale_nan;

    fn target_labels() -> Labels {
        Labels::new([("job", "j"), ("instance", "h:1")])
    }

    #[test]
    fn scrape_timestamps_snap_to_the_schedule_within_tolerance() {
        // First scrape: the clock as it is.
        assert_eq!(aligned_timestamp(10_003, None, 15_000), 10_003);
        // Within 2 ms of previous + interval, on either side: snapped.
        assert_eq!(aligned_timestamp(25_005, Some(10_003), 15_000), 25_003);
        assert_eq!(aligned_timestamp(25_001, Some(10_003), 15_000), 25_003);
        // Further off (a delayed or skipped tick): the real time.
        assert_eq!(aligned_timestamp(25_006, Some(10_003), 15_000), 25_006);
        assert_eq!(aligned_timestamp(40_003, Some(10_003), 15_000), 40_003);
    }

    fn opts<'a>(
        target: &'a Labels,
        limits: Limits,
        relabel: &'a [RelabelConfig],
    ) -> AppendOptions<'a> {
        AppendOptions {
            target_labels: target,
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            metric_relabel_configs: relabel,
            limits,
        }
    }

    fn names(batch: &AppendBatch, stale: bool) -> Vec<String> {
        let mut v: Vec<String> = batch
            .samples
            .iter()
            .filter(|(_, _, v, _)| is_stale_nan(*v) == stale)
            .map(|(l, _, _, _)| l.metric_name().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn later_scrapes_append_by_the_refs_the_store_assigned() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(crate::storage::StorageOptions::new(dir.path())).unwrap();
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        let now = crate::model::now_millis();
        let b = state.append(Some((b"a 1\nb 2\n", Format::Text)), now, now, &o);
        assert!(b.samples.iter().all(|s| s.3.is_none()), "nothing known yet");
        let mut app = storage.appender();
        for (labels, t, v, _) in b.samples {
            app.add(labels, t, v);
        }
        app.commit().unwrap();
        state.learn_series_refs(&storage, false);

        let b = state.append(
            Some((b"a 1\nb 2\n", Format::Text)),
            now + 1000,
            now + 1000,
            &o,
        );
        assert_eq!(b.samples.len(), 2);
        for (labels, _, _, series_ref) in &b.samples {
            assert_eq!(*series_ref, storage.series_ref(labels), "{labels}");
            assert!(series_ref.is_some());
        }
    }

    #[test]
    fn series_that_disappear_get_stale_markers() {
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        let b = state.append(Some((b"a 1\nb 2\n", Format::Text)), 1000, 1000, &o);
        assert!(b.error.is_none());
        assert_eq!(names(&b, false), vec!["a", "b"]);
        assert_eq!(b.counts.series_added, 2);
        assert_eq!(b.samples[0].0.get("job"), Some("j"));

        let b = state.append(Some((b"a 1\n", Format::Text)), 2000, 2000, &o);
        assert_eq!(names(&b, false), vec!["a"]);
        assert_eq!(names(&b, true), vec!["b"]);
        assert_eq!(b.counts.series_added, 0);
        let stale = b.samples.iter().find(|s| is_stale_nan(s.2)).unwrap();
        assert_eq!(stale.1, 2000, "stale marker at the new scrape's timestamp");

        // b comes back: new to the cache again, no marker for it.
        let b = state.append(Some((b"a 1\nb 3\n", Format::Text)), 3000, 3000, &o);
        assert_eq!(names(&b, true), Vec::<String>::new());
        assert_eq!(b.counts.series_added, 1);
    }

    #[test]
    fn failed_scrape_marks_everything_stale_once() {
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        state.append(Some((b"a 1\nb 2\n", Format::Text)), 1000, 1000, &o);
        let b = state.append(None, 2000, 2000, &o);
        assert_eq!(names(&b, true), vec!["a", "b"]);
        assert_eq!(names(&b, false), Vec::<String>::new());
        let b = state.append(None, 3000, 3000, &o);
        assert!(b.samples.is_empty(), "markers are written once");
        // A parse error is a failed scrape too: nothing kept.
        state.append(Some((b"a 1\n", Format::Text)), 4000, 4000, &o);
        let b = state.append(Some((b"a 1\nb\n", Format::Text)), 5000, 5000, &o);
        assert!(matches!(b.error, Some(ScrapeError::Parse { .. })));
        assert_eq!(names(&b, false), Vec::<String>::new());
        assert_eq!(names(&b, true), vec!["a"]);
        assert_eq!(b.counts.total, 1);
    }

    #[test]
    fn explicit_timestamps_are_not_staleness_tracked_unless_asked() {
        let tl = target_labels();
        let mut o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        state.append(Some((b"a 1 500\n", Format::Text)), 1000, 1000, &o);
        let b = state.append(Some((b"", Format::Text)), 2000, 2000, &o);
        assert!(b.samples.is_empty());
        o.track_timestamps_staleness = true;
        state.append(Some((b"a 1 500\n", Format::Text)), 3000, 3000, &o);
        let b = state.append(Some((b"", Format::Text)), 4000, 4000, &o);
        assert_eq!(names(&b, true), vec!["a"]);
        // honor_timestamps: false replaces the timestamp, so the series is tracked.
        o.honor_timestamps = false;
        o.track_timestamps_staleness = false;
        let b = state.append(Some((b"a 1 500\n", Format::Text)), 5000, 5000, &o);
        assert_eq!(b.samples[0].1, 5000);
    }

    #[test]
    fn sample_limit_fails_the_scrape_and_keeps_counting() {
        let tl = target_labels();
        let limits = Limits {
            sample_limit: 2,
            ..Limits::default()
        };
        let o = opts(&tl, limits, &[]);
        let mut state = LoopState::default();
        let b = state.append(
            Some((b"a 1\nb 1\nc 1\nd 1\n", Format::Text)),
            1000,
            1000,
            &o,
        );
        assert!(matches!(
            b.error,
            Some(ScrapeError::SampleLimit { count: 4, limit: 2 })
        ));
        assert!(b.samples.is_empty());
        assert_eq!((b.counts.total, b.counts.added), (4, 4));
        let b = state.append(Some((b"a 1\nb 1\n", Format::Text)), 2000, 2000, &o);
        assert!(b.error.is_none());
    }

    #[test]
    fn label_limits_fail_the_scrape() {
        let tl = target_labels();
        for (limits, needle) in [
            (
                Limits {
                    label_limit: 3,
                    ..Limits::default()
                },
                "label_limit exceeded",
            ),
            (
                Limits {
                    label_name_length_limit: 4,
                    ..Limits::default()
                },
                "label_name_length_limit exceeded",
            ),
            (
                Limits {
                    label_value_length_limit: 3,
                    ..Limits::default()
                },
                "label_value_length_limit exceeded",
            ),
        ] {
            let o = opts(&tl, limits, &[]);
            let mut state = LoopState::default();
            let b = state.append(Some((b"a{x=\"long\"} 1\n", Format::Text)), 1000, 1000, &o);
            let e = b.error.expect("limit").to_string();
            assert!(e.contains(needle), "{e}");
            assert!(b.samples.is_empty());
        }
    }

    #[test]
    fn honor_labels_and_exported_prefix() {
        let tl = target_labels();
        let exposed = Labels::new([("__name__", "m"), ("job", "exposed"), ("exported_job", "x")]);
        let got = mutate_sample_labels(exposed.clone(), &tl, false, &[]).unwrap();
        assert_eq!(got.get("job"), Some("j"));
        assert_eq!(got.get("exported_job"), Some("x"));
        assert_eq!(got.get("exported_exported_job"), Some("exposed"));
        let got = mutate_sample_labels(exposed, &tl, true, &[]).unwrap();
        assert_eq!(got.get("job"), Some("exposed"));
        assert_eq!(got.get("instance"), Some("h:1"));
    }

    #[test]
    fn metric_relabeling_drops_and_is_cached() {
        let tl = target_labels();
        let drop_b = [RelabelConfig {
            source_labels: vec!["__name__".into()],
            separator: ";".into(),
            target_label: None,
            regex: RelabelRegex::new("b").unwrap(),
            modulus: None,
            replacement: "$1".into(),
            action: RelabelAction::Drop,
        }];
        let o = opts(&tl, Limits::default(), &drop_b);
        let mut state = LoopState::default();
        for t in [1000, 2000] {
            let b = state.append(Some((b"a 1\nb 1\n", Format::Text)), t, t, &o);
            assert_eq!(names(&b, false), vec!["a"]);
            assert_eq!((b.counts.total, b.counts.added), (2, 1));
        }
    }

    #[test]
    fn far_future_samples_are_refused_not_fatal() {
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        let b = state.append(
            Some((b"a 1 99999999999999\nb 1\n", Format::Text)),
            1000,
            1000,
            &o,
        );
        assert!(b.error.is_none());
        assert_eq!(names(&b, false), vec!["b"]);
        assert_eq!(b.counts.out_of_bounds, 1);
    }

    #[test]
    fn end_of_run_marks_series_and_report() {
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        state.append(Some((b"a 1\n", Format::Text)), 1000, 1000, &o);
        state.reported = true;
        let samples = state.end_of_run(5000, &tl);
        assert_eq!(samples.len(), 1 + REPORT_SERIES.len());
        assert!(samples
            .iter()
            .all(|(_, t, v, _)| *t == 5000 && is_stale_nan(*v)));
    }

    fn headers_for(job: serde_json::Value) -> Result<reqwest::header::HeaderMap, ScrapeError> {
        let job: ScrapeConfig = serde_json::from_value(job).expect("job config");
        let request = reqwest::Client::new().get("http://h:1/metrics");
        let request = Auth::from_config(&job).apply(request)?;
        Ok(request.build().expect("request").headers().clone())
    }

    #[test]
    fn credentials_are_sent_and_files_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let file = file.display().to_string();
        let auth =
            |h: &reqwest::header::HeaderMap| h["authorization"].to_str().unwrap().to_string();

        let h = headers_for(
            serde_json::json!({"job_name": "j", "basic_auth": {"username": "u", "password": "p"}}),
        )
        .unwrap();
        assert_eq!(auth(&h), "Basic dTpw");
        let h = headers_for(serde_json::json!({"job_name": "j", "basic_auth": {"username": "u", "password_file": file}})).unwrap();
        assert_eq!(auth(&h), "Basic dTpzM2NyZXQ=");
        let h =
            headers_for(serde_json::json!({"job_name": "j", "bearer_token_file": file})).unwrap();
        assert_eq!(auth(&h), "Bearer s3cret");
        let h = headers_for(serde_json::json!({"job_name": "j", "authorization": {"type": "Token", "credentials": "abc"}})).unwrap();
        assert_eq!(auth(&h), "Token abc");
        let e = headers_for(
            serde_json::json!({"job_name": "j", "bearer_token_file": "/nonexistent/token"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/token"), "{e}");
    }

    #[test]
    fn openmetrics_metadata_is_collected() {
        let tl = target_labels();
        let o = opts(&tl, Limits::default(), &[]);
        let mut state = LoopState::default();
        let body = b"# TYPE x_seconds counter\n# HELP x_seconds Help.\n# UNIT x_seconds seconds\nx_seconds_total 1\n# EOF\n";
        let b = state.append(Some((body, Format::OpenMetrics)), 1000, 1000, &o);
        assert!(b.error.is_none(), "{:?}", b.error);
        assert_eq!(
            b.metadata,
            vec![MetricMetadata {
                metric: "x_seconds".into(),
                kind: "counter".into(),
                help: "Help.".into(),
                unit: "seconds".into()
            }]
        );
    }
}
