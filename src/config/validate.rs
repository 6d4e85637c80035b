//! Semantic checks and defaults, after the typed parse: the rules Prometheus
//! applies in its `UnmarshalYAML`/`Validate` methods (config/config.go,
//! model/relabel/relabel.go, common/config/http_config.go of 2.42), plus
//! bellwether's own sections. It also makes relative file paths relative to
//! the config file's directory and checks that referenced files are readable.
//!
//! Each finding is located through the node tree (see [`Locator`]); a key the
//! user left out (so a default applies) is reported at its parent.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use super::keys::NOT_YET_IMPLEMENTED;
use super::types::*;
use super::values::{format_duration, PromDuration, Secret};
use super::yaml::{join_key, Finding, Kind, Node, Pos};

/// A key path into the config, in the tree's current shape.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyPath(Vec<Step>);

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

impl KeyPath {
    fn key(&self, key: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Step::Key(key.to_string()));
        p
    }
    fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Step::Index(i));
        p
    }
}

fn push_step(path: &mut String, step: &Step) {
    match step {
        Step::Key(k) => *path = join_key(path, k),
        Step::Index(i) => path.push_str(&format!("[{i}]")),
    }
}

/// Finds the node a [`KeyPath`] names and reports the path as the user wrote
/// it (aliases and removals don't change it) and where it is.
pub(crate) struct Locator<'a> {
    root: &'a Node,
}

impl Locator<'_> {
    /// The node's path and position; with `at_key`, the position of its key.
    fn locate(&self, path: &KeyPath, at_key: bool) -> (String, Pos) {
        let mut node = self.root;
        let mut key_pos = None;
        for (i, step) in path.0.iter().enumerate() {
            let next = match (step, &node.kind) {
                (Step::Key(k), Kind::Map(entries)) => {
                    entries.iter().find(|e| &e.key == k).map(|e| {
                        key_pos = Some(e.key_pos);
                        &e.value
                    })
                }
                (Step::Index(n), Kind::Seq(items)) => {
                    key_pos = None;
                    items.get(*n)
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => {
                    // Not written (a default applies): report at the parent.
                    let mut text = node.path.clone();
                    for step in &path.0[i..] {
                        push_step(&mut text, step);
                    }
                    return (text, node.pos);
                }
            }
        }
        let pos = if at_key {
            key_pos.unwrap_or(node.pos)
        } else {
            node.pos
        };
        (node.path.clone(), pos)
    }

    fn is_set(&self, path: &KeyPath) -> bool {
        let mut node = self.root;
        for step in &path.0 {
            let next = match (step, &node.kind) {
                (Step::Key(k), Kind::Map(entries)) => {
                    entries.iter().find(|e| &e.key == k).map(|e| &e.value)
                }
                (Step::Index(n), Kind::Seq(items)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        !matches!(node.kind, Kind::Null)
    }
}

struct Checker<'a> {
    at: Locator<'a>,
    base_dir: Option<&'a Path>,
    findings: &'a mut Vec<Finding>,
    /// Paths whose values failed to parse (and now hold defaults).
    failed: HashSet<String>,
}

impl Checker<'_> {
    /// Whether a value at or under `path` failed to parse: rules that combine
    /// its fields would then judge defaults the user never wrote.
    fn failed_under(&self, path: &KeyPath) -> bool {
        let (prefix, _) = self.at.locate(path, false);
        self.failed.iter().any(|p| {
            p.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.report(path, false, message.into());
    }

    fn error_at_key(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.report(path, true, message.into());
    }

    fn report(&mut self, path: &KeyPath, at_key: bool, message: String) {
        let (path, pos) = self.at.locate(path, at_key);
        self.findings.push(Finding {
            pos: Some(pos),
            path,
            message,
        });
    }

    /// Makes `file` relative to the config's directory (as Prometheus does)
    /// and checks that it can be read.
    fn readable_file(&mut self, path: &KeyPath, file: &mut String) {
        if file.is_empty() {
            return;
        }
        *file = self.resolve(file);
        let result = std::fs::metadata(&*file).and_then(|meta| {
            if meta.is_dir() {
                Err(std::io::Error::other("it is a directory"))
            } else {
                std::fs::File::open(&*file).map(drop)
            }
        });
        if let Err(e) = result {
            self.error(path, format!("cannot read {file:?}: {e}"));
        }
    }

    fn resolve(&self, file: &str) -> String {
        match self.base_dir {
            Some(dir) if !file.is_empty() && Path::new(file).is_relative() => {
                PathBuf::from(dir).join(file).display().to_string()
            }
            _ => file.to_string(),
        }
    }
}

/// Checks `config`, fills in Prometheus's derived defaults, and resolves
/// relative paths against `base_dir` (the config file's directory).
pub(crate) fn validate(
    config: &mut Config,
    root: &Node,
    base_dir: Option<&Path>,
    findings: &mut Vec<Finding>,
) {
    let failed = findings.iter().map(|f| f.path.clone()).collect();
    let mut cx = Checker {
        at: Locator { root },
        base_dir,
        findings,
        failed,
    };
    let top = KeyPath::default();

    let later_sections = [
        config.logs.is_some(),
        config.export.is_some(),
        config.remote_write.is_some(),
        config.remote_read.is_some(),
    ];
    for (name, present) in NOT_YET_IMPLEMENTED.iter().zip(later_sections) {
        if present {
            cx.error_at_key(
                &top.key(name),
                format!("the `{name}` section is not implemented in this version of bellwether; remove it"),
            );
        }
    }

    check_global(&mut cx, &mut config.global);

    let rule_path = top.key("rule_files");
    for (i, file) in config.rule_files.iter_mut().enumerate() {
        if !RULE_FILE_PATTERN.is_match(file) {
            cx.error(
                &rule_path.index(i),
                format!(
                    "invalid rule file path {file:?}: `*` may only appear in the last path element"
                ),
            );
        }
        *file = cx.resolve(file);
    }

    let mut job_names: HashMap<String, usize> = HashMap::new();
    for (i, scrape) in config.scrape_configs.iter_mut().enumerate() {
        let path = top.key("scrape_configs").index(i);
        check_scrape_config(&mut cx, &path, scrape, &config.global);
        if !scrape.job_name.is_empty() {
            if let Some(first) = job_names.get(&scrape.job_name) {
                cx.error(
                    &path.key("job_name"),
                    format!(
                        "duplicate job_name {:?} (also used by scrape_configs[{first}]); job names must be unique",
                        scrape.job_name
                    ),
                );
            } else {
                job_names.insert(scrape.job_name.clone(), i);
            }
        }
    }

    let alerting = top.key("alerting");
    check_relabel_configs(
        &mut cx,
        &alerting.key("alert_relabel_configs"),
        &config.alerting.alert_relabel_configs,
    );
    for (i, am) in config.alerting.alertmanagers.iter_mut().enumerate() {
        check_alertmanager(&mut cx, &alerting.key("alertmanagers").index(i), am);
    }

    match crate::notify::config::check_section(config.notify.clone(), root.get("notify"), base_dir)
    {
        Ok(notify) => config.notify_config = Some(notify),
        Err(found) => cx.findings.extend(found),
    }

    crate::llm::config::check_section(&mut config.llm, root.get("llm"), base_dir, cx.findings);
    let scrape_jobs: Vec<&str> = config
        .scrape_configs
        .iter()
        .map(|s| s.job_name.as_str())
        .collect();
    cx.findings
        .extend(crate::collect::probe::config::check_section(
            &mut config.probes,
            &config.global,
            &scrape_jobs,
            root.get("probes"),
            base_dir,
        ));

    check_storage(&mut cx, &top.key("storage"), &config.storage);
    check_web(&mut cx, &top.key("web"), &mut config.web);
    check_host(
        &mut cx,
        &top.key("collectors").key("host"),
        &config.collectors.host,
        &job_names,
    );
}

/// The `collectors.host` section: regexes compile, collector names exist,
/// and the job name is not a scrape job's.
fn check_host(
    cx: &mut Checker<'_>,
    path: &KeyPath,
    host: &HostConfig,
    job_names: &HashMap<String, usize>,
) {
    for (key, pattern) in [
        (
            "filesystem_mount_points_exclude",
            &host.filesystem_mount_points_exclude,
        ),
        (
            "filesystem_fs_types_exclude",
            &host.filesystem_fs_types_exclude,
        ),
        ("diskstats_device_exclude", &host.diskstats_device_exclude),
        ("netdev_device_exclude", &host.netdev_device_exclude),
        ("vmstat_fields", &host.vmstat_fields),
    ] {
        if let Err(e) = regex::Regex::new(pattern) {
            cx.error(
                &path.key(key),
                super::values::describe_regex_error(pattern, &e),
            );
        }
    }
    for (i, name) in host.disable.iter().enumerate() {
        if !crate::collect::host::COLLECTOR_NAMES.contains(&name.as_str()) {
            cx.error(
                &path.key("disable").index(i),
                format!(
                    "unknown host collector {name:?} (known: {})",
                    crate::collect::host::COLLECTOR_NAMES.join(", ")
                ),
            );
        }
    }
    if host.job_name.is_empty() {
        cx.error(&path.key("job_name"), "job_name must not be empty");
    } else if host.enabled {
        if let Some(i) = job_names.get(&host.job_name) {
            cx.error(
                &path.key("job_name"),
                format!(
                    "job_name {:?} is also the job_name of scrape_configs[{i}]; choose another for the host collector (or for that job)",
                    host.job_name
                ),
            );
        }
    }
    if host.interval.is_some_and(|d| d.0.is_zero()) {
        cx.error(
            &path.key("interval"),
            "interval must be greater than 0 (e.g. 15s), or left out for global.scrape_interval",
        );
    }
    if host.instance.as_ref().is_some_and(|i| i.is_empty()) {
        cx.error(
            &path.key("instance"),
            "instance must not be empty (leave it out for the host name)",
        );
    }
}

const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Prometheus's `DefaultAlertmanagerConfig.Timeout`.
pub(crate) const DEFAULT_ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(10);

/// Prometheus's `patRulePath`: a glob only in the last path element.
static RULE_FILE_PATTERN: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[^*]*(\*[^/]*)?$").expect("static regex"));
/// Prometheus's `patFileSDName`.
static FILE_SD_PATTERN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$").expect("static regex")
});
/// Prometheus's `relabelTarget`: a label name that may contain `$1`/`${name}` templates.
static RELABEL_TARGET: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$")
        .expect("static regex")
});

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus's label name syntax.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_global(cx: &mut Checker<'_>, global: &mut GlobalConfig) {
    let path = KeyPath::default().key("global");
    if global.scrape_interval.0.is_zero() {
        global.scrape_interval = PromDuration(DEFAULT_SCRAPE_INTERVAL);
    }
    let interval = global.scrape_interval.0;
    // Only an explicit timeout can be wrong; the default is capped at the interval.
    if cx.at.is_set(&path.key("scrape_timeout")) && !global.scrape_timeout.0.is_zero() {
        if global.scrape_timeout.0 > interval {
            cx.error(
                &path.key("scrape_timeout"),
                timeout_message(global.scrape_timeout.0, interval),
            );
        }
    } else {
        global.scrape_timeout = PromDuration(DEFAULT_SCRAPE_TIMEOUT.min(interval));
    }
    if global.evaluation_interval.0.is_zero() {
        global.evaluation_interval = PromDuration(DEFAULT_EVALUATION_INTERVAL);
    }
    check_label_names(
        cx,
        &path.key("external_labels"),
        global.external_labels.keys(),
    );
}

fn timeout_message(timeout: Duration, interval: Duration) -> String {
    format!(
        "scrape_timeout ({}) is greater than scrape_interval ({}); a scrape must end before the next one starts",
        format_duration(timeout),
        format_duration(interval)
    )
}

fn check_label_names<'a>(
    cx: &mut Checker<'_>,
    path: &KeyPath,
    names: impl Iterator<Item = &'a String>,
) {
    for name in names {
        if !is_valid_label_name(name) {
            cx.error_at_key(
                &path.key(name),
                format!(
                    "{name:?} is not a valid label name (it must match [a-zA-Z_][a-zA-Z0-9_]*)"
                ),
            );
        }
    }
}

fn check_scheme(cx: &mut Checker<'_>, path: &KeyPath, scheme: &str) {
    if scheme != "http" && scheme != "https" {
        cx.error(
            &path.key("scheme"),
            format!("scheme must be http or https, not {scheme:?}"),
        );
    }
}

fn check_scrape_config(
    cx: &mut Checker<'_>,
    path: &KeyPath,
    scrape: &mut ScrapeConfig,
    global: &GlobalConfig,
) {
    if scrape.job_name.is_empty() {
        cx.error(&path.key("job_name"), "job_name must not be empty");
    }
    // Prometheus: interval defaults to the global one; an explicit timeout
    // must not exceed it; a defaulted timeout is capped at it.
    let interval = scrape.interval(global);
    scrape.scrape_interval = Some(PromDuration(interval));
    if let Some(timeout) = scrape.scrape_timeout.filter(|t| !t.0.is_zero()) {
        if timeout.0 > interval && !cx.failed_under(&path.key("scrape_interval")) {
            cx.error(
                &path.key("scrape_timeout"),
                timeout_message(timeout.0, interval),
            );
        }
    }
    scrape.scrape_timeout = Some(PromDuration(scrape.timeout(global)));

    check_scheme(cx, path, &scrape.scheme);
    check_http_client(
        cx,
        path,
        HttpClient {
            basic_auth: &mut scrape.basic_auth,
            authorization: &mut scrape.authorization,
            bearer_token: &scrape.bearer_token,
            bearer_token_file: &mut scrape.bearer_token_file,
            tls_config: &mut scrape.tls_config,
        },
    );
    check_targets(
        cx,
        path,
        &scrape.static_configs,
        &mut scrape.file_sd_configs,
        scrape.relabel_configs.is_empty(),
    );
    check_relabel_configs(cx, &path.key("relabel_configs"), &scrape.relabel_configs);
    check_relabel_configs(
        cx,
        &path.key("metric_relabel_configs"),
        &scrape.metric_relabel_configs,
    );
}

fn check_alertmanager(cx: &mut Checker<'_>, path: &KeyPath, am: &mut AlertmanagerConfig) {
    check_scheme(cx, path, &am.scheme);
    match am.api_version.as_deref() {
        None => am.api_version = Some("v2".to_string()),
        Some("v2") => {}
        Some(other) => cx.error(
            &path.key("api_version"),
            format!("api_version {other:?} is not supported: bellwether speaks Alertmanager API v2 only"),
        ),
    }
    if am.timeout.is_none_or(|t| t.0.is_zero()) {
        am.timeout = Some(PromDuration(DEFAULT_ALERTMANAGER_TIMEOUT));
    }
    let mut no_bearer_file = None;
    check_http_client(
        cx,
        path,
        HttpClient {
            basic_auth: &mut am.basic_auth,
            authorization: &mut am.authorization,
            bearer_token: &None,
            bearer_token_file: &mut no_bearer_file,
            tls_config: &mut am.tls_config,
        },
    );
    check_targets(
        cx,
        path,
        &am.static_configs,
        &mut am.file_sd_configs,
        am.relabel_configs.is_empty(),
    );
    check_relabel_configs(cx, &path.key("relabel_configs"), &am.relabel_configs);
}

/// The parts of Prometheus's `HTTPClientConfig` that bellwether supports.
struct HttpClient<'a> {
    basic_auth: &'a mut Option<BasicAuth>,
    authorization: &'a mut Option<Authorization>,
    bearer_token: &'a Option<Secret>,
    bearer_token_file: &'a mut Option<String>,
    tls_config: &'a mut Option<TlsConfig>,
}

/// `HTTPClientConfig.Validate`, reporting every conflict instead of the first,
/// then folding `bearer_token`/`bearer_token_file` into `authorization` as
/// Prometheus does, so a client only has to look at `authorization`.
fn check_http_client(cx: &mut Checker<'_>, path: &KeyPath, client: HttpClient<'_>) {
    let has_token = client
        .bearer_token
        .as_ref()
        .is_some_and(|t| !t.0.is_empty());
    let has_token_file = client
        .bearer_token_file
        .as_ref()
        .is_some_and(|f| !f.is_empty());
    if has_token && has_token_file {
        cx.error_at_key(
            &path.key("bearer_token_file"),
            "at most one of bearer_token and bearer_token_file may be set",
        );
    }
    if client.basic_auth.is_some() && (has_token || has_token_file) {
        cx.error_at_key(
            &path.key("basic_auth"),
            "at most one of basic_auth, authorization and bearer_token/bearer_token_file may be set",
        );
    }
    if let Some(basic) = client.basic_auth.as_mut() {
        let at = path.key("basic_auth");
        let has_password = basic.password.as_ref().is_some_and(|p| !p.0.is_empty());
        if has_password && basic.password_file.as_ref().is_some_and(|f| !f.is_empty()) {
            cx.error_at_key(
                &at.key("password_file"),
                "at most one of password and password_file may be set",
            );
        }
        if let Some(file) = basic.password_file.as_mut() {
            cx.readable_file(&at.key("password_file"), file);
        }
    }
    if let Some(file) = client.bearer_token_file.as_mut() {
        cx.readable_file(&path.key("bearer_token_file"), file);
    }
    if let Some(auth) = client.authorization.as_mut() {
        let at = path.key("authorization");
        if has_token || has_token_file {
            cx.error_at_key(
                &at,
                "authorization cannot be combined with bearer_token or bearer_token_file",
            );
        }
        if client.basic_auth.is_some() {
            cx.error_at_key(
                &at,
                "at most one of basic_auth and authorization may be set",
            );
        }
        let has_credentials = auth.credentials.as_ref().is_some_and(|c| !c.0.is_empty());
        if has_credentials
            && auth
                .credentials_file
                .as_ref()
                .is_some_and(|f| !f.is_empty())
        {
            cx.error_at_key(
                &at.key("credentials_file"),
                "at most one of credentials and credentials_file may be set",
            );
        }
        auth.kind = auth.kind.trim().to_string();
        if auth.kind.is_empty() {
            auth.kind = "Bearer".to_string();
        }
        if auth.kind.eq_ignore_ascii_case("basic") {
            cx.error(
                &at.key("type"),
                "authorization type cannot be \"Basic\"; use basic_auth instead",
            );
        }
        if let Some(file) = auth.credentials_file.as_mut() {
            cx.readable_file(&at.key("credentials_file"), file);
        }
    } else if has_token || has_token_file {
        *client.authorization = Some(Authorization {
            kind: "Bearer".to_string(),
            credentials: client.bearer_token.clone().filter(|_| has_token),
            credentials_file: client.bearer_token_file.clone().filter(|_| !has_token),
        });
    }
    if let Some(tls) = client.tls_config.as_mut() {
        let at = path.key("tls_config");
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => cx.error_at_key(
                &at.key("cert_file"),
                "cert_file is set without key_file; a client certificate needs both",
            ),
            (None, Some(_)) => cx.error_at_key(
                &at.key("key_file"),
                "key_file is set without cert_file; a client certificate needs both",
            ),
            _ => {}
        }
        for (key, file) in [
            ("ca_file", &mut tls.ca_file),
            ("cert_file", &mut tls.cert_file),
            ("key_file", &mut tls.key_file),
        ] {
            if let Some(file) = file.as_mut() {
                cx.readable_file(&at.key(key), file);
            }
        }
    }
}

/// static_configs and file_sd_configs of a scrape job or alertmanager.
fn check_targets(
    cx: &mut Checker<'_>,
    path: &KeyPath,
    static_configs: &[StaticConfig],
    file_sd_configs: &mut [FileSdConfig],
    no_relabeling: bool,
) {
    for (i, group) in static_configs.iter().enumerate() {
        let at = path.key("static_configs").index(i);
        // Like Prometheus, only when no relabeling may rewrite `__address__`
        // (the blackbox-exporter pattern lists URLs as targets).
        if no_relabeling {
            for (j, target) in group.targets.iter().enumerate() {
                if let Err(why) = check_target_address(target) {
                    cx.error(&at.key("targets").index(j), why);
                }
            }
        }
        check_label_names(cx, &at.key("labels"), group.labels.keys());
    }
    for (i, sd) in file_sd_configs.iter_mut().enumerate() {
        let at = path.key("file_sd_configs").index(i);
        if sd.files.is_empty() {
            cx.error(
                &at.key("files"),
                "file_sd_configs needs at least one file name",
            );
        }
        for (j, file) in sd.files.iter_mut().enumerate() {
            if !FILE_SD_PATTERN.is_match(file) {
                cx.error(
                    &at.key("files").index(j),
                    format!(
                        "{file:?} is not a valid file_sd file name: it must end in .json, .yml or .yaml, with `*` only in the last path element"
                    ),
                );
            }
            // Files may not exist yet (Prometheus waits for them): no read check.
            *file = cx.resolve(file);
        }
    }
}

/// A target is `host`, `host:port` or `[ipv6]:port`, with no scheme or path.
/// Without a port, the scheme's default (80 or 443) applies, as in Prometheus.
pub fn check_target_address(target: &str) -> Result<(), String> {
    let advice =
        "write host:port, without scheme or path (set `scheme` and `metrics_path` for those)";
    if target.is_empty() {
        return Err(format!("empty target; {advice}"));
    }
    if target.contains('/') {
        return Err(format!(
            "{target:?} is not a valid target address: {advice}"
        ));
    }
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => (host, Some(port)),
            },
            None => return Err(format!("{target:?} has an unclosed `[`; {advice}")),
        }
    } else {
        match target.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (target, None),
        }
    };
    if host.is_empty()
        || host.contains(char::is_whitespace)
        || host.contains(':') && !target.starts_with('[')
    {
        return Err(format!(
            "{target:?} is not a valid target address: {advice}"
        ));
    }
    if let Some(port) = port {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!(
                "{target:?} has an invalid port {port:?} (expected 1-65535)"
            ));
        }
    }
    Ok(())
}

fn check_relabel_configs(cx: &mut Checker<'_>, path: &KeyPath, configs: &[RelabelConfig]) {
    for (i, rc) in configs.iter().enumerate() {
        let at = path.index(i);
        if !cx.failed_under(&at) {
            check_relabel_config(cx, &at, rc);
        }
    }
}

/// Prometheus's `relabel.Config.UnmarshalYAML` rules, all reported.
fn check_relabel_config(cx: &mut Checker<'_>, path: &KeyPath, rc: &RelabelConfig) {
    use RelabelAction::*;
    let action = rc.action;
    let name = action.name();
    let target = rc.target_label.as_deref().unwrap_or("");
    let default_replacement = rc.replacement == "$1";

    if action == HashMod && rc.modulus.unwrap_or(0) == 0 {
        cx.error(&path.key("modulus"), "hashmod needs a non-zero `modulus`");
    }
    if matches!(
        action,
        Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual
    ) {
        if target.is_empty() {
            cx.error(
                &path.key("target_label"),
                format!("the {name} action needs `target_label`"),
            );
        } else if action == HashMod {
            if !is_valid_label_name(target) {
                cx.error(
                    &path.key("target_label"),
                    format!("{target:?} is not a valid label name for the hashmod action"),
                );
            }
        } else if !RELABEL_TARGET.is_match(target) {
            cx.error(
                &path.key("target_label"),
                format!(
                    "{target:?} is not a valid target_label for the {name} action: use a label name, optionally with $1 or ${{name}} templates"
                ),
            );
        }
    }
    if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual) && !default_replacement {
        cx.error_at_key(
            &path.key("replacement"),
            format!("`replacement` cannot be set for the {name} action"),
        );
    }
    if action == LabelMap && !RELABEL_TARGET.is_match(&rc.replacement) {
        cx.error(
            &path.key("replacement"),
            format!(
                "{:?} is not a valid replacement for the labelmap action: it must be a label name, optionally with $1 or ${{name}} templates",
                rc.replacement
            ),
        );
    }
    if matches!(action, KeepEqual | DropEqual) {
        if rc.source_labels.is_empty() {
            cx.error(
                &path.key("source_labels"),
                format!("the {name} action needs `source_labels`"),
            );
        }
        let extra = [
            ("regex", rc.regex.source != "(.*)"),
            ("modulus", rc.modulus.unwrap_or(0) != 0),
            ("separator", rc.separator != ";"),
        ];
        for (key, set) in extra {
            if set {
                cx.error_at_key(
                    &path.key(key),
                    format!("the {name} action takes only `source_labels` and `target_label`; remove `{key}`"),
                );
            }
        }
    }
    if matches!(action, LabelDrop | LabelKeep) {
        let extra = [
            ("source_labels", !rc.source_labels.is_empty()),
            ("target_label", !target.is_empty()),
            ("modulus", rc.modulus.unwrap_or(0) != 0),
            ("separator", rc.separator != ";"),
            ("replacement", !default_replacement),
        ];
        for (key, set) in extra {
            if set {
                cx.error_at_key(
                    &path.key(key),
                    format!("the {name} action takes only `regex`; remove `{key}`"),
                );
            }
        }
    }
}

fn check_storage(cx: &mut Checker<'_>, path: &KeyPath, storage: &StorageConfig) {
    if storage.retention.0.is_zero() {
        cx.error(
            &path.key("retention"),
            "retention must be greater than 0 (e.g. 15d)",
        );
    }
    if storage.wal_flush_interval.0.is_zero() {
        cx.error(
            &path.key("wal_flush_interval"),
            "wal_flush_interval must be greater than 0 (e.g. 1s)",
        );
    }
}

fn check_web(cx: &mut Checker<'_>, path: &KeyPath, web: &mut WebConfig) {
    if let Err(why) = check_listen_address(&web.listen_address) {
        cx.error(&path.key("listen_address"), why);
    }
    if let Some(otlp) = &web.otlp_listen_address {
        if let Err(why) = check_listen_address(otlp) {
            cx.error(&path.key("otlp_listen_address"), why);
        } else if *otlp == web.listen_address {
            cx.error(
                &path.key("otlp_listen_address"),
                format!("{otlp:?} is also web.listen_address, which serves OTLP already; leave otlp_listen_address out or choose another port such as 4318"),
            );
        }
    }
    if web.write_token.as_ref().is_some_and(|t| !t.0.is_empty())
        && web.write_token_file.as_ref().is_some_and(|f| !f.is_empty())
    {
        cx.error_at_key(
            &path.key("write_token_file"),
            "at most one of write_token and write_token_file may be set",
        );
    }
    if let Some(file) = web.write_token_file.as_mut() {
        cx.readable_file(&path.key("write_token_file"), file);
    }
}

/// `host:port`, `[ipv6]:port` or `:port` (all interfaces).
pub fn check_listen_address(address: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{address:?} is not a valid listen address; expected host:port such as 127.0.0.1:9471"
        )
    };
    if address.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let hostname_ok = host.split('.').all(|part| {
        !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if host.is_empty() || hostname_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_addresses() {
        for good in [
            "localhost:9100",
            "10.0.0.1:80",
            "[::1]:9090",
            "node1",
            "a.b.c:1",
        ] {
            assert!(check_target_address(good).is_ok(), "{good}");
        }
        for bad in [
            "http://localhost:9100",
            "localhost:9100/metrics",
            "localhost:http",
            "localhost:0",
            "localhost:70000",
            "",
            "::1",
            "[::1",
        ] {
            assert!(check_target_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses() {
        for good in ["127.0.0.1:9471", "[::]:9471", ":9471", "localhost:9471"] {
            assert!(check_listen_address(good).is_ok(), "{good}");
        }
        for bad in ["9471", "localhost", "127.0.0.1:", "host name:1", "a:99999"] {
            assert!(check_listen_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relabel_target_templates() {
        for good in ["foo", "${1}", "foo_$1", "${name}_x", "_a"] {
            assert!(RELABEL_TARGET.is_match(good), "{good}");
        }
        for bad in ["", "1foo", "foo-bar", "$", "a b"] {
            assert!(!RELABEL_TARGET.is_match(bad), "{bad}");
        }
    }
}
