//! Feeds arbitrary text to the alert-template language (Go text/template
//! with Prometheus's functions): parse check and expansion against fixed
//! labels, a value and a `query` that answers two samples. Never a panic,
//! never a stack overflow (nesting and recursion are capped).
//!
//! Run: `scripts/fuzz.sh 300 template` (see docs/fuzzing.md).

#![no_main]

use std::collections::BTreeMap;

use bellwether::template::{self, AlertTemplateData, QueryFunc, QuerySample};
use libfuzzer_sys::fuzz_target;

struct TwoSamples;

impl QueryFunc for TwoSamples {
    fn query(&self, _expr: &str) -> Result<Vec<QuerySample>, String> {
        let sample = |instance: &str, value| QuerySample {
            labels: BTreeMap::from([("instance".to_string(), instance.to_string())]),
            value,
        };
        Ok(vec![sample("a", 1.5), sample("b", f64::NAN)])
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = template::check_alert_template("Fuzz", text);
    let labels = BTreeMap::from([
        ("instance".to_string(), "host:9100".to_string()),
        ("job".to_string(), "node".to_string()),
    ]);
    let external = BTreeMap::from([("cluster".to_string(), "c1".to_string())]);
    let data = AlertTemplateData {
        labels: &labels,
        external_labels: &external,
        external_url: "http://bellwether:9471",
        value: 0.875,
    };
    let _ = template::expand_alert_template("Fuzz", text, &data, 1_700_000_000_000, &TwoSamples);
});
