//! `transport.*` for both sides: how frpc reaches frps (protocol, TLS, tcpMux, heartbeats,
//! QUIC options). Mirrors frp `pkg/config/v1/server.go` `ServerTransportConfig`,
//! `client.go` `ClientTransportConfig` and `common.go` `QUICOptions` / `TLSConfig`.

use serde::{Deserialize, Serialize};

use crate::decode::empty_default;
use crate::defaults;

/// frpc `transport.protocol` (`validation.SupportedTransportProtocols`); `""` means `tcp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TransportProtocol {
    /// Plain TCP (optionally TLS).
    #[default]
    #[serde(rename = "tcp")]
    Tcp,
    /// KCP over UDP.
    #[serde(rename = "kcp")]
    Kcp,
    /// QUIC over UDP.
    #[serde(rename = "quic")]
    Quic,
    /// WebSocket over TCP.
    #[serde(rename = "websocket")]
    Websocket,
    /// WebSocket over TLS.
    #[serde(rename = "wss")]
    Wss,
}

impl TransportProtocol {
    /// frp's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportProtocol::Tcp => "tcp",
            TransportProtocol::Kcp => "kcp",
            TransportProtocol::Quic => "quic",
            TransportProtocol::Websocket => "websocket",
            TransportProtocol::Wss => "wss",
        }
    }
}

/// `transport.quic` (both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuicOptions {
    /// `keepalivePeriod`, seconds. Default 10.
    #[serde(rename = "keepalivePeriod", default)]
    pub keepalive_period: u32,
    /// `maxIdleTimeout`, seconds. Default 30.
    #[serde(rename = "maxIdleTimeout", default)]
    pub max_idle_timeout: u32,
    /// `maxIncomingStreams`. Default 100000.
    #[serde(rename = "maxIncomingStreams", default)]
    pub max_incoming_streams: u32,
    /// `congestion`: the QUIC congestion controller. An frp-rs extension (frp has no such
    /// key and uses quic-go's CUBIC); unset means frp-rs's default (see the README).
    #[serde(
        rename = "congestion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub congestion: Option<QuicCongestion>,
}

/// QUIC congestion controllers (frp-rs extension `transport.quic.congestion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuicCongestion {
    /// BBR.
    #[serde(rename = "bbr")]
    Bbr,
    /// CUBIC (quic-go's, so frp's).
    #[serde(rename = "cubic")]
    Cubic,
    /// NewReno.
    #[serde(rename = "newreno")]
    NewReno,
}

/// `transport.kcp`: an frp-rs extension (frp's KCP tuning is fixed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KcpOptions {
    /// `tuning`: `fast` (the default: larger windows, 5 ms interval, no write delay, no
    /// FEC; it interoperates with frp's kcp-go, and gains fully with frp-rs on both ends) or
    /// `compat` (frp's exact kcp-go settings).
    #[serde(rename = "tuning", default)]
    pub tuning: KcpTuning,
}

impl KcpOptions {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// KCP tuning (frp-rs extension `transport.kcp.tuning`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KcpTuning {
    /// frp 0.65.0's kcp-go tuning.
    #[serde(rename = "compat")]
    Compat,
    /// frp-rs's low-latency, high-throughput tuning (the default).
    #[default]
    #[serde(rename = "fast")]
    Fast,
}

impl Default for QuicOptions {
    fn default() -> Self {
        let mut c = Self {
            keepalive_period: 0,
            max_idle_timeout: 0,
            max_incoming_streams: 0,
            congestion: None,
        };
        c.complete();
        c
    }
}

impl QuicOptions {
    /// frp `QUICOptions.Complete`.
    pub fn complete(&mut self) {
        defaults::or_num(&mut self.keepalive_period, defaults::QUIC_KEEPALIVE_PERIOD);
        defaults::or_num(&mut self.max_idle_timeout, defaults::QUIC_MAX_IDLE_TIMEOUT);
        defaults::or_num(
            &mut self.max_incoming_streams,
            defaults::QUIC_MAX_INCOMING_STREAMS,
        );
    }
}

/// Certificate files (frp `TLSConfig`), used by `webServer.tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// `certFile`.
    #[serde(rename = "certFile", default)]
    pub cert_file: String,
    /// `keyFile`.
    #[serde(rename = "keyFile", default)]
    pub key_file: String,
    /// `trustedCaFile`: verify the peer against this CA.
    #[serde(rename = "trustedCaFile", default)]
    pub trusted_ca_file: String,
    /// `serverName`: expected server certificate name (client side).
    #[serde(rename = "serverName", default)]
    pub server_name: String,
}

/// frps `transport.tls` (frp `TLSServerConfig`: `force` plus the embedded `TLSConfig`
/// fields, written out because `flatten` and our key tracking do not mix).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsServerConfig {
    /// `force`: accept TLS connections only. Forced on when `trustedCaFile` is set.
    #[serde(rename = "force", default)]
    pub force: bool,
    /// `certFile`; empty means frps generates a self-signed certificate.
    #[serde(rename = "certFile", default)]
    pub cert_file: String,
    /// `keyFile`.
    #[serde(rename = "keyFile", default)]
    pub key_file: String,
    /// `trustedCaFile`: require and verify client certificates.
    #[serde(rename = "trustedCaFile", default)]
    pub trusted_ca_file: String,
    /// `serverName` (accepted for symmetry; unused by frps).
    #[serde(rename = "serverName", default)]
    pub server_name: String,
}

/// frpc `transport.tls` (frp `TLSClientConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsClientConfig {
    /// `enable`: dial frps with TLS. Default **true** (since frp 0.50).
    #[serde(rename = "enable", default = "defaults::yes")]
    pub enable: bool,
    /// `disableCustomTLSFirstByte`: when false, send frp's 0x17 byte before the ClientHello.
    /// Default **true**.
    #[serde(rename = "disableCustomTLSFirstByte", default = "defaults::yes")]
    pub disable_custom_tls_first_byte: bool,
    /// `certFile`: client certificate.
    #[serde(rename = "certFile", default)]
    pub cert_file: String,
    /// `keyFile`: client key.
    #[serde(rename = "keyFile", default)]
    pub key_file: String,
    /// `trustedCaFile`: verify frps against this CA (otherwise no verification).
    #[serde(rename = "trustedCaFile", default)]
    pub trusted_ca_file: String,
    /// `serverName`: SNI / verification name; default is `serverAddr`.
    #[serde(rename = "serverName", default)]
    pub server_name: String,
}

impl Default for TlsClientConfig {
    fn default() -> Self {
        Self {
            enable: true,
            disable_custom_tls_first_byte: true,
            cert_file: String::new(),
            key_file: String::new(),
            trusted_ca_file: String::new(),
            server_name: String::new(),
        }
    }
}

/// frps `transport` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTransportConfig {
    /// `tcpMux`: yamux over each frpc connection. Default true.
    #[serde(rename = "tcpMux", default = "defaults::yes")]
    pub tcp_mux: bool,
    /// `tcpMuxKeepaliveInterval`, seconds. Default 30.
    #[serde(rename = "tcpMuxKeepaliveInterval", default)]
    pub tcp_mux_keepalive_interval: u64,
    /// `tcpKeepalive`, seconds; negative disables TCP keepalive. Default 7200.
    #[serde(rename = "tcpKeepalive", default)]
    pub tcp_keepalive: i64,
    /// `maxPoolCount`: cap on each proxy's work-connection pool. Default 5.
    #[serde(rename = "maxPoolCount", default)]
    pub max_pool_count: u32,
    /// `heartbeatTimeout`, seconds; negative disables. Default -1 with tcpMux, else 90.
    #[serde(rename = "heartbeatTimeout", default)]
    pub heartbeat_timeout: i64,
    /// `quic` options.
    #[serde(rename = "quic", default)]
    pub quic: QuicOptions,
    /// `kcp` options (frp-rs extension).
    #[serde(
        rename = "kcp",
        default,
        skip_serializing_if = "KcpOptions::is_default"
    )]
    pub kcp: KcpOptions,
    /// `tls` options.
    #[serde(rename = "tls", default)]
    pub tls: TlsServerConfig,
}

impl Default for ServerTransportConfig {
    fn default() -> Self {
        let mut c = Self {
            tcp_mux: true,
            tcp_mux_keepalive_interval: 0,
            tcp_keepalive: 0,
            max_pool_count: 0,
            heartbeat_timeout: 0,
            quic: QuicOptions::default(),
            kcp: KcpOptions::default(),
            tls: TlsServerConfig::default(),
        };
        c.complete();
        c
    }
}

impl ServerTransportConfig {
    /// frp `ServerTransportConfig.Complete`.
    pub fn complete(&mut self) {
        defaults::or_num(
            &mut self.tcp_mux_keepalive_interval,
            defaults::TCP_MUX_KEEPALIVE_INTERVAL,
        );
        defaults::or_num(&mut self.tcp_keepalive, defaults::TCP_KEEPALIVE);
        defaults::or_num(&mut self.max_pool_count, defaults::MAX_POOL_COUNT);
        let hb = if self.tcp_mux {
            defaults::HEARTBEAT_DISABLED
        } else {
            defaults::HEARTBEAT_TIMEOUT
        };
        defaults::or_num(&mut self.heartbeat_timeout, hb);
        self.quic.complete();
        if !self.tls.trusted_ca_file.is_empty() {
            self.tls.force = true;
        }
    }
}

/// frpc `transport` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTransportConfig {
    /// `protocol`. Default `tcp`.
    #[serde(
        rename = "protocol",
        default,
        deserialize_with = "empty_default::deserialize"
    )]
    pub protocol: TransportProtocol,
    /// `dialServerTimeout`, seconds. Default 10.
    #[serde(rename = "dialServerTimeout", default)]
    pub dial_server_timeout: u64,
    /// `dialServerKeepalive`, seconds; negative disables. Default 7200.
    #[serde(rename = "dialServerKeepalive", default)]
    pub dial_server_keepalive: i64,
    /// `connectServerLocalIP`: local address to bind when dialing frps (tcp/websocket).
    #[serde(rename = "connectServerLocalIP", default)]
    pub connect_server_local_ip: String,
    /// `proxyURL`: http/socks5/ntlm proxy to reach frps. Default: env `http_proxy`.
    #[serde(rename = "proxyURL", default)]
    pub proxy_url: String,
    /// `poolCount`: work connections opened in advance. Default 1 (0 counts as unset).
    #[serde(rename = "poolCount", default)]
    pub pool_count: u32,
    /// `tcpMux`. Default true; must match frps.
    #[serde(rename = "tcpMux", default = "defaults::yes")]
    pub tcp_mux: bool,
    /// `tcpMuxKeepaliveInterval`, seconds. Default 30.
    #[serde(rename = "tcpMuxKeepaliveInterval", default)]
    pub tcp_mux_keepalive_interval: u64,
    /// `quic` options.
    #[serde(rename = "quic", default)]
    pub quic: QuicOptions,
    /// `kcp` options (frp-rs extension).
    #[serde(
        rename = "kcp",
        default,
        skip_serializing_if = "KcpOptions::is_default"
    )]
    pub kcp: KcpOptions,
    /// `heartbeatInterval`, seconds; negative disables. Default -1 with tcpMux, else 30.
    #[serde(rename = "heartbeatInterval", default)]
    pub heartbeat_interval: i64,
    /// `heartbeatTimeout`, seconds; negative disables. Default -1 with tcpMux, else 90.
    #[serde(rename = "heartbeatTimeout", default)]
    pub heartbeat_timeout: i64,
    /// `tls` options.
    #[serde(rename = "tls", default)]
    pub tls: TlsClientConfig,
}

impl Default for ClientTransportConfig {
    fn default() -> Self {
        let mut c = Self {
            protocol: TransportProtocol::Tcp,
            dial_server_timeout: 0,
            dial_server_keepalive: 0,
            connect_server_local_ip: String::new(),
            proxy_url: String::new(),
            pool_count: 0,
            tcp_mux: true,
            tcp_mux_keepalive_interval: 0,
            quic: QuicOptions::default(),
            kcp: KcpOptions::default(),
            heartbeat_interval: 0,
            heartbeat_timeout: 0,
            tls: TlsClientConfig::default(),
        };
        c.complete();
        c
    }
}

impl ClientTransportConfig {
    /// frp `ClientTransportConfig.Complete`, except `proxyURL`'s fallback to the `http_proxy`
    /// environment variable, which the loader applies from its environment map.
    pub fn complete(&mut self) {
        defaults::or_num(&mut self.dial_server_timeout, defaults::DIAL_SERVER_TIMEOUT);
        defaults::or_num(&mut self.dial_server_keepalive, defaults::TCP_KEEPALIVE);
        defaults::or_num(&mut self.pool_count, defaults::POOL_COUNT);
        defaults::or_num(
            &mut self.tcp_mux_keepalive_interval,
            defaults::TCP_MUX_KEEPALIVE_INTERVAL,
        );
        let (interval, timeout) = if self.tcp_mux {
            (defaults::HEARTBEAT_DISABLED, defaults::HEARTBEAT_DISABLED)
        } else {
            (defaults::HEARTBEAT_INTERVAL, defaults::HEARTBEAT_TIMEOUT)
        };
        defaults::or_num(&mut self.heartbeat_interval, interval);
        defaults::or_num(&mut self.heartbeat_timeout, timeout);
        self.quic.complete();
    }
}
