//! Remote-port rules of frps (issue 2, item 7): `remotePort = 0` (frps picks a port),
//! `allowPorts` refusing a port, and `maxPortsPerClient`. The refusals travel to frpc in
//! `NewProxyResp.error`, whose text is frp's (`pkg/util/ports` / `server/control.go`).

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::ports::{free_port_range, free_ports};
use e2e::*;

const TOKEN: &str = "ports-token";
/// frp's error for a remote port outside `allowPorts`.
const PORT_NOT_ALLOWED: &str = "port not allowed";
/// frp's error when a client exceeds `maxPortsPerClient`.
const EXCEED_MAX_PORTS: &str = "exceed the max_ports_per_client";

/// The ports among `candidates` where an echo round trip works right now.
async fn working_ports(candidates: &[u16]) -> Vec<u16> {
    let mut out = Vec::new();
    for &port in candidates {
        if round_trip(port, b"probe", Duration::from_secs(1))
            .await
            .is_ok()
        {
            out.push(port);
        }
    }
    out
}

/// Polls until exactly `want` of `candidates` work (bounded by `TUNNEL_TIMEOUT`).
async fn wait_working(candidates: &[u16], want: usize, watch: &[&FrpProcess]) -> Result<Vec<u16>> {
    let deadline = Instant::now() + TUNNEL_TIMEOUT;
    loop {
        for p in watch {
            p.ensure_running()?;
        }
        let working = working_ports(candidates).await;
        if working.len() > want {
            bail!(
                "{} ports of {candidates:?} work ({working:?}), expected {want}",
                working.len()
            );
        }
        if working.len() == want {
            return Ok(working);
        }
        if Instant::now() >= deadline {
            bail!(
                "only {working:?} of {candidates:?} work after {TUNNEL_TIMEOUT:?}, expected {want}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two proxies with `remotePort = 0` get two distinct ports from frps's allowed range.
async fn remote_port_zero(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let start = free_port_range(4)?;
    let range: Vec<u16> = (start..start + 4).collect();
    let frps = ctx
        .start_frps(|port| {
            FrpsConfig::new(port)
                .token(TOKEN)
                .allow(PortSpec::Range(start, start + 3))
        })
        .await?;
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .proxy(TcpProxy::new("auto-1", echo.port(), 0))
            .proxy(TcpProxy::new("auto-2", echo.port(), 0).encrypted_compressed()),
    )?;
    let working = wait_working(&range, 2, &[&frps, &frpc])
        .await
        .context("two remotePort = 0 proxies inside allowPorts")?;
    for port in working {
        round_trip(
            port,
            &random_bytes(50_000, u64::from(port)),
            Duration::from_secs(10),
        )
        .await?;
    }
    Ok(())
}

interop_test!(remote_port_zero_picks_allowed_port, remote_port_zero);

/// frps started with flags only (`--allow-ports`) refuses a proxy outside the list; frpc
/// reports frp's error and the allowed proxy works.
async fn allow_ports(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let ports = free_ports(2)?;
    let (allowed, denied) = (ports[0], ports[1]);
    let frps = ctx
        .start_frps_flags(|port| {
            FrpsConfig::new(port)
                .token(TOKEN)
                .allow(PortSpec::Single(allowed))
        })
        .await?;
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .proxy(TcpProxy::new("allowed", echo.port(), allowed))
            .proxy(TcpProxy::new("denied", echo.port(), denied)),
    )?;
    wait_tunnel(allowed, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    frpc.wait_for_log(PORT_NOT_ALLOWED, Duration::from_secs(5))
        .await
        .context("frpc must report the refused proxy")?;
    ensure!(
        tunnel_fails(denied, Duration::from_secs(1)).await,
        "port {denied} is outside allowPorts but serves the proxy"
    );
    frpc.ensure_running()?;
    Ok(())
}

interop_test!(allow_ports_refuses, allow_ports);

/// With `maxPortsPerClient = 2`, two of three proxies work and the third is refused.
async fn max_ports(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let ports = free_ports(3)?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).max_ports_per_client(2))
        .await?;
    let mut config = FrpcConfig::new(frps.port()).token(TOKEN);
    for (i, port) in ports.iter().enumerate() {
        config = config.proxy(TcpProxy::new(&format!("p{i}"), echo.port(), *port));
    }
    let frpc = ctx.start_frpc(&config)?;
    frpc.wait_for_log(EXCEED_MAX_PORTS, TUNNEL_TIMEOUT)
        .await
        .context("frpc must report the proxy over the limit")?;
    wait_working(&ports, 2, &[&frps, &frpc])
        .await
        .context("maxPortsPerClient = 2 with three proxies")?;
    Ok(())
}

interop_test!(max_ports_per_client, max_ports);
