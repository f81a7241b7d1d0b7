//! frpc's QUIC connection (frp v0.65.0 `client/connector.go`): `open` dials one QUIC
//! connection, every logical connection is a new bidirectional stream on it
//! (`OpenStreamSync`), and closing uses application error code 0 (`CloseWithError(0, "")`).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicClientConfig;
use rustls::ClientConfig;

use super::{endpoint, transport_config, QuicStream};
use crate::client::QuicOptions;
use crate::error::TransportError;
use crate::net::Net;

/// An established QUIC connection to frps. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientSession {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    addr: String,
}

/// What [`ClientSession::dial`] needs besides the network.
#[derive(Clone, Debug)]
pub struct DialParams {
    /// `serverAddr`.
    pub host: String,
    /// `serverPort`.
    pub port: u16,
    /// From [`crate::tls::quic_client_config`].
    pub tls: Arc<ClientConfig>,
    /// SNI / verification name (`serverName`, else `serverAddr`; an IP sends no SNI).
    pub server_name: String,
    /// `transport.quic`.
    pub quic: QuicOptions,
    /// Bound on the whole dial (`dialServerTimeout`; zero: the idle timeout decides).
    pub timeout: Duration,
}

fn quic_err(addr: &str, source: io::Error) -> TransportError {
    TransportError::Quic {
        addr: addr.to_owned(),
        source,
    }
}

impl ClientSession {
    /// Resolves the server, binds a UDP socket through `net` and completes the QUIC
    /// handshake. An unreachable port fails after `timeout` (or the idle timeout).
    pub async fn dial<N: Net>(net: &N, p: &DialParams) -> Result<Self, TransportError> {
        let addr = crate::client::join_host_port(&p.host, p.port);
        let fut = Self::dial_inner(net, p, &addr);
        match crate::client::with_timeout(p.timeout, fut).await {
            Some(res) => res,
            None => Err(quic_err(
                &addr,
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "handshake timed out after {:?} (no answer from the UDP port)",
                        p.timeout
                    ),
                ),
            )),
        }
    }

    async fn dial_inner<N: Net>(
        net: &N,
        p: &DialParams,
        addr: &str,
    ) -> Result<Self, TransportError> {
        let resolved = net
            .resolve(&p.host, p.port)
            .await
            .map_err(|e| quic_err(addr, io::Error::new(e.kind(), format!("resolve: {e}"))))?;
        // Go's `net.ResolveUDPAddr` (used by `quic.DialAddr`) prefers IPv4.
        let remote = resolved
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| resolved.first())
            .copied()
            .ok_or_else(|| quic_err(addr, io::Error::other("resolve: no address")))?;
        let bind = if remote.is_ipv4() {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        };
        let endpoint = endpoint(net, bind, None)
            .await
            .map_err(|e| quic_err(addr, e))?;
        let crypto = QuicClientConfig::try_from(p.tls.clone())
            .map_err(|e| quic_err(addr, io::Error::other(format!("TLS configuration: {e}"))))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(Arc::new(transport_config(
            &p.quic,
            super::is_loopback(remote.ip()),
        )));
        let connecting = endpoint
            .connect_with(config, remote, &p.server_name)
            .map_err(|e| quic_err(addr, io::Error::other(format!("connect: {e}"))))?;
        let conn = connecting
            .await
            .map_err(|e| quic_err(addr, io::Error::other(format!("handshake failed: {e}"))))?;
        tracing::debug!(%addr, remote = %conn.remote_address(), "QUIC connection established");
        Ok(ClientSession {
            endpoint,
            conn,
            addr: addr.to_owned(),
        })
    }

    /// Opens a new logical connection (waits while the server's stream limit is reached).
    pub async fn open_stream(&self) -> Result<QuicStream, TransportError> {
        let (send, recv) = self.conn.open_bi().await.map_err(|e| {
            quic_err(
                &self.addr,
                io::Error::new(io::ErrorKind::ConnectionAborted, e),
            )
        })?;
        Ok(QuicStream::new(send, recv))
    }

    /// Closes the connection with code 0, as frp does.
    pub fn close(&self) {
        self.conn.close(0u32.into(), b"");
        self.endpoint.close(0u32.into(), b"");
    }

    /// Resolves when the connection is gone (closed, lost or timed out).
    pub async fn closed(&self) {
        let reason = self.conn.closed().await;
        tracing::debug!(addr = %self.addr, %reason, "QUIC connection closed");
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::tls::{ClientTlsOptions, ServerTlsOptions};
    use crate::TokioNet;

    /// Towards a loopback peer, MTU discovery climbs to ~64 KiB datagrams and stays there
    /// while data flows: GSO batches of such datagrams must be split to fit one `sendmsg`
    /// (see `socket`), or their loss sends the MTU back to 1200 (black-hole detection).
    #[tokio::test]
    async fn loopback_connections_use_64k_datagrams() {
        let net = TokioNet::new();
        let (_, server_tls) =
            crate::tls::server_configs_with_quic(&ServerTlsOptions::default()).expect("server TLS");
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let bind: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let addr = crate::quic::server::listen(
            &net,
            bind,
            server_tls,
            &QuicOptions::default(),
            Duration::from_secs(10),
            tx,
            cancel.clone(),
        )
        .await
        .expect("listen");
        let params = DialParams {
            host: "127.0.0.1".into(),
            port: addr.port(),
            tls: crate::tls::quic_client_config(&ClientTlsOptions::default()).expect("client TLS"),
            server_name: "127.0.0.1".into(),
            quic: QuicOptions::default(),
            timeout: Duration::from_secs(10),
        };
        let session = ClientSession::dial(&net, &params).await.expect("dial");
        let mut stream = session.open_stream().await.expect("stream");
        let sink = tokio::spawn(async move {
            let (mut s, _, _) = rx.recv().await.expect("accepted stream");
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            loop {
                match s.read(&mut buf).await.expect("read") {
                    0 => return total,
                    n => total += n,
                }
            }
        });
        let chunk = vec![0x5a_u8; 1024 * 1024];
        for _ in 0..16 {
            stream.write_all(&chunk).await.expect("write");
        }
        stream.shutdown().await.expect("finish");
        let received = tokio::time::timeout(Duration::from_secs(60), sink)
            .await
            .expect("transfer timed out")
            .expect("sink task");
        assert_eq!(received, 16 * 1024 * 1024);
        let path = session.conn.stats().path;
        assert!(
            path.current_mtu > 60_000,
            "MTU {} (black holes detected: {}, lost packets: {})",
            path.current_mtu,
            path.black_holes_detected,
            path.lost_packets
        );
        assert_eq!(path.black_holes_detected, 0);
        session.close();
        cancel.cancel();
    }
}
