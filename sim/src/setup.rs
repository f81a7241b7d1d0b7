//! Config text for the simulated frps and frpc, and the standard cast: frps, one frpc per
//! client spec, an echo backend per proxy, and the user.

use std::fmt::Write as _;
use std::time::Duration;

/// frps's control port in every scenario.
pub const BIND_PORT: u16 = 7000;
/// The echo backends' port.
pub const BACKEND_PORT: u16 = 9000;
/// The shared token.
pub const TOKEN: &str = "sim";

/// Transport choices every scenario varies (QUIC and KCP need OS sockets and stay out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// `transport.tcpMux`.
    pub tcp_mux: bool,
    /// `transport.tls.enable` on frpc (frps accepts both).
    pub tls: bool,
}

/// frps's config.
pub fn frps_toml(t: Transport) -> String {
    format!(
        "bindPort = {BIND_PORT}\nauth.token = \"{TOKEN}\"\ntransport.tcpMux = {}\n",
        t.tcp_mux
    )
}

/// A health check on a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// `healthCheck.intervalSeconds`.
    pub interval_secs: u32,
    /// `healthCheck.timeoutSeconds`.
    pub timeout_secs: u32,
    /// `healthCheck.maxFailed`.
    pub max_failed: u32,
}

impl Health {
    /// The interval as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.into())
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.into())
    }
}

/// One tcp proxy of an frpc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Proxy name.
    pub name: String,
    /// The backend host it forwards to (port [`BACKEND_PORT`]).
    pub backend: String,
    /// `remotePort` on frps.
    pub remote_port: u16,
    /// `loadBalancer.group`, if any.
    pub group: Option<String>,
    /// A tcp health check, if any.
    pub health: Option<Health>,
    /// `transport.useEncryption` and `transport.useCompression`.
    pub wrapped: bool,
}

impl Proxy {
    /// A plain tcp proxy.
    pub fn tcp(name: &str, backend: &str, remote_port: u16) -> Self {
        Self {
            name: name.into(),
            backend: backend.into(),
            remote_port,
            group: None,
            health: None,
            wrapped: false,
        }
    }
}

/// frpc's config with `proxies`.
pub fn frpc_toml(t: Transport, proxies: &[Proxy]) -> String {
    let mut s = format!(
        "serverAddr = \"frps\"\nserverPort = {BIND_PORT}\nauth.token = \"{TOKEN}\"\n\
         loginFailExit = false\ntransport.tcpMux = {}\ntransport.tls.enable = {}\n",
        t.tcp_mux, t.tls
    );
    for p in proxies {
        let _ = write!(
            s,
            "\n[[proxies]]\nname = \"{}\"\ntype = \"tcp\"\nlocalIP = \"{}\"\nlocalPort = {BACKEND_PORT}\n\
             remotePort = {}\ntransport.useEncryption = {}\ntransport.useCompression = {}\n",
            p.name, p.backend, p.remote_port, p.wrapped, p.wrapped
        );
        if let Some(g) = &p.group {
            let _ = write!(
                s,
                "loadBalancer.group = \"{g}\"\nloadBalancer.groupKey = \"k\"\n"
            );
        }
        if let Some(h) = &p.health {
            let _ = write!(
                s,
                "healthCheck.type = \"tcp\"\nhealthCheck.intervalSeconds = {}\n\
                 healthCheck.timeoutSeconds = {}\nhealthCheck.maxFailed = {}\n",
                h.interval_secs, h.timeout_secs, h.max_failed
            );
        }
    }
    s
}
