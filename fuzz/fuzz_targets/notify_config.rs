//! Feeds arbitrary text to the alertmanager.yml loader of the `notify`
//! section (matchers, time intervals, receivers, route checks), then routes a
//! few label sets through what loaded. Any text must load or be refused with
//! findings, never panic; every refusal names at least one problem, each on
//! one line starting with the origin.
//!
//! Run: `scripts/fuzz.sh 300 notify_config` (see docs/fuzzing.md).

#![no_main]

use libfuzzer_sys::fuzz_target;

use bellwether::model::Labels;
use bellwether::notify::{config, matchers, route::RouteTree};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every line is also a matcher line and a label argument.
    for line in text.lines().take(50) {
        let _ = matchers::parse_matchers(line);
        let _ = matchers::parse_label_args(&[line.to_string()]);
    }
    match config::load_str(text, "fuzz.yml", None) {
        Ok(notify) => {
            let tree = RouteTree::new(&notify);
            for labels in [
                Labels::empty(),
                Labels::new([("severity", "critical"), ("alertname", "A")]),
                Labels::new([("team", ""), ("service", "x\ny")]),
            ] {
                let routes = tree.routes_for(&labels);
                assert!(!routes.is_empty(), "the root always matches");
                for route in routes {
                    let _ = route.group_key(&labels);
                    let _ = tree.is_muted(route, 1_700_000_000);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused config names a problem");
            for line in &errors {
                assert!(line.starts_with("fuzz.yml"), "{line:?}");
                assert!(!line.contains('\n'), "one finding per line: {line:?}");
            }
        }
    }
});
