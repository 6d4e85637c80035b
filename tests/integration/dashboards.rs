//! The Grafana dashboards in dashboards/ against the real daemon.
//!
//! OpenLIT's dashboards once shipped empty because their queries named
//! series their SDK did not produce. This test makes that impossible here:
//! it loads generated usage through `POST /api/v1/usage` and
//! `/api/v1/events`, then runs every query of every dashboard — every panel
//! target (rows and collapsed rows included, so a panel added later is
//! covered without touching this file) and every template-variable query —
//! through bellwether's HTTP API the way Grafana's Prometheus data source
//! sends it, with Grafana's variables substituted as Grafana substitutes
//! them, and requires a successful, correctly shaped, non-empty answer with
//! at least one finite value.
//! Every series selector inside an expression must match series of its own,
//! so an `or` fallback cannot hide a misspelt name, and every `{{label}}` of
//! a legend must be on the answer's series. The expressions also go through
//! the real `promtool check rules`, so they are Prometheus 2.42's PromQL and
//! not only bellwether's. The dashboards' JSON is checked for what Grafana
//! needs to import it (unique ids, grid positions, the `${datasource}`
//! variable on every panel and query, defined variables).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promql_parser::parser::ast::Expr;
use serde_json::Value;

use crate::util::{client, reference_program, wait_for, TestDaemon};

/// Both dashboards the issue asks for; any other JSON file in dashboards/ is
/// checked as well.
const REQUIRED: [&str; 2] = ["business-metrics.json", "cost-analysis.json"];

const DATASOURCE: &str = "${datasource}";

/// The data source's "scrape interval" setting the test assumes: bellwether
/// writes the llm_* series every `llm.interval`, which the config below sets
/// to 1s (README: set the data source's scrape interval to `llm.interval`).
const SCRAPE_INTERVAL_MS: i64 = 1_000;

/// The dashboard time range the queries are sent for ("Last 15 minutes").
const RANGE_MS: i64 = 15 * 60 * 1_000;

/// Grafana sends the panel's width in pixels as maxDataPoints; its backend
/// uses 1500 without one.
const DEFAULT_MAX_DATA_POINTS: i64 = 1_500;

const CONFIG: &str = "\
web:
  write_token: s3cret
llm:
  interval: 1s
  flush_interval: 200ms
  rate_limit_user_floor: 1
  rate_limit_org_floor: 1
  budgets:
    - {name: all, limit_usd: \"1000\"}
    - {name: acme-daily, scope: org, match: acme, period: day, limit_usd: \"0.05\"}
    - {name: search-weekly, scope: team, match: search, period: week, limit_usd: \"10\"}
    - {name: alice-daily, scope: user, match: alice, period: day, limit_usd: \"0.50\"}
";

const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

// ---------------------------------------------------------------------------
// The dashboards and their structure

struct Dashboard {
    file: String,
    json: Value,
}

fn load_dashboards() -> Vec<Dashboard> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards"));
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir).expect("reading dashboards/");
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("a dashboards/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("reading a dashboard");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name")
            .to_string();
        out.push(Dashboard { file, json });
    }
    for name in REQUIRED {
        assert!(
            out.iter().any(|d| d.file == name),
            "dashboards/{name} is missing"
        );
    }
    out
}

/// Every panel that is not a row, in the order Grafana lays them out;
/// the panels of collapsed rows (kept inside the row) included.
fn query_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            if panel["type"] == "row" {
                walk(&panel["panels"], out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn is_prometheus_datasource(ds: &Value) -> bool {
    ds["uid"] == DATASOURCE && (ds["type"] == "prometheus" || ds.get("type").is_none())
}

/// The problems Grafana would have importing or rendering the dashboard.
fn structure_errors(d: &Dashboard) -> Vec<String> {
    let mut errors = Vec::new();
    let mut err = |s: String| errors.push(format!("{}: {s}", d.file));
    let j = &d.json;
    for key in ["title", "uid"] {
        if j[key].as_str().is_none_or(str::is_empty) {
            err(format!("`{key}` must be a non-empty string"));
        }
    }
    if j["uid"].as_str().is_some_and(|u| u.len() > 40) {
        err("`uid` is longer than Grafana's 40 characters".into());
    }
    if !j["id"].is_null() {
        err("`id` must be null so that an import creates the dashboard".into());
    }
    if j["schemaVersion"].as_i64().is_none_or(|v| v < 36) {
        err("`schemaVersion` must be 36 or later (data source references by uid)".into());
    }
    if !(j["time"]["from"].is_string() && j["time"]["to"].is_string()) {
        err("`time.from` and `time.to` are required".into());
    }

    // Variables: the data source variable, and every query variable on it.
    let variables = j["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut names = BTreeSet::new();
    let mut datasource_var = false;
    for v in &variables {
        let name = v["name"].as_str().unwrap_or_default();
        if !names.insert(name.to_string()) {
            err(format!("variable `{name}` is defined twice"));
        }
        match v["type"].as_str() {
            Some("datasource") => {
                datasource_var |= name == "datasource" && v["query"] == "prometheus";
            }
            Some("query") => {
                if !is_prometheus_datasource(&v["datasource"]) {
                    err(format!(
                        "variable `{name}`: datasource must be {DATASOURCE}"
                    ));
                }
                if variable_query(v).is_none() {
                    err(format!("variable `{name}`: no query"));
                }
                if v["regex"].as_str().is_some_and(|r| !r.is_empty()) {
                    err(format!(
                        "variable `{name}`: a regex filter is not covered by this test"
                    ));
                }
            }
            other => err(format!(
                "variable `{name}`: type {other:?} is not covered by this test"
            )),
        }
    }
    if !datasource_var {
        err("no variable `datasource` of type datasource with query `prometheus`".into());
    }

    // Panels: ids, grid, data source, targets.
    let mut ids = BTreeSet::new();
    let check_grid = |panels: &Value, scope: &str, errors: &mut Vec<String>| {
        let mut boxes: Vec<(i64, i64, i64, i64, String)> = Vec::new();
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            let g = &p["gridPos"];
            let (Some(h), Some(w), Some(x), Some(y)) = (
                g["h"].as_i64(),
                g["w"].as_i64(),
                g["x"].as_i64(),
                g["y"].as_i64(),
            ) else {
                errors.push(format!(
                    "{}: panel {title:?}: gridPos needs integer h, w, x, y",
                    d.file
                ));
                continue;
            };
            if h < 1 || w < 1 || x < 0 || y < 0 || x + w > 24 {
                errors.push(format!(
                    "{}: panel {title:?}: gridPos {g} is outside Grafana's 24-column grid",
                    d.file
                ));
            }
            for (bx, by, bw, bh, other) in &boxes {
                if x < bx + bw && *bx < x + w && y < by + bh && *by < y + h {
                    errors.push(format!(
                        "{}: {scope}: panels {other:?} and {title:?} overlap",
                        d.file
                    ));
                }
            }
            boxes.push((x, y, w, h, title));
        }
    };
    let mut grid_errors = Vec::new();
    check_grid(&j["panels"], "top level", &mut grid_errors);
    for row in j["panels"].as_array().into_iter().flatten() {
        if row["type"] == "row" {
            let title = row["title"].as_str().unwrap_or("?");
            if row["collapsed"] == true {
                check_grid(&row["panels"], &format!("row {title:?}"), &mut grid_errors);
            } else if row["panels"].as_array().is_some_and(|p| !p.is_empty()) {
                grid_errors.push(format!(
                    "{}: row {title:?} is expanded but holds panels (Grafana ignores them)",
                    d.file
                ));
            }
        }
    }
    errors.extend(grid_errors);
    let mut all = Vec::new();
    fn every<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            every(&p["panels"], out);
        }
    }
    every(&j["panels"], &mut all);
    for p in &all {
        let title = p["title"].as_str().unwrap_or_default();
        match p["id"].as_i64() {
            Some(id) if ids.insert(id) => {}
            Some(id) => errors.push(format!("{}: panel id {id} is used twice", d.file)),
            None => errors.push(format!("{}: panel {title:?} has no integer id", d.file)),
        }
        if title.is_empty() {
            errors.push(format!("{}: a panel (id {}) has no title", d.file, p["id"]));
        }
    }
    for p in query_panels(j) {
        let title = p["title"].as_str().unwrap_or_default();
        if !is_prometheus_datasource(&p["datasource"]) {
            errors.push(format!(
                "{}: panel {title:?}: datasource must be {{\"type\":\"prometheus\",\"uid\":\"{DATASOURCE}\"}}, not {}",
                d.file, p["datasource"]
            ));
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            errors.push(format!("{}: panel {title:?} has no targets", d.file));
        }
        let mut refs = BTreeSet::new();
        for t in &targets {
            let r = t["refId"].as_str().unwrap_or_default();
            if r.is_empty() || !refs.insert(r.to_string()) {
                errors.push(format!(
                    "{}: panel {title:?}: refId {r:?} is empty or used twice",
                    d.file
                ));
            }
            if !is_prometheus_datasource(&t["datasource"]) {
                errors.push(format!(
                    "{}: panel {title:?} target {r}: datasource must be {DATASOURCE}",
                    d.file
                ));
            }
            let expr = t["expr"].as_str().unwrap_or_default();
            if expr.trim().is_empty() {
                errors.push(format!(
                    "{}: panel {title:?} target {r}: empty expr",
                    d.file
                ));
            }
            for name in referenced_variables(expr) {
                if !name.starts_with("__") && !names.contains(&name) {
                    errors.push(format!(
                        "{}: panel {title:?} target {r}: variable ${name} is not defined",
                        d.file
                    ));
                }
            }
        }
    }
    errors
}

// ---------------------------------------------------------------------------
// Grafana's variables

/// The text of a query variable's query (an object in Grafana 10+, a string
/// before).
fn variable_query(v: &Value) -> Option<&str> {
    v["query"]["query"]
        .as_str()
        .or_else(|| v["query"].as_str())
        .or_else(|| v["definition"].as_str())
        .filter(|q| !q.trim().is_empty())
}

/// `$name`, `${name}`, `${name:format}` and `[[name]]` in `text`, in order.
fn variable_spans(text: &str) -> Vec<(usize, usize, String)> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() && bytes[i + 1] == b'{' {
            if let Some(end) = text[i..].find('}') {
                let inner = &text[i + 2..i + end];
                let name = inner.split(':').next().unwrap_or_default().to_string();
                out.push((i, i + end + 1, name));
                i += end + 1;
                continue;
            }
        } else if bytes[i] == b'$' {
            let mut j = i + 1;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            if j > i + 1 {
                out.push((i, j, text[i + 1..j].to_string()));
                i = j;
                continue;
            }
        } else if text[i..].starts_with("[[") {
            if let Some(end) = text[i..].find("]]") {
                out.push((i, i + end + 2, text[i + 2..i + end].to_string()));
                i += end + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn referenced_variables(text: &str) -> Vec<String> {
    variable_spans(text)
        .into_iter()
        .map(|(_, _, n)| n)
        .collect()
}

/// What a template variable is set to.
#[derive(Clone, Debug)]
enum Selection {
    /// "All", with the variable's `allValue` (or every option when it has none).
    All,
    /// These options, ticked one by one.
    Values(Vec<String>),
}

struct Variable {
    multi_or_all: bool,
    all_value: Option<String>,
    options: Vec<String>,
    selection: Selection,
}

/// Grafana's escaping of a value for a regex matcher (the Prometheus data
/// source's `prometheusSpecialRegexEscape`): backslashes and regex
/// metacharacters get a backslash that survives the PromQL string.
fn regex_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '$' | '^' | '*' | '{' | '}' | '[' | ']' | '+' | '?' | '.' | '(' | ')' | '|' => {
                out.push_str("\\\\");
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The same for a single-value variable (`prometheusRegularEscape`).
fn plain_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\\\'")
}

/// The text a template variable becomes in a query, as Grafana's Prometheus
/// data source formats it (`interpolateQueryExpr`). A custom all value is
/// not escaped.
fn format_variable(v: &Variable) -> String {
    let values = match &v.selection {
        Selection::All => match &v.all_value {
            Some(all) => return all.clone(),
            None => v.options.clone(),
        },
        Selection::Values(values) => values.clone(),
    };
    if !v.multi_or_all {
        return plain_escape(values.first().map(String::as_str).unwrap_or_default());
    }
    let escaped: Vec<String> = values.iter().map(|s| regex_escape(s)).collect();
    if escaped.len() == 1 {
        escaped[0].clone()
    } else {
        format!("({})", escaped.join("|"))
    }
}

/// Grafana's interval arithmetic for one query: the step (`$__interval`),
/// `$__rate_interval`, `$__range` and the aligned start and end.
#[derive(Clone, Copy, Debug)]
struct TimeContext {
    from_ms: i64,
    to_ms: i64,
}

/// Grafana's `roundInterval`: a computed interval snapped to a round one.
fn round_interval(ms: i64) -> i64 {
    const STEPS: [(i64, i64); 26] = [
        (10, 1),
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1_500, 1_000),
        (3_500, 2_000),
        (7_500, 5_000),
        (12_500, 10_000),
        (17_500, 15_000),
        (25_000, 20_000),
        (45_000, 30_000),
        (90_000, 60_000),
        (210_000, 120_000),
        (450_000, 300_000),
        (750_000, 600_000),
        (1_050_000, 900_000),
        (1_500_000, 1_200_000),
        (2_700_000, 1_800_000),
        (5_400_000, 3_600_000),
        (9_000_000, 7_200_000),
        (16_200_000, 10_800_000),
        (32_400_000, 21_600_000),
        (86_400_000, 43_200_000),
    ];
    STEPS
        .iter()
        .find(|(limit, _)| ms <= *limit)
        .map(|(_, rounded)| *rounded)
        .unwrap_or(86_400_000)
}

/// Grafana's `FormatInterval` (`$__interval`): whole units, `15s`, `1m`.
fn format_interval(ms: i64) -> String {
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= len {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{}ms", ms.max(1))
}

/// Go's `time.Duration.String()` for whole milliseconds, which is how
/// Grafana writes `$__rate_interval`: `4s`, `1m0s`, `1h30m0s`, `1.5s`.
fn go_duration(ms: i64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let seconds = if rest % 1_000 == 0 {
        format!("{}s", rest / 1_000)
    } else {
        let text = format!("{}.{:03}", rest / 1_000, rest % 1_000);
        format!("{}s", text.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

impl TimeContext {
    fn range_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }

    /// The query interval and step: range / maxDataPoints, rounded, at least
    /// the scrape interval, and at least range / 11000 (Grafana's safe
    /// resolution).
    fn step_ms(&self, max_data_points: i64) -> i64 {
        let calculated = self.range_ms() / max_data_points;
        let interval = if calculated < SCRAPE_INTERVAL_MS {
            SCRAPE_INTERVAL_MS
        } else {
            round_interval(calculated)
        };
        interval.max(round_interval(self.range_ms() / 11_000))
    }

    fn rate_interval_ms(&self, step_ms: i64) -> i64 {
        (step_ms + SCRAPE_INTERVAL_MS).max(4 * SCRAPE_INTERVAL_MS)
    }

    fn builtin(&self, name: &str, step_ms: i64) -> Option<String> {
        let range_s = (self.range_ms() as f64 / 1000.0).round() as i64;
        Some(match name {
            "__interval" => format_interval(step_ms),
            "__interval_ms" => step_ms.to_string(),
            "__rate_interval" => go_duration(self.rate_interval_ms(step_ms)),
            "__rate_interval_ms" => self.rate_interval_ms(step_ms).to_string(),
            "__range" => format!("{range_s}s"),
            "__range_s" => range_s.to_string(),
            "__range_ms" => self.range_ms().to_string(),
            _ => return None,
        })
    }

    /// Grafana aligns a range query's start and end down to the step.
    fn aligned(&self, step_ms: i64) -> (f64, f64) {
        let align = |t: i64| (t.div_euclid(step_ms) * step_ms) as f64 / 1000.0;
        (align(self.from_ms), align(self.to_ms))
    }
}

/// `text` with every variable replaced; an unknown one is an error.
fn interpolate(
    text: &str,
    variables: &BTreeMap<String, Variable>,
    time: &TimeContext,
    step_ms: i64,
) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    for (start, end, name) in variable_spans(text) {
        out.push_str(&text[last..start]);
        let value = if let Some(v) = time.builtin(&name, step_ms) {
            v
        } else if let Some(v) = variables.get(&name) {
            format_variable(v)
        } else if name == "datasource" {
            "bellwether".to_string()
        } else {
            return Err(format!("unknown variable ${name}"));
        };
        out.push_str(&value);
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Talking to bellwether as Grafana does

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// GET `path` with form parameters; the parsed JSON and the status.
fn api_get(daemon: &TestDaemon, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    answer(
        daemon,
        "GET",
        path,
        client().get(daemon.url(path)).query(params),
    )
}

/// POST a form to `path`, as Grafana's Prometheus data source does for
/// queries by default (HTTP method POST).
fn api_post_form(daemon: &TestDaemon, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    answer(
        daemon,
        "POST",
        path,
        client().post(daemon.url(path)).form(params),
    )
}

/// Sends `request` (`method` `path`): the status and the parsed JSON body.
fn answer(
    daemon: &TestDaemon,
    method: &str,
    path: &str,
    request: reqwest::blocking::RequestBuilder,
) -> (u16, Value) {
    let response = request
        .send()
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", daemon.log()));
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
    (status, json)
}

/// The values a `label_values(...)` variable query lists, as Grafana gets
/// them: `/api/v1/label/<label>/values` (with `match[]` when the query names
/// a metric, as Grafana 10 does for Prometheus ≥ 2.24) and, for the metric
/// form, `/api/v1/series` (older Grafana): both must agree.
fn variable_options(
    daemon: &TestDaemon,
    query: &str,
    time: &TimeContext,
) -> Result<Vec<String>, String> {
    let start = (time.from_ms / 1000).to_string();
    let end = (time.to_ms / 1000).to_string();
    let Some(args) = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    else {
        return Err(format!(
            "unsupported variable query {query:?} (this test knows label_values)"
        ));
    };
    let (metric, label) = match args.rsplit_once(',') {
        Some((metric, label)) => (Some(metric.trim()), label.trim()),
        None => (None, args.trim()),
    };
    let mut params = vec![("start", start.clone()), ("end", end.clone())];
    if let Some(m) = metric {
        params.push(("match[]", m.to_string()));
    }
    let (status, body) = api_get(daemon, &format!("/api/v1/label/{label}/values"), &params);
    if status != 200 || body["status"] != "success" {
        return Err(format!(
            "/api/v1/label/{label}/values answered {status}: {body}"
        ));
    }
    let values: Vec<String> = body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if let Some(m) = metric {
        let params = [("match[]", m.to_string()), ("start", start), ("end", end)];
        let (status, body) = api_get(daemon, "/api/v1/series", &params);
        if status != 200 || body["status"] != "success" {
            return Err(format!("/api/v1/series answered {status}: {body}"));
        }
        let from_series: BTreeSet<String> = body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[label].as_str().map(str::to_string))
            .collect();
        let listed: BTreeSet<String> = values.iter().cloned().collect();
        if from_series != listed {
            return Err(format!(
                "/api/v1/label/{label}/values lists {listed:?} but /api/v1/series has {from_series:?}"
            ));
        }
    }
    if values.is_empty() {
        return Err("no values".into());
    }
    Ok(values)
}

/// Resolves the dashboard's variables in their order, each query seeing the
/// earlier variables' selections, as Grafana refreshes chained variables.
fn resolve_variables(
    daemon: &TestDaemon,
    dashboard: &Dashboard,
    time: &TimeContext,
    every_option: bool,
) -> Result<BTreeMap<String, Variable>, String> {
    let mut resolved: BTreeMap<String, Variable> = BTreeMap::new();
    for v in dashboard.json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default().to_string();
        let query = variable_query(v).unwrap_or_default();
        let query = interpolate(query, &resolved, time, SCRAPE_INTERVAL_MS)
            .map_err(|e| format!("{}: variable {name}: {e}", dashboard.file))?;
        let options = variable_options(daemon, &query, time)
            .map_err(|e| format!("{}: variable {name} ({query}): {e}", dashboard.file))?;
        let multi_or_all = v["multi"] == true || v["includeAll"] == true;
        let selection = if every_option || v["includeAll"] != true {
            Selection::Values(if multi_or_all {
                options.clone()
            } else {
                options[..1].to_vec()
            })
        } else {
            Selection::All
        };
        resolved.insert(
            name,
            Variable {
                multi_or_all,
                all_value: v["allValue"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                options,
                selection,
            },
        );
    }
    Ok(resolved)
}

/// One panel query, substituted and ready to send.
struct PanelQuery {
    dashboard: String,
    panel: String,
    ref_id: String,
    template: String,
    expr: String,
    legend: String,
    instant: bool,
    step_ms: i64,
}

impl PanelQuery {
    fn name(&self) -> String {
        format!(
            "{} / panel {:?} / target {} ({})\n    template: {}\n    sent:     {}",
            self.dashboard,
            self.panel,
            self.ref_id,
            if self.instant { "instant" } else { "range" },
            self.template,
            self.expr
        )
    }
}

fn panel_queries(
    dashboard: &Dashboard,
    variables: &BTreeMap<String, Variable>,
    time: &TimeContext,
) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for panel in query_panels(&dashboard.json) {
        let title = panel["title"].as_str().unwrap_or_default().to_string();
        let max_data_points = panel["maxDataPoints"]
            .as_i64()
            .unwrap_or(DEFAULT_MAX_DATA_POINTS);
        let step_ms = time.step_ms(max_data_points);
        for target in panel["targets"].as_array().into_iter().flatten() {
            let template = target["expr"].as_str().unwrap_or_default().to_string();
            let expr = interpolate(&template, variables, time, step_ms)
                .unwrap_or_else(|e| panic!("{}: panel {title:?}: {e}", dashboard.file));
            let instant = target["instant"] == true;
            let range = target["range"] == true || !instant;
            let base = PanelQuery {
                dashboard: dashboard.file.clone(),
                panel: title.clone(),
                ref_id: target["refId"].as_str().unwrap_or_default().to_string(),
                template: template.clone(),
                expr: expr.clone(),
                legend: target["legendFormat"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                instant,
                step_ms,
            };
            // A target may ask for both; Grafana then sends both.
            if instant && range {
                out.push(PanelQuery {
                    instant: false,
                    dashboard: base.dashboard.clone(),
                    panel: base.panel.clone(),
                    ref_id: base.ref_id.clone(),
                    template: base.template.clone(),
                    expr: base.expr.clone(),
                    legend: base.legend.clone(),
                    step_ms,
                });
            }
            out.push(base);
        }
    }
    out
}

/// A vector selector of an expression: its text without offset or `@` (as
/// `/api/v1/series` takes it), its metric name and the label names its
/// matchers use.
struct Selector {
    text: String,
    metric: Option<String>,
    labels: Vec<String>,
}

fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    fn selector(v: &promql_parser::parser::ast::VectorSelector) -> Selector {
        let mut v = v.clone();
        v.offset = None;
        v.at = None;
        Selector {
            text: v.to_string(),
            metric: v.name.clone(),
            labels: v
                .matchers
                .matchers
                .iter()
                .chain(v.matchers.or_matchers.iter().flatten())
                .map(|m| m.name.clone())
                .filter(|n| n != "__name__")
                .collect(),
        }
    }
    fn walk(e: &Expr, out: &mut Vec<Selector>) {
        match e {
            Expr::Aggregate(a) => {
                walk(&a.expr, out);
                if let Some(p) = &a.param {
                    walk(p, out);
                }
            }
            Expr::Unary(u) => walk(&u.expr, out),
            Expr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            Expr::Paren(p) => walk(&p.expr, out),
            Expr::Subquery(s) => walk(&s.expr, out),
            Expr::VectorSelector(v) => out.push(selector(v)),
            Expr::MatrixSelector(m) => out.push(selector(&m.vs)),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    let parsed = bellwether::promql::parse(expr)?;
    let mut out = Vec::new();
    walk(&parsed, &mut out);
    Ok(out)
}

/// The series `/api/v1/series` lists for `selector` in the time range.
fn series(daemon: &TestDaemon, selector: &str, time: &TimeContext) -> Result<Vec<Value>, String> {
    let params = [
        ("match[]", selector.to_string()),
        ("start", (time.from_ms / 1000).to_string()),
        ("end", (time.to_ms / 1000).to_string()),
    ];
    let (status, body) = api_get(daemon, "/api/v1/series", &params);
    match body["data"].as_array() {
        Some(series) if status == 200 => Ok(series.clone()),
        _ => Err(format!(
            "/api/v1/series?match[]={selector} answered {status}: {body}"
        )),
    }
}

/// `{{label}}` names in a legend format (`__auto` and empty have none).
fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        out.push(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    out
}

/// Runs one panel query; `Err` says what is wrong with its answer.
fn check_query(daemon: &TestDaemon, q: &PanelQuery, time: &TimeContext) -> Result<(), String> {
    let (path, params, want_type) = if q.instant {
        (
            "/api/v1/query",
            vec![
                ("query", q.expr.clone()),
                ("time", format!("{:.3}", time.to_ms as f64 / 1000.0)),
            ],
            "vector",
        )
    } else {
        let (start, end) = time.aligned(q.step_ms);
        (
            "/api/v1/query_range",
            vec![
                ("query", q.expr.clone()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", format!("{}", q.step_ms as f64 / 1000.0)),
            ],
            "matrix",
        )
    };
    let (status, body) = api_post_form(daemon, path, &params);
    if status != 200 || body["status"] != "success" {
        return Err(format!("{path} answered {status}: {body}"));
    }
    let result_type = body["data"]["resultType"].as_str().unwrap_or_default();
    if result_type != want_type {
        return Err(format!(
            "{path}: resultType {result_type:?}, want {want_type:?}"
        ));
    }
    let result = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if result.is_empty() {
        return Err(format!("{path}: empty result"));
    }
    if !q.instant
        && result
            .iter()
            .all(|s| s["values"].as_array().is_none_or(|v| v.is_empty()))
    {
        return Err(format!("{path}: series without points"));
    }
    // A panel of NaNs (0/0 everywhere) is as empty as no series.
    let finite = |v: &Value| {
        v[1].as_str()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    let any_finite = result.iter().any(|s| {
        if q.instant {
            finite(&s["value"])
        } else {
            s["values"].as_array().into_iter().flatten().any(finite)
        }
    });
    if !any_finite {
        return Err(format!(
            "{path}: no finite value in {}",
            Value::Array(result)
        ));
    }
    for label in legend_labels(&q.legend) {
        if let Some(series) = result.iter().find(|s| {
            s["metric"][label.as_str()]
                .as_str()
                .is_none_or(str::is_empty)
        }) {
            return Err(format!(
                "legend {:?} names label `{label}`, which this series lacks: {}",
                q.legend, series["metric"]
            ));
        }
    }
    // Every selector must find series of its own: an `or` fallback or a
    // ratio's other side must not hide a misspelt name or label. A negative
    // matcher on a misspelt label (`stauts!="ok"`) matches everything, so
    // every label a matcher names must also be on the metric's series.
    for selector in selectors(&q.expr)? {
        if series(daemon, &selector.text, time)?.is_empty() {
            return Err(format!("selector {} matches no series", selector.text));
        }
        let Some(metric) = &selector.metric else {
            continue;
        };
        let all = series(daemon, metric, time)?;
        for label in &selector.labels {
            if !all.iter().any(|s| s.get(label.as_str()).is_some()) {
                return Err(format!(
                    "selector {} names label `{label}`, which no {metric} series has",
                    selector.text
                ));
            }
        }
    }
    Ok(())
}

/// Runs every query; failures are retried for up to `patience` (the
/// counters are appended every second, and a rate needs two samples).
fn check_all(daemon: &TestDaemon, queries: &[PanelQuery], time: &TimeContext, patience: Duration) {
    let deadline = Instant::now() + patience;
    let mut pending: Vec<&PanelQuery> = queries.iter().collect();
    loop {
        let mut failures = Vec::new();
        let mut still = Vec::new();
        for q in pending {
            if let Err(e) = check_query(daemon, q, time) {
                failures.push(format!("{}\n    {e}", q.name()));
                still.push(q);
            }
        }
        if still.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{} of {} dashboard queries failed:\n{}",
                failures.len(),
                queries.len(),
                failures.join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(1));
        pending = still;
    }
}

// ---------------------------------------------------------------------------
// Generated usage

fn post(daemon: &TestDaemon, path: &str, body: &Value) {
    let (status, text) = daemon.post(
        path,
        "application/json",
        body.to_string().into_bytes(),
        &[AUTH],
    );
    assert_eq!(status, 200, "POST {path}: {text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON answer");
    assert_eq!(answer["data"]["rejected"], 0, "POST {path}: {answer}");
}

/// Agent names (one with a dot, which Grafana escapes in a regex matcher)
/// and workflow names of the generated usage and events.
const AGENTS: [&str; 3] = ["planner", "code-review.v2", "researcher"];
const WORKFLOWS: [&str; 2] = ["triage", "summarise"];

/// One wave of usage: several providers and models (one with dots in its
/// name, one the pricing table does not know), statuses, orgs (and none),
/// teams, users, agents, workflows and sessions, with durations.
fn usage_wave(wave: u64) -> Value {
    let models = [
        ("openai", "gpt-4o", 12_000, 600, 8_000),
        ("openai", "gpt-4.1-mini", 3_000, 300, 0),
        (
            "anthropic",
            "claude-sonnet-4-5-20250929",
            20_000,
            1_500,
            15_000,
        ),
        ("gemini", "gemini-2.5-flash", 5_000, 800, 0),
        ("openai", "gpt-9-preview", 100, 10, 0),
    ];
    let orgs = [Some("acme"), Some("globex"), Some("initech"), None];
    let teams = [Some("search"), Some("support"), None];
    let users = ["alice", "bob", "carol"];
    let statuses = ["ok", "ok", "ok", "error", "ok", "rate_limited"];
    let mut records = Vec::new();
    for i in 0..30u64 {
        let (provider, model, input, output, cached) = models[(i % 5) as usize];
        let mut r = serde_json::json!({
            "provider": provider,
            "model": model,
            "input_tokens": input + i * 10 + wave,
            "output_tokens": output + i,
            "cache_read_tokens": cached,
            "reasoning_tokens": output / 4,
            "duration_seconds": 0.05 * (1 + (i * 7 + wave) % 40) as f64,
            "status": statuses[((i + wave) % 6) as usize],
            "user": users[((i + wave) % 3) as usize],
            "agent": AGENTS[(i % 2) as usize],
            "workflow": WORKFLOWS[(i % 2) as usize],
            "session": format!("s-{}", i % 4),
        });
        if let Some(org) = orgs[(i % 4) as usize] {
            r["org"] = org.into();
        }
        if let Some(team) = teams[((i + wave) % 3) as usize] {
            r["team"] = team.into();
        }
        records.push(r);
    }
    Value::Array(records)
}

fn events_wave(wave: u64) -> Value {
    let mut events = Vec::new();
    for i in 0..12u64 {
        let status = if (i + wave).is_multiple_of(4) {
            "failed"
        } else {
            "ok"
        };
        let agent = AGENTS[(i % 3) as usize];
        let workflow = WORKFLOWS[(i % 2) as usize];
        events.push(
            serde_json::json!({"type": "agent_invocation", "agent": agent, "status": status}),
        );
        events.push(
            serde_json::json!({"type": "workflow_completion", "workflow": workflow, "status": status}),
        );
    }
    events.push(serde_json::json!({"type": "session_start", "session": format!("w-{wave}"), "user": "alice"}));
    events.push(serde_json::json!({"type": "session_end", "session": "s-3"}));
    Value::Array(events)
}

fn query_scalar(daemon: &TestDaemon, expr: &str) -> Option<f64> {
    let (_, body) = api_get(daemon, "/api/v1/query", &[("query", expr.to_string())]);
    let result = body["data"]["result"].as_array()?;
    result.first()?["value"][1].as_str()?.parse().ok()
}

// ---------------------------------------------------------------------------
// The tests

/// The dashboards are what Grafana imports: checked without a daemon.
#[test]
fn dashboards_are_valid_grafana_json() {
    let dashboards = load_dashboards();
    let errors: Vec<String> = dashboards.iter().flat_map(structure_errors).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let uids: BTreeSet<&str> = dashboards
        .iter()
        .filter_map(|d| d.json["uid"].as_str())
        .collect();
    assert_eq!(uids.len(), dashboards.len(), "two dashboards share a uid");
    // The test below needs something to run.
    for d in &dashboards {
        assert!(
            query_panels(&d.json).len() >= 10,
            "{}: too few panels",
            d.file
        );
    }
}

#[test]
fn grafana_interval_arithmetic() {
    // Grafana's own examples: 4 × 15s scrape interval is `1m0s`.
    assert_eq!(go_duration(60_000), "1m0s");
    assert_eq!(go_duration(4_000), "4s");
    assert_eq!(go_duration(5_400_000), "1h30m0s");
    assert_eq!(go_duration(1_500), "1.5s");
    assert_eq!(format_interval(60_000), "1m");
    assert_eq!(format_interval(15_000), "15s");
    assert_eq!(round_interval(600), 500);
    assert_eq!(round_interval(21_600), 20_000);
    let time = TimeContext {
        from_ms: 0,
        to_ms: 6 * 3_600_000,
    };
    // 6 h over 1500 points is 14.4 s, rounded to 15 s; the rate interval is
    // 15 s + the scrape interval.
    assert_eq!(time.step_ms(1_500), 15_000);
    assert_eq!(
        time.builtin("__rate_interval", 15_000).as_deref(),
        Some("16s")
    );
    assert_eq!(time.builtin("__range", 15_000).as_deref(), Some("21600s"));
    assert_eq!(regex_escape("gpt-4.1"), "gpt-4\\\\.1");
    let spans = referenced_variables("rate(x{a=~\"$a\", b=\"${b:raw}\"}[$__rate_interval]) [[c]]");
    assert_eq!(spans, ["a", "b", "__rate_interval", "c"]);
}

/// Every query of both dashboards, on generated usage, answers non-empty.
#[test]
fn every_dashboard_query_answers_on_generated_usage() {
    let dashboards = load_dashboards();
    let daemon = TestDaemon::start(CONFIG);

    // Two waves a few seconds apart, so rates and increases are not zero.
    for wave in 0..3u64 {
        post(&daemon, "/api/v1/usage", &usage_wave(wave));
        post(&daemon, "/api/v1/events", &events_wave(wave));
        let want = 30.0 * (wave + 1) as f64;
        let arrived = wait_for(Duration::from_secs(20), || {
            query_scalar(&daemon, "sum(llm_requests_total)") == Some(want)
        });
        assert!(
            arrived,
            "usage wave {wave} did not arrive\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(query_scalar(&daemon, "count(llm_budget_usd)"), Some(4.0));

    let to_ms = now_ms();
    let time = TimeContext {
        from_ms: to_ms - RANGE_MS,
        to_ms,
    };
    let mut total = 0;
    let mut promtool_exprs = Vec::new();
    for every_option in [false, true] {
        for dashboard in &dashboards {
            let variables = resolve_variables(&daemon, dashboard, &time, every_option)
                .unwrap_or_else(|e| panic!("{e}"));
            let queries = panel_queries(dashboard, &variables, &time);
            check_all(&daemon, &queries, &time, Duration::from_secs(30));
            total += queries.len();
            if !every_option {
                promtool_exprs.extend(queries.iter().map(|q| (q.name(), q.expr.clone())));
            }
        }
    }
    eprintln!("{total} dashboard queries answered");

    // The same expressions are Prometheus 2.42's PromQL: promtool parses
    // each as a recording rule's expr.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in promtool_exprs.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).expect("a string")
        ));
    }
    let path = dir.path().join("dashboards.yml");
    std::fs::write(&path, &rules).expect("writing the rules");
    let out = Command::new(reference_program("promtool"))
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("running promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool refused a dashboard expression:\n{stdout}\n{stderr}\n{}",
        promtool_exprs
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("dashboard:query_{i} = {name}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        stdout.contains(&format!("{} rules found", promtool_exprs.len())),
        "{stdout}"
    );
}
