//! Feeds arbitrary bytes to the host collector's /proc parsers
//! (src/collect/host/parse.rs) and its TZif reader. None may panic; parsed
//! values must be consistent with the input (a diskstats line has at least
//! 11 counters, a netdev device name has no `:`).
//!
//! Run: `scripts/fuzz.sh 600 host` (see docs/fuzzing.md).

#![no_main]

use bellwether::collect::host::{parse, zone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = zone::local_time_types(data);
    let text = String::from_utf8_lossy(data);
    let _ = parse::stat(&text);
    let _ = parse::meminfo(&text);
    let _ = parse::loadavg(&text);
    let _ = parse::mounts(&text);
    if let Ok(disks) = parse::diskstats(&text) {
        for d in disks {
            assert!(d.counters.len() >= 11);
        }
    }
    let _ = parse::udev_properties(&text);
    if let Ok(devices) = parse::netdev(&text) {
        for (name, _) in devices {
            assert!(!name.contains(':'));
        }
    }
    let _ = parse::pressure(&text);
    let _ = parse::vmstat(&text);
});
