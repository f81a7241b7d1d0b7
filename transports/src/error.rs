//! The transport error type.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of the frpc↔frps byte pipes. Every variant names the address or file involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TCP connection to the server could not be established.
    #[error("dial {addr}: {source}")]
    Dial {
        /// `host:port` that was dialled.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TCP connection (or the TLS handshake) took longer than the dial timeout.
    #[error("dial {addr}: timed out after {timeout:?}")]
    DialTimeout {
        /// `host:port` that was dialled.
        addr: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// A listener could not be bound.
    #[error("listen on {addr}: {source}")]
    Bind {
        /// The bind address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake with a peer failed.
    #[error("TLS handshake with {addr}: {source}")]
    TlsHandshake {
        /// The peer address.
        addr: String,
        /// The TLS or IO error.
        #[source]
        source: io::Error,
    },
    /// A certificate, key or CA file could not be read.
    #[error("read TLS file {}: {source}", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// A certificate, key or CA file has no usable content.
    #[error("TLS file {}: {reason}", path.display())]
    InvalidPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration is inconsistent (or rustls rejected it).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// The multiplexed (yamux) session with the server failed or is closed.
    #[error("mux session with {addr}: {source}")]
    Mux {
        /// The peer address.
        addr: String,
        /// Why the session failed.
        #[source]
        source: io::Error,
    },
    /// An accepted connection was refused during the handshake (forced TLS violated,
    /// sniff timeout, unsupported transport, ...).
    #[error("connection from {addr} rejected: {reason}")]
    Rejected {
        /// The peer address.
        addr: SocketAddr,
        /// Why it was refused.
        reason: String,
    },
    /// A QUIC connection failed: dial, handshake (certificate, ALPN), idle timeout of an
    /// unreachable port, a socket the [`Net`](crate::Net) cannot provide, or the
    /// connection being lost. `addr` is the server (frpc) or the UDP peer (frps).
    #[error("quic {addr}: {source}")]
    Quic {
        /// The peer address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A KCP session could not be set up (name resolution, UDP socket).
    #[error("kcp {addr}: {source}")]
    Kcp {
        /// The server address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A websocket connection failed: dial, TLS (wss), HTTP upgrade or framing.
    #[error("{transport} {addr}: {source}")]
    Websocket {
        /// `"websocket"` or `"wss"`.
        transport: &'static str,
        /// The peer address.
        addr: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The configured transport is not implemented yet.
    #[error("{transport} transport to {addr}: not supported yet")]
    Unsupported {
        /// The transport name (`"kcp"`, ...).
        transport: &'static str,
        /// The address it was meant for.
        addr: String,
    },
    /// The transport (listener or connector) was closed.
    #[error("transport closed")]
    Closed,
}
