//! TOML config writers for frps and frpc, plus the frps command-line form.
//!
//! Only frp v1 keys are written (the JSON tags of frp `pkg/config/v1`), in the plain form both
//! the real frp and ours must read: top-level dotted keys (`transport.tcpMux = false`) before
//! any `[[proxies]]` table. Everything binds and dials 127.0.0.1 only.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

mod transport;

pub use transport::{Protocol, QuicOptions};

/// An `allowPorts` entry of frps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    /// `{ single = N }`
    Single(u16),
    /// `{ start = A, end = B }` (inclusive)
    Range(u16, u16),
}

/// frps configuration (`frps.toml`).
#[derive(Debug, Clone, Default)]
pub struct FrpsConfig {
    /// `bindPort` (`bindAddr` is always 127.0.0.1).
    pub bind_port: u16,
    /// `kcpBindPort` (UDP; may equal `bindPort`).
    pub kcp_bind_port: Option<u16>,
    /// `quicBindPort` (UDP).
    pub quic_bind_port: Option<u16>,
    /// `transport.quic.*`.
    pub quic: QuicOptions,
    /// `auth.token`.
    pub token: Option<String>,
    /// `transport.tcpMux` (frp default true).
    pub tcp_mux: Option<bool>,
    /// `transport.tls.force`.
    pub tls_force: Option<bool>,
    /// `transport.tls.certFile` and `transport.tls.keyFile`.
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    /// `allowPorts`.
    pub allow_ports: Vec<PortSpec>,
    /// `maxPortsPerClient`.
    pub max_ports_per_client: Option<u32>,
    /// `auth.additionalScopes` (e.g. `HeartBeats`, `NewWorkConns`).
    pub additional_scopes: Vec<String>,
    /// Raw TOML lines appended to the top-level section.
    pub extra: Vec<String>,
}

impl FrpsConfig {
    /// A config listening on `127.0.0.1:bind_port` with frp's defaults otherwise.
    pub fn new(bind_port: u16) -> Self {
        Self {
            bind_port,
            ..Self::default()
        }
    }

    /// Sets `auth.token`.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Sets `transport.tcpMux`.
    pub fn tcp_mux(mut self, on: bool) -> Self {
        self.tcp_mux = Some(on);
        self
    }

    /// Sets `kcpBindPort`.
    pub fn kcp_bind_port(mut self, port: u16) -> Self {
        self.kcp_bind_port = Some(port);
        self
    }

    /// Sets `quicBindPort`.
    pub fn quic_bind_port(mut self, port: u16) -> Self {
        self.quic_bind_port = Some(port);
        self
    }

    /// Sets `transport.quic.*`.
    pub fn quic(mut self, options: QuicOptions) -> Self {
        self.quic = options;
        self
    }

    /// Sets `transport.tls.force`.
    pub fn tls_force(mut self, on: bool) -> Self {
        self.tls_force = Some(on);
        self
    }

    /// Sets `transport.tls.certFile` / `keyFile`.
    pub fn tls_cert(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls_cert = Some((cert, key));
        self
    }

    /// Adds an `allowPorts` entry.
    pub fn allow(mut self, spec: PortSpec) -> Self {
        self.allow_ports.push(spec);
        self
    }

    /// Sets `maxPortsPerClient`.
    pub fn max_ports_per_client(mut self, n: u32) -> Self {
        self.max_ports_per_client = Some(n);
        self
    }

    /// Sets `auth.additionalScopes`.
    pub fn additional_scopes(mut self, scopes: &[&str]) -> Self {
        self.additional_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        line(&mut t, "bindAddr", &quote("127.0.0.1"));
        line(&mut t, "bindPort", &self.bind_port.to_string());
        if let Some(port) = self.kcp_bind_port {
            line(&mut t, "kcpBindPort", &port.to_string());
        }
        if let Some(port) = self.quic_bind_port {
            line(&mut t, "quicBindPort", &port.to_string());
        }
        if let Some(token) = &self.token {
            line(&mut t, "auth.token", &quote(token));
        }
        if !self.additional_scopes.is_empty() {
            line(
                &mut t,
                "auth.additionalScopes",
                &string_array(&self.additional_scopes),
            );
        }
        if let Some(on) = self.tcp_mux {
            line(&mut t, "transport.tcpMux", &on.to_string());
        }
        if let Some(on) = self.tls_force {
            line(&mut t, "transport.tls.force", &on.to_string());
        }
        self.quic.write(&mut t);
        if let Some((cert, key)) = &self.tls_cert {
            line(
                &mut t,
                "transport.tls.certFile",
                &quote(&cert.to_string_lossy()),
            );
            line(
                &mut t,
                "transport.tls.keyFile",
                &quote(&key.to_string_lossy()),
            );
        }
        if !self.allow_ports.is_empty() {
            let items: Vec<String> = self
                .allow_ports
                .iter()
                .map(|spec| match spec {
                    PortSpec::Single(p) => format!("{{ single = {p} }}"),
                    PortSpec::Range(a, b) => format!("{{ start = {a}, end = {b} }}"),
                })
                .collect();
            line(&mut t, "allowPorts", &format!("[{}]", items.join(", ")));
        }
        if let Some(n) = self.max_ports_per_client {
            line(&mut t, "maxPortsPerClient", &n.to_string());
        }
        for extra in &self.extra {
            t.push_str(extra);
            t.push('\n');
        }
        t
    }

    /// The same settings as frps command-line flags (frp `cmd/frps/root.go`): only the
    /// subset flags can express (bind address/port, token, allowPorts, maxPortsPerClient,
    /// TLS only). Other fields are ignored.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--bind-addr".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.bind_port.to_string().into(),
        ];
        if let Some(token) = &self.token {
            args.push("-t".into());
            args.push(token.into());
        }
        if !self.allow_ports.is_empty() {
            let spec: Vec<String> = self
                .allow_ports
                .iter()
                .map(|s| match s {
                    PortSpec::Single(p) => p.to_string(),
                    PortSpec::Range(a, b) => format!("{a}-{b}"),
                })
                .collect();
            args.push("--allow-ports".into());
            args.push(spec.join(",").into());
        }
        if let Some(n) = self.max_ports_per_client {
            args.push("--max-ports-per-client".into());
            args.push(n.to_string().into());
        }
        if self.tls_force == Some(true) {
            args.push("--tls-only".into());
        }
        args
    }
}

/// A `type = "tcp"` proxy of frpc.
#[derive(Debug, Clone, Default)]
pub struct TcpProxy {
    /// `name`.
    pub name: String,
    /// `localPort` (`localIP` is always 127.0.0.1).
    pub local_port: u16,
    /// `remotePort` (0 = frps picks).
    pub remote_port: u16,
    /// `transport.useEncryption`.
    pub use_encryption: bool,
    /// `transport.useCompression`.
    pub use_compression: bool,
    /// `transport.bandwidthLimit`, e.g. `"1MB"`.
    pub bandwidth_limit: Option<String>,
    /// `transport.bandwidthLimitMode = "server"` (frps enforces the limit).
    pub limit_on_server: bool,
}

impl TcpProxy {
    /// A plain tcp proxy `remote_port` → `127.0.0.1:local_port`.
    pub fn new(name: &str, local_port: u16, remote_port: u16) -> Self {
        Self {
            name: name.to_owned(),
            local_port,
            remote_port,
            ..Self::default()
        }
    }

    /// Turns on `useEncryption` and `useCompression`.
    pub fn encrypted_compressed(mut self) -> Self {
        self.use_encryption = true;
        self.use_compression = true;
        self
    }

    /// Sets `transport.bandwidthLimit`.
    pub fn bandwidth_limit(mut self, limit: &str) -> Self {
        self.bandwidth_limit = Some(limit.to_owned());
        self
    }

    /// Sets `transport.bandwidthLimitMode = "server"`.
    pub fn limit_on_server(mut self) -> Self {
        self.limit_on_server = true;
        self
    }

    /// The `[[proxies]]` table.
    pub fn to_toml(&self) -> String {
        let mut t = String::from("\n[[proxies]]\n");
        line(&mut t, "name", &quote(&self.name));
        line(&mut t, "type", &quote("tcp"));
        line(&mut t, "localIP", &quote("127.0.0.1"));
        line(&mut t, "localPort", &self.local_port.to_string());
        line(&mut t, "remotePort", &self.remote_port.to_string());
        if self.use_encryption {
            line(&mut t, "transport.useEncryption", "true");
        }
        if self.use_compression {
            line(&mut t, "transport.useCompression", "true");
        }
        if let Some(limit) = &self.bandwidth_limit {
            line(&mut t, "transport.bandwidthLimit", &quote(limit));
        }
        if self.limit_on_server {
            line(&mut t, "transport.bandwidthLimitMode", &quote("server"));
        }
        t
    }
}

/// frpc configuration (`frpc.toml`).
#[derive(Debug, Clone, Default)]
pub struct FrpcConfig {
    /// `serverPort` (`serverAddr` is always 127.0.0.1).
    pub server_port: u16,
    /// `auth.token`.
    pub token: Option<String>,
    /// `auth.additionalScopes`.
    pub additional_scopes: Vec<String>,
    /// `loginFailExit` (frp default true).
    pub login_fail_exit: Option<bool>,
    /// `transport.protocol` (frp default `tcp`).
    pub protocol: Option<Protocol>,
    /// `transport.quic.*`.
    pub quic: QuicOptions,
    /// `transport.tcpMux` (frp default true).
    pub tcp_mux: Option<bool>,
    /// `transport.tls.enable` (frp default true).
    pub tls_enable: Option<bool>,
    /// `transport.tls.disableCustomTLSFirstByte` (frp default true).
    pub disable_custom_tls_first_byte: Option<bool>,
    /// `transport.tls.trustedCaFile` (frpc then verifies frps's certificate).
    pub tls_trusted_ca: Option<PathBuf>,
    /// `transport.tls.serverName` (frp default: `serverAddr`).
    pub tls_server_name: Option<String>,
    /// `transport.poolCount`.
    pub pool_count: Option<u32>,
    /// `includes` globs.
    pub includes: Vec<String>,
    /// Raw TOML lines appended to the top-level section.
    pub extra: Vec<String>,
    /// `[[proxies]]`.
    pub proxies: Vec<TcpProxy>,
}

impl FrpcConfig {
    /// A client of `127.0.0.1:server_port` with frp's defaults otherwise.
    pub fn new(server_port: u16) -> Self {
        Self {
            server_port,
            ..Self::default()
        }
    }

    /// Sets `auth.token`.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Sets `auth.additionalScopes`.
    pub fn additional_scopes(mut self, scopes: &[&str]) -> Self {
        self.additional_scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Sets `loginFailExit`.
    pub fn login_fail_exit(mut self, on: bool) -> Self {
        self.login_fail_exit = Some(on);
        self
    }

    /// Sets `transport.tcpMux`.
    pub fn tcp_mux(mut self, on: bool) -> Self {
        self.tcp_mux = Some(on);
        self
    }

    /// Sets `transport.protocol`.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Sets `transport.quic.*`.
    pub fn quic(mut self, options: QuicOptions) -> Self {
        self.quic = options;
        self
    }

    /// Sets `transport.tls.enable` alone (unlike [`FrpcConfig::tls`], which also sets the
    /// first byte).
    pub fn tls_enable(mut self, enable: bool) -> Self {
        self.tls_enable = Some(enable);
        self
    }

    /// Sets `transport.tls.enable`; when enabling, also sets
    /// `disableCustomTLSFirstByte = !custom_first_byte`.
    pub fn tls(mut self, enable: bool, custom_first_byte: bool) -> Self {
        self.tls_enable = Some(enable);
        if enable {
            self.disable_custom_tls_first_byte = Some(!custom_first_byte);
        }
        self
    }

    /// Sets `transport.tls.trustedCaFile`.
    pub fn trusted_ca(mut self, ca: PathBuf) -> Self {
        self.tls_trusted_ca = Some(ca);
        self
    }

    /// Sets `transport.tls.serverName`.
    pub fn server_name(mut self, name: &str) -> Self {
        self.tls_server_name = Some(name.to_owned());
        self
    }

    /// Sets `transport.poolCount`.
    pub fn pool_count(mut self, n: u32) -> Self {
        self.pool_count = Some(n);
        self
    }

    /// Adds a proxy.
    pub fn proxy(mut self, proxy: TcpProxy) -> Self {
        self.proxies.push(proxy);
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        line(&mut t, "serverAddr", &quote("127.0.0.1"));
        line(&mut t, "serverPort", &self.server_port.to_string());
        if let Some(on) = self.login_fail_exit {
            line(&mut t, "loginFailExit", &on.to_string());
        }
        if !self.includes.is_empty() {
            line(&mut t, "includes", &string_array(&self.includes));
        }
        if let Some(token) = &self.token {
            line(&mut t, "auth.token", &quote(token));
        }
        if !self.additional_scopes.is_empty() {
            line(
                &mut t,
                "auth.additionalScopes",
                &string_array(&self.additional_scopes),
            );
        }
        if let Some(protocol) = self.protocol {
            line(&mut t, "transport.protocol", &quote(protocol.as_str()));
        }
        if let Some(on) = self.tcp_mux {
            line(&mut t, "transport.tcpMux", &on.to_string());
        }
        self.quic.write(&mut t);
        if let Some(on) = self.tls_enable {
            line(&mut t, "transport.tls.enable", &on.to_string());
        }
        if let Some(on) = self.disable_custom_tls_first_byte {
            line(
                &mut t,
                "transport.tls.disableCustomTLSFirstByte",
                &on.to_string(),
            );
        }
        if let Some(ca) = &self.tls_trusted_ca {
            line(
                &mut t,
                "transport.tls.trustedCaFile",
                &quote(&ca.to_string_lossy()),
            );
        }
        if let Some(name) = &self.tls_server_name {
            line(&mut t, "transport.tls.serverName", &quote(name));
        }
        if let Some(n) = self.pool_count {
            line(&mut t, "transport.poolCount", &n.to_string());
        }
        for extra in &self.extra {
            t.push_str(extra);
            t.push('\n');
        }
        for proxy in &self.proxies {
            t.push_str(&proxy.to_toml());
        }
        t
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

/// A TOML basic string (JSON escaping is a valid subset for what we write).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frps_toml_has_keys() {
        let cfg = FrpsConfig::new(7001)
            .token("a\"b")
            .tcp_mux(false)
            .tls_force(true)
            .allow(PortSpec::Single(8000))
            .allow(PortSpec::Range(9000, 9010))
            .max_ports_per_client(2)
            .additional_scopes(&["HeartBeats"])
            .kcp_bind_port(7001)
            .quic_bind_port(7002)
            .quic(QuicOptions::new(3, 9, 100));
        let t = cfg.to_toml();
        for want in [
            "bindAddr = \"127.0.0.1\"",
            "bindPort = 7001",
            "auth.token = \"a\\\"b\"",
            "transport.tcpMux = false",
            "transport.tls.force = true",
            "allowPorts = [{ single = 8000 }, { start = 9000, end = 9010 }]",
            "maxPortsPerClient = 2",
            "auth.additionalScopes = [\"HeartBeats\"]",
            "kcpBindPort = 7001",
            "quicBindPort = 7002",
            "transport.quic.keepalivePeriod = 3",
            "transport.quic.maxIdleTimeout = 9",
            "transport.quic.maxIncomingStreams = 100",
        ] {
            assert!(t.contains(want), "missing {want} in\n{t}");
        }
        let args: Vec<String> = cfg
            .to_args()
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args
            .windows(2)
            .any(|w| w == ["--allow-ports", "8000,9000-9010"]));
        assert!(args.iter().any(|a| a == "--tls-only"));
    }

    #[test]
    fn frpc_toml_puts_top_level_before_tables() {
        let cfg = FrpcConfig::new(7001)
            .token("t")
            .tls(true, true)
            .tcp_mux(false)
            .protocol(Protocol::Wss)
            .quic(QuicOptions {
                keepalive_period: Some(2),
                ..QuicOptions::default()
            })
            .proxy(
                TcpProxy::new("p", 1, 2)
                    .encrypted_compressed()
                    .bandwidth_limit("1MB"),
            );
        let t = cfg.to_toml();
        let table = t.find("[[proxies]]").expect("table");
        for key in [
            "transport.tls.enable = true",
            "transport.tls.disableCustomTLSFirstByte = false",
            "transport.tcpMux = false",
            "transport.protocol = \"wss\"",
            "transport.quic.keepalivePeriod = 2",
        ] {
            let at = t.find(key).expect(key);
            assert!(at < table, "{key} must precede [[proxies]]");
        }
        assert!(t.contains("transport.useEncryption = true"));
        assert!(t.contains("transport.bandwidthLimit = \"1MB\""));
        assert!(
            !t.contains("maxIdleTimeout"),
            "unset QUIC options are not written"
        );
    }
}
