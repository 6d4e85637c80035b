//! Scraping Prometheus endpoints: target discovery (static, file_sd),
//! relabeling, the scrape loops, exposition parsing and staleness — with
//! Prometheus 2.42's behaviour as the reference.
//!
//! Files, one role each:
//! * `mod.rs` (this file): [`ScrapeManager`], which keeps one scrape loop per
//!   target in step with the config and with discovery;
//! * [`parse`]: the text 0.0.4 and OpenMetrics 1.0 parsers (public for fuzzing);
//! * [`relabel`]: relabeling actions;
//! * [`target`]: effective job settings, target labels and scrape URLs;
//! * [`file_sd`]: file-based discovery;
//! * [`scrape_loop`]: one target's loop: HTTP, append, report, staleness;
//! * [`metrics`]: the `bellwether_scrape_*` self metrics.
//!
//! Nothing here reads the store; samples leave through one `Appender` commit
//! per scrape.
//!
//! Loop lifecycle on `apply_config` (start and every reload):
//! * a job whose effective config is unchanged keeps its discovery and its
//!   loops untouched (they keep running, with their staleness state);
//! * a job whose config changed gets new settings, a new HTTP client and new
//!   discovery; its targets are rebuilt; a target present before and after
//!   (same labels and URL) gets a new loop that takes over the old loop's
//!   staleness state, so no stale markers and no gap; targets that are gone
//!   are stopped with end-of-run stale markers;
//! * a removed job stops all its loops with end-of-run stale markers;
//! * file_sd and kubernetes_sd changes run the same target diff for their job.
//!
//! The Kubernetes collector (src/collect/kubernetes) is owned here too: its
//! one watcher is (re)started when `collectors.kubernetes` resolves to
//! different settings, its pod metrics run as a local job like the host
//! collector's, and every `kubernetes_sd_configs` entry follows its pods.

pub mod file_sd;
pub mod metrics;
pub mod parse;
pub mod relabel;
pub mod scrape_loop;
pub mod target;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, GlobalConfig, ScrapeConfig};
use crate::model::Labels;
use crate::storage::Storage;

use self::file_sd::FileDiscovery;
use self::metrics::{job_labels, ScrapeMetrics};
use self::scrape_loop::{
    Auth, Command, InitialState, LocalTarget, LoopContext, MetricMetadata, ScrapeLoop, TargetStatus,
};
use self::target::{discovered_labels, JobSettings, Target, TargetGroup};
use crate::collect::host::{Exposer, HostMetrics};
use crate::collect::kubernetes::metrics::KubernetesMetrics;
use crate::collect::kubernetes::Kubernetes;

/// Runs one scrape loop per target and keeps the set of loops in step with
/// the config and with file-based discovery.
pub struct ScrapeManager {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    metrics: ScrapeMetrics,
    host_metrics: HostMetrics,
    kubernetes_metrics: KubernetesMetrics,
    /// The host collector `/metrics` renders (`collectors.host.expose_on_metrics`).
    host_exposer: Exposer,
    jitter_seed: u64,
    shutdown: watch::Sender<bool>,
    state: Mutex<ManagerState>,
}

#[derive(Default)]
struct ManagerState {
    jobs: BTreeMap<String, Job>,
    /// Tasks of stopped loops still writing end-of-run markers, and of
    /// stopped discovery; awaited on shutdown.
    retiring: Vec<JoinHandle<()>>,
    next_generation: u64,
    shut_down: bool,
    /// The running Kubernetes collector and the generation it was started
    /// at (part of the fingerprint of the jobs that use it).
    kubernetes: Option<(Kubernetes, u64)>,
}

/// What identifies a target: all its labels (internal ones included) and URL.
type TargetKey = (Labels, String);

struct Job {
    /// Everything in the job's effective config, to tell whether a reload changed it.
    fingerprint: String,
    /// Distinguishes this job instance from an earlier one with the same name,
    /// so late updates from its old discovery are ignored.
    generation: u64,
    settings: Arc<JobSettings>,
    client: reqwest::Client,
    /// Set when the HTTP client could not be built (e.g. an unreadable ca_file):
    /// every scrape of the job fails with it.
    client_error: Option<String>,
    auth: Arc<Auth>,
    static_groups: Vec<TargetGroup>,
    /// The groups of each `file_sd_configs` entry, then of each
    /// `kubernetes_sd_configs` entry.
    discovered_groups: Vec<Vec<TargetGroup>>,
    discovery_tasks: Vec<JoinHandle<()>>,
    loops: HashMap<TargetKey, LoopHandle>,
    /// Set for the host collector's job: its target is served in-process.
    local: Option<Arc<dyn LocalTarget>>,
    /// Discovered labels of the targets relabeling dropped, as of the last
    /// sync (`droppedTargets` of `/api/v1/targets`).
    dropped: Vec<Labels>,
}

struct LoopHandle {
    target: Target,
    commands: mpsc::UnboundedSender<Command>,
    forced_error: Arc<Mutex<Option<String>>>,
    status: Arc<Mutex<TargetStatus>>,
    task: JoinHandle<()>,
}

/// A target as an API can show it (`/api/v1/targets`).
#[derive(Clone, Debug)]
pub struct TargetInfo {
    pub job: String,
    /// Labels before relabeling.
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_url: String,
    pub scrape_interval: std::time::Duration,
    pub scrape_timeout: std::time::Duration,
    pub status: TargetStatus,
}

impl ScrapeManager {
    /// Creates the manager and registers its metrics. Starts nothing.
    pub fn new(storage: Storage, registry: &mut Registry) -> ScrapeManager {
        let metrics = ScrapeMetrics::default();
        metrics.register(registry);
        let host_metrics = HostMetrics::default();
        host_metrics.register(registry);
        let kubernetes_metrics = KubernetesMetrics::default();
        kubernetes_metrics.register(registry);
        let (shutdown, _) = watch::channel(false);
        ScrapeManager {
            inner: Arc::new(Inner {
                storage,
                metrics,
                host_metrics,
                kubernetes_metrics,
                host_exposer: Exposer::default(),
                jitter_seed: jitter_seed(),
                shutdown,
                state: Mutex::new(ManagerState::default()),
            }),
        }
    }

    /// Starts, stops and updates scrape loops so they match `config`. Loops whose
    /// job and target are unchanged keep running (and keep their staleness state).
    /// Must be called inside the tokio runtime.
    pub fn apply_config(&self, config: &Config) {
        let inner = &self.inner;
        let mut state = inner.state.lock();
        if state.shut_down {
            return;
        }
        state.retiring.retain(|t| !t.is_finished());
        let mut old_jobs = std::mem::take(&mut state.jobs);
        let mut seen = HashSet::new();
        let host_job = match crate::collect::host::host_job(config, &inner.host_metrics) {
            Some(Ok((job, collector))) => {
                let expose = config.collectors.host.expose_on_metrics;
                inner.host_exposer.set(expose.then(|| collector.clone()));
                Some((job, collector))
            }
            Some(Err(error)) => {
                tracing::error!(error = %error, "the host collector cannot start");
                inner.host_exposer.set(None);
                None
            }
            None => {
                inner.host_exposer.set(None);
                None
            }
        };
        let kubernetes_generation = inner.apply_kubernetes(config, &mut state);
        let kubernetes_job = state.kubernetes.as_ref().and_then(|(k, _)| {
            k.metrics_job(config)
                .inspect_err(|error| tracing::error!(error = %error, "the Kubernetes pod metrics cannot start"))
                .ok()
        });
        let pods_job = state.kubernetes.as_ref().and_then(|(k, _)| {
            k.pods_job(config)?
                .inspect_err(
                    |error| tracing::error!(error = %error, "the annotated-pods job cannot start"),
                )
                .ok()
        });
        let jobs = config
            .scrape_configs
            .iter()
            .chain(pods_job.as_ref())
            .map(|j| (j, None))
            .chain(
                host_job
                    .as_ref()
                    .map(|(j, c)| (j, Some(c.clone() as Arc<dyn LocalTarget>))),
            )
            .chain(kubernetes_job.as_ref().map(|(j, t)| (j, Some(t.clone()))));
        for (job_config, local) in jobs {
            let name = job_config.job_name.clone();
            if !seen.insert(name.clone()) {
                tracing::error!(job = %name, "duplicate job_name in scrape_configs; only the first is used");
                continue;
            }
            let mut fingerprint = fingerprint(&config.global, job_config);
            if local.is_some() {
                fingerprint.push_str(&format!("\n{:?}", config.collectors.host));
            }
            if local.is_some() || !job_config.kubernetes_sd_configs.is_empty() {
                // A restarted watcher means new pod channels.
                fingerprint.push_str(&format!("\nkubernetes {kubernetes_generation:?}"));
            }
            let old = old_jobs.remove(&name);
            match old {
                Some(old) if old.fingerprint == fingerprint => {
                    state.jobs.insert(name, old);
                }
                old => {
                    state.next_generation += 1;
                    let generation = state.next_generation;
                    let kubernetes = state.kubernetes.as_ref().map(|(k, _)| k);
                    let mut job = Job::new(
                        inner,
                        &config.global,
                        job_config,
                        fingerprint,
                        generation,
                        kubernetes,
                    );
                    job.local = local;
                    let handover = match old {
                        Some(mut old) => {
                            for task in old.discovery_tasks.drain(..) {
                                task.abort();
                                state.retiring.push(task);
                            }
                            job.loops = std::mem::take(&mut old.loops);
                            true
                        }
                        None => false,
                    };
                    let retiring = inner.sync(&mut job, handover);
                    state.retiring.extend(retiring);
                    state.jobs.insert(name, job);
                }
            }
        }
        for (name, mut job) in old_jobs {
            tracing::info!(job = %name, "scrape job removed; its series are marked stale");
            for task in job.discovery_tasks.drain(..) {
                task.abort();
                state.retiring.push(task);
            }
            for (_, handle) in job.loops.drain() {
                let _ = handle.commands.send(Command::Stop);
                state.retiring.push(handle.task);
            }
            inner.metrics.targets.remove(&job_labels(&name));
        }
    }

    /// Stops every loop (without stale markers: the data simply ends, as when
    /// Prometheus shuts down) and waits for them.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.inner.state.lock();
            state.shut_down = true;
            let _ = self.inner.shutdown.send(true);
            let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut state.retiring);
            for (_, mut job) in std::mem::take(&mut state.jobs) {
                tasks.append(&mut job.discovery_tasks);
                tasks.extend(job.loops.drain().map(|(_, h)| h.task));
            }
            state.kubernetes = None;
            tasks
        };
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The host collector `/metrics` appends, kept in step with the config.
    pub fn host_exposer(&self) -> Exposer {
        self.inner.host_exposer.clone()
    }

    /// HELP/TYPE/UNIT per metric family from the last successful scrape of
    /// every target, deduplicated (for `/api/v1/metadata`).
    pub fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        let mut out: BTreeMap<String, BTreeSet<MetricMetadata>> = BTreeMap::new();
        let state = self.inner.state.lock();
        for job in state.jobs.values() {
            for handle in job.loops.values() {
                for m in &handle.status.lock().metadata {
                    out.entry(m.metric.clone()).or_default().insert(m.clone());
                }
            }
        }
        out.into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect()
    }

    /// The active targets with their last scrape's health (for `/api/v1/targets`).
    pub fn targets(&self) -> Vec<TargetInfo> {
        let state = self.inner.state.lock();
        let mut out: Vec<TargetInfo> = state
            .jobs
            .values()
            .flat_map(|job| {
                job.loops.values().map(|h| TargetInfo {
                    job: job.settings.job_name.clone(),
                    discovered_labels: h.target.discovered_labels.clone(),
                    labels: h.target.labels.clone(),
                    scrape_url: h.target.url.clone(),
                    scrape_interval: h.target.interval,
                    scrape_timeout: h.target.timeout,
                    status: h.status.lock().clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.job, &a.labels).cmp(&(&b.job, &b.labels)));
        out
    }

    /// Targets relabeling dropped, as (job, discovered labels), by job name.
    pub fn dropped_targets(&self) -> Vec<(String, Labels)> {
        let state = self.inner.state.lock();
        let mut jobs: Vec<&Job> = state.jobs.values().collect();
        jobs.sort_by(|a, b| a.settings.job_name.cmp(&b.settings.job_name));
        jobs.iter()
            .flat_map(|job| {
                job.dropped
                    .iter()
                    .map(|l| (job.settings.job_name.clone(), l.clone()))
            })
            .collect()
    }
}

impl Job {
    fn new(
        inner: &Arc<Inner>,
        global: &GlobalConfig,
        config: &ScrapeConfig,
        fingerprint: String,
        generation: u64,
        kubernetes: Option<&Kubernetes>,
    ) -> Job {
        let settings = Arc::new(JobSettings::new(global, config));
        let (client, client_error) = match build_client(config) {
            Ok(client) => (client, None),
            Err(message) => {
                tracing::error!(job = %config.job_name, error = %message, "cannot build the scrape HTTP client; every scrape of this job will fail");
                (reqwest::Client::new(), Some(message))
            }
        };
        let static_groups = config
            .static_configs
            .iter()
            .enumerate()
            .map(|(i, s)| TargetGroup {
                source: format!("static/{i}"),
                targets: s.targets.clone(),
                labels: s.labels.clone(),
            })
            .collect();
        let mut discovered_groups = Vec::new();
        let mut discovery_tasks = Vec::new();
        for (index, sd) in config.file_sd_configs.iter().enumerate() {
            // The first read is synchronous so the job starts with its targets.
            let mut discovery = FileDiscovery::new(sd.clone(), inner.metrics.clone());
            discovery.refresh(true);
            discovered_groups.push(discovery.groups());
            let on_change = inner.discovery_callback(&config.job_name, generation, index);
            let shutdown = inner.shutdown.subscribe();
            discovery_tasks.push(tokio::spawn(discovery.run(on_change, shutdown)));
        }
        for sd in &config.kubernetes_sd_configs {
            let index = discovered_groups.len();
            let Some(kubernetes) = kubernetes else {
                tracing::error!(job = %config.job_name, "kubernetes_sd_configs finds no pods: the Kubernetes collector is not running (collectors.kubernetes; see docs/kubernetes.md)");
                discovered_groups.push(Vec::new());
                continue;
            };
            // The current pods synchronously, so the job starts with its targets.
            let pods = kubernetes.subscribe();
            let groups = crate::collect::kubernetes::discovery::target_groups(&pods.borrow(), sd);
            discovered_groups.push(groups.clone());
            let on_change = inner.discovery_callback(&config.job_name, generation, index);
            let shutdown = inner.shutdown.subscribe();
            discovery_tasks.push(tokio::spawn(crate::collect::kubernetes::run_discovery(
                pods,
                sd.clone(),
                groups,
                on_change,
                shutdown,
            )));
        }
        Job {
            fingerprint,
            generation,
            settings,
            client,
            client_error,
            auth: Arc::new(Auth::from_config(config)),
            static_groups,
            discovered_groups,
            discovery_tasks,
            loops: HashMap::new(),
            local: None,
            dropped: Vec::new(),
        }
    }
}

impl Inner {
    /// (Re)starts or stops the Kubernetes collector when the resolved
    /// `collectors.kubernetes` settings change; returns the generation of
    /// the running one.
    fn apply_kubernetes(&self, config: &Config, state: &mut ManagerState) -> Option<u64> {
        let settings = match Kubernetes::settings(config) {
            Ok(settings) => settings,
            Err(error) => {
                tracing::error!(error = %error, "the Kubernetes collector cannot start");
                None
            }
        };
        match (&state.kubernetes, settings) {
            (Some((running, generation)), Some(settings)) if running.settings == settings => {
                Some(*generation)
            }
            (_, Some(settings)) => {
                state.next_generation += 1;
                let generation = state.next_generation;
                let kubernetes = Kubernetes::start(
                    settings,
                    self.kubernetes_metrics.clone(),
                    self.host_metrics.errors.clone(),
                );
                state.kubernetes = Some((kubernetes, generation));
                Some(generation)
            }
            (_, None) => {
                state.kubernetes = None;
                None
            }
        }
    }

    /// The callback a discovery task calls with its provider's new groups.
    fn discovery_callback(
        self: &Arc<Self>,
        job_name: &str,
        generation: u64,
        index: usize,
    ) -> Arc<dyn Fn(Vec<TargetGroup>) + Send + Sync> {
        let weak: Weak<Inner> = Arc::downgrade(self);
        let job_name = job_name.to_string();
        Arc::new(move |groups| {
            if let Some(inner) = weak.upgrade() {
                inner.on_discovery(&job_name, generation, index, groups);
            }
        })
    }

    fn on_discovery(
        &self,
        job_name: &str,
        generation: u64,
        index: usize,
        groups: Vec<TargetGroup>,
    ) {
        let mut state = self.state.lock();
        if state.shut_down {
            return;
        }
        let Some(job) = state.jobs.get_mut(job_name) else {
            return;
        };
        if job.generation != generation || index >= job.discovered_groups.len() {
            return;
        }
        job.discovered_groups[index] = groups;
        let retiring = self.sync(job, false);
        state.retiring.extend(retiring);
    }

    /// Rebuilds the job's targets from its groups and diffs them against its
    /// loops. With `handover`, the existing loops belong to the previous config
    /// of the job: kept targets get a new loop that inherits their state.
    /// Returns the tasks of stopped loops.
    fn sync(&self, job: &mut Job, handover: bool) -> Vec<JoinHandle<()>> {
        let settings = job.settings.clone();
        let job_name = settings.job_name.as_str();
        let mut targets: Vec<Target> = Vec::new();
        let mut dropped = Vec::new();
        let mut keys = HashSet::new();
        let groups = job
            .static_groups
            .iter()
            .chain(job.discovered_groups.iter().flatten());
        for group in groups {
            for address in &group.targets {
                let discovered = discovered_labels(group, address);
                match target::populate(&discovered, &settings) {
                    Ok(Some(mut target)) => {
                        if let Some(local) = &job.local {
                            target.url = local.url();
                        }
                        if keys.insert((target.internal_labels.clone(), target.url.clone())) {
                            targets.push(target);
                        }
                    }
                    Ok(None) => dropped.push(target::with_defaults(&discovered, &settings)),
                    Err(error) => {
                        self.metrics
                            .target_errors
                            .get_or_create(&job_labels(job_name))
                            .inc();
                        tracing::warn!(job = job_name, source = %group.source, address = %address, error = %error, "dropping target");
                    }
                }
            }
        }
        job.dropped = dropped;
        let limit = settings.limits.target_limit;
        let forced = job.client_error.clone().or_else(|| {
            (limit > 0 && targets.len() as u64 > limit).then(|| {
                format!(
                    "target_limit exceeded (number of targets: {}, limit: {limit})",
                    targets.len()
                )
            })
        });
        if let Some(message) = &forced {
            tracing::warn!(job = job_name, error = %message, "all targets of the job fail");
        }
        let mut stopped = Vec::new();
        let mut loops = HashMap::with_capacity(targets.len());
        for target in targets {
            let key = (target.internal_labels.clone(), target.url.clone());
            let handle = match job.loops.remove(&key) {
                Some(handle) if !handover => {
                    *handle.forced_error.lock() = forced.clone();
                    handle
                }
                Some(old) => {
                    let (tx, rx) = oneshot::channel();
                    let _ = old.commands.send(Command::Handover(tx));
                    stopped.push(old.task);
                    self.start_loop(job, target, InitialState::From(rx), forced.clone())
                }
                None => self.start_loop(job, target, InitialState::Fresh, forced.clone()),
            };
            loops.insert(key, handle);
        }
        for (_, handle) in job.loops.drain() {
            let _ = handle.commands.send(Command::Stop);
            stopped.push(handle.task);
        }
        job.loops = loops;
        self.metrics
            .targets
            .get_or_create(&job_labels(job_name))
            .set(job.loops.len() as i64);
        stopped
    }

    fn start_loop(
        &self,
        job: &Job,
        target: Target,
        initial: InitialState,
        forced: Option<String>,
    ) -> LoopHandle {
        let (commands, receiver) = mpsc::unbounded_channel();
        let forced_error = Arc::new(Mutex::new(forced));
        let status = Arc::new(Mutex::new(TargetStatus::default()));
        let context = LoopContext {
            local: job.local.clone(),
            target: target.clone(),
            settings: job.settings.clone(),
            client: job.client.clone(),
            auth: job.auth.clone(),
            storage: self.storage.clone(),
            metrics: self.metrics.clone(),
            forced_error: forced_error.clone(),
            status: status.clone(),
            jitter_seed: self.jitter_seed,
        };
        let task = tokio::spawn(ScrapeLoop::run(
            context,
            initial,
            receiver,
            self.shutdown.subscribe(),
        ));
        LoopHandle {
            target,
            commands,
            forced_error,
            status,
            task,
        }
    }
}

/// Everything in a job's effective config that affects scraping, secrets
/// included (their `Debug` hides them), as a comparable string.
fn fingerprint(global: &GlobalConfig, job: &ScrapeConfig) -> String {
    let settings = JobSettings::new(global, job);
    let secrets = (
        job.basic_auth
            .as_ref()
            .and_then(|b| b.password.as_ref().map(|p| p.expose().to_string())),
        job.authorization
            .as_ref()
            .and_then(|a| a.credentials.as_ref().map(|c| c.expose().to_string())),
        job.bearer_token.as_ref().map(|t| t.expose().to_string()),
    );
    format!("{job:?}\n{settings:?}\n{secrets:?}")
}

/// The HTTP client of one job: TLS settings and the redirect policy.
fn build_client(job: &ScrapeConfig) -> Result<reqwest::Client, String> {
    build_http_client(job.tls_config.as_ref(), job.follow_redirects, &job.job_name)
}

/// An HTTP client with a Prometheus-style `tls_config` (CA, client
/// certificate, `insecure_skip_verify`); `owner` names the job or
/// Alertmanager in warnings. (`tls_config.server_name` is not supported by
/// the HTTP client yet: warned.)
pub(crate) fn build_http_client(
    tls: Option<&crate::config::TlsConfig>,
    follow_redirects: bool,
    owner: &str,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().redirect(if follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    });
    if let Some(tls) = tls {
        let read = |what: &str, path: &str| {
            std::fs::read(path).map_err(|e| format!("tls_config.{what}: cannot read {path}: {e}"))
        };
        if let Some(ca_file) = &tls.ca_file {
            let pem = read("ca_file", ca_file)?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!("tls_config.ca_file: {ca_file} is not a PEM certificate bundle: {e}")
            })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read("cert_file", cert)?;
                pem.push(b'\n');
                pem.extend(read("key_file", key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!("tls_config: {cert} and {key} are not a PEM certificate and key: {e}")
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err("tls_config: cert_file and key_file must be set together".to_string()),
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        if let Some(name) = &tls.server_name {
            tracing::warn!(owner, server_name = %name, "tls_config.server_name is not supported yet; the URL's host name is verified instead");
        }
    }
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// Spreads the targets of different nodes differently, like Prometheus's
/// seed from the host name.
fn jitter_seed() -> u64 {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let mut h = target::Fnv64::new();
    h.write(host.trim().as_bytes());
    h.finish()
}
