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
use crate::collect::scrape::ScrapeManager;
use crate::config::{self, Config};
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
    warn_unimplemented(&config);
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
    tracing::info!(address = %addr, data_dir = %options.data_dir.display(), "bellwether starting");

    // Until the store has recovered, a minimal router answers: healthy, not ready.
    let current: Arc<RwLock<Option<axum::Router>>> = Arc::new(RwLock::new(None));
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let server = tokio::spawn(serve(listener, current.clone(), shutdown.clone()));

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
    storage.register_metrics(&mut registry);
    let scrape = Arc::new(ScrapeManager::new(storage.clone(), &mut registry));
    scrape.apply_config(&config);
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
    };
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
            &scrape,
            &config_metrics,
            &status,
        );
        if let Some(answer) = answer {
            let _ = answer.send(outcome);
        }
    }

    tracing::info!("shutting down");
    ready.store(false, Ordering::Release);
    scrape.shutdown().await;
    shutdown.notify_one();
    let _ = server.await;
    tokio::task::spawn_blocking(move || storage.close())
        .await
        .context("store shutdown panicked")?
        .context("closing the store")?;
    tracing::info!("bellwether stopped");
    Ok(())
}

/// Re-reads the config; a bad config is refused and the old one stays in force.
fn reload(
    config_file: Option<&Path>,
    scrape: &ScrapeManager,
    metrics: &ConfigMetrics,
    status: &RuntimeStatus,
) -> Result<(), String> {
    match load_config(config_file) {
        Ok(config) => {
            warn_unimplemented(&config);
            scrape.apply_config(&config);
            status.config_loaded(&config_text(config_file));
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
            tracing::error!(error = %e, "configuration reload refused; the previous config stays in force");
            Err(e.to_string())
        }
    }
}

/// Says, at every load, which accepted prometheus.yml sections this version
/// validates but does not act on yet, so nobody mistakes silence for alerting.
fn warn_unimplemented(config: &Config) {
    if !config.rule_files.is_empty() {
        tracing::warn!(
            rule_files = ?config.rule_files,
            "rule_files are validated but not evaluated: the rule engine is not implemented in this version"
        );
    }
    if !config.alerting.alertmanagers.is_empty() {
        tracing::warn!(
            "alerting.alertmanagers is validated but no alerts are sent: the rule engine is not implemented in this version"
        );
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

/// Serves HTTP: the current router once it exists, a "recovering" answer before.
async fn serve(
    listener: tokio::net::TcpListener,
    current: Arc<RwLock<Option<axum::Router>>>,
    shutdown: Arc<tokio::sync::Notify>,
) {
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let router = current.read().clone();
        async move {
            match router {
                Some(router) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => recovering(request.uri().path()),
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
