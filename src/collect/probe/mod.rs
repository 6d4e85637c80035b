//! Health probes: HTTP(S), TCP (optionally TLS) and PostgreSQL, with
//! blackbox_exporter's metric names (docs/probes.md).
//!
//! Files, one role each:
//! * `mod.rs` (this file): [`ProbeManager`], one loop per (job, target) kept in
//!   step with the config; the shared pieces of a probe ([`Recorder`],
//!   [`Failure`], name resolution with a preferred IP version);
//! * [`config`]: the `probes` section and its checks;
//! * [`http`], [`tcp`], [`postgres`]: the probers, one probe of one target each;
//! * [`tls`]: rustls client configs and the handshake's facts;
//! * [`der`]: the certificate `notAfter` reader (fuzzed);
//! * [`metrics`]: the `bellwether_probe_*` self metrics.
//!
//! A probe's result leaves as Prometheus text exposition, exactly what a
//! Prometheus would scrape from blackbox_exporter's `/probe`, and goes through
//! the scrape loop's append path ([`LoopState::append`] and
//! [`commit_batch`]): the same labelling, series-ref cache and staleness
//! (a series a probe no longer reports, e.g. `pg_connections_in_use` while
//! the database is down, gets a stale marker; a removed target gets
//! end-of-run markers one interval after its last probe). Nothing here reads
//! the store.

pub mod config;
pub mod der;
pub mod http;
pub mod metrics;
pub mod postgres;
pub mod tcp;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use rustls::ClientConfig;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use self::config::{IpProtocol, ProbeJob, ProberKind};
use self::metrics::ProbeMetrics;
use self::tls::TlsInfo;
use crate::collect::host::exposition::{write_family_header, write_sample};
use crate::collect::scrape::parse::Format;
use crate::collect::scrape::scrape_loop::{
    commit_batch, stale_marker_time, AppendOptions, LoopState,
};
use crate::collect::scrape::target::{Fnv64, Limits};
use crate::config::Config;
use crate::model::{now_millis, Labels};
use crate::storage::Storage;

// ------------------------------------------------------------------ one probe

/// Why a probe failed: the `reason` label of `bellwether_probe_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The name did not resolve (or not to the wanted IP version).
    Resolve,
    /// TCP connect failed (refused, unreachable) or the target is malformed.
    Connect,
    /// TLS handshake failed (untrusted, wrong name, not TLS) or a
    /// `fail_if_ssl`/`fail_if_not_ssl` check.
    Tls,
    /// An HTTP protocol error, a bad redirect, too many redirects.
    Http,
    /// The status code is not a valid one.
    StatusCode,
    /// A body regex check failed.
    BodyRegex,
    /// The body was larger than `body_size_limit`.
    BodySizeLimit,
    /// A PostgreSQL query failed (`SELECT 1`, the connection count, a custom query).
    Query,
    /// A password file could not be read.
    Credentials,
    /// The probe did not finish within its timeout.
    Timeout,
    /// No probe slot (`max_concurrent_probes`) became free within the
    /// timeout, or waiting for one took more than half of it and the probe
    /// then timed out.
    ConcurrencyLimit,
    /// The job could not be set up (e.g. its `ca_file` became unreadable).
    Setup,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Resolve => "resolve",
            Reason::Connect => "connect",
            Reason::Tls => "tls",
            Reason::Http => "http",
            Reason::StatusCode => "status_code",
            Reason::BodyRegex => "body_regex",
            Reason::BodySizeLimit => "body_size_limit",
            Reason::Query => "query",
            Reason::Credentials => "credentials",
            Reason::Timeout => "timeout",
            Reason::ConcurrencyLimit => "concurrency_limit",
            Reason::Setup => "setup",
        }
    }
}

/// A probe failure: its reason and a message for the log.
#[derive(Clone, Debug)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: Reason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }
}

/// One metric family of a probe's result.
struct Family {
    name: String,
    help: String,
    kind: &'static str,
    samples: Vec<(Vec<(String, String)>, f64)>,
}

/// Collects a probe's metrics as the prober learns them, so a probe cut off
/// by its timeout still reports what it measured.
#[derive(Default)]
pub struct Recorder {
    families: Vec<Family>,
    /// Problems that did not fail the probe (a custom query's error).
    errors: Vec<Failure>,
}

impl Recorder {
    /// Sets a gauge without labels (replacing an earlier value).
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.set(name, help, "gauge", &[], value);
    }

    /// Sets a gauge with labels (replacing an earlier value of the same labels).
    pub fn gauge_with(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.set(name, help, "gauge", labels, value);
    }

    /// Adds a sample of any type.
    pub fn sample(
        &mut self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.set(name, help, kind, labels, value);
    }

    fn set(
        &mut self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let family = match self.families.iter_mut().position(|f| f.name == name) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                let last = self.families.len() - 1;
                &mut self.families[last]
            }
        };
        match family.samples.iter_mut().find(|(l, _)| *l == labels) {
            Some(sample) => sample.1 = value,
            None => family.samples.push((labels, value)),
        }
    }

    /// Records a problem that does not fail the probe.
    pub fn error(&mut self, failure: Failure) {
        self.errors.push(failure);
    }

    fn has(&self, name: &str) -> bool {
        self.families.iter().any(|f| f.name == name)
    }

    /// The metrics as Prometheus text exposition 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            write_family_header(&mut out, &family.name, &family.help, family.kind);
            for (labels, value) in &family.samples {
                write_sample(&mut out, &family.name, labels, *value);
            }
        }
        out
    }
}

/// The TLS facts every prober reports the same way.
pub(crate) fn record_tls(rec: &mut Recorder, info: &TlsInfo) {
    if let Some(expiry) = info.earliest_expiry {
        rec.gauge(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
            expiry as f64,
        );
    }
    rec.gauge_with(
        "probe_tls_version_info",
        "Returns the TLS version used or NaN when unknown",
        &[("version", &info.version)],
        1.0,
    );
    if !info.cipher.is_empty() {
        rec.gauge_with(
            "probe_tls_cipher_info",
            "Returns the TLS cipher negotiated during handshake",
            &[("cipher", &info.cipher)],
            1.0,
        );
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6); without a port, `default_port`
/// applies if given, else it is an error.
pub fn split_host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the address".to_string())?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err("unexpected text after `]`".to_string()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err("an IPv6 address needs brackets: [addr]:port".to_string())
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("invalid port {p:?}"))?,
        None => default_port.ok_or_else(|| "no port".to_string())?,
    };
    Ok((host.to_string(), port))
}

/// Resolves `host` and picks an address as blackbox_exporter does: the first
/// of the preferred IP version, else (with `fallback`) the first of the
/// other. With a recorder, reports `probe_dns_lookup_time_seconds` and
/// `probe_ip_protocol`.
pub async fn resolve(
    host: &str,
    port: u16,
    preferred: IpProtocol,
    fallback: bool,
    rec: Option<&mut Recorder>,
) -> Result<SocketAddr, Failure> {
    let started = Instant::now();
    let found = tokio::net::lookup_host((host, port)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut rec = rec;
    if let Some(rec) = rec.as_deref_mut() {
        rec.gauge(
            "probe_dns_lookup_time_seconds",
            "Returns the time taken for probe dns lookup in seconds",
            elapsed,
        );
    }
    let addrs: Vec<SocketAddr> = found
        .map_err(|e| Failure::new(Reason::Resolve, format!("resolving {host:?}: {e}")))?
        .collect();
    let want_v6 = preferred == IpProtocol::Ip6;
    let chosen = addrs
        .iter()
        .find(|a| a.is_ipv6() == want_v6)
        .or_else(|| if fallback { addrs.first() } else { None })
        .copied()
        .ok_or_else(|| {
            Failure::new(
                Reason::Resolve,
                format!(
                    "{host:?} has no {} address (set ip_protocol_fallback: true to use the other)",
                    if want_v6 { "IPv6" } else { "IPv4" }
                ),
            )
        })?;
    if let Some(rec) = rec {
        rec.gauge(
            "probe_ip_protocol",
            "Specifies whether probe ip protocol is IP4 or IP6",
            if chosen.is_ipv6() { 6.0 } else { 4.0 },
        );
    }
    Ok(chosen)
}

// ------------------------------------------------------------------ jobs

/// A job ready to probe: its config and what was built from it once.
struct JobRuntime {
    config: ProbeJob,
    /// The TLS client config (http: always; tcp: with `tls: true`), or why
    /// it could not be built (every probe then fails with reason `setup`).
    tls: Result<Option<Arc<ClientConfig>>, String>,
}

impl JobRuntime {
    fn new(config: ProbeJob) -> JobRuntime {
        let tls = match config.prober {
            ProberKind::Http => {
                let settings = config.http.clone().unwrap_or_default();
                tls::client_config(&settings.tls_config, &[b"http/1.1"]).map(Some)
            }
            ProberKind::Tcp => match &config.tcp {
                Some(tcp) if tcp.tls => tls::client_config(&tcp.tls_config, &[]).map(Some),
                _ => Ok(None),
            },
            ProberKind::Postgres => Ok(None),
        };
        JobRuntime { config, tls }
    }

    async fn probe(&self, target: &str, rec: &mut Recorder) -> Result<(), Failure> {
        let tls = self
            .tls
            .as_ref()
            .map_err(|e| Failure::new(Reason::Setup, e.clone()))?;
        match self.config.prober {
            ProberKind::Http => {
                let settings = self.config.http.clone().unwrap_or_default();
                let tls = tls
                    .as_ref()
                    .ok_or_else(|| Failure::new(Reason::Setup, "no TLS config"))?;
                http::probe(&settings, tls, target, rec).await
            }
            ProberKind::Tcp => {
                let settings = self.config.tcp.clone().unwrap_or_default();
                tcp::probe(&settings, tls.as_ref(), target, rec).await
            }
            ProberKind::Postgres => {
                let settings = self.config.postgres.clone().unwrap_or_default();
                postgres::probe(&settings, target, self.config.timeout(), rec).await
            }
        }
    }
}

/// Everything in a job's config, secrets included, as a comparable string.
fn fingerprint(job: &ProbeJob) -> String {
    let password = job
        .postgres
        .as_ref()
        .and_then(|p| p.password.as_ref().map(|s| s.expose().to_string()));
    format!("{job:?}\n{password:?}")
}

// ------------------------------------------------------------------ the manager

/// Runs one probe loop per (job, target) and keeps them in step with the
/// `probes` section.
pub struct ProbeManager {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    metrics: ProbeMetrics,
    shutdown: watch::Sender<bool>,
    state: Mutex<ManagerState>,
}

struct ManagerState {
    /// Job name → (fingerprint, runtime).
    jobs: BTreeMap<String, (String, Arc<JobRuntime>)>,
    loops: HashMap<(String, String), LoopHandle>,
    semaphore: Arc<Semaphore>,
    max_concurrent: usize,
    retiring: Vec<JoinHandle<()>>,
    shut_down: bool,
}

struct LoopHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

/// How the manager ends a loop.
enum Command {
    /// The target is gone: end-of-run stale markers, then exit.
    Stop,
    /// The job changed but the target stays: hand the state to the new loop.
    Handover(oneshot::Sender<Carried>),
}

/// What a loop hands to its replacement.
#[derive(Default)]
struct Carried {
    state: LoopState,
    consecutive_failures: u64,
}

impl ProbeManager {
    /// Creates the manager and registers its metrics. Starts nothing.
    pub fn new(storage: Storage, registry: &mut Registry) -> ProbeManager {
        let metrics = ProbeMetrics::default();
        metrics.register(registry);
        let (shutdown, _) = watch::channel(false);
        ProbeManager {
            inner: Arc::new(Inner {
                storage,
                metrics,
                shutdown,
                state: Mutex::new(ManagerState {
                    jobs: BTreeMap::new(),
                    loops: HashMap::new(),
                    semaphore: Arc::new(Semaphore::new(32)),
                    max_concurrent: 32,
                    retiring: Vec::new(),
                    shut_down: false,
                }),
            }),
        }
    }

    /// Starts, stops and updates probe loops to match `config.probes`. Loops
    /// of unchanged jobs keep running; a changed job's remaining targets get
    /// new loops that take over the old ones' staleness state and failure
    /// counts. Must be called inside the tokio runtime.
    pub fn apply_config(&self, config: &Config) {
        let inner = &self.inner;
        let mut state = inner.state.lock();
        if state.shut_down {
            return;
        }
        state.retiring.retain(|t| !t.is_finished());
        let section = &config.probes;
        let mut limit_changed = false;
        if section.max_concurrent_probes.max(1) != state.max_concurrent {
            state.max_concurrent = section.max_concurrent_probes.max(1);
            state.semaphore = Arc::new(Semaphore::new(state.max_concurrent));
            limit_changed = true;
        }
        let old_jobs = std::mem::take(&mut state.jobs);
        let mut old_loops = std::mem::take(&mut state.loops);
        for job in &section.jobs {
            if state.jobs.contains_key(&job.name) {
                continue; // refused by validation; defensive.
            }
            let print = fingerprint(job);
            let (unchanged, runtime) = match old_jobs.get(&job.name) {
                Some((old_print, runtime)) if *old_print == print && !limit_changed => {
                    (true, runtime.clone())
                }
                _ => (false, Arc::new(JobRuntime::new(job.clone()))),
            };
            if let Err(e) = &runtime.tls {
                tracing::error!(job = %job.name, error = %e, "cannot set up the probe job; every probe of it will fail");
            }
            let mut count = 0;
            for target in &job.targets {
                let key = (job.name.clone(), target.clone());
                if state.loops.contains_key(&key) {
                    continue;
                }
                count += 1;
                let handle = match old_loops.remove(&key) {
                    Some(handle) if unchanged => handle,
                    Some(old) => {
                        let (tx, rx) = oneshot::channel();
                        let _ = old.commands.send(Command::Handover(tx));
                        state.retiring.push(old.task);
                        inner.start_loop(&runtime, target, Some(rx), &state.semaphore)
                    }
                    None => inner.start_loop(&runtime, target, None, &state.semaphore),
                };
                state.loops.insert(key, handle);
            }
            inner
                .metrics
                .targets
                .get_or_create(&metrics::job_labels(&job.name))
                .set(count);
            state.jobs.insert(job.name.clone(), (print, runtime));
        }
        for ((job, target), handle) in old_loops {
            tracing::info!(job = %job, target = %target, "probe target removed; its series are marked stale");
            let _ = handle.commands.send(Command::Stop);
            state.retiring.push(handle.task);
        }
        for name in old_jobs.keys() {
            if !state.jobs.contains_key(name) {
                inner.metrics.targets.remove(&metrics::job_labels(name));
            }
        }
    }

    /// Stops every loop (no stale markers: the data simply ends) and waits.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut state = self.inner.state.lock();
            state.shut_down = true;
            let _ = self.inner.shutdown.send(true);
            let mut tasks = std::mem::take(&mut state.retiring);
            tasks.extend(state.loops.drain().map(|(_, h)| h.task));
            tasks
        };
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Inner {
    fn start_loop(
        &self,
        job: &Arc<JobRuntime>,
        target: &str,
        handover: Option<oneshot::Receiver<Carried>>,
        semaphore: &Arc<Semaphore>,
    ) -> LoopHandle {
        let (commands, receiver) = mpsc::unbounded_channel();
        let mut labels = Labels::default();
        for (name, value) in &job.config.labels {
            labels.set(name, value);
        }
        labels.set("job", &job.config.name);
        labels.set("instance", target);
        let probe_loop = ProbeLoop {
            job: job.clone(),
            target: target.to_string(),
            labels,
            storage: self.storage.clone(),
            metrics: self.metrics.clone(),
            semaphore: semaphore.clone(),
            carried: Carried::default(),
        };
        let task = tokio::spawn(probe_loop.run(handover, receiver, self.shutdown.subscribe()));
        LoopHandle { commands, task }
    }
}

/// One target of one job.
struct ProbeLoop {
    job: Arc<JobRuntime>,
    target: String,
    /// job, instance and the job's static labels.
    labels: Labels,
    storage: Storage,
    metrics: ProbeMetrics,
    semaphore: Arc<Semaphore>,
    carried: Carried,
}

impl ProbeLoop {
    async fn run(
        mut self,
        handover: Option<oneshot::Receiver<Carried>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if let Some(rx) = handover {
            self.carried = rx.await.unwrap_or_default();
        }
        let interval = self.job.config.interval();
        // Spread the first probes of a job's targets over the interval.
        let mut hash = Fnv64::new();
        hash.write(self.job.config.name.as_bytes());
        hash.write(&[0]);
        hash.write(self.target.as_bytes());
        let offset =
            Duration::from_nanos((u128::from(hash.finish()) % interval.as_nanos().max(1)) as u64);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                command = commands.recv() => return self.finish(command, &mut ticker, &mut shutdown).await,
                _ = ticker.tick() => {}
            }
            let t = now_millis();
            let started = Instant::now();
            let mut rec = Recorder::default();
            let result = tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                command = commands.recv() => return self.finish(command, &mut ticker, &mut shutdown).await,
                result = probe_within_timeout(&self.job, &self.target, &self.semaphore, &mut rec) => result,
            };
            self.probe_done(rec, result, t, started);
        }
    }

    fn probe_done(
        &mut self,
        mut rec: Recorder,
        result: Result<(), Failure>,
        t: i64,
        started: Instant,
    ) {
        let job = self.job.config.name.as_str();
        let success = result.is_ok();
        if success {
            self.carried.consecutive_failures = 0;
        } else {
            self.carried.consecutive_failures += 1;
        }
        if self.job.config.prober == ProberKind::Postgres && !rec.has("pg_up") {
            rec.gauge(
                "pg_up",
                "Whether the probe could connect and run SELECT 1 (1) or not (0)",
                0.0,
            );
        }
        rec.gauge(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            started.elapsed().as_secs_f64(),
        );
        rec.gauge(
            "probe_success",
            "Displays whether or not the probe was a success",
            if success { 1.0 } else { 0.0 },
        );
        rec.gauge(
            "probe_consecutive_failures",
            "How many probes of this target have failed in a row; 0 after a success",
            self.carried.consecutive_failures as f64,
        );
        let metrics = &self.metrics;
        metrics
            .probes
            .get_or_create(&metrics::job_prober_labels(
                job,
                self.job.config.prober.name(),
            ))
            .inc();
        for failure in result.as_ref().err().into_iter().chain(rec.errors.iter()) {
            metrics
                .failures
                .get_or_create(&metrics::job_reason_labels(job, failure.reason.as_str()))
                .inc();
            tracing::debug!(job, target = %self.target, reason = failure.reason.as_str(), error = %failure.message, "probe failed");
        }

        let text = rec.render();
        let opts = AppendOptions {
            target_labels: &self.labels,
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            metric_relabel_configs: &[],
            limits: Limits::default(),
        };
        let batch = self.carried.state.append(
            Some((text.as_bytes(), Format::Text)),
            t,
            now_millis(),
            &opts,
        );
        if let Some(e) = &batch.error {
            // Cannot happen for text this module renders; say so if it does.
            tracing::warn!(job, target = %self.target, error = %e, "probe result refused");
        }
        if let Err(e) = commit_batch(
            &self.storage,
            &mut self.carried.state,
            batch.samples,
            Vec::new(),
        ) {
            tracing::warn!(job, target = %self.target, error = %e, "probe commit failed");
        }
    }

    async fn finish(
        self,
        command: Option<Command>,
        ticker: &mut tokio::time::Interval,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        let mut this = self;
        match command {
            Some(Command::Handover(tx)) => {
                let _ = tx.send(this.carried);
            }
            Some(Command::Stop) | None => {
                // As a removed scrape target: markers at the time of the first
                // missed probe, written one interval and 10 % later.
                let Some(stale_time) =
                    stale_marker_time(ticker, shutdown, this.job.config.interval()).await
                else {
                    return;
                };
                let samples = this.carried.state.end_of_run(stale_time, &this.labels);
                if let Err(e) =
                    commit_batch(&this.storage, &mut this.carried.state, samples, Vec::new())
                {
                    tracing::warn!(target = %this.target, error = %e, "writing stale markers for a removed probe target failed");
                }
            }
        }
    }
}

/// One probe, bounded by the job's timeout (waiting for a probe slot included).
async fn probe_within_timeout(
    job: &JobRuntime,
    target: &str,
    semaphore: &Semaphore,
    rec: &mut Recorder,
) -> Result<(), Failure> {
    let timeout = job.config.timeout();
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let _permit =
        match tokio::time::timeout_at(deadline, semaphore.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(Failure::new(
                Reason::ConcurrencyLimit,
                "no probe slot became free within the timeout (raise probes.max_concurrent_probes)",
            )),
        };
    let waited = started.elapsed();
    match tokio::time::timeout_at(deadline, job.probe(target, rec)).await {
        Ok(result) => result,
        // When waiting for the slot took most of the time, the shortage of
        // slots failed the probe more than the target did.
        Err(_) if waited > timeout / 2 => Err(Failure::new(
            Reason::ConcurrencyLimit,
            format!(
                "timed out after {timeout:?}, {waited:?} of it waiting for a probe slot (raise probes.max_concurrent_probes)"
            ),
        )),
        Err(_) => Err(Failure::new(
            Reason::Timeout,
            format!("timed out after {timeout:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports_split() {
        assert_eq!(split_host_port("a:1", None), Ok(("a".into(), 1)));
        assert_eq!(split_host_port("[::1]:5", None), Ok(("::1".into(), 5)));
        assert_eq!(split_host_port("[::1]", Some(7)), Ok(("::1".into(), 7)));
        assert_eq!(split_host_port("db", Some(5432)), Ok(("db".into(), 5432)));
        assert!(split_host_port("db", None).is_err());
        assert!(split_host_port("::1:5", None).is_err());
        assert!(split_host_port("a:0", None).is_err());
        assert!(split_host_port("a:x", None).is_err());
        assert!(split_host_port(":80", None).is_err());
        assert!(split_host_port("[::1", None).is_err());
    }

    #[test]
    fn results_render_as_exposition_the_parser_reads() {
        let mut rec = Recorder::default();
        rec.gauge("probe_success", "ok", 1.0);
        rec.gauge_with(
            "probe_http_duration_seconds",
            "x",
            &[("phase", "tls")],
            0.25,
        );
        rec.gauge_with(
            "probe_http_duration_seconds",
            "x",
            &[("phase", "connect")],
            1e-7,
        );
        rec.sample(
            "q_v",
            "a \\ help\nline",
            "counter",
            &[("l", "a\"b\\c\nd")],
            f64::NAN,
        );
        rec.gauge("probe_success", "ok", 0.0);
        let text = rec.render();
        let mut parser = crate::collect::scrape::parse::Parser::new(text.as_bytes(), Format::Text);
        let mut series = 0;
        while let Some(entry) = parser.next_entry().expect("parses") {
            if let crate::collect::scrape::parse::Entry::Series(_) = entry {
                series += 1;
            }
        }
        assert_eq!(series, 4, "{text}");
        assert!(text.contains("probe_success 0\n"), "{text}");
    }
}
