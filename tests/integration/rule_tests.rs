//! `bellwether test rules` against the real `promtool test rules` (Debian's
//! prometheus 2.42): every file of tests/rule-test-corpus/ (and of rules/tests/
//! when it exists) is run through both, and both must give the same verdict.
//! The recorded verdicts (tests/rule-test-corpus/verdicts.txt, written by
//! scripts/rule-test-corpus-verdicts.sh) must also still be promtool's.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::reference_program;

struct Verdict {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(program: &Path, args: &[&str], dir: &Path) -> Verdict {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    Verdict {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn bellwether(args: &[&str], dir: &Path) -> Verdict {
    run(Path::new(env!("CARGO_BIN_EXE_bellwether")), args, dir)
}

fn promtool(args: &[&str], dir: &Path) -> Verdict {
    run(&reference_program("promtool"), args, dir)
}

fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The test files of a directory, sorted.
fn test_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .collect();
    files.sort();
    files
}

/// Runs both tools on every file of `dir`; returns the files whose verdicts
/// differ (with both outputs) and how many files there were.
fn compare_directory(dir: &Path) -> (Vec<String>, usize) {
    let files = test_files(dir);
    let mut disagreements = Vec::new();
    for file in &files {
        let ours = bellwether(&["test", "rules", file], dir);
        let theirs = promtool(&["test", "rules", file], dir);
        if ours.code != theirs.code {
            disagreements.push(format!(
                "{file}: promtool exits {}, bellwether {}\n--- promtool:\n{}{}\n--- bellwether:\n{}{}",
                theirs.code, ours.code, theirs.stdout, theirs.stderr, ours.stdout, ours.stderr
            ));
        }
    }
    (disagreements, files.len())
}

#[test]
fn corpus_verdicts_match_promtool() {
    let dir = repo_dir("tests/rule-test-corpus");
    let (disagreements, total) = compare_directory(&dir);
    assert!(total >= 30, "the corpus has only {total} files");
    eprintln!(
        "rule-test corpus: {}/{total} files same verdict as promtool",
        total - disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {total} files disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}

#[test]
fn recorded_verdicts_are_still_promtools() {
    let dir = repo_dir("tests/rule-test-corpus");
    let recorded = std::fs::read_to_string(dir.join("verdicts.txt")).expect("verdicts.txt");
    let mut checked = 0;
    for line in recorded.lines().filter(|l| !l.trim().is_empty()) {
        let (file, code) = line.split_once(' ').expect("`file exit_code` lines");
        let code: i32 = code.trim().parse().expect("numeric exit code");
        let theirs = promtool(&["test", "rules", file], &dir);
        assert_eq!(
            theirs.code, code,
            "{file}: verdicts.txt says {code}, promtool now exits {} (rerun scripts/rule-test-corpus-verdicts.sh)",
            theirs.code
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        test_files(&dir).len(),
        "verdicts.txt does not list every corpus file (rerun scripts/rule-test-corpus-verdicts.sh)"
    );
}

#[test]
fn default_rule_tests_match_promtool() {
    let dir = repo_dir("rules/tests");
    let (disagreements, total) = compare_directory(&dir);
    assert!(total >= 5, "rules/tests has only {total} files");
    eprintln!(
        "rules/tests: {}/{total} files same verdict as promtool",
        total - disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {total} files disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}

#[test]
fn several_files_report_each_and_fail_if_any_fails() {
    let dir = repo_dir("tests/rule-test-corpus");
    let args = [
        "test",
        "rules",
        "04-for-pending-pass.yml",
        "03-wrong-value-fail.yml",
        "31-scalar-expr-pass.yml",
    ];
    let ours = bellwether(&args, &dir);
    let theirs = promtool(&args, &dir);
    assert_eq!(ours.code, 1, "{}{}", ours.stdout, ours.stderr);
    assert_eq!(theirs.code, 1);
    // The same per-file headers and outcomes, in the same order.
    let outline = |v: &Verdict| -> Vec<String> {
        v.stdout
            .lines()
            .filter(|l| l.starts_with("Unit Testing:") || l.trim() == "SUCCESS")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(outline(&ours), outline(&theirs));
    assert_eq!(ours.stderr.matches("FAILED:").count(), 1, "{}", ours.stderr);
}

#[test]
fn failure_report_matches_promtools_text() {
    let dir = repo_dir("tests/rule-test-corpus");
    for file in [
        "03-wrong-value-fail.yml",
        "12-duplicate-group-eval-order-fail.yml",
        "28-bad-series-notation-fail.yml",
        "29-expected-nan-fail.yml",
        "36-notation-wrong-count-fail.yml",
        "50-bad-expected-labels-fail.yml",
    ] {
        let ours = bellwether(&["test", "rules", file], &dir);
        let theirs = promtool(&["test", "rules", file], &dir);
        assert_eq!(ours.stdout, theirs.stdout, "{file}: stdout");
        assert_eq!(ours.stderr, theirs.stderr, "{file}: stderr");
    }
}

#[test]
fn a_missing_file_is_refused_before_running_anything() {
    let dir = repo_dir("tests/rule-test-corpus");
    let ours = bellwether(&["test", "rules", "01-basic-pass.yml", "nope.yml"], &dir);
    assert_eq!(ours.code, 1);
    assert!(ours.stdout.is_empty(), "{}", ours.stdout);
    assert!(ours.stderr.contains("nope.yml"), "{}", ours.stderr);
}
