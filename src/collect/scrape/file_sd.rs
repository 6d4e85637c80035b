//! File-based service discovery (`file_sd_configs`), as Prometheus's
//! `discovery/file/file.go`.
//!
//! This file owns reading target files (JSON or YAML lists of
//! `{targets: [...], labels: {...}}`), expanding globs, and noticing changes.
//! It hands complete target-group lists to a callback and knows nothing about
//! scrape loops.
//!
//! Change detection: Prometheus watches files with inotify and also re-reads
//! them every `refresh_interval`. bellwether polls instead: every
//! [`POLL_INTERVAL`] (5 s) it re-expands the globs and compares each file's
//! modification time and size, re-reading only changed files; every
//! `refresh_interval` it re-reads all of them. A file that cannot be read or
//! parsed keeps its last good target groups (and counts in
//! `bellwether_scrape_file_sd_read_errors_total`), as in Prometheus; a file
//! that disappears takes its groups with it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::metrics::ScrapeMetrics;
use super::target::TargetGroup;
use crate::config::FileSdConfig;
use crate::model::is_valid_label_name;

/// How often file modification times are checked.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The label carrying the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

#[derive(Debug, thiserror::Error)]
pub enum FileSdError {
    #[error("file_sd: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("file_sd: {path}: invalid file extension: use .json, .yml or .yaml")]
    Extension { path: PathBuf },
    #[error("file_sd: {path}: not a list of {{targets, labels}} groups: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("file_sd: {path}: group {index}: {message}")]
    Invalid {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("file_sd: invalid glob {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads one target file. Groups are named `path:index` like Prometheus's.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, FileSdError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileSdError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let raw: Vec<Option<RawGroup>> = match extension {
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        "yml" | "yaml" => serde_saphyr::from_str(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(FileSdError::Extension {
                path: path.to_path_buf(),
            })
        }
    }
    .map_err(|message| FileSdError::Syntax {
        path: path.to_path_buf(),
        message,
    })?;
    let display = path.display().to_string();
    let mut groups = Vec::with_capacity(raw.len());
    for (index, group) in raw.into_iter().enumerate() {
        let invalid = |message: String| FileSdError::Invalid {
            path: path.to_path_buf(),
            index,
            message,
        };
        let Some(group) = group else {
            return Err(invalid("nil target group item found".into()));
        };
        if let Some(name) = group.labels.keys().find(|n| !is_valid_label_name(n)) {
            return Err(invalid(format!("{name:?} is not a valid label name")));
        }
        let mut labels = group.labels;
        labels.insert(FILEPATH_LABEL.to_string(), display.clone());
        groups.push(TargetGroup {
            source: format!("{display}:{index}"),
            targets: group.targets,
            labels,
        });
    }
    Ok(groups)
}

/// Expands the configured paths/globs to existing files, sorted.
fn expand(patterns: &[String]) -> (BTreeSet<PathBuf>, Vec<FileSdError>) {
    let mut files = BTreeSet::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        match glob::glob(pattern) {
            Ok(paths) => files.extend(paths.flatten().filter(|p| p.is_file())),
            Err(e) => errors.push(FileSdError::Pattern {
                pattern: pattern.clone(),
                message: e.to_string(),
            }),
        }
    }
    (files, errors)
}

/// What identifies a file's version for the poll: mtime and size.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A file's version (mtime, size) when read, and its last good groups.
type FileEntry = (Option<(SystemTime, u64)>, Vec<TargetGroup>);

/// The discovery state of one `file_sd_configs` entry.
pub struct FileDiscovery {
    config: FileSdConfig,
    /// Last good groups and the stamp they were read at, per file.
    files: BTreeMap<PathBuf, FileEntry>,
    metrics: ScrapeMetrics,
}

impl FileDiscovery {
    pub fn new(config: FileSdConfig, metrics: ScrapeMetrics) -> FileDiscovery {
        FileDiscovery {
            config,
            files: BTreeMap::new(),
            metrics,
        }
    }

    /// Re-expands the globs and re-reads changed files (all files if `full`).
    /// Returns whether the groups changed.
    pub fn refresh(&mut self, full: bool) -> bool {
        let (paths, errors) = expand(&self.config.files);
        for error in errors {
            self.metrics.file_sd_read_errors.inc();
            tracing::error!(error = %error, "file_sd glob failed");
        }
        let before = self.groups();
        self.files.retain(|path, _| paths.contains(path));
        for path in paths {
            let current = stamp(&path);
            let unchanged = self
                .files
                .get(&path)
                .is_some_and(|(seen, _)| *seen == current && current.is_some());
            if unchanged && !full {
                continue;
            }
            match read_file(&path) {
                Ok(groups) => {
                    self.files.insert(path, (current, groups));
                }
                Err(error) => {
                    self.metrics.file_sd_read_errors.inc();
                    tracing::error!(error = %error, "file_sd read failed; keeping the last good targets of this file");
                    // Remember the stamp so a bad file is not re-read (and
                    // re-counted) every poll; keep its last good groups.
                    let last_good = self.files.remove(&path).map(|(_, g)| g).unwrap_or_default();
                    self.files.insert(path, (current, last_good));
                }
            }
        }
        self.groups() != before
    }

    /// All groups from all files, in path order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|(_, g)| g.iter().cloned())
            .collect()
    }

    /// Polls until `shutdown` fires, calling `on_change` with the full group
    /// list after every change. The caller does the first [`refresh`](Self::refresh)
    /// itself, so a job starts with its file targets already known.
    pub async fn run(
        mut self,
        on_change: Arc<dyn Fn(Vec<TargetGroup>) + Send + Sync>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let refresh_every = self
            .config
            .refresh_interval
            .as_duration()
            .max(POLL_INTERVAL);
        let mut last_full = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            let full = last_full.elapsed() >= refresh_every;
            if full {
                last_full = tokio::time::Instant::now();
            }
            if self.refresh(full) {
                on_change(self.groups());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::PromDuration;

    fn discovery(dir: &Path, pattern: &str) -> FileDiscovery {
        FileDiscovery::new(
            FileSdConfig {
                files: vec![dir.join(pattern).display().to_string()],
                refresh_interval: PromDuration::from_secs(300),
            },
            ScrapeMetrics::default(),
        )
    }

    #[test]
    fn reads_json_and_yaml_with_globs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: [h3:9100]\n").unwrap();
        std::fs::write(dir.path().join("c.txt"), "ignored by the glob").unwrap();
        let mut d = discovery(dir.path(), "*.*");
        d.refresh(true);
        let groups = d.groups();
        // c.txt matches the glob but has a bad extension: counted, skipped.
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].targets, vec!["h1:9100", "h2:9100"]);
        assert_eq!(
            groups[0].labels.get("env").map(String::as_str),
            Some("prod")
        );
        assert!(groups[0].labels[FILEPATH_LABEL].ends_with("a.json"));
        assert!(groups[1].source.ends_with("b.yml:0"));
        assert_eq!(d.metrics.file_sd_read_errors.get(), 1);
    }

    #[test]
    fn bad_file_keeps_last_good_groups_and_deleted_file_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, r#"[{"targets": ["h1:1"]}]"#).unwrap();
        let mut d = discovery(dir.path(), "t.json");
        assert!(d.refresh(true));
        std::fs::write(&path, "[{not json").unwrap();
        assert!(!d.refresh(true), "a bad file keeps its last good groups");
        assert_eq!(d.groups()[0].targets, vec!["h1:1"]);
        assert!(d.metrics.file_sd_read_errors.get() >= 1);
        std::fs::write(&path, r#"[{"targets": ["h2:1"]}, {"targets": ["h3:1"]}]"#).unwrap();
        assert!(d.refresh(true));
        assert_eq!(d.groups().len(), 2);
        std::fs::remove_file(&path).unwrap();
        assert!(d.refresh(false));
        assert!(d.groups().is_empty());
    }

    #[test]
    fn invalid_label_names_and_nulls_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, "- targets: [a:1]\n  labels: {\"bad-name\": x}\n").unwrap();
        assert!(read_file(&path)
            .unwrap_err()
            .to_string()
            .contains("not a valid label name"));
        std::fs::write(&path, "- null\n").unwrap();
        assert!(read_file(&path)
            .unwrap_err()
            .to_string()
            .contains("nil target group"));
    }
}
