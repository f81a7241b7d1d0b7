//! In-memory tests of the yamux session against a raw peer speaking frames by hand.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::frame::{self, FrameType, Header};
use super::*;

// Longer than the 30 s keepalive interval, for the paused-clock test.
const T: Duration = Duration::from_secs(60);

fn start(role: Role, config: MuxConfig) -> (MuxHandle, Incoming, DuplexStream) {
    let (ours, peer) = tokio::io::duplex(1 << 20);
    let (h, inc) = spawn(ours, role, config, &CancellationToken::new());
    (h, inc, peer)
}

fn no_keepalive() -> MuxConfig {
    MuxConfig {
        keepalive_interval: None,
        ..MuxConfig::default()
    }
}

async fn send(peer: &mut DuplexStream, h: Header, payload: &[u8]) {
    peer.write_all(&h.encode()).await.unwrap();
    peer.write_all(payload).await.unwrap();
}

async fn recv(peer: &mut DuplexStream) -> (Header, Vec<u8>) {
    let mut b = [0u8; frame::HEADER_LEN];
    timeout(T, peer.read_exact(&mut b)).await.unwrap().unwrap();
    let h = Header::decode(&b).unwrap();
    let mut body = Vec::new();
    if h.ty == FrameType::Data {
        body.resize(h.length as usize, 0);
        peer.read_exact(&mut body).await.unwrap();
    }
    (h, body)
}

const DELTA: u32 = FRP_MAX_STREAM_WINDOW - INITIAL_STREAM_WINDOW;

#[tokio::test]
async fn inbound_stream_is_acked_at_once_and_carries_data() {
    let (_h, mut inc, mut peer) = start(Role::Server, no_keepalive());
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::SYN, 1, DELTA),
        &[],
    )
    .await;
    // The ACK comes before anybody accepted the stream.
    let (ack, _) = recv(&mut peer).await;
    assert_eq!(
        ack,
        Header::new(FrameType::WindowUpdate, frame::ACK, 1, DELTA)
    );
    send(
        &mut peer,
        Header::new(FrameType::Data, frame::FIN, 1, 5),
        b"hello",
    )
    .await;
    let mut s = inc.accept().await.unwrap();
    assert_eq!(s.id(), 1);
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello");
    // Half-closed by the peer: we can still write, then drop sends FIN (not RST).
    s.write_all(b"bye").await.unwrap();
    drop(s);
    let (data, body) = recv(&mut peer).await;
    assert_eq!(
        (data.ty, data.stream_id, body.as_slice()),
        (FrameType::Data, 1, &b"bye"[..])
    );
    let (fin, _) = recv(&mut peer).await;
    assert_eq!(fin, Header::new(FrameType::WindowUpdate, frame::FIN, 1, 0));
}

#[tokio::test]
async fn client_opens_odd_streams_with_go_identical_syn() {
    let (h, _inc, mut peer) = start(Role::Client, no_keepalive());
    let a = h.open_stream().unwrap();
    let b = h.open_stream().unwrap();
    assert_eq!((a.id(), b.id()), (1, 3));
    let (syn, _) = recv(&mut peer).await;
    assert_eq!(syn.encode(), [0, 1, 0, 1, 0, 0, 0, 1, 0, 0x5c, 0, 0]);
    let (syn3, _) = recv(&mut peer).await;
    assert_eq!(
        syn3,
        Header::new(FrameType::WindowUpdate, frame::SYN, 3, DELTA)
    );
}

#[tokio::test]
async fn pings_are_answered() {
    let (_h, _inc, mut peer) = start(Role::Server, no_keepalive());
    send(
        &mut peer,
        Header::new(FrameType::Ping, frame::SYN, 0, 42),
        &[],
    )
    .await;
    let (pong, _) = recv(&mut peer).await;
    assert_eq!(pong, Header::new(FrameType::Ping, frame::ACK, 0, 42));
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_and_times_out() {
    let config = MuxConfig {
        keepalive_interval: Some(Duration::from_secs(30)),
        ..MuxConfig::default()
    };
    let (h, _inc, mut peer) = start(Role::Client, config);
    let (ping, _) = recv(&mut peer).await;
    assert_eq!(ping, Header::new(FrameType::Ping, frame::SYN, 0, 0));
    send(
        &mut peer,
        Header::new(FrameType::Ping, frame::ACK, 0, 0),
        &[],
    )
    .await;
    let (ping, _) = recv(&mut peer).await;
    assert_eq!(ping.length, 1);
    // Not answered: the session ends 10 s later.
    timeout(Duration::from_secs(11), h.closed()).await.unwrap();
    assert!(h.open_stream().is_err());
}

#[tokio::test]
async fn window_violation_is_a_protocol_error() {
    let (h, mut inc, mut peer) = start(Role::Server, no_keepalive());
    // Open without granting anything extra: our window for it is still 6 MiB, so send
    // one byte more than that.
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::SYN, 1, 0),
        &[],
    )
    .await;
    let _s = inc.accept().await.unwrap();
    let _ack = recv(&mut peer).await;
    send(
        &mut peer,
        Header::new(FrameType::Data, 0, 1, FRP_MAX_STREAM_WINDOW + 1),
        &[],
    )
    .await;
    timeout(T, h.closed()).await.unwrap();
    let (go_away, _) = recv(&mut peer).await;
    assert_eq!(
        go_away,
        Header::new(FrameType::GoAway, 0, 0, frame::GO_AWAY_PROTOCOL_ERROR)
    );
}

#[tokio::test]
async fn full_backlog_resets_new_streams() {
    let config = MuxConfig {
        accept_backlog: 1,
        ..no_keepalive()
    };
    let (_h, _inc, mut peer) = start(Role::Server, config);
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::SYN, 1, 0),
        &[],
    )
    .await;
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::SYN, 3, 0),
        &[],
    )
    .await;
    let (ack, _) = recv(&mut peer).await;
    assert_eq!((ack.stream_id, ack.flags), (1, frame::ACK));
    let (rst, _) = recv(&mut peer).await;
    assert_eq!(rst, Header::new(FrameType::WindowUpdate, frame::RST, 3, 0));
}

#[tokio::test]
async fn go_away_and_reset_from_peer() {
    let (h, _inc, mut peer) = start(Role::Client, no_keepalive());
    let mut s = h.open_stream().unwrap();
    let _syn = recv(&mut peer).await;
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::RST, 1, 0),
        &[],
    )
    .await;
    let mut buf = [0u8; 1];
    let err = timeout(T, s.read(&mut buf)).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    send(
        &mut peer,
        Header::new(FrameType::GoAway, 0, 0, frame::GO_AWAY_NORMAL),
        &[],
    )
    .await;
    // Wait until the driver processed it.
    for _ in 0..100 {
        if h.open_stream().is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        h.open_stream().unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn data_for_unknown_streams_is_discarded_and_close_sends_go_away() {
    let (h, _inc, mut peer) = start(Role::Server, no_keepalive());
    send(&mut peer, Header::new(FrameType::Data, 0, 77, 3), b"abc").await;
    send(
        &mut peer,
        Header::new(FrameType::Ping, frame::SYN, 0, 1),
        &[],
    )
    .await;
    let (pong, _) = recv(&mut peer).await;
    assert_eq!(pong.ty, FrameType::Ping);
    h.close();
    let (go_away, _) = recv(&mut peer).await;
    assert_eq!(
        go_away,
        Header::new(FrameType::GoAway, 0, 0, frame::GO_AWAY_NORMAL)
    );
    let mut rest = Vec::new();
    timeout(T, peer.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn writes_respect_the_peer_window() {
    let (h, _inc, mut peer) = start(Role::Client, no_keepalive());
    let mut s = h.open_stream().unwrap();
    let _syn = recv(&mut peer).await;
    // Without a window update only 256 KiB may be sent.
    let big = vec![9u8; 300 * 1024];
    let writer = tokio::spawn(async move {
        s.write_all(&big).await.unwrap();
        s
    });
    let mut received = 0usize;
    while received < INITIAL_STREAM_WINDOW as usize {
        let (h, body) = recv(&mut peer).await;
        assert_eq!(h.ty, FrameType::Data);
        received += body.len();
    }
    assert_eq!(received, INITIAL_STREAM_WINDOW as usize);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!writer.is_finished());
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::ACK, 1, DELTA),
        &[],
    )
    .await;
    let _s = timeout(T, writer).await.unwrap().unwrap();
}

/// A transport that counts the writes that carried bytes.
struct CountingIo {
    inner: DuplexStream,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        // Counted before the bytes reach the peer, who may otherwise (on another thread) see
        // them and read the count before it is raised; taken back if nothing was written.
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if !matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.writes
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Messages that several connections' tasks write at the same moment leave in one write to the
/// transport: the writer lets the other ready tasks queue their frames before it writes (one
/// syscall and one wake-up of the peer instead of one per message). On a runtime whose worker
/// runs the most recently woken task next, a writer that wrote at once would send the first
/// task's frame alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn frames_written_by_tasks_woken_together_leave_in_one_write() {
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (ours, mut peer) = tokio::io::duplex(1 << 20);
    let io = CountingIo {
        inner: ours,
        writes: writes.clone(),
    };
    let (h, _inc) = spawn(io, Role::Client, no_keepalive(), &CancellationToken::new());
    const N: usize = 4;
    let mut streams: Vec<MuxStream> = (0..N).map(|_| h.open_stream().unwrap()).collect();
    for _ in 0..N {
        let (syn, _) = recv(&mut peer).await;
        assert!(syn.has(frame::SYN));
    }
    let go = Arc::new(tokio::sync::Notify::new());
    let armed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, mut s) in streams.drain(..).enumerate() {
        let go = go.clone();
        let armed = armed.clone();
        tasks.push(tokio::spawn(async move {
            let mut ready = std::pin::pin!(go.notified_owned());
            ready.as_mut().enable();
            armed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ready.await;
            s.write_all(&[i as u8; 100]).await.unwrap();
            s
        }));
    }
    // Every task must be waiting before they are released together.
    while armed.load(std::sync::atomic::Ordering::SeqCst) < N {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let before = writes.load(std::sync::atomic::Ordering::SeqCst);
    // Released from a task on the worker, so the wake-ups are local ones.
    tokio::spawn(async move { go.notify_waiters() })
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..N {
        let (h, body) = recv(&mut peer).await;
        assert_eq!(h.ty, FrameType::Data);
        got.push(body[0]);
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3]);
    let after = writes.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after - before,
        1,
        "{} writes for {N} messages",
        after - before
    );
    for t in tasks {
        drop(t.await.unwrap());
    }
}

/// `flush` and `shutdown` return once the frames are queued, even while the transport cannot
/// take them (the relay flushes whenever its reader runs dry and must not wait for the driver
/// each time); the data and the FIN still arrive, in order, once the peer reads.
#[tokio::test]
async fn flush_and_shutdown_do_not_wait_for_the_socket() {
    // A 64-byte pipe the peer does not read yet: the driver's write blocks at once.
    let (ours, mut peer) = tokio::io::duplex(64);
    let (h, _inc) = spawn(
        ours,
        Role::Client,
        no_keepalive(),
        &CancellationToken::new(),
    );
    let mut s = h.open_stream().unwrap();
    timeout(Duration::from_secs(5), async {
        s.write_all(&[7u8; 1000]).await.unwrap();
        s.flush().await.unwrap();
        s.shutdown().await.unwrap();
    })
    .await
    .expect("flush/shutdown waited for the socket");
    drop(s);
    let (syn, _) = recv(&mut peer).await;
    assert!(syn.has(frame::SYN));
    let mut data = Vec::new();
    loop {
        let (h, body) = recv(&mut peer).await;
        if h.ty == FrameType::Data {
            data.extend_from_slice(&body);
        }
        if h.has(frame::FIN) {
            break;
        }
    }
    assert_eq!(data, vec![7u8; 1000]);
}

/// `poll_read_chunks` hands out the received frames as they are (no copy), splits the last one
/// at `max`, re-grants window like `poll_read`, and reports the peer's FIN as 0.
#[tokio::test]
async fn read_chunks_takes_frames_without_copying_and_regrants_window() {
    let config = MuxConfig {
        max_stream_window: INITIAL_STREAM_WINDOW,
        ..no_keepalive()
    };
    let (_h, mut inc, mut peer) = start(Role::Server, config);
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, frame::SYN, 1, 0),
        &[],
    )
    .await;
    let (ack, _) = recv(&mut peer).await;
    assert_eq!(ack.flags, frame::ACK);
    // Three frames of 100 KiB: 300 KiB of the 256 KiB initial window is more than the peer
    // may send, so send 200 KiB first, then the rest once the window was re-granted.
    let frame_len = 100 * 1024;
    for i in 0..2u8 {
        send(
            &mut peer,
            Header::new(FrameType::Data, 0, 1, frame_len),
            &vec![i; frame_len as usize],
        )
        .await;
    }
    let mut s = inc.accept().await.unwrap();
    let mut out = VecDeque::new();
    let mut got = 0;
    while got < 2 * frame_len as usize {
        got += std::future::poll_fn(|cx| s.poll_read_chunks(cx, 150 * 1024, &mut out))
            .await
            .unwrap();
    }
    // Each piece is one frame's bytes (or part of one), never merged: a copy would merge.
    assert!(out.iter().all(|c| c.iter().all(|&b| b == c[0])));
    assert!(out.iter().all(|c| c.len() <= 150 * 1024));
    let total: usize = out.iter().map(|c| c.len()).sum();
    assert_eq!(total, 2 * frame_len as usize);
    // The first take consumed 150 KiB of a 256 KiB window: hashicorp's rule re-grants it
    // (at least half the window); the next 50 KiB are not worth an update yet.
    let (wu, _) = recv(&mut peer).await;
    assert_eq!(
        (wu.ty, wu.stream_id, wu.length),
        (FrameType::WindowUpdate, 1, 150 * 1024)
    );
    send(
        &mut peer,
        Header::new(FrameType::Data, frame::FIN, 1, 3),
        b"end",
    )
    .await;
    let mut tail = VecDeque::new();
    let n = std::future::poll_fn(|cx| s.poll_read_chunks(cx, 1024, &mut tail))
        .await
        .unwrap();
    assert_eq!((n, &tail[0][..]), (3, &b"end"[..]));
    let eof = std::future::poll_fn(|cx| s.poll_read_chunks(cx, 1024, &mut tail))
        .await
        .unwrap();
    assert_eq!(eof, 0);
}

/// Polls `f` once; `None` when it was pending.
async fn poll_once<T>(
    mut f: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<T>,
) -> Option<T> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match f(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// `poll_write_from` turns each read of its source into one data frame, reads no more than the
/// peer's window allows (what is left stays in the source), and sends nothing at EOF.
#[tokio::test]
async fn write_from_reads_the_source_straight_into_frames_within_the_window() {
    let (h, _inc, mut peer) = start(Role::Client, no_keepalive());
    let mut s = h.open_stream().unwrap();
    let _syn = recv(&mut peer).await;
    let (mut src, mut feed) = tokio::io::duplex(1 << 20);
    let first: Vec<u8> = (0..48 * 1024u32).map(|i| (i % 251) as u8).collect();
    feed.write_all(&first).await.unwrap();
    let n = std::future::poll_fn(|cx| s.poll_write_from(cx, &mut src, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(n, first.len());
    let (hd, body) = recv(&mut peer).await;
    assert_eq!(
        (hd.ty, hd.stream_id, hd.length),
        (FrameType::Data, 1, 48 * 1024)
    );
    assert_eq!(body, first);
    // `max` bounds a frame.
    feed.write_all(&[7u8; 10]).await.unwrap();
    let n = std::future::poll_fn(|cx| s.poll_write_from(cx, &mut src, 4))
        .await
        .unwrap();
    assert_eq!(n, 4);
    let (hd, body) = recv(&mut peer).await;
    assert_eq!((hd.length, &body[..]), (4, &[7u8; 4][..]));
    let n = std::future::poll_fn(|cx| s.poll_write_from(cx, &mut src, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(n, 6);
    let _ = recv(&mut peer).await;
    // The window (256 KiB initially) has 208 KiB left: 300 KiB more are offered.
    feed.write_all(&vec![1u8; 300 * 1024]).await.unwrap();
    let mut sent = 0;
    while let Some(n) = poll_once(|cx| s.poll_write_from(cx, &mut src, 64 * 1024)).await {
        sent += n.unwrap();
    }
    let left = INITIAL_STREAM_WINDOW as usize - first.len() - 10;
    assert_eq!(sent, left);
    let mut received = 0;
    while received < left {
        let (hd, body) = recv(&mut peer).await;
        assert!(hd.ty == FrameType::Data && body.iter().all(|&b| b == 1));
        received += body.len();
    }
    // Nothing was read ahead: the rest is still in the source.
    let mut rest = vec![0u8; 300 * 1024 - left];
    src.read_exact(&mut rest).await.unwrap();
    assert!(rest.iter().all(|&b| b == 1));
    // A window update lets the stream take more; EOF queues nothing.
    send(
        &mut peer,
        Header::new(FrameType::WindowUpdate, 0, 1, DELTA),
        &[],
    )
    .await;
    drop(feed);
    let n = std::future::poll_fn(|cx| s.poll_write_from(cx, &mut src, 64 * 1024))
        .await
        .unwrap();
    assert_eq!(n, 0);
    s.shutdown().await.unwrap();
    let (fin, _) = recv(&mut peer).await;
    assert_eq!((fin.ty, fin.flags), (FrameType::WindowUpdate, frame::FIN));
}

/// Small frames for streams whose readers are waiting reach them as slices of the read chunk
/// (no copy, no allocation per message); one for a stream nobody is reading yet is copied, so
/// it does not pin the chunk (`reader::Piece::for_queue`).
#[tokio::test]
async fn small_frames_reach_waiting_readers_uncopied() {
    let (_h, mut inc, mut peer) = start(Role::Server, no_keepalive());
    let mut streams = Vec::new();
    for id in [1u32, 3, 5] {
        send(
            &mut peer,
            Header::new(FrameType::WindowUpdate, frame::SYN, id, 0),
            &[],
        )
        .await;
        recv(&mut peer).await;
        streams.push(inc.accept().await.unwrap());
    }
    let mut outs = [VecDeque::new(), VecDeque::new(), VecDeque::new()];
    // The readers of streams 1 and 5 wait; stream 3's has not polled.
    for i in [0, 2] {
        let s = &mut streams[i];
        let out = &mut outs[i];
        assert!(poll_once(|cx| s.poll_read_chunks(cx, 1024, out))
            .await
            .is_none());
    }
    // One write, so the session reads all three frames into one chunk.
    let mut wire = Vec::new();
    for (id, body) in [(1u32, b"hello"), (5, b"world"), (3, b"other")] {
        wire.extend_from_slice(&Header::new(FrameType::Data, 0, id, 5).encode());
        wire.extend_from_slice(body);
    }
    peer.write_all(&wire).await.unwrap();
    for (s, out) in streams.iter_mut().zip(outs.iter_mut()) {
        let n = timeout(
            T,
            std::future::poll_fn(|cx| s.poll_read_chunks(cx, 1024, out)),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 5);
    }
    let [a, b, c] = [&outs[0][0], &outs[1][0], &outs[2][0]];
    assert_eq!(
        (&a[..], &b[..], &c[..]),
        (&b"hello"[..], &b"other"[..], &b"world"[..])
    );
    let frame_len = frame::HEADER_LEN + 5;
    assert_eq!(
        c.as_ptr() as usize,
        a.as_ptr() as usize + frame_len,
        "the waiting readers' pieces are slices of the chunk read"
    );
    assert_ne!(
        b.as_ptr() as usize,
        a.as_ptr() as usize + 2 * frame_len,
        "the piece for the stream not being read is a copy"
    );
}
