//! TLS for the probes: the rustls client config of a job (built-in Mozilla
//! roots or a `ca_file`, or no verification), the handshake, and what it
//! tells about the server (protocol version, the served chain's earliest
//! `notAfter`).
//!
//! rustls runs on ring, as reqwest's does; no aws-lc-rs, no OpenSSL.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::config::ProbeTlsConfig;
use super::der;

/// Reads the certificates of a PEM bundle (for `ca_file`).
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in the file".to_string());
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client config of one job. `alpn` is what the prober speaks
/// (`http/1.1` for HTTP, nothing for TCP).
pub fn client_config(tls: &ProbeTlsConfig, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let mut config = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(file) => {
                let pem = std::fs::read(file)
                    .map_err(|e| format!("tls_config.ca_file: cannot read {file}: {e}"))?;
                for cert in
                    parse_ca_pem(&pem).map_err(|e| format!("tls_config.ca_file: {file}: {e}"))?
                {
                    roots
                        .add(cert)
                        .map_err(|e| format!("tls_config.ca_file: {file}: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// `insecure_skip_verify`: any certificate is accepted, but the handshake's
/// signatures are still checked (so the peer holds the certificate's key).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What a completed handshake tells about the server.
#[derive(Clone, Debug, Default)]
pub struct TlsInfo {
    /// `TLS 1.2` or `TLS 1.3` (blackbox_exporter's label values).
    pub version: String,
    /// The earliest `notAfter` of the served chain, Unix seconds; `None` if
    /// no certificate could be read.
    pub earliest_expiry: Option<i64>,
    /// Certificates of the served chain that could not be read.
    pub unreadable_certificates: usize,
    /// The negotiated cipher suite, with Go's (IANA) names, e.g.
    /// `TLS_AES_128_GCM_SHA256` (rustls writes TLS 1.3 suites `TLS13_…`).
    pub cipher: String,
}

/// The TLS handshake over a connected socket.
pub async fn handshake(
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, TlsInfo), String> {
    let stream = TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let connection = stream.get_ref().1;
    let version = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(_) | None => "unknown",
    }
    .to_string();
    let cipher = connection
        .negotiated_cipher_suite()
        .map(|suite| {
            let suite = suite.suite();
            let name = suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_string);
            match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name,
            }
        })
        .unwrap_or_default();
    let mut info = TlsInfo {
        version,
        cipher,
        ..TlsInfo::default()
    };
    for cert in connection.peer_certificates().unwrap_or_default() {
        match der::not_after(cert.as_ref()) {
            Ok(t) => {
                info.earliest_expiry = Some(info.earliest_expiry.map_or(t, |e: i64| e.min(t)));
            }
            Err(e) => {
                info.unreadable_certificates += 1;
                tracing::debug!(error = %e, "cannot read a served certificate's expiry");
            }
        }
    }
    Ok((stream, info))
}

/// The name to send in SNI and verify: `server_name` if set, else the host.
pub fn server_name(tls: &ProbeTlsConfig, host: &str) -> Result<ServerName<'static>, String> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string())
        .map_err(|_| format!("{name:?} is not a valid TLS server name"))
}
