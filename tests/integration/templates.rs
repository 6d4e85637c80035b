//! The alert-template golden corpus is Prometheus's own output: real
//! promtool passes the corpus's unit test (whose expected annotations the
//! unit test `template::tests::corpus_matches_promtool` requires bellwether
//! to reproduce), and `promtool check rules` gives the verdicts and messages
//! recorded in check.json (which `template::tests::check_verdicts` requires
//! of `check_alert_template`).

use std::process::Command;

use crate::util::reference_program;

fn corpus(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/template-corpus")
        .join(file)
}

#[test]
fn promtool_passes_the_template_corpus() {
    let output = Command::new(reference_program("promtool"))
        .args(["test", "rules"])
        .arg(corpus("test.yml"))
        .output()
        .expect("running promtool");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool test rules failed:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("SUCCESS"), "{stdout}");
}

#[test]
fn promtool_check_rules_agrees_with_check_json() {
    let text = std::fs::read_to_string(corpus("check.json")).expect("check.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("check.json is JSON");
    let cases = cases.as_array().expect("a list");
    let mut rules = String::from("groups:\n  - name: check\n    rules:\n      - alert: A\n        expr: vector(1)\n        annotations:\n");
    for (i, case) in cases.iter().enumerate() {
        let template = case["template"].as_str().expect("template");
        // A JSON string is a valid YAML double-quoted scalar.
        rules.push_str(&format!(
            "          c{i}: {}\n",
            serde_json::Value::from(template)
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, rules).expect("writing rules");
    let output = Command::new(reference_program("promtool"))
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("running promtool");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for (i, case) in cases.iter().enumerate() {
        let marker = format!("annotation \"c{i}\": ");
        let got = all
            .lines()
            .find_map(|l| l.split_once(&marker).map(|(_, msg)| msg.to_string()));
        assert_eq!(
            got.as_deref(),
            case["error"].as_str(),
            "case c{i} {:?}\n{all}",
            case["template"]
        );
    }
}
