//! Backends and traffic checks: a tokio TCP echo server, byte-for-byte round trips through a
//! tunnel, and "wait until the tunnel works".

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::{rngs::StdRng, RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::process::FrpProcess;

/// A TCP echo server on 127.0.0.1 (OS-chosen port); stops when dropped.
#[derive(Debug)]
pub struct EchoServer {
    port: u16,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Binds `127.0.0.1:0` and starts echoing on every accepted connection.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the echo server")?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                conns.spawn(echo(stream));
            }
        });
        Ok(Self { port, task })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn echo(mut stream: TcpStream) {
    let (mut r, mut w) = stream.split();
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// `len` pseudo-random bytes from `seed` (reproducible, distinct per seed).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    data
}

/// Connects to `127.0.0.1:port`, sends `data` while reading the same number of bytes back, and
/// checks they are identical; the whole exchange must finish within `timeout`.
pub async fn round_trip(port: u16, data: &[u8], timeout: Duration) -> Result<()> {
    tokio::time::timeout(timeout, round_trip_inner(port, data))
        .await
        .map_err(|_| {
            anyhow!(
                "round trip of {} bytes via port {port} timed out after {timeout:?}",
                data.len()
            )
        })?
}

async fn round_trip_inner(port: u16, data: &[u8]) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let (mut r, mut w) = stream.split();
    let mut back = vec![0u8; data.len()];
    let write = async {
        w.write_all(data).await?;
        w.flush().await
    };
    let read = r.read_exact(&mut back);
    let (wrote, read) = tokio::join!(write, read);
    wrote.with_context(|| format!("writing {} bytes to port {port}", data.len()))?;
    read.with_context(|| format!("reading {} echoed bytes from port {port}", data.len()))?;
    if let Some(at) = data.iter().zip(&back).position(|(a, b)| a != b) {
        bail!(
            "echo via port {port} differs at byte {at} of {} (sent {:#04x}, got {:#04x})",
            data.len(),
            data[at],
            back[at]
        );
    }
    Ok(())
}

/// Runs `conns` round trips at once through `port`, each with its own `bytes_each` random
/// bytes, all within `timeout`.
pub async fn concurrent_round_trips(
    port: u16,
    conns: usize,
    bytes_each: usize,
    timeout: Duration,
) -> Result<()> {
    let mut set = JoinSet::new();
    for i in 0..conns {
        let data = random_bytes(bytes_each, 1000 + i as u64);
        set.spawn(async move {
            round_trip(port, &data, timeout)
                .await
                .with_context(|| format!("connection {i} of {conns}"))
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.context("round trip task panicked")??;
    }
    Ok(())
}

/// Retries a small round trip through `port` until it works, for at most `timeout`; fails
/// early, with the log tail, if a process in `watch` exits meanwhile.
pub async fn wait_tunnel(port: u16, timeout: Duration, watch: &[&FrpProcess]) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let probe = random_bytes(64, u64::from(port));
    let mut last_err = anyhow!("no attempt made");
    loop {
        for p in watch {
            p.ensure_running()
                .with_context(|| format!("waiting for the tunnel on port {port}"))?;
        }
        match round_trip(port, &probe, Duration::from_secs(2)).await {
            Ok(()) => return Ok(()),
            Err(e) => last_err = e,
        }
        if Instant::now() >= deadline {
            return Err(last_err.context(format!(
                "tunnel on port {port} did not work within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True when no echo comes back through `port` within `within` (refused, closed or silent).
pub async fn tunnel_fails(port: u16, within: Duration) -> bool {
    round_trip(port, b"ping", within).await.is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echo_round_trips() {
        let echo = EchoServer::start().await.expect("echo");
        let data = random_bytes(300_000, 7);
        round_trip(echo.port(), &data, Duration::from_secs(10))
            .await
            .expect("round trip");
        concurrent_round_trips(echo.port(), 8, 10_000, Duration::from_secs(10))
            .await
            .expect("concurrent");
        wait_tunnel(echo.port(), Duration::from_secs(2), &[])
            .await
            .expect("tunnel");
    }

    #[tokio::test]
    async fn closed_port_fails() {
        let port = crate::ports::free_port().expect("port");
        assert!(tunnel_fails(port, Duration::from_secs(1)).await);
        let err = wait_tunnel(port, Duration::from_millis(300), &[])
            .await
            .expect_err("nothing there");
        assert!(err.to_string().contains("did not work"), "{err}");
    }

    #[test]
    fn random_is_reproducible() {
        assert_eq!(random_bytes(32, 1), random_bytes(32, 1));
        assert_ne!(random_bytes(32, 1), random_bytes(32, 2));
    }
}
