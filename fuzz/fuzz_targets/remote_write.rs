//! Fuzzes the remote_write receiver's decoding: any body must decode or be
//! refused with an error, never panic or allocate more than the limit; what
//! decodes must survive an encode/decode round trip, and every accepted
//! series must come out as a canonical label set.

#![no_main]

use bellwether::ingest::remote_write::decode::{
    decode_write_request, encode_write_request, series_labels,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(request) = decode_write_request(body) else {
        return;
    };
    for series in &request.timeseries {
        if let Ok(labels) = series_labels(&series.labels) {
            let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
            assert!(!names.is_empty(), "an accepted series has labels");
            assert!(
                names.windows(2).all(|w| w[0] < w[1]),
                "accepted labels are sorted and unique: {names:?}"
            );
            assert!(labels.iter().all(|l| !l.value.is_empty()));
        }
    }
    let reencoded = encode_write_request(&request);
    let again = decode_write_request(&reencoded).expect("a re-encoded request decodes");
    // Compare encodings: NaN sample values make `==` on the messages false.
    assert_eq!(encode_write_request(&again), reencoded);
});
