//! frpc proxies: [`ProxyConfig`], an enum over frp's eight proxy types sharing [`ProxyBase`]
//! (frp `pkg/config/v1/proxy.go`).
//!
//! One `[[proxies]]` object holds the shared fields and the per-type fields side by side. We
//! decode it in two parts at the JSON-value level: keys that name a [`ProxyBase`] field go to
//! the base, the rest to the per-type struct, whose leftovers are the unknown keys. This avoids
//! `serde(flatten)`, which defeats unknown-key detection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::decode::{self, decode, empty_none, struct_fields, DecodeError, Unknown};
use crate::defaults;
use crate::plugin::{self, ClientPluginOptions};
use crate::types::{ByteSize, Secret};

/// frp's proxy types (`v1.ProxyType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProxyType {
    /// `tcp`.
    #[serde(rename = "tcp")]
    Tcp,
    /// `udp`.
    #[serde(rename = "udp")]
    Udp,
    /// `http`.
    #[serde(rename = "http")]
    Http,
    /// `https`.
    #[serde(rename = "https")]
    Https,
    /// `tcpmux`.
    #[serde(rename = "tcpmux")]
    TcpMux,
    /// `stcp`.
    #[serde(rename = "stcp")]
    Stcp,
    /// `sudp`.
    #[serde(rename = "sudp")]
    Sudp,
    /// `xtcp`.
    #[serde(rename = "xtcp")]
    Xtcp,
}

impl ProxyType {
    /// All types, in frp's documentation order.
    pub const ALL: [ProxyType; 8] = [
        ProxyType::Tcp,
        ProxyType::Udp,
        ProxyType::Http,
        ProxyType::Https,
        ProxyType::TcpMux,
        ProxyType::Stcp,
        ProxyType::Sudp,
        ProxyType::Xtcp,
    ];

    /// frp's spelling, as sent in `NewProxy.proxy_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyType::Tcp => "tcp",
            ProxyType::Udp => "udp",
            ProxyType::Http => "http",
            ProxyType::Https => "https",
            ProxyType::TcpMux => "tcpmux",
            ProxyType::Stcp => "stcp",
            ProxyType::Sudp => "sudp",
            ProxyType::Xtcp => "xtcp",
        }
    }

    /// Parses frp's spelling (exact, as frp's type map lookup).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for ProxyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `transport.bandwidthLimitMode`: which side enforces `bandwidthLimit`; `""` = client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BandwidthLimitMode {
    /// frpc limits (default).
    #[default]
    #[serde(rename = "client")]
    Client,
    /// frps limits.
    #[serde(rename = "server")]
    Server,
}

/// `transport.proxyProtocolVersion`: PROXY protocol header sent to the local service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyProtocolVersion {
    /// Text header.
    #[serde(rename = "v1")]
    V1,
    /// Binary header.
    #[serde(rename = "v2")]
    V2,
}

/// A proxy's `transport` table (frp `ProxyTransport`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyTransport {
    /// `useEncryption`: AES-128-CFB on work connections.
    #[serde(rename = "useEncryption", default)]
    pub use_encryption: bool,
    /// `useCompression`: snappy on work connections.
    #[serde(rename = "useCompression", default)]
    pub use_compression: bool,
    /// `bandwidthLimit` such as `"1MB"`; empty = unlimited.
    #[serde(rename = "bandwidthLimit", default)]
    pub bandwidth_limit: ByteSize,
    /// `bandwidthLimitMode`. Default `client`.
    #[serde(
        rename = "bandwidthLimitMode",
        default,
        deserialize_with = "decode::empty_default::deserialize"
    )]
    pub bandwidth_limit_mode: BandwidthLimitMode,
    /// `proxyProtocolVersion`; `None` = no PROXY header.
    #[serde(
        rename = "proxyProtocolVersion",
        default,
        deserialize_with = "empty_none::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy_protocol_version: Option<ProxyProtocolVersion>,
}

/// `loadBalancer` (frp `LoadBalancerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerConfig {
    /// `group`: proxies in one group share a port / domain.
    #[serde(rename = "group", default)]
    pub group: String,
    /// `groupKey`: must match across the group.
    #[serde(rename = "groupKey", default)]
    pub group_key: Secret,
}

/// `healthCheck.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthCheckType {
    /// Connect to the local service.
    #[serde(rename = "tcp")]
    Tcp,
    /// `GET path` on the local service; 2xx is healthy.
    #[serde(rename = "http")]
    Http,
}

/// `healthCheck` (frp `HealthCheckConfig`; defaults from frp `client/health/health.go`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckConfig {
    /// `type`; `None` = no health checking.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "empty_none::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub check_type: Option<HealthCheckType>,
    /// `timeoutSeconds`. Default 3.
    #[serde(rename = "timeoutSeconds", default)]
    pub timeout_seconds: u32,
    /// `maxFailed`: failures before the proxy is withdrawn. Default 1.
    #[serde(rename = "maxFailed", default)]
    pub max_failed: u32,
    /// `intervalSeconds`. Default 10.
    #[serde(rename = "intervalSeconds", default)]
    pub interval_seconds: u32,
    /// `path` for `http` checks (required then).
    #[serde(rename = "path", default)]
    pub path: String,
    /// `httpHeaders` sent with `http` checks.
    #[serde(rename = "httpHeaders", default)]
    pub http_headers: Vec<HttpHeader>,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        let mut c = Self {
            check_type: None,
            timeout_seconds: 0,
            max_failed: 0,
            interval_seconds: 0,
            path: String::new(),
            http_headers: Vec::new(),
        };
        c.complete();
        c
    }
}

impl HealthCheckConfig {
    /// Applies frp's health-check defaults (`client/health/health.go` `NewMonitor`).
    pub fn complete(&mut self) {
        defaults::or_num(
            &mut self.timeout_seconds,
            defaults::HEALTH_CHECK_TIMEOUT_SECONDS,
        );
        defaults::or_num(&mut self.max_failed, defaults::HEALTH_CHECK_MAX_FAILED);
        defaults::or_num(
            &mut self.interval_seconds,
            defaults::HEALTH_CHECK_INTERVAL_SECONDS,
        );
    }
}

/// One header (frp `HTTPHeader`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeader {
    /// `name`.
    #[serde(rename = "name", default)]
    pub name: String,
    /// `value`.
    #[serde(rename = "value", default)]
    pub value: String,
}

/// `requestHeaders` / `responseHeaders` (frp `HeaderOperations`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderOperations {
    /// `set`: headers to set (replace).
    #[serde(rename = "set", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
}

/// `natTraversal` on xtcp proxies and visitors (frp `NatTraversalConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatTraversalConfig {
    /// `disableAssistedAddrs`: use only STUN-discovered addresses.
    #[serde(rename = "disableAssistedAddrs", default)]
    pub disable_assisted_addrs: bool,
}

/// Fields every proxy type has (frp `ProxyBaseConfig` + `ProxyBackend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyBase {
    /// `name`; after loading, prefixed with `user.` when `user` is set.
    #[serde(rename = "name", default)]
    pub name: String,
    /// `annotations`: shown on the frps dashboard.
    #[serde(
        rename = "annotations",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// `transport`.
    #[serde(rename = "transport", default)]
    pub transport: ProxyTransport,
    /// `metadatas`: passed to server plugins.
    #[serde(
        rename = "metadatas",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadatas: BTreeMap<String, String>,
    /// `loadBalancer`.
    #[serde(rename = "loadBalancer", default)]
    pub load_balancer: LoadBalancerConfig,
    /// `healthCheck`.
    #[serde(rename = "healthCheck", default)]
    pub health_check: HealthCheckConfig,
    /// `localIP`. Default `127.0.0.1`.
    #[serde(rename = "localIP", default)]
    pub local_ip: String,
    /// `localPort` (required unless a plugin is set).
    #[serde(rename = "localPort", default)]
    pub local_port: u16,
    /// `plugin`: handle connections in frpc instead of dialing `localIP:localPort`.
    #[serde(skip)]
    pub plugin: Option<ClientPluginOptions>,
}

impl Default for ProxyBase {
    fn default() -> Self {
        Self {
            name: String::new(),
            annotations: BTreeMap::new(),
            transport: ProxyTransport::default(),
            metadatas: BTreeMap::new(),
            load_balancer: LoadBalancerConfig::default(),
            health_check: HealthCheckConfig::default(),
            local_ip: defaults::LOCAL_IP.to_string(),
            local_port: 0,
            plugin: None,
        }
    }
}

impl ProxyBase {
    /// frp `ProxyBaseConfig.Complete(namePrefix)` plus health-check defaults. Call once.
    pub fn complete(&mut self, user: &str) {
        if !user.is_empty() {
            self.name = format!("{user}.{}", self.name);
        }
        defaults::or_str(&mut self.local_ip, defaults::LOCAL_IP);
        self.health_check.complete();
    }
}

/// `tcp` proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `remotePort` on frps; 0 = frps picks one.
    #[serde(rename = "remotePort", default)]
    pub remote_port: u16,
}

/// `udp` proxy.
pub type UdpProxyConfig = TcpProxyConfig;

/// `http` proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `customDomains`.
    #[serde(rename = "customDomains", default)]
    pub custom_domains: Vec<String>,
    /// `subdomain` (under frps `subDomainHost`).
    #[serde(rename = "subdomain", default)]
    pub subdomain: String,
    /// `locations`: URL path prefixes routed here.
    #[serde(rename = "locations", default)]
    pub locations: Vec<String>,
    /// `httpUser`: basic-auth user required by frps.
    #[serde(rename = "httpUser", default)]
    pub http_user: String,
    /// `httpPassword`.
    #[serde(rename = "httpPassword", default)]
    pub http_password: Secret,
    /// `hostHeaderRewrite`.
    #[serde(rename = "hostHeaderRewrite", default)]
    pub host_header_rewrite: String,
    /// `requestHeaders`.
    #[serde(rename = "requestHeaders", default)]
    pub request_headers: HeaderOperations,
    /// `responseHeaders`.
    #[serde(rename = "responseHeaders", default)]
    pub response_headers: HeaderOperations,
    /// `routeByHTTPUser`.
    #[serde(rename = "routeByHTTPUser", default)]
    pub route_by_http_user: String,
}

/// `https` proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpsProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `customDomains`.
    #[serde(rename = "customDomains", default)]
    pub custom_domains: Vec<String>,
    /// `subdomain`.
    #[serde(rename = "subdomain", default)]
    pub subdomain: String,
}

/// tcpmux multiplexers (`v1.TCPMultiplexerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpMultiplexer {
    /// HTTP CONNECT on frps `tcpmuxHTTPConnectPort`.
    #[serde(rename = "httpconnect")]
    HttpConnect,
}

/// `tcpmux` proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpMuxProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `customDomains`.
    #[serde(rename = "customDomains", default)]
    pub custom_domains: Vec<String>,
    /// `subdomain`.
    #[serde(rename = "subdomain", default)]
    pub subdomain: String,
    /// `httpUser`.
    #[serde(rename = "httpUser", default)]
    pub http_user: String,
    /// `httpPassword`.
    #[serde(rename = "httpPassword", default)]
    pub http_password: Secret,
    /// `routeByHTTPUser`.
    #[serde(rename = "routeByHTTPUser", default)]
    pub route_by_http_user: String,
    /// `multiplexer` (required; only `httpconnect`).
    #[serde(rename = "multiplexer")]
    pub multiplexer: TcpMultiplexer,
}

/// `stcp` proxy (also the shape of `sudp`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StcpProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `secretKey` visitors must present.
    #[serde(rename = "secretKey", default)]
    pub secret_key: Secret,
    /// `allowUsers`: visitor users allowed; empty = same user, `*` = all.
    #[serde(rename = "allowUsers", default)]
    pub allow_users: Vec<String>,
}

/// `sudp` proxy.
pub type SudpProxyConfig = StcpProxyConfig;

/// `xtcp` proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XtcpProxyConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: ProxyBase,
    /// `secretKey`.
    #[serde(rename = "secretKey", default)]
    pub secret_key: Secret,
    /// `allowUsers`.
    #[serde(rename = "allowUsers", default)]
    pub allow_users: Vec<String>,
    /// `natTraversal`.
    #[serde(
        rename = "natTraversal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_traversal: Option<NatTraversalConfig>,
}

/// One `[[proxies]]` entry, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyConfig {
    /// `tcp`.
    Tcp(TcpProxyConfig),
    /// `udp`.
    Udp(UdpProxyConfig),
    /// `http`.
    Http(HttpProxyConfig),
    /// `https`.
    Https(HttpsProxyConfig),
    /// `tcpmux`.
    TcpMux(TcpMuxProxyConfig),
    /// `stcp`.
    Stcp(StcpProxyConfig),
    /// `sudp`.
    Sudp(SudpProxyConfig),
    /// `xtcp`.
    Xtcp(XtcpProxyConfig),
}

macro_rules! each_variant {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            ProxyConfig::Tcp($c) => $e,
            ProxyConfig::Udp($c) => $e,
            ProxyConfig::Http($c) => $e,
            ProxyConfig::Https($c) => $e,
            ProxyConfig::TcpMux($c) => $e,
            ProxyConfig::Stcp($c) => $e,
            ProxyConfig::Sudp($c) => $e,
            ProxyConfig::Xtcp($c) => $e,
        }
    };
}

impl ProxyConfig {
    /// The shared fields.
    pub fn base(&self) -> &ProxyBase {
        each_variant!(self, c => &c.base)
    }

    /// The shared fields, mutably.
    pub fn base_mut(&mut self) -> &mut ProxyBase {
        each_variant!(self, c => &mut c.base)
    }

    /// The proxy name (prefixed with `user.` once loaded).
    pub fn name(&self) -> &str {
        &self.base().name
    }

    /// The proxy type.
    pub fn proxy_type(&self) -> ProxyType {
        match self {
            ProxyConfig::Tcp(_) => ProxyType::Tcp,
            ProxyConfig::Udp(_) => ProxyType::Udp,
            ProxyConfig::Http(_) => ProxyType::Http,
            ProxyConfig::Https(_) => ProxyType::Https,
            ProxyConfig::TcpMux(_) => ProxyType::TcpMux,
            ProxyConfig::Stcp(_) => ProxyType::Stcp,
            ProxyConfig::Sudp(_) => ProxyType::Sudp,
            ProxyConfig::Xtcp(_) => ProxyType::Xtcp,
        }
    }

    /// `remotePort` for tcp/udp proxies.
    pub fn remote_port(&self) -> Option<u16> {
        match self {
            ProxyConfig::Tcp(c) | ProxyConfig::Udp(c) => Some(c.remote_port),
            _ => None,
        }
    }

    /// `(customDomains, subdomain)` for http/https/tcpmux proxies.
    pub fn domains(&self) -> Option<(&[String], &str)> {
        match self {
            ProxyConfig::Http(c) => Some((&c.custom_domains, &c.subdomain)),
            ProxyConfig::Https(c) => Some((&c.custom_domains, &c.subdomain)),
            ProxyConfig::TcpMux(c) => Some((&c.custom_domains, &c.subdomain)),
            _ => None,
        }
    }

    /// `secretKey` for stcp/sudp/xtcp proxies.
    pub fn secret_key(&self) -> Option<&Secret> {
        match self {
            ProxyConfig::Stcp(c) | ProxyConfig::Sudp(c) => Some(&c.secret_key),
            ProxyConfig::Xtcp(c) => Some(&c.secret_key),
            _ => None,
        }
    }

    /// Fills defaults (frp `ProxyConfigurer.Complete(user)`): name prefix, `localIP`,
    /// health-check defaults. Call once per loaded proxy.
    pub fn complete(&mut self, user: &str) {
        self.base_mut().complete(user);
    }
}

impl Serialize for ProxyConfig {
    /// frp's JSON form: `type`, the shared fields and the per-type fields in one object.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), Value::from(self.proxy_type().as_str()));
        let base = self.base();
        merge(
            &mut obj,
            serde_json::to_value(base).map_err(S::Error::custom)?,
        );
        if let Some(p) = &base.plugin {
            obj.insert(
                "plugin".into(),
                serde_json::to_value(p).map_err(S::Error::custom)?,
            );
        }
        let own = each_variant!(self, c => serde_json::to_value(c));
        merge(&mut obj, own.map_err(S::Error::custom)?);
        Value::Object(obj).serialize(s)
    }
}

fn merge(into: &mut serde_json::Map<String, Value>, v: Value) {
    if let Value::Object(m) = v {
        into.extend(m);
    }
}

/// Splits `obj` into the members naming one of `fields` (case-folded) and the rest.
pub(crate) fn split_fields(
    obj: serde_json::Map<String, Value>,
    fields: &[&'static str],
) -> (
    serde_json::Map<String, Value>,
    serde_json::Map<String, Value>,
) {
    obj.into_iter()
        .partition(|(k, _)| decode::match_field(fields, k).is_some())
}

/// Removes and returns the member named `name` (exact, else case-folded), dropping `null`.
pub(crate) fn take_member(obj: &mut serde_json::Map<String, Value>, name: &str) -> Option<Value> {
    let key = obj
        .keys()
        .find(|k| *k == name)
        .or_else(|| obj.keys().find(|k| decode::fold_eq(k, name)))
        .cloned()?;
    obj.remove(&key).filter(|v| !v.is_null())
}

/// Decodes one `[[proxies]]` entry (frp `TypedProxyConfig.UnmarshalJSON`).
pub(crate) fn decode_proxy(
    value: Value,
    path: &str,
    unknown: &Unknown,
) -> Result<ProxyConfig, DecodeError> {
    let (ty, mut obj) = plugin::take_type(value, path)?;
    let Some(ty) = ProxyType::parse(&ty) else {
        return Err(DecodeError {
            path: Some(decode::join(path, "type")),
            msg: format!("unknown proxy type: {ty:?}"),
        });
    };
    let plugin = match take_member(&mut obj, "plugin") {
        Some(v) => Some(plugin::decode_client_plugin(
            v,
            &decode::join(path, "plugin"),
            unknown,
        )?),
        None => None,
    };
    let (base_obj, rest) = split_fields(obj, struct_fields::<ProxyBase>());
    let mut base: ProxyBase = decode(Value::Object(base_obj), path, unknown)?;
    base.plugin = plugin;
    let rest = Value::Object(rest);
    macro_rules! typed {
        ($variant:ident, $t:ty) => {{
            let mut c: $t = decode(rest, path, unknown)?;
            c.base = base;
            ProxyConfig::$variant(c)
        }};
    }
    Ok(match ty {
        ProxyType::Tcp => typed!(Tcp, TcpProxyConfig),
        ProxyType::Udp => typed!(Udp, UdpProxyConfig),
        ProxyType::Http => typed!(Http, HttpProxyConfig),
        ProxyType::Https => typed!(Https, HttpsProxyConfig),
        ProxyType::TcpMux => typed!(TcpMux, TcpMuxProxyConfig),
        ProxyType::Stcp => typed!(Stcp, StcpProxyConfig),
        ProxyType::Sudp => typed!(Sudp, SudpProxyConfig),
        ProxyType::Xtcp => typed!(Xtcp, XtcpProxyConfig),
    })
}
