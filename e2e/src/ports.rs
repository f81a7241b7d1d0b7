//! Free TCP and UDP ports on 127.0.0.1.
//!
//! A port is found by binding `127.0.0.1:0` (or a candidate port) and releasing it, so another
//! process can take it before frps binds it. `Ctx::start_frps` (in `ctx`) retries a start that
//! lost this race; other uses accept the small risk.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use anyhow::{bail, Context, Result};
use rand::Rng;

/// One free port chosen by the OS.
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free ports chosen by the OS (all held open until all are chosen).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding 127.0.0.1:0 to find a free port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .context("reading a bound port")
}

/// One free UDP port chosen by the OS (for frps `kcpBindPort` / `quicBindPort`).
pub fn free_udp_port() -> Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding udp 127.0.0.1:0 to find a free port")?;
    Ok(socket
        .local_addr()
        .context("reading a bound udp port")?
        .port())
}

/// One port free for both TCP and UDP, so frps can use it as `bindPort` and as
/// `kcpBindPort` (frp's documented setup: KCP on the same number as the TCP port).
pub fn free_tcp_udp_port() -> Result<u16> {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding udp 127.0.0.1:0 to find a free port")?;
        let port = udp.local_addr().context("reading a bound udp port")?.port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both TCP and UDP found in 100 attempts")
}

/// `n` consecutive free ports `start..start + n`, returned as `start`.
///
/// Candidates are drawn below Linux's default ephemeral range (32768–60999) so that ports the
/// OS hands out for outgoing connections rarely land in them.
pub fn free_port_range(n: u16) -> Result<u16> {
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    if n == 0 || n > 100 {
        bail!("free_port_range: unreasonable range length {n}");
    }
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let start = rng.gen_range(LOW..HIGH - n);
        let held: std::io::Result<Vec<TcpListener>> = (start..start + n)
            .map(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)))
            .collect();
        if held.is_ok() {
            return Ok(start);
        }
    }
    bail!("no run of {n} consecutive free ports found in {LOW}..{HIGH}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports = free_ports(8).expect("ports");
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        for p in ports {
            assert_ne!(p, 0);
        }
    }

    #[test]
    fn udp_ports_are_bindable() {
        let port = free_udp_port().expect("udp port");
        UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).expect("udp port still free");
        let both = free_tcp_udp_port().expect("tcp+udp port");
        UdpSocket::bind((Ipv4Addr::LOCALHOST, both)).expect("udp side free");
        TcpListener::bind((Ipv4Addr::LOCALHOST, both)).expect("tcp side free");
    }

    #[test]
    fn range_is_bindable() {
        let start = free_port_range(4).expect("range");
        // Still free right after (barring a race with another process).
        let held: Vec<_> = (start..start + 4)
            .filter_map(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).ok())
            .collect();
        assert_eq!(held.len(), 4);
    }
}
