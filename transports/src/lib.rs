//! Byte pipes between frpc and frps. This crate knows nothing of frp messages.
//!
//! # Layout
//!
//! * [`net`] — the socket seam ([`Net`], [`TokioNet`]); the only place sockets are opened.
//! * [`sniff`] — pure first-bytes classifier of a connection accepted by frps, and
//!   [`sniff::Rewind`] to replay the peeked bytes.
//! * [`tls`] — rustls configs (self-signed server cert, mutual TLS, "insecure" client) and
//!   frp's `0x17` head byte.
//! * [`mux`] — our yamux implementation, configured as frp configures hashicorp yamux.
//! * [`ws`] — frp's websocket transport (upgrade on `/~!frp`, frames as a byte stream).
//! * [`quic`] — frp's QUIC transport with quinn (one QUIC stream per logical connection).
//! * [`kcp`] — KCP over UDP with kcp-go's FEC framing.
//! * [`cancel`] — [`cancel::Cancelled`], a cancellation wait cheap to poll on hot paths.
//! * [`client`] — [`Connector`], frpc's way to open logical connections to frps
//!   (entry point on the client side).
//! * [`server`] — [`ServerListener`], frps's listener yielding logical connections
//!   (entry point on the server side).
//! * [`error`] — [`TransportError`].
//!
//! Stacks per `transport.protocol` (frp-protocol.md §1), each ending in one stream per
//! logical connection:
//!
//! * `tcp`: `TCP → [0x17] → [TLS] → [yamux if tcpMux]`
//! * `kcp`: `UDP → FEC → KCP → [0x17] → [TLS] → [yamux]`
//! * `websocket`: `TCP → WS /~!frp → [0x17] → [TLS] → [yamux]`
//! * `wss`: `TCP → TLS → WS /~!frp → [yamux]` (frps sees plain ws behind a TLS proxy)
//! * `quic`: `UDP → QUIC (TLS 1.3, ALPN frp) → one QUIC stream per logical connection`

pub mod cancel;
pub mod client;
pub mod error;
mod from_conf;
// Entry points for the `fuzzing` crate; not a stable API.
#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod fuzzing;
pub mod kcp;
pub mod mux;
pub mod net;
pub mod quic;
pub mod server;
pub mod shard;
pub mod sniff;
pub mod tls;
pub mod tls_read;
pub mod tls_records;
pub mod ws;

pub use client::{ClientTransportOptions, Congestion, Connector, KcpTuning, Protocol, QuicOptions};
pub use error::TransportError;
pub use net::{AsyncStream, BoxStream, DatagramSocket, Listener, Net, TokioNet};
pub use server::{ServerListener, ServerTransportOptions};
pub use tls::{ClientTlsOptions, ServerTlsOptions};
