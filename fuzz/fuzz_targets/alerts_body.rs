//! Feeds arbitrary bytes to the `POST /api/v2/alerts` body parser
//! (`api::alertmanager::parse_postable_alerts`: JSON, go-swagger's checks,
//! strfmt date-times), then completes and validates each alert accepted as
//! the router does. Nothing may panic; accepted alerts' times print.
//!
//! Run: `scripts/fuzz.sh 300 alerts_body` (see docs/fuzzing.md).

#![no_main]

use bellwether::api::alertmanager::{parse_postable_alerts, strfmt_time};
use bellwether::notify::alerts::{complete, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(alerts) = parse_postable_alerts(data) {
        for mut alert in alerts {
            complete(&mut alert, 1_700_000_000_000, std::time::Duration::from_secs(300));
            let _ = validate(&alert);
            assert!(strfmt_time(alert.starts_at).ends_with('Z'));
            assert!(strfmt_time(alert.ends_at).ends_with('Z'));
        }
    }
});
