//! `GET /api/v1/targets` and `GET /api/v1/metadata`: what the scrape manager
//! knows about its targets, in Prometheus 2.42's JSON shapes.
//!
//! The handlers read a [`TargetSource`] (the scrape manager in the daemon, a
//! fixed list in tests) and never start, stop or reconfigure scraping.
//!
//! Gaps against Prometheus, written down in docs/api.md too:
//! * `globalUrl` equals `scrapeUrl`: bellwether has no external URL setting to
//!   rewrite `localhost` with.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::prometheus::Params;
use super::status::format_time;
use super::{success, ApiError, AppState, Success};
use crate::collect::scrape::scrape_loop::MetricMetadata;
use crate::collect::scrape::{ScrapeManager, TargetInfo};
use crate::config::values::format_duration;
use crate::model::Labels;

/// Where the API reads targets and metadata from.
pub trait TargetSource: Send + Sync {
    /// Active targets, sorted by job and labels.
    fn targets(&self) -> Vec<TargetInfo>;
    /// HELP/TYPE/UNIT per metric family, each entry distinct, over all targets.
    fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>>;
    /// Targets relabeling dropped: (job, discovered labels), by job.
    fn dropped_targets(&self) -> Vec<(String, Labels)> {
        Vec::new()
    }
}

impl TargetSource for ScrapeManager {
    fn targets(&self) -> Vec<TargetInfo> {
        ScrapeManager::targets(self)
    }
    fn dropped_targets(&self) -> Vec<(String, Labels)> {
        ScrapeManager::dropped_targets(self)
    }

    fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        ScrapeManager::metadata(self)
    }
}

/// No targets and no metadata: for handler tests and tools that run no scraping.
pub struct NoTargets;

impl TargetSource for NoTargets {
    fn targets(&self) -> Vec<TargetInfo> {
        Vec::new()
    }

    fn metadata(&self) -> BTreeMap<String, Vec<MetricMetadata>> {
        BTreeMap::new()
    }
}

pub fn routes() -> Router<AppState> {
    // GET only, as in Prometheus 2.42.
    Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/metadata", get(metadata))
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TargetDiscovery {
    active_targets: Vec<ActiveTarget>,
    dropped_targets: Vec<DroppedTarget>,
}

/// Prometheus's `Target`, fields in its order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveTarget {
    discovered_labels: Value,
    labels: Value,
    scrape_pool: String,
    scrape_url: String,
    global_url: String,
    last_error: String,
    last_scrape: String,
    #[serde(serialize_with = "super::go_json_float")]
    last_scrape_duration: f64,
    health: &'static str,
    scrape_interval: String,
    scrape_timeout: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DroppedTarget {
    discovered_labels: Value,
}

/// `GET /api/v1/targets[?state=active|dropped|any][&scrapePool=<job>]`.
/// Like Prometheus, reads only the URL's query and ignores an unknown `state`
/// (nothing is shown for it).
async fn targets(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Success<TargetDiscovery>>, ApiError> {
    let params = Params::from_request(request).await?;
    let wanted_state = params.get("state").to_lowercase();
    let pool = params.get("scrapePool");
    let show_active = matches!(wanted_state.as_str(), "" | "any" | "active");
    let active_targets = if show_active {
        state
            .targets
            .targets()
            .into_iter()
            .filter(|t| pool.is_empty() || t.job == pool)
            .map(active_target)
            .collect()
    } else {
        Vec::new()
    };
    let show_dropped = matches!(wanted_state.as_str(), "" | "any" | "dropped");
    let dropped_targets = if show_dropped {
        state
            .targets
            .dropped_targets()
            .into_iter()
            .filter(|(job, _)| pool.is_empty() || job == pool)
            .map(|(_, labels)| DroppedTarget {
                discovered_labels: labels_object(&labels),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(success(TargetDiscovery {
        active_targets,
        dropped_targets,
    }))
}

fn active_target(target: TargetInfo) -> ActiveTarget {
    let status = target.status;
    ActiveTarget {
        discovered_labels: labels_object(&target.discovered_labels),
        labels: labels_object(&target.labels),
        scrape_pool: target.job,
        global_url: target.scrape_url.clone(),
        scrape_url: target.scrape_url,
        last_error: status.last_error.unwrap_or_default(),
        last_scrape: match status.last_scrape_ms {
            Some(ms) => {
                format_time(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
            }
            None => "0001-01-01T00:00:00Z".to_string(),
        },
        last_scrape_duration: status.last_duration.map_or(0.0, |d| d.as_secs_f64()),
        health: match status.health {
            Some(true) => "up",
            Some(false) => "down",
            None => "unknown",
        },
        scrape_interval: format_duration(target.scrape_interval),
        scrape_timeout: format_duration(target.scrape_timeout),
    }
}

fn labels_object(labels: &Labels) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .map(|l| (l.name.clone(), Value::String(l.value.clone())))
        .collect();
    Value::Object(map)
}

/// One metadata entry, fields in Prometheus's order.
#[derive(serde::Serialize)]
struct MetadataEntry {
    #[serde(rename = "type")]
    kind: String,
    help: String,
    unit: String,
}

/// `GET /api/v1/metadata[?limit=<n>][&metric=<name>]`: per metric family the
/// distinct (type, help, unit) seen across targets. `limit` caps the number
/// of metrics (negative = no cap); Prometheus picks which in map order, we
/// keep the first `limit` by name.
async fn metadata(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<Success<BTreeMap<String, Vec<MetadataEntry>>>>, ApiError> {
    let params = Params::from_request(request).await?;
    let limit = match params.get("limit") {
        "" => None,
        text => {
            let n: i64 = text
                .parse()
                .map_err(|_| ApiError::bad_data("limit must be a number"))?;
            usize::try_from(n).ok()
        }
    };
    let metric = params.get("metric");
    let mut out = BTreeMap::new();
    for (name, entries) in state.targets.metadata() {
        if !metric.is_empty() && name != metric {
            continue;
        }
        if limit.is_some_and(|limit| out.len() >= limit) {
            break;
        }
        let entries = entries
            .into_iter()
            .map(|m| MetadataEntry {
                kind: m.kind,
                help: m.help,
                unit: m.unit,
            })
            .collect();
        out.insert(name, entries);
    }
    Ok(success(out))
}
