//! Legacy INI proxy and visitor sections (frp `pkg/config/legacy/proxy.go`, `visitor.go`,
//! `client.go` `LoadAllProxyConfsFromIni`, `conversion.go`).

use crate::error::Problem;
use crate::plugin::{
    ClientPluginOptions, Http2HttpsPluginOptions, HttpProxyPluginOptions, Https2HttpPluginOptions,
    Socks5PluginOptions, StaticFilePluginOptions, Tls2RawPluginOptions,
    UnixDomainSocketPluginOptions, VirtualNetPluginOptions,
};
use crate::proxy::{
    BandwidthLimitMode, HeaderOperations, HealthCheckType, HttpProxyConfig, HttpsProxyConfig,
    ProxyBase, ProxyConfig, ProxyProtocolVersion, ProxyType, StcpProxyConfig, TcpMultiplexer,
    TcpMuxProxyConfig, TcpProxyConfig, XtcpProxyConfig,
};
use crate::types::{self, ByteSize};
use crate::visitor::{
    StcpVisitorConfig, VisitorBase, VisitorConfig, VisitorType, XtcpProtocol, XtcpVisitorConfig,
};

use super::ini::{Ini, Section, DEFAULT_SECTION};
use super::Keys;

/// Proxies and visitors from a legacy client file (names not yet prefixed).
pub(crate) type LegacyProxies = (Vec<ProxyConfig>, Vec<VisitorConfig>);

/// frp `LoadAllProxyConfsFromIni`: expands `[range:x]` sections, applies `start`, and converts
/// every other non-`common` section by its `role`.
pub(crate) fn client_proxies(
    mut ini: Ini,
    start: &[String],
    warnings: &mut Vec<String>,
) -> Result<LegacyProxies, Vec<Problem>> {
    let mut problems = Vec::new();
    let ranges: Vec<Section> = ini
        .sections
        .iter()
        .filter(|s| s.name.starts_with("range:"))
        .cloned()
        .collect();
    for section in &ranges {
        if let Err(e) = expand_range(&mut ini, section) {
            return Err(vec![Problem::new(
                format!("[{}]", section.name),
                format!("failed to render template for proxy {}: {e}", section.name),
            )]);
        }
    }
    let mut proxies = Vec::new();
    let mut visitors = Vec::new();
    for section in &ini.sections {
        let name = section.name.as_str();
        if name == DEFAULT_SECTION || name == "common" || name.starts_with("range:") {
            continue;
        }
        if !start.is_empty() && !start.iter().any(|s| s == name) {
            continue;
        }
        let mut k = Keys::new(section, &mut problems, warnings);
        match k.raw("role").unwrap_or("") {
            "" | "server" => {
                if let Some(p) = proxy(&mut k, name) {
                    proxies.push(p);
                }
            }
            "visitor" => {
                if let Some(v) = visitor(&mut k, name) {
                    visitors.push(v);
                }
            }
            _ => k.problems.push(Problem::new(
                format!("[{name}].role"),
                format!("proxy {name} role should be 'server' or 'visitor'"),
            )),
        }
    }
    if problems.is_empty() {
        Ok((proxies, visitors))
    } else {
        Err(problems)
    }
}

/// frp `renderRangeProxyTemplates`: `[range:p]` with `local_port`/`remote_port` lists becomes
/// sections `p_0`, `p_1`, ... appended at the end.
fn expand_range(ini: &mut Ini, section: &Section) -> Result<(), String> {
    let local = section.get("local_port").unwrap_or_default();
    let remote = section.get("remote_port").unwrap_or_default();
    if local.is_empty() || remote.is_empty() {
        return Err("local_port or remote_port is empty".into());
    }
    let local = types::parse_number_range(local).map_err(|e| e.0)?;
    let remote = types::parse_number_range(remote).map_err(|e| e.0)?;
    if local.len() != remote.len() {
        return Err("local ports number should be same with remote ports number".into());
    }
    let prefix = section.name.trim_start_matches("range:").trim();
    for (i, (l, r)) in local.iter().zip(&remote).enumerate() {
        let target = ini.section_mut(&format!("{prefix}_{i}"));
        for (k, v) in &section.keys {
            target.set(k, v.clone());
        }
        target.set("local_port", l.to_string());
        target.set("remote_port", r.to_string());
    }
    Ok(())
}

fn proxy(k: &mut Keys<'_>, name: &str) -> Option<ProxyConfig> {
    let ty = match k.raw("type").unwrap_or("") {
        "" => ProxyType::Tcp,
        t => match ProxyType::parse(t) {
            Some(t) => t,
            None => {
                k.problems.push(Problem::new(
                    format!("[{name}].type"),
                    format!("failed to parse proxy {name}, err: invalid type [{t}]"),
                ));
                return None;
            }
        },
    };
    let base = proxy_base(k, name)?;
    let domains = |k: &Keys<'_>| (k.list("custom_domains"), k.str("subdomain"));
    Some(match ty {
        ProxyType::Tcp | ProxyType::Udp => {
            let c = TcpProxyConfig {
                base,
                remote_port: k.num("remote_port"),
            };
            if ty == ProxyType::Tcp {
                ProxyConfig::Tcp(c)
            } else {
                ProxyConfig::Udp(c)
            }
        }
        ProxyType::Http => {
            let (custom_domains, subdomain) = domains(k);
            ProxyConfig::Http(HttpProxyConfig {
                base,
                custom_domains,
                subdomain,
                locations: k.list("locations"),
                http_user: k.str("http_user"),
                http_password: k.secret("http_pwd"),
                host_header_rewrite: k.str("host_header_rewrite"),
                request_headers: HeaderOperations {
                    set: k.prefixed("header_"),
                },
                response_headers: HeaderOperations::default(),
                route_by_http_user: k.str("route_by_http_user"),
            })
        }
        ProxyType::Https => {
            let (custom_domains, subdomain) = domains(k);
            ProxyConfig::Https(HttpsProxyConfig {
                base,
                custom_domains,
                subdomain,
            })
        }
        ProxyType::TcpMux => {
            let (custom_domains, subdomain) = domains(k);
            let multiplexer = match k.raw("multiplexer").unwrap_or("") {
                "httpconnect" => TcpMultiplexer::HttpConnect,
                m => {
                    k.problems.push(Problem::new(
                        format!("[{name}].multiplexer"),
                        format!("not support multiplexer: {m}"),
                    ));
                    return None;
                }
            };
            ProxyConfig::TcpMux(TcpMuxProxyConfig {
                base,
                custom_domains,
                subdomain,
                http_user: k.str("http_user"),
                http_password: k.secret("http_pwd"),
                route_by_http_user: k.str("route_by_http_user"),
                multiplexer,
            })
        }
        ProxyType::Stcp | ProxyType::Sudp => {
            let c = StcpProxyConfig {
                base,
                secret_key: k.secret("sk"),
                allow_users: k.list("allow_users"),
            };
            if ty == ProxyType::Stcp {
                ProxyConfig::Stcp(c)
            } else {
                ProxyConfig::Sudp(c)
            }
        }
        ProxyType::Xtcp => ProxyConfig::Xtcp(XtcpProxyConfig {
            base,
            secret_key: k.secret("sk"),
            allow_users: k.list("allow_users"),
            nat_traversal: None,
        }),
    })
}

fn proxy_base(k: &mut Keys<'_>, name: &str) -> Option<ProxyBase> {
    let mut b = ProxyBase {
        name: name.to_string(),
        ..Default::default()
    };
    b.metadatas = k.prefixed("meta_");
    b.transport.use_encryption = k.bool("use_encryption", false);
    b.transport.use_compression = k.bool("use_compression", false);
    let bw = k.str("bandwidth_limit");
    match ByteSize::parse(&bw) {
        Ok(v) => b.transport.bandwidth_limit = v,
        Err(e) => k
            .problems
            .push(Problem::new(format!("[{name}].bandwidth_limit"), e.0)),
    }
    b.transport.bandwidth_limit_mode = k.choice(
        "bandwidth_limit_mode",
        BandwidthLimitMode::Client,
        |s| match s {
            "client" => Some(BandwidthLimitMode::Client),
            "server" => Some(BandwidthLimitMode::Server),
            _ => None,
        },
    );
    b.transport.proxy_protocol_version = k.choice("proxy_protocol_version", None, |s| match s {
        "v1" => Some(Some(ProxyProtocolVersion::V1)),
        "v2" => Some(Some(ProxyProtocolVersion::V2)),
        _ => None,
    });
    b.load_balancer.group = k.str("group");
    b.load_balancer.group_key = k.secret("group_key");
    b.health_check.check_type = k.choice("health_check_type", None, |s| match s {
        "tcp" => Some(Some(HealthCheckType::Tcp)),
        "http" => Some(Some(HealthCheckType::Http)),
        _ => None,
    });
    b.health_check.timeout_seconds = k.num("health_check_timeout_s");
    b.health_check.max_failed = k.num("health_check_max_failed");
    b.health_check.interval_seconds = k.num("health_check_interval_s");
    b.health_check.path = k.str("health_check_url");
    b.local_ip = k.str("local_ip");
    b.local_port = k.num("local_port");
    b.plugin = plugin(k, name)?;
    Some(b)
}

/// frp `Convert_ProxyConf_To_v1_Base`'s plugin switch, from `plugin_*` parameters. frp maps
/// only some plugins and leaves the rest empty; we map every v1 plugin the same way.
fn plugin(k: &mut Keys<'_>, name: &str) -> Option<Option<ClientPluginOptions>> {
    let headers = HeaderOperations {
        set: k.prefixed("plugin_header_"),
    };
    let https = |k: &Keys<'_>, h: HeaderOperations| Https2HttpPluginOptions {
        local_addr: k.str("plugin_local_addr"),
        host_header_rewrite: k.str("plugin_host_header_rewrite"),
        request_headers: h,
        enable_http2: true,
        crt_path: k.str("plugin_crt_path"),
        key_path: k.str("plugin_key_path"),
    };
    let http = |k: &Keys<'_>, h: HeaderOperations| Http2HttpsPluginOptions {
        local_addr: k.str("plugin_local_addr"),
        host_header_rewrite: k.str("plugin_host_header_rewrite"),
        request_headers: h,
    };
    Some(Some(match k.raw("plugin").unwrap_or("") {
        "" => return Some(None),
        "http2https" => ClientPluginOptions::Http2Https(http(k, headers)),
        "http2http" => ClientPluginOptions::Http2Http(http(k, headers)),
        "https2http" => ClientPluginOptions::Https2Http(https(k, headers)),
        "https2https" => ClientPluginOptions::Https2Https(https(k, headers)),
        "http_proxy" => ClientPluginOptions::HttpProxy(HttpProxyPluginOptions {
            http_user: k.str("plugin_http_user"),
            http_password: k.secret("plugin_http_passwd"),
        }),
        "socks5" => ClientPluginOptions::Socks5(Socks5PluginOptions {
            username: k.str("plugin_user"),
            password: k.secret("plugin_passwd"),
        }),
        "static_file" => ClientPluginOptions::StaticFile(StaticFilePluginOptions {
            local_path: k.str("plugin_local_path"),
            strip_prefix: k.str("plugin_strip_prefix"),
            http_user: k.str("plugin_http_user"),
            http_password: k.secret("plugin_http_passwd"),
        }),
        "unix_domain_socket" => {
            ClientPluginOptions::UnixDomainSocket(UnixDomainSocketPluginOptions {
                unix_path: k.str("plugin_unix_path"),
            })
        }
        "tls2raw" => ClientPluginOptions::Tls2Raw(Tls2RawPluginOptions {
            local_addr: k.str("plugin_local_addr"),
            crt_path: k.str("plugin_crt_path"),
            key_path: k.str("plugin_key_path"),
        }),
        "virtual_net" => ClientPluginOptions::VirtualNet(VirtualNetPluginOptions {}),
        other => {
            k.problems.push(Problem::new(
                format!("[{name}].plugin"),
                format!("unknown plugin type: {other}"),
            ));
            return None;
        }
    }))
}

/// frp `NewVisitorConfFromIni` + `Convert_VisitorConf_To_v1`.
fn visitor(k: &mut Keys<'_>, name: &str) -> Option<VisitorConfig> {
    let ty = match k.raw("type").unwrap_or("") {
        "" => {
            k.problems.push(Problem::new(
                format!("[{name}].type"),
                format!("failed to parse visitor {name}, err: type shouldn't be empty"),
            ));
            return None;
        }
        t => match VisitorType::parse(t) {
            Some(t) => t,
            None => {
                k.problems.push(Problem::new(
                    format!("[{name}].type"),
                    format!("failed to parse visitor {name}, err: type [{t}] error"),
                ));
                return None;
            }
        },
    };
    let mut base = VisitorBase {
        name: name.to_string(),
        ..Default::default()
    };
    base.transport.use_encryption = k.bool("use_encryption", false);
    base.transport.use_compression = k.bool("use_compression", false);
    base.secret_key = k.secret("sk");
    base.server_user = k.str("server_user");
    base.server_name = k.str("server_name");
    base.bind_addr = k.str("bind_addr");
    base.bind_port = k.num("bind_port");
    Some(match ty {
        VisitorType::Stcp => VisitorConfig::Stcp(StcpVisitorConfig { base }),
        VisitorType::Sudp => VisitorConfig::Sudp(StcpVisitorConfig { base }),
        VisitorType::Xtcp => VisitorConfig::Xtcp(XtcpVisitorConfig {
            base,
            protocol: k.choice("protocol", XtcpProtocol::Quic, |s| match s {
                "quic" => Some(XtcpProtocol::Quic),
                "kcp" => Some(XtcpProtocol::Kcp),
                _ => None,
            }),
            keep_tunnel_open: k.bool("keep_tunnel_open", false),
            max_retries_an_hour: k.num("max_retries_an_hour"),
            min_retry_interval: k.num("min_retry_interval"),
            fallback_to: k.str("fallback_to"),
            fallback_timeout_ms: k.num("fallback_timeout_ms"),
            nat_traversal: None,
        }),
    })
}
