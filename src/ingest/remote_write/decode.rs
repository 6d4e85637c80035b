//! Body → validated batch, without I/O: snappy block decompression, protobuf
//! decoding and the per-series label checks. Pure, so the fuzz target
//! (fuzz/fuzz_targets/remote_write.rs) and the unit tests drive it directly.

use std::fmt;

use prost::Message;

use super::proto;
use crate::model::{is_valid_label_name, is_valid_metric_name, Label, Labels, METRIC_NAME};

/// Largest decompressed body accepted. Prometheus senders send a few hundred
/// samples per request (kilobytes); Prometheus's own remote-read limit is 32 MiB.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Snappy's block format cannot expand input by more than about 21.4x (a 3-byte
/// copy op emits at most 64 bytes); a header claiming more is a lie that would
/// otherwise make us allocate the claimed size before finding out.
const MAX_SNAPPY_RATIO: usize = 22;

/// The start of snappy's *framed* (stream) format, which remote_write does not use.
const SNAPPY_FRAMED_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Why a body could not be decoded. Answered with 400, like Prometheus.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "snappy: the body is in snappy's framed (stream) format; remote_write bodies use the block format"
    )]
    SnappyFramed,
    #[error("{source} (the body must be a snappy block-compressed protobuf WriteRequest)")]
    Snappy {
        #[source]
        source: snap::Error,
    },
    #[error(
        "snappy: decompressed size {claimed} bytes exceeds the limit of {limit} bytes (or what {compressed} compressed bytes can hold)"
    )]
    TooLarge {
        claimed: usize,
        compressed: usize,
        limit: usize,
    },
    #[error("decoding the protobuf WriteRequest: {source}")]
    Protobuf {
        #[source]
        source: prost::DecodeError,
    },
}

/// Decompresses and decodes a remote_write 1.0 body.
pub fn decode_write_request(body: &[u8]) -> Result<proto::WriteRequest, DecodeError> {
    if body.starts_with(SNAPPY_FRAMED_MAGIC) {
        return Err(DecodeError::SnappyFramed);
    }
    let claimed =
        snap::raw::decompress_len(body).map_err(|source| DecodeError::Snappy { source })?;
    let ratio_limit = body.len().saturating_mul(MAX_SNAPPY_RATIO);
    if claimed > MAX_DECOMPRESSED_BYTES || claimed > ratio_limit {
        return Err(DecodeError::TooLarge {
            claimed,
            compressed: body.len(),
            limit: MAX_DECOMPRESSED_BYTES,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|source| DecodeError::Snappy { source })?;
    proto::WriteRequest::decode(raw.as_slice()).map_err(|source| DecodeError::Protobuf { source })
}

/// Encodes and compresses a request the way a remote_write 1.0 sender does
/// (for tests, the fuzz target and tools that push to bellwether).
pub fn encode_write_request(request: &proto::WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy compresses any input below 4 GiB")
}

/// Why one series was refused. The texts are Prometheus's: the label checks of
/// its remote-storage codec (`validateLabelsAndMetricName`) and the head
/// appender's `ErrInvalidSample` wrappers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelError {
    InvalidLabelName(String),
    InvalidMetricName(String),
    DuplicateLabelName(String),
    Empty,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::InvalidLabelName(name) => write!(f, "invalid label name: {name}"),
            LabelError::InvalidMetricName(value) => write!(f, "invalid metric name: {value}"),
            LabelError::DuplicateLabelName(name) => {
                write!(f, "label name \"{name}\" is not unique: invalid sample")
            }
            LabelError::Empty => f.write_str("empty labelset: invalid sample"),
        }
    }
}

/// Turns the labels of one `TimeSeries` into a canonical label set.
///
/// Like Prometheus: labels with an empty value are dropped (an empty value
/// means "absent"), unsorted labels are sorted (senders should sort, but
/// Prometheus's receiver sorts rather than refuses), a repeated name is refused
/// and so is a set with no labels. `__name__` is not required: Prometheus
/// stores series without a metric name, and `{job="x"}` selects them.
///
/// Stricter than Prometheus 2.42, which stores whatever names it is sent:
/// label names must match `[a-zA-Z_][a-zA-Z0-9_]*` and metric names
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, since PromQL and the rest of bellwether
/// assume them.
pub fn series_labels(labels: &[proto::Label]) -> Result<Labels, LabelError> {
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    for l in labels {
        if !is_valid_label_name(&l.name) {
            return Err(LabelError::InvalidLabelName(l.name.clone()));
        }
        if l.value.is_empty() {
            continue;
        }
        if l.name == METRIC_NAME && !is_valid_metric_name(&l.value) {
            return Err(LabelError::InvalidMetricName(l.value.clone()));
        }
        out.push(Label::new(l.name.as_str(), l.value.as_str()));
    }
    if out.is_empty() {
        return Err(LabelError::Empty);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(LabelError::DuplicateLabelName(w[0].name.clone()));
    }
    Ok(Labels::from_sorted(out))
}

/// The labels of a refused series as they were sent, for error messages.
pub fn describe_labels(labels: &[proto::Label]) -> String {
    let mut s = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("{:?}={:?}", l.name, l.value));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn label(name: &str, value: &str) -> proto::Label {
        proto::Label {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        let l = series_labels(&[
            label("job", "a"),
            label("__name__", "up"),
            label("zone", ""),
        ])
        .expect("valid labels");
        assert_eq!(l.to_string(), r#"up{job="a"}"#);
    }

    #[test]
    fn refusals_use_prometheus_wording() {
        let cases = [
            (vec![label("1a", "x")], "invalid label name: 1a"),
            (vec![label("__name__", "a.b")], "invalid metric name: a.b"),
            (
                vec![
                    label("job", "a"),
                    label("__name__", "up"),
                    label("job", "b"),
                ],
                "label name \"job\" is not unique: invalid sample",
            ),
            (vec![], "empty labelset: invalid sample"),
            (vec![label("job", "")], "empty labelset: invalid sample"),
        ];
        for (labels, want) in cases {
            let err = series_labels(&labels).expect_err("must be refused");
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn series_without_metric_name_are_accepted() {
        assert!(series_labels(&[label("job", "a")]).is_ok());
    }

    #[test]
    fn lying_snappy_header_is_refused_before_allocating() {
        // Varint 0xffffffff: a 4 GiB claim in a 5-byte body.
        let err = decode_write_request(&[0xff, 0xff, 0xff, 0xff, 0x0f]).expect_err("refused");
        assert!(matches!(err, DecodeError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn framed_snappy_is_named() {
        let mut body = SNAPPY_FRAMED_MAGIC.to_vec();
        body.extend_from_slice(b"rest");
        let err = decode_write_request(&body).expect_err("refused");
        assert!(err.to_string().contains("framed"), "{err}");
    }

    #[test]
    fn round_trip() {
        let req = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![label("__name__", "up")],
                samples: vec![proto::Sample {
                    value: 1.0,
                    timestamp: 1000,
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .expect("compressing");
        assert_eq!(decode_write_request(&body).expect("decodes"), req);
    }

    /// The fuzz target's properties (fuzz/fuzz_targets/remote_write.rs), run
    /// on every `cargo test` over random bytes and random valid requests.
    fn check_properties(body: &[u8]) {
        let Ok(request) = decode_write_request(body) else {
            return;
        };
        for series in &request.timeseries {
            if let Ok(labels) = series_labels(&series.labels) {
                let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
                assert!(!names.is_empty());
                assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
            }
        }
        let reencoded = encode_write_request(&request);
        let again = decode_write_request(&reencoded).expect("a re-encoded request decodes");
        assert_eq!(encode_write_request(&again), reencoded);
    }

    fn arb_request() -> impl proptest::strategy::Strategy<Value = proto::WriteRequest> {
        use proptest::prelude::*;
        let label = ("[a-z_]{0,3}", "[a-z]{0,2}").prop_map(|(n, v)| label(&n, &v));
        let sample = (any::<f64>(), any::<i64>())
            .prop_map(|(value, timestamp)| proto::Sample { value, timestamp });
        let series = (
            proptest::collection::vec(label, 0..4),
            proptest::collection::vec(sample, 0..3),
        )
            .prop_map(|(labels, samples)| proto::TimeSeries {
                labels,
                samples,
                ..Default::default()
            });
        proptest::collection::vec(series, 0..4).prop_map(|timeseries| proto::WriteRequest {
            timeseries,
            metadata: vec![],
        })
    }

    proptest::proptest! {
        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            check_properties(&body);
        }

        #[test]
        fn random_requests_round_trip(request in arb_request()) {
            let body = encode_write_request(&request);
            let decoded = decode_write_request(&body).expect("decodes");
            proptest::prop_assert_eq!(encode_write_request(&decoded), body.clone());
            check_properties(&body);
        }
    }
}
