//! The Prometheus HTTP API v1: metadata endpoints over the store
//! (`series`, `labels`, `label/<name>/values`) and `status/buildinfo`.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/status/buildinfo", get(buildinfo))
}

async fn buildinfo() -> Json<Value> {
    Json(json!({
        "status": "success",
        "data": {
            "version": crate::VERSION,
            "revision": option_env!("BELLWETHER_GIT_REVISION").unwrap_or("unknown"),
            "branch": "",
            "buildUser": "",
            "buildDate": "",
            "goVersion": "",
        }
    }))
}
