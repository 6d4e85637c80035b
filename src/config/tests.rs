//! Golden tests on the loader's error text, real-world configs, defaults,
//! and a fuzz-style test that no input panics the loader.

use std::time::Duration;

use super::*;

/// A fixed environment, so tests don't depend on (or set) process variables.
fn env(name: &str) -> Option<String> {
    match name {
        "NODE_HOST" => Some("db1".to_string()),
        "SCRAPE_INTERVAL" => Some("30s".to_string()),
        "HONOR" => Some("true".to_string()),
        _ => None,
    }
}

fn load_test(text: &str) -> Result<Config, ConfigError> {
    load(text, "bw.yml", None, &env)
}

fn errors(text: &str) -> Vec<String> {
    match load_test(text) {
        Ok(_) => panic!("config should have been refused:\n{text}"),
        Err(e) => e.errors,
    }
}

fn ok(text: &str) -> Config {
    match load_test(text) {
        Ok(config) => config,
        Err(e) => panic!("config should load, got:\n{e}"),
    }
}

// ---- golden error text -------------------------------------------------

#[test]
fn unknown_key_with_suggestion() {
    let text = "\
scrape_configs:
  - job_name: node
    scrape_intervall: 15s
";
    assert_eq!(
        errors(text),
        ["bw.yml:3:5: scrape_configs[0].scrape_intervall: unknown key `scrape_intervall`; did you mean `scrape_interval`?"]
    );
}

#[test]
fn unknown_keys_are_all_reported() {
    let text = "\
globl:
  scrape_interval: 15s
scrape_configs:
  - job_name: node
    foo: 1
    static_configs:
      - targets: [a:1]
        lables: {a: b}
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:1:1: globl: unknown key `globl`; did you mean `global`?",
            "bw.yml:5:5: scrape_configs[0].foo: unknown key `foo`",
            "bw.yml:8:9: scrape_configs[0].static_configs[0].lables: unknown key `lables`; did you mean `labels`?",
        ]
    );
}

#[test]
fn wrong_type() {
    let text = "\
scrape_configs:
  - job_name: node
    honor_labels: maybe
    sample_limit: lots
    static_configs:
      - targets: localhost:9100
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:3:19: scrape_configs[0].honor_labels: expected a boolean (true or false), found `maybe`",
            "bw.yml:4:19: scrape_configs[0].sample_limit: expected an integer, found `lots`",
            "bw.yml:6:18: scrape_configs[0].static_configs[0].targets: expected a list, found `localhost:9100`",
        ]
    );
}

#[test]
fn bad_duration() {
    let text = "\
global:
  scrape_interval: 1m30
";
    assert_eq!(
        errors(text),
        ["bw.yml:2:20: global.scrape_interval: not a valid duration string: \"1m30\" (expected e.g. 15s, 5m, 1h30m)"]
    );
}

#[test]
fn bad_regex() {
    let text = "\
scrape_configs:
  - job_name: node
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'node_(cpu|memory'
        action: drop
";
    assert_eq!(
        errors(text),
        ["bw.yml:5:16: scrape_configs[0].metric_relabel_configs[0].regex: invalid regex `node_(cpu|memory`: unclosed group at position 6"]
    );
}

#[test]
fn bad_relabel_action_suggests() {
    let text = "\
scrape_configs:
  - job_name: node
    relabel_configs:
      - action: lablemap
        regex: __meta_(.+)
";
    assert_eq!(
        errors(text),
        ["bw.yml:4:17: scrape_configs[0].relabel_configs[0].action: unknown relabel action `lablemap`; did you mean `labelmap`?"]
    );
}

#[test]
fn missing_env_var() {
    let text = "\
scrape_configs:
  - job_name: node
    basic_auth:
      username: prometheus
      password: ${SCRAPE_PASSWORD}
";
    assert_eq!(
        errors(text),
        ["bw.yml:5:17: scrape_configs[0].basic_auth.password: environment variable `SCRAPE_PASSWORD` is not set (write `$$` for a literal `$`)"]
    );
}

#[test]
fn missing_env_var_in_required_key_is_reported_once() {
    let text = "\
scrape_configs:
  - job_name: ${JOB}
";
    assert_eq!(
        errors(text),
        ["bw.yml:2:15: scrape_configs[0].job_name: environment variable `JOB` is not set (write `$$` for a literal `$`)"]
    );
}

#[test]
fn unreadable_password_file() {
    let text = "\
scrape_configs:
  - job_name: node
    basic_auth:
      username: prometheus
      password_file: /nonexistent/bellwether/password
";
    assert_eq!(
        errors(text),
        ["bw.yml:5:22: scrape_configs[0].basic_auth.password_file: cannot read \"/nonexistent/bellwether/password\": No such file or directory (os error 2)"]
    );
}

#[test]
fn several_errors_at_once_each_located() {
    let text = "\
global:
  scrape_interval: 15s
  scrape_timeout: 20s
  external_labels:
    bad-name: x
scrape_configs:
  - job_name: node
    scheme: ftp
    static_configs:
      - targets: ['http://localhost:9100/metrics']
    kubernetes_sd_configs:
      - role: node
  - job_name: node
    scrape_interval: 10
    relabel_configs:
      - action: hashmod
        target_label: shard
      - action: labeldrop
        regex: tmp_.*
        source_labels: [a]
remote_write:
  - url: http://mimir/api/v1/push
storage:
  retention: 0s
web:
  listen_address: localhost
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:3:19: global.scrape_timeout: scrape_timeout (20s) is greater than scrape_interval (15s); a scrape must end before the next one starts",
            "bw.yml:5:5: global.external_labels.bad-name: \"bad-name\" is not a valid label name (it must match [a-zA-Z_][a-zA-Z0-9_]*)",
            "bw.yml:8:13: scrape_configs[0].scheme: scheme must be http or https, not \"ftp\"",
            "bw.yml:10:19: scrape_configs[0].static_configs[0].targets[0]: \"http://localhost:9100/metrics\" is not a valid target address: write host:port, without scheme or path (set `scheme` and `metrics_path` for those)",
            "bw.yml:12:15: scrape_configs[0].kubernetes_sd_configs[0].role: role `node` is not supported by bellwether's kubernetes_sd_configs: only `pod` (the pods of this node, from collectors.kubernetes)",
            "bw.yml:13:15: scrape_configs[1].job_name: duplicate job_name \"node\" (also used by scrape_configs[0]); job names must be unique",
            "bw.yml:14:22: scrape_configs[1].scrape_interval: not a valid duration string: \"10\" (expected e.g. 15s, 5m, 1h30m)",
            "bw.yml:16:9: scrape_configs[1].relabel_configs[0].modulus: hashmod needs a non-zero `modulus`",
            "bw.yml:20:9: scrape_configs[1].relabel_configs[1].source_labels: the labeldrop action takes only `regex`; remove `source_labels`",
            "bw.yml:21:1: remote_write: the `remote_write` section is not implemented in this version of bellwether; remove it",
            "bw.yml:24:14: storage.retention: retention must be greater than 0 (e.g. 15d)",
            "bw.yml:26:19: web.listen_address: \"localhost\" is not a valid listen address; expected host:port such as 127.0.0.1:9471",
        ]
    );
}

#[test]
fn later_sections_are_not_implemented_not_unknown() {
    for section in keys::NOT_YET_IMPLEMENTED {
        let text = format!("{section}:\n  anything: [1, 2]\n");
        assert_eq!(
            errors(&text),
            [format!(
                "bw.yml:1:1: {section}: the `{section}` section is not implemented in this version of bellwether; remove it"
            )]
        );
    }
}

#[test]
fn unsupported_prometheus_keys_are_named() {
    let text = "\
tracing:
  endpoint: x
scrape_configs:
  - job_name: node
    oauth2: {client_id: x}
    consul_sd_configs: [{server: x}]
    tls_config:
      min_version: TLS12
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:1:1: tracing: `tracing` is a Prometheus setting not supported by bellwether",
            "bw.yml:5:5: scrape_configs[0].oauth2: `oauth2` is a Prometheus setting not supported by bellwether",
            "bw.yml:6:5: scrape_configs[0].consul_sd_configs: `consul_sd_configs` is not supported by bellwether (service discovery: static_configs, file_sd_configs, and kubernetes_sd_configs in scrape_configs)",
            "bw.yml:8:7: scrape_configs[0].tls_config.min_version: `min_version` is a Prometheus setting not supported by bellwether",
        ]
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let errs = errors("scrape_configs:\n  - job_name: [node\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("bw.yml:") && errs[0].contains("YAML syntax error"),
        "{errs:?}"
    );
}

#[test]
fn missing_required_key() {
    let text = "\
scrape_configs:
  - static_configs: [{targets: ['a:1']}]
    file_sd_configs:
      - refresh_interval: 1m
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:2:5: scrape_configs[0]: missing required key `job_name`",
            "bw.yml:4:9: scrape_configs[0].file_sd_configs[0]: missing required key `files`",
        ]
    );
}

#[test]
fn display_is_one_error_per_line() {
    let err = load_test("a: 1\nb: 2\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "bw.yml:1:1: a: unknown key `a`\nbw.yml:2:1: b: unknown key `b`"
    );
}

// ---- semantic rules ------------------------------------------------------

#[test]
fn relabel_rules_follow_prometheus() {
    let text = "\
scrape_configs:
  - job_name: node
    metric_relabel_configs:
      - source_labels: [a]
        action: replace
      - target_label: 'bad-label'
      - target_label: '${1}_x'
        regex: (.*)
      - action: labelmap
        regex: __meta_(.+)
        replacement: 'not valid'
      - action: lowercase
        source_labels: [a]
        target_label: b
        replacement: c
      - action: keepequal
        target_label: b
      - action: dropequal
        source_labels: [a]
        target_label: b
        regex: x
      - action: hashmod
        source_labels: [a]
        target_label: '${1}'
        modulus: 4
      - action: LabelKeep
        regex: a|b
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:4:9: scrape_configs[0].metric_relabel_configs[0].target_label: the replace action needs `target_label`",
            "bw.yml:6:23: scrape_configs[0].metric_relabel_configs[1].target_label: \"bad-label\" is not a valid target_label for the replace action: use a label name, optionally with $1 or ${name} templates",
            "bw.yml:11:22: scrape_configs[0].metric_relabel_configs[3].replacement: \"not valid\" is not a valid replacement for the labelmap action: it must be a label name, optionally with $1 or ${name} templates",
            "bw.yml:15:9: scrape_configs[0].metric_relabel_configs[4].replacement: `replacement` cannot be set for the lowercase action",
            "bw.yml:16:9: scrape_configs[0].metric_relabel_configs[5].source_labels: the keepequal action needs `source_labels`",
            "bw.yml:21:9: scrape_configs[0].metric_relabel_configs[6].regex: the dropequal action takes only `source_labels` and `target_label`; remove `regex`",
            "bw.yml:24:23: scrape_configs[0].metric_relabel_configs[7].target_label: \"${1}\" is not a valid label name for the hashmod action",
        ]
    );
}

#[test]
fn http_client_conflicts() {
    let text = "\
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: p}
    bearer_token: t
  - job_name: b
    authorization: {type: Basic, credentials: c}
  - job_name: c
    bearer_token: t
    bearer_token_file: /nonexistent/token
  - job_name: d
    tls_config: {cert_file: /nonexistent/cert}
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:3:5: scrape_configs[0].basic_auth: at most one of basic_auth, authorization and bearer_token/bearer_token_file may be set",
            "bw.yml:6:27: scrape_configs[1].authorization.type: authorization type cannot be \"Basic\"; use basic_auth instead",
            "bw.yml:9:5: scrape_configs[2].bearer_token_file: at most one of bearer_token and bearer_token_file may be set",
            "bw.yml:9:24: scrape_configs[2].bearer_token_file: cannot read \"/nonexistent/token\": No such file or directory (os error 2)",
            "bw.yml:11:18: scrape_configs[3].tls_config.cert_file: cert_file is set without key_file; a client certificate needs both",
            "bw.yml:11:29: scrape_configs[3].tls_config.cert_file: cannot read \"/nonexistent/cert\": No such file or directory (os error 2)",
        ]
    );
}

#[test]
fn targets_are_only_checked_without_relabeling() {
    // The blackbox-exporter pattern: URLs as targets, rewritten by relabeling.
    let text = "\
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs:
      - targets: ['https://example.com/health']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - target_label: __address__
        replacement: 127.0.0.1:9115
";
    let config = ok(text);
    assert_eq!(config.scrape_configs[0].params["module"], ["http_2xx"]);
    assert_eq!(
        config.scrape_configs[0].relabel_configs[1].replacement,
        "127.0.0.1:9115"
    );
}

#[test]
fn rule_and_file_sd_paths_follow_prometheus_patterns() {
    let text = "\
rule_files: ['rules/*/x.yml']
scrape_configs:
  - job_name: a
    file_sd_configs:
      - files: ['targets/*.txt']
      - files: []
";
    assert_eq!(
        errors(text),
        [
            "bw.yml:1:14: rule_files[0]: invalid rule file path \"rules/*/x.yml\": `*` may only appear in the last path element",
            "bw.yml:5:17: scrape_configs[0].file_sd_configs[0].files[0]: \"targets/*.txt\" is not a valid file_sd file name: it must end in .json, .yml or .yaml, with `*` only in the last path element",
            "bw.yml:6:16: scrape_configs[0].file_sd_configs[1].files: file_sd_configs needs at least one file name",
        ]
    );
}

#[test]
fn alertmanager_api_version_and_defaults() {
    let config =
        ok("alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['am:9093']}]\n");
    let am = &config.alerting.alertmanagers[0];
    assert_eq!(am.timeout, Some(values::PromDuration::from_secs(10)));
    assert_eq!(am.send_timeout(), Duration::from_secs(10));
    assert_eq!(am.api_version.as_deref(), Some("v2"));
    assert_eq!(
        errors("alerting:\n  alertmanagers:\n    - api_version: v1\n"),
        ["bw.yml:3:20: alerting.alertmanagers[0].api_version: api_version \"v1\" is not supported: bellwether speaks Alertmanager API v2 only"]
    );
}

// ---- real-world configs -----------------------------------------------------

/// A typical prometheus.yml: self-scrape, node_exporter with relabeling and
/// file_sd, blackbox-style params, an alertmanager, anchors and merge keys.
const PROMETHEUS_YML: &str = r#"
# my global config
global:
  scrape_interval: 15s # Set the scrape interval to every 15 seconds. Default is every 1 minute.
  evaluation_interval: 15s # Evaluate rules every 15 seconds. The default is every 1 minute.
  # scrape_timeout is set to the global default (10s).
  external_labels:
    cluster: prod-eu-1
    replica: "${NODE_HOST}"

# Alertmanager configuration
alerting:
  alertmanagers:
    - static_configs:
        - targets:
            - alertmanager:9093

# Load rules once and periodically evaluate them according to the global 'evaluation_interval'.
rule_files:
  - "first_rules.yml"
  - "rules/*.yml"

scrape_configs:
  # The job name is added as a label `job=<job_name>` to any timeseries scraped from this config.
  - job_name: "prometheus"
    # metrics_path defaults to '/metrics'
    # scheme defaults to 'http'.
    static_configs:
      - targets: ["localhost:9090"]

  - job_name: node
    scrape_interval: 5s
    honor_timestamps: false
    file_sd_configs:
      - files: ['/etc/prometheus/targets/node_*.json', 'nodes.yml']
        refresh_interval: 1m
    static_configs:
      - targets: ['${NODE_HOST}:9100', '10.0.0.2:9100']
        labels: &site
          site: fra1
          rack: r12
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+):\d+'
        target_label: instance
        replacement: '${1}'
      - action: labelmap
        regex: __meta_(.+)
      - source_labels: [__meta_env]
        regex: dev|test
        action: drop
      - source_labels: [__address__]
        modulus: 4
        target_label: __tmp_hash
        action: hashmod
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_gc_.*'
        action: drop
      - regex: 'id|path'
        action: labeldrop

  - job_name: app
    scheme: https
    metrics_path: /internal/metrics
    scrape_timeout: 3s
    tls_config:
      insecure_skip_verify: true
    authorization:
      credentials: s3cr3t
    static_configs:
      - targets: ['app.internal:8443']
        labels:
          <<: *site
          rack: r13
"#;

#[test]
fn real_world_prometheus_yml_loads() {
    let config = ok(PROMETHEUS_YML);
    assert_eq!(
        config.global.scrape_interval.as_duration(),
        Duration::from_secs(15)
    );
    assert_eq!(
        config.global.scrape_timeout.as_duration(),
        Duration::from_secs(10)
    );
    assert_eq!(config.global.external_labels["replica"], "db1");
    assert_eq!(config.rule_files, ["first_rules.yml", "rules/*.yml"]);
    assert_eq!(config.scrape_configs.len(), 3);

    let node = &config.scrape_configs[1];
    assert_eq!(
        node.static_configs[0].targets,
        ["db1:9100", "10.0.0.2:9100"]
    );
    assert_eq!(node.interval(&config.global), Duration::from_secs(5));
    // Global timeout 10s is capped at the job's 5s interval, as Prometheus does.
    assert_eq!(node.timeout(&config.global), Duration::from_secs(5));
    assert_eq!(
        node.scrape_timeout,
        Some(values::PromDuration::from_secs(5))
    );
    assert!(!node.honor_timestamps);
    assert_eq!(
        node.file_sd_configs[0].refresh_interval.as_duration(),
        Duration::from_secs(60)
    );
    let relabel = &node.relabel_configs;
    // `${1}` in replacement is a regex template, not an environment variable.
    assert_eq!(relabel[0].replacement, "${1}");
    assert!(relabel[0].regex.regex.is_match("db1:9100"));
    assert_eq!(relabel[1].action, RelabelAction::LabelMap);
    assert_eq!(relabel[3].action, RelabelAction::HashMod);
    assert_eq!(relabel[3].modulus, Some(4));
    assert_eq!(
        node.metric_relabel_configs[1].action,
        RelabelAction::LabelDrop
    );

    let app = &config.scrape_configs[2];
    assert_eq!(app.scheme, "https");
    assert_eq!(app.timeout(&config.global), Duration::from_secs(3));
    assert_eq!(app.interval(&config.global), Duration::from_secs(15));
    let auth = app.authorization.as_ref().expect("authorization set");
    assert_eq!(
        (
            auth.kind.as_str(),
            auth.credentials.as_ref().map(|c| c.expose())
        ),
        ("Bearer", Some("s3cr3t"))
    );
    // Merge key: `rack` overridden, `site` inherited.
    let labels = &app.static_configs[0].labels;
    assert_eq!(
        (labels["site"].as_str(), labels["rack"].as_str()),
        ("fra1", "r13")
    );

    assert_eq!(
        config.alerting.alertmanagers[0].static_configs[0].targets,
        ["alertmanager:9093"]
    );
}

#[test]
fn relative_paths_follow_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("password"), "hunter2").expect("write password");
    let config_path = dir.path().join("bellwether.yml");
    std::fs::write(
        &config_path,
        "rule_files: ['rules/*.yml']\nscrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password_file: password}\n    file_sd_configs: [{files: ['sd/*.json']}]\n",
    )
    .expect("write config");
    let config = load_file(&config_path).expect("config loads");
    let dir_text = dir.path().display().to_string();
    assert_eq!(config.rule_files, [format!("{dir_text}/rules/*.yml")]);
    let scrape = &config.scrape_configs[0];
    assert_eq!(
        scrape
            .basic_auth
            .as_ref()
            .and_then(|b| b.password_file.clone()),
        Some(format!("{dir_text}/password"))
    );
    assert_eq!(
        scrape.file_sd_configs[0].files,
        [format!("{dir_text}/sd/*.json")]
    );

    // And an unreadable one is reported with the resolved path.
    std::fs::write(&config_path, "web:\n  write_token_file: missing-token\n")
        .expect("write config");
    let err = load_file(&config_path).unwrap_err();
    assert_eq!(
        err.errors,
        [format!(
            "{}:2:21: web.write_token_file: cannot read \"{dir_text}/missing-token\": No such file or directory (os error 2)",
            config_path.display()
        )]
    );
}

#[test]
fn missing_config_file_is_an_error() {
    let err = load_file(Path::new("/nonexistent/bellwether.yml")).unwrap_err();
    assert_eq!(err.errors.len(), 1);
    assert!(err.errors[0].starts_with("/nonexistent/bellwether.yml: cannot read config file"));
}

// ---- defaults -----------------------------------------------------------------

#[test]
fn embedded_default_config_loads() {
    let config = load_str(DEFAULT_CONFIG, "<embedded default config>").expect("default config");
    assert_eq!(config.scrape_configs.len(), 1);
    let job = &config.scrape_configs[0];
    assert_eq!(job.job_name, "bellwether");
    assert_eq!(job.static_configs[0].targets, ["127.0.0.1:9471"]);
    assert_eq!(job.interval(&config.global), Duration::from_secs(15));
    assert_eq!(config.web.listen_address, "127.0.0.1:9471");
    assert!(config.collectors.host.enabled);
    assert!(!config.collectors.host.expose_on_metrics);
}

#[test]
fn host_collector_section() {
    assert!(!ok("").collectors.host.enabled, "off unless configured");
    let config =
        ok("collectors:\n  host:\n    enabled: true\n    interval: 30s\n    disable: [pressure]\n");
    assert_eq!(
        config.collectors.host.interval.map(|d| d.0),
        Some(Duration::from_secs(30))
    );
    assert_eq!(config.collectors.host.job_name, "node");
    let errs = errors(
        "scrape_configs:\n  - job_name: node\n    static_configs: [{targets: [\"h:9100\"]}]\n\
         collectors:\n  host:\n    enabled: true\n    disable: [cpu, nfs]\n    netdev_device_exclude: \"(lo\"\n",
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert_eq!(
        errs,
        [
            "bw.yml:6:5: collectors.host.job_name: job_name \"node\" is also the job_name of scrape_configs[0]; choose another for the host collector (or for that job)",
            "bw.yml:7:20: collectors.host.disable[1]: unknown host collector \"nfs\" (known: cpu, diskstats, filesystem, loadavg, meminfo, netdev, pressure, stat, time, uname, vmstat)",
            "bw.yml:8:28: collectors.host.netdev_device_exclude: invalid regex `(lo`: unclosed group at position 1",
        ]
    );
    assert!(errors("collectors:\n  host:\n    enable: true\n")[0].contains("unknown"));
}

#[test]
fn otlp_listen_address_is_optional_checked_and_not_the_main_address() {
    assert_eq!(ok("").web.otlp_listen_address, None);
    assert_eq!(
        ok("web:\n  otlp_listen_address: 0.0.0.0:4318\n")
            .web
            .otlp_listen_address
            .as_deref(),
        Some("0.0.0.0:4318")
    );
    assert_eq!(
        errors("web:\n  otlp_listen_address: \"4318\"\n"),
        ["bw.yml:2:24: web.otlp_listen_address: \"4318\" is not a valid listen address; expected host:port such as 127.0.0.1:9471"]
    );
    assert_eq!(
        errors("web:\n  listen_address: 127.0.0.1:9471\n  otlp_listen_address: 127.0.0.1:9471\n"),
        ["bw.yml:3:24: web.otlp_listen_address: \"127.0.0.1:9471\" is also web.listen_address, which serves OTLP already; leave otlp_listen_address out or choose another port such as 4318"]
    );
}

#[test]
fn empty_config_takes_prometheus_defaults() {
    for text in [
        "",
        "global:\n",
        "# nothing\n",
        "global: {}\nscrape_configs:\n",
    ] {
        let config = ok(text);
        assert_eq!(
            config.global.scrape_interval.as_duration(),
            Duration::from_secs(60),
            "{text:?}"
        );
        assert_eq!(
            config.global.scrape_timeout.as_duration(),
            Duration::from_secs(10)
        );
        assert_eq!(
            config.global.evaluation_interval.as_duration(),
            Duration::from_secs(60)
        );
        assert!(config.scrape_configs.is_empty());
        assert_eq!(
            config.storage.retention.as_duration(),
            Duration::from_secs(15 * 86400)
        );
        assert_eq!(
            config.storage.wal_flush_interval.as_duration(),
            Duration::from_secs(1)
        );
        assert_eq!(config.storage.max_series, 1_000_000);
        assert_eq!(config.web.listen_address, "127.0.0.1:9471");
        assert_eq!(config.web.max_request_body.0, 32 << 20);
    }
}

#[test]
fn scrape_job_defaults() {
    let config = ok("scrape_configs:\n  - job_name: a\n");
    let job = &config.scrape_configs[0];
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, "http");
    assert!(!job.honor_labels);
    assert!(job.honor_timestamps);
    assert!(job.follow_redirects);
    assert!(job.enable_http2);
    assert_eq!(
        job.scrape_interval,
        Some(values::PromDuration::from_secs(60))
    );
    assert_eq!(
        job.scrape_timeout,
        Some(values::PromDuration::from_secs(10))
    );
    assert_eq!(job.limits(&config.global).sample_limit, 0);
}

#[test]
fn global_timeout_default_is_capped_at_a_short_interval() {
    // Prometheus: an unset global scrape_timeout (10s) becomes the interval.
    let config = ok("global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n");
    assert_eq!(
        config.global.scrape_timeout.as_duration(),
        Duration::from_secs(5)
    );
    assert_eq!(
        config.scrape_configs[0].timeout(&config.global),
        Duration::from_secs(5)
    );
    // ... but a written one is checked.
    assert_eq!(
        errors("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n"),
        ["bw.yml:3:19: global.scrape_timeout: scrape_timeout (6s) is greater than scrape_interval (5s); a scrape must end before the next one starts"]
    );
}

#[test]
fn limits_fall_back_to_global() {
    let config = ok("\
global:
  sample_limit: 1000
  body_size_limit: 10MB
scrape_configs:
  - job_name: a
    sample_limit: 50
  - job_name: b
");
    let a = config.scrape_configs[0].limits(&config.global);
    let b = config.scrape_configs[1].limits(&config.global);
    assert_eq!((a.sample_limit, a.body_size_limit), (50, 10 << 20));
    assert_eq!((b.sample_limit, b.body_size_limit), (1000, 10 << 20));
}

#[test]
fn legacy_bearer_token_is_folded_into_authorization() {
    let config = ok("scrape_configs:\n  - job_name: a\n    bearer_token: abc\n");
    let auth = config.scrape_configs[0]
        .authorization
        .as_ref()
        .expect("folded");
    assert_eq!(auth.kind, "Bearer");
    assert_eq!(auth.credentials.as_ref().map(|c| c.expose()), Some("abc"));
}

#[test]
fn env_expansion_happens_before_typing() {
    let config = ok("\
scrape_configs:
  - job_name: a
    scrape_interval: ${SCRAPE_INTERVAL}
    honor_labels: ${HONOR}
    metrics_path: /m$$x
");
    let job = &config.scrape_configs[0];
    assert_eq!(
        job.scrape_interval,
        Some(values::PromDuration::from_secs(30))
    );
    assert!(job.honor_labels);
    assert_eq!(job.metrics_path, "/m$x");
}

// ---- no input panics ---------------------------------------------------------------

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn check_format(text: &str) {
        if let Err(e) = load_test(text) {
            assert!(!e.errors.is_empty());
            for line in &e.errors {
                assert!(line.starts_with("bw.yml:"), "{line}");
                assert!(!line.contains('\n'), "{line:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_format(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn yaml_like_text_never_panics(
            text in "([a-z_]{1,8}|[:\\-\\[\\]{}&*!|>'\"#,%@`$~<]| |\n|  |[0-9]{1,3}){0,80}"
        ) {
            check_format(&text);
        }

        #[test]
        fn mutated_real_config_never_panics(cut in 0usize..2000, insert in "[ :\\-\\[\\]{}&*'\"\n#a-z0-9$]{0,6}") {
            let mut text = PROMETHEUS_YML.to_string();
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &insert);
            check_format(&text);
        }
    }
}

// ---- the docs -------------------------------------------------------------------

const DOCS: &str = include_str!("../../docs/configuration.md");

/// The fenced block that follows `heading` in docs/configuration.md.
fn docs_block(heading: &str, fence: &str) -> String {
    let after = DOCS.split_once(heading).expect("heading in docs").1;
    let body = after.split_once(fence).expect("fenced block").1;
    body.split_once("\n```")
        .expect("closing fence")
        .0
        .to_string()
}

#[test]
fn docs_full_example_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    for secret in ["app-password", "ca.pem", "write-token"] {
        std::fs::write(dir.path().join("secrets").join(secret), "x").expect("write secret");
    }
    let text = docs_block("## Full example", "```yaml\n");
    let env = |name: &str| match name {
        "HOSTNAME" => Some("node-1".to_string()),
        "PAGERDUTY_ROUTING_KEY" => Some("k".to_string()),
        _ => None,
    };
    let config = load(&text, "example.yml", Some(dir.path()), &env)
        .unwrap_or_else(|e| panic!("docs example should load:\n{e}"));
    assert_eq!(config.global.external_labels["node"], "node-1");
    assert_eq!(
        config.scrape_configs[1].timeout(&config.global),
        Duration::from_secs(5)
    );
    assert_eq!(
        config.scrape_configs[1].relabel_configs[0].replacement,
        "${1}"
    );
    let notify = config.notify_config.expect("notify checked");
    let tree = crate::notify::route::RouteTree::new(&notify);
    let critical = crate::model::Labels::new([("severity", "critical")]);
    assert_eq!(tree.receivers_for(&critical), ["pagerduty", "log"]);
}

#[test]
fn docs_error_sample_is_what_the_loader_prints() {
    let text = docs_block("## Errors", "```yaml\n");
    let expected = docs_block("$ bellwether check config bellwether.yml", "\n");
    let err = load(&text, "bellwether.yml", None, &env).unwrap_err();
    assert_eq!(err.to_string(), expected);
}

/// The keys a config type accepts, as serde's derive lists them.
fn keys_of<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    let (root, _) = yaml::parse("__no_such_key__: 1\n");
    let root = root.expect("parses");
    match T::deserialize(de::NodeDe(&root)) {
        Err(e) => match e.kind {
            de::DeErrorKind::UnknownField { expected, .. } => expected.to_vec(),
            other => panic!("expected an unknown-key error, got {other:?}"),
        },
        Ok(_) => panic!("unknown key accepted"),
    }
}

#[test]
fn docs_mention_every_key() {
    let all = [
        keys_of::<Config>(),
        keys_of::<GlobalConfig>(),
        keys_of::<ScrapeConfig>(),
        keys_of::<BasicAuth>(),
        keys_of::<Authorization>(),
        keys_of::<TlsConfig>(),
        keys_of::<StaticConfig>(),
        keys_of::<FileSdConfig>(),
        keys_of::<RelabelConfig>(),
        keys_of::<AlertingConfig>(),
        keys_of::<AlertmanagerConfig>(),
        keys_of::<StorageConfig>(),
        keys_of::<WebConfig>(),
        keys_of::<RulesConfig>(),
        keys_of::<CollectorsConfig>(),
        keys_of::<HostConfig>(),
        keys_of::<crate::collect::kubernetes::config::KubernetesConfig>(),
        keys_of::<crate::collect::kubernetes::config::KubernetesSdConfig>(),
        keys_of::<crate::collect::kubernetes::config::NamespaceFilter>(),
        keys_of::<crate::notify::config::NotifySection>(),
        keys_of::<crate::notify::config::AmGlobal>(),
        keys_of::<crate::notify::config::HttpConfig>(),
        keys_of::<crate::notify::config::RouteConfig>(),
        keys_of::<crate::notify::config::InhibitRuleConfig>(),
        keys_of::<crate::notify::config::NamedTimeInterval>(),
        keys_of::<crate::notify::timeinterval::TimeInterval>(),
        keys_of::<crate::notify::config::Receiver>(),
        keys_of::<crate::notify::config::PagerdutyConfig>(),
        keys_of::<crate::notify::config::SlackConfig>(),
        keys_of::<crate::notify::config::EmailConfig>(),
        keys_of::<crate::notify::config::WebhookConfig>(),
        keys_of::<crate::notify::config::LogConfig>(),
        keys_of::<crate::notify::config::DeliverySettings>(),
        keys_of::<crate::notify::config::HistorySettings>(),
        keys_of::<crate::llm::config::LlmConfig>(),
        keys_of::<crate::llm::budget::BudgetConfig>(),
        keys_of::<crate::collect::probe::config::ProbesSection>(),
        keys_of::<crate::collect::probe::config::ProbeJob>(),
        keys_of::<crate::collect::probe::config::HttpProbe>(),
        keys_of::<crate::collect::probe::config::TcpProbe>(),
        keys_of::<crate::collect::probe::config::ProbeTlsConfig>(),
        keys_of::<crate::collect::probe::config::PostgresProbe>(),
    ];
    let keys: Vec<&str> = all.concat();
    assert!(keys.contains(&"job_name") && keys.contains(&"write_token_file"));
    for key in keys {
        assert!(
            DOCS.contains(&format!("`{key}`")),
            "docs/configuration.md does not mention `{key}`"
        );
    }
}

/// Every bad value cost one more deserialization of the whole tree, so
/// thousands of bad values after thousands of good ones were quadratic (a
/// 36 KB file took seconds, a megabyte minutes). Found while reviewing the
/// `config` fuzz target's inputs; reporting stops at 100 problems.
#[test]
fn regression_fuzz_many_bad_values_are_not_quadratic() {
    let n = 20_000;
    let good = vec!["\"h:1\""; n].join(", ");
    let bad = vec!["[1]"; n].join(", ");
    let text = format!(
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [{good}, {bad}]\n"
    );
    let started = std::time::Instant::now();
    let errors = errors(&text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(errors.len(), 101, "{:?}", &errors[..3]);
    assert_eq!(
        errors[0],
        "bw.yml: more than 100 problems in the config; the rest are not reported"
    );
    assert!(errors[1].starts_with("bw.yml:4:"), "{}", errors[1]);
}

#[test]
fn notify_history_retention_merges_over_the_tiers_and_refuses_zero() {
    let config = ok("notify:\n  history:\n    retention: {critical: 180d, page: 1d}\n");
    let history = &config
        .notify_config
        .as_ref()
        .expect("notify config")
        .history;
    let days = |d: std::time::Duration| d.as_secs() / 86_400;
    let tiers: Vec<(String, u64)> = history
        .per_severity()
        .into_iter()
        .map(|(s, d)| (s, days(d)))
        .collect();
    assert_eq!(
        tiers,
        [
            ("critical".to_string(), 180),
            ("info".to_string(), 7),
            ("page".to_string(), 1),
            ("warning".to_string(), 30)
        ]
    );
    assert_eq!(days(history.default_retention.0), 7);
    assert_eq!(
        errors("notify:\n  history:\n    retention: {warning: 0s}\n    default_retention: 0s\n"),
        [
            "bw.yml:3:26: notify.history.retention.warning: the retention of severity \"warning\" must be greater than 0",
            "bw.yml:4:24: notify.history.default_retention: default_retention must be greater than 0",
        ]
    );
}

/// The ConfigMap of packaging/kubernetes/daemonset.yaml loads: the manifest
/// is documentation users apply as-is.
#[test]
fn the_daemonset_manifest_config_loads() {
    let manifest = include_str!("../../packaging/kubernetes/daemonset.yaml");
    let start = manifest
        .find("bellwether.yml: |\n")
        .expect("the ConfigMap's bellwether.yml")
        + "bellwether.yml: |\n".len();
    let block: String = manifest[start..]
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| format!("{}\n", line.get(4..).unwrap_or("")))
        .collect();
    assert!(block.contains("kubernetes:"), "{block}");
    let env = |name: &str| (name == "NODE_NAME").then(|| "node-1".to_string());
    let config = match load(&block, "daemonset.yaml", None, &env) {
        Ok(config) => config,
        Err(e) => panic!("the manifest's config does not load:\n{e}\n{block}"),
    };
    assert_eq!(config.collectors.kubernetes.pods_job, "kubernetes-pods");
    assert_eq!(
        config
            .global
            .external_labels
            .get("node")
            .map(String::as_str),
        Some("node-1")
    );
}
