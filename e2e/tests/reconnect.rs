//! frpc reconnects after frps dies (issue 2, item 6): frps is killed and started again on the
//! same port, and the proxy must work again within a bound. frp re-logs in immediately after
//! a session ends, then backs off 2 s, 4 s, 8 s... (frp `client/service.go`), so 30 s is ample.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use e2e::ports::free_ports;
use e2e::*;

const TOKEN: &str = "reconnect-token";
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

async fn reconnect(ctx: Ctx, tcp_mux: bool) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).tcp_mux(tcp_mux))
        .await?;
    let remote = free_ports(1)?[0];
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tcp_mux(tcp_mux)
            .proxy(TcpProxy::new("survivor", echo.port(), remote).encrypted_compressed()),
    )?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;

    let config = frps.config.clone();
    frps.kill();
    drop(frps);
    ensure!(
        tunnel_fails(remote, Duration::from_secs(1)).await,
        "the proxy still answers after frps was killed"
    );
    frpc.ensure_running()
        .context("frpc must survive losing frps")?;

    let frps = ctx.restart_frps(&config).await?;
    let started = Instant::now();
    wait_tunnel(remote, RECONNECT_TIMEOUT, &[&frps, &frpc])
        .await
        .context("proxy after frps restarted on the same port")?;
    eprintln!("tunnel back {:?} after frps restarted", started.elapsed());
    round_trip(remote, &random_bytes(200_000, 3), Duration::from_secs(10)).await?;
    Ok(())
}

interop_test!(reconnect_mux, |ctx| reconnect(ctx, true));
interop_test!(reconnect_plain, |ctx| reconnect(ctx, false));
