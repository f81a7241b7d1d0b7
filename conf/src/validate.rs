//! frp's validation rules (`pkg/config/v1/validation/*.go`), returning every problem at once.
//!
//! Rules that frp enforces with string comparisons (protocols, log levels, auth methods and
//! scopes, plugin ops, bandwidth modes, multiplexers, xtcp protocols) are enforced by the
//! model's enums at parse time. Beyond frp we also reject: duplicate proxy or visitor names,
//! a missing `localPort` on a proxy without plugin, and unknown feature-gate names (frpc
//! rejects those at start-up, `featuregate.SetFromMap`).

use std::collections::HashSet;

use crate::client::{ClientConfig, FEATURE_VIRTUAL_NET};
use crate::error::Problem;
use crate::plugin::ClientPluginOptions;
use crate::proxy::{HealthCheckType, ProxyConfig};
use crate::server::ServerConfig;
use crate::visitor::VisitorConfig;
use crate::web::WebServerConfig;

/// Feature gates frp 0.65.0 knows (`pkg/featuregate`).
pub const KNOWN_FEATURE_GATES: &[&str] = &[FEATURE_VIRTUAL_NET];

/// Largest total size of a proxy's annotations (frp `TotalAnnotationSizeLimitB`).
const ANNOTATIONS_SIZE_LIMIT: usize = 256 << 10;

/// Validates a completed frps configuration (frp `ValidateServerConfig`).
pub fn check_server(c: &ServerConfig) -> Result<(), Vec<Problem>> {
    let mut p = Vec::new();
    if !c.auth.token.is_empty() && c.auth.token_source.is_some() {
        p.push(Problem::new(
            "auth",
            "cannot specify both auth.token and auth.tokenSource",
        ));
    }
    if let Some(why) = c.auth.token_source.as_ref().and_then(|s| s.check()) {
        p.push(Problem::new(
            "auth.tokenSource",
            format!("invalid auth.tokenSource: {why}"),
        ));
    }
    web_server(&c.web_server, &mut p);
    done(p)
}

/// Validates a completed frpc configuration (frp `ValidateAllClientConfig`); on success,
/// returns frp's warnings (TLS files given while TLS is off, `start` names not found).
pub fn check_client(c: &ClientConfig) -> Result<Vec<String>, Vec<Problem>> {
    let mut p = Vec::new();
    let mut warnings = Vec::new();
    let common = &c.common;
    for gate in common.feature_gates.keys() {
        if !KNOWN_FEATURE_GATES.contains(&gate.as_str()) {
            p.push(Problem::new(
                format!("featureGates.{gate}"),
                format!("unrecognized feature gate: {gate}"),
            ));
        }
    }
    if !common.virtual_net.address.is_empty() && !common.feature_enabled(FEATURE_VIRTUAL_NET) {
        p.push(Problem::new(
            "virtualNet.address",
            "VirtualNet feature is not enabled; enable it by setting the appropriate feature gate flag",
        ));
    }
    if !common.auth.token.is_empty() && common.auth.token_source.is_some() {
        p.push(Problem::new(
            "auth",
            "cannot specify both auth.token and auth.tokenSource",
        ));
    }
    if let Some(why) = common.auth.token_source.as_ref().and_then(|s| s.check()) {
        p.push(Problem::new(
            "auth.tokenSource",
            format!("invalid auth.tokenSource: {why}"),
        ));
    }
    web_server(&common.web_server, &mut p);
    let t = &common.transport;
    if t.heartbeat_timeout > 0
        && t.heartbeat_interval > 0
        && t.heartbeat_timeout < t.heartbeat_interval
    {
        p.push(Problem::new(
            "transport.heartbeatTimeout",
            "heartbeat timeout should not less than heartbeat interval",
        ));
    }
    if !t.tls.enable {
        for (k, v) in [
            ("certFile", &t.tls.cert_file),
            ("keyFile", &t.tls.key_file),
            ("trustedCaFile", &t.tls.trusted_ca_file),
        ] {
            if !v.is_empty() {
                warnings.push(format!(
                    "transport.tls.{k} is invalid when transport.tls.enable is false"
                ));
            }
        }
    }
    let mut names = HashSet::new();
    for proxy in &c.proxies {
        let key = format!("proxies[{:?}]", proxy.name());
        if !names.insert(proxy.name()) {
            p.push(Problem::new(&key, "duplicate proxy name"));
        }
        for why in check_proxy(proxy) {
            p.push(Problem::new(format!("{key}{}", why.key), why.reason));
        }
    }
    let mut names = HashSet::new();
    for v in &c.visitors {
        let key = format!("visitors[{:?}]", v.name());
        if !names.insert(v.name()) {
            p.push(Problem::new(&key, "duplicate visitor name"));
        }
        for why in check_visitor(v) {
            p.push(Problem::new(format!("{key}{}", why.key), why.reason));
        }
    }
    done(p).map(|()| warnings)
}

fn done(p: Vec<Problem>) -> Result<(), Vec<Problem>> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(p)
    }
}

fn web_server(w: &WebServerConfig, p: &mut Vec<Problem>) {
    if let Some(tls) = &w.tls {
        if tls.cert_file.is_empty() {
            p.push(Problem::new(
                "webServer.tls.certFile",
                "must be specified when tls is enabled",
            ));
        }
        if tls.key_file.is_empty() {
            p.push(Problem::new(
                "webServer.tls.keyFile",
                "must be specified when tls is enabled",
            ));
        }
    }
}

/// Client-side proxy rules (frp `ValidateProxyConfigurerForClient`); keys are relative
/// (`.localPort`).
fn check_proxy(c: &ProxyConfig) -> Vec<Problem> {
    let mut p = Vec::new();
    let b = c.base();
    if b.name.is_empty() || b.name.ends_with('.') {
        p.push(Problem::new(".name", "name should not be empty"));
    }
    if let Err(e) = annotations(&b.annotations) {
        p.push(Problem::new(".annotations", e));
    }
    match &b.plugin {
        None if b.local_port == 0 => p.push(Problem::new(
            ".localPort",
            "localPort is required unless a plugin is set",
        )),
        None => {}
        Some(plugin) => {
            if let Some(field) = plugin_missing_field(plugin) {
                p.push(Problem::new(
                    format!(".plugin.{field}"),
                    format!("plugin {}: {field} is required", plugin.plugin_type()),
                ));
            }
        }
    }
    if b.health_check.check_type == Some(HealthCheckType::Http) && b.health_check.path.is_empty() {
        p.push(Problem::new(
            ".healthCheck.path",
            "health check path should not be empty",
        ));
    }
    if let Some((domains, sub)) = c.domains() {
        if domains.is_empty() && sub.is_empty() {
            p.push(Problem::new(
                ".customDomains",
                "subdomain and custom domains should not be both empty",
            ));
        }
    }
    p
}

fn plugin_missing_field(plugin: &ClientPluginOptions) -> Option<&'static str> {
    let empty = |s: &str| s.is_empty();
    match plugin {
        ClientPluginOptions::Http2Https(o) | ClientPluginOptions::Http2Http(o)
            if empty(&o.local_addr) =>
        {
            Some("localAddr")
        }
        ClientPluginOptions::Https2Http(o) | ClientPluginOptions::Https2Https(o)
            if empty(&o.local_addr) =>
        {
            Some("localAddr")
        }
        ClientPluginOptions::Tls2Raw(o) if empty(&o.local_addr) => Some("localAddr"),
        ClientPluginOptions::StaticFile(o) if empty(&o.local_path) => Some("localPath"),
        ClientPluginOptions::UnixDomainSocket(o) if empty(&o.unix_path) => Some("unixPath"),
        _ => None,
    }
}

/// frp `ValidateVisitorConfigurer`, after completion (so an empty `serverName` shows up as a
/// bare `user.` prefix).
fn check_visitor(v: &VisitorConfig) -> Vec<Problem> {
    let mut p = Vec::new();
    let b = v.base();
    if b.name.is_empty() || b.name.ends_with('.') {
        p.push(Problem::new(".name", "name is required"));
    }
    if b.server_name.is_empty() || b.server_name.ends_with('.') {
        p.push(Problem::new(".serverName", "server name is required"));
    }
    if b.bind_port == 0 {
        p.push(Problem::new(".bindPort", "bind port is required"));
    }
    p
}

/// frp `ValidateAnnotations`: each key (lower-cased) is a Kubernetes qualified name, and the
/// total size is at most 256 KiB.
fn annotations(a: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    let mut errs = Vec::new();
    for k in a.keys() {
        if let Err(e) = qualified_name(&k.to_lowercase()) {
            errs.push(format!("annotation key {k} is invalid: {e}"));
        }
    }
    let size: usize = a.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        errs.push(format!(
            "annotations size {size} is larger than limit {ANNOTATIONS_SIZE_LIMIT}"
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// Kubernetes `IsQualifiedName`: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 chars of
/// alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn qualified_name(s: &str) -> Result<(), &'static str> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label_ok) {
            return Err("prefix part must be a lowercase RFC 1123 subdomain");
        }
    }
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 63 {
        return Err("name part must be 1 to 63 characters");
    }
    if !alnum(b[0])
        || !alnum(b[b.len() - 1])
        || !b
            .iter()
            .all(|&c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
    }
    Ok(())
}

/// frps's check of a proxy a client asks for (frp `ValidateProxyConfigurerForServer`). The
/// messages are frp's, since they travel back in `NewProxyResp.error`.
pub fn validate_proxy_for_server(c: &ProxyConfig, s: &ServerConfig) -> Result<(), String> {
    annotations(&c.base().annotations)?;
    match c {
        ProxyConfig::Http(_) if s.vhost_http_port == 0 => {
            return Err("type [http] not supported when vhost http port is not set".into())
        }
        ProxyConfig::Https(_) if s.vhost_https_port == 0 => {
            return Err("type [https] not supported when vhost https port is not set".into())
        }
        ProxyConfig::TcpMux(_) if s.tcpmux_http_connect_port == 0 => {
            return Err("tcpmux with multiplexer httpconnect not supported because this feature is not enabled in server".into())
        }
        _ => {}
    }
    if let Some((domains, sub)) = c.domains() {
        let host = &s.sub_domain_host;
        for d in domains {
            if !host.is_empty()
                && host.split('.').count() < d.split('.').count()
                && d.contains(host.as_str())
            {
                return Err(format!(
                    "custom domain [{d}] should not belong to subdomain host [{host}]"
                ));
            }
        }
        if !sub.is_empty() {
            if host.is_empty() {
                return Err(
                    "subdomain is not supported because this feature is not enabled in server"
                        .into(),
                );
            }
            if sub.contains('.') || sub.contains('*') {
                return Err("'.' and '*' are not supported in subdomain".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert!(qualified_name("key1").is_ok());
        assert!(qualified_name("prefix/key2").is_ok());
        assert!(qualified_name("example.com/a_b.c-d").is_ok());
        assert!(qualified_name("-bad").is_err());
        assert!(qualified_name("/x").is_err());
        assert!(qualified_name("a b").is_err());
        assert!(qualified_name(&"x".repeat(64)).is_err());
    }
}
