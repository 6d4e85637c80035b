//! Wires the parts together: opens the store, starts the scrape manager and
//! the HTTP server, reloads the config on SIGHUP and `POST /-/reload`, and
//! shuts down in order on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::api::{self, AppState, ReloadRequest, RuntimeStatus};
use crate::collect::probe::ProbeManager;
use crate::collect::scrape::ScrapeManager;
use crate::config::{self, Config};
use crate::notify::alerts::Clock;
use crate::notify::deliver::Deliverer;
use crate::notify::{Dispatcher, Router};
use crate::promql::{Engine, EngineOptions};
use crate::rules::{Group, ManagerOptions, RuleManager};
use crate::storage::{Storage, StorageOptions};
use crate::telemetry::ConfigMetrics;

/// What `bellwether run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The config file; `None` runs on the embedded default config.
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// Overrides `web.listen_address`.
    pub listen: Option<String>,
}

/// Loads the config named by the options, or the embedded default.
pub fn load_config(config_file: Option<&Path>) -> Result<Config, config::ConfigError> {
    match config_file {
        Some(path) => config::load_file(path),
        None => config::load_str(config::DEFAULT_CONFIG, "<embedded default config>"),
    }
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let config = load_config(options.config_file.as_deref())?;
    // Rule files are checked before anything starts: a bad one refuses the start.
    let groups =
        load_rules(&config, options.config_file.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen = options
        .listen
        .clone()
        .unwrap_or_else(|| config.web.listen_address.clone());
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen address {listen:?} is not host:port"))?;
    // Bind first: a port conflict should fail before any recovery work.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    // The OTLP-only listener, bound as early and for the same reason.
    let otlp_listener = match &config.web.otlp_listen_address {
        Some(address) => Some(bind_otlp(address).await?),
        None => None,
    };
    tracing::info!(address = %addr, data_dir = %options.data_dir.display(), "bellwether starting");

    // Until the store has recovered, a minimal router answers: healthy, not ready.
    let current: Arc<RwLock<Option<axum::Router>>> = Arc::new(RwLock::new(None));
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let server = tokio::spawn(serve(
        listener,
        current.clone(),
        shutdown.clone(),
        recovering,
    ));
    let otlp_current: Arc<RwLock<Option<axum::Router>>> = Arc::new(RwLock::new(None));
    let otlp_shutdown = Arc::new(tokio::sync::Notify::new());
    let otlp_server = otlp_listener.map(|listener| {
        tokio::spawn(serve(
            listener,
            otlp_current.clone(),
            otlp_shutdown.clone(),
            otlp_recovering,
        ))
    });

    let storage_options = storage_options(&config, &options.data_dir);
    let storage = tokio::task::spawn_blocking(move || Storage::open(storage_options))
        .await
        .context("store recovery panicked")?
        .context("cannot open the store")?;

    let mut registry = Registry::default();
    let config_metrics = ConfigMetrics::default();
    config_metrics.register(&mut registry);
    let ingest_metrics = crate::ingest::IngestMetrics::default();
    ingest_metrics.register(&mut registry);
    crate::otlp::register_metrics(&mut registry);
    storage.register_metrics(&mut registry);
    let llm = Arc::new(
        crate::llm::UsageService::start(
            storage.clone(),
            &options.data_dir,
            &config.llm,
            &listen,
            &mut registry,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let scrape = Arc::new(ScrapeManager::new(storage.clone(), &mut registry));
    scrape.apply_config(&config);
    let probes = ProbeManager::new(storage.clone(), &mut registry);
    probes.apply_config(&config);

    // Silences (src/notify/silences.rs): loaded before the API serves, kept
    // across reloads; the same store is the dispatcher's `Silencer`.
    let silences_dir = options.data_dir.clone();
    let silences = tokio::task::spawn_blocking(move || {
        crate::notify::silences::Silences::open(
            &silences_dir,
            crate::notify::silences::DEFAULT_RETENTION_MS,
            crate::model::now_millis(),
        )
    })
    .await
    .context("opening silences panicked")?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let silences = Arc::new(silences);
    silences.register_metrics(&mut registry);
    let silences_gc = tokio::spawn(silences.clone().run_maintenance());
    let notify_config = crate::notify::notify_config_of(&config)
        .ok_or_else(|| anyhow::anyhow!("notify: the default notification config does not load"))?;
    // Delivery (src/notify/deliver/): the notification log and the outbox
    // in bellwether.db; pending notifications of a previous run resume.
    let (delivery, returned) = {
        let data_dir = options.data_dir.clone();
        let notify_config = notify_config.clone();
        let url = external_url(&config, &listen);
        let mut registry = registry;
        tokio::task::spawn_blocking(move || {
            let delivery = Deliverer::open(&data_dir, &notify_config, &url, &mut registry);
            (delivery, registry)
        })
        .await
        .context("opening the notification outbox panicked")?
    };
    registry = returned;
    let delivery = delivery.map_err(|e| anyhow::anyhow!("notify: {e}"))?;
    let delivery_worker = delivery.spawn();
    let router = Router::new(
        &notify_config,
        silences.clone(),
        delivery.clone(),
        Clock::System,
    );
    router.register_metrics(&mut registry);
    let router_task = tokio::spawn(router.clone().run());
    let dispatcher = Dispatcher::new(&mut registry, router.clone());
    dispatcher
        .apply_config(&config)
        .map_err(|e| anyhow::anyhow!("alerting.alertmanagers: {e}"))?;
    let (alert_tx, alert_rx) = crate::notify::channel();
    let dispatcher_task = tokio::spawn(dispatcher.clone().run(alert_rx));
    let state_dir = options.data_dir.clone();
    let alert_state =
        tokio::task::spawn_blocking(move || crate::rules::AlertStateStore::open(&state_dir))
            .await
            .context("opening alert state panicked")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = RuleManager::new(
        Engine::new(storage.clone(), EngineOptions::default()),
        storage.clone(),
        manager_options(&config),
        Some(alert_state),
        alert_tx,
        &mut registry,
    );
    rules
        .update(
            groups,
            config.global.external_labels.clone(),
            external_url(&config, &listen),
        )
        .await;
    let alertmanager_api = Arc::new(api::silences::AlertmanagerApi::new(
        silences.clone(),
        api::silences::NotifyView::from_config(
            &config,
            &config_text(options.config_file.as_deref()),
        ),
    ));
    let status = Arc::new(RuntimeStatus::new(
        flags(&options),
        api::status::describe_retention(
            config.storage.retention.as_duration(),
            config.storage.retention_size.map(|s| s.0),
        ),
        &config_text(options.config_file.as_deref()),
    ));
    config_metrics.last_reload_successful.set(1);
    config_metrics
        .last_reload_success_timestamp_seconds
        .set(crate::model::now_millis() / 1000);

    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        storage: storage.clone(),
        ready: ready.clone(),
        registry: Arc::new(registry),
        reload: reload_tx,
        max_request_body: config.web.max_request_body.0 as usize,
        write_token: write_token(&config)?,
        ingest_metrics,
        targets: scrape.clone(),
        status: status.clone(),
        rules: rules.clone(),
        alertmanager: alertmanager_api.clone(),
        notify: router.clone(),
        delivery: Some(delivery.clone()),
        llm: Some(llm.clone()),
        host_metrics: scrape.host_exposer(),
    };
    *otlp_current.write() = Some(crate::otlp::router(state.clone()));
    *current.write() = Some(api::router(state));
    ready.store(true, Ordering::Release);
    tracing::info!("bellwether is ready");

    let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    loop {
        let answer = tokio::select! {
            _ = hangup.recv() => None,
            request = reload_rx.recv() => request,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let outcome = reload(
            options.config_file.as_deref(),
            &listen,
            Parts {
                scrape: &scrape,
                probes: &probes,
                dispatcher: &dispatcher,
                rules: &rules,
                alertmanager: &alertmanager_api,
                delivery: &delivery,
                llm: &llm,
            },
            &config_metrics,
            &status,
        )
        .await;
        if let Some(answer) = answer {
            let _ = answer.send(outcome);
        }
    }

    tracing::info!("shutting down");
    ready.store(false, Ordering::Release);
    silences_gc.abort();
    scrape.shutdown().await;
    probes.shutdown().await;
    // Closes the alert channel; the dispatcher forwards what was sent, then ends.
    rules.shutdown().await;
    if tokio::time::timeout(std::time::Duration::from_secs(5), dispatcher_task)
        .await
        .is_err()
    {
        tracing::warn!("the alert dispatcher did not finish within 5s; exiting anyway");
    }
    router.stop();
    let _ = router_task.await;
    delivery.stop();
    if tokio::time::timeout(std::time::Duration::from_secs(5), delivery_worker)
        .await
        .is_err()
    {
        tracing::warn!("notification delivery did not finish within 5s; pending notifications resume at the next start");
    }
    shutdown.notify_one();
    otlp_shutdown.notify_one();
    let _ = server.await;
    if let Some(otlp_server) = otlp_server {
        let _ = otlp_server.await;
    }
    // After the server: no usage arrives any more; the queue is written.
    tokio::task::spawn_blocking(move || llm.shutdown())
        .await
        .context("LLM usage shutdown panicked")?;
    tokio::task::spawn_blocking(move || storage.close())
        .await
        .context("store shutdown panicked")?
        .context("closing the store")?;
    tracing::info!("bellwether stopped");
    Ok(())
}

/// What a reload reconfigures.
struct Parts<'a> {
    scrape: &'a ScrapeManager,
    probes: &'a ProbeManager,
    dispatcher: &'a Dispatcher,
    rules: &'a Arc<RuleManager>,
    alertmanager: &'a api::silences::AlertmanagerApi,
    delivery: &'a Deliverer,
    llm: &'a crate::llm::UsageService,
}

/// Re-reads the config and the rule files; if either is bad, the whole
/// reload is refused and the old config and rules stay in force.
async fn reload(
    config_file: Option<&Path>,
    listen: &str,
    parts: Parts<'_>,
    metrics: &ConfigMetrics,
    status: &RuntimeStatus,
) -> Result<(), String> {
    let loaded = load_config(config_file)
        .map_err(|e| e.to_string())
        .and_then(|config| load_rules(&config, config_file).map(|groups| (config, groups)));
    match loaded {
        Ok((config, groups)) => {
            parts.scrape.apply_config(&config);
            parts.llm.apply_config(&config.llm);
            parts.probes.apply_config(&config);
            if let Err(e) = parts.dispatcher.apply_config(&config) {
                tracing::error!(error = %e, "alerting.alertmanagers could not be applied; alerts are not forwarded");
            }
            if let Some(notify) = crate::notify::notify_config_of(&config) {
                if let Err(e) = parts
                    .delivery
                    .apply_config(&notify, &external_url(&config, listen))
                {
                    tracing::error!(error = %e, "notify receivers could not be rebuilt; the previous receivers stay in force");
                }
            }
            parts
                .rules
                .update(
                    groups,
                    config.global.external_labels.clone(),
                    external_url(&config, listen),
                )
                .await;
            status.config_loaded(&config_text(config_file));
            parts
                .alertmanager
                .config_loaded(api::silences::NotifyView::from_config(
                    &config,
                    &config_text(config_file),
                ));
            metrics.last_reload_successful.set(1);
            metrics
                .last_reload_success_timestamp_seconds
                .set(crate::model::now_millis() / 1000);
            tracing::info!("configuration reloaded");
            Ok(())
        }
        Err(e) => {
            metrics.last_reload_successful.set(0);
            metrics.reloads_failed.inc();
            status.config_refused();
            tracing::error!(error = %e, "configuration reload refused; the previous config and rules stay in force");
            Err(e)
        }
    }
}

/// Loads the rule files the config names, all or nothing. On the embedded
/// default config, the default rules compiled into the binary come first.
fn load_rules(config: &Config, config_file: Option<&Path>) -> Result<Vec<Group>, String> {
    let options = crate::rules::LoadOptions {
        default_interval: config.global.evaluation_interval.as_duration(),
    };
    let refused = |errors: Vec<String>| format!("rule files refused:\n{}", errors.join("\n"));
    let mut groups = match config_file {
        None => crate::rules::default_groups(&options).map_err(refused)?,
        Some(_) => Vec::new(),
    };
    groups.extend(crate::rules::load_files(&config.rule_files, &options).map_err(refused)?);
    Ok(groups)
}

fn manager_options(config: &Config) -> ManagerOptions {
    ManagerOptions {
        resend_delay: config.rules.resend_delay.as_duration(),
        outage_tolerance: config.rules.outage_tolerance.as_duration(),
    }
}

/// `web.external_url`, or the listen address as a URL.
fn external_url(config: &Config, listen: &str) -> String {
    match &config.web.external_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{listen}"),
    }
}

/// The text of the config just loaded, for `/api/v1/status/config`. The file
/// is read a second time (the loader does not hand its text back); should it
/// have become unreadable in between, the status shows an empty config.
fn config_text(config_file: Option<&Path>) -> String {
    match config_file {
        Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
        None => config::DEFAULT_CONFIG.to_string(),
    }
}

/// The command-line flags of `run` for `/api/v1/status/flags`, by long name;
/// unset ones are empty, as Prometheus shows flags without a value.
fn flags(options: &RunOptions) -> std::collections::BTreeMap<String, String> {
    [
        (
            "config",
            options
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("data-dir", options.data_dir.display().to_string()),
        ("listen", options.listen.clone().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

fn storage_options(config: &Config, data_dir: &Path) -> StorageOptions {
    let mut options = StorageOptions::new(data_dir);
    options.retention = config.storage.retention.as_duration();
    options.retention_size = config.storage.retention_size.map(|s| s.0);
    options.max_series = config.storage.max_series as usize;
    options.wal_flush_interval = config.storage.wal_flush_interval.as_duration();
    options
}

fn write_token(config: &Config) -> anyhow::Result<Option<Arc<str>>> {
    if let Some(token) = &config.web.write_token {
        return Ok(Some(Arc::from(token.expose())));
    }
    if let Some(path) = &config.web.write_token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("web.write_token_file: cannot read {path}"))?;
        return Ok(Some(Arc::from(token.trim())));
    }
    Ok(None)
}

/// Binds `web.otlp_listen_address` (`:port` means every interface); a
/// failure names the key.
async fn bind_otlp(address: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let host_port = match address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => address.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(host_port.as_str())
        .await
        .with_context(|| format!("cannot listen on {address} (web.otlp_listen_address)"))?;
    tracing::info!(address = %address, "OTLP/HTTP listener bound");
    Ok(listener)
}

/// Serves HTTP: the current router once it exists, `before_ready` before.
async fn serve(
    listener: tokio::net::TcpListener,
    current: Arc<RwLock<Option<axum::Router>>>,
    shutdown: Arc<tokio::sync::Notify>,
    before_ready: fn(&str) -> axum::response::Response,
) {
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let router = current.read().clone();
        async move {
            match router {
                Some(router) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => before_ready(request.uri().path()),
            }
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.notified().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

/// The OTLP listener while the store recovers: 503 with `Retry-After`,
/// which OTLP exporters retry.
fn otlp_recovering(_path: &str) -> axum::response::Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        "Service Unavailable: the store is still recovering.\n",
    )
        .into_response()
}

fn recovering(path: &str) -> axum::response::Response {
    if path == "/-/healthy" {
        (StatusCode::OK, "bellwether is Healthy.\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: the store is still recovering.\n",
        )
            .into_response()
    }
}
