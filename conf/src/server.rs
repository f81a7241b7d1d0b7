//! The frps configuration, [`ServerConfig`] (frp `pkg/config/v1/server.go`).

use serde::{Deserialize, Serialize};

use crate::auth::AuthServerConfig;
use crate::defaults;
use crate::log::LogConfig;
use crate::transport::ServerTransportConfig;
use crate::types::PortsRange;
use crate::web::WebServerConfig;

/// Everything frps reads from its configuration file, completed with frp's defaults.
///
/// `ServerConfig::default()` is what frps runs with when given no file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    /// `version` (frp `APIMetadata`; accepted and ignored).
    #[serde(rename = "version", default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `auth`.
    #[serde(rename = "auth", default)]
    pub auth: AuthServerConfig,
    /// `bindAddr`. Default `0.0.0.0`.
    #[serde(rename = "bindAddr", default)]
    pub bind_addr: String,
    /// `bindPort`: the frpc control/work port. Default 7000.
    #[serde(rename = "bindPort", default)]
    pub bind_port: u16,
    /// `kcpBindPort`: UDP port for KCP; 0 = off.
    #[serde(rename = "kcpBindPort", default)]
    pub kcp_bind_port: u16,
    /// `quicBindPort`: UDP port for QUIC; 0 = off.
    #[serde(rename = "quicBindPort", default)]
    pub quic_bind_port: u16,
    /// `proxyBindAddr`: where tcp/udp proxies listen. Default = `bindAddr`.
    #[serde(rename = "proxyBindAddr", default)]
    pub proxy_bind_addr: String,
    /// `vhostHTTPPort`: HTTP vhost listener; 0 = off.
    #[serde(rename = "vhostHTTPPort", default)]
    pub vhost_http_port: u16,
    /// `vhostHTTPTimeout`: response-header timeout, seconds. Default 60.
    #[serde(rename = "vhostHTTPTimeout", default)]
    pub vhost_http_timeout: u64,
    /// `vhostHTTPSPort`: HTTPS (SNI) vhost listener; 0 = off.
    #[serde(rename = "vhostHTTPSPort", default)]
    pub vhost_https_port: u16,
    /// `tcpmuxHTTPConnectPort`: HTTP CONNECT multiplexer listener; 0 = off.
    #[serde(rename = "tcpmuxHTTPConnectPort", default)]
    pub tcpmux_http_connect_port: u16,
    /// `tcpmuxPassthrough`: forward the CONNECT request instead of answering it.
    #[serde(rename = "tcpmuxPassthrough", default)]
    pub tcpmux_passthrough: bool,
    /// `subDomainHost`: suffix for `subdomain` proxies.
    #[serde(rename = "subDomainHost", default)]
    pub sub_domain_host: String,
    /// `custom404Page`: file served for unknown vhosts.
    #[serde(rename = "custom404Page", default)]
    pub custom_404_page: String,
    /// `sshTunnelGateway`.
    #[serde(rename = "sshTunnelGateway", default)]
    pub ssh_tunnel_gateway: SshTunnelGateway,
    /// `webServer`: the dashboard.
    #[serde(rename = "webServer", default)]
    pub web_server: WebServerConfig,
    /// `enablePrometheus`: `/metrics` on the dashboard.
    #[serde(rename = "enablePrometheus", default)]
    pub enable_prometheus: bool,
    /// `log`.
    #[serde(rename = "log", default)]
    pub log: LogConfig,
    /// `transport`.
    #[serde(rename = "transport", default)]
    pub transport: ServerTransportConfig,
    /// `detailedErrorsToClient`: send full error text to frpc. Default true.
    #[serde(rename = "detailedErrorsToClient", default = "defaults::yes")]
    pub detailed_errors_to_client: bool,
    /// `maxPortsPerClient`; 0 = unlimited.
    #[serde(rename = "maxPortsPerClient", default)]
    pub max_ports_per_client: u64,
    /// `userConnTimeout`: wait for a work connection, seconds. Default 10.
    #[serde(rename = "userConnTimeout", default)]
    pub user_conn_timeout: u64,
    /// `udpPacketSize`. Default 1500.
    #[serde(rename = "udpPacketSize", default)]
    pub udp_packet_size: u32,
    /// `natholeAnalysisDataReserveHours`. Default 168.
    #[serde(rename = "natholeAnalysisDataReserveHours", default)]
    pub nathole_analysis_data_reserve_hours: u64,
    /// `allowPorts`: ports frpc may ask for; empty = all.
    #[serde(rename = "allowPorts", default)]
    pub allow_ports: Vec<PortsRange>,
    /// `httpPlugins`: server plugins called over HTTP.
    #[serde(rename = "httpPlugins", default)]
    pub http_plugins: Vec<HttpPluginOptions>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let mut c = Self {
            version: String::new(),
            auth: AuthServerConfig::default(),
            bind_addr: String::new(),
            bind_port: 0,
            kcp_bind_port: 0,
            quic_bind_port: 0,
            proxy_bind_addr: String::new(),
            vhost_http_port: 0,
            vhost_http_timeout: 0,
            vhost_https_port: 0,
            tcpmux_http_connect_port: 0,
            tcpmux_passthrough: false,
            sub_domain_host: String::new(),
            custom_404_page: String::new(),
            ssh_tunnel_gateway: SshTunnelGateway::default(),
            web_server: WebServerConfig::default(),
            enable_prometheus: false,
            log: LogConfig::default(),
            transport: ServerTransportConfig::default(),
            detailed_errors_to_client: true,
            max_ports_per_client: 0,
            user_conn_timeout: 0,
            udp_packet_size: 0,
            nathole_analysis_data_reserve_hours: 0,
            allow_ports: Vec::new(),
            http_plugins: Vec::new(),
        };
        c.complete();
        c
    }
}

impl ServerConfig {
    /// Fills defaults like frp's `ServerConfig.Complete` (idempotent). `auth.tokenSource` is
    /// resolved by the loader, which can report a file error.
    pub fn complete(&mut self) {
        self.log.complete();
        self.transport.complete();
        self.web_server.complete();
        self.ssh_tunnel_gateway.complete();
        defaults::or_str(&mut self.bind_addr, defaults::BIND_ADDR);
        defaults::or_num(&mut self.bind_port, defaults::BIND_PORT);
        if self.proxy_bind_addr.is_empty() {
            self.proxy_bind_addr = self.bind_addr.clone();
        }
        // frp also has `if webServer.port > 0 { addr = EmptyOr(addr, "0.0.0.0") }`, dead code
        // because `WebServerConfig.Complete` already set 127.0.0.1.
        defaults::or_num(&mut self.vhost_http_timeout, defaults::VHOST_HTTP_TIMEOUT);
        defaults::or_num(&mut self.user_conn_timeout, defaults::USER_CONN_TIMEOUT);
        defaults::or_num(&mut self.udp_packet_size, defaults::UDP_PACKET_SIZE);
        defaults::or_num(
            &mut self.nathole_analysis_data_reserve_hours,
            defaults::NATHOLE_ANALYSIS_DATA_RESERVE_HOURS,
        );
    }

    /// True if `allowPorts` permits `port` (an empty list permits all).
    pub fn port_allowed(&self, port: u16) -> bool {
        self.allow_ports.is_empty() || self.allow_ports.iter().any(|r| r.contains(port))
    }
}

/// `sshTunnelGateway`: frps's built-in SSH server; off while `bindPort` is 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTunnelGateway {
    /// `bindPort`.
    #[serde(rename = "bindPort", default)]
    pub bind_port: u16,
    /// `privateKeyFile`: host key.
    #[serde(rename = "privateKeyFile", default)]
    pub private_key_file: String,
    /// `autoGenPrivateKeyPath`: where a generated host key is kept. Default `./.autogen_ssh_key`.
    #[serde(rename = "autoGenPrivateKeyPath", default)]
    pub auto_gen_private_key_path: String,
    /// `authorizedKeysFile`.
    #[serde(rename = "authorizedKeysFile", default)]
    pub authorized_keys_file: String,
}

impl Default for SshTunnelGateway {
    fn default() -> Self {
        let mut c = Self {
            bind_port: 0,
            private_key_file: String::new(),
            auto_gen_private_key_path: String::new(),
            authorized_keys_file: String::new(),
        };
        c.complete();
        c
    }
}

impl SshTunnelGateway {
    /// frp `SSHTunnelGateway.Complete`.
    pub fn complete(&mut self) {
        defaults::or_str(
            &mut self.auto_gen_private_key_path,
            defaults::SSH_AUTO_GEN_PRIVATE_KEY_PATH,
        );
    }
}

/// Operations a server HTTP plugin can hook (`validation.SupportedHTTPPluginOps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HttpPluginOp {
    /// `Login`.
    Login,
    /// `NewProxy`.
    NewProxy,
    /// `CloseProxy`.
    CloseProxy,
    /// `Ping`.
    Ping,
    /// `NewWorkConn`.
    NewWorkConn,
    /// `NewUserConn`.
    NewUserConn,
}

/// One `[[httpPlugins]]` entry (frp `HTTPPluginOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPluginOptions {
    /// `name`.
    #[serde(rename = "name", default)]
    pub name: String,
    /// `addr`: `host:port`, or an `https://` URL.
    #[serde(rename = "addr", default)]
    pub addr: String,
    /// `path`.
    #[serde(rename = "path", default)]
    pub path: String,
    /// `ops`: hooked operations.
    #[serde(rename = "ops", default)]
    pub ops: Vec<HttpPluginOp>,
    /// `tlsVerify`: verify the plugin's certificate when `addr` is https.
    #[serde(rename = "tlsVerify", default)]
    pub tls_verify: bool,
}
