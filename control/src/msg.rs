//! The frp 0.65.0 message catalogue: one struct per message, mirroring `pkg/msg/msg.go`.
//!
//! Field names are frp's JSON tags. Go's `omitempty` becomes `skip_serializing_if` on zero
//! values (empty string, 0, false, empty map/slice, `None`), except that Go always emits a
//! nested *struct* even when tagged `omitempty` (`client_spec`, `detect_behavior`), so those
//! have no skip. Every struct is `#[serde(default)]`: absent keys take their zero value, and
//! unknown keys are ignored, as Go's `encoding/json` does. Go's `int` is 64-bit on every
//! platform frp ships for, so it maps to `i64`.
//!
//! Maps are `BTreeMap` because Go's encoder sorts map keys, which keeps our encoding
//! byte-identical to frp's.
//!
//! Not matched on purpose: Go also accepts JSON keys whose case differs (`"Proxy_Name"`) and
//! `null` for scalar fields. frp itself never sends either, so we reject them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod nathole;
mod udp;

pub use nathole::{
    NatHoleClient, NatHoleDetectBehavior, NatHoleReport, NatHoleResp, NatHoleSid, NatHoleVisitor,
    PortsRange,
};
pub use udp::{UdpAddr, UdpPacket};

/// The version both frp binaries put in `Login.version` / `LoginResp.version`.
pub const FRP_VERSION: &str = "0.65.0";

/// Go's `GOOS` name for a Rust `std::env::consts::OS` value, for `Login.os`.
pub fn go_os(rust_os: &str) -> &str {
    match rust_os {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `GOARCH` name for a Rust `std::env::consts::ARCH` value, for `Login.arch`.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "riscv64" | "riscv64gc" => "riscv64",
        "mips64" => "mips64",
        other => other,
    }
}

/// String-to-string map as sent by frp (`metas`, `headers`, ...), key-sorted like Go's encoder.
pub type StringMap = BTreeMap<String, String>;

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// What kind of client logs in (`msg.ClientSpec`), used by frps for virtual clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientSpec {
    /// Client type; frp knows only `"ssh-tunnel"`. Empty for a normal frpc.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// When true (and the login came from frps' internal listener) authentication is skipped.
    #[serde(skip_serializing_if = "is_false")]
    pub always_auth_pass: bool,
}

/// frpc → frps, first message of a control connection (`'o'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Login {
    /// frpc version, `"0.65.0"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Never set by frpc; kept for completeness.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Go's `GOOS` (`"linux"`, `"windows"`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// Go's `GOARCH` (`"amd64"`, `"arm64"`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// The `user` config value; prefixes proxy names.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Token method: `hex(md5(token ++ timestamp))`; OIDC: the access token.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    /// Unix seconds when the login was built.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timestamp: i64,
    /// Empty on first login; the run id frps gave us on every reconnect.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Client `metadatas`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metas: StringMap,
    /// Always emitted, even when empty (Go never omits a struct value).
    pub client_spec: ClientSpec,
    /// `transport.poolCount`: how many work connections frpc wants pre-opened.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub pool_count: i64,
}

/// frps → frpc, answer to [`Login`] (`'1'`). A non-empty `error` means the login failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoginResp {
    /// frps version, `"0.65.0"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// The run id assigned to (or confirmed for) this client.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Why the login failed; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// frpc → frps, register a proxy (`'p'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxy {
    /// Proxy name, already prefixed with `"{user}."` when a user is set.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// `tcp`, `udp`, `http`, `https`, `tcpmux`, `stcp`, `sudp` or `xtcp`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_type: String,
    /// Work connections of this proxy are encrypted with the token-derived key.
    #[serde(skip_serializing_if = "is_false")]
    pub use_encryption: bool,
    /// Work connections of this proxy are snappy-compressed.
    #[serde(skip_serializing_if = "is_false")]
    pub use_compression: bool,
    /// Bandwidth limit such as `"1MB"` or `"100KB"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth_limit: String,
    /// `"server"` when frps enforces the limit (frpc omits the default `"client"`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth_limit_mode: String,
    /// Load-balancing group.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Secret shared by members of `group`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group_key: String,
    /// Proxy `metadatas`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metas: StringMap,
    /// Proxy `annotations` (shown on the dashboard).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: StringMap,
    /// tcp/udp: requested public port; 0 lets frps choose.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub remote_port: i64,
    /// http/https/tcpmux: custom domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_domains: Vec<String>,
    /// http/https/tcpmux: subdomain under frps' `subDomainHost`.
    #[serde(rename = "subdomain", skip_serializing_if = "String::is_empty")]
    pub sub_domain: String,
    /// http: URL path prefixes routed to this proxy.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
    /// http: basic-auth user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub http_user: String,
    /// http: basic-auth password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub http_pwd: String,
    /// http: Host header sent to the local service.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host_header_rewrite: String,
    /// http: request headers to set (`requestHeaders.set`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: StringMap,
    /// http: response headers to set (`responseHeaders.set`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub response_headers: StringMap,
    /// http/tcpmux: route by the basic-auth user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub route_by_http_user: String,
    /// stcp/sudp/xtcp: the secret key visitors sign with.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sk: String,
    /// stcp/sudp/xtcp: users allowed to visit (`"*"` = everyone).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_users: Vec<String>,
    /// tcpmux: multiplexer, only `"httpconnect"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub multiplexer: String,
}

/// frps → frpc, answer to [`NewProxy`] (`'2'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewProxyResp {
    /// The proxy this answers.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// tcp/udp: `":<port>"`; http/https: comma-joined `domain[:port]` list.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_addr: String,
    /// Why registration failed; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// frpc → frps, unregister a proxy (`'c'`); there is no reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CloseProxy {
    /// The proxy to close.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
}

/// frpc → frps, first message of a work connection (`'w'`), never control-encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewWorkConn {
    /// Run id of the owning control connection.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Set only with the `NewWorkConns` auth scope.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    /// Set only with the `NewWorkConns` auth scope.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timestamp: i64,
}

/// frps → frpc, "open one more work connection" (`'r'`); always the empty object `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReqWorkConn {}

/// frps → frpc on a work connection: bind it to a proxy and start relaying (`'s'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartWorkConn {
    /// Which proxy the user connection belongs to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// The user's address as seen by frps.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub src_addr: String,
    /// frps' local address of the user socket (absent for http).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dst_addr: String,
    /// The user's port.
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub src_port: u16,
    /// frps' local port of the user socket.
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub dst_port: u16,
    /// Non-empty when frps rejects the work connection; frpc then closes it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// visitor frpc → frps, first message of a visitor connection (`'v'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewVisitorConn {
    /// Run id of the visiting frpc (empty from pre-0.50 clients).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// Target proxy name, prefixed with its owner's user.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// `hex(md5(secretKey ++ timestamp))`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sign_key: String,
    /// Unix seconds used in `sign_key`.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timestamp: i64,
    /// The visitor side encrypts the stream.
    #[serde(skip_serializing_if = "is_false")]
    pub use_encryption: bool,
    /// The visitor side compresses the stream.
    #[serde(skip_serializing_if = "is_false")]
    pub use_compression: bool,
}

/// frps → visitor frpc, answer to [`NewVisitorConn`] (`'3'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewVisitorConnResp {
    /// The proxy this answers.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// Why the visitor was rejected; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Heartbeat request (`'h'`): frpc → frps on the control conn, also sent on UDP work conns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ping {
    /// Set only with the `HeartBeats` auth scope.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub privilege_key: String,
    /// Set only with the `HeartBeats` auth scope.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timestamp: i64,
}

/// Heartbeat answer (`'4'`), frps → frpc. A non-empty `error` makes frpc drop the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pong {
    /// Why the ping was rejected; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

macro_rules! messages {
    ($( $(#[$doc:meta])* $variant:ident = $byte:literal, )*) => {
        /// The type byte of each frp message: the closed set of `msgTypeMap` in frp's
        /// `pkg/msg/msg.go`. There are no others in 0.65.0.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum MessageType {
            $( $(#[$doc])* $variant = $byte, )*
        }

        impl MessageType {
            /// Every message type, in frp's table order.
            pub const ALL: &'static [MessageType] = &[$( MessageType::$variant, )*];

            /// The type byte on the wire.
            pub fn type_byte(self) -> u8 {
                self as u8
            }

            /// The type for a wire byte, or `None` if frp has no such message.
            pub fn from_type_byte(byte: u8) -> Option<Self> {
                match byte {
                    $( $byte => Some(MessageType::$variant), )*
                    _ => None,
                }
            }

            /// frp's Go name of the message (`"Login"`, `"UDPPacket"`, ...).
            pub fn name(self) -> &'static str {
                match self {
                    $( MessageType::$variant => go_name(stringify!($variant)), )*
                }
            }
        }

        /// One frp control-protocol message. Closed set; dispatch with `match`.
        // NewProxy makes this ~500 bytes. Messages live for one frame and boxing the variant
        // would make every consumer's `match` deref, so the size is accepted.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $( $(#[$doc])* $variant($variant), )*
        }

        impl Message {
            /// This message's type.
            pub fn msg_type(&self) -> MessageType {
                match self {
                    $( Message::$variant(_) => MessageType::$variant, )*
                }
            }

            /// Parses a JSON body of the given type.
            pub fn from_json(kind: MessageType, body: &[u8]) -> Result<Self, serde_json::Error> {
                Ok(match kind {
                    $( MessageType::$variant => Message::$variant(serde_json::from_slice(body)?), )*
                })
            }

            /// Writes this message's JSON body the way Go's `encoding/json` does.
            pub fn write_json<W: std::io::Write>(&self, out: W) -> Result<(), serde_json::Error> {
                let mut ser = serde_json::Serializer::with_formatter(out, GoFormatter);
                match self {
                    $( Message::$variant(m) => m.serialize(&mut ser), )*
                }
            }
        }

        $(
            impl From<$variant> for Message {
                fn from(m: $variant) -> Self {
                    Message::$variant(m)
                }
            }
        )*
    };
}

messages! {
    /// `'o'`, frpc → frps.
    Login = b'o',
    /// `'1'`, frps → frpc.
    LoginResp = b'1',
    /// `'p'`, frpc → frps.
    NewProxy = b'p',
    /// `'2'`, frps → frpc.
    NewProxyResp = b'2',
    /// `'c'`, frpc → frps.
    CloseProxy = b'c',
    /// `'w'`, frpc → frps on a work connection.
    NewWorkConn = b'w',
    /// `'r'`, frps → frpc.
    ReqWorkConn = b'r',
    /// `'s'`, frps → frpc on a work connection.
    StartWorkConn = b's',
    /// `'v'`, visitor → frps.
    NewVisitorConn = b'v',
    /// `'3'`, frps → visitor.
    NewVisitorConnResp = b'3',
    /// `'h'`, frpc → frps.
    Ping = b'h',
    /// `'4'`, frps → frpc.
    Pong = b'4',
    /// `'u'`, both ways on UDP work connections.
    UdpPacket = b'u',
    /// `'i'`, xtcp visitor → frps.
    NatHoleVisitor = b'i',
    /// `'n'`, xtcp proxy → frps.
    NatHoleClient = b'n',
    /// `'m'`, frps → frpc.
    NatHoleResp = b'm',
    /// `'5'`, frps → frpc.
    NatHoleSid = b'5',
    /// `'6'`, frpc → frps.
    NatHoleReport = b'6',
}

/// Maps our Rust-cased names back to frp's Go names where they differ.
const fn go_name(rust: &'static str) -> &'static str {
    match rust.as_bytes() {
        b"UdpPacket" => "UDPPacket",
        _ => rust,
    }
}

impl Message {
    /// The type byte on the wire.
    pub fn type_byte(&self) -> u8 {
        self.msg_type().type_byte()
    }

    /// The message type for a wire byte; `None` for bytes frp does not know.
    pub fn from_type_byte(byte: u8) -> Option<MessageType> {
        MessageType::from_type_byte(byte)
    }

    /// The JSON body as Go would write it.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out)?;
        Ok(out)
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// serde_json formatter that escapes like Go's `encoding/json`: besides what serde_json
/// escapes, Go writes `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026` and U+2028/U+2029 as
/// `\u2028`/`\u2029` (HTML-safe output, `encoding/json/encode.go`). serde_json already
/// matches Go ≥ 1.22 for control characters (`\b`, `\f`, lowercase `\u00xx`).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // Scans bytes, not chars: every byte to escape is ASCII or starts U+2028/U+2029's
        // UTF-8 form (E2 80 A8/A9), and `fragment` is valid UTF-8, so a match never lands
        // inside another character.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (escaped, len): (&[u8], usize) = match bytes[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xE2 if bytes[i + 1..].starts_with(&[0x80, 0xA8]) => (b"\\u2028", 3),
                0xE2 if bytes[i + 1..].starts_with(&[0x80, 0xA9]) => (b"\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escaped)?;
            i += len;
            start = i;
        }
        writer.write_all(&bytes[start..])
    }
}

#[cfg(test)]
mod tests;
