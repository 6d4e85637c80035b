//! Alert templates: Prometheus 2.42's expansion of alerting-rule `labels`
//! and `annotations` (Go text/template plus Prometheus's function map),
//! byte for byte. Used by the rule engine (src/rules/) and later by
//! notifications.
//!
//! Parsing is the `gotmpl` crate's (a Rust port of Go's text/template
//! lexer and parser) plus the checks Go's parser makes that gotmpl leaves
//! out (undefined functions and variables, unbalanced `{{end}}`). Execution
//! is our own walk of gotmpl's AST (exec.rs) over Go-typed values
//! (value.rs), with Go's `fmt` (gofmt.rs) and Prometheus's functions
//! (functions.rs): gotmpl's untyped executor cannot tell a
//! `map[string]string` (missing key reads `""`) from a struct, prints floats
//! the Rust way and reports errors without Go's node positions.
//!
//! This module owns template text → string. It must not evaluate rules or
//! know about alert state: the `query` function calls back through
//! [`QueryFunc`].

mod check;
mod exec;
mod functions;
mod gofmt;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

pub use gofmt::{format_float, format_float_v};

/// One sample of a `query` result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The `query` template function calls back into the PromQL engine.
pub trait QueryFunc {
    /// Evaluates `expr` at the alert's evaluation time; Err is the engine's
    /// message (shown after `error calling query: `).
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

/// Data of an alert template: Prometheus's `.Labels`, `.ExternalLabels`,
/// `.ExternalURL`, `.Value`.
pub struct AlertTemplateData<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
}

/// The convenience variables Prometheus defines before every alert template
/// (rules/alerting.go). Error columns on line 1 count these bytes too.
const PREAMBLE: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Parsed templates by (template name, full text): a rule's annotations are
/// expanded every evaluation for every alert.
type Cache = HashMap<(String, String), Arc<Result<exec::Parsed, String>>>;
static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
/// Past this many distinct templates the cache starts over (rule files are
/// bounded; this only guards against unbounded growth from reloads).
const CACHE_LIMIT: usize = 4096;

fn parse_cached(name: &str, text: &str) -> Arc<Result<exec::Parsed, String>> {
    let key = (name.to_string(), text.to_string());
    if let Some(hit) = CACHE.lock().as_ref().and_then(|c| c.get(&key)) {
        return Arc::clone(hit);
    }
    let parsed = Arc::new(check::parse(name, text, functions::Dialect::Prometheus));
    let mut guard = CACHE.lock();
    let cache = guard.get_or_insert_with(HashMap::new);
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(key, Arc::clone(&parsed));
    parsed
}

fn alert_template_name(alert_name: &str) -> String {
    format!("__alert_{alert_name}")
}

/// Expands one label or annotation value of alerting rule `alert_name`
/// exactly as Prometheus does: the `$labels`/`$externalLabels`/
/// `$externalURL`/`$value` preamble, template name `__alert_<alertname>`,
/// missingkey=zero semantics. Err(message) carries Go's message text; the
/// caller renders `<error expanding template: {message}>`.
///
/// `ts_ms` is the evaluation time; the `query` callback already evaluates
/// at it, so it is accepted for symmetry with Prometheus's expander.
pub fn expand_alert_template(
    alert_name: &str,
    text: &str,
    data: &AlertTemplateData,
    ts_ms: i64,
    query: &dyn QueryFunc,
) -> Result<String, String> {
    let _ = ts_ms;
    let name = alert_template_name(alert_name);
    let full = format!("{PREAMBLE}{text}");
    let parsed = parse_cached(&name, &full);
    let parsed = match parsed.as_ref() {
        Ok(p) => p,
        Err(e) => return Err(format!("error parsing template {name}: {e}")),
    };
    let root = value::Value::Data(Arc::new(value::DataValue {
        labels: Arc::new(data.labels.clone()),
        external_labels: Arc::new(data.external_labels.clone()),
        external_url: Arc::from(data.external_url),
        value: data.value,
    }));
    let ctx = functions::Context {
        query,
        external_url: data.external_url,
        dialect: functions::Dialect::Prometheus,
        escape_html: false,
    };
    exec::execute(parsed, root, &ctx).map_err(|e| format!("error executing template {name}: {e}"))
}

/// What `promtool check rules` checks: the template (with the same
/// preamble) parses. Err = Go-worded parse error.
pub fn check_alert_template(alert_name: &str, text: &str) -> Result<(), String> {
    let name = alert_template_name(alert_name);
    let full = format!("{PREAMBLE}{text}");
    match parse_cached(&name, &full).as_ref() {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

pub use value::{AmAlert, AmData, GO_ZERO_TIME_MS};

/// Alertmanager 0.25's notification templates: a library of `{{define}}`s
/// (bellwether's defaults, then the user's `templates:` files, later names
/// replacing earlier ones) and the texts of receiver fields executed
/// against it with Alertmanager's data (`.Receiver`, `.Alerts.Firing`,
/// `.CommonLabels.SortedPairs`, …) and function map.
pub struct NotifyTemplates {
    defines: BTreeMap<String, Arc<gotmpl::parse::ListNode>>,
    /// Parsed field texts merged with the library.
    cache: Mutex<HashMap<String, Arc<Result<exec::Parsed, String>>>>,
}

impl std::fmt::Debug for NotifyTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyTemplates")
            .field("defines", &self.defines.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Alertmanager templates have no `query`.
struct NoQuery;

impl QueryFunc for NoQuery {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        Err("query is not available in notification templates".into())
    }
}

impl NotifyTemplates {
    /// Parses `files` (name, text) in order; Err names the file with Go's
    /// parse message. Text outside `{{define}}`s is ignored, as in
    /// Alertmanager.
    pub fn new(files: &[(String, String)]) -> Result<NotifyTemplates, String> {
        let mut defines = BTreeMap::new();
        for (name, text) in files {
            let parsed = check::parse(name, text, functions::Dialect::Alertmanager)?;
            defines.extend(parsed.defines);
        }
        Ok(NotifyTemplates {
            defines,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a template of this name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.defines.contains_key(name)
    }

    /// Alertmanager's `ExecuteTextString`: `text` executed with `data`
    /// (text/template: no HTML escaping); an empty text gives "".
    pub fn execute_text(&self, text: &str, data: &AmData) -> Result<String, String> {
        self.execute(text, data, false)
    }

    /// Alertmanager's `ExecuteHTMLString` (html/template), approximated:
    /// every action's output is HTML-escaped as html/template escapes text
    /// (`safeHtml` values are not), whatever the context.
    pub fn execute_html(&self, text: &str, data: &AmData) -> Result<String, String> {
        self.execute(text, data, true)
    }

    fn execute(&self, text: &str, data: &AmData, escape_html: bool) -> Result<String, String> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let parsed = {
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            Arc::clone(cache.entry(text.to_string()).or_insert_with(|| {
                Arc::new(
                    check::parse("", text, functions::Dialect::Alertmanager).map(|mut p| {
                        let own = std::mem::take(&mut p.defines);
                        p.defines = self.defines.clone();
                        p.defines.extend(own);
                        p
                    }),
                )
            }))
        };
        let parsed = match parsed.as_ref() {
            Ok(p) => p,
            Err(e) => return Err(e.clone()),
        };
        let ctx = functions::Context {
            query: &NoQuery,
            external_url: &data.external_url,
            dialect: functions::Dialect::Alertmanager,
            escape_html,
        };
        exec::execute(parsed, value::Value::AmData(Arc::new(data.clone())), &ctx)
    }
}
