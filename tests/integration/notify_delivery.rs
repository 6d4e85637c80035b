//! Notification delivery against Debian's Alertmanager 0.25: both send the
//! same alert to the same kind of recording peers on 127.0.0.1, and what
//! they send must be the same (modulo the fields named in each test).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{client, free_port, wait_for, Alertmanager};

/// One request a peer received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Queued (status, body) answers per request path.
type Script = Arc<Mutex<BTreeMap<String, std::collections::VecDeque<(u16, String)>>>>;

/// An HTTP server that records every request and answers 200 `ok`, or
/// what [`Recorder::script`] queued for the request's path.
pub struct Recorder {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    answers: Script,
}

impl Recorder {
    pub fn start() -> Recorder {
        Recorder::start_on(TcpListener::bind("127.0.0.1:0").expect("bind"))
    }

    /// Records what `listener` receives (e.g. on a port chosen in advance).
    pub fn start_on(listener: TcpListener) -> Recorder {
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let answers: Script = Arc::default();
        let scripted = Arc::clone(&answers);
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
                let (status, text) = scripted
                    .lock()
                    .unwrap()
                    .get_mut(&path)
                    .and_then(|q| q.pop_front())
                    .unwrap_or((200, "ok".to_string()));
                log.lock().unwrap().push(Recorded {
                    path,
                    headers,
                    body,
                });
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Recorder {
            port,
            requests,
            answers,
        }
    }

    /// Answers the next requests to `path` with these statuses and bodies,
    /// in order (then 200 `ok` again).
    pub fn script(&self, path: &str, answers: &[(u16, &str)]) {
        self.answers
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default()
            .extend(answers.iter().map(|(s, t)| (*s, t.to_string())));
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

impl crate::util::Alertmanager {
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

/// A user template file, using Alertmanager's functions and data methods.
const CUSTOM_TEMPLATE: &str = r#"Text outside a define is ignored.
{{ define "custom.title" }}{{ .Status | title }}: {{ .GroupLabels.SortedPairs.Names | join "," }} {{ stringSlice "a" "b" | join "+" }} {{ reReplaceAll "db-(\\d+).*" "node$1" .CommonLabels.instance }}{{ if match "^db" .CommonLabels.instance }} db{{ end }} {{ .CommonLabels.Remove (stringSlice "alertname") | len }} {{ safeHtml "<b>" }} {{ toLower "ABC" }} {{ toUpper "mixed Case" }} {{ title "hello wORLD-foo" }}{{ end }}
{{ define "slack.default.footer" }}{{ len .Alerts.Firing }} firing / {{ len .Alerts.Resolved }} resolved, {{ .Receiver }}{{ end }}
"#;

/// One alertmanager.yml with every receiver under test, each on its own
/// route (all `continue`), all peers on `peer`.
fn am_config(peer: &Recorder, template_dir: &std::path::Path) -> String {
    format!(
        r#"templates:
  - {templates}/*.tmpl
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  routes:
    - {{receiver: hook, continue: true}}
    - {{receiver: slack, continue: true}}
    - {{receiver: pd, continue: true}}
    - {{receiver: custom, continue: true}}
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook}
  - name: slack
    slack_configs:
      - api_url: {slack}
        channel: '#alerts'
  - name: pd
    pagerduty_configs:
      - url: {pd}
        routing_key: key-123
  - name: custom
    slack_configs:
      - api_url: {custom_slack}
        send_resolved: true
        title: '{{{{ template "custom.title" . }}}}'
        text: "{{{{ range .Alerts }}}}*{{{{ .Labels.alertname }}}}* {{{{ .Annotations.summary }}}}\n{{{{ end }}}}"
        pretext: '{{{{ .CommonAnnotations.SortedPairs.Values | join " | " }}}}'
        icon_emoji: ':fire:'
        username: bellwether
        link_names: true
        short_fields: true
        mrkdwn_in: [text]
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity | toUpper }}}}'
          - title: Job
            value: '{{{{ .CommonLabels.job }}}}'
            short: false
        actions:
          - type: button
            text: Silence
            url: '{{{{ .ExternalURL }}}}/#/silences/new'
            style: danger
            name: dropped with a url
            confirm:
              title: Dropped with a url
              text: 'Silence {{{{ .GroupLabels.alertname }}}}'
              ok_text: 'Yes'
              dismiss_text: 'No'
          - type: button
            text: Acknowledge
            name: ack
            value: '{{{{ .GroupLabels.alertname }}}}'
            confirm:
              title: Sure?
              text: 'Acknowledge {{{{ .GroupLabels.alertname }}}}'
    pagerduty_configs:
      - url: {custom_pd}
        routing_key: '{{{{ "k2" }}}}'
        severity: '{{{{ .CommonLabels.severity }}}}'
        class: disk
        component: '{{{{ .CommonLabels.job }}}}'
        group: '{{{{ title "db fleet" }}}}'
        client: bellwether
        client_url: '{{{{ .ExternalURL }}}}'
        description: '{{{{ .CommonAnnotations.summary }}}}'
        details:
          instance: '{{{{ .CommonLabels.instance }}}}'
          count: '{{{{ len .Alerts }}}}'
          firing: 'replaced default'
        links: [{{href: 'http://runbook.example.org/{{{{ .GroupLabels.alertname }}}}', text: runbook}}, {{href: '', text: dropped}}]
        images: [{{src: 'http://img.example.org/x.png', alt: graph, href: 'http://g.example.org'}}]
"#,
        templates = template_dir.display(),
        webhook = peer.url("/webhook"),
        slack = peer.url("/slack"),
        pd = peer.url("/pd"),
        custom_slack = peer.url("/custom-slack"),
        custom_pd = peer.url("/custom-pd"),
    )
}

const PATHS: [&str; 5] = ["/webhook", "/slack", "/pd", "/custom-slack", "/custom-pd"];

fn run_both() -> (Recorder, Recorder) {
    let am_peer = Recorder::start();
    let bw_peer = Recorder::start();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("custom.tmpl"), CUSTOM_TEMPLATE).expect("template");
    let am = Alertmanager::start(
        &am_config(&am_peer, dir.path()),
        &[&format!("--web.external-url={EXTERNAL_URL}")],
    );
    let alert = serde_json::json!([{
        "labels": labels().into_iter().collect::<BTreeMap<_, _>>(),
        "annotations": annotations().into_iter().collect::<BTreeMap<_, _>>(),
        "startsAt": STARTS_AT,
        "endsAt": "2099-01-01T00:00:00Z",
        "generatorURL": GENERATOR_URL,
    }]);
    am.post_alerts(&alert);
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, am_config(&bw_peer, dir.path())).expect("write config");
    for receiver in ["hook", "slack", "pd", "custom"] {
        bellwether_notify(&config, receiver);
    }
    assert!(
        wait_for(Duration::from_secs(30), || PATHS
            .iter()
            .all(|p| !am_peer.at(p).is_empty())),
        "alertmanager did not send to every receiver: {:?}",
        am_peer
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    (am_peer, bw_peer)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON body")
}

fn text(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).expect("UTF-8 body")
}

#[test]
fn receivers_send_what_alertmanager_sends() {
    let (am, bw) = run_both();
    let re = regex::Regex::new(r#""endsAt":"[^"]*""#).unwrap();
    for path in PATHS {
        let theirs = am.at(path).remove(0);
        let ours = bw.at(path).remove(0);
        let (theirs_text, ours_text) = if path == "/webhook" {
            // endsAt: Alertmanager sends the posted horizon; `notify test`
            // sends an unset end (0001-01-01T00:00:00Z).
            (
                re.replace_all(&text(&theirs.body), r#""endsAt":"-""#)
                    .into_owned(),
                re.replace_all(&text(&ours.body), r#""endsAt":"-""#)
                    .into_owned(),
            )
        } else {
            // Byte for byte.
            (text(&theirs.body), text(&ours.body))
        };
        assert_eq!(ours_text, theirs_text, "{path}: bellwether vs Alertmanager");
        assert_eq!(ours.headers["content-type"], "application/json", "{path}");
    }
    let message = json(&bw.at("/webhook")[0].body);
    assert_eq!(message["version"], "4");
    assert_eq!(message["groupKey"], "{}/{}:{alertname=\"DiskFull\"}");
}

/// Slack's documented incoming-webhook message: `attachments`, each with
/// a plain-text `fallback`; colors and fields as documented.
#[test]
fn slack_message_has_the_documented_fields() {
    let (_, bw) = run_both();
    for path in ["/slack", "/custom-slack"] {
        let message = json(&bw.at(path)[0].body);
        let attachments = message["attachments"].as_array().expect("attachments");
        assert_eq!(attachments.len(), 1);
        let a = &attachments[0];
        assert!(
            a["fallback"].as_str().is_some_and(|s| !s.is_empty()),
            "{path}: {a}"
        );
        assert_eq!(a["color"], "danger");
        for field in a["fields"].as_array().into_iter().flatten() {
            assert!(field["title"].is_string() && field["value"].is_string());
            assert!(field["short"].is_boolean());
        }
    }
    let plain = json(&bw.at("/slack")[0].body);
    assert_eq!(plain["channel"], "#alerts");
    assert_eq!(plain["username"], "Alertmanager");
    assert_eq!(
        plain["attachments"][0]["title"],
        "[FIRING:1] DiskFull (db-1<eu>:9100 node & co critical)"
    );
}

/// PagerDuty Events API v2's required fields and values.
#[test]
fn pagerduty_event_has_the_documented_fields() {
    let (_, bw) = run_both();
    for path in ["/pd", "/custom-pd"] {
        let event = json(&bw.at(path)[0].body);
        assert!(event["routing_key"].as_str().is_some_and(|k| !k.is_empty()));
        assert_eq!(event["event_action"], "trigger");
        let dedup = event["dedup_key"].as_str().expect("dedup_key");
        assert!(dedup.len() == 64 && dedup.len() <= 255);
        let payload = &event["payload"];
        let summary = payload["summary"].as_str().expect("summary");
        assert!(!summary.is_empty() && summary.chars().count() <= 1024);
        assert!(payload["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(["critical", "error", "warning", "info"]
            .contains(&payload["severity"].as_str().expect("severity")));
    }
    let custom = json(&bw.at("/custom-pd")[0].body);
    assert_eq!(custom["payload"]["severity"], "critical");
    assert_eq!(
        custom["payload"]["custom_details"]["firing"],
        "replaced default"
    );
    assert_eq!(custom["links"].as_array().map(Vec::len), Some(1));
}

/// Debian's aiosmtpd writing every message it receives to a maildir.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    tls_dir: Option<tempfile::TempDir>,
}

/// Reads a maildir's messages as JSON: subject, headers of interest, the
/// decoded text and HTML parts, the envelope recipients.
const READ_MAILDIR: &str = r#"
import email, email.policy, json, mailbox, sys
out = []
for key, msg in sorted(mailbox.Maildir(sys.argv[1], create=False).items()):
    msg = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    out.append({
        "subject": msg["Subject"], "to": msg["To"], "from": msg["From"],
        "x_team": msg["X-Team"], "rcpt": msg["X-RcptTo"], "mail_from": msg["X-MailFrom"],
        "content_type": msg.get_content_type(),
        "text": parts.get("text/plain"), "html": parts.get("text/html"),
    })
print(json.dumps(out))
"#;

impl SmtpServer {
    fn start() -> SmtpServer {
        SmtpServer::start_with(&[])
    }

    /// With STARTTLS (required by the server) on a certificate for
    /// 127.0.0.1 signed by a test CA, written to `cert.pem` in the server's
    /// directory.
    fn start_tls() -> SmtpServer {
        SmtpServer::start_tls_as(false)
    }

    /// SMTPS (implicit TLS) on port 465, where Alertmanager's and
    /// bellwether's email integrations speak TLS from the first byte.
    fn start_smtps() -> SmtpServer {
        SmtpServer::start_tls_as(true)
    }

    fn start_tls_as(implicit: bool) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = |name: &str| dir.path().join(name);
        let (cert, key) = (p("cert.pem"), p("key.pem"));
        std::fs::write(
            p("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("ext file");
        // A CA, and a server certificate for 127.0.0.1 signed by it.
        let steps: [Vec<String>; 3] = [
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca-key.pem -out ca.pem"
                .split(' ').map(String::from).collect(),
            "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr"
                .split(' ').map(String::from).collect(),
            "x509 -req -in leaf.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile leaf.ext -out cert.pem"
                .split(' ').map(String::from).collect(),
        ];
        for args in steps {
            let status = Command::new("openssl")
                .args(&args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("running openssl");
            assert!(status.success(), "openssl {args:?} failed");
        }
        let (cert_flag, key_flag) = if implicit {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        let flags = [
            cert_flag.into(),
            cert.display().to_string(),
            key_flag.into(),
            key.display().to_string(),
        ];
        let mut server = if implicit {
            SmtpServer::start_on(&flags, 465)
        } else {
            SmtpServer::start_with(&flags)
        };
        std::fs::copy(p("ca.pem"), server.dir.path().join("cert.pem")).expect("copy CA");
        server.tls_dir = Some(dir);
        server
    }

    fn start_with(extra: &[String]) -> SmtpServer {
        SmtpServer::start_on(extra, free_port())
    }

    fn start_on(extra: &[String], port: u16) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n"])
            .args(extra)
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd (Debian's python3-aiosmtpd; scripts/test.sh installs it)");
        assert!(
            wait_for(Duration::from_secs(20), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "aiosmtpd did not start (is python3-aiosmtpd installed? run scripts/test.sh)"
        );
        SmtpServer {
            child,
            port,
            dir,
            tls_dir: None,
        }
    }

    fn messages(&self) -> Vec<serde_json::Value> {
        let out = Command::new("/usr/bin/python3")
            .args(["-c", READ_MAILDIR])
            .arg(self.dir.path().join("mail"))
            .output()
            .expect("reading the maildir");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mail_config(port: u16) -> String {
    format!(
        r#"route:
  receiver: mail
  group_by: [alertname]
receivers:
  - name: mail
    email_configs:
      - to: 'oncall@example.org, Second <second@example.org>'
        from: 'bellwether@example.org'
        smarthost: 127.0.0.1:{port}
        require_tls: false
        hello: bellwether.test
        headers:
          X-Team: '{{{{ .CommonLabels.job }}}}'
        text: '{{{{ template "__text_alert_list" .Alerts }}}}'
        html: '<p>{{{{ .CommonAnnotations.summary }}}}</p><ul>{{{{ range .Alerts }}}}<li>{{{{ .Labels.instance }}}} &amp; {{{{ .Labels.job }}}}</li>{{{{ end }}}}</ul>{{{{ safeHtml "<b>ok</b>" }}}}'
"#
    )
}

#[test]
fn email_is_alertmanagers() {
    let am_smtp = SmtpServer::start();
    let bw_smtp = SmtpServer::start();
    let am = Alertmanager::start(
        &mail_config(am_smtp.port),
        &[&format!("--web.external-url={EXTERNAL_URL}")],
    );
    am.post_alerts(&serde_json::json!([{
        "labels": labels().into_iter().collect::<BTreeMap<_, _>>(),
        "annotations": annotations().into_iter().collect::<BTreeMap<_, _>>(),
        "startsAt": STARTS_AT,
        "endsAt": "2099-01-01T00:00:00Z",
        "generatorURL": GENERATOR_URL,
    }]));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, mail_config(bw_smtp.port)).expect("config");
    bellwether_notify(&config, "mail");
    assert!(
        wait_for(Duration::from_secs(30), || !am_smtp.messages().is_empty()),
        "alertmanager sent no mail"
    );
    let theirs = am_smtp.messages().remove(0);
    let ours = bw_smtp.messages().remove(0);
    for field in [
        "subject",
        "to",
        "from",
        "x_team",
        "rcpt",
        "mail_from",
        "content_type",
        "text",
        "html",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    assert_eq!(
        ours["subject"],
        "[FIRING:1] DiskFull (db-1<eu>:9100 node & co critical)"
    );
    assert_eq!(ours["content_type"], "multipart/alternative");
    // The envelope: every address of `to`.
    assert_eq!(ours["rcpt"], "oncall@example.org, second@example.org");
}

#[test]
fn email_goes_over_starttls() {
    let smtp = SmtpServer::start_tls();
    let ca = smtp.dir.path().join("cert.pem");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "route: {{receiver: mail}}\nreceivers:\n  - name: mail\n    email_configs:\n      - to: oncall@example.org\n        from: bellwether@example.org\n        smarthost: 127.0.0.1:{}\n{extra}",
                smtp.port
            ),
        )
        .expect("config");
    };
    // Without the CA the certificate is refused: the test fails the send.
    write("");
    let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["notify", "test", "--config.file"])
        .arg(&config)
        .args(["--receiver", "mail"])
        .output()
        .expect("notify test");
    assert!(
        !out.status.success(),
        "an untrusted certificate was accepted"
    );
    assert!(smtp.messages().is_empty());
    // With it, STARTTLS (require_tls defaults to true) and delivery.
    write(&format!(
        "        tls_config:\n          ca_file: {}\n",
        ca.display()
    ));
    bellwether_notify(&config, "mail");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["subject"],
        "[FIRING:1]  (DiskFull db-1<eu>:9100 node & co critical)"
    );
}

/// Port 465 means implicit TLS (SMTPS), as in Alertmanager: the session is
/// TLS from the first byte and `require_tls` (STARTTLS) does not apply.
#[test]
fn email_goes_over_implicit_tls_on_port_465() {
    let smtp = SmtpServer::start_smtps();
    assert_eq!(smtp.port, 465);
    let ca = smtp.dir.path().join("cert.pem");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route: {{receiver: mail}}\nreceivers:\n  - name: mail\n    email_configs:\n      - to: oncall@example.org\n        from: bellwether@example.org\n        smarthost: 127.0.0.1:465\n        require_tls: false\n        tls_config:\n          ca_file: {}\n",
            ca.display()
        ),
    )
    .expect("config");
    bellwether_notify(&config, "mail");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0]["subject"],
        "[FIRING:1]  (DiskFull db-1<eu>:9100 node & co critical)"
    );
    assert_eq!(messages[0]["rcpt"], "oncall@example.org");
}

/// Resolved notifications: Alertmanager sends them after the alert's end
/// (webhook and PagerDuty by default, Slack with `send_resolved`);
/// `notify test --resolved` must send the same bodies.
#[test]
fn resolved_notifications_are_alertmanagers() {
    let am_peer = Recorder::start();
    let bw_peer = Recorder::start();
    let config = |peer: &Recorder| {
        format!(
            r#"route:
  receiver: all
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: all
    webhook_configs:
      - url: {}
    pagerduty_configs:
      - url: {}
        routing_key: key-123
    slack_configs:
      - api_url: {}
        send_resolved: true
"#,
            peer.url("/webhook"),
            peer.url("/pd"),
            peer.url("/slack")
        )
    };
    let am = Alertmanager::start(
        &config(&am_peer),
        &[&format!("--web.external-url={EXTERNAL_URL}")],
    );
    let alert = |ends_at: &str| {
        serde_json::json!([{
            "labels": labels().into_iter().collect::<BTreeMap<_, _>>(),
            "annotations": annotations().into_iter().collect::<BTreeMap<_, _>>(),
            "startsAt": STARTS_AT,
            "endsAt": ends_at,
            "generatorURL": GENERATOR_URL,
        }])
    };
    am.post_alerts(&alert("2099-01-01T00:00:00Z"));
    let paths = ["/webhook", "/pd", "/slack"];
    assert!(
        wait_for(Duration::from_secs(30), || paths
            .iter()
            .all(|p| !am_peer.at(p).is_empty())),
        "no firing notifications"
    );
    am.post_alerts(&alert("2026-01-02T04:00:00Z"));
    assert!(
        wait_for(Duration::from_secs(30), || paths
            .iter()
            .all(|p| am_peer.at(p).len() >= 2)),
        "no resolved notifications"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, config(&bw_peer)).expect("config");
    // `--resolved` goes after the subcommand's own flags.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bellwether"));
    cmd.args(["notify", "test", "--resolved", "--config.file"])
        .arg(&file)
        .args(["--receiver", "all", "--starts-at", STARTS_AT])
        .args([
            "--generator-url",
            GENERATOR_URL,
            "--external-url",
            EXTERNAL_URL,
        ]);
    for (k, v) in annotations() {
        cmd.arg("--annotation").arg(format!("{k}={v}"));
    }
    for (k, v) in labels() {
        cmd.arg(format!("{k}={v:?}"));
    }
    let out = cmd.output().expect("notify test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ends = regex::Regex::new(r#""endsAt":"[^"]*""#).unwrap();
    for path in paths {
        let theirs = text(&am_peer.at(path)[1].body);
        let ours = text(&bw_peer.at(path)[0].body);
        assert_eq!(
            ends.replace_all(&ours, "endsAt"),
            ends.replace_all(&theirs, "endsAt"),
            "{path}"
        );
    }
    let event = json(&bw_peer.at("/pd")[0].body);
    assert_eq!(event["event_action"], "resolve");
    let slack = json(&bw_peer.at("/slack")[0].body);
    assert_eq!(slack["attachments"][0]["color"], "good");
}
