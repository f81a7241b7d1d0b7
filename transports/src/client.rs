//! frpc's side: [`Connector`] opens logical connections to frps.
//!
//! Mirrors frp v0.65.0 `client/connector.go`: one connector per login session;
//! [`Connector::open`] establishes the shared session — the QUIC connection for `quic`,
//! else the yamux session over one dialled connection when `tcpMux` is on;
//! [`Connector::connect`] then returns a new QUIC or yamux stream, or a brand-new
//! dialled connection when `tcpMux` is off. The first logical connection is the control
//! connection, later ones are work and visitor connections.
//!
//! Dial sequence per protocol (`client/connector.go` `realConnect`, `pkg/util/net/dial.go`),
//! each step bounded by `dialServerTimeout`:
//!
//! * `tcp`: TCP (keepalive `dialServerKeepalive`) → `[0x17] → [TLS]`;
//! * `kcp`: KCP session (the `dial_kcp` hook) → `[0x17] → [TLS]`;
//! * `websocket`: TCP → WS upgrade (`Host: serverAddr:serverPort`) → `[0x17] → [TLS]`;
//! * `wss`: TCP → TLS (always on, never `0x17`) → WS upgrade (`Host: serverName`).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_util::sync::CancellationToken;

use crate::error::TransportError;
use crate::mux::{self, MuxConfig, MuxHandle, Role};
use crate::net::{BoxStream, Net};
use crate::quic::client::{ClientSession as QuicSession, DialParams};
use crate::tls::{self, ClientTlsOptions};
use crate::ws;

/// `transport.protocol`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain TCP (the frp default): `TCP → [0x17] → [TLS] → [yamux]`.
    #[default]
    Tcp,
    /// KCP over UDP with kcp-go's FEC framing: `UDP → FEC → KCP → [0x17] → [TLS] → [yamux]`.
    Kcp,
    /// QUIC (ALPN `frp`): one bidirectional stream per logical connection, no yamux.
    Quic,
    /// Websocket on frps's `bindPort`: `TCP → WS /~!frp → [0x17] → [TLS] → [yamux]`.
    Websocket,
    /// Websocket over TLS (through a TLS-terminating proxy in front of frps):
    /// `TCP → TLS → WS /~!frp → [yamux]`.
    Wss,
}

impl Protocol {
    /// frp's spelling (`transport.protocol`).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Kcp => "kcp",
            Protocol::Quic => "quic",
            Protocol::Websocket => "websocket",
            Protocol::Wss => "wss",
        }
    }
}

/// `transport.quic` (frp-protocol.md §10), both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuicOptions {
    /// `keepalivePeriod` (default 10 s; zero disables).
    pub keepalive_period: Duration,
    /// `maxIdleTimeout` (default 30 s).
    pub max_idle_timeout: Duration,
    /// `maxIncomingStreams` (default 100000).
    pub max_incoming_streams: u64,
    /// Congestion controller (our extension; not in frp's config).
    pub congestion: Congestion,
}

impl Default for QuicOptions {
    fn default() -> Self {
        QuicOptions {
            keepalive_period: Duration::from_secs(10),
            max_idle_timeout: Duration::from_secs(30),
            max_incoming_streams: 100_000,
            congestion: Congestion::default(),
        }
    }
}

/// QUIC congestion control. The default is chosen from the lossy-link measurements in
/// `bench/` (see the README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Congestion {
    /// BBR.
    #[default]
    Bbr,
    /// CUBIC (quinn's default).
    Cubic,
    /// NewReno.
    NewReno,
}

/// KCP tuning. `Compat` is frp's fixed tuning (kcp-go: nodelay 1/20/2/1, MTU 1350,
/// windows 128/512 on the client, 1024/1024 on the server) and the default; `Fast` is our
/// low-latency, high-throughput option for links where both ends are frp-rs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KcpTuning {
    /// frp 0.65.0's kcp-go settings.
    Compat,
    /// Our faster settings, the default: they interoperate with frp's kcp-go both ways (a
    /// kcp-go peer keeps its own windows, so the gain is full only with frp-rs on both ends).
    #[default]
    Fast,
}

/// What frpc needs to reach frps (from `serverAddr`, `serverPort`, `transport.*`).
#[derive(Clone, Debug)]
pub struct ClientTransportOptions {
    /// `serverAddr` (DNS name or IP literal).
    pub server_addr: String,
    /// `serverPort`.
    pub server_port: u16,
    /// `transport.protocol`.
    pub protocol: Protocol,
    /// `transport.tls` when `transport.tls.enable` is true (frp default), else `None`.
    pub tls: Option<ClientTlsOptions>,
    /// `transport.tcpMux` (default true; must match frps).
    pub tcp_mux: bool,
    /// `transport.tcpMuxKeepaliveInterval` (default 30 s; zero disables pings).
    pub tcp_mux_keepalive: Duration,
    /// `transport.dialServerTimeout` (default 10 s; zero means no timeout), applied to
    /// the TCP connect and to the TLS handshake separately.
    pub dial_timeout: Duration,
    /// `transport.dialServerKeepalive` (default 7200 s; `None` for a negative value).
    pub dial_keepalive: Option<Duration>,
    /// `transport.quic`, used when `protocol` is [`Protocol::Quic`].
    pub quic: QuicOptions,
    /// KCP tuning, used when `protocol` is [`Protocol::Kcp`].
    pub kcp: KcpTuning,
}

impl Default for ClientTransportOptions {
    /// frp 0.65.0 defaults (`pkg/config/v1/client.go`).
    fn default() -> Self {
        ClientTransportOptions {
            server_addr: "0.0.0.0".into(),
            server_port: 7000,
            protocol: Protocol::Tcp,
            tls: Some(ClientTlsOptions::default()),
            tcp_mux: true,
            tcp_mux_keepalive: Duration::from_secs(30),
            dial_timeout: Duration::from_secs(10),
            dial_keepalive: Some(Duration::from_secs(7200)),
            quic: QuicOptions::default(),
            kcp: KcpTuning::default(),
        }
    }
}

#[derive(Debug)]
struct TlsClient {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    head_byte: bool,
}

/// The shared session behind logical connections.
#[derive(Debug, Default)]
enum Session {
    /// Not opened, or `tcpMux` off (every `connect` dials).
    #[default]
    None,
    /// yamux over one dialled connection.
    Mux(MuxHandle),
    /// One QUIC connection.
    Quic(QuicSession),
}

/// Opens logical connections to frps. Dropping it closes the session.
#[derive(Debug)]
pub struct Connector<N: Net> {
    opts: ClientTransportOptions,
    net: N,
    /// TLS of the dialled connection: inner TLS for tcp/kcp/websocket, outer for wss.
    tls: Option<TlsClient>,
    /// QUIC dial parameters (protocol `quic` only).
    quic: Option<DialParams>,
    session: Mutex<Session>,
    cancel: CancellationToken,
}

impl<N: Net> Connector<N> {
    /// Validates the options and loads TLS material (certificate files are read here,
    /// so errors name the file before any connection is attempted).
    pub fn new(opts: ClientTransportOptions, net: N) -> Result<Self, TransportError> {
        // wss always uses TLS, built from `transport.tls` even when `enable` is false;
        // so does QUIC (frp `client/connector.go`).
        let always_tls = || opts.tls.clone().unwrap_or_default();
        let (tls, quic) = match opts.protocol {
            Protocol::Quic => {
                let t = always_tls();
                let name = tls::server_name(&t, &opts.server_addr)?;
                let quic = DialParams {
                    host: opts.server_addr.clone(),
                    port: opts.server_port,
                    tls: tls::quic_client_config(&t)?,
                    server_name: name.to_str().into_owned(),
                    quic: opts.quic,
                    timeout: opts.dial_timeout,
                };
                (None, Some(quic))
            }
            Protocol::Wss => {
                let t = always_tls();
                let tls = TlsClient {
                    config: tls::client_config(&t)?,
                    name: tls::server_name(&t, &opts.server_addr)?,
                    head_byte: false,
                };
                (Some(tls), None)
            }
            Protocol::Tcp | Protocol::Kcp | Protocol::Websocket => {
                let tls = match &opts.tls {
                    Some(t) => Some(TlsClient {
                        config: tls::client_config(t)?,
                        name: tls::server_name(t, &opts.server_addr)?,
                        head_byte: !t.disable_custom_first_byte,
                    }),
                    None => None,
                };
                (tls, None)
            }
        };
        Ok(Connector {
            opts,
            net,
            tls,
            quic,
            session: Mutex::new(Session::None),
            cancel: CancellationToken::new(),
        })
    }

    /// `<transport> host:port`, e.g. `kcp 10.0.0.1:7000`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.opts.protocol.as_str(), self.server_addr())
    }

    /// `host:port` of the server, for messages.
    pub fn server_addr(&self) -> String {
        join_host_port(&self.opts.server_addr, self.opts.server_port)
    }

    /// Establishes the underlying session: the QUIC connection for `quic`; with
    /// `tcpMux`, dials and starts the yamux client; otherwise there is nothing to do
    /// (every `connect` dials).
    pub async fn open(&self) -> Result<(), TransportError> {
        let session = if let Some(params) = &self.quic {
            let fut = QuicSession::dial(&self.net, params);
            let quic = tokio::select! {
                () = self.cancel.cancelled() => return Err(TransportError::Closed),
                res = fut => res?,
            };
            Session::Quic(quic)
        } else if self.opts.tcp_mux {
            let raw = self.dial().await?;
            let config = MuxConfig::frp(self.opts.tcp_mux_keepalive);
            // frps never opens streams; dropping `Incoming` makes us reset any it tries.
            let (handle, _incoming) = mux::spawn(raw, Role::Client, config, &self.cancel);
            Session::Mux(handle)
        } else {
            return Ok(());
        };
        let old = std::mem::replace(&mut *self.lock_session(), session);
        close_session(&old);
        Ok(())
    }

    /// Whether logical connections are streams of one session (QUIC, or `tcpMux`), not
    /// connections of their own.
    pub fn multiplexed(&self) -> bool {
        self.quic.is_some() || self.opts.tcp_mux
    }

    /// A new logical connection: a QUIC or yamux stream, or a new dialled connection
    /// when `tcpMux` is off.
    pub async fn connect(&self) -> Result<BoxStream, TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        let session = match &*self.lock_session() {
            Session::None => None,
            Session::Mux(h) => Some(Session::Mux(h.clone())),
            Session::Quic(q) => Some(Session::Quic(q.clone())),
        };
        match session {
            Some(Session::Quic(quic)) => {
                let stream = tokio::select! {
                    () = self.cancel.cancelled() => return Err(TransportError::Closed),
                    res = quic.open_stream() => res?,
                };
                Ok(Box::new(stream))
            }
            Some(Session::Mux(handle)) => {
                let stream = handle.open_stream().map_err(|source| TransportError::Mux {
                    addr: self.server_addr(),
                    source,
                })?;
                Ok(Box::new(stream))
            }
            _ if self.quic.is_some() || self.opts.tcp_mux => Err(TransportError::Closed),
            // Boxed: a dial (TCP, TLS handshake, websocket upgrade) needs a future of ~11 KiB.
            // Inline, every `connect` future would be that large, and a caller that opens a
            // yamux stream per user connection would allocate and copy it each time.
            _ => Box::pin(self.dial()).await,
        }
    }

    /// Closes the session (if any); later `connect` calls fail.
    pub fn close(&self) {
        self.cancel.cancel();
        close_session(&self.lock_session());
    }

    /// Resolves when the session has died or [`Connector::close`] was called. Without
    /// a session (`tcpMux` off, or before `open`) only `close` resolves it.
    pub async fn closed(&self) {
        let session = match &*self.lock_session() {
            Session::None => None,
            Session::Mux(h) => Some(Session::Mux(h.clone())),
            Session::Quic(q) => Some(Session::Quic(q.clone())),
        };
        match session {
            Some(Session::Mux(h)) => h.closed().await,
            Some(Session::Quic(q)) => tokio::select! {
                () = q.closed() => {}
                () = self.cancel.cancelled() => {}
            },
            _ => self.cancel.cancelled().await,
        }
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One connection to frps as `transport.protocol` layers it (module docs).
    async fn dial(&self) -> Result<BoxStream, TransportError> {
        match self.opts.protocol {
            Protocol::Tcp => {
                let tcp = self.dial_tcp().await.map_err(|e| self.tcp_error(e))?;
                self.inner_tls(Box::new(tcp)).await
            }
            Protocol::Kcp => {
                let kcp = self.dial_kcp().await?;
                // KCP has no handshake of its own: an unreachable UDP port shows up as the TLS
                // handshake timing out, so say that it happened over kcp.
                self.inner_tls(kcp).await.map_err(|e| match e {
                    TransportError::Kcp { .. } => e,
                    other => TransportError::Kcp {
                        addr: self.server_addr(),
                        source: std::io::Error::other(other.to_string()),
                    },
                })
            }
            Protocol::Websocket => {
                let host = self.server_addr();
                let tcp = self
                    .step(self.dial_tcp())
                    .await
                    .map_err(|e| self.ws_error("dial", e))?;
                let ws = self
                    .step(async { ws::client_handshake(tcp, &host).await })
                    .await
                    .map_err(|e| self.ws_error("upgrade", e))?;
                self.inner_tls(Box::new(ws)).await
            }
            Protocol::Wss => self.dial_wss().await,
            // `open` handles QUIC; it never dials a byte stream.
            Protocol::Quic => Err(TransportError::Closed),
        }
    }

    /// A KCP session to `serverAddr:serverPort` (frp's kcp-go tuning, or our fast one);
    /// `dial` then adds the optional `0x17` byte and TLS exactly as for TCP.
    async fn dial_kcp(&self) -> Result<BoxStream, TransportError> {
        let cfg = match self.opts.kcp {
            KcpTuning::Compat => crate::kcp::KcpConfig::frp_client(),
            KcpTuning::Fast => crate::kcp::KcpConfig::fast(),
        };
        let session = crate::kcp::dial(
            &self.net,
            &self.opts.server_addr,
            self.opts.server_port,
            cfg,
        )
        .await
        .map_err(|source| TransportError::Kcp {
            addr: self.server_addr(),
            source,
        })?;
        Ok(Box::new(session))
    }

    /// TCP → TLS (SNI = serverName or serverAddr, never `0x17`) → WS upgrade with the
    /// TLS server name as `Host` (frp `DialHookWebsocket(protocol, tlsConfig.ServerName)`).
    async fn dial_wss(&self) -> Result<BoxStream, TransportError> {
        let Some(t) = &self.tls else {
            return Err(TransportError::TlsConfig("wss without TLS".into()));
        };
        let tcp = self
            .step(self.dial_tcp())
            .await
            .map_err(|e| self.ws_error("dial", e))?;
        let handshake = tls::connect(
            t.config.clone(),
            t.name.clone(),
            false,
            tcp,
            self.tls_send_buffer(),
            self.opts.tcp_mux,
        );
        let tls = self
            .step(handshake)
            .await
            .map_err(|e| self.ws_error("TLS handshake", e))?;
        let host = match self
            .opts
            .tls
            .as_ref()
            .and_then(|t| t.server_name.as_deref())
        {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => self.opts.server_addr.clone(),
        };
        let ws = self
            .step(async { ws::client_handshake(tls, &host).await })
            .await
            .map_err(|e| self.ws_error("upgrade", e))?;
        Ok(Box::new(ws))
    }

    /// TCP connect within the dial timeout, with keepalive.
    async fn dial_tcp(&self) -> io::Result<N::Tcp> {
        let connect = self
            .net
            .connect_tcp(&self.opts.server_addr, self.opts.server_port);
        let tcp = self.step(connect).await?;
        if let Some(keepalive) = self.opts.dial_keepalive {
            if let Err(e) = self.net.set_tcp_keepalive(&tcp, keepalive) {
                tracing::debug!(addr = %self.server_addr(), error = %e, "cannot enable TCP keepalive");
            }
        }
        Ok(tcp)
    }

    /// rustls's send buffer: larger for the connection that carries the yamux session.
    fn tls_send_buffer(&self) -> usize {
        if self.opts.tcp_mux {
            tls::MUX_SEND_BUFFER
        } else {
            tls::SEND_BUFFER
        }
    }

    /// Optional `0x17` → TLS over a dialled stream (tcp, kcp, websocket).
    async fn inner_tls(&self, io: BoxStream) -> Result<BoxStream, TransportError> {
        let Some(t) = &self.tls else {
            return Ok(io);
        };
        let handshake = tls::connect(
            t.config.clone(),
            t.name.clone(),
            t.head_byte,
            io,
            self.tls_send_buffer(),
            self.opts.tcp_mux,
        );
        match self.step(handshake).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(e) if self.opts.protocol == Protocol::Websocket => {
                Err(self.ws_error("TLS handshake", e))
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(self.tcp_error(e)),
            Err(source) => Err(TransportError::TlsHandshake {
                addr: self.server_addr(),
                source,
            }),
        }
    }

    /// Runs one dial step within `dialServerTimeout` (zero: no limit, as Go's dialer).
    async fn step<T, F>(&self, fut: F) -> io::Result<T>
    where
        F: std::future::Future<Output = io::Result<T>>,
    {
        let timeout = self.opts.dial_timeout;
        with_timeout(timeout, fut).await.unwrap_or_else(|| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {timeout:?}"),
            ))
        })
    }

    fn tcp_error(&self, source: io::Error) -> TransportError {
        if source.kind() == io::ErrorKind::TimedOut {
            TransportError::DialTimeout {
                addr: self.server_addr(),
                timeout: self.opts.dial_timeout,
            }
        } else {
            TransportError::Dial {
                addr: self.server_addr(),
                source,
            }
        }
    }

    fn ws_error(&self, stage: &str, e: io::Error) -> TransportError {
        TransportError::Websocket {
            transport: if self.opts.protocol == Protocol::Wss {
                "wss"
            } else {
                "websocket"
            },
            addr: self.server_addr(),
            source: io::Error::new(e.kind(), format!("{stage}: {e}")),
        }
    }
}

fn close_session(session: &Session) {
    match session {
        Session::None => {}
        Session::Mux(h) => h.close(),
        Session::Quic(q) => q.close(),
    }
}

impl<N: Net> Drop for Connector<N> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs `fut` with a timeout; a zero timeout means none (Go's dialer semantics).
pub(crate) async fn with_timeout<F: std::future::Future>(
    timeout: Duration,
    fut: F,
) -> Option<F::Output> {
    if timeout.is_zero() {
        Some(fut.await)
    } else {
        tokio::time::timeout(timeout, fut).await.ok()
    }
}

/// `host:port`, bracketing IPv6 literals (Go's `net.JoinHostPort`).
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokioNet;

    /// frpc opens a yamux stream with `connect` for every user connection; a dial's state
    /// (~11 KiB) must stay out of that future, or each stream costs an allocation and a copy of
    /// it (a quarter of frpc's user-space instructions per new connection, by callgrind).
    #[test]
    fn connect_future_stays_small() {
        let connector = Connector::new(ClientTransportOptions::default(), TokioNet::new()).unwrap();
        let fut = connector.connect();
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 1024, "Connector::connect future is {size} bytes");
    }
}
