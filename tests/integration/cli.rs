//! The command line of the real binary: `check config`, `version`.

use std::process::Command;

fn bellwether(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(args)
        .output()
        .expect("running the bellwether binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_reports_every_error_with_its_position_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(
        &path,
        "global:\n  scrape_interval: 15x\n  scrape_timout: 10s\nscrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: '(foo'\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let (code, _, stderr) = bellwether(&["check", "config", file]);
    assert_eq!(code, 1, "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "one line per error: {stderr}");
    assert!(
        lines[0].starts_with(&format!("{file}:2:20: global.scrape_interval: ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:3:3: global.scrape_timout: unknown key")),
        "{stderr}"
    );
    assert!(
        lines[1].contains("did you mean `scrape_timeout`"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "{file}:7:16: scrape_configs[0].relabel_configs[0].regex: invalid regex"
        )),
        "{stderr}"
    );
}

#[test]
fn check_config_accepts_a_valid_file_and_expands_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.yml");
    std::fs::write(
        &path,
        "scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['${BW_TEST_TARGET}']\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bellwether"))
        .args(["check", "config", path.to_str().unwrap()])
        .env("BW_TEST_TARGET", "127.0.0.1:9100")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("config is valid"));

    let (code, _, stderr) = bellwether(&["check", "config", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("BW_TEST_TARGET"),
        "a missing variable is named: {stderr}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let (code, stdout, _) = bellwether(&["version"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("bellwether {}", env!("CARGO_PKG_VERSION"))
    );
}
