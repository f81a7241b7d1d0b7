//! frp's QUIC transport (frp-protocol.md §10) with quinn: QUIC v1, TLS 1.3, ALPN `frp`,
//! one bidirectional stream per logical connection (no yamux, no `0x17` byte, no TLS
//! on top).
//!
//! * [`client`] — frpc's QUIC connection ([`ClientSession`]): dial, open streams.
//! * [`server`] — frps's QUIC endpoint on `quicBindPort`: every accepted stream is a
//!   logical connection.
//! * this module — the shared settings ([`transport_config`]) and [`QuicStream`].
//!
//! # Settings (frp sets only three knobs of quic-go; everything else is its default)
//!
//! * `keepalivePeriod` → keep-alive interval, capped at half the idle timeout as quic-go
//!   does; zero disables it.
//! * `maxIdleTimeout` → idle timeout (zero means quic-go's default, 30 s).
//! * `maxIncomingStreams` → concurrent bidirectional streams the peer may open.
//! * Flow control: quic-go auto-tunes its windows up to 6 MiB per stream and 15 MiB per
//!   connection; quinn's windows are fixed, so we advertise those maxima up front. 6 MiB
//!   per stream covers the bandwidth-delay product of 1 Gbit/s × 30 ms (3.75 MB) with
//!   room to spare, and matches frp's yamux stream window; 15 MiB per connection bounds
//!   the memory one frpc can pin on frps. The send window (unacknowledged data buffered
//!   per connection) is 16 MiB for the same reason.
//! * Unidirectional streams are never used by frp: the peer may open none.
//! * Congestion control is ours to choose ([`Congestion`]): BBR, CUBIC or NewReno.

pub mod client;
pub mod server;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use client::ClientSession;

use crate::client::{Congestion, QuicOptions};

/// Per-stream receive window (quic-go's `MaxStreamReceiveWindow`, frp's yamux window).
pub const STREAM_RECEIVE_WINDOW: u32 = 6 * 1024 * 1024;
/// Per-connection receive window (quic-go's `MaxConnectionReceiveWindow`).
pub const CONNECTION_RECEIVE_WINDOW: u32 = 15 * 1024 * 1024;
/// Unacknowledged bytes buffered per connection on the sending side.
pub const SEND_WINDOW: u64 = 16 * 1024 * 1024;
/// quic-go's idle timeout when frp's `maxIdleTimeout` is zero.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The quinn transport settings for frp's `transport.quic` options (both sides).
pub fn transport_config(opts: &QuicOptions) -> TransportConfig {
    let idle = if opts.max_idle_timeout.is_zero() {
        DEFAULT_IDLE_TIMEOUT
    } else {
        opts.max_idle_timeout
    };
    let mut config = TransportConfig::default();
    // `IdleTimeout` refuses values above 2^62 ms; such a value means "never".
    config.max_idle_timeout(IdleTimeout::try_from(idle).ok());
    // quic-go sends keep-alives at min(KeepAlivePeriod, idle/2) (`connection.go`).
    let keepalive = (!opts.keepalive_period.is_zero()).then(|| opts.keepalive_period.min(idle / 2));
    config.keep_alive_interval(keepalive);
    config.max_concurrent_bidi_streams(
        VarInt::from_u64(opts.max_incoming_streams).unwrap_or(VarInt::MAX),
    );
    config.max_concurrent_uni_streams(VarInt::from_u32(0));
    config.stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW));
    config.receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW));
    config.send_window(SEND_WINDOW);
    let congestion: Arc<dyn quinn::congestion::ControllerFactory + Send + Sync> =
        match opts.congestion {
            Congestion::Bbr => Arc::new(quinn::congestion::BbrConfig::default()),
            Congestion::Cubic => Arc::new(quinn::congestion::CubicConfig::default()),
            Congestion::NewReno => Arc::new(quinn::congestion::NewRenoConfig::default()),
        };
    config.congestion_controller_factory(congestion);
    config
}

/// Binds the UDP socket for an endpoint through the [`Net`](crate::Net) seam and hands
/// it to quinn, which drives its own IO on an OS socket.
pub(crate) async fn endpoint<N: crate::Net>(
    net: &N,
    bind: std::net::SocketAddr,
    server: Option<quinn::ServerConfig>,
) -> io::Result<quinn::Endpoint> {
    use crate::net::DatagramSocket as _;
    let socket = net
        .bind_udp(bind)
        .await?
        .into_std()
        .map_err(|e| io::Error::new(e.kind(), format!("QUIC needs an OS UDP socket: {e}")))?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
}

/// One QUIC stream as a logical connection.
///
/// Dropping it is frp's close (`pkg/util/net/conn.go` `wrapQuicStream.Close`): the
/// receive side is stopped with code 0 (`CancelRead(0)`, quinn's `RecvStream` drop) and
/// the send side finished (FIN, quinn's `SendStream` drop). `shutdown` sends the FIN
/// while reading goes on.
#[derive(Debug)]
pub struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
}

impl QuicStream {
    /// Joins the two halves of a bidirectional stream.
    pub fn new(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        QuicStream { send, recv }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.get_mut().send), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().send), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().send), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frp_defaults_map_to_quinn() {
        // Only checks that every option is accepted, including extreme values.
        let _ = transport_config(&QuicOptions::default());
        let extreme = QuicOptions {
            keepalive_period: Duration::ZERO,
            max_idle_timeout: Duration::from_secs(u64::MAX / 2),
            max_incoming_streams: u64::MAX,
            congestion: Congestion::NewReno,
        };
        let _ = transport_config(&extreme);
    }
}
