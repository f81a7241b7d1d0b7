//! frps's QUIC endpoint on `quicBindPort` (frp v0.65.0 `server/service.go`
//! `HandleQUICListener`): every connection is served by its own task, and every
//! bidirectional stream the client opens is one logical connection, handed to the
//! [`ServerListener`](crate::ServerListener) channel with the UDP peer address.
//! When accepting a stream fails, the connection is closed with code 0, as frp does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use rustls::ServerConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{endpoint, transport_config, QuicStream};
use crate::client::QuicOptions;
use crate::error::TransportError;
use crate::net::{BoxStream, Net};

/// Where accepted logical connections go.
pub(crate) type Incoming = mpsc::Sender<crate::server::Accepted>;

/// Binds the QUIC endpoint on `bind` and starts accepting; returns the bound address.
/// Everything stops when `cancel` is cancelled.
pub(crate) async fn listen<N: Net>(
    net: &N,
    bind: SocketAddr,
    tls: Arc<ServerConfig>,
    opts: &QuicOptions,
    handshake_timeout: Duration,
    tx: Incoming,
    cancel: CancellationToken,
) -> Result<SocketAddr, TransportError> {
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| TransportError::TlsConfig(format!("QUIC: {e}")))?;
    let crypto: Arc<QuicServerConfig> = Arc::new(crypto);
    let mut config = quinn::ServerConfig::with_crypto(crypto.clone());
    config.transport_config(Arc::new(transport_config(opts, false)));
    let mut loopback = quinn::ServerConfig::with_crypto(crypto);
    loopback.transport_config(Arc::new(transport_config(opts, true)));
    let configs = Configs {
        default: Arc::new(config.clone()),
        loopback: Arc::new(loopback),
    };
    let endpoint = endpoint(net, bind, Some(config))
        .await
        .map_err(|source| TransportError::Bind { addr: bind, source })?;
    let local = endpoint
        .local_addr()
        .map_err(|source| TransportError::Bind { addr: bind, source })?;
    tokio::spawn(accept_loop(
        endpoint,
        configs,
        handshake_timeout,
        tx,
        cancel,
    ));
    tracing::debug!(%local, "frp QUIC listener started");
    Ok(local)
}

/// Server settings per kind of peer: loopback peers get a higher MTU ceiling.
#[derive(Clone)]
struct Configs {
    default: Arc<quinn::ServerConfig>,
    loopback: Arc<quinn::ServerConfig>,
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    configs: Configs,
    handshake_timeout: Duration,
    tx: Incoming,
    cancel: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            () = cancel.cancelled() => break,
            incoming = endpoint.accept() => match incoming {
                Some(i) => i,
                None => break,
            },
        };
        tokio::spawn(serve_connection(
            incoming,
            configs.clone(),
            handshake_timeout,
            tx.clone(),
            cancel.clone(),
        ));
    }
    endpoint.close(0u32.into(), b"");
}

/// One QUIC connection: handshake, then yield each bidirectional stream.
async fn serve_connection(
    incoming: quinn::Incoming,
    configs: Configs,
    handshake_timeout: Duration,
    tx: Incoming,
    cancel: CancellationToken,
) {
    let peer = incoming.remote_address();
    let config = if super::is_loopback(peer.ip()) {
        configs.loopback
    } else {
        configs.default
    };
    let connecting = match incoming.accept_with(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("quic {peer}: connection refused: {e}");
            return;
        }
    };
    let handshake = tokio::time::timeout(handshake_timeout, connecting);
    let conn = tokio::select! {
        () = cancel.cancelled() => return,
        res = handshake => match res {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                let err = TransportError::Quic {
                    addr: peer.to_string(),
                    source: io::Error::other(format!("handshake failed: {e}")),
                };
                tracing::warn!("{err}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "quic {peer}: handshake not completed within {handshake_timeout:?}"
                );
                return;
            }
        },
    };
    loop {
        let (send, recv) = tokio::select! {
            () = cancel.cancelled() => break,
            stream = conn.accept_bi() => match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "QUIC connection ended");
                    break;
                }
            },
        };
        let stream: BoxStream = Box::new(QuicStream::new(send, recv));
        let sent = tokio::select! {
            () = cancel.cancelled() => break,
            sent = tx.send((stream, peer, None)) => sent,
        };
        if sent.is_err() {
            break;
        }
    }
    conn.close(0u32.into(), b"");
}
