//! Client plugins (`[proxies.plugin]`, frp `pkg/config/v1/proxy_plugin.go`) and visitor
//! plugins (`[visitors.plugin]`, `visitor_plugin.go`): closed sets tagged by `type`.
//!
//! Decoding dispatches on `type` at the JSON-value level ([`decode_client_plugin`]) instead of
//! serde's internally tagged enums, which buffer their content and so would lose key paths,
//! case folding and unknown-key detection.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decode::{self, decode, DecodeError, Unknown};
use crate::defaults;
use crate::proxy::HeaderOperations;
use crate::types::Secret;

/// A client plugin: frpc serves work connections itself instead of dialing `localIP:localPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ClientPluginOptions {
    /// `http2https`: plain HTTP in, HTTPS to `localAddr`.
    #[serde(rename = "http2https")]
    Http2Https(Http2HttpsPluginOptions),
    /// `http_proxy`: an HTTP (CONNECT) forward proxy.
    #[serde(rename = "http_proxy")]
    HttpProxy(HttpProxyPluginOptions),
    /// `https2http`: terminate TLS, HTTP to `localAddr`.
    #[serde(rename = "https2http")]
    Https2Http(Https2HttpPluginOptions),
    /// `https2https`: terminate TLS, HTTPS to `localAddr`.
    #[serde(rename = "https2https")]
    Https2Https(Https2HttpsPluginOptions),
    /// `http2http`: HTTP reverse proxy to `localAddr`.
    #[serde(rename = "http2http")]
    Http2Http(Http2HttpPluginOptions),
    /// `socks5`: a SOCKS5 server.
    #[serde(rename = "socks5")]
    Socks5(Socks5PluginOptions),
    /// `static_file`: serve a directory over HTTP.
    #[serde(rename = "static_file")]
    StaticFile(StaticFilePluginOptions),
    /// `unix_domain_socket`: relay to a Unix socket.
    #[serde(rename = "unix_domain_socket")]
    UnixDomainSocket(UnixDomainSocketPluginOptions),
    /// `tls2raw`: terminate TLS, raw TCP to `localAddr`.
    #[serde(rename = "tls2raw")]
    Tls2Raw(Tls2RawPluginOptions),
    /// `virtual_net`: frp's experimental virtual network (feature gate `VirtualNet`).
    #[serde(rename = "virtual_net")]
    VirtualNet(VirtualNetPluginOptions),
}

impl ClientPluginOptions {
    /// frp's plugin type name (`http2https`, `socks5`, ...).
    pub fn plugin_type(&self) -> &'static str {
        match self {
            ClientPluginOptions::Http2Https(_) => "http2https",
            ClientPluginOptions::HttpProxy(_) => "http_proxy",
            ClientPluginOptions::Https2Http(_) => "https2http",
            ClientPluginOptions::Https2Https(_) => "https2https",
            ClientPluginOptions::Http2Http(_) => "http2http",
            ClientPluginOptions::Socks5(_) => "socks5",
            ClientPluginOptions::StaticFile(_) => "static_file",
            ClientPluginOptions::UnixDomainSocket(_) => "unix_domain_socket",
            ClientPluginOptions::Tls2Raw(_) => "tls2raw",
            ClientPluginOptions::VirtualNet(_) => "virtual_net",
        }
    }
}

/// `http2https` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Http2HttpsPluginOptions {
    /// `localAddr` (required).
    #[serde(rename = "localAddr", default)]
    pub local_addr: String,
    /// `hostHeaderRewrite`.
    #[serde(rename = "hostHeaderRewrite", default)]
    pub host_header_rewrite: String,
    /// `requestHeaders.set`.
    #[serde(rename = "requestHeaders", default)]
    pub request_headers: HeaderOperations,
}

/// `http_proxy` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProxyPluginOptions {
    /// `httpUser`.
    #[serde(rename = "httpUser", default)]
    pub http_user: String,
    /// `httpPassword`.
    #[serde(rename = "httpPassword", default)]
    pub http_password: Secret,
}

/// `https2http` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Https2HttpPluginOptions {
    /// `localAddr` (required).
    #[serde(rename = "localAddr", default)]
    pub local_addr: String,
    /// `hostHeaderRewrite`.
    #[serde(rename = "hostHeaderRewrite", default)]
    pub host_header_rewrite: String,
    /// `requestHeaders.set`.
    #[serde(rename = "requestHeaders", default)]
    pub request_headers: HeaderOperations,
    /// `enableHTTP2`. Default true.
    #[serde(rename = "enableHTTP2", default = "defaults::yes")]
    pub enable_http2: bool,
    /// `crtPath`; empty = generated certificate.
    #[serde(rename = "crtPath", default)]
    pub crt_path: String,
    /// `keyPath`.
    #[serde(rename = "keyPath", default)]
    pub key_path: String,
}

/// `https2https` options (same fields as `https2http`).
pub type Https2HttpsPluginOptions = Https2HttpPluginOptions;

/// `http2http` options.
pub type Http2HttpPluginOptions = Http2HttpsPluginOptions;

/// `socks5` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socks5PluginOptions {
    /// `username`.
    #[serde(rename = "username", default)]
    pub username: String,
    /// `password`.
    #[serde(rename = "password", default)]
    pub password: Secret,
}

/// `static_file` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticFilePluginOptions {
    /// `localPath` (required).
    #[serde(rename = "localPath", default)]
    pub local_path: String,
    /// `stripPrefix`.
    #[serde(rename = "stripPrefix", default)]
    pub strip_prefix: String,
    /// `httpUser`.
    #[serde(rename = "httpUser", default)]
    pub http_user: String,
    /// `httpPassword`.
    #[serde(rename = "httpPassword", default)]
    pub http_password: Secret,
}

/// `unix_domain_socket` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixDomainSocketPluginOptions {
    /// `unixPath` (required).
    #[serde(rename = "unixPath", default)]
    pub unix_path: String,
}

/// `tls2raw` options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls2RawPluginOptions {
    /// `localAddr` (required).
    #[serde(rename = "localAddr", default)]
    pub local_addr: String,
    /// `crtPath`.
    #[serde(rename = "crtPath", default)]
    pub crt_path: String,
    /// `keyPath`.
    #[serde(rename = "keyPath", default)]
    pub key_path: String,
}

/// `virtual_net` (proxy side) has no options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualNetPluginOptions {}

/// A visitor plugin (frp `visitor_plugin.go`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum VisitorPluginOptions {
    /// `virtual_net`.
    #[serde(rename = "virtual_net")]
    VirtualNet(VirtualNetVisitorPluginOptions),
}

/// `virtual_net` visitor plugin options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualNetVisitorPluginOptions {
    /// `destinationIP`: the virtual address of the remote side.
    #[serde(rename = "destinationIP", default)]
    pub destination_ip: String,
}

/// Takes the `type` member out of a tagged object (Go matches it case-insensitively too).
pub(crate) fn take_type(
    value: Value,
    path: &str,
) -> Result<(String, serde_json::Map<String, Value>), DecodeError> {
    let Value::Object(mut obj) = value else {
        return Err(DecodeError {
            path: Some(path.to_string()),
            msg: "expected a table/object".into(),
        });
    };
    let key = obj
        .keys()
        .find(|k| *k == "type")
        .or_else(|| obj.keys().find(|k| decode::fold_eq(k, "type")))
        .cloned();
    let ty = match key.and_then(|k| obj.remove(&k)) {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(DecodeError {
                path: Some(decode::join(path, "type")),
                msg: format!("invalid type: {other}, expected a string"),
            })
        }
    };
    Ok((ty, obj))
}

/// Decodes `[proxies.plugin]` (frp `TypedClientPluginOptions.UnmarshalJSON`).
pub(crate) fn decode_client_plugin(
    value: Value,
    path: &str,
    unknown: &Unknown,
) -> Result<ClientPluginOptions, DecodeError> {
    let (ty, obj) = take_type(value, path)?;
    let v = Value::Object(obj);
    let plugin = match ty.as_str() {
        "http2https" => ClientPluginOptions::Http2Https(decode(v, path, unknown)?),
        "http_proxy" => ClientPluginOptions::HttpProxy(decode(v, path, unknown)?),
        "https2http" => ClientPluginOptions::Https2Http(decode(v, path, unknown)?),
        "https2https" => ClientPluginOptions::Https2Https(decode(v, path, unknown)?),
        "http2http" => ClientPluginOptions::Http2Http(decode(v, path, unknown)?),
        "socks5" => ClientPluginOptions::Socks5(decode(v, path, unknown)?),
        "static_file" => ClientPluginOptions::StaticFile(decode(v, path, unknown)?),
        "unix_domain_socket" => ClientPluginOptions::UnixDomainSocket(decode(v, path, unknown)?),
        "tls2raw" => ClientPluginOptions::Tls2Raw(decode(v, path, unknown)?),
        "virtual_net" => ClientPluginOptions::VirtualNet(decode(v, path, unknown)?),
        "" => return Err(type_error(path, "plugin type is empty".into())),
        other => return Err(type_error(path, format!("unknown plugin type: {other}"))),
    };
    Ok(plugin)
}

/// Decodes `[visitors.plugin]` (frp `TypedVisitorPluginOptions.UnmarshalJSON`).
pub(crate) fn decode_visitor_plugin(
    value: Value,
    path: &str,
    unknown: &Unknown,
) -> Result<VisitorPluginOptions, DecodeError> {
    let (ty, obj) = take_type(value, path)?;
    match ty.as_str() {
        "virtual_net" => Ok(VisitorPluginOptions::VirtualNet(decode(
            Value::Object(obj),
            path,
            unknown,
        )?)),
        "" => Err(type_error(path, "visitor plugin type is empty".into())),
        other => Err(type_error(
            path,
            format!("unknown visitor plugin type: {other}"),
        )),
    }
}

fn type_error(path: &str, msg: String) -> DecodeError {
    DecodeError {
        path: Some(decode::join(path, "type")),
        msg,
    }
}
