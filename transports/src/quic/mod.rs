//! frp's QUIC transport (frp-protocol.md §10) with quinn: QUIC v1, TLS 1.3, ALPN `frp`,
//! one bidirectional stream per logical connection (no yamux, no `0x17` byte, no TLS
//! on top).
//!
//! * [`client`] — frpc's QUIC connection ([`ClientSession`]): dial, open streams.
//! * [`server`] — frps's QUIC endpoint on `quicBindPort`: every accepted stream is a
//!   logical connection.
//! * `socket` — quinn's UDP socket with GSO batches split to fit the kernel's 64 KiB.
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
//! * Datagram size: MTU discovery as quinn does it (from 1200 bytes up to 1452), except
//!   towards a loopback peer, where it may climb to 65507 bytes (loopback's MTU): one
//!   packet then carries ~50 times the data, which more than halves the CPU per byte
//!   (quinn's per-packet work and the ACKs dominate with 1200-byte packets). We accept
//!   datagrams that large from anyone (`max_udp_payload_size`); quic-go never sends above
//!   1452, and caps ours at its own 1452.

pub mod client;
pub mod server;
mod socket;

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::{IdleTimeout, MtuDiscoveryConfig, TransportConfig, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use client::ClientSession;

use crate::client::{Congestion, QuicOptions};

/// Per-stream receive window (quic-go's `MaxStreamReceiveWindow`, frp's yamux window).
pub const STREAM_RECEIVE_WINDOW: u32 = 6 * 1024 * 1024;
/// Per-connection receive window (quic-go's `MaxConnectionReceiveWindow`).
pub const CONNECTION_RECEIVE_WINDOW: u32 = 15 * 1024 * 1024;
/// Unacknowledged bytes buffered per connection on the sending side.
pub const SEND_WINDOW: u64 = 16 * 1024 * 1024;
/// Largest UDP payload we accept (our `max_udp_payload_size` transport parameter) and the
/// MTU discovery ceiling towards a loopback peer: loopback's 65536-byte MTU less the IPv4
/// and UDP headers. Elsewhere quinn's default ceiling (1452) applies.
pub const LOOPBACK_MAX_UDP_PAYLOAD: u16 = 65_507;
/// quic-go's idle timeout when frp's `maxIdleTimeout` is zero.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The quinn transport settings for frp's `transport.quic` options (both sides);
/// `loopback` when the peer is on a loopback address (see [`is_loopback`]).
pub fn transport_config(opts: &QuicOptions, loopback: bool) -> TransportConfig {
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
    if loopback {
        // Loopback's MTU is 64 KiB: let MTU discovery find it (see `socket`). The search
        // starts from 1200 bytes, so a quic-go peer (which reads at most 1452) is unaffected:
        // the peer's `max_udp_payload_size` caps the search.
        let mut mtud = MtuDiscoveryConfig::default();
        mtud.upper_bound(LOOPBACK_MAX_UDP_PAYLOAD);
        config.mtu_discovery_config(Some(mtud));
    }
    config
}

/// True for loopback addresses, including IPv4 loopback mapped into IPv6 (a dual-stack
/// listener sees IPv4 peers that way).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
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
    let mut config = quinn::EndpointConfig::default();
    config
        .max_udp_payload_size(LOOPBACK_MAX_UDP_PAYLOAD)
        .map_err(|e| io::Error::other(format!("QUIC endpoint configuration: {e}")))?;
    let runtime = Arc::new(quinn::TokioRuntime);
    let inner = quinn::Runtime::wrap_udp_socket(&*runtime, socket)?;
    let socket = socket::GsoSplitSocket::new(inner, usize::from(LOOPBACK_MAX_UDP_PAYLOAD));
    quinn::Endpoint::new_with_abstract_socket(config, server, Arc::new(socket), runtime)
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
        let _ = transport_config(&QuicOptions::default(), false);
        let _ = transport_config(&QuicOptions::default(), true);
        let extreme = QuicOptions {
            keepalive_period: Duration::ZERO,
            max_idle_timeout: Duration::from_secs(u64::MAX / 2),
            max_incoming_streams: u64::MAX,
            congestion: Congestion::NewReno,
        };
        let _ = transport_config(&extreme, true);
    }
}
