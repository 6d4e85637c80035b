//! The scrape subsystem's own metrics (`bellwether_scrape_*`), registered once
//! in [`super::ScrapeManager::new`] and documented in docs/scraping.md.
//!
//! This file owns the metric handles only; the loops and discovery record
//! into them. Handles are cheap clones sharing the same series.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label pairs of one series, e.g. `[("job", "node")]`.
pub type LabelPairs = Vec<(String, String)>;

fn new_duration_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[derive(Clone)]
pub struct ScrapeMetrics {
    /// Scrapes attempted, by job.
    pub scrapes: Family<LabelPairs, Counter>,
    /// Scrapes that failed (up = 0), by job and reason.
    pub scrapes_failed: Family<LabelPairs, Counter>,
    /// Samples parsed from scrape bodies, by job.
    pub samples_scraped: Family<LabelPairs, Counter>,
    /// Samples not stored, by job and reason.
    pub samples_refused: Family<LabelPairs, Counter>,
    /// Scrape bodies that failed to parse, by job.
    pub parse_errors: Family<LabelPairs, Counter>,
    /// Active targets, by job.
    pub targets: Family<LabelPairs, Gauge>,
    /// Discovered targets refused while building them (bad address, ...), by job.
    pub target_errors: Family<LabelPairs, Counter>,
    /// file_sd files (or globs) that could not be read or parsed.
    pub file_sd_read_errors: Counter,
    /// Scrape duration, by job.
    pub duration: Family<LabelPairs, Histogram, fn() -> Histogram>,
}

impl Default for ScrapeMetrics {
    fn default() -> Self {
        ScrapeMetrics {
            scrapes: Family::default(),
            scrapes_failed: Family::default(),
            samples_scraped: Family::default(),
            samples_refused: Family::default(),
            parse_errors: Family::default(),
            targets: Family::default(),
            target_errors: Family::default(),
            file_sd_read_errors: Counter::default(),
            duration: Family::new_with_constructor(new_duration_histogram),
        }
    }
}

pub fn job_labels(job: &str) -> LabelPairs {
    vec![("job".to_string(), job.to_string())]
}

pub fn job_reason_labels(job: &str, reason: &str) -> LabelPairs {
    vec![
        ("job".to_string(), job.to_string()),
        ("reason".to_string(), reason.to_string()),
    ]
}

impl ScrapeMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "bellwether_scrape_scrapes",
            "Scrapes attempted, by job",
            self.scrapes.clone(),
        );
        registry.register(
            "bellwether_scrape_scrapes_failed",
            "Scrapes that failed and reported up=0, by job and reason",
            self.scrapes_failed.clone(),
        );
        registry.register(
            "bellwether_scrape_samples_scraped",
            "Samples parsed from scrape bodies, by job",
            self.samples_scraped.clone(),
        );
        registry.register(
            "bellwether_scrape_samples_refused",
            "Scraped samples not stored, by job and reason",
            self.samples_refused.clone(),
        );
        registry.register(
            "bellwether_scrape_parse_errors",
            "Scrape bodies refused by the exposition parser, by job",
            self.parse_errors.clone(),
        );
        registry.register(
            "bellwether_scrape_targets",
            "Active scrape targets, by job",
            self.targets.clone(),
        );
        registry.register(
            "bellwether_scrape_target_errors",
            "Discovered targets that could not be turned into scrape targets, by job",
            self.target_errors.clone(),
        );
        registry.register(
            "bellwether_scrape_file_sd_read_errors",
            "file_sd target files or globs that could not be read or parsed",
            self.file_sd_read_errors.clone(),
        );
        registry.register(
            "bellwether_scrape_duration_seconds",
            "Duration of scrapes, from request to commit, by job",
            self.duration.clone(),
        );
    }
}
