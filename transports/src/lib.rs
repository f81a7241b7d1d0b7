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
//! * [`client`] — [`Connector`], frpc's way to open logical connections to frps
//!   (entry point on the client side).
//! * [`server`] — [`ServerListener`], frps's listener yielding logical connections
//!   (entry point on the server side).
//! * [`error`] — [`TransportError`].
//!
//! Stack for `transport.protocol = "tcp"` (frp-protocol.md §1):
//! `TCP → [0x17] → [TLS] → [yamux if tcpMux] → one stream per logical connection`.

pub mod client;
pub mod error;
pub mod kcp;
pub mod mux;
pub mod net;
pub mod server;
pub mod sniff;
pub mod tls;

pub use client::{ClientTransportOptions, Congestion, Connector, KcpTuning, Protocol, QuicOptions};
pub use error::TransportError;
pub use net::{AsyncStream, BoxStream, DatagramSocket, Listener, Net, TokioNet};
pub use server::{ServerListener, ServerTransportOptions};
pub use tls::{ClientTlsOptions, ServerTlsOptions};
