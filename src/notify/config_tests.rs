use super::*;

fn load(text: &str) -> Result<NotifyConfig, Vec<String>> {
    load_str(text, "am.yml", None)
}

#[test]
fn every_problem_is_reported_with_its_position() {
    let errors = load(
        "route:\n  receiver: nobody\n  group_wait: soon\n  routes:\n    - matchers: ['a==b\"']\n      group_by: ['...', x]\nreceivers:\n  - name: a\n    opsgenie_configs: [{api_key: k}]\n  - name: a\n",
    )
    .unwrap_err();
    let text = errors.join("\n");
    assert!(text.contains("am.yml:3:15: route.group_wait: "), "{text}");
    assert!(
        text.contains("am.yml:2:13: route.receiver: undefined receiver \"nobody\" used in route"),
        "{text}"
    );
    assert!(
        text.contains("route.routes[0].group_by: cannot have wildcard"),
        "{text}"
    );
    assert!(text.contains("receivers[0].opsgenie_configs: receiver type `opsgenie_configs` is not supported by bellwether"), "{text}");
    assert!(
        text.contains("receivers[1].name: notification config name \"a\" is not unique"),
        "{text}"
    );
    assert!(
        text.contains("route.routes[0].matchers[0]: matcher value contains unescaped double quote"),
        "{text}"
    );
}

#[test]
fn globals_are_inherited() {
    let config = load(
        "global:\n  smtp_smarthost: mx:25\n  smtp_from: a@b\n  slack_api_url: https://hooks.slack.com/x\nroute:\n  receiver: r\nreceivers:\n  - name: r\n    email_configs: [{to: c@d}]\n    slack_configs: [{channel: '#c'}]\n    pagerduty_configs: [{routing_key: k}]\n",
    )
    .unwrap();
    let r = config.receiver("r").unwrap();
    assert_eq!(r.email_configs[0].smarthost, "mx:25");
    assert_eq!(r.email_configs[0].from, "a@b");
    assert_eq!(r.email_configs[0].hello, "localhost");
    assert_eq!(r.email_configs[0].require_tls, Some(true));
    assert_eq!(
        r.slack_configs[0].api_url.as_ref().map(|s| s.expose()),
        Some("https://hooks.slack.com/x")
    );
    assert_eq!(r.pagerduty_configs[0].url, DEFAULT_PAGERDUTY_URL);
    assert!(r.pagerduty_configs[0].send_resolved && !r.slack_configs[0].send_resolved);
    assert_eq!(config.global.resolve_timeout, PromDuration::from_secs(300));
}

#[test]
fn missing_route_is_an_error_in_a_file_but_defaulted_inline() {
    assert!(load("receivers: [{name: a}]\n").unwrap_err()[0].contains("no route provided"));
    let section = NotifySection {
        receivers: vec![Receiver {
            name: "pagerduty".into(),
            pagerduty_configs: Vec::new(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // A receiver without configs is not "configured": not routed to.
    let config = check_section(section.clone(), None, None).unwrap();
    assert!(config
        .receiver("log")
        .is_some_and(|r| r.log_configs.len() == 1));
    let receivers: Vec<&str> = config
        .route
        .routes
        .iter()
        .map(|r| r.receiver.as_str())
        .collect();
    assert_eq!(receivers, ["log"]);
    let mut section = section;
    section.receivers[0].log_configs.push(LogConfig::default());
    let config = check_section(section, None, None).unwrap();
    let receivers: Vec<&str> = config
        .route
        .routes
        .iter()
        .map(|r| r.receiver.as_str())
        .collect();
    assert_eq!(receivers, ["log", "pagerduty"]);
    assert_eq!(
        config.route.routes[1].all_matchers().to_string(),
        "{severity=\"critical\"}"
    );
}

#[test]
fn unknown_keys_and_receiver_types_are_refused() {
    let errors = load("route: {receiver: a}\nreceivers:\n  - name: a\n    pigeon_configs: []\n")
        .unwrap_err();
    assert!(
        errors[0].contains("unknown receiver type `pigeon_configs`"),
        "{errors:?}"
    );
    let errors = load(
        "route: {receiver: a}\nreceivers:\n  - name: a\n    webhook_configs: [{url: 'ftp://x'}]\n",
    )
    .unwrap_err();
    assert!(
        errors[0].contains("unsupported scheme \"ftp\""),
        "{errors:?}"
    );
}

#[test]
fn the_bellwether_config_checks_its_notify_section() {
    let err = crate::config::load_str(
        "notify:\n  route:\n    receiver: pager\n  receivers:\n    - name: log\n      log_configs: [{}]\n",
        "bw.yml",
    )
    .unwrap_err();
    assert_eq!(
        err.errors,
        ["bw.yml:3:15: notify.route.receiver: undefined receiver \"pager\" used in route"]
    );
    let err = crate::config::load_str(
        "notify:\n  config_file: am.yml\n  route: {receiver: x}\n",
        "bw.yml",
    )
    .unwrap_err();
    assert!(
        err.errors[0].starts_with("bw.yml:3:3: notify.route: `config_file` and inline"),
        "{err}"
    );
    let err = crate::config::load_str("notify:\n  config_file: /nonexistent/am.yml\n", "bw.yml")
        .unwrap_err();
    assert!(
        err.errors[0]
            .starts_with("bw.yml:2:16: notify.config_file: /nonexistent/am.yml: cannot read"),
        "{err}"
    );
    // The embedded default config routes everything to the log receiver.
    let config = crate::config::load_str(crate::config::DEFAULT_CONFIG, "default").unwrap();
    let notify = config.notify_config.unwrap();
    let tree = crate::notify::route::RouteTree::new(&notify);
    let labels = crate::model::Labels::new([("severity", "critical")]);
    assert_eq!(tree.receivers_for(&labels), ["log"]);
}

#[test]
fn notify_config_parser_never_panics_on_mangled_corpus_files() {
    // Every prefix of a realistic file: truncated YAML, half-written
    // matchers and time ranges must be refused or loaded, never panic.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/notify-corpus/timed.yml"
    ))
    .unwrap();
    for end in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
        let _ = load(&text[..end]);
    }
}

#[test]
fn inhibit_rules_compile_legacy_and_new_matchers() {
    let config = load(
        "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules:\n  - source_match: {severity: critical}\n    target_matchers: ['severity=~\"warning|info\"']\n    equal: [alertname, instance]\n",
    )
    .unwrap();
    let rule = &config.inhibit_rules[0];
    let l = |pairs: &[(&str, &str)]| crate::model::Labels::new(pairs.iter().copied());
    let critical = l(&[
        ("alertname", "Down"),
        ("severity", "critical"),
        ("instance", "a"),
    ]);
    let warning = l(&[
        ("alertname", "Down"),
        ("severity", "warning"),
        ("instance", "a"),
    ]);
    let other = l(&[
        ("alertname", "Down"),
        ("severity", "warning"),
        ("instance", "b"),
    ]);
    assert!(rule.mutes(&critical, &warning));
    assert!(!rule.mutes(&critical, &other));
    assert!(!rule.mutes(&warning, &critical));
    let errors = load("route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules:\n  - target_match: {0bad: x}\n    equal: ['a-b']\n").unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("inhibit_rules[0].target_match: invalid label name \"0bad\""),
        "{errors:?}"
    );
}

#[test]
fn webhook_hmac_keys_and_template_files_are_checked() {
    let errors = load(
        "route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs:\n      - url: http://x/\n        hmac_secret: a\n        hmac_secret_file: /f\n",
    )
    .unwrap_err()
    .join("\n");
    assert!(
        errors.contains("at most one of hmac_secret & hmac_secret_file"),
        "{errors}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.tmpl"),
        "{{ define \"x\" }}{{ nope }}{{ end }}",
    )
    .unwrap();
    let text = format!(
        "templates: ['{}/*.tmpl']\nroute: {{receiver: r}}\nreceivers: [{{name: r}}]\n",
        dir.path().display()
    );
    let errors = load(&text).unwrap_err().join("\n");
    assert!(errors.contains("templates[0]"), "{errors}");
    assert!(errors.contains("function \"nope\" not defined"), "{errors}");
    // A good file defines templates the receivers can use.
    std::fs::write(dir.path().join("bad.tmpl"), "{{ define \"x\" }}ok{{ end }}").unwrap();
    let config = load(&text).unwrap();
    assert!(config.notify_templates.has("x"));
    assert!(config.notify_templates.has("slack.default.title"));
}
