//! Feeds arbitrary bytes as a `POST /api/v2/silences` body (JSON, required
//! fields, matchers, date-times, scheduled-silence `timeIntervals` with time
//! zones). A refusal must be a 4xx; an accepted body is stored in an
//! in-memory silence store (Alertmanager's validation), and a stored silence
//! is rendered as the API shows it and checked against a label set.
//!
//! Run: `scripts/fuzz.sh 300 silence_json` (see docs/fuzzing.md).

#![no_main]

use bellwether::api::silences::{parse_post_body, render_silence};
use bellwether::model::Labels;
use bellwether::notify::silences::Silences;
use bellwether::notify::types::Silencer;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    match parse_post_body(data) {
        Err(status) => assert!((400..500).contains(&status), "status {status}"),
        Ok(mut input) => {
            input.id.clear();
            let store = Silences::in_memory(3_600_000);
            if let Ok(id) = store.set(input, NOW) {
                let silence = store.get(&id).expect("a stored silence is found");
                assert!(!silence.matchers.is_empty());
                let json = render_silence(&silence, NOW);
                assert!(json.contains(&id));
                let _ = store.silenced_by(&Labels::new([("alertname", "x")]), NOW);
            }
        }
    }
});
