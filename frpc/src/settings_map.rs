//! Reads the config model: [`conf::ClientConfig`] → [`ClientSettings`], and each
//! [`conf::ProxyConfig`] → the `NewProxy` frpc sends plus what its work connections need
//! (frp's `MarshalToMsg` in `pkg/config/v1/proxy.go`).

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conf::{
    AuthMethod, BandwidthLimitMode, ClientConfig, ProxyConfig, ProxyProtocolVersion,
    TransportProtocol,
};
use control::{NewProxy, TokenAuth};
use proxies::limit::BandwidthLimiter;
use proxies::proxy_protocol::Version;
use transports::{ClientTlsOptions, ClientTransportOptions, KcpTuning, Protocol, QuicOptions};

use crate::proxy::LocalTarget;
use crate::settings::ClientSettings;

/// Resolves a completed, validated config; an error names what this frpc cannot do yet.
pub(crate) fn resolve(cfg: &ClientConfig) -> Result<ClientSettings, String> {
    let c = &cfg.common;
    let t = &c.transport;
    if c.auth.method == AuthMethod::Oidc {
        return Err("auth.method: oidc is not supported yet by this frpc".into());
    }
    let protocol = match t.protocol {
        TransportProtocol::Tcp => Protocol::Tcp,
        TransportProtocol::Kcp => Protocol::Kcp,
        TransportProtocol::Quic => Protocol::Quic,
        TransportProtocol::Websocket => Protocol::Websocket,
        TransportProtocol::Wss => Protocol::Wss,
    };
    if !t.proxy_url.is_empty() {
        return Err("transport.proxyURL is not supported yet by this frpc".into());
    }
    // Both crates spell the scopes as frp does; conf has already rejected unknown ones.
    let scopes: Vec<control::AuthScope> = c
        .auth
        .additional_scopes
        .iter()
        .filter_map(|s| s.as_str().parse().ok())
        .collect();
    let token = c.auth.token.expose().to_string();
    let tls = t.tls.enable.then(|| ClientTlsOptions {
        cert_file: non_empty_path(&t.tls.cert_file),
        key_file: non_empty_path(&t.tls.key_file),
        trusted_ca_file: non_empty_path(&t.tls.trusted_ca_file),
        server_name: (!t.tls.server_name.is_empty()).then(|| t.tls.server_name.clone()),
        disable_custom_first_byte: t.tls.disable_custom_tls_first_byte,
    });
    let transport = ClientTransportOptions {
        server_addr: c.server_addr.clone(),
        server_port: c.server_port,
        protocol,
        tls,
        tcp_mux: t.tcp_mux,
        tcp_mux_keepalive: Duration::from_secs(t.tcp_mux_keepalive_interval),
        dial_timeout: Duration::from_secs(t.dial_server_timeout.max(1)),
        dial_keepalive: positive_secs(t.dial_server_keepalive),
        quic: QuicOptions::from(&t.quic),
        kcp: KcpTuning::from(t.kcp.tuning),
    };
    Ok(ClientSettings {
        user: c.user.clone(),
        auth: TokenAuth::new(token.clone(), &scopes),
        token,
        login_fail_exit: c.login_fail_exit,
        pool_count: t.pool_count,
        heartbeat_interval: positive_secs(t.heartbeat_interval),
        heartbeat_timeout: positive_secs(t.heartbeat_timeout),
        metas: c.metadatas.clone(),
        transport,
    })
}

/// The `NewProxy` for a proxy and the local side of its work connections. Only the kinds this
/// frpc can serve are accepted; the others get an error naming the missing support.
pub(crate) fn proxy_entry(
    settings: &ClientSettings,
    p: &ProxyConfig,
) -> Result<(NewProxy, LocalTarget), String> {
    let base = p.base();
    let remote_port = match p {
        ProxyConfig::Tcp(c) => c.remote_port,
        other => {
            return Err(format!(
                "proxy type [{}] is not supported yet by this frpc; proxy skipped",
                other.proxy_type().as_str()
            ))
        }
    };
    if base.plugin.is_some() {
        return Err("client plugins are not supported yet by this frpc; proxy skipped".into());
    }
    let tr = &base.transport;
    let limit = NonZeroU64::new(tr.bandwidth_limit.bytes());
    let new_proxy = NewProxy {
        proxy_name: base.name.clone(),
        proxy_type: p.proxy_type().as_str().to_string(),
        use_encryption: tr.use_encryption,
        use_compression: tr.use_compression,
        bandwidth_limit: tr.bandwidth_limit.as_str().to_string(),
        // frp sends the mode only when it is not the default.
        bandwidth_limit_mode: match tr.bandwidth_limit_mode {
            BandwidthLimitMode::Client => String::new(),
            BandwidthLimitMode::Server => "server".into(),
        },
        group: base.load_balancer.group.clone(),
        group_key: base.load_balancer.group_key.expose().to_string(),
        metas: base.metadatas.clone(),
        annotations: base.annotations.clone(),
        remote_port: i64::from(remote_port),
        ..Default::default()
    };
    let target = LocalTarget {
        name: base.name.clone(),
        local_ip: base.local_ip.clone(),
        local_port: base.local_port,
        encryption_key: tr
            .use_encryption
            .then(|| control::crypto::derive_key(settings.token.as_bytes())),
        compression: tr.use_compression,
        limiter: match (tr.bandwidth_limit_mode, limit) {
            (BandwidthLimitMode::Client, Some(n)) => Some(Arc::new(BandwidthLimiter::new(n))),
            _ => None,
        },
        proxy_protocol: tr.proxy_protocol_version.map(|v| match v {
            ProxyProtocolVersion::V1 => Version::V1,
            ProxyProtocolVersion::V2 => Version::V2,
        }),
    };
    Ok((new_proxy, target))
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
