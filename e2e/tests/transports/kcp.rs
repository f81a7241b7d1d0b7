//! `transport.protocol = "kcp"`: frpc reaches frps over KCP on UDP `kcpBindPort`, here the same
//! number as the TCP `bindPort` (frp's documented setup). Every scenario carries a plain and an
//! encrypted + compressed proxy (`transport.useEncryption`/`useCompression`, issue 3 item 2).
//!
//! Without tcpMux every work connection is a KCP session of its own, and frp 0.65.0 then
//! stalls some of the sessions frpc dials while others carry traffic: frps logs
//! `checkAndEnableTLSServerConnWithTimeout error: timeout` 10 s later and resets the user
//! connection (seen with 2 concurrent connections of 1 KiB, TLS on or off, and even with
//! connections one after another). Sessions dialled up front for the work-connection pool do
//! not stall, so that scenario pre-dials [`NOMUX_POOL`] of them (frpc `poolCount`, frps
//! `transport.maxPoolCount`) and lets the pool fill before the data checks.

use std::time::Duration;

use anyhow::Result;
use e2e::*;

use crate::common::{check_tunnels_settled, frpc_with_proxies, remote_ports, Load, TOKEN};

/// Work connections pre-dialled without tcpMux: more than the data checks use (3 + 2 × 16).
const NOMUX_POOL: u32 = 40;
/// Time for frpc to dial the pool after login (it takes well under a second on loopback).
const POOL_FILL: Duration = Duration::from_secs(2);

/// One KCP setting: tcpMux (both sides) and frpc's `transport.tls.enable`.
async fn kcp(ctx: Ctx, tcp_mux: bool, tls: bool, load: Load) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps_udp(|bind, _udp| {
            let mut cfg = FrpsConfig::new(bind)
                .token(TOKEN)
                .tcp_mux(tcp_mux)
                .kcp_bind_port(bind);
            if !tcp_mux {
                cfg.extra
                    .push(format!("transport.maxPoolCount = {NOMUX_POOL}"));
            }
            cfg
        })
        .await?;
    let kcp_port = frps.port();
    let ports = remote_ports()?;
    let mut frpc = frpc_with_proxies(kcp_port, Protocol::Kcp, echo.port(), ports)
        .tcp_mux(tcp_mux)
        .tls_enable(tls);
    let mut settle = Duration::ZERO;
    if !tcp_mux {
        frpc = frpc.pool_count(NOMUX_POOL);
        settle = POOL_FILL;
    }
    check_tunnels_settled(&ctx, &frps, &frpc, ports, load, settle).await
}

// tcpMux and TLS on (frp's defaults), with bulk data.
interop_test!(kcp_mux_tls_bulk, |ctx| kcp(ctx, true, true, Load::Bulk));
// One KCP session per work connection, from a pre-dialled pool (see the module docs).
interop_test!(kcp_nomux_tls, |ctx| kcp(ctx, false, true, Load::Light));
// `transport.tls.enable = false`: frp messages straight on the KCP stream (through yamux).
interop_test!(kcp_mux_plain, |ctx| kcp(ctx, true, false, Load::Light));
