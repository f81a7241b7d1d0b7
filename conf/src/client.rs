//! The frpc configuration: [`ClientCommonConfig`] and [`ClientConfig`] (common part plus the
//! proxies and visitors), frp `pkg/config/v1/client.go`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AuthClientConfig;
use crate::decode::{decode, DecodeError, Unknown};
use crate::defaults;
use crate::log::LogConfig;
use crate::proxy::{decode_proxy, take_member, ProxyConfig};
use crate::transport::ClientTransportConfig;
use crate::visitor::{decode_visitor, VisitorConfig};
use crate::web::WebServerConfig;

/// Feature-gate name that enables `virtualNet` and the `virtual_net` plugins.
pub const FEATURE_VIRTUAL_NET: &str = "VirtualNet";

/// Everything in frpc's file except `proxies` and `visitors` (frp `ClientCommonConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCommonConfig {
    /// `version` (frp `APIMetadata`; accepted and ignored).
    #[serde(rename = "version", default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `auth`.
    #[serde(rename = "auth", default)]
    pub auth: AuthClientConfig,
    /// `user`: prefix for proxy and visitor names (`user.name`).
    #[serde(rename = "user", default)]
    pub user: String,
    /// `serverAddr`. Default `0.0.0.0`.
    #[serde(rename = "serverAddr", default)]
    pub server_addr: String,
    /// `serverPort`. Default 7000.
    #[serde(rename = "serverPort", default)]
    pub server_port: u16,
    /// `natHoleStunServer`. Default `stun.easyvoip.com:3478`.
    #[serde(rename = "natHoleStunServer", default)]
    pub nat_hole_stun_server: String,
    /// `dnsServer`: resolver to use instead of the system's.
    #[serde(rename = "dnsServer", default)]
    pub dns_server: String,
    /// `loginFailExit`: exit when the first login fails. Default true.
    #[serde(rename = "loginFailExit", default = "defaults::yes")]
    pub login_fail_exit: bool,
    /// `start`: names (without the user prefix) of the proxies/visitors to run; empty = all.
    /// Already applied by the loader.
    #[serde(rename = "start", default)]
    pub start: Vec<String>,
    /// `log`.
    #[serde(rename = "log", default)]
    pub log: LogConfig,
    /// `webServer`: the admin API.
    #[serde(rename = "webServer", default)]
    pub web_server: WebServerConfig,
    /// `transport`.
    #[serde(rename = "transport", default)]
    pub transport: ClientTransportConfig,
    /// `virtualNet`.
    #[serde(rename = "virtualNet", default)]
    pub virtual_net: VirtualNetConfig,
    /// `featureGates`: e.g. `{ VirtualNet = true }`.
    #[serde(
        rename = "featureGates",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub feature_gates: BTreeMap<String, bool>,
    /// `udpPacketSize`. Default 1500.
    #[serde(rename = "udpPacketSize", default)]
    pub udp_packet_size: u32,
    /// `metadatas`: sent in `Login.metas`.
    #[serde(
        rename = "metadatas",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadatas: BTreeMap<String, String>,
    /// `includes`: globs of extra files whose proxies/visitors are merged in (already applied
    /// by the loader).
    #[serde(rename = "includes", default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
}

impl Default for ClientCommonConfig {
    fn default() -> Self {
        let mut c = Self {
            version: String::new(),
            auth: AuthClientConfig::default(),
            user: String::new(),
            server_addr: String::new(),
            server_port: 0,
            nat_hole_stun_server: String::new(),
            dns_server: String::new(),
            login_fail_exit: true,
            start: Vec::new(),
            log: LogConfig::default(),
            web_server: WebServerConfig::default(),
            transport: ClientTransportConfig::default(),
            virtual_net: VirtualNetConfig::default(),
            feature_gates: BTreeMap::new(),
            udp_packet_size: 0,
            metadatas: BTreeMap::new(),
            includes: Vec::new(),
        };
        c.complete();
        c
    }
}

impl ClientCommonConfig {
    /// Fills defaults like frp's `ClientCommonConfig.Complete` (idempotent). The
    /// `http_proxy` fallback and `auth.tokenSource` are applied by the loader.
    pub fn complete(&mut self) {
        defaults::or_str(&mut self.server_addr, defaults::SERVER_ADDR);
        defaults::or_num(&mut self.server_port, defaults::BIND_PORT);
        defaults::or_str(
            &mut self.nat_hole_stun_server,
            defaults::NAT_HOLE_STUN_SERVER,
        );
        self.log.complete();
        self.transport.complete();
        self.web_server.complete();
        defaults::or_num(&mut self.udp_packet_size, defaults::UDP_PACKET_SIZE);
    }

    /// True if feature gate `name` is switched on in `featureGates`.
    pub fn feature_enabled(&self, name: &str) -> bool {
        self.feature_gates.get(name).copied().unwrap_or(false)
    }
}

/// `virtualNet` (experimental; needs feature gate `VirtualNet`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualNetConfig {
    /// `address`: this client's virtual address, CIDR form (`100.86.1.1/24`).
    #[serde(rename = "address", default)]
    pub address: String,
}

/// A loaded frpc configuration: common settings plus the proxies and visitors to run,
/// with `includes` merged and `start` applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Common settings.
    pub common: ClientCommonConfig,
    /// Proxies, in file order (main file first, then includes in name order).
    pub proxies: Vec<ProxyConfig>,
    /// Visitors, in the same order.
    pub visitors: Vec<VisitorConfig>,
}

impl ClientConfig {
    /// The proxy called `name` (full, prefixed name).
    pub fn proxy(&self, name: &str) -> Option<&ProxyConfig> {
        self.proxies.iter().find(|p| p.name() == name)
    }

    /// The visitor called `name` (full, prefixed name).
    pub fn visitor(&self, name: &str) -> Option<&VisitorConfig> {
        self.visitors.iter().find(|v| v.name() == name)
    }
}

impl Serialize for ClientConfig {
    /// frp's JSON form: common keys plus `proxies` and `visitors` arrays.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut v = serde_json::to_value(&self.common).map_err(S::Error::custom)?;
        if let Value::Object(m) = &mut v {
            m.insert(
                "proxies".into(),
                serde_json::to_value(&self.proxies).map_err(S::Error::custom)?,
            );
            m.insert(
                "visitors".into(),
                serde_json::to_value(&self.visitors).map_err(S::Error::custom)?,
            );
        }
        v.serialize(s)
    }
}

/// Decodes a whole frpc document (not completed, `start` not applied).
pub(crate) fn decode_client(value: Value, unknown: &Unknown) -> Result<ClientConfig, DecodeError> {
    let Value::Object(mut obj) = value else {
        return decode::<ClientCommonConfig>(value, "", unknown).map(|common| ClientConfig {
            common,
            ..Default::default()
        });
    };
    let proxies = take_member(&mut obj, "proxies");
    let visitors = take_member(&mut obj, "visitors");
    let common: ClientCommonConfig = decode(Value::Object(obj), "", unknown)?;
    let proxies = decode_list(proxies, "proxies", unknown, decode_proxy)?;
    let visitors = decode_list(visitors, "visitors", unknown, decode_visitor)?;
    Ok(ClientConfig {
        common,
        proxies,
        visitors,
    })
}

fn decode_list<T>(
    value: Option<Value>,
    key: &str,
    unknown: &Unknown,
    one: fn(Value, &str, &Unknown) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{key}[{i}]");
                if v.is_null() {
                    // frp: `TypedProxyConfig.UnmarshalJSON` on null.
                    return Err(DecodeError {
                        path: Some(path),
                        msg: "type is required".into(),
                    });
                }
                one(v, &path, unknown)
            })
            .collect(),
        Some(other) => Err(DecodeError {
            path: Some(key.to_string()),
            msg: format!("invalid type: {}, expected an array", kind(&other)),
        }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "map",
    }
}
