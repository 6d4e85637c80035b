//! The list-then-watch loop against the API server: the one task that
//! talks to Kubernetes. It keeps the pods of this node
//! (`fieldSelector=spec.nodeName=<node>`) and publishes every change as a
//! new [`PodSnapshot`] on a `tokio::sync::watch` channel; the pod metrics
//! and `kubernetes_sd_configs` read that channel and never call the API.
//!
//! Protocol, as client-go's reflector does it:
//! 1. list (`GET /api/v1/pods?fieldSelector=…`), keep `metadata.resourceVersion`;
//! 2. watch from it (`watch=1&resourceVersion=…&allowWatchBookmarks=true&
//!    timeoutSeconds=…`): newline-delimited JSON events; each event and
//!    bookmark moves the resource version on;
//! 3. a watch that ends is re-opened from the last resource version; a
//!    410 Gone (HTTP status, or an `ERROR` event with code 410) means that
//!    version is too old: go back to 1 (a re-list);
//! 4. failures wait before the next attempt: 500ms, doubling up to
//!    `backoff_max`, reset by a successful list or watch event.
//!
//! The bearer token is read from `token_file` on every request, so a
//! rotated (projected) token is picked up. Responses are read with size
//! limits (`max_list_size`, `max_event_size`); a line that is not valid
//! JSON, or too long, is counted in
//! `bellwether_collector_errors_total{collector="kubernetes"}`, logged once
//! per distinct error, and skipped.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::watch;

use super::api::{parse_pod_list, parse_watch_event, Pod, Status, WatchEvent};
use super::config::Settings;
use super::metrics::KubernetesMetrics;
use super::PodSnapshot;
use crate::collect::scrape::scrape_loop::error_chain;

const BACKOFF_START: Duration = Duration::from_millis(500);
/// Error bodies are read only this far.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// What the pod metrics show about the watch when there is no pod list yet.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    /// A list has succeeded at least once.
    pub synced: bool,
    pub last_error: Option<String>,
}

/// How a watch request ended.
#[derive(Debug)]
enum WatchEnd {
    /// The server closed the stream (its `timeoutSeconds`, or a restart).
    Closed,
    /// 410 Gone: the resource version is too old; re-list.
    Expired,
    Failed(String),
}

#[derive(Debug)]
enum ListError {
    Expired,
    Failed(String),
}

pub struct Watcher {
    pub settings: Settings,
    pub metrics: KubernetesMetrics,
    /// `bellwether_collector_errors_total`, shared with the host collector.
    pub errors: Family<Vec<(String, String)>, Counter>,
    pub publish: watch::Sender<Arc<PodSnapshot>>,
    pub status: Arc<Mutex<SyncStatus>>,
}

impl Watcher {
    /// Runs until the task is aborted.
    pub async fn run(self) {
        let mut backoff = BACKOFF_START;
        let mut lists = 0u64;
        loop {
            let (listed, mut version) = match self.list().await {
                Ok(found) => found,
                Err(error) => {
                    let message = match error {
                        ListError::Expired => "list answered 410 Gone".to_string(),
                        ListError::Failed(message) => message,
                    };
                    self.note_error(&message);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                    continue;
                }
            };
            lists += 1;
            if lists > 1 {
                self.metrics.relists.inc();
            }
            backoff = BACKOFF_START;
            let mut pods = listed;
            self.mark_synced();
            self.publish(&pods);
            loop {
                let started = std::time::Instant::now();
                let end = self.watch(&mut pods, &mut version, &mut backoff).await;
                self.metrics.watch_restarts.inc();
                match end {
                    // A watch the server ends within a second (an empty 200,
                    // a proxy closing at once) is reopened after the backoff,
                    // as client-go's reflector does: never in a tight loop.
                    WatchEnd::Closed if started.elapsed() < std::time::Duration::from_secs(1) => {
                        tracing::debug!("kubernetes watch ended within a second; backing off");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.settings.backoff_max);
                    }
                    WatchEnd::Closed => {}
                    WatchEnd::Expired => {
                        tracing::info!(resource_version = %version, "kubernetes watch expired (410 Gone); listing pods again");
                        break;
                    }
                    WatchEnd::Failed(message) => {
                        self.note_error(&message);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.settings.backoff_max);
                    }
                }
            }
        }
    }

    fn pods_url(&self, extra: &[(&str, &str)]) -> Result<reqwest::Url, String> {
        let base = format!("{}/api/v1/pods", self.settings.api_server);
        let mut url = reqwest::Url::parse(&base)
            .map_err(|e| format!("collectors.kubernetes.api_server: {base:?} is not a URL: {e}"))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair(
                "fieldSelector",
                &format!("spec.nodeName={}", self.settings.node_name),
            );
            for (key, value) in extra {
                query.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// A client trusting `ca_file`, read afresh (a rotated CA is picked up
    /// on the next reconnect), with the bearer token of `token_file`.
    fn request(&self, url: reqwest::Url) -> Result<reqwest::RequestBuilder, String> {
        let ca_file = &self.settings.ca_file;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none());
        match std::fs::read(ca_file) {
            Ok(pem) => {
                let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    format!("collectors.kubernetes.ca_file: {ca_file} is not a PEM certificate bundle: {e}")
                })?;
                for certificate in certificates {
                    builder = builder.add_root_certificate(certificate);
                }
            }
            Err(e) if url.scheme() == "https" => {
                return Err(format!(
                    "collectors.kubernetes.ca_file: cannot read {ca_file}: {e}"
                ))
            }
            Err(_) => {}
        }
        let client = builder
            .build()
            .map_err(|e| format!("building the Kubernetes API client: {e}"))?;
        let mut request = client.get(url).header("Accept", "application/json");
        match std::fs::read_to_string(&self.settings.token_file) {
            Ok(token) if !token.trim().is_empty() => {
                request = request.bearer_auth(token.trim());
            }
            Ok(_) => {
                tracing::debug!(file = %self.settings.token_file, "the Kubernetes token file is empty; no Authorization header");
            }
            Err(e) => {
                return Err(format!(
                    "collectors.kubernetes.token_file: cannot read {}: {e}",
                    self.settings.token_file
                ))
            }
        }
        Ok(request)
    }

    async fn list(&self) -> Result<(PodSnapshot, String), ListError> {
        let url = self.pods_url(&[]).map_err(ListError::Failed)?;
        let request = self.request(url).map_err(ListError::Failed)?;
        let work = async {
            let response = request
                .send()
                .await
                .map_err(|e| ListError::Failed(format!("listing pods: {}", error_chain(&e))))?;
            let status = response.status();
            if status == reqwest::StatusCode::GONE {
                return Err(ListError::Expired);
            }
            if !status.is_success() {
                return Err(ListError::Failed(
                    http_error("listing pods", response).await,
                ));
            }
            let body = read_limited(response, self.settings.max_list_size)
                .await
                .map_err(|e| {
                    ListError::Failed(format!(
                        "listing pods: {e} (collectors.kubernetes.max_list_size)"
                    ))
                })?;
            let list = parse_pod_list(&body).map_err(|e| ListError::Failed(e.to_string()))?;
            let pods: PodSnapshot = list
                .items
                .into_iter()
                .map(|pod| (pod.key(), Arc::new(pod)))
                .collect();
            Ok((pods, list.metadata.resource_version))
        };
        match tokio::time::timeout(self.settings.request_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(ListError::Failed(format!(
                "listing pods: no complete answer within {:?} (collectors.kubernetes.request_timeout)",
                self.settings.request_timeout
            ))),
        }
    }

    /// One watch request, applying its events to `pods` until it ends.
    async fn watch(
        &self,
        pods: &mut PodSnapshot,
        version: &mut String,
        backoff: &mut Duration,
    ) -> WatchEnd {
        let timeout_seconds = self.settings.watch_timeout.as_secs().to_string();
        let url = match self.pods_url(&[
            ("watch", "1"),
            ("resourceVersion", version.as_str()),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", &timeout_seconds),
        ]) {
            Ok(url) => url,
            Err(e) => return WatchEnd::Failed(e),
        };
        let request = match self.request(url) {
            Ok(r) => r,
            Err(e) => return WatchEnd::Failed(e),
        };
        let connect = tokio::time::timeout(self.settings.request_timeout, request.send()).await;
        let mut response = match connect {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return WatchEnd::Failed(format!("watching pods: {}", error_chain(&e))),
            Err(_) => {
                return WatchEnd::Failed(format!(
                    "watching pods: no answer within {:?} (collectors.kubernetes.request_timeout)",
                    self.settings.request_timeout
                ))
            }
        };
        if response.status() == reqwest::StatusCode::GONE {
            return WatchEnd::Expired;
        }
        if !response.status().is_success() {
            return WatchEnd::Failed(http_error("watching pods", response).await);
        }
        // The server ends the request after timeoutSeconds; silence for
        // longer than that (plus the request timeout) is a dead connection.
        let idle = self.settings.watch_timeout + self.settings.request_timeout;
        let limit = self.settings.max_event_size as usize;
        let mut buffer: Vec<u8> = Vec::new();
        // Set while the rest of an over-long line is being dropped.
        let mut skipping = false;
        loop {
            let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return WatchEnd::Closed,
                Ok(Err(e)) => {
                    return WatchEnd::Failed(format!("reading the pod watch: {}", error_chain(&e)))
                }
                Err(_) => {
                    return WatchEnd::Failed(format!(
                        "the pod watch sent nothing for {idle:?}; reconnecting"
                    ))
                }
            };
            let mut rest: &[u8] = &chunk;
            while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
                let (head, tail) = rest.split_at(newline);
                rest = &tail[1..];
                if skipping {
                    skipping = false;
                    continue;
                }
                buffer.extend_from_slice(head);
                let line = std::mem::take(&mut buffer);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Some(end) = self.apply(&line, pods, version) {
                    return end;
                }
                *backoff = BACKOFF_START;
            }
            if !skipping {
                buffer.extend_from_slice(rest);
                if buffer.len() > limit {
                    self.note_error(&format!(
                        "a pod watch event is larger than {limit} bytes (collectors.kubernetes.max_event_size); skipped"
                    ));
                    buffer = Vec::new();
                    skipping = true;
                }
            }
        }
    }

    /// Applies one event line; `Some` ends the watch.
    fn apply(&self, line: &[u8], pods: &mut PodSnapshot, version: &mut String) -> Option<WatchEnd> {
        let event = match parse_watch_event(line) {
            Ok(event) => event,
            Err(error) => {
                self.note_error(&error.to_string());
                return None;
            }
        };
        let mut upsert = |pod: Pod| {
            if !pod.metadata.resource_version.is_empty() {
                version.clone_from(&pod.metadata.resource_version);
            }
            let key = pod.key();
            // The server filters by node; a pod moved elsewhere (or a
            // server that ignores the selector) must not show up here.
            if pod.spec.node_name == self.settings.node_name {
                pods.insert(key, Arc::new(pod));
            } else {
                pods.remove(&key);
            }
        };
        match event {
            WatchEvent::Added(pod) => {
                self.metrics.count_event("ADDED");
                upsert(pod);
            }
            WatchEvent::Modified(pod) => {
                self.metrics.count_event("MODIFIED");
                upsert(pod);
            }
            WatchEvent::Deleted(pod) => {
                self.metrics.count_event("DELETED");
                if !pod.metadata.resource_version.is_empty() {
                    version.clone_from(&pod.metadata.resource_version);
                }
                pods.remove(&pod.key());
            }
            WatchEvent::Bookmark(new_version) => {
                self.metrics.count_event("BOOKMARK");
                if !new_version.is_empty() {
                    *version = new_version;
                }
                self.mark_synced();
                return None;
            }
            WatchEvent::Error(status) => {
                self.metrics.count_event("ERROR");
                if status.code == 410 {
                    return Some(WatchEnd::Expired);
                }
                return Some(WatchEnd::Failed(format!(
                    "the pod watch sent an error: {}",
                    describe_status(&status)
                )));
            }
        }
        self.mark_synced();
        self.publish(pods);
        None
    }

    fn publish(&self, pods: &PodSnapshot) {
        self.metrics.pods.set(pods.len() as i64);
        self.publish.send_replace(Arc::new(pods.clone()));
    }

    fn mark_synced(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.metrics.last_sync.set(now);
        let mut status = self.status.lock();
        status.synced = true;
        if status.last_error.take().is_some() {
            tracing::info!("kubernetes pod watch recovered");
        }
    }

    /// Counts an error and logs it when it differs from the last one.
    fn note_error(&self, message: &str) {
        self.errors
            .get_or_create(&vec![("collector".to_string(), "kubernetes".to_string())])
            .inc();
        let mut status = self.status.lock();
        if status.last_error.as_deref() != Some(message) {
            tracing::warn!(error = %message, "kubernetes collector error (logged again only when the error changes)");
            status.last_error = Some(message.to_string());
        }
    }
}

/// Reads a body, failing beyond `limit` bytes (0 = no limit).
async fn read_limited(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the response: {}", error_chain(&e)))?
    {
        body.extend_from_slice(&chunk);
        if limit > 0 && body.len() as u64 > limit {
            return Err(format!("the response is larger than {limit} bytes"));
        }
    }
    Ok(body)
}

/// "listing pods: HTTP 403 Forbidden: pods is forbidden: …", with an RBAC
/// hint for 401/403.
async fn http_error(what: &str, response: reqwest::Response) -> String {
    let status = response.status();
    let body = read_limited(response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let detail = serde_json::from_slice::<Status>(&body)
        .ok()
        .filter(|s| !s.message.is_empty())
        .map(|s| s.message)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    let hint = match status.as_u16() {
        401 => " (check collectors.kubernetes.token_file)",
        403 => " (the service account needs get, list and watch on pods: see docs/kubernetes.md)",
        _ => "",
    };
    format!("{what}: HTTP {status}: {}{hint}", detail.trim())
}

fn describe_status(status: &Status) -> String {
    format!("code {} {}: {}", status.code, status.reason, status.message)
}
