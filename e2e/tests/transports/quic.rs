//! `transport.protocol = "quic"`: frpc reaches frps over QUIC on UDP `quicBindPort` (a port of
//! its own here). QUIC always uses TLS (ALPN `frp`) and carries each frp connection on its own
//! stream, so `tcpMux` plays no part.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use e2e::ports::free_ports;
use e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{
    check_tunnels, frpc_with_proxies, names_transport_and_addr, remote_ports, Load, DATA_TIMEOUT,
    TOKEN,
};

/// Round trips, bulk data and concurrent connections over QUIC with frp's defaults.
async fn quic_bulk(ctx: Ctx) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps_udp(|bind, udp| FrpsConfig::new(bind).token(TOKEN).quic_bind_port(udp))
        .await?;
    let quic_port = frps.config.quic_bind_port.context("quicBindPort")?;
    let ports = remote_ports()?;
    let frpc = frpc_with_proxies(quic_port, Protocol::Quic, echo.port(), ports);
    check_tunnels(&ctx, &frps, &frpc, ports, Load::Bulk).await
}

interop_test!(quic_bulk_data, quic_bulk);

/// `transport.quic.*` on both sides: with `keepalivePeriod = 1` and `maxIdleTimeout = 3`, a
/// proxied connection left idle for longer than the idle timeout still works, because the
/// keepalives hold the QUIC connection open (without them it would be closed after 3 s and
/// the connection, a stream on it, would die with it).
async fn quic_keepalive(ctx: Ctx) -> Result<()> {
    let options = QuicOptions::new(1, 3, 1000);
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps_udp(|bind, udp| {
            FrpsConfig::new(bind)
                .token(TOKEN)
                .quic_bind_port(udp)
                .quic(options)
        })
        .await?;
    let quic_port = frps.config.quic_bind_port.context("quicBindPort")?;
    let remote = free_ports(1)?[0];
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(quic_port)
            .token(TOKEN)
            .protocol(Protocol::Quic)
            .quic(options)
            .proxy(TcpProxy::new("idle", echo.port(), remote)),
    )?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;

    let mut conn = TcpStream::connect(("127.0.0.1", remote))
        .await
        .with_context(|| format!("connecting to the proxy on {remote}"))?;
    echo_on(&mut conn, b"before the idle period").await?;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    echo_on(&mut conn, b"after 4.5 s idle, past maxIdleTimeout = 3")
        .await
        .context("the proxied connection did not survive an idle period (QUIC keepalive)")?;
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

interop_test!(quic_options_keepalive, quic_keepalive);

/// Sends `msg` on `conn` and expects it echoed back within 5 s.
async fn echo_on(conn: &mut TcpStream, msg: &[u8]) -> Result<()> {
    let exchange = async {
        conn.write_all(msg).await?;
        let mut back = vec![0u8; msg.len()];
        conn.read_exact(&mut back).await?;
        anyhow::Ok(back)
    };
    let back = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("no echo within 5 s")??;
    if back != msg {
        bail!("echo differs: sent {msg:?}, got {back:?}");
    }
    Ok(())
}

/// frps presents a certificate from one CA on QUIC; an frpc trusting that CA
/// (`transport.tls.trustedCaFile`) gets through, one trusting another CA fails its login
/// (with `loginFailExit` it exits non-zero). Ours must say why in one line naming quic, the
/// address and the certificate.
async fn quic_cert_mismatch(ctx: Ctx) -> Result<()> {
    let good = e2e::tls::generate(ctx.dir(), "good")?;
    let other = e2e::tls::generate(ctx.dir(), "other")?;
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps_udp(|bind, udp| {
            FrpsConfig::new(bind)
                .token(TOKEN)
                .quic_bind_port(udp)
                .tls_cert(good.server_cert.clone(), good.server_key.clone())
        })
        .await?;
    let quic_port = frps.config.quic_bind_port.context("quicBindPort")?;
    let remote = free_ports(1)?[0];
    let trusting = ctx.start_frpc(
        &FrpcConfig::new(quic_port)
            .token(TOKEN)
            .protocol(Protocol::Quic)
            .trusted_ca(good.ca_cert.clone())
            .proxy(TcpProxy::new("verified", echo.port(), remote)),
    )?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &trusting]).await?;

    let untrusting = ctx.start_frpc(
        &FrpcConfig::new(quic_port)
            .token(TOKEN)
            .protocol(Protocol::Quic)
            .trusted_ca(other.ca_cert.clone())
            .login_fail_exit(true),
    )?;
    let status = untrusting.wait_exit(Duration::from_secs(20)).await?;
    ensure_failed_exit(status, "frpc (quic) trusting another CA")?;
    if ctx.combo().frpc == Impl::Ours {
        // frp itself only prints quic-go's error ("CRYPTO_ERROR ...: tls: failed to verify
        // certificate ..."), without the transport or the address; ours must name both.
        let addr = format!("127.0.0.1:{quic_port}");
        let log = untrusting.log();
        if !log.lines().any(|l| {
            names_transport_and_addr(l, "quic", &addr) && l.to_lowercase().contains("certificate")
        }) {
            bail!(
                "frpc (ours) must log one line naming \"quic\", {addr:?} and the certificate \
                 problem when frps's certificate is not trusted; its log:\n{log}"
            );
        }
    }

    round_trip(remote, &random_bytes(128 * 1024, 9), DATA_TIMEOUT)
        .await
        .context("the trusting client's proxy after the refused one")?;
    frps.ensure_running()?;
    trusting.ensure_running()?;
    Ok(())
}

interop_test!(quic_untrusted_certificate, quic_cert_mismatch);
