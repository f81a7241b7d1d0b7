//! What every transport must carry: byte-exact round trips through a plain and an
//! encrypted + compressed tcp proxy, bulk data and concurrent connections.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::ports::free_ports;
use e2e::*;

/// Shared by frps and every frpc of these tests.
pub const TOKEN: &str = "transport-token";

/// Bound on one data exchange (KCP through frp adds ~20 ms per round trip, so even the bulk
/// transfers finish in a few seconds; this only catches a stall).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(40);

/// How much data one scenario pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Round trips of a few hundred KiB and 16 concurrent connections of 32 KiB each.
    Light,
    /// `Light`, plus 6 MiB through one connection and 16 concurrent connections of 256 KiB.
    Bulk,
}

/// An frpc config for `frps_port` over `protocol` with two proxies to `echo_port`: `plain` on
/// remote port `ports[0]` and `secure` (`useEncryption` + `useCompression`) on `ports[1]`.
pub fn frpc_with_proxies(
    server_port: u16,
    protocol: Protocol,
    echo_port: u16,
    ports: [u16; 2],
) -> FrpcConfig {
    FrpcConfig::new(server_port)
        .token(TOKEN)
        .protocol(protocol)
        .proxy(TcpProxy::new("plain", echo_port, ports[0]))
        .proxy(TcpProxy::new("secure", echo_port, ports[1]).encrypted_compressed())
}

/// Two free remote ports for [`frpc_with_proxies`].
pub fn remote_ports() -> Result<[u16; 2]> {
    let ports = free_ports(2)?;
    Ok([ports[0], ports[1]])
}

/// Starts `frpc`, waits until both proxies of [`frpc_with_proxies`] answer, then checks the
/// data `load` asks for, and that both processes are still running afterwards.
pub async fn check_tunnels(
    ctx: &Ctx,
    frps: &FrpProcess,
    frpc: &FrpcConfig,
    ports: [u16; 2],
    load: Load,
) -> Result<()> {
    check_tunnels_settled(ctx, frps, frpc, ports, load, Duration::ZERO).await
}

/// [`check_tunnels`], pausing `settle` between the tunnels working and the data checks (to
/// let frpc fill its work-connection pool).
pub async fn check_tunnels_settled(
    ctx: &Ctx,
    frps: &FrpProcess,
    frpc: &FrpcConfig,
    ports: [u16; 2],
    load: Load,
    settle: Duration,
) -> Result<()> {
    let frpc = ctx.start_frpc(frpc)?;
    let [plain, secure] = ports;
    wait_tunnel(plain, TUNNEL_TIMEOUT, &[frps, &frpc])
        .await
        .context("plain proxy")?;
    wait_tunnel(secure, TUNNEL_TIMEOUT, &[frps, &frpc])
        .await
        .context("encrypted+compressed proxy")?;
    tokio::time::sleep(settle).await;
    check_data(plain, secure, load).await?;
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

/// The data checks of [`check_tunnels`] on already working proxies.
pub async fn check_data(plain: u16, secure: u16, load: Load) -> Result<()> {
    round_trip(plain, &random_bytes(256 * 1024, 1), DATA_TIMEOUT)
        .await
        .context("256 KiB through the plain proxy")?;
    round_trip(secure, &random_bytes(256 * 1024, 2), DATA_TIMEOUT)
        .await
        .context("256 KiB of random data through the encrypted+compressed proxy")?;
    // Compressible text exercises snappy's compressed chunks, not only literal ones.
    let text: Vec<u8> = b"frp transports "
        .iter()
        .copied()
        .cycle()
        .take(200_000)
        .collect();
    round_trip(secure, &text, DATA_TIMEOUT)
        .await
        .context("compressible text through the encrypted+compressed proxy")?;
    concurrent_round_trips(plain, 16, 32 * 1024, DATA_TIMEOUT)
        .await
        .context("16 concurrent connections of 32 KiB, plain proxy")?;
    concurrent_round_trips(secure, 16, 32 * 1024, DATA_TIMEOUT)
        .await
        .context("16 concurrent connections of 32 KiB, encrypted+compressed proxy")?;
    if load == Load::Bulk {
        round_trip(plain, &random_bytes(6 << 20, 3), DATA_TIMEOUT)
            .await
            .context("6 MiB through the plain proxy")?;
        round_trip(secure, &random_bytes(1 << 20, 4), DATA_TIMEOUT)
            .await
            .context("1 MiB through the encrypted+compressed proxy")?;
        concurrent_round_trips(plain, 16, 256 * 1024, DATA_TIMEOUT)
            .await
            .context("16 concurrent connections of 256 KiB, plain proxy")?;
    }
    Ok(())
}

/// Whether `line` names `transport` (any case) and `addr`, as the issue asks of a transport
/// error ("one log line naming the transport, the address and the cause").
pub fn names_transport_and_addr(line: &str, transport: &str, addr: &str) -> bool {
    line.to_lowercase().contains(transport) && line.contains(addr)
}
