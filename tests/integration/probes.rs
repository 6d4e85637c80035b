//! Health probes against real servers on 127.0.0.1: small HTTP and HTTPS
//! servers in this process (certificates made by the `openssl` command line,
//! one expiring in 3 days), a port nobody listens on, and Debian's
//! PostgreSQL 15 (initdb + postgres as the `postgres` user via setpriv, in a temp dir).
//! Results are read back through the daemon's query API and its self metrics;
//! the TLS-expiry rule is tested with real probe data by both promtool and
//! `bellwether test rules`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{free_port, metric_value, reference_program, wait_for, TestDaemon};

// ------------------------------------------------------------------ servers

/// A self-signed certificate for 127.0.0.1 valid for `days` days, made by
/// `openssl`; returns (cert path, key path).
pub(crate) fn make_certificate(dir: &Path, name: &str, days: u32) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new(reference_program("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-days", &days.to_string()])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

pub(crate) fn tls_server_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("cert file")
        .collect::<Result<_, _>>()
        .expect("cert pem");
    let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    Arc::new(config)
}

/// A tiny HTTP/1.1 server, plain or TLS, one thread per connection:
/// `/ok` → 200 "healthy", `/fail` → 500, `/hang` → never answers,
/// `/flood` → 200 with a 10 MB body, `/redirect` → 302 to `/ok`.
fn start_http_server(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                match tls {
                    Some(config) => {
                        let Ok(connection) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        handle(rustls::StreamOwned::new(connection, stream));
                    }
                    None => handle(stream),
                }
            });
        }
    });
    port
}

fn handle(mut stream: impl Read + Write) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let respond = |stream: &mut dyn Write, status: &str, extra: &str, body: &str| {
        // One write: small writes in a row would meet Nagle's algorithm and
        // the client's delayed ACK, and add ~40 ms to the measured phases.
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
    };
    match path.split('?').next().unwrap_or("") {
        "/ok" | "/" => respond(&mut stream, "200 OK", "", "healthy\n"),
        "/fail" => respond(&mut stream, "500 Internal Server Error", "", "broken\n"),
        "/redirect" => respond(&mut stream, "302 Found", "Location: /ok\r\n", ""),
        "/hang" => std::thread::sleep(Duration::from_secs(30)),
        "/flood" => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n"
            );
            let chunk = [b'x'; 64 * 1024];
            for _ in 0..160 {
                if stream.write_all(&chunk).is_err() {
                    return;
                }
            }
        }
        _ => respond(&mut stream, "404 Not Found", "", ""),
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    free_port()
}

// ------------------------------------------------------------------ queries

/// The result of an instant query: each series' labels and value.
fn query(daemon: &TestDaemon, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let url = format!(
        "/api/v1/query?query={}",
        expr.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' =>
                    (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    );
    let json = daemon.get_json(&url, 200);
    let result = json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    result
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            (labels, value)
        })
        .collect()
}

/// The single value of `expr`, if it has exactly one series.
fn value(daemon: &TestDaemon, expr: &str) -> Option<f64> {
    let result = query(daemon, expr);
    (result.len() == 1).then(|| result[0].1)
}

fn wait_value(daemon: &TestDaemon, expr: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> f64 {
    let mut last = None;
    let reached = wait_for(timeout, || {
        last = value(daemon, expr);
        last.is_some_and(&ok)
    });
    assert!(
        reached,
        "{expr} did not reach the expected value within {timeout:?} (last: {last:?})\n{}",
        daemon.log()
    );
    last.unwrap_or(f64::NAN)
}

/// `bellwether_probe_failures_total{job,reason}` from the daemon's /metrics.
fn failures(daemon: &TestDaemon, job: &str, reason: &str) -> f64 {
    let (_, body) = daemon.get("/metrics");
    metric_value(
        &body,
        &format!("bellwether_probe_failures_total{{job=\"{job}\",reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

// ------------------------------------------------------------------ HTTP, TCP, TLS

#[test]
fn http_tcp_and_tls_probes_report_blackbox_metrics() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (cert, key) = make_certificate(certs.path(), "soon", 3);
    let http = start_http_server(None);
    let https = start_http_server(Some(tls_server_config(&cert, &key)));
    let closed = closed_port();
    let config = format!(
        r#"
probes:
  jobs:
    - name: web-ok
      prober: http
      interval: 1s
      timeout: 800ms
      targets: ["http://127.0.0.1:{http}/redirect"]
      labels: {{team: core}}
      http:
        preferred_ip_protocol: ip4
        fail_if_body_not_matches_regexp: ["health"]
    - name: web-500
      prober: http
      interval: 1s
      targets: ["http://127.0.0.1:{http}/fail"]
      http: {{preferred_ip_protocol: ip4}}
    - name: web-regex
      prober: http
      interval: 1s
      targets: ["http://127.0.0.1:{http}/ok"]
      http: {{fail_if_body_matches_regexp: ["heal+thy"]}}
    - name: web-hang
      prober: http
      interval: 2s
      timeout: 500ms
      targets: ["http://127.0.0.1:{http}/hang"]
    - name: web-flood
      prober: http
      interval: 2s
      timeout: 1500ms
      targets: ["http://127.0.0.1:{http}/flood"]
      http: {{body_size_limit: 64KB}}
    - name: https-verified
      prober: http
      interval: 1s
      targets: ["https://127.0.0.1:{https}/ok"]
      http:
        fail_if_not_ssl: true
        tls_config: {{ca_file: "{ca}"}}
    - name: https-untrusted
      prober: http
      interval: 1s
      targets: ["https://127.0.0.1:{https}/ok"]
    - name: tcp-closed
      prober: tcp
      interval: 1s
      targets: ["127.0.0.1:{closed}"]
    - name: tcp-tls
      prober: tcp
      interval: 1s
      targets: ["localhost:{https}"]
      tcp:
        preferred_ip_protocol: ip4
        tls: true
        tls_config: {{insecure_skip_verify: true}}
"#,
        ca = cert.display()
    );
    let daemon = TestDaemon::start(&config);
    let long = Duration::from_secs(20);

    // A redirect to a healthy page: success, the phases, status, version.
    let ok = r#"{job="web-ok"}"#;
    wait_value(&daemon, &format!("probe_success{ok}"), long, |v| v == 1.0);
    let labels = &query(&daemon, &format!("probe_success{ok}"))[0].0;
    assert_eq!(
        labels["instance"],
        format!("http://127.0.0.1:{http}/redirect")
    );
    assert_eq!(labels["team"], "core");
    assert_eq!(
        value(&daemon, &format!("probe_http_status_code{ok}")),
        Some(200.0)
    );
    assert_eq!(
        value(&daemon, &format!("probe_http_redirects{ok}")),
        Some(1.0)
    );
    assert_eq!(
        value(&daemon, &format!("probe_http_version{ok}")),
        Some(1.1)
    );
    assert_eq!(value(&daemon, &format!("probe_http_ssl{ok}")), Some(0.0));
    assert_eq!(
        value(&daemon, &format!("probe_http_content_length{ok}")),
        Some(8.0)
    );
    assert_eq!(value(&daemon, &format!("probe_ip_protocol{ok}")), Some(4.0));
    assert_eq!(
        value(&daemon, &format!("probe_failed_due_to_regex{ok}")),
        Some(0.0)
    );
    assert_eq!(
        value(&daemon, &format!("probe_consecutive_failures{ok}")),
        Some(0.0)
    );
    let phases = query(&daemon, &format!("probe_http_duration_seconds{ok}"));
    let names: Vec<&str> = phases.iter().map(|(l, _)| l["phase"].as_str()).collect();
    assert_eq!(
        names,
        ["connect", "processing", "resolve", "tls", "transfer"]
    );
    eprintln!("measured: phases of a local redirect + 200: {phases:?}");
    assert!(
        phases.iter().all(|(_, v)| (0.0..0.8).contains(v)),
        "{phases:?}"
    );
    assert!(
        value(&daemon, &format!("probe_duration_seconds{ok}")).is_some_and(|v| v > 0.0 && v < 0.8)
    );

    // 500: failure, counted consecutively, and by reason.
    let e500 = r#"{job="web-500"}"#;
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{e500}"),
        long,
        |v| v >= 2.0,
    );
    assert_eq!(value(&daemon, &format!("probe_success{e500}")), Some(0.0));
    assert_eq!(
        value(&daemon, &format!("probe_http_status_code{e500}")),
        Some(500.0)
    );
    assert!(failures(&daemon, "web-500", "status_code") >= 2.0);

    // A body regex that matches: failure due to regex.
    let regex = r#"{job="web-regex"}"#;
    wait_value(
        &daemon,
        &format!("probe_failed_due_to_regex{regex}"),
        long,
        |v| v == 1.0,
    );
    assert_eq!(value(&daemon, &format!("probe_success{regex}")), Some(0.0));
    assert_eq!(
        value(&daemon, &format!("probe_http_status_code{regex}")),
        Some(200.0)
    );

    // A server that never answers: failure at the timeout (500ms), not later.
    let hang = r#"{job="web-hang"}"#;
    let took = wait_value(
        &daemon,
        &format!("probe_duration_seconds{hang}"),
        long,
        |v| v > 0.0,
    );
    eprintln!("measured: hanging server, timeout 500ms: probe_duration_seconds {took}");
    assert!(
        (0.5..0.7).contains(&took),
        "hanging probe took {took}s, timeout 500ms"
    );
    assert_eq!(value(&daemon, &format!("probe_success{hang}")), Some(0.0));
    assert!(failures(&daemon, "web-hang", "timeout") >= 1.0);

    // 10 MB against a 64 KB cap: failure, counted, and quickly.
    let flood = r#"{job="web-flood"}"#;
    wait_value(&daemon, &format!("probe_success{flood}"), long, |v| {
        v == 0.0
    });
    assert!(failures(&daemon, "web-flood", "body_size_limit") >= 1.0);
    let took = value(&daemon, &format!("probe_duration_seconds{flood}"));
    eprintln!("measured: 10 MB body, 64 KB limit: probe_duration_seconds {took:?}");
    assert!(took.is_some_and(|v| v < 1.0));

    // HTTPS verified against the self-signed certificate as CA: expiry in 3 days.
    let tls = r#"{job="https-verified"}"#;
    wait_value(&daemon, &format!("probe_success{tls}"), long, |v| v == 1.0);
    assert_eq!(value(&daemon, &format!("probe_http_ssl{tls}")), Some(1.0));
    let expiry = value(&daemon, &format!("probe_ssl_earliest_cert_expiry{tls}")).expect("expiry");
    let now = crate_now();
    let left = expiry - now;
    assert!(
        (3.0 * 86400.0 - 120.0..=3.0 * 86400.0 + 60.0).contains(&left),
        "expires in {left}s"
    );
    let versions = query(&daemon, &format!("probe_tls_version_info{tls}"));
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].0["version"], "TLS 1.3");
    let ciphers = query(&daemon, &format!("probe_tls_cipher_info{tls}"));
    assert_eq!(ciphers.len(), 1);
    assert!(
        ciphers[0].0["cipher"].starts_with("TLS_AES_")
            || ciphers[0].0["cipher"] == "TLS_CHACHA20_POLY1305_SHA256",
        "{ciphers:?}"
    );
    let handshake = value(
        &daemon,
        r#"probe_http_duration_seconds{job="https-verified",phase="tls"}"#,
    );
    eprintln!("measured: TLS handshake phase {handshake:?}");
    assert!(handshake.is_some_and(|v| v > 0.0));

    // Without the CA the chain is untrusted: a TLS failure, no expiry.
    let untrusted = r#"{job="https-untrusted"}"#;
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{untrusted}"),
        long,
        |v| v >= 1.0,
    );
    assert!(failures(&daemon, "https-untrusted", "tls") >= 1.0);
    assert!(query(
        &daemon,
        &format!("probe_ssl_earliest_cert_expiry{untrusted}")
    )
    .is_empty());

    // Closed port: fails fast with reason connect.
    let closed_job = r#"{job="tcp-closed"}"#;
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{closed_job}"),
        long,
        |v| v >= 2.0,
    );
    assert_eq!(
        value(&daemon, &format!("probe_success{closed_job}")),
        Some(0.0)
    );
    let took = value(&daemon, &format!("probe_duration_seconds{closed_job}"));
    eprintln!("measured: closed port: probe_duration_seconds {took:?}");
    assert!(took.is_some_and(|v| v < 0.1));
    assert!(failures(&daemon, "tcp-closed", "connect") >= 2.0);

    // TCP with TLS (no verification): success and the same expiry.
    let tcp_tls = r#"{job="tcp-tls"}"#;
    wait_value(&daemon, &format!("probe_success{tcp_tls}"), long, |v| {
        v == 1.0
    });
    assert_eq!(
        value(&daemon, &format!("probe_ssl_earliest_cert_expiry{tcp_tls}")),
        Some(expiry)
    );
    assert_eq!(
        value(&daemon, &format!("probe_ip_protocol{tcp_tls}")),
        Some(4.0)
    );

    // Removing a job marks its series stale (after one interval and 10 %);
    // a changed job (web-500 gets a timeout) keeps its failure count.
    let before = wait_value(
        &daemon,
        &format!("probe_consecutive_failures{e500}"),
        long,
        |v| v >= 6.0,
    );
    let fail_target = format!("      targets: [\"http://127.0.0.1:{http}/fail\"]\n");
    let reduced = config
        .replace("    - name: web-ok\n", "    - name: web-ok-renamed\n")
        .replace(
            &fail_target,
            &format!("{fail_target}      timeout: 900ms\n"),
        );
    assert_ne!(reduced, config);
    std::fs::write(daemon.config_path(), reduced).expect("rewrite config");
    let (status, body) = daemon.post("/-/reload", "text/plain", Vec::new(), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(
        wait_for(long, || query(&daemon, &format!("probe_success{ok}"))
            .is_empty()),
        "web-ok's series were not marked stale after its removal"
    );
    assert!(query(&daemon, r#"probe_http_status_code{job="web-ok"}"#).is_empty());
    wait_value(
        &daemon,
        r#"probe_success{job="web-ok-renamed"}"#,
        long,
        |v| v == 1.0,
    );
    // Counted on from before the reload (a new count would be 1 to 3 by now).
    let after = value(&daemon, &format!("probe_consecutive_failures{e500}")).unwrap_or(0.0);
    assert!(
        after >= before,
        "failure count reset by the reload: {before} → {after}"
    );
}

#[test]
fn probes_beyond_max_concurrent_probes_fail_with_concurrency_limit() {
    // Five targets that each hold their slot for the whole 1s timeout,
    // every second, against one slot: most wait for a slot until (nearly)
    // their deadline.
    let http = start_http_server(None);
    let daemon = TestDaemon::start(&format!(
        r#"
probes:
  max_concurrent_probes: 1
  jobs:
    - name: slow
      prober: http
      interval: 1s
      targets: ["http://127.0.0.1:{http}/hang?1", "http://127.0.0.1:{http}/hang?2", "http://127.0.0.1:{http}/hang?3", "http://127.0.0.1:{http}/hang?4", "http://127.0.0.1:{http}/hang?5"]
      http: {{preferred_ip_protocol: ip4}}
"#
    ));
    assert!(
        wait_for(Duration::from_secs(20), || {
            failures(&daemon, "slow", "concurrency_limit") >= 1.0
                && failures(&daemon, "slow", "timeout") >= 1.0
        }),
        "no concurrency_limit failures:\n{}",
        daemon.get("/metrics").1
    );
}

fn crate_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

#[test]
fn bad_probe_config_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "probes:\n  jobs:\n    - name: x\n      prober: http\n      interval: 1s\n      timeout: 5s\n      targets: [\"ftp://x\"]\n      tcp: {tls: true}\n      http:\n        fail_if_body_matches_regexp: [\"(\"]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["check", "config"])
        .arg(&path)
        .output()
        .expect("bellwether check config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for expected in [
        "bad.yml:6:16: probes.jobs[0].timeout: timeout (5s) is greater than interval (1s)",
        "bad.yml:7:17: probes.jobs[0].targets[0]: \"ftp://x\": an http probe target is a URL starting with http:// or https://",
        "bad.yml:8:12: probes.jobs[0].tcp: `tcp` settings given, but the job's prober is `http`",
        "bad.yml:10:39: probes.jobs[0].http.fail_if_body_matches_regexp[0]: invalid regex `(`",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
}

// ------------------------------------------------------------------ the TLS-expiry rule

/// Prometheus's `humanizeDuration` for whole seconds of a day or more.
fn humanize_duration(seconds: i64) -> String {
    format!(
        "{}d {}h {}m {}s",
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[test]
fn tls_expiry_rule_fires_on_real_probe_data() {
    let certs = tempfile::tempdir().expect("tempdir");
    let (soon_cert, soon_key) = make_certificate(certs.path(), "soon", 3);
    let (later_cert, later_key) = make_certificate(certs.path(), "later", 30);
    let soon = start_http_server(Some(tls_server_config(&soon_cert, &soon_key)));
    let later = start_http_server(Some(tls_server_config(&later_cert, &later_key)));
    let daemon = TestDaemon::start(&format!(
        r#"
probes:
  jobs:
    - name: certs
      prober: http
      interval: 1s
      targets: ["https://127.0.0.1:{soon}/", "https://127.0.0.1:{later}/"]
      http: {{tls_config: {{insecure_skip_verify: true}}}}
"#
    ));
    let mut expiries = Vec::new();
    assert!(
        wait_for(Duration::from_secs(20), || {
            expiries = query(&daemon, r#"probe_ssl_earliest_cert_expiry{job="certs"}"#);
            expiries.len() == 2
        }),
        "no expiry for both targets: {expiries:?}\n{}",
        daemon.log()
    );
    let now = crate_now().floor() as i64;

    // The rule test's clock starts at 0, so each series holds the real
    // seconds left (the expiry read from bellwether minus the time it was
    // read): the same distance to the 7-day threshold as in production.
    let mut series = String::new();
    let mut soon_left = 0;
    for (labels, expiry) in &expiries {
        let left = *expiry as i64 - now;
        let instance = &labels["instance"];
        if instance.contains(&format!(":{soon}/")) {
            soon_left = left;
        }
        series.push_str(&format!(
            "      - series: 'probe_ssl_earliest_cert_expiry{{instance=\"{instance}\",job=\"certs\"}}'\n        values: '{left}x20'\n"
        ));
    }
    assert!(
        (3 * 86400 - 120..=3 * 86400).contains(&soon_left),
        "{soon_left}"
    );
    let at = 11 * 60;
    let shown = humanize_duration(soon_left - at);
    let soon_instance = format!("https://127.0.0.1:{soon}/");
    let warning = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/warning.yml");
    let test_file = format!(
        r#"rule_files:
  - {warning}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
{series}    alert_rule_test:
      # `for: 10m`: pending at 5m, firing at 11m, and only for the 3-day certificate.
      - eval_time: 5m
        alertname: TLSCertificateExpiringSoon
        exp_alerts: []
      - eval_time: 11m
        alertname: TLSCertificateExpiringSoon
        exp_alerts:
          - exp_labels:
              severity: warning
              job: certs
              instance: "{soon_instance}"
            exp_annotations:
              summary: "TLS certificate of {soon_instance} expires in {shown}"
              description: "The earliest-expiring certificate in the chain served by {soon_instance} expires in {shown} (threshold 7 days; a negative time means it has expired). Runbook: renew it (certbot renew, or your ACME client's logs show why the automatic renewal failed), deploy it and reload the server."
"#,
        warning = warning.display()
    );
    let path = certs.path().join("tls_expiry_test.yml");
    std::fs::write(&path, &test_file).expect("write test file");
    for (program, args) in [
        (reference_program("promtool"), vec!["test", "rules"]),
        (
            PathBuf::from(env!("CARGO_BIN_EXE_bellwether")),
            vec!["test", "rules"],
        ),
    ] {
        let out = Command::new(&program)
            .args(&args)
            .arg(&path)
            .output()
            .expect("running the rule test");
        assert!(
            out.status.success(),
            "{} test rules failed:\n{}{}\n{test_file}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ------------------------------------------------------------------ PostgreSQL

/// Debian's PostgreSQL 15 in a temp dir, run as the `postgres` user.
struct Postgres {
    port: u16,
    dir: tempfile::TempDir,
    server: Option<Child>,
    holders: Vec<Child>,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Runs a PostgreSQL program as the `postgres` user. `setpriv` execs it
/// directly (no supervising parent as with runuser), so the child's pid is
/// the program's and signals reach it.
fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "--",
    ]);
    command.arg(format!("{PG_BIN}/{program}"));
    command.env("HOME", "/tmp");
    command
}

impl Postgres {
    fn start(max_connections: u32) -> Postgres {
        assert!(
            Path::new(PG_BIN).join("postgres").exists(),
            "PostgreSQL 15 is not installed: run scripts/test.sh, which installs it"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success());
        let data = dir.path().join("data");
        let out = as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            port: free_port(),
            dir,
            server: None,
            holders: Vec::new(),
        };
        pg.spawn(max_connections);
        pg
    }

    fn spawn(&mut self, max_connections: u32) {
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).expect("log");
        let server = as_postgres("postgres")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", &format!("max_connections={max_connections}")])
            .args(["-c", "superuser_reserved_connections=0"])
            // So a killed psql's backend, asleep in pg_sleep, ends at once.
            .args(["-c", "client_connection_check_interval=100ms"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        self.server = Some(server);
        let port = self.port;
        assert!(
            wait_for(Duration::from_secs(30), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "postgres did not listen:\n{}",
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Opens a connection that stays open (a `psql` sleeping in a query).
    fn hold_connection(&mut self) {
        let child = as_postgres("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-X",
                "-q",
            ])
            .args(["-c", "SELECT pg_sleep(120)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql");
        self.holders.push(child);
    }

    fn release_connections(&mut self) {
        for mut child in self.holders.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server (fast shutdown: SIGINT to the postmaster).
    fn stop(&mut self) {
        self.release_connections();
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-INT", &server.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn postgres_probe_up_exhausted_and_down() {
    let mut pg = Postgres::start(5);
    let daemon = TestDaemon::start(&format!(
        r#"
probes:
  jobs:
    - name: db
      prober: postgres
      interval: 1s
      timeout: 900ms
      targets: ["127.0.0.1:{port}"]
      postgres:
        user: postgres
        queries: [pg_database, pg_stat_activity]
"#,
        port = pg.port
    ));
    let long = Duration::from_secs(20);
    let db = r#"{job="db"}"#;

    // Up: SELECT 1, the connection gauges, a custom query's gauges.
    wait_value(&daemon, &format!("pg_up{db}"), long, |v| v == 1.0);
    assert_eq!(value(&daemon, &format!("probe_success{db}")), Some(1.0));
    assert_eq!(
        value(&daemon, &format!("pg_max_connections{db}")),
        Some(5.0)
    );
    assert!(value(&daemon, &format!("pg_connections_in_use{db}"))
        .is_some_and(|v| (1.0..=5.0).contains(&v)));
    let sizes = query(
        &daemon,
        r#"pg_database_size_bytes{job="db",datname="postgres"}"#,
    );
    assert!(
        sizes.len() == 1 && sizes[0].1 > 1e6,
        "{sizes:?}\n{}",
        daemon.log()
    );
    assert!(!query(&daemon, r#"pg_stat_activity_count{job="db"}"#).is_empty());
    assert_eq!(failures(&daemon, "db", "query"), 0.0, "{}", daemon.log());

    // Exhaustion: four connections held, the probe's own is the fifth and last.
    for _ in 0..4 {
        pg.hold_connection();
    }
    wait_value(&daemon, &format!("pg_connections_in_use{db}"), long, |v| {
        v == 5.0
    });
    assert_eq!(
        value(
            &daemon,
            &format!("pg_connections_in_use{db} / pg_max_connections{db}")
        ),
        Some(1.0)
    );
    // A fifth holder takes the last slot: the probe is refused.
    pg.hold_connection();
    wait_value(&daemon, &format!("pg_up{db}"), long, |v| v == 0.0);
    assert!(failures(&daemon, "db", "connect") >= 1.0);
    pg.release_connections();
    wait_value(&daemon, &format!("pg_up{db}"), long, |v| v == 1.0);

    // Down: pg_up 0, probe_success 0, failures counted in a row, and the
    // connection gauges go stale rather than reporting 0.
    pg.stop();
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{db}"),
        long,
        |v| v >= 2.0,
    );
    assert_eq!(value(&daemon, &format!("pg_up{db}")), Some(0.0));
    assert_eq!(value(&daemon, &format!("probe_success{db}")), Some(0.0));
    assert!(query(&daemon, &format!("pg_connections_in_use{db}")).is_empty());
    let first = value(&daemon, &format!("probe_consecutive_failures{db}")).unwrap_or(0.0);
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{db}"),
        long,
        |v| v > first,
    );
    // Back up: the count resets.
    pg.spawn(5);
    wait_value(
        &daemon,
        &format!("probe_consecutive_failures{db}"),
        long,
        |v| v == 0.0,
    );
    assert_eq!(value(&daemon, &format!("pg_up{db}")), Some(1.0));
}
