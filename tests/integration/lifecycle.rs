//! Start, readiness, reload and shutdown of the real binary.

use std::time::Duration;

use crate::util::{wait_for, TestDaemon};

const MINIMAL: &str = "
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: bellwether
    static_configs:
      - targets: ['127.0.0.1:{{PORT}}']
";

#[test]
fn serves_health_readiness_buildinfo_and_own_metrics() {
    let mut daemon = TestDaemon::start(MINIMAL);
    assert_eq!(daemon.get("/-/healthy").0, 200);
    assert_eq!(daemon.get("/-/ready").0, 200);
    let info = daemon.get_json("/api/v1/status/buildinfo", 200);
    assert_eq!(info["status"], "success");
    assert_eq!(info["data"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        daemon.self_metric("bellwether_config_last_reload_successful"),
        Some(1.0)
    );
    daemon.stop();
}

#[test]
fn bad_config_on_reload_keeps_the_old_one_and_reports_failure() {
    let mut daemon = TestDaemon::start(MINIMAL);
    std::fs::write(
        daemon.config_path(),
        "scrape_configs: [ {job_name: 1, nonsense: true} ]\n",
    )
    .unwrap();
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("nonsense"),
        "reload error should name the bad key: {body}"
    );
    assert_eq!(
        daemon.self_metric("bellwether_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        daemon.get("/-/ready").0,
        200,
        "a refused reload must not take the daemon down"
    );

    // SIGHUP with a good config brings the gauge back to 1.
    std::fs::write(
        daemon.config_path(),
        MINIMAL.replace("{{PORT}}", &daemon.port.to_string()),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);
    assert!(
        wait_for(Duration::from_secs(10), || daemon
            .self_metric("bellwether_config_last_reload_successful")
            == Some(1.0)),
        "SIGHUP did not reload a good config:\n{}",
        daemon.log()
    );
    daemon.stop();
}

#[test]
fn every_metric_on_metrics_is_documented() {
    let mut daemon = TestDaemon::start(MINIMAL);
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md"))
        .expect("docs/metrics.md exists");
    let (_, exposition) = daemon.get("/metrics");
    let families: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() > 15, "too few metric families: {families:?}");
    let undocumented: Vec<&&str> = families
        .iter()
        .filter(|name| {
            // Documented as `name`, `name_total`, or with its labels: `name{job}`.
            !["`", "{", "_total`", "_total{"]
                .iter()
                .any(|end| docs.contains(&format!("`{name}{end}")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/metrics.md: {undocumented:?}"
    );
    daemon.stop();
}
