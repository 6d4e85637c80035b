//! The probe subsystem's own metrics (`bellwether_probe_*`), registered once
//! in [`super::ProbeManager::new`] and documented in docs/metrics.md and
//! docs/probes.md. The loops record into them.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label pairs of one series.
pub type LabelPairs = Vec<(String, String)>;

#[derive(Clone, Default)]
pub struct ProbeMetrics {
    /// Probes run, by job and prober.
    pub probes: Family<LabelPairs, Counter>,
    /// Failed probes (and custom-query errors), by job and reason.
    pub failures: Family<LabelPairs, Counter>,
    /// Targets, by job.
    pub targets: Family<LabelPairs, Gauge>,
}

pub fn job_labels(job: &str) -> LabelPairs {
    vec![("job".to_string(), job.to_string())]
}

pub fn job_prober_labels(job: &str, prober: &str) -> LabelPairs {
    vec![
        ("job".to_string(), job.to_string()),
        ("prober".to_string(), prober.to_string()),
    ]
}

pub fn job_reason_labels(job: &str, reason: &str) -> LabelPairs {
    vec![
        ("job".to_string(), job.to_string()),
        ("reason".to_string(), reason.to_string()),
    ]
}

impl ProbeMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_probe_probes",
            "Probes run, by job and prober",
            self.probes.clone(),
        );
        registry.register(
            "bellwether_probe_failures",
            "Probes that failed (probe_success 0), and custom PostgreSQL queries that failed, by job and reason",
            self.failures.clone(),
        );
        registry.register(
            "bellwether_probe_targets",
            "Probe targets, by job",
            self.targets.clone(),
        );
    }
}
