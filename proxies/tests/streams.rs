//! Stream wrappers and the relay pump against byte vectors captured from real frp 0.65.0, plus
//! property tests with arbitrary chunking.
//!
//! `tests/vectors/*.bin` were recorded by `tests/vectors/capture.py`: real frps + frpc
//! (token "abc", tcpMux off, TLS off) with a logging relay between them, three tcp proxies
//! `enc` (useEncryption), `comp` (useCompression), `both`, each echoing three payloads:
//! `hello` = "A"*100 + "hello-frp", `text` = 1500 numbered lines (84000 bytes), `random` =
//! 3000 random bytes (`random.plain`). `P_K_s2c.bin` is what frps wrote on the work conn after
//! its StartWorkConn frame, `P_K_c2s.bin` what frpc wrote after NewWorkConn; both carry the
//! payload. (`enc_text` is left out to keep the repo small.)

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use control::crypto::{derive_key, Decryptor, Key, IV_LEN};
use proptest::prelude::*;
use proxies::compress_stream::SnappyStream;
use proxies::crypto_stream::CryptoStream;
use proxies::relay::{pump, pump_report, wrap_stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

macro_rules! vector {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/",
            $name
        ))
    };
}

fn key() -> Key {
    derive_key(b"abc")
}

fn hello() -> Vec<u8> {
    let mut v = vec![b'A'; 100];
    v.extend_from_slice(b"hello-frp");
    v
}

fn text() -> Vec<u8> {
    (0..1500)
        .flat_map(|i| {
            format!("line {i:05}: the quick brown fox jumps over the lazy dog\n").into_bytes()
        })
        .collect()
}

fn random() -> Vec<u8> {
    vector!("random.plain").to_vec()
}

/// An AsyncRead over a byte slice that hands out at most `step` bytes per read, returning
/// `Pending` (and waking itself) between reads, to exercise split arrival.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    yield_next: bool,
}

impl<'a> Trickle<'a> {
    fn new(data: &'a [u8], step: usize) -> Self {
        Self {
            data,
            step: step.max(1),
            yield_next: false,
        }
    }
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.yield_next {
            self.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yield_next = true;
        let n = self.step.min(buf.remaining()).min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = tail;
        Poll::Ready(Ok(()))
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Enc,
    Comp,
    Both,
}

async fn decode(kind: Kind, wire: &[u8], step: usize) -> io::Result<Vec<u8>> {
    let src = Trickle::new(wire, step);
    let mut out = Vec::new();
    match kind {
        Kind::Enc => CryptoStream::new(src, &key()).read_to_end(&mut out).await?,
        Kind::Comp => SnappyStream::new(src).read_to_end(&mut out).await?,
        Kind::Both => {
            SnappyStream::new(CryptoStream::new(src, &key()))
                .read_to_end(&mut out)
                .await?
        }
    };
    Ok(out)
}

/// The plaintext sizes of the snappy data chunks in `frames`, i.e. how Go's writer was called.
fn chunk_sizes(frames: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut rest = frames;
    while !rest.is_empty() {
        let len = usize::from(rest[1]) | usize::from(rest[2]) << 8 | usize::from(rest[3]) << 16;
        let body = &rest[4..4 + len];
        match rest[0] {
            0x00 => sizes.push(snap::raw::decompress_len(&body[4..]).unwrap()),
            0x01 => sizes.push(len - 4),
            _ => {}
        }
        rest = &rest[4 + len..];
    }
    sizes
}

/// Re-encodes `plain` with our writers, using the capture's IV and Go's write boundaries.
async fn encode_like(kind: Kind, wire: &[u8], plain: &[u8]) -> Vec<u8> {
    let iv: [u8; IV_LEN] = wire[..IV_LEN].try_into().unwrap();
    match kind {
        Kind::Enc => {
            let mut s = CryptoStream::with_iv(Vec::new(), &key(), iv);
            // Chunking does not matter for CFB: write in odd pieces.
            for piece in plain.chunks(77) {
                s.write_all(piece).await.unwrap();
            }
            s.flush().await.unwrap();
            s.into_inner()
        }
        Kind::Comp => {
            let mut s = SnappyStream::new(Vec::new());
            write_in(&mut s, plain, &chunk_sizes(wire)).await;
            s.into_inner()
        }
        Kind::Both => {
            let mut frames = wire[IV_LEN..].to_vec();
            Decryptor::new(&key(), &iv).apply(&mut frames);
            let mut s = SnappyStream::new(CryptoStream::with_iv(Vec::new(), &key(), iv));
            write_in(&mut s, plain, &chunk_sizes(&frames)).await;
            s.into_inner().into_inner()
        }
    }
}

async fn write_in<W: AsyncWrite + Unpin>(w: &mut W, mut plain: &[u8], sizes: &[usize]) {
    for &n in sizes {
        let (head, tail) = plain.split_at(n);
        w.write_all(head).await.unwrap();
        plain = tail;
    }
    assert!(plain.is_empty(), "chunk sizes do not cover the payload");
    w.flush().await.unwrap();
}

async fn check_vector(kind: Kind, wire: &[u8], plain: &[u8]) {
    for step in [1, 7, 16, 4096, usize::MAX] {
        assert_eq!(
            decode(kind, wire, step).await.unwrap(),
            plain,
            "{kind:?} step {step}"
        );
    }
    let ours = encode_like(kind, wire, plain).await;
    assert!(ours == wire, "{kind:?}: our encoding differs from frp's");
}

#[tokio::test]
async fn frp_encrypted_vectors() {
    for (wire, plain) in [
        (&vector!("enc_hello_s2c.bin")[..], hello()),
        (vector!("enc_hello_c2s.bin"), hello()),
        (vector!("enc_random_s2c.bin"), random()),
        (vector!("enc_random_c2s.bin"), random()),
    ] {
        check_vector(Kind::Enc, wire, &plain).await;
    }
}

#[tokio::test]
async fn frp_compressed_vectors() {
    // frp-protocol.md §9: the compression-only stream of `hello`, byte for byte.
    let doc = "ff060000734e6150705900170000b6c199736d0041fe01008a01002068656c6c6f2d667270";
    assert_eq!(hex::encode(vector!("comp_hello_s2c.bin")), doc);
    for (wire, plain) in [
        (&vector!("comp_hello_s2c.bin")[..], hello()),
        (vector!("comp_hello_c2s.bin"), hello()),
        (vector!("comp_text_s2c.bin"), text()),
        (vector!("comp_text_c2s.bin"), text()),
        (vector!("comp_random_s2c.bin"), random()),
        (vector!("comp_random_c2s.bin"), random()),
    ] {
        check_vector(Kind::Comp, wire, &plain).await;
    }
}

#[tokio::test]
async fn frp_encrypted_compressed_vectors() {
    for (wire, plain) in [
        (&vector!("both_hello_s2c.bin")[..], hello()),
        (vector!("both_hello_c2s.bin"), hello()),
        (vector!("both_text_s2c.bin"), text()),
        (vector!("both_text_c2s.bin"), text()),
        (vector!("both_random_s2c.bin"), random()),
        (vector!("both_random_c2s.bin"), random()),
    ] {
        check_vector(Kind::Both, wire, &plain).await;
    }
    // Decrypting the `both` capture gives exactly the compression-only bytes (§9).
    let wire = vector!("both_hello_s2c.bin");
    let iv: [u8; IV_LEN] = wire[..IV_LEN].try_into().unwrap();
    let mut frames = wire[IV_LEN..].to_vec();
    Decryptor::new(&key(), &iv).apply(&mut frames);
    assert_eq!(&frames[..], &vector!("comp_hello_s2c.bin")[..]);
}

/// Writes `data` in `writes`-sized pieces through a tiny duplex (forcing partial inner writes)
/// while the other end reads in `reads`-sized pieces; returns what was read.
async fn through_pipe(
    kind: Kind,
    data: &[u8],
    cap: usize,
    writes: &[usize],
    reads: &[usize],
) -> Vec<u8> {
    let (a, b) = tokio::io::duplex(cap);
    let k = key();
    let mut w = wrap_stream(
        a,
        matches!(kind, Kind::Enc | Kind::Both).then_some(&k),
        !matches!(kind, Kind::Enc),
    );
    let mut r = wrap_stream(
        b,
        matches!(kind, Kind::Enc | Kind::Both).then_some(&k),
        !matches!(kind, Kind::Enc),
    );
    let writer = async {
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = writes[i % writes.len()].min(rest.len());
            w.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            i += 1;
        }
        w.shutdown().await.unwrap();
    };
    let reader = async {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 70_000];
        let mut i = 0;
        loop {
            let n = reads[i % reads.len()];
            i += 1;
            let got = r.read(&mut buf[..n]).await.unwrap();
            if got == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..got]);
        }
    };
    let ((), out) = tokio::join!(writer, reader);
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn roundtrip_any_chunking(
        data in prop::collection::vec(any::<u8>(), 0..20_000),
        repeat in 1usize..8,
        cap in 1usize..300,
        writes in prop::collection::vec(1usize..70_000, 1..8),
        reads in prop::collection::vec(1usize..70_000, 1..8),
    ) {
        // Repeating makes the data compressible, so both chunk types occur.
        let data = data.repeat(repeat);
        for kind in [Kind::Enc, Kind::Comp, Kind::Both] {
            let out = rt().block_on(through_pipe(kind, &data, cap, &writes, &reads));
            prop_assert_eq!(&out, &data, "{:?}", kind);
        }
    }

    #[test]
    fn garbage_never_panics(wire in prop::collection::vec(any::<u8>(), 0..2000), step in 1usize..64) {
        let _ = rt().block_on(decode(Kind::Comp, &wire, step));
        let mut framed = b"\xff\x06\x00\x00sNaPpY".to_vec();
        framed.extend_from_slice(&wire);
        let _ = rt().block_on(decode(Kind::Comp, &framed, step));
        let _ = rt().block_on(decode(Kind::Both, &wire, step));
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn pump_bulk_both_ways_with_half_close() {
    let (user, user_srv) = tokio::io::duplex(4096);
    let (work_srv, mut work_cli) = tokio::io::duplex(4096);
    let relay = tokio::spawn(async move {
        let (mut a, mut b) = (user_srv, work_srv);
        pump(&mut a, &mut b).await
    });
    let up = pattern(1 << 20, 1);
    let down = pattern(700_000, 2);
    let (up2, down2) = (up.clone(), down.clone());
    let user_side = async move {
        let (mut r, mut w) = tokio::io::split(user);
        let send = async {
            w.write_all(&up2).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let recv = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(send, recv);
        got
    };
    let work_side = async move {
        // Reads everything first (the user half-closed), then answers: the other direction
        // must still be open after the first EOF.
        let mut got = Vec::new();
        work_cli.read_to_end(&mut got).await.unwrap();
        work_cli.write_all(&down2).await.unwrap();
        work_cli.shutdown().await.unwrap();
        got
    };
    let (user_got, work_got) = tokio::join!(user_side, work_side);
    assert_eq!(work_got, up);
    assert_eq!(user_got, down);
    let (a_to_b, b_to_a) = relay.await.unwrap().unwrap();
    assert_eq!((a_to_b, b_to_a), (up.len() as u64, down.len() as u64));
}

/// The full frp data path in memory: user ⇄ pump ⇄ wrapped work conn ⇄ pump ⇄ local echo.
#[tokio::test]
async fn pump_through_wrapped_work_conn() {
    for (enc, comp) in [(false, false), (true, false), (false, true), (true, true)] {
        let k = key();
        let (mut user, user_srv) = tokio::io::duplex(1000);
        let (work_srv, work_cli) = tokio::io::duplex(1000);
        let (local_cli, mut local) = tokio::io::duplex(1000);
        let server = tokio::spawn(async move {
            let (mut u, mut w) = (user_srv, wrap_stream(work_srv, enc.then_some(&k), comp));
            pump(&mut w, &mut u).await
        });
        let client = tokio::spawn(async move {
            let (mut w, mut l) = (wrap_stream(work_cli, enc.then_some(&k), comp), local_cli);
            pump(&mut w, &mut l).await
        });
        let echo = tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                let n = local.read(&mut buf).await.unwrap();
                if n == 0 {
                    local.shutdown().await.unwrap();
                    return;
                }
                local.write_all(&buf[..n]).await.unwrap();
            }
        });
        let data = text();
        let (mut r, mut w) = tokio::io::split(&mut user);
        let send = async {
            // A small request first: it must arrive without more data pushing it (flush).
            w.write_all(b"ping").await.unwrap();
            let mut four = [0u8; 4];
            r.read_exact(&mut four).await.unwrap();
            assert_eq!(&four, b"ping");
            // Send and receive concurrently: the echo path only has small buffers.
            let send_rest = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let recv = async {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            };
            let ((), got) = tokio::join!(send_rest, recv);
            got
        };
        let got = tokio::time::timeout(std::time::Duration::from_secs(20), send)
            .await
            .expect("relay stalled");
        assert_eq!(got, data, "enc={enc} comp={comp}");
        echo.await.unwrap();
        let total = 4 + data.len() as u64;
        let (srv_down, srv_up) = server.await.unwrap().unwrap();
        let (cli_up, cli_down) = client.await.unwrap().unwrap();
        assert_eq!(
            (srv_up, srv_down, cli_up, cli_down),
            (total, total, total, total)
        );
    }
}

#[tokio::test]
async fn pump_report_keeps_counts_on_error() {
    struct Broken;
    impl AsyncRead for Broken {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()))
        }
    }
    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
    let (mut a, mut a_peer) = tokio::io::duplex(64);
    a_peer.write_all(b"12345").await.unwrap();
    let report = pump_report(&mut a, &mut Broken).await;
    assert_eq!(report.error.unwrap().kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(report.a_to_b, 5);
}

/// frp's message framing (type byte, 8-byte big-endian length, JSON), to spell out expectations.
fn frames(msgs: &[(u8, &str)]) -> Vec<u8> {
    msgs.iter()
        .flat_map(|(t, json)| {
            let mut f = vec![*t];
            f.extend_from_slice(&(json.len() as i64).to_be_bytes());
            f.extend_from_slice(json.as_bytes());
            f
        })
        .collect()
}

/// The control connection of the same capture run: after Login / LoginResp both directions are
/// encrypted with the token's key (frp-protocol.md §4).
#[tokio::test]
async fn frp_control_conn_vectors() {
    let c2s = frames(&[
        (
            b'p',
            r#"{"proxy_name":"enc","proxy_type":"tcp","use_encryption":true,"remote_port":45693}"#,
        ),
        (
            b'p',
            r#"{"proxy_name":"comp","proxy_type":"tcp","use_compression":true,"remote_port":47939}"#,
        ),
        (
            b'p',
            r#"{"proxy_name":"both","proxy_type":"tcp","use_encryption":true,"use_compression":true,"remote_port":47707}"#,
        ),
        (b'h', "{}"),
    ]);
    let mut s2c_msgs = vec![
        (b'r', "{}"),
        (b'2', r#"{"proxy_name":"enc","remote_addr":":45693"}"#),
        (b'2', r#"{"proxy_name":"comp","remote_addr":":47939"}"#),
        (b'2', r#"{"proxy_name":"both","remote_addr":":47707"}"#),
        (b'4', "{}"),
    ];
    s2c_msgs.extend(std::iter::repeat_n((b'r', "{}"), 10));
    let s2c = frames(&s2c_msgs);
    check_vector(Kind::Enc, vector!("control_c2s.bin"), &c2s).await;
    check_vector(Kind::Enc, vector!("control_s2c.bin"), &s2c).await;
}
