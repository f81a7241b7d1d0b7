//! frp 0.65.0's configuration for both sides, as a library: the v1 model, the loader (Go
//! template pass, TOML / JSON / YAML / legacy INI, `includes`, `start`), frp's defaults and
//! validation. No tokio and no IO beyond reading configuration files.
//!
//! # Entry points
//!
//! * [`load_server_config`] / [`load_client_config`] read a file and return a completed,
//!   validated [`ServerConfig`] / [`ClientConfig`];
//! * [`parse_server_str`] / [`parse_client_str`] do the same on text, with an explicit
//!   template environment ([`Env`]);
//! * [`ServerConfig::default()`] is frps's configuration when run without a file;
//! * [`validate_proxy_for_server`] is frps's check of a `NewProxy` request.
//!
//! # Layout
//!
//! | module | owns |
//! |---|---|
//! | `server`, `client` | the top-level models |
//! | `proxy`, `visitor`, `plugin` | `[[proxies]]`, `[[visitors]]`, their plugins |
//! | `transport`, `auth`, `web`, `log` | shared sub-tables |
//! | [`types`] | `ByteSize`, `PortsRange`, `Secret`, range parsers |
//! | `defaults` | frp's default values as constants |
//! | `decode` | JSON-tree deserializer: Go-style case folding, unknown keys, key paths |
//! | [`template`] | the Go `text/template` subset |
//! | `legacy` | INI reading and conversion to v1 |
//! | `load`, `validate` | the pipeline and frp's rules |
//!
//! Field names follow Rust style; each has `#[serde(rename)]` equal to frp's JSON tag, so
//! `serde_json::to_value(&cfg)` gives frp's JSON shape.

#![warn(missing_docs, unreachable_pub)]

mod auth;
mod client;
mod decode;
pub mod defaults;
mod error;
mod legacy;
mod load;
mod log;
mod plugin;
mod proxy;
mod server;
pub mod template;
mod transport;
pub mod types;
mod validate;
mod visitor;
mod web;

pub use auth::{
    AuthClientConfig, AuthMethod, AuthOidcClientConfig, AuthOidcServerConfig, AuthScope,
    AuthServerConfig, FileSource, ValueSource, ValueSourceKind,
};
pub use client::{ClientCommonConfig, ClientConfig, VirtualNetConfig, FEATURE_VIRTUAL_NET};
pub use error::{ConfError, Problem};
pub use load::{
    load_client_config, load_server_config, parse_client_str, parse_server_str, process_env,
};
pub use log::{LogConfig, LogLevel};
pub use plugin::{
    ClientPluginOptions, Http2HttpPluginOptions, Http2HttpsPluginOptions, HttpProxyPluginOptions,
    Https2HttpPluginOptions, Https2HttpsPluginOptions, Socks5PluginOptions,
    StaticFilePluginOptions, Tls2RawPluginOptions, UnixDomainSocketPluginOptions,
    VirtualNetPluginOptions, VirtualNetVisitorPluginOptions, VisitorPluginOptions,
};
pub use proxy::{
    BandwidthLimitMode, HeaderOperations, HealthCheckConfig, HealthCheckType, HttpHeader,
    HttpProxyConfig, HttpsProxyConfig, LoadBalancerConfig, NatTraversalConfig, ProxyBase,
    ProxyConfig, ProxyProtocolVersion, ProxyTransport, ProxyType, StcpProxyConfig, SudpProxyConfig,
    TcpMultiplexer, TcpMuxProxyConfig, TcpProxyConfig, UdpProxyConfig, XtcpProxyConfig,
};
pub use server::{HttpPluginOp, HttpPluginOptions, ServerConfig, SshTunnelGateway};
pub use template::Env;
pub use transport::{
    ClientTransportConfig, KcpOptions, KcpTuning, QuicCongestion, QuicOptions,
    ServerTransportConfig, TlsClientConfig, TlsConfig, TlsServerConfig, TransportProtocol,
};
pub use types::{ByteSize, PortsRange, Secret};
pub use validate::{check_client, check_server, validate_proxy_for_server, KNOWN_FEATURE_GATES};
pub use visitor::{
    StcpVisitorConfig, SudpVisitorConfig, VisitorBase, VisitorConfig, VisitorTransport,
    VisitorType, XtcpProtocol, XtcpVisitorConfig,
};
pub use web::WebServerConfig;
