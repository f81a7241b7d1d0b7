//! PROXY protocol headers (HAProxy spec, v1 text and v2 binary) that frpc writes to the local
//! service before the proxied bytes when `transport.proxyProtocolVersion` is set. Pure: builds
//! bytes from the `StartWorkConn` addresses. Matches frp v0.65.0 `client/proxy/proxy.go`: no
//! header unless the server sent a source address and port; a missing destination is 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use control::StartWorkConn;

/// `transport.proxyProtocolVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Text header `PROXY TCP4 ...\r\n`.
    V1,
    /// Binary header.
    V2,
}

impl Version {
    /// Parses frp's config value (`v1`, `v2`); empty means none.
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        match s {
            "" => Ok(None),
            "v1" => Ok(Some(Self::V1)),
            "v2" => Ok(Some(Self::V2)),
            other => Err(format!("unsupported proxy protocol version [{other}]")),
        }
    }
}

const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// The header for a TCP connection described by `m`, or `None` when the server sent no source.
pub fn header(version: Version, m: &StartWorkConn) -> Option<Vec<u8>> {
    if m.src_addr.is_empty() || m.src_port == 0 {
        return None;
    }
    let src: IpAddr = m.src_addr.parse().ok()?;
    let dst: IpAddr = if m.dst_addr.is_empty() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        m.dst_addr.parse().ok()?
    };
    let (src, dst) = same_family(src, dst);
    Some(match version {
        Version::V1 => v1(src, dst, m.src_port, m.dst_port),
        Version::V2 => v2(src, dst, m.src_port, m.dst_port),
    })
}

/// Both addresses in one family: a v4 address next to a v6 one is written v4-mapped.
fn same_family(a: IpAddr, b: IpAddr) -> (IpAddr, IpAddr) {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V6(_)) => (IpAddr::V6(x.to_ipv6_mapped()), b),
        (IpAddr::V6(_), IpAddr::V4(y)) => (a, IpAddr::V6(y.to_ipv6_mapped())),
        _ => (a, b),
    }
}

fn v1(src: IpAddr, dst: IpAddr, sp: u16, dp: u16) -> Vec<u8> {
    let fam = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!("PROXY {fam} {src} {dst} {sp} {dp}\r\n").into_bytes()
}

fn v2(src: IpAddr, dst: IpAddr, sp: u16, dp: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21); // version 2, command PROXY
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11); // AF_INET, STREAM
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => {
            let s = to_v6(src);
            let d = to_v6(dst);
            out.push(0x21); // AF_INET6, STREAM
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
    }
    out.extend_from_slice(&sp.to_be_bytes());
    out.extend_from_slice(&dp.to_be_bytes());
    out
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(src: &str, sp: u16, dst: &str, dp: u16) -> StartWorkConn {
        StartWorkConn {
            proxy_name: "p".into(),
            src_addr: src.into(),
            src_port: sp,
            dst_addr: dst.into(),
            dst_port: dp,
            error: String::new(),
        }
    }

    #[test]
    fn v1_text() {
        let h = header(Version::V1, &start("1.2.3.4", 5678, "", 6000)).expect("header");
        assert_eq!(h, b"PROXY TCP4 1.2.3.4 127.0.0.1 5678 6000\r\n");
    }

    #[test]
    fn v2_binary_ipv4() {
        let h = header(Version::V2, &start("10.0.0.1", 1, "10.0.0.2", 2)).expect("header");
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..], &[10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2]);
    }

    #[test]
    fn v2_mixed_families_are_mapped() {
        let h = header(Version::V2, &start("::1", 1, "127.0.0.1", 2)).expect("header");
        assert_eq!(h[13], 0x21);
        assert_eq!(h.len(), 16 + 36);
    }

    #[test]
    fn no_source_no_header() {
        assert!(header(Version::V1, &start("", 0, "", 0)).is_none());
        assert_eq!(Version::parse("v3").ok(), None);
    }
}
