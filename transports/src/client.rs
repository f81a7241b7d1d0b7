//! frpc's side: [`Connector`] opens logical connections to frps.
//!
//! Mirrors frp v0.65.0 `client/connector.go`: one connector per login session;
//! [`Connector::open`] establishes the shared TCP(+TLS)+yamux session when `tcpMux` is on;
//! [`Connector::connect`] then returns a new yamux stream, or a brand-new TCP(+TLS)
//! connection when `tcpMux` is off. The first logical connection is the control
//! connection, later ones are work and visitor connections.
//!
//! Dial sequence (`pkg/util/net/dial.go`): TCP connect (with `dialServerTimeout`,
//! keepalive `dialServerKeepalive`) → optional `0x17` byte → TLS → yamux client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio_util::sync::CancellationToken;

use crate::error::TransportError;
use crate::mux::{self, MuxConfig, MuxHandle, Role};
use crate::net::{BoxStream, Net};
use crate::tls::{self, ClientTlsOptions};

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
    #[default]
    Compat,
    /// Our faster settings (both ends must be frp-rs to benefit fully).
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

/// Opens logical connections to frps. Dropping it closes the mux session.
#[derive(Debug)]
pub struct Connector<N: Net> {
    opts: ClientTransportOptions,
    net: N,
    tls: Option<TlsClient>,
    mux: Mutex<Option<MuxHandle>>,
    cancel: CancellationToken,
}

impl<N: Net> Connector<N> {
    /// Validates the options and loads TLS material (certificate files are read here,
    /// so errors name the file before any connection is attempted).
    pub fn new(opts: ClientTransportOptions, net: N) -> Result<Self, TransportError> {
        let tls = match &opts.tls {
            Some(t) => Some(TlsClient {
                config: tls::client_config(t)?,
                name: tls::server_name(t, &opts.server_addr)?,
                head_byte: !t.disable_custom_first_byte,
            }),
            None => None,
        };
        Ok(Connector {
            opts,
            net,
            tls,
            mux: Mutex::new(None),
            cancel: CancellationToken::new(),
        })
    }

    /// `host:port` of the server, for messages.
    pub fn server_addr(&self) -> String {
        join_host_port(&self.opts.server_addr, self.opts.server_port)
    }

    /// Establishes the underlying session: with `tcpMux`, dials and starts the yamux
    /// client; without it there is nothing to do (every `connect` dials).
    pub async fn open(&self) -> Result<(), TransportError> {
        if !self.opts.tcp_mux {
            return Ok(());
        }
        let raw = self.dial().await?;
        let config = MuxConfig::frp(self.opts.tcp_mux_keepalive);
        // frps never opens streams; dropping `Incoming` makes us reset any it tries.
        let (handle, _incoming) = mux::spawn(raw, Role::Client, config, &self.cancel);
        let old = self.lock_mux().replace(handle);
        if let Some(old) = old {
            old.close();
        }
        Ok(())
    }

    /// A new logical connection: a yamux stream, or a new TCP(+TLS) connection when
    /// `tcpMux` is off.
    pub async fn connect(&self) -> Result<BoxStream, TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        if !self.opts.tcp_mux {
            return self.dial().await;
        }
        let handle = self.lock_mux().clone().ok_or(TransportError::Closed)?;
        let stream = handle.open_stream().map_err(|source| TransportError::Mux {
            addr: self.server_addr(),
            source,
        })?;
        Ok(Box::new(stream))
    }

    /// Closes the mux session (if any); later `connect` calls fail.
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Resolves when the mux session has died or [`Connector::close`] was called. Without
    /// `tcpMux` (or before `open`) only `close` resolves it.
    pub async fn closed(&self) {
        let handle = self.lock_mux().clone();
        match handle {
            Some(h) => h.closed().await,
            None => self.cancel.cancelled().await,
        }
    }

    fn lock_mux(&self) -> std::sync::MutexGuard<'_, Option<MuxHandle>> {
        self.mux.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// TCP connect (+ keepalive) → optional `0x17` → TLS.
    async fn dial(&self) -> Result<BoxStream, TransportError> {
        let addr = self.server_addr();
        let timeout = self.opts.dial_timeout;
        let connect = self
            .net
            .connect_tcp(&self.opts.server_addr, self.opts.server_port);
        let tcp = with_timeout(timeout, connect)
            .await
            .ok_or_else(|| TransportError::DialTimeout {
                addr: addr.clone(),
                timeout,
            })?
            .map_err(|source| TransportError::Dial {
                addr: addr.clone(),
                source,
            })?;
        if let Some(keepalive) = self.opts.dial_keepalive {
            if let Err(e) = self.net.set_tcp_keepalive(&tcp, keepalive) {
                tracing::debug!(%addr, error = %e, "cannot enable TCP keepalive");
            }
        }
        let Some(t) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let handshake = tls::connect(t.config.clone(), t.name.clone(), t.head_byte, tcp);
        let stream = with_timeout(timeout, handshake)
            .await
            .ok_or_else(|| TransportError::DialTimeout {
                addr: addr.clone(),
                timeout,
            })?
            .map_err(|source| TransportError::TlsHandshake { addr, source })?;
        Ok(Box::new(stream))
    }
}

impl<N: Net> Drop for Connector<N> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Runs `fut` with a timeout; a zero timeout means none (Go's dialer semantics).
async fn with_timeout<F: std::future::Future>(timeout: Duration, fut: F) -> Option<F::Output> {
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
