//! remote_write from the real Prometheus 2.42 (Debian's package) into the real
//! bellwether binary: Prometheus scrapes a test exposition served by this
//! process and remote_writes everything to bellwether; then both answer
//! `/api/v1/series`, `/api/v1/labels` and `/api/v1/label/<n>/values` for the
//! same selectors and time range, and the answers must be identical.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::util::{wait_for, Prometheus, TestDaemon};

const EXPOSITION: &str = "\
# HELP rwtest_requests_total Requests handled.
# TYPE rwtest_requests_total counter
rwtest_requests_total{code=\"200\",handler=\"/a\"} 5
rwtest_requests_total{code=\"500\",handler=\"/a\"} 1
rwtest_requests_total{code=\"200\",handler=\"/b\"} 7
# HELP rwtest_temperature_celsius Temperature.
# TYPE rwtest_temperature_celsius gauge
rwtest_temperature_celsius{room=\"kitchen\"} 21.5
rwtest_temperature_celsius{room=\"hall\"} 19
";

/// Serves `EXPOSITION` on a free 127.0.0.1 port from a background thread
/// (it lives until the test binary exits); returns the port.
fn serve_exposition() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the exposition server");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{EXPOSITION}",
                EXPOSITION.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

/// Prometheus scrapes the test exposition every second and remote_writes
/// everything to `remote_write_url` with short deadlines.
fn prometheus_config(scrape_port: u16, remote_write_url: &str) -> String {
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rwtest
    static_configs:
      - targets: ['127.0.0.1:{scrape_port}']
remote_write:
  - url: {remote_write_url}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"
    )
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Percent-encodes a query value (selectors hold `{`, `"`, `=`, `~`, `,`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_remote_write_lands_and_metadata_answers_match_prometheus() {
    let started = unix_now();
    let exposition_port = serve_exposition();
    let daemon = TestDaemon::start("global:\n  scrape_interval: 1m\n");
    let prometheus = Prometheus::start(
        &prometheus_config(exposition_port, &daemon.url("/api/v1/write")),
        &[],
    );

    // Every series of the job, the synthetic `up` & co. included, must arrive.
    let job = encode(r#"{job="rwtest"}"#);
    let arrived = wait_for(Duration::from_secs(60), || {
        let mine = daemon.get_json(&format!("/api/v1/series?match[]={job}"), 200);
        let theirs = prometheus.get_json(&format!("/api/v1/series?match[]={job}"));
        let n = mine["data"].as_array().map_or(0, Vec::len);
        n >= 5 + 5 && mine["data"] == theirs["data"]
    });
    assert!(
        arrived,
        "remote_write data did not arrive in bellwether\nbellwether log:\n{}\nprometheus log:\n{}",
        daemon.log(),
        prometheus.log()
    );

    // Same selectors, same time range (Unix seconds and RFC 3339), same answers.
    let start = format!("{:.3}", started - 60.0);
    let end = format!("{:.3}", unix_now() + 60.0);
    let queries = [
        format!("/api/v1/series?match[]=rwtest_requests_total&start={start}&end={end}"),
        format!(
            "/api/v1/series?match[]={}&match[]={}&start={start}&end={end}",
            encode(r#"{__name__=~"rwtest_.*",code!="500"}"#),
            encode(r#"rwtest_temperature_celsius{room="hall"}"#)
        ),
        format!("/api/v1/series?match[]=up&start={start}&end={end}"),
        format!("/api/v1/labels?match[]=rwtest_requests_total&start={start}&end={end}"),
        format!("/api/v1/labels?match[]={job}&start={start}"),
        "/api/v1/labels".to_string(),
        format!(
            "/api/v1/label/handler/values?match[]=rwtest_requests_total&start=1970-01-01T00:00:00Z&end={end}"
        ),
        format!("/api/v1/label/__name__/values?match[]={job}"),
        format!("/api/v1/label/room/values?start={start}&end={end}"),
        // Errors answer alike too.
        "/api/v1/series".to_string(),
        format!("/api/v1/series?match[]={}", encode(r#"{job=~".*"}"#)),
        "/api/v1/labels?start=yesterday".to_string(),
        "/api/v1/label/1a/values".to_string(),
    ];
    for query in &queries {
        let (their_status, theirs) = prometheus.try_get(query).expect("prometheus answers");
        let (my_status, mine) = daemon.get(query);
        assert_eq!(my_status, their_status, "{query}: status");
        let mine: serde_json::Value = serde_json::from_str(&mine).expect("bellwether JSON");
        let theirs: serde_json::Value = serde_json::from_str(&theirs).expect("prometheus JSON");
        assert_eq!(mine, theirs, "{query}");
    }
    // A non-empty answer is what makes the comparison mean something.
    let handlers = daemon.get_json(
        "/api/v1/label/handler/values?match[]=rwtest_requests_total",
        200,
    );
    assert_eq!(handlers["data"], serde_json::json!(["/a", "/b"]));
}
