//! The daemon's own metrics (served on `/metrics`), via prometheus-client.
//!
//! Each component owns a metrics struct of cheap-to-clone handles and registers
//! it once at start-up with `register(&mut Registry)`; reloads keep the handles.

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Renders a registry in the text format, without OpenMetrics' trailing `# EOF`
/// so that a text/plain 0.0.4 scraper accepts it too.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    encode_registry(&mut out, registry).expect("writing to a String cannot fail");
    out
}

/// Config reload status, as Prometheus names it.
#[derive(Clone, Default)]
pub struct ConfigMetrics {
    pub last_reload_successful: Gauge,
    pub last_reload_success_timestamp_seconds: Gauge,
    pub reloads_failed: Counter,
}

impl ConfigMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful (1) or not (0)",
            self.last_reload_successful.clone(),
        );
        registry.register(
            "bellwether_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload",
            self.last_reload_success_timestamp_seconds.clone(),
        );
        registry.register(
            "bellwether_config_reloads_failed",
            "Configuration reloads that were refused because the new config was invalid",
            self.reloads_failed.clone(),
        );
    }
}
