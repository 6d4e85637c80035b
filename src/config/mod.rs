//! Configuration: one YAML file, parsed into typed structs, validated, with
//! every problem reported at once as `file:line:col: key.path: message`.
//!
//! This module owns reading and checking the config; it must not start
//! anything or touch the network (file checks only read). The pipeline:
//!
//! 1. [`yaml::parse`] builds a tree of nodes, each knowing its key path and
//!    position (from granit-parser's events, the parser under serde-saphyr).
//! 2. [`yaml::expand_env`] expands `${VAR}` in scalar values.
//! 3. [`de::deserialize_all`] deserializes [`Config`] with serde from the tree,
//!    removing each node that fails and retrying, so that unknown keys, wrong
//!    types, bad durations and regexes are all reported, not just the first.
//! 4. [`validate::validate`] applies Prometheus's semantic rules and derived
//!    defaults and checks referenced files, locating findings through the tree.
//!
//! Findings are sorted by position and rendered one per line.

mod de;
mod display;
mod keys;
mod types;
mod validate;
pub mod values;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

pub use display::{masked_yaml, masked_yaml_section};
pub(crate) use keys::did_you_mean;
pub use types::*;
pub use validate::{check_listen_address, check_target_address, is_valid_label_name};

use std::collections::HashSet;
use std::path::Path;

use yaml::Finding;

/// The config the daemon runs with when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.yml");

/// Every problem found in a config file, each locating itself as
/// `file:line:col: key.path: message` (one per line in `Display`).
#[derive(Debug, thiserror::Error)]
#[error("{}", .errors.join("\n"))]
pub struct ConfigError {
    pub errors: Vec<String>,
}

/// Reads, parses and validates a config file. Relative paths in it (rule
/// files, file_sd files, password and certificate files) are taken relative to
/// the file's directory, as Prometheus does, and returned resolved.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        errors: vec![format!("{}: cannot read config file: {e}", path.display())],
    })?;
    let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    load(&text, &path.display().to_string(), base_dir, &|name| {
        std::env::var(name).ok()
    })
}

/// Parses and validates config text; `origin` names it in error messages.
/// Relative paths stay relative to the working directory.
pub fn load_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    load(text, origin, None, &|name| std::env::var(name).ok())
}

/// The whole pipeline, with the environment passed in so tests need not set
/// process-wide variables.
fn load(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (root, mut findings) = yaml::parse(text);
    let config = root.and_then(|mut root| {
        let mut unset = Vec::new();
        yaml::expand_env(&mut root, env, &mut findings, &mut unset);
        let mut removed = HashSet::new();
        for id in unset {
            if let Some(Some(entry)) = root.remove(id, false) {
                removed.insert(entry);
            }
        }
        let mut config = de::deserialize_all::<Config>(&mut root, &mut findings, removed)?;
        validate::validate(&mut config, &root, base_dir, &mut findings);
        Some(config)
    });
    match config {
        Some(config) if findings.is_empty() => Ok(config),
        _ => Err(render(origin, findings)),
    }
}

/// Parses another YAML document of ours (a rule file, a rule test file) into
/// `T` with the config's machinery: every unknown key, wrong type and bad
/// duration reported with its position. Returns the value (if the root could
/// be read) and the positioned tree, so the caller can locate its own
/// semantic checks. No `${VAR}` expansion: Prometheus does none in rule files.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(
    text: &str,
) -> (Option<(T, yaml::Node)>, Vec<Finding>) {
    let (root, mut findings) = yaml::parse(text);
    let parsed = root.and_then(|mut root| {
        let value = de::deserialize_all::<T>(&mut root, &mut findings, HashSet::new())?;
        Some((value, root))
    });
    (parsed, findings)
}

fn render(origin: &str, mut findings: Vec<Finding>) -> ConfigError {
    findings.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
    findings.dedup();
    let mut errors: Vec<String> = findings.iter().map(|f| f.render(origin)).collect();
    if errors.is_empty() {
        // Cannot happen (a config is only refused for a finding), but an
        // empty error list would read as success.
        errors.push(format!("{origin}: invalid config"));
    }
    ConfigError { errors }
}
