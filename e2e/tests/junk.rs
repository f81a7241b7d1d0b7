//! frps robustness against junk on its bind port (issue 2, item 5): random bytes, frames
//! with absurd lengths, TLS garbage and silent connections, after which a real client still
//! gets through. With `tcpMux` off the junk reaches frp's message framing directly
//! (1 type byte + int64 big-endian length, at most 10240 bytes); with it on, yamux's.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use e2e::ports::free_ports;
use e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "junk-token";
/// How long frps gets to drop a connection it must reject.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// One junk connection: what it sends and whether frps must close it.
struct Junk {
    name: &'static str,
    bytes: Vec<u8>,
    /// frps must close the connection (EOF or reset) within `CLOSE_TIMEOUT`.
    must_close: bool,
}

/// A frp v1 frame header: type byte + big-endian int64 length.
fn frame_header(kind: u8, len: i64) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&len.to_be_bytes());
    out
}

/// A hashicorp yamux header: version, type, flags, stream id, length.
fn yamux_header(kind: u8, flags: u16, stream: u32, len: u32) -> Vec<u8> {
    let mut out = vec![0, kind];
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out
}

fn tls_garbage() -> Vec<Junk> {
    let mut custom = vec![0x17];
    custom.extend(random_bytes(2048, 3));
    // A TLS handshake record header announcing a ClientHello, then noise.
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c];
    record.extend(random_bytes(60, 4));
    vec![
        Junk {
            name: "0x17 then random bytes",
            bytes: custom,
            must_close: true,
        },
        Junk {
            name: "TLS record with a garbage ClientHello",
            bytes: record,
            must_close: true,
        },
    ]
}

fn plain_junk() -> Vec<Junk> {
    let mut oversized = frame_header(b'o', 1 << 40);
    oversized.extend_from_slice(b"{\"version\":");
    let mut over_limit = frame_header(b'o', 10_241);
    over_limit.extend(std::iter::repeat_n(b' ', 64));
    let mut bad_json = frame_header(b'o', 16);
    bad_json.extend_from_slice(b"{not json at all");
    // frps sniffs the first 10 bytes of a connection before dispatching it (golib `net/mux`),
    // so every probe sends at least that many.
    let mut negative = frame_header(b'o', -1);
    negative.extend_from_slice(b"{}");
    let mut unknown_type = frame_header(b'Z', 2);
    unknown_type.extend_from_slice(b"{}");
    let mut junk = vec![
        Junk {
            name: "random bytes",
            bytes: random_bytes(4096, 1),
            must_close: false,
        },
        Junk {
            name: "length 2^40",
            bytes: oversized,
            must_close: true,
        },
        Junk {
            name: "length 10241 (over frp's limit)",
            bytes: over_limit,
            must_close: true,
        },
        Junk {
            name: "negative length",
            bytes: negative,
            must_close: true,
        },
        Junk {
            name: "Login with invalid JSON",
            bytes: bad_json,
            must_close: true,
        },
        Junk {
            name: "unknown message type",
            bytes: unknown_type,
            must_close: true,
        },
    ];
    junk.extend(tls_garbage());
    junk
}

fn mux_junk() -> Vec<Junk> {
    // A data frame opening stream 1 and announcing 4 GiB: beyond the receive window.
    let mut huge = yamux_header(0, 1, 1, u32::MAX);
    huge.extend(random_bytes(1024, 5));
    let mut bad_version = yamux_header(0, 1, 1, 4);
    bad_version[0] = 9;
    bad_version.extend_from_slice(b"abcd");
    // A well-formed stream carrying an frp frame with an absurd length.
    let inner = frame_header(b'o', 1 << 40);
    let mut framed = yamux_header(0, 1, 1, inner.len() as u32);
    framed.extend(inner);
    let mut junk = vec![
        Junk {
            name: "random bytes",
            bytes: random_bytes(4096, 1),
            must_close: false,
        },
        Junk {
            name: "yamux frame of 4 GiB",
            bytes: huge,
            must_close: true,
        },
        Junk {
            name: "yamux version 9",
            bytes: bad_version,
            must_close: true,
        },
        Junk {
            name: "yamux stream with frp length 2^40",
            bytes: framed,
            must_close: false,
        },
    ];
    junk.extend(tls_garbage());
    junk
}

/// Sends `junk` on a fresh connection; if it must be rejected, waits for frps to close it.
async fn send_junk(port: u16, junk: &Junk) -> Result<()> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to frps for {:?}", junk.name))?;
    // frps may close before reading everything: a failed write is fine.
    let _ = conn.write_all(&junk.bytes).await;
    if !junk.must_close {
        return Ok(());
    }
    let mut buf = vec![0u8; 4096];
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // e.g. a TLS alert; keep reading until the close
            }
        }
    })
    .await;
    if closed.is_err() {
        bail!(
            "frps kept the connection open {CLOSE_TIMEOUT:?} after {:?}",
            junk.name
        );
    }
    Ok(())
}

async fn junk_then_client(ctx: Ctx, tcp_mux: bool) -> Result<()> {
    let echo = EchoServer::start().await?;
    let frps = ctx
        .start_frps(|port| FrpsConfig::new(port).token(TOKEN).tcp_mux(tcp_mux))
        .await?;
    // Connections that never speak (or stop mid-frame) stay open while the client logs in.
    let silent = TcpStream::connect(("127.0.0.1", frps.port())).await?;
    let mut stalled = TcpStream::connect(("127.0.0.1", frps.port())).await?;
    let mut partial = frame_header(b'o', 100);
    partial.extend_from_slice(b"{\"ver");
    stalled.write_all(&partial).await?;

    let junk = if tcp_mux { mux_junk() } else { plain_junk() };
    for j in &junk {
        send_junk(frps.port(), j).await?;
        frps.ensure_running()
            .with_context(|| format!("after {:?}", j.name))?;
    }

    let remote = free_ports(1)?[0];
    let frpc = ctx.start_frpc(
        &FrpcConfig::new(frps.port())
            .token(TOKEN)
            .tcp_mux(tcp_mux)
            .proxy(TcpProxy::new("after-junk", echo.port(), remote)),
    )?;
    wait_tunnel(remote, TUNNEL_TIMEOUT, &[&frps, &frpc])
        .await
        .context("a real client after the junk")?;
    round_trip(remote, &random_bytes(100_000, 9), Duration::from_secs(10)).await?;
    drop((silent, stalled));
    frps.ensure_running()?;
    Ok(())
}

interop_test!(junk_mux, |ctx| junk_then_client(ctx, true));
interop_test!(junk_plain, |ctx| junk_then_client(ctx, false));
