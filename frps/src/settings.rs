//! The server's settings resolved from [`conf::ServerConfig`]: every default applied, every
//! sentinel (`-1` = disabled) turned into an `Option`, the transport options built once, so the
//! service never re-derives them. `settings_map` is the one place that reads the config model.

use std::time::Duration;

use control::TokenAuth;
use transports::ServerTransportOptions;

/// Everything frps needs at run time, resolved.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The control listener: address, TLS, yamux.
    pub listener: ServerTransportOptions,
    /// Address proxies' listeners bind to (`proxyBindAddr`).
    pub proxy_bind_addr: String,
    /// `auth.token`: also the key of the control connection and of encrypted work connections.
    pub token: String,
    /// Verifies logins, pings and work connections (`auth.additionalScopes`).
    pub auth: TokenAuth,
    /// `transport.maxPoolCount`.
    pub max_pool_count: u32,
    /// `transport.heartbeatTimeout`; `None` when disabled.
    pub heartbeat_timeout: Option<Duration>,
    /// `userConnTimeout`.
    pub user_conn_timeout: Duration,
    /// `maxPortsPerClient`; 0 is unlimited.
    pub max_ports_per_client: u32,
    /// `allowPorts` as inclusive ranges; empty allows every port.
    pub allow_ports: Vec<(u16, u16)>,
    /// `detailedErrorsToClient`.
    pub detailed_errors_to_client: bool,
}
