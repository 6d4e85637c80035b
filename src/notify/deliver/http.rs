//! One HTTP request of a receiver, with the receiver's `http_config`
//! (basic auth, `authorization`, bearer token, TLS), and the verdict on its
//! answer: delivered (2xx), retry (connection error, timeout, 5xx, 429 with
//! its `Retry-After`), or failed (any other status).

use std::time::{Duration, SystemTime};

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT,
};

use crate::collect::scrape::scrape_loop::error_chain;
use crate::notify::config::HttpConfig;

/// Receiver answers are kept (logs, outbox, `notify test`) up to this many bytes.
pub const ANSWER_LIMIT: usize = 1024;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Accepted; `answer` is what the receiver said (truncated).
    Delivered { answer: String },
    /// Worth trying again, not before `after` if the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
        reason: FailReason,
    },
    /// Refused for good (or cannot be sent at all).
    Failed { error: String, reason: FailReason },
}

/// The `reason` label of the failure metrics (Alertmanager 0.27's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    ClientError,
    ServerError,
    Other,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::ClientError => "clientError",
            FailReason::ServerError => "serverError",
            FailReason::Other => "other",
        }
    }
}

/// Cuts `s` to at most `limit` bytes on a character boundary, marking the cut.
pub fn truncate_answer(s: &str, limit: usize) -> String {
    let cut = cut_at_char(s, limit);
    if cut.len() == s.len() {
        return s.to_string();
    }
    format!("{cut}… ({} bytes)", s.len())
}

/// The longest prefix of `s` of at most `limit` bytes that ends on a
/// character boundary.
pub fn cut_at_char(s: &str, limit: usize) -> &str {
    if s.len() <= limit {
        return s;
    }
    let mut end = limit;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An HTTP client with a receiver's settings.
#[derive(Clone)]
pub struct HttpTarget {
    client: reqwest::Client,
    config: HttpConfig,
    timeout: Duration,
}

fn read_secret_file(what: &str, path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("{what}: cannot read {path}: {e}"))
}

impl HttpTarget {
    pub fn new(
        config: Option<&HttpConfig>,
        timeout: Duration,
        owner: &str,
    ) -> Result<Self, String> {
        let config = config.cloned().unwrap_or_default();
        let client = crate::collect::scrape::build_http_client(
            config.tls_config.as_ref(),
            config.follow_redirects,
            owner,
        )?;
        Ok(HttpTarget {
            client,
            config,
            timeout,
        })
    }

    /// The `Authorization` header the config asks for (files read now, so a
    /// rotated secret is picked up).
    fn authorization(&self) -> Result<Option<String>, String> {
        let c = &self.config;
        if let Some(basic) = &c.basic_auth {
            let password = match (&basic.password, &basic.password_file) {
                (Some(p), _) => p.expose().to_string(),
                (None, Some(f)) => read_secret_file("basic_auth.password_file", f)?,
                (None, None) => String::new(),
            };
            let raw = format!("{}:{password}", basic.username);
            return Ok(Some(format!("Basic {}", base64(raw.as_bytes()))));
        }
        if let Some(auth) = &c.authorization {
            let credentials = match (&auth.credentials, &auth.credentials_file) {
                (Some(s), _) => s.expose().to_string(),
                (None, Some(f)) => read_secret_file("authorization.credentials_file", f)?,
                (None, None) => String::new(),
            };
            return Ok(Some(format!("{} {credentials}", auth.kind)));
        }
        if let Some(token) = &c.bearer_token {
            return Ok(Some(format!("Bearer {}", token.expose())));
        }
        if let Some(file) = &c.bearer_token_file {
            return Ok(Some(format!(
                "Bearer {}",
                read_secret_file("bearer_token_file", file)?
            )));
        }
        Ok(None)
    }

    /// POSTs `body` to `url` and judges the answer.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        extra: &[(String, String)],
        body: Vec<u8>,
        retry_codes: &[u16],
    ) -> Outcome {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, header_value(content_type));
        headers.insert(
            USER_AGENT,
            header_value(&format!("bellwether/{}", crate::VERSION)),
        );
        match self.authorization() {
            Ok(Some(auth)) => {
                headers.insert(AUTHORIZATION, header_value(&auth));
            }
            Ok(None) => {}
            Err(error) => {
                return Outcome::Failed {
                    error,
                    reason: FailReason::Other,
                }
            }
        }
        for (name, value) in extra {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                headers.insert(name, header_value(value));
            }
        }
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: error_chain(&e),
                    after: None,
                    reason: FailReason::Other,
                }
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let answer = match response.bytes().await {
            Ok(b) => truncate_answer(&String::from_utf8_lossy(&b), ANSWER_LIMIT),
            Err(e) => format!("(reading the answer failed: {e})"),
        };
        let status = status.as_u16();
        match judge(status, answer, retry_after) {
            Outcome::Failed { error, reason } if retry_codes.contains(&status) => Outcome::Retry {
                error,
                after: retry_after,
                reason,
            },
            other => other,
        }
    }
}

/// The verdict on an HTTP status (Alertmanager's `Retrier.Check` plus 429).
pub fn judge(status: u16, answer: String, retry_after: Option<Duration>) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered { answer };
    }
    let mut error = format!("unexpected status code {status}");
    if !answer.is_empty() {
        error = format!("{error}: {answer}");
    }
    if status >= 500 {
        Outcome::Retry {
            error,
            after: retry_after,
            reason: FailReason::ServerError,
        }
    } else if status == 429 {
        Outcome::Retry {
            error,
            after: retry_after,
            reason: FailReason::ClientError,
        }
    } else {
        Outcome::Failed {
            error,
            reason: if status >= 400 {
                FailReason::ClientError
            } else {
                FailReason::Other
            },
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn statuses_are_judged_like_alertmanager_plus_429() {
        assert!(matches!(
            judge(200, String::new(), None),
            Outcome::Delivered { .. }
        ));
        assert!(matches!(
            judge(503, String::new(), None),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            judge(429, String::new(), Some(Duration::from_secs(3))),
            Outcome::Retry { after: Some(_), .. }
        ));
        match judge(400, "bad key".into(), None) {
            Outcome::Failed { error, reason } => {
                assert_eq!(error, "unexpected status code 400: bad key");
                assert_eq!(reason, FailReason::ClientError);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn answers_are_truncated_on_char_boundaries() {
        assert_eq!(truncate_answer("héllo", 2), "h… (6 bytes)");
        assert_eq!(truncate_answer("ok", 10), "ok");
    }
}
