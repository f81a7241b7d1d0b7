//! Reads the config model: [`conf::ServerConfig`] → [`ServerSettings`], and the command-line
//! flags → [`conf::ServerConfig`] (frp's "no config file" mode).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use conf::{AuthMethod, PortsRange, ServerConfig};
use control::TokenAuth;
use proxies::ports::PortManager;
use transports::{KcpTuning, QuicOptions, ServerTlsOptions, ServerTransportOptions};

use crate::cli::ServerFlags;
use crate::settings::ServerSettings;
use crate::ServerError;

/// Resolves a completed, validated config.
pub(crate) fn resolve(cfg: &ServerConfig) -> Result<ServerSettings, ServerError> {
    if cfg.auth.method == AuthMethod::Oidc {
        return Err(ServerError::Config(
            "auth.method: oidc is not supported yet by this frps".into(),
        ));
    }
    let t = &cfg.transport;
    // Both crates spell the scopes as frp does; conf has already rejected unknown ones.
    let scopes: Vec<control::AuthScope> = cfg
        .auth
        .additional_scopes
        .iter()
        .filter_map(|s| s.as_str().parse().ok())
        .collect();
    let token = cfg.auth.token.expose().to_string();
    let listener = ServerTransportOptions {
        bind_addr: resolve_ip(&cfg.bind_addr).ok_or_else(|| {
            ServerError::Config(format!("bindAddr: cannot resolve [{}]", cfg.bind_addr))
        })?,
        bind_port: cfg.bind_port,
        tls: ServerTlsOptions {
            force: t.tls.force,
            cert_file: non_empty_path(&t.tls.cert_file),
            key_file: non_empty_path(&t.tls.key_file),
            trusted_ca_file: non_empty_path(&t.tls.trusted_ca_file),
        },
        tcp_mux: t.tcp_mux,
        tcp_mux_keepalive: Duration::from_secs(t.tcp_mux_keepalive_interval),
        tcp_keepalive: positive_secs(t.tcp_keepalive),
        kcp_bind_port: cfg.kcp_bind_port,
        quic_bind_port: cfg.quic_bind_port,
        quic: QuicOptions::from(&t.quic),
        kcp: KcpTuning::from(t.kcp.tuning),
        ..ServerTransportOptions::default()
    };
    Ok(ServerSettings {
        listener,
        proxy_bind_addr: cfg.proxy_bind_addr.clone(),
        auth: TokenAuth::new(token.clone(), &scopes),
        token,
        max_pool_count: t.max_pool_count,
        heartbeat_timeout: positive_secs(t.heartbeat_timeout),
        user_conn_timeout: Duration::from_secs(cfg.user_conn_timeout),
        max_ports_per_client: u32::try_from(cfg.max_ports_per_client).unwrap_or(u32::MAX),
        allow_ports: cfg
            .allow_ports
            .iter()
            .map(|r| match *r {
                PortsRange::Range { start, end } => (start, end),
                PortsRange::Single(p) => (p, p),
            })
            .collect(),
        detailed_errors_to_client: cfg.detailed_errors_to_client,
    })
}

/// The port allocator for `allowPorts`.
pub(crate) fn port_manager(s: &ServerSettings) -> PortManager {
    PortManager::new(s.allow_ports.iter().map(|&(a, b)| a..=b))
}

/// frps's config built from command-line flags, as frp's `RegisterServerConfigFlags` plus
/// `Complete()` and validation.
pub fn config_from_flags(f: &ServerFlags) -> Result<ServerConfig, conf::ConfError> {
    let mut cfg = ServerConfig {
        bind_addr: f.bind_addr.clone(),
        bind_port: f.bind_port,
        kcp_bind_port: f.kcp_bind_port,
        quic_bind_port: f.quic_bind_port,
        proxy_bind_addr: f.proxy_bind_addr.clone(),
        vhost_http_port: f.vhost_http_port,
        vhost_https_port: f.vhost_https_port,
        vhost_http_timeout: u64::try_from(f.vhost_http_timeout).unwrap_or(0),
        enable_prometheus: f.enable_prometheus,
        sub_domain_host: f.subdomain_host.clone(),
        max_ports_per_client: u64::try_from(f.max_ports_per_client)
            .map_err(|_| flag_error("max_ports_per_client", "must not be negative"))?,
        ..ServerConfig::default()
    };
    cfg.web_server.addr = f.dashboard_addr.clone();
    cfg.web_server.port = f.dashboard_port;
    cfg.web_server.user = f.dashboard_user.clone();
    cfg.web_server.password = f.dashboard_pwd.as_str().into();
    cfg.log.to = f.log_file.clone();
    cfg.log.level = parse_level(&f.log_level)?;
    cfg.log.max_days = u32::try_from(f.log_max_days).unwrap_or(0);
    cfg.log.disable_print_color = f.disable_log_color;
    cfg.auth.token = f.token.as_str().into();
    if !f.allow_ports.is_empty() {
        cfg.allow_ports = conf::types::parse_ports_ranges(&f.allow_ports)
            .map_err(|e| flag_error("allow_ports", &e.to_string()))?;
    }
    cfg.transport.tls.force = f.tls_only;
    if f.dashboard_tls_mode {
        cfg.web_server.tls = Some(conf::TlsConfig {
            cert_file: f.dashboard_tls_cert_file.clone(),
            key_file: f.dashboard_tls_key_file.clone(),
            ..Default::default()
        });
    }
    conf::check_server(&cfg).map_err(|problems| conf::ConfError::Invalid {
        file: PathBuf::from("command line"),
        problems,
    })?;
    Ok(cfg)
}

fn parse_level(s: &str) -> Result<conf::LogLevel, conf::ConfError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| flag_error("log_level", &format!("unknown log level [{s}]")))
}

fn flag_error(flag: &str, reason: &str) -> conf::ConfError {
    conf::ConfError::Field {
        file: PathBuf::from("command line"),
        key: format!("--{flag}"),
        reason: reason.to_string(),
    }
}

fn resolve_ip(host: &str) -> Option<IpAddr> {
    if host.is_empty() {
        return Some(IpAddr::from([0, 0, 0, 0]));
    }
    host.parse()
        .ok()
        .or_else(|| (host, 0).to_socket_addrs().ok()?.next().map(|a| a.ip()))
}

fn non_empty_path(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// Seconds from config, where ≤ 0 means "disabled".
fn positive_secs(v: i64) -> Option<Duration> {
    u64::try_from(v)
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}
