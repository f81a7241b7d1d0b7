//! Load-balancing groups (issue 4): two tcp proxies with the same `loadBalancer.group` and
//! `groupKey`, one from the real frpc and one from ours, share one remote port on frps.
//! Connections reach both; losing either member leaves the other serving, without disturbing
//! a connection already open through it; a member with the wrong key is refused.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use e2e::ports::free_ports;
use e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TOKEN: &str = "group-token";

/// A backend that answers every connection with its one-byte tag, then echoes.
struct Tagged {
    port: u16,
    task: JoinHandle<()>,
}

impl Tagged {
    async fn start(tag: u8) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if c.write_all(&[tag]).await.is_err() {
                        return;
                    }
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { port, task })
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection through the group: the tag of the member's backend that served it.
async fn tag_of(port: u16) -> Result<u8> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tag = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut tag))
        .await
        .context("no answer through the group")??;
    Ok(tag[0])
}

/// Tags of `n` consecutive connections.
async fn tags(port: u16, n: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(tag_of(port).await?);
    }
    Ok(out)
}

/// Polls until `n` consecutive connections all reach members in `want` and, if `all`, every
/// member of `want` is seen.
async fn wait_for_tags(
    port: u16,
    want: &[u8],
    all: bool,
    procs: &[&FrpProcess],
) -> Result<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::from("no attempt");
    while Instant::now() < deadline {
        for p in procs {
            p.ensure_running()?;
        }
        match tags(port, 12).await {
            Ok(t)
                if t.iter().all(|x| want.contains(x))
                    && (!all || want.iter().all(|w| t.contains(w))) =>
            {
                return Ok(t)
            }
            Ok(t) => last = format!("tags {t:?}"),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("group never served exactly {want:?} (all: {all}); last: {last}")
}

fn member(frps_port: u16, name: &str, backend: u16, remote: u16, key: &str) -> FrpcConfig {
    let mut cfg = FrpcConfig::new(frps_port).token(TOKEN);
    cfg.extra.push(format!(
        "[[proxies]]\nname = \"{name}\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {backend}\n\
         remotePort = {remote}\nloadBalancer.group = \"web\"\nloadBalancer.groupKey = \"{key}\"\n"
    ));
    cfg
}

fn other(imp: Impl) -> Impl {
    match imp {
        Impl::Ours => Impl::Real,
        Impl::Real => Impl::Ours,
    }
}

async fn group_survives_member_loss(ctx: Ctx) -> Result<()> {
    let a = Tagged::start(b'A').await?;
    let b = Tagged::start(b'B').await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN))
        .await?;
    let remote = free_ports(1)?[0];
    let imp_a = ctx.combo().frpc;
    let imp_b = other(imp_a);
    let cfg_a = member(frps.port(), "web-a", a.port, remote, "k");
    let cfg_b = member(frps.port(), "web-b", b.port, remote, "k");
    let frpc_a = ctx.start_frpc_impl(imp_a, &cfg_a)?;
    let frpc_b = ctx.start_frpc_impl(imp_b, &cfg_b)?;
    wait_for_tags(remote, b"AB", true, &[&frps, &frpc_a, &frpc_b]).await?;
    if ctx.combo().frps == Impl::Ours {
        // Ours gives each connection to the member with the fewest open ones: 20 connections
        // held open at once split exactly 10/10 (frp picks at random).
        let mut held = Vec::new();
        let mut count_a = 0;
        for _ in 0..20 {
            let mut c = TcpStream::connect(("127.0.0.1", remote)).await?;
            let mut tag = [0u8; 1];
            tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut tag))
                .await
                .context("no answer through the group")??;
            count_a += usize::from(tag[0] == b'A');
            held.push(c);
        }
        ensure!(
            count_a == 10,
            "uneven spread over two members: {count_a} of 20 to A"
        );
    }

    // A long connection through B stays up while A leaves and comes back.
    let mut held = loop {
        let mut c = TcpStream::connect(("127.0.0.1", remote)).await?;
        let mut tag = [0u8; 1];
        c.read_exact(&mut tag).await?;
        if tag[0] == b'B' {
            break c;
        }
    };
    frpc_a.kill();
    wait_for_tags(remote, b"B", false, &[&frps, &frpc_b]).await?;
    let frpc_a2 = ctx.start_frpc_impl(imp_a, &cfg_a)?;
    wait_for_tags(remote, b"AB", true, &[&frps, &frpc_a2, &frpc_b]).await?;
    held.write_all(b"still here").await?;
    let mut back = [0u8; 10];
    tokio::time::timeout(Duration::from_secs(5), held.read_exact(&mut back))
        .await
        .context("held connection stalled")??;
    ensure!(&back == b"still here", "held connection corrupted");

    // A member with the wrong key is refused with frp's error.
    let intruder = ctx.start_frpc(&member(frps.port(), "web-x", a.port, remote, "wrong"))?;
    intruder
        .wait_for_log("group auth failed", Duration::from_secs(15))
        .await?;

    // Losing B leaves A serving.
    drop(frpc_b);
    wait_for_tags(remote, b"A", false, &[&frps, &frpc_a2]).await?;
    frps.ensure_running()?;
    Ok(())
}

interop_test!(group_of_real_and_ours, group_survives_member_loss);
