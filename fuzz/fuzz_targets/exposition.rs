//! Feeds arbitrary bytes to both exposition parsers (text 0.0.4 and
//! OpenMetrics 1.0). The parsers must never panic, and every series they
//! accept must yield a label set with a metric name.
//!
//! Run: `scripts/fuzz.sh 600 exposition` (see docs/fuzzing.md).

#![no_main]

use bellwether::collect::scrape::parse::{Entry, Format, Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Text, Format::OpenMetrics] {
        let mut parser = Parser::new(data, format);
        while let Ok(Some(entry)) = parser.next_entry() {
            if let Entry::Series(_) = entry {
                let labels = parser.labels();
                assert!(labels.metric_name().is_some());
            }
        }
    }
});
