//! Helpers shared by the integration tests: a `TestDaemon` that runs the real
//! binary on a free port with its own data directory, and small HTTP helpers.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}

/// Path of a reference program from Debian's packages; the test command
/// (scripts/test.sh) installs them. A missing one fails the test with a hint.
pub fn reference_program(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/test.sh, which installs the reference programs");
}

/// A running `bellwether` process with its own config and data directory.
pub struct TestDaemon {
    pub port: u16,
    pub base_url: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    log_path: PathBuf,
}

impl TestDaemon {
    /// Writes `config` (YAML; `{{PORT}}` is replaced by the daemon's port) and
    /// starts the daemon on it, waiting until `/-/ready` answers 200.
    pub fn start(config: &str) -> TestDaemon {
        TestDaemon::start_with_files(config, &[])
    }

    /// Like [`TestDaemon::start`], after writing `files` (name, text) next to
    /// the config, e.g. rule files the config names by relative path.
    pub fn start_with_files(config: &str, files: &[(&str, &str)]) -> TestDaemon {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("writing a file for the daemon");
        }
        let port = free_port();
        let mut daemon = TestDaemon {
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            dir,
            child: None,
            log_path: PathBuf::new(),
        };
        std::fs::write(
            daemon.config_path(),
            config.replace("{{PORT}}", &port.to_string()),
        )
        .expect("writing the config");
        daemon.spawn();
        daemon
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("bellwether.yml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts (or restarts) the process on the same config and data directory.
    pub fn spawn(&mut self) {
        let n = std::fs::read_dir(self.dir.path())
            .map(|d| d.count())
            .unwrap_or(0);
        self.log_path = self.dir.path().join(format!("daemon-{n}.log"));
        let log = std::fs::File::create(&self.log_path).expect("creating the daemon log");
        let child = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .env("BELLWETHER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting the bellwether binary");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    /// Waits until `/-/ready` answers 200; panics with the daemon's log otherwise.
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "bellwether exited with {status} before it was ready:\n{}",
                        self.log()
                    );
                }
            }
            if matches!(self.try_get("/-/ready"), Ok((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "bellwether was not ready within {timeout:?}:\n{}",
            self.log()
        );
    }

    /// The daemon's log so far (stderr).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn try_get(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let resp = client().get(self.url(path)).send()?;
        let status = resp.status().as_u16();
        Ok((status, resp.text()?))
    }

    /// GET `path`; panics on a transport error.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    /// GET `path` and parse the body as JSON, asserting the status.
    pub fn get_json(&self, path: &str, want_status: u16) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, want_status, "GET {path} answered {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// POST a body with a content type (and optional extra headers).
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        self.post_to(&self.url(path), content_type, body, headers)
    }

    /// [`TestDaemon::post`] to a full URL (another listener of this daemon).
    pub fn post_to(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = client()
            .post(url)
            .header("Content-Type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.log()));
        let status = resp.status().as_u16();
        (status, resp.text().unwrap_or_default())
    }

    /// The value of an unlabelled sample in the daemon's own `/metrics`, if present.
    pub fn self_metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        metric_value(&body, name)
    }

    /// Sends a signal to the process (e.g. `libc::SIGHUP`).
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("daemon is running").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{sig} {pid} failed");
    }

    /// Kills the process with SIGKILL (a crash) and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        assert!(
                            status.success(),
                            "bellwether exited with {status}:\n{}",
                            self.log()
                        );
                        return;
                    }
                    _ if Instant::now() > deadline => {
                        let _ = child.kill();
                        panic!(
                            "bellwether did not stop within 30s of SIGTERM:\n{}",
                            self.log()
                        );
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("building an HTTP client")
}

/// The value of the first sample named exactly `name` in a text exposition,
/// with any labels (`name` may also spell out the labels: `m{a="b"}`).
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let mut rest = line.strip_prefix(name)?;
        if rest.starts_with('{') {
            rest = &rest[rest.find("} ")? + 1..];
        }
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Polls `check` every 100 ms until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Debian's real Prometheus on a free 127.0.0.1 port with its own data
/// directory, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on `config` (prometheus.yml text) with extra flags and
    /// waits until `/-/ready` answers 200.
    pub fn start(config: &str, extra_args: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("creating a temp dir");
        let port = free_port();
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("writing prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(reference_program("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let prometheus = Prometheus { child, port, dir };
        let ready = wait_for(Duration::from_secs(60), || {
            matches!(prometheus.try_get("/-/ready"), Some((200, _)))
        });
        assert!(ready, "prometheus was not ready:\n{}", prometheus.log());
        prometheus
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let response = client().get(self.url(path)).send().ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().ok()?))
    }

    /// GET `path`; panics with Prometheus's log on a transport error.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("prometheus GET {path} failed:\n{}", self.log()))
    }

    /// GET `path`, asserting 200, parsed as JSON.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "prometheus GET {path}: {body}");
        serde_json::from_str(&body).expect("prometheus answers JSON")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's Alertmanager 0.25 on a free port of 127.0.0.1, without
/// clustering, with its own storage; killed when dropped.
pub struct Alertmanager {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it on `config` (an alertmanager.yml) with `extra_args`, and
    /// waits until `/-/ready` answers.
    pub fn start(config: &str, extra_args: &[&str]) -> Alertmanager {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, config).expect("alertmanager.yml");
        let log = std::fs::File::create(dir.path().join("stderr")).expect("log file");
        let child = Command::new(reference_program("prometheus-alertmanager"))
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus-alertmanager");
        let am = Alertmanager { child, port, dir };
        let ready = format!("{}/-/ready", am.url());
        assert!(
            wait_for(Duration::from_secs(30), || client()
                .get(&ready)
                .send()
                .is_ok_and(|r| r.status().is_success())),
            "alertmanager not ready: {}",
            am.log()
        );
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Now plus `offset_secs` as RFC 3339 in UTC with milliseconds, as
/// Alertmanager prints times (`2026-01-02T03:04:05.000Z`).
pub fn at(offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let t = now + offset_secs;
    let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (year, month, day) = bellwether::model::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
