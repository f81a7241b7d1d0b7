//! The record layer against itself and against rustls's own record layer (the reference
//! for sealing, opening, KeyUpdate and close_notify), and against damaged records.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::tls::{
    accept, client_config, connect, server_config, server_name, ClientTlsOptions, ServerTlsOptions,
    TlsConn, MUX_SEND_BUFFER, SEND_BUFFER,
};

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// Damages the bytes it writes on request: 1 flips the last byte of the next write (a tag
/// byte: bad MAC), 2 sets the next write's first byte (the outer type) to handshake, 3 its
/// length field to 0xffff.
struct Tamper {
    io: DuplexStream,
    mode: Arc<AtomicU8>,
}

impl AsyncRead for Tamper {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tamper {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mode = self.mode.swap(0, Ordering::SeqCst);
        if mode == 0 || buf.len() < 5 {
            return Pin::new(&mut self.io).poll_write(cx, buf);
        }
        let mut b = buf.to_vec();
        match mode {
            1 => *b.last_mut().unwrap() ^= 0x40,
            2 => b[0] = 22,
            _ => {
                b[3] = 0xff;
                b[4] = 0xff;
            }
        }
        Pin::new(&mut self.io).poll_write(cx, &b)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

fn records<R, S>(c: TlsConn<R, S>) -> RecordStream<S> {
    match c {
        TlsConn::Records(r) => r,
        TlsConn::Rustls(_) => panic!("expected the record layer"),
    }
}

async fn pair_over<S>(
    client_io: S,
    server_io: DuplexStream,
    send_buffer: usize,
) -> (RecordStream<S>, RecordStream<DuplexStream>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let server = server_config(&ServerTlsOptions::default()).unwrap();
    let opts = ClientTlsOptions::default();
    let client = client_config(&opts).unwrap();
    let name = server_name(&opts, "127.0.0.1").unwrap();
    let (c, s) = tokio::join!(
        connect(client, name, false, client_io, send_buffer, true),
        accept(server, server_io, send_buffer)
    );
    (records(c.unwrap()), records(s.unwrap()))
}

/// Writes `data` and shuts down while reading the peer to its end; returns what was read
/// and the stream (to look at afterwards).
async fn exchange<S>(stream: S, data: Vec<u8>) -> (Vec<u8>, S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let mut got = Vec::new();
    let (read, write) = tokio::join!(r.read_to_end(&mut got), async {
        w.write_all(&data).await?;
        w.shutdown().await
    });
    read.unwrap();
    write.unwrap();
    (got, r.unsplit(w))
}

#[tokio::test]
async fn both_directions_at_once_then_close_notify() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (c, s) = pair_over(a, b, MUX_SEND_BUFFER).await;
    let up = pattern(3_000_003, 1);
    let down = pattern(2_500_001, 2);
    let ((got_s, s), (got_c, c)) = tokio::join!(exchange(s, down.clone()), exchange(c, up.clone()));
    assert!(got_s == up, "server received {} bytes", got_s.len());
    assert!(got_c == down, "client received {} bytes", got_c.len());
    assert!(
        !s.holds_buffers() && !c.holds_buffers(),
        "idle streams hold no buffer"
    );
}

/// Small reads (a control message read byte by byte, as `read_msg` does) take the
/// open-in-place path and still see every byte.
#[tokio::test]
async fn small_reads_open_records_in_place() {
    // Wide enough for the whole write: the reader starts after it.
    let (a, b) = tokio::io::duplex(1 << 20);
    let (mut c, mut s) = pair_over(a, b, SEND_BUFFER).await;
    let data = pattern(70_000, 3);
    c.write_all(&data).await.unwrap();
    c.flush().await.unwrap();
    let mut got = vec![0u8; data.len()];
    let mut at = 0;
    for step in [1usize, 8, 100, 5000, 16_000, 16_385].iter().cycle() {
        if at == got.len() {
            break;
        }
        let end = (at + step).min(got.len());
        s.read_exact(&mut got[at..end]).await.unwrap();
        at = end;
    }
    assert!(got == data);
}

/// The reference: a rustls connection that keeps its own record layer. It reads what we
/// seal across our KeyUpdate, and we read what it seals across its KeyUpdate.
#[tokio::test]
async fn key_updates_both_ways_against_rustls() {
    let server = server_config(&ServerTlsOptions::default()).unwrap();
    let opts = ClientTlsOptions::default();
    let client = client_config(&opts).unwrap();
    let name = server_name(&opts, "127.0.0.1").unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (c, peer) = tokio::join!(
        connect(client, name, false, a, SEND_BUFFER, true),
        tokio_rustls::TlsAcceptor::from(server).accept(b)
    );
    let mut c = records(c.unwrap());
    let mut peer = peer.unwrap();
    // Ours rekeys every 3 records.
    c.set_rekey_at(3);
    let up = pattern(200_000, 4);
    let up2 = up.clone();
    let reader = tokio::spawn(async move {
        let mut got = vec![0u8; up2.len()];
        peer.read_exact(&mut got).await.unwrap();
        assert!(got == up2, "rustls read our records across our KeyUpdates");
        // Now rustls rekeys, then sends.
        peer.get_mut().1.refresh_traffic_keys().unwrap();
        let down = pattern(100_000, 5);
        peer.write_all(&down).await.unwrap();
        peer.get_mut().1.refresh_traffic_keys().unwrap();
        peer.write_all(&down).await.unwrap();
        peer.flush().await.unwrap();
        peer
    });
    c.write_all(&up).await.unwrap();
    c.flush().await.unwrap();
    assert!(c.tx_seq() < 3, "a KeyUpdate restarted the sequence");
    let mut got = vec![0u8; 200_000];
    c.read_exact(&mut got).await.unwrap();
    let down = pattern(100_000, 5);
    assert!(got[..100_000] == down[..] && got[100_000..] == down[..]);
    let _peer = reader.await.unwrap();
}

/// Application data that follows the client's Finished in the same flight reaches rustls
/// before the handover; it is read first, in order.
#[tokio::test]
async fn data_rustls_decrypted_before_the_handover_comes_first() {
    let server = server_config(&ServerTlsOptions::default()).unwrap();
    let opts = ClientTlsOptions::default();
    let client = client_config(&opts).unwrap();
    let name = server_name(&opts, "127.0.0.1").unwrap();
    let (a, b) = tokio::io::duplex(1 << 20);
    let data = pattern(50_000, 6);
    let data2 = data.clone();
    // A rustls client that writes as soon as its handshake is done: its Finished and the
    // data sit together in the pipe when the server reads.
    let client = async move {
        let mut c = tokio_rustls::TlsConnector::from(client)
            .connect(name, a)
            .await
            .unwrap();
        c.write_all(&data2).await.unwrap();
        c.flush().await.unwrap();
        c
    };
    let (_c, s) = tokio::join!(client, accept(server, b, SEND_BUFFER));
    let mut s = records(s.unwrap());
    assert!(!s.early.is_empty(), "the handover carried decrypted data");
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).await.unwrap();
    assert!(got == data);
}

async fn damaged(mode: u8) -> io::Error {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let flag = Arc::new(AtomicU8::new(0));
    let tamper = Tamper {
        io: a,
        mode: flag.clone(),
    };
    let (mut c, mut s) = pair_over(tamper, b, SEND_BUFFER).await;
    c.write_all(b"intact").await.unwrap();
    c.flush().await.unwrap();
    let mut six = [0u8; 6];
    s.read_exact(&mut six).await.unwrap();
    assert_eq!(&six, b"intact");
    flag.store(mode, Ordering::SeqCst);
    c.write_all(&pattern(3000, 7)).await.unwrap();
    c.flush().await.unwrap();
    let mut buf = vec![0u8; 4096];
    s.read(&mut buf)
        .await
        .expect_err("a damaged record is an error")
}

#[tokio::test]
async fn damaged_records_fail_the_read_with_a_reason() {
    let e = damaged(1).await;
    assert!(e.to_string().contains("bad_record_mac"), "{e}");
    let e = damaged(2).await;
    assert!(
        e.to_string().contains("unexpected TLS record type 22"),
        "{e}"
    );
    let e = damaged(3).await;
    assert!(e.to_string().contains("exceeds the maximum"), "{e}");
}

/// An end of stream in the middle of a record, or without close_notify, is an error (as
/// with rustls's record layer).
#[tokio::test]
async fn truncation_is_an_error() {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (c, mut s) = pair_over(a, b, SEND_BUFFER).await;
    drop(c);
    let mut buf = [0u8; 16];
    let e = s.read(&mut buf).await.expect_err("no close_notify");
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn key_schedule_matches_rfc_8448() {
    // RFC 8448 §3 (simple 1-RTT handshake): the server's application traffic secret and
    // the key and IV derived from it.
    let hex = |s: &str| -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let suite = Suite::tls13(CipherSuite::TLS13_AES_128_GCM_SHA256).unwrap();
    let secret = hex("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43");
    assert_eq!(
        expand_label(suite, &secret, b"key", 16).unwrap(),
        hex("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56")
    );
    assert_eq!(
        expand_label(suite, &secret, b"iv", 12).unwrap(),
        hex("cf 78 2b 88 dd 83 54 9a ad f1 e9 84")
    );
}

/// Whatever a peer sends after the handshake, the read ends in an error or a clean end,
/// never a panic or a hang, and nothing is allocated from a length it claims.
#[tokio::test]
async fn random_bytes_after_the_handshake_fail_cleanly() {
    use rand::{RngCore, SeedableRng};
    for seed in 0..64u64 {
        let server = server_config(&ServerTlsOptions::default()).unwrap();
        let opts = ClientTlsOptions::default();
        let client = client_config(&opts).unwrap();
        let name = server_name(&opts, "127.0.0.1").unwrap();
        let (a, b) = tokio::io::duplex(1 << 20);
        let (peer, s) = tokio::join!(
            tokio_rustls::TlsConnector::from(client).connect(name, a),
            accept(server, b, SEND_BUFFER)
        );
        let mut peer = peer.unwrap();
        let mut s = records(s.unwrap());
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut junk = vec![0u8; 1 + (rng.next_u32() % 40_000) as usize];
        rng.fill_bytes(&mut junk);
        // Half the time the junk follows a valid-looking application-data header.
        if seed % 2 == 0 && junk.len() > 5 {
            junk[..3].copy_from_slice(&[23, 3, 3]);
        }
        // Straight onto the wire under the peer's TLS.
        peer.get_mut().0.write_all(&junk).await.unwrap();
        drop(peer);
        let mut buf = vec![0u8; 64 * 1024];
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("no hang");
        assert!(r.is_err(), "seed {seed}: junk was accepted");
    }
}
