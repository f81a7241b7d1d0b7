//! frps's side: [`ServerListener`] yields logical connections from frpc.
//!
//! Mirrors frp v0.65.0 `server/service.go` (`HandleListener`): the accept loop is fast and
//! cancel safe; every accepted TCP connection is handled in its own task: sniff the first
//! bytes (10 s) → TLS (with or without frp's `0x17` byte) or plaintext → with `tcpMux`, a
//! yamux server session whose every inbound stream is yielded, else the connection
//! itself. A failed handshake (TLS garbage, timeout, forced TLS violated) is logged as one
//! line naming the peer and never affects other connections.
//!
//! Flow: `accept loop task` → spawns `connection task` per TCP connection → sends
//! `(BoxStream, peer)` into a bounded channel → [`ServerListener::accept`]. Everything
//! stops when the listener is dropped, [`ServerListener::close`] is called, or the parent
//! cancellation token is cancelled.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::{KcpTuning, QuicOptions};
use crate::error::TransportError;
use crate::mux::{self, MuxConfig, Role};
use crate::net::{BoxStream, Listener, Net};
use crate::sniff::{self, Rewind, Sniffed};
use crate::tls::{self, ServerTlsOptions};

/// How many logical connections may wait for [`ServerListener::accept`].
const INCOMING_BACKLOG: usize = 256;
/// Pause after a failed `accept()` (e.g. out of file descriptors) before retrying.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// frps's listener settings (`bindAddr`, `bindPort`, `transport.*`).
#[derive(Clone, Debug)]
pub struct ServerTransportOptions {
    /// `bindAddr` (default `0.0.0.0`).
    pub bind_addr: IpAddr,
    /// `bindPort` (default 7000; 0 lets the OS pick, see [`ServerListener::local_addr`]).
    pub bind_port: u16,
    /// `transport.tls`.
    pub tls: ServerTlsOptions,
    /// `transport.tcpMux` (default true; must match frpc).
    pub tcp_mux: bool,
    /// `transport.tcpMuxKeepaliveInterval` (default 30 s; zero disables pings).
    pub tcp_mux_keepalive: Duration,
    /// `transport.tcpKeepalive` (default 7200 s; `None` when negative).
    pub tcp_keepalive: Option<Duration>,
    /// Time allowed for the first bytes and the TLS handshake (frp: 10 s).
    pub handshake_timeout: Duration,
    /// `kcpBindPort` (UDP on `bind_addr`; may equal `bind_port`); 0 = off.
    pub kcp_bind_port: u16,
    /// KCP tuning for sessions accepted on `kcp_bind_port`.
    pub kcp: KcpTuning,
    /// `quicBindPort` (UDP on `bind_addr`); 0 = off.
    pub quic_bind_port: u16,
    /// `transport.quic`.
    pub quic: QuicOptions,
}

impl Default for ServerTransportOptions {
    /// frp 0.65.0 defaults (`pkg/config/v1/server.go`).
    fn default() -> Self {
        ServerTransportOptions {
            bind_addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            bind_port: 7000,
            tls: ServerTlsOptions::default(),
            tcp_mux: true,
            tcp_mux_keepalive: Duration::from_secs(30),
            tcp_keepalive: Some(Duration::from_secs(7200)),
            handshake_timeout: sniff::SNIFF_TIMEOUT,
            kcp_bind_port: 0,
            kcp: KcpTuning::default(),
            quic_bind_port: 0,
            quic: QuicOptions::default(),
        }
    }
}

/// frps's listener of logical connections.
#[derive(Debug)]
pub struct ServerListener {
    local_addr: SocketAddr,
    incoming: mpsc::Receiver<(BoxStream, SocketAddr)>,
    cancel: CancellationToken,
}

/// What every connection task needs.
struct ConnCtx<N> {
    net: N,
    tls: Arc<ServerConfig>,
    tls_force: bool,
    tcp_mux: bool,
    mux_config: MuxConfig,
    tcp_keepalive: Option<Duration>,
    handshake_timeout: Duration,
}

impl ServerListener {
    /// Binds and starts accepting. TLS material is loaded (or generated) here.
    pub async fn bind<N: Net>(
        opts: ServerTransportOptions,
        net: N,
    ) -> Result<Self, TransportError> {
        Self::bind_with_cancel(opts, net, &CancellationToken::new()).await
    }

    /// Like [`ServerListener::bind`], additionally stopping when `cancel` is cancelled.
    pub async fn bind_with_cancel<N: Net>(
        opts: ServerTransportOptions,
        net: N,
        cancel: &CancellationToken,
    ) -> Result<Self, TransportError> {
        let tls = tls::server_config(&opts.tls)?;
        let addr = SocketAddr::new(opts.bind_addr, opts.bind_port);
        let listener = net
            .bind_tcp(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind { addr, source })?;
        let ctx = Arc::new(ConnCtx {
            net,
            tls,
            tls_force: opts.tls.effective_force(),
            tcp_mux: opts.tcp_mux,
            mux_config: MuxConfig::frp(opts.tcp_mux_keepalive),
            tcp_keepalive: opts.tcp_keepalive,
            handshake_timeout: opts.handshake_timeout,
        });
        let cancel = cancel.child_token();
        let (tx, incoming) = mpsc::channel(INCOMING_BACKLOG);
        tokio::spawn(accept_loop(listener, ctx, tx, cancel.clone()));
        tracing::debug!(%local_addr, "frp transport listener started");
        Ok(ServerListener {
            local_addr,
            incoming,
            cancel,
        })
    }

    /// The next logical connection (control, work or visitor connection) and the
    /// address of the TCP peer it came from. Cancel safe. Fails with
    /// [`TransportError::Closed`] once the listener is closed.
    pub async fn accept(&mut self) -> Result<(BoxStream, SocketAddr), TransportError> {
        tokio::select! {
            biased;
            conn = self.incoming.recv() => conn.ok_or(TransportError::Closed),
            () = self.cancel.cancelled() => Err(TransportError::Closed),
        }
    }

    /// The bound address (with the OS-chosen port when `bind_port` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and ends every connection task and mux session of this listener.
    pub fn close(&self) {
        self.cancel.cancel();
    }
}

impl Drop for ServerListener {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop<N: Net>(
    mut listener: N::Listener,
    ctx: Arc<ConnCtx<N>>,
    tx: mpsc::Sender<(BoxStream, SocketAddr)>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        if let Some(keepalive) = ctx.tcp_keepalive {
            if let Err(e) = ctx.net.set_tcp_keepalive(&tcp, keepalive) {
                tracing::debug!(%peer, error = %e, "cannot enable TCP keepalive");
            }
        }
        tokio::spawn(serve_connection(
            tcp,
            peer,
            ctx.clone(),
            tx.clone(),
            cancel.clone(),
        ));
    }
}

/// One accepted TCP connection: handshake, then hand out its logical connections.
async fn serve_connection<N: Net>(
    tcp: N::Tcp,
    peer: SocketAddr,
    ctx: Arc<ConnCtx<N>>,
    tx: mpsc::Sender<(BoxStream, SocketAddr)>,
    cancel: CancellationToken,
) {
    let handshake = tokio::time::timeout(ctx.handshake_timeout, handshake(tcp, peer, &ctx));
    let conn = tokio::select! {
        () = cancel.cancelled() => return,
        res = handshake => match res {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                tracing::warn!("{e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "connection from {peer} rejected: handshake not completed within {:?}",
                    ctx.handshake_timeout
                );
                return;
            }
        },
    };
    if !ctx.tcp_mux {
        tokio::select! {
            () = cancel.cancelled() => {}
            _ = tx.send((conn, peer)) => {}
        }
        return;
    }
    let (handle, mut streams) = mux::spawn(conn, Role::Server, ctx.mux_config, &cancel);
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            stream = streams.accept() => match stream {
                Some(s) => s,
                None => break,
            },
        };
        let sent = tokio::select! {
            () = cancel.cancelled() => break,
            sent = tx.send((Box::new(stream), peer)) => sent,
        };
        if sent.is_err() {
            break;
        }
    }
    handle.close();
}

/// Sniff → TLS or plaintext (the 10 s timeout is applied by the caller).
async fn handshake<N: Net>(
    mut tcp: N::Tcp,
    peer: SocketAddr,
    ctx: &ConnCtx<N>,
) -> Result<BoxStream, TransportError> {
    let (kind, mut prefix) =
        sniff::sniff(&mut tcp, ctx.tls_force)
            .await
            .map_err(|e| TransportError::Rejected {
                addr: peer,
                reason: format!("reading first bytes: {e}"),
            })?;
    match kind {
        Sniffed::Tls { skip_head_byte } => {
            if skip_head_byte {
                prefix.remove(0);
            }
            let stream = tls::accept(ctx.tls.clone(), Rewind::new(prefix, tcp))
                .await
                .map_err(|source| TransportError::TlsHandshake {
                    addr: peer.to_string(),
                    source,
                })?;
            Ok(boxed(stream))
        }
        Sniffed::Plain => Ok(boxed(Rewind::new(prefix, tcp))),
        Sniffed::PlainRejected => Err(TransportError::Rejected {
            addr: peer,
            reason: "plaintext connection while transport.tls.force is enabled".into(),
        }),
        Sniffed::Websocket => Err(TransportError::WebsocketUnsupported { addr: peer }),
        Sniffed::NeedMore => Err(TransportError::Rejected {
            addr: peer,
            reason: "unrecognised first bytes".into(),
        }),
    }
}

fn boxed<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) -> BoxStream {
    Box::new(s)
}
