//! Our binaries run one current-thread runtime per core ("shards", `transports::shard`), with
//! every task of a connection on the shard that owns its socket. These tests run frps and frpc
//! with three shards each (`TOKIO_WORKER_THREADS=3`) and check that clients are served from
//! every shard (each binary logs, at debug level, the thread it places a connection on) and
//! that the connections moved between runtimes work: with tcpMux the
//! clients' sessions take turns over the shards; without it frpc opens its work connections on
//! the shards in turn. A SIGTERM still stops both cleanly.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use e2e::ports::free_ports;
use e2e::*;

const TOKEN: &str = "shard-token";
const SHARDS: usize = 3;

/// The names of the process's threads.
fn thread_names(pid: u32) -> Result<BTreeSet<String>> {
    let tasks = format!("/proc/{pid}/task");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        let comm = std::fs::read_to_string(entry?.path().join("comm")).unwrap_or_default();
        names.insert(comm.trim().to_owned());
    }
    Ok(names)
}

/// The threads named in the log lines that contain `event` (the binaries log, at debug level,
/// `... on thread <name>` for each connection they place).
fn threads_in_log(log: &str, event: &str) -> BTreeSet<String> {
    log.lines()
        .filter(|l| l.contains(event))
        .filter_map(|l| {
            l.rsplit_once("on thread ")
                .map(|(_, t)| t.trim().to_owned())
        })
        .collect()
}

/// Fails unless `process` runs the shard threads besides its main one and placed `event`s on
/// every one of them.
fn ensure_all_shards_used(process: &FrpProcess, event: &str) -> Result<()> {
    let expected: BTreeSet<String> = std::iter::once("main".to_owned())
        .chain((1..SHARDS).map(|i| format!("shard-{i}")))
        .collect();
    let names = thread_names(process.pid())?;
    let shard_threads: BTreeSet<String> = names
        .iter()
        .filter(|n| n.starts_with("shard-"))
        .cloned()
        .collect();
    ensure!(
        shard_threads.len() == SHARDS - 1,
        "{}: expected {} shard threads, found {names:?}",
        process.label(),
        SHARDS - 1
    );
    let used = threads_in_log(&process.log(), event);
    ensure!(
        used == expected,
        "{}: \"{event}\" placed on {used:?}, not on every one of {expected:?}",
        process.label()
    );
    Ok(())
}

const DEBUG_LOG: &str = "log.level = \"debug\"";

fn debug_log(mut config: FrpsConfig) -> FrpsConfig {
    config.extra.push(DEBUG_LOG.to_owned());
    config
}

/// SIGTERM, then a clean exit within 10 s.
async fn ensure_stops(process: &FrpProcess) -> Result<()> {
    process.terminate()?;
    let status = process.wait_exit(Duration::from_secs(10)).await?;
    ensure!(status.success(), "{} exited with {status}", process.label());
    Ok(())
}

/// Three tcpMux clients: their sessions land on frps's three shards in turn. Bulk data through
/// each at once, byte for byte.
async fn mux_sessions_take_turns(ctx: Ctx) -> Result<()> {
    ctx.set_env("TOKIO_WORKER_THREADS", &SHARDS.to_string());
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| debug_log(FrpsConfig::new(port).token(TOKEN)))
        .await?;
    let ports = free_ports(SHARDS)?;
    let mut clients = Vec::new();
    for (i, &port) in ports.iter().enumerate() {
        let frpc = ctx.start_frpc(
            &FrpcConfig::new(frps.port())
                .token(TOKEN)
                .proxy(TcpProxy::new(&format!("p{i}"), echo.port(), port)),
        )?;
        wait_tunnel(port, TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
        clients.push(frpc);
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        set.spawn(async move {
            concurrent_round_trips(port, 4, 512 * 1024, Duration::from_secs(30))
                .await
                .with_context(|| format!("through client {i}"))
        });
    }
    while let Some(done) = set.join_next().await {
        done.context("round trips panicked")??;
    }
    ensure_all_shards_used(&frps, "is served")?;
    for frpc in &clients {
        ensure_stops(frpc).await?;
    }
    ensure_stops(&frps).await
}

/// Without tcpMux every work connection is a TLS connection of its own: frpc opens them on its
/// shards in turn, frps serves them on the shard its client's control connection is on.
async fn work_connections_spread_without_mux(ctx: Ctx) -> Result<()> {
    ctx.set_env("TOKIO_WORKER_THREADS", &SHARDS.to_string());
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| debug_log(FrpsConfig::new(port).token(TOKEN).tcp_mux(false)))
        .await?;
    let ports = free_ports(2)?;
    let mut config = FrpcConfig::new(frps.port());
    config.extra.push(DEBUG_LOG.to_owned());
    let frpc = ctx.start_frpc(
        &config
            .token(TOKEN)
            .tcp_mux(false)
            .tls(true, true)
            .proxy(TcpProxy::new("plain", echo.port(), ports[0]))
            .proxy(TcpProxy::new("secure", echo.port(), ports[1]).encrypted_compressed()),
    )?;
    wait_tunnel(ports[0], TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    wait_tunnel(ports[1], TUNNEL_TIMEOUT, &[&frps, &frpc]).await?;
    let (a, b) = tokio::join!(
        concurrent_round_trips(ports[0], 6, 512 * 1024, Duration::from_secs(30)),
        concurrent_round_trips(ports[1], 6, 512 * 1024, Duration::from_secs(30)),
    );
    a.context("plain proxy")?;
    b.context("encrypted proxy")?;
    ensure_all_shards_used(&frpc, "opening a work connection")?;
    ensure_stops(&frpc).await?;
    ensure_stops(&frps).await
}

#[test]
fn mux_sessions_spread_over_shards() {
    run(Combo::new(Impl::Ours, Impl::Ours), mux_sessions_take_turns);
}

#[test]
fn no_mux_work_connections_spread_over_shards() {
    run(
        Combo::new(Impl::Ours, Impl::Ours),
        work_connections_spread_without_mux,
    );
}
