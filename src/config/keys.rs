//! What to say about a key the config types don't have: a typo (with a "did
//! you mean"), a Prometheus setting bellwether does not support, or a section
//! of a later bellwether release. One table per kind, read top to bottom.

/// Sections of later bellwether releases (and prometheus.yml's remote
/// read/write, which arrive with `export`). `Config` accepts them only so
/// that validation can say this instead of "unknown key".
pub const NOT_YET_IMPLEMENTED: [&str; 4] = ["logs", "export", "remote_write", "remote_read"];

/// prometheus.yml keys (up to Prometheus 2.5x) that bellwether refuses by
/// name. Every `*_sd_configs` other than `file_sd_configs` and (in a
/// scrape job) `kubernetes_sd_configs` is refused too.
pub const UNSUPPORTED_PROMETHEUS_KEYS: [&str; 38] = [
    // top level
    "tracing",
    "otlp",
    "runtime",
    // storage: Prometheus's TSDB settings
    "tsdb",
    "exemplars",
    // global
    "query_log_file",
    "rule_query_offset",
    "scrape_failure_log_file",
    // scrape_config
    "native_histogram_bucket_limit",
    "native_histogram_min_bucket_factor",
    "scrape_classic_histograms",
    "always_scrape_classic_histograms",
    "convert_classic_histograms_to_nhcb",
    "scrape_protocols",
    "scrape_fallback_protocol",
    "enable_compression",
    "keep_dropped_targets",
    "metric_name_validation_scheme",
    "metric_name_escaping_scheme",
    "body_size_limit_bytes",
    // HTTP client (scrape_config and alertmanager_config)
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
    "sigv4",
    // basic_auth / authorization
    "username_file",
    "username_ref",
    "password_ref",
    "credentials_ref",
    // tls_config
    "min_version",
    "max_version",
    "ca",
    "cert",
    "key",
    "key_ref",
    // alertmanager_config
    "api_key",
];

/// The message for a key the target type doesn't have.
pub fn unknown_key_message(key: &str, expected: &[&str]) -> String {
    if key.ends_with("_configs") && expected.contains(&"log_configs") {
        // A receiver of the `notify` section (src/notify/config.rs).
        return format!(
            "unknown receiver type `{key}` (supported: pagerduty_configs, slack_configs, email_configs, webhook_configs, log_configs)"
        );
    }
    if key.ends_with("_sd_configs") {
        return format!(
            "`{key}` is not supported by bellwether (service discovery: static_configs, file_sd_configs, and kubernetes_sd_configs in scrape_configs)"
        );
    }
    if UNSUPPORTED_PROMETHEUS_KEYS.contains(&key) {
        return format!("`{key}` is a Prometheus setting not supported by bellwether");
    }
    let mut message = format!("unknown key `{key}`");
    if let Some(suggestion) = did_you_mean(key, expected) {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    message
}

/// The closest expected key, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(key: &str, expected: &[&'a str]) -> Option<&'a str> {
    let limit = (key.chars().count() / 3).clamp(1, 3);
    expected
        .iter()
        .filter(|candidate| !NOT_YET_IMPLEMENTED.contains(candidate))
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over chars, ASCII-case-insensitive.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let expected = &["scrape_interval", "scrape_timeout", "job_name"];
        assert_eq!(
            did_you_mean("scrape_intervall", expected),
            Some("scrape_interval")
        );
        assert_eq!(did_you_mean("jobname", expected), Some("job_name"));
        assert_eq!(did_you_mean("Job_Name", expected), Some("job_name"));
        assert_eq!(did_you_mean("colour", expected), None);
    }

    #[test]
    fn prometheus_keys_are_refused_by_name() {
        assert_eq!(
            unknown_key_message("consul_sd_configs", &[]),
            "`consul_sd_configs` is not supported by bellwether (service discovery: static_configs, file_sd_configs, and kubernetes_sd_configs in scrape_configs)"
        );
        assert_eq!(
            unknown_key_message("oauth2", &[]),
            "`oauth2` is a Prometheus setting not supported by bellwether"
        );
        assert_eq!(unknown_key_message("foo", &["bar"]), "unknown key `foo`");
    }
}
