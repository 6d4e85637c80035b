//! Feeds arbitrary text to the Prometheus API's parameter parsers: every
//! line is tried as a time (`start`, `end`, `time`) and all lines together as
//! `match[]` selectors. They must answer Ok or Err, never panic; an accepted
//! matcher set has a matcher that does not match the empty string.
//!
//! Run: `scripts/fuzz.sh` or `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run api_params`
//! (see docs/fuzzing.md).

#![no_main]

use bellwether::api::prometheus::{parse_matcher_sets, parse_time};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params: Vec<&str> = text.split('\n').collect();
    for param in &params {
        let _ = parse_time(param);
    }
    if let Ok(sets) = parse_matcher_sets(&params) {
        assert_eq!(sets.len(), params.len());
        for set in &sets {
            assert!(!set.iter().all(|m| m.matches_empty()), "{set:?}");
        }
    }
});
