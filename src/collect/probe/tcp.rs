//! The `tcp` prober: resolve, connect, and with `tls: true` complete a TLS
//! handshake and report the served chain's expiry. It owns one probe of one
//! target and must not touch the store.

use std::sync::Arc;

use rustls::ClientConfig;
use tokio::net::TcpStream;

use super::config::TcpProbe;
use super::{record_tls, resolve, split_host_port, tls, Failure, Reason, Recorder};

pub async fn probe(
    settings: &TcpProbe,
    tls_config: Option<&Arc<ClientConfig>>,
    target: &str,
    rec: &mut Recorder,
) -> Result<(), Failure> {
    let (host, port) = split_host_port(target, None)
        .map_err(|e| Failure::new(Reason::Connect, format!("{target:?}: {e}")))?;
    let addr = resolve(
        &host,
        port,
        settings.preferred_ip_protocol,
        settings.ip_protocol_fallback,
        Some(&mut *rec),
    )
    .await?;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::new(Reason::Connect, format!("connect to {addr}: {e}")))?;
    if let (true, Some(config)) = (settings.tls, tls_config) {
        let name = tls::server_name(&settings.tls_config, &host)
            .map_err(|e| Failure::new(Reason::Tls, e))?;
        let (_stream, info) = tls::handshake(config.clone(), name, stream)
            .await
            .map_err(|e| Failure::new(Reason::Tls, e))?;
        record_tls(rec, &info);
    }
    Ok(())
}
