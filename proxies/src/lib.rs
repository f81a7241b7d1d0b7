//! Per-proxy byte handling shared by frps and frpc: stream wrappers (encryption, compression,
//! bandwidth limiting), the relay pump between user and work connections (with its buffer pool
//! and, for two plain TCP sockets, a `splice(2)` path), and the server's remote-port allocator.

pub mod compress_stream;
pub mod crypto_stream;
pub mod limit;
pub mod mux_relay;
pub mod pool;
pub mod ports;
pub mod proxy_protocol;
pub mod relay;
pub mod splice;
