//! Feeds arbitrary bytes to the OTLP/HTTP body readers (src/otlp): as a
//! protobuf and an OTLP/JSON `/v1/metrics` body (decode and translation to
//! samples) and `/v1/traces` body (decode and GenAI usage records), and
//! through the bounded gzip reader. Nothing may panic; the counts must agree.
//!
//! Run: `scripts/fuzz.sh 300 otlp` (see docs/fuzzing.md).

#![no_main]

use bellwether::otlp::{decompress, metrics_body, traces_body, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for enc in [Encoding::Protobuf, Encoding::Json] {
        if let Ok(t) = metrics_body(data, enc, 1_700_000_000_000) {
            assert!(t.rejected <= t.points);
            for (labels, _, _) in &t.samples {
                assert!(labels.get("__name__").is_some_and(|n| !n.is_empty()));
            }
        }
        if let Ok(u) = traces_body(data, enc, 1_700_000_000_000) {
            assert!(u.records.len() + u.errors.len() <= u.spans);
        }
    }
    if let Ok(out) = decompress(Some("gzip"), data, 64 * 1024) {
        assert!(out.len() <= 64 * 1024);
    }
});
