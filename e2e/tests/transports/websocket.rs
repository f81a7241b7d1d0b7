//! `transport.protocol = "websocket"` (frps answers `GET /~!frp` on its `bindPort`) and
//! `"wss"`: websocket inside TLS, which frps does not terminate itself, so the tests put
//! [`TlsTerminator`] (a TLS reverse proxy forwarding plain TCP to `bindPort`) in between.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use e2e::*;

use crate::common::{
    check_data, check_tunnels, frpc_with_proxies, remote_ports, Load, DATA_TIMEOUT, TOKEN,
};

/// Websocket with tcpMux on or off (both sides), frpc's TLS on (frp's default: TLS inside the
/// websocket).
async fn websocket(ctx: Ctx, tcp_mux: bool, load: Load) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).tcp_mux(tcp_mux))
        .await?;
    let ports = remote_ports()?;
    let frpc =
        frpc_with_proxies(frps.port(), Protocol::Websocket, echo.port(), ports).tcp_mux(tcp_mux);
    check_tunnels(&ctx, &frps, &frpc, ports, load).await
}

interop_test!(websocket_mux_bulk, |ctx| websocket(ctx, true, Load::Bulk));
interop_test!(websocket_nomux, |ctx| websocket(ctx, false, Load::Light));

/// wss through a TLS-terminating proxy in front of a plain frps:
/// - frpc verifying the proxy's certificate (`trustedCaFile`, `serverName = "localhost"`,
///   which must arrive as the TLS SNI),
/// - frpc without a CA (frp then skips verification),
/// - frpc trusting another CA: its login fails (`loginFailExit`, non-zero exit).
async fn wss(ctx: Ctx) -> Result<()> {
    let good = e2e::tls::generate(ctx.dir(), "wss")?;
    let other = e2e::tls::generate(ctx.dir(), "other")?;
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN))
        .await?;
    let proxy = TlsTerminator::start(&good.server_cert, &good.server_key, frps.port()).await?;

    let verified_ports = remote_ports()?;
    let verified = ctx.start_frpc(
        &frpc_with_proxies(proxy.port(), Protocol::Wss, echo.port(), verified_ports)
            .trusted_ca(good.ca_cert.clone())
            .server_name("localhost"),
    )?;
    let unverified_port = e2e::ports::free_ports(1)?[0];
    let unverified = ctx.start_frpc(
        &FrpcConfig::new(proxy.port())
            .token(TOKEN)
            .protocol(Protocol::Wss)
            .proxy(TcpProxy::new("unverified", echo.port(), unverified_port)),
    )?;
    let [plain, secure] = verified_ports;
    for port in [plain, secure] {
        wait_tunnel(port, TUNNEL_TIMEOUT, &[&frps, &verified])
            .await
            .context("frpc (wss) with trustedCaFile and serverName")?;
    }
    wait_tunnel(unverified_port, TUNNEL_TIMEOUT, &[&frps, &unverified])
        .await
        .context("frpc (wss) without a CA")?;
    check_data(plain, secure, Load::Light).await?;
    round_trip(unverified_port, &random_bytes(256 * 1024, 5), DATA_TIMEOUT)
        .await
        .context("256 KiB through the unverified wss client")?;
    let names = proxy.server_names();
    ensure!(
        names.iter().any(|n| n.as_deref() == Some("localhost")),
        "frpc with serverName = \"localhost\" must send it as TLS SNI; the proxy saw {names:?}"
    );

    let untrusting = ctx.start_frpc(
        &FrpcConfig::new(proxy.port())
            .token(TOKEN)
            .protocol(Protocol::Wss)
            .trusted_ca(other.ca_cert.clone())
            .login_fail_exit(true),
    )?;
    let status = untrusting.wait_exit(Duration::from_secs(20)).await?;
    ensure_failed_exit(status, "frpc (wss) trusting another CA")?;

    round_trip(plain, &random_bytes(64 * 1024, 6), DATA_TIMEOUT)
        .await
        .context("the verified client's proxy after the refused one")?;
    frps.ensure_running()?;
    verified.ensure_running()?;
    unverified.ensure_running()?;
    Ok(())
}

interop_test!(wss_through_tls_proxy, wss);
