//! Push ingest over HTTP: the remote_write 1.0 receiver.

use axum::Router;
use prometheus_client::registry::Registry;

use crate::api::AppState;

/// Counters of the ingest endpoints.
#[derive(Clone, Default)]
pub struct IngestMetrics {}

impl IngestMetrics {
    pub fn register(&self, _registry: &mut Registry) {}
}

pub fn routes() -> Router<AppState> {
    Router::new()
}
