//! [`WsStream`] against hand-written frames and against itself.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::frame::{self, Header};
use super::{Role, WsStream};

/// Encodes one frame as a peer with `mask` would send it.
fn raw_frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let h = Header {
        fin,
        opcode,
        mask,
        len: payload.len() as u64,
    };
    frame::encode_header(&h, &mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(m) = mask {
        frame::apply_mask(&mut out[start..], m, 0);
    }
    out
}

fn server_pair() -> (DuplexStream, WsStream<DuplexStream>) {
    let (peer, ours) = tokio::io::duplex(1 << 20);
    (peer, WsStream::new(ours, Role::Server, BytesMut::new()))
}

const M: Option<[u8; 4]> = Some([0xA1, 0x02, 0xF3, 0x44]);

#[tokio::test]
async fn text_frames_with_binary_payload_are_bytes() {
    let (mut peer, mut ws) = server_pair();
    let payload: Vec<u8> = vec![0xff, 0x00, 0xfe, 0x80, 0xc3, 0x28];
    peer.write_all(&raw_frame(true, frame::OP_TEXT, M, &payload))
        .await
        .unwrap();
    let mut got = vec![0u8; payload.len()];
    ws.read_exact(&mut got).await.unwrap();
    assert_eq!(got, payload);
}

#[tokio::test]
async fn fragments_and_interleaved_ping() {
    let (mut peer, mut ws) = server_pair();
    let mut wire = raw_frame(false, frame::OP_BINARY, M, b"hel");
    wire.extend(raw_frame(true, frame::OP_PING, M, b"p1"));
    wire.extend(raw_frame(false, frame::OP_CONTINUATION, M, b"lo "));
    wire.extend(raw_frame(true, frame::OP_CONTINUATION, M, b"world"));
    wire.extend(raw_frame(true, frame::OP_CLOSE, M, &1000u16.to_be_bytes()));
    // Deliver byte by byte to exercise every partial-header path.
    let writer = tokio::spawn(async move {
        for b in wire {
            peer.write_all(&[b]).await.unwrap();
        }
        peer
    });
    let mut got = Vec::new();
    ws.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello world");
    let mut peer = writer.await.unwrap();
    // The pong (unmasked, from the server) answered the ping.
    let mut pong = [0u8; 4];
    peer.read_exact(&mut pong).await.unwrap();
    assert_eq!(pong, [0x8A, 2, b'p', b'1']);
    // Shutting down sends our close frame.
    ws.shutdown().await.unwrap();
    let mut close = Vec::new();
    peer.read_to_end(&mut close).await.unwrap();
    assert_eq!(close, [0x88, 2, 0x03, 0xE8]);
}

#[tokio::test]
async fn protocol_violations_are_errors() {
    let cases: Vec<Vec<u8>> = vec![
        // Unmasked frame from a client.
        raw_frame(true, frame::OP_BINARY, None, b"x"),
        // Continuation without a message.
        raw_frame(true, frame::OP_CONTINUATION, M, b"x"),
        // Absurd length (2^63 - 1).
        {
            let mut v = vec![0x82, 0xFF];
            v.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
            v.extend_from_slice(&[1, 2, 3, 4]);
            v
        },
        // New message inside a fragmented one.
        {
            let mut v = raw_frame(false, frame::OP_TEXT, M, b"a");
            v.extend(raw_frame(true, frame::OP_BINARY, M, b"b"));
            v
        },
    ];
    for wire in cases {
        let (mut peer, mut ws) = server_pair();
        peer.write_all(&wire).await.unwrap();
        let mut buf = [0u8; 16];
        let res = async {
            loop {
                if ws.read(&mut buf).await? == 0 {
                    return Ok::<_, std::io::Error>(());
                }
            }
        }
        .await;
        let err = res.expect_err("violation must be an error");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    }
}

#[tokio::test]
async fn eof_inside_a_frame_is_an_error_and_at_a_boundary_is_eof() {
    let (mut peer, mut ws) = server_pair();
    let mut wire = raw_frame(true, frame::OP_BINARY, M, b"abc");
    wire.truncate(wire.len() - 1);
    peer.write_all(&wire).await.unwrap();
    drop(peer);
    let mut got = Vec::new();
    let err = ws.read_to_end(&mut got).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);

    let (mut peer, mut ws) = server_pair();
    peer.write_all(&raw_frame(true, frame::OP_BINARY, M, b"abc"))
        .await
        .unwrap();
    drop(peer);
    let mut got = Vec::new();
    ws.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
}

#[tokio::test]
async fn client_and_server_stream_mibs_both_ways() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let client = WsStream::new(a, Role::Client, BytesMut::new());
    let server = WsStream::new(b, Role::Server, BytesMut::new());
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 7)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let d1 = data.clone();
    let up = tokio::spawn(async move {
        cw.write_all(&d1).await.unwrap();
        cw.shutdown().await.unwrap();
    });
    let d2 = data.clone();
    let down = tokio::spawn(async move {
        sw.write_all(&d2).await.unwrap();
        sw.shutdown().await.unwrap();
    });
    let mut got_s = Vec::new();
    let mut got_c = Vec::new();
    let (r1, r2) = tokio::join!(sr.read_to_end(&mut got_s), cr.read_to_end(&mut got_c));
    r1.unwrap();
    r2.unwrap();
    up.await.unwrap();
    down.await.unwrap();
    assert!(got_s == data && got_c == data);
}

#[tokio::test]
async fn client_frames_are_masked_and_writes_after_close_fail() {
    let (a, mut peer) = tokio::io::duplex(1024);
    let mut ws = WsStream::new(a, Role::Client, BytesMut::new());
    ws.write_all(b"hi").await.unwrap();
    ws.flush().await.unwrap();
    let mut hdr = [0u8; 8];
    peer.read_exact(&mut hdr).await.unwrap();
    assert_eq!(hdr[0], 0x82);
    assert_eq!(hdr[1], 0x82, "mask bit and length 2");
    let mut body = [hdr[6], hdr[7]];
    frame::apply_mask(&mut body, [hdr[2], hdr[3], hdr[4], hdr[5]], 0);
    assert_eq!(&body, b"hi");
    ws.shutdown().await.unwrap();
    assert!(ws.write_all(b"x").await.is_err());
}
