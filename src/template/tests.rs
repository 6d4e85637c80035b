//! Unit tests of the template module. The golden corpus in
//! tests/template-corpus/ was produced by real promtool (gen.py); every
//! annotation there must expand here to the same bytes.

use std::collections::BTreeMap;

use super::*;

/// A query engine stand-in answering from the corpus's recorded series
/// (`query "2 * 21"` and a syntax error are answered as Prometheus would).
struct CorpusQuery(BTreeMap<String, Vec<QuerySample>>);

impl QueryFunc for CorpusQuery {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        match expr {
            "2 * 21" => Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: 42.0,
            }]),
            "sum(" => Err("1:5: parse error: unclosed left parenthesis".to_string()),
            _ => self
                .0
                .get(expr)
                .cloned()
                .ok_or_else(|| format!("unexpected query {expr:?}")),
        }
    }
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn float(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => match s.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => f64::NAN,
        },
        other => other.as_f64().unwrap_or(f64::NAN),
    }
}

/// Expansion output as Prometheus stores it in the annotation.
fn rendered(alert: &str, text: &str, data: &AlertTemplateData, query: &dyn QueryFunc) -> String {
    match expand_alert_template(alert, text, data, 0, query) {
        Ok(s) => s,
        Err(e) => format!("<error expanding template: {e}>"),
    }
}

#[test]
fn corpus_matches_promtool() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/template-corpus/expected.json"
    );
    let text = std::fs::read_to_string(path).expect("corpus file is in the repository");
    let corpus: serde_json::Value = serde_json::from_str(&text).expect("corpus is JSON");
    let external_labels = string_map(&corpus["external_labels"]);
    let external_url = corpus["external_url"].as_str().unwrap_or_default();
    let mut queries = BTreeMap::new();
    for (expr, samples) in corpus["queries"].as_object().into_iter().flatten() {
        let samples = samples
            .as_array()
            .into_iter()
            .flatten()
            // Reversed: templates must not depend on the engine's order.
            .rev()
            .map(|s| QuerySample {
                labels: string_map(&s["labels"]),
                value: float(&s["value"]),
            })
            .collect();
        queries.insert(expr.clone(), samples);
    }
    let query = CorpusQuery(queries);
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in corpus["cases"].as_array().into_iter().flatten() {
        let alert = case["alert"].as_str().unwrap_or_default();
        let labels = string_map(&case["labels"]);
        let data = AlertTemplateData {
            labels: &labels,
            external_labels: &external_labels,
            external_url,
            value: float(&case["value"]),
        };
        for (key, annotation) in case["annotations"].as_object().into_iter().flatten() {
            let template = annotation["template"].as_str().unwrap_or_default();
            let expected = annotation["expected"].as_str().unwrap_or_default();
            let got = rendered(alert, template, &data, &query);
            checked += 1;
            if got != expected {
                failures.push(format!(
                    "{alert}/{key}: {template}\n   want: {expected}\n    got: {got}"
                ));
            }
        }
    }
    assert!(checked > 90, "corpus too small: {checked}");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

struct NoQuery;
impl QueryFunc for NoQuery {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        Ok(Vec::new())
    }
}

#[test]
fn external_url_functions() {
    let labels = BTreeMap::new();
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &labels,
        external_url: "http://prom.example.com:9090/prefix/path?x=1",
        value: 1.0,
    };
    assert_eq!(
        rendered("A", "{{ externalURL }}|{{ pathPrefix }}", &data, &NoQuery),
        "http://prom.example.com:9090/prefix/path?x=1|/prefix/path"
    );
    let no_url = AlertTemplateData {
        external_url: "",
        ..data
    };
    assert_eq!(
        rendered("A", "{{ pathPrefix }}", &no_url, &NoQuery),
        "<error expanding template: error executing template __alert_A: template: __alert_A:1:115: \
         executing \"__alert_A\" at <pathPrefix>: error calling pathPrefix: runtime error: invalid memory \
         address or nil pointer dereference>"
    );
}

/// Verdicts and messages of `promtool check rules` for the templates in
/// tests/template-corpus/check.json (the integration test `templates`
/// checks the same file against promtool).
#[test]
fn check_verdicts() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/template-corpus/check.json"
    );
    let text = std::fs::read_to_string(path).expect("check cases are in the repository");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("check cases are JSON");
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() > 10);
    for case in cases {
        let template = case["template"].as_str().unwrap_or_default();
        let want = case["error"].as_str();
        let got = check_alert_template("A", template).err();
        assert_eq!(got.as_deref(), want, "template {template:?}");
    }
}

#[test]
fn parse_errors_are_reported_on_expansion() {
    let labels = BTreeMap::new();
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &labels,
        external_url: "",
        value: 0.0,
    };
    assert_eq!(
        expand_alert_template("A", "{{ foo }}", &data, 0, &NoQuery),
        Err(
            "error parsing template __alert_A: template: __alert_A:1: function \"foo\" not defined"
                .to_string()
        )
    );
}

#[test]
fn repeated_expansion_uses_the_cache() {
    let mut labels = BTreeMap::new();
    labels.insert("instance".to_string(), "h:1".to_string());
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &labels,
        external_url: "",
        value: 0.25,
    };
    let text = "{{ $labels.instance }} at {{ humanizePercentage $value }}";
    let start = std::time::Instant::now();
    for _ in 0..2000 {
        assert_eq!(
            expand_alert_template("Cached", text, &data, 0, &NoQuery).as_deref(),
            Ok("h:1 at 25%")
        );
    }
    eprintln!("cached expansion: {:?} each", start.elapsed() / 2000);
    // Generous bound: a parse per call would still pass on a slow machine,
    // but a pathological regression (e.g. re-lexing the preamble quadratically) would not.
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn runaway_recursion_is_an_error_not_a_crash() {
    let text = "{{ define \"r\" }}x{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}";
    // A quarter of a default thread stack (2 MiB) must hold the deepest
    // allowed nesting, even in a debug build.
    let result = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let labels = BTreeMap::new();
            let data = AlertTemplateData {
                labels: &labels,
                external_labels: &labels,
                external_url: "",
                value: 0.0,
            };
            expand_alert_template("R", text, &data, 0, &NoQuery)
        })
        .expect("spawning a thread")
        .join()
        .expect("no stack overflow");
    let err = result.expect_err("recursion must fail");
    assert!(
        err.ends_with("exceeded maximum template depth (100)"),
        "{err}"
    );
}

#[test]
fn deep_nesting_in_deep_recursion_is_an_error_not_a_crash() {
    let blocks = "{{ if true }}".repeat(90) + "{{ template \"r\" . }}" + &"{{ end }}".repeat(90);
    let text = format!("{{{{ define \"r\" }}}}{blocks}{{{{ end }}}}{{{{ template \"r\" . }}}}");
    let result = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let labels = BTreeMap::new();
            let data = AlertTemplateData {
                labels: &labels,
                external_labels: &labels,
                external_url: "",
                value: 0.0,
            };
            expand_alert_template("D", &text, &data, 0, &NoQuery)
        })
        .expect("spawning a thread")
        .join()
        .expect("no stack overflow");
    assert!(result
        .expect_err("must fail")
        .ends_with("exceeded maximum template depth (100)"));
}

#[test]
fn odd_input_does_not_panic() {
    let labels = BTreeMap::new();
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &labels,
        external_url: "",
        value: 0.0,
    };
    for text in [
        "{{",
        "}}",
        "{{ \"é",
        "é{{ index $labels 1 }}",
        "{{ printf \"%*d\" 1000000 1 | len }}",
        "{{ printf \"%[9]d %.*f\" 1 }}",
        "{{ slice \"é\" 0 1 }}",
        "{{ range $i, $v := query \"x\" }}{{ end }}",
        "{{ (1).x }}",
        "{{ nil.x }}",
        "{{ $value.x }}",
        "{{ template }}",
        "{{ define }}",
        "{{ with }}{{ end }}",
        "{{ 99999999999999999999 }}",
    ] {
        let _ = expand_alert_template("P", text, &data, 0, &NoQuery);
        let _ = check_alert_template("P", text);
    }
}
