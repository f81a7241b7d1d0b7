//! UDP relay messages: [`UdpPacket`] and Go's `net.UDPAddr` JSON shape.

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Go's `net.UDPAddr` as `encoding/json` writes it: `{"IP":"127.0.0.1","Port":1,"Zone":""}`.
///
/// All three keys are always present (the Go struct has no tags); a nil IP is `""`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpAddr {
    /// The IP; `None` is Go's nil IP, written as `""`.
    #[serde(rename = "IP", with = "go_ip")]
    pub ip: Option<IpAddr>,
    /// The port (Go `int`).
    #[serde(rename = "Port")]
    pub port: i64,
    /// IPv6 zone (interface name), usually empty.
    #[serde(rename = "Zone")]
    pub zone: String,
}

impl UdpAddr {
    /// The socket address, if the IP is set and the port fits in `u16`.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        let port = u16::try_from(self.port).ok()?;
        Some(SocketAddr::new(self.ip?, port))
    }
}

impl From<SocketAddr> for UdpAddr {
    fn from(addr: SocketAddr) -> Self {
        let zone = match addr {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => v6.scope_id().to_string(),
            _ => String::new(),
        };
        Self {
            ip: Some(addr.ip()),
            port: i64::from(addr.port()),
            zone,
        }
    }
}

/// Go's `net.IP` text form: `""` for nil, otherwise the usual dotted / colon notation.
mod go_ip {
    use super::*;

    pub(super) fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_str(""),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format_args!("invalid IP address: {text}")))
    }
}

/// One UDP datagram relayed over a UDP/SUDP work connection (`'u'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UdpPacket {
    /// The datagram, base64 (standard alphabet, padded) as frp's `udp.NewUDPPacket` writes it.
    #[serde(rename = "c", skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Local address (frpc side); frp leaves it unset in practice.
    #[serde(rename = "l", skip_serializing_if = "Option::is_none")]
    pub local_addr: Option<UdpAddr>,
    /// The user's address on frps' side.
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<UdpAddr>,
}

impl UdpPacket {
    /// Wraps a datagram, base64-encoding it as frp does.
    pub fn new(payload: &[u8], local: Option<UdpAddr>, remote: Option<UdpAddr>) -> Self {
        Self {
            content: base64::engine::general_purpose::STANDARD.encode(payload),
            local_addr: local,
            remote_addr: remote,
        }
    }

    /// Decodes the datagram (strict standard base64, like Go's `StdEncoding`).
    pub fn payload(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.content)
    }
}
