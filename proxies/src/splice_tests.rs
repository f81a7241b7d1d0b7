//! Tests of the splice relay and of the choice between it and the buffered relay. Each
//! `#[tokio::test]` runs on its own thread with a current-thread runtime, so the per-thread
//! pipe and buffer pools tell which path moved the bytes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use transports::sniff::Rewind;
use transports::BoxStream;

use super::{into_tcp, join_plain};
use crate::pool;

/// A connected pair of TCP sockets on 127.0.0.1.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    (c.expect("connect"), s.expect("accept").0)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// client ⇄ [user | relay | work] ⇄ backend: 3 MiB each way at once, then the client
/// half-closes and still gets the backend's answer; both EOFs pass through.
#[tokio::test]
async fn splice_moves_bytes_both_ways_with_half_close() {
    let (mut client, user) = tcp_pair().await;
    let (work, mut backend) = tcp_pair().await;
    let relay = tokio::spawn(join_plain(
        Box::new(user),
        Box::new(work),
        Duration::from_secs(10),
    ));
    let up = pattern(3 << 20, 1);
    let down = pattern(3 << 20, 2);
    let (up2, down2) = (up.clone(), down.clone());
    let backend_side = tokio::spawn(async move {
        let (mut rd, mut wr) = backend.split();
        let send = async {
            wr.write_all(&down2).await.expect("backend write");
        };
        let recv = async {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.expect("backend read");
            got
        };
        let ((), got) = tokio::join!(send, recv);
        assert!(got == up2, "upstream bytes differ");
        // The client's EOF came through; answer after it, then close.
        wr.write_all(b"bye").await.expect("late answer");
        wr.shutdown().await.expect("backend shutdown");
    });
    let client_side = async {
        let (mut rd, mut wr) = client.split();
        let send = async {
            wr.write_all(&up).await.expect("client write");
            wr.shutdown().await.expect("client shutdown");
        };
        let recv = async {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.expect("client read");
            got
        };
        tokio::join!(send, recv).1
    };
    let got = tokio::time::timeout(Duration::from_secs(20), client_side)
        .await
        .expect("transfer in time");
    assert_eq!(got.len(), down.len() + 3);
    assert!(got[..down.len()] == down[..], "downstream bytes differ");
    assert_eq!(&got[down.len()..], b"bye");
    backend_side.await.expect("backend");
    let report = relay.await.expect("relay task");
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.a_to_b, up.len() as u64);
    assert_eq!(report.b_to_a, down.len() as u64 + 3);
    // The first read filled a lent buffer, then the kernel moved the bytes: pipes were used and
    // given back empty, and so were the buffers.
    assert!(super::linux::free_pipes_on_this_thread() >= 1);
    assert_eq!(pool::lent_on_this_thread(), 0);
    assert!(
        pool::free_on_this_thread() >= 1,
        "the first bytes went through a buffer"
    );
}

/// Small messages go through a lent buffer, not a pipe, and an idle join holds neither; a silent
/// side after a half-close ends it after `linger`.
#[tokio::test]
async fn small_messages_skip_the_pipe_and_linger_ends_half_closed_join() {
    let (mut client, user) = tcp_pair().await;
    let (work, mut backend) = tcp_pair().await;
    let linger = Duration::from_millis(300);
    let relay = tokio::spawn(join_plain(Box::new(user), Box::new(work), linger));
    client.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    backend.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"ping");
    // Let the relay go idle: its buffer goes back to the pool; no pipe was taken.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(super::linux::free_pipes_on_this_thread(), 0);
    assert_eq!(pool::lent_on_this_thread(), 0);
    assert!(pool::free_on_this_thread() >= 1);
    client.shutdown().await.expect("half-close");
    assert_eq!(backend.read(&mut buf).await.expect("eof"), 0);
    // The backend never answers nor closes: the join ends by itself.
    let started = tokio::time::Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), relay)
        .await
        .expect("linger ended the join")
        .expect("task");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!((report.a_to_b, report.b_to_a), (4, 0));
    assert!(report.error.is_none());
}

/// Anything but TCP on both sides goes through the buffered relay, with the same result.
#[tokio::test]
async fn falls_back_when_a_side_is_not_tcp() {
    let (mut user, user_far) = tokio::io::duplex(1024);
    let (work, mut backend) = tcp_pair().await;
    let relay = tokio::spawn(join_plain(
        Box::new(user_far),
        Box::new(work),
        Duration::from_secs(10),
    ));
    user.write_all(b"hello").await.expect("write");
    user.shutdown().await.expect("shutdown");
    let mut got = Vec::new();
    backend.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"hello");
    backend.write_all(b"world").await.expect("write");
    backend.shutdown().await.expect("shutdown");
    let mut back = Vec::new();
    user.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, b"world");
    let report = relay.await.expect("relay task");
    assert_eq!((report.a_to_b, report.b_to_a), (5, 5));
    assert_eq!(super::linux::free_pipes_on_this_thread(), 0, "no pipe used");
    assert!(pool::free_on_this_thread() >= 1, "a relay buffer was used");
    assert_eq!(pool::lent_on_this_thread(), 0);
}

/// `into_tcp` finds the socket in a box, a box in a box and frps's `Rewind` (after the first
/// frame was read, with nothing lost), and hands anything else back untouched.
#[tokio::test]
async fn into_tcp_finds_the_socket_or_gives_the_stream_back() {
    let (a, _a_far) = tcp_pair().await;
    assert!(into_tcp(Box::new(a)).is_ok());
    let (b, _b_far) = tcp_pair().await;
    let twice: BoxStream = Box::new(Box::new(b) as BoxStream);
    assert!(into_tcp(twice).is_ok());

    // frps's plain work connection: up to 10 sniffed bytes replayed, then the socket.
    let (mut conn, mut peer) = tcp_pair().await;
    let frame =
        control::encode_to_vec(&control::Message::NewWorkConn(Default::default())).expect("encode");
    assert!(frame.len() > transports::sniff::MAX_SNIFF_LEN);
    peer.write_all(&frame).await.expect("write frame");
    peer.write_all(b"after").await.expect("write data");
    let mut sniffed = [0u8; transports::sniff::MAX_SNIFF_LEN];
    conn.read_exact(&mut sniffed).await.expect("sniff");
    let mut work: BoxStream = Box::new(Rewind::new(sniffed.to_vec(), conn));
    let msg = control::read_msg(&mut work).await.expect("first frame");
    assert!(matches!(msg, control::Message::NewWorkConn(_)));
    let Ok(mut parts) = into_tcp(work) else {
        panic!("a TcpStream behind the Rewind");
    };
    // "after" is either already read ahead or still in the socket; never lost.
    let mut rest = parts.read_ahead.clone();
    let mut tail = vec![0u8; 5 - rest.len()];
    parts.tcp.read_exact(&mut tail).await.expect("rest");
    rest.extend_from_slice(&tail);
    assert_eq!(rest, b"after");

    // A Rewind whose prefix was never read: the prefix comes back as read-ahead.
    let (c, _c_far) = tcp_pair().await;
    let Ok(parts) = into_tcp(Box::new(Rewind::new(b"GET /".to_vec(), c))) else {
        panic!("a TcpStream behind the Rewind");
    };
    assert_eq!(parts.read_ahead, b"GET /");

    let (mut d, d_far) = tokio::io::duplex(64);
    let Err(mut back) = into_tcp(Box::new(d_far)) else {
        panic!("a duplex is not a TcpStream");
    };
    back.write_all(b"still usable").await.expect("write");
    let mut got = [0u8; 12];
    d.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"still usable");
}

/// Bytes a `Rewind` still had to replay reach the far side first, then the spliced rest.
#[tokio::test]
async fn unreplayed_prefix_goes_first_through_splice() {
    let (mut user, user_near) = tcp_pair().await;
    let (work, mut backend) = tcp_pair().await;
    let user_side: BoxStream = Box::new(Rewind::new(b"first ".to_vec(), user_near));
    let relay = tokio::spawn(join_plain(
        user_side,
        Box::new(work),
        Duration::from_secs(10),
    ));
    // Bulk after the prefix, so that the join moves to `splice` (small messages do not).
    let mut sent = b"second".to_vec();
    sent.extend(pattern(1 << 20, 3));
    let writer = tokio::spawn(async move {
        user.write_all(&sent).await.expect("write");
        user.shutdown().await.expect("shutdown");
        user
    });
    let mut got = Vec::new();
    backend.read_to_end(&mut got).await.expect("read");
    assert_eq!(&got[..12], b"first second");
    assert!(got[12..] == pattern(1 << 20, 3)[..], "bulk bytes differ");
    drop(backend);
    let report = relay.await.expect("relay");
    assert_eq!(report.a_to_b, 12 + (1 << 20));
    assert!(super::linux::free_pipes_on_this_thread() >= 1, "spliced");
    drop(writer.await.expect("writer"));
}

/// Two yamux streams of one session joined to each other take the buffered relay: the
/// copy-free one reads its other side under the session's lock, which that side would wait
/// for. Run on a thread of its own, so that a deadlock fails the test instead of hanging it.
#[test]
fn two_streams_of_one_session_join_without_deadlock() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let got = rt.block_on(async {
            use transports::mux::{self, MuxConfig, Role};
            let (a, b) = tokio::io::duplex(1 << 20);
            let token = tokio_util::sync::CancellationToken::new();
            let config = MuxConfig::frp(Duration::from_secs(30));
            let (client, _client_in) = mux::spawn(a, Role::Client, config, &token);
            let (_server, mut server_in) = mux::spawn(b, Role::Server, config, &token);
            let mut one = client.open_stream().expect("open");
            let mut two = client.open_stream().expect("open");
            one.write_all(b"x").await.expect("write");
            two.write_all(b"y").await.expect("write");
            let (s1, s2) = (server_in.accept().await, server_in.accept().await);
            let (s1, s2) = (s1.expect("accept"), s2.expect("accept"));
            let relay = tokio::spawn(join_plain(
                Box::new(s1),
                Box::new(s2),
                Duration::from_secs(10),
            ));
            one.write_all(b"hello").await.expect("write");
            one.shutdown().await.expect("shutdown");
            let mut got = Vec::new();
            two.read_to_end(&mut got).await.expect("read");
            drop(relay);
            got
        });
        let _ = done_tx.send(got);
    });
    let got = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the join of two streams of one session did not finish (deadlock?)");
    // The byte written before the join is relayed as well.
    assert_eq!(got, b"xhello");
}
