//! frps's side: [`ServerListener`] yields logical connections from frpc.
//!
//! Mirrors frp v0.65.0 `server/service.go` (`HandleListener`, `HandleQUICListener`): the
//! accept loops are fast and cancel safe; every accepted connection is handled in its
//! own task:
//!
//! * `bindPort` (TCP): sniff the first bytes → `GET /~!frp` is a websocket upgrade
//!   (then the TLS check runs on the websocket byte stream, as frp's websocket listener
//!   feeds `HandleListener`), `0x17`/`0x16` is TLS, anything else plaintext;
//! * `kcpBindPort` (UDP, KCP sessions): the TLS check only (`Entry::TlsCheck`);
//! * then, with `tcpMux`, a yamux server session whose every inbound stream is yielded,
//!   else the connection itself;
//! * `quicBindPort` (UDP): every QUIC stream is yielded as it is ([`crate::quic::server`]).
//!
//! The whole handshake (first bytes, websocket upgrade, TLS) must finish within
//! `handshake_timeout` (frp: 10 s for the first bytes). A failed handshake is logged as
//! one line naming the peer and never affects other connections.
//!
//! Flow: `accept loop task` → spawns `connection task` per connection → sends
//! `(BoxStream, peer)` into a bounded channel → [`ServerListener::accept`]. Everything
//! stops when the listener is dropped, [`ServerListener::close`] is called, or the parent
//! cancellation token is cancelled.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::{KcpTuning, QuicOptions};
use crate::error::TransportError;
use crate::mux::{self, MuxConfig, Role};
use crate::net::{BoxStream, Listener, Net};
use crate::shard::Shard;
use crate::sniff::{self, Rewind, Sniffed};
use crate::tls::{self, ServerTlsOptions};
use crate::ws;

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

/// A logical connection, its peer, and the shard its connection's tasks run on (when the
/// binary installed shards, [`crate::shard`]): whatever serves it belongs there too.
pub type Accepted = (BoxStream, SocketAddr, Option<Shard>);

/// frps's listener of logical connections.
pub struct ServerListener {
    local_addr: SocketAddr,
    quic_local_addr: Option<SocketAddr>,
    kcp_local_addr: Option<SocketAddr>,
    incoming: mpsc::Receiver<Accepted>,
    dispatch: Arc<OnceLock<Dispatch>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for ServerListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerListener")
            .field("local_addr", &self.local_addr)
            .field("quic_local_addr", &self.quic_local_addr)
            .field("kcp_local_addr", &self.kcp_local_addr)
            .field("dispatch_here", &self.dispatch.get().is_some())
            .finish_non_exhaustive()
    }
}

/// Serves one logical connection, called on the task (and shard) of the connection it came in
/// on: see [`ServerListener::dispatch_here`].
pub type Dispatch = Box<dyn Fn(BoxStream, SocketAddr) + Send + Sync>;

/// What every connection task needs.
struct ConnCtx<N> {
    net: N,
    tls: Arc<ServerConfig>,
    tls_force: bool,
    tcp_mux: bool,
    mux_config: MuxConfig,
    tcp_keepalive: Option<Duration>,
    handshake_timeout: Duration,
    dispatch: Arc<OnceLock<Dispatch>>,
}

/// How the first bytes of an accepted byte stream are examined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// frps's `bindPort`: websocket upgrade, TLS (with or without `0x17`) or plaintext.
    BindPort,
    /// Only frp's TLS check (`CheckAndEnableTLSServerConnWithTimeout`, one byte): KCP
    /// sessions and the byte stream inside a websocket.
    TlsCheck,
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
        let (tls, quic_tls) = if opts.quic_bind_port != 0 {
            let (tcp, quic) = tls::server_configs_with_quic(&opts.tls)?;
            (tcp, Some(quic))
        } else {
            (tls::server_config(&opts.tls)?, None)
        };
        let addr = SocketAddr::new(opts.bind_addr, opts.bind_port);
        let listener = net
            .bind_tcp(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| TransportError::Bind { addr, source })?;
        let cancel = cancel.child_token();
        let (tx, incoming) = mpsc::channel(INCOMING_BACKLOG);
        let quic_local_addr = match quic_tls {
            Some(quic_tls) => {
                let bind = SocketAddr::new(opts.bind_addr, opts.quic_bind_port);
                let quic = crate::quic::server::listen(
                    &net,
                    bind,
                    quic_tls,
                    &opts.quic,
                    opts.handshake_timeout,
                    tx.clone(),
                    cancel.clone(),
                );
                Some(quic.await?)
            }
            None => None,
        };
        let kcp_listener = if opts.kcp_bind_port != 0 {
            let bind = SocketAddr::new(opts.bind_addr, opts.kcp_bind_port);
            let cfg = match opts.kcp {
                KcpTuning::Compat => crate::kcp::KcpConfig::frp_server(),
                KcpTuning::Fast => crate::kcp::KcpConfig::fast(),
            };
            let listener = crate::kcp::KcpListener::bind(&net, bind, cfg)
                .await
                .map_err(|source| TransportError::Bind { addr: bind, source })?;
            Some(listener)
        } else {
            None
        };
        let kcp_local_addr = kcp_listener.as_ref().map(|l| l.local_addr());
        let dispatch = Arc::new(OnceLock::new());
        let ctx = Arc::new(ConnCtx {
            dispatch: dispatch.clone(),
            net,
            tls,
            tls_force: opts.tls.effective_force(),
            tcp_mux: opts.tcp_mux,
            mux_config: MuxConfig::frp(opts.tcp_mux_keepalive),
            tcp_keepalive: opts.tcp_keepalive,
            handshake_timeout: opts.handshake_timeout,
        });
        if let Some(kcp) = kcp_listener {
            tokio::spawn(kcp_accept_loop(
                kcp,
                ctx.clone(),
                tx.clone(),
                cancel.clone(),
            ));
        }
        tokio::spawn(accept_loop(listener, ctx, tx, cancel.clone()));
        tracing::debug!(%local_addr, ?quic_local_addr, ?kcp_local_addr, "frp transport listener started");
        Ok(ServerListener {
            local_addr,
            quic_local_addr,
            kcp_local_addr,
            incoming,
            dispatch,
            cancel,
        })
    }

    /// The next logical connection (control, work or visitor connection) and the
    /// address of the peer it came from (TCP peer, or UDP peer for QUIC). Cancel safe.
    /// Fails with [`TransportError::Closed`] once the listener is closed.
    pub async fn accept(&mut self) -> Result<(BoxStream, SocketAddr), TransportError> {
        let (conn, peer, _) = self.accept_homed().await?;
        Ok((conn, peer))
    }

    /// [`ServerListener::accept`], with the shard the connection lives on (`None` without
    /// shards, or for QUIC, whose connections stay with their endpoint): serve it there.
    pub async fn accept_homed(&mut self) -> Result<Accepted, TransportError> {
        tokio::select! {
            biased;
            conn = self.incoming.recv() => conn.ok_or(TransportError::Closed),
            () = self.cancel.cancelled() => Err(TransportError::Closed),
        }
    }

    /// From now on, hands each logical connection of a TCP or KCP connection to `dispatch`, called
    /// on that connection's own task instead of queueing it for [`ServerListener::accept`]: a
    /// new yamux stream (a work connection, say) is then served on the shard of its session
    /// without a round trip through the thread that accepts. QUIC streams, and connections
    /// already queued, still come through `accept`. Only the first call takes effect.
    pub fn dispatch_here(&self, dispatch: Dispatch) {
        let _ = self.dispatch.set(dispatch);
    }

    /// The bound TCP address (with the OS-chosen port when `bind_port` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound QUIC (UDP) address, when `quic_bind_port` is set.
    pub fn quic_local_addr(&self) -> Option<SocketAddr> {
        self.quic_local_addr
    }

    /// The bound KCP (UDP) address, when `kcp_bind_port` is set.
    pub fn kcp_local_addr(&self) -> Option<SocketAddr> {
        self.kcp_local_addr
    }

    /// Stops accepting and ends every connection task and session of this listener.
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
    tx: mpsc::Sender<Accepted>,
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
        // With tcpMux a client's whole traffic rides this one connection: shards take turns.
        // Without, the client's work connections arrive one by one and should meet its
        // control session (and the proxies it registered) on one shard: the peer's IP decides.
        let by_peer = !ctx.tcp_mux;
        let (conn_ctx, tx, cancel) = (ctx.clone(), tx.clone(), cancel.clone());
        ctx.net.spawn_accepted(tcp, peer, by_peer, move |tcp| {
            serve_connection(tcp, peer, conn_ctx, tx, cancel, Entry::BindPort)
        });
    }
}

/// Accepts KCP sessions on `kcpBindPort`. frp runs the same `HandleListener` on its KCP
/// listener as on TCP, minus the bind-port muxing: TLS check (0x17 / 0x16 / plain), then yamux.
async fn kcp_accept_loop<N: Net>(
    mut listener: crate::kcp::KcpListener,
    ctx: Arc<ConnCtx<N>>,
    tx: mpsc::Sender<Accepted>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((session, peer)) => {
                tokio::spawn(serve_connection(
                    session,
                    peer,
                    ctx.clone(),
                    tx.clone(),
                    cancel.clone(),
                    Entry::TlsCheck,
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, "kcp accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// One accepted byte stream (TCP connection, KCP session): handshake, then hand out
/// its logical connections.
async fn serve_connection<N, S>(
    io: S,
    peer: SocketAddr,
    ctx: Arc<ConnCtx<N>>,
    tx: mpsc::Sender<Accepted>,
    cancel: CancellationToken,
    entry: Entry,
) where
    N: Net,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = tokio::time::timeout(ctx.handshake_timeout, handshake(io, peer, &ctx, entry));
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
    // Only for connections queued for `accept` (no `dispatch_here`): where to serve them.
    let home = || crate::shard::installed().map(|_| Shard::current());
    if !ctx.tcp_mux {
        if let Some(dispatch) = ctx.dispatch.get() {
            dispatch(conn, peer);
            return;
        }
        tokio::select! {
            () = cancel.cancelled() => {}
            _ = tx.send((conn, peer, home())) => {}
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
        if let Some(dispatch) = ctx.dispatch.get() {
            dispatch(Box::new(stream), peer);
            continue;
        }
        let sent = tokio::select! {
            () = cancel.cancelled() => break,
            sent = tx.send((Box::new(stream), peer, home())) => sent,
        };
        if sent.is_err() {
            break;
        }
    }
    handle.close();
}

/// First bytes → websocket upgrade (bind port only) → TLS or plaintext.
async fn handshake<N, S>(
    mut io: S,
    peer: SocketAddr,
    ctx: &ConnCtx<N>,
    entry: Entry,
) -> Result<BoxStream, TransportError>
where
    N: Net,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if entry == Entry::TlsCheck {
        return tls_check(io, peer, ctx).await;
    }
    let (kind, prefix) = sniff::sniff(&mut io, ctx.tls_force)
        .await
        .map_err(|e| first_bytes_error(peer, &e))?;
    if kind != Sniffed::Websocket {
        return secure(kind, prefix, io, peer, ctx).await;
    }
    let ws = ws::server_handshake(Rewind::new(prefix, io))
        .await
        .map_err(|source| TransportError::Websocket {
            transport: "websocket",
            addr: peer.to_string(),
            source,
        })?;
    tls_check(ws, peer, ctx).await
}

/// frp's TLS check on a byte stream (one byte decides).
async fn tls_check<N, S>(
    mut io: S,
    peer: SocketAddr,
    ctx: &ConnCtx<N>,
) -> Result<BoxStream, TransportError>
where
    N: Net,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (kind, prefix) = sniff::sniff_tls(&mut io, ctx.tls_force)
        .await
        .map_err(|e| first_bytes_error(peer, &e))?;
    secure(kind, prefix, io, peer, ctx).await
}

fn first_bytes_error(peer: SocketAddr, e: &std::io::Error) -> TransportError {
    TransportError::Rejected {
        addr: peer,
        reason: format!("reading first bytes: {e}"),
    }
}

/// TLS or plaintext according to `kind`, replaying the sniffed `prefix`.
async fn secure<N, S>(
    kind: Sniffed,
    mut prefix: Vec<u8>,
    io: S,
    peer: SocketAddr,
    ctx: &ConnCtx<N>,
) -> Result<BoxStream, TransportError>
where
    N: Net,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match kind {
        Sniffed::Tls { skip_head_byte } => {
            if skip_head_byte {
                prefix.remove(0);
            }
            let send_buffer = if ctx.tcp_mux {
                tls::MUX_SEND_BUFFER
            } else {
                tls::SEND_BUFFER
            };
            let stream = tls::accept(ctx.tls.clone(), Rewind::new(prefix, io), send_buffer)
                .await
                .map_err(|source| TransportError::TlsHandshake {
                    addr: peer.to_string(),
                    source,
                })?;
            Ok(boxed(stream))
        }
        Sniffed::Plain => Ok(boxed(Rewind::new(prefix, io))),
        Sniffed::PlainRejected => Err(TransportError::Rejected {
            addr: peer,
            reason: "plaintext connection while transport.tls.force is enabled".into(),
        }),
        Sniffed::Websocket | Sniffed::NeedMore => Err(TransportError::Rejected {
            addr: peer,
            reason: "unrecognised first bytes".into(),
        }),
    }
}

fn boxed<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) -> BoxStream {
    Box::new(s)
}
