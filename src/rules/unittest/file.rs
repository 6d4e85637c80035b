//! The unit-test file format of `promtool test rules`, read as promtool 2.42
//! reads it (gopkg.in/yaml.v2 in strict mode into its structs): unknown and
//! repeated keys are errors, `null` leaves a field at its zero value, any
//! scalar reads as a string where a string is expected, a number must be a
//! YAML number (`NaN` is a string to yaml.v2, `.nan` a number) and durations
//! use Prometheus's syntax (`0` alone is zero).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::config::values::parse_duration;

/// A whole test file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTestFile {
    #[serde(default, deserialize_with = "null_default")]
    pub rule_files: Vec<YamlString>,
    /// Milliseconds; 0 (absent) means promtool's default of 1m.
    #[serde(default)]
    pub evaluation_interval: GoDuration,
    #[serde(default, deserialize_with = "null_default")]
    pub group_eval_order: Vec<YamlString>,
    #[serde(default, deserialize_with = "null_default")]
    pub tests: Vec<TestGroup>,
}

/// One entry of `tests`: input series and the checks run against them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestGroup {
    #[serde(default)]
    pub interval: GoDuration,
    #[serde(default, deserialize_with = "null_default")]
    pub input_series: Vec<InputSeriesDef>,
    #[serde(default, deserialize_with = "null_default")]
    pub alert_rule_test: Vec<AlertTestCase>,
    #[serde(default, deserialize_with = "null_default")]
    pub promql_expr_test: Vec<PromqlTestCase>,
    #[serde(default, deserialize_with = "null_default")]
    pub external_labels: BTreeMap<YamlString, YamlString>,
    #[serde(default)]
    pub external_url: YamlString,
    #[serde(default)]
    pub name: YamlString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeriesDef {
    #[serde(default)]
    pub series: YamlString,
    #[serde(default)]
    pub values: YamlString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTestCase {
    #[serde(default)]
    pub eval_time: GoDuration,
    #[serde(default)]
    pub alertname: YamlString,
    #[serde(default, deserialize_with = "null_default")]
    pub exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpAlert {
    #[serde(default, deserialize_with = "null_default")]
    pub exp_labels: BTreeMap<YamlString, YamlString>,
    #[serde(default, deserialize_with = "null_default")]
    pub exp_annotations: BTreeMap<YamlString, YamlString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromqlTestCase {
    #[serde(default)]
    pub expr: YamlString,
    #[serde(default)]
    pub eval_time: GoDuration,
    #[serde(default, deserialize_with = "null_default")]
    pub exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpSample {
    #[serde(default)]
    pub labels: YamlString,
    #[serde(default)]
    pub value: YamlFloat,
}

/// `null` (an empty value) reads as the zero value, as yaml.v2 leaves it.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string field: any scalar reads as its text (yaml.v2 decodes `values: 5`
/// into the string "5"), `null` as "".
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct YamlString(pub String);

impl YamlString {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for YamlString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for YamlString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<ScalarText>::deserialize(d)?
            .map(|t| t.0)
            .unwrap_or_default())
    }
}

/// The text of a non-null scalar.
struct ScalarText(YamlString);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = YamlString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlString, E> {
                Ok(YamlString(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<YamlString, E> {
                Ok(YamlString(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlString, E> {
                Ok(YamlString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlString, E> {
                Ok(YamlString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlString, E> {
                Ok(YamlString(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlString, E> {
                Ok(YamlString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<YamlString, E> {
                Ok(YamlString::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<YamlString, E> {
                Ok(YamlString::default())
            }
        }
        // Asking for a string makes the YAML reader hand over the scalar's
        // text as written (`010` stays `010`).
        d.deserialize_string(V).map(ScalarText)
    }
}

/// A float field: a YAML number (`1`, `1.5e3`, `0x10`, `.inf`, `.nan`);
/// `null` reads as 0. A string, even `"1"` or `NaN`, is refused, as by yaml.v2.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct YamlFloat(pub f64);

impl<'de> Deserialize<'de> for YamlFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = YamlFloat;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (write NaN as .nan and infinity as .inf)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlFloat, E> {
                Ok(YamlFloat(v as f64))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<YamlFloat, E> {
                Ok(YamlFloat(v as f64))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<YamlFloat, E> {
                Ok(YamlFloat(v as f64))
            }
            fn visit_unit<E: de::Error>(self) -> Result<YamlFloat, E> {
                Ok(YamlFloat(0.0))
            }
            fn visit_none<E: de::Error>(self) -> Result<YamlFloat, E> {
                Ok(YamlFloat(0.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in Prometheus's syntax (`1m`, `1h30m`, `0`), in milliseconds;
/// `null` reads as 0.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for GoDuration {
    /// As Prometheus's `model.Duration` prints (`1m`, `1h30m`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = u64::try_from(self.0).unwrap_or(0);
        f.write_str(&crate::config::values::format_duration(
            std::time::Duration::from_millis(ms),
        ))
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Option::<YamlString>::deserialize(d)?;
        let Some(text) = text else {
            return Ok(GoDuration(0));
        };
        let duration = parse_duration(text.as_str()).map_err(de::Error::custom)?;
        i64::try_from(duration.as_millis())
            .map(GoDuration)
            .map_err(|_| de::Error::custom(format!("duration out of range: {:?}", text.0)))
    }
}

/// Parses a test file's text. An empty document is a file with no tests.
pub fn parse(text: &str) -> Result<UnitTestFile, String> {
    let mut options = serde_saphyr::Options::default();
    // `.nan` and `.inf` are numbers to yaml.v2; an expected value may be one.
    options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
    // One line per error, like the rest of the report.
    options.with_snippet = false;
    let parsed: Option<UnitTestFile> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| e.to_string())?;
    Ok(parsed.unwrap_or_default())
}

/// Reads and parses a test file, then resolves its `rule_files` relative to
/// the file's directory and expands globs. A pattern matching nothing is a
/// warning (returned for printing), not an error, as in promtool.
pub fn load(path: &Path) -> Result<(UnitTestFile, Vec<PathBuf>, Vec<String>), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let file = parse(&text)?;
    let base = path.parent().unwrap_or(Path::new(""));
    let mut rule_files = Vec::new();
    let mut warnings = Vec::new();
    for pattern in &file.rule_files {
        let pattern = pattern.as_str();
        let joined = if pattern.is_empty() || Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let joined_text = joined.to_string_lossy().to_string();
        let matches: Vec<PathBuf> = if pattern.is_empty() {
            Vec::new()
        } else {
            glob::glob(&joined_text)
                .map_err(|e| format!("syntax error in pattern {joined_text:?}: {e}"))?
                .filter_map(Result::ok)
                .collect()
        };
        if matches.is_empty() {
            warnings.push(format!("  WARNING: no file match pattern {joined_text}"));
        }
        rule_files.extend(matches);
    }
    Ok((file, rule_files, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_shape() {
        let f = parse(
            r#"
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="prometheus", instance="localhost:9090"}'
        values: '0 0 0 0 0'
      - series: up
        values: 5
      - series: down
        values: 010
    alert_rule_test:
      - eval_time: 10m
        alertname: InstanceDown
        exp_alerts:
          - exp_labels:
              severity: page
            exp_annotations:
              summary: "Instance localhost:9090 down"
    promql_expr_test:
      - expr: up
        eval_time: 0
        exp_samples:
          - labels: 'up{job="x"}'
            value: 1e3
          - labels: ''
            value: .nan
          - value: 0x10
    external_labels:
      region: eu
    external_url: http://example
    name: first
"#,
        )
        .unwrap();
        assert_eq!(f.evaluation_interval, GoDuration(60_000));
        let t = &f.tests[0];
        assert_eq!(t.input_series[1].values.as_str(), "5");
        assert_eq!(t.input_series[2].values.as_str(), "010");
        assert_eq!(t.alert_rule_test[0].eval_time, GoDuration(600_000));
        let s = &t.promql_expr_test[0].exp_samples;
        assert_eq!(s[0].value, YamlFloat(1000.0));
        assert!(s[1].value.0.is_nan());
        assert_eq!(s[2].value, YamlFloat(16.0));
        assert_eq!(s[2].labels.as_str(), "");
        assert_eq!(t.name.as_str(), "first");
    }

    #[test]
    fn nulls_are_zero_values() {
        let f = parse(
            "rule_files:\ntests:\n- interval:\n  input_series:\n  alert_rule_test:\n  - eval_time:\n    alertname: A\n    exp_alerts:\n    - exp_labels:\n        a:\n",
        )
        .unwrap();
        assert!(f.rule_files.is_empty());
        let t = &f.tests[0];
        assert_eq!(t.interval, GoDuration(0));
        assert_eq!(t.alert_rule_test[0].eval_time, GoDuration(0));
        let labels = &t.alert_rule_test[0].exp_alerts[0].exp_labels;
        assert_eq!(
            labels.get(&YamlString("a".into())),
            Some(&YamlString(String::new()))
        );
    }

    #[test]
    fn an_empty_file_has_no_tests() {
        assert!(parse("").unwrap().tests.is_empty());
        assert!(parse("# only a comment\n").unwrap().tests.is_empty());
    }

    #[test]
    fn refuses_what_yaml_v2_strict_refuses() {
        for bad in [
            "foo: 1\n",
            "tests:\n- intervall: 1m\n",
            "tests:\n- promql_expr_test:\n  - expr: up\n    exp_samples:\n    - value: NaN\n",
            "tests:\n- promql_expr_test:\n  - expr: up\n    exp_samples:\n    - value: \"1\"\n",
            "tests:\n- promql_expr_test:\n  - expr: up\n    eval_time: 5\n",
            "tests:\n- promql_expr_test:\n  - expr: up\n    eval_time: 1.5m\n",
            "tests:\n- interval: 1m\n  interval: 2m\n",
            "tests:\n- external_labels: {a: 1, a: 2}\n",
            "tests: 5\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
