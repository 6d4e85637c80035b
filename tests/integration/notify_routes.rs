//! Routing decisions and config verdicts against Debian's `amtool`
//! (Alertmanager 0.25): for every file of tests/notify-corpus/ and every
//! label set of its `.labels` file, `bellwether check routes` must print the
//! receivers `amtool config routes test` prints; `amtool check-config` and
//! `bellwether check config` (a config whose `notify.config_file` names the
//! file) must agree on every good and bad file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::reference_program;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify-corpus")
}

fn run(program: &Path, args: &[String]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
}

fn yml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn routes_match_amtool() {
    let amtool = reference_program("amtool");
    let bellwether = Path::new(env!("CARGO_BIN_EXE_bellwether"));
    let (mut agreed, mut cases, mut disagreements) = (0, 0, Vec::new());
    for file in yml_files(&corpus()) {
        let labels_file = file.with_extension("labels");
        let text = std::fs::read_to_string(&labels_file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", labels_file.display()));
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            cases += 1;
            let labels: Vec<String> = line.split_whitespace().map(String::from).collect();
            let mut am_args = vec![
                "config".to_string(),
                "routes".into(),
                "test".into(),
                format!("--config.file={}", file.display()),
            ];
            am_args.extend(labels.iter().cloned());
            let mut bw_args = vec![
                "check".to_string(),
                "routes".into(),
                "--config.file".into(),
                file.display().to_string(),
            ];
            bw_args.extend(labels.iter().cloned());
            let am = run(&amtool, &am_args);
            let bw = run(bellwether, &bw_args);
            assert!(
                am.status.success(),
                "amtool failed on {}: {:?}",
                file.display(),
                am
            );
            let (am_out, bw_out) = (
                String::from_utf8_lossy(&am.stdout).trim().to_string(),
                String::from_utf8_lossy(&bw.stdout).trim().to_string(),
            );
            if am_out == bw_out && bw.status.success() {
                agreed += 1;
            } else {
                disagreements.push(format!(
                    "{} [{line}]: amtool {am_out:?}, bellwether {bw_out:?} {}",
                    file.display(),
                    String::from_utf8_lossy(&bw.stderr)
                ));
            }
        }
    }
    println!("notify routes: {agreed}/{cases} label sets routed as amtool routes them");
    assert!(cases >= 40, "the corpus has too few cases ({cases})");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// `bellwether check config` on a config naming `file` as notify.config_file.
fn bellwether_check(file: &Path, dir: &Path) -> Output {
    let config = dir.join(format!(
        "{}.bellwether.yml",
        file.file_stem().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(
        &config,
        format!("notify:\n  config_file: {:?}\n", file.display().to_string()),
    )
    .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
    run(
        Path::new(env!("CARGO_BIN_EXE_bellwether")),
        &[
            "check".into(),
            "config".into(),
            config.display().to_string(),
        ],
    )
}

#[test]
fn config_verdicts_match_amtool() {
    let amtool = reference_program("amtool");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = yml_files(&corpus());
    files.extend(yml_files(&corpus().join("bad")));
    let (mut agreed, mut total, mut disagreements) = (0, 0, Vec::new());
    for file in &files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let am = run(
            &amtool,
            &["check-config".into(), file.display().to_string()],
        );
        let bw = bellwether_check(file, dir.path());
        let bw_err = String::from_utf8_lossy(&bw.stderr).into_owned();
        if name.starts_with("bellwether-only-") {
            // Valid for Alertmanager, refused by bellwether by name.
            assert!(am.status.success(), "amtool refused {name}");
            assert!(!bw.status.success(), "bellwether accepted {name}");
            assert!(
                bw_err.contains("is not supported by bellwether"),
                "{bw_err}"
            );
            continue;
        }
        total += 1;
        let bad = file.parent().is_some_and(|p| p.ends_with("bad"));
        assert_eq!(
            am.status.success(),
            !bad,
            "amtool's verdict on {name} is not the corpus's"
        );
        if am.status.success() == bw.status.success() {
            agreed += 1;
            if bad {
                // Every refusal locates itself in the alertmanager.yml.
                assert!(
                    bw_err.contains(&format!("{}:", file.display())),
                    "{name}: {bw_err}"
                );
            }
        } else {
            disagreements.push(format!(
                "{name}: amtool ok={}, bellwether: {bw_err}",
                am.status.success()
            ));
        }
    }
    println!("notify config: {agreed}/{total} files with amtool check-config's verdict");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// Time intervals' `location`: the TZif reader's UTC offsets against GNU
/// `date` (glibc reading the same tz database), for zones with northern,
/// southern, negative (Europe/Dublin) and half-hour DST, every ~37 days from
/// 1970 to 2100 — past the files' last transitions, where the POSIX footer
/// rule applies.
#[test]
fn time_zone_offsets_match_gnu_date() {
    use bellwether::notify::timeinterval::Location;
    let zones = [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Europe/Dublin",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "America/Santiago",
        "Africa/Casablanca",
    ];
    let instants: Vec<i64> = (0..1300).map(|i| i * 3_196_800 + i * 7_919).collect();
    let input: String = instants.iter().map(|t| format!("@{t}\n")).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let list = dir.path().join("instants");
    std::fs::write(&list, input).expect("write instants");
    let (mut agreed, mut total) = (0, 0);
    let mut disagreements = Vec::new();
    for zone in zones {
        let location = Location::load(zone).unwrap_or_else(|e| panic!("{zone}: {e}"));
        let out = Command::new("date")
            .env("TZ", zone)
            .arg("-f")
            .arg(&list)
            .arg("+%z")
            .output()
            .expect("running date");
        assert!(out.status.success(), "date failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for (t, line) in instants.iter().zip(text.lines()) {
            total += 1;
            let sign = if line.starts_with('-') { -1 } else { 1 };
            let digits = &line[1..];
            let expected = sign
                * (digits[..2].parse::<i64>().expect("hours") * 3600
                    + digits[2..4].parse::<i64>().expect("minutes") * 60);
            let got = location.offset_at(*t);
            if got == expected {
                agreed += 1;
            } else {
                disagreements.push(format!("{zone} @{t}: date {line}, bellwether {got}s"));
            }
        }
    }
    println!("time zones: {agreed}/{total} offsets as GNU date");
    assert_eq!(total, zones.len() * instants.len());
    assert!(
        disagreements.is_empty(),
        "{}",
        disagreements[..disagreements.len().min(20)].join("\n")
    );
}
