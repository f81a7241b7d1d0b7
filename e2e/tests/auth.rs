//! Token authentication across implementations (issue 2, item 3): a wrong token is refused on
//! both sides, and frps keeps serving good clients afterwards.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::ports::free_ports;
use e2e::*;

/// frp's `LoginResp.error` for a token mismatch (frp `pkg/auth/token.go`); frps logs it and
/// frpc prints what frps sent, so both implementations must use exactly this text.
const TOKEN_MISMATCH: &str = "token in login doesn't match token from configuration";

async fn wrong_token(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token("right"))
        .await?;
    let ports = free_ports(2)?;

    let bad = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token("wrong")
            .login_fail_exit(true)
            .proxy(TcpProxy::new("bad", echo.port(), ports[0])),
    )?;
    let status = bad
        .wait_exit(Duration::from_secs(20))
        .await
        .context("frpc with a wrong token and loginFailExit = true must exit")?;
    ensure_failed_exit(status, bad.label())?;
    ensure_contains(
        &bad.log(),
        TOKEN_MISMATCH,
        "frpc output after a refused login",
    )?;
    frps.wait_for_log(TOKEN_MISMATCH, Duration::from_secs(5))
        .await
        .context("frps must log the refused login")?;
    frps.ensure_running()?;
    anyhow::ensure!(
        tunnel_fails(ports[0], Duration::from_secs(1)).await,
        "the refused client's proxy must not be served"
    );

    let good = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token("right")
            .proxy(TcpProxy::new("good", echo.port(), ports[1])),
    )?;
    wait_tunnel(ports[1], TUNNEL_TIMEOUT, &[&frps, &good])
        .await
        .context("a good client after the refused one")?;
    Ok(())
}

interop_test!(wrong_token_refused, wrong_token);
