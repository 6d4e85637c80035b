//! Feeds arbitrary text to the config loader (YAML tree, `${VAR}` expansion,
//! typed deserialization, validation). Any text must load or be refused with
//! findings, never panic; every refusal names at least one problem, each on
//! one line starting with the origin.
//!
//! Run: `scripts/fuzz.sh` or `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run config`
//! (see docs/fuzzing.md).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = bellwether::config::load_str(text, "fuzz.yml") {
        assert!(!e.errors.is_empty(), "a refused config names a problem");
        for line in &e.errors {
            assert!(line.starts_with("fuzz.yml"), "{line:?}");
            assert!(!line.contains('\n'), "one finding per line: {line:?}");
        }
    }
});
