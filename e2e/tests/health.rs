//! Health checks (issue 4): a proxy with `healthCheck.type = "tcp"` (and `"http"`) is closed on
//! frps when its local service dies and registered again when it comes back, including on the
//! real frps (ours as frpc) and with the real frpc on our frps.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use e2e::ports::{free_port, free_ports};
use e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TOKEN: &str = "health-token";

/// A local service on a fixed port that can be stopped and started again. With `http`, it
/// answers `GET` with `200 OK` (and echoes nothing); without, it echoes.
struct Backend {
    port: u16,
    http: bool,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    async fn start(port: u16, http: bool) -> Result<Self> {
        let mut b = Self {
            port,
            http,
            task: None,
        };
        b.up().await?;
        Ok(b)
    }

    async fn up(&mut self) -> Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        let http = self.http;
        self.task = Some(tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    if http {
                        let _ = c.read(&mut buf).await;
                        let _ = c
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                            .await;
                        return;
                    }
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }));
        Ok(())
    }

    fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.down();
    }
}

/// Whether frps accepts connections on the proxy's remote port.
async fn remote_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).await.is_ok()
}

async fn wait_remote(
    port: u16,
    open: bool,
    within: Duration,
    procs: &[&FrpProcess],
) -> Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        for p in procs {
            p.ensure_running()?;
        }
        if remote_open(port).await == open {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "remote port {port} did not become {} within {within:?}",
        if open { "open" } else { "closed" }
    )
}

async fn removed_and_restored(ctx: Ctx, http: bool) -> Result<()> {
    let local = free_port()?;
    let mut backend = Backend::start(local, http).await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN))
        .await?;
    let remote = free_ports(1)?[0];
    let check = if http {
        "healthCheck.type = \"http\"\nhealthCheck.path = \"/status\"\n"
    } else {
        "healthCheck.type = \"tcp\"\n"
    };
    let mut cfg = FrpcConfig::new(frps.port()).token(TOKEN);
    cfg.extra.push(format!(
        "[[proxies]]\nname = \"checked\"\ntype = \"tcp\"\nlocalIP = \"127.0.0.1\"\nlocalPort = {local}\n\
         remotePort = {remote}\n{check}healthCheck.intervalSeconds = 1\nhealthCheck.timeoutSeconds = 1\n\
         healthCheck.maxFailed = 2\n"
    ));
    let frpc = ctx.start_frpc(&cfg)?;
    wait_remote(remote, true, Duration::from_secs(15), &[&frps, &frpc]).await?;
    if !http {
        round_trip(remote, &random_bytes(64 * 1024, 7), Duration::from_secs(10)).await?;
    }

    // interval 1 s × maxFailed 2, plus a check timeout and the status round trip.
    backend.down();
    let gone = wait_remote(remote, false, Duration::from_secs(10), &[&frps, &frpc]).await?;
    eprintln!("proxy closed {gone:?} after the backend died");

    backend.up().await?;
    wait_remote(remote, true, Duration::from_secs(15), &[&frps, &frpc]).await?;
    if !http {
        round_trip(remote, &random_bytes(64 * 1024, 8), Duration::from_secs(10)).await?;
    }
    frps.ensure_running()?;
    frpc.ensure_running()?;
    Ok(())
}

async fn tcp_check(ctx: Ctx) -> Result<()> {
    removed_and_restored(ctx, false).await
}

async fn http_check(ctx: Ctx) -> Result<()> {
    removed_and_restored(ctx, true).await
}

interop_test!(health_tcp, tcp_check);
interop_test!(health_http, http_check);
