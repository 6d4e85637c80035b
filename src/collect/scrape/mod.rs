//! Scraping Prometheus endpoints: target discovery (static, file_sd),
//! relabeling, the scrape loop, exposition parsing and staleness.
//!
//! SKELETON NOTE: the manager below is the interface the daemon uses; the
//! scrape work fills it in.

use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::storage::Storage;

/// Runs one scrape loop per target and keeps the set of loops in step with
/// the config and with file-based discovery.
pub struct ScrapeManager {
    _storage: Storage,
}

impl ScrapeManager {
    /// Creates the manager and registers its metrics. Starts nothing.
    pub fn new(storage: Storage, _registry: &mut Registry) -> ScrapeManager {
        ScrapeManager { _storage: storage }
    }

    /// Starts, stops and updates scrape loops so they match `config`. Loops whose
    /// job and target are unchanged keep running (and keep their staleness state).
    /// Must be called inside the tokio runtime.
    pub fn apply_config(&self, _config: &Config) {}

    /// Stops every loop.
    pub async fn shutdown(&self) {}
}
