//! `webServer.*`: the frps dashboard / frpc admin API listener (frp `common.go`
//! `WebServerConfig`).

use serde::{Deserialize, Serialize};

use crate::defaults;
use crate::transport::TlsConfig;
use crate::types::Secret;

/// `webServer` table. The listener is off while `port` is 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebServerConfig {
    /// `webServer.addr`. Default `127.0.0.1`.
    #[serde(rename = "addr", default)]
    pub addr: String,
    /// `webServer.port`; 0 disables the server.
    #[serde(rename = "port", default)]
    pub port: u16,
    /// `webServer.user` for HTTP basic auth.
    #[serde(rename = "user", default)]
    pub user: String,
    /// `webServer.password` for HTTP basic auth.
    #[serde(rename = "password", default)]
    pub password: Secret,
    /// `webServer.assetsDir`: serve UI assets from here instead of the embedded ones.
    #[serde(rename = "assetsDir", default)]
    pub assets_dir: String,
    /// `webServer.pprofEnable`: Go pprof handlers (accepted, no Rust equivalent).
    #[serde(rename = "pprofEnable", default)]
    pub pprof_enable: bool,
    /// `webServer.tls`: serve HTTPS when present (certFile and keyFile required).
    #[serde(rename = "tls", default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

impl Default for WebServerConfig {
    fn default() -> Self {
        let mut c = Self {
            addr: String::new(),
            port: 0,
            user: String::new(),
            password: Secret::default(),
            assets_dir: String::new(),
            pprof_enable: false,
            tls: None,
        };
        c.complete();
        c
    }
}

impl WebServerConfig {
    /// frp `WebServerConfig.Complete`.
    pub fn complete(&mut self) {
        defaults::or_str(&mut self.addr, defaults::WEB_SERVER_ADDR);
    }
}
