//! `ws_frame`: frp's websocket transport (`transports::ws`) fed arbitrary peer bytes.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transports::ws::frame::{self, MAX_HEADER_LEN};
use transports::ws::{self, Role, WsStream};

use crate::rt;

/// Input: one mode byte, then what the peer sends. Modes (byte % 4):
///
/// 0. raw frames to a server-side [`WsStream`] (the peer is frpc, frames must be masked);
/// 1. raw frames to a client-side [`WsStream`] (the peer is frps, frames unmasked);
/// 2. an upgrade request then frames, through [`ws::server_handshake`];
/// 3. an upgrade response, through [`ws::client_handshake`] (never valid: the key is random).
///
/// Properties: header decoding is total and round-trips; the stream delivers exactly the
/// payload bytes a straightforward reference reading of the frames yields, ends cleanly
/// exactly when the reference does, and finishes (no hang) once the peer closes.
pub fn ws_frame(data: &[u8]) {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    check_headers(bytes);
    match mode % 4 {
        0 => check_stream(bytes, Role::Server, false),
        1 => check_stream(bytes, Role::Client, false),
        2 => check_stream(bytes, Role::Server, true),
        _ => check_client_handshake(bytes),
    }
}

/// `decode_header` on every prefix of the first bytes: never past the buffer or the
/// 14-byte maximum, and our minimal re-encoding decodes to the same header.
fn check_headers(bytes: &[u8]) {
    for end in 0..=bytes.len().min(MAX_HEADER_LEN + 2) {
        let buf = &bytes[..end];
        let Ok(Some((h, n))) = frame::decode_header(buf) else {
            continue;
        };
        assert!(n <= buf.len() && n <= MAX_HEADER_LEN, "header length {n}");
        let mut enc = BytesMut::new();
        frame::encode_header(&h, &mut enc);
        assert!(enc.len() <= n, "re-encoding is longer than the input");
        if enc.len() == n {
            assert_eq!(&enc[..], &buf[..n], "same-length encoding differs");
        }
        assert_eq!(
            frame::decode_header(&enc),
            Ok(Some((h, enc.len()))),
            "re-encoded header decodes differently"
        );
    }
}

/// What a reader of the frames must see: the payload bytes and whether the stream ends
/// cleanly (close frame, or EOF at a frame boundary outside a fragmented message).
fn reference(mut rest: &[u8], role: Role) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut in_message = false;
    loop {
        let (h, hlen) = match frame::decode_header(rest) {
            Err(_) => return (out, false),
            Ok(None) => return (out, rest.is_empty() && !in_message),
            Ok(Some(x)) => x,
        };
        if (role == Role::Server) != h.mask.is_some() {
            return (out, false);
        }
        let body = &rest[hlen..];
        if h.is_control() {
            let len = h.len as usize;
            if body.len() < len {
                return (out, false);
            }
            if h.opcode == frame::OP_CLOSE {
                return (out, true);
            }
            rest = &body[len..];
            continue;
        }
        match (h.opcode, in_message) {
            (frame::OP_CONTINUATION, false) | (frame::OP_TEXT | frame::OP_BINARY, true) => {
                return (out, false)
            }
            _ => {}
        }
        in_message = !h.fin;
        let avail = body.len().min(usize::try_from(h.len).unwrap_or(usize::MAX));
        let start = out.len();
        out.extend_from_slice(&body[..avail]);
        if let Some(mask) = h.mask {
            frame::apply_mask(&mut out[start..], mask, 0);
        }
        if (avail as u64) < h.len {
            return (out, false);
        }
        rest = &body[avail..];
    }
}

/// Reads the stream to its end: the bytes and whether it ended without an error.
async fn read_all<S>(mut s: S) -> (Vec<u8>, bool)
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

fn check_stream(bytes: &[u8], role: Role, handshake: bool) {
    let (peer, ours) = tokio::io::duplex(64 * 1024);
    let (mut peer_r, mut peer_w) = tokio::io::split(peer);
    let (read, response) = rt::block_on_bounded("websocket read", async {
        let writer = async {
            // The stream may stop reading (error) before taking everything.
            let _ = peer_w.write_all(bytes).await;
            let _ = peer_w.shutdown().await;
        };
        let drainer = async {
            let mut response = Vec::new();
            let _ = peer_r.read_to_end(&mut response).await;
            response
        };
        let reader = async {
            if handshake {
                match ws::server_handshake(ours).await {
                    Ok(s) => Some(read_all(s).await),
                    Err(_) => None,
                }
            } else {
                Some(read_all(WsStream::new(ours, role, BytesMut::new())).await)
            }
        };
        let ((), response, read) = tokio::join!(writer, drainer, reader);
        (read, response)
    });
    let frames = if handshake {
        let accepted = response.starts_with(b"HTTP/1.1 101 ");
        assert_eq!(
            accepted,
            read.is_some(),
            "upgrade answer and outcome disagree"
        );
        if !accepted {
            assert!(response.is_empty() || response.starts_with(b"HTTP/1.1 "));
            return;
        }
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an accepted upgrade has a complete head");
        &bytes[end + 4..]
    } else {
        bytes
    };
    let Some((got, clean)) = read else {
        return;
    };
    let (want, want_clean) = reference(frames, role);
    assert_eq!(got, want, "payload bytes differ from the reference reading");
    assert_eq!(
        clean, want_clean,
        "stream end differs from the reference reading"
    );
}

fn check_client_handshake(bytes: &[u8]) {
    let (peer, ours) = tokio::io::duplex(64 * 1024);
    let (mut peer_r, mut peer_w) = tokio::io::split(peer);
    let res = rt::block_on_bounded("websocket client upgrade", async {
        let peer = async {
            // Take the request head, then answer with the fuzz bytes.
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") {
                if peer_r.read(&mut b).await.unwrap_or(0) == 0 {
                    return;
                }
                req.push(b[0]);
            }
            let _ = peer_w.write_all(bytes).await;
            let _ = peer_w.shutdown().await;
        };
        let client = async { ws::client_handshake(ours, "127.0.0.1:7000").await.is_ok() };
        tokio::join!(peer, client).1
    });
    assert!(!res, "an upgrade response matched a random key");
}
