//! Feeds arbitrary bytes to the LLM usage and event parsers
//! (`POST /api/v1/usage`, `POST /api/v1/events` bodies) and, as text, to the
//! pricing-file parser. Nothing may panic; every refused record names an
//! index inside the array; a refused pricing file names at least one
//! problem, each on one line starting with the origin; a loaded table prices
//! a request without panicking.
//!
//! Run: `scripts/fuzz.sh 300 llm_usage` (see docs/fuzzing.md).

#![no_main]

use bellwether::llm::pricing::{PriceTable, Tokens};
use bellwether::llm::record::{parse_events, parse_usage};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_750_000_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = parse_usage(data, NOW) {
        let n = parsed.records.len() + parsed.errors.len();
        assert!(parsed.errors.iter().all(|e| e.index < n));
        for (_, r) in &parsed.records {
            assert!(r.reasoning_tokens <= r.output_tokens);
        }
    }
    let _ = parse_events(data, NOW);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PriceTable::parse(text, "fuzz.yaml") {
        Ok(table) => {
            let tokens = Tokens {
                input: u64::MAX,
                output: u64::MAX,
                cache_read: u64::MAX / 2,
                cache_write: u64::MAX / 2,
                cache_write_1h: u64::MAX,
                reasoning: 1,
            };
            for model in &table.models {
                for price in &model.prices {
                    let _ = price.rates_for(tokens.input).cost(&tokens);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for line in &errors {
                assert!(line.starts_with("fuzz.yaml"), "{line:?}");
                assert!(!line.contains('\n'), "{line:?}");
            }
        }
    }
});
