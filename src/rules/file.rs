//! Rule files: Prometheus's rule-file format, read into compiled [`Group`]s.
//!
//! Reading is two stages, as everywhere in bellwether: the YAML is
//! deserialized into the `*Spec` structs with every unknown key, wrong type
//! and bad duration reported at its position (the config's machinery, see
//! `config::parse_document`), then each rule is checked the way Prometheus's
//! `rulefmt` checks it and compiled — PromQL parsed, labels sorted — so that
//! an invalid rule cannot reach the evaluator. A file with any error yields no
//! group at all: rule files are loaded whole or not at all.
//!
//! Error text follows `promtool check rules`:
//! `FILE:LINE:COL: group "NAME", rule N, "RULE": MESSAGE`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::values::PromDuration;
use crate::config::yaml::{Kind, Node, Pos};
use crate::model::{is_valid_label_name, is_valid_metric_name, Labels};

use super::alerting::AlertingRule;
use super::group::Group;
use super::recording::RecordingRule;
use super::Rule;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFileSpec {
    #[serde(default)]
    groups: Vec<GroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    #[serde(default)]
    name: String,
    #[serde(default)]
    interval: Option<PromDuration>,
    #[serde(default)]
    limit: u64,
    /// Prometheus 2.53's per-group query offset (not in 2.42's format).
    #[serde(default)]
    query_offset: Option<PromDuration>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    #[serde(default)]
    record: String,
    #[serde(default)]
    alert: String,
    #[serde(default)]
    expr: String,
    #[serde(default, rename = "for")]
    for_: Option<PromDuration>,
    #[serde(default)]
    keep_firing_for: Option<PromDuration>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// What groups inherit from the config.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `global.evaluation_interval`: the interval of groups that set none.
    pub default_interval: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_interval: Duration::from_secs(60),
        }
    }
}

/// Expands the `rule_files` globs into file names, sorted and without
/// duplicates. A pattern that matches nothing is not an error (Prometheus's
/// behaviour: a glob over an empty directory is a normal state).
pub fn expand_patterns(patterns: &[String]) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        match glob::glob(pattern) {
            Ok(paths) => {
                for path in paths {
                    match path {
                        Ok(p) => files.push(p),
                        Err(e) => errors.push(format!("{pattern}: {e}")),
                    }
                }
            }
            Err(e) => errors.push(format!("{pattern}: invalid glob: {e}")),
        }
    }
    files.sort();
    files.dedup();
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Loads every rule file named by the `rule_files` patterns. On any error in
/// any file, returns all errors and no groups.
pub fn load_files(patterns: &[String], options: &LoadOptions) -> Result<Vec<Group>, Vec<String>> {
    let files = expand_patterns(patterns)?;
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for file in &files {
        match load_file(file, options) {
            Ok(g) => groups.extend(g),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Loads one rule file.
pub fn load_file(path: &Path, options: &LoadOptions) -> Result<Vec<Group>, Vec<String>> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{origin}: cannot read rule file: {e}")])?;
    parse_rule_file(&text, &origin, options).map(|c| c.groups)
}

/// A checked rule file: its groups and what `check rules` reports about it.
pub struct CheckedFile {
    pub groups: Vec<Group>,
    /// Rules with the same name and labels (promtool's duplicate-rules lint).
    pub duplicates: Vec<(String, Labels)>,
}

/// Parses and checks rule-file text; `origin` names it in errors.
pub fn parse_rule_file(
    text: &str,
    origin: &str,
    options: &LoadOptions,
) -> Result<CheckedFile, Vec<String>> {
    let (parsed, findings) = crate::config::parse_document::<RuleFileSpec>(text);
    if !findings.is_empty() {
        return Err(findings.iter().map(|f| f.render(origin)).collect());
    }
    let Some((spec, root)) = parsed else {
        // An empty document: no groups, as Prometheus reads an empty file.
        return Ok(CheckedFile {
            groups: Vec::new(),
            duplicates: Vec::new(),
        });
    };
    let group_nodes = seq_items(root.get("groups"));
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = HashSet::new();
    for (j, group_spec) in spec.groups.into_iter().enumerate() {
        let group_node = group_nodes.get(j).copied();
        let group_pos = group_node.map(|n| n.pos);
        let at = |pos: Option<Pos>| match pos {
            Some(p) => format!("{origin}:{p}"),
            None => origin.to_string(),
        };
        if group_spec.name.is_empty() {
            errors.push(format!("{}: Groupname must not be empty", at(group_pos)));
        }
        if !names.insert(group_spec.name.clone()) {
            errors.push(format!(
                "{}: groupname: \"{}\" is repeated in the same file",
                at(group_pos),
                group_spec.name
            ));
        }
        let rule_nodes = seq_items(group_node.and_then(|n| n.get("rules")));
        let mut rules = Vec::new();
        for (i, rule_spec) in group_spec.rules.into_iter().enumerate() {
            let rule_node = rule_nodes.get(i).copied();
            match compile_rule(rule_spec, rule_node) {
                Ok(rule) => rules.push(rule),
                Err(problems) => {
                    for (pos, name, message) in problems {
                        errors.push(format!(
                            "{}: group {:?}, rule {}, {:?}: {}",
                            at(pos.or(rule_node.map(|n| n.pos))),
                            group_spec.name,
                            i + 1,
                            name,
                            message
                        ));
                    }
                }
            }
        }
        let interval = group_spec
            .interval
            .map(|d| d.as_duration())
            .filter(|d| !d.is_zero())
            .unwrap_or(options.default_interval);
        groups.push(Group::new(
            group_spec.name,
            origin.to_string(),
            interval,
            group_spec.limit as usize,
            group_spec
                .query_offset
                .map(|d| d.as_duration())
                .unwrap_or_default(),
            rules,
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let duplicates = find_duplicates(&groups);
    Ok(CheckedFile { groups, duplicates })
}

/// A problem with one rule: where, the rule's name, what.
type RuleProblem = (Option<Pos>, String, String);

fn compile_rule(spec: RuleSpec, node: Option<&Node>) -> Result<Rule, Vec<RuleProblem>> {
    let pos_of = |key: &str| node.and_then(|n| n.get(key)).map(|n| n.pos);
    let name = if spec.alert.is_empty() {
        spec.record.clone()
    } else {
        spec.alert.clone()
    };
    let mut problems: Vec<RuleProblem> = Vec::new();
    let mut problem = |pos: Option<Pos>, message: String| {
        problems.push((pos, name.clone(), message));
    };
    if !spec.record.is_empty() && !spec.alert.is_empty() {
        problem(
            pos_of("record"),
            "only one of 'record' and 'alert' must be set".into(),
        );
    }
    if spec.record.is_empty() && spec.alert.is_empty() {
        problem(
            pos_of("record").or(pos_of("alert")),
            "one of 'record' or 'alert' must be set".into(),
        );
    }
    let expr = if spec.expr.is_empty() {
        problem(pos_of("expr"), "field 'expr' must be set in rule".into());
        None
    } else {
        match crate::promql::parse(&spec.expr) {
            Ok(e) => Some(e),
            Err(e) => {
                problem(pos_of("expr"), format!("could not parse expression: {e}"));
                None
            }
        }
    };
    let recording = !spec.record.is_empty();
    if recording {
        if !spec.annotations.is_empty() {
            problem(
                pos_of("record"),
                "invalid field 'annotations' in recording rule".into(),
            );
        }
        if spec.for_.is_some_and(|d| !d.as_duration().is_zero()) {
            problem(
                pos_of("record"),
                "invalid field 'for' in recording rule".into(),
            );
        }
        if spec
            .keep_firing_for
            .is_some_and(|d| !d.as_duration().is_zero())
        {
            problem(
                pos_of("record"),
                "invalid field 'keep_firing_for' in recording rule".into(),
            );
        }
        if !is_valid_metric_name(&spec.record) {
            problem(
                pos_of("record"),
                format!("invalid recording rule name: {}", spec.record),
            );
        }
    }
    for name in spec.labels.keys() {
        if !is_valid_label_name(name) || name == crate::model::METRIC_NAME {
            problem(None, format!("invalid label name: {name}"));
        }
    }
    for name in spec.annotations.keys() {
        if !is_valid_label_name(name) {
            problem(None, format!("invalid annotation name: {name}"));
        }
    }
    if !spec.alert.is_empty() {
        for (kind, map) in [("label", &spec.labels), ("annotation", &spec.annotations)] {
            for (key, text) in map {
                if let Err(e) = crate::template::check_alert_template(&spec.alert, text) {
                    problem(None, format!("{kind} {key:?}: {e}"));
                }
            }
        }
    }
    let Some(expr) = expr.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    if recording {
        Ok(Rule::Recording(RecordingRule::new(
            spec.record,
            expr,
            spec.labels.into_iter().collect(),
        )))
    } else {
        Ok(Rule::Alerting(AlertingRule::new(
            spec.alert,
            expr,
            spec.for_.map(|d| d.as_duration()).unwrap_or_default(),
            spec.keep_firing_for
                .map(|d| d.as_duration())
                .unwrap_or_default(),
            spec.labels.into_iter().collect(),
            spec.annotations.into_iter().collect(),
        )))
    }
}

fn seq_items(node: Option<&Node>) -> Vec<&Node> {
    match node.map(|n| &n.kind) {
        Some(Kind::Seq(items)) => items.iter().collect(),
        _ => Vec::new(),
    }
}

/// promtool's duplicate-rules lint: rules with the same name and labels,
/// each reported once, sorted.
fn find_duplicates(groups: &[Group]) -> Vec<(String, Labels)> {
    let mut all: Vec<(String, Labels)> = groups
        .iter()
        .flat_map(|g| g.rules())
        .map(|r| (r.name().to_string(), r.rule_labels()))
        .collect();
    all.sort();
    let mut duplicates: Vec<(String, Labels)> = Vec::new();
    for pair in all.windows(2) {
        if pair[0] == pair[1] && duplicates.last() != Some(&pair[1]) {
            duplicates.push(pair[1].clone());
        }
    }
    duplicates
}
