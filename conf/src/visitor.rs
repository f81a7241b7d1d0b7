//! frpc visitors: [`VisitorConfig`] over stcp / sudp / xtcp sharing [`VisitorBase`]
//! (frp `pkg/config/v1/visitor.go`). Decoded like proxies: base and per-type parts split at
//! the JSON-value level (see `proxy.rs`).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::decode::{self, decode, struct_fields, DecodeError, Unknown};
use crate::defaults;
use crate::plugin::{self, VisitorPluginOptions};
use crate::proxy::{split_fields, take_member, NatTraversalConfig};
use crate::types::Secret;

/// Visitor types (`v1.VisitorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VisitorType {
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

impl VisitorType {
    /// frp's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitorType::Stcp => "stcp",
            VisitorType::Sudp => "sudp",
            VisitorType::Xtcp => "xtcp",
        }
    }

    /// Parses frp's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [VisitorType::Stcp, VisitorType::Sudp, VisitorType::Xtcp]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// A visitor's `transport` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorTransport {
    /// `useEncryption`.
    #[serde(rename = "useEncryption", default)]
    pub use_encryption: bool,
    /// `useCompression`.
    #[serde(rename = "useCompression", default)]
    pub use_compression: bool,
}

/// Fields every visitor has (frp `VisitorBaseConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorBase {
    /// `name`; prefixed with `user.` once loaded.
    #[serde(rename = "name", default)]
    pub name: String,
    /// `transport`.
    #[serde(rename = "transport", default)]
    pub transport: VisitorTransport,
    /// `secretKey`: must match the proxy's.
    #[serde(rename = "secretKey", default)]
    pub secret_key: Secret,
    /// `serverUser`: user owning the target proxy; empty = our own user.
    #[serde(rename = "serverUser", default)]
    pub server_user: String,
    /// `serverName`: target proxy; once loaded, the full `user.name` sent to frps.
    #[serde(rename = "serverName", default)]
    pub server_name: String,
    /// `bindAddr`. Default `127.0.0.1`.
    #[serde(rename = "bindAddr", default)]
    pub bind_addr: String,
    /// `bindPort` (required); negative = no listener, only connections handed over by other
    /// visitors (not for sudp).
    #[serde(rename = "bindPort", default)]
    pub bind_port: i32,
    /// `plugin`.
    #[serde(skip)]
    pub plugin: Option<VisitorPluginOptions>,
}

impl Default for VisitorBase {
    fn default() -> Self {
        Self {
            name: String::new(),
            transport: VisitorTransport::default(),
            secret_key: Secret::default(),
            server_user: String::new(),
            server_name: String::new(),
            bind_addr: defaults::VISITOR_BIND_ADDR.to_string(),
            bind_port: 0,
            plugin: None,
        }
    }
}

impl VisitorBase {
    /// frp `VisitorBaseConfig.Complete`: bind address, name prefix, full server name.
    pub fn complete(&mut self, user: &str) {
        defaults::or_str(&mut self.bind_addr, defaults::VISITOR_BIND_ADDR);
        let prefix = if user.is_empty() {
            String::new()
        } else {
            format!("{user}.")
        };
        self.name = format!("{prefix}{}", self.name);
        self.server_name = if self.server_user.is_empty() {
            format!("{prefix}{}", self.server_name)
        } else {
            format!("{}.{}", self.server_user, self.server_name)
        };
    }
}

/// `stcp` / `sudp` visitor: no extra fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StcpVisitorConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: VisitorBase,
}

/// `sudp` visitor.
pub type SudpVisitorConfig = StcpVisitorConfig;

/// xtcp hole-punched tunnel protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum XtcpProtocol {
    /// QUIC (default).
    #[default]
    #[serde(rename = "quic")]
    Quic,
    /// KCP.
    #[serde(rename = "kcp")]
    Kcp,
}

/// `xtcp` visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XtcpVisitorConfig {
    /// Shared fields.
    #[serde(skip)]
    pub base: VisitorBase,
    /// `protocol`. Default `quic`.
    #[serde(
        rename = "protocol",
        default,
        deserialize_with = "decode::empty_default::deserialize"
    )]
    pub protocol: XtcpProtocol,
    /// `keepTunnelOpen`.
    #[serde(rename = "keepTunnelOpen", default)]
    pub keep_tunnel_open: bool,
    /// `maxRetriesAnHour`. Default 8.
    #[serde(rename = "maxRetriesAnHour", default)]
    pub max_retries_an_hour: u32,
    /// `minRetryInterval`, seconds. Default 90.
    #[serde(rename = "minRetryInterval", default)]
    pub min_retry_interval: u32,
    /// `fallbackTo`: visitor to use when hole punching fails (prefixed with `user.`).
    #[serde(rename = "fallbackTo", default)]
    pub fallback_to: String,
    /// `fallbackTimeoutMs`. Default 1000.
    #[serde(rename = "fallbackTimeoutMs", default)]
    pub fallback_timeout_ms: u32,
    /// `natTraversal`.
    #[serde(
        rename = "natTraversal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub nat_traversal: Option<NatTraversalConfig>,
}

impl Default for XtcpVisitorConfig {
    fn default() -> Self {
        Self {
            base: VisitorBase::default(),
            protocol: XtcpProtocol::Quic,
            keep_tunnel_open: false,
            max_retries_an_hour: defaults::XTCP_MAX_RETRIES_AN_HOUR,
            min_retry_interval: defaults::XTCP_MIN_RETRY_INTERVAL,
            fallback_to: String::new(),
            fallback_timeout_ms: defaults::XTCP_FALLBACK_TIMEOUT_MS,
            nat_traversal: None,
        }
    }
}

/// One `[[visitors]]` entry, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitorConfig {
    /// `stcp`.
    Stcp(StcpVisitorConfig),
    /// `sudp`.
    Sudp(SudpVisitorConfig),
    /// `xtcp`.
    Xtcp(XtcpVisitorConfig),
}

impl VisitorConfig {
    /// The shared fields.
    pub fn base(&self) -> &VisitorBase {
        match self {
            VisitorConfig::Stcp(c) | VisitorConfig::Sudp(c) => &c.base,
            VisitorConfig::Xtcp(c) => &c.base,
        }
    }

    /// The shared fields, mutably.
    pub fn base_mut(&mut self) -> &mut VisitorBase {
        match self {
            VisitorConfig::Stcp(c) | VisitorConfig::Sudp(c) => &mut c.base,
            VisitorConfig::Xtcp(c) => &mut c.base,
        }
    }

    /// The visitor name (prefixed with `user.` once loaded).
    pub fn name(&self) -> &str {
        &self.base().name
    }

    /// The visitor type.
    pub fn visitor_type(&self) -> VisitorType {
        match self {
            VisitorConfig::Stcp(_) => VisitorType::Stcp,
            VisitorConfig::Sudp(_) => VisitorType::Sudp,
            VisitorConfig::Xtcp(_) => VisitorType::Xtcp,
        }
    }

    /// Fills defaults (frp `VisitorConfigurer.Complete`). Call once per loaded visitor.
    pub fn complete(&mut self, user: &str) {
        self.base_mut().complete(user);
        if let VisitorConfig::Xtcp(c) = self {
            defaults::or_num(
                &mut c.max_retries_an_hour,
                defaults::XTCP_MAX_RETRIES_AN_HOUR,
            );
            defaults::or_num(&mut c.min_retry_interval, defaults::XTCP_MIN_RETRY_INTERVAL);
            defaults::or_num(
                &mut c.fallback_timeout_ms,
                defaults::XTCP_FALLBACK_TIMEOUT_MS,
            );
            if !c.fallback_to.is_empty() && !user.is_empty() {
                c.fallback_to = format!("{user}.{}", c.fallback_to);
            }
        }
    }
}

impl Serialize for VisitorConfig {
    /// frp's JSON form: `type`, shared and per-type fields in one object.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), Value::from(self.visitor_type().as_str()));
        let base = self.base();
        if let Value::Object(m) = serde_json::to_value(base).map_err(S::Error::custom)? {
            obj.extend(m);
        }
        if let Some(p) = &base.plugin {
            obj.insert(
                "plugin".into(),
                serde_json::to_value(p).map_err(S::Error::custom)?,
            );
        }
        if let VisitorConfig::Xtcp(c) = self {
            if let Value::Object(m) = serde_json::to_value(c).map_err(S::Error::custom)? {
                obj.extend(m);
            }
        }
        Value::Object(obj).serialize(s)
    }
}

/// Decodes one `[[visitors]]` entry (frp `TypedVisitorConfig.UnmarshalJSON`).
pub(crate) fn decode_visitor(
    value: Value,
    path: &str,
    unknown: &Unknown,
) -> Result<VisitorConfig, DecodeError> {
    let (ty, mut obj) = plugin::take_type(value, path)?;
    let Some(ty) = VisitorType::parse(&ty) else {
        return Err(DecodeError {
            path: Some(decode::join(path, "type")),
            msg: format!("unknown visitor type: {ty:?}"),
        });
    };
    let plugin = match take_member(&mut obj, "plugin") {
        Some(v) => Some(plugin::decode_visitor_plugin(
            v,
            &decode::join(path, "plugin"),
            unknown,
        )?),
        None => None,
    };
    let (base_obj, rest) = split_fields(obj, struct_fields::<VisitorBase>());
    let mut base: VisitorBase = decode(Value::Object(base_obj), path, unknown)?;
    base.plugin = plugin;
    let rest = Value::Object(rest);
    Ok(match ty {
        VisitorType::Stcp | VisitorType::Sudp => {
            let mut c: StcpVisitorConfig = decode(rest, path, unknown)?;
            c.base = base;
            if ty == VisitorType::Stcp {
                VisitorConfig::Stcp(c)
            } else {
                VisitorConfig::Sudp(c)
            }
        }
        VisitorType::Xtcp => {
            let mut c: XtcpVisitorConfig = decode(rest, path, unknown)?;
            c.base = base;
            VisitorConfig::Xtcp(c)
        }
    })
}
