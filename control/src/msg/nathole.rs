//! xtcp NAT hole-punching messages (frp `pkg/nathole`).

use serde::{Deserialize, Serialize};

use super::{is_false, is_zero_i64};

/// xtcp visitor → frps on the control conn: start hole punching (`'i'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleVisitor {
    /// Correlates the [`NatHoleResp`].
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    /// Target xtcp proxy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// Only check that the proxy exists and the key matches.
    #[serde(skip_serializing_if = "is_false")]
    pub pre_check: bool,
    /// Tunnel protocol over the punched hole: `"quic"` or `"kcp"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// `hex(md5(secretKey ++ timestamp))`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sign_key: String,
    /// Unix seconds used in `sign_key`.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub timestamp: i64,
    /// Addresses learned from STUN.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_addrs: Vec<String>,
    /// Local addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
}

/// xtcp proxy's frpc → frps on the control conn: its side of hole punching (`'n'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleClient {
    /// Correlates the [`NatHoleResp`].
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    /// The xtcp proxy.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_name: String,
    /// Session id from [`NatHoleSid`].
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// Addresses learned from STUN.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped_addrs: Vec<String>,
    /// Local addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
}

/// An inclusive port range in [`NatHoleDetectBehavior`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortsRange {
    /// First port.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub from: i64,
    /// Last port.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub to: i64,
}

/// How one side should punch (`msg.NatHoleDetectBehavior`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleDetectBehavior {
    /// `"sender"` or `"receiver"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Punching mode, 0..=4.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub mode: i64,
    /// IP TTL for the detection packets.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ttl: i64,
    /// Delay before sending, in milliseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub send_delay_ms: i64,
    /// Read timeout in **milliseconds** despite the JSON key `read_timeout`.
    #[serde(rename = "read_timeout", skip_serializing_if = "is_zero_i64")]
    pub read_timeout_ms: i64,
    /// Port ranges to try.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidate_ports: Vec<PortsRange>,
    /// How many random ports to send from.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub send_random_ports: i64,
    /// How many random ports to listen on.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub listen_random_ports: i64,
}

/// frps → both frpcs: the punching plan (`'m'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleResp {
    /// Echoes the request's transaction id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    /// Punching session id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// `"quic"` or `"kcp"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// The peer's candidate addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidate_addrs: Vec<String>,
    /// The peer's local addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assisted_addrs: Vec<String>,
    /// Always emitted, even when empty (Go never omits a struct value).
    pub detect_behavior: NatHoleDetectBehavior,
    /// Why punching cannot start; empty on success.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// frps → xtcp proxy's frpc: a visitor wants to punch (`'5'`); also the sid/nonce exchange
/// on the punched path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleSid {
    /// Correlates the exchange.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub transaction_id: String,
    /// Punching session id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// True on the answer.
    #[serde(skip_serializing_if = "is_false")]
    pub response: bool,
    /// Random nonce echoed by the peer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

/// frpc → frps: outcome of a punching session (`'6'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatHoleReport {
    /// Punching session id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// Whether the hole was punched.
    #[serde(skip_serializing_if = "is_false")]
    pub success: bool,
}
