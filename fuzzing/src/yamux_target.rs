//! `yamux_frame`: our yamux (`transports::mux`) fed arbitrary bytes as the remote peer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use transports::fuzzing::{yamux_decode_header, yamux_encode_header};
use transports::mux::{self, MuxConfig, Role};

use crate::rt;

/// Largest echo a stream task writes back (well inside the initial 256 KiB window).
const ECHO_MAX: usize = 1024;

/// Input: one mode byte (bit 0: we are the server, i.e. frps; bits 1-2: streams we open
/// ourselves), then the peer's bytes. Properties:
///
/// * a header decodes exactly when its version is 0 and its type at most 3, and then
///   re-encodes to the same 12 bytes;
/// * the session never panics, ends once the peer's bytes run out (EOF), and every stream
///   it handed out, reading or writing, finishes after that (no hang);
/// * everything the session writes back is a well-formed sequence of yamux frames.
pub fn yamux_frame(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    for chunk in bytes.chunks_exact(12).take(64) {
        let hdr: &[u8; 12] = chunk.try_into().expect("chunks of 12");
        let valid = hdr[0] == 0 && hdr[1] <= 3;
        match yamux_decode_header(hdr) {
            Some(h) => {
                assert!(valid, "accepted header {hdr:?}");
                assert_eq!(
                    yamux_encode_header(h).as_ref(),
                    Some(hdr),
                    "header round trip"
                );
            }
            None => assert!(!valid, "rejected header {hdr:?}"),
        }
    }
    let role = if mode & 1 == 1 {
        Role::Server
    } else {
        Role::Client
    };
    let opens = (mode >> 1) & 3;
    let output = rt::block_on_bounded("yamux session", session(bytes, role, opens));
    check_output(&output);
}

async fn session(bytes: &[u8], role: Role, opens: u8) -> Vec<u8> {
    let (peer, ours) = tokio::io::duplex(64 * 1024);
    let (mut peer_r, mut peer_w) = tokio::io::split(peer);
    let cancel = CancellationToken::new();
    let config = MuxConfig {
        keepalive_interval: None,
        ..MuxConfig::default()
    };
    let (handle, mut incoming) = mux::spawn(ours, role, config, &cancel);
    let mut tasks = Vec::new();
    for _ in 0..opens {
        if let Ok(mut s) = handle.open_stream() {
            tasks.push(tokio::spawn(async move {
                let _ = s.write_all(b"hello from our side").await;
                let _ = s.flush().await;
                drain(&mut s).await;
            }));
        }
    }
    let writer = async {
        // The session may fail (protocol error) before taking everything.
        let _ = peer_w.write_all(bytes).await;
        let _ = peer_w.shutdown().await;
    };
    let reader = async {
        let mut out = Vec::new();
        let _ = peer_r.read_to_end(&mut out).await;
        out
    };
    let acceptor = async {
        while let Some(mut s) = incoming.accept().await {
            tasks.push(tokio::spawn(async move {
                let got = drain(&mut s).await;
                let echo = &got[..got.len().min(ECHO_MAX)];
                let _ = s.write_all(echo).await;
                let _ = s.shutdown().await;
            }));
        }
        handle.closed().await;
    };
    let ((), out, ()) = tokio::join!(writer, reader, acceptor);
    for t in tasks {
        if let Err(e) = t.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    out
}

/// Reads a stream to its end or first error, keeping the first bytes.
async fn drain<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = s.read(&mut buf).await {
        if kept.len() < ECHO_MAX {
            kept.extend_from_slice(&buf[..n.min(ECHO_MAX - kept.len())]);
        }
    }
    kept
}

/// Our side's bytes must parse as whole yamux frames.
fn check_output(mut out: &[u8]) {
    while !out.is_empty() {
        let hdr: &[u8; 12] = out
            .get(..12)
            .and_then(|h| h.try_into().ok())
            .unwrap_or_else(|| panic!("truncated header in our output: {out:?}"));
        let h = yamux_decode_header(hdr).unwrap_or_else(|| panic!("we sent header {hdr:?}"));
        let payload = if h.ty == 0 { h.length as usize } else { 0 };
        assert!(
            out.len() >= 12 + payload,
            "truncated data frame in our output"
        );
        out = &out[12 + payload..];
    }
}
