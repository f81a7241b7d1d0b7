//! tcp proxy interop: round trips over every tcpMux × TLS transport (issue 2, item 1), bulk and
//! concurrent data (item 2), and the per-proxy bandwidth limit.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use e2e::ports::free_ports;
use e2e::*;

const TOKEN: &str = "e2e-token";

/// One frpc ↔ frps transport setting.
#[derive(Debug, Clone, Copy)]
struct Transport {
    tcp_mux: bool,
    /// frpc `transport.tls.enable`.
    tls: bool,
    /// Send frp's 0x17 byte before the ClientHello (`disableCustomTLSFirstByte = false`).
    custom_first_byte: bool,
    /// frps `transport.tls.force`.
    force: bool,
}

/// Two proxies to one echo backend, one plain and one with `useEncryption` +
/// `useCompression`, both checked byte for byte over `t`.
async fn tcp_round_trip(ctx: Ctx, t: Transport) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| {
            FrpsConfig::new(port)
                .token(TOKEN)
                .tcp_mux(t.tcp_mux)
                .tls_force(t.force)
        })
        .await?;
    let ports = free_ports(2)?;
    let (plain, secure) = (ports[0], ports[1]);
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tcp_mux(t.tcp_mux)
            .tls(t.tls, t.custom_first_byte)
            .proxy(TcpProxy::new("plain", echo.port(), plain))
            .proxy(TcpProxy::new("secure", echo.port(), secure).encrypted_compressed()),
    )?;
    wait_tunnel(plain, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    wait_tunnel(secure, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;

    let timeout = Duration::from_secs(20);
    round_trip(plain, &random_bytes(512 * 1024, 1), timeout)
        .await
        .context("plain proxy")?;
    round_trip(secure, &random_bytes(512 * 1024, 2), timeout)
        .await
        .context("encrypted+compressed proxy, random data")?;
    // Highly compressible data exercises snappy's compressed chunks, not only literal ones.
    let text: Vec<u8> = b"frp interop "
        .iter()
        .copied()
        .cycle()
        .take(300_000)
        .collect();
    round_trip(secure, &text, timeout)
        .await
        .context("encrypted+compressed proxy, compressible data")?;

    if t.force {
        // frps with tls.force must refuse a plaintext client: with loginFailExit it exits non-zero.
        let plain_client = ctx.start_frpc(
            &FrpcConfig::new(frps.port())
                .token(TOKEN)
                .tcp_mux(t.tcp_mux)
                .tls(false, false)
                .login_fail_exit(true),
        )?;
        let status = plain_client.wait_exit(Duration::from_secs(20)).await?;
        ensure_failed_exit(status, "plaintext frpc against frps with tls.force")?;
        round_trip(plain, b"still fine", timeout)
            .await
            .context("tunnel after the refused plaintext client")?;
    }
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

const fn transport(tcp_mux: bool, tls: bool, custom_first_byte: bool, force: bool) -> Transport {
    Transport {
        tcp_mux,
        tls,
        custom_first_byte,
        force,
    }
}

interop_test!(mux_tls, |ctx| tcp_round_trip(
    ctx,
    transport(true, true, true, false)
));
interop_test!(mux_plain, |ctx| tcp_round_trip(
    ctx,
    transport(true, false, false, false)
));
interop_test!(nomux_tls, |ctx| tcp_round_trip(
    ctx,
    transport(false, true, true, false)
));
interop_test!(nomux_plain, |ctx| tcp_round_trip(
    ctx,
    transport(false, false, false, false)
));
// frp's defaults for frpc (plain ClientHello, first byte 0x16) against an frps that refuses
// anything but TLS.
interop_test!(mux_tls_default_first_byte_forced, |ctx| tcp_round_trip(
    ctx,
    transport(true, true, false, true)
));

/// 8 MiB through one connection and 16 concurrent connections with their own data, over a
/// plain and an encrypted+compressed proxy, with a work-connection pool and privilege keys on
/// heartbeats and work connections (`auth.additionalScopes`).
async fn bulk(ctx: Ctx) -> Result<()> {
    const SCOPES: &[&str] = &["HeartBeats", "NewWorkConns"];
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).additional_scopes(SCOPES))
        .await?;
    let ports = free_ports(2)?;
    let (plain, secure) = (ports[0], ports[1]);
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .additional_scopes(SCOPES)
            .pool_count(5)
            .proxy(TcpProxy::new("bulk", echo.port(), plain))
            .proxy(TcpProxy::new("bulk-ec", echo.port(), secure).encrypted_compressed()),
    )?;
    wait_tunnel(plain, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    wait_tunnel(secure, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;

    let timeout = Duration::from_secs(40);
    round_trip(plain, &random_bytes(8 << 20, 11), timeout)
        .await
        .context("8 MiB through the plain proxy")?;
    round_trip(secure, &random_bytes(2 << 20, 12), timeout)
        .await
        .context("2 MiB through the encrypted+compressed proxy")?;
    concurrent_round_trips(plain, 16, 256 * 1024, timeout)
        .await
        .context("16 concurrent connections, plain proxy")?;
    concurrent_round_trips(secure, 16, 64 * 1024, timeout)
        .await
        .context("16 concurrent connections, encrypted+compressed proxy")?;
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

interop_test!(bulk_data, bulk);

/// `transport.bandwidthLimit` slows a proxy down (frp enforces it in frpc by default,
/// `bandwidthLimitMode = "client"`) without corrupting data.
async fn bandwidth_limit(ctx: Ctx) -> Result<()> {
    limited_round_trip(ctx, false).await
}

/// The same limit enforced by frps (`bandwidthLimitMode = "server"`, sent in `NewProxy`).
async fn bandwidth_limit_server(ctx: Ctx) -> Result<()> {
    limited_round_trip(ctx, true).await
}

async fn limited_round_trip(ctx: Ctx, on_server: bool) -> Result<()> {
    const LIMIT_BYTES: usize = 256 * 1024;
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN))
        .await?;
    let remote = free_ports(1)?[0];
    let frpc = ctx.start_frpc(&FrpcConfig::new(frps.port()).token(TOKEN).proxy({
        let p = TcpProxy::new("limited", echo.port(), remote).bandwidth_limit("256KB");
        if on_server {
            p.limit_on_server()
        } else {
            p
        }
    }))?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    // Twice the limit each way: at least ~1 s even if each direction had its own limiter
    // with a one-second burst (frp shares one limiter, which takes ~3 s).
    let started = Instant::now();
    round_trip(
        remote,
        &random_bytes(2 * LIMIT_BYTES, 21),
        Duration::from_secs(30),
    )
    .await?;
    let elapsed = started.elapsed();
    eprintln!("bandwidth-limited round trip took {elapsed:?}");
    ensure!(
        elapsed >= Duration::from_millis(800),
        "{} KiB each way through a 256KB/s proxy took only {elapsed:?}",
        2 * LIMIT_BYTES / 1024
    );
    Ok(())
}

interop_test!(bandwidth, bandwidth_limit);
interop_test!(bandwidth_server_mode, bandwidth_limit_server);

/// frps with its own certificate (`transport.tls.certFile`/`keyFile`, `force`); frpc verifies
/// it with `trustedCaFile` (server name defaults to `serverAddr`, here the IP 127.0.0.1, and
/// then `localhost` via `serverName`). A client trusting another CA must fail to log in.
async fn tls_verified(ctx: Ctx) -> Result<()> {
    let good = e2e::tls::generate(ctx.dir(), "good")?;
    let other = e2e::tls::generate(ctx.dir(), "other")?;
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| {
            FrpsConfig::new(port)
                .token(TOKEN)
                .tls_force(true)
                .tls_cert(good.server_cert.clone(), good.server_key.clone())
        })
        .await?;
    let ports = free_ports(2)?;
    let by_ip = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tls(true, true)
            .trusted_ca(good.ca_cert.clone())
            .proxy(TcpProxy::new("by-ip", echo.port(), ports[0]).encrypted_compressed()),
    )?;
    let by_name = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tls(true, false)
            .trusted_ca(good.ca_cert.clone())
            .server_name("localhost")
            .proxy(TcpProxy::new("by-name", echo.port(), ports[1])),
    )?;
    wait_tunnel(ports[0], TUNNEL_TIMEOUT, &[&frps, &by_ip]).await?;
    wait_tunnel(ports[1], TUNNEL_TIMEOUT, &[&frps, &by_name]).await?;
    round_trip(
        ports[0],
        &random_bytes(256 * 1024, 31),
        Duration::from_secs(20),
    )
    .await?;

    let untrusting = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tls(true, false)
            .trusted_ca(other.ca_cert.clone())
            .login_fail_exit(true),
    )?;
    let status = untrusting.wait_exit(Duration::from_secs(20)).await?;
    ensure_failed_exit(status, "frpc trusting another CA")?;
    frps.ensure_running()?;
    Ok(())
}

interop_test!(tls_server_cert_verified, tls_verified);

/// Mutual TLS: frps with `trustedCaFile` requires a client certificate from that CA (and forces
/// TLS); frpc presents `certFile`/`keyFile` and verifies frps in turn. A client without a
/// certificate, or with one from another CA, is refused.
async fn tls_mutual(ctx: Ctx) -> Result<()> {
    let good = e2e::tls::generate(ctx.dir(), "good")?;
    let other = e2e::tls::generate(ctx.dir(), "other")?;
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| {
            let mut cfg = FrpsConfig::new(port)
                .token(TOKEN)
                .tls_cert(good.server_cert.clone(), good.server_key.clone());
            cfg.extra.push(format!(
                "transport.tls.trustedCaFile = {:?}\n",
                good.ca_cert.display().to_string()
            ));
            cfg
        })
        .await?;
    let client_cert = |files: &e2e::tls::TlsFiles| {
        vec![
            format!(
                "transport.tls.certFile = {:?}\n",
                files.client_cert.display().to_string()
            ),
            format!(
                "transport.tls.keyFile = {:?}\n",
                files.client_key.display().to_string()
            ),
        ]
    };
    let remote = free_ports(1)?[0];
    let mut cfg = FrpcConfig::new(frps.port())
        .token(TOKEN)
        .tls(true, false)
        .trusted_ca(good.ca_cert.clone())
        .proxy(TcpProxy::new("mtls", echo.port(), remote));
    cfg.extra.extend(client_cert(&good));
    let frpc = ctx.start_frpc(&cfg)?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    round_trip(
        remote,
        &random_bytes(256 * 1024, 41),
        Duration::from_secs(20),
    )
    .await?;

    for (label, certs) in [
        ("no client certificate", None),
        ("a foreign client certificate", Some(&other)),
    ] {
        let mut cfg = FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tls(true, false)
            .trusted_ca(good.ca_cert.clone())
            .login_fail_exit(true);
        if let Some(files) = certs {
            cfg.extra.extend(client_cert(files));
        }
        let refused = ctx.start_frpc(&cfg)?;
        let status = refused.wait_exit(Duration::from_secs(20)).await?;
        ensure_failed_exit(status, &format!("frpc with {label}"))?;
    }
    frps.ensure_running()?;
    round_trip(
        remote,
        &random_bytes(64 * 1024, 42),
        Duration::from_secs(20),
    )
    .await?;
    Ok(())
}

interop_test!(tls_mutual_verified, tls_mutual);

/// A burst of 300 user connections at once with no pooled work connections: every one needs
/// its own `ReqWorkConn`, more than the control queue holds (frps must wait for room, as frp's
/// blocking send does, not fail the user connection), for tcpMux on and off.
async fn burst(ctx: Ctx, tcp_mux: bool) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).tcp_mux(tcp_mux))
        .await?;
    let port = free_ports(1)?[0];
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tcp_mux(tcp_mux)
            .proxy(TcpProxy::new("burst", echo.port(), port)),
    )?;
    wait_tunnel(port, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    concurrent_round_trips(port, 300, 4096, Duration::from_secs(60))
        .await
        .context("300 simultaneous connections")?;
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

interop_test!(burst_mux, |ctx| burst(ctx, true));
interop_test!(burst_nomux, |ctx| burst(ctx, false));
