//! KCP over UDP, wire-compatible with frp 0.65.0's kcp-go v5.6.13 (frp-protocol.md §11).
//!
//! Stack for `transport.protocol = "kcp"`: `UDP → FEC (10/3) → KCP (stream mode) →
//! [0x17] → [TLS] → [yamux]`; everything above KCP is the same as over TCP.
//!
//! # Layout
//!
//! * [`rs`] — Reed-Solomon over GF(2^8), klauspost/reedsolomon's default matrix (pure).
//! * [`fec`] — kcp-go's FEC shard framing: encoder and recovering decoder (pure).
//! * [`core`] — the KCP ARQ state machine, sans IO (pure, time as an argument).
//! * `config` — [`KcpConfig`] with frp's exact tunings and our [`KcpConfig::fast`].
//! * `session` — [`KcpStream`] and the per-session driver task.
//! * `listener` — [`KcpListener`], sessions demultiplexed by peer address.
//! * `udp` — the socket: GSO/GRO batches on Linux OS sockets, one datagram per call on
//!   the simulator's; a session's output queue is one contiguous buffer.
//!
//! Every socket is opened through [`Net`], so the simulator can carry KCP too; timers
//! are `tokio::time`.
//!
//! # Compatibility notes
//!
//! * Datagrams we send with FEC on are `seqid | 0xF1 | size | KCP` data shards plus 3
//!   parity shards per 10 (when the 10th comes within 500 ms of the 9th), at most
//!   `mtu + 8` bytes (1358 with frp's MTU 1350), byte-compatible with kcp-go.
//! * We accept FEC-framed and raw KCP datagrams alike, as kcp-go does.
//! * KCP has no close handshake: peers notice a vanished session only through the
//!   layers above (yamux keepalive) or the dead-link rule.

pub mod core;
pub mod fec;
pub mod rs;

mod config;
mod listener;
mod session;
mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

pub use config::KcpConfig;
pub use listener::KcpListener;
pub use session::KcpStream;

use crate::net::Net;
use session::{drive, Shared};

/// Opens a KCP session to `host:port` (frpc's `dialKCPServer`): binds a fresh UDP socket
/// through `net` and picks a random conversation id. Like kcp-go it returns at once
/// (KCP has no handshake); an unreachable server shows up as a read that never completes
/// and, after `dead_link` retransmissions, a `TimedOut` error.
pub async fn dial<N: Net>(net: &N, host: &str, port: u16, cfg: KcpConfig) -> io::Result<KcpStream> {
    cfg.validate()?;
    let peer = net
        .resolve(host, port)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))?;
    let local: SocketAddr = match peer.ip() {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = Arc::new(udp::KcpSocket::new(net.bind_udp(local).await?)?);
    let conv: u32 = rand::random();
    let shared = Shared::new(conv, &cfg);
    tokio::spawn(drive(shared.clone(), socket, peer, true));
    tracing::debug!(%peer, conv, "KCP session dialed");
    Ok(KcpStream::new(shared, peer))
}
