//! Feeds arbitrary bytes to the probes' certificate reader
//! (`src/collect/probe/der.rs`), which reads `notAfter` from certificates a
//! probed server sends. It must never panic, and a time it accepts must lie
//! in the range its two syntaxes can write (years 0000–9999).
//!
//! Run: `scripts/fuzz.sh 600 cert_expiry` (see docs/fuzzing.md).

#![no_main]

use bellwether::collect::probe::der::not_after;
use libfuzzer_sys::fuzz_target;

/// 0000-01-01 and 10000-01-01 in Unix seconds.
const MIN: i64 = -62_167_219_200;
const MAX: i64 = 253_402_300_800;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = not_after(data) {
        assert!((MIN..MAX).contains(&t), "notAfter {t} out of range");
    }
});
