//! Feeds arbitrary text to the rule-file loader (YAML tree, typed rule
//! groups, PromQL parsing of every `expr`, template parsing of every label
//! and annotation) and, with the same text, to the rule unit-test file
//! parser and the series-description notation (`0+10x100 _ stale`). Any
//! input must be loaded or refused with located errors, never panic.
//!
//! Run: `scripts/fuzz.sh 300 rule_file` (see docs/fuzzing.md).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = bellwether::rules::LoadOptions::default();
    if let Err(errors) = bellwether::rules::parse_rule_file(text, "fuzz.yml", &options) {
        assert!(!errors.is_empty(), "a refused rule file names a problem");
        for line in &errors {
            assert!(line.starts_with("fuzz.yml"), "{line:?}");
        }
    }
    let _ = bellwether::rules::unittest::file::parse(text);
    for line in text.lines().take(8) {
        let _ = bellwether::rules::unittest::series::parse_series_desc(line);
    }
});
