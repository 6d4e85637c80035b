//! A small, panic-free DER reader for the one thing the probes need from a
//! certificate: its `notAfter` time (RFC 5280 §4.1.2.5).
//!
//! Why not a crate: x509-parser (with nom, der-parser, asn1-rs, oid-registry)
//! would be the largest dependency of the probes for ~100 lines of reading;
//! rustls already verified the certificate (or was told not to), so only the
//! position of one field and its time syntax matter here. Everything read
//! comes from the network: every length and index is checked, and any
//! surprise is an [`DerError`], never a panic (fuzzed: `fuzz/fuzz_targets/cert_expiry.rs`).

use crate::model::{days_from_civil, days_in_month};
/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    #[error("truncated DER: {0}")]
    Truncated(&'static str),
    #[error("unexpected DER tag 0x{found:02x} for {what}")]
    UnexpectedTag { what: &'static str, found: u8 },
    #[error("unsupported DER length encoding")]
    BadLength,
    #[error("invalid certificate time {0:?}")]
    BadTime(String),
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT` (the TBSCertificate's version).
const CONTEXT_0: u8 = 0xa0;

/// One TLV: its tag, its content, and what follows it.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    rest: &'a [u8],
}

fn read_tlv<'a>(input: &'a [u8], what: &'static str) -> Result<Tlv<'a>, DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated(what))?;
    let (&first, mut after_len) = after_tag.split_first().ok_or(DerError::Truncated(what))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1..=4 length bytes (a certificate is far below 4 GiB).
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(DerError::BadLength);
        }
        if after_len.len() < count {
            return Err(DerError::Truncated(what));
        }
        let (bytes, rest) = after_len.split_at(count);
        after_len = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if after_len.len() < len {
        return Err(DerError::Truncated(what));
    }
    let (content, rest) = after_len.split_at(len);
    Ok(Tlv { tag, content, rest })
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
    let tlv = read_tlv(input, what)?;
    if tlv.tag != tag {
        return Err(DerError::UnexpectedTag {
            what,
            found: tlv.tag,
        });
    }
    Ok(tlv)
}

/// The `notAfter` time of a DER certificate, in seconds since the Unix epoch.
pub fn not_after(cert: &[u8]) -> Result<i64, DerError> {
    let certificate = expect(cert, SEQUENCE, "Certificate")?;
    let tbs = expect(certificate.content, SEQUENCE, "TBSCertificate")?;
    let mut fields = tbs.content;
    // version [0] EXPLICIT, optional (absent means v1).
    let first = read_tlv(fields, "version")?;
    if first.tag == CONTEXT_0 {
        fields = first.rest;
    }
    let serial = expect(fields, INTEGER, "serialNumber")?;
    let signature = expect(serial.rest, SEQUENCE, "signature")?;
    let issuer = expect(signature.rest, SEQUENCE, "issuer")?;
    let validity = expect(issuer.rest, SEQUENCE, "validity")?;
    let not_before = read_tlv(validity.content, "notBefore")?;
    let not_after = read_tlv(not_before.rest, "notAfter")?;
    parse_time(not_after.tag, not_after.content)
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950–2049, RFC 5280) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, as seconds since the Unix epoch.
fn parse_time(tag: u8, text: &[u8]) -> Result<i64, DerError> {
    let bad = || DerError::BadTime(String::from_utf8_lossy(text).into_owned());
    let digits = match tag {
        UTC_TIME => 12,
        GENERALIZED_TIME => 14,
        found => {
            return Err(DerError::UnexpectedTag {
                what: "notAfter",
                found,
            })
        }
    };
    if text.len() != digits + 1 || text.last() != Some(&b'Z') {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, DerError> {
        let part = text.get(range).ok_or_else(bad)?;
        part.iter().try_fold(0i64, |acc, &b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(bad())
            }
        })
    };
    let (year, rest) = if tag == UTC_TIME {
        let yy = number(0..2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    } else {
        (number(0..4)?, 4)
    };
    let month = number(rest..rest + 2)?;
    let day = number(rest + 2..rest + 4)?;
    let hour = number(rest + 4..rest + 6)?;
    let minute = number(rest + 6..rest + 8)?;
    let second = number(rest + 8..rest + 10)?;
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the PEM blocks of a file written by `openssl` into DER.
    fn pem_to_der(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        base64_decode(&body)
    }

    fn base64_decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        let bytes: Vec<u8> = text.bytes().filter(|&b| b != b'=').collect();
        let mut out = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut acc = 0u32;
            for (i, &c) in chunk.iter().enumerate() {
                acc |= u32::from(value(c)) << (18 - 6 * i);
            }
            let n = chunk.len().saturating_sub(1);
            out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
        }
        out
    }

    /// A real certificate from openssl, and the notAfter `openssl x509
    /// -enddate` prints for it, so the reader is checked against openssl.
    fn openssl_cert(days: &str, extra: &[&str]) -> (Vec<u8>, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-subj", "/CN=der-test", "-days", days])
            .args(extra)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("running openssl");
        assert!(status.success());
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        // notAfter=2026-11-25 06:40:00Z
        let text = String::from_utf8_lossy(&out.stdout);
        let when = text
            .trim()
            .trim_start_matches("notAfter=")
            .trim_end_matches('Z');
        let digits: String = when.chars().filter(char::is_ascii_digit).collect();
        let n = |r: std::ops::Range<usize>| digits[r].parse::<i64>().expect("digits");
        let expected = days_from_civil(n(0..4), n(4..6), n(6..8)) * 86_400
            + n(8..10) * 3600
            + n(10..12) * 60
            + n(12..14);
        let pem = std::fs::read_to_string(&cert).expect("cert");
        (pem_to_der(&pem), expected)
    }

    #[test]
    fn reads_not_after_of_real_certificates_as_openssl_does() {
        // UTCTime (before 2050) and GeneralizedTime (from 2050 on).
        for days in ["3", "400", "10000"] {
            let (der, expected) = openssl_cert(days, &[]);
            assert_eq!(not_after(&der), Ok(expected), "-days {days}");
        }
        let now = crate::model::now_millis() / 1000;
        let (der, _) = openssl_cert("3", &[]);
        let left = not_after(&der).expect("parses") - now;
        assert!(
            (3 * 86_400 - 60..=3 * 86_400 + 60).contains(&left),
            "{left}"
        );
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        let (der, _) = openssl_cert("30", &[]);
        for len in 0..der.len() {
            // Every prefix either fails or (once validity is complete) still
            // reads the right time: never a panic.
            let _ = not_after(&der[..len]);
        }
        assert!(not_after(&der[..10]).is_err());
        assert!(not_after(b"").is_err());
        assert!(not_after(b"\x30\x84\xff\xff\xff\xff").is_err());
        assert!(not_after(b"\x30\x89\x01").is_err());
        assert!(not_after(b"\x02\x01\x00").is_err());
        let mut flipped = der.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = not_after(&flipped);
            flipped[i] ^= 0xff;
        }
    }

    proptest::proptest! {
        /// The fuzz target's property on every `cargo test`: arbitrary bytes,
        /// and a real certificate's header with arbitrary bytes after it.
        #[test]
        fn never_panics_and_stays_in_range(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            prefix in 0usize..40,
        ) {
            let cert = include_bytes!("../../../fuzz/seeds/cert_expiry/ec-3-days.der");
            let mut mixed = cert[..prefix.min(cert.len())].to_vec();
            mixed.extend_from_slice(&bytes);
            for input in [&bytes[..], &mixed[..]] {
                if let Ok(t) = not_after(input) {
                    proptest::prop_assert!((-62_167_219_200..253_402_300_800).contains(&t));
                }
            }
        }
    }

    #[test]
    fn times_are_checked() {
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Ok(0));
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Ok(2_524_607_999));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20000229120000Z"),
            Ok(951_825_600)
        );
        for bad in [
            &b"700101000000"[..],
            b"7001010000001Z",
            b"701301000000Z",
            b"700230000000Z",
            b"7001010000+0Z",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffZ",
        ] {
            assert!(parse_time(UTC_TIME, bad).is_err(), "{bad:?}");
        }
        assert!(parse_time(GENERALIZED_TIME, b"21000229000000Z").is_err());
        assert!(parse_time(0x04, b"700101000000Z").is_err());
    }
}
