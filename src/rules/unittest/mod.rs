//! `bellwether test rules FILE...`: runs promtool's rule unit-test files
//! with promtool 2.42's semantics, verdicts and report layout.
//!
//! This module owns the test-file format (`file.rs`), the series notation
//! (`series.rs`), the comparison and failure text (`report.rs`) and the test
//! loop below. It drives the rule engine ([`Group::eval`] at explicit
//! timestamps) over a private store in a temporary directory; it must not
//! evaluate rules itself or touch the daemon's store.
//!
//! The loop, per test group, as promtool's `testGroup.test` runs it:
//!
//! 1. the input series are expanded (sample `i` at `i × interval`, from 0);
//! 2. every `evaluation_interval` from 0 up to the largest `eval_time`, the
//!    samples up to that time are appended, then all groups are evaluated in
//!    `group_eval_order` (groups not named rank with the first one); a rule
//!    error ends the test group;
//! 3. after the evaluation at `ts`, the alert tests whose `eval_time` lies in
//!    `[ts, ts + evaluation_interval)` compare the *firing* alerts of their
//!    alertname (pending ones are not reported);
//! 4. at the end, each `promql_expr_test` is queried at its `eval_time`, seeing
//!    only the samples appended so far (none after the last evaluation).

pub mod file;
pub mod report;
pub mod series;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::promql::{self, Engine, EngineOptions, Value};
use crate::rules::{AlertState, EvalContext, Group, LoadOptions};
use crate::storage::{Storage, StorageOptions};

use file::{GoDuration, TestGroup};
use report::{AlertView, SampleView};
use series::InputSeries;

/// promtool's default `evaluation_interval`.
const DEFAULT_EVALUATION_INTERVAL_MS: i64 = 60_000;
/// promtool's test engine: `MaxSamples: 10000`, `Timeout: 100s`.
const TEST_MAX_SAMPLES: usize = 10_000;
const TEST_QUERY_TIMEOUT: Duration = Duration::from_secs(100);

/// Runs every file, printing promtool's report (progress and successes on
/// `out`, failures on `err`). Returns whether all files passed.
pub fn run_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let mut all_passed = true;
    for path in files {
        let _ = writeln!(out, "Unit Testing:  {}", path.display());
        match run_file(path, err) {
            Ok(()) => {
                let _ = writeln!(out, "  SUCCESS");
            }
            Err(errors) => {
                let _ = writeln!(err, "  FAILED:");
                for e in errors {
                    let _ = writeln!(err, "{e}");
                    let _ = writeln!(out);
                }
                all_passed = false;
            }
        }
        let _ = writeln!(out);
    }
    all_passed
}

/// One test file: every test group runs; all their failures are returned.
fn run_file(path: &Path, err: &mut dyn Write) -> Result<(), Vec<String>> {
    let (test_file, rule_files, warnings) = file::load(path).map_err(|e| vec![e])?;
    for w in warnings {
        let _ = writeln!(err, "{w}");
    }
    let evaluation_interval_ms = match test_file.evaluation_interval.millis() {
        0 => DEFAULT_EVALUATION_INTERVAL_MS,
        ms => ms,
    };
    let mut order: HashMap<&str, usize> = HashMap::new();
    for (i, name) in test_file.group_eval_order.iter().enumerate() {
        if order.insert(name.as_str(), i).is_some() {
            return Err(vec![format!(
                "group name repeated in evaluation order: {name}"
            )]);
        }
    }
    let mut errors = Vec::new();
    for group in &test_file.tests {
        errors.extend(run_test_group(
            group,
            evaluation_interval_ms,
            &order,
            &rule_files,
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A store in a fresh temporary directory, removed on drop.
struct ScratchStore {
    storage: Storage,
    dir: PathBuf,
}

impl ScratchStore {
    fn open() -> Result<ScratchStore, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "bellwether-test-rules-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("creating the scratch store {}: {e}", dir.display()))?;
        let mut options = StorageOptions::new(&dir);
        // Test data sits at the Unix epoch: nothing may be refused as too old.
        options.retention = Duration::from_secs(1000 * 365 * 86400);
        match Storage::open(options) {
            Ok(storage) => Ok(ScratchStore { storage, dir }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(format!("opening the scratch store {}: {e}", dir.display()))
            }
        }
    }
}

impl Drop for ScratchStore {
    fn drop(&mut self) {
        let _ = self.storage.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Appends each input series' samples as the evaluation time advances.
struct InputFeeder {
    series: Vec<InputSeries>,
    /// Per series, how many samples are already appended.
    next: Vec<usize>,
}

impl InputFeeder {
    fn new(series: Vec<InputSeries>) -> InputFeeder {
        let next = vec![0; series.len()];
        InputFeeder { series, next }
    }

    /// Appends every sample at or before `t` not appended yet, in one commit.
    /// A series without any label cannot be stored (Prometheus's TSDB
    /// refuses it, failing the test); its samples are dropped with an error.
    fn append_until(&mut self, t: i64, storage: &Storage) -> Result<(), String> {
        let mut appender = storage.appender();
        let mut empty_labelset = false;
        for (series, next) in self.series.iter().zip(self.next.iter_mut()) {
            while let Some(&(st, v)) = series.samples.get(*next) {
                if st > t {
                    break;
                }
                if series.labels.is_empty() {
                    empty_labelset = true;
                } else {
                    appender.add(series.labels.clone(), st, v);
                }
                *next += 1;
            }
        }
        appender
            .commit()
            .map_err(|e| format!("appending input series: {e}"))?;
        if empty_labelset {
            return Err("empty labelset: invalid sample".to_string());
        }
        Ok(())
    }
}

/// One entry of `tests`. Returns its failures (empty when it passed).
fn run_test_group(
    group: &TestGroup,
    evaluation_interval_ms: i64,
    order: &HashMap<&str, usize>,
    rule_files: &[PathBuf],
) -> Vec<String> {
    let interval_ms = group.interval.millis();
    let input = match series::load_input_series(
        interval_ms,
        group
            .input_series
            .iter()
            .map(|s| (s.series.as_str(), s.values.as_str())),
    ) {
        Ok(input) => input,
        Err(e) => return vec![e.to_string()],
    };

    let scratch = match ScratchStore::open() {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let engine = Engine::new(
        scratch.storage.clone(),
        EngineOptions {
            max_samples: TEST_MAX_SAMPLES,
            timeout: TEST_QUERY_TIMEOUT,
            no_step_subquery_interval_ms: evaluation_interval_ms,
            ..EngineOptions::default()
        },
    );
    let ctx = EvalContext {
        engine: engine.clone(),
        storage: scratch.storage.clone(),
        external_labels: group
            .external_labels
            .iter()
            .map(|(k, v)| (k.0.clone(), v.0.clone()))
            .collect::<BTreeMap<_, _>>(),
        external_url: group.external_url.0.clone(),
        template_errors: Default::default(),
    };

    let groups = match load_groups(rule_files, interval_ms, order) {
        Ok(groups) => groups,
        Err(errors) => return errors,
    };

    // The alert tests by eval_time, and which alertnames each time asks about.
    let mut alert_times: BTreeMap<i64, Vec<&file::AlertTestCase>> = BTreeMap::new();
    for case in &group.alert_rule_test {
        if case.alertname.as_str().is_empty() {
            let in_group = if group.name.as_str().is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", group.name)
            };
            return vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                case.eval_time
            )];
        }
        alert_times
            .entry(case.eval_time.millis())
            .or_default()
            .push(case);
    }
    let max_eval_time = group
        .alert_rule_test
        .iter()
        .map(|c| c.eval_time.millis())
        .chain(group.promql_expr_test.iter().map(|c| c.eval_time.millis()))
        .max()
        .unwrap_or(0);

    let mut feeder = InputFeeder::new(input);
    let mut errors = Vec::new();
    let mut pending_alert_times = alert_times.into_iter().peekable();
    let mut ts = 0i64;
    while ts <= max_eval_time {
        if let Err(e) = feeder.append_until(ts, &scratch.storage) {
            errors.push(e);
        }
        let mut eval_errors = Vec::new();
        for g in &groups {
            g.eval(ts, &ctx, Duration::ZERO);
            for rule in g.rules() {
                if let Some(e) = rule.status().last_error {
                    eval_errors.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        rule.name(),
                        report::go_time_duration(ts)
                    ));
                }
            }
        }
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return errors;
        }

        // Alert tests whose eval_time falls in [ts, ts + interval).
        while let Some((t, _)) = pending_alert_times.peek() {
            if !(*t >= ts && *t < ts.saturating_add(evaluation_interval_ms)) {
                break;
            }
            let Some((t, cases)) = pending_alert_times.next() else {
                break;
            };
            errors.extend(check_alerts(group, &groups, t, &cases));
        }
        match ts.checked_add(evaluation_interval_ms) {
            Some(next) => ts = next,
            None => break,
        }
    }

    for case in &group.promql_expr_test {
        if let Some(e) = check_expression(case, &engine) {
            errors.push(e);
        }
    }
    errors
}

/// Loads the rule files for one test group (promtool loads them afresh for
/// each), ordered by `group_eval_order`: named groups in the order given,
/// unnamed groups ranking with the first one (a stable sort keeps file order
/// among equals, one of the orders promtool may pick).
fn load_groups(
    rule_files: &[PathBuf],
    interval_ms: i64,
    order: &HashMap<&str, usize>,
) -> Result<Vec<Group>, Vec<String>> {
    let options = LoadOptions {
        default_interval: if interval_ms > 0 {
            Duration::from_millis(interval_ms as u64)
        } else {
            LoadOptions::default().default_interval
        },
    };
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in rule_files {
        match crate::rules::load_file(path, &options) {
            Ok(g) => groups.extend(g),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    groups.sort_by_key(|g| order.get(g.name()).copied().unwrap_or(0));
    Ok(groups)
}

/// Compares the firing alerts with the alert tests of one eval_time.
fn check_alerts(
    group: &TestGroup,
    groups: &[Group],
    eval_time: i64,
    cases: &[&file::AlertTestCase],
) -> Vec<String> {
    let names: HashSet<&str> = cases.iter().map(|c| c.alertname.as_str()).collect();
    // One alertname may belong to rules in several groups: collect them all.
    let mut firing: HashMap<&str, Vec<AlertView>> = HashMap::new();
    for g in groups {
        for rule in g.alerting_rules() {
            let Some(name) = names.get(rule.name()) else {
                continue;
            };
            let views = firing.entry(name).or_default();
            for alert in rule.active_alerts() {
                if alert.state != AlertState::Firing {
                    continue;
                }
                let mut annotations = alert.annotations.clone();
                annotations.sort_by(|a, b| a.0.cmp(&b.0));
                views.push(AlertView {
                    labels: report::raw_labels(&alert.labels),
                    annotations,
                });
            }
        }
    }
    let mut errors = Vec::new();
    for case in cases {
        let alertname = case.alertname.as_str();
        let expected = case
            .exp_alerts
            .iter()
            .map(|a| {
                let mut labels: BTreeMap<&str, &str> = a
                    .exp_labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                labels.insert("alertname", alertname);
                AlertView {
                    labels: report::raw_from_pairs(labels),
                    annotations: report::raw_from_pairs(
                        a.exp_annotations
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                    ),
                }
            })
            .collect();
        let got = firing.get(alertname).cloned().unwrap_or_default();
        if let Some(e) = report::compare_alerts(
            group.name.as_str(),
            alertname,
            &GoDuration(eval_time).to_string(),
            expected,
            got,
        ) {
            errors.push(e);
        }
    }
    errors
}

/// Runs one `promql_expr_test`; returns its failure, if any.
fn check_expression(case: &file::PromqlTestCase, engine: &Engine) -> Option<String> {
    let expr_text = case.expr.as_str();
    let time = case.eval_time.to_string();
    let fail = |e: String| {
        Some(format!(
            "    expr: {}, time: {time}, err: {e}",
            crate::api::prometheus::go_quote(expr_text)
        ))
    };
    let expr = match promql::parse(expr_text) {
        Ok(expr) => expr,
        Err(e) => return fail(e),
    };
    let got = match engine.instant_query(&expr, case.eval_time.millis(), None) {
        Ok(Value::Vector(samples)) => samples
            .into_iter()
            .map(|s| SampleView {
                labels: report::raw_labels(&s.labels),
                value: s.v,
            })
            .collect(),
        Ok(Value::Scalar { v, .. }) => vec![SampleView {
            labels: Vec::new(),
            value: v,
        }],
        Ok(_) => return fail("rule result is not a vector or scalar".to_string()),
        Err(e) => return fail(e.to_string()),
    };
    let mut expected = Vec::with_capacity(case.exp_samples.len());
    for sample in &case.exp_samples {
        match series::parse_metric(sample.labels.as_str()) {
            Ok(labels) => expected.push(SampleView {
                labels,
                value: sample.value.0,
            }),
            Err(e) => {
                return fail(format!(
                    "labels {}: {e}",
                    crate::api::prometheus::go_quote(sample.labels.as_str())
                ))
            }
        }
    }
    report::compare_samples(expr_text, &time, expected, got)
}
