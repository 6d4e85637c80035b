//! Relabeling (`relabel_configs`, `metric_relabel_configs`) with Prometheus
//! 2.42's semantics (`model/relabel/relabel.go`).
//!
//! This file owns applying a list of [`RelabelConfig`] steps to one label set.
//! It does not parse or validate configs (src/config does) and knows nothing
//! about targets or samples.
//!
//! Semantics worth knowing, each taken from Prometheus:
//! * the source value is the source labels' values joined by `separator`
//!   (an absent label reads as `""`);
//! * regexes are anchored at both ends (the config type compiles them so);
//! * `replace`: no match leaves the labels alone; `target_label` and
//!   `replacement` are expanded like Go's `Regexp.Expand` (`$1`, `${1}`,
//!   `${name}`, `$$`; an unknown group is empty); if the expanded target is
//!   not a valid label name, or the expanded value is empty, the label named
//!   by the *unexpanded* `target_label` is deleted (Prometheus 2.42 does exactly
//!   this, which makes a templated target label a no-op in those cases);
//! * `lowercase`/`uppercase`/`hashmod` set `target_label`; an empty result
//!   removes it; `hashmod` is the big-endian value of the last 8 bytes of the
//!   MD5 of the source value, modulo `modulus`;
//! * `labelmap` renames matching label names (replacement expanded against
//!   the name) and keeps the original; later matches win;
//! * `keep`/`drop`/`keepequal`/`dropequal` end processing with `None` when they
//!   drop the set.

use md5::{Digest, Md5};

use crate::config::{RelabelAction, RelabelConfig};
use crate::model::{is_valid_label_name, Labels};

/// Applies `configs` in order. `None` means the label set was dropped.
pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    let mut current = labels.clone();
    for config in configs {
        current = relabel_step(current, config)?;
    }
    Some(current)
}

fn source_value(labels: &Labels, config: &RelabelConfig) -> String {
    let mut value = String::new();
    for (i, name) in config.source_labels.iter().enumerate() {
        if i > 0 {
            value.push_str(&config.separator);
        }
        value.push_str(labels.get(name).unwrap_or(""));
    }
    value
}

fn target_label(config: &RelabelConfig) -> &str {
    config.target_label.as_deref().unwrap_or("")
}

fn relabel_step(mut labels: Labels, config: &RelabelConfig) -> Option<Labels> {
    let regex = &config.regex.regex;
    match config.action {
        RelabelAction::Drop => {
            if regex.is_match(&source_value(&labels, config)) {
                return None;
            }
        }
        RelabelAction::Keep => {
            if !regex.is_match(&source_value(&labels, config)) {
                return None;
            }
        }
        RelabelAction::DropEqual => {
            let value = source_value(&labels, config);
            if labels.get(target_label(config)).unwrap_or("") == value {
                return None;
            }
        }
        RelabelAction::KeepEqual => {
            let value = source_value(&labels, config);
            if labels.get(target_label(config)).unwrap_or("") != value {
                return None;
            }
        }
        RelabelAction::Replace => {
            let value = source_value(&labels, config);
            let Some(captures) = regex.captures(&value) else {
                return Some(labels);
            };
            let mut target = String::new();
            captures.expand(target_label(config), &mut target);
            if !is_valid_label_name(&target) {
                labels.remove(target_label(config));
                return Some(labels);
            }
            let mut replaced = String::new();
            captures.expand(&config.replacement, &mut replaced);
            if replaced.is_empty() {
                labels.remove(target_label(config));
            } else {
                labels.set(&target, &replaced);
            }
        }
        RelabelAction::Lowercase => {
            let value = source_value(&labels, config).to_lowercase();
            labels.set(target_label(config), &value);
        }
        RelabelAction::Uppercase => {
            let value = source_value(&labels, config).to_uppercase();
            labels.set(target_label(config), &value);
        }
        RelabelAction::HashMod => {
            // A modulus of 0 is refused by config validation; never divide by it.
            let modulus = config.modulus.unwrap_or(0);
            if modulus > 0 {
                let value = source_value(&labels, config);
                let bucket = hash_mod(&value, modulus);
                labels.set(target_label(config), &bucket.to_string());
            }
        }
        RelabelAction::LabelMap => {
            let snapshot = labels.clone();
            for label in &snapshot {
                if let Some(captures) = regex.captures(&label.name) {
                    let mut name = String::new();
                    captures.expand(&config.replacement, &mut name);
                    if !name.is_empty() {
                        labels.set(&name, &label.value);
                    }
                }
            }
        }
        RelabelAction::LabelDrop => {
            let names: Vec<String> = labels
                .iter()
                .filter(|l| regex.is_match(&l.name))
                .map(|l| l.name.clone())
                .collect();
            for name in names {
                labels.remove(&name);
            }
        }
        RelabelAction::LabelKeep => {
            let names: Vec<String> = labels
                .iter()
                .filter(|l| !regex.is_match(&l.name))
                .map(|l| l.name.clone())
                .collect();
            for name in names {
                labels.remove(&name);
            }
        }
    }
    Some(labels)
}

/// Prometheus's `hashmod`: MD5 of the value, last 8 bytes as a big-endian
/// integer, modulo `modulus`.
pub fn hash_mod(value: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..16]);
    u64::from_be_bytes(tail) % modulus
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::RelabelRegex;

    fn cfg(
        action: RelabelAction,
        source: &[&str],
        regex: &str,
        target: Option<&str>,
        replacement: &str,
    ) -> RelabelConfig {
        RelabelConfig {
            source_labels: source.iter().map(|s| s.to_string()).collect(),
            separator: ";".to_string(),
            target_label: target.map(str::to_string),
            regex: RelabelRegex::new(regex).unwrap(),
            modulus: None,
            replacement: replacement.to_string(),
            action,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied())
    }

    use RelabelAction::*;

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            input: Labels,
            configs: Vec<RelabelConfig>,
            want: Option<Labels>,
        }
        let base = labels(&[("a", "foo"), ("b", "bar"), ("c", "baz")]);
        let cases = vec![
            Case {
                name: "replace with groups",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "f(.*)", Some("d"), "ch${1}-ch${1}")],
                want: Some(labels(&[
                    ("a", "foo"),
                    ("b", "bar"),
                    ("c", "baz"),
                    ("d", "choo-choo"),
                ])),
            },
            Case {
                name: "replace joins sources with the separator",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a", "b"], "(.*);(.*)", Some("d"), "$2$1")],
                want: Some(labels(&[
                    ("a", "foo"),
                    ("b", "bar"),
                    ("c", "baz"),
                    ("d", "barfoo"),
                ])),
            },
            Case {
                name: "replace is anchored: no match, no change",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "o+", Some("d"), "x")],
                want: Some(base.clone()),
            },
            Case {
                name: "replace: $1x is the group named 1x (empty), so the label is removed",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "(f)oo", Some("a"), "$1x")],
                want: Some(labels(&[("b", "bar"), ("c", "baz")])),
            },
            Case {
                name: "replace: target label from a group",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "(.*)", Some("t_${1}"), "v")],
                want: Some(labels(&[
                    ("a", "foo"),
                    ("b", "bar"),
                    ("c", "baz"),
                    ("t_foo", "v"),
                ])),
            },
            Case {
                name: "replace: invalid expanded target skips",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "(.*)", Some("${1}-x"), "v")],
                want: Some(base.clone()),
            },
            Case {
                name: "replace: $$ is a literal dollar",
                input: base.clone(),
                configs: vec![cfg(Replace, &["a"], "(.*)", Some("d"), "$$1")],
                want: Some(labels(&[
                    ("a", "foo"),
                    ("b", "bar"),
                    ("c", "baz"),
                    ("d", "$1"),
                ])),
            },
            Case {
                name: "replace: absent source reads as empty, default regex matches it",
                input: base.clone(),
                configs: vec![cfg(Replace, &["missing"], "(.*)", Some("d"), "static")],
                want: Some(labels(&[
                    ("a", "foo"),
                    ("b", "bar"),
                    ("c", "baz"),
                    ("d", "static"),
                ])),
            },
            Case {
                name: "keep match",
                input: base.clone(),
                configs: vec![cfg(Keep, &["a"], "fo+", None, "$1")],
                want: Some(base.clone()),
            },
            Case {
                name: "keep no match drops",
                input: base.clone(),
                configs: vec![cfg(Keep, &["a"], "f", None, "$1")],
                want: None,
            },
            Case {
                name: "drop match",
                input: base.clone(),
                configs: vec![cfg(Drop, &["a", "b"], "foo;bar", None, "$1")],
                want: None,
            },
            Case {
                name: "drop no match",
                input: base.clone(),
                configs: vec![cfg(Drop, &["a"], "bar", None, "$1")],
                want: Some(base.clone()),
            },
            Case {
                name: "keepequal",
                input: labels(&[("a", "1"), ("b", "1")]),
                configs: vec![cfg(KeepEqual, &["a"], "(.*)", Some("b"), "$1")],
                want: Some(labels(&[("a", "1"), ("b", "1")])),
            },
            Case {
                name: "keepequal drops on difference",
                input: labels(&[("a", "1"), ("b", "2")]),
                configs: vec![cfg(KeepEqual, &["a"], "(.*)", Some("b"), "$1")],
                want: None,
            },
            Case {
                name: "dropequal",
                input: labels(&[("a", "1"), ("b", "1")]),
                configs: vec![cfg(DropEqual, &["a"], "(.*)", Some("b"), "$1")],
                want: None,
            },
            Case {
                name: "labelmap copies matching names",
                input: labels(&[("__meta_x", "1"), ("__meta_y", "2"), ("z", "3")]),
                configs: vec![cfg(LabelMap, &[], "__meta_(.+)", None, "$1")],
                want: Some(labels(&[
                    ("__meta_x", "1"),
                    ("__meta_y", "2"),
                    ("x", "1"),
                    ("y", "2"),
                    ("z", "3"),
                ])),
            },
            Case {
                name: "labeldrop",
                input: base.clone(),
                configs: vec![cfg(LabelDrop, &[], "a|b", None, "$1")],
                want: Some(labels(&[("c", "baz")])),
            },
            Case {
                name: "labelkeep",
                input: base.clone(),
                configs: vec![cfg(LabelKeep, &[], "a|b", None, "$1")],
                want: Some(labels(&[("a", "foo"), ("b", "bar")])),
            },
            Case {
                name: "lowercase and uppercase",
                input: labels(&[("a", "FoO")]),
                configs: vec![
                    cfg(Lowercase, &["a"], "(.*)", Some("l"), "$1"),
                    cfg(Uppercase, &["a"], "(.*)", Some("u"), "$1"),
                ],
                want: Some(labels(&[("a", "FoO"), ("l", "foo"), ("u", "FOO")])),
            },
            Case {
                name: "lowercase of empty removes the target",
                input: labels(&[("a", "x"), ("t", "y")]),
                configs: vec![cfg(Lowercase, &["missing"], "(.*)", Some("t"), "$1")],
                want: Some(labels(&[("a", "x")])),
            },
        ];
        for case in cases {
            assert_eq!(
                process(&case.input, &case.configs),
                case.want,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // From Prometheus's relabel_test.go: "baz" hashes to 976 modulo 1000.
        assert_eq!(hash_mod("baz", 1000), 976);
        let mut c = cfg(HashMod, &["a"], "(.*)", Some("h"), "$1");
        c.modulus = Some(1000);
        let out = process(&labels(&[("a", "baz")]), &[c]).unwrap();
        assert_eq!(out.get("h"), Some("976"));
    }
}
