//! The `http` prober: one request (following redirects), timed phase by
//! phase, with blackbox_exporter's metric names.
//!
//! reqwest hides its connection set-up, so this is a small client on hyper's
//! HTTP/1.1 connection API: bellwether resolves the name, connects, runs the
//! rustls handshake and sends the request itself, timing each step and
//! reading the served certificate chain from rustls. It owns one probe of one
//! target and must not touch the store (the manager does).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::config::HttpProbe;
use super::tls::{self, TlsInfo};
use super::{resolve, split_host_port, Failure, Reason, Recorder};

const MAX_REDIRECTS: usize = 10;

/// Seconds per phase, summed over redirects.
#[derive(Default)]
struct Phases {
    resolve: f64,
    connect: f64,
    tls: f64,
    processing: f64,
    transfer: f64,
}

/// What one request/response exchange produced.
struct Exchange {
    status: u16,
    version: f64,
    content_length: f64,
    location: Option<String>,
    body: Vec<u8>,
    tls: Option<TlsInfo>,
}

/// Runs the probe; metrics go to `rec` as they are known (so a timeout still
/// leaves the phases measured so far).
pub async fn probe(
    settings: &HttpProbe,
    tls_config: &Arc<ClientConfig>,
    target: &str,
    rec: &mut Recorder,
) -> Result<(), Failure> {
    let mut url: Uri = target
        .parse()
        .map_err(|e| Failure::new(Reason::Http, format!("{target:?} is not a URL: {e}")))?;
    let mut method = Method::from_bytes(settings.method.as_bytes())
        .map_err(|e| Failure::new(Reason::Http, format!("method {:?}: {e}", settings.method)))?;
    let mut body = settings.body.clone().unwrap_or_default();
    let mut phases = Phases::default();
    let mut redirects = 0usize;
    let mut first = true;
    let result = loop {
        let exchange = exchange(
            settings,
            tls_config,
            &url,
            &method,
            &body,
            &mut phases,
            first,
            rec,
        )
        .await;
        first = false;
        let exchange = match exchange {
            Ok(e) => e,
            Err(e) => break Err(e),
        };
        let redirect = matches!(exchange.status, 301 | 302 | 303 | 307 | 308);
        if redirect && settings.follow_redirects {
            if let Some(location) = &exchange.location {
                if redirects == MAX_REDIRECTS {
                    break Err(Failure::new(
                        Reason::Http,
                        format!("stopped after {MAX_REDIRECTS} redirects"),
                    ));
                }
                redirects += 1;
                match resolve_location(&url, location) {
                    Ok(next) => url = next,
                    Err(e) => break Err(Failure::new(Reason::Http, e)),
                }
                // As Go's client: 301/302/303 turn into a GET without body
                // (HEAD stays HEAD); 307/308 repeat the request.
                if matches!(exchange.status, 301..=303) && method != Method::HEAD {
                    method = Method::GET;
                    body.clear();
                }
                continue;
            }
        }
        break Ok(exchange);
    };
    rec.gauge(
        "probe_http_redirects",
        "The number of redirects",
        redirects as f64,
    );
    for (phase, seconds) in [
        ("resolve", phases.resolve),
        ("connect", phases.connect),
        ("tls", phases.tls),
        ("processing", phases.processing),
        ("transfer", phases.transfer),
    ] {
        rec.gauge_with(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
            &[("phase", phase)],
            seconds,
        );
    }
    let exchange = match result {
        Ok(exchange) => exchange,
        Err(e) => {
            rec.gauge("probe_http_status_code", "Response HTTP status code", 0.0);
            rec.gauge(
                "probe_failed_due_to_regex",
                "Indicates if probe failed due to regex",
                0.0,
            );
            return Err(e);
        }
    };
    rec.gauge(
        "probe_http_status_code",
        "Response HTTP status code",
        f64::from(exchange.status),
    );
    rec.gauge(
        "probe_http_content_length",
        "Length of http content response",
        exchange.content_length,
    );
    rec.gauge(
        "probe_http_uncompressed_body_length",
        "Length of uncompressed response body",
        exchange.body.len() as f64,
    );
    rec.gauge(
        "probe_http_version",
        "Returns the version of HTTP of the probe response",
        exchange.version,
    );
    rec.gauge(
        "probe_http_ssl",
        "Indicates if SSL was used for the final redirect",
        if exchange.tls.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(info) = &exchange.tls {
        super::record_tls(rec, info);
    }

    let mut failure = None;
    let status_ok = if settings.valid_status_codes.is_empty() {
        (200..300).contains(&exchange.status)
    } else {
        settings.valid_status_codes.contains(&exchange.status)
    };
    if !status_ok {
        failure = Some(Failure::new(
            Reason::StatusCode,
            format!("status code {} is not valid", exchange.status),
        ));
    }
    let mut regex_failed = false;
    // As blackbox_exporter: the body is judged only when the status passed.
    if status_ok
        && (!settings.fail_if_body_matches_regexp.is_empty()
            || !settings.fail_if_body_not_matches_regexp.is_empty())
    {
        let text = String::from_utf8_lossy(&exchange.body);
        if let Some(r) = settings
            .fail_if_body_matches_regexp
            .iter()
            .find(|r| r.0.is_match(&text))
        {
            regex_failed = true;
            failure.get_or_insert(Failure::new(
                Reason::BodyRegex,
                format!("body matched regular expression {:?}", r.0.as_str()),
            ));
        }
        if let Some(r) = settings
            .fail_if_body_not_matches_regexp
            .iter()
            .find(|r| !r.0.is_match(&text))
        {
            regex_failed = true;
            failure.get_or_insert(Failure::new(
                Reason::BodyRegex,
                format!("body did not match regular expression {:?}", r.0.as_str()),
            ));
        }
    }
    rec.gauge(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        if regex_failed { 1.0 } else { 0.0 },
    );
    if settings.fail_if_ssl && exchange.tls.is_some() {
        failure.get_or_insert(Failure::new(
            Reason::Tls,
            "final response was over TLS (fail_if_ssl)",
        ));
    }
    if settings.fail_if_not_ssl && exchange.tls.is_none() {
        failure.get_or_insert(Failure::new(
            Reason::Tls,
            "final response was not over TLS (fail_if_not_ssl)",
        ));
    }
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// One request on a new connection: resolve, connect, TLS, request, body.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    settings: &HttpProbe,
    tls_config: &Arc<ClientConfig>,
    url: &Uri,
    method: &Method,
    body: &str,
    phases: &mut Phases,
    first: bool,
    rec: &mut Recorder,
) -> Result<Exchange, Failure> {
    let https = match url.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => {
            return Err(Failure::new(
                Reason::Http,
                format!("unsupported URL scheme {other:?} in {url}"),
            ))
        }
    };
    let authority = url
        .authority()
        .ok_or_else(|| Failure::new(Reason::Http, format!("{url} has no host")))?;
    let default_port = if https { 443 } else { 80 };
    let (host, port) = split_host_port(authority.as_str(), Some(default_port))
        .map_err(|e| Failure::new(Reason::Http, format!("{url}: {e}")))?;

    let started = Instant::now();
    let addr = resolve(
        &host,
        port,
        settings.preferred_ip_protocol,
        settings.ip_protocol_fallback,
        if first { Some(&mut *rec) } else { None },
    )
    .await;
    phases.resolve += started.elapsed().as_secs_f64();
    let addr = addr?;

    let started = Instant::now();
    let stream = TcpStream::connect(addr).await;
    phases.connect += started.elapsed().as_secs_f64();
    let stream =
        stream.map_err(|e| Failure::new(Reason::Connect, format!("connect to {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);

    let request = build_request(settings, url, authority.as_str(), method, body)?;
    let limit = settings.body_size_limit.0;
    if https {
        let name = tls::server_name(&settings.tls_config, &host)
            .map_err(|e| Failure::new(Reason::Tls, e))?;
        let started = Instant::now();
        let handshake = tls::handshake(tls_config.clone(), name, stream).await;
        phases.tls += started.elapsed().as_secs_f64();
        let (stream, info) = handshake.map_err(|e| Failure::new(Reason::Tls, e))?;
        let mut exchange = send(stream, request, limit, phases).await?;
        exchange.tls = Some(info);
        Ok(exchange)
    } else {
        send(stream, request, limit, phases).await
    }
}

fn build_request(
    settings: &HttpProbe,
    url: &Uri,
    authority: &str,
    method: &Method,
    body: &str,
) -> Result<Request<Full<Bytes>>, Failure> {
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder()
        .method(method.clone())
        .uri(path)
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| Failure::new(Reason::Http, format!("building the request: {e}")))?;
    let headers = request.headers_mut();
    let host = HeaderValue::from_str(authority)
        .map_err(|e| Failure::new(Reason::Http, format!("host {authority:?}: {e}")))?;
    headers.insert(HOST, host);
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("bellwether/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in &settings.headers {
        // Checked when the config was loaded.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    Ok(request)
}

/// Sends the request on a connected stream and reads the response, with the
/// body capped at `limit` bytes (0 = no cap).
async fn send<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    limit: u64,
    phases: &mut Phases,
) -> Result<Exchange, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http_error =
        |what: &str, e: hyper::Error| Failure::new(Reason::Http, format!("{what}: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error("HTTP handshake", e))?;
    let mut connection = std::pin::pin!(connection);
    let work = async {
        let started = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error("sending the request", e));
        phases.processing += started.elapsed().as_secs_f64();
        let response = response?;
        let started = Instant::now();
        let status = response.status().as_u16();
        let version = match response.version() {
            hyper::Version::HTTP_10 => 1.0,
            hyper::Version::HTTP_11 => 1.1,
            hyper::Version::HTTP_2 => 2.0,
            _ => 0.0,
        };
        let content_length = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(-1.0, |n| n as f64);
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let read = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(http_error("reading the body", e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if limit > 0 && (bytes.len() + data.len()) as u64 > limit {
                            break Err(Failure::new(
                                Reason::BodySizeLimit,
                                format!("the body is larger than body_size_limit ({limit} bytes)"),
                            ));
                        }
                        bytes.extend_from_slice(&data);
                    }
                }
            }
        };
        phases.transfer += started.elapsed().as_secs_f64();
        read?;
        Ok(Exchange {
            status,
            version,
            content_length,
            location,
            body: bytes,
            tls: None,
        })
    };
    // The connection future drives the socket. It can end before `work` (a
    // server that closes after the response; an error): what it read is
    // already queued for the body, so `work` is finished either way and
    // reports an incomplete exchange itself.
    let mut work = std::pin::pin!(work);
    tokio::select! {
        result = &mut work => result,
        ended = &mut connection => {
            let result = work.await;
            match (result, ended) {
                (Err(e), Err(cause)) => Err(Failure::new(e.reason, format!("{}: {cause}", e.message))),
                (result, _) => result,
            }
        }
    }
}

/// The URL a `Location` header points to, relative to `base`.
fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    absolute
        .parse()
        .map_err(|e| format!("redirect to {location:?}: not a URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_like_a_browser() {
        let base: Uri = "https://example.com:8443/a/b?x=1".parse().expect("uri");
        let cases = [
            ("/c", "https://example.com:8443/c"),
            ("c", "https://example.com:8443/a/c"),
            ("//other/d", "https://other/d"),
            ("http://third/e", "http://third/e"),
        ];
        for (location, expected) in cases {
            let got = resolve_location(&base, location).expect("resolves");
            assert_eq!(got.to_string(), expected, "{location}");
        }
        assert!(resolve_location(&base, "http://bad host/").is_err());
    }
}
