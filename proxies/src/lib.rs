//! Per-proxy byte handling shared by frps and frpc: stream wrappers (encryption, compression,
//! bandwidth limiting), the relay pump between user and work connections, and the server's
//! remote-port allocator.

pub mod compress_stream;
pub mod crypto_stream;
pub mod limit;
pub mod ports;
pub mod proxy_protocol;
pub mod relay;
