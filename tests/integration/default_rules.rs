//! The default rules in rules/: Prometheus's own promtool must accept every
//! rule file (`check rules`) and pass every unit test in rules/tests/
//! (`test rules`), so the files stay loadable by Prometheus and their
//! thresholds keep doing what docs/rules.md says.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::reference_program;

/// The files in `dir` whose names end in `suffix`, sorted, relative to the
/// crate root (promtool prints them as given).
fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.expect("listing a directory entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .map(|p| {
            p.strip_prefix(root)
                .expect("a path under the crate root")
                .to_path_buf()
        })
        .collect();
    found.sort();
    found
}

/// Runs promtool with `args` from the crate root; returns (success, stdout + stderr).
fn promtool(args: &[&str], paths: &[PathBuf]) -> (bool, String) {
    let out = Command::new(reference_program("promtool"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .args(paths)
        .output()
        .expect("running promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn promtool_checks_the_default_rule_files() {
    let rule_files = files("rules", ".yml");
    let names: Vec<String> = rule_files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "rules/business.yml",
            "rules/critical.yml",
            "rules/info.yml",
            "rules/recording.yml",
            "rules/warning.yml"
        ],
        "docs/rules.md lists these files; update it with the list"
    );
    // Without --lint-fatal, duplicate rules are reported but exit 0.
    let (ok, output) = promtool(
        &["check", "rules", "--lint=all", "--lint-fatal"],
        &rule_files,
    );
    assert!(ok, "promtool check rules failed:\n{output}");
    assert!(!output.contains("FAILED"), "promtool complained:\n{output}");
    assert_eq!(
        output.matches("SUCCESS").count(),
        rule_files.len(),
        "{output}"
    );
}

#[test]
fn promtool_passes_the_default_rule_unit_tests() {
    let test_files = files("rules/tests", "_test.yml");
    // One test file per rule file at least.
    for rule_file in files("rules", ".yml") {
        let stem = rule_file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        let wanted = Path::new("rules/tests").join(format!("{stem}_test.yml"));
        assert!(
            test_files.contains(&wanted),
            "{} has no unit tests: add {}",
            rule_file.display(),
            wanted.display()
        );
    }
    let (ok, output) = promtool(&["test", "rules"], &test_files);
    assert!(ok, "promtool test rules failed:\n{output}");
    assert_eq!(
        output.matches("SUCCESS").count(),
        test_files.len(),
        "{output}"
    );
}

/// bellwether itself accepts the default rules and passes their unit tests
/// (the daemon loads these files; `rule_tests.rs` also compares verdicts
/// with promtool file by file).
#[test]
fn bellwether_checks_and_tests_the_default_rules() {
    let run = |args: &[&str], paths: &[PathBuf]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .args(paths)
            .output()
            .expect("running bellwether");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let rule_files = files("rules", ".yml");
    let (ok, output) = run(&["check", "rules", "--lint-fatal"], &rule_files);
    assert!(ok, "bellwether check rules failed:\n{output}");
    assert_eq!(
        output.matches("SUCCESS").count(),
        rule_files.len(),
        "{output}"
    );
    let (ok, output) = run(&["test", "rules"], &files("rules/tests", "_test.yml"));
    assert!(ok, "bellwether test rules failed:\n{output}");
}
