//! The `probes` section: probe jobs after blackbox_exporter's modules, written
//! in bellwether's config (one job = targets + interval + one prober's
//! settings). Field docs here are the user docs: keep docs/configuration.md
//! and docs/probes.md in step with them.
//!
//! This file owns the types and their checks ([`check_section`]); it does no
//! network I/O (it reads `ca_file`, `password_file` and `queries_file` only to
//! check them, like the rest of the config).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::values::{
    describe_regex_error, format_duration, ByteSize, PromDuration, Secret,
};
use crate::config::yaml::{join_key, Finding, Kind, Node, Pos};
use crate::config::GlobalConfig;

/// The `probes` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbesSection {
    /// Most probes running at the same time, all jobs together. A probe that
    /// cannot start within its timeout fails with reason `concurrency_limit`.
    /// Default 32; must be at least 1.
    pub max_concurrent_probes: usize,
    /// The probe jobs. Default none.
    pub jobs: Vec<ProbeJob>,
}

impl Default for ProbesSection {
    fn default() -> Self {
        ProbesSection {
            max_concurrent_probes: 32,
            jobs: Vec::new(),
        }
    }
}

/// Which prober a job runs (blackbox_exporter's `prober`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProberKind {
    Http,
    Tcp,
    Postgres,
}

impl ProberKind {
    pub fn name(self) -> &'static str {
        match self {
            ProberKind::Http => "http",
            ProberKind::Tcp => "tcp",
            ProberKind::Postgres => "postgres",
        }
    }
}

/// One probe job: its targets are probed every `interval` with one prober.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeJob {
    /// The `job` label of the job's series. Required, unique across probe
    /// jobs and scrape jobs.
    pub name: String,
    /// `http`, `tcp` or `postgres`. Required.
    pub prober: ProberKind,
    /// What to probe; each becomes the `instance` label. `http`: a URL
    /// (`http://` or `https://`); `tcp`: `host:port`; `postgres`: `host:port`,
    /// `host` (port 5432) or the absolute path of a socket directory.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels added to every series of the job. Default none; `job` and
    /// `instance` cannot be set here.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How often each target is probed. Default `global.scrape_interval`
    /// (filled in by the loader).
    pub interval: Option<PromDuration>,
    /// How long one probe may take, everything included. Default 10s capped
    /// at `interval` (filled in by the loader); more than `interval` is an error.
    pub timeout: Option<PromDuration>,
    /// Settings of the `http` prober.
    pub http: Option<HttpProbe>,
    /// Settings of the `tcp` prober.
    pub tcp: Option<TcpProbe>,
    /// Settings of the `postgres` prober.
    pub postgres: Option<PostgresProbe>,
}

impl ProbeJob {
    /// The effective interval (after loading, always set).
    pub fn interval(&self) -> Duration {
        self.interval.map_or(Duration::from_secs(60), |d| d.0)
    }
    /// The effective timeout (after loading, always set).
    pub fn timeout(&self) -> Duration {
        self.timeout
            .map_or(DEFAULT_TIMEOUT, |d| d.0)
            .min(self.interval())
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// IP version to connect with when a name resolves to both (blackbox_exporter's
/// `preferred_ip_protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    Ip4,
    #[default]
    Ip6,
}

/// TLS settings of a probe.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTlsConfig {
    /// PEM file of the CA certificate(s) to verify the server with, instead
    /// of the built-in Mozilla roots (webpki-roots). Default none.
    pub ca_file: Option<String>,
    /// Name to send in SNI and verify the certificate for. Default: the
    /// target's host.
    pub server_name: Option<String>,
    /// Accept any certificate (expiry is still reported). Default false.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The `http` prober (blackbox_exporter's `http` module).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProbe {
    /// Request method. Default `GET`.
    pub method: String,
    /// Request headers. Default none (bellwether sends `Host` and a
    /// `User-Agent`; a header given here replaces them).
    pub headers: BTreeMap<String, String>,
    /// Request body. Default none.
    pub body: Option<String>,
    /// Status codes that count as success. Default: any 2xx.
    pub valid_status_codes: Vec<u16>,
    /// Fail if the body matches any of these regexes (unanchored). Default none.
    pub fail_if_body_matches_regexp: Vec<ProbeRegex>,
    /// Fail unless the body matches every one of these regexes. Default none.
    pub fail_if_body_not_matches_regexp: Vec<ProbeRegex>,
    /// Fail if the final response came over TLS. Default false.
    pub fail_if_ssl: bool,
    /// Fail unless the final response came over TLS. Default false.
    pub fail_if_not_ssl: bool,
    /// Follow up to 10 redirects. Default true.
    pub follow_redirects: bool,
    /// Default `ip6`.
    pub preferred_ip_protocol: IpProtocol,
    /// Use the other IP version when the name has no address of the
    /// preferred one. Default true.
    pub ip_protocol_fallback: bool,
    /// TLS settings for `https` targets.
    pub tls_config: ProbeTlsConfig,
    /// Largest body read (for the regexes and the length); a longer body fails
    /// the probe with reason `body_size_limit`. Default 1MB; 0 = no limit.
    pub body_size_limit: ByteSize,
}

impl Default for HttpProbe {
    fn default() -> Self {
        HttpProbe {
            method: "GET".to_string(),
            headers: BTreeMap::new(),
            body: None,
            valid_status_codes: Vec::new(),
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            follow_redirects: true,
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
            tls_config: ProbeTlsConfig::default(),
            body_size_limit: ByteSize(1024 * 1024),
        }
    }
}

/// The `tcp` prober: connect, optionally complete a TLS handshake.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpProbe {
    /// Complete a TLS handshake after connecting (and report the
    /// certificate's expiry). Default false.
    pub tls: bool,
    /// TLS settings when `tls` is true.
    pub tls_config: ProbeTlsConfig,
    /// Default `ip6`.
    pub preferred_ip_protocol: IpProtocol,
    /// Default true.
    pub ip_protocol_fallback: bool,
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe {
            tls: false,
            tls_config: ProbeTlsConfig::default(),
            preferred_ip_protocol: IpProtocol::Ip6,
            ip_protocol_fallback: true,
        }
    }
}

/// The `postgres` prober: connect, `SELECT 1`, connections in use against
/// `max_connections`, and optional custom queries.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresProbe {
    /// Role to connect as. Default `postgres`.
    pub user: String,
    /// Excludes `password_file`. Default none.
    pub password: Option<Secret>,
    /// File holding the password, re-read at every probe. Default none.
    pub password_file: Option<String>,
    /// Database to connect to. Default `postgres`.
    pub dbname: String,
    /// Names of custom queries (from `queries_file`, else the shipped
    /// exporters/postgres.yaml) to run after `SELECT 1`. Default none.
    pub queries: Vec<String>,
    /// A file of custom queries in exporters/postgres.yaml's format, used
    /// instead of the shipped one. Default none.
    pub queries_file: Option<String>,
    /// The queries of `queries`, checked and loaded by the loader.
    #[serde(skip)]
    pub loaded_queries: Vec<super::postgres::CustomQuery>,
}

impl Default for PostgresProbe {
    fn default() -> Self {
        PostgresProbe {
            user: "postgres".to_string(),
            password: None,
            password_file: None,
            dbname: "postgres".to_string(),
            queries: Vec::new(),
            queries_file: None,
            loaded_queries: Vec::new(),
        }
    }
}

/// An unanchored regex (blackbox_exporter's body regexes are searches).
#[derive(Clone, Debug)]
pub struct ProbeRegex(pub regex::Regex);

impl<'de> Deserialize<'de> for ProbeRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::values::deserialize_parsed(d, "a regex", |source| {
            regex::Regex::new(source)
                .map(ProbeRegex)
                .map_err(|e| describe_regex_error(source, &e))
        })
    }
}

// ------------------------------------------------------------------ checks

/// Where a finding is: a key path below `probes`.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Locates findings in the `probes` node (or at the section when a key was
/// not written, so a default applies).
struct At<'a> {
    node: Option<&'a Node>,
    findings: Vec<Finding>,
}

impl At<'_> {
    fn error(&mut self, steps: &[Step<'_>], message: impl Into<String>) {
        let mut path = "probes".to_string();
        let mut pos: Option<Pos> = None;
        let mut node = self.node;
        for step in steps {
            let next = node.and_then(|n| match (step, &n.kind) {
                (Step::Key(k), Kind::Map(_)) => n.get(k),
                (Step::Index(i), Kind::Seq(items)) => items.get(*i),
                _ => None,
            });
            match step {
                Step::Key(k) => path = join_key(&path, k),
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
            if let Some(n) = node {
                pos = Some(n.pos);
            }
            node = next;
        }
        if let Some(n) = node {
            pos = Some(n.pos);
        }
        self.findings.push(Finding {
            pos,
            path,
            message: message.into(),
        });
    }
}

/// Checks the section and fills in derived defaults (interval, timeout),
/// resolves relative paths against `base_dir` and loads custom queries.
/// `scrape_jobs` are the scrape job names (a probe job may not reuse one).
pub(crate) fn check_section(
    section: &mut ProbesSection,
    global: &GlobalConfig,
    scrape_jobs: &[&str],
    node: Option<&Node>,
    base_dir: Option<&Path>,
) -> Vec<Finding> {
    let mut at = At {
        node,
        findings: Vec::new(),
    };
    if section.max_concurrent_probes == 0 {
        at.error(&[Step::Key("max_concurrent_probes")], "must be at least 1");
    }
    let resolve = |file: &str| -> String {
        match base_dir {
            Some(dir) if Path::new(file).is_relative() => {
                PathBuf::from(dir).join(file).display().to_string()
            }
            _ => file.to_string(),
        }
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, job) in section.jobs.iter_mut().enumerate() {
        let j = |key: &'static str| [Step::Key("jobs"), Step::Index(i), Step::Key(key)];
        if job.name.is_empty() {
            at.error(&j("name"), "must not be empty");
        } else if let Some(first) = names.get(&job.name) {
            at.error(
                &j("name"),
                format!(
                    "duplicate probe job name {:?} (also used by probes.jobs[{first}]); names must be unique",
                    job.name
                ),
            );
        } else if scrape_jobs.contains(&job.name.as_str()) {
            at.error(
                &j("name"),
                format!(
                    "{:?} is also a scrape job's job_name; a probe job needs its own name (it is the `job` label)",
                    job.name
                ),
            );
        } else {
            names.insert(job.name.clone(), i);
        }
        // Interval and timeout, as a scrape job's.
        let interval = match job.interval {
            Some(d) if !d.0.is_zero() => d.0,
            _ => global.scrape_interval.0,
        };
        job.interval = Some(PromDuration(interval));
        match job.timeout {
            Some(t) if !t.0.is_zero() => {
                if t.0 > interval {
                    at.error(
                        &j("timeout"),
                        format!(
                            "timeout ({}) is greater than interval ({}); a probe must end before the next one starts",
                            format_duration(t.0),
                            format_duration(interval)
                        ),
                    );
                }
            }
            _ => job.timeout = Some(PromDuration(DEFAULT_TIMEOUT.min(interval))),
        }
        for name in job.labels.keys() {
            if !crate::config::is_valid_label_name(name) || name.starts_with("__") {
                at.error(
                    &[Step::Key("jobs"), Step::Index(i), Step::Key("labels"), Step::Key(name)],
                    format!("invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"),
                );
            } else if name == "job" || name == "instance" {
                at.error(
                    &[Step::Key("jobs"), Step::Index(i), Step::Key("labels"), Step::Key(name)],
                    format!("`{name}` is set by the probe (job name, target); it cannot be a static label"),
                );
            }
        }
        // Settings of another prober are a mistake, not silently ignored.
        let given = [
            (ProberKind::Http, job.http.is_some()),
            (ProberKind::Tcp, job.tcp.is_some()),
            (ProberKind::Postgres, job.postgres.is_some()),
        ];
        for (kind, present) in given {
            if present && kind != job.prober {
                at.error(
                    &j(kind.name()),
                    format!(
                        "`{}` settings given, but the job's prober is `{}`; remove them or change `prober`",
                        kind.name(),
                        job.prober.name()
                    ),
                );
            }
        }
        for (t, target) in job.targets.iter().enumerate() {
            let here = [
                Step::Key("jobs"),
                Step::Index(i),
                Step::Key("targets"),
                Step::Index(t),
            ];
            if let Err(message) = check_target(job.prober, target) {
                at.error(&here, message);
            }
        }
        let tls = match job.prober {
            ProberKind::Http => {
                let http = job.http.get_or_insert_with(HttpProbe::default);
                if http.method.is_empty() || !http.method.bytes().all(|b| b.is_ascii_alphabetic()) {
                    at.error(
                        &[
                            Step::Key("jobs"),
                            Step::Index(i),
                            Step::Key("http"),
                            Step::Key("method"),
                        ],
                        format!("invalid HTTP method {:?}", http.method),
                    );
                }
                for (c, code) in http.valid_status_codes.iter().enumerate() {
                    if !(100..=599).contains(code) {
                        at.error(
                            &[
                                Step::Key("jobs"),
                                Step::Index(i),
                                Step::Key("http"),
                                Step::Key("valid_status_codes"),
                                Step::Index(c),
                            ],
                            format!("{code} is not an HTTP status code (100-599)"),
                        );
                    }
                }
                for (name, value) in &http.headers {
                    let bad_name = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err();
                    let bad_value = hyper::header::HeaderValue::from_str(value).is_err();
                    if bad_name || bad_value {
                        at.error(
                            &[
                                Step::Key("jobs"),
                                Step::Index(i),
                                Step::Key("http"),
                                Step::Key("headers"),
                                Step::Key(name),
                            ],
                            "not a valid HTTP header name and value",
                        );
                    }
                }
                if http.fail_if_ssl && http.fail_if_not_ssl {
                    at.error(
                        &[
                            Step::Key("jobs"),
                            Step::Index(i),
                            Step::Key("http"),
                            Step::Key("fail_if_ssl"),
                        ],
                        "`fail_if_ssl` and `fail_if_not_ssl` exclude each other",
                    );
                }
                Some((&mut http.tls_config, "http"))
            }
            ProberKind::Tcp => {
                let tcp = job.tcp.get_or_insert_with(TcpProbe::default);
                Some((&mut tcp.tls_config, "tcp"))
            }
            ProberKind::Postgres => {
                let pg = job.postgres.get_or_insert_with(PostgresProbe::default);
                let p = |key: &'static str| {
                    [
                        Step::Key("jobs"),
                        Step::Index(i),
                        Step::Key("postgres"),
                        Step::Key(key),
                    ]
                };
                if pg.password.is_some() && pg.password_file.is_some() {
                    at.error(
                        &p("password_file"),
                        "`password` and `password_file` exclude each other",
                    );
                }
                if let Some(file) = &mut pg.password_file {
                    *file = resolve(file);
                    if let Err(e) = std::fs::read(&*file) {
                        at.error(&p("password_file"), format!("cannot read {file:?}: {e}"));
                    }
                }
                if pg.user.is_empty() {
                    at.error(&p("user"), "must not be empty");
                }
                if !pg.queries.is_empty() || pg.queries_file.is_some() {
                    let (origin, text) = match &mut pg.queries_file {
                        Some(file) => {
                            *file = resolve(file);
                            match std::fs::read_to_string(&*file) {
                                Ok(text) => (file.clone(), text),
                                Err(e) => {
                                    at.error(
                                        &p("queries_file"),
                                        format!("cannot read {file:?}: {e}"),
                                    );
                                    (file.clone(), String::new())
                                }
                            }
                        }
                        None => (
                            "exporters/postgres.yaml (built in)".to_string(),
                            super::postgres::SHIPPED_QUERIES.to_string(),
                        ),
                    };
                    if !text.is_empty() {
                        match super::postgres::parse_queries(&text, &origin) {
                            Err(errors) => {
                                for e in errors {
                                    at.error(&p("queries_file"), e);
                                }
                            }
                            Ok(all) => {
                                for (q, name) in pg.queries.iter().enumerate() {
                                    match all.iter().find(|c| &c.name == name) {
                                        Some(query) => pg.loaded_queries.push(query.clone()),
                                        None => at.error(
                                            &[
                                                Step::Key("jobs"),
                                                Step::Index(i),
                                                Step::Key("postgres"),
                                                Step::Key("queries"),
                                                Step::Index(q),
                                            ],
                                            format!(
                                                "no query {name:?} in {origin} (it has: {})",
                                                all.iter()
                                                    .map(|c| c.name.as_str())
                                                    .collect::<Vec<_>>()
                                                    .join(", ")
                                            ),
                                        ),
                                    }
                                }
                            }
                        }
                    }
                }
                None
            }
        };
        if let Some((tls, prober)) = tls {
            if let Some(file) = &mut tls.ca_file {
                *file = resolve(file);
                let here = [
                    Step::Key("jobs"),
                    Step::Index(i),
                    Step::Key(prober),
                    Step::Key("tls_config"),
                    Step::Key("ca_file"),
                ];
                match std::fs::read(&*file) {
                    Err(e) => at.error(&here, format!("cannot read {file:?}: {e}")),
                    Ok(pem) => {
                        if let Err(e) = super::tls::parse_ca_pem(&pem) {
                            at.error(&here, format!("{file}: {e}"));
                        }
                    }
                }
            }
            if let Some(name) = &tls.server_name {
                if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
                    let here = [
                        Step::Key("jobs"),
                        Step::Index(i),
                        Step::Key(prober),
                        Step::Key("tls_config"),
                        Step::Key("server_name"),
                    ];
                    at.error(&here, format!("{name:?} is not a DNS name or IP address"));
                }
            }
        }
    }
    at.findings
}

/// Whether a target has the form its prober needs.
fn check_target(prober: ProberKind, target: &str) -> Result<(), String> {
    match prober {
        ProberKind::Http => {
            let uri: hyper::Uri = target
                .parse()
                .map_err(|e| format!("{target:?} is not a URL: {e}"))?;
            match uri.scheme_str() {
                Some("http") | Some("https") => {}
                _ => {
                    return Err(format!(
                    "{target:?}: an http probe target is a URL starting with http:// or https://"
                ))
                }
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(format!("{target:?}: the URL has no host"));
            }
            Ok(())
        }
        ProberKind::Tcp => super::split_host_port(target, None)
            .map(drop)
            .map_err(|e| format!("{target:?}: {e}; a tcp probe target is host:port")),
        ProberKind::Postgres => {
            if target.starts_with('/') {
                return Ok(());
            }
            super::split_host_port(target, Some(5432))
                .map(drop)
                .map_err(|e| format!("{target:?}: {e}; a postgres probe target is host:port, host, or a socket directory"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn defaults_are_filled_in() {
        let config = load_str(
            "global: {scrape_interval: 5s}\nprobes:\n  jobs:\n    - {name: a, prober: http, targets: ['https://x/']}\n    - {name: b, prober: postgres, interval: 1m, targets: [db]}\n",
            "c.yml",
        )
        .expect("valid");
        let probes = &config.probes;
        assert_eq!(probes.max_concurrent_probes, 32);
        let a = &probes.jobs[0];
        assert_eq!(
            (a.interval(), a.timeout()),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        let http = a.http.as_ref().expect("http defaults");
        assert_eq!(http.method, "GET");
        assert_eq!(http.body_size_limit.0, 1024 * 1024);
        assert!(http.follow_redirects && http.ip_protocol_fallback);
        assert_eq!(http.preferred_ip_protocol, IpProtocol::Ip6);
        let b = &probes.jobs[1];
        assert_eq!(
            (b.interval(), b.timeout()),
            (Duration::from_secs(60), Duration::from_secs(10))
        );
        let pg = b.postgres.as_ref().expect("postgres defaults");
        assert_eq!(
            (pg.user.as_str(), pg.dbname.as_str()),
            ("postgres", "postgres")
        );
    }

    #[test]
    fn every_problem_is_reported_at_its_key() {
        let text = "scrape_configs: [{job_name: node}]\nprobes:\n  max_concurrent_probes: 0\n  jobs:\n    - {name: node, prober: tcp, targets: ['x', '[::1', 'h:99999']}\n    - {name: p, prober: postgres, targets: ['h'], labels: {job: x, 'a-b': y}, postgres: {queries: [nope], password: a, password_file: /nonexistent}}\n    - {name: p, prober: htp}\n";
        let errors = load_str(text, "c.yml").expect_err("invalid").errors;
        let expected = [
            "c.yml:3:26: probes.max_concurrent_probes: must be at least 1",
            "c.yml:5:14: probes.jobs[0].name: \"node\" is also a scrape job's job_name",
            "c.yml:5:43: probes.jobs[0].targets[0]: \"x\": no port",
            "c.yml:5:48: probes.jobs[0].targets[1]: \"[::1\": unclosed `[`",
            "c.yml:5:56: probes.jobs[0].targets[2]: \"h:99999\": invalid port",
            "c.yml:6:65: probes.jobs[1].labels.job: `job` is set by the probe",
            "probes.jobs[1].labels.a-b: invalid label name",
            "c.yml:6:100: probes.jobs[1].postgres.queries[0]: no query \"nope\" in exporters/postgres.yaml (built in) (it has: pg_database,",
            "probes.jobs[1].postgres.password_file: `password` and `password_file` exclude each other",
            "probes.jobs[1].postgres.password_file: cannot read \"/nonexistent\"",
            "probes.jobs[2].prober: unknown variant `htp`, expected one of `http`, `tcp`, `postgres`",
        ];
        for e in expected {
            assert!(
                errors.iter().any(|got| got.contains(e)),
                "missing {e:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn unreadable_queries_and_ca_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("q.yaml"), "x: [1]\n").expect("write");
        std::fs::write(dir.path().join("ca.pem"), "not pem\n").expect("write");
        std::fs::write(
            dir.path().join("c.yml"),
            "probes:\n  jobs:\n    - name: p\n      prober: postgres\n      targets: [h]\n      postgres: {queries_file: q.yaml}\n    - name: h\n      prober: http\n      targets: ['https://h/']\n      http: {tls_config: {ca_file: ca.pem}}\n",
        )
        .expect("write");
        let errors = crate::config::load_file(&dir.path().join("c.yml"))
            .expect_err("invalid")
            .errors;
        assert!(
            errors
                .iter()
                .any(|e| e.contains("probes.jobs[0].postgres.queries_file:")
                    && e.contains("q.yaml:1:")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("probes.jobs[1].http.tls_config.ca_file:")
                    && e.contains("no PEM certificate")),
            "{errors:#?}"
        );
    }
}

#[cfg(test)]
mod doc_tests {
    /// Every YAML example of docs/probes.md that has a `probes:` section
    /// loads (files it names need not exist: only their errors are ignored).
    #[test]
    fn the_examples_in_docs_probes_md_load() {
        let docs = include_str!("../../../docs/probes.md");
        let mut examples = 0;
        for block in docs.split("```yaml\n").skip(1) {
            let text = block.split("```").next().unwrap_or_default();
            if !text.starts_with("probes:") {
                continue;
            }
            examples += 1;
            if let Err(e) = crate::config::load_str(text, "docs/probes.md") {
                let real: Vec<&String> = e
                    .errors
                    .iter()
                    .filter(|e| !e.contains("cannot read"))
                    .collect();
                assert!(real.is_empty(), "{real:#?}\n{text}");
            }
        }
        assert!(examples >= 4, "{examples}");
    }
}
