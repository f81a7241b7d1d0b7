//! Deprecated INI configuration (frp `pkg/config/legacy/`), converted to the v1 model at the
//! edge: nothing outside this module knows INI exists.
//!
//! A file is legacy INI when it parses as INI and has a `[common]` section
//! ([`is_legacy_ini`], frp `DetectLegacyINIFormat`, run on the raw, unrendered text as frp
//! does). Conversion follows frp's `Convert_*_To_v1` functions with the legacy defaults
//! (`GetDefaultServerConf` / `GetDefaultClientConf`), then the usual v1 completion applies.
//! Like go-ini's non-strict `MapTo`, a value of the wrong type (e.g. `bind_port = abc`) is
//! ignored with a warning, and unknown keys are ignored.

mod ini;
mod proxy;

use std::str::FromStr;

use crate::auth::{AuthMethod, AuthScope};
use crate::client::ClientCommonConfig;
use crate::defaults;
use crate::error::Problem;
use crate::server::{HttpPluginOp, HttpPluginOptions, ServerConfig};
use crate::transport::{TlsConfig, TransportProtocol};
use crate::types::{self, Secret};

pub(crate) use ini::Ini;
pub(crate) use proxy::client_proxies;

/// frp `DetectLegacyINIFormat`: parses as INI (no boolean keys) and has `[common]`.
pub(crate) fn is_legacy_ini(raw: &str) -> bool {
    Ini::parse(raw, false).is_ok_and(|ini| ini.section("common").is_some())
}

/// Typed reads from one section, collecting problems (bad values) and warnings (ignored
/// values) instead of stopping at the first.
pub(crate) struct Keys<'a> {
    section: &'a ini::Section,
    pub(crate) problems: &'a mut Vec<Problem>,
    pub(crate) warnings: &'a mut Vec<String>,
}

impl<'a> Keys<'a> {
    pub(crate) fn new(
        section: &'a ini::Section,
        problems: &'a mut Vec<Problem>,
        warnings: &'a mut Vec<String>,
    ) -> Self {
        Self {
            section,
            problems,
            warnings,
        }
    }

    fn key(&self, k: &str) -> String {
        format!("[{}].{k}", self.section.name)
    }

    pub(crate) fn raw(&self, k: &str) -> Option<&'a str> {
        self.section.get(k)
    }

    pub(crate) fn str(&self, k: &str) -> String {
        self.raw(k).unwrap_or_default().to_string()
    }

    pub(crate) fn secret(&self, k: &str) -> Secret {
        Secret::new(self.str(k))
    }

    pub(crate) fn list(&self, k: &str) -> Vec<String> {
        self.raw(k).map(ini::parse_list).unwrap_or_default()
    }

    pub(crate) fn bool(&mut self, k: &str, default: bool) -> bool {
        match self.raw(k) {
            None | Some("") => default,
            Some(v) => ini::parse_bool(v).unwrap_or_else(|| {
                self.warnings
                    .push(format!("{}: ignoring invalid boolean {v:?}", self.key(k)));
                default
            }),
        }
    }

    /// An integer into `T`; unparsable text is ignored (go-ini), out-of-range is a problem.
    pub(crate) fn num<T: TryFrom<i64> + Default>(&mut self, k: &str) -> T {
        let Some(v) = self.raw(k).filter(|v| !v.is_empty()) else {
            return T::default();
        };
        let Ok(n) = i64::from_str(v) else {
            self.warnings
                .push(format!("{}: ignoring invalid integer {v:?}", self.key(k)));
            return T::default();
        };
        T::try_from(n).unwrap_or_else(|_| {
            self.problems.push(Problem::new(
                self.key(k),
                format!("value {n} is out of range"),
            ));
            T::default()
        })
    }

    /// A closed-set string value; `""` gives `default`.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        k: &str,
        default: T,
        parse: fn(&str) -> Option<T>,
    ) -> T {
        match self.raw(k) {
            None | Some("") => default,
            Some(v) => parse(v).unwrap_or_else(|| {
                self.problems
                    .push(Problem::new(self.key(k), format!("invalid value {v:?}")));
                default
            }),
        }
    }

    /// `[(suffix, value)]` for keys with `prefix`.
    pub(crate) fn prefixed(&self, prefix: &str) -> std::collections::BTreeMap<String, String> {
        self.section.with_prefix(prefix).into_iter().collect()
    }
}

fn auth_method(s: &str) -> Option<AuthMethod> {
    match s {
        "token" => Some(AuthMethod::Token),
        "oidc" => Some(AuthMethod::Oidc),
        _ => None,
    }
}

fn scopes(k: &mut Keys<'_>) -> Vec<AuthScope> {
    let mut out = Vec::new();
    if k.bool("authenticate_heartbeats", false) {
        out.push(AuthScope::HeartBeats);
    }
    if k.bool("authenticate_new_work_conns", false) {
        out.push(AuthScope::NewWorkConns);
    }
    out
}

/// frp `UnmarshalServerConfFromIni` + `Convert_ServerCommonConf_To_v1` (not yet completed).
pub(crate) fn server_config(
    text: &str,
    warnings: &mut Vec<String>,
) -> Result<ServerConfig, Vec<Problem>> {
    let ini = Ini::parse(text, true).map_err(|e| vec![Problem::new("", e)])?;
    let common = ini
        .section("common")
        .ok_or_else(|| vec![Problem::new("", "not found [common] section")])?;
    let mut problems = Vec::new();
    let mut c = ServerConfig::default();
    let mut k = Keys::new(common, &mut problems, warnings);
    c.auth.method = k.choice("authentication_method", AuthMethod::Token, auth_method);
    c.auth.additional_scopes = scopes(&mut k);
    c.auth.token = k.secret("token");
    c.auth.oidc.issuer = k.str("oidc_issuer");
    c.auth.oidc.audience = k.str("oidc_audience");
    c.auth.oidc.skip_expiry_check = k.bool("oidc_skip_expiry_check", false);
    c.auth.oidc.skip_issuer_check = k.bool("oidc_skip_issuer_check", false);
    c.bind_addr = k.str("bind_addr");
    c.bind_port = k.num("bind_port");
    c.kcp_bind_port = k.num("kcp_bind_port");
    c.quic_bind_port = k.num("quic_bind_port");
    c.transport.quic.keepalive_period = k.num("quic_keepalive_period");
    c.transport.quic.max_idle_timeout = k.num("quic_max_idle_timeout");
    c.transport.quic.max_incoming_streams = k.num("quic_max_incoming_streams");
    c.proxy_bind_addr = k.str("proxy_bind_addr");
    c.vhost_http_port = k.num("vhost_http_port");
    c.vhost_https_port = k.num("vhost_https_port");
    c.tcpmux_http_connect_port = k.num("tcpmux_httpconnect_port");
    c.tcpmux_passthrough = k.bool("tcpmux_passthrough", false);
    c.vhost_http_timeout = k.num("vhost_http_timeout");
    // Legacy default dashboard_addr is 0.0.0.0, unlike v1's 127.0.0.1.
    c.web_server.addr = k
        .raw("dashboard_addr")
        .unwrap_or(defaults::LEGACY_DASHBOARD_ADDR)
        .to_string();
    c.web_server.port = k.num("dashboard_port");
    c.web_server.user = k.str("dashboard_user");
    c.web_server.password = k.secret("dashboard_pwd");
    c.web_server.assets_dir = k.str("assets_dir");
    if k.bool("dashboard_tls_mode", false) {
        c.web_server.tls = Some(TlsConfig {
            cert_file: k.str("dashboard_tls_cert_file"),
            key_file: k.str("dashboard_tls_key_file"),
            ..Default::default()
        });
        // frp only copies pprof_enable inside this branch (conversion.go); we mirror it.
        c.web_server.pprof_enable = k.bool("pprof_enable", false);
    }
    c.enable_prometheus = k.bool("enable_prometheus", false);
    c.log.to = k.raw("log_file").unwrap_or(defaults::LOG_TO).to_string();
    c.log.level = k.choice("log_level", Default::default(), log_level);
    c.log.max_days = k.num("log_max_days");
    c.log.disable_print_color = k.bool("disable_log_color", false);
    c.detailed_errors_to_client = k.bool("detailed_errors_to_client", true);
    c.sub_domain_host = k.str("subdomain_host");
    c.custom_404_page = k.str("custom_404_page");
    c.user_conn_timeout = k.num("user_conn_timeout");
    c.udp_packet_size = k.num("udp_packet_size");
    c.nathole_analysis_data_reserve_hours = k.num("nat_hole_analysis_data_reserve_hours");
    c.transport.tcp_mux = k.bool("tcp_mux", true);
    c.transport.tcp_mux_keepalive_interval = k.num("tcp_mux_keepalive_interval");
    c.transport.tcp_keepalive = k.num("tcp_keepalive");
    c.transport.max_pool_count = k.num("max_pool_count");
    c.transport.heartbeat_timeout = k.num("heartbeat_timeout");
    c.transport.tls.force = k.bool("tls_only", false);
    c.transport.tls.cert_file = k.str("tls_cert_file");
    c.transport.tls.key_file = k.str("tls_key_file");
    c.transport.tls.trusted_ca_file = k.str("tls_trusted_ca_file");
    c.max_ports_per_client = k.num("max_ports_per_client");
    if let Some(ports) = k.raw("allow_ports").filter(|s| !s.is_empty()) {
        // frp ignores a parse error here, which silently allows every port; we refuse.
        match types::parse_ports_ranges(ports) {
            Ok(p) => c.allow_ports = p,
            Err(e) => problems.push(Problem::new("[common].allow_ports", e.0)),
        }
    }
    for section in ini
        .sections
        .iter()
        .filter(|s| s.name.starts_with("plugin."))
    {
        let name = section
            .name
            .trim_start_matches("plugin.")
            .trim()
            .to_string();
        let mut k = Keys::new(section, &mut problems, warnings);
        let mut ops = Vec::new();
        for op in k.list("ops") {
            match http_plugin_op(&op) {
                Some(o) => ops.push(o),
                None => k.problems.push(Problem::new(
                    format!("[{}].ops", section.name),
                    format!("invalid http plugin op {op:?}"),
                )),
            }
        }
        c.http_plugins.push(HttpPluginOptions {
            name,
            addr: k.str("addr"),
            path: k.str("path"),
            ops,
            tls_verify: k.bool("tlsVerify", false),
        });
    }
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(problems)
    }
}

fn log_level(s: &str) -> Option<crate::log::LogLevel> {
    use crate::log::LogLevel::*;
    [Trace, Debug, Info, Warn, Error]
        .into_iter()
        .find(|l| l.as_str() == s)
}

fn http_plugin_op(s: &str) -> Option<HttpPluginOp> {
    use HttpPluginOp::*;
    [Login, NewProxy, CloseProxy, Ping, NewWorkConn, NewUserConn]
        .into_iter()
        .find(|o| format!("{o:?}") == s)
}

fn protocol(s: &str) -> Option<TransportProtocol> {
    use TransportProtocol::*;
    [Tcp, Kcp, Quic, Websocket, Wss]
        .into_iter()
        .find(|p| p.as_str() == s)
}

/// frp `UnmarshalClientConfFromIni` + `Convert_ClientCommonConf_To_v1` (not yet completed).
pub(crate) fn client_common(
    ini: &Ini,
    warnings: &mut Vec<String>,
) -> Result<ClientCommonConfig, Vec<Problem>> {
    let common = ini.section("common").ok_or_else(|| {
        vec![Problem::new(
            "",
            "invalid configuration file, not found [common] section",
        )]
    })?;
    let mut problems = Vec::new();
    let mut c = ClientCommonConfig::default();
    let mut k = Keys::new(common, &mut problems, warnings);
    c.user = k.str("user");
    c.auth.method = k.choice("authentication_method", AuthMethod::Token, auth_method);
    c.auth.token = k.secret("token");
    c.auth.additional_scopes = scopes(&mut k);
    c.auth.oidc.client_id = k.str("oidc_client_id");
    c.auth.oidc.client_secret = k.secret("oidc_client_secret");
    c.auth.oidc.audience = k.str("oidc_audience");
    c.auth.oidc.scope = k.str("oidc_scope");
    c.auth.oidc.token_endpoint_url = k.str("oidc_token_endpoint_url");
    c.auth.oidc.additional_endpoint_params = k.prefixed("oidc_additional_");
    c.server_addr = k.str("server_addr");
    c.server_port = k.num("server_port");
    c.nat_hole_stun_server = k.str("nat_hole_stun_server");
    let t = &mut c.transport;
    t.dial_server_timeout = k.num("dial_server_timeout");
    t.dial_server_keepalive = k.num("dial_server_keepalive");
    t.connect_server_local_ip = k.str("connect_server_local_ip");
    t.proxy_url = k.str("http_proxy");
    t.pool_count = k.num("pool_count");
    t.tcp_mux = k.bool("tcp_mux", true);
    t.tcp_mux_keepalive_interval = k.num("tcp_mux_keepalive_interval");
    t.protocol = k.choice("protocol", TransportProtocol::Tcp, protocol);
    t.heartbeat_interval = k.num("heartbeat_interval");
    t.heartbeat_timeout = k.num("heartbeat_timeout");
    t.quic.keepalive_period = k.num("quic_keepalive_period");
    t.quic.max_idle_timeout = k.num("quic_max_idle_timeout");
    t.quic.max_incoming_streams = k.num("quic_max_incoming_streams");
    t.tls.enable = k.bool("tls_enable", true);
    t.tls.disable_custom_tls_first_byte = k.bool("disable_custom_tls_first_byte", true);
    t.tls.cert_file = k.str("tls_cert_file");
    t.tls.key_file = k.str("tls_key_file");
    t.tls.trusted_ca_file = k.str("tls_trusted_ca_file");
    t.tls.server_name = k.str("tls_server_name");
    c.log.to = k.raw("log_file").unwrap_or(defaults::LOG_TO).to_string();
    c.log.level = k.choice("log_level", Default::default(), log_level);
    c.log.max_days = k.num("log_max_days");
    c.log.disable_print_color = k.bool("disable_log_color", false);
    c.web_server.addr = k.str("admin_addr");
    c.web_server.port = k.num("admin_port");
    c.web_server.user = k.str("admin_user");
    c.web_server.password = k.secret("admin_pwd");
    c.web_server.assets_dir = k.str("assets_dir");
    c.web_server.pprof_enable = k.bool("pprof_enable", false);
    c.dns_server = k.str("dns_server");
    c.login_fail_exit = k.bool("login_fail_exit", true);
    c.start = k.list("start");
    c.udp_packet_size = k.num("udp_packet_size");
    c.metadatas = k.prefixed("meta_");
    c.includes = k.list("includes");
    if problems.is_empty() {
        Ok(c)
    } else {
        Err(problems)
    }
}
