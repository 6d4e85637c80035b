//! Notification delivery against Debian's Alertmanager 0.25: both send the
//! same alert to the same kind of recording peers on 127.0.0.1, and what
//! they send must be the same (modulo the fields named in each test).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{client, free_port, reference_program, wait_for};

/// One request a peer received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// An HTTP server that records every request and answers 200 `ok`.
pub struct Recorder {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = BTreeMap::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push(Recorded {
                    path,
                    headers,
                    body,
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Recorder { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn at(&self, path: &str) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(config: &str, external_url: &str) -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, config).expect("alertmanager.yml");
        let child = Command::new(reference_program("prometheus-alertmanager"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--web.external-url={external_url}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus-alertmanager");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        assert!(
            wait_for(Duration::from_secs(30), || client()
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send()
                .is_ok_and(|r| r.status().is_success())),
            "alertmanager not ready"
        );
        am
    }

    fn post_alerts(&self, alerts: &serde_json::Value) {
        let response = client()
            .post(format!("http://127.0.0.1:{}/api/v2/alerts", self.port))
            .header("Content-Type", "application/json")
            .body(alerts.to_string())
            .send()
            .expect("posting alerts");
        assert!(response.status().is_success(), "{:?}", response.text());
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const EXTERNAL_URL: &str = "http://am.example.org:9093";
const STARTS_AT: &str = "2026-01-02T03:04:05.678Z";
const GENERATOR_URL: &str = "http://prom.example.org/graph?g0.expr=disk+%3E+90&g0.tab=1";

/// The alert both programs send: labels and annotations with characters
/// JSON and HTML escape.
fn labels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("alertname", "DiskFull"),
        ("severity", "critical"),
        ("instance", "db-1<eu>:9100"),
        ("job", "node & co"),
    ]
}

fn annotations() -> Vec<(&'static str, &'static str)> {
    vec![
        ("summary", "Disk \"/var\" is 97% full"),
        ("description", "Only 3% left on db-1; see <runbook>."),
    ]
}

/// Runs `bellwether notify test` for `receiver`; returns its stdout.
fn bellwether_notify(config: &std::path::Path, receiver: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bellwether"));
    cmd.args(["notify", "test", "--config.file"])
        .arg(config)
        .args(["--receiver", receiver])
        .args(["--starts-at", STARTS_AT])
        .args(["--generator-url", GENERATOR_URL])
        .args(["--external-url", EXTERNAL_URL]);
    for (k, v) in annotations() {
        cmd.arg("--annotation").arg(format!("{k}={v}"));
    }
    for (k, v) in labels() {
        cmd.arg(format!("{k}={v:?}"));
    }
    let out = cmd.output().expect("running bellwether notify test");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "notify test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One alertmanager.yml with every receiver under test, each on its own
/// route (all `continue`), all peers on `peer`.
fn am_config(peer: &Recorder) -> String {
    format!(
        r#"route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  routes:
    - receiver: hook
      continue: true
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook}
"#,
        webhook = peer.url("/webhook"),
    )
}

fn run_both() -> (Recorder, Recorder) {
    let am_peer = Recorder::start();
    let bw_peer = Recorder::start();
    let am = Alertmanager::start(&am_config(&am_peer), EXTERNAL_URL);
    let alert = serde_json::json!([{
        "labels": labels().into_iter().collect::<BTreeMap<_, _>>(),
        "annotations": annotations().into_iter().collect::<BTreeMap<_, _>>(),
        "startsAt": STARTS_AT,
        "endsAt": "2099-01-01T00:00:00Z",
        "generatorURL": GENERATOR_URL,
    }]);
    am.post_alerts(&alert);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, am_config(&bw_peer)).expect("write config");
    for receiver in ["hook"] {
        bellwether_notify(&config, receiver);
    }
    assert!(
        wait_for(Duration::from_secs(30), || !am_peer
            .at("/webhook")
            .is_empty()),
        "alertmanager sent nothing"
    );
    (am_peer, bw_peer)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[test]
fn webhook_message_is_alertmanagers() {
    let (am, bw) = run_both();
    let theirs = am.at("/webhook").remove(0);
    let ours = bw.at("/webhook").remove(0);
    // endsAt: Alertmanager sends the posted horizon; `notify test` sends an
    // unset end (0001-01-01T00:00:00Z). Everything else byte for byte.
    let normalize = |body: &[u8]| {
        let text = String::from_utf8(body.to_vec()).expect("UTF-8");
        let re = regex::Regex::new(r#""endsAt":"[^"]*""#).unwrap();
        re.replace_all(&text, r#""endsAt":"-""#).into_owned()
    };
    assert_eq!(normalize(&ours.body), normalize(&theirs.body));
    let message = json(&ours.body);
    assert_eq!(message["version"], "4");
    assert_eq!(message["groupKey"], "{}/{}:{alertname=\"DiskFull\"}");
    assert_eq!(ours.headers["content-type"], "application/json");
}
