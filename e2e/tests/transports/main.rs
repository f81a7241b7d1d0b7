//! Interop of frp's other transports (issue 3): QUIC, KCP, websocket and wss between frpc and
//! frps, every combination of the real frp 0.65.0 and ours.
//!
//! - [`quic`]: `transport.protocol = "quic"` to frps `quicBindPort`: data, QUIC options
//!   (keepalive across an idle period), a certificate mismatch.
//! - [`kcp`]: `"kcp"` to frps `kcpBindPort` (the same number as `bindPort`): data over tcpMux
//!   on/off and TLS on/off, with an encrypted + compressed proxy.
//! - [`websocket`]: `"websocket"` to frps `bindPort` (tcpMux on/off), and `"wss"` through a
//!   TLS-terminating proxy ([`e2e::TlsTerminator`]) with and without certificate checks.
//! - [`errors`]: a QUIC dial to a UDP port where nothing listens: one clear log line per
//!   attempt, then frp's reconnect backoff.
//!
//! [`common`] holds the data checks all transports share.

mod common;
mod errors;
mod kcp;
mod quic;
mod websocket;
