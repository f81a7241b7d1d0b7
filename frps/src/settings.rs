//! The server's settings resolved from [`conf::ServerConfig`]: every default applied, every
//! `Option` and sentinel (`-1` = disabled) turned into a plain value, so the service never
//! re-derives them. This is the one place that reads the config model.

use std::time::Duration;

use conf::ServerConfig;

/// Resolved transport TLS settings of frps.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Reject plaintext clients (`transport.tls.force`, implied by `trustedCaFile`).
    pub force: bool,
    /// PEM certificate chain; a self-signed certificate is generated when empty.
    pub cert_file: String,
    /// PEM private key for `cert_file`.
    pub key_file: String,
    /// CA for client certificates; enables mutual TLS.
    pub trusted_ca_file: String,
}

/// Everything frps needs at run time, resolved.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address of the control listener (`bindAddr`).
    pub bind_addr: String,
    /// Port of the control listener (`bindPort`); 0 lets the OS pick (tests).
    pub bind_port: u16,
    /// Address proxies' listeners bind to (`proxyBindAddr`).
    pub proxy_bind_addr: String,
    /// `auth.token`.
    pub token: String,
    /// `auth.additionalScopes` contains `HeartBeats`.
    pub auth_heartbeats: bool,
    /// `auth.additionalScopes` contains `NewWorkConns`.
    pub auth_new_work_conns: bool,
    /// `transport.tcpMux`.
    pub tcp_mux: bool,
    /// `transport.tcpMuxKeepaliveInterval`.
    pub tcp_mux_keepalive: Duration,
    /// `transport.tcpKeepalive`; `None` when negative.
    pub tcp_keepalive: Option<Duration>,
    /// `transport.maxPoolCount`.
    pub max_pool_count: u32,
    /// `transport.heartbeatTimeout`; `None` when disabled (≤ 0).
    pub heartbeat_timeout: Option<Duration>,
    /// TLS settings.
    pub tls: TlsSettings,
    /// `userConnTimeout`.
    pub user_conn_timeout: Duration,
    /// `maxPortsPerClient`; 0 is unlimited.
    pub max_ports_per_client: u32,
    /// `allowPorts` as inclusive ranges; empty allows every port.
    pub allow_ports: Vec<(u16, u16)>,
    /// `detailedErrorsToClient`.
    pub detailed_errors_to_client: bool,
}

impl ServerSettings {
    /// Resolves a completed config.
    pub fn from_config(cfg: &ServerConfig) -> Self {
        crate::settings_map::resolve(cfg)
    }

    /// The error text sent to a client: the detail, or frp's fixed summary when
    /// `detailedErrorsToClient = false` (frp `util.GenerateResponseErrorString`).
    pub fn client_error(&self, summary: &str, detail: &str) -> String {
        if self.detailed_errors_to_client {
            detail.to_string()
        } else {
            summary.to_string()
        }
    }
}

/// Seconds from config, where ≤ 0 means "disabled".
pub(crate) fn positive_secs(v: i64) -> Option<Duration> {
    (v > 0).then(|| Duration::from_secs(v as u64))
}
